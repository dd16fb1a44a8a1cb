//! Tokens, certificate requests and M-of-N approvals: the engine calls behind the JSON API.
//!
//! Rules (enforced here and in the store, whichever edge calls): a caller acts only for its own
//! publisher unless it is an officer; the requester never approves its own request; an approver
//! counts once; a request expires after `api.request_ttl_hours`; a denied or expired request can
//! never issue. When the last needed approval arrives, the certificate is issued in that call.

use crate::engine::{Hallmark, Issued};
use crate::error::{Error, Result};
use crate::policy::auth::{self, AuthError, Credential, Scope};
use crate::policy::{self, Approvals, IssueRequest};
use crate::store::{
    now, ApprovalRecord, NewRequest, RequestRecord, RequestStatus, StoreError, TokenRecord,
};

/// What a certificate submission came to.
#[derive(Debug, Clone)]
pub enum Submitted {
    Issued(Issued),
    /// Waiting for approvals.
    Pending(RequestRecord),
}

/// A request with its approvals, as callers see it.
#[derive(Debug, Clone)]
pub struct RequestView {
    pub request: RequestRecord,
    pub approvals: Vec<ApprovalRecord>,
}

impl Hallmark {
    /// Creates an API token; returns its record and the secret, which is never shown again.
    pub fn create_token(
        &self,
        publisher: Option<&str>,
        name: Option<&str>,
        scopes: &[Scope],
        officer: bool,
        expires_in: Option<i64>,
        actor: &str,
    ) -> Result<(TokenRecord, String)> {
        if let Some(p) = publisher {
            if self.store.get_publisher(p)?.is_none() {
                return Err(policy::PolicyError::UnknownPublisher(p.to_string()).into());
            }
        } else if !officer {
            return Err(Error::Invalid(
                "a token needs --publisher, or --officer".into(),
            ));
        }
        let t = auth::new_token();
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| format!("token-{}", t.id));
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
        if !ok {
            return Err(Error::Invalid(format!(
                "token name '{name}': use 1-64 of A-Z a-z 0-9 - _ . @"
            )));
        }
        let rec = TokenRecord {
            id: t.id,
            name,
            hash: t.hash,
            publisher: publisher.map(str::to_string),
            officer,
            scopes: Scope::join(scopes),
            expires_at: expires_in.map(|s| now() + s),
            revoked_at: None,
            created_at: now(),
        };
        self.store.insert_token(&rec, actor)?;
        Ok((rec, t.secret_token))
    }

    /// Checks a bearer token: 401 for anything missing, malformed, unknown, revoked or expired.
    pub fn authenticate(
        &self,
        bearer: Option<&str>,
        address: Option<String>,
    ) -> Result<Credential> {
        let token = bearer.ok_or_else(|| {
            AuthError::Unauthorized("no token: send Authorization: Bearer hmk_...".into())
        })?;
        let (id, secret) = auth::parse_token(token)?;
        // One read of the record cache's generation per request: whatever another process
        // (the command line) changed before this request began is seen by all its lookups.
        self.store.sync_cache()?;
        let rec = self
            .store
            .get_token(id)?
            .ok_or_else(|| AuthError::Unauthorized("unknown token".into()))?;
        if !auth::digest_eq(&auth::hash_secret(secret), &rec.hash) {
            return Err(AuthError::Unauthorized("unknown token".into()).into());
        }
        if rec.revoked_at.is_some() {
            return Err(AuthError::Unauthorized("this token was revoked".into()).into());
        }
        // A publisher created with a reserved id before it was reserved: its tokens act for
        // nobody, so they cannot reach hallmark's own certificates (doctor names the record).
        if rec
            .publisher
            .as_deref()
            .is_some_and(policy::identity::is_reserved_publisher)
        {
            return Err(AuthError::Unauthorized(format!(
                "this token's publisher id '{}' is reserved for hallmark itself; create a publisher with another id and a new token",
                rec.publisher.as_deref().unwrap_or_default()
            ))
            .into());
        }
        if rec.expires_at.is_some_and(|e| e <= now()) {
            return Err(AuthError::Unauthorized("this token has expired".into()).into());
        }
        let scopes = Scope::parse_list(&rec.scopes)
            .map_err(|e| Error::Corrupt(format!("the stored token scopes: {e}")))?;
        Ok(Credential {
            token_id: rec.id,
            name: rec.name,
            publisher: rec.publisher,
            officer: rec.officer,
            scopes,
            address,
            request_id: None,
        })
    }

    /// Submits a certificate request: issued at once, or stored to wait for approvals.
    pub fn submit(&self, mut req: IssueRequest, cred: &Credential) -> Result<Submitted> {
        cred.require(Scope::Issue)?;
        cred.may_act_for(&req.publisher)?;
        req.requester = cred.name.clone();
        let publisher = policy::lookup_publisher(&self.profiles, &*self.store, &req)?;
        let approved = policy::check(&self.profiles, publisher, &req, Approvals::Workflow)?;
        let Some(rules) = approved.profile.approvals.clone() else {
            // Direct issuance: the record names the token and the address it came from.
            let approved = policy::Approved {
                requester: cred.actor(),
                ..approved
            };
            return Ok(Submitted::Issued(self.issue_approved(&approved, None)?));
        };
        let der = approved.csr.der.clone();
        let id = self.store.insert_pending_request(
            &NewRequest {
                profile: approved.profile.name.clone(),
                publisher: approved.publisher.id.clone(),
                requester: cred.name.clone(),
                csr_der: der,
                device_serial: req.device_serial.clone(),
                cn_name: req.name.clone(),
                approvals_required: i64::from(rules.required),
                expires_at: now() + i64::from(self.config.api.request_ttl_hours) * 3600,
            },
            &cred.actor(),
        )?;
        let rec = self
            .store
            .get_request(id)?
            .ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        Ok(Submitted::Pending(rec))
    }

    /// A request the caller may see (another publisher's is not found), expired if due.
    fn visible_request(&self, id: i64, cred: &Credential) -> Result<RequestRecord> {
        let request = self
            .store
            .get_request(id)?
            .ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        cred.may_act_for(request.publisher.as_deref().unwrap_or(""))
            .map_err(|_| Error::NotFound(format!("request {id}")))?;
        self.expire_if_due(request)
    }

    /// A request, if the caller may see it.
    pub fn request_view(&self, id: i64, cred: &Credential) -> Result<RequestView> {
        let request = self.visible_request(id, cred)?;
        Ok(RequestView {
            approvals: self.store.approvals(id)?,
            request,
        })
    }

    /// Requests the caller may see, by status, newest first: a page of at most `limit` below id
    /// `before`, and the cursor of the next page (None on the last).
    pub fn list_requests(
        &self,
        status: Option<&str>,
        cred: &Credential,
        before: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<RequestRecord>, Option<i64>)> {
        let wanted = match status {
            Some(s) => Some(RequestStatus::parse(s).map_err(|_| {
                Error::Invalid(format!("unknown status '{s}' ({})", RequestStatus::names()))
            })?),
            None => None,
        };
        let publisher = if cred.officer {
            None
        } else {
            cred.publisher.as_deref()
        };
        let rows = self.store.list_requests(wanted, publisher, before, limit)?;
        let next = if rows.len() == limit {
            rows.last().map(|r| r.id)
        } else {
            None
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            // A pending request past its deadline is expired as it is read (and then left out
            // of a `pending` listing).
            let r = self.expire_if_due(r)?;
            if wanted.is_none_or(|s| s == r.status) {
                out.push(r);
            }
        }
        Ok((out, next))
    }

    fn expire_if_due(&self, mut r: RequestRecord) -> Result<RequestRecord> {
        if r.status == RequestStatus::Pending && r.expires_at.is_some_and(|e| e <= now()) {
            self.store
                .finish_request(r.id, RequestStatus::Expired, None, "hallmark")?;
            r.status = RequestStatus::Expired;
        }
        Ok(r)
    }

    /// Cancels a pending request: its requester, or an officer. It never issues afterwards.
    pub fn cancel_request(&self, id: i64, cred: &Credential) -> Result<RequestView> {
        let request = self.visible_request(id, cred)?;
        if !cred.officer && cred.name != request.requester {
            return Err(AuthError::Forbidden(format!(
                "only the requester ('{}') or an officer cancels request {id}",
                request.requester
            ))
            .into());
        }
        if request.status != RequestStatus::Pending {
            return Err(Error::Conflict(format!(
                "request {id} is {}; only a pending request can be cancelled",
                request.status
            )));
        }
        if !self.store.cancel_request(id, &cred.actor())? {
            return Err(Error::Conflict(format!(
                "request {id} was decided meanwhile; it is no longer pending"
            )));
        }
        self.request_view(id, cred)
    }

    /// Approves or denies a pending request. Returns the request as it stands, and the
    /// certificate when this approval was the last one needed.
    pub fn decide(
        &self,
        id: i64,
        cred: &Credential,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<(RequestView, Option<Issued>)> {
        cred.require(Scope::Approve)?;
        let request = self.visible_request(id, cred)?;
        if request.status != RequestStatus::Pending {
            return Err(Error::Conflict(format!(
                "request {id} is {}; it can no longer be decided",
                request.status
            )));
        }
        let profile = self.profiles.get(&request.profile)?;
        let rules = profile.approvals.as_ref().ok_or_else(|| {
            Error::Conflict(format!(
                "profile '{}' no longer asks for approvals",
                profile.name
            ))
        })?;
        if !rules.approvers.iter().any(|a| a == &cred.name) {
            return Err(AuthError::Forbidden(format!(
                "'{}' is not an approver of profile '{}' (approvers: {})",
                cred.name,
                profile.name,
                rules.approvers.join(", ")
            ))
            .into());
        }
        if cred.name == request.requester {
            return Err(AuthError::Forbidden(
                "the requester never approves its own request".into(),
            )
            .into());
        }
        let decision =
            match self
                .store
                .record_decision(id, &cred.name, approve, comment, &cred.actor())
            {
                Ok(d) => d,
                Err(StoreError::Conflict(_)) => {
                    return Err(Error::Conflict(format!(
                        "'{}' has already decided on request {id}",
                        cred.name
                    )))
                }
                Err(e) => return Err(e.into()),
            };
        // Only the approval that claimed the request issues: a concurrent approval or denial
        // saw the request no longer pending and was refused.
        let issued = if decision.claimed {
            Some(self.issue_claimed(&request, &cred.actor())?)
        } else {
            None
        };
        Ok((self.request_view(id, cred)?, issued))
    }

    /// Issues the certificate of a claimed (fully approved) request and ends it as `issued`.
    /// Policy runs again first: the publisher or profile may have changed while it waited; a
    /// refusal ends the request as `denied` by policy.
    pub(crate) fn issue_claimed(&self, request: &RequestRecord, actor: &str) -> Result<Issued> {
        let id = request.id;
        let req = IssueRequest {
            profile: request.profile.clone(),
            publisher: request.publisher.clone().unwrap_or_default(),
            csr: request.csr_der.clone(),
            requester: request.requester.clone(),
            device_serial: request.device_serial.clone(),
            name: request.cn_name.clone(),
        };
        let checked = policy::lookup_publisher(&self.profiles, &*self.store, &req)
            .and_then(|p| policy::check(&self.profiles, p, &req, Approvals::Workflow));
        match checked {
            Ok(approved) => {
                let cert = self.issue_approved(&approved, Some(id))?;
                self.store
                    .finish_request(id, RequestStatus::Issued, Some(&cert.serial), actor)?;
                Ok(cert)
            }
            Err(e) => {
                self.store
                    .finish_request(id, RequestStatus::Denied, None, "policy")?;
                Err(e.into())
            }
        }
    }
}
