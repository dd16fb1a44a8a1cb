//! Authenticode for CAB (Microsoft cabinet) files, assembled on the client.
//!
//! A cabinet starts with a CFHEADER: `"MSCF"`, reserved1, cbCabinet (the file's size),
//! reserved2, coffFiles (offset of the first CFFILE), reserved3, version 1.3, cFolders, cFiles,
//! flags, setID and iCabinet (36 bytes). When flags has cfhdrRESERVE_PRESENT, four more bytes
//! follow (cbCFHeader u16, cbCFFolder u8, cbCFData u8) and then cbCFHeader bytes of per-cabinet
//! reserve. Then come the cFolders CFFOLDER entries (8 bytes each when cbCFFolder is 0:
//! coffCabStart u32, the offset of the folder's first CFDATA block, cCFData u16, typeCompress
//! u16), the CFFILE entries at coffFiles, and the CFDATA blocks.
//!
//! A signed cabinet (as signtool and osslsigncode write it) keeps its signature in that
//! reserve: cbCFHeader = 20, cbCFFolder = cbCFData = 0, and the 20 reserved bytes are
//! `00 00 10 00`, the signature's offset (u32), its length (u32) and eight zero bytes. The
//! PKCS#7 itself is appended after the cabinet, zero-padded to a multiple of 8 bytes (the
//! length field counts the padding), and cbCabinet keeps the size of the cabinet without it,
//! which is also the signature's offset.
//!
//! Unsigned cabinets, as `gcab` and makecab write them, have no reserve at all. [`CabFile::parse`]
//! therefore prepares the file the way osslsigncode does before signing: it inserts the 24 bytes
//! (cbCFHeader etc. plus the 20-byte reserve) after the fixed header, sets
//! cfhdrRESERVE_PRESENT, adds 24 to cbCabinet, coffFiles and every folder's coffCabStart, and
//! points the signature offset at the end of the file. The digest is then that of the file as
//! it will be once signed, and [`CabFile::embed`] only appends the signature and fills in its
//! length.
//!
//! The Authenticode CAB hash ([`CabFile::digest`]) covers the prepared file except
//! reserved1 (bytes 4..8) and bytes 34..56 (iCabinet, cbCFHeader, cbCFFolder, cbCFData and the
//! first 16 reserve bytes, which hold the signature's offset and length), up to the signature's
//! offset. The SpcIndirectDataContent's data is SPC_CAB_DATA_OBJID with the obsolete file link
//! `[2] { [0] "<<<Obsolete>>>" }` as its value, as signtool and osslsigncode write it.
//!
//! Refused: already signed cabinets (replacing or nesting signatures is not done here),
//! cabinets with any other reserve area (osslsigncode refuses those too, and the signature
//! needs the reserve for itself), multi-volume cabinets (the prev/next cabinet flags:
//! osslsigncode refuses a previous cabinet and hashes the cabinet names inconsistently for a
//! next one), cabinets whose cbCabinet is not the file's size, whose CFFOLDER entries do not end
//! exactly at coffFiles (the signed cabinet would not verify), or which are otherwise malformed.

use crate::algorithm::HashAlg;

use super::authenticode::{
    indirect_data_content, obsolete_file_link, AuthenticodeError, Hasher, Signable,
};

/// Errors reading or writing a CAB file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CabError {
    #[error("not a CAB file: {0}")]
    NotCab(String),
    #[error("malformed CAB file: {0}")]
    Malformed(String),
    #[error("unsupported CAB file: {0}")]
    Unsupported(String),
    #[error("the cabinet is already signed (it carries a signature of {0} bytes); sign an unsigned file")]
    AlreadySigned(u32),
    #[error("the cabinet or its signature is too large for a CAB file (4 GiB)")]
    TooLarge,
}

/// SPC_CAB_DATA_OBJID.
const SPC_CAB_DATA: &str = "1.3.6.1.4.1.311.2.1.25";

/// cfhdrPREV_CABINET: szCabinetPrev and szDiskPrev follow the header.
const FLAG_PREV_CABINET: u16 = 0x0001;
/// cfhdrNEXT_CABINET: szCabinetNext and szDiskNext follow the header.
const FLAG_NEXT_CABINET: u16 = 0x0002;
/// cfhdrRESERVE_PRESENT: cbCFHeader, cbCFFolder, cbCFData (and the reserves) are present.
const FLAG_RESERVE_PRESENT: u16 = 0x0004;

