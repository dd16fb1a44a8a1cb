//! The names that requests, key policies, records and the `hallmark sign` client give signature
//! formats and digest algorithms. They sit below policy (which checks a key's policy with them)
//! and beside the client-side formats, so everyone spells them one way.

use crate::algorithm::HashAlg;

/// A format or digest name hallmark does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A format hallmark does not sign.
    #[error("format '{0}' is not offered (raw, cms, cose_sign1, openpgp)")]
    UnknownFormat(String),
    /// SHA-1, named as the digest algorithm.
    #[error("SHA-1 digests are refused: collisions are practical; use sha256, sha384 or sha512")]
    Sha1,
    /// Another digest algorithm hallmark does not accept.
    #[error("digest algorithm '{0}' is not accepted (sha256, sha384, sha512)")]
    UnknownDigest(String),
}

/// What the signature comes as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// The bare signature over the digest.
    Raw,
    /// A detached CMS SignedData (DER).
    Cms,
    /// The signature as a COSE_Sign1 carries it (RFC 9053/8230): ECDSA as fixed-size `r || s`
    /// (ES256 with P-256 and SHA-256, ES384 with P-384 and SHA-384), RSA as RSASSA-PSS
    /// (PS256/384/512). The client builds the message (`crate::formats::cose`).
    CoseSign1,
    /// The key's signature over an OpenPGP digest (the data and the signature packet's hashed
    /// trailer, hashed by the client, which builds the packet: `crate::formats::openpgp`). As
    /// `raw`, except that the key needs an OpenPGP certificate and an Ed25519 key signs the
    /// digest as its message (OpenPGP's EdDSA).
    OpenPgp,
    /// A container image signature over a payload the client sends (`content`): simple
    /// signing (OpenPGP, with `openpgp_trailer`) or cosign (ECDSA or RSA PKCS#1 v1.5 over the
    /// payload's digest, Ed25519 over the payload itself: what cosign verifies).
    /// The server checks the digest against the payload and records the image (`image`).
    Image,
}

impl SignatureFormat {
    /// Every format's name, as policies and requests spell them.
    pub const NAMES: [&'static str; 5] = ["raw", "cms", "cose_sign1", "openpgp", "image"];

    pub fn name(self) -> &'static str {
        match self {
            SignatureFormat::Raw => "raw",
            SignatureFormat::Cms => "cms",
            SignatureFormat::CoseSign1 => "cose_sign1",
            SignatureFormat::OpenPgp => "openpgp",
            SignatureFormat::Image => "image",
        }
    }

    pub fn parse(s: &str) -> Result<SignatureFormat, NameError> {
        match s {
            "raw" => Ok(SignatureFormat::Raw),
            "cms" => Ok(SignatureFormat::Cms),
            "cose_sign1" => Ok(SignatureFormat::CoseSign1),
            "openpgp" => Ok(SignatureFormat::OpenPgp),
            "image" => Ok(SignatureFormat::Image),
            other => Err(NameError::UnknownFormat(other.to_string())),
        }
    }
}

/// Parses a digest algorithm name; SHA-1 and anything unknown are refused.
pub fn parse_digest_algorithm(s: &str) -> Result<HashAlg, NameError> {
    match s.to_ascii_lowercase().replace('-', "").as_str() {
        "sha256" => Ok(HashAlg::Sha256),
        "sha384" => Ok(HashAlg::Sha384),
        "sha512" => Ok(HashAlg::Sha512),
        "sha1" => Err(NameError::Sha1),
        other => Err(NameError::UnknownDigest(other.to_string())),
    }
}

pub fn digest_algorithm_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
    }
}

/// containers/image's simple-signing payload type (format `image`).
pub const SIMPLE_SIGNING_TYPE: &str = "atomic container signature";
/// cosign's payload type (format `image`).
pub const COSIGN_TYPE: &str = "cosign container image signature";
