//! The JSON API under `/api/v1/` (plus `/healthz`, `/readyz`, `/metrics`) on the API listener.
//!
//! Each route authenticates, checks the rate limit, parses, and makes one engine call; errors
//! become RFC 9457 problem documents in [`error_response`], the one place that maps kinds to
//! statuses. An unexpected error is logged and answered with a bare 500 that leaks nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::ratelimit::RateLimiter;
use super::{error_response, refused, response, Body};
use crate::engine::{Hallmark, Issued};
use crate::error::{Error, Refusal};
use crate::policy::auth::{Credential, Scope};
use crate::policy::IssueRequest;
use crate::requests::{RequestView, Submitted};
use crate::signing::{SignSubmitted, SignatureById, SignatureRequestView};
use crate::store::rfc3339;
use crate::store::{CertFilter, CertRecord, Publisher, RequestRecord};

/// Who may call a route, settled from the head before the body is read (the services check
/// again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential (health, readiness, metrics).
    Open,
    /// Any valid token, within its rate.
    Token,
    /// A token with this scope.
    Scope(Scope),
    /// An officer token.
    Officer,
}

/// What a route's handler gets: the request, its path segments and query, and the caller.
pub struct Ctx<'a> {
    pub hm: &'a Hallmark,
    pub req: &'a ApiRequest,
    pub template: &'static str,
    /// The path split at `/`, without the leading empty segment.
    pub segs: Vec<&'a str>,
    pub q: Vec<(String, String)>,
    cred: Option<&'a Credential>,
}

impl Ctx<'_> {
    /// The credential [`admit`] settled (every route but the open ones has one).
    fn cred(&self) -> Result<&Credential, Error> {
        self.cred.ok_or_else(|| {
            crate::policy::auth::AuthError::Unauthorized(
                "no token: send Authorization: Bearer hmk_...".into(),
            )
            .into()
        })
    }
}

type Handler = fn(&Ctx<'_>) -> Result<Response<Body>, Error>;

/// One route: method, path template, who may call it, and its handler.
pub struct Route {
    pub method: &'static str,
    pub template: &'static str,
    pub access: Access,
    handler: Option<Handler>,
}

const fn r(method: &'static str, template: &'static str, access: Access, h: Handler) -> Route {
    Route {
        method,
        template,
        access,
        handler: Some(h),
    }
}

/// Every route the API listener serves but ACME's: the router, the scope check and the OpenAPI
/// test all read this one table.
pub const API_ROUTES: &[Route] = &[
    r("GET", "/healthz", Access::Open, healthz),
    r("GET", "/readyz", Access::Open, readyz),
    r("GET", "/metrics", Access::Open, metrics),
    r(
        "POST",
        "/api/v1/certificates",
        Access::Scope(Scope::Issue),
        post_certificate_route,
    ),
    r(
        "GET",
        "/api/v1/certificates",
        Access::Token,
        list_certificates_route,
    ),
    r(
        "GET",
        "/api/v1/certificates/{serial}",
        Access::Token,
        get_certificate_route,
    ),
    r(
        "POST",
        "/api/v1/certificates/{serial}/revoke",
        Access::Scope(Scope::Revoke),
        revoke_route,
    ),
    // Streamed NDJSON over mTLS: served by `http::provision` before this router.
    Route {
        method: "POST",
        template: "/api/v1/provision/batch",
        access: Access::Token,
        handler: None,
    },
    r(
        "GET",
        "/api/v1/requests",
        Access::Token,
        list_requests_route,
    ),
    r(
        "GET",
        "/api/v1/requests/{id}",
        Access::Token,
        get_request_route,
    ),
    r(
        "POST",
        "/api/v1/requests/{id}/approve",
        Access::Scope(Scope::Approve),
        decide_request_route,
    ),
    r(
        "POST",
        "/api/v1/requests/{id}/deny",
        Access::Scope(Scope::Approve),
        decide_request_route,
    ),
    r(
        "POST",
        "/api/v1/requests/{id}/cancel",
        Access::Token,
        cancel_request_route,
    ),
    r(
        "GET",
        "/api/v1/publishers",
        Access::Officer,
        list_publishers_route,
    ),
    r(
        "POST",
        "/api/v1/publishers",
        Access::Officer,
        post_publisher_route,
    ),
    r(
        "POST",
        "/api/v1/signatures",
        Access::Scope(Scope::Sign),
        post_signature_route,
    ),
    r(
        "GET",
        "/api/v1/signatures",
        Access::Token,
        list_signatures_route,
    ),
    r(
        "GET",
        "/api/v1/signatures/{id}",
        Access::Token,
        get_signature_route,
    ),
    r(
        "GET",
        "/api/v1/signatures/requests/{id}",
        Access::Token,
        get_signature_request_route,
    ),
    r(
        "POST",
        "/api/v1/signatures/requests/{id}/approve",
        Access::Scope(Scope::Approve),
        decide_signature_route,
    ),
    r(
        "POST",
        "/api/v1/signatures/requests/{id}/deny",
        Access::Scope(Scope::Approve),
        decide_signature_route,
    ),
    r(
        "POST",
        "/api/v1/signatures/requests/{id}/cancel",
        Access::Token,
        cancel_signature_route,
    ),
    r("GET", "/api/v1/keys/{label}", Access::Token, get_key_route),
];

/// Every route the API listener serves, ACME's included: (method, path template).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    API_ROUTES
        .iter()
        .map(|r| (r.method, r.template))
        .chain(super::acme::ROUTES.iter().copied())
        .collect()
}