/// Size of the CFHEADER without the optional fields.
const HEADER: usize = 36;
/// The optional cbCFHeader/cbCFFolder/cbCFData (4 bytes) plus the 20-byte signature reserve.
const INSERTED: usize = 24;
/// Size of a CFFOLDER without per-folder reserve.
const FOLDER: usize = 8;
/// Offset of the signature's offset in a signed cabinet (in the reserve).
const SIG_OFFSET_AT: usize = 44;
/// Offset of the signature's (padded) length in a signed cabinet.
const SIG_LEN_AT: usize = 48;

/// The 24 bytes osslsigncode and signtool insert after the fixed header: cbCFHeader = 20,
/// cbCFFolder = 0, cbCFData = 0, then the reserve `00 00 10 00`, the signature's offset and
/// length (filled in by [`CabFile::parse`] and [`CabFile::embed`]) and eight zero bytes.
const SIGNATURE_RESERVE: [u8; INSERTED] = [
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// A parsed, unsigned CAB file, already laid out as it will be once signed (see the module
/// documentation); only the signature and its length are missing.
#[derive(Debug, Clone)]
pub struct CabFile {
    data: Vec<u8>,
}

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn malformed(what: impl Into<String>) -> CabError {
    CabError::Malformed(what.into())
}

impl CabFile {
    /// Parses a CAB file, refusing anything signed or malformed, and prepares it for signing.
    pub fn parse(data: Vec<u8>) -> Result<CabFile, CabError> {
        if data.get(0..4) != Some(b"MSCF") {
            return Err(CabError::NotCab("no MSCF signature".into()));
        }
        if data.len() < HEADER {
            return Err(malformed(format!(
                "{} bytes is shorter than a cabinet header ({HEADER} bytes)",
                data.len()
            )));
        }
        let field32 = |off: usize| u32_at(&data, off).ok_or_else(|| malformed("truncated header"));
        let field16 = |off: usize| u16_at(&data, off).ok_or_else(|| malformed("truncated header"));
        if field32(4)? != 0 {
            return Err(malformed("reserved1 is not zero"));
        }
        let (minor, major) = (data[24], data[25]);
        if major != 1 {
            return Err(CabError::Unsupported(format!(
                "cabinet format version {major}.{minor} (expected 1.3)"
            )));
        }
        let flags = field16(30)?;
        if flags & FLAG_RESERVE_PRESENT != 0 {
            // A signature lives in a 20-byte per-cabinet reserve with no per-folder or
            // per-block reserve; that and a non-zero offset and length make a signed cabinet.
            let reserve = u32_at(&data, 36);
            let marker = u32_at(&data, 40);
            let sig_len = u32_at(&data, SIG_LEN_AT).unwrap_or(0);
            let sig_off = u32_at(&data, SIG_OFFSET_AT).unwrap_or(0);
            if reserve == Some(20) && marker == Some(0x0010_0000) && sig_off != 0 && sig_len != 0 {
                return Err(CabError::AlreadySigned(sig_len));
            }
            return Err(CabError::Unsupported(
                "the cabinet has a reserve area (cfhdrRESERVE_PRESENT) that holds no signature; \
                 only cabinets without one can be signed"
                    .into(),
            ));
        }
        if flags & (FLAG_PREV_CABINET | FLAG_NEXT_CABINET) != 0 {
            return Err(CabError::Unsupported(
                "multi-volume cabinet (it names a previous or next cabinet)".into(),
            ));
        }
        if flags & !(FLAG_PREV_CABINET | FLAG_NEXT_CABINET | FLAG_RESERVE_PRESENT) != 0 {
            return Err(CabError::Unsupported(format!(
                "unknown header flags {flags:#06x}"
            )));
        }
        let cb_cabinet = field32(8)?;
        if usize::try_from(cb_cabinet).ok() != Some(data.len()) {
            return Err(malformed(format!(
                "cbCabinet says {cb_cabinet} bytes but the file has {}",
                data.len()
            )));
        }
        let new_len = data
            .len()
            .checked_add(INSERTED)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(CabError::TooLarge)?;
        let folders = usize::from(field16(26)?);
        let coff_files = field32(16)?;
        let folders_end = HEADER + folders * FOLDER;
        if usize::try_from(coff_files).ok() != Some(folders_end) {
            return Err(malformed(format!(
                "coffFiles is {coff_files}, but the {folders} folder entries end at {folders_end}"
            )));
        }
        if folders_end > data.len() {
            return Err(malformed("the folder entries run past the end of the file"));
        }

        let mut out = Vec::with_capacity(data.len() + INSERTED);
        out.extend_from_slice(&data[..HEADER]);
        out.extend_from_slice(&SIGNATURE_RESERVE);
        out[8..12].copy_from_slice(&new_len.to_le_bytes());
        out[16..20].copy_from_slice(&(coff_files + INSERTED as u32).to_le_bytes());
        out[30..32].copy_from_slice(&(flags | FLAG_RESERVE_PRESENT).to_le_bytes());
        out[SIG_OFFSET_AT..SIG_OFFSET_AT + 4].copy_from_slice(&new_len.to_le_bytes());
        for i in 0..folders {
            let at = HEADER + i * FOLDER;
            let start = u32_at(&data, at).ok_or_else(|| malformed("truncated folder entry"))?;
            if start < coff_files || start > cb_cabinet {
                return Err(malformed(format!(
                    "folder {i} starts at {start}, outside the cabinet's data ({coff_files}..{cb_cabinet})"
                )));
            }
            // start <= cb_cabinet, and cb_cabinet + INSERTED fits in a u32.
            out.extend_from_slice(&(start + INSERTED as u32).to_le_bytes());
            out.extend_from_slice(&data[at + 4..at + FOLDER]);
        }
        out.extend_from_slice(&data[folders_end..]);
        Ok(CabFile { data: out })
    }

    /// Parses a signed cabinet (for verification): the cabinet without its signature, as its
    /// digest sees it, and the PKCS#7 appended after it.
    pub fn parse_signed(data: Vec<u8>) -> Result<(CabFile, Vec<u8>), CabError> {
        if data.get(0..4) != Some(b"MSCF") {
            return Err(CabError::NotCab("no MSCF signature".into()));
        }
        let flags = u16_at(&data, 30).ok_or_else(|| malformed("truncated header"))?;
        let signed = flags & FLAG_RESERVE_PRESENT != 0
            && u32_at(&data, 36) == Some(20)
            && u32_at(&data, 40) == Some(0x0010_0000);
        let off = u32_at(&data, SIG_OFFSET_AT).unwrap_or(0) as usize;
        let len = u32_at(&data, SIG_LEN_AT).unwrap_or(0) as usize;
        if !signed || off == 0 || len == 0 {
            return Err(malformed("the cabinet is not signed"));
        }
        let sig = data
            .get(off..off.checked_add(len).ok_or(CabError::TooLarge)?)
            .ok_or_else(|| malformed("the signature lies outside the file"))?;
        if off < 56 || u32_at(&data, 8).map(|n| n as usize) != Some(off) {
            return Err(malformed("cbCabinet is not the signature's offset"));
        }
        let pkcs7 = crate::der::read_tlv(sig)
            .map_err(|e| malformed(format!("the signature: {e}")))?
            .whole
            .to_vec();
        Ok((
            CabFile {
                data: data[..off].to_vec(),
            },
            pkcs7,
        ))
    }

    /// The Authenticode CAB digest: the prepared file without reserved1 and bytes 34..56
    /// (iCabinet, the reserve sizes and the signature's offset and length).
    pub fn digest(&self, hash: HashAlg) -> Vec<u8> {
        let d = &self.data;
        let mut h = Hasher::new(hash);
        h.update(&d[..4]);
        h.update(&d[8..34]);
        h.update(&d[56..]);
        h.finish()
    }

    /// Appends `pkcs7` (DER ContentInfo) zero-padded to 8 bytes and records its padded length
    /// in the reserve; returns the signed cabinet.
    pub fn embed(mut self, pkcs7: &[u8]) -> Result<Vec<u8>, CabError> {
        let padded = pkcs7.len().div_ceil(8) * 8;
        let len = u32::try_from(padded).map_err(|_| CabError::TooLarge)?;
        let total = self
            .data
            .len()
            .checked_add(padded)
            .ok_or(CabError::TooLarge)?;
        u32::try_from(total).map_err(|_| CabError::TooLarge)?;
        self.data.extend_from_slice(pkcs7);
        self.data.resize(total, 0);
        self.data[SIG_LEN_AT..SIG_LEN_AT + 4].copy_from_slice(&len.to_le_bytes());
        Ok(self.data)
    }
}

/// The DER SpcIndirectDataContent for a CAB digest:
/// `SEQUENCE { SEQUENCE { SPC_CAB_DATA_OBJID, SpcLink [2] { [0] "<<<Obsolete>>>" } },
/// DigestInfo }`, as signtool and osslsigncode write it.
pub fn spc_indirect_data(hash: HashAlg, digest: &[u8]) -> Vec<u8> {
    indirect_data_content(SPC_CAB_DATA, &obsolete_file_link(), hash, digest)
}

impl Signable for CabFile {
    fn kind(&self) -> &'static str {
        "CAB"
    }
    fn digest(&self, hash: HashAlg) -> Result<Vec<u8>, AuthenticodeError> {
        Ok(CabFile::digest(self, hash))
    }
    fn indirect_data(&self, hash: HashAlg, digest: &[u8]) -> Vec<u8> {
        spc_indirect_data(hash, digest)
    }
    fn embed(self: Box<Self>, pkcs7: &[u8]) -> Result<Vec<u8>, AuthenticodeError> {
        Ok(CabFile::embed(*self, pkcs7)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal uncompressed cabinet without reserve: one folder per payload, each holding one
    /// file stored in one CFDATA block (checksum 0, which means "not checked").
    fn tiny_cab(payloads: &[&[u8]]) -> Vec<u8> {
        let n = payloads.len();
        let coff_files = HEADER + n * FOLDER;
        let files: Vec<Vec<u8>> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut f = Vec::new();
                f.extend_from_slice(&(p.len() as u32).to_le_bytes());
                f.extend_from_slice(&0u32.to_le_bytes());
                f.extend_from_slice(&(i as u16).to_le_bytes());
                f.extend_from_slice(&[0x21, 0x5b, 0x00, 0x60, 0x20, 0x00]);
                f.extend_from_slice(format!("f{i}.txt\0").as_bytes());
                f
            })
            .collect();
        let mut data_at = coff_files + files.iter().map(Vec::len).sum::<usize>();
        let mut folders = Vec::new();
        let mut blocks = Vec::new();
        for p in payloads {
            folders.extend_from_slice(&(data_at as u32).to_le_bytes());
            folders.extend_from_slice(&1u16.to_le_bytes());
            folders.extend_from_slice(&0u16.to_le_bytes());
            let mut b = vec![0u8; 4];
            b.extend_from_slice(&(p.len() as u16).to_le_bytes());
            b.extend_from_slice(&(p.len() as u16).to_le_bytes());
            b.extend_from_slice(p);
            data_at += b.len();
            blocks.extend_from_slice(&b);
        }
        let mut d = Vec::new();
        d.extend_from_slice(b"MSCF");
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&(data_at as u32).to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&(coff_files as u32).to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&[3, 1]);
        d.extend_from_slice(&(n as u16).to_le_bytes());
        d.extend_from_slice(&(n as u16).to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes());
        d.extend_from_slice(&0x1234u16.to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes());
        d.extend_from_slice(&folders);
        for f in &files {
            d.extend_from_slice(f);
        }
        d.extend_from_slice(&blocks);
        assert_eq!(d.len(), data_at);
        d
    }

    #[test]
    fn prepares_the_reserve_and_shifts_offsets() {
        let orig = tiny_cab(&[b"hello", b"world!"]);
        let cab = CabFile::parse(orig.clone()).unwrap();
        let d = &cab.data;
        assert_eq!(d.len(), orig.len() + 24);
        assert_eq!(u32_at(d, 8), Some(d.len() as u32));
        assert_eq!(u32_at(d, 16), u32_at(&orig, 16).map(|v| v + 24));
        assert_eq!(u16_at(d, 30), Some(FLAG_RESERVE_PRESENT));
        assert_eq!(u32_at(d, 36), Some(20));
        assert_eq!(u32_at(d, 40), Some(0x0010_0000));
        assert_eq!(u32_at(d, SIG_OFFSET_AT), Some(d.len() as u32));
        assert_eq!(u32_at(d, SIG_LEN_AT), Some(0));
        for i in 0..2 {
            let (new, old) = (60 + 8 * i, 36 + 8 * i);
            assert_eq!(u32_at(d, new), u32_at(&orig, old).map(|v| v + 24));
            assert_eq!(d[new + 4..new + 8], orig[old + 4..old + 8]);
        }
        // Everything after the folder entries moves by 24 bytes unchanged.
        assert_eq!(d[76..], orig[52..]);
        // The folders point at their CFDATA blocks in the prepared file.
        let first = u32_at(d, 60).unwrap() as usize;
        assert_eq!(&d[first + 8..first + 13], b"hello");
    }

    #[test]
    fn digest_skips_the_signature_fields_and_embed_pads() {
        let cab = CabFile::parse(tiny_cab(&[b"payload"])).unwrap();
        let d1 = cab.digest(HashAlg::Sha256);
        assert_eq!(cab.digest(HashAlg::Sha384).len(), 48);
        let sig = [0x30, 0x03, 0x02, 0x01, 0x01];
        let signed = cab.clone().embed(&sig).unwrap();
        let n = cab.data.len();
        assert_eq!(signed.len(), n + 8);
        assert_eq!(&signed[n..n + 5], &sig);
        assert_eq!(&signed[n + 5..], &[0, 0, 0]);
        assert_eq!(u32_at(&signed, SIG_LEN_AT), Some(8));
        assert_eq!(u32_at(&signed, 8), Some(n as u32));
        // Changing only the skipped fields keeps the digest.
        let mut other = cab.clone();
        other.data[SIG_LEN_AT] = 0x55;
        other.data[34] = 7;
        other.data[5] = 1;
        assert_eq!(other.digest(HashAlg::Sha256), d1);
        // Changing anything else does not.
        let mut other = cab.clone();
        let last = other.data.len() - 1;
        other.data[last] ^= 1;
        assert_ne!(other.digest(HashAlg::Sha256), d1);
        // A signed cabinet is refused.
        assert_eq!(
            CabFile::parse(signed).unwrap_err(),
            CabError::AlreadySigned(8)
        );
    }

    #[test]
    fn refuses_bad_input() {
        let good = tiny_cab(&[b"abc"]);
        // Every truncation is an error, never a panic.
        for n in 0..good.len() {
            assert!(CabFile::parse(good[..n].to_vec()).is_err(), "length {n}");
        }
        assert!(matches!(
            CabFile::parse(b"PK\x03\x04".to_vec()),
            Err(CabError::NotCab(_))
        ));
        let with = |at: usize, bytes: &[u8]| {
            let mut d = good.clone();
            d[at..at + bytes.len()].copy_from_slice(bytes);
            CabFile::parse(d).unwrap_err()
        };
        assert!(matches!(with(30, &[1, 0]), CabError::Unsupported(_)));
        assert!(matches!(with(30, &[2, 0]), CabError::Unsupported(_)));
        assert!(matches!(with(30, &[4, 0]), CabError::Unsupported(_)));
        assert!(matches!(with(4, &[1]), CabError::Malformed(_)));
        assert!(matches!(with(25, &[2]), CabError::Unsupported(_)));
        assert!(matches!(with(16, &[0xff, 0xff]), CabError::Malformed(_)));
        assert!(matches!(with(26, &[0xff, 0xff]), CabError::Malformed(_)));
        assert!(matches!(
            with(36, &[0xff, 0xff, 0xff, 0xff]),
            CabError::Malformed(_)
        ));
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(
            CabFile::parse(longer),
            Err(CabError::Malformed(_))
        ));
        // Garbage after the magic.
        let mut junk = b"MSCF".to_vec();
        junk.extend((0..200u32).map(|i| (i * 37 % 256) as u8));
        assert!(CabFile::parse(junk).is_err());
    }

    #[test]
    fn spc_content_names_the_cab_type() {
        let spc = spc_indirect_data(HashAlg::Sha256, &[7u8; 32]);
        let t = crate::der::read_tlv(&spc).unwrap();
        assert_eq!((t.tag, t.rest.len()), (0x30, 0));
        let data = crate::der::read_tlv(t.contents).unwrap();
        let oid = crate::der::read_tlv(data.contents).unwrap();
        assert_eq!(oid.whole, crate::der::oid(SPC_CAB_DATA));
        assert_eq!(oid.rest, obsolete_file_link());
    }
}
