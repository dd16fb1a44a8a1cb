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

/// Reads of the audit trail.
pub trait AuditRead: Send + Sync {
    fn audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;
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
}
