//! Issuance: a certificate from a request policy approved, as the CA's one path — intent
//! recorded, then signed, then completed — one at a time (`mod.rs`) or in volume for batches and
//! the factory line (`batch.rs`). The service holds what it uses: the store, the keyring (the CA
//! that signs), the profiles, the clock, the metrics it counts into, and the URLs and policy OID
//! certificates carry.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::{Config, KeyStoreConfig};
use crate::error::Result;
use crate::issuer::{self, CaHandle, Urls};
use crate::keyring::Keyring;
use crate::metrics::Metrics;
use crate::policy::{self, IssueRequest};
use crate::profile::Profiles;
use crate::store::{Intent, Store, StoreError};

mod batch;

pub use batch::ChunkInput;

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

/// The issuance service.
pub struct Issuance {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    profiles: Arc<Profiles>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    urls: Urls,
    /// `ca.policy_oid`: the certificate policy every leaf carries.
    policy_oid: String,
    /// `[key_stores.*]`: how many signatures a batch asks of a PKCS#11 token at once.
    key_stores: BTreeMap<String, KeyStoreConfig>,
}

impl Issuance {
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        profiles: Arc<Profiles>,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        urls: Urls,
        config: &Config,
    ) -> Issuance {
        Issuance {
            store,
            keyring,
            profiles,
            clock,
            metrics,
            urls,
            policy_oid: config.ca.policy_oid.clone(),
            key_stores: config.key_stores.clone(),
        }
    }

    /// Signs to-be-signed bytes recorded in an intent with the CA that recorded them.
    pub(crate) fn sign_intent_tbs(&self, ca: &str, tbs: &[u8]) -> Result<Vec<u8>> {
        let ca = self.keyring.ca(ca)?;
        let sig = ca.signer.sign(ca.scheme, tbs)?;
        let alg = crate::der::tbs_signature_algorithm(tbs)
            .map_err(|e| crate::error::Error::Corrupt(format!("recorded certificate intent: {e}")))?
            .to_vec();
        Ok(crate::der::assemble(tbs, &alg, &sig))
    }

    /// Issues a certificate: policy, then prepare + lint, record, sign, complete.
    pub fn issue(&self, req: &IssueRequest) -> Result<Issued> {
        let approved = policy::approve(&self.profiles, &*self.store, req)?;
        self.issue_approved(&approved, None)
    }

    /// The CA half of issuance, for a request policy approved. `request_id` links the
    /// certificate to a stored (approved) request instead of recording the request anew.
    pub fn issue_approved(
        &self,
        approved: &policy::Approved,
        request_id: Option<i64>,
    ) -> Result<Issued> {
        let ca = self.keyring.ca(&approved.profile().issuer)?;
        let urls = &self.urls;
        // A serial collision (2^-126) is retried with a fresh serial; nothing was written.
        let mut attempt = 0;
        let prepared = loop {
            let prepared = issuer::prepare_leaf(
                approved,
                &ca,
                urls,
                &self.policy_oid,
                self.clock.now(),
                issuer::random_serial(self.clock.now_millis()),
            )?;
            let intent = intent_for(approved, &prepared, &ca, request_id, None)?;
            match self.store.record_intent(&intent) {
                Ok(_) => break prepared,
                Err(StoreError::Conflict(_)) if attempt < 3 => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        };
        let started = std::time::Instant::now();
        let signed = issuer::sign(&prepared, &ca);
        self.metrics.observe_sign(started.elapsed());
        let cert = match signed {
            Ok(c) => c,
            Err(e) => {
                let _ = self.store.abandon_intent(
                    &prepared.serial,
                    &e.to_string(),
                    approved.requester(),
                );
                return Err(e.into());
            }
        };
        self.store
            .complete_issuance(&prepared.serial, &cert, approved.requester())?;
        self.metrics.count_issued(&approved.profile().name, 1);
        Ok(Issued {
            serial: prepared.serial,
            cert_der: cert,
            chain: self.keyring.chain(&ca.record.name)?,
        })
    }
}

/// The record of what the CA is about to sign.
pub(crate) fn intent_for(
    approved: &policy::Approved,
    prepared: &issuer::Prepared,
    ca: &CaHandle,
    request_id: Option<i64>,
    station: Option<&str>,
) -> Result<Intent> {
    Ok(Intent {
        serial: prepared.serial.clone(),
        ca: ca.record.name.clone(),
        profile: approved.profile().name.clone(),
        publisher: Some(approved.publisher().id.clone()),
        requester: approved.requester().to_string(),
        csr_der: approved.csr().der.clone(),
        subject: prepared.subject.clone(),
        spki_sha256: prepared.spki_sha256.clone(),
        not_before: prepared.not_before,
        not_after: prepared.not_after,
        tbs_der: prepared.tbs()?,
        request_id,
        device_serial: approved.device_serial().map(str::to_string),
        station: station.map(str::to_string),
        identity: approved.identity().map(str::to_string),
    })
}
