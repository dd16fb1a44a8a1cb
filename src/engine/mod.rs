//! The engine: one value holding config, store, profiles, key stores and loaded CAs, with one
//! method per thing a user can do. The CLI and the HTTP server are thin layers over these calls.
//!
//! This file holds the value and its wiring (config, key stores, CAs, chains); `issuance`
//! certificates, publishers and publisher keys; `hierarchy` the CAs and service certificates;
//! `doctor` the health checks; `batch` factory batches; `recovery` what a stop left behind;
//! `sealing` secrets kept sealed at rest.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use x509_parser::prelude::*;

use crate::clock::SharedClock;
use crate::config::{Config, KeyStoreConfig};
use crate::error::{Error, Result};
use crate::issuer::{self, CaCertSpec, CaHandle, Urls};
use crate::keys::{pkcs11::Pkcs11KeyStore, soft::SoftKeyStore, KeyAlgorithm, KeyStore, Signer};
use crate::policy::signing::KeyPolicy;
use crate::policy::{self, IssueRequest, NameAttr};
use crate::profile::{Profiles, Validity};
use crate::store::{CaRecord, CaRole, Intent, KeyRecord, Publisher, Store, StoreError};

mod batch;
mod doctor;
pub(crate) mod error;
mod hierarchy;
mod issuance;
mod records;
mod recovery;
pub mod sealing;

pub use batch::ChunkInput;
pub use doctor::Check;
pub use error::EngineError;
pub use hierarchy::CaPurpose;
use issuance::intent_for;
pub use records::Page;
pub use recovery::Recovered;

/// A certificate as returned to a caller: already recorded.
#[derive(Debug, Clone)]
pub struct Issued {
    pub serial: String,
    pub cert_der: Vec<u8>,
    /// Issuing chain, leaf's issuer first, root excluded.
    pub chain: Vec<Vec<u8>>,
}

impl Issued {
    /// The certificate and its chain as PEM, leaf first.
    pub fn pem_chain(&self) -> String {
        let mut text = crate::pemfmt::encode("CERTIFICATE", self.cert_der.as_slice());
        for c in &self.chain {
            text.push_str(&crate::pemfmt::encode("CERTIFICATE", c.as_slice()));
        }
        text
    }
}

pub struct Hallmark {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub profiles: Profiles,
    pub metrics: crate::metrics::Metrics,
    /// Where every time decision of the services comes from (the store has the same one).
    pub clock: SharedClock,
    stores: Mutex<HashMap<String, Arc<dyn KeyStore>>>,
    cas: Mutex<HashMap<String, Arc<CaHandle>>>,
    /// Per-key signing rate buckets (tokens left, last refill), see `signing`.
    pub(crate) sign_buckets: Mutex<HashMap<String, (f64, std::time::Instant)>>,
    /// The time-stamp authority, loaded on first use (see `tsa`).
    tsa: Mutex<Option<Arc<crate::tsa::Tsa>>>,
    /// Publisher signing keys opened in their key stores, by store and label: opening a key
    /// (finding its objects in a PKCS#11 token, decrypting a soft key) costs more than a
    /// signature. Every use still checks the key against its certificate.
    publisher_signers: Mutex<HashMap<(String, String), Arc<dyn Signer>>>,
    /// What every signature checks of a publisher key's certificate (validity, serial, key),
    /// parsed once per certificate rather than once per signature; see `signing`.
    pub(crate) key_cert_facts: Mutex<HashMap<String, Arc<crate::signing::KeyCertFacts>>>,
    /// The key policies `[signing.keys.<label>]` sets, checked when the config was loaded.
    pub(crate) config_key_policies: HashMap<String, KeyPolicy>,
    /// When the store was opened: an intent recorded before it was left by a stop (see
    /// `recovery`).
    started_at: i64,
    /// The key secrets at rest are sealed with, once derived (see `sealing`).
    seal_key: Mutex<Option<zeroize::Zeroizing<[u8; 32]>>>,
}

/// Key labels in a store: CA keys and publisher keys never collide.
pub fn ca_key_label(ca: &str) -> String {
    format!("ca-{ca}")
}

pub fn publisher_key_label(label: &str) -> String {
    format!("key-{label}")
}

/// What the configuration means to the layers that own its values, checked once when it is
/// opened: key policies (policy), workload rules (policy), webhook events (webhooks). The
/// configuration itself is plain data and checks only its own shapes. Gives the key policies.
pub fn check_config(
    config: &Config,
) -> std::result::Result<HashMap<String, KeyPolicy>, crate::config::ConfigError> {
    let invalid = |problem: String| crate::config::ConfigError::Invalid {
        path: config.path.display().to_string(),
        problem,
    };
    crate::webhooks::events::check_events(&config.webhooks).map_err(invalid)?;
    crate::policy::workload::check_rules(&config.identity).map_err(invalid)?;
    config
        .signing
        .keys
        .iter()
        .map(|(label, p)| {
            KeyPolicy::from_config(p)
                .map(|p| (label.clone(), p))
                .map_err(|e| {
                    invalid(match e {
                        crate::policy::PolicyError::BadRequest(why) => {
                            format!("signing.keys.{label}: {why}")
                        }
                        e => format!("signing.keys.{label}: {e}"),
                    })
                })
        })
        .collect()
}

