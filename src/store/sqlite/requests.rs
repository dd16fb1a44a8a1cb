//! Certificate requests waiting for approvals, and the approvals themselves.

use rusqlite::{params, OptionalExtension};

use super::{audit, is_unique_violation, SqliteStore};
use crate::store::*;

pub(super) const COLS: &str = "id, profile, publisher, requester, csr_der, status, created_at, expires_at, decided_at, device_serial, cn_name, approvals_required, certificate_serial, identity";

pub(super) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRecord> {
    Ok(RequestRecord {
        id: r.get(0)?,
        profile: r.get(1)?,
        publisher: r.get(2)?,
        requester: r.get(3)?,
        csr_der: r.get(4)?,
        status: r.get(5)?,
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
        decided_at: r.get(8)?,
        device_serial: r.get(9)?,
        cn_name: r.get(10)?,
        approvals_required: r.get(11)?,
        certificate_serial: r.get(12)?,
        identity: r.get(13)?,
    })
}

impl SqliteStore {
    /// The decisions on a request of `kind` (`certificate` or `signature`), oldest first.
    pub(super) fn decisions(
        &self,
        kind: &str,
        request_id: i64,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT approver, decision, comment, created_at FROM approvals WHERE request_kind = ?1 AND request_id = ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![kind, request_id], |r| {
                Ok(ApprovalRecord {
                    approver: r.get(0)?,
                    decision: r.get(1)?,
                    comment: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

impl RequestsWrite for SqliteStore {
    fn insert_pending_request(&self, n: &NewRequest, actor: &str) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO requests (profile, publisher, requester, csr_der, status, created_at, expires_at, device_serial, cn_name, approvals_required, identity)
             VALUES (?1,?2,?3,?4,'pending',?5,?6,?7,?8,?9,?10)",
            params![n.profile, n.publisher, n.requester, n.csr_der, self.now(), n.expires_at, n.device_serial, n.cn_name, n.approvals_required, n.identity],
        )?;
        let id = tx.last_insert_rowid();
        audit(
            &tx,
            self.now(),
            actor,
            "request.pending",
            &id.to_string(),
            Some(&format!(
                "profile={} publisher={} approvals={}",
                n.profile, n.publisher, n.approvals_required
            )),
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn record_decision(
        &self,
        request_id: i64,
        approver: &str,
        approve: bool,
        comment: Option<&str>,
        actor: &str,
    ) -> Result<Decision, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let d = decide(
            &tx,
            &CERTIFICATE,
            request_id,
            (approver, approve, comment),
            actor,
            self.now(),
        )?;
        tx.commit()?;
        Ok(d)
    }

    fn cancel_request(&self, request_id: i64, actor: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE requests SET status = 'cancelled', decided_at = ?2 WHERE id = ?1 AND status = 'pending'",
            params![request_id, self.now()],
        )?;
        if n == 1 {
            audit(
                &tx,
                self.now(),
                actor,
                "request.cancelled",
                &request_id.to_string(),
                None,
            )?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    fn finish_request(
        &self,
        request_id: i64,
        status: super::RequestStatus,
        serial: Option<&str>,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // The only moves: pending -> expired or denied, claimed (approved) -> issued or denied.
        let from = match status {
            RequestStatus::Expired => Some(RequestStatus::Pending),
            RequestStatus::Issued => Some(RequestStatus::Approved),
            RequestStatus::Denied => None,
            RequestStatus::Pending | RequestStatus::Approved | RequestStatus::Cancelled => {
                return Ok(false)
            }
        };
        let n = tx.execute(
            "UPDATE requests SET status = ?2, decided_at = ?3, certificate_serial = coalesce(?4, certificate_serial)
             WHERE id = ?1 AND (status = 'pending' OR (status = 'approved' AND approvals_required > 0))
               AND (?5 IS NULL OR status = ?5)",
            params![request_id, status, self.now(), serial, from],
        )?;
        if n == 1 {
            audit(
                &tx,
                self.now(),
                actor,
                &format!("request.{status}"),
                &request_id.to_string(),
                serial,
            )?;
        }
        tx.commit()?;
        Ok(n == 1)
    }
}

impl RequestsRead for SqliteStore {
    fn get_request(&self, id: i64) -> Result<Option<RequestRecord>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {COLS} FROM requests WHERE id = ?1"),
                params![id],
                from_row,
            )
            .optional()?)
    }

    fn list_requests(
        &self,
        status: Option<RequestStatus>,
        publisher: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLS} FROM requests WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR publisher = ?2)
                   AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows =
                stmt.query_map(params![status, publisher, limit as i64, before], from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn approvals(&self, request_id: i64) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.decisions("certificate", request_id)
    }

    fn claimed_requests(&self) -> Result<Vec<RequestRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLS} FROM requests WHERE status = 'approved' AND approvals_required > 0 ORDER BY id"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// One kind of request that waits for approvals. Certificate requests and signature requests
/// go through the same steps — read the request, record the approver's decision once, count,
/// and on the quorum (or a denial) move the request on, all in the caller's transaction, so
/// exactly one decision claims it — with the same refusals and messages.
pub(super) struct Workflow {
    /// The table of the requests.
    table: &'static str,
    /// `approvals.request_kind`.
    kind: &'static str,
    /// How a message names one ("request 7", "signature request 7").
    noun: &'static str,
    /// The audit trail's family of its actions (`request.approved`, `signature.denied`).
    audit: &'static str,
    /// The status the approval that completes the quorum gives it.
    claimed: &'static str,
    /// Whether that approval also decides it (`decided_at`): a certificate request is decided
    /// when approved; a signature request when its signature is made or fails.
    claim_decides: bool,
}

pub(super) const CERTIFICATE: Workflow = Workflow {
    table: "requests",
    kind: "certificate",
    noun: "request",
    audit: "request",
    claimed: "approved",
    claim_decides: true,
};

pub(super) const SIGNATURE: Workflow = Workflow {
    table: "signature_requests",
    kind: "signature",
    noun: "signature request",
    audit: "signature",
    claimed: "signing",
    claim_decides: false,
};

/// Records `approver`'s decision on request `id` of workflow `w`, in `tx`: a request that is
/// not pending is [`StoreError::Decided`], a second decision by the same approver
/// [`StoreError::Conflict`]; a denial ends the request, the approval that reaches the quorum
/// claims it.
pub(super) fn decide(
    tx: &rusqlite::Connection,
    w: &Workflow,
    id: i64,
    (approver, approve, comment): (&str, bool, Option<&str>),
    actor: &str,
    at: i64,
) -> Result<Decision, StoreError> {
    let row: Option<(String, i64)> = tx
        .query_row(
            &format!(
                "SELECT status, approvals_required FROM {} WHERE id = ?1",
                w.table
            ),
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let required = match row {
        None => return Err(StoreError::NotFound(format!("{} {id}", w.noun))),
        Some((status, required)) if status == "pending" => required,
        Some((status, _)) => {
            return Err(StoreError::Decided(format!(
                "{} {id} is {status}; it can no longer be decided",
                w.noun
            )))
        }
    };
    let decision = if approve { "approve" } else { "deny" };
    let r = tx.execute(
        "INSERT INTO approvals (request_kind, request_id, approver, decision, comment, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![w.kind, id, approver, decision, comment, at],
    );
    match r {
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict(format!(
                "a decision by '{approver}' on {} {id}",
                w.noun
            )))
        }
        r => r?,
    };
    let approvals: i64 = tx.query_row(
        "SELECT count(*) FROM approvals WHERE request_kind = ?1 AND request_id = ?2 AND decision = 'approve'",
        params![w.kind, id],
        |r| r.get(0),
    )?;
    let claimed = approve && approvals >= required;
    if !approve {
        tx.execute(
            &format!(
                "UPDATE {} SET status = 'denied', decided_at = ?2 WHERE id = ?1 AND status = 'pending'",
                w.table
            ),
            params![id, at],
        )?;
    } else if claimed {
        tx.execute(
            &format!(
                "UPDATE {} SET status = ?2, decided_at = CASE WHEN ?3 THEN ?4 ELSE decided_at END WHERE id = ?1 AND status = 'pending'",
                w.table
            ),
            params![id, w.claimed, w.claim_decides, at],
        )?;
    }
    audit(
        tx,
        at,
        actor,
        &format!(
            "{}.{}",
            w.audit,
            if approve { "approved" } else { "denied" }
        ),
        &id.to_string(),
        comment,
    )?;
    Ok(Decision { approvals, claimed })
}
