//! The web console's service: what a signed-in person sees and may decide, page by page. The
//! rules are the API's (a publisher's person sees only that publisher's records; deciding,
//! revoking and the rest go through the same engine calls); this module only gathers each
//! page's records with the context a person needs to decide. Sessions are in `sessions`.

pub mod sessions;

use crate::engine::Hallmark;
use crate::error::{Error, Result};
use crate::policy::auth::{Credential, Scope};
use crate::policy::signing::KeyPolicy;
use crate::store::{
    now, Activity, ApprovalRecord, AuditEvent, AuditSearch, CertRecord, CertSearch, KeyRecord,
    RequestRecord, RequestStatus, SignatureRecord, SignatureRequestRecord, SignatureRequestStatus,
    SignatureSearch, StationRecord,
};

pub use sessions::{Ended, Session};

/// Whether the person may decide a pending request, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    MayDecide,
    /// They asked for it: another approver decides.
    Own,
    /// They decided already (approve or deny).
    Decided(String),
    /// Not among the approvers.
    NotApprover,
    /// Their token lacks the `approve` scope.
    NoScope,
}

/// A certificate request with what deciding it needs.
#[derive(Debug, Clone)]
pub struct CertificateRequest {
    pub request: RequestRecord,
    pub approvals: Vec<ApprovalRecord>,
    pub approvers: Vec<String>,
    /// The CSR's subject and key, as the CSR states them (the certificate's subject comes from
    /// the publisher record).
    pub csr_subject: String,
    pub csr_key: String,
    pub standing: Standing,
}

/// A signature request with what deciding it needs.
#[derive(Debug, Clone)]
pub struct SignatureRequest {
    pub request: SignatureRequestRecord,
    pub approvals: Vec<ApprovalRecord>,
    pub policy: KeyPolicy,
    pub approvers: Vec<String>,
    pub standing: Standing,
}

/// One request of either kind.
#[derive(Debug, Clone)]
pub enum Request {
    Certificate(Box<CertificateRequest>),
    Signature(Box<SignatureRequest>),
}

impl Request {
    pub fn created_at(&self) -> i64 {
        match self {
            Request::Certificate(c) => c.request.created_at,
            Request::Signature(s) => s.request.created_at,
        }
    }
}

/// The Requests page: a page of the pending signature and certificate requests (newest first),
/// how many are pending in all, and the latest decided ones.
#[derive(Debug, Clone, Default)]
pub struct Requests {
    pub signatures: Vec<Request>,
    pub certificates: Vec<Request>,
    pub pending_signatures: i64,
    pub pending_certificates: i64,
    /// Where the next pages start (`before` ids), when there are more.
    pub next_signatures: Option<i64>,
    pub next_certificates: Option<i64>,
    pub decided: Vec<Request>,
}

/// Which page of the pending requests: below these ids, newest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestsPage {
    pub signatures_before: Option<i64>,
    pub certificates_before: Option<i64>,
}

/// A key on the Keys page.
#[derive(Debug, Clone)]
pub struct KeyOverview {
    pub key: KeyRecord,
    pub policy: KeyPolicy,
    pub policy_source: &'static str,
    /// The key certificate's validity (not before, not after).
    pub validity: Option<(i64, i64)>,
    /// Signatures per day over the last 30 days, and the last one.
    pub activity: Activity,
}

/// A station on the Stations page.
#[derive(Debug, Clone)]
pub struct StationOverview {
    pub station: StationRecord,
    pub issued: i64,
    /// Certificates per hour over the last 24 hours, and the last one.
    pub activity: Activity,
}

/// How many pending requests of each kind a page lists, and how many decided ones.
const PENDING_PAGE: usize = 50;
const DECIDED_SHOWN: usize = 50;

fn standing(
    cred: &Credential,
    requester: &str,
    approvers: &[String],
    approvals: &[ApprovalRecord],
) -> Standing {
    if cred.name == requester {
        Standing::Own
    } else if let Some(a) = approvals.iter().find(|a| a.approver == cred.name) {
        Standing::Decided(a.decision.clone())
    } else if cred.require(Scope::Approve).is_err() {
        Standing::NoScope
    } else if !approvers.iter().any(|a| cred.answers_to(a)) {
        Standing::NotApprover
    } else {
        Standing::MayDecide
    }
}

