//! Small conversions between the encodings key stores speak and the ones X.509 wants, and the
//! kinds of public key hallmark knows by their OIDs. Pure functions on bytes, in the client crate
//! because signed formats and `verify` read keys too; the server's `keys` re-exports them.

use x509_parser::prelude::FromDer;

/// Why a key or a signature cannot be converted. Its text is what the server's
/// `KeyError::Crypto` says for it (the server's `keys` turns one into the other).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SpkiError(pub String);

/// The BIT STRING contents of a DER SubjectPublicKeyInfo (what rcgen calls `der_bytes`).
pub fn subject_public_key_bits(spki_der: &[u8]) -> Result<Vec<u8>, SpkiError> {
    let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| SpkiError(format!("bad SubjectPublicKeyInfo: {e}")))?;
    if !rest.is_empty() {
        return Err(SpkiError(
            "trailing bytes after SubjectPublicKeyInfo".into(),
        ));
    }
    Ok(spki.subject_public_key.data.to_vec())
}

/// Converts a raw `r || s` ECDSA signature (PKCS#11's form) to DER `Ecdsa-Sig-Value`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, SpkiError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > 132 {
        return Err(SpkiError(format!(
            "ECDSA signature of {} bytes is not r||s",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let der_err = |e: der::Error| SpkiError(format!("encoding an ECDSA signature: {e}"));
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

/// The object identifiers of the public keys hallmark knows, written once: key stores, policy,
/// ACME and `verify` name keys by these.
pub mod oid {
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    /// id-RSASSA-PSS as a *public key* algorithm (refused: hallmark keys are rsaEncryption).
    pub const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub const ED25519: &str = "1.3.101.112";
    pub const P192: &str = "1.2.840.10045.3.1.1";
    pub const P256: &str = "1.2.840.10045.3.1.7";
    pub const P384: &str = "1.3.132.0.34";
    pub const P521: &str = "1.3.132.0.35";
}

/// Why a key's algorithm identifier names no kind hallmark knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownKey {
    /// Neither RSA, EC nor Ed25519: the algorithm's OID.
    Algorithm(String),
    /// An EC key on another curve (or naming none: empty): the curve's OID.
    Curve(String),
}

/// The kind of key an AlgorithmIdentifier names: its `algorithm` OID and, for EC keys, the
/// curve OID in its parameters. The one place a key's kind is read from its OIDs.
pub fn kind_of(algorithm: &str, curve: Option<&str>) -> Result<KeyKind, UnknownKey> {
    match algorithm {
        oid::RSA_ENCRYPTION => Ok(KeyKind::Rsa),
        oid::ED25519 => Ok(KeyKind::Ed25519),
        oid::EC_PUBLIC_KEY => match curve.unwrap_or_default() {
            oid::P256 => Ok(KeyKind::P256),
            oid::P384 => Ok(KeyKind::P384),
            oid::P521 => Ok(KeyKind::P521),
            other => Err(UnknownKey::Curve(other.to_string())),
        },
        other => Err(UnknownKey::Algorithm(other.to_string())),
    }
}

/// The kind of the key in a parsed SubjectPublicKeyInfo.
pub fn kind_of_spki(
    k: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Result<KeyKind, UnknownKey> {
    let curve = k
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    kind_of(&k.algorithm.algorithm.to_id_string(), curve.as_deref())
}

/// The key kind and the subjectPublicKey bits of a DER SubjectPublicKeyInfo.
pub fn key_of(spki: &[u8]) -> Result<(KeyKind, Vec<u8>), String> {
    let (_, k) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| format!("the public key does not parse: {e}"))?;
    let bits = k.subject_public_key.data.to_vec();
    let kind = kind_of_spki(&k).map_err(|e| match e {
        UnknownKey::Curve(c) => format!("elliptic curve {c} is not supported"),
        UnknownKey::Algorithm(a) => format!("public key algorithm {a} is not supported"),
    })?;
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
