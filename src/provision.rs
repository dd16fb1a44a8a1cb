//! The factory line: stations, and batch provisioning of device certificates.
//!
//! A station is a TLS client certificate (from the `station` profile, under `tls-ca`) plus the
//! rules it works under: one device profile, a device-serial pattern, a quota and optionally the
//! right to reprovision. A batch is answered line by line, in order; one bad line never fails
//! the others. Provisioning is idempotent: a device that already holds a certificate for the
//! same public key gets that certificate again, so a station can resend a whole file after a
//! crash and nothing is issued twice (the database also holds at most one live certificate per
//! device: a partial unique index).

use std::collections::HashMap;

use serde::Deserialize;
use sha2::Digest;
use x509_parser::prelude::FromDer;

use crate::engine::{ChunkInput, Hallmark, Issued};
use crate::error::{Error, Result};
use crate::policy::auth::AuthError;
use crate::policy::{self, IssueRequest, NameAttr};
use crate::store::{now, Publisher, StationRecord, StoreError};

/// What `station add` hands the station.
#[derive(Debug, Clone)]
pub struct StationCredentials {
    /// The station's certificate and its chain (PEM).
    pub chain_pem: String,
    /// The station's private key (PKCS#8 PEM), when hallmark generated it.
    pub key_pem: Option<String>,
}

/// One answer line.
#[derive(Debug, Clone)]
pub enum ProvisionAnswer {
    Issued {
        device_serial: String,
        serial: String,
        cert_der: Vec<u8>,
    },
    Refused {
        device_serial: Option<String>,
        kind: String,
        detail: String,
    },
}

impl ProvisionAnswer {
    fn refused(device: Option<&str>, kind: &str, detail: impl Into<String>) -> Self {
        ProvisionAnswer::Refused {
            device_serial: device.map(str::to_string),
            kind: kind.to_string(),
            detail: detail.into(),
        }
    }

    /// The NDJSON line (without newline).
    pub fn to_json(&self) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            ProvisionAnswer::Issued {
                device_serial,
                serial,
                cert_der,
            } => serde_json::json!({
                "device_serial": device_serial,
                "status": "issued",
                "serial": serial,
                "certificate": b64.encode(cert_der),
            }),
            ProvisionAnswer::Refused {
                device_serial,
                kind,
                detail,
            } => serde_json::json!({
                "device_serial": device_serial,
                "status": "refused",
                "error": {"type": crate::error::problem_type(kind), "detail": detail},
            }),
        }
        .to_string()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    device_serial: String,
    csr: String,
}

/// One batch line's syntax: `{"device_serial": ..., "csr": BASE64}` → the device serial and the
/// CSR text as sent, or why the line is not such an object.
pub fn parse_batch_line(raw: &str) -> std::result::Result<(String, String), String> {
    serde_json::from_str::<Line>(raw)
        .map(|l| (l.device_serial, l.csr))
        .map_err(|e| e.to_string())
}

/// A chunk of batch lines for [`Hallmark::provision_stream`].
pub enum Lines {
    Chunk(Vec<String>),
    /// Nothing arrived yet (only when asked not to wait).
    NotYet,
    End,
}

/// A chunk between its checks and its answers.
struct ChunkPlan {
    /// Lines answered without issuance (refusals, devices already provisioned).
    answers: Vec<Option<ProvisionAnswer>>,
    /// Lines handed to issuance, in request order: (line, device serial, CSR DER).
    to_issue: Vec<(usize, String, Vec<u8>)>,
    /// The first line of each device in this chunk and its key hash.
    first_of: HashMap<String, (usize, String)>,
    /// (line, first line of the same device, device): answered as the first line was.
    repeats: Vec<(usize, usize, String)>,
    /// Devices recorded but not yet signed when the chunk was checked: answered at the end.
    deferred: Vec<(usize, String, Vec<u8>)>,
}

/// SHA-256 of the SubjectPublicKeyInfo inside a CSR, without verifying it (cheap).
fn csr_spki_sha256(der: &[u8]) -> Option<String> {
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(der).ok()?;
    Some(hex::encode(sha2::Sha256::digest(
        csr.certification_request_info.subject_pki.raw,
    )))
}

