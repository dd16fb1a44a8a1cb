//! Issuance and what it needs: a certificate from an approved request (intent recorded, then
//! signed, then completed), publishers and their profiles, and publisher keys in the key store.

use super::*;

/// The record of what the CA is about to sign.
pub(super) fn intent_for(
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

impl Hallmark {
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
        let ca = self.ca(&approved.profile().issuer)?;
        let urls = self.urls();
        // A serial collision (2^-126) is retried with a fresh serial; nothing was written.
        let mut attempt = 0;
        let prepared = loop {
            let prepared = issuer::prepare_leaf(
                approved,
                &ca,
                &urls,
                &self.config.ca.policy_oid,
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

    /// The keys a credential may use: its publisher's, or every key for an officer.
    pub fn keys_for(&self, cred: &crate::policy::auth::Credential) -> Result<Vec<KeyRecord>> {
        Ok(self
            .store
            .list_keys(None)?
            .into_iter()
            .filter(|k| cred.may_act_for(&k.publisher).is_ok())
            .collect())
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
            .map_err(|e| EngineError::BadCertificate(e.to_string()))?;
        if c.public_key().raw != signer.spki_der() {
            return Err(EngineError::NotForKey(format!("key '{label}'")).into());
        }
        let serial = hex::encode(c.raw_serial());
        self.store.set_key_certificate(label, &serial, der, actor)?;
        Ok(serial)
    }
}
