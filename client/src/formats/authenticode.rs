//! Authenticode for PE files (PE32 and PE32+: .exe, .dll, .sys), assembled on the client.
//!
//! [`PeFile::parse`] finds the three places the Authenticode hash skips: the optional header's
//! CheckSum, the security data-directory entry (IMAGE_DIRECTORY_ENTRY_SECURITY) and the
//! certificate table. [`PeFile::digest`] hashes the rest of the file in file order, after the
//! file is zero-padded to a multiple of 8 bytes (the certificate table must start 8-byte
//! aligned, and the padding is part of the signed image, as osslsigncode and Windows hash it).
//! [`spc_indirect_data`] builds the SpcIndirectDataContent the server signs as CMS content
//! (SpcPeImageData + DigestInfo); [`PeFile::embed`] appends the returned PKCS#7 as a
//! WIN_CERTIFICATE (revision 2.0, PKCS_SIGNED_DATA, padded to 8 bytes), points the security
//! directory at it and recomputes the PE checksum.
//!
//! A file that already carries a signature (non-empty security directory) is refused: replacing
//! or nesting signatures is not done here.
//!
//! CAB ([`super::cab`]) and MSI ([`super::msi`]) files are signed the same way: [`open`] picks
//! the format from the file's magic and hands back a [`Signable`], whose digest, content and
//! embedding differ per format while the server's part (a CMS signature over the content) is
//! the same.

use crate::algorithm::HashAlg;
use crate::der::tlv;

/// Errors reading or writing a PE file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeError {
    #[error("not a PE file: {0}")]
    NotPe(&'static str),
    #[error("unsupported PE file: {0}")]
    Unsupported(String),
    #[error("the file is already signed (it has a certificate table of {0} bytes); sign an unsigned file")]
    AlreadySigned(u32),
    #[error("the signature is too large for a PE certificate table")]
    TooLarge,
}

/// Errors from any of the Authenticode file formats.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthenticodeError {
    #[error(transparent)]
    Pe(#[from] PeError),
    #[error(transparent)]
    Cab(#[from] super::cab::CabError),
    #[error(transparent)]
    Msi(#[from] super::msi::MsiError),
    #[error("not a file Authenticode signs here: expected a PE image (MZ), a cabinet (MSCF) or an MSI (compound file)")]
    UnknownFormat,
}

/// A file Authenticode can sign, parsed and checked (unsigned, well formed).
pub trait Signable {
    /// The format's name for messages: "PE32", "PE32+", "CAB" or "MSI".
    fn kind(&self) -> &'static str;
    /// The Authenticode hash of the file in `hash` (an MSI's streams are read again for it).
    fn digest(&self, hash: HashAlg) -> Result<Vec<u8>, AuthenticodeError>;
    /// The DER SpcIndirectDataContent the server signs for this file and `digest`.
    fn indirect_data(&self, hash: HashAlg, digest: &[u8]) -> Vec<u8>;
    /// The signed file: the unsigned one with `pkcs7` (DER ContentInfo) embedded.
    fn embed(self: Box<Self>, pkcs7: &[u8]) -> Result<Vec<u8>, AuthenticodeError>;
}

/// Compound File Binary (OLE2) magic, which MSI files start with.
const CFB_MAGIC: [u8; 8] = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];

/// Parses `data` as whichever Authenticode format its first bytes name.
pub fn open(data: Vec<u8>) -> Result<Box<dyn Signable>, AuthenticodeError> {
    if data.starts_with(b"MZ") {
        Ok(Box::new(PeFile::parse(data)?))
    } else if data.starts_with(b"MSCF") {
        Ok(Box::new(super::cab::CabFile::parse(data)?))
    } else if data.starts_with(&CFB_MAGIC) {
        Ok(Box::new(super::msi::MsiFile::parse(data)?))
    } else {
        Err(AuthenticodeError::UnknownFormat)
    }
}

impl Signable for PeFile {
    fn kind(&self) -> &'static str {
        if self.pe32_plus {
            "PE32+"
        } else {
            "PE32"
        }
    }
    fn digest(&self, hash: HashAlg) -> Result<Vec<u8>, AuthenticodeError> {
        Ok(PeFile::digest(self, hash))
    }
    fn indirect_data(&self, hash: HashAlg, digest: &[u8]) -> Vec<u8> {
        spc_indirect_data(hash, digest)
    }
    fn embed(self: Box<Self>, pkcs7: &[u8]) -> Result<Vec<u8>, AuthenticodeError> {
        Ok(PeFile::embed(*self, pkcs7)?)
    }
}

