//! The engine: one value holding config, store, profiles, key stores and loaded CAs, with one
//! method per thing a user can do. The CLI and the HTTP server are thin layers over these calls.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use x509_parser::prelude::*;

use crate::config::{Config, KeyStoreConfig};
use crate::error::{Error, Result};
use crate::issuer::{self, CaCertSpec, CaHandle, Urls};
use crate::keys::{pkcs11::Pkcs11KeyStore, soft::SoftKeyStore, KeyAlgorithm, KeyStore, Signer};
use crate::policy::{self, IssueRequest, NameAttr};
use crate::profile::{Profiles, Validity};
use crate::store::{now, CaRecord, CaRole, Intent, KeyRecord, Publisher, Store, StoreError};

mod batch;
mod recovery;
pub mod sealing;
pub use batch::ChunkInput;
pub use recovery::Recovered;

/// A certificate as returned to a caller: already recorded.
#[derive(Debug, Clone)]
pub struct Issued {
    pub serial: String,
    pub cert_der: Vec<u8>,
    /// Issuing chain, leaf's issuer first, root excluded.
    pub chain: Vec<Vec<u8>>,
}

/// The purposes of issuing CAs made at init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaPurpose {
    CodeSigning,
    Timestamping,
    Devices,
    /// TLS servers (hallmark's own API, ACME) and TLS clients (factory stations over mTLS).
    Tls,
}

impl CaPurpose {
    pub fn name(self) -> &'static str {
        match self {
            CaPurpose::CodeSigning => "code-signing",
            CaPurpose::Timestamping => "timestamping",
            CaPurpose::Devices => "devices",
            CaPurpose::Tls => "tls",
        }
    }
    pub fn parse(s: &str) -> Result<CaPurpose> {
        match s {
            "code-signing" => Ok(CaPurpose::CodeSigning),
            "timestamping" => Ok(CaPurpose::Timestamping),
            "devices" => Ok(CaPurpose::Devices),
            "tls" => Ok(CaPurpose::Tls),
            o => Err(Error::Invalid(format!(
                "unknown CA purpose '{o}' (code-signing, timestamping, devices or tls)"
            ))),
        }
    }
    /// The EKU an issuing CA of this purpose carries: never codeSigning and timeStamping together.
    fn eku(self) -> Vec<&'static str> {
        match self {
            CaPurpose::CodeSigning => vec!["1.3.6.1.5.5.7.3.3"],
            CaPurpose::Timestamping => vec!["1.3.6.1.5.5.7.3.8"],
            CaPurpose::Devices => vec![],
            CaPurpose::Tls => vec!["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
        }
    }
    /// The name `init` gives the issuing CA of this purpose.
    pub fn default_name(self) -> &'static str {
        match self {
            CaPurpose::CodeSigning => "code-signing-ca",
            CaPurpose::Timestamping => "timestamping-ca",
            CaPurpose::Devices => "device-ca",
            CaPurpose::Tls => "tls-ca",
        }
    }
    fn title(self) -> &'static str {
        match self {
            CaPurpose::CodeSigning => "Code Signing CA",
            CaPurpose::Timestamping => "Timestamping CA",
            CaPurpose::Devices => "Device CA",
            CaPurpose::Tls => "TLS CA",
        }
    }
    /// Device CAs live as long as the devices (IDevID notAfter 9999); the others ten years.
    fn validity(self) -> Validity {
        match self {
            CaPurpose::Devices => Validity::Forever,
            _ => Validity::Days(3652),
        }
    }
}

/// The record of what the CA is about to sign.
fn intent_for(
    approved: &policy::Approved,
    prepared: &issuer::Prepared,
    ca: &CaHandle,
    request_id: Option<i64>,
    station: Option<&str>,
) -> Result<Intent> {
    Ok(Intent {
        serial: prepared.serial.clone(),
        ca: ca.record.name.clone(),
        profile: approved.profile.name.clone(),
        publisher: Some(approved.publisher.id.clone()),
        requester: approved.requester.clone(),
        csr_der: approved.csr.der.clone(),
        subject: prepared.subject.clone(),
        spki_sha256: prepared.spki_sha256.clone(),
        not_before: prepared.not_before,
        not_after: prepared.not_after,
        tbs_der: prepared.tbs()?,
        request_id,
        device_serial: approved.device_serial.clone(),
        station: station.map(str::to_string),
    })
}

