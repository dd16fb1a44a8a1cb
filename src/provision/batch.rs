//! Batch provisioning: a station's lines, planned and issued a chunk at a time through the engine's batch path, answered line by line in order; a device that already holds a certificate for the same key gets it again.

use super::*;

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

impl Provisioning {
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
        self.issuance.issue_stream(
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
                let failure = Error::from(e);
                for a in plan.answers.iter_mut() {
                    *a = Some(ProvisionAnswer::failed(None, &failure));
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
                let failure = Error::from(e);
                for (i, dev, _, _) in &firsts {
                    plan.answers[*i] = Some(ProvisionAnswer::failed(Some(dev), &failure));
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
                        Err(e) => ProvisionAnswer::failed(Some(dev), &e),
                    });
                    continue;
                }
                Some(existing) if station.reprovision => {
                    // A new key for a known device: the old certificate is superseded.
                    let actor = format!("station:{}", station.name);
                    let r = self
                        .revocation
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
                        plan.answers[i] = Some(ProvisionAnswer::failed(Some(dev), &e));
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
                Err(e) => ProvisionAnswer::failed(Some(&dev), &e),
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
                    Err(e) => ProvisionAnswer::failed(Some(dev), &e),
                }
            }
            _ => ProvisionAnswer::failed(Some(dev), &original),
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
        let ours = record.is_some_and(|c| c.created_at >= self.started_at);
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
        let der = self.issuance.sign_intent_tbs(&existing.ca, &tbs)?;
        self.store
            .complete_issuance(&existing.serial, &der, "recovery")?;
        Ok(der)
    }
}
