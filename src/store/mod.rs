//! The store: every record hallmark keeps, behind traits by record family, so a second
//! database is a second implementation of the same calls.
//!
//! Each family has a read half and a write half (as Boulder splits its storage authority):
//! answering OCSP and scanning revocations for a CRL go through [`RevocationRead`] only. Every write records its
//! audit event in the same transaction, and nothing signed is handed out before it is recorded.
//! Records carry typed states ([`CertStatus`], ...); [`StoreError`] names no backend type. The
//! SQLite backend is in [`sqlite`]; the contract a backend must meet is `tests/it/store_contract.rs`.

mod acme;
mod audit;
mod authorities;
mod cache;
mod console;
mod factory;
#[cfg(feature = "test-hooks")]
pub mod hooks;
mod issuance;
mod requests;
mod revocation;
pub mod sealed;
mod signing;
pub mod sqlite;
mod states;
mod tokens;

use std::path::Path;
use std::sync::Arc;

pub use acme::{AcmeAccount, AcmeAuthz, AcmeChallenge, AcmeOrder, AcmeRead, AcmeWrite, EabKey};
pub use audit::{AuditEvent, AuditRead, AuditWrite, ExpiringCert, WebhookCursor};
pub use authorities::{AuthoritiesRead, AuthoritiesWrite, CaRecord, CaRole, Publisher};
pub use console::{
    Activity, AuditSearch, CertSearch, ConsoleRead, RequestsPageRecords, RequestsQuery,
    SignatureSearch, Validity,
};
pub use factory::{DeviceCertificate, FactoryRead, FactoryWrite, StationRecord};
pub use issuance::{CertFilter, CertRecord, Intent, IssuanceRead, IssuanceWrite};
pub use requests::{
    ApprovalRecord, Decision, NewRequest, RequestRecord, RequestsRead, RequestsWrite,
};
pub use revocation::{
    CertStanding, NewRevocation, PresignCandidate, Presigned, RevocationRead, RevocationRecord,
    RevocationWrite, RevokeOutcome, RevokedEntry, StoredResponse,
};
pub use signing::{
    KeyPolicyRecord, KeyRecord, OpenPgpKeyRecord, SignatureRecord, SignatureRequestRecord,
    SignedRequest, SigningRead, SigningWrite,
};
pub use sqlite::SqliteStore;
pub use states::{
    AcmeAccountStatus, AcmeAuthzStatus, AcmeChallengeStatus, AcmeOrderStatus, CertStatus,
    RequestStatus, SignatureRequestStatus,
};
pub use tokens::{SessionRecord, TokenRecord, TokensRead, TokensWrite};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (its own message; the backend's error type stays inside it).
    #[error("database: {0}")]
    Backend(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} was not found")]
    NotFound(String),
    #[error("database schema: {0}")]
    Schema(String),
    #[error("device {0} already holds a certificate of this profile")]
    DeviceTaken(String),
    #[error("station '{0}' has used its quota")]
    QuotaExceeded(String),
    #[error("database write failed: {0}")]
    WriteFailed(String),
    #[error("database lock poisoned")]
    Poisoned,
    #[error("database file {0}")]
    Io(String),
    /// A request already decided (approved and claimed, issued, denied, expired) was acted on
    /// again: it can never issue a second time.
    #[error("{0}")]
    Decided(String),
}

/// What every backend answers about itself: its schema, its integrity, its caches.
pub trait Maintenance: Send + Sync {
    fn schema_version(&self) -> Result<i64, StoreError>;

    /// Runs SQLite's integrity and foreign-key checks; returns the problems found.
    fn integrity_check(&self) -> Result<Vec<String>, StoreError>;

    /// Brings the record cache up to date with the database (one read of its generation
    /// counter): called once per API request, before its token is checked.
    fn sync_cache(&self) -> Result<(), StoreError>;
}

/// Declares [`Store`], every family's both halves, once for the trait and its blanket impl.
macro_rules! store_of {
    ($($family:ident),+) => {
        /// Every family, both halves: what the engine holds.
        pub trait Store: $($family +)+ {}

        impl<T: $($family +)+ ?Sized> Store for T {}
    };
}

store_of!(
    Maintenance,
    AuthoritiesRead,
    AuthoritiesWrite,
    IssuanceRead,
    IssuanceWrite,
    RevocationRead,
    RevocationWrite,
    RequestsRead,
    RequestsWrite,
    SigningRead,
    SigningWrite,
    AcmeRead,
    AcmeWrite,
    FactoryRead,
    FactoryWrite,
    TokensRead,
    TokensWrite,
    AuditRead,
    AuditWrite,
    ConsoleRead
);

/// The traits, to call a store's methods: `use crate::store::prelude::*;`.
pub mod prelude {
    pub use super::{
        AcmeRead as _, AcmeWrite as _, AuditRead as _, AuditWrite as _, AuthoritiesRead as _,
        AuthoritiesWrite as _, ConsoleRead as _, FactoryRead as _, FactoryWrite as _,
        IssuanceRead as _, IssuanceWrite as _, Maintenance as _, RequestsRead as _,
        RequestsWrite as _, RevocationRead as _, RevocationWrite as _, SigningRead as _,
        SigningWrite as _, TokensRead as _, TokensWrite as _,
    };
}

/// Opens (creating if needed) the database at `path`, with its schema brought up to date.
pub fn open(path: &Path) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqliteStore::open(path)?))
}

/// Opens an existing database; fails if there is none at `path`.
/// Opens the existing store at `path`, its times taken from `clock`.
pub fn open_existing(
    path: &Path,
    clock: crate::clock::SharedClock,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(
        SqliteStore::open_existing(path)?.with_clock(clock),
    ))
}

/// A stored time (Unix seconds) as RFC 3339, the form every answer and listing shows; a time
/// out of range is shown as its number.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|x| {
            x.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}
