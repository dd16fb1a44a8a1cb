//! The ACME server (RFC 8555) at `/acme/{profile}/...` on the API listener.
//!
//! Each POST is a JWS: its `url` must be the URL it was sent to, its nonce one hallmark gave
//! out and not yet used, and its key the account's (`kid`) or, for newAccount and revokeCert,
//! one it carries (`jwk`). Accounts belong to the publisher of their EAB key; finalize sends the
//! CSR down the engine's one issuance path (policy, lint, record) as that publisher. Every
//! answer carries a fresh Replay-Nonce; every error is an ACME problem document.

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION};
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::api::{ApiRequest, ApiState};
use super::{response, Body};
use crate::acme::jws::{Jwk, Jws};
use crate::acme::{contacts, unb64, Acme, AcmeError, KeyChange, NewAccount, ProblemType, Revoker};
use crate::store::rfc3339;
use crate::store::{
    AcmeAccount, AcmeAuthz, AcmeAuthzStatus, AcmeChallenge, AcmeChallengeStatus, AcmeOrder,
};

/// Every ACME route (method and template): the entries of the API's one routing table that
/// this router serves. newNonce also answers HEAD.
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    super::api::API_ROUTES
        .iter()
        .filter(|r| r.access == super::api::Access::Acme)
        .map(|r| (r.method, r.template))
}

type AResult<T> = Result<T, AcmeError>;

/// One request's context: the directory's base URL and its ACME service.
struct Ctx<'a> {
    acme: Acme<'a>,
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
    let Some((&profile, rest)) = segs.split_first() else {
        let acme = Acme::new(hm, "");
        return ("/acme", finish(&acme, None, Err(not_found(&req.path))));
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
        acme: Acme::new(hm, profile),
        origin: format!("{scheme}://{host}"),
        base: format!("{scheme}://{host}/acme/{profile}"),
    };
    let index = ctx.url("directory");
    let m = &req.method;
    // newNonce answers HEAD as well as GET (RFC 8555 §7.2).
    let method_fits = |r: &(&str, &str)| {
        r.0 == m.as_str() || (m.as_str() == "HEAD" && r.1 == "/acme/{profile}/new-nonce")
    };
    let at_path = || routes().filter(|(_, t)| super::api::fits(t, 2, rest));
    let template: &'static str = match at_path().find(|r| method_fits(r)) {
        Some((_, t)) => t,
        None => {
            let e = if at_path().next().is_some() {
                AcmeError::malformed(format!("{m} is not allowed here (ACME uses POST)"))
                    .with_status(405)
            } else {
                not_found(&req.path)
            };
            return ("/acme/unmatched", finish(&ctx.acme, Some(&index), Err(e)));
        }
    };
    if !hm.config.acme.directories.contains_key(profile) || hm.profiles.get(profile).is_err() {
        let e = AcmeError::malformed(format!(
            "there is no ACME directory for profile '{profile}'"
        ))
        .with_status(404);
        return (template, finish(&ctx.acme, None, Err(e)));
    }
    // The API's per-minute limit, per client address (ACME has no token to count by).
    let who = req.remote.map(|a| a.ip().to_string()).unwrap_or_default();
    if let Err(wait) = state.limiter.check(&format!("acme:{who}")) {
        let e = AcmeError::new(
            ProblemType::RateLimited,
            format!("too many ACME requests from {who}; retry in {wait} s"),
        );
        let mut r = finish(&ctx.acme, Some(&index), Err(e));
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
    (template, finish(&ctx.acme, Some(&index), result))
}

fn not_found(path: &str) -> AcmeError {
    AcmeError::malformed(format!("no ACME resource at {path}")).with_status(404)
}

