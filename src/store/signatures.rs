//! Signature records: every digest hallmark signs, written with its audit event before the
//! signature is handed out.

use rusqlite::{params, OptionalExtension};

use super::{audit, Store, StoreError};

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
}

const COLS: &str =
    "id, key_label, digest_algorithm, digest, format, requester, approvers, metadata, created_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SignatureRecord> {
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
    })
}

impl Store {
    /// Records a signature with a `signature.created` audit event in the same transaction;
    /// returns its id. An `id` of 0 is assigned; another (the id of the signature request it
    /// ends, reserved from this table's sequence) is kept when no signature has it — a request
    /// from before ids were shared may collide, and then gets a new one.
    pub fn insert_signature(&self, s: &SignatureRecord, actor: &str) -> Result<i64, StoreError> {
        // Concurrent signatures share one commit (group commit): each is durable before this
        // returns, without a sync of its own.
        let (s, actor) = (s.clone(), actor.to_string());
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
                "INSERT INTO signatures (id, key_label, digest_algorithm, digest, format, requester, approvers, metadata, created_at)
                 VALUES (?9,?1,?2,?3,?4,?5,?6,?7,?8)",
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
                wanted
            ])?;
            let id = tx.last_insert_rowid();
            let detail = format!(
                "key={} {}:{} format={}",
                s.key_label, s.digest_algorithm, s.digest, s.format
            );
            audit(tx, &actor, "signature.created", &id.to_string(), Some(&detail))?;
            Ok(id)
        }))
    }

    /// Signatures, newest first, optionally of one key and/or of one publisher's keys.
    pub fn list_signatures(
        &self,
        key: Option<&str>,
        publisher: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<SignatureRecord>, StoreError> {
        let conn = self.conn()?;
        let cols = COLS
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
        let rows = stmt.query_map(params![key, publisher, limit as i64, before], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn get_signature(&self, id: i64) -> Result<Option<SignatureRecord>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {COLS} FROM signatures WHERE id = ?1"),
                params![id],
                from_row,
            )
            .optional()?)
    }

    /// How many signatures are recorded (all keys).
    pub fn count_signatures(&self) -> Result<i64, StoreError> {
        let conn = self.conn()?;
        Ok(conn.query_row("SELECT count(*) FROM signatures", [], |r| r.get(0))?)
    }
}
