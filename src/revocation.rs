//! Revocation and its publication: `revoke`, CRLs per CA (whole and partitioned), the OCSP
//! responder, and the server's background refresher that keeps them current.
//!
//! How the pieces fit:
//! - [`Hallmark::revoke`] records the revocation with its audit event, drops the certificate's
//!   pre-signed OCSP response and bumps its CA's *publication revision*, all in one transaction.
//!   From that commit on the responder answers `revoked` (a missing pre-signed response is signed
//!   live from the database), in this process or any other.
//! - The refresher (started by `hallmark serve`) watches the revisions, coalesces bursts, then
//!   re-signs the invalidated OCSP responses and reissues the CA's CRLs. On a schedule it also
//!   pre-signs responses for every unexpired certificate, reissues CRLs well before nextUpdate and
//!   renews the delegated responder certificates before they expire.
//! - Reads (OCSP answers, CRL scans) use the store's read connections and never wait on writers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use x509_parser::prelude::*;

use crate::engine::Hallmark;
use crate::error::{Error, Result};
use crate::issuer;
use crate::issuer::crl::{CrlBuilder, CrlEntry, CrlSpec};
use crate::issuer::ocsp::{
    self, CertIdHash, CertStatus, RequestError, ResponderKey, ResponseStatus,
};
use crate::keys::{subject_public_key_bits, SignatureScheme, Signer};
use crate::store::{
    now, CaRole, NewRevocation, PresignCandidate, Presigned, RevokeOutcome, StoreError,
};

/// RFC 5280 CRLReason codes hallmark accepts. certificateHold (6) and removeFromCRL (8) are
/// refused: a revocation here is permanent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 8] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }

    /// The RFC 5280 name (`keyCompromise`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            RevocationReason::AaCompromise => "aACompromise",
        }
    }

    pub fn from_code(code: u8) -> Option<RevocationReason> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RevocationReason {
    type Err = String;
    /// The RFC 5280 names, case-insensitive, `-`/`_` ignored (`key-compromise` works too).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let norm = |x: &str| {
            x.chars()
                .filter(|c| *c != '-' && *c != '_')
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let want = norm(s);
        if want == "certificatehold" || want == "removefromcrl" {
            return Err(format!(
                "'{s}' is not accepted: revocation is permanent here (no certificateHold)"
            ));
        }
        Self::ALL
            .into_iter()
            .find(|r| norm(r.name()) == want)
            .ok_or_else(|| {
                format!(
                    "unknown revocation reason '{s}' (one of {})",
                    Self::ALL.map(|r| r.name()).join(", ")
                )
            })
    }
}

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

/// A CRL as published.
#[derive(Debug, Clone)]
pub struct PublishedCrl {
    pub ca: String,
    pub shard: Option<u32>,
    pub number: u64,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: u64,
    pub der: bytes::Bytes,
    /// A strong HTTP entity tag, quotes included.
    pub etag: String,
}

/// An OCSP answer, ready for HTTP.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    pub der: Vec<u8>,
    pub status: ResponseStatus,
    /// thisUpdate and nextUpdate, when the answer may be cached (no nonce).
    pub cacheable: Option<(i64, i64)>,
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
        return Err(Error::Invalid(format!(
            "'{s}' is not a certificate serial (hex, as `hallmark cert list` prints it)"
        )));
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

/// One delegated responder and the issuer it answers for.
struct Responder {
    ca: String,
    signer: Arc<dyn Signer>,
    scheme: SignatureScheme,
    /// SHA-1 of the responder's public key (ResponderID byKey).
    key_hash: Vec<u8>,
    cert_der: Vec<u8>,
    /// SHA-1 issuerNameHash and issuerKeyHash: the CertID RFC 5019 clients send.
    sha1_name: Vec<u8>,
    sha1_key: Vec<u8>,
}

impl Responder {
    fn key(&self) -> ResponderKey<'_> {
        ResponderKey {
            signer: self.signer.as_ref(),
            scheme: self.scheme,
            key_hash: &self.key_hash,
        }
    }
}

