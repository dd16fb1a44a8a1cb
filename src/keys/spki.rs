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
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > 132 {
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

/// The kind of public key in a SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    P384,
    P521,
    Rsa,
    Ed25519,
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::P256 => "ECDSA P-256",
            KeyKind::P384 => "ECDSA P-384",
            KeyKind::P521 => "ECDSA P-521",
            KeyKind::Rsa => "RSA",
            KeyKind::Ed25519 => "Ed25519",
        }
    }
}

/// The key kind and the subjectPublicKey bits of a DER SubjectPublicKeyInfo.
pub fn key_of(spki: &[u8]) -> Result<(KeyKind, Vec<u8>), String> {
    let (_, k) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| format!("the public key does not parse: {e}"))?;
    let bits = k.subject_public_key.data.to_vec();
    let kind = match k.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => KeyKind::Rsa,
        "1.3.101.112" => KeyKind::Ed25519,
        "1.2.840.10045.2.1" => {
            let curve = k
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => KeyKind::P256,
                "1.3.132.0.34" => KeyKind::P384,
                "1.3.132.0.35" => KeyKind::P521,
                other => return Err(format!("elliptic curve {other} is not supported")),
            }
        }
        other => return Err(format!("public key algorithm {other} is not supported")),
    };
    Ok((kind, bits))
}
