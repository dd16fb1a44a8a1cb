//! Certificate requests waiting for M-of-N approvals, and the approvals themselves.

use super::*;

/// A request as stored.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub id: i64,
    pub profile: String,
    pub publisher: Option<String>,
    pub requester: String,
    pub csr_der: Vec<u8>,
    pub status: super::RequestStatus,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub decided_at: Option<i64>,
    pub device_serial: Option<String>,
    pub cn_name: Option<String>,
    pub approvals_required: i64,
    pub certificate_serial: Option<String>,
    /// Who asked, when a CI job did: its OIDC identity as JSON (issuer, subject, rule, the
    /// run's claims); `None` for a hallmark token or the command line.
    pub identity: Option<String>,
}

/// One approval or denial.
#[derive(Debug, Clone)]
pub struct ApprovalRecord {
    pub approver: String,
    pub decision: String,
    pub comment: Option<String>,
    pub created_at: i64,
}

/// A new pending request.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub profile: String,
    pub publisher: String,
    pub requester: String,
    pub csr_der: Vec<u8>,
    pub device_serial: Option<String>,
    pub cn_name: Option<String>,
    pub approvals_required: i64,
    pub expires_at: i64,
    /// Who asked, when a CI job did: its OIDC identity as JSON (issuer, subject, rule, the
    /// run's claims); `None` for a hallmark token or the command line.
    pub identity: Option<String>,
}

/// What a decision on a request (certificate or signature) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Approvals after this one.
    pub approvals: i64,
    /// This approval completed the quorum and claimed the request (a signature request moves to
    /// `signing`, a certificate request to `approved`): the caller, and only it, goes on.
    pub claimed: bool,
}

/// Reads of certificate requests and their approvals.
pub trait RequestsRead: Send + Sync {
    fn get_request(&self, id: i64) -> Result<Option<RequestRecord>, StoreError>;

    /// Requests by status, optionally of one publisher, newest first, below id `before` (a
    /// page's cursor) when given.
    fn list_requests(
        &self,
        status: Option<super::RequestStatus>,
        publisher: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RequestRecord>, StoreError>;

    fn approvals(&self, request_id: i64) -> Result<Vec<ApprovalRecord>, StoreError>;

    /// Requests whose approvals are complete (`approved`) but that were never answered with a
    /// certificate: left by a stop between the deciding approval and the end of issuance.
    fn claimed_requests(&self) -> Result<Vec<RequestRecord>, StoreError>;
}

/// Writes of certificate requests and their approvals; each records its audit event
/// in the same transaction.
pub trait RequestsWrite: Send + Sync {
    fn insert_pending_request(&self, n: &NewRequest, actor: &str) -> Result<i64, StoreError>;

    /// Records an approval or denial of a pending request, atomically with its status check.
    /// A denial ends the request. The approval that reaches the number required claims the
    /// request (`pending` → `approved`) in the same transaction, so exactly one caller goes on
    /// to issue, and a denial or approval after it is refused.
    fn record_decision(
        &self,
        request_id: i64,
        approver: &str,
        approve: bool,
        comment: Option<&str>,
        actor: &str,
    ) -> Result<Decision, StoreError>;

    /// Cancels a pending request (its requester or an officer asked); false when it was no
    /// longer pending (decided, claimed or expired meanwhile).
    fn cancel_request(&self, request_id: i64, actor: &str) -> Result<bool, StoreError>;

    /// Ends a request: a pending one as `expired` or `denied`, or a claimed (`approved`) one
    /// as `issued` or `denied`; false if it was in neither state.
    fn finish_request(
        &self,
        request_id: i64,
        status: super::RequestStatus,
        serial: Option<&str>,
        actor: &str,
    ) -> Result<bool, StoreError>;
}
