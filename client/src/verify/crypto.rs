//! Checking one signature with a public key by the algorithm identifiers a certificate, a CMS
//! signer or an OCSP response names: the one place `verify` maps OIDs to aws-lc-rs algorithms.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};

use crate::algorithm::{HashAlg, SignatureScheme};

pub use crate::spki::{key_of, KeyKind};

/// The hash a digest AlgorithmIdentifier OID names (SHA-1 and others refused).
pub fn hash_of_oid(oid: &str) -> Result<HashAlg, String> {
    match oid {
        "2.16.840.1.101.3.4.2.1" => Ok(HashAlg::Sha256),
        "2.16.840.1.101.3.4.2.2" => Ok(HashAlg::Sha384),
        "2.16.840.1.101.3.4.2.3" => Ok(HashAlg::Sha512),
        "1.3.14.3.2.26" => Err("SHA-1 is not accepted".into()),
        o => Err(format!("digest algorithm {o} is not supported")),
    }
}

pub fn hash_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "SHA-256",
        HashAlg::Sha384 => "SHA-384",
        HashAlg::Sha512 => "SHA-512",
    }
}

/// The scheme a signature AlgorithmIdentifier names. `digest` is the CMS signer's digest
/// algorithm: some signers write plain rsaEncryption or id-ecPublicKey there and let it choose
/// the hash.
pub fn scheme_of_oid(oid: &str, digest: Option<HashAlg>) -> Result<SignatureScheme, String> {
    use crate::spki::oid as key;
    use SignatureScheme as S;
    Ok(match (oid, digest) {
        ("1.2.840.10045.4.3.2", _) => S::EcdsaSha256,
        ("1.2.840.10045.4.3.3", _) => S::EcdsaSha384,
        ("1.2.840.10045.4.3.4", _) => S::EcdsaSha512,
        ("1.2.840.113549.1.1.11", _) => S::RsaPkcs1Sha256,
        ("1.2.840.113549.1.1.12", _) => S::RsaPkcs1Sha384,
        ("1.2.840.113549.1.1.13", _) => S::RsaPkcs1Sha512,
        (key::ED25519, _) => S::Ed25519,
        (key::RSA_ENCRYPTION, Some(h)) => match h {
            HashAlg::Sha256 => S::RsaPkcs1Sha256,
            HashAlg::Sha384 => S::RsaPkcs1Sha384,
            HashAlg::Sha512 => S::RsaPkcs1Sha512,
        },
        (key::EC_PUBLIC_KEY, Some(h)) => match h {
            HashAlg::Sha256 => S::EcdsaSha256,
            HashAlg::Sha384 => S::EcdsaSha384,
            HashAlg::Sha512 => S::EcdsaSha512,
        },
        ("1.2.840.113549.1.1.5" | "1.2.840.10045.4.1", _) => {
            return Err("SHA-1 signatures are not accepted".into())
        }
        (key::RSASSA_PSS, _) => {
            return Err("RSASSA-PSS in certificates and CMS is not supported by verify".into())
        }
        (o, _) => return Err(format!("signature algorithm {o} is not supported")),
    })
}

/// A readable name of a scheme on a key kind.
pub fn scheme_name(kind: KeyKind, scheme: SignatureScheme) -> String {
    use SignatureScheme as S;
    let hash = match scheme {
        S::EcdsaSha256 | S::RsaPkcs1Sha256 | S::RsaPssSha256 => "SHA-256",
        S::EcdsaSha384 | S::RsaPkcs1Sha384 | S::RsaPssSha384 => "SHA-384",
        S::EcdsaSha512 | S::RsaPkcs1Sha512 | S::RsaPssSha512 => "SHA-512",
        S::Ed25519 => return "Ed25519".into(),
    };
    match scheme {
        S::RsaPssSha256 | S::RsaPssSha384 | S::RsaPssSha512 => format!("RSA-PSS {hash}"),
        S::RsaPkcs1Sha256 | S::RsaPkcs1Sha384 | S::RsaPkcs1Sha512 => {
            format!("RSA PKCS#1 v1.5 {hash}")
        }
        _ => format!("{} {hash}", kind.name()),
    }
}

