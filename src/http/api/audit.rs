//! `GET /api/v1/audit`: the audit trail, newest first, in pages (officers only: it names every
//! publisher's records), filtered by actor, kind of action, object and time.

use super::*;
use crate::store::AuditSearch;

/// `since`/`until` of a query: a date or an RFC 3339 time.
fn time_query(q: &[(String, String)], name: &str) -> Result<Option<i64>, Error> {
    match param(q, name) {
        None => Ok(None),
        Some(v) => crate::timespec::parse(&v).map(Some).ok_or_else(|| {
            Refusal::BadParameter(format!("{name} '{v}' is not {}", crate::timespec::FORMS)).into()
        }),
    }
}

pub(super) fn list_audit_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let (cursor, limit) = page(&c.q)?;
    let search = AuditSearch {
        actor: param(&c.q, "actor"),
        action: param(&c.q, "kind").map(AuditSearch::kind),
        subject: param(&c.q, "object"),
        from: time_query(&c.q, "since")?,
        to: time_query(&c.q, "until")?,
        before: cursor,
        limit,
    };
    let page = c.hm.audit_for(c.cred()?, &search)?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": rfc3339(e.at),
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": page.next.map(|n| n.to_string())}),
    ))
}
