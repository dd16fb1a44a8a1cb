//! Firmware signatures: MCUboot images (the TLV trailer imgtool writes) and COSE_Sign1 with a
//! detached payload (x5chain in the unprotected header). Both are checked the way a device
//! checks them (image hash, key hash, ECDSA over the hash; the COSE Sig_structure), then the
//! signer's certificate goes through the common checks.

use crate::algorithm::{HashAlg, SignatureScheme};
use crate::formats::{cose, mcuboot};

use super::detached::{after_key, signer_key};
use super::{chain, crypto, Options, Report};

/// Whether `data` starts with an MCUboot image header.
pub fn is_mcuboot(data: &[u8]) -> bool {
    data.get(..4) == Some(&mcuboot::IMAGE_MAGIC.to_le_bytes()[..])
}

fn u16_at(d: &[u8], off: usize) -> Option<usize> {
    Some(u16::from_le_bytes(d.get(off..off + 2)?.try_into().ok()?) as usize)
}

fn u32_at(d: &[u8], off: usize) -> Option<usize> {
    Some(u32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?) as usize)
}

/// An MCUboot TLV: type and value.
type Tlv<'a> = (u8, &'a [u8]);

/// The TLVs of an MCUboot image's unprotected area: (hashed region, TLVs).
fn mcuboot_tlvs(img: &[u8]) -> Result<(&[u8], Vec<Tlv<'_>>), String> {
    let hdr = u16_at(img, 8).ok_or("truncated image header")?;
    let prot = u16_at(img, 10).ok_or("truncated image header")?;
    let size = u32_at(img, 12).ok_or("truncated image header")?;
    let end = hdr
        .checked_add(size)
        .and_then(|n| n.checked_add(prot))
        .ok_or("bad image sizes")?;
    let hashed = img
        .get(..end)
        .ok_or("the image is shorter than its header says")?;
    let info = end;
    if u16_at(img, info) != Some(mcuboot::TLV_INFO_MAGIC as usize) {
        return Err("no TLV area after the image: it is not signed".into());
    }
    let total = u16_at(img, info + 2).ok_or("truncated TLV area")?;
    let area = img
        .get(info + 4..info + total)
        .ok_or("the TLV area runs past the end of the file")?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < area.len() {
        let t = *area.get(i).ok_or("truncated TLV")?;
        let len = u16_at(area, i + 2).ok_or("truncated TLV")?;
        let v = area.get(i + 4..i + 4 + len).ok_or("truncated TLV value")?;
        out.push((t, v));
        i += 4 + len;
    }
    Ok((hashed, out))
}

/// Verifies an MCUboot image with the signer's `--cert` (or `--key`).
pub fn verify_mcuboot(img: &[u8], o: &Options<'_>) -> Report {
    let mut r = Report::new("mcuboot");
    let (hashed, tlvs) = match mcuboot_tlvs(img) {
        Ok(x) => x,
        Err(e) => {
            r.fail("format", format!("MCUboot image: {e}"));
            return r;
        }
    };
    let find = |t: u8| tlvs.iter().find(|(k, _)| *k == t).map(|(_, v)| *v);
    let (hash, image_hash) = match (find(0x10), find(0x11)) {
        (Some(h), _) => (HashAlg::Sha256, h),
        (None, Some(h)) => (HashAlg::Sha384, h),
        _ => {
            r.fail("format", "MCUboot image without a SHA-256 or SHA-384 TLV");
            return r;
        }
    };
    r.pass(
        "format",
        format!(
            "MCUboot image, {} bytes hashed, {} TLVs",
            hashed.len(),
            tlvs.len()
        ),
    );
    let digest = hash.digest(hashed);
    if digest != image_hash {
        r.fail(
            "signature",
            format!(
                "the image's {} does not match its hash TLV: the image was changed",
                crypto::hash_name(hash)
            ),
        );
        return r;
    }
    let Some(sig) = find(0x22) else {
        r.fail("signature", "no ECDSA signature TLV (0x22)");
        return r;
    };
    let Some((spki, cert)) = signer_key(o) else {
        r.fail(
            "signature",
            "an MCUboot image carries no certificate: pass the signer's --cert (or --key)",
        );
        return r;
    };
    match (find(0x01), find(0x02)) {
        (Some(kh), _) if kh != hash.digest(&spki).as_slice() => {
            r.fail(
                "signature",
                "the image's key hash is not the hash of this key",
            );
            return r;
        }
        (None, Some(k)) if k != spki.as_slice() => {
            r.fail("signature", "the image's public key is not this key");
            return r;
        }
        _ => {}
    }
    let scheme = if hash == HashAlg::Sha256 {
        SignatureScheme::EcdsaSha256
    } else {
        SignatureScheme::EcdsaSha384
    };
    match crypto::verify_digest(&spki, scheme, false, &digest, sig) {
        Ok(name) => r.pass(
            "signature",
            format!("{name} over the image hash{}", chain::by(cert.as_deref())),
        ),
        Err(e) => {
            r.fail("signature", e);
            return r;
        }
    }
    after_key(&mut r, cert.as_deref(), &o.certs, None, sig, o);
    r
}

