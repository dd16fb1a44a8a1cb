//! Signature requests that wait for approvals: reading them (expired as they are read),
//! cancelling, deciding (the approval that reaches the quorum claims and signs), finishing
//! what a stop left claimed, and listing recorded signatures.

use super::*;

impl Signing {
    pub(crate) fn expire_signature_request_if_due(
        &self,
        mut r: SignatureRequestRecord,
    ) -> Result<SignatureRequestRecord> {
        if r.status == SignatureRequestStatus::Pending && r.expires_at <= self.clock.now() {
            self.store.finish_signature_request(
                r.id,
                SignatureRequestStatus::Pending,
                SignatureRequestStatus::Expired,
                None,
                "hallmark",
            )?;
            if let Some(fresh) = self.store.get_signature_request(r.id)? {
                r = fresh;
            }
        }
        Ok(r)
    }

    /// A signature request, if the caller may see it (another publisher's is "not found").
    pub fn signature_request_view(
        &self,
        id: i64,
        cred: &Credential,
    ) -> Result<SignatureRequestView> {
        let request = self
            .store
            .get_signature_request(id)?
            .ok_or_else(|| Error::NotFound(format!("signature request {id}")))?;
        cred.may_act_for(&request.publisher)
            .map_err(|_| Error::NotFound(format!("signature request {id}")))?;
        let request = self.expire_signature_request_if_due(request)?;
        Ok(SignatureRequestView {
            approvals: self.store.signature_approvals(id)?,
            request,
        })
    }

    /// What `GET /api/v1/signatures/{id}` names. A signature request that waits for approvals
    /// shares its id with the signature it ends in: until it is signed the id shows the request
    /// (pending, denied, expired, failed), afterwards the record with the request beside it.
    /// Any other id is a recorded signature. A request from before ids were shared whose number
    /// a signature also has is reachable only as `/api/v1/signatures/requests/{id}`.
    pub fn signature_by_id(&self, id: i64, cred: &Credential) -> Result<SignatureById> {
        if let Some(request) = self.store.get_signature_request(id)? {
            match request.signature_id {
                Some(signature) if signature == id => {
                    return Ok(SignatureById::Record(
                        self.signature_record(id, cred)?,
                        Some(Box::new(self.signature_request_view(id, cred)?)),
                    ));
                }
                None if self.store.get_signature(id)?.is_none() => {
                    return Ok(SignatureById::Request(
                        self.signature_request_view(id, cred)?,
                    ));
                }
                _ => {}
            }
        }
        Ok(SignatureById::Record(
            self.signature_record(id, cred)?,
            None,
        ))
    }

    /// The id under which `GET /api/v1/signatures/{id}` shows signature request `r`: the
    /// signature's once signed, else its own when no signature holds that number.
    pub fn signature_request_public_id(&self, r: &SignatureRequestRecord) -> Result<Option<i64>> {
        Ok(match r.signature_id {
            Some(id) => Some(id),
            None => self.store.get_signature(r.id)?.is_none().then_some(r.id),
        })
    }

    /// A recorded signature, if the caller may see it.
    pub fn signature_record(&self, id: i64, cred: &Credential) -> Result<SignatureRecord> {
        let rec = self
            .store
            .get_signature(id)?
            .ok_or_else(|| Error::NotFound(format!("signature {id}")))?;
        let key = self.keyring.key(&rec.key_label)?;
        cred.may_act_for(&key.publisher)
            .map_err(|_| Error::NotFound(format!("signature {id}")))?;
        Ok(rec)
    }

    /// Approves or denies a pending signature request. The approval that completes the quorum
    /// signs the stored digest (policy and key certificate checked again) in this call.
    /// Cancels a pending signature request: its requester, or an officer. Nothing is signed
    /// for it afterwards.
    pub fn cancel_signature_request(
        &self,
        id: i64,
        cred: &Credential,
    ) -> Result<SignatureRequestView> {
        let view = self.signature_request_view(id, cred)?;
        let request = view.request;
        if !cred.officer && cred.name != request.requester {
            return Err(AuthError::Forbidden(format!(
                "only the requester ('{}') or an officer cancels signature request {id}",
                request.requester
            ))
            .into());
        }
        if request.status != SignatureRequestStatus::Pending {
            return Err(Error::Conflict(format!(
                "signature request {id} is {}; only a pending request can be cancelled",
                request.status
            )));
        }
        if !self.store.finish_signature_request(
            id,
            SignatureRequestStatus::Pending,
            SignatureRequestStatus::Cancelled,
            None,
            &cred.actor(),
        )? {
            return Err(Error::Conflict(format!(
                "signature request {id} was decided meanwhile; it is no longer pending"
            )));
        }
        self.signature_request_view(id, cred)
    }

