//! Key policies (who may sign with a key, how, how often, with how many approvals) and the
//! signature requests that wait for those approvals.

use rusqlite::{params, OptionalExtension};

use super::{audit, is_unique_violation, now, ApprovalRecord, Store, StoreError};

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
}

const POLICY_COLS: &str =
    "key_label, formats, digests, signers, approvals_required, approvers, rate_per_minute, updated_at";

const REQ_COLS: &str = "id, key_label, publisher, requester, digest_algorithm, digest, format, metadata, status, approvals_required, created_at, expires_at, decided_at, signature_id, signature, timestamp_token";

fn req_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SignatureRequestRecord> {
    Ok(SignatureRequestRecord {
        id: r.get(0)?,
        key_label: r.get(1)?,
        publisher: r.get(2)?,
        requester: r.get(3)?,
        digest_algorithm: r.get(4)?,
        digest: r.get(5)?,
        format: r.get(6)?,
        metadata: r.get(7)?,
        status: r.get(8)?,
        approvals_required: r.get(9)?,
        created_at: r.get(10)?,
        expires_at: r.get(11)?,
        decided_at: r.get(12)?,
        signature_id: r.get(13)?,
        signature: r.get(14)?,
        timestamp_token: r.get(15)?,
    })
}

/// What a signed request is finished with: the signature record, the signature and, when one
/// was asked for, its time-stamp token.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub signature_id: i64,
    pub signature: &'a [u8],
    pub timestamp_token: Option<&'a [u8]>,
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

impl Store {
    pub fn get_key_policy(&self, label: &str) -> Result<Option<KeyPolicyRecord>, StoreError> {
        // On the signing hot path: from the record cache, else a read connection.
        self.cached(
            |c| &mut c.policies,
            label,
            || {
                self.read(|conn| {
                    Ok(conn
                        .prepare_cached(&format!(
                            "SELECT {POLICY_COLS} FROM key_policies WHERE key_label = ?1"
                        ))?
                        .query_row(params![label], |r| {
                            Ok(KeyPolicyRecord {
                                key_label: r.get(0)?,
                                formats: r.get(1)?,
                                digests: r.get(2)?,
                                signers: r.get(3)?,
                                approvals_required: r.get(4)?,
                                approvers: r.get(5)?,
                                rate_per_minute: r.get(6)?,
                                updated_at: r.get(7)?,
                            })
                        })
                        .optional()?)
                })
            },
        )
    }

