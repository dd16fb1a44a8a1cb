//! Revocation records and what is published from them: CRL numbers, the publication revision the
//! server watches, and the pre-signed OCSP responses.
//!
//! Writes go through the writer connection, each with its audit event in the same transaction.
//! The reads the responder and the CRL builder make go through [`super::readers`]: they never
//! wait on a writer.

use rusqlite::{params, Connection, OptionalExtension};

use super::{audit, SqliteStore};
use crate::store::*;

fn revocation_of(conn: &Connection, serial: &str) -> Result<Option<(u8, i64)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT reason, revoked_at FROM revocations WHERE serial = ?1")?
        .query_row(params![serial], |r| Ok((r.get::<_, u8>(0)?, r.get(1)?)))
        .optional()?)
}

impl SqliteStore {
    /// Runs `f` on a mapped read connection: point lookups on the OCSP path.
    pub(super) fn lookup<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.readers.get_mapped()? {
            Some(c) => f(&c),
            None => {
                let c = self.conn()?;
                f(&c)
            }
        }
    }

    /// Runs `f` on a read connection (the writer only for an in-memory database).
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.readers.get()? {
            Some(c) => f(&c),
            None => {
                let c = self.conn()?;
                f(&c)
            }
        }
    }
}

impl RevocationWrite for SqliteStore {
    fn revoke(&self, r: &NewRevocation, actor: &str) -> Result<RevokeOutcome, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let cert: Option<(String, super::CertStatus)> = tx
            .query_row(
                "SELECT ca, status FROM certificates WHERE serial = ?1",
                params![r.serial],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let ca = match cert {
            Some((ca, super::CertStatus::Issued)) => ca,
            _ => return Err(StoreError::NotFound(format!("certificate {}", r.serial))),
        };
        let t = self.now();
        let existing = tx
            .query_row(
                "SELECT reason, revoked_at, invalidity_date, crl_shard FROM revocations WHERE serial = ?1",
                params![r.serial],
                |row| {
                    Ok((
                        row.get::<_, u8>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, Option<u32>>(3)?,
                    ))
                },
            )
            .optional()?;
        let outcome = match existing {
            Some((previous, revoked_at, old_invalidity, crl_shard))
                if r.reason == 1 && previous != 1 =>
            {
                let invalidity_date = r.invalidity_date.or(old_invalidity);
                tx.execute(
                    "UPDATE revocations SET reason = 1, invalidity_date = ?2 WHERE serial = ?1",
                    params![r.serial, invalidity_date],
                )?;
                audit(
                    &tx,
                    self.now(),
                    actor,
                    "certificate.revocation_updated",
                    &r.serial,
                    Some(&format!("reason {previous} -> 1 (keyCompromise)")),
                )?;
                RevokeOutcome::ReasonChanged {
                    previous,
                    record: RevocationRecord {
                        serial: r.serial.clone(),
                        ca: ca.clone(),
                        reason: 1,
                        revoked_at,
                        invalidity_date,
                        actor: actor.to_string(),
                        crl_shard,
                    },
                }
            }
            Some((previous, ..)) => {
                return Err(StoreError::Conflict(format!(
                    "a revocation of certificate {} (reason code {previous})",
                    r.serial
                )))
            }
            None => {
                tx.execute(
                    "INSERT INTO revocations (serial, reason, revoked_at, invalidity_date, actor, ca, crl_shard)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![r.serial, r.reason, t, r.invalidity_date, actor, ca, r.crl_shard],
                )?;
                audit(
                    &tx,
                    self.now(),
                    actor,
                    "certificate.revoked",
                    &r.serial,
                    Some(&format!(
                        "ca={ca} reason={}{}",
                        r.reason,
                        r.invalidity_date
                            .map(|d| format!(" invalidity_date={d}"))
                            .unwrap_or_default()
                    )),
                )?;
                RevokeOutcome::Revoked(RevocationRecord {
                    serial: r.serial.clone(),
                    ca: ca.clone(),
                    reason: r.reason,
                    revoked_at: t,
                    invalidity_date: r.invalidity_date,
                    actor: actor.to_string(),
                    crl_shard: r.crl_shard,
                })
            }
        };
        tx.execute(
            "DELETE FROM ocsp_responses WHERE serial = ?1",
            params![r.serial],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO ocsp_dirty (serial, ca) VALUES (?1, ?2)",
            params![r.serial, ca],
        )?;
        tx.execute(
            "INSERT INTO publication (ca, revision) VALUES (?1, 1)
             ON CONFLICT (ca) DO UPDATE SET revision = revision + 1",
            params![ca],
        )?;
        tx.commit()?;
        Ok(outcome)
    }

