//! Minimal DER plumbing both sides need: reading one TLV, writing TLVs, SEQUENCEs, SETs and
//! OIDs, splitting a signed structure (`SEQUENCE { tbs, signatureAlgorithm, signature }`:
//! certificates, CSRs, CRLs) and putting one together again, and an ECDSA signature from DER to
//! the fixed-size `r || s` that COSE and PKCS#11 use. The server's `der` is this module; signing
//! a to-be-signed part with a key store's key (`resign`) stays in the server's `keys`.

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

/// Encodes a dotted OID as DER (tag included). Callers pass validated OIDs.
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u128> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
    let mut body = Vec::new();
    if arcs.len() >= 2 {
        push_base128(&mut body, arcs[0] * 40 + arcs[1]);
        for &a in &arcs[2..] {
            push_base128(&mut body, a);
        }
    }
    tlv(0x06, &body)
}

fn push_base128(out: &mut Vec<u8>, mut v: u128) {
    let mut tmp = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        tmp.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    tmp.reverse();
    out.extend_from_slice(&tmp);
}

/// The parts of a signed structure.
pub struct Signed<'a> {
    pub tbs: &'a [u8],
    pub algorithm: &'a [u8],
}

/// Splits `SEQUENCE { tbs, algorithm, signature }`.
pub fn split_signed(der: &[u8]) -> Result<Signed<'_>, DerError> {
    let outer = read_tlv(der)?;
    if outer.tag != 0x30 || !outer.rest.is_empty() {
        return Err(DerError("not a single SEQUENCE"));
    }
    let tbs = read_tlv(outer.contents)?;
    let alg = read_tlv(tbs.rest)?;
    let sig = read_tlv(alg.rest)?;
    if tbs.tag != 0x30 || alg.tag != 0x30 || sig.tag != 0x03 || !sig.rest.is_empty() {
        return Err(DerError("not a signed structure"));
    }
    Ok(Signed {
        tbs: tbs.whole,
        algorithm: alg.whole,
    })
}

/// The `signature` AlgorithmIdentifier inside a TBSCertificate (after the optional version and
/// the serial): the outer algorithm of the certificate must repeat it.
pub fn tbs_signature_algorithm(tbs: &[u8]) -> Result<&[u8], DerError> {
    let outer = read_tlv(tbs)?;
    if outer.tag != 0x30 {
        return Err(DerError("not a TBSCertificate"));
    }
    let mut next = read_tlv(outer.contents)?;
    if next.tag == 0xa0 {
        next = read_tlv(next.rest)?;
    }
    if next.tag != 0x02 {
        return Err(DerError("TBSCertificate without a serial"));
    }
    let alg = read_tlv(next.rest)?;
    if alg.tag != 0x30 {
        return Err(DerError("TBSCertificate without a signature algorithm"));
    }
    Ok(alg.whole)
}

/// Assembles a signed structure from its parts.
pub fn assemble(tbs: &[u8], algorithm: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0);
    bits.extend_from_slice(signature);
    let bitstring = tlv(0x03, &bits);
    let mut body = Vec::with_capacity(tbs.len() + algorithm.len() + bitstring.len());
    body.extend_from_slice(tbs);
    body.extend_from_slice(algorithm);
    body.extend_from_slice(&bitstring);
    tlv(0x30, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 1 << 20] {
            let v = vec![0u8; len];
            let enc = tlv(0x04, &v);
            let t = read_tlv(&enc).unwrap();
            assert_eq!(
                (t.tag, t.whole.len(), t.contents.len(), t.rest.len()),
                (4, enc.len(), len, 0)
            );
        }
    }

    #[test]
    fn truncated_is_an_error() {
        let enc = tlv(0x30, &[1, 2, 3]);
        assert!(read_tlv(&enc[..enc.len() - 1]).is_err());
        assert!(split_signed(&enc).is_err());
        assert!(read_tlv(&[]).is_err());
    }
}