/// The publisher a credential's lists are limited to: none for an officer.
fn scope_of(cred: &Credential) -> Result<Option<&str>> {
    if cred.officer {
        return Ok(None);
    }
    cred.publisher.as_deref().map(Some).ok_or_else(|| {
        Error::from(crate::policy::auth::AuthError::Forbidden(
            "this token acts for no publisher".into(),
        ))
    })
}

/// Builds requests' contexts for one page: the decisions of all its requests in one read, each
/// key's policy once.
struct Contexts<'a> {
    hm: &'a Hallmark,
    cred: &'a Credential,
    policies: std::collections::HashMap<String, KeyPolicy>,
}

impl<'a> Contexts<'a> {
    fn new(hm: &'a Hallmark, cred: &'a Credential) -> Contexts<'a> {
        Contexts {
            hm,
            cred,
            policies: std::collections::HashMap::new(),
        }
    }

    fn signatures(&mut self, rs: Vec<SignatureRequestRecord>) -> Result<Vec<Request>> {
        let ids: Vec<i64> = rs.iter().map(|r| r.id).collect();
        let mut decisions = self.hm.store.approvals_of("signature", &ids)?;
        let mut out = Vec::with_capacity(rs.len());
        for request in rs {
            let policy = match self.policies.get(&request.key_label) {
                Some(p) => p.clone(),
                None => {
                    let p = self.hm.key_policy(&request.key_label)?;
                    self.policies.insert(request.key_label.clone(), p.clone());
                    p
                }
            };
            let approvals = decisions.remove(&request.id).unwrap_or_default();
            let approvers = self.hm.approvers_of(&policy, &request.requester);
            let standing = standing(self.cred, &request.requester, &approvers, &approvals);
            out.push(Request::Signature(Box::new(SignatureRequest {
                request,
                approvals,
                policy,
                approvers,
                standing,
            })));
        }
        Ok(out)
    }

    fn certificates(&mut self, rs: Vec<RequestRecord>) -> Result<Vec<Request>> {
        use x509_parser::prelude::FromDer;
        let ids: Vec<i64> = rs.iter().map(|r| r.id).collect();
        let mut decisions = self.hm.store.approvals_of("certificate", &ids)?;
        let mut out = Vec::with_capacity(rs.len());
        for request in rs {
            let approvals = decisions.remove(&request.id).unwrap_or_default();
            let approvers = self
                .hm
                .profiles
                .get(&request.profile)
                .ok()
                .and_then(|p| p.approvals.as_ref().map(|a| a.approvers.clone()))
                .unwrap_or_default();
            let (csr_subject, csr_key) =
                match x509_parser::certification_request::X509CertificationRequest::from_der(
                    &request.csr_der,
                ) {
                    Ok((_, csr)) => (
                        csr.certification_request_info.subject.to_string(),
                        crate::policy::csr::describe_key(
                            &csr.certification_request_info.subject_pki,
                        ),
                    ),
                    Err(_) => ("(the stored CSR does not parse)".into(), String::new()),
                };
            let standing = standing(self.cred, &request.requester, &approvers, &approvals);
            out.push(Request::Certificate(Box::new(CertificateRequest {
                request,
                approvals,
                approvers,
                csr_subject,
                csr_key,
                standing,
            })));
        }
        Ok(out)
    }
}

