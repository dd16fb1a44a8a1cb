//! Small conversions between the encodings key stores speak and the ones X.509 wants.

use super::KeyError;
use x509_parser::prelude::FromDer;

/// The BIT STRING contents of a DER SubjectPublicKeyInfo (what rcgen calls `der_bytes`).
pub fn subject_public_key_bits(spki_der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| KeyError::Crypto(format!("bad SubjectPublicKeyInfo: {e}")))?;
    if !rest.is_empty() {
        return Err(KeyError::Crypto(
            "trailing bytes after SubjectPublicKeyInfo".into(),
        ));
    }
    Ok(spki.subject_public_key.data.to_vec())
}

/// Converts a raw `r || s` ECDSA signature (PKCS#11's form) to DER `Ecdsa-Sig-Value`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, KeyError> {
    if raw.is_empty() || raw.len() % 2 != 0 || raw.len() > 132 {
        return Err(KeyError::Crypto(format!(
            "ECDSA signature of {} bytes is not r||s",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 8);
    for int in [r, s] {
        let trimmed: &[u8] = {
            let first = int.iter().position(|&b| b != 0).unwrap_or(int.len() - 1);
            &int[first..]
        };
        let pad = trimmed[0] & 0x80 != 0;
        body.push(0x02);
        crate::der::push_len(&mut body, trimmed.len() + usize::from(pad));
        if pad {
            body.push(0);
        }
        body.extend_from_slice(trimmed);
    }
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x30);
    crate::der::push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}
