//! The ACME server (RFC 8555) at `/acme/{profile}/...` on the API listener.
//!
//! Each POST is a JWS: its `url` must be the URL it was sent to, its nonce one hallmark gave
//! out and not yet used, and its key the account's (`kid`) or, for newAccount and revokeCert,
//! one it carries (`jwk`). Accounts belong to the publisher of their EAB key; finalize sends the
//! CSR down the engine's one issuance path (policy, lint, record) as that publisher. Every
//! answer carries a fresh Replay-Nonce; every error is an ACME problem document.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION};
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::api::{ApiRequest, ApiState};
use super::{response, Body};
use crate::acme::identifier::Identifier;
use crate::acme::jws::{Jwk, Jws};
use crate::acme::validate::{self, Settings};
use crate::acme::{eab, random_token, unb64, AcmeError, ProblemType};
use crate::engine::Hallmark;
use crate::error::Error;
use crate::policy::auth::{Credential, Scope};
use crate::policy::{IssueRequest, PolicyError};
use crate::requests::Submitted;
use crate::store::rfc3339;
use crate::store::{AcmeAccount, AcmeAuthz, AcmeChallenge, AcmeOrder};

/// Every ACME route (method and template): the router below matches against it, and
/// `api::routes()` lists it with the others. newNonce also answers HEAD.
pub const ROUTES: &[(&str, &str)] = &[
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

type AResult<T> = Result<T, AcmeError>;

/// One request's context: the directory's base URL and the engine.
struct Ctx<'a> {
    hm: &'a Arc<Hallmark>,
    profile: String,
    /// `https://HOST`
    origin: String,
    /// `https://HOST/acme/PROFILE`
    base: String,
}

impl Ctx<'_> {
    fn url(&self, rest: &str) -> String {
        format!("{}/{rest}", self.base)
    }

    fn account_url(&self, id: &str) -> String {
        self.url(&format!("account/{id}"))
    }
}

/// Routes a request under `/acme/`; returns the route template (for metrics) and the answer.
pub fn route(state: &ApiState, req: &ApiRequest) -> (&'static str, Response<Body>) {
    let hm = &state.hm;
    let segs: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(2).collect();
    let Some((profile, rest)) = segs.split_first() else {
        return ("/acme", finish(hm, None, Err(not_found(&req.path))));
    };
    let scheme = if hm.config.api.transport == crate::config::Transport::Tls {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| hm.config.api.listen.clone());
    let ctx = Ctx {
        hm,
        profile: profile.to_string(),
        origin: format!("{scheme}://{host}"),
        base: format!("{scheme}://{host}/acme/{profile}"),
    };
    let index = ctx.url("directory");
    let m = &req.method;
    // newNonce answers HEAD as well as GET (RFC 8555 §7.2).
    let method_fits = |r: &(&str, &str)| {
        r.0 == m.as_str() || (m.as_str() == "HEAD" && r.1 == "/acme/{profile}/new-nonce")
    };
    let at_path = || ROUTES.iter().filter(|(_, t)| super::api::fits(t, 2, rest));
    let template: &'static str = match at_path().find(|r| method_fits(r)) {
        Some((_, t)) => t,
        None => {
            let e = if at_path().next().is_some() {
                AcmeError::malformed(format!("{m} is not allowed here (ACME uses POST)"))
                    .with_status(405)
            } else {
                not_found(&req.path)
            };
            return ("/acme/unmatched", finish(hm, Some(&index), Err(e)));
        }
    };
    if !hm.config.acme.directories.contains_key(*profile) || hm.profiles.get(profile).is_err() {
        let e = AcmeError::malformed(format!(
            "there is no ACME directory for profile '{profile}'"
        ))
        .with_status(404);
        return (template, finish(hm, None, Err(e)));
    }
    // The API's per-minute limit, per client address (ACME has no token to count by).
    let who = req.remote.map(|a| a.ip().to_string()).unwrap_or_default();
    if let Err(wait) = state.limiter.check(&format!("acme:{who}")) {
        let e = AcmeError::new(
            ProblemType::RateLimited,
            format!("too many ACME requests from {who}; retry in {wait} s"),
        );
        let mut r = finish(hm, Some(&index), Err(e));
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
        return (template, r);
    }
    let result = match template {
        "/acme/{profile}/directory" => Ok(directory(&ctx)),
        "/acme/{profile}/new-nonce" => {
            let status = if *m == Method::HEAD {
                StatusCode::OK
            } else {
                StatusCode::NO_CONTENT
            };
            let mut r = response(status, "text/plain", "");
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        }
        _ => post(&ctx, req, template, rest),
    };
    (template, finish(hm, Some(&index), result))
}

fn not_found(path: &str) -> AcmeError {
    AcmeError::malformed(format!("no ACME resource at {path}")).with_status(404)
}

