//! Certificates in SQLite: intents recorded before signing, completed or abandoned after, and
//! the issued records ([`IssuanceWrite`], [`IssuanceRead`]).

use rusqlite::{params, Connection, OptionalExtension};

use super::{audit, is_unique_violation, SqliteStore};
use crate::store::*;

pub(super) const CERT_COLS: &str =
    "serial, ca, profile, publisher, request_id, subject, not_before, not_after, status, cert_der, created_at, issued_at, device_serial, station";

pub(super) fn cert_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRecord> {
    Ok(CertRecord {
        serial: r.get(0)?,
        ca: r.get(1)?,
        profile: r.get(2)?,
        publisher: r.get(3)?,
        request_id: r.get(4)?,
        subject: r.get(5)?,
        not_before: r.get(6)?,
        not_after: r.get(7)?,
        status: r.get(8)?,
        cert_der: r.get(9)?,
        created_at: r.get(10)?,
        issued_at: r.get(11)?,
        device_serial: r.get(12)?,
        station: r.get(13)?,
    })
}

fn complete_one(
    c: &Connection,
    serial: &str,
    der: &[u8],
    actor: &str,
    t: i64,
) -> Result<(), StoreError> {
    let n = c
        .prepare_cached(
            "UPDATE certificates SET status = 'issued', cert_der = ?2, issued_at = ?3 WHERE serial = ?1 AND status = 'intent'",
        )?
        .execute(params![serial, der, t])?;
    if n != 1 {
        return Err(StoreError::NotFound(format!("certificate intent {serial}")));
    }
    audit(c, t, actor, "certificate.issued", serial, None)
}

/// Records intents without a savepoint each: an expected refusal is found by a lookup before
/// the insert; any error fails the whole call (the caller then rolls back).
fn record_checked(
    tx: &Connection,
    intents: &[Intent],
    t: i64,
) -> Result<Vec<Result<i64, StoreError>>, StoreError> {
    let mut out = Vec::with_capacity(intents.len());
    for i in intents {
        match intent_refusal(tx, i)? {
            Some(refused) => out.push(Err(refused)),
            None => out.push(Ok(insert_intent(tx, i, t)?)),
        }
    }
    Ok(out)
}

/// Why an intent would be refused by the database's rules, looked up without writing: the
/// device already holds a live certificate of the profile, or the station is at its quota.
fn intent_refusal(c: &Connection, i: &Intent) -> Result<Option<StoreError>, StoreError> {
    if let Some(dev) = &i.device_serial {
        let taken = c
            .prepare_cached(
                "SELECT 1 FROM certificates WHERE profile = ?1 AND device_serial = ?2 AND status IN ('intent', 'issued')",
            )?
            .exists(params![i.profile, dev])?;
        if taken {
            return Ok(Some(StoreError::DeviceTaken(dev.clone())));
        }
    }
    if let Some(station) = &i.station {
        let full: Option<bool> = c
            .prepare_cached("SELECT issued >= quota FROM stations WHERE name = ?1")?
            .query_row(params![station], |r| r.get(0))
            .optional()?;
        if full == Some(true) {
            return Ok(Some(StoreError::QuotaExceeded(station.clone())));
        }
    }
    Ok(None)
}

fn insert_intent(tx: &Connection, i: &Intent, t: i64) -> Result<i64, StoreError> {
    let request_id = match i.request_id {
        // An approved request is answered by one certificate: the intent takes the request's
        // single certificate slot in the same transaction, so a second intent is refused.
        Some(id) => {
            let n = tx
                .prepare_cached(
                    "UPDATE requests SET certificate_serial = ?2 WHERE id = ?1 AND status = 'approved' AND certificate_serial IS NULL",
                )?
                .execute(params![id, i.serial])?;
            if n != 1 {
                return Err(StoreError::Decided(format!(
                    "request {id} is not approved or already has a certificate"
                )));
            }
            id
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO requests (profile, publisher, requester, csr_der, status, created_at, decided_at, identity) VALUES (?1,?2,?3,?4,'approved',?5,?5,?6)",
            )?
            .execute(params![i.profile, i.publisher, i.requester, i.csr_der, t, i.identity])?;
            tx.last_insert_rowid()
        }
    };
    let r = tx
        .prepare_cached(
            "INSERT INTO certificates (serial, ca, profile, publisher, request_id, subject, spki_sha256, not_before, not_after, status, tbs_der, created_at, device_serial, station)
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,'intent',?10,?11,?12,?13)",
        )?
        .execute(params![
            i.serial,
            i.ca,
            i.profile,
            i.publisher,
            request_id,
            i.subject,
            i.spki_sha256,
            i.not_before,
            i.not_after,
            i.tbs_der,
            t,
            i.device_serial,
            i.station
        ]);
    match r {
        Err(e) if is_unique_violation(&e) && e.to_string().contains("device_serial") => {
            return Err(StoreError::DeviceTaken(
                i.device_serial.clone().unwrap_or_default(),
            ))
        }
        Err(e) if e.to_string().contains("hallmark: station quota exceeded") => {
            return Err(StoreError::QuotaExceeded(
                i.station.clone().unwrap_or_default(),
            ))
        }
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict(format!(
                "certificate serial {}",
                i.serial
            )))
        }
        r => r?,
    };
    audit(
        tx,
        t,
        &i.requester,
        "certificate.intent",
        &i.serial,
        Some(&format!(
            "profile={} ca={} subject={}",
            i.profile, i.ca, i.subject
        )),
    )?;
    Ok(request_id)
}

