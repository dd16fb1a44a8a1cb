//! The RFC 3161 time-stamp authority: `tsa init` makes its key and certificate, `POST /tsa`
//! answers queries.
//!
//! The TSA key is `tsa` in the default key store. Its certificate comes from the `timestamping`
//! profile (EKU timeStamping, critical) issued by `timestamping-ca`, subject
//! `C, O = <the CA's>, CN = "<org> Time-Stamping Authority"`, and is recorded like any issued
//! certificate; the PEM chain (TSA certificate, then `timestamping-ca`) is kept in the file
//! [`TSA_CERT_FILE`] beside the config, which is what the server loads.
//!
//! Every token has a fresh 16-byte serial (the time in ms, then 72 CSPRNG bits: `issuer::random_serial`), recorded in the database as an audit event
//! `tsa.timestamp` (subject: the serial in hex; detail: hash, imprint, time). Tokens carry the
//! CA's policy OID (`ca.policy_oid`) and an accuracy of one second.

mod stamp;

pub use stamp::{respond, stamp_digest};

use crate::engine::Hallmark;
use crate::error::{Error, Result};
use crate::issuer::{self, tsp};
use crate::keys::{KeyAlgorithm, KeyError, Signer};
use std::path::PathBuf;
use std::sync::Arc;

/// The TSA key's label in the default key store.
pub const TSA_KEY: &str = "tsa";

/// The TSA certificate chain (PEM, TSA certificate first), relative to the config's directory.
pub const TSA_CERT_FILE: &str = "tsa.pem";

/// The profile of the TSA certificate.
pub const TSA_PROFILE: &str = "timestamping";

/// A loaded TSA: key and certificate.
#[derive(Debug)]
pub struct Tsa {
    pub signer: Arc<dyn Signer>,
    pub cert_der: Vec<u8>,
    /// The certificates above it in tsa.pem (`timestamping-ca`), sent with the token when the
    /// query asks for certificates (Java and Authenticode verifiers need the whole path).
    pub chain: Vec<Vec<u8>>,
    /// The TSA certificate's serial (hex, as the store records it) and notAfter: a token is
    /// refused once that certificate is revoked or expired.
    pub serial: String,
    pub not_after: i64,
}

/// Where the TSA certificate chain of a config lives.
pub fn cert_path(hm: &Hallmark) -> PathBuf {
    hm.config.base_dir.join(TSA_CERT_FILE)
}

/// Makes the TSA key and certificate (`hallmark tsa init`, and the end of `hallmark init`).
/// Returns the path of the PEM chain written.
pub fn init(hm: &Hallmark, alg: KeyAlgorithm, actor: &str) -> Result<PathBuf> {
    let path = cert_path(hm);
    if path.exists() {
        return Err(Error::Conflict(format!(
            "a TSA certificate already exists at {}",
            path.display()
        )));
    }
    // The profile is checked before a key is made.
    hm.profiles.get(TSA_PROFILE)?;
    let ks = hm.key_store(&hm.config.keys.default_store)?;
    // Without tsa.pem, a `tsa` key in the store was left by an attempt that stopped before its
    // certificate was written: it never signed a token, so it is certified now instead of being
    // orphaned (and blocking every later attempt).
    let signer = match ks.generate(TSA_KEY, alg) {
        Err(KeyError::AlreadyExists(_)) => {
            let s = ks.open(TSA_KEY)?;
            if s.algorithm() != alg {
                return Err(Error::Conflict(format!(
                    "the key store already holds a '{TSA_KEY}' key of another algorithm ({}), \
                     left by an earlier attempt; use --algorithm {} or remove it",
                    s.algorithm(),
                    s.algorithm()
                )));
            }
            tracing::info!("certifying the TSA key left by an earlier attempt");
            s
        }
        r => r?,
    };
    let cn = format!("{} Time-Stamping Authority", hm.config.ca.organization);
    let issued = hm.issue_own(TSA_PROFILE, &cn, vec![], signer.as_ref(), actor)?;
    std::fs::write(&path, issued.pem_chain())
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
    hm.store
        .audit("tsa.init", &issued.serial, Some(TSA_PROFILE), actor)?;
    Ok(path)
}

/// Loads the TSA key and certificate.
pub fn load(hm: &Hallmark) -> Result<Tsa> {
    let path = cert_path(hm);
    let text = std::fs::read(&path).map_err(|e| {
        Error::NotFound(format!(
            "the TSA certificate {} ({e}; run `hallmark tsa init`)",
            path.display()
        ))
    })?;
    let blocks =
        pem::parse_many(&text).map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
    let mut certs = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents());
    let cert_der = certs
        .next()
        .ok_or_else(|| Error::Internal(format!("{} holds no certificate", path.display())))?;
    let chain = certs.collect();
    let signer = hm.key_store(&hm.config.keys.default_store)?.open(TSA_KEY)?;
    let (_, c) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| Error::Internal(format!("TSA certificate: {e}")))?;
    if c.public_key().raw != signer.spki_der() {
        return Err(Error::Internal(
            "the TSA certificate is not for the key 'tsa' (public keys differ)".into(),
        ));
    }
    let serial = hex::encode(c.raw_serial());
    let not_after = c.validity().not_after.timestamp();
    Ok(Tsa {
        signer,
        cert_der,
        chain,
        serial,
        not_after,
    })
}

/// Whether a TSA is set up for this config (its certificate chain file exists).
pub fn configured(hm: &Hallmark) -> bool {
    cert_path(hm).exists()
}
