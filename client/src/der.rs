//! Minimal DER plumbing both sides need: reading one TLV, writing TLVs, SEQUENCEs and SETs,
//! and an ECDSA signature from DER to the fixed-size `r || s` that COSE and PKCS#11 use.

/// Errors reading DER.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

/// Appends a DER length.
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// One TLV read from the front of some input.
pub struct Tlv<'a> {
    pub tag: u8,
    /// Tag, length and contents together.
    pub whole: &'a [u8],
    pub contents: &'a [u8],
    /// What follows the TLV.
    pub rest: &'a [u8],
}

/// Reads one TLV at the start of `input`.
pub fn read_tlv(input: &[u8]) -> Result<Tlv<'_>, DerError> {
    let tag = *input.first().ok_or(DerError("empty input"))?;
    if tag & 0x1f == 0x1f {
        return Err(DerError("multi-byte tags are not supported"));
    }
    let first = *input.get(1).ok_or(DerError("truncated length"))?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(DerError("unsupported length form"));
        }
        let bytes = input.get(2..2 + n).ok_or(DerError("truncated length"))?;
        let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, 2 + n)
    };
    let end = hdr.checked_add(len).ok_or(DerError("length overflow"))?;
    if input.len() < end {
        return Err(DerError("truncated value"));
    }
    Ok(Tlv {
        tag,
        whole: &input[..end],
        contents: &input[hdr..end],
        rest: &input[end..],
    })
}

/// Wraps `contents` in a TLV with `tag`.
pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    push_len(&mut out, contents.len());
    out.extend_from_slice(contents);
    out
}

/// A SEQUENCE of the given encodings, in order.
pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A SET OF (tag 0x31, or an IMPLICIT tag in its place) with its elements sorted by their
/// encodings, as DER requires (X.690 §11.6).
pub fn set_of(tag: u8, mut items: Vec<Vec<u8>>) -> Vec<u8> {
    items.sort();
    tlv(tag, &items.concat())
}

/// Converts a DER `Ecdsa-Sig-Value` to the fixed-size `r || s` (COSE, PKCS#11), each `size` bytes big-endian.
pub fn ecdsa_der_to_fixed(der: &[u8], size: usize) -> Result<Vec<u8>, DerError> {
    let bad = || DerError("not an ECDSA signature of the key's size");
    let seq = read_tlv(der).map_err(|_| bad())?;
    if seq.tag != 0x30 || !seq.rest.is_empty() {
        return Err(bad());
    }
    let r = read_tlv(seq.contents).map_err(|_| bad())?;
    let s = read_tlv(r.rest).map_err(|_| bad())?;
    if r.tag != 0x02 || s.tag != 0x02 || !s.rest.is_empty() {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(size * 2);
    for i in [r.contents, s.contents] {
        // Positive INTEGERs: at most one leading zero byte, then at most `size` bytes.
        let first = i.iter().position(|&b| b != 0).unwrap_or(i.len());
        let digits = &i[first..];
        if i.is_empty() || digits.len() > size || i.first().is_some_and(|&b| b & 0x80 != 0) {
            return Err(bad());
        }
        out.extend(std::iter::repeat_n(0u8, size - digits.len()));
        out.extend_from_slice(digits);
    }
    Ok(out)
}
