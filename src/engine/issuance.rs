//! Issuance and what it needs: a certificate from an approved request (intent recorded, then
//! signed, then completed), publishers and their profiles, and publisher keys in the key store.

use super::*;

impl Hallmark {
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
            return Err(EngineError::Argument("give at least one profile".into()).into());
        }
        for p in profiles {
            self.profiles.get(p)?;
        }
        self.store.set_publisher_profiles(id, profiles, actor)?;
        Ok(())
    }

    /// The subject a publisher key's CSR carries (the record's identity).
    pub(super) fn publisher_subject(p: &Publisher) -> Vec<NameAttr> {
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
            created_at: self.clock.now(),
        };
        self.store.insert_key(&rec, actor)?;
        let issued = match profile {
            Some(prof) => {
                let issued = self.issuance.issue(&IssueRequest {
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
        self.keyring.publisher_signer(key)
    }

    pub fn key(&self, label: &str) -> Result<KeyRecord> {
        self.keyring.key(label)
    }

    /// The keys a credential may use: its publisher's, or every key for an officer.
    pub fn keys_for(&self, cred: &crate::policy::auth::Credential) -> Result<Vec<KeyRecord>> {
        self.keyring.keys_for(cred)
    }

    /// A key the credential may use (another publisher's key is answered as one that does not
    /// exist).
    pub fn key_for(
        &self,
        label: &str,
        cred: &crate::policy::auth::Credential,
    ) -> Result<KeyRecord> {
        self.keyring.key_for(label, cred)
    }

    /// Attaches a certificate from an external CA to a publisher key, after checking it is for
    /// that key.
    pub fn import_key_certificate(&self, label: &str, der: &[u8], actor: &str) -> Result<String> {
        let rec = self.key(label)?;
        let signer = self
            .key_store(&rec.key_store)?
            .open(&publisher_key_label(label))?;
        let (_, c) = X509Certificate::from_der(der)
            .map_err(|e| EngineError::BadCertificate(e.to_string()))?;
        if c.public_key().raw != signer.spki_der() {
            return Err(EngineError::NotForKey(format!("key '{label}'")).into());
        }
        let serial = hex::encode(c.raw_serial());
        self.store.set_key_certificate(label, &serial, der, actor)?;
        Ok(serial)
    }
}