/// A CBOR item read by [`Cbor`]: what COSE_Sign1 needs.
#[derive(Debug, Clone, PartialEq)]
enum Item<'a> {
    Uint(u64),
    Nint(u64),
    Bytes(&'a [u8]),
    Text(&'a [u8]),
    Array(Vec<Item<'a>>),
    Map(Vec<(Item<'a>, Item<'a>)>),
    Tag(u64, Box<Item<'a>>),
    Simple(u8),
}

/// A small reader of definite-length CBOR (RFC 8949), enough for COSE headers.
struct Cbor<'a> {
    data: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Cbor<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or("truncated CBOR")?;
        self.pos += 1;
        Ok(b)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("CBOR length overflow")?;
        let s = self.data.get(self.pos..end).ok_or("truncated CBOR")?;
        self.pos = end;
        Ok(s)
    }
    fn arg(&mut self, info: u8) -> Result<u64, String> {
        Ok(match info {
            0..=23 => info as u64,
            24 => self.byte()? as u64,
            25 => u16::from_be_bytes(self.take(2)?.try_into().map_err(|_| "CBOR")?) as u64,
            26 => u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| "CBOR")?) as u64,
            27 => u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| "CBOR")?),
            _ => return Err("indefinite or reserved CBOR lengths are not accepted".into()),
        })
    }
    fn item(&mut self) -> Result<Item<'a>, String> {
        self.depth += 1;
        if self.depth > 16 {
            return Err("CBOR nested too deep".into());
        }
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        let n = if major == 7 {
            info as u64
        } else {
            self.arg(info)?
        };
        let len = |n: u64| usize::try_from(n).map_err(|_| "CBOR length overflow".to_string());
        let it = match major {
            0 => Item::Uint(n),
            1 => Item::Nint(n),
            2 => Item::Bytes(self.take(len(n)?)?),
            3 => Item::Text(self.take(len(n)?)?),
            4 => {
                let mut v = Vec::new();
                for _ in 0..n.min(64) {
                    v.push(self.item()?);
                }
                if n > 64 {
                    return Err("CBOR array too long".into());
                }
                Item::Array(v)
            }
            5 => {
                let mut v = Vec::new();
                if n > 64 {
                    return Err("CBOR map too long".into());
                }
                for _ in 0..n {
                    let k = self.item()?;
                    v.push((k, self.item()?));
                }
                Item::Map(v)
            }
            6 => Item::Tag(n, Box::new(self.item()?)),
            _ => {
                if info >= 24 {
                    return Err("CBOR floats are not expected here".into());
                }
                Item::Simple(info)
            }
        };
        self.depth -= 1;
        Ok(it)
    }
}

fn parse_cbor(data: &[u8]) -> Result<Item<'_>, String> {
    let mut c = Cbor {
        data,
        pos: 0,
        depth: 0,
    };
    let it = c.item()?;
    if c.pos != data.len() {
        return Err("trailing bytes after the CBOR item".into());
    }
    Ok(it)
}

/// Whether `data` is a (tagged or untagged) COSE_Sign1.
pub fn is_cose_sign1(data: &[u8]) -> bool {
    matches!(data.first(), Some(0xd2) | Some(0x84)) && sign1_parts(data).is_ok()
}

struct Sign1<'a> {
    protected: &'a [u8],
    alg: i64,
    x5chain: Vec<Vec<u8>>,
    payload: Option<&'a [u8]>,
    signature: &'a [u8],
}

