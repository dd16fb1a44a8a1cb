//! The engine: the one value the edges (CLI, HTTP) hold. It opens the configuration, the store,
//! the profiles and the keyring once, builds each service struct with only what that service
//! uses (issuance, requests, tokens, signing, revocation, provisioning, TSA, webhooks), and
//! keeps what combines several of them: the CA hierarchy and service certificates
//! (`hierarchy`), publishers and publisher keys (`issuance`), record pages and lookups
//! (`records`), the health checks (`doctor`), what a stop left behind (`recovery`) and secrets
//! kept sealed at rest (`sealing`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use x509_parser::prelude::*;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::issuer::{self, CaCertSpec, CaHandle, Urls};
use crate::keys::{KeyAlgorithm, KeyStore, Signer};
use crate::policy::signing::KeyPolicy;
use crate::policy::{self, IssueRequest, NameAttr};
use crate::profile::{Profiles, Validity};
use crate::store::{CaRecord, CaRole, Intent, KeyRecord, Publisher, Store, StoreError};

mod doctor;
pub(crate) mod error;
mod hierarchy;
mod issuance;
mod records;
mod recovery;
pub mod sealing;

pub use crate::issuance::ChunkInput;
pub use doctor::Check;
pub use error::EngineError;
pub use hierarchy::CaPurpose;
pub use records::Page;
pub use recovery::Recovered;

pub use crate::issuance::Issued;

pub struct Hallmark {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub profiles: Arc<Profiles>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where every time decision of the services comes from (the store has the same one).
    pub clock: SharedClock,
    /// Key stores, CAs and publisher keys, opened once and shared with the services.
    pub keyring: Arc<crate::keyring::Keyring>,
    /// The time-stamp authority service.
    pub tsa: Arc<crate::tsa::TsaService>,
    /// Issuance: the CA's one path from an approved request to a recorded certificate.
    pub issuance: Arc<crate::issuance::Issuance>,
    /// Certificate requests and their approvals.
    pub requests: Arc<crate::requests::Requests>,
    /// API tokens.
    pub tokens: Arc<crate::requests::Tokens>,
    /// The factory line: stations and batch provisioning.
    pub provisioning: Arc<crate::provision::Provisioning>,
    /// Webhook delivery and expiry announcements.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// The signing service.
    pub signing: Arc<crate::signing::Signing>,
    /// Revocation, CRLs and the OCSP responder.
    pub revocation: Arc<crate::revocation::RevocationService>,
    /// When the store was opened: an intent recorded before it was left by a stop (see
    /// `recovery`).
    started_at: i64,
    /// The key secrets at rest are sealed with, once derived (see `sealing`).
    seal_key: Mutex<Option<zeroize::Zeroizing<[u8; 32]>>>,
}

pub use crate::keyring::{ca_key_label, publisher_key_label};

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
        let started_at = clock.now();
        let profiles = Arc::new(Profiles::load_dir(&config.profiles_dir())?);
        let metrics: Arc<crate::metrics::Metrics> = Default::default();
        let keyring = Arc::new(crate::keyring::Keyring::new(
            store.clone(),
            config.key_stores.clone(),
            config.base_dir.clone(),
        ));
        let tsa = Arc::new(crate::tsa::TsaService::new(
            keyring.clone(),
            store.clone(),
            clock.clone(),
            &config,
        ));
        let signing = Arc::new(crate::signing::Signing::new(
            store.clone(),
            keyring.clone(),
            tsa.clone(),
            clock.clone(),
            &config,
            config_key_policies,
        ));
        let revocation = Arc::new(crate::revocation::RevocationService::new(
            store.clone(),
            keyring.clone(),
            clock.clone(),
            &config,
        ));
        let issuance = Arc::new(crate::issuance::Issuance::new(
            store.clone(),
            keyring.clone(),
            profiles.clone(),
            clock.clone(),
            metrics.clone(),
            revocation.urls().clone(),
            &config,
        ));
        let requests = Arc::new(crate::requests::Requests::new(
            store.clone(),
            profiles.clone(),
            clock.clone(),
            issuance.clone(),
            config.api.request_ttl_hours,
        ));
        let provisioning = Arc::new(crate::provision::Provisioning::new(
            store.clone(),
            profiles.clone(),
            clock.clone(),
            issuance.clone(),
            revocation.clone(),
            started_at,
        ));
        let webhooks = Arc::new(crate::webhooks::Webhooks::new(
            store.clone(),
            clock.clone(),
            &config,
        ));
        Ok(Hallmark {
            config,
            signing,
            revocation,
            requests,
            webhooks,
            provisioning,
            tokens: Arc::new(crate::requests::Tokens::new(store.clone(), clock.clone())),
            issuance,
            store,
            profiles,
            metrics,
            started_at,
            clock,
            keyring,
            tsa,
            seal_key: Mutex::new(None),
        })
    }

    pub fn urls(&self) -> Urls {
        self.revocation.urls().clone()
    }

    /// Opens (once) the named key store.
    pub fn key_store(&self, name: &str) -> Result<Arc<dyn KeyStore>> {
        self.keyring.key_store(name)
    }

    /// Loads (once) a CA with its key, ready to sign.
    pub fn ca(&self, name: &str) -> Result<Arc<CaHandle>> {
        self.keyring.ca(name)
    }

    /// The chain above a CA's certificates: that CA, then its parents, root excluded.
    pub fn chain(&self, ca: &str) -> Result<Vec<Vec<u8>>> {
        self.keyring.chain(ca)
    }
}