    fn next_crl_number(&self, ca: &str, this_update: i64, actor: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO crl_state (ca, number, this_update) VALUES (?1, 1, ?2)
             ON CONFLICT (ca) DO UPDATE SET number = number + 1, this_update = ?2",
            params![ca, this_update],
        )?;
        let n: i64 = tx.query_row(
            "SELECT number FROM crl_state WHERE ca = ?1",
            params![ca],
            |r| r.get(0),
        )?;
        audit(
            &tx,
            self.now(),
            actor,
            "crl.issued",
            ca,
            Some(&format!("number {n}")),
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn store_presigned(&self, items: &[Presigned]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut stored = 0;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO ocsp_responses (serial, ca, this_update, next_update, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut done = tx.prepare_cached("DELETE FROM ocsp_dirty WHERE serial = ?1")?;
            for p in items {
                if revocation_of(&tx, &p.serial)? != p.revoked {
                    continue;
                }
                put.execute(params![
                    p.serial,
                    p.ca,
                    p.this_update,
                    p.next_update,
                    p.body
                ])?;
                done.execute(params![p.serial])?;
                stored += 1;
            }
        }
        tx.commit()?;
        Ok(stored)
    }

    fn forget_dirty(&self, serials: &[String]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut del = tx.prepare_cached("DELETE FROM ocsp_dirty WHERE serial = ?1")?;
            for s in serials {
                del.execute(params![s])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn purge_expired_responses(&self, now: i64) -> Result<usize, StoreError> {
        let conn = self.conn()?;
        Ok(conn.execute(
            "DELETE FROM ocsp_responses WHERE next_update <= ?1",
            params![now],
        )?)
    }
}

impl RevocationRead for SqliteStore {
    fn get_revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT serial, ca, reason, revoked_at, invalidity_date, actor, crl_shard FROM revocations WHERE serial = ?1",
                params![serial],
                |r| {
                    Ok(RevocationRecord {
                        serial: r.get(0)?,
                        ca: r.get(1)?,
                        reason: r.get(2)?,
                        revoked_at: r.get(3)?,
                        invalidity_date: r.get(4)?,
                        actor: r.get(5)?,
                        crl_shard: r.get(6)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn count_revocations(&self, ca: &str, shard: Option<u32>) -> Result<u64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM revocations WHERE ca = ?1 AND (?2 IS NULL OR crl_shard = ?2)",
                params![ca, shard],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }

    fn for_each_revocation(
        &self,
        ca: &str,
        shard: Option<u32>,
        f: &mut dyn FnMut(RevokedEntry<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let mut scan = |c: &Connection| -> Result<(), StoreError> {
            let mut stmt = c.prepare(
                "SELECT serial, revoked_at, reason, invalidity_date FROM revocations
                 WHERE ca = ?1 AND (?2 IS NULL OR crl_shard = ?2)",
            )?;
            let mut rows = stmt.query(params![ca, shard])?;
            while let Some(row) = rows.next()? {
                let serial = row
                    .get_ref(0)
                    .and_then(|v| v.as_str().map_err(rusqlite::Error::from))?;
                let go_on = f(RevokedEntry {
                    serial,
                    revoked_at: row.get(1)?,
                    reason: row.get(2)?,
                    invalidity_date: row.get(3)?,
                });
                if !go_on {
                    break;
                }
            }
            Ok(())
        };
        match self.readers.get()? {
            Some(c) => scan(&c),
            None => {
                let c = self.conn()?;
                scan(&c)
            }
        }
    }

    fn crl_number(&self, ca: &str) -> Result<Option<u64>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT number FROM crl_state WHERE ca = ?1",
                params![ca],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|n| n as u64))
        })
    }

    fn publication_revisions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT ca, revision FROM publication ORDER BY ca")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn certificate_standing(&self, serial: &str) -> Result<Option<CertStanding>, StoreError> {
        self.lookup(|c| {
            Ok(c.prepare_cached(
                "SELECT c.ca, c.status, r.reason, r.revoked_at FROM certificates c
                 LEFT JOIN revocations r ON r.serial = c.serial WHERE c.serial = ?1",
            )?
            .query_row(params![serial], |r| {
                let reason: Option<u8> = r.get(2)?;
                let at: Option<i64> = r.get(3)?;
                Ok(CertStanding {
                    ca: r.get(0)?,
                    status: r.get(1)?,
                    revoked: reason.zip(at),
                })
            })
            .optional()?)
        })
    }