fn map_get<'m, 'a>(m: &'m [(Item<'a>, Item<'a>)], label: i64) -> Option<&'m Item<'a>> {
    m.iter()
        .find(|(k, _)| match k {
            Item::Uint(u) => label >= 0 && *u == label as u64,
            Item::Nint(u) => label < 0 && *u == (-1 - label) as u64,
            _ => false,
        })
        .map(|(_, v)| v)
}

fn sign1_parts(data: &[u8]) -> Result<Sign1<'_>, String> {
    let item = parse_cbor(data)?;
    let arr = match item {
        Item::Tag(cose::TAG_SIGN1, inner) => *inner,
        Item::Tag(t, _) => return Err(format!("CBOR tag {t} is not COSE_Sign1 (18)")),
        other => other,
    };
    let Item::Array(parts) = arr else {
        return Err("a COSE_Sign1 is an array of four".into());
    };
    let [Item::Bytes(protected), Item::Map(unprotected), payload, Item::Bytes(signature)] =
        parts.as_slice()
    else {
        return Err("a COSE_Sign1 is [protected, unprotected, payload, signature]".into());
    };
    let Item::Map(ph) = parse_cbor(protected)? else {
        return Err("the protected header is not a map".into());
    };
    let alg = match map_get(&ph, 1) {
        Some(Item::Nint(n)) => i64::try_from(*n).map(|n| -1 - n).unwrap_or(i64::MIN),
        Some(Item::Uint(n)) => i64::try_from(*n).unwrap_or(i64::MAX),
        _ => return Err("the protected header names no algorithm".into()),
    };
    let x5chain = match map_get(unprotected, 33).or_else(|| map_get(&ph, 33)) {
        Some(Item::Bytes(c)) => vec![c.to_vec()],
        Some(Item::Array(cs)) => cs
            .iter()
            .filter_map(|c| match c {
                Item::Bytes(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let payload = match payload {
        Item::Bytes(p) => Some(*p),
        Item::Simple(22) => None,
        _ => return Err("the payload is neither a byte string nor nil".into()),
    };
    Ok(Sign1 {
        protected,
        alg,
        x5chain,
        payload,
        signature,
    })
}

/// Verifies a COSE_Sign1 over `file` (its detached payload).
pub fn verify_cose(file: &[u8], sig: &[u8], o: &Options<'_>) -> Report {
    let mut r = Report::new("cose_sign1");
    let s = match sign1_parts(sig) {
        Ok(s) => s,
        Err(e) => {
            r.fail("format", e);
            return r;
        }
    };
    r.pass(
        "format",
        format!(
            "COSE_Sign1, alg {}, {} certificate(s) in x5chain",
            s.alg,
            s.x5chain.len()
        ),
    );
    if let Some(p) = s.payload {
        if p != file {
            r.fail(
                "signature",
                "the payload inside the COSE_Sign1 is not the file",
            );
            return r;
        }
    }
    use SignatureScheme as S;
    let (scheme, fixed) = match s.alg {
        -7 => (S::EcdsaSha256, true),
        -35 => (S::EcdsaSha384, true),
        -36 => (S::EcdsaSha512, true),
        -37 => (S::RsaPssSha256, false),
        -38 => (S::RsaPssSha384, false),
        -39 => (S::RsaPssSha512, false),
        -8 => (S::Ed25519, false),
        a => {
            r.fail("signature", format!("COSE algorithm {a} is not supported"));
            return r;
        }
    };
    let (spki, cert) = match (s.x5chain.first(), signer_key(o)) {
        (Some(c), _) => match super::cms::spki_of(c) {
            Ok(k) => (k, Some(c.clone())),
            Err(e) => {
                r.fail("signature", e);
                return r;
            }
        },
        (None, Some(k)) => k,
        (None, None) => {
            r.fail(
                "signature",
                "no x5chain in the COSE_Sign1: pass the signer's --cert (or --key)",
            );
            return r;
        }
    };
    let mut msg = cose::sig_structure_prefix(s.protected, file.len() as u64);
    msg.extend_from_slice(file);
    match crypto::verify(&spki, scheme, fixed, &msg, s.signature) {
        Ok(name) => r.pass(
            "signature",
            format!(
                "{name} over the Sig_structure with the file as payload{}",
                chain::by(cert.as_deref())
            ),
        ),
        Err(e) => {
            r.fail("signature", e);
            return r;
        }
    }
    let mut pool = s.x5chain.clone();
    pool.extend(o.certs.iter().cloned());
    after_key(&mut r, cert.as_deref(), &pool, None, s.signature, o);
    r
}
