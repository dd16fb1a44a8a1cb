//! MCUboot images (the layout imgtool 2.5 writes and MCUboot's bootloader checks): a 32-byte
//! header, the firmware, an optional protected TLV area (security counter) and the TLV area with
//! the image hash, the hash of the signing key's public key and the ECDSA signature.
//!
//! The image digest covers header + firmware + protected TLVs; the signing service signs that
//! digest (its `raw` format: a DER ECDSA signature), and [`Unsigned::finish`] appends the
//! unprotected TLVs. Everything is little endian. ECDSA only: P-256 with SHA-256 (TLV 0x10) and
//! P-384 with SHA-384 (TLV 0x11), both with the DER signature in TLV `ECDSASIG` (0x22) as imgtool
//! writes it. MCUboot's RSA signatures are RSA-PSS, which the service's `raw` format does not
//! make; Ed25519 signs whole messages, not digests.

use crate::algorithm::HashAlg;

pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;
pub const IMAGE_HEADER_SIZE: usize = 32;
pub const TLV_INFO_MAGIC: u16 = 0x6907;
pub const TLV_PROT_INFO_MAGIC: u16 = 0x6908;

const TLV_KEYHASH: u8 = 0x01;
const TLV_PUBKEY: u8 = 0x02;
const TLV_SHA256: u8 = 0x10;
const TLV_SHA384: u8 = 0x11;
const TLV_ECDSASIG: u8 = 0x22;
const TLV_SEC_CNT: u8 = 0x50;

const F_RAM_LOAD: u32 = 0x20;
const F_ROM_FIXED: u32 = 0x100;

/// The trailer magic for a maximum flash alignment of 8 (imgtool's default).
const BOOT_MAGIC: [u8; 16] = [
    0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80,
];
const DEFAULT_MAX_ALIGN: u32 = 8;
const ERASED: u8 = 0xff;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum McubootError {
    #[error("invalid version '{0}': MCUboot versions are MAJOR[.MINOR[.REVISION[+BUILD]]] with MAJOR and MINOR at most 255, REVISION at most 65535, BUILD at most 4294967295, no leading zeros")]
    BadVersion(String),
    #[error(
        "header size {0:#x} is too small: an MCUboot header takes {IMAGE_HEADER_SIZE:#x} bytes"
    )]
    HeaderTooSmall(usize),
    #[error("header size {0:#x} does not fit MCUboot's 16-bit header size field")]
    HeaderTooLarge(usize),
    #[error("the first {0:#x} bytes of the firmware are not all zero: they would be overwritten by the header; build the firmware with room for the header, or use --pad-header")]
    HeaderNotEmpty(usize),
    #[error(
        "the firmware ({len} bytes) is shorter than the header size {header:#x}; use --pad-header"
    )]
    TooShort { len: usize, header: usize },
    #[error("the image is too large ({0} bytes) for MCUboot's 32-bit image size")]
    TooLarge(usize),
    #[error("--align must be 1, 2, 4, 8, 16 or 32, not {0}")]
    BadAlign(u32),
    #[error("--load-addr and --rom-fixed cannot be used together")]
    LoadAndRomFixed,
    #[error("--pad and --confirm need --slot-size")]
    PadWithoutSlot,
    #[error(
        "image ({image:#x} bytes) + trailer ({trailer:#x} bytes) exceeds the slot size {slot:#x}"
    )]
    SlotTooSmall {
        image: usize,
        trailer: usize,
        slot: usize,
    },
    #[error(
        "MCUboot images are signed with SHA-256 (P-256 keys) or SHA-384 (P-384 keys), not SHA-512"
    )]
    UnsupportedHash,
    #[error("the signing key is {0}; MCUboot images are signed here with ECDSA P-256 (SHA-256) or P-384 (SHA-384) keys only")]
    UnsupportedKey(String),
    #[error("the {key} key needs {needs} image hashes, this image was hashed with {got}")]
    HashMismatch {
        key: &'static str,
        needs: &'static str,
        got: &'static str,
    },
    #[error("a TLV of {0} bytes does not fit MCUboot's 16-bit TLV length")]
    TlvTooLong(usize),
    #[error("the signature is not a DER ECDSA signature")]
    BadSignature,
}