#[derive(Default)]
struct Responders {
    /// Which responder certificates were loaded (name, serial), to notice changes.
    loaded: Vec<(String, Option<String>)>,
    list: Vec<Responder>,
    /// (hash, issuerNameHash, issuerKeyHash) → responder index; a handful of entries.
    by_issuer: Vec<(CertIdHash, Vec<u8>, Vec<u8>, usize)>,
}

/// A poisoned lock: an internal error, like the store's.
fn internal(what: &str) -> Error {
    tracing::error!("{what}");
    Error::Store(StoreError::Poisoned)
}

fn cert_summary(der: &[u8]) -> Result<(String, String, i64, i64)> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| Error::Invalid(format!("certificate does not parse: {e}")))?;
    Ok((
        hex::encode(c.raw_serial()),
        c.subject().to_string(),
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    ))
}

/// The CRL partition a certificate's CRL distribution point names (`…/crl/{ca}/shard-{k}.crl`).
fn shard_in_crl_dp(cert_der: &[u8], ca: &str) -> Option<u32> {
    let (_, c) = X509Certificate::from_der(cert_der).ok()?;
    let suffix_start = format!("/crl/{ca}/shard-");
    for ext in c.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for p in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                    for n in names {
                        if let GeneralName::URI(u) = n {
                            if let Some(i) = u.find(&suffix_start) {
                                let k = u[i + suffix_start.len()..].strip_suffix(".crl")?;
                                return k.parse().ok();
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

impl Hallmark {
    /// The publication state of this database (shared by every `Hallmark` on it in the process).
    pub fn publication(&self) -> Arc<Publication> {
        // The request path asks for this on every OCSP answer: a per-thread memo of the last
        // database avoids the registry's lock and a path allocation.
        thread_local! {
            static LAST: std::cell::RefCell<Option<(PathBuf, PathBuf, Arc<Publication>)>> =
                const { std::cell::RefCell::new(None) };
        }
        let (base, db) = (&self.config.base_dir, &self.config.database.path);
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
            Ok(mut m) => m.entry(self.config.database_path()).or_default().clone(),
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
            if d > now() + 300 {
                return Err(Error::Invalid(
                    "the invalidity date is in the future".into(),
                ));
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

    /// The CAs that publish CRLs: the root and every issuing CA with a certificate.
    pub fn crl_issuers(&self) -> Result<Vec<String>> {
        Ok(self
            .store
            .list_cas()?
            .into_iter()
            .filter(|c| matches!(c.role, CaRole::Root | CaRole::Issuing) && c.cert_der.is_some())
            .map(|c| c.name)
            .collect())
    }

    /// The partitions a CA publishes besides its full CRL (none for the root).
    pub fn crl_shards(&self, ca: &str) -> Result<Vec<u32>> {
        let rec = self
            .store
            .get_ca(ca)?
            .ok_or_else(|| Error::NotFound(format!("CA '{ca}'")))?;
        if rec.role != CaRole::Issuing || self.config.crl.shards <= 1 {
            return Ok(vec![]);
        }
        Ok((0..self.config.crl.shards).collect())
    }

    fn check_crl_scope(&self, ca: &str, shard: Option<u32>) -> Result<()> {
        let rec = self
            .store
            .get_ca(ca)?
            .filter(|c| matches!(c.role, CaRole::Root | CaRole::Issuing))
            .ok_or_else(|| Error::NotFound(format!("CA '{ca}'")))?;
        if let Some(k) = shard {
            // Partitions beyond the configured count stay published while they list revocations
            // (certificates issued under a larger `crl.shards` still point at them).
            let known = rec.role == CaRole::Issuing
                && (k < self.config.crl.shards
                    || (k < 256 && self.store.count_revocations(ca, Some(k))? > 0));
            if !known {
                return Err(Error::NotFound(format!("CRL partition {k} of CA '{ca}'")));
            }
        }
        Ok(())
    }

    /// Builds and signs one CRL with a given number.
    fn build_crl(
        &self,
        ca_name: &str,
        shard: Option<u32>,
        number: u64,
        this_update: i64,
    ) -> Result<PublishedCrl> {
        let ca = self.ca(ca_name)?;
        let next_update = this_update + i64::from(self.config.crl.next_update_days) * 86_400;
        let idp = shard.map(|k| self.urls().crl_shard(ca_name, k));
        let spec = CrlSpec {
            issuer_name: &ca.subject_raw,
            issuer_ski: &ca.ski,
            number,
            this_update,
            next_update,
            idp_url: idp.as_deref(),
            scheme: ca.scheme,
        };
        let expected = self.store.count_revocations(ca_name, shard)?;
        let mut builder = CrlBuilder::new(&spec, expected as usize)?;
        self.store
            .for_each_revocation(ca_name, shard, |e| -> Result<()> {
                builder.push(&CrlEntry {
                    serial_hex: e.serial,
                    revoked_at: e.revoked_at,
                    reason: e.reason,
                    invalidity_date: e.invalidity_date,
                })?;
                Ok(())
            })?;
        let entries = builder.entries();
        let der = builder.finish(ca.signer.as_ref())?;
        let scope = shard.map_or("full".to_string(), |k| format!("shard-{k}"));
        Ok(PublishedCrl {
            etag: format!("\"{ca_name}-{scope}-{number}\""),
            ca: ca_name.to_string(),
            shard,
            number,
            this_update,
            next_update,
            entries,
            der: der.into(),
        })
    }

    /// Issues a new CRL for one scope of `ca` (a fresh CRL number) and makes it the published one.
    pub fn issue_crl(
        &self,
        ca: &str,
        shard: Option<u32>,
        actor: &str,
    ) -> Result<Arc<PublishedCrl>> {
        self.check_crl_scope(ca, shard)?;
        let pubn = self.publication();
        let lock = pubn.build_lock(ca);
        let _g = lock
            .lock()
            .map_err(|_| internal("CRL build lock poisoned"))?;
        let t = now();
        let number = self.store.next_crl_number(ca, t, actor)?;
        let crl = Arc::new(self.build_crl(ca, shard, number, t)?);
        if let Ok(mut m) = pubn.crls.lock() {
            m.insert((ca.to_string(), shard), crl.clone());
        }
        Ok(crl)
    }

    /// Reissues every CRL of `ca` (full and partitions) under one new CRL number.
    pub fn publish_crls(&self, ca: &str, actor: &str) -> Result<u64> {
        let pubn = self.publication();
        let lock = pubn.build_lock(ca);
        let _g = lock
            .lock()
            .map_err(|_| internal("CRL build lock poisoned"))?;
        let t = now();
        let number = self.store.next_crl_number(ca, t, actor)?;
        let mut scopes = vec![None];
        scopes.extend(self.crl_shards(ca)?.into_iter().map(Some));
        // Partitions published on demand beyond `crl.shards` (older certificates) stay current.
        if let Ok(m) = pubn.crls.lock() {
            for (c, shard) in m.keys() {
                if c == ca && shard.is_some() && !scopes.contains(shard) {
                    scopes.push(*shard);
                }
            }
        }
        for shard in scopes {
            let crl = Arc::new(self.build_crl(ca, shard, number, t)?);
            if let Ok(mut m) = pubn.crls.lock() {
                m.insert((ca.to_string(), shard), crl);
            }
        }
        Ok(number)
    }

    /// The published CRL of one scope: the current one, or a new one if there is none yet or it
    /// is due (the refresher normally keeps it current).
    pub fn published_crl(&self, ca: &str, shard: Option<u32>) -> Result<Arc<PublishedCrl>> {
        let key = (ca.to_string(), shard);
        let pubn = self.publication();
        let fresh = |c: &PublishedCrl| {
            let t = now();
            t < c.this_update + i64::from(self.config.crl.refresh_hours) * 3600
                && t < c.next_update - 3600
        };
        if let Some(c) = pubn.cached_crl(&key).filter(|c| fresh(c)) {
            return Ok(c);
        }
        self.check_crl_scope(ca, shard)?;
        let lock = pubn.build_lock(ca);
        {
            let _g = lock
                .lock()
                .map_err(|_| internal("CRL build lock poisoned"))?;
            if let Some(c) = pubn.cached_crl(&key).filter(|c| fresh(c)) {
                return Ok(c);
            }
        }
        self.issue_crl(ca, shard, "publisher")
    }

    // ---- OCSP ----

    /// The responder certificates in the database (name, serial).
    fn responder_records(&self) -> Result<Vec<(String, Option<String>)>> {
        Ok(self
            .store
            .list_cas()?
            .into_iter()
            .filter(|c| c.role == CaRole::Ocsp)
            .map(|c| (c.name, c.serial))
            .collect())
    }

    fn load_responders(&self) -> Result<Responders> {
        let mut out = Responders::default();
        for rec in self.store.list_cas()? {
            if rec.role != CaRole::Ocsp {
                continue;
            }
            out.loaded.push((rec.name.clone(), rec.serial.clone()));
            let (Some(parent), Some(cert_der)) = (rec.parent.clone(), rec.cert_der.clone()) else {
                continue;
            };
            let Some(issuer) = self.store.get_ca(&parent)?.and_then(|p| p.cert_der) else {
                continue;
            };
            let (_, ic) = X509Certificate::from_der(&issuer)
                .map_err(|e| Error::Invalid(format!("CA '{parent}' certificate: {e}")))?;
            let name_raw = ic.subject().as_raw().to_vec();
            let key_bits = ic.public_key().subject_public_key.data.to_vec();
            let signer = self.key_store(&rec.key_store)?.open(&rec.key_label)?;
            let key_hash = CertIdHash::Sha1.digest(&subject_public_key_bits(signer.spki_der())?);
            let idx = out.list.len();
            for h in CertIdHash::ALL {
                out.by_issuer
                    .push((h, h.digest(&name_raw), h.digest(&key_bits), idx));
            }
            out.list.push(Responder {
                ca: parent,
                scheme: signer.algorithm().default_scheme(),
                signer,
                key_hash,
                cert_der,
                sha1_name: CertIdHash::Sha1.digest(&name_raw),
                sha1_key: CertIdHash::Sha1.digest(&key_bits),
            });
        }
        Ok(out)
    }

    fn responders(&self) -> Result<Arc<Responders>> {
        let pubn = self.publication();
        if let Some(r) = pubn.responders.read().ok().and_then(|g| g.clone()) {
            return Ok(r);
        }
        let r = Arc::new(self.load_responders()?);
        if let Ok(mut g) = pubn.responders.write() {
            *g = Some(r.clone());
        }
        Ok(r)
    }

    /// Forgets the loaded responders (after a renewal); the next request loads them again.
    pub fn reload_responders(&self) {
        if let Ok(mut g) = self.publication().responders.write() {
            *g = None;
        }
    }

    /// Reloads the responders if the database holds other ones than those loaded (a CA created
    /// or a responder renewed by another process).
    fn reload_responders_if_changed(&self) -> Result<()> {
        let loaded = self
            .publication()
            .responders
            .read()
            .ok()
            .and_then(|g| g.as_ref().map(|r| r.loaded.clone()));
        let current = self.responder_records()?;
        if loaded.is_some_and(|l| l != current) {
            self.reload_responders();
        }
        Ok(())
    }

    /// Answers one OCSP request (DER). Never fails: errors become OCSP error statuses.
    pub fn ocsp(&self, request: &[u8]) -> OcspAnswer {
        match self.ocsp_inner(request) {
            Ok(a) => a,
            Err(status) => OcspAnswer {
                der: ocsp::error_response(status),
                status,
                cacheable: None,
            },
        }
    }

    fn ocsp_inner(&self, request: &[u8]) -> std::result::Result<OcspAnswer, ResponseStatus> {
        let req = ocsp::parse_request(request)
            .map_err(|RequestError::Malformed(_)| ResponseStatus::MalformedRequest)?;
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!("ocsp: {what}: {e}");
            ResponseStatus::InternalError
        };
        let responders = self
            .responders()
            .map_err(|e| fail("loading responders", &e))?;
        let mut which = None;
        for item in &req.items {
            let idx = responders
                .by_issuer
                .iter()
                .find(|(h, n, k, _)| *h == item.hash && *n == item.name_hash && *k == item.key_hash)
                .map(|e| e.3)
                .ok_or(ResponseStatus::Unauthorized)?;
            // One response is signed by one responder: all CertIDs must name the same issuer.
            if which.is_some_and(|w| w != idx) {
                return Err(ResponseStatus::Unauthorized);
            }
            which = Some(idx);
        }
        let r = &responders.list[which.ok_or(ResponseStatus::MalformedRequest)?];
        let t = now();
        if req.items.len() == 1 && req.nonce_extension.is_none() {
            let item = &req.items[0];
            let canonical =
                ocsp::cert_id(CertIdHash::Sha1, &r.sha1_name, &r.sha1_key, &item.serial);
            if item.cert_id_der == canonical {
                let stored = self
                    .store
                    .presigned_response(&item.serial_hex(), &r.ca)
                    .map_err(|e| fail("reading a pre-signed response", &e))?;
                if let Some(s) =
                    stored.filter(|s| s.next_update > t + 60 && s.this_update <= t + 60)
                {
                    return Ok(OcspAnswer {
                        der: ocsp::wrap_response(&s.body, &r.cert_der),
                        status: ResponseStatus::Successful,
                        cacheable: Some((s.this_update, s.next_update)),
                    });
                }
            }
        }
        // Live: the status of each certificate from the database, signed now.
        let next_update = t + i64::from(self.config.ocsp.validity_hours) * 3600;
        let mut statuses = Vec::with_capacity(req.items.len());
        for item in &req.items {
            let standing = self
                .store
                .certificate_standing(&item.serial_hex())
                .map_err(|e| fail("reading a certificate's status", &e))?;
            statuses.push(match standing {
                Some(s) if s.ca == r.ca && s.status == crate::store::CertStatus::Issued => {
                    match s.revoked {
                        Some((reason, at)) => CertStatus::Revoked { at, reason },
                        None => CertStatus::Good,
                    }
                }
                _ => CertStatus::Unknown,
            });
        }
        let singles: Vec<ocsp::Single<'_>> = req
            .items
            .iter()
            .zip(&statuses)
            .map(|(item, status)| ocsp::Single {
                cert_id_der: &item.cert_id_der,
                status: *status,
                this_update: t,
                next_update,
            })
            .collect();
        let body = ocsp::sign_basic(&r.key(), t, &singles, req.nonce_extension.as_deref())
            .map_err(|e| fail("signing", &e))?;
        Ok(OcspAnswer {
            der: ocsp::wrap_response(&body, &r.cert_der),
            status: ResponseStatus::Successful,
            cacheable: req.nonce_extension.is_none().then_some((t, next_update)),
        })
    }

    /// Signs responses for `cands` (all of one responder) on both cores and stores them.
    fn presign_batch(&self, r: &Responder, cands: &[PresignCandidate]) -> Result<usize> {
        let t = now();
        let next_update = t + i64::from(self.config.ocsp.validity_hours) * 3600;
        let sign = |c: &PresignCandidate| -> Result<Presigned> {
            let mut buf = [0u8; 33];
            let serial = issuer::crl::integer_content_from_hex(&c.serial, &mut buf)?;
            let id = ocsp::cert_id(CertIdHash::Sha1, &r.sha1_name, &r.sha1_key, serial);
            let status = match c.revoked {
                Some((reason, at)) => CertStatus::Revoked { at, reason },
                None => CertStatus::Good,
            };
            let single = ocsp::Single {
                cert_id_der: &id,
                status,
                this_update: t,
                next_update,
            };
            Ok(Presigned {
                serial: c.serial.clone(),
                ca: c.ca.clone(),
                revoked: c.revoked,
                this_update: t,
                next_update,
                body: ocsp::sign_basic(&r.key(), t, &[single], None)?,
            })
        };
        let half = cands.len().div_ceil(2);
        let signed: Vec<Result<Presigned>> = if cands.len() < 64 {
            cands.iter().map(sign).collect()
        } else {
            std::thread::scope(|s| {
                let (a, b) = cands.split_at(half);
                let hb = s.spawn(|| b.iter().map(sign).collect::<Vec<_>>());
                let mut out: Vec<_> = a.iter().map(sign).collect();
                out.extend(hb.join().unwrap_or_default());
                out
            })
        };
        let items: Vec<Presigned> = signed.into_iter().collect::<Result<_>>()?;
        Ok(self.store.store_presigned(&items)?)
    }

    /// Pre-signs OCSP responses: first those a revocation invalidated, then every unexpired
    /// certificate whose response is missing or older than `ocsp.refresh_hours`. Returns how
    /// many were signed.
    pub fn presign_ocsp(&self) -> Result<usize> {
        let mut total = self.presign_ocsp_dirty_only()?;
        let responders = self.responders()?;
        // Missing or stale.
        let stale_before = now() - i64::from(self.config.ocsp.refresh_hours) * 3600;
        for r in &responders.list {
            let mut after = String::new();
            loop {
                let cands = self
                    .store
                    .presign_candidates(&r.ca, stale_before, &after, 2000)?;
                let Some(last) = cands.last() else { break };
                after = last.serial.clone();
                total += self.presign_batch(r, &cands)?;
            }
        }
        Ok(total)
    }

    /// Renews delegated responder certificates with fewer than `ocsp.responder_renew_days` left,
    /// or whose certificate was revoked (same key, a new certificate from the issuing CA).
    /// Returns the responders renewed.
    pub fn renew_responders(&self, actor: &str) -> Result<Vec<String>> {
        let t = now();
        let renew_before = t + i64::from(self.config.ocsp.responder_renew_days) * 86_400;
        let mut renewed = Vec::new();
        for rec in self.store.list_cas()? {
            if rec.role != CaRole::Ocsp {
                continue;
            }
            let due = rec.not_after.is_none_or(|na| na <= renew_before);
            let revoked = match &rec.serial {
                Some(s) => self.store.get_revocation(s)?.is_some(),
                None => false,
            };
            if !due && !revoked {
                continue;
            }
            let Some(parent) = rec.parent.clone() else {
                continue;
            };
            let ca = self.ca(&parent)?;
            let signer = self.key_store(&rec.key_store)?.open(&rec.key_label)?;
            let spec = self.responder_spec(&parent);
            let cert = issuer::issue_ca_certificate(
                &spec,
                signer.spki_der(),
                Some(&ca),
                signer.as_ref(),
                t,
            )?;
            let (serial, subject, nb, na) = cert_summary(&cert)?;
            if !revoked && na <= rec.not_after.unwrap_or(0) + 86_400 {
                // The issuing CA itself ends too soon: a new certificate would gain nothing.
                tracing::warn!(
                    "responder {} cannot be renewed past its CA's notAfter",
                    rec.name
                );
                continue;
            }
            self.store
                .renew_ca_certificate(&rec.name, &cert, &serial, &subject, nb, na, actor)?;
            renewed.push(rec.name);
        }
        if !renewed.is_empty() {
            self.reload_responders();
        }
        Ok(renewed)
    }
}

// ---- the refresher ----

/// How often the refresher looks at the publication revisions.
const POLL: Duration = Duration::from_millis(250);
/// A burst of revocations is coalesced for at most this long before republishing.
const COALESCE_MAX: Duration = Duration::from_secs(2);
/// The scheduled work (stale responses, due CRLs, responder renewal) runs this often.
const SCHEDULE: Duration = Duration::from_secs(60);
/// The full pass over all certificates for missing or stale OCSP responses runs this often
/// (revocations are handled at once through the queue; new certificates are answered live until
/// the pass signs theirs).
const PRESIGN_SCAN: Duration = Duration::from_secs(600);

/// Starts the server's background publisher on its own thread.
pub fn spawn_refresher(hm: Arc<Hallmark>) {
    let r = std::thread::Builder::new()
        .name("hallmark-publish".into())
        .spawn(move || refresher(&hm));
    if let Err(e) = r {
        tracing::error!("cannot start the CRL/OCSP refresher: {e}");
    }
}

fn log_err<T>(what: &str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!("publish: {what}: {e}");
            None
        }
    }
}

/// A refresher run's CRLs of `ca`, logged (the CRL number is the one just signed).
fn publish_crls_logged(hm: &Hallmark, ca: &str, why: &str) {
    let started = Instant::now();
    if let Some(number) = log_err(&format!("CRLs of {ca}"), hm.publish_crls(ca, ACTOR)) {
        tracing::info!(
            target: "hallmark::publish",
            ca,
            crl_number = number,
            why,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "CRL published"
        );
    }
}

const ACTOR: &str = "publisher";

/// The scheduled work: responder renewal, CRLs that are due (all of them at `first`), OCSP
/// responses (every certificate's with `full_scan`, else only those revocations invalidated).
fn scheduled(hm: &Hallmark, first: bool, full_scan: bool) {
    log_err("renewing OCSP responders", hm.renew_responders(ACTOR));
    if first {
        hm.reload_responders();
    } else {
        log_err(
            "checking OCSP responders",
            hm.reload_responders_if_changed(),
        );
    }
    if let Some(cas) = log_err("listing CAs", hm.crl_issuers()) {
        let pubn = hm.publication();
        let due = |ca: &str| {
            let t = now();
            pubn.cached_crl(&(ca.to_string(), None)).is_none_or(|c| {
                t >= c.this_update + i64::from(hm.config.crl.refresh_hours) * 3600
                    || t >= c.next_update - 3600
            })
        };
        for ca in cas {
            if first || due(&ca) {
                publish_crls_logged(hm, &ca, if first { "start" } else { "schedule" });
            }
        }
    }
    if full_scan {
        let started = Instant::now();
        if let Some(n) = log_err("pre-signing OCSP responses", hm.presign_ocsp()) {
            tracing::info!(
                target: "hallmark::publish",
                signed = n,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "OCSP responses pre-signed"
            );
        }
    } else {
        log_err(
            "re-signing revoked OCSP responses",
            hm.presign_ocsp_dirty_only(),
        );
    }
    log_err(
        "purging expired OCSP responses",
        hm.store.purge_expired_responses(now()).map_err(Error::from),
    );
}

fn refresher(hm: &Hallmark) {
    let pubn = hm.publication();
    let revisions = || -> HashMap<String, i64> {
        hm.store
            .publication_revisions()
            .map(|v| v.into_iter().collect())
            .unwrap_or_default()
    };
    let mut seen = revisions();
    scheduled(hm, true, true);
    let mut last_schedule = Instant::now();
    let mut last_scan = Instant::now();
    let mut pokes = 0u64;
    loop {
        pubn.wait(&mut pokes, POLL);
        let mut current = revisions();
        if current != seen {
            // Coalesce a burst: wait until the revisions hold still (or COALESCE_MAX passes).
            let start = Instant::now();
            loop {
                std::thread::sleep(POLL);
                let again = revisions();
                if again == current || start.elapsed() >= COALESCE_MAX {
                    current = again;
                    break;
                }
                current = again;
            }
            log_err(
                "re-signing revoked OCSP responses",
                hm.presign_ocsp_dirty_only(),
            );
            for (ca, rev) in &current {
                if seen.get(ca) != Some(rev) {
                    publish_crls_logged(hm, ca, "revocation");
                }
            }
            seen = current;
        }
        if last_schedule.elapsed() >= SCHEDULE {
            let full_scan = last_scan.elapsed() >= PRESIGN_SCAN;
            scheduled(hm, false, full_scan);
            last_schedule = Instant::now();
            if full_scan {
                last_scan = Instant::now();
            }
        }
    }
}

impl Hallmark {
    /// Re-signs only the responses revocations invalidated (the refresher's fast path).
    fn presign_ocsp_dirty_only(&self) -> Result<usize> {
        let responders = self.responders()?;
        let mut total = 0;
        for _ in 0..8 {
            let dirty = self.store.dirty_responses(1000)?;
            if dirty.is_empty() {
                break;
            }
            let mut stored = 0;
            let mut orphans = Vec::new();
            let mut groups: HashMap<usize, Vec<PresignCandidate>> = HashMap::new();
            for c in dirty {
                match responders.list.iter().position(|r| r.ca == c.ca) {
                    Some(i) => groups.entry(i).or_default().push(c),
                    None => orphans.push(c.serial),
                }
            }
            if !orphans.is_empty() {
                self.store.forget_dirty(&orphans)?;
            }
            for (i, cands) in groups {
                stored += self.presign_batch(&responders.list[i], &cands)?;
            }
            total += stored;
            if stored == 0 && orphans.is_empty() {
                break;
            }
        }
        Ok(total)
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