/// An incremental SHA-2 hash in the algorithm a caller picked at run time (the CAB and MSI
/// hashes feed many pieces).
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn new(hash: HashAlg) -> Hasher {
        use sha2::Digest as _;
        match hash {
            HashAlg::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
    pub(crate) fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// `SpcLink ::= [2] file SpcString ::= [0] BMPString "<<<Obsolete>>>"`, tagged `[0]` as the
/// `file` field of SpcPeImageData; CAB's SpcIndirectDataContent carries the same link.
pub(crate) fn obsolete_file_link() -> Vec<u8> {
    let obsolete: Vec<u8> = "<<<Obsolete>>>"
        .encode_utf16()
        .flat_map(|c| c.to_be_bytes())
        .collect();
    tlv(0xa2, &tlv(0x80, &obsolete))
}

/// `SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue { type, value },
/// messageDigest DigestInfo }` for a file hash `digest` in `hash`.
pub(crate) fn indirect_data_content(
    type_oid: &str,
    value: &[u8],
    hash: HashAlg,
    digest: &[u8],
) -> Vec<u8> {
    let oid = crate::der::oid;
    let data = tlv(0x30, &[oid(type_oid), value.to_vec()].concat());
    let alg = tlv(0x30, &[oid(digest_oid(hash)), vec![0x05, 0x00]].concat());
    let digest_info = tlv(0x30, &[alg, tlv(0x04, digest)].concat());
    tlv(0x30, &[data, digest_info].concat())
}

/// WIN_CERT_REVISION_2_0.
/// SPC_INDIRECT_DATA_OBJID: the content type of an Authenticode SignedData.
pub const SPC_INDIRECT_DATA: &str = "1.3.6.1.4.1.311.2.1.4";
const WIN_CERT_REVISION_2_0: u16 = 0x0200;
/// WIN_CERT_TYPE_PKCS_SIGNED_DATA.
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;
/// SPC_PE_IMAGE_DATAOBJ.
const SPC_PE_IMAGE_DATA: &str = "1.3.6.1.4.1.311.2.1.15";

/// A parsed PE file: its bytes (zero-padded to a multiple of 8) and the offsets that matter.
#[derive(Debug, Clone)]
pub struct PeFile {
    data: Vec<u8>,
    /// Offset of the optional header's CheckSum (4 bytes).
    checksum_offset: usize,
    /// Offset of the security data-directory entry (8 bytes: file offset, size).
    security_dir_offset: usize,
    /// PE32+ rather than PE32.
    pub pe32_plus: bool,
}

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?))
}