/// An image version: `major.minor.revision+build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    pub revision: u16,
    pub build: u32,
}

impl std::str::FromStr for Version {
    type Err = McubootError;

    /// Parses as imgtool does: `^(0|[1-9]\d*)(\.(0|[1-9]\d*)(\.(0|[1-9]\d*)(\+(0|[1-9]\d*))?)?)?$`,
    /// and refuses numbers that do not fit their fields (imgtool would fail to pack them).
    fn from_str(s: &str) -> Result<Version, McubootError> {
        let bad = || McubootError::BadVersion(s.to_string());
        fn number(p: &str) -> Option<u64> {
            let ok = !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0'));
            if ok {
                p.parse().ok()
            } else {
                None
            }
        }
        let (main, build) = match s.split_once('+') {
            Some((m, b)) => (m, Some(b)),
            None => (s, None),
        };
        let parts: Vec<&str> = main.split('.').collect();
        // "+build" only after a full major.minor.revision.
        if parts.len() > 3 || (build.is_some() && parts.len() != 3) {
            return Err(bad());
        }
        let mut n = [0u64; 4];
        for (i, p) in parts.iter().enumerate() {
            n[i] = number(p).ok_or_else(bad)?;
        }
        if let Some(b) = build {
            n[3] = number(b).ok_or_else(bad)?;
        }
        Ok(Version {
            major: u8::try_from(n[0]).map_err(|_| bad())?,
            minor: u8::try_from(n[1]).map_err(|_| bad())?,
            revision: u16::try_from(n[2]).map_err(|_| bad())?,
            build: u32::try_from(n[3]).map_err(|_| bad())?,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}.{}+{}",
            self.major, self.minor, self.revision, self.build
        )
    }
}

/// How the key appears in the image: its hash (imgtool's default) or the whole key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublicKeyFormat {
    #[default]
    Hash,
    Full,
}

/// What imgtool's `sign` options say about the image.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    pub version: Version,
    /// Bytes reserved for the header (at least 32).
    pub header_size: usize,
    /// Prepend `header_size` erased (0xff) bytes; otherwise the firmware's first `header_size`
    /// bytes must be zero (imgtool's rule).
    pub pad_header: bool,
    /// RAM load address; non-zero sets the RAM_LOAD flag.
    pub load_addr: u32,
    /// Flash address the image is built for (ROM_FIXED flag).
    pub rom_fixed: Option<u32>,
    /// A protected security counter TLV.
    pub security_counter: Option<u32>,
    /// Slot size: the image plus its trailer must fit.
    pub slot_size: Option<usize>,
    /// Flash write alignment (1, 2, 4, 8, 16 or 32), for the trailer's size.
    pub align: u32,
    /// Sectors the swap status area allows for (imgtool's default: 128).
    pub max_sectors: u32,
    /// Pad the image to the slot size with the trailer magic at its end.
    pub pad: bool,
    /// Mark a padded image confirmed (image_ok = 1); implies `pad`.
    pub confirm: bool,
    /// SHA-256 for P-256 keys, SHA-384 for P-384 keys.
    pub hash: HashAlg,
    pub public_key_format: PublicKeyFormat,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            version: Version::default(),
            header_size: IMAGE_HEADER_SIZE,
            pad_header: false,
            load_addr: 0,
            rom_fixed: None,
            security_counter: None,
            slot_size: None,
            align: 1,
            max_sectors: 128,
            pad: false,
            confirm: false,
            hash: HashAlg::Sha256,
            public_key_format: PublicKeyFormat::Hash,
        }
    }
}

