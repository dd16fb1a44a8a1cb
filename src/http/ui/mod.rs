//! The web console at `/ui/` on the API listener: server-rendered pages (maud) whose forms work
//! without JavaScript. This edge parses, finds the session, checks CSRF and Origin on every
//! state-changing form, calls one service function (`crate::console` or the engine call the API
//! makes) and renders. Every answer carries a strict CSP (no script, no inline style), denies
//! framing and referrers, is never cached, and over TLS asks for HSTS.

mod audit;
mod certificates;
mod chart;
mod keys;
mod layout;
mod people;
mod requests;
mod signatures;
mod stations;

use std::net::SocketAddr;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL, LOCATION, SET_COOKIE};
use hyper::{Method, Response, StatusCode};
use maud::html;

use super::{public_detail, response, status_of, Body};
use crate::console::{Ended, Session};
use crate::engine::Hallmark;
use crate::error::{Error, Refusal};
use crate::outbound::form_encode;
use layout::{page, Flash};

/// The session cookie: `__Host-` binds it to this origin, path `/`, Secure.
pub const COOKIE: &str = "__Host-hallmark_session";

/// The largest form the console reads.
pub const BODY_LIMIT: usize = 64 * 1024;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Whether a path is the console's.
pub fn is_console(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// A console request, its body read.
pub struct UiRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub remote: Option<SocketAddr>,
    /// Served over TLS (HSTS is sent, and the origin is `https://`).
    pub tls: bool,
}

impl UiRequest {
    fn address(&self) -> Option<String> {
        self.remote.map(|a| a.ip().to_string())
    }

    /// The cookie's session secret, if the browser sent one.
    fn cookie(&self) -> Option<&str> {
        self.cookie_named(COOKIE)
    }

    /// Cookie `name`'s value, if the browser sent one (empty and overlong ones are none).
    fn cookie_named(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(hyper::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty() && v.len() <= 128)
    }

    /// The form fields of a POST (`application/x-www-form-urlencoded`).
    fn form(&self) -> Result<Vec<(String, String)>, Error> {
        if super::media_type(&self.headers) != "application/x-www-form-urlencoded" {
            return Err(Error::UnsupportedMedia(
                "the console's forms send application/x-www-form-urlencoded".into(),
            ));
        }
        let text = std::str::from_utf8(&self.body)
            .map_err(|_| Refusal::BadParameter("the form is not UTF-8".into()))?;
        Ok(super::api::query_pairs(Some(text)))
    }

    /// A state-changing request from another origin: refused whatever it carries. Where the
    /// browser sends `Sec-Fetch-Site` it must say `same-origin`; an `Origin` must be this
    /// listener's. Under `Referrer-Policy: no-referrer` browsers send `Origin: null` on their
    /// own form posts, so `null` passes only beside `Sec-Fetch-Site: same-origin`.
    fn cross_origin(&self) -> bool {
        let header = |n: &str| self.headers.get(n).and_then(|v| v.to_str().ok());
        let site = header("sec-fetch-site");
        if site.is_some_and(|s| s != "same-origin") {
            return true;
        }
        match header("origin") {
            Some("null") => site.is_none(),
            Some(origin) => {
                let scheme = if self.tls { "https" } else { "http" };
                origin != format!("{scheme}://{}", header("host").unwrap_or(""))
            }
            None => false,
        }
    }
}

/// What a console handler gets.
pub(crate) struct Ui<'a> {
    hm: &'a Hallmark,
    req: &'a UiRequest,
    session: &'a Session,
    /// The path split at `/`, without the leading empty segment and `ui`.
    segs: Vec<&'a str>,
    q: Vec<(String, String)>,
    /// The form of a POST (its CSRF token checked).
    form: Vec<(String, String)>,
}

impl Ui<'_> {
    fn q(&self, k: &str) -> Option<String> {
        param(&self.q, k)
    }

    fn field(&self, k: &str) -> Option<String> {
        param(&self.form, k)
    }

    /// The address of the page after this one (`after`: where it starts, when there is one):
    /// this page's query with `key` set to it.
    fn next_page(&self, path: &str, key: &str, after: Option<String>) -> Option<String> {
        let after = after?;
        let mut q: Vec<String> = self
            .q
            .iter()
            .filter(|(k, _)| k != key)
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect();
        q.push(format!("{key}={}", form_encode(&after)));
        Some(format!("{path}?{}", q.join("&")))
    }
}

