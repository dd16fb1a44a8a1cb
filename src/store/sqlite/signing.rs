//! Publishers' signing keys, their policies (who may sign with a key, how, how often, with how many approvals) and the
//! signature requests that wait for those approvals.

use rusqlite::{params, OptionalExtension};

use super::{audit, is_unique_violation, SqliteStore};
use crate::store::*;

const POLICY_COLS: &str =
    "key_label, formats, digests, signers, approvals_required, approvers, rate_per_minute, updated_at";

pub(super) const REQ_COLS: &str = "id, key_label, publisher, requester, digest_algorithm, digest, format, metadata, status, approvals_required, created_at, expires_at, decided_at, signature_id, signature, timestamp_token, identity";

pub(super) fn req_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SignatureRequestRecord> {
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
        identity: r.get(16)?,
    })
}

pub(super) const SIGNATURE_COLS: &str =
    "id, key_label, digest_algorithm, digest, format, requester, approvers, metadata, created_at, identity";

pub(super) fn signature_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SignatureRecord> {
    Ok(SignatureRecord {
        id: r.get(0)?,
        key_label: r.get(1)?,
        digest_algorithm: r.get(2)?,
        digest: r.get(3)?,
        format: r.get(4)?,
        requester: r.get(5)?,
        approvers: r.get(6)?,
        metadata: r.get(7)?,
        created_at: r.get(8)?,
        identity: r.get(9)?,
    })
}

const KEY_COLS: &str =
    "label, publisher, key_store, algorithm, uri, csr_der, cert_serial, cert_der, created_at";

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecord> {
    Ok(KeyRecord {
        label: r.get(0)?,
        publisher: r.get(1)?,
        key_store: r.get(2)?,
        algorithm: r.get(3)?,
        uri: r.get(4)?,
        csr_der: r.get(5)?,
        cert_serial: r.get(6)?,
        cert_der: r.get(7)?,
        created_at: r.get(8)?,
    })
}

