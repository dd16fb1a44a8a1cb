//! CRLs (RFC 5280 §5), written as DER one entry at a time.
//!
//! The builder never holds the revocations as values: each entry is encoded into one buffer as
//! the store streams it, with room kept in front for the headers, whose lengths are known only
//! at the end. The to-be-signed bytes are then a slice of that buffer, signed by the CA's own key
//! through [`Signer`], and the signature is appended in place: a CRL of a million entries costs
//! its own size in memory (about 40 MB), not a tree of objects.
//!
//! The time and algorithm encodings here are shared with [`super::ocsp`].

use crate::der::{push_len, tlv};
use crate::keys::{SignatureScheme, Signer};

use super::extensions::oid;
use super::IssueError;

/// The CRL partition of a certificate serial (content octets): a stable function of its first
/// octet. `None` when CRLs are not partitioned (`shards <= 1`).
pub fn shard_of(serial: &[u8], shards: u32) -> Option<u32> {
    if shards <= 1 {
        return None;
    }
    Some(u32::from(serial.first().copied().unwrap_or(0)) % shards)
}

/// One revoked certificate as the store hands it over.
#[derive(Debug, Clone, Copy)]
pub struct CrlEntry<'a> {
    /// The serial as stored: hex of the INTEGER's content octets.
    pub serial_hex: &'a str,
    pub revoked_at: i64,
    /// RFC 5280 CRLReason code; `0` (unspecified) is written as no reason, as §5.3.1 asks.
    pub reason: u8,
    pub invalidity_date: Option<i64>,
}

/// What a CRL says about itself.
#[derive(Debug, Clone)]
pub struct CrlSpec<'a> {
    /// The issuer's subject Name, DER.
    pub issuer_name: &'a [u8],
    /// The issuer's subject key identifier (goes into the AKI).
    pub issuer_ski: &'a [u8],
    pub number: u64,
    pub this_update: i64,
    pub next_update: i64,
    /// For a partition: the URL in the critical issuingDistributionPoint (the shard's CRL DP).
    pub idp_url: Option<&'a str>,
    pub scheme: SignatureScheme,
}

/// The largest header a TLV of the builder can need: tag, 0x84 and four length octets.
const MAX_HEADER: usize = 6;

/// Streams a CRL into one buffer.
pub struct CrlBuilder {
    buf: Vec<u8>,
    /// version, signature, issuer, thisUpdate, nextUpdate: known before the first entry.
    head: Vec<u8>,
    /// Where the entries start in `buf` (everything before is kept for headers).
    reserve: usize,
    extensions: Vec<u8>,
    algorithm: Vec<u8>,
    scheme: SignatureScheme,
    entries: u64,
    /// The last revocation time encoded, to skip formatting bursts of equal times.
    last_time: Option<(i64, [u8; 17], usize)>,
}

