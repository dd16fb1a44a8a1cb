//! Sign-in through the console's identity provider (`[console.oidc]`): `GET /ui/login/oidc`
//! (a link: the CSP's `form-action 'self'` would stop a form's redirect to the provider)
//! starts the authorization code flow (PKCE) and binds its state to this browser with a
//! short-lived cookie; `GET /ui/login/callback` checks that cookie against the state, has the
//! provider's code redeemed and its ID token verified (`crate::oidc::people`), and opens a
//! session with the rights `[[console.person]]` gives the person.

use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::{Method, Response, StatusCode};
use maud::html;

use super::layout::{page, Flash};
use super::{html_response, param, see_other, set_session_cookie, Body, UiRequest};
use crate::error::Error;

/// The cookie that binds a sign-in in flight to the browser that started it. `Lax`: the
/// provider's redirect back is a cross-site navigation, which a `Strict` cookie would miss.
const FLOW_COOKIE: &str = "__Host-hallmark_login";

/// The provider's steps, or `None` for any other console request.
pub(super) async fn route(
    state: &super::super::api::ApiState,
    req: &UiRequest,
) -> Option<Response<Body>> {
    let path = req.path.trim_end_matches('/');
    let start = req.method == Method::GET && path == "/ui/login/oidc";
    let callback = req.method == Method::GET && path == "/ui/login/callback";
    if !start && !callback {
        return None;
    }
    let Some(people) = state.people.clone() else {
        return Some(failed(
            StatusCode::NOT_FOUND,
            "no identity provider is set up here ([console.oidc]); sign in with a token",
        ));
    };
    if start {
        return Some(match people.begin().await {
            Ok((url, flow)) => {
                let mut r = see_other(&url);
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "{FLOW_COOKIE}={flow}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"
                )) {
                    r.headers_mut().insert(SET_COOKIE, v);
                }
                r
            }
            Err(e) => error(&e.into()),
        });
    }
    let q = super::super::api::query_pairs(req.query.as_deref());
    if let Some(e) = param(&q, "error") {
        return Some(failed(
            StatusCode::UNAUTHORIZED,
            &format!("the identity provider did not sign you in ({e})"),
        ));
    }
    let (Some(code), Some(flow)) = (param(&q, "code"), param(&q, "state")) else {
        return Some(failed(
            StatusCode::BAD_REQUEST,
            "the identity provider's answer lacks its code or state",
        ));
    };
    // The state must be the one this browser started (a sign-in begun elsewhere and handed to
    // this browser is refused).
    if req.cookie_named(FLOW_COOKIE) != Some(flow.as_str()) {
        return Some(failed(
            StatusCode::FORBIDDEN,
            "this sign-in was not started in this browser; start again",
        ));
    }
    let person = match people.finish(&flow, &code).await {
        Ok(p) => p,
        Err(e) => return Some(error(&e.into())),
    };
    let hm = state.hm.clone();
    let address = req.address();
    let opened = tokio::task::spawn_blocking(move || hm.sign_in_person(&person, address)).await;
    Some(match opened {
        Ok(Ok((secret, s))) => {
            // A page, not a redirect: the session's Strict cookie is sent on the next request
            // only if that request starts here, not in the provider's redirect chain.
            let mut r = html_response(
                StatusCode::OK,
                page(
                    "Signed in",
                    "",
                    None,
                    Some(&Flash::Info(format!("Signed in as {}.", s.cred.name))),
                    html! {
                        meta http-equiv="refresh" content="0;url=/ui/requests";
                        p { a href="/ui/requests" { "Continue to the requests" } }
                    },
                ),
            );
            set_session_cookie(&mut r, &secret, &s, state.hm.clock.now());
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{FLOW_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
            )) {
                r.headers_mut().append(SET_COOKIE, v);
            }
            r
        }
        Ok(Err(e)) => error(&e),
        Err(_) => error(&Error::Refused(crate::error::Refusal::Internal)),
    })
}

fn error(e: &Error) -> Response<Body> {
    failed(super::status_of(e), &super::public_detail(e))
}

fn failed(status: StatusCode, why: &str) -> Response<Body> {
    html_response(
        status,
        page(
            "Sign-in failed",
            "",
            None,
            Some(&Flash::Error(why.to_string())),
            html! { p { a href="/ui/login" { "Back to sign in" } } },
        ),
    )
}