impl ImageOptions {
    /// The security counter imgtool's `--security-counter auto` derives from the version.
    pub fn auto_security_counter(v: Version) -> u32 {
        (u32::from(v.major) << 24) + (u32::from(v.minor) << 16) + u32::from(v.revision)
    }

    fn max_align(&self) -> u32 {
        self.align.max(DEFAULT_MAX_ALIGN)
    }

    fn boot_magic(&self) -> [u8; 16] {
        let m = self.max_align();
        if m == DEFAULT_MAX_ALIGN {
            return BOOT_MAGIC;
        }
        let mut b = [
            0, 0, 0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f,
            0x8a,
        ];
        b[..2].copy_from_slice(&(m as u16).to_le_bytes());
        b
    }

    /// The swap trailer's size (imgtool `_trailer_size`, unencrypted images).
    pub fn trailer_size(&self) -> usize {
        let max_align = self.max_align() as usize;
        let magic_align = 16usize.div_ceil(max_align) * max_align;
        self.max_sectors as usize * 3 * self.align as usize + max_align * 4 + magic_align
    }

    fn check(&self) -> Result<(), McubootError> {
        if self.header_size < IMAGE_HEADER_SIZE {
            return Err(McubootError::HeaderTooSmall(self.header_size));
        }
        if self.header_size > usize::from(u16::MAX) {
            return Err(McubootError::HeaderTooLarge(self.header_size));
        }
        if ![1, 2, 4, 8, 16, 32].contains(&self.align) {
            return Err(McubootError::BadAlign(self.align));
        }
        if self.load_addr != 0 && self.rom_fixed.is_some_and(|a| a != 0) {
            return Err(McubootError::LoadAndRomFixed);
        }
        if (self.pad || self.confirm) && self.slot_size.is_none() {
            return Err(McubootError::PadWithoutSlot);
        }
        if self.hash == HashAlg::Sha512 {
            return Err(McubootError::UnsupportedHash);
        }
        Ok(())
    }
}

fn hash_tlv(h: HashAlg) -> u8 {
    match h {
        HashAlg::Sha384 => TLV_SHA384,
        _ => TLV_SHA256,
    }
}

fn hash_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "SHA-256",
        HashAlg::Sha384 => "SHA-384",
        HashAlg::Sha512 => "SHA-512",
    }
}

