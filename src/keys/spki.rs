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
    let der_err = |e: der::Error| KeyError::Crypto(format!("encoding an ECDSA signature: {e}"));
    // `UintRef` drops the leading zeros and adds one where the high bit is set, as DER wants.
    let int = |b| der::asn1::UintRef::new(b).map_err(der_err);
    der::Encode::to_der(&[int(r)?, int(s)?]).map_err(der_err)
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

#[cfg(test)]
mod tests {
    use super::ecdsa_raw_to_der;

    #[test]
    fn ecdsa_signatures_become_der_integers() {
        // r has its high bit set (a zero goes in front), s has leading zeros (they go).
        let mut raw = vec![0x80u8; 32];
        raw.extend([0, 0].iter().chain([0x7fu8; 30].iter()));
        let der = ecdsa_raw_to_der(&raw).unwrap();
        let want = [
            &[0x30, 0x43, 0x02, 0x21, 0x00][..],
            &[0x80; 32],
            &[0x02, 0x1e],
            &[0x7f; 30],
        ]
        .concat();
        assert_eq!(der, want);
        // All zeros is the integer 0.
        assert_eq!(
            ecdsa_raw_to_der(&[0; 64]).unwrap(),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
        assert!(ecdsa_raw_to_der(&[1; 63]).is_err());
    }
}