    /// Sets (replaces) a key's policy, with a `key.policy` audit event.
    pub fn set_key_policy(&self, p: &KeyPolicyRecord, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR REPLACE INTO key_policies (key_label, formats, digests, signers, approvals_required, approvers, rate_per_minute, updated_at)
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
            params![
                p.key_label,
                p.formats,
                p.digests,
                p.signers,
                p.approvals_required,
                p.approvers,
                p.rate_per_minute,
                now()
            ],
        )?;
        let detail = format!(
            "formats={} digests={} signers={} approvals={} approvers={} rate={}",
            p.formats.as_deref().unwrap_or("*"),
            p.digests.as_deref().unwrap_or("*"),
            p.signers.as_deref().unwrap_or("*"),
            p.approvals_required,
            p.approvers.as_deref().unwrap_or("-"),
            p.rate_per_minute
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into())
        );
        audit(&tx, actor, "key.policy", &p.key_label, Some(&detail))?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a pending signature request (its `id`, `status` and `created_at` are assigned).
    /// Its id is taken from the signatures' sequence: the signature it may end in is recorded
    /// under the same id ([`Store::insert_signature`]), so one id names both.
    pub fn insert_signature_request(
        &self,
        r: &SignatureRequestRecord,
        actor: &str,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'signatures', 0
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'signatures')",
            [],
        )?;
        let id: i64 = tx.query_row(
            "UPDATE sqlite_sequence SET seq = max(seq,
                 (SELECT coalesce(max(id), 0) FROM signatures),
                 (SELECT coalesce(max(id), 0) FROM signature_requests)) + 1
             WHERE name = 'signatures' RETURNING seq",
            [],
            |row| row.get(0),
        )?;
        tx.execute(
            "INSERT INTO signature_requests (id, key_label, publisher, requester, digest_algorithm, digest, format, metadata, status, approvals_required, created_at, expires_at)
             VALUES (?11,?1,?2,?3,?4,?5,?6,?7,'pending',?8,?9,?10)",
            params![
                r.key_label,
                r.publisher,
                r.requester,
                r.digest_algorithm,
                r.digest,
                r.format,
                r.metadata,
                r.approvals_required,
                now(),
                r.expires_at,
                id
            ],
        )?;
        audit(
            &tx,
            actor,
            "signature.pending",
            &id.to_string(),
            Some(&format!(
                "key={} {}:{} format={} approvals={}",
                r.key_label, r.digest_algorithm, r.digest, r.format, r.approvals_required
            )),
        )?;
        tx.commit()?;
        Ok(id)
    }

    pub fn get_signature_request(
        &self,
        id: i64,
    ) -> Result<Option<SignatureRequestRecord>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {REQ_COLS} FROM signature_requests WHERE id = ?1"),
                params![id],
                req_from_row,
            )
            .optional()?)
    }

    /// The decisions on a signature request, oldest first.
    pub fn signature_approvals(&self, id: i64) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.decisions("signature", id)
    }

    /// Records an approval or denial of a pending signature request, atomically with its status
    /// check. A denial ends the request; the approval that reaches the quorum moves it to
    /// `signing` in the same transaction, so exactly one caller signs.
    pub fn record_signature_decision(
        &self,
        id: i64,
        approver: &str,
        approve: bool,
        comment: Option<&str>,
        actor: &str,
    ) -> Result<Decision, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let row: Option<(super::SignatureRequestStatus, i64)> = tx
            .query_row(
                "SELECT status, approvals_required FROM signature_requests WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let required = match row {
            None => return Err(StoreError::NotFound(format!("signature request {id}"))),
            Some((super::SignatureRequestStatus::Pending, n)) => n,
            Some((other, _)) => {
                return Err(StoreError::Conflict(format!(
                    "a decision on signature request {id}, which is {other},"
                )))
            }
        };
        let decision = if approve { "approve" } else { "deny" };
        let r = tx.execute(
            "INSERT INTO approvals (request_kind, request_id, approver, decision, comment, created_at) VALUES ('signature', ?1, ?2, ?3, ?4, ?5)",
            params![id, approver, decision, comment, now()],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "a decision by '{approver}' on signature request {id}"
                )))
            }
            r => r?,
        };
        let approvals: i64 = tx.query_row(
            "SELECT count(*) FROM approvals WHERE request_kind = 'signature' AND request_id = ?1 AND decision = 'approve'",
            params![id],
            |r| r.get(0),
        )?;
        let mut claimed = false;
        if !approve {
            tx.execute(
                "UPDATE signature_requests SET status = 'denied', decided_at = ?2 WHERE id = ?1",
                params![id, now()],
            )?;
        } else if approvals >= required {
            tx.execute(
                "UPDATE signature_requests SET status = 'signing' WHERE id = ?1",
                params![id],
            )?;
            claimed = true;
        }
        audit(
            &tx,
            actor,
            if approve {
                "signature.approved"
            } else {
                "signature.denied"
            },
            &id.to_string(),
            comment,
        )?;
        tx.commit()?;
        Ok(Decision { approvals, claimed })
    }

    /// Moves a signature request from `from` to a final status; false if it was not in `from`.
    /// Ids of the signature requests in `status`, oldest first.
    pub fn signature_request_ids(
        &self,
        status: super::SignatureRequestStatus,
    ) -> Result<Vec<i64>, StoreError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare("SELECT id FROM signature_requests WHERE status = ?1 ORDER BY id")?;
        let ids = stmt.query_map(params![status], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    pub fn finish_signature_request(
        &self,
        id: i64,
        from: super::SignatureRequestStatus,
        status: super::SignatureRequestStatus,
        signed: Option<SignedRequest<'_>>,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE signature_requests SET status = ?3, decided_at = ?4, signature_id = ?5, signature = ?6, timestamp_token = ?7 WHERE id = ?1 AND status = ?2",
            params![
                id,
                from,
                status,
                now(),
                signed.map(|s| s.signature_id),
                signed.map(|s| s.signature),
                signed.and_then(|s| s.timestamp_token)
            ],
        )?;
        if n == 1 {
            audit(
                &tx,
                actor,
                &format!("signature.{status}"),
                &id.to_string(),
                signed
                    .map(|s| format!("signature {}", s.signature_id))
                    .as_deref(),
            )?;
        }
        tx.commit()?;
        Ok(n == 1)
    }
}
