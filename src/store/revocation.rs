//! Revocations and what is published from them: CRL numbers, the publication revision the
//! server watches, pre-signed OCSP responses. The OCSP and CRL paths use the read half only.

use super::*;

/// A revocation to record.
#[derive(Debug, Clone)]
pub struct NewRevocation {
    pub serial: String,
    /// RFC 5280 CRLReason code.
    pub reason: u8,
    pub invalidity_date: Option<i64>,
    /// The CRL partition named in the certificate's CRL distribution point, if any.
    pub crl_shard: Option<u32>,
}

/// A recorded revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    pub serial: String,
    pub ca: String,
    pub reason: u8,
    pub revoked_at: i64,
    pub invalidity_date: Option<i64>,
    pub actor: String,
    pub crl_shard: Option<u32>,
}

/// What [`RevocationWrite::revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked(RevocationRecord),
    /// An existing revocation moved to keyCompromise (the only change allowed).
    ReasonChanged {
        previous: u8,
        record: RevocationRecord,
    },
}

/// One CRL entry as streamed from the store.
#[derive(Debug, Clone, Copy)]
pub struct RevokedEntry<'a> {
    pub serial: &'a str,
    pub revoked_at: i64,
    pub reason: u8,
    pub invalidity_date: Option<i64>,
}

/// Where a certificate stands, for the responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertStanding {
    pub ca: String,
    pub status: super::CertStatus,
    /// Reason and time, when revoked.
    pub revoked: Option<(u8, i64)>,
}

/// A certificate whose pre-signed OCSP response is missing, stale or invalidated.
#[derive(Debug, Clone)]
pub struct PresignCandidate {
    pub serial: String,
    pub ca: String,
    /// The revocation the response must state (reason, time); `None` for good.
    pub revoked: Option<(u8, i64)>,
}

/// A pre-signed response to store.
#[derive(Debug, Clone)]
pub struct Presigned {
    pub serial: String,
    pub ca: String,
    /// The revocation state it was signed for; it is stored only if that is still the state.
    pub revoked: Option<(u8, i64)>,
    pub this_update: i64,
    pub next_update: i64,
    pub body: Vec<u8>,
}

/// A stored pre-signed response.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub this_update: i64,
    pub next_update: i64,
    pub body: Vec<u8>,
}

/// Reads of revocations and what is published from them.
pub trait RevocationRead: Send + Sync {
    fn get_revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, StoreError>;

    /// How many entries a CRL of `ca` (one partition, or all) will have.
    fn count_revocations(&self, ca: &str, shard: Option<u32>) -> Result<u64, StoreError>;

    /// Streams the revocations of `ca` (one partition, or all) to `f`, from one read snapshot.
    /// `f` returning `false` stops the scan (its caller keeps why).
    fn for_each_revocation(
        &self,
        ca: &str,
        shard: Option<u32>,
        f: &mut dyn FnMut(RevokedEntry<'_>) -> bool,
    ) -> Result<(), StoreError>;

    /// The last CRL number issued for `ca`, if any.
    fn crl_number(&self, ca: &str) -> Result<Option<u64>, StoreError>;

    /// Publication revisions per CA: a revision moves whenever a revocation of that CA changes.
    fn publication_revisions(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Where a certificate stands (`None`: never recorded).
    fn certificate_standing(&self, serial: &str) -> Result<Option<CertStanding>, StoreError>;

    /// [`RevocationRead::certificate_standing`] through the record cache, for the signing path (a
    /// key's
    /// certificate, checked on every signature). Only an issued certificate's standing is kept:
    /// from there only a revocation changes it, and a revocation empties the cache.
    fn certificate_standing_cached(&self, serial: &str)
        -> Result<Option<CertStanding>, StoreError>;

    /// The pre-signed response for `serial` under `ca`, if one is stored.
    fn presigned_response(
        &self,
        serial: &str,
        ca: &str,
    ) -> Result<Option<StoredResponse>, StoreError>;

    /// Certificates of `ca` needing a pre-signed response: unexpired, issued, and with none or
    /// one signed before `stale_before`. Paged by serial after `after`.
    fn presign_candidates(
        &self,
        ca: &str,
        stale_before: i64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<PresignCandidate>, StoreError>;

    /// Certificates whose response a revocation invalidated, in serial order, at most `limit`
    /// (the refresher drains them all; the order only makes a batch's choice stable).
    fn dirty_responses(&self, limit: usize) -> Result<Vec<PresignCandidate>, StoreError>;

    /// Counts stored pre-signed responses, of one CA or all (tests, `make bench`).
    fn count_presigned(&self, ca: Option<&str>) -> Result<i64, StoreError>;
}

/// Writes of revocations and what is published from them; each records its audit event
/// in the same transaction.
pub trait RevocationWrite: Send + Sync {
    /// Records a revocation, with its audit event, in one transaction. Revoking a serial that
    /// was never issued is `NotFound`; revoking twice is `Conflict`, except a move to
    /// keyCompromise (1), which updates the reason and keeps the revocation time. The pre-signed
    /// OCSP response is dropped and the CA's publication revision bumped in the same transaction,
    /// so no reader sees the revocation without its effect on OCSP.
    fn revoke(&self, r: &NewRevocation, actor: &str) -> Result<RevokeOutcome, StoreError>;

    /// Takes the next CRL number of `ca` (numbers only grow), with an audit event.
    fn next_crl_number(&self, ca: &str, this_update: i64, actor: &str) -> Result<u64, StoreError>;

    /// Stores pre-signed responses in one transaction. A response whose revocation state changed
    /// since it was signed is skipped (and stays queued); returns how many were stored.
    fn store_presigned(&self, items: &[Presigned]) -> Result<usize, StoreError>;

    /// Drops queued invalidations for certificates no longer answerable (expired or unknown).
    fn forget_dirty(&self, serials: &[String]) -> Result<(), StoreError>;

    /// Deletes pre-signed responses past their nextUpdate; returns how many.
    fn purge_expired_responses(&self, now: i64) -> Result<usize, StoreError>;
}
