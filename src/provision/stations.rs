//! Factory stations: adding one (its TLS client certificate from the `station` profile and its rules), disabling one, and which station a client certificate is.

use super::*;

/// What `station add` hands the station.
#[derive(Debug, Clone)]
pub struct StationCredentials {
    /// The station's certificate and its chain (PEM).
    pub chain_pem: String,
    /// The station's private key (PKCS#8 PEM), when hallmark generated it.
    pub key_pem: Option<String>,
}

impl Provisioning {
    /// Creates a station: its rules and its mTLS certificate, for a key hallmark generates (the
    /// key is returned once, for the station) or for the station's own CSR.
    #[allow(clippy::too_many_arguments)]
    pub fn add_station(
        &self,
        name: &str,
        publisher: Option<&str>,
        profile: &str,
        serial_pattern: &str,
        quota: i64,
        reprovision: bool,
        csr: Option<&[u8]>,
        actor: &str,
    ) -> Result<(StationRecord, StationCredentials)> {
        crate::keys::validate_label(name)?;
        let device_profile = self.profiles.get(profile)?;
        if device_profile.subject.device_serial != crate::profile::Requirement::Required {
            return Err(ProvisionError::NotDeviceProfile(profile.to_string()).into());
        }
        regex_lite::Regex::new(serial_pattern).map_err(|e| {
            ProvisionError::BadSerialPattern(serial_pattern.to_string(), e.to_string())
        })?;
        if quota < 1 {
            return Err(ProvisionError::BadQuota.into());
        }
        if self.store.get_station(name)?.is_some() {
            return Err(StoreError::Conflict(format!("station '{name}'")).into());
        }
        let publisher = match publisher {
            Some(p) => self
                .store
                .get_publisher(p)?
                .ok_or_else(|| policy::PolicyError::UnknownPublisher(p.to_string()))?,
            None => {
                let mut fits: Vec<Publisher> = self
                    .store
                    .list_publishers()?
                    .into_iter()
                    .filter(|p| p.profiles.iter().any(|x| x == profile))
                    .collect();
                if fits.len() != 1 {
                    return Err(ProvisionError::PublisherAmbiguous {
                        profile: profile.to_string(),
                        count: fits.len(),
                    }
                    .into());
                }
                fits.remove(0)
            }
        };
        if !publisher.profiles.iter().any(|p| p == profile) {
            return Err(policy::PolicyError::NotAuthorized(format!(
                "publisher '{}' may not use profile '{profile}'",
                publisher.id
            ))
            .into());
        }
        // The station's key: its own (from a CSR made in its HSM/TPM) or one made here.
        let (csr_der, key_pem) = match csr {
            Some(c) => (policy::csr::decode(c)?, None),
            None => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let p8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &rng,
                )
                .map_err(|_| Error::Internal("generating the station key failed".into()))?;
                let signer = crate::keys::soft::SoftKey::ephemeral(name, p8.as_ref())?;
                let subject = vec![NameAttr {
                    kind: "CN".into(),
                    value: name.into(),
                }];
                let csr = crate::issuer::make_csr(&subject, &signer)?;
                (
                    csr,
                    Some(crate::pemfmt::encode("PRIVATE KEY", p8.as_ref().to_vec())),
                )
            }
        };
        let verified = policy::csr::verify(&csr_der)?;
        let approved = policy::approve_own(
            self.profiles.get("station")?,
            publisher.clone(),
            verified,
            name,
            vec![],
            actor,
        )?;
        let issued = self.issuance.issue_approved(&approved, None)?;
        let rec = StationRecord {
            name: name.to_string(),
            publisher: publisher.id.clone(),
            profile: profile.to_string(),
            serial_pattern: serial_pattern.to_string(),
            quota,
            cert_serial: Some(issued.serial.clone()),
            disabled: false,
            reprovision,
            created_at: self.clock.now(),
        };
        self.store.insert_station(&rec, actor)?;
        let chain_pem = issued.pem_chain();
        Ok((rec, StationCredentials { chain_pem, key_pem }))
    }

    /// Disables a station and revokes its certificate: its next request is refused.
    pub fn disable_station(&self, name: &str, actor: &str) -> Result<()> {
        let rec = self
            .store
            .get_station(name)?
            .ok_or_else(|| Error::NotFound(format!("station '{name}'")))?;
        self.store.disable_station(name, actor)?;
        if let Some(serial) = rec.cert_serial {
            match self.revocation.revoke(
                &serial,
                crate::revocation::RevocationReason::CessationOfOperation,
                None,
                actor,
            ) {
                Ok(_) => {}
                Err(e) if e.kind() == "conflict" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Why a station's credential can no longer be used, if it cannot: the station is disabled,
    /// or its certificate is revoked or expired (a revoked certificate is refused even where
    /// the TLS layer, which knows no revocation, accepted it).
    pub fn station_refusal(&self, station: &StationRecord) -> Result<Option<String>> {
        if station.disabled {
            return Ok(Some(format!("station '{}' is disabled", station.name)));
        }
        let Some(serial) = &station.cert_serial else {
            return Ok(Some(format!(
                "station '{}' has no certificate",
                station.name
            )));
        };
        if self.store.get_revocation(serial)?.is_some() {
            return Ok(Some(format!(
                "the certificate of station '{}' is revoked",
                station.name
            )));
        }
        match self.store.get_certificate(serial)? {
            Some(c) if c.not_after < self.clock.now() => Ok(Some(format!(
                "the certificate of station '{}' has expired",
                station.name
            ))),
            Some(_) => Ok(None),
            None => Ok(Some(format!(
                "the certificate of station '{}' is not on record",
                station.name
            ))),
        }
    }

    /// The station behind a verified TLS client certificate; 401 if none, 403 if the station is
    /// disabled or its certificate revoked or expired.
    pub fn station_for_certificate(&self, cert_der: Option<&[u8]>) -> Result<StationRecord> {
        let der = cert_der.ok_or_else(|| {
            AuthError::Unauthorized("provisioning needs a station client certificate (mTLS)".into())
        })?;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|_| AuthError::Unauthorized("the client certificate does not parse".into()))?;
        let serial = hex::encode(cert.raw_serial());
        let station = self.store.station_by_certificate(&serial)?.ok_or_else(|| {
            AuthError::Unauthorized("this client certificate belongs to no station".into())
        })?;
        if let Some(why) = self.station_refusal(&station)? {
            return Err(AuthError::Forbidden(why).into());
        }
        Ok(station)
    }
}
