//! Factory stations and the device certificates they obtained.

use rusqlite::{params, OptionalExtension};

use super::issuance::{cert_from_row, CERT_COLS};
use super::{audit, is_unique_violation, SqliteStore};
use crate::store::*;

const COLS: &str = "name, publisher, profile, serial_pattern, quota, cert_serial, disabled, reprovision, created_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StationRecord> {
    Ok(StationRecord {
        name: r.get(0)?,
        publisher: r.get(1)?,
        profile: r.get(2)?,
        serial_pattern: r.get(3)?,
        quota: r.get(4)?,
        cert_serial: r.get(5)?,
        disabled: r.get::<_, i64>(6)? != 0,
        reprovision: r.get::<_, i64>(7)? != 0,
        created_at: r.get(8)?,
    })
}

impl SqliteStore {
    fn device_certificate_on(
        conn: &rusqlite::Connection,
        profile: &str,
        device_serial: &str,
    ) -> Result<Option<DeviceCertificate>, StoreError> {
        let mut stmt = conn.prepare_cached(
            "SELECT serial, spki_sha256, status, cert_der, ca FROM certificates
             WHERE profile = ?1 AND device_serial = ?2 AND status IN ('intent', 'issued')",
        )?;
        let row = stmt
            .query_row(params![profile, device_serial], |r| {
                Ok(DeviceCertificate {
                    serial: r.get(0)?,
                    spki_sha256: r.get(1)?,
                    status: r.get(2)?,
                    cert_der: r.get(3)?,
                    ca: r.get(4)?,
                })
            })
            .optional()?;
        Ok(row)
    }
}

impl FactoryWrite for SqliteStore {
    fn insert_station(&self, s: &StationRecord, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = tx.execute(
            &format!("INSERT INTO stations ({COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
            params![
                s.name,
                s.publisher,
                s.profile,
                s.serial_pattern,
                s.quota,
                s.cert_serial,
                i64::from(s.disabled),
                i64::from(s.reprovision),
                s.created_at
            ],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("station '{}'", s.name)))
            }
            r => r?,
        };
        let detail = format!(
            "publisher={} profile={} pattern={} quota={} reprovision={} certificate={}",
            s.publisher,
            s.profile,
            s.serial_pattern,
            s.quota,
            s.reprovision,
            s.cert_serial.as_deref().unwrap_or("-")
        );
        audit(
            &tx,
            self.now(),
            actor,
            "station.added",
            &s.name,
            Some(&detail),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn disable_station(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let disabled: Option<i64> = tx
            .query_row(
                "SELECT disabled FROM stations WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        match disabled {
            None => return Err(StoreError::NotFound(format!("station '{name}'"))),
            Some(1) => return Ok(false),
            Some(_) => {}
        }
        tx.execute(
            "UPDATE stations SET disabled = 1 WHERE name = ?1",
            params![name],
        )?;
        audit(&tx, self.now(), actor, "station.disabled", name, None)?;
        tx.commit()?;
        Ok(true)
    }

    fn release_device(&self, serial: &str, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let device: Option<Option<String>> = tx
            .query_row(
                "SELECT device_serial FROM certificates WHERE serial = ?1",
                params![serial],
                |r| r.get(0),
            )
            .optional()?;
        let Some(Some(device)) = device else {
            return Err(StoreError::NotFound(format!("device certificate {serial}")));
        };
        tx.execute(
            "UPDATE certificates SET device_serial = NULL WHERE serial = ?1",
            params![serial],
        )?;
        audit(
            &tx,
            self.now(),
            actor,
            "device.superseded",
            &device,
            Some(serial),
        )?;
        tx.commit()?;
        Ok(())
    }
}

impl FactoryRead for SqliteStore {
    fn certificates_of_station(&self, name: &str) -> Result<Vec<CertRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CERT_COLS} FROM certificates WHERE station = ?1 ORDER BY serial"
        ))?;
        let rows = stmt.query_map(params![name], cert_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get_station(&self, name: &str) -> Result<Option<StationRecord>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {COLS} FROM stations WHERE name = ?1"),
                params![name],
                from_row,
            )
            .optional()?)
    }

    fn station_by_certificate(&self, serial: &str) -> Result<Option<StationRecord>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {COLS} FROM stations WHERE cert_serial = ?1"),
                params![serial],
                from_row,
            )
            .optional()?)
    }

    fn list_stations(&self) -> Result<Vec<StationRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {COLS} FROM stations ORDER BY name"))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn station_issued_count(&self, name: &str) -> Result<i64, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT issued FROM stations WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    fn device_certificate(
        &self,
        profile: &str,
        device_serial: &str,
    ) -> Result<Option<DeviceCertificate>, StoreError> {
        // A point lookup per provisioned device: on a read connection, so it never waits for
        // the writer (which is busy recording the previous chunk). It sees committed rows; a
        // device recorded meanwhile is caught by the one-live-certificate-per-device index.
        self.read(|conn| Self::device_certificate_on(conn, profile, device_serial))
    }

    fn device_certificates(
        &self,
        profile: &str,
        device_serials: &[&str],
    ) -> Result<Vec<Option<DeviceCertificate>>, StoreError> {
        // A plain (not memory-mapped) reader: over a million-device batch the mapped pages
        // of the device index would all count as the server's resident memory.
        self.read(|conn| {
            conn.execute_batch("BEGIN")?;
            let r: Result<Vec<_>, StoreError> = device_serials
                .iter()
                .map(|d| Self::device_certificate_on(conn, profile, d))
                .collect();
            let end = conn.execute_batch(if r.is_ok() { "COMMIT" } else { "ROLLBACK" });
            let found = r?;
            end?;
            Ok(found)
        })
    }
}
