//! What the web console browses: searches over requests, signatures, certificates and the audit
//! trail, and the activity counts its charts draw. Reads only; each answers one page.

use super::*;

/// Which certificates by where they stand at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Issued, not revoked, not yet ended.
    Valid,
    Revoked,
    /// Issued, not revoked, ended.
    Expired,
}

/// A search of issued certificates, in serial order after `after`.
#[derive(Debug, Clone, Default)]
pub struct CertSearch {
    pub publisher: Option<String>,
    pub profile: Option<String>,
    pub ca: Option<String>,
    pub validity: Option<Validity>,
    /// The time `validity` is judged at.
    pub at: i64,
    pub after: Option<String>,
    pub limit: usize,
}

/// A search of signatures, newest first below id `before`.
#[derive(Debug, Clone, Default)]
pub struct SignatureSearch {
    pub key: Option<String>,
    /// Only signatures with keys of this publisher.
    pub publisher: Option<String>,
    /// A prefix of the digest (lower-case hex).
    pub digest: Option<String>,
    /// Text found in the metadata (artifact name, ...), the requester or the CI identity.
    pub text: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub before: Option<i64>,
    pub limit: usize,
}

/// A search of the audit trail, newest first below id `before`.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    /// Text found in the actor.
    pub actor: Option<String>,
    /// An action, or a prefix of one ending in `.` (`request.`).
    pub action: Option<String>,
    /// The object (subject) exactly.
    pub subject: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub before: Option<i64>,
    pub limit: usize,
}

impl AuditSearch {
    /// The `action` filter for an audit `kind`: an action (`certificate.issued`), or a family of
    /// them with or without its final dot (`certificate`, `certificate.`).
    pub fn kind(kind: String) -> String {
        if kind.contains('.') {
            kind
        } else {
            format!("{kind}.")
        }
    }
}

/// Counts per period (`start` of each, Unix seconds) since a time, and the latest event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub last: Option<i64>,
    /// Periods with at least one event, oldest first.
    pub counts: Vec<(i64, i64)>,
}

/// Which page of requests [`ConsoleRead::requests_page`] reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestsQuery<'a> {
    /// Only this publisher's requests.
    pub publisher: Option<&'a str>,
    pub signatures_before: Option<i64>,
    pub certificates_before: Option<i64>,
    /// Pending requests of each kind on the page.
    pub pending: usize,
    /// Decided requests of each kind.
    pub decided: usize,
}

/// What [`ConsoleRead::requests_page`] read.
#[derive(Debug, Clone, Default)]
pub struct RequestsPageRecords {
    pub signatures: Vec<SignatureRequestRecord>,
    pub certificates: Vec<RequestRecord>,
    pub pending_signatures: i64,
    pub pending_certificates: i64,
    pub decided_signatures: Vec<SignatureRequestRecord>,
    /// Decided certificate requests that needed approvals.
    pub decided_certificates: Vec<RequestRecord>,
    /// Decisions by request id, oldest first.
    pub signature_approvals: std::collections::HashMap<i64, Vec<ApprovalRecord>>,
    pub certificate_approvals: std::collections::HashMap<i64, Vec<ApprovalRecord>>,
}

/// The console's reads.
pub trait ConsoleRead: Send + Sync {
    /// One page of the Requests view, read in one transaction: pending signature and
    /// certificate requests (newest first, below the given ids), how many are pending in all,
    /// the latest decided ones, and the decisions on every request listed.
    fn requests_page(&self, q: &RequestsQuery<'_>) -> Result<RequestsPageRecords, StoreError>;

    fn search_signatures(&self, s: &SignatureSearch) -> Result<Vec<SignatureRecord>, StoreError>;

    fn search_certificates(&self, s: &CertSearch) -> Result<Vec<CertRecord>, StoreError>;

    /// Issued, unrevoked certificates (not a factory line's devices) ending after `now` and by
    /// `by`, of a publisher when given, soonest first.
    fn certificates_ending(
        &self,
        now: i64,
        by: i64,
        publisher: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CertRecord>, StoreError>;

    /// A key's signatures per `period` seconds since `since`, and its last signature.
    fn signature_activity(
        &self,
        key: &str,
        since: i64,
        period: i64,
    ) -> Result<Activity, StoreError>;

    /// A station's certificates per `period` seconds since `since`, and its last one.
    fn station_activity(
        &self,
        station: &str,
        since: i64,
        period: i64,
    ) -> Result<Activity, StoreError>;
}
