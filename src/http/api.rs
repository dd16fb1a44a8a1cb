//! The JSON API under `/api/v1/` (plus `/healthz`, `/readyz`, `/metrics`) on the API listener.
//!
//! Each route authenticates, checks the rate limit, parses, and makes one engine call; errors
//! become RFC 9457 problem documents in [`error_response`], the one place that maps kinds to
//! statuses. An unexpected error is logged and answered with a bare 500 that leaks nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER,
};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::ratelimit::RateLimiter;
use super::{problem, response, Body};
use crate::engine::{Hallmark, Issued};
use crate::error::Error;
use crate::policy::auth::Credential;
use crate::policy::IssueRequest;
use crate::requests::{RequestView, Submitted};
use crate::signing::{SignSubmitted, SignatureById, SignatureRequestView};
use crate::store::rfc3339;
use crate::store::{CertFilter, CertRecord, Publisher, RequestRecord};

/// Every route the API listener serves: method and path template (the OpenAPI test reads this).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/certificates"),
    ("GET", "/api/v1/certificates"),
    ("GET", "/api/v1/certificates/{serial}"),
    ("POST", "/api/v1/certificates/{serial}/revoke"),
    ("POST", "/api/v1/provision/batch"),
    ("GET", "/api/v1/requests"),
    ("GET", "/api/v1/requests/{id}"),
    ("POST", "/api/v1/requests/{id}/approve"),
    ("POST", "/api/v1/requests/{id}/deny"),
    ("POST", "/api/v1/requests/{id}/cancel"),
    ("GET", "/api/v1/publishers"),
    ("POST", "/api/v1/publishers"),
    ("POST", "/api/v1/signatures"),
    ("GET", "/api/v1/signatures"),
    ("GET", "/api/v1/signatures/{id}"),
    ("GET", "/api/v1/signatures/requests/{id}"),
    ("POST", "/api/v1/signatures/requests/{id}/approve"),
    ("POST", "/api/v1/signatures/requests/{id}/deny"),
    ("POST", "/api/v1/signatures/requests/{id}/cancel"),
    ("GET", "/api/v1/keys/{label}"),
    // ACME (RFC 8555), served by `http::acme` (which keeps the same list as `acme::ROUTES`).
    ("GET", "/acme/{profile}/directory"),
    ("GET", "/acme/{profile}/new-nonce"),
    ("POST", "/acme/{profile}/new-account"),
    ("POST", "/acme/{profile}/new-order"),
    ("POST", "/acme/{profile}/revoke-cert"),
    ("POST", "/acme/{profile}/key-change"),
    ("POST", "/acme/{profile}/account/{id}"),
    ("POST", "/acme/{profile}/account/{id}/orders"),
    ("POST", "/acme/{profile}/order/{id}"),
    ("POST", "/acme/{profile}/order/{id}/finalize"),
    ("POST", "/acme/{profile}/authz/{id}"),
    ("POST", "/acme/{profile}/chall/{id}"),
    ("POST", "/acme/{profile}/cert/{serial}"),
];

/// Shared state of the API listener.
pub struct ApiState {
    pub hm: Arc<Hallmark>,
    pub limiter: RateLimiter,
}

impl ApiState {
    pub fn new(hm: Arc<Hallmark>) -> ApiState {
        let per_minute = hm.config.api.rate_limit_per_minute;
        ApiState {
            hm,
            limiter: RateLimiter::new(per_minute),
        }
    }
}

/// A request whose body was read (within the configured limit).
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub remote: Option<SocketAddr>,
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    response(status, "application/json", v.to_string())
}

