//! The one place an error becomes an answer: [`error_response`] turns any [`Error`] (a
//! service's refusal, a fault, or an edge's own [`Refusal`]) into an RFC 9457 problem document
//! with a stable `type`, by its [`Class`]. A fault of the server answers a generic detail and
//! leaves the error in the log.

use hyper::header::{HeaderValue, ALLOW, RETRY_AFTER};
use hyper::{Response, StatusCode};

use super::{response, Body};
use crate::error::{Class, Error, Refusal, PROBLEM_BASE};

/// The HTTP status of an error, by its class: the one mapping both the API and the console use.
pub fn status_of(e: &Error) -> StatusCode {
    match e.class() {
        Class::BadRequest => StatusCode::BAD_REQUEST,
        Class::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Class::Unauthorized => StatusCode::UNAUTHORIZED,
        Class::Forbidden => StatusCode::FORBIDDEN,
        Class::NotFound => StatusCode::NOT_FOUND,
        Class::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Class::Timeout => StatusCode::REQUEST_TIMEOUT,
        Class::Conflict => StatusCode::CONFLICT,
        Class::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Class::UriTooLong => StatusCode::URI_TOO_LONG,
        Class::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        Class::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Class::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Class::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Class::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What an answer may say of an error: [`Error::public_detail`], the one place that decides.
pub fn public_detail(e: &Error) -> String {
    e.public_detail()
}

/// The problem document of `e`.
pub fn error_response(e: &Error) -> Response<Body> {
    let status = status_of(e);
    // A fault of the server answers a generic kind (and `public_detail` a generic sentence);
    // the edge's own words about what is unreachable are kept.
    let kind = e.public_kind();
    let mut r = problem(status, kind, &public_detail(e));
    match e {
        Error::RateLimited { retry_after, .. } => {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(RETRY_AFTER, v);
            }
        }
        Error::Refused(Refusal::MethodNotAllowed { allow, .. }) => {
            if let Ok(v) = HeaderValue::from_str(allow) {
                r.headers_mut().insert(ALLOW, v);
            }
        }
        _ => {}
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"hallmark\""),
        );
    }
    r
}

/// The problem document of an edge's refusal.
pub fn refused(r: Refusal) -> Response<Body> {
    error_response(&Error::Refused(r))
}

/// An RFC 9457 problem document.
fn problem(status: StatusCode, kind: &str, detail: &str) -> Response<Body> {
    let body = serde_json::json!({
        "type": format!("{PROBLEM_BASE}{kind}"),
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    response(status, "application/problem+json", body.to_string())
}