fn param(pairs: &[(String, String)], k: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

type Handler = fn(&Ui<'_>) -> Result<Response<Body>, Error>;

/// The console's pages and forms: (method, path template under `/ui/`, handler).
const ROUTES: &[(&str, &str, Handler)] = &[
    ("GET", "requests", requests::page),
    ("POST", "requests/{kind}/{id}", requests::decide),
    ("GET", "signatures", signatures::page),
    ("GET", "certificates", certificates::list),
    ("GET", "certificates/{serial}", certificates::one),
    ("GET", "certificates/{serial}/pem", certificates::pem),
    ("POST", "certificates/{serial}/revoke", certificates::revoke),
    ("GET", "keys", keys::page),
    ("GET", "stations", stations::page),
    ("GET", "audit", audit::page),
    ("POST", "logout", logout),
];

/// Answers a console request: the identity provider's sign-in steps here (they wait on the
/// provider), the rest on a blocking worker (they read and write the store).
pub async fn serve(state: std::sync::Arc<super::api::ApiState>, req: UiRequest) -> Response<Body> {
    let tls = req.tls;
    let r = match people::route(&state, &req).await {
        Some(r) => r,
        None => {
            let st = state.clone();
            tokio::task::spawn_blocking(move || route(&st, &req))
                .await
                .unwrap_or_else(|_| super::refused(Refusal::Internal))
        }
    };
    secured(r, tls)
}

/// Every console answer, with the console's security headers.
fn secured(mut r: Response<Body>, tls: bool) -> Response<Body> {
    let h = r.headers_mut();
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if tls {
        h.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}

fn route(state: &super::api::ApiState, req: &UiRequest) -> Response<Body> {
    let hm = &*state.hm;
    let rest = req.path.trim_start_matches("/ui").trim_matches('/');
    let segs: Vec<&str> = if rest.is_empty() {
        vec![]
    } else {
        rest.split('/').collect()
    };
    let get = req.method == Method::GET || req.method == Method::HEAD;
    match (get, segs.as_slice()) {
        (true, []) => return see_other("/ui/requests"),
        (true, ["static", "console.css"]) => {
            let mut r = response(StatusCode::OK, "text/css; charset=utf-8", layout::CSS);
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
            return r;
        }
        (true, ["static", "favicon.svg"]) => {
            let mut r = response(StatusCode::OK, "image/svg+xml", layout::ICON);
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
            return r;
        }
        (true, ["login"]) => return login_page(state, req, None, StatusCode::OK),
        (false, ["login"]) if req.method == Method::POST => return login(state, req),
        _ => {}
    }
    let Some((method, _, handler)) = ROUTES.iter().find(|(m, t, _)| {
        (*m == req.method.as_str() || (*m == "GET" && req.method == Method::HEAD))
            && super::api::fits(&format!("/{t}"), 0, &segs)
    }) else {
        let allowed = ROUTES
            .iter()
            .any(|(_, t, _)| super::api::fits(&format!("/{t}"), 0, &segs));
        return error_page(
            None,
            &Error::from(if allowed {
                Refusal::MethodNotAllowed {
                    detail: format!("{} is not served at {}", req.method, req.path),
                    allow: "GET, POST".into(),
                }
            } else {
                Refusal::NotFound(format!("nothing at {}", req.path))
            }),
        );
    };
    // The session: none, ended or unknown sends the browser to sign in (a form post too: it
    // changes nothing).
    let session = match req.cookie() {
        Some(secret) => match hm.session(secret, req.address()) {
            Ok(Ok(s)) => s,
            Ok(Err(ended)) => {
                let mut r = to_sign_in(ended);
                clear_cookie(&mut r);
                return r;
            }
            Err(e) => return error_page(None, &e),
        },
        // Nothing to clear: a cross-site request (no SameSite=Strict cookie) must not end the
        // person's session either.
        None => return to_sign_in(Ended::Unknown),
    };
    let mut form = Vec::new();
    if *method == "POST" {
        if req.cross_origin() {
            return error_page(
                Some(&session),
                &Error::from(crate::policy::auth::AuthError::Forbidden(
                    "this form was sent from another site; nothing was changed".into(),
                )),
            );
        }
        form = match req.form() {
            Ok(f) => f,
            Err(e) => return error_page(Some(&session), &e),
        };
        let sent = param(&form, "csrf").unwrap_or_default();
        if !crate::policy::auth::digest_eq(&sent, &session.csrf) {
            return error_page(
                Some(&session),
                &Error::from(crate::policy::auth::AuthError::Forbidden(
                    "the form's CSRF token is missing or stale; reload the page and try again (nothing was changed)".into(),
                )),
            );
        }
    }
    let ui = Ui {
        hm,
        req,
        session: &session,
        segs,
        q: super::api::query_pairs(req.query.as_deref()),
        form,
    };
    handler(&ui).unwrap_or_else(|e| error_page(Some(&session), &e))
}

/// 303 to `to`.
fn see_other(to: &str) -> Response<Body> {
    let mut r = response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// To the sign-in page, saying why (the caller clears a cookie that named an ended session).
fn to_sign_in(ended: Ended) -> Response<Body> {
    let why = match ended {
        Ended::Unknown => "",
        Ended::Idle => "?ended=idle",
        Ended::Absolute => "?ended=absolute",
        Ended::TokenGone => "?ended=token",
    };
    see_other(&format!("/ui/login{why}"))
}

/// The session's cookie: its opaque id, this origin only, never to scripts, never sent from
/// another site, gone at the session's absolute end.
fn set_session_cookie(r: &mut Response<Body>, secret: &str, s: &Session, now: i64) {
    let max_age = (s.expires_at - now).max(0);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    )) {
        r.headers_mut().append(SET_COOKIE, v);
    }
}

fn clear_cookie(r: &mut Response<Body>) {
    r.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static(
            "__Host-hallmark_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
}

fn html_response(status: StatusCode, body: String) -> Response<Body> {
    response(status, "text/html; charset=utf-8", body)
}

/// An error as a page, with the status the API would answer.
fn error_page(session: Option<&Session>, e: &Error) -> Response<Body> {
    let status = status_of(e);
    let body = page(
        status.canonical_reason().unwrap_or("Error"),
        "",
        session,
        Some(&Flash::Error(public_detail(e))),
        html! {
            p { a href="/ui/requests" { "Back to the requests" } }
        },
    );
    html_response(status, body)
}

fn login_page(
    state: &super::api::ApiState,
    req: &UiRequest,
    error: Option<String>,
    status: StatusCode,
) -> Response<Body> {
    let hm = &*state.hm;
    // Already signed in: on to the requests.
    if error.is_none() {
        if let Some(secret) = req.cookie() {
            if let Ok(Ok(_)) = hm.session(secret, req.address()) {
                return see_other("/ui/requests");
            }
        }
    }
    let q = super::api::query_pairs(req.query.as_deref());
    let flash = match (error, param(&q, "ended").as_deref()) {
        (Some(e), _) => Some(Flash::Error(e)),
        (None, Some("idle")) => Some(Flash::Info(Ended::Idle.says().into())),
        (None, Some("absolute")) => Some(Flash::Info(Ended::Absolute.says().into())),
        (None, Some("token")) => Some(Flash::Info(Ended::TokenGone.says().into())),
        (None, Some("out")) => Some(Flash::Info("You signed out.".into())),
        _ => None,
    };
    let body = page(
        "Sign in",
        "",
        None,
        flash.as_ref(),
        html! {
            div.login {
                p { "Sign in with your hallmark token (approver, officer or publisher). It is checked once; the browser then keeps only a session cookie." }
                form method="post" action="/ui/login" {
                    label for="token" { "Token" }
                    input id="token" name="token" type="password" autocomplete="off" required;
                    button type="submit" { "Sign in" }
                }
                @if let Some(p) = &state.people {
                    p { "Or, as a person your organisation's identity provider knows:" }
                    p { a.button href="/ui/login/oidc" { "Sign in with " (p.name()) } }
                }
            }
        },
    );
    html_response(status, body)
}

fn login(state: &super::api::ApiState, req: &UiRequest) -> Response<Body> {
    let hm = &*state.hm;
    if req.cross_origin() {
        return login_page(
            state,
            req,
            Some("this sign-in was sent from another site".into()),
            StatusCode::FORBIDDEN,
        );
    }
    if let Err(wait) = state.limiter.check(&format!(
        "console-sign-in:{}",
        req.address().unwrap_or_default()
    )) {
        return login_page(
            state,
            req,
            Some(format!(
                "too many sign-ins from this address; retry in {wait} s"
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let token = match req.form() {
        Ok(f) => param(&f, "token").unwrap_or_default(),
        Err(e) => return login_page(state, req, Some(public_detail(&e)), status_of(&e)),
    };
    match hm.sign_in(&token, req.address()) {
        Ok((secret, s)) => {
            let mut r = see_other("/ui/requests");
            set_session_cookie(&mut r, &secret, &s, hm.clock.now());
            r
        }
        Err(e) => {
            let status = status_of(&e);
            let msg = if status == StatusCode::UNAUTHORIZED {
                format!("That token was not accepted: {}", public_detail(&e))
            } else {
                public_detail(&e)
            };
            login_page(state, req, Some(msg), status)
        }
    }
}

fn logout(ui: &Ui<'_>) -> Result<Response<Body>, Error> {
    if let Some(secret) = ui.req.cookie() {
        ui.hm.sign_out(secret, &ui.session.cred)?;
    }
    let mut r = see_other("/ui/login?ended=out");
    clear_cookie(&mut r);
    Ok(r)
}

/// A page of a signed-in person.
fn ok_page(
    ui: &Ui<'_>,
    title: &str,
    current: &str,
    flash: Option<&Flash>,
    content: maud::Markup,
) -> Result<Response<Body>, Error> {
    Ok(html_response(
        StatusCode::OK,
        page(title, current, Some(ui.session), flash, content),
    ))
}

/// A time from a date field (`YYYY-MM-DD`, UTC midnight) or RFC 3339.
fn time_param(v: Option<String>, name: &str) -> Result<Option<i64>, Error> {
    let Some(v) = v else { return Ok(None) };
    crate::timespec::parse(&v).map(Some).ok_or_else(|| {
        Refusal::BadParameter(format!("{name} '{v}' is not a date (YYYY-MM-DD)")).into()
    })
}

/// A positive id from a query or path.
fn id_param(v: Option<&str>, name: &str) -> Result<Option<i64>, Error> {
    match v {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| Refusal::BadParameter(format!("{name} '{s}' is not a number")).into()),
    }
}