/// A CA about to be recorded.
struct NewCa<'a> {
    name: &'a str,
    role: CaRole,
    parent: Option<&'a str>,
    purpose: Option<CaPurpose>,
    store: &'a str,
    signer: &'a dyn Signer,
    cert: Option<&'a [u8]>,
    csr: Option<&'a [u8]>,
}

/// One line of `doctor`.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

pub struct Hallmark {
    pub config: Config,
    pub store: Store,
    pub profiles: Profiles,
    pub metrics: crate::metrics::Metrics,
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
    pub(crate) config_key_policies: HashMap<String, crate::policy::signing::KeyPolicy>,
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

fn cert_facts(der: &[u8]) -> Result<(String, String, i64, i64)> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| Error::Invalid(format!("certificate does not parse: {e}")))?;
    Ok((
        hex::encode(c.raw_serial()),
        c.subject().to_string(),
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    ))
}

impl Hallmark {
    pub fn open(config_path: &Path) -> Result<Hallmark> {
        let config = Config::load(config_path)?;
        Self::with_config(config)
    }

    pub fn with_config(config: Config) -> Result<Hallmark> {
        let store = Store::open_existing(&config.database_path())?;
        let profiles = Profiles::load_dir(&config.profiles_dir())?;
        let config_key_policies = config
            .signing
            .keys
            .iter()
            .map(|(label, p)| {
                crate::policy::signing::KeyPolicy::from_config(p).map(|p| (label.clone(), p))
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(Hallmark {
            config,
            config_key_policies,
            store,
            profiles,
            metrics: Default::default(),
            stores: Mutex::new(HashMap::new()),
            cas: Mutex::new(HashMap::new()),
            sign_buckets: Mutex::new(HashMap::new()),
            tsa: Mutex::new(None),
            publisher_signers: Mutex::new(HashMap::new()),
            key_cert_facts: Mutex::new(HashMap::new()),
            started_at: now(),
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
                Error::Invalid(format!("key store '{name}' is not in the config"))
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
                return Err(Error::Invalid("CA chain loops".into()));
            }
        }
        Ok(out)
    }

    /// Issues a certificate: policy, then prepare + lint, record, sign, complete.
    pub fn issue(&self, req: &IssueRequest) -> Result<Issued> {
        let approved = policy::approve(&self.profiles, &self.store, req)?;
        self.issue_approved(&approved, None)
    }

    /// The CA half of issuance, for a request policy approved. `request_id` links the
    /// certificate to a stored (approved) request instead of recording the request anew.
    pub fn issue_approved(
        &self,
        approved: &policy::Approved,
        request_id: Option<i64>,
    ) -> Result<Issued> {
        let ca = self.ca(&approved.profile.issuer)?;
        let urls = self.urls();
        // A serial collision (2^-126) is retried with a fresh serial; nothing was written.
        let mut attempt = 0;
        let prepared = loop {
            let prepared = issuer::prepare_leaf(
                approved,
                &ca,
                &urls,
                &self.config.ca.policy_oid,
                now(),
                issuer::random_serial(),
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
                    &approved.requester,
                );
                return Err(e.into());
            }
        };
        self.store
            .complete_issuance(&prepared.serial, &cert, &approved.requester)?;
        self.metrics.count_issued(&approved.profile.name, 1);
        Ok(Issued {
            serial: prepared.serial,
            cert_der: cert,
            chain: self.chain(&ca.record.name)?,
        })
    }

    pub fn add_publisher(&self, p: &Publisher, actor: &str) -> Result<()> {
        policy::identity::validate_publisher(p)?;
        for prof in &p.profiles {
            self.profiles.get(prof)?;
        }
        self.store.add_publisher(p, actor)?;
        Ok(())
    }

    /// Changes the profiles a publisher may use; every profile must exist.
    pub fn set_publisher_profiles(&self, id: &str, profiles: &[String], actor: &str) -> Result<()> {
        if profiles.is_empty() {
            return Err(Error::Invalid("give at least one profile".into()));
        }
        for p in profiles {
            self.profiles.get(p)?;
        }
        self.store.set_publisher_profiles(id, profiles, actor)?;
        Ok(())
    }

    /// The subject a publisher key's CSR carries (the record's identity).
    fn publisher_subject(p: &Publisher) -> Vec<NameAttr> {
        let a = |k: &str, v: &str| NameAttr {
            kind: k.into(),
            value: v.into(),
        };
        let mut s = vec![a("C", &p.country)];
        if let Some(st) = &p.state {
            s.push(a("ST", st));
        }
        if let Some(l) = &p.locality {
            s.push(a("L", l));
        }
        s.push(a("O", &p.org));
        s.push(a("CN", &p.org));
        s
    }

    /// `key create`: key pair in the key store → CSR → identity-checked issuance → certificate
    /// held beside the key. With `profile = None` only the key and CSR are made (external CA).
    pub fn create_key(
        &self,
        publisher: &str,
        label: &str,
        alg: KeyAlgorithm,
        profile: Option<&str>,
        actor: &str,
    ) -> Result<(KeyRecord, Option<Issued>)> {
        let p = self
            .store
            .get_publisher(publisher)?
            .ok_or_else(|| policy::PolicyError::UnknownPublisher(publisher.to_string()))?;
        if let Some(prof) = profile {
            let prof = self.profiles.get(prof)?;
            if !p.profiles.contains(&prof.name) {
                return Err(policy::PolicyError::NotAuthorized(format!(
                    "publisher '{}' may not use profile '{}'",
                    p.id, prof.name
                ))
                .into());
            }
        }
        crate::keys::validate_label(label)?;
        if self.store.get_key(label)?.is_some() {
            return Err(StoreError::Conflict(format!("key '{label}'")).into());
        }
        let store_name = self.config.keys.default_store.clone();
        let ks = self.key_store(&store_name)?;
        let signer = ks.generate(&publisher_key_label(label), alg)?;
        let csr = issuer::make_csr(&Self::publisher_subject(&p), signer.as_ref())?;
        let mut rec = KeyRecord {
            label: label.to_string(),
            publisher: p.id.clone(),
            key_store: store_name,
            algorithm: alg.name().to_string(),
            uri: signer.uri(),
            csr_der: csr.clone(),
            cert_serial: None,
            cert_der: None,
            created_at: now(),
        };
        self.store.insert_key(&rec, actor)?;
        let issued = match profile {
            Some(prof) => {
                let issued = self.issue(&IssueRequest {
                    profile: prof.to_string(),
                    publisher: p.id.clone(),
                    csr,
                    requester: actor.to_string(),
                    device_serial: None,
                    name: None,
                })?;
                self.store
                    .set_key_certificate(label, &issued.serial, &issued.cert_der, actor)?;
                rec.cert_serial = Some(issued.serial.clone());
                rec.cert_der = Some(issued.cert_der.clone());
                Some(issued)
            }
            None => None,
        };
        Ok((rec, issued))
    }

    /// The signer of a publisher key, opened once and kept.
    pub fn publisher_signer(&self, key: &KeyRecord) -> Result<Arc<dyn Signer>> {
        let id = (key.key_store.clone(), key.label.clone());
        if let Some(s) = self
            .publisher_signers
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
        {
            return Ok(s);
        }
        let signer = self
            .key_store(&key.key_store)?
            .open(&publisher_key_label(&key.label))?;
        if let Ok(mut m) = self.publisher_signers.lock() {
            m.insert(id, signer.clone());
        }
        Ok(signer)
    }

    pub fn key(&self, label: &str) -> Result<KeyRecord> {
        self.store
            .get_key(label)?
            .ok_or_else(|| Error::NotFound(format!("key '{label}'")))
    }

    /// A key the credential may use: another publisher's key is answered exactly as a key that
    /// does not exist, so a label never reveals who owns it.
    pub fn key_for(
        &self,
        label: &str,
        cred: &crate::policy::auth::Credential,
    ) -> Result<KeyRecord> {
        match self.store.get_key(label)? {
            Some(k) if cred.may_act_for(&k.publisher).is_ok() => Ok(k),
            _ => Err(Error::NotFound(format!("key '{label}'"))),
        }
    }

    /// Attaches a certificate from an external CA to a publisher key, after checking it is for
    /// that key.
    pub fn import_key_certificate(&self, label: &str, der: &[u8], actor: &str) -> Result<String> {
        let rec = self.key(label)?;
        let signer = self
            .key_store(&rec.key_store)?
            .open(&publisher_key_label(label))?;
        let (_, c) = X509Certificate::from_der(der)
            .map_err(|e| Error::Invalid(format!("certificate does not parse: {e}")))?;
        if c.public_key().raw != signer.spki_der() {
            return Err(Error::Invalid(format!(
                "the certificate is not for key '{label}' (public keys differ)"
            )));
        }
        let serial = hex::encode(c.raw_serial());
        self.store.set_key_certificate(label, &serial, der, actor)?;
        Ok(serial)
    }

    fn ca_subject(&self, cn: String) -> Vec<NameAttr> {
        vec![
            NameAttr {
                kind: "C".into(),
                value: self.config.ca.country.clone(),
            },
            NameAttr {
                kind: "O".into(),
                value: self.config.ca.organization.clone(),
            },
            NameAttr {
                kind: "CN".into(),
                value: cn,
            },
        ]
    }

    fn record_ca(&self, n: NewCa<'_>, actor: &str) -> Result<()> {
        let facts = n.cert.map(cert_facts).transpose()?;
        let rec = CaRecord {
            name: n.name.to_string(),
            role: n.role,
            parent: n.parent.map(str::to_string),
            purpose: n.purpose.map(|p| p.name().to_string()),
            key_store: n.store.to_string(),
            key_label: n.signer.label().to_string(),
            key_algorithm: n.signer.algorithm().name().to_string(),
            csr_der: n.csr.map(<[u8]>::to_vec),
            cert_der: n.cert.map(<[u8]>::to_vec),
            serial: facts.as_ref().map(|f| f.0.clone()),
            subject: facts.as_ref().map(|f| f.1.clone()),
            not_before: facts.as_ref().map(|f| f.2),
            not_after: facts.as_ref().map(|f| f.3),
            created_at: now(),
        };
        self.store.insert_ca(&rec, actor)?;
        // A CA certificate signed here is also a certificate its parent issued: recorded like
        // any other, it can be revoked and then appears on the parent's CRL.
        if let (Some(cert), Some(parent)) = (n.cert, n.parent) {
            self.record_ca_certificate(cert, parent, actor)?;
        }
        Ok(())
    }

    /// Records a CA or responder certificate that `parent` signed in the certificates table.
    fn record_ca_certificate(&self, cert: &[u8], parent: &str, actor: &str) -> Result<()> {
        use sha2::Digest;
        let (serial, subject, nb, na) = cert_facts(cert)?;
        let (_, parsed) =
            X509Certificate::from_der(cert).map_err(|e| Error::Invalid(e.to_string()))?;
        let parts = crate::der::split_signed(cert).map_err(|e| Error::Invalid(e.to_string()))?;
        let intent = Intent {
            serial: serial.clone(),
            ca: parent.to_string(),
            profile: "ca-certificate".into(),
            publisher: None,
            requester: actor.to_string(),
            csr_der: Vec::new(),
            subject,
            spki_sha256: hex::encode(sha2::Sha256::digest(parsed.public_key().raw)),
            not_before: nb,
            not_after: na,
            tbs_der: parts.tbs.to_vec(),
            request_id: None,
            device_serial: None,
            station: None,
        };
        self.store.record_intent(&intent)?;
        self.store.complete_issuance(&serial, cert, actor)?;
        Ok(())
    }

    /// Creates the self-signed root.
    pub fn create_root(&self, alg: KeyAlgorithm, actor: &str) -> Result<()> {
        if self.store.get_ca("root")?.is_some() {
            return Err(StoreError::Conflict("CA 'root'".into()).into());
        }
        let store = self.config.keys.root_store.clone();
        let signer = self
            .key_store(&store)?
            .generate(&ca_key_label("root"), alg)?;
        let spec = CaCertSpec {
            subject: self.ca_subject(format!("{} Root CA", self.config.ca.organization)),
            validity: Validity::Forever,
            path_len: None,
            responder: false,
            eku: vec![],
            policies: vec![],
            crl_url: None,
            ca_issuers_url: None,
        };
        let cert =
            issuer::issue_ca_certificate(&spec, signer.spki_der(), None, signer.as_ref(), now())?;
        self.record_ca(
            NewCa {
                name: "root",
                role: CaRole::Root,
                parent: None,
                purpose: None,
                store: &store,
                signer: signer.as_ref(),
                cert: Some(&cert),
                csr: None,
            },
            actor,
        )
    }

    fn issuing_spec(&self, name: &str, purpose: CaPurpose, parent: &str) -> CaCertSpec {
        let urls = self.urls();
        // Two CAs under one root never share a name: extra CAs carry theirs in the CN.
        let cn = if name == purpose.default_name() {
            format!("{} {}", self.config.ca.organization, purpose.title())
        } else {
            format!(
                "{} {} ({name})",
                self.config.ca.organization,
                purpose.title()
            )
        };
        CaCertSpec {
            subject: self.ca_subject(cn),
            validity: purpose.validity(),
            path_len: Some(0),
            responder: false,
            eku: purpose.eku(),
            policies: vec![self.config.ca.policy_oid.clone()],
            crl_url: Some(urls.crl(parent)),
            ca_issuers_url: Some(urls.ca_cert(parent)),
        }
    }

    /// Creates an issuing CA under `parent` (normally `root`), and its OCSP responder.
    /// With `csr_only`, makes the key and returns a CSR for an external root instead.
    pub fn create_issuing(
        &self,
        name: &str,
        purpose: CaPurpose,
        parent: &str,
        alg: KeyAlgorithm,
        csr_only: bool,
        actor: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.create_issuing_with(name, purpose, parent, alg, csr_only, None, actor)
    }

    /// [`Hallmark::create_issuing`], optionally for a Matter product attestation intermediate
    /// (PAI): `matter_vid` goes into its subject.
    #[allow(clippy::too_many_arguments)]
    pub fn create_issuing_with(
        &self,
        name: &str,
        purpose: CaPurpose,
        parent: &str,
        alg: KeyAlgorithm,
        csr_only: bool,
        matter_vid: Option<&str>,
        actor: &str,
    ) -> Result<Option<Vec<u8>>> {
        crate::keys::validate_label(name)?;
        if self.store.get_ca(name)?.is_some() {
            return Err(StoreError::Conflict(format!("CA '{name}'")).into());
        }
        let store = self.config.keys.default_store.clone();
        let mut spec = self.issuing_spec(name, purpose, parent);
        if let Some(vid) = matter_vid {
            if purpose != CaPurpose::Devices || !crate::profile::is_matter_id(vid) {
                return Err(Error::Invalid(format!(
                    "--matter-vid '{vid}': four upper-case hex digits, for a devices CA"
                )));
            }
            spec.subject.push(NameAttr {
                kind: "matterVID".into(),
                value: vid.to_string(),
            });
        }
        if csr_only {
            let signer = self.key_store(&store)?.generate(&ca_key_label(name), alg)?;
            let csr = issuer::make_csr(&spec.subject, signer.as_ref())?;
            self.record_ca(
                NewCa {
                    name,
                    role: CaRole::Issuing,
                    parent: None,
                    purpose: Some(purpose),
                    store: &store,
                    signer: signer.as_ref(),
                    cert: None,
                    csr: Some(&csr),
                },
                actor,
            )?;
            return Ok(Some(csr));
        }
        let parent_ca = self.ca(parent)?;
        let signer = self.key_store(&store)?.generate(&ca_key_label(name), alg)?;
        let cert = issuer::issue_ca_certificate(
            &spec,
            signer.spki_der(),
            Some(&parent_ca),
            signer.as_ref(),
            now(),
        )?;
        self.record_ca(
            NewCa {
                name,
                role: CaRole::Issuing,
                parent: Some(parent),
                purpose: Some(purpose),
                store: &store,
                signer: signer.as_ref(),
                cert: Some(&cert),
                csr: None,
            },
            actor,
        )?;
        self.create_responder(name, alg, actor)?;
        Ok(None)
    }

    /// The certificate of the delegated OCSP responder of `ca_name` (made at init, renewed by
    /// the server before it expires).
    pub fn responder_spec(&self, ca_name: &str) -> CaCertSpec {
        CaCertSpec {
            subject: self.ca_subject(format!(
                "{} OCSP Responder for {ca_name}",
                self.config.ca.organization
            )),
            validity: Validity::Days(self.config.ocsp.responder_validity_days),
            path_len: None,
            responder: true,
            eku: vec![],
            policies: vec![],
            crl_url: None,
            ca_issuers_url: None,
        }
    }

    /// Creates (or replaces nothing: fails if present) the delegated OCSP responder of a CA.
    pub fn create_responder(&self, ca_name: &str, alg: KeyAlgorithm, actor: &str) -> Result<()> {
        let ca = self.ca(ca_name)?;
        let name = format!("{ca_name}-ocsp");
        let store = self.config.keys.default_store.clone();
        let signer = self
            .key_store(&store)?
            .generate(&ca_key_label(&name), alg)?;
        let spec = self.responder_spec(ca_name);
        let cert = issuer::issue_ca_certificate(
            &spec,
            signer.spki_der(),
            Some(&ca),
            signer.as_ref(),
            now(),
        )?;
        self.record_ca(
            NewCa {
                name: &name,
                role: CaRole::Ocsp,
                parent: Some(ca_name),
                purpose: None,
                store: &store,
                signer: signer.as_ref(),
                cert: Some(&cert),
                csr: None,
            },
            actor,
        )
    }

    /// Imports the certificate an external root issued for a CA made with `csr_only`.
    pub fn import_ca_certificate(
        &self,
        name: &str,
        der: &[u8],
        parent: Option<&str>,
        actor: &str,
    ) -> Result<()> {
        let mut rec = self
            .store
            .get_ca(name)?
            .ok_or_else(|| Error::NotFound(format!("CA '{name}'")))?;
        if rec.cert_der.is_some() {
            return Err(StoreError::Conflict(format!("a certificate for CA '{name}'")).into());
        }
        let signer = self.key_store(&rec.key_store)?.open(&rec.key_label)?;
        let (_, c) = X509Certificate::from_der(der)
            .map_err(|e| Error::Invalid(format!("certificate does not parse: {e}")))?;
        if c.public_key().raw != signer.spki_der() {
            return Err(Error::Invalid(format!(
                "the certificate is not for CA '{name}' key (public keys differ)"
            )));
        }
        match c.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => {}
            _ => {
                return Err(Error::Invalid(
                    "the certificate is not a CA certificate (basicConstraints CA:TRUE)".into(),
                ))
            }
        }
        let (serial, subject, nb, na) = cert_facts(der)?;
        rec.cert_der = Some(der.to_vec());
        rec.serial = Some(serial);
        rec.subject = Some(subject);
        rec.not_before = Some(nb);
        rec.not_after = Some(na);
        rec.parent = parent.map(str::to_string);
        self.store.set_ca_certificate(&rec, actor)?;
        let alg = signer.algorithm();
        self.create_responder(name, alg, actor)
    }