fn algorithm(
    kind: KeyKind,
    scheme: SignatureScheme,
    fixed: bool,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    use KeyKind as K;
    use SignatureScheme as S;
    Ok(match (kind, scheme, fixed) {
        (K::P256, S::EcdsaSha256, false) => &sig::ECDSA_P256_SHA256_ASN1,
        (K::P256, S::EcdsaSha384, false) => &sig::ECDSA_P256_SHA384_ASN1,
        (K::P256, S::EcdsaSha512, false) => &sig::ECDSA_P256_SHA512_ASN1,
        (K::P384, S::EcdsaSha256, false) => &sig::ECDSA_P384_SHA256_ASN1,
        (K::P384, S::EcdsaSha384, false) => &sig::ECDSA_P384_SHA384_ASN1,
        (K::P384, S::EcdsaSha512, false) => &sig::ECDSA_P384_SHA512_ASN1,
        (K::P521, S::EcdsaSha256, false) => &sig::ECDSA_P521_SHA256_ASN1,
        (K::P521, S::EcdsaSha384, false) => &sig::ECDSA_P521_SHA384_ASN1,
        (K::P521, S::EcdsaSha512, false) => &sig::ECDSA_P521_SHA512_ASN1,
        (K::P256, S::EcdsaSha256, true) => &sig::ECDSA_P256_SHA256_FIXED,
        (K::P384, S::EcdsaSha384, true) => &sig::ECDSA_P384_SHA384_FIXED,
        (K::P521, S::EcdsaSha512, true) => &sig::ECDSA_P521_SHA512_FIXED,
        (K::Rsa, S::RsaPkcs1Sha256, _) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (K::Rsa, S::RsaPkcs1Sha384, _) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (K::Rsa, S::RsaPkcs1Sha512, _) => &sig::RSA_PKCS1_2048_8192_SHA512,
        (K::Rsa, S::RsaPssSha256, _) => &sig::RSA_PSS_2048_8192_SHA256,
        (K::Rsa, S::RsaPssSha384, _) => &sig::RSA_PSS_2048_8192_SHA384,
        (K::Rsa, S::RsaPssSha512, _) => &sig::RSA_PSS_2048_8192_SHA512,
        (K::Ed25519, S::Ed25519, _) => &sig::ED25519,
        (k, s, _) => return Err(format!("{s:?} does not fit a {} key", k.name())),
    })
}

/// Checks `signature` over `msg` with the key in `spki` (ECDSA signatures DER-encoded, or
/// `r || s` with `fixed`). Returns the scheme's readable name.
pub fn verify(
    spki: &[u8],
    scheme: SignatureScheme,
    fixed: bool,
    msg: &[u8],
    signature: &[u8],
) -> Result<String, String> {
    let (kind, bits) = key_of(spki)?;
    let alg = algorithm(kind, scheme, fixed)?;
    UnparsedPublicKey::new(alg, &bits)
        .verify(msg, signature)
        .map_err(|_| {
            format!(
                "the {} signature does not verify",
                scheme_name(kind, scheme)
            )
        })?;
    Ok(scheme_name(kind, scheme))
}

/// Checks `signature` over a message whose digest (in the scheme's hash) is `digest`.
pub fn verify_digest(
    spki: &[u8],
    scheme: SignatureScheme,
    fixed: bool,
    digest: &[u8],
    signature: &[u8],
) -> Result<String, String> {
    use aws_lc_rs::digest::{Digest, SHA256, SHA384, SHA512};
    use SignatureScheme as S;
    let (kind, bits) = key_of(spki)?;
    let alg = algorithm(kind, scheme, fixed)?;
    let hash = match scheme {
        S::EcdsaSha256 | S::RsaPkcs1Sha256 | S::RsaPssSha256 => &SHA256,
        S::EcdsaSha384 | S::RsaPkcs1Sha384 | S::RsaPssSha384 => &SHA384,
        S::EcdsaSha512 | S::RsaPkcs1Sha512 | S::RsaPssSha512 => &SHA512,
        S::Ed25519 => return Err("an Ed25519 signature covers the message, not a digest".into()),
    };
    let d = Digest::import_less_safe(digest, hash)
        .map_err(|_| format!("a {}-byte digest does not fit {scheme:?}", digest.len()))?;
    UnparsedPublicKey::new(alg, &bits)
        .verify_digest(&d, signature)
        .map_err(|_| {
            format!(
                "the {} signature does not verify",
                scheme_name(kind, scheme)
            )
        })?;
    Ok(scheme_name(kind, scheme))
}

/// The hash a scheme signs with.
pub fn scheme_hash(scheme: SignatureScheme) -> Option<HashAlg> {
    use SignatureScheme as S;
    match scheme {
        S::EcdsaSha256 | S::RsaPkcs1Sha256 | S::RsaPssSha256 => Some(HashAlg::Sha256),
        S::EcdsaSha384 | S::RsaPkcs1Sha384 | S::RsaPssSha384 => Some(HashAlg::Sha384),
        S::EcdsaSha512 | S::RsaPkcs1Sha512 | S::RsaPssSha512 => Some(HashAlg::Sha512),
        S::Ed25519 => None,
    }
}