impl IssuanceWrite for SqliteStore {
    fn record_intent(&self, i: &Intent) -> Result<i64, StoreError> {
        let (i, clock) = (i.clone(), self.clock.clone());
        self.group_write(Box::new(move |c| insert_intent(c, &i, clock.now())))
    }

    fn record_intents(
        &self,
        intents: &[Intent],
    ) -> Result<Vec<Result<i64, StoreError>>, StoreError> {
        let t = self.now();
        let mut conn = self.conn()?;
        // Fast path: the refusals a batch can meet (a device that already has a certificate, a
        // station past its quota) are looked up first, so the inserts need no savepoint each
        // (a savepoint copies every page it touches). Anything unexpected rolls the whole
        // transaction back and the batch is recorded again with a savepoint per intent.
        {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Ok(out) = record_checked(&tx, intents, t) {
                tx.commit()?;
                return Ok(out);
            }
        }
        let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(intents.len());
        for i in intents {
            let r = (|| {
                let sp = tx.savepoint()?;
                let id = insert_intent(&sp, i, t)?;
                sp.commit()?;
                Ok(id)
            })();
            out.push(r);
        }
        tx.commit()?;
        Ok(out)
    }

    fn complete_issuance(
        &self,
        serial: &str,
        cert_der: &[u8],
        actor: &str,
    ) -> Result<(), StoreError> {
        let (serial, der, actor) = (serial.to_string(), cert_der.to_vec(), actor.to_string());
        let clock = self.clock.clone();
        self.group_write(Box::new(move |c| {
            complete_one(c, &serial, &der, &actor, clock.now())?;
            Ok(0)
        }))
        .map(|_| ())
    }

    fn complete_issuances(&self, done: &[(&str, &[u8])], actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = self.now();
        {
            for (serial, der) in done {
                complete_one(&tx, serial, der, actor, t)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn abandon_intent(&self, serial: &str, reason: &str, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE certificates SET status = 'abandoned' WHERE serial = ?1 AND status = 'intent'",
            params![serial],
        )?;
        if n == 0 {
            // Not an intent (any more): another process completed it, or it never was one.
            // Nothing changes; above all an issued certificate keeps its request's slot.
            return Ok(());
        }
        // An approved request whose certificate was never signed gets its slot back, so the
        // recovery at start can issue it again.
        tx.execute(
            "UPDATE requests SET certificate_serial = NULL WHERE id = (SELECT request_id FROM certificates WHERE serial = ?1) AND certificate_serial = ?1 AND status = 'approved'",
            params![serial],
        )?;
        audit(
            &tx,
            self.now(),
            actor,
            "certificate.abandoned",
            serial,
            Some(reason),
        )?;
        tx.commit()?;
        Ok(())
    }
}

impl IssuanceRead for SqliteStore {
    fn get_certificate(&self, serial: &str) -> Result<Option<CertRecord>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {CERT_COLS} FROM certificates WHERE serial = ?1"),
                params![serial],
                cert_from_row,
            )
            .optional()?)
    }

    fn list_certificates(&self, f: &CertFilter) -> Result<Vec<CertRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {CERT_COLS} FROM certificates WHERE status = 'issued'
               AND (?1 IS NULL OR publisher = ?1) AND (?2 IS NULL OR profile = ?2)
               AND (?3 IS NULL OR ca = ?3) AND (?4 IS NULL OR serial > ?4)
             ORDER BY serial LIMIT ?5"
        ))?;
        let limit = if f.limit == 0 { 100 } else { f.limit } as i64;
        let rows = stmt.query_map(
            params![f.publisher, f.profile, f.ca, f.after, limit],
            cert_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn certificates_of_request(&self, request_id: i64) -> Result<Vec<CertRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CERT_COLS} FROM certificates WHERE request_id = ?1 ORDER BY serial"
        ))?;
        let rows = stmt.query_map(params![request_id], cert_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn count_certificates(&self, status: Option<CertStatus>) -> Result<i64, StoreError> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT count(*) FROM certificates WHERE (?1 IS NULL OR status = ?1)",
            params![status],
            |r| r.get(0),
        )?)
    }

    fn intent_tbs(&self, serial: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT tbs_der FROM certificates WHERE serial = ?1 AND status = 'intent'",
                params![serial],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn leftover_intents(
        &self,
        before: i64,
        limit: usize,
    ) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT serial, ca, tbs_der FROM certificates WHERE status = 'intent' AND created_at <= ?1 ORDER BY created_at LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![before, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
