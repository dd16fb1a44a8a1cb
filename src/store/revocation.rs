//! Revocation records and what is published from them: CRL numbers, the publication revision the
//! server watches, and the pre-signed OCSP responses.
//!
//! Writes go through the writer connection, each with its audit event in the same transaction.
//! The reads the responder and the CRL builder make go through [`super::readers`]: they never
//! wait on a writer.

use rusqlite::{params, Connection, OptionalExtension};

use super::{audit, now, Store, StoreError};

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

/// What [`Store::revoke`] did.
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

fn revocation_of(conn: &Connection, serial: &str) -> Result<Option<(u8, i64)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT reason, revoked_at FROM revocations WHERE serial = ?1")?
        .query_row(params![serial], |r| Ok((r.get::<_, u8>(0)?, r.get(1)?)))
        .optional()?)
}

impl Store {
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

    /// Records a revocation, with its audit event, in one transaction. Revoking a serial that
    /// was never issued is `NotFound`; revoking twice is `Conflict`, except a move to
    /// keyCompromise (1), which updates the reason and keeps the revocation time. The pre-signed
    /// OCSP response is dropped and the CA's publication revision bumped in the same transaction,
    /// so no reader sees the revocation without its effect on OCSP.
    pub fn revoke(&self, r: &NewRevocation, actor: &str) -> Result<RevokeOutcome, StoreError> {
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
        let t = now();
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

    pub fn get_revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, StoreError> {
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

    /// How many entries a CRL of `ca` (one partition, or all) will have.
    pub fn count_revocations(&self, ca: &str, shard: Option<u32>) -> Result<u64, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM revocations WHERE ca = ?1 AND (?2 IS NULL OR crl_shard = ?2)",
                params![ca, shard],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }

    /// Streams the revocations of `ca` (one partition, or all) to `f`, from one read snapshot.
    pub fn for_each_revocation<E: From<StoreError>>(
        &self,
        ca: &str,
        shard: Option<u32>,
        mut f: impl FnMut(RevokedEntry<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let scan = |c: &Connection,
                    f: &mut dyn FnMut(RevokedEntry<'_>) -> Result<(), E>|
         -> Result<(), E> {
            let mut stmt = c
                .prepare(
                    "SELECT serial, revoked_at, reason, invalidity_date FROM revocations
                     WHERE ca = ?1 AND (?2 IS NULL OR crl_shard = ?2)",
                )
                .map_err(StoreError::from)?;
            let mut rows = stmt.query(params![ca, shard]).map_err(StoreError::from)?;
            while let Some(row) = rows.next().map_err(StoreError::from)? {
                let serial = row
                    .get_ref(0)
                    .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
                    .map_err(StoreError::from)?;
                f(RevokedEntry {
                    serial,
                    revoked_at: row.get(1).map_err(StoreError::from)?,
                    reason: row.get(2).map_err(StoreError::from)?,
                    invalidity_date: row.get(3).map_err(StoreError::from)?,
                })?;
            }
            Ok(())
        };
        match self.readers.get()? {
            Some(c) => scan(&c, &mut f),
            None => {
                let c = self.conn()?;
                scan(&c, &mut f)
            }
        }
    }

    /// Takes the next CRL number of `ca` (numbers only grow), with an audit event.
    pub fn next_crl_number(
        &self,
        ca: &str,
        this_update: i64,
        actor: &str,
    ) -> Result<u64, StoreError> {
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
        audit(&tx, actor, "crl.issued", ca, Some(&format!("number {n}")))?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// The last CRL number issued for `ca`, if any.
    pub fn crl_number(&self, ca: &str) -> Result<Option<u64>, StoreError> {
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

    /// Publication revisions per CA: a revision moves whenever a revocation of that CA changes.
    pub fn publication_revisions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT ca, revision FROM publication ORDER BY ca")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Where a certificate stands (`None`: never recorded).
    pub fn certificate_standing(&self, serial: &str) -> Result<Option<CertStanding>, StoreError> {
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

    /// [`Store::certificate_standing`] through the record cache, for the signing path (a key's
    /// certificate, checked on every signature). Only an issued certificate's standing is kept:
    /// from there only a revocation changes it, and a revocation empties the cache.
    pub fn certificate_standing_cached(
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

    /// The pre-signed response for `serial` under `ca`, if one is stored.
    pub fn presigned_response(
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

    /// Certificates of `ca` needing a pre-signed response: unexpired, issued, and with none or
    /// one signed before `stale_before`. Paged by serial after `after`.
    pub fn presign_candidates(
        &self,
        ca: &str,
        stale_before: i64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<PresignCandidate>, StoreError> {
        let t = now();
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

    /// Certificates whose response a revocation invalidated, oldest first.
    pub fn dirty_responses(&self, limit: usize) -> Result<Vec<PresignCandidate>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.serial, d.ca, r.reason, r.revoked_at FROM ocsp_dirty d
                 LEFT JOIN revocations r ON r.serial = d.serial LIMIT ?1",
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

    /// Stores pre-signed responses in one transaction. A response whose revocation state changed
    /// since it was signed is skipped (and stays queued); returns how many were stored.
    pub fn store_presigned(&self, items: &[Presigned]) -> Result<usize, StoreError> {
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

    /// Drops queued invalidations for certificates no longer answerable (expired or unknown).
    pub fn forget_dirty(&self, serials: &[String]) -> Result<(), StoreError> {
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

    /// Deletes pre-signed responses past their nextUpdate; returns how many.
    pub fn purge_expired_responses(&self, now: i64) -> Result<usize, StoreError> {
        let conn = self.conn()?;
        Ok(conn.execute(
            "DELETE FROM ocsp_responses WHERE next_update <= ?1",
            params![now],
        )?)
    }

    /// Counts stored pre-signed responses (tests, `make bench`).
    pub fn count_presigned(&self) -> Result<i64, StoreError> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM ocsp_responses", [], |r| r.get(0))?))
    }

    /// Replaces the certificate of a CA or responder whose key stays (renewal), with an audit event.
    #[allow(clippy::too_many_arguments)]
    pub fn renew_ca_certificate(
        &self,
        name: &str,
        cert_der: &[u8],
        serial: &str,
        subject: &str,
        not_before: i64,
        not_after: i64,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE cas SET cert_der = ?2, serial = ?3, subject = ?4, not_before = ?5, not_after = ?6 WHERE name = ?1",
            params![name, cert_der, serial, subject, not_before, not_after],
        )?;
        if n != 1 {
            return Err(StoreError::NotFound(format!("CA '{name}'")));
        }
        audit(
            &tx,
            actor,
            "ca.certificate_renewed",
            name,
            Some(&format!("serial {serial}, notAfter {not_after}")),
        )?;
        tx.commit()?;
        Ok(())
    }
}