fn push_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) -> Result<(), McubootError> {
    let len = u16::try_from(value.len()).map_err(|_| McubootError::TlvTooLong(value.len()))?;
    out.extend_from_slice(&[kind, 0]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// A TLV area: its info header (magic, total length including the header) and the TLVs.
fn tlv_area(magic: u16, body: &[u8]) -> Result<Vec<u8>, McubootError> {
    let total = u16::try_from(body.len() + 4).map_err(|_| McubootError::TlvTooLong(body.len()))?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// An image up to its protected TLVs: what the image hash covers.
#[derive(Debug, Clone)]
pub struct Unsigned {
    /// Header + firmware + protected TLV area.
    hashed: Vec<u8>,
    opts: ImageOptions,
}

/// Builds the header (and protected TLVs) around the firmware, as imgtool `sign` does.
pub fn prepare(firmware: &[u8], opts: &ImageOptions) -> Result<Unsigned, McubootError> {
    opts.check()?;
    let hs = opts.header_size;
    let mut image = Vec::with_capacity(firmware.len() + hs + 64);
    if opts.pad_header {
        image.resize(hs, ERASED);
        image.extend_from_slice(firmware);
    } else {
        if firmware.len() < hs {
            return Err(McubootError::TooShort {
                len: firmware.len(),
                header: hs,
            });
        }
        if firmware[..hs].iter().any(|&b| b != 0) {
            return Err(McubootError::HeaderNotEmpty(hs));
        }
        image.extend_from_slice(firmware);
    }
    let image_size =
        u32::try_from(image.len() - hs).map_err(|_| McubootError::TooLarge(image.len()))?;

    let mut prot = Vec::new();
    if let Some(c) = opts.security_counter {
        push_tlv(&mut prot, TLV_SEC_CNT, &c.to_le_bytes())?;
    }
    let prot = if prot.is_empty() {
        Vec::new()
    } else {
        tlv_area(TLV_PROT_INFO_MAGIC, &prot)?
    };
    let prot_size = u16::try_from(prot.len()).map_err(|_| McubootError::TlvTooLong(prot.len()))?;

    let mut flags = 0u32;
    if opts.load_addr != 0 {
        flags |= F_RAM_LOAD;
    }
    let rom_fixed = opts.rom_fixed.filter(|&a| a != 0);
    if rom_fixed.is_some() {
        flags |= F_ROM_FIXED;
    }
    let v = opts.version;
    let mut h = Vec::with_capacity(IMAGE_HEADER_SIZE);
    h.extend_from_slice(&IMAGE_MAGIC.to_le_bytes());
    h.extend_from_slice(&rom_fixed.unwrap_or(opts.load_addr).to_le_bytes());
    h.extend_from_slice(&(hs as u16).to_le_bytes());
    h.extend_from_slice(&prot_size.to_le_bytes());
    h.extend_from_slice(&image_size.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.push(v.major);
    h.push(v.minor);
    h.extend_from_slice(&v.revision.to_le_bytes());
    h.extend_from_slice(&v.build.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    debug_assert_eq!(h.len(), IMAGE_HEADER_SIZE);
    image[..IMAGE_HEADER_SIZE].copy_from_slice(&h);
    image.extend_from_slice(&prot);
    let unsigned = Unsigned {
        hashed: image,
        opts: opts.clone(),
    };
    // Refuse before anything is signed when even an empty signature would not fit; the exact
    // check (with the signature's real length) is in `finish`.
    if let Some(slot) = opts.slot_size {
        let image = unsigned.len_without_signature();
        let trailer = opts.trailer_size();
        if image + trailer > slot {
            return Err(McubootError::SlotTooSmall {
                image,
                trailer,
                slot,
            });
        }
    }
    Ok(unsigned)
}

/// Which hash a key's images use, from its SubjectPublicKeyInfo; refuses anything but ECDSA
/// P-256 and P-384.
pub fn hash_for_key(spki_der: &[u8]) -> Result<HashAlg, McubootError> {
    use crate::spki::{key_of, KeyKind};
    let refused = |what: &str| Err(McubootError::UnsupportedKey(what.to_string()));
    match key_of(spki_der) {
        Ok((KeyKind::P256, _)) => Ok(HashAlg::Sha256),
        Ok((KeyKind::P384, _)) => Ok(HashAlg::Sha384),
        Ok((KeyKind::Rsa, _)) => refused("an RSA key (MCUboot signs RSA images with RSA-PSS, which the signing service's raw format does not make)"),
        Ok((KeyKind::Ed25519, _)) => refused("an Ed25519 key (it signs whole messages, not digests)"),
        Ok((KeyKind::P521, _)) => refused("an EC key on curve P-521"),
        Err(e) => Err(McubootError::UnsupportedKey(e)),
    }
}

impl Unsigned {
    /// The region the image hash covers (header, firmware, protected TLVs).
    pub fn hashed_region(&self) -> &[u8] {
        &self.hashed
    }

    pub fn hash_algorithm(&self) -> HashAlg {
        self.opts.hash
    }

    /// The signed image's length less the signature bytes: hashed region, TLV info, hash TLV,
    /// key TLV (a hash, or a SubjectPublicKeyInfo of the curve the hash implies), signature TLV
    /// header.
    fn len_without_signature(&self) -> usize {
        let h = self.opts.hash.output_len();
        let key = match (self.opts.public_key_format, self.opts.hash) {
            (PublicKeyFormat::Hash, _) => h,
            (PublicKeyFormat::Full, HashAlg::Sha384) => 120,
            (PublicKeyFormat::Full, _) => 91,
        };
        self.hashed.len() + 4 + (4 + h) + (4 + key) + 4
    }

    /// The image hash: what the key signs.
    pub fn digest(&self) -> Vec<u8> {
        self.opts.hash.digest(&self.hashed)
    }

    /// Appends the TLV area (image hash, key hash or key, signature) and, with `pad`, the slot
    /// padding and trailer. `spki_der` is the signing key's SubjectPublicKeyInfo (what imgtool
    /// hashes for KEYHASH), `signature` its DER ECDSA signature over [`Unsigned::digest`].
    pub fn finish(self, spki_der: &[u8], signature: &[u8]) -> Result<Vec<u8>, McubootError> {
        let needs = hash_for_key(spki_der)?;
        if needs != self.opts.hash {
            return Err(McubootError::HashMismatch {
                key: if needs == HashAlg::Sha384 {
                    "P-384"
                } else {
                    "P-256"
                },
                needs: hash_name(needs),
                got: hash_name(self.opts.hash),
            });
        }
        check_der_ecdsa(signature)?;
        let digest = self.digest();
        let mut body = Vec::new();
        push_tlv(&mut body, hash_tlv(self.opts.hash), &digest)?;
        match self.opts.public_key_format {
            PublicKeyFormat::Hash => {
                push_tlv(&mut body, TLV_KEYHASH, &self.opts.hash.digest(spki_der))?
            }
            PublicKeyFormat::Full => push_tlv(&mut body, TLV_PUBKEY, spki_der)?,
        }
        push_tlv(&mut body, TLV_ECDSASIG, signature)?;
        let mut image = self.hashed;
        image.extend_from_slice(&tlv_area(TLV_INFO_MAGIC, &body)?);

        let o = &self.opts;
        if let Some(slot) = o.slot_size {
            let trailer = o.trailer_size();
            if image.len() + trailer > slot {
                return Err(McubootError::SlotTooSmall {
                    image: image.len(),
                    trailer,
                    slot,
                });
            }
            if o.pad || o.confirm {
                let start = image.len();
                image.resize(slot, ERASED);
                let magic = o.boot_magic();
                let end = image.len();
                image[end - magic.len()..].copy_from_slice(&magic);
                if o.confirm {
                    let max_align = o.max_align() as usize;
                    let magic_align = 16usize.div_ceil(max_align) * max_align;
                    let idx = end - (magic_align + max_align);
                    debug_assert!(idx >= start);
                    image[idx] = 0x01;
                }
            }
        }
        Ok(image)
    }
}

/// A DER `Ecdsa-Sig-Value`: SEQUENCE of two INTEGERs, nothing after.
fn check_der_ecdsa(sig: &[u8]) -> Result<(), McubootError> {
    use crate::der::read_tlv;
    let bad = |_| McubootError::BadSignature;
    let seq = read_tlv(sig).map_err(bad)?;
    if seq.tag != 0x30 || !seq.rest.is_empty() {
        return Err(McubootError::BadSignature);
    }
    let r = read_tlv(seq.contents).map_err(bad)?;
    let s = read_tlv(r.rest).map_err(bad)?;
    if r.tag != 0x02 || s.tag != 0x02 || !s.rest.is_empty() {
        return Err(McubootError::BadSignature);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Result<Version, McubootError> {
        s.parse()
    }

    #[test]
    fn versions_parse_like_imgtool() {
        assert_eq!(
            v("1.2.3").unwrap(),
            Version {
                major: 1,
                minor: 2,
                revision: 3,
                build: 0
            }
        );
        assert_eq!(v("1.2.3+4").unwrap().build, 4);
        assert_eq!(v("7").unwrap().major, 7);
        assert_eq!(v("0.9").unwrap().minor, 9);
        assert_eq!(v("255.255.65535+4294967295").unwrap().build, u32::MAX);
        for bad in [
            "",
            "1.",
            "1..2",
            "01.2.3",
            "1.2.3.4",
            "1.2+5",
            "a.b.c",
            "256.0.0",
            "1.256.0",
            "1.2.65536",
            "1.2.3+4294967296",
            "1.2.3+",
            "-1.2.3",
            " 1.2.3",
            "1.2.3 ",
        ] {
            assert!(v(bad).is_err(), "{bad:?} should be refused");
        }
    }

    fn fw(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn header_fields() {
        let opts = ImageOptions {
            version: v("1.2.3+4").unwrap(),
            header_size: 0x200,
            pad_header: true,
            security_counter: Some(0x0102_0003),
            ..Default::default()
        };
        let u = prepare(&fw(1000), &opts).unwrap();
        let b = u.hashed_region();
        assert_eq!(&b[0..4], &IMAGE_MAGIC.to_le_bytes());
        assert_eq!(&b[4..8], &[0; 4]);
        assert_eq!(&b[8..10], &0x200u16.to_le_bytes());
        assert_eq!(&b[10..12], &12u16.to_le_bytes()); // info 4 + TLV 4 + counter 4
        assert_eq!(&b[12..16], &1000u32.to_le_bytes());
        assert_eq!(&b[16..20], &[0; 4]);
        assert_eq!(&b[20..28], &[1, 2, 3, 0, 4, 0, 0, 0]);
        assert_eq!(&b[28..32], &[0; 4]);
        assert!(b[32..0x200].iter().all(|&x| x == 0xff));
        assert_eq!(&b[0x200..0x200 + 1000], &fw(1000)[..]);
        assert_eq!(
            &b[0x200 + 1000..],
            &[0x08, 0x69, 12, 0, 0x50, 0, 4, 0, 0x03, 0x00, 0x02, 0x01]
        );
    }

    #[test]
    fn header_rules() {
        let opts = ImageOptions {
            header_size: 16,
            ..Default::default()
        };
        assert_eq!(
            prepare(&fw(100), &opts).unwrap_err(),
            McubootError::HeaderTooSmall(16)
        );
        let opts = ImageOptions {
            header_size: 0x20,
            ..Default::default()
        };
        // Without --pad-header the header area must be zero.
        assert_eq!(
            prepare(&fw(100), &opts).unwrap_err(),
            McubootError::HeaderNotEmpty(0x20)
        );
        let mut zeroed = vec![0u8; 0x20];
        zeroed.extend(fw(100));
        let u = prepare(&zeroed, &opts).unwrap();
        assert_eq!(&u.hashed_region()[12..16], &100u32.to_le_bytes());
        assert_eq!(u.hashed_region().len(), 0x20 + 100);
        let opts = ImageOptions {
            load_addr: 0x2000_0000,
            rom_fixed: Some(0x1000),
            pad_header: true,
            ..Default::default()
        };
        assert_eq!(
            prepare(&fw(10), &opts).unwrap_err(),
            McubootError::LoadAndRomFixed
        );
        let opts = ImageOptions {
            load_addr: 0x2000_0000,
            pad_header: true,
            ..Default::default()
        };
        let u = prepare(&fw(10), &opts).unwrap();
        assert_eq!(&u.hashed_region()[4..8], &0x2000_0000u32.to_le_bytes());
        assert_eq!(&u.hashed_region()[16..20], &F_RAM_LOAD.to_le_bytes());
    }

    #[test]
    fn trailer_sizes_match_imgtool() {
        // imgtool: 128 sectors * 3 * align + max_align * 4 + align_up(16, max_align).
        let t = |align| {
            ImageOptions {
                align,
                ..Default::default()
            }
            .trailer_size()
        };
        assert_eq!(t(1), 128 * 3 + 32 + 16);
        assert_eq!(t(8), 128 * 3 * 8 + 32 + 16);
        assert_eq!(t(32), 128 * 3 * 32 + 128 + 32);
    }

    fn p256_key() -> (Vec<u8>, aws_lc_rs::signature::EcdsaKeyPair) {
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let p8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, p8.as_ref()).unwrap();
        // SPKI for P-256: fixed prefix + the uncompressed point.
        let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        spki.extend_from_slice(kp.public_key().as_ref());
        (spki, kp)
    }

    #[test]
    fn finished_images_carry_hash_keyhash_and_signature() {
        let (spki, kp) = p256_key();
        let opts = ImageOptions {
            version: v("1.0.0").unwrap(),
            header_size: 0x100,
            pad_header: true,
            slot_size: Some(0x4000),
            pad: true,
            confirm: true,
            ..Default::default()
        };
        let u = prepare(&fw(5000), &opts).unwrap();
        let digest = u.digest();
        let hashed_len = u.hashed_region().len();
        let d = aws_lc_rs::digest::Digest::import_less_safe(&digest, &aws_lc_rs::digest::SHA256)
            .unwrap();
        let sig = kp.sign_digest(&d).unwrap();
        let img = u.finish(&spki, sig.as_ref()).unwrap();
        assert_eq!(img.len(), 0x4000);
        let tlvs = &img[hashed_len..];
        assert_eq!(&tlvs[0..2], &TLV_INFO_MAGIC.to_le_bytes());
        let total = u16::from_le_bytes([tlvs[2], tlvs[3]]) as usize;
        assert_eq!(total, 4 + (4 + 32) + (4 + 32) + (4 + sig.as_ref().len()));
        assert_eq!(&tlvs[4..8], &[TLV_SHA256, 0, 32, 0]);
        assert_eq!(&tlvs[8..40], &digest[..]);
        assert_eq!(&tlvs[40..44], &[TLV_KEYHASH, 0, 32, 0]);
        assert_eq!(&tlvs[44..76], &HashAlg::Sha256.digest(&spki)[..]);
        assert_eq!(tlvs[76], TLV_ECDSASIG);
        assert_eq!(&img[0x4000 - 16..], &BOOT_MAGIC);
        // image_ok sits max_align + 16 bytes before the end.
        assert_eq!(img[0x4000 - 24], 0x01);
        assert!(img[hashed_len + total..0x4000 - 24]
            .iter()
            .all(|&b| b == 0xff));
    }

    #[test]
    fn keys_and_hashes_must_match() {
        let (spki, _) = p256_key();
        let opts = ImageOptions {
            pad_header: true,
            hash: HashAlg::Sha384,
            ..Default::default()
        };
        let u = prepare(&fw(100), &opts).unwrap();
        assert!(matches!(
            u.finish(&spki, &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]),
            Err(McubootError::HashMismatch { .. })
        ));
        let opts = ImageOptions {
            pad_header: true,
            ..Default::default()
        };
        let u = prepare(&fw(100), &opts).unwrap();
        assert_eq!(
            u.clone().finish(&spki, &[0x30, 0x00, 0x02]).unwrap_err(),
            McubootError::BadSignature
        );
        let too_small = ImageOptions {
            pad_header: true,
            slot_size: Some(200),
            ..Default::default()
        };
        assert!(matches!(
            prepare(&fw(100), &too_small),
            Err(McubootError::SlotTooSmall { .. })
        ));
        // Fits without a signature, not with one: refused when finished.
        let t = ImageOptions::default().trailer_size();
        let tight = ImageOptions {
            pad_header: true,
            slot_size: Some(32 + 100 + 4 + 36 + 36 + 4 + 4 + t),
            ..Default::default()
        };
        let u3 = prepare(&fw(100), &tight).unwrap();
        assert!(matches!(
            u3.finish(&spki, &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]),
            Err(McubootError::SlotTooSmall { .. })
        ));
        // An RSA SPKI is refused by name.
        let rsa_spki = hex::decode("3013300d06092a864886f70d0101010500030200ff").unwrap();
        let e = hash_for_key(&rsa_spki);
        assert!(matches!(e, Err(McubootError::UnsupportedKey(s)) if s.contains("RSA")));
        assert_eq!(hash_for_key(&spki).unwrap(), HashAlg::Sha256);
    }
}