impl Hallmark {
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
            return Err(Error::Invalid(format!(
                "profile '{profile}' is not a device profile (it takes no device serial)"
            )));
        }
        regex_lite::Regex::new(serial_pattern)
            .map_err(|e| Error::Invalid(format!("--serial-pattern '{serial_pattern}': {e}")))?;
        if quota < 1 {
            return Err(Error::Invalid("--quota must be at least 1".into()));
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
                    return Err(Error::Invalid(format!(
                        "give --publisher: {} publishers may use profile '{profile}'",
                        fits.len()
                    )));
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
                .map_err(|_| Error::Invalid("generating the station key failed".into()))?;
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
        let station_profile = self.profiles.get("station")?.clone();
        let subject = vec![
            NameAttr {
                kind: "C".into(),
                value: publisher.country.clone(),
            },
            NameAttr {
                kind: "O".into(),
                value: publisher.org.clone(),
            },
            NameAttr {
                kind: "CN".into(),
                value: name.to_string(),
            },
        ];
        let approved = policy::Approved {
            profile: station_profile,
            publisher: publisher.clone(),
            csr: verified,
            subject,
            sans: vec![],
            requester: actor.to_string(),
            device_serial: None,
        };
        let issued = self.issue_approved(&approved, None)?;
        let rec = StationRecord {
            name: name.to_string(),
            publisher: publisher.id.clone(),
            profile: profile.to_string(),
            serial_pattern: serial_pattern.to_string(),
            quota,
            cert_serial: Some(issued.serial.clone()),
            disabled: false,
            reprovision,
            created_at: now(),
        };
        self.store.insert_station(&rec, actor)?;
        let mut chain_pem = crate::pemfmt::encode("CERTIFICATE", issued.cert_der.clone());
        for c in &issued.chain {
            chain_pem.push_str(&crate::pemfmt::encode("CERTIFICATE", c.clone()));
        }
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
            match self.revoke(
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
            Some(c) if c.not_after < now() => Ok(Some(format!(
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

    /// Answers one chunk of batch lines, in order. Each answer is durable before it is returned.
    pub fn provision(&self, station: &StationRecord, lines: &[String]) -> Vec<ProvisionAnswer> {
        let mut once = Some(lines.to_vec());
        let mut out = Vec::with_capacity(lines.len());
        self.provision_stream(
            station,
            |_| match once.take() {
                Some(l) => Lines::Chunk(l),
                None => Lines::End,
            },
            |answers| {
                out.extend(answers);
                true
            },
        );
        out
    }

    /// Answers a stream of chunks of batch lines through the issuance pipeline: while one
    /// chunk's records are committed and its certificates signed, the next ones are already
    /// checked and prepared. `next(wait)` gives the next chunk (blocking only when `wait`);
    /// `emit` gets each chunk's answers in order, each durable; it returns false when nobody
    /// listens any more (what is in flight is still finished and recorded).
    pub fn provision_stream(
        &self,
        station: &StationRecord,
        mut next: impl FnMut(bool) -> Lines,
        mut emit: impl FnMut(Vec<ProvisionAnswer>) -> bool,
    ) {
        let pattern = match regex_lite::Regex::new(&station.serial_pattern) {
            Ok(r) => r,
            Err(e) => {
                while let Lines::Chunk(lines) = next(true) {
                    let refused = lines
                        .iter()
                        .map(|_| {
                            ProvisionAnswer::refused(
                                None,
                                "internal",
                                format!("the station's pattern is invalid: {e}"),
                            )
                        })
                        .collect();
                    if !emit(refused) {
                        break;
                    }
                }
                return;
            }
        };
        self.issue_stream(
            Some(&station.name),
            |wait| match next(wait) {
                Lines::Chunk(lines) => {
                    let (plan, reqs) = self.plan_chunk(station, &pattern, &lines);
                    ChunkInput::Chunk(plan, reqs)
                }
                Lines::NotYet => ChunkInput::NotYet,
                Lines::End => ChunkInput::End,
            },
            |plan, results| emit(self.finish_chunk(station, plan, results)),
        );
    }

    /// The checks of a chunk that need no certificate: line syntax, the serial pattern, repeats
    /// within the chunk, devices already provisioned, the quota. What is left to issue comes
    /// back as requests. The quota read here can lag behind chunks still in flight; the
    /// database refuses an intent past the quota in any case (a trigger), so it holds exactly.
    fn plan_chunk(
        &self,
        station: &StationRecord,
        pattern: &regex_lite::Regex,
        lines: &[String],
    ) -> (ChunkPlan, Vec<IssueRequest>) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut plan = ChunkPlan {
            answers: vec![None; lines.len()],
            to_issue: Vec::new(),
            first_of: HashMap::new(),
            repeats: Vec::new(),
            deferred: Vec::new(),
        };
        let mut reqs = Vec::new();
        let mut quota_used = match self.store.station_issued_count(&station.name) {
            Ok(n) => n,
            Err(e) => {
                for a in plan.answers.iter_mut() {
                    *a = Some(ProvisionAnswer::refused(None, "internal", e.to_string()));
                }
                return (plan, reqs);
            }
        };
        // Lines that passed the syntax checks, first of their device in the chunk:
        // (line, device serial, CSR DER, key hash).
        let mut firsts: Vec<(usize, String, Vec<u8>, String)> = Vec::new();
        for (i, raw) in lines.iter().enumerate() {
            let (device_serial, csr) = match parse_batch_line(raw) {
                Ok(l) => l,
                Err(e) => {
                    plan.answers[i] = Some(ProvisionAnswer::refused(
                        None,
                        "bad-request",
                        format!(
                            "line {}: not a {{\"device_serial\",\"csr\"}} object: {e}",
                            i + 1
                        ),
                    ));
                    continue;
                }
            };
            let dev = device_serial.as_str();
            if !pattern.is_match(dev) {
                plan.answers[i] = Some(ProvisionAnswer::refused(
                    Some(dev),
                    "serial-not-allowed",
                    format!(
                        "device serial '{dev}' is outside this station's pattern {}",
                        station.serial_pattern
                    ),
                ));
                continue;
            }
            let der = match b64.decode(csr.trim()) {
                Ok(d) => d,
                Err(e) => {
                    plan.answers[i] = Some(ProvisionAnswer::refused(
                        Some(dev),
                        "bad-csr",
                        format!("the csr is not base64 DER: {e}"),
                    ));
                    continue;
                }
            };
            let Some(spki) = csr_spki_sha256(&der) else {
                plan.answers[i] = Some(ProvisionAnswer::refused(
                    Some(dev),
                    "bad-csr",
                    "bad CSR: malformed CSR DER",
                ));
                continue;
            };
            if let Some((first, first_spki)) = plan.first_of.get(dev) {
                if *first_spki == spki {
                    plan.repeats.push((i, *first, dev.to_string()));
                } else {
                    plan.answers[i] = Some(ProvisionAnswer::refused(
                        Some(dev),
                        "device-exists",
                        format!("device {dev} appears twice in this batch with different keys"),
                    ));
                }
                continue;
            }
            plan.first_of.insert(dev.to_string(), (i, spki.clone()));
            firsts.push((i, dev.to_string(), der, spki));
        }
        // The devices' existing certificates, in one read transaction for the chunk.
        let devices: Vec<&str> = firsts.iter().map(|(_, d, _, _)| d.as_str()).collect();
        let existing = match self.store.device_certificates(&station.profile, &devices) {
            Ok(e) => e,
            Err(e) => {
                for (i, dev, _, _) in &firsts {
                    plan.answers[*i] = Some(ProvisionAnswer::refused(
                        Some(dev),
                        "internal",
                        e.to_string(),
                    ));
                }
                return (plan, reqs);
            }
        };
        for ((i, dev, der, spki), found) in firsts.into_iter().zip(existing) {
            let dev = dev.as_str();
            match found {
                Some(existing) if existing.spki_sha256 == spki && existing.cert_der.is_none() => {
                    // Recorded but not signed yet: most likely by an earlier chunk of this very
                    // stream, which completes before this chunk is answered. Answer then.
                    plan.deferred.push((i, dev.to_string(), der));
                    continue;
                }
                Some(existing) if existing.spki_sha256 == spki => {
                    plan.answers[i] = Some(match self.finish_existing(&existing) {
                        Ok(cert_der) => ProvisionAnswer::Issued {
                            device_serial: dev.to_string(),
                            serial: existing.serial.clone(),
                            cert_der,
                        },
                        Err(e) => ProvisionAnswer::refused(Some(dev), e.kind(), e.to_string()),
                    });
                    continue;
                }
                Some(existing) if station.reprovision => {
                    // A new key for a known device: the old certificate is superseded.
                    let actor = format!("station:{}", station.name);
                    let r = self
                        .revoke(
                            &existing.serial,
                            crate::revocation::RevocationReason::Superseded,
                            None,
                            &actor,
                        )
                        .map(|_| ())
                        .or_else(|e| {
                            if e.kind() == "conflict" || e.kind() == "not-found" {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        })
                        .and_then(|_| {
                            self.store
                                .release_device(&existing.serial, &actor)
                                .map_err(Error::from)
                        });
                    if let Err(e) = r {
                        plan.answers[i] =
                            Some(ProvisionAnswer::refused(Some(dev), e.kind(), e.to_string()));
                        continue;
                    }
                }
                Some(_) => {
                    plan.answers[i] = Some(ProvisionAnswer::refused(
                        Some(dev),
                        "device-exists",
                        format!("device {dev} already holds a certificate for another key; this station may not reprovision"),
                    ));
                    continue;
                }
                None => {}
            }
            if quota_used >= station.quota {
                plan.answers[i] = Some(ProvisionAnswer::refused(
                    Some(dev),
                    "quota-exceeded",
                    format!(
                        "station '{}' has used its quota of {}",
                        station.name, station.quota
                    ),
                ));
                continue;
            }
            quota_used += 1;
            plan.to_issue.push((i, dev.to_string(), der.clone()));
            reqs.push(IssueRequest {
                profile: station.profile.clone(),
                publisher: station.publisher.clone(),
                csr: der,
                requester: format!("station:{}", station.name),
                device_serial: Some(dev.to_string()),
                name: None,
            });
        }
        (plan, reqs)
    }

    /// A chunk's answers once its certificates are durable.
    fn finish_chunk(
        &self,
        station: &StationRecord,
        plan: ChunkPlan,
        results: Vec<Result<Issued>>,
    ) -> Vec<ProvisionAnswer> {
        let ChunkPlan {
            mut answers,
            to_issue,
            repeats,
            deferred,
            ..
        } = plan;
        for ((i, dev, csr), r) in to_issue.into_iter().zip(results) {
            answers[i] = Some(match r {
                Ok(Issued {
                    serial, cert_der, ..
                }) => ProvisionAnswer::Issued {
                    device_serial: dev,
                    serial,
                    cert_der,
                },
                // Another connection (or an earlier chunk of this stream) recorded this device
                // meanwhile — a station resending after a drop: same key, same answer.
                Err(e) if e.kind() == "device-exists" => {
                    self.answer_for_existing(station, &dev, &csr, e)
                }
                Err(e) => ProvisionAnswer::refused(Some(&dev), e.kind(), e.to_string()),
            });
        }
        for (i, dev, csr) in deferred {
            let why = Error::Store(StoreError::DeviceTaken(dev.clone()));
            answers[i] = Some(self.answer_for_existing(station, &dev, &csr, why));
        }
        for (i, first, dev) in repeats {
            answers[i] = Some(match &answers[first] {
                Some(a) => a.clone(),
                None => ProvisionAnswer::refused(
                    Some(&dev),
                    "internal",
                    "no answer for the first line of this device",
                ),
            });
        }
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    ProvisionAnswer::refused(None, "internal", "the line was not answered")
                })
            })
            .collect()
    }

    fn answer_for_existing(
        &self,
        station: &StationRecord,
        dev: &str,
        csr: &[u8],
        original: Error,
    ) -> ProvisionAnswer {
        let spki = csr_spki_sha256(csr);
        match self.store.device_certificate(&station.profile, dev) {
            Ok(Some(existing)) if Some(&existing.spki_sha256) == spki.as_ref() => {
                match self.finish_existing(&existing) {
                    Ok(cert_der) => ProvisionAnswer::Issued {
                        device_serial: dev.to_string(),
                        serial: existing.serial,
                        cert_der,
                    },
                    Err(e) => ProvisionAnswer::refused(Some(dev), e.kind(), e.to_string()),
                }
            }
            _ => ProvisionAnswer::refused(Some(dev), original.kind(), original.to_string()),
        }
    }

    /// The certificate of a device that already has one. A recorded intent is usually being
    /// signed by another connection right now: wait for it (up to 10 s). One recorded before
    /// this server started was left by a stop (recovery at start finishes those, so this is
    /// rare) and one still unsigned after the wait was left by a failure between record and
    /// sign: either is signed and completed now, from the bytes that were recorded.
    fn finish_existing(&self, existing: &crate::store::DeviceCertificate) -> Result<Vec<u8>> {
        if let Some(der) = &existing.cert_der {
            return Ok(der.clone());
        }
        let record = self.store.get_certificate(&existing.serial)?;
        let profile = record
            .as_ref()
            .map(|c| c.profile.clone())
            .unwrap_or_default();
        let ours = record.is_some_and(|c| c.created_at >= self.started_at());
        let waited = std::time::Instant::now();
        while ours && waited.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now_rec = self.store.get_certificate(&existing.serial)?;
            if let Some(der) = now_rec.as_ref().and_then(|c| c.cert_der.clone()) {
                return Ok(der);
            }
            if now_rec.is_none_or(|c| c.status != crate::store::CertStatus::Intent)
                || profile.is_empty()
            {
                break;
            }
        }
        let tbs = self
            .store
            .intent_tbs(&existing.serial)?
            .ok_or_else(|| Error::NotFound(format!("intent {}", existing.serial)))?;
        let der = self.sign_intent_tbs(&existing.ca, &tbs)?;
        self.store
            .complete_issuance(&existing.serial, &der, "recovery")?;
        Ok(der)
    }
}