impl Hallmark {
    pub fn open(config_path: &Path) -> Result<Hallmark> {
        let config = Config::load(config_path)?;
        Self::with_config(config)
    }

    pub fn with_config(config: Config) -> Result<Hallmark> {
        Self::with_clock(config, crate::clock::system())
    }

    /// As [`Hallmark::with_config`], on `clock` rather than the system's: the services and the
    /// store take every time from it.
    pub fn with_clock(config: Config, clock: SharedClock) -> Result<Hallmark> {
        let config_key_policies = check_config(&config)?;
        let store = crate::store::open_existing(&config.database_path(), clock.clone())?;
        let profiles = Profiles::load_dir(&config.profiles_dir())?;
        Ok(Hallmark {
            config,
            config_key_policies,
            store,
            profiles,
            metrics: Default::default(),
            started_at: clock.now(),
            clock,
            stores: Mutex::new(HashMap::new()),
            cas: Mutex::new(HashMap::new()),
            sign_buckets: Mutex::new(HashMap::new()),
            tsa: Mutex::new(None),
            publisher_signers: Mutex::new(HashMap::new()),
            key_cert_facts: Mutex::new(HashMap::new()),
            seal_key: Mutex::new(None),
        })
    }

    pub fn urls(&self) -> Urls {
        Urls {
            public_base: self.config.server.public_url.clone(),
            crl_shards: self.config.crl.shards,
        }
    }

    /// Opens (once) the named key store.
    pub fn key_store(&self, name: &str) -> Result<Arc<dyn KeyStore>> {
        if let Some(ks) = self.stores.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(ks);
        }
        let cfg =
            self.config.key_stores.get(name).ok_or_else(|| {
                Error::Internal(format!("key store '{name}' is not in the config"))
            })?;
        let ks: Arc<dyn KeyStore> = match cfg {
            KeyStoreConfig::Soft {
                dir,
                passphrase_env,
                passphrase_file,
            } => Arc::new(SoftKeyStore::new(
                self.config.resolve(dir),
                self.config.secret_source(passphrase_env, passphrase_file),
            )),
            KeyStoreConfig::Pkcs11 {
                module,
                token_label,
                pin_env,
                pin_file,
                ..
            } => Arc::new(Pkcs11KeyStore::open(
                module,
                token_label,
                &self.config.secret_source(pin_env, pin_file),
            )?),
        };
        if let Ok(mut m) = self.stores.lock() {
            m.insert(name.to_string(), ks.clone());
        }
        Ok(ks)
    }

    /// Loads (once) a CA with its key, ready to sign.
    pub fn ca(&self, name: &str) -> Result<Arc<CaHandle>> {
        if let Some(ca) = self.cas.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(ca);
        }
        let record = self
            .store
            .get_ca(name)?
            .ok_or_else(|| Error::NotFound(format!("CA '{name}'")))?;
        let signer = self.key_store(&record.key_store)?.open(&record.key_label)?;
        let handle = Arc::new(CaHandle::new(record, signer)?);
        if let Ok(mut m) = self.cas.lock() {
            m.insert(name.to_string(), handle.clone());
        }
        Ok(handle)
    }

    /// Loads (once) the time-stamp authority's key and certificate.
    pub fn tsa(&self) -> Result<Arc<crate::tsa::Tsa>> {
        if let Some(t) = self.tsa.lock().ok().and_then(|m| m.clone()) {
            return Ok(t);
        }
        let t = Arc::new(crate::tsa::load(self)?);
        if let Ok(mut m) = self.tsa.lock() {
            *m = Some(t.clone());
        }
        Ok(t)
    }

    /// The chain above a CA's certificates: that CA, then its parents, root excluded.
    pub fn chain(&self, ca: &str) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut next = Some(ca.to_string());
        while let Some(name) = next {
            let rec = self
                .store
                .get_ca(&name)?
                .ok_or_else(|| Error::NotFound(format!("CA '{name}'")))?;
            if rec.role == CaRole::Root {
                break;
            }
            if let Some(der) = rec.cert_der {
                out.push(der);
            }
            next = rec.parent;
            if out.len() > 8 {
                return Err(Error::Corrupt("the CA records' parents form a loop".into()));
            }
        }
        Ok(out)
    }
}
