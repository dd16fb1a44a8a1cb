//! The CA hierarchy: the root, issuing CAs (made here or under an external root), their
//! delegated OCSP responders, and the service certificates the server itself uses.

use super::*;
use crate::profile::eku_oid;

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
            o => Err(EngineError::UnknownPurpose(o.to_string()).into()),
        }
    }
    /// The EKU an issuing CA of this purpose carries: never codeSigning and timeStamping together.
    fn eku(self) -> Vec<&'static str> {
        match self {
            CaPurpose::CodeSigning => vec![eku_oid::CODE_SIGNING],
            CaPurpose::Timestamping => vec![eku_oid::TIME_STAMPING],
            CaPurpose::Devices => vec![],
            CaPurpose::Tls => vec![eku_oid::SERVER_AUTH, eku_oid::CLIENT_AUTH],
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

/// A CA about to be recorded.
pub(super) struct NewCa<'a> {
    name: &'a str,
    role: CaRole,
    parent: Option<&'a str>,
    purpose: Option<CaPurpose>,
    store: &'a str,
    signer: &'a dyn Signer,
    cert: Option<&'a [u8]>,
    csr: Option<&'a [u8]>,
}

impl Hallmark {
    pub(super) fn ca_subject(&self, cn: String) -> Vec<NameAttr> {
        NameAttr::ca_subject(&self.config.ca.country, &self.config.ca.organization, cn)
    }

    pub(super) fn record_ca(&self, n: NewCa<'_>, actor: &str) -> Result<()> {
        let facts = n.cert.map(issuer::cert_summary).transpose()?;
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
            created_at: self.clock.now(),
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
    pub(super) fn record_ca_certificate(
        &self,
        cert: &[u8],
        parent: &str,
        actor: &str,
    ) -> Result<()> {
        use sha2::Digest;
        let (serial, subject, nb, na) = issuer::cert_summary(cert)?;
        let (_, parsed) =
            X509Certificate::from_der(cert).map_err(|e| Error::Internal(e.to_string()))?;
        let parts = crate::der::split_signed(cert).map_err(|e| Error::Internal(e.to_string()))?;
        let intent = Intent {
            serial: serial.clone(),
            ca: parent.to_string(),
            profile: crate::profile::CA_CERTIFICATE_PROFILE.into(),
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
            identity: None,
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
        let cert = issuer::issue_ca_certificate(
            &spec,
            signer.spki_der(),
            None,
            signer.as_ref(),
            self.clock.now(),
        )?;
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

    pub(super) fn issuing_spec(&self, name: &str, purpose: CaPurpose, parent: &str) -> CaCertSpec {
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
                return Err(EngineError::Argument(format!(
                    "--matter-vid '{vid}': four upper-case hex digits, for a devices CA"
                ))
                .into());
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
            self.clock.now(),
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

    /// Creates (or replaces nothing: fails if present) the delegated OCSP responder of a CA.
    pub fn create_responder(&self, ca_name: &str, alg: KeyAlgorithm, actor: &str) -> Result<()> {
        let ca = self.ca(ca_name)?;
        let name = format!("{ca_name}-ocsp");
        let store = self.config.keys.default_store.clone();
        let signer = self
            .key_store(&store)?
            .generate(&ca_key_label(&name), alg)?;
        let spec = self.revocation.responder_spec(ca_name);
        let cert = issuer::issue_ca_certificate(
            &spec,
            signer.spki_der(),
            Some(&ca),
            signer.as_ref(),
            self.clock.now(),
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
            .map_err(|e| EngineError::BadCertificate(e.to_string()))?;
        if c.public_key().raw != signer.spki_der() {
            return Err(EngineError::NotForKey(format!("CA '{name}' key")).into());
        }
        match c.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => {}
            _ => return Err(EngineError::NotACaCertificate.into()),
        }
        let (serial, subject, nb, na) = issuer::cert_summary(der)?;
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
            self.clock.now(),
        )?;
        let (serial, subject, ..) = issuer::cert_summary(&cert)?;
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
            .ok_or_else(|| EngineError::Argument("the API needs at least one host name".into()))?;
        let sans = hostnames
            .iter()
            .map(|h| match h.parse::<std::net::IpAddr>() {
                Ok(ip) => policy::SanEntry::Ip(ip),
                Err(_) => policy::SanEntry::Dns(h.clone()),
            })
            .collect();
        let ks = self.key_store(&self.config.keys.default_store)?;
        let signer = ks.generate(label, alg)?;
        let issued = self.issue_own("tls-server", first, sans, signer.as_ref(), actor)?;
        Ok(issued.pem_chain())
    }

    /// A certificate of hallmark's own (its API's TLS, its TSA) from `profile` for the key of
    /// `signer`: the operator is the publisher, the subject is `C, O` of the CA's and `cn`.
    pub(crate) fn issue_own(
        &self,
        profile: &str,
        cn: &str,
        sans: Vec<policy::SanEntry>,
        signer: &dyn crate::keys::Signer,
        actor: &str,
    ) -> Result<Issued> {
        let operator = Publisher {
            id: policy::identity::INTERNAL_PUBLISHER.into(),
            org: self.config.ca.organization.clone(),
            country: self.config.ca.country.clone(),
            state: None,
            locality: None,
            profiles: vec![profile.into()],
            created_at: self.clock.now(),
        };
        let csr = issuer::make_csr(&policy::own_subject(&operator, cn), signer)?;
        let approved = policy::approve_own(
            self.profiles.get(profile)?,
            operator,
            policy::csr::verify(&csr)?,
            cn,
            sans,
            actor,
        )?;
        self.issuance.issue_approved(&approved, None)
    }
}

impl Hallmark {
    /// Makes the TSA key and certificate (`hallmark tsa init`, and the end of `hallmark init`).
    /// Returns the path of the PEM chain written.
    pub fn init_tsa(&self, alg: KeyAlgorithm, actor: &str) -> Result<std::path::PathBuf> {
        let path = self.tsa.cert_path().to_path_buf();
        if path.exists() {
            return Err(Error::Conflict(format!(
                "a TSA certificate already exists at {}",
                path.display()
            )));
        }
        // The profile is checked before a key is made.
        self.profiles.get(crate::tsa::TSA_PROFILE)?;
        let ks = self.key_store(self.tsa.key_store_name())?;
        // Without tsa.pem, a `tsa` key in the store was left by an attempt that stopped before its
        // certificate was written: it never signed a token, so it is certified now instead of being
        // orphaned (and blocking every later attempt).
        let signer = match ks.generate(crate::tsa::TSA_KEY, alg) {
            Err(crate::keys::KeyError::AlreadyExists(_)) => {
                let s = ks.open(crate::tsa::TSA_KEY)?;
                if s.algorithm() != alg {
                    return Err(Error::Conflict(format!(
                        "the key store already holds a '{}' key of another algorithm ({}), \
                     left by an earlier attempt; use --algorithm {} or remove it",
                        crate::tsa::TSA_KEY,
                        s.algorithm(),
                        s.algorithm()
                    )));
                }
                tracing::info!("certifying the TSA key left by an earlier attempt");
                s
            }
            r => r?,
        };
        let cn = format!("{} Time-Stamping Authority", self.config.ca.organization);
        let issued =
            self.issue_own(crate::tsa::TSA_PROFILE, &cn, vec![], signer.as_ref(), actor)?;
        std::fs::write(&path, issued.pem_chain())
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
        self.store.audit(
            "tsa.init",
            &issued.serial,
            Some(crate::tsa::TSA_PROFILE),
            actor,
        )?;
        Ok(path)
    }
}