    /// Signs an issuing-CA CSR with this config's root (the offline-root ceremony).
    pub fn sign_issuing_csr(
        &self,
        csr_input: &[u8],
        purpose: CaPurpose,
        actor: &str,
    ) -> Result<Vec<u8>> {
        let der = policy::csr::decode(csr_input)?;
        let verified = policy::csr::verify(&der)?;
        let root = self.ca("root")?;
        let spec = CaCertSpec {
            subject: verified.subject.clone(),
            ..self.issuing_spec(purpose.default_name(), purpose, "root")
        };
        let cert = issuer::issue_ca_certificate(
            &spec,
            &verified.spki_der,
            Some(&root),
            root.signer.as_ref(),
            now(),
        )?;
        let (serial, subject, ..) = cert_facts(&cert)?;
        self.store
            .audit("ca.signed_subordinate", &serial, Some(&subject), actor)?;
        self.record_ca_certificate(&cert, "root", actor)?;
        Ok(cert)
    }

    /// Issues a `tls-server` certificate for one of hallmark's own services (the API listener)
    /// to a new key in the default key store; returns the PEM chain, leaf first.
    pub fn issue_service_certificate(
        &self,
        label: &str,
        hostnames: &[String],
        alg: KeyAlgorithm,
        actor: &str,
    ) -> Result<String> {
        let first = hostnames
            .first()
            .ok_or_else(|| Error::Invalid("the API needs at least one host name".into()))?;
        let sans = hostnames
            .iter()
            .map(|h| match h.parse::<std::net::IpAddr>() {
                Ok(ip) => policy::SanEntry::Ip(ip),
                Err(_) => policy::SanEntry::Dns(h.clone()),
            })
            .collect();
        let profile = self.profiles.get("tls-server")?.clone();
        let ks = self.key_store(&self.config.keys.default_store)?;
        let signer = ks.generate(label, alg)?;
        let org = self.config.ca.organization.clone();
        let subject = vec![
            NameAttr {
                kind: "C".into(),
                value: self.config.ca.country.clone(),
            },
            NameAttr {
                kind: "O".into(),
                value: org.clone(),
            },
            NameAttr {
                kind: "CN".into(),
                value: first.clone(),
            },
        ];
        let csr = issuer::make_csr(&subject, signer.as_ref())?;
        let verified = policy::csr::verify(&csr)?;
        // hallmark's own certificate: the operator is the publisher, the subject is the CA's.
        let approved = policy::Approved {
            profile,
            publisher: Publisher {
                id: policy::identity::INTERNAL_PUBLISHER.into(),
                org,
                country: self.config.ca.country.clone(),
                state: None,
                locality: None,
                profiles: vec!["tls-server".into()],
                created_at: now(),
            },
            csr: verified,
            subject,
            sans,
            requester: actor.to_string(),
            device_serial: None,
        };
        let issued = self.issue_approved(&approved, None)?;
        let mut pem_text = crate::pemfmt::encode("CERTIFICATE", issued.cert_der);
        for c in issued.chain {
            pem_text.push_str(&crate::pemfmt::encode("CERTIFICATE", c));
        }
        Ok(pem_text)
    }

