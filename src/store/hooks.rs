//! Test-only hooks (feature `test-hooks`): what a test or benchmark needs to reach inside a
//! backend and cannot do through the store's calls, such as putting a request past its
//! deadline, leaving a record as a stop mid-signing would, or loading a million revocations.
//! They are a trait like the rest, so a test using them runs against any backend; the feature
//! is enabled for tests and benches only (a dev-dependency of the crate on itself).

use std::time::Duration;

use super::*;

/// What tests reach inside a backend with.
pub trait TestHooks: Send + Sync {
    /// Moves the deadline of certificate request `id` into the past.
    fn expire_request_now(&self, id: i64) -> Result<(), StoreError>;

    /// Moves the deadline of signature request `id` into the past.
    fn expire_signature_request_now(&self, id: i64) -> Result<(), StoreError>;

    /// Leaves signature request `id` in `status` without the transition that leads there, as a
    /// stop in the middle of signing would.
    fn force_signature_request_status(
        &self,
        id: i64,
        status: SignatureRequestStatus,
    ) -> Result<(), StoreError>;

    /// Sets the recorded notAfter of CA `name` (a certificate about to expire), leaving its
    /// certificate as it is.
    fn set_ca_not_after(&self, name: &str, not_after: i64) -> Result<(), StoreError>;

    /// Holds the backend's write lock for `hold` (a writer that does not finish), calling
    /// `locked` once it is held; returns when the lock is released.
    fn hold_write_lock(&self, hold: Duration, locked: &dyn Fn()) -> Result<(), StoreError>;

    /// Makes every new certificate record fail with a fault of the backend whose text holds
    /// `message` (a database fault in the middle of issuance), or with `None` ends that.
    fn fail_certificate_records(&self, message: Option<&str>) -> Result<(), StoreError>;

    /// Moves the last use of every console session of token `token_id` `secs` into the past
    /// (a session left idle); returns how many there were.
    fn age_sessions(&self, token_id: &str, secs: i64) -> Result<usize, StoreError>;

    /// Records issued certificates of `ca` for `publisher`, in bulk and without audit events
    /// (the console benchmark's million certificates): each `(serial, not_after)`.
    fn load_issued(
        &self,
        ca: &str,
        publisher: &str,
        certs: &[(String, i64)],
        now: i64,
    ) -> Result<(), StoreError>;

    /// Records issued certificates of `ca`, revoked (keyCompromise) at `revoked_at`, in bulk
    /// and without audit events: the CRL and OCSP benchmarks' million revocations.
    fn load_revoked(&self, ca: &str, serials: &[String], revoked_at: i64)
        -> Result<(), StoreError>;
}

/// A store with its test hooks.
pub trait HookedStore: Store + TestHooks {}

impl<T: Store + TestHooks + ?Sized> HookedStore for T {}

/// Opens an existing database with its test hooks.
pub fn open_with_hooks(path: &std::path::Path) -> Result<Arc<dyn HookedStore>, StoreError> {
    Ok(Arc::new(SqliteStore::open_existing(path)?))
}