impl PeFile {
    /// Parses a PE image, refusing anything signed or malformed.
    pub fn parse(mut data: Vec<u8>) -> Result<PeFile, PeError> {
        if data.get(0..2) != Some(b"MZ") {
            return Err(PeError::NotPe("no MZ header"));
        }
        let pe = u32_at(&data, 0x3c).ok_or(PeError::NotPe("truncated DOS header"))? as usize;
        if data.get(pe..pe + 4) != Some(b"PE\0\0") {
            return Err(PeError::NotPe("no PE signature at e_lfanew"));
        }
        let coff = pe + 4;
        let opt_size =
            u16_at(&data, coff + 16).ok_or(PeError::NotPe("truncated COFF header"))? as usize;
        let opt = coff + 20;
        let magic = u16_at(&data, opt).ok_or(PeError::NotPe("truncated optional header"))?;
        let (pe32_plus, count_off, dirs_off) = match magic {
            0x10b => (false, opt + 92, opt + 96),
            0x20b => (true, opt + 108, opt + 112),
            m => {
                return Err(PeError::Unsupported(format!(
                    "optional header magic {m:#06x} (neither PE32 nor PE32+)"
                )))
            }
        };
        let count = u32_at(&data, count_off).ok_or(PeError::NotPe("truncated optional header"))?;
        if count < 5 {
            return Err(PeError::Unsupported(format!(
                "only {count} data directories: no security directory"
            )));
        }
        let security_dir_offset = dirs_off + 4 * 8;
        if security_dir_offset + 8 > opt + opt_size || security_dir_offset + 8 > data.len() {
            return Err(PeError::NotPe(
                "the security directory lies outside the optional header",
            ));
        }
        let size = u32_at(&data, security_dir_offset + 4).unwrap_or(0);
        let addr = u32_at(&data, security_dir_offset).unwrap_or(0);
        if size != 0 || addr != 0 {
            return Err(PeError::AlreadySigned(size));
        }
        let headers = u32_at(&data, opt + 60).unwrap_or(0) as usize;
        if headers > data.len() {
            return Err(PeError::NotPe("SizeOfHeaders is past the end of the file"));
        }
        // The certificate table will start 8-byte aligned; the padding is hashed too.
        let padded = data.len().div_ceil(8) * 8;
        data.resize(padded, 0);
        if data.len() > u32::MAX as usize {
            return Err(PeError::Unsupported("larger than 4 GiB".into()));
        }
        Ok(PeFile {
            data,
            checksum_offset: opt + 64,
            security_dir_offset,
            pe32_plus,
        })
    }

    /// The Authenticode digest: the whole (padded) file except the CheckSum and the security
    /// directory entry.
    pub fn digest(&self, hash: HashAlg) -> Vec<u8> {
        let d = &self.data;
        let mut h = Hasher::new(hash);
        h.update(&d[..self.checksum_offset]);
        h.update(&d[self.checksum_offset + 4..self.security_dir_offset]);
        h.update(&d[self.security_dir_offset + 8..]);
        h.finish()
    }

    /// Appends `pkcs7` (DER ContentInfo) as the certificate table and returns the signed file
    /// with its security directory and checksum set.
    pub fn embed(mut self, pkcs7: &[u8]) -> Result<Vec<u8>, PeError> {
        let offset = self.data.len();
        let padded = (8 + pkcs7.len()).div_ceil(8) * 8;
        let len = u32::try_from(padded).map_err(|_| PeError::TooLarge)?;
        let off32 = u32::try_from(offset).map_err(|_| PeError::TooLarge)?;
        off32.checked_add(len).ok_or(PeError::TooLarge)?;
        self.data.extend_from_slice(&len.to_le_bytes());
        self.data
            .extend_from_slice(&WIN_CERT_REVISION_2_0.to_le_bytes());
        self.data
            .extend_from_slice(&WIN_CERT_TYPE_PKCS_SIGNED_DATA.to_le_bytes());
        self.data.extend_from_slice(pkcs7);
        self.data.resize(offset + padded, 0);
        let s = self.security_dir_offset;
        self.data[s..s + 4].copy_from_slice(&off32.to_le_bytes());
        self.data[s + 4..s + 8].copy_from_slice(&len.to_le_bytes());
        let sum = pe_checksum(&self.data, self.checksum_offset);
        let c = self.checksum_offset;
        self.data[c..c + 4].copy_from_slice(&sum.to_le_bytes());
        Ok(self.data)
    }
}

/// The PE image checksum (imagehlp's CheckSumMappedFile): 16-bit one's-complement-style sum of
/// the file with the CheckSum field taken as zero, folded, plus the file length.
pub fn pe_checksum(data: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < data.len() {
        let word = if i + 1 < data.len() {
            u16::from_le_bytes([data[i], data[i + 1]])
        } else {
            u16::from(data[i])
        };
        // The CheckSum field counts as zero.
        let w = if i >= checksum_offset && i < checksum_offset + 4 {
            0
        } else {
            word
        };
        sum += u64::from(w);
        sum = (sum & 0xffff) + (sum >> 16);
        i += 2;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32 & 0xffff).wrapping_add(data.len() as u32)
}

