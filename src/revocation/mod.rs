//! Revocation and its publication: `revoke`, CRLs per CA (whole and partitioned), the OCSP
//! responder, and the server's background refresher that keeps them current.
//!
//! How the pieces fit:
//! - [`RevocationService::revoke`] records the revocation with its audit event, drops the certificate's
//!   pre-signed OCSP response and bumps its CA's *publication revision*, all in one transaction.
//!   From that commit on the responder answers `revoked` (a missing pre-signed response is signed
//!   live from the database), in this process or any other.
//! - The refresher (started by `hallmark serve`) watches the revisions, coalesces bursts, then
//!   re-signs the invalidated OCSP responses and reissues the CA's CRLs. On a schedule it also
//!   pre-signs responses for every unexpired certificate, reissues CRLs well before nextUpdate and
//!   renews the delegated responder certificates before they expire.
//! - Reads (OCSP answers, CRL scans) use the store's read connections and never wait on writers.
//!
//! This file holds `revoke` and the publication state; `crl` the CRLs, `responder` the OCSP
//! responder, `refresher` the background loop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use x509_parser::prelude::*;

use crate::clock::SharedClock;
use crate::config::{CaSection, Config, CrlSection, OcspSection};
use crate::error::{Error, Result};
use crate::issuer;
use crate::issuer::crl::{CrlBuilder, CrlEntry, CrlSpec};
use crate::issuer::ocsp::{
    self, CertIdHash, CertStatus, RequestError, ResponderKey, ResponseStatus,
};
use crate::issuer::{CaCertSpec, Urls};
use crate::keyring::Keyring;
use crate::keys::{subject_public_key_bits, SignatureScheme, Signer};
use crate::policy::NameAttr;
use crate::profile::Validity;
use crate::store::Store;
use crate::store::{CaRole, NewRevocation, PresignCandidate, Presigned, RevokeOutcome, StoreError};

mod crl;
pub(crate) mod error;
mod refresher;
mod responder;

pub use error::RevocationError;

use crl::shard_in_crl_dp;
pub use crl::PublishedCrl;
pub use refresher::spawn_refresher;
pub use responder::OcspAnswer;
use responder::Responders;

pub mod reason;
pub use reason::RevocationReason;

/// A recorded revocation, as returned to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub serial: String,
    /// The issuing CA whose CRL lists it.
    pub ca: String,
    pub reason: RevocationReason,
    pub revoked_at: i64,
    pub invalidity_date: Option<i64>,
    /// Set when an existing revocation was moved to keyCompromise.
    pub previous_reason: Option<RevocationReason>,
}

/// Normalises a serial as users write it (`7F:AB…`, `0x7fab…`) to the stored form.
pub fn normalize_serial(s: &str) -> Result<String> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut hex: String = t
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RevocationError::BadSerial(s.to_string()).into());
    }
    if hex.len() % 2 == 1 {
        hex.insert(0, '0');
    }
    Ok(hex)
}

// ---- per-database publication state ----

type CrlKey = (String, Option<u32>);

/// What the publication paths keep in memory for one database: the responders, the current
/// CRLs, and the refresher's wake-up.
#[derive(Default)]
pub struct Publication {
    responders: RwLock<Option<Arc<Responders>>>,
    crls: Mutex<HashMap<CrlKey, Arc<PublishedCrl>>>,
    building: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    wake: (Mutex<u64>, Condvar),
}

impl Publication {
    /// Wakes the refresher (a revocation was recorded in this process).
    pub fn poke(&self) {
        if let Ok(mut n) = self.wake.0.lock() {
            *n += 1;
            self.wake.1.notify_all();
        }
    }

    fn wait(&self, seen: &mut u64, timeout: Duration) {
        if let Ok(n) = self.wake.0.lock() {
            if *n == *seen {
                if let Ok((n, _)) = self.wake.1.wait_timeout(n, timeout) {
                    *seen = *n;
                }
            } else {
                *seen = *n;
            }
        }
    }

    fn cached_crl(&self, key: &CrlKey) -> Option<Arc<PublishedCrl>> {
        self.crls.lock().ok().and_then(|m| m.get(key).cloned())
    }

