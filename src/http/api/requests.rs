//! `/api/v1/requests`: certificate requests waiting for M-of-N approvals, their decisions and
//! cancellation.

use super::*;

pub(super) fn request_json(r: &RequestRecord, approvals: Option<&RequestView>) -> Value {
    let mut v = json!({
        "id": r.id,
        "status": r.status,
        "profile": r.profile,
        "publisher": r.publisher,
        "requester": r.requester,
        "approvals_required": r.approvals_required,
        "created_at": rfc3339(r.created_at),
        "expires_at": r.expires_at.map(rfc3339),
        "certificate_serial": r.certificate_serial,
        "identity": crate::policy::workload::identity_value(r.identity.as_deref()),
    });
    if let Some(view) = approvals {
        v["approvals"] = view
            .approvals
            .iter()
            .map(|a| json!({"approver": a.approver, "decision": a.decision, "comment": a.comment, "at": rfc3339(a.created_at)}))
            .collect();
    }
    v
}

/// An approve/deny body: optional, `{"comment": ...}`.
pub(super) fn decision_body(req: &ApiRequest) -> Result<DecisionBody, Error> {
    if req.body.is_empty() {
        Ok(DecisionBody::default())
    } else {
        json_body(req)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DecisionBody {
    pub(super) comment: Option<String>,
}

pub(super) fn list_requests_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let (cursor, limit) = page(&c.q)?;
    let (rs, next) =
        c.hm.requests
            .list_requests(param(&c.q, "status").as_deref(), c.cred()?, cursor, limit)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "items": rs.iter().map(|r| request_json(r, None)).collect::<Vec<_>>(),
            "next_cursor": next.map(|n| n.to_string()),
        }),
    ))
}

pub(super) fn get_request_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let v =
        c.hm.requests
            .request_view(parse_id(c.segs[3])?, c.cred()?)?;
    Ok(json_response(
        StatusCode::OK,
        &request_json(&v.request, Some(&v)),
    ))
}

pub(super) fn decide_request_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let body = decision_body(c.req)?;
    let approve = c.template.ends_with("approve");
    let (view, issued) = c.hm.requests.decide(
        parse_id(c.segs[3])?,
        c.cred()?,
        approve,
        body.comment.as_deref(),
    )?;
    let mut v = request_json(&view.request, Some(&view));
    if let Some(i) = issued {
        v["certificate"] = issued_json(
            &i,
            &view.request.profile,
            view.request.publisher.as_deref().unwrap_or(""),
        );
    }
    Ok(json_response(StatusCode::OK, &v))
}

pub(super) fn cancel_request_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let v =
        c.hm.requests
            .cancel_request(parse_id(c.segs[3])?, c.cred()?)?;
    Ok(json_response(
        StatusCode::OK,
        &request_json(&v.request, Some(&v)),
    ))
}