fn digest_oid(hash: HashAlg) -> &'static str {
    match hash {
        HashAlg::Sha256 => "2.16.840.1.101.3.4.2.1",
        HashAlg::Sha384 => "2.16.840.1.101.3.4.2.2",
        HashAlg::Sha512 => "2.16.840.1.101.3.4.2.3",
    }
}

/// The DER SpcIndirectDataContent for a PE digest:
/// `SEQUENCE { SEQUENCE { SPC_PE_IMAGE_DATAOBJ, SpcPeImageData }, DigestInfo }`, with
/// SpcPeImageData = `{ flags '' (BIT STRING), file [0] { [2] { [0] "<<<Obsolete>>>" } } }` as
/// signtool writes it.
pub fn spc_indirect_data(hash: HashAlg, digest: &[u8]) -> Vec<u8> {
    let file = tlv(0xa0, &obsolete_file_link());
    let pe_image_data = tlv(0x30, &[&[0x03, 0x01, 0x00][..], &file].concat());
    indirect_data_content(SPC_PE_IMAGE_DATA, &pe_image_data, hash, digest)
}

/// The digest the server checks and signs as messageDigest: the content's DER without its
/// outer tag and length.
pub fn content_digest(hash: HashAlg, spc: &[u8]) -> Result<Vec<u8>, PeError> {
    let t = crate::der::read_tlv(spc).map_err(|_| PeError::NotPe("bad SpcIndirectDataContent"))?;
    Ok(hash.digest(t.contents))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE32+ image: headers, one .text section holding `ret`.
    pub fn tiny_pe() -> Vec<u8> {
        let mut d = vec![0u8; 0x400];
        d[0..2].copy_from_slice(b"MZ");
        d[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        d[0x40..0x44].copy_from_slice(b"PE\0\0");
        let coff = 0x44;
        d[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
        d[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
        d[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
        d[coff + 18..coff + 20].copy_from_slice(&0x22u16.to_le_bytes());
        let opt = coff + 20;
        d[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        d[opt + 60..opt + 64].copy_from_slice(&0x200u32.to_le_bytes());
        d[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
        d[0x200] = 0xc3;
        d
    }

    #[test]
    fn parses_hashes_and_embeds() {
        let pe = PeFile::parse(tiny_pe()).unwrap();
        assert!(pe.pe32_plus);
        let d1 = pe.digest(HashAlg::Sha256);
        let signed = pe.clone().embed(&[0x30, 0x03, 0x02, 0x01, 0x01]).unwrap();
        assert_eq!(signed.len() % 8, 0);
        assert_eq!(
            PeFile::parse(signed.clone()).unwrap_err(),
            PeError::AlreadySigned(16)
        );
        // The digest ignores checksum and security directory, so it is unchanged on the
        // signed file's first 0x400 bytes.
        let mut again = signed[..0x400].to_vec();
        let sec = pe.security_dir_offset;
        again[sec..sec + 8].fill(0);
        assert_eq!(PeFile::parse(again).unwrap().digest(HashAlg::Sha256), d1);
        assert!(PeFile::parse(b"MZ".to_vec()).is_err());
        assert!(PeFile::parse(vec![0; 100]).is_err());
    }

    #[test]
    fn spc_content_is_one_sequence() {
        let spc = spc_indirect_data(HashAlg::Sha256, &[1u8; 32]);
        let t = crate::der::read_tlv(&spc).unwrap();
        assert_eq!((t.tag, t.rest.len()), (0x30, 0));
        assert_eq!(
            content_digest(HashAlg::Sha256, &spc).unwrap(),
            HashAlg::Sha256.digest(t.contents)
        );
    }
}