/// Maps an engine error to a problem document: the one place an error becomes a status.
pub fn error_response(e: &Error) -> Response<Body> {
    use crate::error::Class;
    let kind = e.kind();
    let status = match e.class() {
        Class::BadRequest => StatusCode::BAD_REQUEST,
        Class::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Class::Unauthorized => StatusCode::UNAUTHORIZED,
        Class::Forbidden => StatusCode::FORBIDDEN,
        Class::NotFound => StatusCode::NOT_FOUND,
        Class::Conflict => StatusCode::CONFLICT,
        Class::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Class::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Class::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Class::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if matches!(e.class(), Class::Internal | Class::Unavailable) {
        tracing::error!("internal error ({kind}): {e}");
        return problem(
            status,
            if e.class() == Class::Unavailable {
                "unavailable"
            } else {
                "internal"
            },
            "the server could not complete the request; the error is in its log",
        );
    }
    let mut r = problem(status, kind, &e.to_string());
    if let Error::RateLimited { retry_after, .. } = e {
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            r.headers_mut().insert(RETRY_AFTER, v);
        }
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"hallmark\""),
        );
    }
    r
}

fn pem_of(der: &[u8]) -> String {
    crate::pemfmt::encode("CERTIFICATE", der.to_vec())
}

/// Decodes `a=b&c=d` (with %XX and +).
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match u8::from_str_radix(
                        std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"),
                        16,
                    ) {
                        Ok(v) => {
                            out.push(v);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn param(q: &[(String, String)], k: &str) -> Option<String> {
    q.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone())
}

/// `limit` of a list route: 1 to 1000, 100 when absent.
fn limit_param(q: &[(String, String)]) -> Result<usize, Error> {
    match param(q, "limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|v| (1..=1000).contains(v))
            .ok_or_else(|| Error::Invalid(format!("limit '{l}' must be 1..1000"))),
        None => Ok(100),
    }
}

/// `cursor` and `limit` of a list route whose records are numbered (requests, signatures):
/// the page below the cursor, newest first. The cursor is the previous page's `next_cursor`.
fn page(q: &[(String, String)]) -> Result<(Option<i64>, usize), Error> {
    let cursor = match param(q, "cursor") {
        Some(c) => Some(c.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            Error::Invalid(format!(
                "cursor '{c}' is not one this route gave out (next_cursor)"
            ))
        })?),
        None => None,
    };
    Ok((cursor, limit_param(q)?))
}

fn issued_json(i: &Issued, profile: &str, publisher: &str) -> Value {
    json!({
        "serial": i.serial,
        "profile": profile,
        "publisher": publisher,
        "certificate": pem_of(&i.cert_der),
        "chain": i.chain.iter().map(|c| pem_of(c)).collect::<Vec<_>>(),
    })
}

