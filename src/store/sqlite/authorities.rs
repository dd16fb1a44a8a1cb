//! CAs and publishers in SQLite: the records a hallmark issues under and for
//! ([`AuthoritiesWrite`], [`AuthoritiesRead`]).

use rusqlite::{params, OptionalExtension};

use super::{audit, is_unique_violation, SqliteStore};
use crate::store::*;

const CA_COLS: &str = "name, role, parent, purpose, key_store, key_label, key_algorithm, csr_der, cert_der, serial, subject, not_before, not_after, created_at";

fn ca_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(CaRecord, String)> {
    Ok((
        CaRecord {
            name: r.get(0)?,
            role: CaRole::Root,
            parent: r.get(2)?,
            purpose: r.get(3)?,
            key_store: r.get(4)?,
            key_label: r.get(5)?,
            key_algorithm: r.get(6)?,
            csr_der: r.get(7)?,
            cert_der: r.get(8)?,
            serial: r.get(9)?,
            subject: r.get(10)?,
            not_before: r.get(11)?,
            not_after: r.get(12)?,
            created_at: r.get(13)?,
        },
        r.get(1)?,
    ))
}

fn finish_ca((mut ca, role): (CaRecord, String)) -> Result<CaRecord, StoreError> {
    ca.role = CaRole::parse(&role)?;
    Ok(ca)
}

fn publisher_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Publisher, String)> {
    Ok((
        Publisher {
            id: r.get(0)?,
            org: r.get(1)?,
            country: r.get(2)?,
            state: r.get(3)?,
            locality: r.get(4)?,
            profiles: Vec::new(),
            created_at: r.get(6)?,
        },
        r.get(5)?,
    ))
}

fn finish_publisher((mut p, profiles): (Publisher, String)) -> Result<Publisher, StoreError> {
    p.profiles = serde_json::from_str(&profiles)
        .map_err(|e| StoreError::Schema(format!("publisher {} profiles: {e}", p.id)))?;
    Ok(p)
}

impl AuthoritiesWrite for SqliteStore {
    fn insert_ca(&self, ca: &CaRecord, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = tx.execute(
            &format!("INSERT INTO cas ({CA_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"),
            params![
                ca.name,
                ca.role.as_str(),
                ca.parent,
                ca.purpose,
                ca.key_store,
                ca.key_label,
                ca.key_algorithm,
                ca.csr_der,
                ca.cert_der,
                ca.serial,
                ca.subject,
                ca.not_before,
                ca.not_after,
                ca.created_at
            ],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("CA '{}'", ca.name)))
            }
            r => r?,
        };
        let action = if ca.cert_der.is_some() {
            "ca.created"
        } else {
            "ca.csr_created"
        };
        audit(
            &tx,
            self.now(),
            actor,
            action,
            &ca.name,
            ca.subject.as_deref(),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn set_ca_certificate(&self, ca: &CaRecord, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE cas SET cert_der = ?2, serial = ?3, subject = ?4, not_before = ?5, not_after = ?6, parent = ?7 WHERE name = ?1",
            params![ca.name, ca.cert_der, ca.serial, ca.subject, ca.not_before, ca.not_after, ca.parent],
        )?;
        if n != 1 {
            return Err(StoreError::NotFound(format!("CA '{}'", ca.name)));
        }
        audit(
            &tx,
            self.now(),
            actor,
            "ca.certificate_imported",
            &ca.name,
            ca.serial.as_deref(),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn add_publisher(&self, p: &Publisher, actor: &str) -> Result<(), StoreError> {
        let profiles =
            serde_json::to_string(&p.profiles).map_err(|e| StoreError::Schema(e.to_string()))?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = tx.execute(
            "INSERT INTO publishers (id, org, country, state, locality, profiles, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7)",
            params![p.id, p.org, p.country, p.state, p.locality, profiles, p.created_at],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("publisher '{}'", p.id)))
            }
            r => r?,
        };
        let detail = format!(
            "O={}, C={}, ST={}, L={}, profiles={}",
            p.org,
            p.country,
            p.state.as_deref().unwrap_or("-"),
            p.locality.as_deref().unwrap_or("-"),
            profiles
        );
        audit(
            &tx,
            self.now(),
            actor,
            "publisher.added",
            &p.id,
            Some(&detail),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn set_publisher_profiles(
        &self,
        id: &str,
        profiles: &[String],
        actor: &str,
    ) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(profiles).map_err(|e| StoreError::Schema(e.to_string()))?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE publishers SET profiles = ?2 WHERE id = ?1 AND disabled = 0",
            params![id, json],
        )?;
        if n != 1 {
            return Err(StoreError::NotFound(format!("publisher '{id}'")));
        }
        audit(
            &tx,
            self.now(),
            actor,
            "publisher.profiles_changed",
            id,
            Some(&json),
        )?;
        tx.commit()?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn renew_ca_certificate(
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
            self.now(),
            actor,
            "ca.certificate_renewed",
            name,
            Some(&format!("serial {serial}, notAfter {not_after}")),
        )?;
        tx.commit()?;
        Ok(())
    }
}

impl AuthoritiesRead for SqliteStore {
    fn get_ca(&self, name: &str) -> Result<Option<CaRecord>, StoreError> {
        self.cached(
            |c| &mut c.cas,
            name,
            || {
                let row = self.read(|conn| {
                    Ok(conn
                        .prepare_cached(&format!("SELECT {CA_COLS} FROM cas WHERE name = ?1"))?
                        .query_row(params![name], ca_from_row)
                        .optional()?)
                })?;
                row.map(finish_ca).transpose()
            },
        )
    }

    fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {CA_COLS} FROM cas ORDER BY CASE role WHEN 'root' THEN 0 WHEN 'issuing' THEN 1 ELSE 2 END, name"
        ))?;
        let rows = stmt.query_map([], ca_from_row)?;
        rows.map(|r| finish_ca(r?)).collect()
    }

    fn get_publisher(&self, id: &str) -> Result<Option<Publisher>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT id, org, country, state, locality, profiles, created_at FROM publishers WHERE id = ?1 AND disabled = 0",
                params![id],
                publisher_from_row,
            )
            .optional()?;
        row.map(finish_publisher).transpose()
    }

    fn list_publishers(&self) -> Result<Vec<Publisher>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT id, org, country, state, locality, profiles, created_at FROM publishers WHERE disabled = 0 ORDER BY id",
        )?;
        let rows = stmt.query_map([], publisher_from_row)?;
        rows.map(|r| finish_publisher(r?)).collect()
    }
}
