//! `/api/v1/signatures`: sign a digest, list and fetch signatures, and the signature requests that
//! wait for approvals.

use super::*;

pub(super) fn post_signature_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    post_signature(c.hm, c.req, c.cred()?)
}

pub(super) fn list_signatures_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    list_signatures(c.hm, &c.q, c.cred()?)
}

pub(super) fn get_signature_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let hm = c.hm;
    let doc = match hm
        .signing
        .signature_by_id(parse_id(c.segs[3])?, c.cred()?)?
    {
        SignatureById::Record(r, None) => signature_record_json(&r),
        SignatureById::Record(r, Some(v)) => {
            let mut doc = signature_record_json(&r);
            doc["request_id"] = json!(v.request.id);
            doc["status"] = json!(v.request.status);
            signed_fields(hm, &v.request, &mut doc)?;
            doc
        }
        SignatureById::Request(v) => signature_request_json(hm, &v)?,
    };
    Ok(json_response(StatusCode::OK, &doc))
}

pub(super) fn get_signature_request_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let v =
        c.hm.signing
            .signature_request_view(parse_id(c.segs[4])?, c.cred()?)?;
    Ok(json_response(
        StatusCode::OK,
        &signature_request_json(c.hm, &v)?,
    ))
}

pub(super) fn decide_signature_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let body = decision_body(c.req)?;
    let approve = c.template.ends_with("approve");
    let (view, _) = c.hm.signing.decide_signature(
        parse_id(c.segs[4])?,
        c.cred()?,
        approve,
        body.comment.as_deref(),
    )?;
    Ok(json_response(
        StatusCode::OK,
        &signature_request_json(c.hm, &view)?,
    ))
}

pub(super) fn cancel_signature_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let view =
        c.hm.signing
            .cancel_signature_request(parse_id(c.segs[4])?, c.cred()?)?;
    Ok(json_response(
        StatusCode::OK,
        &signature_request_json(c.hm, &view)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignatureBody {
    key: String,
    digest: String,
    digest_algorithm: String,
    format: String,
    metadata: Option<Value>,
    #[serde(default)]
    timestamp: bool,
    content_type: Option<String>,
    content: Option<String>,
    openpgp_trailer: Option<String>,
}

pub(super) fn post_signature(
    hm: &Hallmark,
    req: &ApiRequest,
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    use base64::Engine as _;
    let b: SignatureBody = json_body(req)?;
    let submitted = hm.signing.submit_signature(
        &crate::signing::SignRequest {
            key: b.key,
            digest: b.digest,
            digest_algorithm: b.digest_algorithm,
            format: b.format,
            metadata: b.metadata,
            timestamp: b.timestamp,
            content_type: b.content_type,
            content: b.content,
            openpgp_trailer: b.openpgp_trailer,
        },
        cred,
        true,
    )?;
    let signed = match submitted {
        SignSubmitted::Signed(s) => s,
        SignSubmitted::Pending(r) => {
            let view = SignatureRequestView {
                request: r,
                approvals: Vec::new(),
            };
            let v = signature_request_json(hm, &view)?;
            let mut resp = json_response(StatusCode::ACCEPTED, &v);
            if let Ok(l) =
                HeaderValue::from_str(&format!("/api/v1/signatures/requests/{}", view.request.id))
            {
                resp.headers_mut().insert(LOCATION, l);
            }
            return Ok(resp);
        }
    };
    let mut v = json!({
        "id": signed.id,
        "format": signed.format.name(),
        "signature": base64::engine::general_purpose::STANDARD.encode(&signed.signature),
        "certificate": pem_of(&signed.certificate),
        "chain": signed.chain.iter().map(|c| pem_of(c)).collect::<Vec<_>>(),
    });
    if let Some(t) = &signed.timestamp_token {
        v["timestamp_token"] = json!(base64::engine::general_purpose::STANDARD.encode(t));
    }
    Ok(json_response(StatusCode::CREATED, &v))
}

/// A signature request as the API shows it; once signed it carries the signature, the key's
/// certificate and its chain, like the 201 answer of `POST /api/v1/signatures`.
pub(super) fn signature_request_json(
    hm: &Hallmark,
    view: &SignatureRequestView,
) -> Result<Value, Error> {
    let r = &view.request;
    let mut v = json!({
        "request_id": r.id,
        "status": r.status,
        "key": r.key_label,
        "publisher": r.publisher,
        "requester": r.requester,
        "digest_algorithm": r.digest_algorithm,
        "digest": r.digest,
        "format": r.format,
        "metadata": r.metadata.as_deref().and_then(|m| serde_json::from_str::<Value>(m).ok()),
        "approvals_required": r.approvals_required,
        "approvals": view
            .approvals
            .iter()
            .map(|a| json!({"approver": a.approver, "decision": a.decision, "comment": a.comment, "at": rfc3339(a.created_at)}))
            .collect::<Vec<_>>(),
        "created_at": rfc3339(r.created_at),
        "expires_at": rfc3339(r.expires_at),
        "identity": crate::policy::workload::identity_value(r.identity.as_deref()),
    });
    if let Some(id) = hm.signing.signature_request_public_id(r)? {
        v["id"] = json!(id);
    }
    signed_fields(hm, r, &mut v)?;
    Ok(v)
}

/// A signed request's signature, the key's certificate and chain and the time-stamp token, as
/// the 201 answer of `POST /api/v1/signatures` carries them; nothing for an unsigned one.
pub(super) fn signed_fields(
    hm: &Hallmark,
    r: &crate::store::SignatureRequestRecord,
    v: &mut Value,
) -> Result<(), Error> {
    use base64::Engine as _;
    if let (Some(_), Some(sig)) = (r.signature_id, &r.signature) {
        let key = hm.key(&r.key_label)?;
        let (cert, chain) = hm.signing.key_certificate_chain(&key)?;
        v["signature"] = json!(base64::engine::general_purpose::STANDARD.encode(sig));
        v["certificate"] = json!(pem_of(&cert));
        v["chain"] = json!(chain.iter().map(|c| pem_of(c)).collect::<Vec<_>>());
        if let Some(t) = &r.timestamp_token {
            v["timestamp_token"] = json!(base64::engine::general_purpose::STANDARD.encode(t));
        }
    }
    Ok(())
}

pub(super) fn signature_record_json(s: &crate::store::SignatureRecord) -> Value {
    json!({
        "id": s.id,
        "key": s.key_label,
        "digest_algorithm": s.digest_algorithm,
        "digest": s.digest,
        "format": s.format,
        "requester": s.requester,
        "approvers": s.approvers,
        "metadata": s.metadata.as_deref().and_then(|m| serde_json::from_str::<Value>(m).ok()),
        "created_at": rfc3339(s.created_at),
        "identity": crate::policy::workload::identity_value(s.identity.as_deref()),
    })
}

pub(super) fn list_signatures(
    hm: &Hallmark,
    q: &[(String, String)],
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    let (cursor, limit) = page(q)?;
    let rows = hm
        .signing
        .list_signatures(param(q, "key").as_deref(), cred, cursor, limit)?;
    let next = if rows.len() == limit {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let items: Vec<Value> = rows.iter().map(signature_record_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "items": items, "next_cursor": next }),
    ))
}
