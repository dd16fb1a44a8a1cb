//! The console's searches and activity counts on SQLite: parameters bound, never spliced;
//! free text matched with LIKE, its wildcards escaped.

use rusqlite::params;

use super::issuance::{cert_from_row, CERT_COLS};
use super::requests::{from_row as request_from_row, COLS as REQUEST_COLS};
use super::signing::{req_from_row, signature_from_row, REQ_COLS, SIGNATURE_COLS};
use super::{audit_event_from_row, SqliteStore};
use crate::store::*;

/// TEXT for a `LIKE ... ESCAPE '\'` pattern, its `%`, `_` and `\` taken literally.
fn like_literal(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// `%TEXT%`: a pattern finding TEXT anywhere.
fn contains(text: &Option<String>) -> Option<String> {
    text.as_deref().map(|t| format!("%{}%", like_literal(t)))
}

fn limit(l: usize) -> i64 {
    if l == 0 {
        100
    } else {
        l as i64
    }
}

/// The audit trail searched (`AuditRead::search_audit`), beside the other LIKE searches.
pub(super) fn search_audit(
    store: &SqliteStore,
    s: &AuditSearch,
) -> Result<Vec<AuditEvent>, StoreError> {
    // `request.` finds every request.* action; anything else is an action's exact name.
    let (exact, prefix) = match &s.action {
        Some(a) if a.ends_with('.') => (None, Some(format!("{}%", like_literal(a)))),
        Some(a) => (Some(a.clone()), None),
        None => (None, None),
    };
    store.read(|conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT id, at, actor, action, subject, detail FROM audit
             WHERE (?1 IS NULL OR actor LIKE ?1 ESCAPE '\\')
               AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR action LIKE ?3 ESCAPE '\\')
               AND (?4 IS NULL OR subject = ?4)
               AND (?5 IS NULL OR at >= ?5) AND (?6 IS NULL OR at < ?6)
               AND (?7 IS NULL OR id < ?7)
             ORDER BY id DESC LIMIT ?8",
        )?;
        let rows = stmt.query_map(
            params![
                contains(&s.actor),
                exact,
                prefix,
                s.subject,
                s.from,
                s.to,
                s.before,
                limit(s.limit)
            ],
            audit_event_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    })
}

impl ConsoleRead for SqliteStore {
    fn requests_page(&self, q: &RequestsQuery<'_>) -> Result<RequestsPageRecords, StoreError> {
        self.read(|conn| {
            // One read transaction: one snapshot and one WAL read lock for the whole page.
            conn.execute_batch("BEGIN")?;
            let page = requests_page_in(conn, q);
            let end = conn.execute_batch(if page.is_ok() { "COMMIT" } else { "ROLLBACK" });
            let page = page?;
            end?;
            Ok(page)
        })
    }

