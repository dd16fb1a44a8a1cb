//! Key algorithms, hashes and signature schemes hallmark knows: the vocabulary a key store, a
//! signed format and `verify` share, kept in the client crate so a client names them without
//! the server (the server's `keys` re-exports them; what rcgen calls them stays there).

use std::fmt;
use std::str::FromStr;

/// The algorithm of a key pair held in a key store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    P256,
    P384,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::P256,
        KeyAlgorithm::P384,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::Ed25519,
    ];

    /// The name used in configs, profiles and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::P256 => "p256",
            KeyAlgorithm::P384 => "p384",
            KeyAlgorithm::Rsa3072 => "rsa3072",
            KeyAlgorithm::Rsa4096 => "rsa4096",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// The scheme a CA uses with this key unless told otherwise.
    pub fn default_scheme(self) -> SignatureScheme {
        match self {
            KeyAlgorithm::P256 => SignatureScheme::EcdsaSha256,
            KeyAlgorithm::P384 => SignatureScheme::EcdsaSha384,
            KeyAlgorithm::Rsa3072 => SignatureScheme::RsaPkcs1Sha256,
            KeyAlgorithm::Rsa4096 => SignatureScheme::RsaPkcs1Sha384,
            KeyAlgorithm::Ed25519 => SignatureScheme::Ed25519,
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096)
    }

    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// Whether `scheme` can be produced by a key of this algorithm.
    pub fn supports(self, scheme: SignatureScheme) -> bool {
        use SignatureScheme::*;
        match self {
            KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
                matches!(scheme, EcdsaSha256 | EcdsaSha384 | EcdsaSha512)
            }
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => matches!(
                scheme,
                RsaPkcs1Sha256
                    | RsaPkcs1Sha384
                    | RsaPkcs1Sha512
                    | RsaPssSha256
                    | RsaPssSha384
                    | RsaPssSha512
            ),
            KeyAlgorithm::Ed25519 => scheme == Ed25519,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown key algorithm '{s}' (expected one of p256, p384, rsa3072, rsa4096, ed25519)")
            })
    }
}

/// A signature scheme: key type, padding and hash together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    Ed25519,
}

/// Hash functions used with signature schemes. SHA-1 is deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn digest(self, msg: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            HashAlg::Sha256 => sha2::Sha256::digest(msg).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(msg).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(msg).to_vec(),
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }
}

impl SignatureScheme {
    pub fn hash(self) -> Option<HashAlg> {
        use SignatureScheme::*;
        match self {
            EcdsaSha256 | RsaPkcs1Sha256 | RsaPssSha256 => Some(HashAlg::Sha256),
            EcdsaSha384 | RsaPkcs1Sha384 | RsaPssSha384 => Some(HashAlg::Sha384),
            EcdsaSha512 | RsaPkcs1Sha512 | RsaPssSha512 => Some(HashAlg::Sha512),
            Ed25519 => None,
        }
    }
}
