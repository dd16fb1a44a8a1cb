//! Certificates, recorded in two phases: an intent (the to-be-signed certificate) before the
//! signature, the certificate after it, so no signed certificate is ever unrecorded.

use super::*;

/// What the CA intends to sign, written before the key store is asked to sign.
#[derive(Debug, Clone)]
pub struct Intent {
    pub serial: String,
    pub ca: String,
    pub profile: String,
    pub publisher: Option<String>,
    pub requester: String,
    pub csr_der: Vec<u8>,
    pub subject: String,
    pub spki_sha256: String,
    pub not_before: i64,
    pub not_after: i64,
    pub tbs_der: Vec<u8>,
    /// The stored request this certificate answers (an approved pending request); `None` records
    /// the request together with the intent (direct issuance).
    pub request_id: Option<i64>,
    /// The device this certificate identifies (device profiles): at most one live per device.
    pub device_serial: Option<String>,
    /// The factory station that asked.
    pub station: Option<String>,
    /// Who asked (recorded with the request of a direct issuance), when a CI job did: its OIDC identity as JSON (issuer, subject, rule, the
    /// run's claims); `None` for a hallmark token or the command line.
    pub identity: Option<String>,
}

/// An issued (or intended) certificate.
#[derive(Debug, Clone)]
pub struct CertRecord {
    pub serial: String,
    pub ca: String,
    pub profile: String,
    pub publisher: Option<String>,
    pub request_id: Option<i64>,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub status: CertStatus,
    pub cert_der: Option<Vec<u8>>,
    pub created_at: i64,
    pub issued_at: Option<i64>,
    /// The device the certificate identifies (factory issuance), while it is the device's.
    pub device_serial: Option<String>,
    /// The factory station that obtained it.
    pub station: Option<String>,
}

/// Filters for listing certificates; `after` is the last serial of the previous page.
#[derive(Debug, Clone, Default)]
pub struct CertFilter {
    pub publisher: Option<String>,
    pub profile: Option<String>,
    pub ca: Option<String>,
    pub after: Option<String>,
    pub limit: usize,
}

/// Reads of certificates.
pub trait IssuanceRead: Send + Sync {
    fn get_certificate(&self, serial: &str) -> Result<Option<CertRecord>, StoreError>;

    /// Issued certificates in serial order, one page at a time.
    fn list_certificates(&self, f: &CertFilter) -> Result<Vec<CertRecord>, StoreError>;

    /// Counts certificate rows by status (tests and `doctor`).
    /// The certificate records request `request_id` produced (any status), in serial order.
    fn certificates_of_request(&self, request_id: i64) -> Result<Vec<CertRecord>, StoreError>;

    fn count_certificates(&self, status: Option<super::CertStatus>) -> Result<i64, StoreError>;

    /// The to-be-signed bytes of an intent that was recorded but never completed.
    fn intent_tbs(&self, serial: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Intents recorded up to `before` (seconds, inclusive) and never completed (left by a stop
    /// between record and sign), oldest first, at most `limit`: serial, CA and the to-be-signed
    /// bytes.
    fn leftover_intents(
        &self,
        before: i64,
        limit: usize,
    ) -> Result<Vec<(String, String, Vec<u8>)>, StoreError>;
}

/// Writes of certificates, each with its audit event in the same transaction.
pub trait IssuanceWrite: Send + Sync {
    /// Phase one: records the request and the to-be-signed certificate (`status = 'intent'`).
    /// A serial that is already taken yields `Conflict`, and nothing is written.
    /// Concurrent callers share one commit (group commit).
    fn record_intent(&self, i: &Intent) -> Result<i64, StoreError>;

    /// Phase one for many certificates in one transaction (group commit). Each intent is
    /// recorded in its own savepoint: a refused one (a duplicate device) leaves the others.
    fn record_intents(
        &self,
        intents: &[Intent],
    ) -> Result<Vec<Result<i64, StoreError>>, StoreError>;

    /// Phase two: stores the signed certificate, completing its intent.
    fn complete_issuance(
        &self,
        serial: &str,
        cert_der: &[u8],
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Phase two for many certificates in one transaction.
    fn complete_issuances(&self, done: &[(&str, &[u8])], actor: &str) -> Result<(), StoreError>;

    /// Marks an intent whose signing failed; the certificate never existed. A serial that is
    /// not an intent (completed meanwhile by another process, or unknown) is left as it is.
    fn abandon_intent(&self, serial: &str, reason: &str, actor: &str) -> Result<(), StoreError>;
}
