//! The OCSP responder: each issuing CA's delegated responder, answers from pre-signed
//! responses (re-signed after a revocation and on a schedule) or signed live with a nonce.

use super::*;

/// An OCSP answer, ready for HTTP.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    pub der: Vec<u8>,
    pub status: ResponseStatus,
    /// thisUpdate and nextUpdate, when the answer may be cached (no nonce).
    pub cacheable: Option<(i64, i64)>,
}

/// One delegated responder and the issuer it answers for.
pub(super) struct Responder {
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
    pub(super) fn key(&self) -> ResponderKey<'_> {
        ResponderKey {
            signer: self.signer.as_ref(),
            scheme: self.scheme,
            key_hash: &self.key_hash,
        }
    }
}

#[derive(Default)]
pub(super) struct Responders {
    /// Which responder certificates were loaded (name, serial), to notice changes.
    loaded: Vec<(String, Option<String>)>,
    list: Vec<Responder>,
    /// (hash, issuerNameHash, issuerKeyHash) → responder index; a handful of entries.
    by_issuer: Vec<(CertIdHash, Vec<u8>, Vec<u8>, usize)>,
}

impl RevocationService {
    /// The responder certificates in the database (name, serial).
    pub(super) fn responder_records(&self) -> Result<Vec<(String, Option<String>)>> {
        Ok(self
            .store
            .list_cas()?
            .into_iter()
            .filter(|c| c.role == CaRole::Ocsp)
            .map(|c| (c.name, c.serial))
            .collect())
    }

    pub(super) fn load_responders(&self) -> Result<Responders> {
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
                .map_err(|e| Error::Corrupt(format!("CA '{parent}' certificate: {e}")))?;
            let name_raw = ic.subject().as_raw().to_vec();
            let key_bits = ic.public_key().subject_public_key.data.to_vec();
            let signer = self
                .keyring
                .key_store(&rec.key_store)?
                .open(&rec.key_label)?;
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

    pub(super) fn responders(&self) -> Result<Arc<Responders>> {
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
    pub(super) fn reload_responders_if_changed(&self) -> Result<()> {
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

    pub(super) fn ocsp_inner(
        &self,
        request: &[u8],
    ) -> std::result::Result<OcspAnswer, ResponseStatus> {
        // Answering uses the read half only (read-only connections; never waits on a writer).
        let reads: &dyn crate::store::RevocationRead = &*self.store;
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
        let t = self.clock.now();
        if req.items.len() == 1 && req.nonce_extension.is_none() {
            let item = &req.items[0];
            let canonical =
                ocsp::cert_id(CertIdHash::Sha1, &r.sha1_name, &r.sha1_key, &item.serial);
            if item.cert_id_der == canonical {
                let stored = reads
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
        let next_update = t + i64::from(self.ocsp.validity_hours) * 3600;
        let mut statuses = Vec::with_capacity(req.items.len());
        for item in &req.items {
            let standing = reads
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
    pub(super) fn presign_batch(&self, r: &Responder, cands: &[PresignCandidate]) -> Result<usize> {
        let t = self.clock.now();
        let next_update = t + i64::from(self.ocsp.validity_hours) * 3600;
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
        let stale_before = self.clock.now() - i64::from(self.ocsp.refresh_hours) * 3600;
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
        let t = self.clock.now();
        let renew_before = t + i64::from(self.ocsp.responder_renew_days) * 86_400;
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
            let ca = self.keyring.ca(&parent)?;
            let signer = self
                .keyring
                .key_store(&rec.key_store)?
                .open(&rec.key_label)?;
            let spec = self.responder_spec(&parent);
            let cert = issuer::issue_ca_certificate(
                &spec,
                signer.spki_der(),
                Some(&ca),
                signer.as_ref(),
                t,
            )?;
            let (serial, subject, nb, na) = issuer::cert_summary(&cert)?;
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

impl RevocationService {
    /// Re-signs only the responses revocations invalidated (the refresher's fast path).
    pub(super) fn presign_ocsp_dirty_only(&self) -> Result<usize> {
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
