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
    Activity, ApprovalRecord, CertRecord, CertSearch, KeyRecord, RequestRecord, RequestStatus,
    RequestsQuery, SignatureRecord, SignatureRequestRecord, SignatureRequestStatus,
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

/// What the Certificates page's filters offer to choose from.
#[derive(Debug, Clone, Default)]
pub struct CertificateChoices {
    /// Empty for a publisher's person (the page shows only that publisher's certificates).
    pub publishers: Vec<String>,
    pub profiles: Vec<String>,
    pub cas: Vec<String>,
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

/// Builds requests' contexts for one page: each key's policy read once.
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

    fn signature(
        &mut self,
        request: SignatureRequestRecord,
        approvals: Vec<ApprovalRecord>,
    ) -> Result<Request> {
        let policy = match self.policies.get(&request.key_label) {
            Some(p) => p.clone(),
            None => {
                let p = self.hm.signing.key_policy(&request.key_label)?;
                self.policies.insert(request.key_label.clone(), p.clone());
                p
            }
        };
        let approvers = self.hm.signing.approvers_of(&policy, &request.requester);
        let standing = standing(self.cred, &request.requester, &approvers, &approvals);
        Ok(Request::Signature(Box::new(SignatureRequest {
            request,
            approvals,
            policy,
            approvers,
            standing,
        })))
    }

    fn certificate(&mut self, request: RequestRecord, approvals: Vec<ApprovalRecord>) -> Request {
        use x509_parser::prelude::FromDer;
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
                    crate::policy::csr::describe_key(&csr.certification_request_info.subject_pki),
                ),
                Err(_) => ("(the stored CSR does not parse)".into(), String::new()),
            };
        let standing = standing(self.cred, &request.requester, &approvers, &approvals);
        Request::Certificate(Box::new(CertificateRequest {
            request,
            approvals,
            approvers,
            csr_subject,
            csr_key,
            standing,
        }))
    }
}

impl Hallmark {
    /// The Requests page for `cred`: a page of each kind of pending request, newest first,
    /// then the latest decided ones.
    pub fn console_requests(&self, cred: &Credential, at: RequestsPage) -> Result<Requests> {
        let publisher = scope_of(cred)?;
        let page = self.store.requests_page(&RequestsQuery {
            publisher,
            signatures_before: at.signatures_before,
            certificates_before: at.certificates_before,
            pending: PENDING_PAGE,
            decided: DECIDED_SHOWN,
        })?;
        let mut out = Requests {
            pending_signatures: page.pending_signatures,
            pending_certificates: page.pending_certificates,
            next_signatures: (page.signatures.len() == PENDING_PAGE)
                .then(|| page.signatures.last().map(|r| r.id))
                .flatten(),
            next_certificates: (page.certificates.len() == PENDING_PAGE)
                .then(|| page.certificates.last().map(|r| r.id))
                .flatten(),
            ..Requests::default()
        };
        let mut contexts = Contexts::new(self, cred);
        let mut approvals = page.signature_approvals;
        for r in page.signatures {
            // A request past its deadline is expired as it is read, and left out.
            let r = self.signing.expire_signature_request_if_due(r)?;
            if r.status == SignatureRequestStatus::Pending {
                let a = approvals.remove(&r.id).unwrap_or_default();
                out.signatures.push(contexts.signature(r, a)?);
            }
        }
        for r in page.decided_signatures {
            let a = approvals.remove(&r.id).unwrap_or_default();
            out.decided.push(contexts.signature(r, a)?);
        }
        let mut approvals = page.certificate_approvals;
        for r in page.certificates {
            let r = self.requests.expire_if_due(r)?;
            if r.status == RequestStatus::Pending {
                let a = approvals.remove(&r.id).unwrap_or_default();
                out.certificates.push(contexts.certificate(r, a));
            }
        }
        for r in page.decided_certificates {
            let a = approvals.remove(&r.id).unwrap_or_default();
            out.decided.push(contexts.certificate(r, a));
        }
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
        search.at = self.clock.now();
        Ok(self.store.search_certificates(&search)?)
    }

