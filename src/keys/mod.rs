//! The key store: one signer trait in front of an HSM (PKCS#11) or software keys.
//!
//! Keys are generated *inside* a store and never leave it; the rest of hallmark only ever holds a
//! [`Signer`] handle, which can say what its public key is and sign. The shape follows rcgen's
//! `PublicKeyData`/`SigningKey` pair and step-ca's key manager: a backend implements a handful of
//! calls and nothing else.

#[cfg(test)]
mod openpgp_tests;
pub mod pkcs11;
pub mod soft;

use std::fmt;
use std::sync::Arc;

/// The key vocabulary and the SPKI helpers live in the client crate (signed formats and
/// `verify` name keys too); every `crate::keys::…` path keeps working through these.
pub use hallmark_client::algorithm::{self, HashAlg, KeyAlgorithm, SignatureScheme};
pub use hallmark_client::spki::{
    key_of, kind_of, kind_of_spki, oid, KeyKind, SpkiError, UnknownKey,
};

/// The BIT STRING contents of a DER SubjectPublicKeyInfo, as a [`KeyError`].
pub fn subject_public_key_bits(spki_der: &[u8]) -> Result<Vec<u8>, KeyError> {
    Ok(hallmark_client::spki::subject_public_key_bits(spki_der)?)
}

/// A raw `r || s` ECDSA signature (PKCS#11's form) as DER `Ecdsa-Sig-Value`, as a [`KeyError`].
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, KeyError> {
    Ok(hallmark_client::spki::ecdsa_raw_to_der(raw)?)
}

/// The rcgen algorithm that writes `scheme`'s AlgorithmIdentifier.
/// `None` where rcgen has no constant (RSA-PSS, ECDSA with SHA-512): such schemes sign
/// digests and CMS, not certificates.
pub fn rcgen_algorithm(scheme: SignatureScheme) -> Option<&'static rcgen::SignatureAlgorithm> {
    use SignatureScheme::*;
    Some(match scheme {
        EcdsaSha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        EcdsaSha384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        RsaPkcs1Sha256 => &rcgen::PKCS_RSA_SHA256,
        RsaPkcs1Sha384 => &rcgen::PKCS_RSA_SHA384,
        RsaPkcs1Sha512 => &rcgen::PKCS_RSA_SHA512,
        Ed25519 => &rcgen::PKCS_ED25519,
        EcdsaSha512 | RsaPssSha256 | RsaPssSha384 | RsaPssSha512 => return None,
    })
}

/// Errors from a key store. A backend maps its own failures onto these kinds.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("key '{0}' was not found in the key store")]
    NotFound(String),
    #[error("key '{0}' already exists in the key store")]
    AlreadyExists(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("key store secret (PIN or passphrase): {0}")]
    Secret(String),
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    #[error("key file {path}: {detail}")]
    File { path: String, detail: String },
    #[error("signing failed: {0}")]
    Crypto(String),
}

impl From<SpkiError> for KeyError {
    fn from(e: SpkiError) -> Self {
        KeyError::Crypto(e.0)
    }
}

/// Where a key's protection attributes stand (read back from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProtection {
    pub sensitive: bool,
    pub extractable: bool,
    pub always_sensitive: bool,
    pub never_extractable: bool,
}

/// A handle on a private key that lives in a key store.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The label the key has in its store.
    fn label(&self) -> &str;
    fn algorithm(&self) -> KeyAlgorithm;
    /// DER SubjectPublicKeyInfo of the key.
    fn spki_der(&self) -> &[u8];
    /// Signs `msg` (the whole message: the signer hashes) and returns the signature in the
    /// encoding X.509, CMS and OCSP carry: DER `Ecdsa-Sig-Value` for ECDSA, raw for RSA and Ed25519.
    fn sign(&self, scheme: SignatureScheme, msg: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// Signs a digest the caller computed (`scheme`'s hash of the message), in the same
    /// encodings as [`Signer::sign`]. Ed25519 cannot sign digests and refuses.
    fn sign_digest(&self, scheme: SignatureScheme, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        let _ = digest;
        Err(KeyError::Unsupported(format!(
            "key '{}' cannot sign a digest with {scheme:?}",
            self.label()
        )))
    }
    /// A stable URI naming the key (RFC 7512 `pkcs11:` for HSM keys).
    fn uri(&self) -> String;
}