fn request_json(r: &RequestRecord, approvals: Option<&RequestView>) -> Value {
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

fn cert_json(c: &CertRecord) -> Value {
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
struct CertificateBody {
    profile: String,
    csr: String,
    publisher: Option<String>,
    device_serial: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    reason: String,
    /// RFC 3339.
    invalidity_date: Option<String>,
}

/// A publisher revokes its own certificates (scope `revoke`); an officer any.
fn revoke_certificate(
    hm: &Hallmark,
    serial: &str,
    body: RevokeBody,
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    cred.require(crate::policy::auth::Scope::Revoke)?;
    let serial = serial.to_ascii_lowercase();
    let rec = hm
        .store
        .get_certificate(&serial)?
        .filter(|c| c.status == crate::store::CertStatus::Issued)
        .filter(|c| {
            cred.may_act_for(c.publisher.as_deref().unwrap_or(""))
                .is_ok()
        })
        .ok_or_else(|| Error::NotFound(format!("certificate {serial}")))?;
    let reason: crate::revocation::RevocationReason =
        body.reason.parse().map_err(Error::Invalid)?;
    let invalidity = match body.invalidity_date.as_deref() {
        Some(d) => Some(
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .map_err(|e| Error::Invalid(format!("invalidity_date '{d}' is not RFC 3339: {e}")))?
                .unix_timestamp(),
        ),
        None => None,
    };
    let r = hm.revoke(&rec.serial, reason, invalidity, &cred.actor())?;
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

/// An approve/deny body: optional, `{"comment": ...}`.
fn decision_body(req: &ApiRequest) -> Result<DecisionBody, Error> {
    if req.body.is_empty() {
        Ok(DecisionBody::default())
    } else {
        json_body(req)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublisherBody {
    id: String,
    org: String,
    country: String,
    state: Option<String>,
    locality: Option<String>,
    profiles: Vec<String>,
}

fn content_type(h: &HeaderMap) -> String {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Parses a JSON body, refusing other content types.
fn json_body<T: serde::de::DeserializeOwned>(req: &ApiRequest) -> Result<T, Error> {
    if content_type(&req.headers) != "application/json" {
        return Err(Error::UnsupportedMedia(
            "send Content-Type: application/json".into(),
        ));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| Error::MalformedJson(format!("the JSON body does not parse: {e}")))
}

/// Routes one API request; returns the route template (for metrics) and the response.
/// What a route needs of the credential, checked before the body is parsed.
fn authorize_route(
    template: &str,
    method: &Method,
    cred: &Credential,
) -> Result<(), crate::policy::auth::AuthError> {
    use crate::policy::auth::Scope;
    let post = method == Method::POST;
    match template {
        "/api/v1/certificates" if post => cred.require(Scope::Issue),
        "/api/v1/certificates/{serial}/revoke" => cred.require(Scope::Revoke),
        "/api/v1/requests/{id}/approve"
        | "/api/v1/requests/{id}/deny"
        | "/api/v1/signatures/requests/{id}/approve"
        | "/api/v1/signatures/requests/{id}/deny" => cred.require(Scope::Approve),
        "/api/v1/signatures" if post => cred.require(Scope::Sign),
        "/api/v1/publishers" => cred.require_officer(),
        _ => Ok(()),
    }
}

/// The caller's credential from the head: authenticated, within its rate, and with the route's
/// scope; otherwise the problem document to answer.
fn authenticate(
    state: &ApiState,
    template: &str,
    method: &Method,
    headers: &HeaderMap,
    remote: Option<SocketAddr>,
) -> Result<Credential, Box<Response<Body>>> {
    let hm = &state.hm;
    // Everything under /api/v1 is authenticated and rate limited per credential.
    // The auth scheme is case-insensitive (RFC 9110 §11.1): Bearer, bearer, BEARER.
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let cred = hm
        .authenticate(bearer, remote.map(|a| a.ip().to_string()))
        .map_err(|e| Box::new(error_response(&e)))?;
    if let Err(wait) = state.limiter.check(&cred.token_id) {
        let mut r = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            &format!(
                "more than {} requests a minute with this token; retry in {wait} s",
                hm.config.api.rate_limit_per_minute
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(RETRY_AFTER, v);
        }
        return Err(Box::new(r));
    }
    // The credential's right to the route is checked before its body is read: a token without
    // the scope gets 403 whatever it sent (the services check again).
    authorize_route(template, method, &cred).map_err(|e| Box::new(error_response(&e.into())))?;
    Ok(cred)
}

/// What the head of a request decides before its body is read.
pub enum Admission {
    /// Answered from the head alone: nothing at that path or method, or a credential refused
    /// (missing, unknown, rate-limited, or without the route's scope).
    Answered(&'static str, Response<Body>),
    /// Read the body, then [`route_admitted`] with the route's template and the credential
    /// (none for the open routes, and for ACME, whose requests are signed JWS).
    Proceed(&'static str, Option<Credential>),
}

/// The head's verdict: route, credential, rate limit and scope, before a byte of the body is
/// read, so a caller without the right gets 401/403 whatever (and however slowly) it sends.
pub fn admit(
    state: &ApiState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    remote: Option<SocketAddr>,
    request_id: Option<&str>,
) -> Admission {
    if path.starts_with("/acme/") {
        return Admission::Proceed("acme", None);
    }
    let template = match template_of(method, path) {
        Ok(t) => t,
        Err(r) => return Admission::Answered("unmatched", *r),
    };
    if matches!(template, "/healthz" | "/readyz" | "/metrics") {
        return Admission::Proceed(template, None);
    }
    match authenticate(state, template, method, headers, remote) {
        Ok(mut cred) => {
            cred.request_id = request_id.map(str::to_string);
            Admission::Proceed(template, Some(cred))
        }
        Err(r) => Admission::Answered(template, *r),
    }
}

/// Routes a request whose head [`admit`] let through, with its body read.
pub fn route_admitted(
    state: &ApiState,
    req: &ApiRequest,
    template: &'static str,
    cred: Option<&Credential>,
) -> (&'static str, Response<Body>) {
    if template == "acme" {
        return super::acme::route(state, req);
    }
    let segs: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(1).collect();
    (template, handle(state, req, template, &segs, cred))
}

/// Both steps for a request already read whole.
pub fn route(state: &ApiState, req: &ApiRequest) -> (&'static str, Response<Body>) {
    match admit(
        state,
        &req.method,
        &req.path,
        &req.headers,
        req.remote,
        None,
    ) {
        Admission::Answered(template, r) => (template, r),
        Admission::Proceed(template, cred) => route_admitted(state, req, template, cred.as_ref()),
    }
}

/// The route template a method and path match; 405 (with Allow) or 404 otherwise.
fn template_of(m: &Method, path: &str) -> Result<&'static str, Box<Response<Body>>> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let template: &'static str = match (m.as_str(), segs.as_slice()) {
        ("GET", ["healthz"]) => "/healthz",
        ("GET", ["readyz"]) => "/readyz",
        ("GET", ["metrics"]) => "/metrics",
        ("POST", ["api", "v1", "certificates"]) => "/api/v1/certificates",
        ("GET", ["api", "v1", "certificates"]) => "/api/v1/certificates",
        ("GET", ["api", "v1", "certificates", _]) => "/api/v1/certificates/{serial}",
        ("POST", ["api", "v1", "certificates", _, "revoke"]) => {
            "/api/v1/certificates/{serial}/revoke"
        }
        ("GET", ["api", "v1", "requests"]) => "/api/v1/requests",
        ("GET", ["api", "v1", "requests", _]) => "/api/v1/requests/{id}",
        ("POST", ["api", "v1", "requests", _, "approve"]) => "/api/v1/requests/{id}/approve",
        ("POST", ["api", "v1", "requests", _, "deny"]) => "/api/v1/requests/{id}/deny",
        ("POST", ["api", "v1", "requests", _, "cancel"]) => "/api/v1/requests/{id}/cancel",
        ("GET", ["api", "v1", "publishers"]) => "/api/v1/publishers",
        ("POST", ["api", "v1", "publishers"]) => "/api/v1/publishers",
        ("POST", ["api", "v1", "signatures"]) => "/api/v1/signatures",
        ("GET", ["api", "v1", "signatures"]) => "/api/v1/signatures",
        ("GET", ["api", "v1", "signatures", "requests", _]) => "/api/v1/signatures/requests/{id}",
        ("POST", ["api", "v1", "signatures", "requests", _, "approve"]) => {
            "/api/v1/signatures/requests/{id}/approve"
        }
        ("POST", ["api", "v1", "signatures", "requests", _, "deny"]) => {
            "/api/v1/signatures/requests/{id}/deny"
        }
        ("POST", ["api", "v1", "signatures", "requests", _, "cancel"]) => {
            "/api/v1/signatures/requests/{id}/cancel"
        }
        ("GET", ["api", "v1", "signatures", _]) => "/api/v1/signatures/{id}",
        ("GET", ["api", "v1", "keys", _]) => "/api/v1/keys/{label}",
        _ => {
            // The methods served at this path (RFC 9110: a 405 names them in Allow).
            let mut allowed: Vec<&str> = ROUTES
                .iter()
                .filter(|(_, p)| {
                    let t: Vec<&str> = p.split('/').skip(1).collect();
                    t.len() == segs.len()
                        && t.iter()
                            .zip(&segs)
                            .all(|(a, b)| a.starts_with('{') || a == b)
                })
                .map(|(method, _)| *method)
                .collect();
            allowed.sort_unstable();
            allowed.dedup();
            let r = if !allowed.is_empty() {
                let mut r = problem(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method-not-allowed",
                    &format!("{m} is not served at {path}"),
                );
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    r.headers_mut().insert(hyper::header::ALLOW, v);
                }
                r
            } else {
                problem(
                    StatusCode::NOT_FOUND,
                    "not-found",
                    &format!("nothing at {path}"),
                )
            };
            return Err(Box::new(r));
        }
    };
    Ok(template)
}

fn handle(
    state: &ApiState,
    req: &ApiRequest,
    template: &str,
    segs: &[&str],
    cred: Option<&Credential>,
) -> Response<Body> {
    let hm = &state.hm;
    match template {
        "/healthz" => return response(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => {
            let db = hm.store.schema_version().map(|v| format!("schema {v}"));
            let ks = hm
                .key_store(&hm.config.keys.default_store)
                .and_then(|k| k.check().map_err(Error::from));
            return match (db, ks) {
                (Ok(d), Ok(k)) => {
                    json_response(StatusCode::OK, &json!({"database": d, "key_store": k}))
                }
                (d, k) => {
                    let why = [
                        d.err().map(|e| format!("database: {e}")),
                        k.err().map(|e| format!("key store: {e}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                    tracing::warn!("not ready: {why}");
                    problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "not ready: the database or the key store is unreachable",
                    )
                }
            };
        }
        "/metrics" => {
            return response(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                hm.metrics.render(),
            )
        }
        _ => {}
    }
    // The head was admitted (`admit`): every route past this point has a credential.
    let Some(cred) = cred else {
        return error_response(
            &crate::policy::auth::AuthError::Unauthorized(
                "no token: send Authorization: Bearer hmk_...".into(),
            )
            .into(),
        );
    };
    let q = query_pairs(req.query.as_deref());
    let result = match template {
        "/api/v1/certificates" if req.method == Method::POST => post_certificate(hm, req, &q, cred),
        "/api/v1/certificates" => list_certificates(hm, &q, cred),
        "/api/v1/certificates/{serial}" => get_certificate(hm, req, segs[3], cred),
        "/api/v1/certificates/{serial}/revoke" => {
            let body: RevokeBody = match json_body(req) {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            revoke_certificate(hm, segs[3], body, cred)
        }
        "/api/v1/requests" => page(&q).and_then(|(cursor, limit)| {
            let (rs, next) =
                hm.list_requests(param(&q, "status").as_deref(), cred, cursor, limit)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "items": rs.iter().map(|r| request_json(r, None)).collect::<Vec<_>>(),
                    "next_cursor": next.map(|n| n.to_string()),
                }),
            ))
        }),
        "/api/v1/requests/{id}" => parse_id(segs[3])
            .and_then(|id| hm.request_view(id, cred))
            .map(|v| json_response(StatusCode::OK, &request_json(&v.request, Some(&v)))),
        "/api/v1/requests/{id}/approve" | "/api/v1/requests/{id}/deny" => {
            let body = match decision_body(req) {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            let approve = template.ends_with("approve");
            parse_id(segs[3])
                .and_then(|id| hm.decide(id, cred, approve, body.comment.as_deref()))
                .map(|(view, issued)| {
                    let mut v = request_json(&view.request, Some(&view));
                    if let Some(i) = issued {
                        v["certificate"] = issued_json(
                            &i,
                            &view.request.profile,
                            view.request.publisher.as_deref().unwrap_or(""),
                        );
                    }
                    json_response(StatusCode::OK, &v)
                })
        }
        "/api/v1/publishers" if req.method == Method::POST => {
            let body: PublisherBody = match json_body(req) {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            cred.require_officer().map_err(Error::from).and_then(|_| {
                let p = Publisher {
                    id: body.id,
                    org: body.org,
                    country: body.country,
                    state: body.state,
                    locality: body.locality,
                    profiles: body.profiles,
                    created_at: crate::store::now(),
                };
                hm.add_publisher(&p, &cred.actor())?;
                let mut r = json_response(StatusCode::CREATED, &publisher_json(&p));
                if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/publishers/{}", p.id)) {
                    r.headers_mut().insert(LOCATION, v);
                }
                Ok(r)
            })
        }
        "/api/v1/publishers" => cred.require_officer().map_err(Error::from).and_then(|_| {
            // By id; the cursor is the last id of the previous page.
            let limit = limit_param(&q)?;
            let after = param(&q, "cursor");
            let mut list = hm.store.list_publishers()?;
            list.sort_by(|a, b| a.id.cmp(&b.id));
            let page: Vec<&Publisher> = list
                .iter()
                .filter(|p| after.as_deref().is_none_or(|a| p.id.as_str() > a))
                .take(limit)
                .collect();
            let next = if page.len() == limit {
                page.last().map(|p| p.id.clone())
            } else {
                None
            };
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "items": page.iter().map(|p| publisher_json(p)).collect::<Vec<_>>(),
                    "next_cursor": next,
                }),
            ))
        }),
        "/api/v1/signatures" if req.method == Method::POST => post_signature(hm, req, cred),
        "/api/v1/signatures" => list_signatures(hm, &q, cred),
        "/api/v1/signatures/{id}" => parse_id(segs[3])
            .and_then(|id| hm.signature_by_id(id, cred))
            .and_then(|s| {
                Ok(json_response(
                    StatusCode::OK,
                    &match s {
                        SignatureById::Record(r, None) => signature_record_json(&r),
                        SignatureById::Record(r, Some(v)) => {
                            let mut doc = signature_record_json(&r);
                            doc["request_id"] = json!(v.request.id);
                            doc["status"] = json!(v.request.status);
                            signed_fields(hm, &v.request, &mut doc)?;
                            doc
                        }
                        SignatureById::Request(v) => signature_request_json(hm, &v)?,
                    },
                ))
            }),
        "/api/v1/signatures/requests/{id}" => parse_id(segs[4])
            .and_then(|id| hm.signature_request_view(id, cred))
            .and_then(|v| {
                Ok(json_response(
                    StatusCode::OK,
                    &signature_request_json(hm, &v)?,
                ))
            }),
        "/api/v1/signatures/requests/{id}/approve" | "/api/v1/signatures/requests/{id}/deny" => {
            let body = match decision_body(req) {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            let approve = template.ends_with("approve");
            parse_id(segs[4])
                .and_then(|id| hm.decide_signature(id, cred, approve, body.comment.as_deref()))
                .and_then(|(view, _)| {
                    Ok(json_response(
                        StatusCode::OK,
                        &signature_request_json(hm, &view)?,
                    ))
                })
        }
        "/api/v1/requests/{id}/cancel" => parse_id(segs[3])
            .and_then(|id| hm.cancel_request(id, cred))
            .map(|v| json_response(StatusCode::OK, &request_json(&v.request, Some(&v)))),
        "/api/v1/signatures/requests/{id}/cancel" => parse_id(segs[4])
            .and_then(|id| hm.cancel_signature_request(id, cred))
            .and_then(|view| {
                Ok(json_response(
                    StatusCode::OK,
                    &signature_request_json(hm, &view)?,
                ))
            }),
        "/api/v1/keys/{label}" => get_key(hm, segs[3], cred),
        _ => Err(Error::NotFound(req.path.clone())),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn publisher_json(p: &Publisher) -> Value {
    json!({"id": p.id, "org": p.org, "country": p.country, "state": p.state, "locality": p.locality, "profiles": p.profiles})
}

fn parse_id(s: &str) -> Result<i64, Error> {
    s.parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| Error::Invalid(format!("'{s}' is not a request id")))
}

fn post_certificate(
    hm: &Hallmark,
    req: &ApiRequest,
    q: &[(String, String)],
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    let default_publisher = || {
        cred.publisher
            .clone()
            .ok_or_else(|| Error::Invalid("officer tokens must name the publisher".into()))
    };
    let issue = match content_type(&req.headers).as_str() {
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
            profile: param(q, "profile").ok_or_else(|| Error::Invalid("a raw CSR needs ?profile=NAME".into()))?,
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
    match hm.submit(issue, cred)? {
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

fn get_certificate(
    hm: &Hallmark,
    req: &ApiRequest,
    serial: &str,
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    let serial = serial.to_ascii_lowercase();
    let rec = hm
        .store
        .get_certificate(&serial)?
        .filter(|c| c.status == crate::store::CertStatus::Issued)
        .filter(|c| {
            cred.may_act_for(c.publisher.as_deref().unwrap_or(""))
                .is_ok()
        })
        .ok_or_else(|| Error::NotFound(format!("certificate {serial}")))?;
    let revocation = hm.store.get_revocation(&rec.serial)?;
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

fn list_certificates(
    hm: &Hallmark,
    q: &[(String, String)],
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    let publisher = match (param(q, "publisher"), cred.officer) {
        (Some(p), true) => Some(p),
        (None, true) => None,
        (Some(p), false) => {
            cred.may_act_for(&p)?;
            Some(p)
        }
        (None, false) => cred.publisher.clone(),
    };
    let limit = limit_param(q)?;
    let rows = hm.store.list_certificates(&CertFilter {
        publisher,
        profile: param(q, "profile"),
        ca: None,
        after: param(q, "cursor").map(|c| c.to_ascii_lowercase()),
        limit,
    })?;
    let next = if rows.len() == limit {
        rows.last().map(|r| r.serial.clone())
    } else {
        None
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": rows.iter().map(cert_json).collect::<Vec<_>>(), "next_cursor": next}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureBody {
    key: String,
    digest: String,
    digest_algorithm: String,
    format: String,
    metadata: Option<Value>,
    #[serde(default)]
    timestamp: bool,
    content_type: Option<String>,
    content: Option<String>,
}

fn post_signature(
    hm: &Hallmark,
    req: &ApiRequest,
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    use base64::Engine as _;
    let b: SignatureBody = json_body(req)?;
    let submitted = hm.submit_signature(
        &crate::signing::SignRequest {
            key: b.key,
            digest: b.digest,
            digest_algorithm: b.digest_algorithm,
            format: b.format,
            metadata: b.metadata,
            timestamp: b.timestamp,
            content_type: b.content_type,
            content: b.content,
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
fn signature_request_json(hm: &Hallmark, view: &SignatureRequestView) -> Result<Value, Error> {
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
    });
    if let Some(id) = hm.signature_request_public_id(r)? {
        v["id"] = json!(id);
    }
    signed_fields(hm, r, &mut v)?;
    Ok(v)
}

/// A signed request's signature, the key's certificate and chain and the time-stamp token, as
/// the 201 answer of `POST /api/v1/signatures` carries them; nothing for an unsigned one.
fn signed_fields(
    hm: &Hallmark,
    r: &crate::store::SignatureRequestRecord,
    v: &mut Value,
) -> Result<(), Error> {
    use base64::Engine as _;
    if let (Some(_), Some(sig)) = (r.signature_id, &r.signature) {
        let key = hm.key(&r.key_label)?;
        let (cert, chain) = hm.key_certificate_chain(&key)?;
        v["signature"] = json!(base64::engine::general_purpose::STANDARD.encode(sig));
        v["certificate"] = json!(pem_of(&cert));
        v["chain"] = json!(chain.iter().map(|c| pem_of(c)).collect::<Vec<_>>());
        if let Some(t) = &r.timestamp_token {
            v["timestamp_token"] = json!(base64::engine::general_purpose::STANDARD.encode(t));
        }
    }
    Ok(())
}

/// A publisher key with its certificate, chain and signing policy (scope `sign`; another
/// publisher's key is "not found", like an unknown one). A key without a certificate yet has
/// `certificate: null`.
fn get_key(hm: &Hallmark, label: &str, cred: &Credential) -> Result<Response<Body>, Error> {
    cred.require(crate::policy::auth::Scope::Sign)?;
    let not_found = || Error::NotFound(format!("key '{label}'"));
    let key = match hm.store.get_key(label)? {
        Some(k) if cred.may_act_for(&k.publisher).is_ok() => k,
        _ => return Err(not_found()),
    };
    Ok(json_response(StatusCode::OK, &hm.key_document(&key)?))
}

fn signature_record_json(s: &crate::store::SignatureRecord) -> Value {
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
    })
}

fn list_signatures(
    hm: &Hallmark,
    q: &[(String, String)],
    cred: &Credential,
) -> Result<Response<Body>, Error> {
    let (cursor, limit) = page(q)?;
    let rows = hm.list_signatures(param(q, "key").as_deref(), cred, cursor, limit)?;
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
