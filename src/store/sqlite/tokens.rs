//! API token records: only the hash of the secret is stored.

use rusqlite::{params, OptionalExtension};

use super::{audit, is_unique_violation, SqliteStore};
use crate::store::*;

const COLS: &str = "id, name, hash, publisher, officer, scopes, expires_at, revoked_at, created_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        hash: r.get(2)?,
        publisher: r.get(3)?,
        officer: r.get::<_, i64>(4)? != 0,
        scopes: r.get(5)?,
        expires_at: r.get(6)?,
        revoked_at: r.get(7)?,
        created_at: r.get(8)?,
    })
}

impl TokensWrite for SqliteStore {
    fn insert_token(&self, t: &TokenRecord, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = tx.execute(
            &format!("INSERT INTO tokens ({COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
            params![
                t.id,
                t.name,
                t.hash,
                t.publisher,
                i64::from(t.officer),
                t.scopes,
                t.expires_at,
                t.revoked_at,
                t.created_at
            ],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("token '{}'", t.id)))
            }
            r => r?,
        };
        let detail = format!(
            "name={} publisher={} officer={} scopes={}",
            t.name,
            t.publisher.as_deref().unwrap_or("-"),
            t.officer,
            t.scopes
        );
        audit(
            &tx,
            self.now(),
            actor,
            "token.created",
            &t.id,
            Some(&detail),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn revoke_token(&self, id: &str, at: i64, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: Option<Option<i64>> = tx
            .query_row(
                "SELECT revoked_at FROM tokens WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        match current {
            None => return Err(StoreError::NotFound(format!("token '{id}'"))),
            Some(Some(_)) => {
                return Err(StoreError::Conflict(format!(
                    "a revocation of token '{id}'"
                )))
            }
            Some(None) => {}
        }
        tx.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
        audit(&tx, self.now(), actor, "token.revoked", id, None)?;
        tx.commit()?;
        Ok(())
    }

    fn insert_session(&self, s: &SessionRecord, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM ui_sessions WHERE expires_at <= ?1",
            params![s.created_at],
        )?;
        let r = tx.execute(
            &format!("INSERT INTO ui_sessions ({SESSION_COLS}) VALUES (?1,?2,?3,?4,?5,?6)"),
            params![
                s.id_hash,
                s.token_id,
                s.created_at,
                s.last_seen,
                s.expires_at,
                s.person
            ],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("a session with this id".into()))
            }
            r => r?,
        };
        let detail = format!("until={}", rfc3339(s.expires_at));
        audit(
            &tx,
            self.now(),
            actor,
            "session.created",
            &s.token_id,
            Some(&detail),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn touch_session(&self, id_hash: &str, at: i64) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE ui_sessions SET last_seen = ?2 WHERE id_hash = ?1 AND last_seen < ?2",
            params![id_hash, at],
        )?;
        Ok(())
    }

    fn end_session(&self, id_hash: &str, actor: Option<&str>) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let token: Option<String> = tx
            .query_row(
                "DELETE FROM ui_sessions WHERE id_hash = ?1 RETURNING token_id",
                params![id_hash],
                |r| r.get(0),
            )
            .optional()?;
        if let (Some(token), Some(actor)) = (token, actor) {
            audit(&tx, self.now(), actor, "session.ended", &token, None)?;
        }
        tx.commit()?;
        Ok(())
    }
}

const SESSION_COLS: &str = "id_hash, token_id, created_at, last_seen, expires_at, person";

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: r.get(0)?,
        token_id: r.get(1)?,
        created_at: r.get(2)?,
        last_seen: r.get(3)?,
        expires_at: r.get(4)?,
        person: r.get(5)?,
    })
}

impl TokensRead for SqliteStore {
    fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        // Every API request authenticates: from the record cache, else a read connection.
        self.cached(
            |c| &mut c.tokens,
            id,
            || {
                self.read(|conn| {
                    Ok(conn
                        .prepare_cached(&format!("SELECT {COLS} FROM tokens WHERE id = ?1"))?
                        .query_row(params![id], from_row)
                        .optional()?)
                })
            },
        )
    }

    fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLS} FROM ui_sessions WHERE id_hash = ?1"
                ))?
                .query_row(params![id_hash], session_from_row)
                .optional()?)
        })
    }

    fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLS} FROM tokens ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