/// Adds Replay-Nonce and the index link; turns an error into a problem document.
fn finish(acme: &Acme<'_>, index: Option<&str>, r: AResult<Response<Body>>) -> Response<Body> {
    let mut resp = match r {
        Ok(r) => r,
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            response(status, "application/problem+json", e.document().to_string())
        }
    };
    match acme.new_nonce() {
        Ok(nonce) => {
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
    json_resp(
        StatusCode::OK,
        &json!({
            "newNonce": ctx.url("new-nonce"),
            "newAccount": ctx.url("new-account"),
            "newOrder": ctx.url("new-order"),
            "revokeCert": ctx.url("revoke-cert"),
            "keyChange": ctx.url("key-change"),
            "meta": {"externalAccountRequired": ctx.acme.eab_required()},
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
    if super::media_type(&req.headers) != "application/jose+json" {
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
    ctx.acme.use_nonce(nonce)?;
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
            let id = kid
                .strip_prefix(&prefix)
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .ok_or_else(|| {
                    AcmeError::new(
                        ProblemType::AccountDoesNotExist,
                        format!("no account at {kid}"),
                    )
                })?;
            let acct = ctx.acme.signing_account(id, kid)?;
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
                        .acme
                        .orders(&acct)?
                        .iter()
                        .map(|o| ctx.url(&format!("order/{o}")))
                        .collect();
                    Ok(json_resp(StatusCode::OK, &json!({"orders": orders}), None))
                }
                "/acme/{profile}/order/{id}" => {
                    let o = ctx.acme.order(&acct, id)?;
                    Ok(json_resp(StatusCode::OK, &order_json(ctx, &o)?, None))
                }
                "/acme/{profile}/order/{id}/finalize" => {
                    let o = ctx.acme.finalize(&acct, id, v.payload.as_ref())?;
                    Ok(json_resp(
                        StatusCode::OK,
                        &order_json(ctx, &o)?,
                        Some(&ctx.url(&format!("order/{}", o.id))),
                    ))
                }
                "/acme/{profile}/authz/{id}" => {
                    let status = v.payload.as_ref().and_then(|p| p.get("status"));
                    let a = ctx
                        .acme
                        .update_authz(&acct, id, status.and_then(Value::as_str))?;
                    Ok(json_resp(StatusCode::OK, &authz_json(ctx, &a)?, None))
                }
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

/// An account as the RFC's answer, with its URL.
fn account_resp(ctx: &Ctx<'_>, status: StatusCode, a: &AcmeAccount) -> Response<Body> {
    json_resp(status, &account_json(ctx, a), Some(&ctx.account_url(&a.id)))
}

fn new_account(ctx: &Ctx<'_>, v: Verified) -> AResult<Response<Body>> {
    let payload = v.payload.clone().unwrap_or_else(|| json!({}));
    Ok(
        match ctx
            .acme
            .new_account(&v.key, &payload, &ctx.url("new-account"))?
        {
            NewAccount::Existing(a) => account_resp(ctx, StatusCode::OK, &a),
            NewAccount::Created(a) => account_resp(ctx, StatusCode::CREATED, &a),
        },
    )
}

fn account(ctx: &Ctx<'_>, acct: &AcmeAccount, id: &str, v: &Verified) -> AResult<Response<Body>> {
    if acct.id != id {
        return Err(AcmeError::unauthorized("this is another account"));
    }
    let now = match &v.payload {
        Some(p) => {
            let contact = contacts(p)?;
            let status = p.get("status").and_then(Value::as_str);
            ctx.acme.update_account(acct, contact.as_deref(), status)?
        }
        None => ctx.acme.account(&acct.id)?,
    };
    Ok(account_resp(ctx, StatusCode::OK, &now))
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
    match ctx.acme.change_key(acct, &new_key)? {
        KeyChange::Changed(a) => Ok(account_resp(ctx, StatusCode::OK, &a)),
        KeyChange::KeyInUse(other) => {
            let mut r = json_resp(
                StatusCode::CONFLICT,
                &AcmeError::malformed("another account already uses the new key")
                    .with_status(409)
                    .document(),
                Some(&ctx.account_url(&other)),
            );
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            Ok(r)
        }
    }
}

fn new_order(ctx: &Ctx<'_>, acct: &AcmeAccount, v: &Verified) -> AResult<Response<Body>> {
    let payload = v
        .payload
        .as_ref()
        .ok_or_else(|| AcmeError::malformed("newOrder needs a payload"))?;
    let order = ctx.acme.new_order(acct, payload)?;
    Ok(json_resp(
        StatusCode::CREATED,
        &order_json(ctx, &order)?,
        Some(&ctx.url(&format!("order/{}", order.id))),
    ))
}

fn stored_problem(text: &Option<String>) -> Option<Value> {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

fn order_json(ctx: &Ctx<'_>, o: &AcmeOrder) -> AResult<Value> {
    let ids: Value = serde_json::from_str(&o.identifiers).map_err(|_| AcmeError::internal())?;
    let authzs: Vec<String> = ctx
        .acme
        .authzs_of(o)?
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
        .acme
        .challenges_of(a)?
        .iter()
        // A valid authorization lists only the challenge that made it valid.
        .filter(|c| a.status != AcmeAuthzStatus::Valid || c.status == AcmeChallengeStatus::Valid)
        .map(|c| challenge_json(ctx, c))
        .collect();
    Ok(json!({
        "status": a.status,
        "expires": rfc3339(a.expires_at),
        "identifier": {"type": a.id_type, "value": a.id_value},
        "challenges": chs,
    }))
}

/// A challenge: POST-as-GET reads it; a payload (`{}`) asks the server to validate it.
fn challenge(ctx: &Ctx<'_>, acct: &AcmeAccount, id: &str, v: &Verified) -> AResult<Response<Body>> {
    let (c, a) = ctx.acme.challenge(acct, id, v.payload.is_some())?;
    let mut r = json_resp(StatusCode::OK, &challenge_json(ctx, &c), None);
    if let Ok(h) = HeaderValue::from_str(&format!(
        "<{}>;rel=\"up\"",
        ctx.url(&format!("authz/{}", a.id))
    )) {
        r.headers_mut().append("link", h);
    }
    Ok(r)
}

fn certificate(ctx: &Ctx<'_>, acct: &AcmeAccount, serial: &str) -> AResult<Response<Body>> {
    let (leaf, chain) = ctx.acme.certificate(acct, serial)?;
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
    let reason = p.get("reason").map(|r| r.as_u64()).unwrap_or(Some(0));
    let by = match &v.account {
        Some(acct) => Revoker::Account(acct),
        None => Revoker::CertificateKey(&v.key),
    };
    ctx.acme.revoke(&der, reason, by)?;
    Ok(response(StatusCode::OK, "text/plain", ""))
}