/// Adds Replay-Nonce and the index link; turns an error into a problem document.
fn finish(hm: &Hallmark, index: Option<&str>, r: AResult<Response<Body>>) -> Response<Body> {
    let mut resp = match r {
        Ok(r) => r,
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            response(status, "application/problem+json", e.document().to_string())
        }
    };
    let nonce = random_token(16);
    let expires = crate::store::now() + hm.config.acme.nonce_lifetime_secs as i64;
    match hm.store.insert_acme_nonce(&nonce, expires) {
        Ok(()) => {
            if let Ok(v) = HeaderValue::from_str(&nonce) {
                resp.headers_mut().insert("replay-nonce", v);
            }
        }
        Err(e) => tracing::error!("acme: cannot store a nonce: {e}"),
    }
    if let Some(i) = index {
        if let Ok(v) = HeaderValue::from_str(&format!("<{i}>;rel=\"index\"")) {
            resp.headers_mut().append("link", v);
        }
    }
    resp
}

fn json_resp(status: StatusCode, v: &Value, location: Option<&str>) -> Response<Body> {
    let mut r = response(status, "application/json", v.to_string());
    if let Some(l) = location {
        if let Ok(v) = HeaderValue::from_str(l) {
            r.headers_mut().insert(LOCATION, v);
        }
    }
    r
}

fn directory(ctx: &Ctx<'_>) -> Response<Body> {
    let eab = ctx
        .hm
        .config
        .acme
        .directories
        .get(&ctx.profile)
        .map(|d| d.eab_required)
        .unwrap_or(true);
    json_resp(
        StatusCode::OK,
        &json!({
            "newNonce": ctx.url("new-nonce"),
            "newAccount": ctx.url("new-account"),
            "newOrder": ctx.url("new-order"),
            "revokeCert": ctx.url("revoke-cert"),
            "keyChange": ctx.url("key-change"),
            "meta": {"externalAccountRequired": eab},
        }),
        None,
    )
}

/// A verified POST: the JWS, its JSON payload, and the account it was signed by (for `kid`).
struct Verified {
    jws: Jws,
    payload: Option<Value>,
    account: Option<AcmeAccount>,
    /// The key that signed (the account's, or the `jwk` header's).
    key: Jwk,
}

/// Which key a request must be signed with.
#[derive(PartialEq, Eq)]
enum KeyRule {
    Kid,
    Jwk,
    Either,
}

fn verify_post(ctx: &Ctx<'_>, req: &ApiRequest, rule: KeyRule) -> AResult<Verified> {
    let ct = req
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ct != "application/jose+json" {
        return Err(AcmeError::malformed(
            "ACME requests are sent as Content-Type: application/jose+json",
        )
        .with_status(415));
    }
    let jws = Jws::parse(&req.body)?;
    let p = &jws.protected;
    let expected = format!("{}{}", ctx.origin, req.path);
    let url = p
        .url
        .as_deref()
        .ok_or_else(|| AcmeError::malformed("the protected header has no 'url'"))?;
    if url != expected {
        return Err(AcmeError::unauthorized(format!(
            "the JWS url '{url}' is not the URL it was sent to ({expected})"
        )));
    }
    let nonce = p.nonce.as_deref().ok_or_else(|| {
        AcmeError::new(ProblemType::BadNonce, "the protected header has no nonce")
    })?;
    if nonce.is_empty() || !ctx.hm.store.take_acme_nonce(nonce)? {
        return Err(AcmeError::new(
            ProblemType::BadNonce,
            "the nonce is unknown, used or expired",
        ));
    }
    let (key, account) = match (&p.jwk, &p.kid) {
        (Some(jwk), None) => {
            if rule == KeyRule::Kid {
                return Err(AcmeError::malformed(
                    "this request must name its account with 'kid', not 'jwk'",
                ));
            }
            (Jwk::from_json(jwk)?, None)
        }
        (None, Some(kid)) => {
            if rule == KeyRule::Jwk {
                return Err(AcmeError::malformed(
                    "this request must carry the key as 'jwk', not 'kid'",
                ));
            }
            let prefix = ctx.account_url("");
            let acct = kid
                .strip_prefix(&prefix)
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .and_then(|id| ctx.hm.store.get_acme_account(id).transpose())
                .transpose()?
                .filter(|a| a.directory == ctx.profile)
                .ok_or_else(|| {
                    AcmeError::new(
                        ProblemType::AccountDoesNotExist,
                        format!("no account at {kid}"),
                    )
                })?;
            if acct.status != "valid" {
                return Err(AcmeError::unauthorized(format!(
                    "the account is {}",
                    acct.status
                )));
            }
            (Jwk::from_stored(&acct.jwk)?, Some(acct))
        }
        _ => {
            return Err(AcmeError::malformed(
                "the protected header must have exactly one of 'jwk' and 'kid'",
            ))
        }
    };
    jws.verify(&key)?;
    let payload = jws.json()?;
    Ok(Verified {
        jws,
        payload,
        account,
        key,
    })
}

