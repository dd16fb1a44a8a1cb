//! Tokens, certificate requests and M-of-N approvals: the engine calls behind the JSON API.
//!
//! Rules (enforced here and in the store, whichever edge calls): a caller acts only for its own
//! publisher unless it is an officer; the requester never approves its own request; an approver
//! counts once; a request expires after `api.request_ttl_hours`; a denied or expired request can
//! never issue. When the last needed approval arrives, the certificate is issued in that call.

mod approvals;
pub(crate) mod error;
mod tokens;

pub use error::RequestError;
pub use tokens::Tokens;

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::issuance::{Issuance, Issued};
use crate::policy::auth::{self, AuthError, Credential, Scope};
use crate::policy::{self, Approvals, IssueRequest};
use crate::profile::Profiles;
use crate::store::Store;
use crate::store::{
    ApprovalRecord, NewRequest, RequestRecord, RequestStatus, StoreError, TokenRecord,
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

/// The certificate-request service: submissions, the approval workflow, cancellation. It holds
/// the store, the profiles, the clock, issuance (a request issues when its last approval
/// arrives) and `api.request_ttl_hours`.
pub struct Requests {
    store: Arc<dyn Store>,
    profiles: Arc<Profiles>,
    clock: SharedClock,
    issuance: Arc<Issuance>,
    /// How long a request waits for approvals.
    request_ttl_hours: u32,
}

impl Requests {
    pub fn new(
        store: Arc<dyn Store>,
        profiles: Arc<Profiles>,
        clock: SharedClock,
        issuance: Arc<Issuance>,
        request_ttl_hours: u32,
    ) -> Requests {
        Requests {
            store,
            profiles,
            clock,
            issuance,
            request_ttl_hours,
        }
    }

    /// Submits a certificate request: issued at once, or stored to wait for approvals.
    pub fn submit(&self, mut req: IssueRequest, cred: &Credential) -> Result<Submitted> {
        cred.require(Scope::Issue)?;
        cred.may_act_for(&req.publisher)?;
        req.requester = cred.name.clone();
        let publisher = policy::lookup_publisher(&self.profiles, &*self.store, &req)?;
        let approved = policy::check(&self.profiles, publisher, &req, Approvals::Workflow)?;
        let Some(rules) = approved.profile().approvals.clone() else {
            // Direct issuance: the record names the token and the address it came from.
            let approved = approved.on_behalf_of(cred.actor(), cred.identity_json());
            return Ok(Submitted::Issued(
                self.issuance.issue_approved(&approved, None)?,
            ));
        };
        let der = approved.csr().der.clone();
        let id = self.store.insert_pending_request(
            &NewRequest {
                profile: approved.profile().name.clone(),
                publisher: approved.publisher().id.clone(),
                requester: cred.name.clone(),
                csr_der: der,
                device_serial: req.device_serial.clone(),
                cn_name: req.name.clone(),
                approvals_required: i64::from(rules.required),
                expires_at: self.clock.now() + i64::from(self.request_ttl_hours) * 3600,
                identity: cred.identity_json(),
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
        let wanted =
            match status {
                Some(s) => Some(RequestStatus::parse(s).map_err(|_| {
                    RequestError::UnknownStatus(s.to_string(), RequestStatus::names())
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

    pub(crate) fn expire_if_due(&self, mut r: RequestRecord) -> Result<RequestRecord> {
        if r.status == RequestStatus::Pending && r.expires_at.is_some_and(|e| e <= self.clock.now())
        {
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
                let cert = self.issuance.issue_approved(&approved, Some(id))?;
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
