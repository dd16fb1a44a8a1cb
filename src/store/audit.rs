//! The audit trail: every change to a record writes an event in the same transaction.

use super::*;

/// One audit event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub detail: Option<String>,
}

/// Where a webhook's deliveries stand: the audit trail is its outbox (every event is written
/// in the transaction of the change it records), and this is its cursor in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCursor {
    pub name: String,
    /// The last audit event delivered (or passed over: not one of its events).
    pub last_id: i64,
    /// Failed attempts at the next event.
    pub attempts: i64,
    /// Not before (seconds since the epoch): the backoff after a failure.
    pub next_at: i64,
    pub last_error: Option<String>,
}

/// A certificate that ends soon and has not been announced yet (`certificate.expiring`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringCert {
    pub serial: String,
    pub publisher: Option<String>,
    pub profile: String,
    pub subject: String,
    pub not_after: i64,
}

/// Reads of the audit trail.
pub trait AuditRead: Send + Sync {
    fn audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;

    /// The events `s` matches, newest first: text in the actor, an action or a prefix of one
    /// ending in `.`, the object exactly, a time range, below the `before` id.
    fn search_audit(&self, s: &AuditSearch) -> Result<Vec<AuditEvent>, StoreError>;

    /// Events after id `after`, oldest first, at most `limit`.
    fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;

    /// The newest event's id (0 when there is none).
    fn audit_last_id(&self) -> Result<i64, StoreError>;

    fn webhook_cursor(&self, name: &str) -> Result<Option<WebhookCursor>, StoreError>;

    /// Issued, unrevoked certificates (not a factory line's devices) whose validity ends after
    /// `now` and by `before`, not announced yet, soonest first, at most `limit`.
    fn expiring_unnoticed(
        &self,
        now: i64,
        before: i64,
        limit: usize,
    ) -> Result<Vec<ExpiringCert>, StoreError>;
}

/// Writes to the audit trail.
pub trait AuditWrite: Send + Sync {
    /// Appends an audit event on its own (for actions that change no other table).
    fn audit(
        &self,
        action: &str,
        subject: &str,
        detail: Option<&str>,
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Records that a certificate's end was announced, with its `certificate.expiring` audit
    /// event (subject: the serial; detail: JSON), once: a second call does nothing.
    fn notice_expiring(
        &self,
        c: &ExpiringCert,
        detail: &str,
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Sets (creates or replaces) a webhook's cursor.
    fn set_webhook_cursor(&self, c: &WebhookCursor) -> Result<(), StoreError>;
}