    /// Health checks: database integrity, key store reachable, CA keys and expiry.
    pub fn doctor(&self) -> Vec<Check> {
        let mut out = Vec::new();
        match self.store.integrity_check() {
            Ok(p) if p.is_empty() => out.push(Check {
                name: "database".into(),
                ok: true,
                detail: format!("{} integrity ok", self.config.database_path().display()),
            }),
            Ok(p) => out.push(Check {
                name: "database".into(),
                ok: false,
                detail: p.join("; "),
            }),
            Err(e) => out.push(Check {
                name: "database".into(),
                ok: false,
                detail: e.to_string(),
            }),
        }
        if let Ok(publishers) = self.store.list_publishers() {
            for p in publishers
                .iter()
                .filter(|p| policy::identity::is_reserved_publisher(&p.id))
            {
                out.push(Check {
                    name: format!("publisher {}", p.id),
                    ok: false,
                    detail: format!(
                        "the id '{}' is reserved for hallmark's own certificates; it was created before that, and its tokens are refused: add the publisher again under another id, make new tokens, and disable this one's",
                        p.id
                    ),
                });
            }
        }
        for name in self.config.key_stores.keys() {
            let r = self
                .key_store(name)
                .and_then(|ks| ks.check().map_err(Error::from));
            out.push(Check {
                name: format!("key store {name}"),
                ok: r.is_ok(),
                detail: r.unwrap_or_else(|e| e.to_string()),
            });
        }
        match self.store.list_cas() {
            Ok(cas) => {
                let t = now();
                for ca in cas {
                    let (ok, detail) = match (ca.cert_der.as_ref(), ca.not_after) {
                        (None, _) => (
                            false,
                            "no certificate yet (waiting for `ca import`)".to_string(),
                        ),
                        (Some(_), Some(na)) if na <= t => (false, "expired".to_string()),
                        (Some(_), Some(na)) => {
                            let days = (na - t) / 86_400;
                            let key = self
                                .ca(&ca.name)
                                .map(|_| "key ok".to_string())
                                .unwrap_or_else(|e| format!("key: {e}"));
                            let soon = days < 30;
                            (!soon && key == "key ok", format!("{days} days left, {key}"))
                        }
                        _ => (false, "no notAfter recorded".to_string()),
                    };
                    out.push(Check {
                        name: format!("CA {}", ca.name),
                        ok,
                        detail,
                    });
                }
            }
            Err(e) => out.push(Check {
                name: "CAs".into(),
                ok: false,
                detail: e.to_string(),
            }),
        }
        out.extend(self.acme_checks());
        out.extend(self.signing_policy_checks());
        out
    }

