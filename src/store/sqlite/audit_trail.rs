//! The audit trail in SQLite: events written, read in order and searched, expiry notices and the
//! webhooks' delivery cursors ([`AuditWrite`], [`AuditRead`]).

use rusqlite::{params, OptionalExtension};

use super::{audit, audit_event_from_row, console, SqliteStore};
use crate::store::*;

impl AuditWrite for SqliteStore {
    fn audit(
        &self,
        action: &str,
        subject: &str,
        detail: Option<&str>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        audit(&tx, self.now(), actor, action, subject, detail)?;
        tx.commit()?;
        Ok(())
    }

    fn notice_expiring(
        &self,
        c: &ExpiringCert,
        detail: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO expiry_notices (serial, not_after, noticed_at) VALUES (?1, ?2, ?3)",
            params![c.serial, c.not_after, self.now()],
        )?;
        if n == 1 {
            audit(
                &tx,
                self.now(),
                actor,
                "certificate.expiring",
                &c.serial,
                Some(detail),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn set_webhook_cursor(&self, c: &WebhookCursor) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT OR REPLACE INTO webhook_cursors (name, last_id, attempts, next_at, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.name, c.last_id, c.attempts, c.next_at, c.last_error],
        )?;
        Ok(())
    }
}

impl AuditRead for SqliteStore {
    fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at, actor, action, subject, detail FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit as i64], audit_event_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn expiring_unnoticed(
        &self,
        now: i64,
        before: i64,
        limit: usize,
    ) -> Result<Vec<ExpiringCert>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.serial, c.publisher, c.profile, c.subject, c.not_after FROM certificates c
                 WHERE c.station IS NULL AND c.status = 'issued' AND c.not_after > ?1 AND c.not_after <= ?2
                   AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial)
                   AND NOT EXISTS (SELECT 1 FROM expiry_notices n WHERE n.serial = c.serial)
                 ORDER BY c.not_after LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![now, before, limit as i64], |r| {
                Ok(ExpiringCert {
                    serial: r.get(0)?,
                    publisher: r.get(1)?,
                    profile: r.get(2)?,
                    subject: r.get(3)?,
                    not_after: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn audit_last_id(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM audit", [], |r| r.get(0))?)
        })
    }

    fn webhook_cursor(&self, name: &str) -> Result<Option<WebhookCursor>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT name, last_id, attempts, next_at, last_error FROM webhook_cursors WHERE name = ?1",
                )?
                .query_row(params![name], |r| {
                    Ok(WebhookCursor {
                        name: r.get(0)?,
                        last_id: r.get(1)?,
                        attempts: r.get(2)?,
                        next_at: r.get(3)?,
                        last_error: r.get(4)?,
                    })
                })
                .optional()?)
        })
    }

    fn search_audit(&self, s: &AuditSearch) -> Result<Vec<AuditEvent>, StoreError> {
        console::search_audit(self, s)
    }

    fn audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT id, at, actor, action, subject, detail FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit as i64], audit_event_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