impl SigningRead for SqliteStore {
    fn get_key_policy(&self, label: &str) -> Result<Option<KeyPolicyRecord>, StoreError> {
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

    fn get_signature_request(&self, id: i64) -> Result<Option<SignatureRequestRecord>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {REQ_COLS} FROM signature_requests WHERE id = ?1"),
                params![id],
                req_from_row,
            )
            .optional()?)
    }

    fn signature_approvals(&self, id: i64) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.decisions("signature", id)
    }

    fn signature_request_ids(
        &self,
        status: super::SignatureRequestStatus,
    ) -> Result<Vec<i64>, StoreError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare("SELECT id FROM signature_requests WHERE status = ?1 ORDER BY id")?;
        let ids = stmt.query_map(params![status], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    fn list_signatures(
        &self,
        key: Option<&str>,
        publisher: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<SignatureRecord>, StoreError> {
        let conn = self.conn()?;
        let cols = SIGNATURE_COLS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare(&format!(
            "SELECT {cols} FROM signatures s LEFT JOIN keys k ON k.label = s.key_label
             WHERE (?1 IS NULL OR s.key_label = ?1) AND (?2 IS NULL OR k.publisher = ?2)
               AND (?4 IS NULL OR s.id < ?4)
             ORDER BY s.id DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![key, publisher, limit as i64, before],
            signature_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get_signature(&self, id: i64) -> Result<Option<SignatureRecord>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {SIGNATURE_COLS} FROM signatures WHERE id = ?1"),
                params![id],
                signature_from_row,
            )
            .optional()?)
    }

    fn count_signatures(&self) -> Result<i64, StoreError> {
        let conn = self.conn()?;
        Ok(conn.query_row("SELECT count(*) FROM signatures", [], |r| r.get(0))?)
    }

    fn get_key(&self, label: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.cached(
            |c| &mut c.keys,
            label,
            || {
                self.read(|conn| {
                    Ok(conn
                        .prepare_cached(&format!("SELECT {KEY_COLS} FROM keys WHERE label = ?1"))?
                        .query_row(params![label], key_from_row)
                        .optional()?)
                })
            },
        )
    }

    fn get_openpgp_key(&self, label: &str) -> Result<Option<OpenPgpKeyRecord>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT key_label, fingerprint, user_id, certificate, created_at
                     FROM openpgp_keys WHERE key_label = ?1",
                )?
                .query_row(params![label], |r| {
                    Ok(OpenPgpKeyRecord {
                        key_label: r.get(0)?,
                        fingerprint: r.get(1)?,
                        user_id: r.get(2)?,
                        certificate: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })
                .optional()?)
        })
    }

    fn list_keys(&self, publisher: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {KEY_COLS} FROM keys WHERE (?1 IS NULL OR publisher = ?1) ORDER BY label"
        ))?;
        let rows = stmt.query_map(params![publisher], key_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl SigningWrite for SqliteStore {
    fn insert_openpgp_key(&self, k: &OpenPgpKeyRecord, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = tx.execute(
            "INSERT INTO openpgp_keys (key_label, fingerprint, user_id, certificate, created_at)
             VALUES (?1,?2,?3,?4,?5)",
            params![
                k.key_label,
                k.fingerprint,
                k.user_id,
                k.certificate,
                k.created_at
            ],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "the OpenPGP certificate of key '{}'",
                    k.key_label
                )))
            }
            r => r?,
        };
        audit(
            &tx,
            self.now(),
            actor,
            "key.openpgp",
            &k.key_label,
            Some(&format!("{} {}", k.fingerprint, k.user_id)),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn set_key_policy(&self, p: &KeyPolicyRecord, actor: &str) -> Result<(), StoreError> {
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
                self.now()
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
        audit(
            &tx,
            self.now(),
            actor,
            "key.policy",
            &p.key_label,
            Some(&detail),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn insert_signature_request(
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
            "INSERT INTO signature_requests (id, key_label, publisher, requester, digest_algorithm, digest, format, metadata, status, approvals_required, created_at, expires_at, identity)
             VALUES (?11,?1,?2,?3,?4,?5,?6,?7,'pending',?8,?9,?10,?12)",
            params![
                r.key_label,
                r.publisher,
                r.requester,
                r.digest_algorithm,
                r.digest,
                r.format,
                r.metadata,
                r.approvals_required,
                self.now(),
                r.expires_at,
                id,
                r.identity
            ],
        )?;
        audit(
            &tx,
            self.now(),
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

    fn record_signature_decision(
        &self,
        id: i64,
        approver: &str,
        approve: bool,
        comment: Option<&str>,
        actor: &str,
    ) -> Result<Decision, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let d = super::requests::decide(
            &tx,
            &super::requests::SIGNATURE,
            id,
            (approver, approve, comment),
            actor,
            self.now(),
        )?;
        tx.commit()?;
        Ok(d)
    }

    fn finish_signature_request(
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
                self.now(),
                signed.map(|s| s.signature_id),
                signed.map(|s| s.signature),
                signed.and_then(|s| s.timestamp_token)
            ],
        )?;
        if n == 1 {
            audit(
                &tx,
                self.now(),
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

    fn insert_signature(&self, s: &SignatureRecord, actor: &str) -> Result<i64, StoreError> {
        // Concurrent signatures share one commit (group commit): each is durable before this
        // returns, without a sync of its own.
        let (s, actor, clock) = (s.clone(), actor.to_string(), self.clock.clone());
        self.group_write(Box::new(move |tx| {
            let wanted = if s.id > 0 {
                let taken = tx
                    .prepare_cached("SELECT 1 FROM signatures WHERE id = ?1")?
                    .exists(params![s.id])?;
                (!taken).then_some(s.id)
            } else {
                None
            };
            tx.prepare_cached(
                "INSERT INTO signatures (id, key_label, digest_algorithm, digest, format, requester, approvers, metadata, created_at, identity)
                 VALUES (?9,?1,?2,?3,?4,?5,?6,?7,?8,?10)",
            )?
            .execute(params![
                s.key_label,
                s.digest_algorithm,
                s.digest,
                s.format,
                s.requester,
                s.approvers,
                s.metadata,
                s.created_at,
                wanted,
                s.identity
            ])?;
            let id = tx.last_insert_rowid();
            let detail = format!(
                "key={} {}:{} format={}",
                s.key_label, s.digest_algorithm, s.digest, s.format
            );
            audit(tx, clock.now(), &actor, "signature.created", &id.to_string(), Some(&detail))?;
            Ok(id)
        }))
    }

    fn insert_key(&self, k: &KeyRecord, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = tx.execute(
            &format!("INSERT INTO keys ({KEY_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
            params![
                k.label,
                k.publisher,
                k.key_store,
                k.algorithm,
                k.uri,
                k.csr_der,
                k.cert_serial,
                k.cert_der,
                k.created_at
            ],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("key '{}'", k.label)))
            }
            r => r?,
        };
        audit(
            &tx,
            self.now(),
            actor,
            "key.created",
            &k.label,
            Some(&format!("{} {} for {}", k.algorithm, k.uri, k.publisher)),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn set_key_certificate(
        &self,
        label: &str,
        serial: &str,
        der: &[u8],
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE keys SET cert_serial = ?2, cert_der = ?3 WHERE label = ?1",
            params![label, serial, der],
        )?;
        if n != 1 {
            return Err(StoreError::NotFound(format!("key '{label}'")));
        }
        audit(
            &tx,
            self.now(),
            actor,
            "key.certificate_attached",
            label,
            Some(serial),
        )?;
        tx.commit()?;
        Ok(())
    }
}