impl Hallmark {
    /// The Requests page for `cred`: a page of each kind of pending request, newest first,
    /// then the latest decided ones.
    pub fn console_requests(&self, cred: &Credential, at: RequestsPage) -> Result<Requests> {
        let publisher = scope_of(cred)?;
        let mut out = Requests::default();
        let mut sigs = Vec::new();
        let listed = self.store.list_signature_requests(
            Some(SignatureRequestStatus::Pending),
            publisher,
            at.signatures_before,
            PENDING_PAGE,
        )?;
        if listed.len() == PENDING_PAGE {
            out.next_signatures = listed.last().map(|r| r.id);
        }
        for r in listed {
            // A request past its deadline is expired as it is read, and left out.
            let r = self.expire_signature_request_if_due(r)?;
            if r.status == SignatureRequestStatus::Pending {
                sigs.push(r);
            }
        }
        let (certs, next) = self.list_requests(
            Some(RequestStatus::Pending.as_str()),
            cred,
            at.certificates_before,
            PENDING_PAGE,
        )?;
        out.next_certificates = next;
        (out.pending_certificates, out.pending_signatures) = self.store.count_pending(publisher)?;
        let (decided_certs, decided_sigs) =
            self.store.decided_requests(publisher, DECIDED_SHOWN)?;
        let pending_sigs = sigs.len();
        let pending_certs = certs.len();
        let mut contexts = Contexts::new(self, cred);
        let mut sig_items = contexts.signatures(sigs.into_iter().chain(decided_sigs).collect())?;
        let mut cert_items =
            contexts.certificates(certs.into_iter().chain(decided_certs).collect())?;
        out.decided = sig_items.split_off(pending_sigs);
        out.decided.extend(cert_items.split_off(pending_certs));
        out.signatures = sig_items;
        out.certificates = cert_items;
        out.decided
            .sort_by_key(|r| std::cmp::Reverse(r.created_at()));
        out.decided.truncate(DECIDED_SHOWN);
        Ok(out)
    }

    /// Signatures matching a search, limited to what `cred` may see.
    pub fn console_signatures(
        &self,
        cred: &Credential,
        mut search: SignatureSearch,
    ) -> Result<Vec<SignatureRecord>> {
        search.publisher = scope_of(cred)?.map(str::to_string);
        Ok(self.store.search_signatures(&search)?)
    }

    /// Certificates matching a search, limited to what `cred` may see (a publisher's person
    /// naming another publisher gets that refusal).
    pub fn console_certificates(
        &self,
        cred: &Credential,
        mut search: CertSearch,
    ) -> Result<Vec<CertRecord>> {
        match (&search.publisher, scope_of(cred)?) {
            (Some(p), Some(own)) if p != own => {
                cred.may_act_for(p)?;
            }
            (_, Some(own)) => search.publisher = Some(own.to_string()),
            (_, None) => {}
        }
        search.at = now();
        Ok(self.store.search_certificates(&search)?)
    }

    /// Certificates (not a factory line's devices) ending within `days`, soonest first.
    pub fn console_ending(
        &self,
        cred: &Credential,
        days: i64,
        limit: usize,
    ) -> Result<Vec<CertRecord>> {
        let at = now();
        Ok(self
            .store
            .certificates_ending(at, at + days * 86_400, scope_of(cred)?, limit)?)
    }

    /// The keys `cred` may use, with policy, certificate validity and signatures per day.
    pub fn console_keys(&self, cred: &Credential) -> Result<Vec<KeyOverview>> {
        use x509_parser::prelude::FromDer;
        let since = (now() / 86_400 - 29) * 86_400;
        let mut out = Vec::new();
        for key in self.keys_for(cred)? {
            let validity = key.cert_der.as_deref().and_then(|d| {
                x509_parser::certificate::X509Certificate::from_der(d)
                    .ok()
                    .map(|(_, c)| {
                        (
                            c.validity().not_before.timestamp(),
                            c.validity().not_after.timestamp(),
                        )
                    })
            });
            out.push(KeyOverview {
                policy: self.key_policy(&key.label)?,
                policy_source: self.key_policy_source(&key.label)?,
                activity: self.store.signature_activity(&key.label, since, 86_400)?,
                validity,
                key,
            });
        }
        Ok(out)
    }

    /// Factory stations (officers: all; a publisher's person: its own), with quota use and
    /// certificates per hour.
    pub fn console_stations(&self, cred: &Credential) -> Result<Vec<StationOverview>> {
        let since = (now() / 3600 - 23) * 3600;
        let mut out = Vec::new();
        for station in self.store.list_stations()? {
            if cred.may_act_for(&station.publisher).is_err() {
                continue;
            }
            out.push(StationOverview {
                issued: self.store.station_issued_count(&station.name)?,
                activity: self.store.station_activity(&station.name, since, 3600)?,
                station,
            });
        }
        Ok(out)
    }

    /// The audit trail (officers only: it names every publisher's records).
    pub fn console_audit(
        &self,
        cred: &Credential,
        search: &AuditSearch,
    ) -> Result<Vec<AuditEvent>> {
        cred.require_officer()?;
        Ok(self.store.search_audit(search)?)
    }
}