impl CrlBuilder {
    /// Starts a CRL; `expected_entries` sizes the buffer (an estimate is fine).
    pub fn new(spec: &CrlSpec<'_>, expected_entries: usize) -> Result<CrlBuilder, IssueError> {
        if spec.next_update <= spec.this_update {
            return Err(IssueError::Encoding(
                "CRL nextUpdate must be after thisUpdate".into(),
            ));
        }
        let algorithm = signature_algorithm(spec.scheme)?;
        let mut head = Vec::with_capacity(64 + spec.issuer_name.len());
        head.extend_from_slice(&[0x02, 0x01, 0x01]); // version v2
        head.extend_from_slice(&algorithm);
        head.extend_from_slice(spec.issuer_name);
        push_time(&mut head, spec.this_update);
        push_time(&mut head, spec.next_update);

        let mut exts = vec![
            extension("2.5.29.35", false, &tlv(0x30, &tlv(0x80, spec.issuer_ski))),
            extension("2.5.29.20", false, &integer_u64(spec.number)),
        ];
        if let Some(url) = spec.idp_url {
            // IssuingDistributionPoint { distributionPoint [0] { fullName [0] { URI } } }
            let full_name = tlv(0xa0, &tlv(0x86, url.as_bytes()));
            exts.push(extension(
                "2.5.29.28",
                true,
                &tlv(0x30, &tlv(0xa0, &full_name)),
            ));
        }
        let extensions = tlv(0xa0, &tlv(0x30, &exts.concat()));

        let reserve = head.len() + 3 * MAX_HEADER;
        let mut buf = Vec::with_capacity(
            reserve + expected_entries.saturating_mul(50) + extensions.len() + 200,
        );
        buf.resize(reserve, 0);
        Ok(CrlBuilder {
            buf,
            head,
            reserve,
            extensions,
            algorithm,
            scheme: spec.scheme,
            entries: 0,
            last_time: None,
        })
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Appends one revoked certificate.
    pub fn push(&mut self, e: &CrlEntry<'_>) -> Result<(), IssueError> {
        let mut serial = [0u8; 33];
        let serial = integer_content_from_hex(e.serial_hex, &mut serial)?;
        let (time, time_len) = match self.last_time {
            Some((t, bytes, len)) if t == e.revoked_at => (bytes, len),
            _ => {
                let mut bytes = [0u8; 17];
                let len = write_time(&mut bytes, e.revoked_at);
                self.last_time = Some((e.revoked_at, bytes, len));
                (bytes, len)
            }
        };
        // Entry extensions: reasonCode (12 octets) and invalidityDate (26 octets).
        let with_reason = e.reason != 0;
        let ext_len =
            if with_reason { 12 } else { 0 } + if e.invalidity_date.is_some() { 26 } else { 0 };
        let mut body_len = 2 + serial.len() + time_len;
        if ext_len > 0 {
            body_len += 2 + ext_len;
        }
        let b = &mut self.buf;
        b.push(0x30);
        b.push(body_len as u8);
        b.push(0x02);
        b.push(serial.len() as u8);
        b.extend_from_slice(serial);
        b.extend_from_slice(&time[..time_len]);
        if ext_len > 0 {
            b.push(0x30);
            b.push(ext_len as u8);
            if with_reason {
                b.extend_from_slice(&[
                    0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, e.reason,
                ]);
            }
            if let Some(t) = e.invalidity_date {
                b.extend_from_slice(&[0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11]);
                let mut g = [0u8; 17];
                write_generalized(&mut g, t);
                b.extend_from_slice(&g);
            }
        }
        self.entries += 1;
        Ok(())
    }

    /// Closes the structure, signs it with `signer` and returns the CRL's DER.
    pub fn finish(self, signer: &dyn Signer) -> Result<Vec<u8>, IssueError> {
        let CrlBuilder {
            mut buf,
            head,
            reserve,
            extensions,
            algorithm,
            scheme,
            entries,
            ..
        } = self;
        let entries_len = buf.len() - reserve;
        buf.extend_from_slice(&extensions);
        let mut start = reserve;
        if entries > 0 {
            start = put_header(&mut buf, start, 0x30, entries_len);
        }
        start -= head.len();
        buf[start..start + head.len()].copy_from_slice(&head);
        let tbs_len = buf.len() - start;
        let tbs_start = put_header(&mut buf, start, 0x30, tbs_len);
        let signature = signer.sign(scheme, &buf[tbs_start..])?;
        buf.extend_from_slice(&algorithm);
        buf.push(0x03);
        push_len(&mut buf, signature.len() + 1);
        buf.push(0);
        buf.extend_from_slice(&signature);
        let outer_len = buf.len() - tbs_start;
        let outer_start = put_header(&mut buf, tbs_start, 0x30, outer_len);
        buf.drain(..outer_start);
        Ok(buf)
    }
}

/// Writes a TLV header ending at `end` in `buf`; returns where it starts.
fn put_header(buf: &mut [u8], end: usize, tag: u8, len: usize) -> usize {
    let mut h = Vec::with_capacity(MAX_HEADER);
    h.push(tag);
    push_len(&mut h, len);
    let start = end - h.len();
    buf[start..end].copy_from_slice(&h);
    start
}

/// An Extension: `SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }`.
pub fn extension(id: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let mut body = oid(id);
    if critical {
        body.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    body.extend_from_slice(&tlv(0x04, value));
    tlv(0x30, &body)
}

/// A non-negative INTEGER.
pub fn integer_u64(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(7);
    let mut body = Vec::with_capacity(9);
    if bytes[first] & 0x80 != 0 {
        body.push(0);
    }
    body.extend_from_slice(&bytes[first..]);
    tlv(0x02, &body)
}

/// Decodes a stored hex serial into minimal INTEGER content octets (positive).
pub fn integer_content_from_hex<'a>(
    hex: &str,
    out: &'a mut [u8; 33],
) -> Result<&'a [u8], IssueError> {
    let h = hex.as_bytes();
    if h.is_empty() || !h.len().is_multiple_of(2) || h.len() > 64 {
        return Err(IssueError::Encoding(format!(
            "stored serial '{hex}' is not hex of 1-32 octets"
        )));
    }
    let n = h.len() / 2;
    for i in 0..n {
        let hi = hex_val(h[2 * i]);
        let lo = hex_val(h[2 * i + 1]);
        match (hi, lo) {
            (Some(hi), Some(lo)) => out[1 + i] = (hi << 4) | lo,
            _ => {
                return Err(IssueError::Encoding(format!(
                    "stored serial '{hex}' is not hex"
                )))
            }
        }
    }
    // Minimal form: drop leading zero octets that are not needed for the sign.
    let mut start = 1;
    while start < n && out[start] == 0 && out[start + 1] & 0x80 == 0 {
        start += 1;
    }
    if out[start] & 0x80 != 0 {
        start -= 1;
        out[start] = 0;
    }
    Ok(&out[start..=n])
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The AlgorithmIdentifier of a signature scheme (what CRLs and OCSP responses carry).
pub fn signature_algorithm(scheme: SignatureScheme) -> Result<Vec<u8>, IssueError> {
    use SignatureScheme::*;
    let (id, null) = match scheme {
        EcdsaSha256 => ("1.2.840.10045.4.3.2", false),
        EcdsaSha384 => ("1.2.840.10045.4.3.3", false),
        EcdsaSha512 => ("1.2.840.10045.4.3.4", false),
        RsaPkcs1Sha256 => ("1.2.840.113549.1.1.11", true),
        RsaPkcs1Sha384 => ("1.2.840.113549.1.1.12", true),
        RsaPkcs1Sha512 => ("1.2.840.113549.1.1.13", true),
        Ed25519 => ("1.3.101.112", false),
        RsaPssSha256 | RsaPssSha384 | RsaPssSha512 => {
            return Err(IssueError::Encoding(format!(
                "{scheme:?} is not used for CRLs and OCSP responses"
            )))
        }
    };
    let mut body = oid(id);
    if null {
        body.extend_from_slice(&[0x05, 0x00]);
    }
    Ok(tlv(0x30, &body))
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian; H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Broken-down UTC time: year, month, day, hour, minute, second.
pub fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

fn two(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Writes a GeneralizedTime TLV (17 octets) into `out`.
pub fn write_generalized(out: &mut [u8; 17], unix: i64) {
    let (y, m, d, hh, mm, ss) = civil(unix);
    let y = y.clamp(0, 9999) as u32;
    out[0] = 0x18;
    out[1] = 15;
    two(&mut out[2..], y / 100);
    two(&mut out[4..], y % 100);
    two(&mut out[6..], m);
    two(&mut out[8..], d);
    two(&mut out[10..], hh);
    two(&mut out[12..], mm);
    two(&mut out[14..], ss);
    out[16] = b'Z';
}

/// Writes an RFC 5280 Time (UTCTime through 2049, GeneralizedTime after); returns its length.
pub fn write_time(out: &mut [u8; 17], unix: i64) -> usize {
    let (y, m, d, hh, mm, ss) = civil(unix);
    if (1950..2050).contains(&y) {
        out[0] = 0x17;
        out[1] = 13;
        two(&mut out[2..], (y % 100) as u32);
        two(&mut out[4..], m);
        two(&mut out[6..], d);
        two(&mut out[8..], hh);
        two(&mut out[10..], mm);
        two(&mut out[12..], ss);
        out[14] = b'Z';
        15
    } else {
        write_generalized(out, unix);
        17
    }
}

/// Appends an RFC 5280 Time.
pub fn push_time(out: &mut Vec<u8>, unix: i64) {
    let mut b = [0u8; 17];
    let n = write_time(&mut b, unix);
    out.extend_from_slice(&b[..n]);
}

/// Appends a GeneralizedTime.
pub fn push_generalized(out: &mut Vec<u8>, unix: i64) {
    let mut b = [0u8; 17];
    write_generalized(&mut b, unix);
    out.extend_from_slice(&b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_encode() {
        let mut b = [0u8; 17];
        // 2026-11-01T12:34:56Z
        let n = write_time(&mut b, 1_793_536_496);
        assert_eq!(&b[..n], b"\x17\x0d261101123456Z");
        write_generalized(&mut b, 1_793_536_496);
        assert_eq!(&b[..], b"\x18\x0f20261101123456Z");
        // 9999-12-31T23:59:59Z
        let n = write_time(&mut b, 253_402_300_799);
        assert_eq!(&b[..n], b"\x18\x0f99991231235959Z");
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn serials_are_minimal_positive_integers() {
        let mut b = [0u8; 33];
        assert_eq!(
            integer_content_from_hex("7f01", &mut b).unwrap(),
            &[0x7f, 0x01]
        );
        assert_eq!(integer_content_from_hex("0001", &mut b).unwrap(), &[0x01]);
        assert_eq!(
            integer_content_from_hex("80", &mut b).unwrap(),
            &[0x00, 0x80]
        );
        assert_eq!(
            integer_content_from_hex("0080", &mut b).unwrap(),
            &[0x00, 0x80]
        );
        assert_eq!(integer_content_from_hex("00", &mut b).unwrap(), &[0x00]);
        assert!(integer_content_from_hex("7g", &mut b).is_err());
        assert!(integer_content_from_hex("abc", &mut b).is_err());
    }

    #[test]
    fn integers_encode() {
        assert_eq!(integer_u64(0), vec![2, 1, 0]);
        assert_eq!(integer_u64(128), vec![2, 2, 0, 128]);
        assert_eq!(integer_u64(0x0102), vec![2, 2, 1, 2]);
    }
}