    /// Certificates (not a factory line's devices) ending within `days`, soonest first.
    pub fn console_ending(
        &self,
        cred: &Credential,
        days: i64,
        limit: usize,
    ) -> Result<Vec<CertRecord>> {
        let at = self.clock.now();
        Ok(self
            .store
            .certificates_ending(at, at + days * 86_400, scope_of(cred)?, limit)?)
    }

    /// The keys `cred` may use, with policy, certificate validity and signatures per day.
    pub fn console_keys(&self, cred: &Credential) -> Result<Vec<KeyOverview>> {
        use x509_parser::prelude::FromDer;
        let since = (self.clock.now() / 86_400 - 29) * 86_400;
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
                policy: self.signing.key_policy(&key.label)?,
                policy_source: self.signing.key_policy_source(&key.label)?,
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
        let since = (self.clock.now() / 3600 - 23) * 3600;
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

    /// The CA whose own certificate `serial` is, if it is one.
    pub fn ca_of_certificate(&self, serial: &str) -> Result<Option<String>> {
        let serial = serial.to_ascii_lowercase();
        Ok(self
            .store
            .list_cas()?
            .into_iter()
            .find(|ca| ca.serial.as_deref().map(str::to_ascii_lowercase) == Some(serial.clone()))
            .map(|ca| ca.name))
    }

    /// Whether the console may revoke certificate `serial`: refused for a CA's own certificate,
    /// since revoking a CA is a ceremony at the CA's machine, with the CLI's confirmation, not
    /// a button. Both steps of the console's revocation (the confirmation page and the
    /// revocation itself) ask this first.
    pub fn console_revocable(&self, serial: &str) -> Result<()> {
        match self.ca_of_certificate(serial)? {
            Some(ca) => Err(crate::policy::auth::AuthError::Forbidden(format!(
                "certificate {serial} is CA '{ca}''s own certificate: a CA is not revoked from the \
                 console; an officer runs `hallmark revoke {serial} --reason cACompromise` (or \
                 another reason) on the CA's machine. Nothing was changed."
            ))
            .into()),
            None => Ok(()),
        }
    }

    /// Revocation from the console: as the API's ([`Hallmark::revoke_for`]), except that a
    /// CA's own certificate is refused ([`Hallmark::console_revocable`]).
    pub fn console_revoke(
        &self,
        serial: &str,
        cred: &Credential,
        reason: crate::revocation::RevocationReason,
    ) -> Result<crate::revocation::Revocation> {
        self.console_revocable(serial)?;
        self.revoke_for(serial, cred, reason, None)
    }

    /// What the Certificates page's filters offer `cred` to choose from: publishers (officers
    /// only: a publisher's person sees only its own), profiles (an officer's: every one, and
    /// the CAs' own `ca-certificate`; a publisher's person's: its publisher's) and CAs, each
    /// sorted.
    pub fn console_certificate_choices(&self, cred: &Credential) -> Result<CertificateChoices> {
        let cas = self.store.list_cas()?.into_iter().map(|c| c.name).collect();
        let (publishers, profiles) = match scope_of(cred)? {
            None => (
                self.store
                    .list_publishers()?
                    .into_iter()
                    .map(|p| p.id)
                    .collect(),
                // The profile the hierarchy records CA and OCSP responder certificates under
                // (engine/hierarchy.rs).
                [
                    self.profiles.names(),
                    vec![crate::profile::CA_CERTIFICATE_PROFILE.to_string()],
                ]
                .concat(),
            ),
            Some(own) => (
                Vec::new(),
                self.store
                    .get_publisher(own)?
                    .map(|p| p.profiles)
                    .unwrap_or_default(),
            ),
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        Ok(CertificateChoices {
            publishers: sorted(publishers),
            profiles: sorted(profiles),
            cas: sorted(cas),
        })
    }

    /// The labels of the keys `cred` may use (the Signatures page's key filter), sorted.
    pub fn console_key_choices(&self, cred: &Credential) -> Result<Vec<String>> {
        let mut labels: Vec<String> = self.keys_for(cred)?.into_iter().map(|k| k.label).collect();
        labels.sort();
        Ok(labels)
    }
}
