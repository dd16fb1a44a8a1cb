//! `/api/v1/certificates`: issue from a CSR, list, fetch (JSON or PEM chain), revoke.

use super::*;

pub(super) fn issued_json(i: &Issued, profile: &str, publisher: &str) -> Value {
    json!({
        "serial": i.serial,
        "profile": profile,
        "publisher": publisher,
        "certificate": pem_of(&i.cert_der),
        "chain": i.chain.iter().map(|c| pem_of(c)).collect::<Vec<_>>(),
    })
}

pub(super) fn cert_json(c: &CertRecord) -> Value {
    json!({
        "serial": c.serial,
        "status": c.status,
        "subject": c.subject,
        "profile": c.profile,
        "publisher": c.publisher,
        "issuer": c.ca,
        "not_before": rfc3339(c.not_before),
        "not_after": rfc3339(c.not_after),
        "certificate": c.cert_der.as_deref().map(pem_of),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CertificateBody {
    profile: String,
    csr: String,
    publisher: Option<String>,
    device_serial: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeBody {
    reason: String,
    /// RFC 3339.
    invalidity_date: Option<String>,
}

/// A publisher revokes its own certificates (scope `revoke`); an officer any.
pub(super) fn revoke_certificate(
    hm: &Hallmark,
    serial: &str,
    body: RevokeBody,
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    let reason: crate::revocation::RevocationReason =
        body.reason.parse().map_err(Refusal::BadParameter)?;
    let invalidity = match body.invalidity_date.as_deref() {
        Some(d) => Some(
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    Error::from(Refusal::BadParameter(format!(
                        "invalidity_date '{d}' is not RFC 3339: {e}"
                    )))
                })?
                .unix_timestamp(),
        ),
        None => None,
    };
    let r = hm.revoke_for(serial, cred, reason, invalidity)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "serial": r.serial,
            "reason": r.reason.name(),
            "revoked_at": rfc3339(r.revoked_at),
            "invalidity_date": r.invalidity_date.map(rfc3339),
            "previous_reason": r.previous_reason.map(|p| p.name()),
        }),
    ))
}

pub(super) fn post_certificate_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    post_certificate(c.hm, c.req, &c.q, c.cred()?)
}

pub(super) fn list_certificates_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    list_certificates(c.hm, &c.q, c.cred()?)
}

pub(super) fn get_certificate_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    get_certificate(c.hm, c.req, c.segs[3], c.cred()?)
}

pub(super) fn revoke_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let body: RevokeBody = json_body(c.req)?;
    revoke_certificate(c.hm, c.segs[3], body, c.cred()?)
}

pub(super) fn post_certificate(
    hm: &Hallmark,
    req: &ApiRequest,
    q: &[(String, String)],
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    let default_publisher = || {
        cred.publisher.clone().ok_or_else(|| {
            Error::from(Refusal::BadParameter(
                "officer tokens must name the publisher".into(),
            ))
        })
    };
    let issue = match crate::http::media_type(&req.headers).as_str() {
        "application/json" => {
            let b: CertificateBody = serde_json::from_slice(&req.body)
                .map_err(|e| Error::MalformedJson(format!("the JSON body does not parse: {e}")))?;
            IssueRequest {
                profile: b.profile,
                publisher: match b.publisher {
                    Some(p) => p,
                    None => default_publisher()?,
                },
                csr: b.csr.into_bytes(),
                requester: cred.name.clone(),
                device_serial: b.device_serial,
                name: b.name,
            }
        }
        "application/pkcs10" => IssueRequest {
            profile: param(q, "profile").ok_or_else(|| Error::from(Refusal::BadParameter("a raw CSR needs ?profile=NAME".into())))?,
            publisher: match param(q, "publisher") {
                Some(p) => p,
                None => default_publisher()?,
            },
            csr: req.body.to_vec(),
            requester: cred.name.clone(),
            device_serial: param(q, "device_serial"),
            name: param(q, "name"),
        },
        other => {
            return Err(Error::UnsupportedMedia(format!(
                "Content-Type '{other}' is not accepted: send application/json, or application/pkcs10 with ?profile="
            )))
        }
    };
    let publisher = issue.publisher.clone();
    let profile = issue.profile.clone();
    match hm.requests.submit(issue, cred)? {
        Submitted::Issued(i) => {
            let mut r = json_response(StatusCode::CREATED, &issued_json(&i, &profile, &publisher));
            if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/certificates/{}", i.serial)) {
                r.headers_mut().insert(LOCATION, v);
            }
            Ok(r)
        }
        Submitted::Pending(rec) => {
            let mut v = request_json(&rec, None);
            v["request_id"] = json!(rec.id);
            let mut r = json_response(StatusCode::ACCEPTED, &v);
            if let Ok(h) = HeaderValue::from_str(&format!("/api/v1/requests/{}", rec.id)) {
                r.headers_mut().insert(LOCATION, h);
            }
            Ok(r)
        }
    }
}

pub(super) fn get_certificate(
    hm: &Hallmark,
    req: &ApiRequest,
    serial: &str,
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    let (rec, revocation) = hm.certificate_for(serial, cred)?;
    let accept = req
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/pem-certificate-chain")
        || accept.contains("application/x-pem-file")
    {
        let mut text = rec.cert_der.as_deref().map(pem_of).unwrap_or_default();
        for c in hm.chain(&rec.ca)? {
            text.push_str(&pem_of(&c));
        }
        return Ok(response(
            StatusCode::OK,
            "application/pem-certificate-chain",
            text,
        ));
    }
    let mut v = cert_json(&rec);
    if let Some(rv) = revocation {
        v["status"] = json!("revoked");
        v["revocation"] = json!({
            "reason": crate::revocation::RevocationReason::from_code(rv.reason).map(|r| r.name()),
            "revoked_at": rfc3339(rv.revoked_at),
            "invalidity_date": rv.invalidity_date.map(rfc3339),
        });
    }
    Ok(json_response(StatusCode::OK, &v))
}

pub(super) fn list_certificates(
    hm: &Hallmark,
    q: &[(String, String)],
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    let page = hm.certificates_page(
        cred,
        param(q, "publisher"),
        param(q, "profile"),
        param(q, "cursor"),
        limit_param(q)?,
    )?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": page.items.iter().map(cert_json).collect::<Vec<_>>(), "next_cursor": page.next}),
    ))
}