fn post(ctx: &Ctx<'_>, req: &ApiRequest, template: &str, rest: &[&str]) -> AResult<Response<Body>> {
    let id = rest.get(1).copied().unwrap_or("");
    match template {
        "/acme/{profile}/new-account" => new_account(ctx, verify_post(ctx, req, KeyRule::Jwk)?),
        "/acme/{profile}/revoke-cert" => revoke_cert(ctx, verify_post(ctx, req, KeyRule::Either)?),
        _ => {
            let v = verify_post(ctx, req, KeyRule::Kid)?;
            let acct = v.account.clone().ok_or_else(AcmeError::internal)?;
            match template {
                "/acme/{profile}/new-order" => new_order(ctx, &acct, &v),
                "/acme/{profile}/key-change" => key_change(ctx, &acct, &v),
                "/acme/{profile}/account/{id}" => account(ctx, &acct, id, &v),
                "/acme/{profile}/account/{id}/orders" => {
                    if acct.id != id {
                        return Err(AcmeError::unauthorized("this is another account"));
                    }
                    let orders: Vec<String> = ctx
                        .hm
                        .store
                        .list_acme_orders(&acct.id)?
                        .iter()
                        .map(|o| ctx.url(&format!("order/{o}")))
                        .collect();
                    Ok(json_resp(StatusCode::OK, &json!({"orders": orders}), None))
                }
                "/acme/{profile}/order/{id}" => {
                    let o = own_order(ctx, &acct, id)?;
                    Ok(json_resp(StatusCode::OK, &order_json(ctx, &o)?, None))
                }
                "/acme/{profile}/order/{id}/finalize" => finalize(ctx, &acct, id, &v),
                "/acme/{profile}/authz/{id}" => authz(ctx, &acct, id, &v),
                "/acme/{profile}/chall/{id}" => challenge(ctx, &acct, id, &v),
                "/acme/{profile}/cert/{serial}" => certificate(ctx, &acct, id),
                _ => Err(AcmeError::internal()),
            }
        }
    }
}

fn account_json(ctx: &Ctx<'_>, a: &AcmeAccount) -> Value {
    let contact: Value = serde_json::from_str(&a.contact).unwrap_or_else(|_| json!([]));
    json!({
        "status": a.status,
        "contact": contact,
        "orders": ctx.url(&format!("account/{}/orders", a.id)),
    })
}

/// `mailto:` contacts only, as a JSON array.
fn contacts(v: &Value) -> AResult<Option<String>> {
    let Some(c) = v.get("contact") else {
        return Ok(None);
    };
    let list = c
        .as_array()
        .ok_or_else(|| AcmeError::malformed("'contact' is not an array"))?;
    if list.len() > 10 {
        return Err(AcmeError::new(
            ProblemType::InvalidContact,
            "at most 10 contacts",
        ));
    }
    for x in list {
        let s = x
            .as_str()
            .ok_or_else(|| AcmeError::malformed("a contact is not a string"))?;
        if !s.starts_with("mailto:") {
            return Err(AcmeError::new(
                ProblemType::UnsupportedContact,
                format!("contact '{s}' is not a mailto: URL"),
            ));
        }
        if s.len() > 256 || s.contains(',') || s.chars().any(char::is_control) {
            return Err(AcmeError::new(
                ProblemType::InvalidContact,
                format!("contact '{s}' is not one address"),
            ));
        }
    }
    Ok(Some(c.to_string()))
}