/// Whether a path (split at `/`, from its first segment after `skip` template segments)
/// fits a template: literal segments equal, `{name}` segments anything.
pub fn fits(template: &str, skip: usize, segs: &[&str]) -> bool {
    let t: Vec<&str> = template.split('/').skip(1 + skip).collect();
    t.len() == segs.len()
        && t.iter()
            .zip(segs)
            .all(|(a, b)| a.starts_with('{') || a == b)
}

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

/// What a route needs of the credential, checked before the body is parsed.
fn authorize_route(route: &Route, cred: &Credential) -> Result<(), crate::policy::auth::AuthError> {
    match route.access {
        Access::Scope(scope) => cred.require(scope),
        Access::Officer => cred.require_officer(),
        Access::Open | Access::Token => Ok(()),
    }
}

/// The caller's credential from the head: authenticated, within its rate, and with the route's
/// scope; otherwise the problem document to answer.
fn authenticate(
    state: &ApiState,
    route: &Route,
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
        return Err(Box::new(error_response(&Error::RateLimited {
            detail: format!(
                "more than {} requests a minute with this token; retry in {wait} s",
                hm.config.api.rate_limit_per_minute
            ),
            retry_after: wait,
        })));
    }
    // The credential's right to the route is checked before its body is read: a token without
    // the scope gets 403 whatever it sent (the services check again).
    authorize_route(route, &cred).map_err(|e| Box::new(error_response(&e.into())))?;
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
    let route = match route_of(method, path) {
        Ok(r) => r,
        Err(r) => return Admission::Answered("unmatched", *r),
    };
    let template = route.template;
    if route.access == Access::Open {
        return Admission::Proceed(template, None);
    }
    match authenticate(state, route, headers, remote) {
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

/// The route a method and path match; 405 (with Allow) or 404 otherwise.
fn route_of(m: &Method, path: &str) -> Result<&'static Route, Box<Response<Body>>> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let at_path = || API_ROUTES.iter().filter(|r| fits(r.template, 0, &segs));
    if let Some(r) = at_path().find(|r| r.method == m.as_str() && r.handler.is_some()) {
        return Ok(r);
    }
    // The methods served at this path (RFC 9110: a 405 names them in Allow).
    let mut allowed: Vec<&str> = at_path().map(|r| r.method).collect();
    allowed.sort_unstable();
    allowed.dedup();
    let r = if !allowed.is_empty() {
        Refusal::MethodNotAllowed {
            detail: format!("{m} is not served at {path}"),
            allow: allowed.join(", "),
        }
    } else {
        Refusal::NotFound(format!("nothing at {path}"))
    };
    Err(Box::new(refused(r)))
}

/// Runs a route's handler; any error becomes its problem document.
fn handle(
    state: &ApiState,
    req: &ApiRequest,
    template: &'static str,
    segs: &[&str],
    cred: Option<&Credential>,
) -> Response<Body> {
    let ctx = Ctx {
        hm: &state.hm,
        req,
        template,
        segs: segs.to_vec(),
        q: query_pairs(req.query.as_deref()),
        cred,
    };
    let handler = API_ROUTES
        .iter()
        .find(|r| r.template == template && r.method == req.method.as_str())
        .and_then(|r| r.handler);
    match handler {
        Some(h) => h(&ctx).unwrap_or_else(|e| error_response(&e)),
        None => error_response(&Error::NotFound(req.path.clone())),
    }
}