    pub fn decide_signature(
        &self,
        id: i64,
        cred: &Credential,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<(SignatureRequestView, Option<SignedDigest>)> {
        cred.require(Scope::Approve)?;
        let view = self.signature_request_view(id, cred)?;
        let request = view.request;
        if request.status != SignatureRequestStatus::Pending {
            return Err(Error::Conflict(format!(
                "signature request {id} is {}; it can no longer be decided",
                request.status
            )));
        }
        if cred.name == request.requester {
            return Err(AuthError::Forbidden(
                "the requester never approves its own signature request".into(),
            )
            .into());
        }
        let policy = self.key_policy(&request.key_label)?;
        let approvers = self.approvers_of(&policy, &request.requester);
        if !approvers.iter().any(|a| cred.answers_to(a)) {
            return Err(AuthError::Forbidden(format!(
                "'{}' is not an approver of key '{}' (approvers: {})",
                cred.name,
                request.key_label,
                if approvers.is_empty() {
                    "none".to_string()
                } else {
                    approvers.join(", ")
                }
            ))
            .into());
        }
        let decision = match self.store.record_signature_decision(
            id,
            &cred.name,
            approve,
            comment,
            &cred.actor(),
        ) {
            Ok(d) => d,
            Err(StoreError::Conflict(_)) => {
                return Err(Error::Conflict(format!(
                    "'{}' has already decided on signature request {id}",
                    cred.name
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let mut signed = None;
        if decision.claimed {
            let result = self.sign_approved(&request, &policy);
            signed = Some(self.finish_claimed(id, result, &cred.actor(), "policy")?);
        }
        Ok((self.signature_request_view(id, cred)?, signed))
    }

    /// Ends a claimed (`signing`) request with the outcome of its signature: `signed` with the
    /// signature (and any time-stamp token), or `failed` (a key store, database or time-stamp
    /// authority problem: the server's failure) / `denied` (the request no longer passes the
    /// key's policy). The signing error is returned after the request is ended.
    pub(super) fn finish_claimed(
        &self,
        id: i64,
        result: Result<SignedDigest>,
        signed_by: &str,
        ended_by: &str,
    ) -> Result<SignedDigest> {
        match result {
            Ok(s) => {
                self.store.finish_signature_request(
                    id,
                    SignatureRequestStatus::Signing,
                    SignatureRequestStatus::Signed,
                    Some(SignedRequest {
                        signature_id: s.id,
                        signature: &s.signature,
                        timestamp_token: s.timestamp_token.as_deref(),
                    }),
                    signed_by,
                )?;
                Ok(s)
            }
            Err(e) => {
                let status = if matches!(
                    e,
                    Error::Key(_) | Error::Store(_) | Error::Issue(_) | Error::Conflict(_)
                ) {
                    SignatureRequestStatus::Failed
                } else {
                    SignatureRequestStatus::Denied
                };
                self.store.finish_signature_request(
                    id,
                    SignatureRequestStatus::Signing,
                    status,
                    None,
                    ended_by,
                )?;
                Err(e)
            }
        }
    }

    /// Finishes the signature requests a crash left claimed (`signing`: the quorum was reached,
    /// the server stopped before the request was finished). Nobody else could complete them —
    /// their approvers have all decided — so at server start each is signed now, or ends
    /// `failed`/`denied` as the approval path would end it. If the crash came after the
    /// signature was recorded, the digest is signed (and recorded) a second time: the approved
    /// digest, never another. Returns how many were finished.
    pub fn recover_signature_requests(&self) -> Result<usize> {
        let ids = self
            .store
            .signature_request_ids(SignatureRequestStatus::Signing)?;
        for &id in &ids {
            let Some(request) = self.store.get_signature_request(id)? else {
                continue;
            };
            let result = self
                .key_policy(&request.key_label)
                .and_then(|policy| self.sign_approved(&request, &policy));
            if let Err(e) = self.finish_claimed(id, result, "recovery", "recovery") {
                tracing::warn!("signature request {id} left claimed by a stop: {e}");
            }
        }
        Ok(ids.len())
    }

    /// Signs an approved request's stored digest after checking it again against the key's
    /// current policy (it may have changed while the request waited).
    pub(super) fn sign_approved(
        &self,
        request: &SignatureRequestRecord,
        policy: &KeyPolicy,
    ) -> Result<SignedDigest> {
        let (metadata, extra) = split_metadata(request.metadata.as_deref());
        let text = |k: &str| extra.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let checked = check_request(&SignRequest {
            key: request.key_label.clone(),
            digest: request.digest.clone(),
            digest_algorithm: request.digest_algorithm.clone(),
            format: request.format.clone(),
            metadata,
            timestamp: extra
                .get("timestamp")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            content_type: text("content_type"),
            content: text("content"),
            openpgp_trailer: text("openpgp_trailer"),
        })?;
        let key = self.keyring.key(&request.key_label)?;
        policy.check(
            &key.label,
            checked.format.name(),
            digest_algorithm_name(checked.hash),
            &request.requester,
        )?;
        let approvers = self
            .store
            .signature_approvals(request.id)?
            .into_iter()
            .filter(|a| a.decision == "approve")
            .map(|a| a.approver)
            .collect::<Vec<_>>()
            .join(",");
        self.sign_checked(
            &key,
            &checked,
            &request.requester,
            &format!("signature-request:{}", request.id),
            Some(approvers),
            None,
            // The signature takes the request's id (reserved from the same sequence).
            request.id,
            request.identity.clone(),
        )
    }

    /// Lists signatures, newest first, below id `before` when given: a publisher's credential
    /// sees its own keys' only, officers all.
    pub fn list_signatures(
        &self,
        key: Option<&str>,
        cred: &Credential,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<SignatureRecord>> {
        if cred.officer {
            return Ok(self.store.list_signatures(key, None, before, limit)?);
        }
        let publisher = cred.publisher.as_deref().ok_or_else(|| {
            Error::from(crate::policy::auth::AuthError::Forbidden(
                "this token acts for no publisher".into(),
            ))
        })?;
        if let Some(k) = key {
            self.keyring.key_for(k, cred)?;
        }
        Ok(self
            .store
            .list_signatures(key, Some(publisher), before, limit)?)
    }
}