    fn build_lock(&self, ca: &str) -> Arc<Mutex<()>> {
        match self.building.lock() {
            Ok(mut m) => m.entry(ca.to_string()).or_default().clone(),
            Err(_) => Arc::new(Mutex::new(())),
        }
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Publication>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<Publication>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A poisoned lock: an internal error, like the store's.
fn internal(what: &str) -> Error {
    tracing::error!("{what}");
    Error::Store(StoreError::Poisoned)
}

/// The revocation and publication service: what it uses and nothing else — the store, the
/// keyring (the CAs that sign CRLs, the responders' keys), the clock, and its slice of the
/// configuration (`[crl]`, `[ocsp]`, the CA's name for responder certificates, the public URLs
/// certificates point at, and which database its publication state belongs to).
pub struct RevocationService {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    clock: SharedClock,
    crl: CrlSection,
    ocsp: OcspSection,
    /// `[ca]`: country and organization in responder certificates.
    ca: CaSection,
    urls: Urls,
    /// The configuration's directory and `database.path` as written, then resolved: the key of
    /// the publication state every `Hallmark` on the same database in this process shares.
    base_dir: PathBuf,
    database: PathBuf,
    database_path: PathBuf,
}

impl RevocationService {
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        clock: SharedClock,
        config: &Config,
    ) -> RevocationService {
        RevocationService {
            store,
            keyring,
            clock,
            crl: config.crl.clone(),
            ocsp: config.ocsp.clone(),
            ca: config.ca.clone(),
            urls: Urls {
                public_base: config.server.public_url.clone(),
                crl_shards: config.crl.shards,
            },
            base_dir: config.base_dir.clone(),
            database: config.database.path.clone(),
            database_path: config.database_path(),
        }
    }

    /// Where certificates point relying parties (CRLs, CA certificates, OCSP).
    pub fn urls(&self) -> &Urls {
        &self.urls
    }

    /// The certificate of the delegated OCSP responder of `ca_name` (made at init, renewed by
    /// the server before it expires).
    pub fn responder_spec(&self, ca_name: &str) -> CaCertSpec {
        CaCertSpec {
            subject: NameAttr::ca_subject(
                &self.ca.country,
                &self.ca.organization,
                format!("{} OCSP Responder for {ca_name}", self.ca.organization),
            ),
            validity: Validity::Days(self.ocsp.responder_validity_days),
            path_len: None,
            responder: true,
            eku: vec![],
            policies: vec![],
            crl_url: None,
            ca_issuers_url: None,
        }
    }

    /// The publication state of this database (shared by every `Hallmark` on it in the process).
    pub fn publication(&self) -> Arc<Publication> {
        // The request path asks for this on every OCSP answer: a per-thread memo of the last
        // database avoids the registry's lock and a path allocation.
        thread_local! {
            static LAST: std::cell::RefCell<Option<(PathBuf, PathBuf, Arc<Publication>)>> =
                const { std::cell::RefCell::new(None) };
        }
        let (base, db) = (&self.base_dir, &self.database);
        let hit = LAST.with(|l| {
            l.borrow()
                .as_ref()
                .filter(|(b, d, _)| b == base && d == db)
                .map(|(_, _, p)| p.clone())
        });
        if let Some(p) = hit {
            return p;
        }
        let p = match registry().lock() {
            Ok(mut m) => m.entry(self.database_path.clone()).or_default().clone(),
            Err(_) => Arc::new(Publication::default()),
        };
        LAST.with(|l| *l.borrow_mut() = Some((base.clone(), db.clone(), p.clone())));
        p
    }

    /// Revokes a certificate this CA issued. `invalidity_date` (Unix seconds) is when the key is
    /// known or suspected to have been compromised; it cannot be in the future. Errors:
    /// `not-found` for a serial never issued, `conflict` for a second revocation (except moving
    /// the reason to keyCompromise), `bad-request` for a malformed serial or date.
    pub fn revoke(
        &self,
        serial: &str,
        reason: RevocationReason,
        invalidity_date: Option<i64>,
        actor: &str,
    ) -> Result<Revocation> {
        let serial = normalize_serial(serial)?;
        if let Some(d) = invalidity_date {
            if d > self.clock.now() + 300 {
                return Err(RevocationError::FutureInvalidityDate.into());
            }
        }
        let cert = self
            .store
            .get_certificate(&serial)?
            .filter(|c| c.status == crate::store::CertStatus::Issued)
            .ok_or_else(|| Error::NotFound(format!("certificate {serial}")))?;
        let crl_shard = cert
            .cert_der
            .as_deref()
            .and_then(|d| shard_in_crl_dp(d, &cert.ca));
        let outcome = self
            .store
            .revoke(
                &NewRevocation {
                    serial: serial.clone(),
                    reason: reason.code(),
                    invalidity_date,
                    crl_shard,
                },
                actor,
            )
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    let current = self
                        .store
                        .get_revocation(&serial)
                        .ok()
                        .flatten()
                        .and_then(|r| RevocationReason::from_code(r.reason))
                        .map(|r| r.name())
                        .unwrap_or("?");
                    Error::Conflict(format!(
                        "certificate {serial} is already revoked ({current}); only a change to keyCompromise is allowed"
                    ))
                }
                StoreError::NotFound(_) => Error::NotFound(format!("certificate {serial}")),
                e => e.into(),
            })?;
        self.publication().poke();
        // A revoked responder certificate must not sign another response: renewed at once.
        let responder = self
            .store
            .list_cas()?
            .iter()
            .any(|c| c.role == CaRole::Ocsp && c.serial.as_deref() == Some(serial.as_str()));
        if responder {
            self.renew_responders(actor)?;
        }
        let (record, previous) = match outcome {
            RevokeOutcome::Revoked(r) => (r, None),
            RevokeOutcome::ReasonChanged { previous, record } => (record, Some(previous)),
        };
        Ok(Revocation {
            serial: record.serial,
            ca: record.ca,
            reason: RevocationReason::from_code(record.reason).unwrap_or(reason),
            revoked_at: record.revoked_at,
            invalidity_date: record.invalidity_date,
            previous_reason: previous.and_then(RevocationReason::from_code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_by_rfc_name() {
        assert_eq!(
            "keyCompromise".parse::<RevocationReason>(),
            Ok(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            "key-compromise".parse::<RevocationReason>(),
            Ok(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            "cACompromise".parse::<RevocationReason>(),
            Ok(RevocationReason::CaCompromise)
        );
        assert_eq!(RevocationReason::PrivilegeWithdrawn.code(), 9);
        assert!("certificateHold".parse::<RevocationReason>().is_err());
        assert!("removeFromCRL".parse::<RevocationReason>().is_err());
        assert!("nope".parse::<RevocationReason>().is_err());
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
            assert_eq!(r.name().parse::<RevocationReason>(), Ok(r));
        }
    }

    #[test]
    fn serials_normalise() {
        assert_eq!(normalize_serial("7F:AB:01").unwrap(), "7fab01");
        assert_eq!(normalize_serial("0x1").unwrap(), "01");
        assert!(normalize_serial("xyz").is_err());
        assert!(normalize_serial("").is_err());
    }
}