fn new_account(ctx: &Ctx<'_>, v: Verified) -> AResult<Response<Body>> {
    let payload = v.payload.clone().unwrap_or_else(|| json!({}));
    let thumb = v.key.thumbprint();
    if let Some(existing) = ctx.hm.store.find_acme_account_by_thumbprint(&thumb)? {
        if existing.directory == ctx.profile && existing.status != "valid" {
            return Err(AcmeError::unauthorized(format!(
                "the account of this key is {}",
                existing.status
            )));
        }
        if existing.directory == ctx.profile {
            return Ok(json_resp(
                StatusCode::OK,
                &account_json(ctx, &existing),
                Some(&ctx.account_url(&existing.id)),
            ));
        }
    }
    if payload.get("onlyReturnExisting").and_then(Value::as_bool) == Some(true) {
        return Err(AcmeError::new(
            ProblemType::AccountDoesNotExist,
            "no account has this key",
        ));
    }
    let contact = contacts(&payload)?.unwrap_or_else(|| "[]".into());
    let dir = ctx
        .hm
        .config
        .acme
        .directories
        .get(&ctx.profile)
        .cloned()
        .unwrap_or_default();
    let (publisher, eab_kid) = match payload.get("externalAccountBinding") {
        Some(binding) => {
            let key = eab::verify_binding(binding, &v.key, &ctx.url("new-account"), |kid| {
                let Some(mut k) = ctx.hm.store.get_eab_key(kid)? else {
                    return Ok(None);
                };
                k.hmac_key = match ctx.hm.unseal(kid, &k.hmac_key) {
                    Ok(key) => key.to_vec(),
                    Err(e) => {
                        // The key store is down or holds another sealing key: a server fault,
                        // with the detail in the log only.
                        tracing::warn!("acme: EAB key {kid}: {e}");
                        return Err(AcmeError::internal());
                    }
                };
                Ok(Some(k))
            })?;
            (key.publisher, Some(key.kid))
        }
        None if dir.eab_required => return Err(eab::required()),
        None => match dir.publisher {
            Some(p) => (p, None),
            None => return Err(eab::required()),
        },
    };
    let acct = AcmeAccount {
        id: random_token(12),
        directory: ctx.profile.clone(),
        publisher,
        jwk: v.key.canonical().to_string(),
        thumbprint: thumb,
        status: "valid".into(),
        contact,
        eab_kid,
        created_at: crate::store::now(),
    };
    match ctx.hm.store.insert_acme_account(&acct, "acme:new-account") {
        Ok(()) => {}
        Err(crate::store::StoreError::Conflict(what)) => {
            return Err(AcmeError::unauthorized(format!("{what} already exists")))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(json_resp(
        StatusCode::CREATED,
        &account_json(ctx, &acct),
        Some(&ctx.account_url(&acct.id)),
    ))
}

fn actor(a: &AcmeAccount) -> String {
    format!("acme:{}({})", a.id, a.publisher)
}

fn account(ctx: &Ctx<'_>, acct: &AcmeAccount, id: &str, v: &Verified) -> AResult<Response<Body>> {
    if acct.id != id {
        return Err(AcmeError::unauthorized("this is another account"));
    }
    if let Some(p) = &v.payload {
        let contact = contacts(p)?;
        let status = match p.get("status").and_then(Value::as_str) {
            None => None,
            Some("deactivated") => Some("deactivated"),
            Some(s) => {
                return Err(AcmeError::malformed(format!(
                    "an account's status can only become 'deactivated', not '{s}'"
                )))
            }
        };
        if contact.is_some() || status.is_some() {
            ctx.hm
                .store
                .update_acme_account(&acct.id, contact.as_deref(), status, &actor(acct))?;
        }
    }
    account_now(ctx, &acct.id)
}

/// The account as stored now (after an update or a key change), as the RFC's 200 answer.
fn account_now(ctx: &Ctx<'_>, id: &str) -> AResult<Response<Body>> {
    let now = ctx
        .hm
        .store
        .get_acme_account(id)?
        .ok_or_else(AcmeError::internal)?;
    Ok(json_resp(
        StatusCode::OK,
        &account_json(ctx, &now),
        Some(&ctx.account_url(id)),
    ))
}

/// keyChange (RFC 8555 §7.3.5): an inner JWS, signed by the new key, names the account and
/// its old key.
fn key_change(ctx: &Ctx<'_>, acct: &AcmeAccount, v: &Verified) -> AResult<Response<Body>> {
    let inner_v = v
        .payload
        .as_ref()
        .ok_or_else(|| AcmeError::malformed("keyChange needs an inner JWS"))?;
    let inner = Jws::from_value(inner_v)?;
    let p = &inner.protected;
    if p.url != v.jws.protected.url {
        return Err(AcmeError::malformed(
            "the inner JWS's url differs from the outer one",
        ));
    }
    if p.nonce.is_some() || p.kid.is_some() {
        return Err(AcmeError::malformed(
            "the inner JWS has no nonce and carries the new key as 'jwk'",
        ));
    }
    let new_key = Jwk::from_json(
        p.jwk
            .as_ref()
            .ok_or_else(|| AcmeError::malformed("the inner JWS has no 'jwk'"))?,
    )?;
    inner.verify(&new_key)?;
    let body = inner
        .json()?
        .ok_or_else(|| AcmeError::malformed("the inner JWS has no payload"))?;
    if body.get("account").and_then(Value::as_str) != Some(ctx.account_url(&acct.id).as_str()) {
        return Err(AcmeError::unauthorized(
            "the inner JWS names another account",
        ));
    }
    let old = Jwk::from_json(
        body.get("oldKey")
            .ok_or_else(|| AcmeError::malformed("the inner payload has no 'oldKey'"))?,
    )?;
    if old.canonical() != v.key.canonical() {
        return Err(AcmeError::unauthorized(
            "'oldKey' is not the account's current key",
        ));
    }
    if let Some(other) = ctx
        .hm
        .store
        .find_acme_account_by_thumbprint(&new_key.thumbprint())?
    {
        let mut r = json_resp(
            StatusCode::CONFLICT,
            &AcmeError::malformed("another account already uses the new key")
                .with_status(409)
                .document(),
            Some(&ctx.account_url(&other.id)),
        );
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        return Ok(r);
    }
    ctx.hm.store.change_acme_account_key(
        &acct.id,
        new_key.canonical(),
        &new_key.thumbprint(),
        &actor(acct),
    )?;
    account_now(ctx, &acct.id)
}

fn new_order(ctx: &Ctx<'_>, acct: &AcmeAccount, v: &Verified) -> AResult<Response<Body>> {
    let payload = v
        .payload
        .as_ref()
        .ok_or_else(|| AcmeError::malformed("newOrder needs a payload"))?;
    if payload.get("notBefore").is_some() || payload.get("notAfter").is_some() {
        return Err(AcmeError::malformed(
            "notBefore and notAfter are not supported: validity comes from the profile",
        ));
    }
    let profile = ctx
        .hm
        .profiles
        .get(&ctx.profile)
        .map_err(|_| AcmeError::internal())?;
    let ids = crate::acme::identifier::parse_order(payload, profile)?;
    let now = crate::store::now();
    let cfg = &ctx.hm.config.acme;
    let expires = now + cfg.order_lifetime_secs as i64;
    let order_id = random_token(12);
    let mut authzs = Vec::new();
    for id in &ids {
        let authz_id = random_token(12);
        let kinds: &[&str] = if id.kind == "dns" {
            &["dns-01", "http-01", "tls-alpn-01"]
        } else {
            &["http-01", "tls-alpn-01"]
        };
        let chs = kinds
            .iter()
            .map(|k| AcmeChallenge {
                id: random_token(12),
                authz_id: authz_id.clone(),
                kind: k.to_string(),
                token: random_token(32),
                status: "pending".into(),
                validated_at: None,
                error: None,
            })
            .collect();
        authzs.push((
            AcmeAuthz {
                id: authz_id,
                order_id: order_id.clone(),
                account_id: acct.id.clone(),
                id_type: id.kind.clone(),
                id_value: id.value.clone(),
                status: "pending".into(),
                expires_at: expires.min(now + cfg.authz_lifetime_secs as i64),
            },
            chs,
        ));
    }
    let order = AcmeOrder {
        id: order_id,
        account_id: acct.id.clone(),
        directory: ctx.profile.clone(),
        status: "pending".into(),
        identifiers: serde_json::to_string(&ids).map_err(|_| AcmeError::internal())?,
        not_before: None,
        not_after: None,
        expires_at: expires,
        error: None,
        cert_serial: None,
        created_at: now,
    };
    ctx.hm
        .store
        .insert_acme_order(&order, &authzs, &actor(acct))?;
    Ok(json_resp(
        StatusCode::CREATED,
        &order_json(ctx, &order)?,
        Some(&ctx.url(&format!("order/{}", order.id))),
    ))
}

fn own_order(ctx: &Ctx<'_>, acct: &AcmeAccount, id: &str) -> AResult<AcmeOrder> {
    ctx.hm
        .store
        .get_acme_order(id)?
        .filter(|o| o.account_id == acct.id)
        .ok_or_else(|| {
            AcmeError::malformed(format!("no order {id} of this account")).with_status(404)
        })
}

fn stored_problem(text: &Option<String>) -> Option<Value> {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

fn order_json(ctx: &Ctx<'_>, o: &AcmeOrder) -> AResult<Value> {
    let ids: Value = serde_json::from_str(&o.identifiers).map_err(|_| AcmeError::internal())?;
    let authzs: Vec<String> = ctx
        .hm
        .store
        .acme_authzs_of_order(&o.id)?
        .iter()
        .map(|a| ctx.url(&format!("authz/{}", a.id)))
        .collect();
    let mut v = json!({
        "status": o.status,
        "expires": rfc3339(o.expires_at),
        "identifiers": ids,
        "authorizations": authzs,
        "finalize": ctx.url(&format!("order/{}/finalize", o.id)),
    });
    if let Some(s) = &o.cert_serial {
        v["certificate"] = json!(ctx.url(&format!("cert/{s}")));
    }
    if let Some(e) = stored_problem(&o.error) {
        v["error"] = e;
    }
    Ok(v)
}

fn challenge_json(ctx: &Ctx<'_>, c: &AcmeChallenge) -> Value {
    let mut v = json!({
        "type": c.kind,
        "url": ctx.url(&format!("chall/{}", c.id)),
        "status": c.status,
        "token": c.token,
    });
    if let Some(t) = c.validated_at {
        v["validated"] = json!(rfc3339(t));
    }
    if let Some(e) = stored_problem(&c.error) {
        v["error"] = e;
    }
    v
}

fn authz_json(ctx: &Ctx<'_>, a: &AcmeAuthz) -> AResult<Value> {
    let chs: Vec<Value> = ctx
        .hm
        .store
        .acme_challenges_of_authz(&a.id)?
        .iter()
        // A valid authorization lists only the challenge that made it valid.
        .filter(|c| a.status != "valid" || c.status == "valid")
        .map(|c| challenge_json(ctx, c))
        .collect();
    Ok(json!({
        "status": a.status,
        "expires": rfc3339(a.expires_at),
        "identifier": {"type": a.id_type, "value": a.id_value},
        "challenges": chs,
    }))
}

fn own_authz(ctx: &Ctx<'_>, acct: &AcmeAccount, id: &str) -> AResult<AcmeAuthz> {
    ctx.hm
        .store
        .get_acme_authz(id)?
        .filter(|a| a.account_id == acct.id)
        .ok_or_else(|| {
            AcmeError::malformed(format!("no authorization {id} of this account")).with_status(404)
        })
}

fn authz(ctx: &Ctx<'_>, acct: &AcmeAccount, id: &str, v: &Verified) -> AResult<Response<Body>> {
    let a = own_authz(ctx, acct, id)?;
    if let Some(p) = &v.payload {
        match p.get("status").and_then(Value::as_str) {
            Some("deactivated") => {
                ctx.hm.store.deactivate_acme_authz(&a.id, &actor(acct))?;
            }
            Some(s) => {
                return Err(AcmeError::malformed(format!(
                    "an authorization's status can only become 'deactivated', not '{s}'"
                )))
            }
            None => {}
        }
    }
    let a = own_authz(ctx, acct, id)?;
    Ok(json_resp(StatusCode::OK, &authz_json(ctx, &a)?, None))
}

fn challenge(ctx: &Ctx<'_>, acct: &AcmeAccount, id: &str, v: &Verified) -> AResult<Response<Body>> {
    let c = ctx
        .hm
        .store
        .get_acme_challenge(id)?
        .ok_or_else(|| AcmeError::malformed(format!("no challenge {id}")).with_status(404))?;
    let a = own_authz(ctx, acct, &c.authz_id)?;
    // A payload (`{}`) asks the server to validate; POST-as-GET only reads.
    if v.payload.is_some() && c.status == "pending" {
        if a.status != "pending" {
            return Err(AcmeError::malformed(format!(
                "the authorization is {}",
                a.status
            )));
        }
        if VALIDATIONS.load(Ordering::SeqCst) >= MAX_VALIDATIONS {
            return Err(AcmeError::new(
                ProblemType::RateLimited,
                "too many validations are running; retry in a few seconds",
            ));
        }
        if ctx.hm.store.start_acme_challenge(&c.id, &actor(acct))? {
            spawn_validation(ctx.hm.clone(), acct, &a, &c)?;
        }
    }
    let c = ctx
        .hm
        .store
        .get_acme_challenge(id)?
        .ok_or_else(AcmeError::internal)?;
    let mut r = json_resp(StatusCode::OK, &challenge_json(ctx, &c), None);
    if let Ok(h) = HeaderValue::from_str(&format!(
        "<{}>;rel=\"up\"",
        ctx.url(&format!("authz/{}", a.id))
    )) {
        r.headers_mut().append("link", h);
    }
    Ok(r)
}

/// Validations running now, and the most there may be (each holds a thread for at most a few
/// timeouts).
static VALIDATIONS: AtomicUsize = AtomicUsize::new(0);
const MAX_VALIDATIONS: usize = 32;

/// Validates in the background; the client polls the challenge or authorization.
fn spawn_validation(
    hm: Arc<Hallmark>,
    acct: &AcmeAccount,
    a: &AcmeAuthz,
    c: &AcmeChallenge,
) -> AResult<()> {
    let key = Jwk::from_stored(&acct.jwk)?;
    let key_authz = validate::key_authorization(&c.token, &key.thumbprint());
    let id = Identifier {
        kind: a.id_type.clone(),
        value: a.id_value.clone(),
    };
    let settings = Settings::from_config(&hm.config.acme);
    let (kind, token, chall_id, who) = (c.kind.clone(), c.token.clone(), c.id.clone(), actor(acct));
    let (store, failed_id, failed_who) = (hm.clone(), c.id.clone(), actor(acct));
    VALIDATIONS.fetch_add(1, Ordering::SeqCst);
    std::thread::Builder::new()
        .name("acme-validate".into())
        .spawn(move || {
            // A client may answer its challenge a moment after asking: try three times.
            let started = std::time::Instant::now();
            let mut outcome = Err(AcmeError::internal());
            let mut attempts = 0;
            for attempt in 0..3 {
                attempts = attempt + 1;
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                outcome = validate::validate(&kind, &id, &token, &key_authz, &settings);
                if outcome.is_ok() {
                    break;
                }
            }
            let err = outcome.err().map(|e| e.document().to_string());
            tracing::info!(
                target: "hallmark::acme",
                challenge = %chall_id,
                kind = %kind,
                identifier = ?id,
                attempts,
                valid = err.is_none(),
                error = err.as_deref(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "ACME validation"
            );
            if let Err(e) = hm
                .store
                .finish_acme_challenge(&chall_id, err.as_deref(), &who)
            {
                tracing::error!("acme: cannot record the validation of {chall_id}: {e}");
            }
            VALIDATIONS.fetch_sub(1, Ordering::SeqCst);
        })
        .map_err(|e| {
            VALIDATIONS.fetch_sub(1, Ordering::SeqCst);
            tracing::error!("acme: cannot start a validation: {e}");
            // Not left processing for ever: the challenge fails and may be ordered anew.
            let doc = AcmeError::internal().document().to_string();
            let _ = store
                .store
                .finish_acme_challenge(&failed_id, Some(&doc), &failed_who);
            AcmeError::internal()
        })?;
    Ok(())
}

fn finalize(ctx: &Ctx<'_>, acct: &AcmeAccount, id: &str, v: &Verified) -> AResult<Response<Body>> {
    let o = own_order(ctx, acct, id)?;
    if o.status != "ready" {
        return Err(AcmeError::new(
            ProblemType::OrderNotReady,
            format!("the order is {}, not ready", o.status),
        ));
    }
    let csr_b64 = v
        .payload
        .as_ref()
        .and_then(|p| p.get("csr"))
        .and_then(Value::as_str)
        .ok_or_else(|| AcmeError::malformed("finalize needs {\"csr\": base64url DER}"))?;
    let der = unb64(csr_b64)
        .map_err(|_| AcmeError::new(ProblemType::BadCsr, "the CSR is not base64url"))?;
    let (names, cn) = crate::acme::names::csr_names(&der)?;
    let ordered: Vec<Identifier> =
        serde_json::from_str(&o.identifiers).map_err(|_| AcmeError::internal())?;
    let mut want = ordered.clone();
    want.sort();
    if names != want {
        return Err(AcmeError::new(
            ProblemType::BadCsr,
            format!(
                "the CSR names {} but the order is for {}",
                list(&names),
                list(&want)
            ),
        ));
    }
    if let Some(cn) = &cn {
        let cn_id = Identifier::parse(
            if cn.parse::<std::net::IpAddr>().is_ok() {
                "ip"
            } else {
                "dns"
            },
            cn,
        );
        if !cn_id.is_ok_and(|c| want.contains(&c)) {
            return Err(AcmeError::new(
                ProblemType::BadCsr,
                format!("the CSR's CN '{cn}' is not one of the order's names"),
            ));
        }
    }
    let name = cn.clone().or_else(|| {
        want.iter()
            .find(|i| i.kind == "dns" && i.value.len() <= 64)
            .or_else(|| want.first())
            .map(|i| i.value.clone())
    });
    if !ctx.hm.store.start_acme_finalize(&o.id, &actor(acct))? {
        return Err(AcmeError::new(
            ProblemType::OrderNotReady,
            "the order is no longer ready",
        ));
    }
    // The ACME account acts as its publisher, with the right to issue only.
    let cred = Credential {
        token_id: format!("acme-{}", acct.id),
        name: format!("acme:{}", acct.id),
        publisher: Some(acct.publisher.clone()),
        officer: false,
        scopes: vec![Scope::Issue],
        address: None,
        request_id: None,
    };
    let issue = IssueRequest {
        profile: ctx.profile.clone(),
        publisher: acct.publisher.clone(),
        csr: der,
        requester: cred.name.clone(),
        device_serial: None,
        name,
    };
    let outcome = ctx.hm.submit(issue, &cred);
    let who = actor(acct);
    match outcome {
        Ok(Submitted::Issued(i)) => {
            ctx.hm.store.finish_acme_order(&o.id, Ok(&i.serial), &who)?;
        }
        Ok(Submitted::Pending(r)) => {
            let e = AcmeError::unauthorized(format!(
                "profile '{}' needs approvals (request {}); ACME cannot wait for them",
                ctx.profile, r.id
            ));
            ctx.hm
                .store
                .finish_acme_order(&o.id, Err(&e.document().to_string()), &who)?;
            return Err(e);
        }
        Err(err) => {
            let e = engine_error(&err);
            ctx.hm
                .store
                .finish_acme_order(&o.id, Err(&e.document().to_string()), &who)?;
            return Err(e);
        }
    }
    let o = own_order(ctx, acct, id)?;
    Ok(json_resp(
        StatusCode::OK,
        &order_json(ctx, &o)?,
        Some(&ctx.url(&format!("order/{}", o.id))),
    ))
}

fn list(ids: &[Identifier]) -> String {
    if ids.is_empty() {
        return "nothing".into();
    }
    ids.iter()
        .map(|i| format!("{}:{}", i.kind, i.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps an engine refusal to an ACME error; anything unexpected is logged, not leaked.
fn engine_error(e: &Error) -> AcmeError {
    match e {
        Error::Policy(PolicyError::BadKey(d)) => {
            AcmeError::new(ProblemType::BadPublicKey, d.clone())
        }
        Error::Policy(PolicyError::NotAuthorized(d)) => AcmeError::unauthorized(d.clone()),
        Error::Auth(a) => AcmeError::unauthorized(a.to_string()),
        Error::Policy(
            p @ (PolicyError::BadCsr(_)
            | PolicyError::BadSignature
            | PolicyError::SubjectMismatch { .. }
            | PolicyError::UnexpectedAttribute { .. }
            | PolicyError::ExtensionRefused(_)
            | PolicyError::BadRequest(_)),
        ) => AcmeError::new(ProblemType::BadCsr, p.to_string()),
        Error::Policy(p @ PolicyError::UnknownPublisher(_)) => {
            AcmeError::unauthorized(p.to_string())
        }
        Error::Issue(crate::issuer::IssueError::Lint(l)) => AcmeError::new(
            ProblemType::BadCsr,
            format!("the certificate would fail lint: {}", l.join("; ")),
        ),
        other => {
            tracing::error!("acme: finalize: {} ({other})", other.kind());
            AcmeError::internal()
        }
    }
}

fn certificate(ctx: &Ctx<'_>, acct: &AcmeAccount, serial: &str) -> AResult<Response<Body>> {
    let serial = serial.to_ascii_lowercase();
    let order = ctx
        .hm
        .store
        .acme_order_of_certificate(&serial)?
        .filter(|o| o.account_id == acct.id)
        .ok_or_else(|| {
            AcmeError::unauthorized(format!("certificate {serial} is not this account's"))
        })?;
    let rec = ctx
        .hm
        .store
        .get_certificate(&order.cert_serial.unwrap_or_default())?
        .ok_or_else(AcmeError::internal)?;
    let leaf = rec.cert_der.ok_or_else(AcmeError::internal)?;
    let chain = ctx.hm.chain(&rec.ca).map_err(|e| {
        tracing::error!("acme: chain of {}: {e}", rec.ca);
        AcmeError::internal()
    })?;
    let mut pem = crate::pemfmt::encode("CERTIFICATE", leaf);
    for c in chain {
        pem.push_str(&crate::pemfmt::encode("CERTIFICATE", c));
    }
    Ok(response(
        StatusCode::OK,
        "application/pem-certificate-chain",
        pem,
    ))
}

/// revokeCert (RFC 8555 §7.6): by the account that ordered the certificate (or one that holds
/// valid authorizations for all its names), or signed with the certificate's own key.
fn revoke_cert(ctx: &Ctx<'_>, v: Verified) -> AResult<Response<Body>> {
    let p = v
        .payload
        .as_ref()
        .ok_or_else(|| AcmeError::malformed("revokeCert needs a payload"))?;
    let der = unb64(
        p.get("certificate")
            .and_then(Value::as_str)
            .ok_or_else(|| AcmeError::malformed("revokeCert needs 'certificate'"))?,
    )?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| AcmeError::malformed("the certificate does not parse"))?;
    let serial = crate::revocation::normalize_serial(&hex::encode(cert.raw_serial()))
        .map_err(|_| AcmeError::malformed("the certificate's serial is not usable"))?;
    let rec = ctx
        .hm
        .store
        .get_certificate(&serial)?
        .filter(|r| r.cert_der.as_deref() == Some(der.as_slice()))
        .ok_or_else(|| AcmeError::unauthorized("hallmark did not issue this certificate"))?;
    let reason_code = p.get("reason").map(|r| r.as_u64()).unwrap_or(Some(0));
    let reason = match reason_code {
        Some(0) => crate::revocation::RevocationReason::Unspecified,
        Some(1) => crate::revocation::RevocationReason::KeyCompromise,
        Some(3) => crate::revocation::RevocationReason::AffiliationChanged,
        Some(4) => crate::revocation::RevocationReason::Superseded,
        Some(5) => crate::revocation::RevocationReason::CessationOfOperation,
        _ => {
            return Err(AcmeError::new(
                ProblemType::BadRevocationReason,
                "reasons allowed: 0, 1, 3, 4, 5",
            ))
        }
    };
    let who = match &v.account {
        Some(acct) => {
            let owns = ctx
                .hm
                .store
                .acme_order_of_certificate(&rec.serial)?
                .is_some_and(|o| o.account_id == acct.id);
            let authorized = || -> AResult<bool> {
                let names = crate::acme::names::cert_names(&cert);
                if names.is_empty() {
                    return Ok(false);
                }
                for n in names {
                    if !ctx
                        .hm
                        .store
                        .acme_account_authorized_for(&acct.id, &n.kind, &n.value)?
                    {
                        return Ok(false);
                    }
                }
                Ok(true)
            };
            if !owns && !authorized()? {
                return Err(AcmeError::unauthorized(
                    "this account neither ordered the certificate nor holds authorizations for its names",
                ));
            }
            actor(acct)
        }
        None => {
            if !crate::acme::names::cert_key_matches(&cert, &v.key) {
                return Err(AcmeError::unauthorized(
                    "the JWS is not signed with the certificate's key",
                ));
            }
            format!("acme:certificate-key({})", rec.serial)
        }
    };
    if ctx.hm.store.get_revocation(&rec.serial)?.is_some() {
        return Err(AcmeError::new(
            ProblemType::AlreadyRevoked,
            "the certificate is already revoked",
        ));
    }
    if rec.status != crate::store::CertStatus::Issued {
        return Err(AcmeError::unauthorized(format!(
            "the certificate is {}",
            rec.status
        )));
    }
    ctx.hm
        .revoke(&rec.serial, reason, None, &who)
        .map_err(|e| {
            tracing::error!("acme: revoke {}: {e}", rec.serial);
            AcmeError::internal()
        })?;
    Ok(response(StatusCode::OK, "text/plain", ""))
}
