//! ACME records (RFC 8555): EAB keys, accounts, nonces, orders, authorizations, challenges.
//!
//! Nonces are single-use because taking one deletes its row; every other state change writes
//! an audit event in the same transaction, like the rest of the store.

use rusqlite::{params, Connection, OptionalExtension};

use super::{audit, is_unique_violation, SqliteStore};
use crate::store::*;

const EAB_COLS: &str = "kid, publisher, hmac_key, created_at, revoked_at, account_id";

const ACCOUNT_COLS: &str =
    "id, directory, publisher, jwk, thumbprint, status, contact, eab_kid, created_at";

const ORDER_COLS: &str = "id, account_id, directory, status, identifiers, not_before, not_after, expires_at, error, cert_serial, created_at";

const AUTHZ_COLS: &str = "id, order_id, account_id, id_type, id_value, status, expires_at";

const CHALLENGE_COLS: &str = "id, authz_id, kind, token, status, validated_at, error";

fn eab_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EabKey> {
    Ok(EabKey {
        kid: r.get(0)?,
        publisher: r.get(1)?,
        hmac_key: r.get(2)?,
        created_at: r.get(3)?,
        revoked_at: r.get(4)?,
        account_id: r.get(5)?,
    })
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AcmeAccount> {
    Ok(AcmeAccount {
        id: r.get(0)?,
        directory: r.get(1)?,
        publisher: r.get(2)?,
        jwk: r.get(3)?,
        thumbprint: r.get(4)?,
        status: r.get(5)?,
        contact: r.get(6)?,
        eab_kid: r.get(7)?,
        created_at: r.get(8)?,
    })
}

fn order_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AcmeOrder> {
    Ok(AcmeOrder {
        id: r.get(0)?,
        account_id: r.get(1)?,
        directory: r.get(2)?,
        status: r.get(3)?,
        identifiers: r.get(4)?,
        not_before: r.get(5)?,
        not_after: r.get(6)?,
        expires_at: r.get(7)?,
        error: r.get(8)?,
        cert_serial: r.get(9)?,
        created_at: r.get(10)?,
    })
}

fn authz_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AcmeAuthz> {
    Ok(AcmeAuthz {
        id: r.get(0)?,
        order_id: r.get(1)?,
        account_id: r.get(2)?,
        id_type: r.get(3)?,
        id_value: r.get(4)?,
        status: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

fn challenge_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AcmeChallenge> {
    Ok(AcmeChallenge {
        id: r.get(0)?,
        authz_id: r.get(1)?,
        kind: r.get(2)?,
        token: r.get(3)?,
        status: r.get(4)?,
        validated_at: r.get(5)?,
        error: r.get(6)?,
    })
}

/// Orders and authorizations whose time ran out become invalid (RFC 8555 §7.1.6).
fn expire(tx: &Connection, t: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE acme_authzs SET status = 'expired' WHERE status IN ('pending', 'valid') AND expires_at <= ?1",
    )?
    .execute(params![t])?;
    tx.prepare_cached(
        "UPDATE acme_orders SET status = 'invalid' WHERE status IN ('pending', 'ready') AND expires_at <= ?1",
    )?
    .execute(params![t])?;
    Ok(())
}

impl AcmeWrite for SqliteStore {
    fn insert_eab_key(&self, k: &EabKey, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = tx.execute(
            &format!("INSERT INTO acme_eab_keys ({EAB_COLS}) VALUES (?1,?2,?3,?4,?5,?6)"),
            params![
                k.kid,
                k.publisher,
                k.hmac_key,
                k.created_at,
                k.revoked_at,
                k.account_id
            ],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("EAB key '{}'", k.kid)))
            }
            r => r?,
        };
        audit(
            &tx,
            self.now(),
            actor,
            "acme.eab.create",
            &k.kid,
            Some(&format!("publisher={}", k.publisher)),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn replace_eab_hmac(&self, kid: &str, old: &[u8], sealed: &[u8]) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE acme_eab_keys SET hmac_key = ?3 WHERE kid = ?1 AND hmac_key = ?2",
            params![kid, old, sealed],
        )?;
        Ok(())
    }

    fn revoke_eab_key(&self, kid: &str, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE acme_eab_keys SET revoked_at = ?2 WHERE kid = ?1 AND revoked_at IS NULL",
            params![kid, self.now()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("unrevoked EAB key '{kid}'")));
        }
        audit(&tx, self.now(), actor, "acme.eab.revoke", kid, None)?;
        tx.commit()?;
        Ok(())
    }

    fn insert_acme_nonce(&self, nonce: &str, expires_at: i64) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached("INSERT INTO acme_nonces (nonce, expires_at) VALUES (?1, ?2)")?
            .execute(params![nonce, expires_at])?;
        // Nonces are random: one insert in 64 (those starting with 'A') sweeps expired ones.
        if nonce.as_bytes().first().is_some_and(|b| *b == b'A') {
            conn.prepare_cached("DELETE FROM acme_nonces WHERE expires_at <= ?1")?
                .execute(params![self.now()])?;
        }
        Ok(())
    }

    fn take_acme_nonce(&self, nonce: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .prepare_cached("DELETE FROM acme_nonces WHERE nonce = ?1 AND expires_at > ?2")?
            .execute(params![nonce, self.now()])?;
        if n == 0 {
            conn.prepare_cached("DELETE FROM acme_nonces WHERE nonce = ?1")?
                .execute(params![nonce])?;
        }
        Ok(n == 1)
    }

    fn insert_acme_account(&self, a: &AcmeAccount, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(kid) = &a.eab_kid {
            let n = tx.execute(
                "UPDATE acme_eab_keys SET account_id = ?2 WHERE kid = ?1 AND account_id IS NULL AND revoked_at IS NULL",
                params![kid, a.id],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "an account bound with EAB key '{kid}'"
                )));
            }
        }
        let r = tx.execute(
            &format!(
                "INSERT INTO acme_accounts ({ACCOUNT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"
            ),
            params![
                a.id,
                a.directory,
                a.publisher,
                a.jwk,
                a.thumbprint,
                a.status,
                a.contact,
                a.eab_kid,
                a.created_at
            ],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("an account with this key".into()))
            }
            r => r?,
        };
        audit(
            &tx,
            self.now(),
            actor,
            "acme.account.create",
            &a.id,
            Some(&format!(
                "directory={} publisher={} eab={}",
                a.directory,
                a.publisher,
                a.eab_kid.as_deref().unwrap_or("-")
            )),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn update_acme_account(
        &self,
        id: &str,
        contact: Option<&str>,
        status: Option<AcmeAccountStatus>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(c) = contact {
            tx.execute(
                "UPDATE acme_accounts SET contact = ?2 WHERE id = ?1",
                params![id, c],
            )?;
            audit(&tx, self.now(), actor, "acme.account.update", id, Some(c))?;
        }
        if let Some(s) = status {
            tx.execute(
                "UPDATE acme_accounts SET status = ?2 WHERE id = ?1",
                params![id, s],
            )?;
            if s == AcmeAccountStatus::Deactivated {
                tx.execute(
                    "UPDATE acme_authzs SET status = 'deactivated' WHERE account_id = ?1 AND status IN ('pending', 'valid')",
                    params![id],
                )?;
            }
            audit(
                &tx,
                self.now(),
                actor,
                "acme.account.status",
                id,
                Some(s.as_str()),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn change_acme_account_key(
        &self,
        id: &str,
        jwk: &str,
        thumbprint: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let r = tx.execute(
            "UPDATE acme_accounts SET jwk = ?2, thumbprint = ?3 WHERE id = ?1",
            params![id, jwk, thumbprint],
        );
        match r {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("an account with this key".into()))
            }
            r => r?,
        };
        audit(
            &tx,
            self.now(),
            actor,
            "acme.account.key-change",
            id,
            Some(thumbprint),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn insert_acme_order(
        &self,
        o: &AcmeOrder,
        authzs: &[(AcmeAuthz, Vec<AcmeChallenge>)],
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            &format!("INSERT INTO acme_orders ({ORDER_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"),
            params![
                o.id,
                o.account_id,
                o.directory,
                o.status,
                o.identifiers,
                o.not_before,
                o.not_after,
                o.expires_at,
                o.error,
                o.cert_serial,
                o.created_at
            ],
        )?;
        for (a, chs) in authzs {
            tx.execute(
                &format!("INSERT INTO acme_authzs ({AUTHZ_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"),
                params![
                    a.id,
                    a.order_id,
                    a.account_id,
                    a.id_type,
                    a.id_value,
                    a.status,
                    a.expires_at
                ],
            )?;
            for c in chs {
                tx.execute(
                    &format!("INSERT INTO acme_challenges ({CHALLENGE_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"),
                    params![
                        c.id,
                        c.authz_id,
                        c.kind,
                        c.token,
                        c.status,
                        c.validated_at,
                        c.error
                    ],
                )?;
            }
        }
        audit(
            &tx,
            self.now(),
            actor,
            "acme.order.create",
            &o.id,
            Some(&format!(
                "account={} directory={} identifiers={}",
                o.account_id, o.directory, o.identifiers
            )),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn start_acme_challenge(&self, id: &str, actor: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE acme_challenges SET status = 'processing' WHERE id = ?1 AND status = 'pending'
               AND authz_id IN (SELECT id FROM acme_authzs WHERE status = 'pending')",
            params![id],
        )?;
        if n == 1 {
            audit(&tx, self.now(), actor, "acme.challenge.start", id, None)?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    fn finish_acme_challenge(
        &self,
        id: &str,
        error: Option<&str>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = self.now();
        let (authz_id, order_id): (String, String) = tx
            .query_row(
                "SELECT c.authz_id, a.order_id FROM acme_challenges c JOIN acme_authzs a ON a.id = c.authz_id WHERE c.id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("ACME challenge {id}")))?;
        match error {
            None => {
                tx.execute(
                    "UPDATE acme_challenges SET status = 'valid', validated_at = ?2 WHERE id = ?1",
                    params![id, t],
                )?;
                tx.execute(
                    "UPDATE acme_authzs SET status = 'valid' WHERE id = ?1 AND status = 'pending'",
                    params![authz_id],
                )?;
                let open: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM acme_authzs WHERE order_id = ?1 AND status != 'valid'",
                    params![order_id],
                    |r| r.get(0),
                )?;
                if open == 0 {
                    tx.execute(
                        "UPDATE acme_orders SET status = 'ready' WHERE id = ?1 AND status = 'pending'",
                        params![order_id],
                    )?;
                }
                audit(&tx, self.now(), actor, "acme.challenge.valid", id, None)?;
            }
            Some(e) => {
                tx.execute(
                    "UPDATE acme_challenges SET status = 'invalid', error = ?2 WHERE id = ?1",
                    params![id, e],
                )?;
                tx.execute(
                    "UPDATE acme_authzs SET status = 'invalid' WHERE id = ?1",
                    params![authz_id],
                )?;
                tx.execute(
                    "UPDATE acme_orders SET status = 'invalid', error = ?2 WHERE id = ?1 AND status IN ('pending', 'ready')",
                    params![order_id, e],
                )?;
                audit(
                    &tx,
                    self.now(),
                    actor,
                    "acme.challenge.invalid",
                    id,
                    Some(e),
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn deactivate_acme_authz(&self, id: &str, actor: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE acme_authzs SET status = 'deactivated' WHERE id = ?1 AND status IN ('pending', 'valid')",
            params![id],
        )?;
        tx.execute(
            "UPDATE acme_orders SET status = 'invalid' WHERE status IN ('pending', 'ready') AND id = (SELECT order_id FROM acme_authzs WHERE id = ?1)",
            params![id],
        )?;
        audit(&tx, self.now(), actor, "acme.authz.deactivate", id, None)?;
        tx.commit()?;
        Ok(())
    }

    fn start_acme_finalize(&self, id: &str, actor: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        expire(&tx, self.now())?;
        let n = tx.execute(
            "UPDATE acme_orders SET status = 'processing' WHERE id = ?1 AND status = 'ready'",
            params![id],
        )?;
        if n == 1 {
            audit(&tx, self.now(), actor, "acme.order.finalize", id, None)?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    fn finish_acme_order(
        &self,
        id: &str,
        outcome: Result<&str, &str>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        match outcome {
            Ok(serial) => {
                tx.execute(
                    "UPDATE acme_orders SET status = 'valid', cert_serial = ?2 WHERE id = ?1",
                    params![id, serial],
                )?;
                audit(&tx, self.now(), actor, "acme.order.valid", id, Some(serial))?;
            }
            Err(e) => {
                tx.execute(
                    "UPDATE acme_orders SET status = 'invalid', error = ?2 WHERE id = ?1",
                    params![id, e],
                )?;
                audit(&tx, self.now(), actor, "acme.order.invalid", id, Some(e))?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl AcmeRead for SqliteStore {
    fn get_eab_key(&self, kid: &str) -> Result<Option<EabKey>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {EAB_COLS} FROM acme_eab_keys WHERE kid = ?1"),
                params![kid],
                eab_row,
            )
            .optional()?)
    }

    fn eab_keys_in_clear(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .list_eab_keys()?
            .into_iter()
            .filter(|k| !crate::store::sealed::is_sealed(&k.hmac_key))
            .map(|k| (k.kid, k.hmac_key))
            .collect())
    }

    fn list_eab_keys(&self) -> Result<Vec<EabKey>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {EAB_COLS} FROM acme_eab_keys ORDER BY created_at, kid"
        ))?;
        let rows = stmt.query_map([], eab_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get_acme_account(&self, id: &str) -> Result<Option<AcmeAccount>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {ACCOUNT_COLS} FROM acme_accounts WHERE id = ?1"),
                params![id],
                account_row,
            )
            .optional()?)
    }

    fn find_acme_account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccount>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {ACCOUNT_COLS} FROM acme_accounts WHERE thumbprint = ?1"),
                params![thumbprint],
                account_row,
            )
            .optional()?)
    }

    fn get_acme_order(&self, id: &str) -> Result<Option<AcmeOrder>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        expire(&tx, self.now())?;
        let o = tx
            .query_row(
                &format!("SELECT {ORDER_COLS} FROM acme_orders WHERE id = ?1"),
                params![id],
                order_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(o)
    }

    fn list_acme_orders(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT id FROM acme_orders WHERE account_id = ?1 AND status IN ('pending', 'ready', 'processing') ORDER BY created_at",
        )?;
        let rows = stmt.query_map(params![account_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get_acme_authz(&self, id: &str) -> Result<Option<AcmeAuthz>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        expire(&tx, self.now())?;
        let a = tx
            .query_row(
                &format!("SELECT {AUTHZ_COLS} FROM acme_authzs WHERE id = ?1"),
                params![id],
                authz_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(a)
    }

    fn acme_authzs_of_order(&self, order_id: &str) -> Result<Vec<AcmeAuthz>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {AUTHZ_COLS} FROM acme_authzs WHERE order_id = ?1 ORDER BY id_type, id_value"
        ))?;
        let rows = stmt.query_map(params![order_id], authz_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn acme_challenges_of_authz(&self, authz_id: &str) -> Result<Vec<AcmeChallenge>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {CHALLENGE_COLS} FROM acme_challenges WHERE authz_id = ?1 ORDER BY kind"
        ))?;
        let rows = stmt.query_map(params![authz_id], challenge_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get_acme_challenge(&self, id: &str) -> Result<Option<AcmeChallenge>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {CHALLENGE_COLS} FROM acme_challenges WHERE id = ?1"),
                params![id],
                challenge_row,
            )
            .optional()?)
    }

    fn acme_order_of_certificate(&self, serial: &str) -> Result<Option<AcmeOrder>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {ORDER_COLS} FROM acme_orders WHERE cert_serial = ?1"),
                params![serial],
                order_row,
            )
            .optional()?)
    }

    fn acme_account_authorized_for(
        &self,
        account_id: &str,
        id_type: &str,
        id_value: &str,
    ) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM acme_authzs WHERE account_id = ?1 AND id_type = ?2 AND id_value = ?3 AND status = 'valid' AND expires_at > ?4",
            params![account_id, id_type, id_value, self.now()],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }
}
