//! The JSON API under `/api/v1/` (plus `/healthz`, `/readyz`, `/metrics`) on the API listener:
//! the one routing table ([`API_ROUTES`]), admission (credential, rate, scope, settled from the
//! head before the body is read) and the helpers its handlers share. The handlers are in a
//! file per resource (`certificates.rs`, `requests.rs`, ...), as crates.io keeps its
//! controllers; each parses, calls one service function and renders. Errors become RFC 9457
//! problem documents in [`error_response`], the one place that maps kinds to statuses.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, LOCATION};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

mod audit;
mod certificates;
mod health;
mod keys;
mod publishers;
mod requests;
mod signatures;

use audit::*;
use certificates::*;
use health::*;
use keys::*;
use publishers::*;
use requests::*;
use signatures::*;

use super::ratelimit::RateLimiter;
use super::{error_response, refused, response, Body};
use crate::engine::{Hallmark, Issued};
use crate::error::{Error, Refusal};
use crate::policy::auth::{Credential, Scope};
use crate::policy::IssueRequest;
use crate::requests::{RequestView, Submitted};
use crate::signing::{SignSubmitted, SignatureById, SignatureRequestView};
use crate::store::rfc3339;
use crate::store::{CertRecord, Publisher, RequestRecord};

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
    /// ACME: a JWS signed by an account's key (or the key it carries), checked by the ACME
    /// service; served by `http::acme`, which reads its routes from this table.
    Acme,
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
    r("GET", "/api/v1/keys", Access::Token, list_keys_route),
    r("GET", "/api/v1/audit", Access::Officer, list_audit_route),
    r("GET", "/api/v1/keys/{label}", Access::Token, get_key_route),
    // ACME (RFC 8555), served by `http::acme`; newNonce also answers HEAD.
    acme("GET", "/acme/{profile}/directory"),
    acme("GET", "/acme/{profile}/new-nonce"),
    acme("POST", "/acme/{profile}/new-account"),
    acme("POST", "/acme/{profile}/new-order"),
    acme("POST", "/acme/{profile}/revoke-cert"),
    acme("POST", "/acme/{profile}/key-change"),
    acme("POST", "/acme/{profile}/account/{id}"),
    acme("POST", "/acme/{profile}/account/{id}/orders"),
    acme("POST", "/acme/{profile}/order/{id}"),
    acme("POST", "/acme/{profile}/order/{id}/finalize"),
    acme("POST", "/acme/{profile}/authz/{id}"),
    acme("POST", "/acme/{profile}/chall/{id}"),
    acme("POST", "/acme/{profile}/cert/{serial}"),
];

/// An ACME route: its requests go to the ACME router, which matches against these entries.
const fn acme(method: &'static str, template: &'static str) -> Route {
    Route {
        method,
        template,
        access: Access::Acme,
        handler: None,
    }
}

/// Every route the API listener serves, ACME's included: (method, path template).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    API_ROUTES.iter().map(|r| (r.method, r.template)).collect()
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
    /// The trusted OIDC issuers and their rules (`[[identity.oidc]]`), when there are any.
    pub oidc: Option<Arc<crate::oidc::Verifier>>,
    /// The console's identity provider for people (`[console.oidc]`), when there is one.
    pub people: Option<Arc<crate::oidc::people::PeopleLogin>>,
}

impl ApiState {
    /// The API's state; refused when an `[[identity.oidc]]` entry cannot be set up (its CA
    /// bundle does not read).
    pub fn new(hm: Arc<Hallmark>) -> Result<ApiState, String> {
        let per_minute = hm.config.api.rate_limit_per_minute;
        let oidc = crate::oidc::Verifier::new(&hm.config, hm.clock.clone())?.map(Arc::new);
        let people =
            crate::oidc::people::PeopleLogin::new(&hm.config, hm.clock.clone())?.map(Arc::new);
        Ok(ApiState {
            hm,
            limiter: RateLimiter::new(per_minute),
            oidc,
            people,
        })
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
            .ok_or_else(|| {
                Error::from(Refusal::BadParameter(format!(
                    "limit '{l}' must be 1..1000"
                )))
            }),
        None => Ok(100),
    }
}

/// `cursor` and `limit` of a list route whose records are numbered (requests, signatures):
/// the page below the cursor, newest first. The cursor is the previous page's `next_cursor`.
fn page(q: &[(String, String)]) -> Result<(Option<i64>, usize), Error> {
    let cursor = match param(q, "cursor") {
        Some(c) => Some(c.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            Error::from(Refusal::BadParameter(format!(
                "cursor '{c}' is not one this route gave out (next_cursor)"
            )))
        })?),
        None => None,
    };
    Ok((cursor, limit_param(q)?))
}

/// Parses a JSON body, refusing other content types.
fn json_body<T: serde::de::DeserializeOwned>(req: &ApiRequest) -> Result<T, Error> {
    if super::media_type(&req.headers) != "application/json" {
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
        Access::Open | Access::Token | Access::Acme => Ok(()),
    }
}

/// The caller's credential from the head: authenticated, within its rate, and with the route's
/// scope; otherwise the problem document to answer.
async fn authenticate(
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
    let address = remote.map(|a| a.ip().to_string());
    // A hallmark token (`hmk_...`), or a CI job's OIDC token (a JWT).
    let cred = match bearer {
        Some(jwt) if crate::oidc::token::looks_like_jwt(jwt) => match &state.oidc {
            Some(v) => v.authenticate(jwt, address).await.map_err(Error::from),
            None => Err(crate::oidc::OidcError::NotConfigured.into()),
        },
        _ => hm.tokens.authenticate(bearer, address),
    }
    .map_err(|e| Box::new(error_response(&e)))?;
    if let Err(wait) = state.limiter.check(&cred.token_id) {
        return Err(Box::new(error_response(&Error::RateLimited {
            detail: format!(
                "more than {} requests a minute with this credential; retry in {wait} s",
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
pub async fn admit(
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
    match authenticate(state, route, headers, remote).await {
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

fn parse_id(s: &str) -> Result<i64, Error> {
    s.parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| Error::from(Refusal::BadParameter(format!("'{s}' is not a request id"))))
}