    fn search_signatures(&self, s: &SignatureSearch) -> Result<Vec<SignatureRecord>, StoreError> {
        let cols = SIGNATURE_COLS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let digest = s.digest.as_ref().map(|d| {
            let mut p: String = d
                .chars()
                .filter(char::is_ascii_hexdigit)
                .collect::<String>()
                .to_ascii_lowercase();
            p.push('%');
            p
        });
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {cols} FROM signatures s LEFT JOIN keys k ON k.label = s.key_label
                 WHERE (?1 IS NULL OR s.key_label = ?1) AND (?2 IS NULL OR k.publisher = ?2)
                   AND (?3 IS NULL OR s.digest LIKE ?3)
                   AND (?4 IS NULL OR s.metadata LIKE ?4 ESCAPE '\\' OR s.requester LIKE ?4 ESCAPE '\\'
                        OR s.identity LIKE ?4 ESCAPE '\\' OR s.approvers LIKE ?4 ESCAPE '\\')
                   AND (?5 IS NULL OR s.created_at >= ?5) AND (?6 IS NULL OR s.created_at < ?6)
                   AND (?7 IS NULL OR s.id < ?7)
                 ORDER BY s.id DESC LIMIT ?8"
            ))?;
            let rows = stmt.query_map(
                params![
                    s.key,
                    s.publisher,
                    digest,
                    contains(&s.text),
                    s.from,
                    s.to,
                    s.before,
                    limit(s.limit)
                ],
                signature_from_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn search_certificates(&self, s: &CertSearch) -> Result<Vec<CertRecord>, StoreError> {
        let validity = s.validity.map(|v| match v {
            Validity::Valid => "valid",
            Validity::Revoked => "revoked",
            Validity::Expired => "expired",
        });
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CERT_COLS} FROM certificates c WHERE status = 'issued'
                   AND (?1 IS NULL OR publisher = ?1) AND (?2 IS NULL OR profile = ?2)
                   AND (?3 IS NULL OR ca = ?3) AND (?4 IS NULL OR serial > ?4)
                   AND (?5 IS NULL
                        OR (?5 = 'revoked' AND EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial))
                        OR (?5 = 'valid' AND not_after > ?6 AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial))
                        OR (?5 = 'expired' AND not_after <= ?6 AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial)))
                 ORDER BY serial LIMIT ?7"
            ))?;
            let rows = stmt.query_map(
                params![s.publisher, s.profile, s.ca, s.after, validity, s.at, limit(s.limit)],
                cert_from_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn certificates_ending(
        &self,
        now: i64,
        by: i64,
        publisher: Option<&str>,
        n: usize,
    ) -> Result<Vec<CertRecord>, StoreError> {
        self.read(|conn| {
            // `station IS NULL` lets the partial index certificates_by_not_after find them.
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CERT_COLS} FROM certificates c
                 WHERE station IS NULL AND status = 'issued' AND not_after > ?1 AND not_after <= ?2
                   AND (?3 IS NULL OR publisher = ?3)
                   AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial)
                 ORDER BY not_after LIMIT ?4"
            ))?;
            let rows = stmt.query_map(params![now, by, publisher, limit(n)], cert_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn signature_activity(
        &self,
        key: &str,
        since: i64,
        period: i64,
    ) -> Result<Activity, StoreError> {
        self.read(|conn| {
            let last = conn
                .prepare_cached("SELECT max(created_at) FROM signatures WHERE key_label = ?1")?
                .query_row(params![key], |r| r.get(0))?;
            let mut stmt = conn.prepare_cached(
                "SELECT (created_at / ?3) * ?3 AS p, count(*) FROM signatures
                 WHERE key_label = ?1 AND created_at >= ?2 GROUP BY p ORDER BY p",
            )?;
            let rows = stmt.query_map(params![key, since, period.max(1)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(Activity {
                last,
                counts: rows.collect::<Result<_, _>>()?,
            })
        })
    }

    fn station_activity(
        &self,
        station: &str,
        since: i64,
        period: i64,
    ) -> Result<Activity, StoreError> {
        self.read(|conn| {
            let last = conn
                .prepare_cached("SELECT max(created_at) FROM certificates WHERE station = ?1")?
                .query_row(params![station], |r| r.get(0))?;
            let mut stmt = conn.prepare_cached(
                "SELECT (created_at / ?3) * ?3 AS p, count(*) FROM certificates
                 WHERE station = ?1 AND status = 'issued' AND created_at >= ?2
                 GROUP BY p ORDER BY p",
            )?;
            let rows = stmt.query_map(params![station, since, period.max(1)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(Activity {
                last,
                counts: rows.collect::<Result<_, _>>()?,
            })
        })
    }
}

fn requests_page_in(
    conn: &rusqlite::Connection,
    q: &RequestsQuery<'_>,
) -> Result<RequestsPageRecords, StoreError> {
    let mut out = RequestsPageRecords::default();
    // Partial indexes hold the pending requests, and the ended ones, in id order: a page reads
    // its rows and stops, however many of the other kind there are.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REQ_COLS} FROM signature_requests INDEXED BY signature_requests_pending
         WHERE status = 'pending' AND (?1 IS NULL OR publisher = ?1) AND (?2 IS NULL OR id < ?2)
         ORDER BY id DESC LIMIT ?3"
    ))?;
    out.signatures = stmt
        .query_map(
            params![q.publisher, q.signatures_before, limit(q.pending)],
            req_from_row,
        )?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REQUEST_COLS} FROM requests INDEXED BY requests_pending
         WHERE status = 'pending' AND (?1 IS NULL OR publisher = ?1) AND (?2 IS NULL OR id < ?2)
         ORDER BY id DESC LIMIT ?3"
    ))?;
    out.certificates = stmt
        .query_map(
            params![q.publisher, q.certificates_before, limit(q.pending)],
            request_from_row,
        )?
        .collect::<Result<_, _>>()?;
    out.pending_certificates = conn
        .prepare_cached(
            "SELECT count(*) FROM requests WHERE status = 'pending' AND (?1 IS NULL OR publisher = ?1)",
        )?
        .query_row(params![q.publisher], |r| r.get(0))?;
    out.pending_signatures = conn
        .prepare_cached(
            "SELECT count(*) FROM signature_requests WHERE status = 'pending' AND (?1 IS NULL OR publisher = ?1)",
        )?
        .query_row(params![q.publisher], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REQUEST_COLS} FROM requests INDEXED BY requests_decided
         WHERE status != 'pending' AND approvals_required > 0 AND (?1 IS NULL OR publisher = ?1)
         ORDER BY id DESC LIMIT ?2"
    ))?;
    out.decided_certificates = stmt
        .query_map(params![q.publisher, limit(q.decided)], request_from_row)?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REQ_COLS} FROM signature_requests INDEXED BY signature_requests_ended
         WHERE status != 'pending' AND (?1 IS NULL OR publisher = ?1)
         ORDER BY id DESC LIMIT ?2"
    ))?;
    out.decided_signatures = stmt
        .query_map(params![q.publisher, limit(q.decided)], req_from_row)?
        .collect::<Result<_, _>>()?;
    let ids = |a: &[i64], b: &[i64]| {
        let all: Vec<i64> = a.iter().chain(b).copied().collect();
        serde_json::to_string(&all).map_err(|e| StoreError::Backend(e.to_string()))
    };
    let sig_ids = ids(
        &out.signatures.iter().map(|r| r.id).collect::<Vec<_>>(),
        &out.decided_signatures
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
    )?;
    let cert_ids = ids(
        &out.certificates.iter().map(|r| r.id).collect::<Vec<_>>(),
        &out.decided_certificates
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
    )?;
    let mut stmt = conn.prepare_cached(
        "SELECT request_id, approver, decision, comment, created_at FROM approvals
         WHERE request_kind = ?1 AND request_id IN (SELECT value FROM json_each(?2))
         ORDER BY id",
    )?;
    for (kind, list) in [("signature", &sig_ids), ("certificate", &cert_ids)] {
        let rows = stmt.query_map(params![kind, list], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                ApprovalRecord {
                    approver: r.get(1)?,
                    decision: r.get(2)?,
                    comment: r.get(3)?,
                    created_at: r.get(4)?,
                },
            ))
        })?;
        let map = if kind == "signature" {
            &mut out.signature_approvals
        } else {
            &mut out.certificate_approvals
        };
        for row in rows {
            let (id, a) = row?;
            map.entry(id).or_default().push(a);
        }
    }
    Ok(out)
}