    /// Each key policy the config sets: in force, or naming a key that does not exist (a typo,
    /// or a key not created yet: the policy applies once `key create` makes it).
    pub fn signing_policy_checks(&self) -> Vec<Check> {
        let mut labels: Vec<&String> = self.config_key_policies.keys().collect();
        labels.sort();
        labels
            .into_iter()
            .map(|label| {
                let (ok, detail) = match self.store.get_key(label) {
                    Ok(Some(_)) => (true, "policy from the config file".to_string()),
                    Ok(None) => (
                        false,
                        "no such key (yet): the policy applies once `hallmark key create` makes it"
                            .to_string(),
                    ),
                    Err(e) => (false, e.to_string()),
                };
                Check {
                    name: format!("signing.keys.{label}"),
                    ok,
                    detail,
                }
            })
            .collect()
    }

    /// Which names each ACME directory will issue for. A profile without `[san] dns_suffix`
    /// issues for any DNS name a client proves control of — fine on a closed network, worth
    /// knowing anywhere else; a directory whose profile is missing cannot serve at all.
    pub fn acme_checks(&self) -> Vec<Check> {
        self.config
            .acme
            .directories
            .keys()
            .map(|name| {
                let check = |ok, detail: String| Check {
                    name: format!("ACME /acme/{name}/"),
                    ok,
                    detail,
                };
                match self.profiles.get(name) {
                    Err(e) => check(false, e.to_string()),
                    Ok(p) => match &p.san.dns_suffix {
                        Some(suffix) => check(true, format!("DNS names under {suffix}")),
                        None => check(
                            true,
                            format!(
                                "any DNS name a client proves control of (set [san] dns_suffix \
                                 in ca-profiles/{name}.toml to limit it)"
                            ),
                        ),
                    },
                }
            })
            .collect()
    }
}