fn healthz(_: &Ctx<'_>) -> Result<Response<Body>, Error> {
    Ok(response(StatusCode::OK, "text/plain", "ok\n"))
}

fn readyz(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let hm = c.hm;
    let db = hm.store.schema_version().map(|v| format!("schema {v}"));
    let ks = hm
        .key_store(&hm.config.keys.default_store)
        .and_then(|k| k.check().map_err(Error::from));
    Ok(match (db, ks) {
        (Ok(d), Ok(k)) => json_response(StatusCode::OK, &json!({"database": d, "key_store": k})),
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
            refused(Refusal::Unavailable(
                "not ready: the database or the key store is unreachable".into(),
            ))
        }
    })
}

fn metrics(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    Ok(response(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        c.hm.metrics.render(),
    ))
}

fn post_certificate_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    post_certificate(c.hm, c.req, &c.q, c.cred()?)
}

fn list_certificates_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    list_certificates(c.hm, &c.q, c.cred()?)
}

fn get_certificate_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    get_certificate(c.hm, c.req, c.segs[3], c.cred()?)
}

fn revoke_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let body: RevokeBody = json_body(c.req)?;
    revoke_certificate(c.hm, c.segs[3], body, c.cred()?)
}

fn list_requests_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let (cursor, limit) = page(&c.q)?;
    let (rs, next) =
        c.hm.list_requests(param(&c.q, "status").as_deref(), c.cred()?, cursor, limit)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "items": rs.iter().map(|r| request_json(r, None)).collect::<Vec<_>>(),
            "next_cursor": next.map(|n| n.to_string()),
        }),
    ))
}

fn get_request_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let v = c.hm.request_view(parse_id(c.segs[3])?, c.cred()?)?;
    Ok(json_response(
        StatusCode::OK,
        &request_json(&v.request, Some(&v)),
    ))
}

fn decide_request_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let body = decision_body(c.req)?;
    let approve = c.template.ends_with("approve");
    let (view, issued) = c.hm.decide(
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

fn cancel_request_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let v = c.hm.cancel_request(parse_id(c.segs[3])?, c.cred()?)?;
    Ok(json_response(
        StatusCode::OK,
        &request_json(&v.request, Some(&v)),
    ))
}

fn post_publisher_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let body: PublisherBody = json_body(c.req)?;
    let cred = c.cred()?;
    cred.require_officer()?;
    let p = Publisher {
        id: body.id,
        org: body.org,
        country: body.country,
        state: body.state,
        locality: body.locality,
        profiles: body.profiles,
        created_at: crate::store::now(),
    };
    c.hm.add_publisher(&p, &cred.actor())?;
    let mut r = json_response(StatusCode::CREATED, &publisher_json(&p));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/publishers/{}", p.id)) {
        r.headers_mut().insert(LOCATION, v);
    }
    Ok(r)
}

fn list_publishers_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    c.cred()?.require_officer()?;
    // By id; the cursor is the last id of the previous page.
    let limit = limit_param(&c.q)?;
    let after = param(&c.q, "cursor");
    let mut list = c.hm.store.list_publishers()?;
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
}

fn post_signature_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    post_signature(c.hm, c.req, c.cred()?)
}

fn list_signatures_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    list_signatures(c.hm, &c.q, c.cred()?)
}

fn get_signature_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let hm = c.hm;
    let doc = match hm.signature_by_id(parse_id(c.segs[3])?, c.cred()?)? {
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

fn get_signature_request_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let v =
        c.hm.signature_request_view(parse_id(c.segs[4])?, c.cred()?)?;
    Ok(json_response(
        StatusCode::OK,
        &signature_request_json(c.hm, &v)?,
    ))
}

fn decide_signature_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let body = decision_body(c.req)?;
    let approve = c.template.ends_with("approve");
    let (view, _) = c.hm.decide_signature(
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

fn cancel_signature_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let view =
        c.hm.cancel_signature_request(parse_id(c.segs[4])?, c.cred()?)?;
    Ok(json_response(
        StatusCode::OK,
        &signature_request_json(c.hm, &view)?,
    ))
}

fn get_key_route(c: &Ctx<'_>) -> Result<Response<Body>, Error> {
    get_key(c.hm, c.segs[3], c.cred()?)
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