    fn certificate_standing_cached(
        &self,
        serial: &str,
    ) -> Result<Option<CertStanding>, StoreError> {
        let standing = self.cached(
            |c| &mut c.standings,
            serial,
            || {
                Ok(self
                    .certificate_standing(serial)?
                    .filter(|s| s.status == super::CertStatus::Issued || s.revoked.is_some()))
            },
        )?;
        match standing {
            Some(s) => Ok(Some(s)),
            // Not cached as issued (unknown, an intent, abandoned): ask the database.
            None => self.certificate_standing(serial),
        }
    }

    fn presigned_response(
        &self,
        serial: &str,
        ca: &str,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.lookup(|c| {
            Ok(c.prepare_cached(
                "SELECT this_update, next_update, body FROM ocsp_responses WHERE serial = ?1 AND ca = ?2",
            )?
            .query_row(params![serial, ca], |r| {
                Ok(StoredResponse {
                    this_update: r.get(0)?,
                    next_update: r.get(1)?,
                    body: r.get(2)?,
                })
            })
            .optional()?)
        })
    }

    fn presign_candidates(
        &self,
        ca: &str,
        stale_before: i64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<PresignCandidate>, StoreError> {
        let t = self.now();
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT c.serial, r.reason, r.revoked_at FROM certificates c
                 LEFT JOIN ocsp_responses o ON o.serial = c.serial
                 LEFT JOIN revocations r ON r.serial = c.serial
                 WHERE c.ca = ?1 AND c.serial > ?2 AND c.status = 'issued' AND c.not_after > ?3
                   AND (o.serial IS NULL OR o.this_update < ?4)
                 ORDER BY c.serial LIMIT ?5",
            )?;
            let rows = stmt.query_map(params![ca, after, t, stale_before, limit as i64], |r| {
                let reason: Option<u8> = r.get(1)?;
                let at: Option<i64> = r.get(2)?;
                Ok(PresignCandidate {
                    serial: r.get(0)?,
                    ca: ca.to_string(),
                    revoked: reason.zip(at),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn dirty_responses(&self, limit: usize) -> Result<Vec<PresignCandidate>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.serial, d.ca, r.reason, r.revoked_at FROM ocsp_dirty d
                 LEFT JOIN revocations r ON r.serial = d.serial ORDER BY d.serial LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                let reason: Option<u8> = r.get(2)?;
                let at: Option<i64> = r.get(3)?;
                Ok(PresignCandidate {
                    serial: r.get(0)?,
                    ca: r.get(1)?,
                    revoked: reason.zip(at),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn count_presigned(&self, ca: Option<&str>) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM ocsp_responses WHERE (?1 IS NULL OR ca = ?1)",
                params![ca],
                |r| r.get(0),
            )?)
        })
    }
}