/// A place where keys are generated and used.
pub trait KeyStore: Send + Sync {
    /// "pkcs11" or "soft".
    fn kind(&self) -> &'static str;
    /// Generates a new key pair inside the store. Fails with `AlreadyExists` if the label is taken.
    fn generate(&self, label: &str, alg: KeyAlgorithm) -> Result<Arc<dyn Signer>, KeyError>;
    /// Opens an existing key.
    fn open(&self, label: &str) -> Result<Arc<dyn Signer>, KeyError>;
    /// Reads back how the private key is protected.
    fn protection(&self, label: &str) -> Result<KeyProtection, KeyError>;
    /// Checks that the store is reachable and logged in; returns a one-line description.
    fn check(&self) -> Result<String, KeyError>;
}

/// Where a store's secret (HSM PIN, soft-key passphrase) comes from: never argv, never the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(std::path::PathBuf),
}

impl SecretSource {
    pub fn read(&self) -> Result<zeroize::Zeroizing<String>, KeyError> {
        match self {
            SecretSource::Env(var) => {
                std::env::var(var)
                    .map(zeroize::Zeroizing::new)
                    .map_err(|_| {
                        KeyError::Secret(crate::envvar::unset_message(
                            "--pin-env/--passphrase-env (pin_env/passphrase_env in the config)",
                            var,
                            "the key store's PIN or passphrase, as UTF-8",
                        ))
                    })
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| zeroize::Zeroizing::new(s.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|e| KeyError::Secret(format!("cannot read {}: {e}", path.display()))),
        }
    }
}

/// Checks that `scheme` fits `alg` and `digest` has its hash's length: the common preamble of
/// [`Signer::sign_digest`] implementations. Returns the hash.
pub fn check_digest(
    alg: KeyAlgorithm,
    scheme: SignatureScheme,
    digest: &[u8],
) -> Result<HashAlg, KeyError> {
    if !alg.supports(scheme) {
        return Err(KeyError::Unsupported(format!(
            "a {alg} key cannot sign with {scheme:?}"
        )));
    }
    let hash = scheme.hash().ok_or_else(|| {
        KeyError::Unsupported(format!(
            "{scheme:?} signs whole messages and cannot sign a digest"
        ))
    })?;
    if digest.len() != hash.output_len() {
        return Err(KeyError::Unsupported(format!(
            "a {hash:?} digest is {} bytes, not {}",
            hash.output_len(),
            digest.len()
        )));
    }
    Ok(hash)
}

/// Checks a key label: labels become file names and PKCS#11 attributes, so keep them plain.
pub fn validate_label(label: &str) -> Result<(), KeyError> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !label.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(KeyError::Unsupported(format!(
            "invalid key label '{label}': use 1-64 characters from A-Z a-z 0-9 - _ ."
        )))
    }
}

/// The public half of a [`Signer`] as rcgen sees it. Its `sign` returns an empty signature on
/// purpose: rcgen only lays out the to-be-signed structure; [`resign`] then signs
/// those exact bytes with the real key, after policy, lint and the record (two-phase issuance).
pub struct TemplateKey {
    bits: Vec<u8>,
    alg: &'static rcgen::SignatureAlgorithm,
}

impl TemplateKey {
    /// A template for `spki_der` that writes `scheme` as the signature algorithm.
    pub fn new(spki_der: &[u8], scheme: SignatureScheme) -> Result<Self, KeyError> {
        let alg = rcgen_algorithm(scheme).ok_or_else(|| {
            KeyError::Unsupported(format!("{scheme:?} cannot sign certificates here"))
        })?;
        Ok(TemplateKey {
            bits: subject_public_key_bits(spki_der)?,
            alg,
        })
    }

    /// The template for a signer, with its default scheme.
    pub fn for_signer(signer: &dyn Signer) -> Result<Self, KeyError> {
        Self::new(signer.spki_der(), signer.algorithm().default_scheme())
    }
}

impl rcgen::PublicKeyData for TemplateKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

impl rcgen::SigningKey for TemplateKey {
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(Vec::new())
    }
}

/// Signs the to-be-signed part of a template made with a [`TemplateKey`].
#[derive(Debug, thiserror::Error)]
pub enum ResignError {
    #[error(transparent)]
    Der(#[from] crate::der::DerError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

pub fn resign(
    template: &[u8],
    signer: &dyn Signer,
    scheme: SignatureScheme,
) -> Result<Vec<u8>, ResignError> {
    let parts = crate::der::split_signed(template)?;
    let sig = signer.sign(scheme, parts.tbs)?;
    Ok(crate::der::assemble(parts.tbs, parts.algorithm, &sig))
}
