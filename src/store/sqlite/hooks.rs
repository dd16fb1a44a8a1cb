//! The test hooks (feature `test-hooks`) for SQLite: direct writes no service makes.

use std::time::Duration;

use rusqlite::params;

use super::SqliteStore;
use crate::store::hooks::TestHooks;
use crate::store::*;

impl SqliteStore {
    fn one_row(&self, sql: &str, p: impl rusqlite::Params, what: &str) -> Result<(), StoreError> {
        match self.conn()?.execute(sql, p)? {
            1 => Ok(()),
            _ => Err(StoreError::NotFound(what.to_string())),
        }
    }
}

impl TestHooks for SqliteStore {
    fn fail_certificate_records(&self, message: Option<&str>) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute("DROP TRIGGER IF EXISTS test_fault_certificates", [])?;
        if let Some(m) = message {
            // A trigger's RAISE takes a literal, not a parameter.
            let quoted = m.replace('\'', "''");
            conn.execute(
                &format!(
                    "CREATE TRIGGER test_fault_certificates BEFORE INSERT ON certificates \
                     BEGIN SELECT RAISE(ABORT, '{quoted}'); END"
                ),
                [],
            )?;
        }
        Ok(())
    }

    fn age_sessions(&self, token_id: &str, secs: i64) -> Result<usize, StoreError> {
        Ok(self.conn()?.execute(
            "UPDATE ui_sessions SET last_seen = last_seen - ?2 WHERE token_id = ?1",
            params![token_id, secs],
        )?)
    }

    fn expire_request_now(&self, id: i64) -> Result<(), StoreError> {
        let sql = "UPDATE requests SET expires_at = 1 WHERE id = ?1";
        self.one_row(sql, params![id], &format!("request {id}"))
    }

    fn expire_signature_request_now(&self, id: i64) -> Result<(), StoreError> {
        let sql = "UPDATE signature_requests SET expires_at = 1 WHERE id = ?1";
        self.one_row(sql, params![id], &format!("signature request {id}"))
    }

    fn force_signature_request_status(
        &self,
        id: i64,
        status: SignatureRequestStatus,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE signature_requests SET status = ?2 WHERE id = ?1";
        self.one_row(sql, params![id, status], &format!("signature request {id}"))
    }

    fn set_ca_not_after(&self, name: &str, not_after: i64) -> Result<(), StoreError> {
        let sql = "UPDATE cas SET not_after = ?2 WHERE name = ?1";
        self.one_row(sql, params![name, not_after], &format!("CA '{name}'"))
    }

    fn hold_write_lock(&self, hold: Duration, locked: &dyn Fn()) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO audit (at, actor, action) VALUES (0, 'test', 'lock')",
            [],
        )?;
        locked();
        std::thread::sleep(hold);
        tx.commit()?;
        Ok(())
    }

    fn load_issued(
        &self,
        ca: &str,
        publisher: &str,
        certs: &[(String, i64)],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        let mut certs: Vec<&(String, i64)> = certs.iter().collect();
        certs.sort_unstable();
        let tx = conn.transaction()?;
        {
            let mut cert = tx.prepare(
                "INSERT INTO certificates (serial, ca, profile, publisher, subject, spki_sha256, not_before, not_after, status, tbs_der, created_at, issued_at)
                 VALUES (?1, ?2, 'bench', ?3, 'CN=bench ' || ?1, '00', ?4, ?5, 'issued', x'00', ?4, ?4)",
            )?;
            for (serial, not_after) in &certs {
                cert.execute(params![serial, ca, publisher, now - 86_400, not_after])?;
            }
        }
        tx.commit()?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(())
    }

    fn load_revoked(
        &self,
        ca: &str,
        serials: &[String],
        revoked_at: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        // In serial order, the B-tree inserts append instead of scattering.
        let mut serials: Vec<&String> = serials.iter().collect();
        serials.sort_unstable();
        let tx = conn.transaction()?;
        {
            let mut cert = tx.prepare(
                "INSERT INTO certificates (serial, ca, profile, subject, spki_sha256, not_before, not_after, status, tbs_der, created_at, issued_at)
                 VALUES (?1, ?2, 'bench', 'CN=bench', '00', ?3, ?4, 'issued', x'00', ?3, ?3)",
            )?;
            let mut rev = tx.prepare(
                "INSERT INTO revocations (serial, reason, revoked_at, actor, ca) VALUES (?1, 1, ?2, 'bench', ?3)",
            )?;
            for s in &serials {
                cert.execute(params![
                    s,
                    ca,
                    revoked_at - 86_400,
                    revoked_at + 365 * 86_400
                ])?;
                rev.execute(params![s, revoked_at, ca])?;
            }
        }
        tx.commit()?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(())
    }
}
