//! Publishers' signing keys, their policies, signature requests waiting for approvals, and the
//! record of every signature made.

use super::*;

/// A publisher signing key and where it stands.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub label: String,
    pub publisher: String,
    pub key_store: String,
    pub algorithm: String,
    pub uri: String,
    pub csr_der: Vec<u8>,
    pub cert_serial: Option<String>,
    pub cert_der: Option<Vec<u8>>,
    pub created_at: i64,
}

/// A signature as recorded (the signature itself is not kept: the digest, key and time are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRecord {
    pub id: i64,
    pub key_label: String,
    pub digest_algorithm: String,
    /// Lower-case hex.
    pub digest: String,
    pub format: String,
    pub requester: String,
    /// Comma-separated approver names, when approvals were needed.
    pub approvers: Option<String>,
    /// JSON object, as the client sent it.
    pub metadata: Option<String>,
    pub created_at: i64,
    /// Who asked, when a CI job did: its OIDC identity as JSON (issuer, subject, rule, the
    /// run's claims); `None` for a hallmark token or the command line.
    pub identity: Option<String>,
}

/// A key's OpenPGP certificate (`hallmark key openpgp`): made once, never replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPgpKeyRecord {
    pub key_label: String,
    /// Upper-case hex of the v4 fingerprint.
    pub fingerprint: String,
    pub user_id: String,
    /// The transferable public key, binary.
    pub certificate: Vec<u8>,
    pub created_at: i64,
}

/// A key's signing policy as stored; `None` lists mean "anything today's rules accept".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPolicyRecord {
    pub key_label: String,
    /// Comma-separated format names.
    pub formats: Option<String>,
    /// Comma-separated digest algorithm names.
    pub digests: Option<String>,
    /// Comma-separated token names allowed to sign.
    pub signers: Option<String>,
    pub approvals_required: i64,
    /// Comma-separated token names allowed to approve.
    pub approvers: Option<String>,
    pub rate_per_minute: Option<i64>,
    pub updated_at: i64,
}

/// A signature request as stored.
#[derive(Debug, Clone)]
pub struct SignatureRequestRecord {
    pub id: i64,
    pub key_label: String,
    pub publisher: String,
    pub requester: String,
    pub digest_algorithm: String,
    /// Lower-case hex.
    pub digest: String,
    pub format: String,
    pub metadata: Option<String>,
    pub status: super::SignatureRequestStatus,
    pub approvals_required: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub signature_id: Option<i64>,
    /// The signature (raw bytes or CMS DER) once signed.
    pub signature: Option<Vec<u8>>,
    /// The RFC 3161 time-stamp token over the signature, when one was asked for.
    pub timestamp_token: Option<Vec<u8>>,
    /// Who asked, when a CI job did: its OIDC identity as JSON (issuer, subject, rule, the
    /// run's claims); `None` for a hallmark token or the command line.
    pub identity: Option<String>,
}

/// What a signed request is finished with: the signature record, the signature and, when one
/// was asked for, its time-stamp token.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub signature_id: i64,
    pub signature: &'a [u8],
    pub timestamp_token: Option<&'a [u8]>,
}

/// Reads of signing keys, key policies, signature requests and signatures.
pub trait SigningRead: Send + Sync {
    fn get_key(&self, label: &str) -> Result<Option<KeyRecord>, StoreError>;

    fn list_keys(&self, publisher: Option<&str>) -> Result<Vec<KeyRecord>, StoreError>;

    /// Signatures, newest first, optionally of one key and/or of one publisher's keys.
    fn list_signatures(
        &self,
        key: Option<&str>,
        publisher: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<SignatureRecord>, StoreError>;

    fn get_signature(&self, id: i64) -> Result<Option<SignatureRecord>, StoreError>;

    /// How many signatures are recorded (all keys).
    fn count_signatures(&self) -> Result<i64, StoreError>;

    fn get_key_policy(&self, label: &str) -> Result<Option<KeyPolicyRecord>, StoreError>;

    /// A key's OpenPGP certificate, when one was made.
    fn get_openpgp_key(&self, label: &str) -> Result<Option<OpenPgpKeyRecord>, StoreError>;

    fn get_signature_request(&self, id: i64) -> Result<Option<SignatureRequestRecord>, StoreError>;

    /// The decisions on a signature request, oldest first.
    fn signature_approvals(&self, id: i64) -> Result<Vec<ApprovalRecord>, StoreError>;

    /// Ids of the signature requests in `status`, oldest first.
    fn signature_request_ids(
        &self,
        status: super::SignatureRequestStatus,
    ) -> Result<Vec<i64>, StoreError>;
}

/// Writes of signing keys, key policies, signature requests and signatures; each records its
/// audit event in the same transaction.
pub trait SigningWrite: Send + Sync {
    fn insert_key(&self, k: &KeyRecord, actor: &str) -> Result<(), StoreError>;

    fn set_key_certificate(
        &self,
        label: &str,
        serial: &str,
        der: &[u8],
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Records a signature with a `signature.created` audit event in the same transaction;
    /// returns its id. An `id` of 0 is assigned; another (the id of the signature request it
    /// ends, reserved from this table's sequence) is kept when no signature has it — a request
    /// from before ids were shared may collide, and then gets a new one.
    fn insert_signature(&self, s: &SignatureRecord, actor: &str) -> Result<i64, StoreError>;

    /// Stores a key's OpenPGP certificate with a `key.openpgp` audit event; a key that has one
    /// already is a conflict (the first stays).
    fn insert_openpgp_key(&self, k: &OpenPgpKeyRecord, actor: &str) -> Result<(), StoreError>;

    /// Sets (replaces) a key's policy, with a `key.policy` audit event.
    fn set_key_policy(&self, p: &KeyPolicyRecord, actor: &str) -> Result<(), StoreError>;

    /// Stores a pending signature request (its `id`, `status` and `created_at` are assigned).
    /// Its id is taken from the signatures' sequence: the signature it may end in is recorded
    /// under the same id ([`SigningWrite::insert_signature`]), so one id names both.
    fn insert_signature_request(
        &self,
        r: &SignatureRequestRecord,
        actor: &str,
    ) -> Result<i64, StoreError>;

    /// Records an approval or denial of a pending signature request, atomically with its status
    /// check. A denial ends the request; the approval that reaches the quorum moves it to
    /// `signing` in the same transaction, so exactly one caller signs.
    fn record_signature_decision(
        &self,
        id: i64,
        approver: &str,
        approve: bool,
        comment: Option<&str>,
        actor: &str,
    ) -> Result<Decision, StoreError>;

    /// Moves a signature request from `from` to a final status; false if it was not in `from`.
    fn finish_signature_request(
        &self,
        id: i64,
        from: super::SignatureRequestStatus,
        status: super::SignatureRequestStatus,
        signed: Option<SignedRequest<'_>>,
        actor: &str,
    ) -> Result<bool, StoreError>;
}
