//! The RFC 3161 time-stamp authority: `tsa init` makes its key and certificate (in the engine,
//! which issues it), `POST /tsa` and the signing service ask [`TsaService`] for tokens.
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

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::issuer::{self, tsp};
use crate::keyring::Keyring;
use crate::keys::Signer;
use crate::store::{AuditWrite, RevocationRead, Store};

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

/// The time-stamp authority service: what it uses and nothing else — the key store its key is
/// in, the two store traits it needs (is its certificate revoked; record each token), the
/// clock, the policy OID its tokens carry, and where its certificate chain lives.
pub struct TsaService {
    keyring: Arc<Keyring>,
    revocations: Arc<dyn RevocationRead>,
    audit: Arc<dyn AuditWrite>,
    clock: SharedClock,
    /// `keys.default_store`: the key store holding [`TSA_KEY`].
    key_store: String,
    /// `ca.policy_oid`: the policy every token is issued under.
    policy_oid: String,
    cert_path: PathBuf,
    loaded: Mutex<Option<Arc<Tsa>>>,
}

impl TsaService {
    pub fn new(
        keyring: Arc<Keyring>,
        store: Arc<dyn Store>,
        clock: SharedClock,
        config: &Config,
    ) -> TsaService {
        TsaService {
            keyring,
            revocations: store.clone(),
            audit: store,
            clock,
            key_store: config.keys.default_store.clone(),
            policy_oid: config.ca.policy_oid.clone(),
            cert_path: config.base_dir.join(TSA_CERT_FILE),
            loaded: Mutex::new(None),
        }
    }

    /// Where the TSA certificate chain of this configuration lives.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Whether a TSA is set up for this configuration (its certificate chain file exists).
    pub fn configured(&self) -> bool {
        self.cert_path.exists()
    }

    /// The key store name the TSA key is made in (`keys.default_store`).
    pub fn key_store_name(&self) -> &str {
        &self.key_store
    }

    /// The TSA's key and certificate, loaded on first use.
    pub fn tsa(&self) -> Result<Arc<Tsa>> {
        if let Some(t) = self.loaded.lock().ok().and_then(|m| m.clone()) {
            return Ok(t);
        }
        let t = Arc::new(self.load()?);
        if let Ok(mut m) = self.loaded.lock() {
            *m = Some(t.clone());
        }
        Ok(t)
    }

    /// Loads the TSA key and certificate.
    fn load(&self) -> Result<Tsa> {
        let path = &self.cert_path;
        let text = std::fs::read(path).map_err(|e| {
            Error::NotFound(format!(
                "the TSA certificate {} ({e}; run `hallmark tsa init`)",
                path.display()
            ))
        })?;
        let blocks = pem::parse_many(&text)
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
        let mut certs = blocks
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.into_contents());
        let cert_der = certs
            .next()
            .ok_or_else(|| Error::Internal(format!("{} holds no certificate", path.display())))?;
        let chain = certs.collect();
        let signer = self.keyring.key_store(&self.key_store)?.open(TSA_KEY)?;
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
}
