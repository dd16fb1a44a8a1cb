//! Request bodies: read whole within a size limit, a deadline and a minimum rate, or refused;
//! a body over the limit is refused from its head when it says its length, and every such
//! refusal closes the connection (after the lingering drain of [`super::linger`]).

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::Response;

use super::{refused, Body};
use crate::error::Refusal;

/// A request's body, read whole within `limit` bytes and `[api] body_timeout_secs`, and, once
/// `min_body_rate_grace_secs` have passed, arriving at `min_body_rate` bytes a second on
/// average (a slow client trickling a body frees its connection: Apache's `MinRate`); otherwise
/// the refusal (a body that is not valid HTTP framing, a malformed chunk, is the client's
/// error, not a size problem).
pub(super) async fn read_body(
    mut body: Incoming,
    limit: usize,
    api: &crate::config::ApiSection,
) -> Result<Bytes, Refusal> {
    use http_body_util::BodyExt;
    // Most requests (every GET) have no body: nothing to wait for.
    if http_body::Body::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    let start = tokio::time::Instant::now();
    let end = start + std::time::Duration::from_secs(api.body_timeout_secs);
    let grace = std::time::Duration::from_secs(api.min_body_rate_grace_secs);
    let mut got = bytes::BytesMut::new();
    loop {
        // By when the next bytes must arrive: the end of the grace, extended by the time the
        // bytes so far buy at the minimum rate (never past the body's own deadline).
        let due = match api.min_body_rate {
            0 => end,
            rate => end.min(
                start + grace + std::time::Duration::from_secs_f64(got.len() as f64 / rate as f64),
            ),
        };
        let frame = match tokio::time::timeout_at(due, body.frame()).await {
            Err(_) if due < end => return Err(Refusal::TooSlow(api.min_body_rate)),
            Err(_) => return Err(Refusal::Timeout),
            Ok(None) => return Ok(got.freeze()),
            Ok(Some(Err(_))) => return Err(Refusal::BadFraming),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if got.len() + data.len() > limit {
                return Err(Refusal::TooLarge(format!(
                    "the request body is over the limit of {limit} bytes"
                )));
            }
            got.extend_from_slice(&data);
        }
    }
}

/// Whether the request's `Content-Length` declares a body over `limit`: decided from the head,
/// so such a request is answered before any of its body is read (and a client that sent
/// `Expect: 100-continue` gets no `100 Continue`, and sends nothing).
pub(super) fn declared_over(headers: &hyper::HeaderMap, limit: usize) -> bool {
    headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
}

/// `r` with `Connection: close`: what the client is still sending of a refused body is not read
/// as a next request (the connection lingers, [`super::linger`], so the answer arrives).
pub(super) fn closing(mut r: Response<Body>) -> Response<Body> {
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
}

/// The 413 problem document for a body over a limit, closing the connection.
pub(super) fn too_large_answer(detail: String) -> Response<Body> {
    closing(refused(Refusal::TooLarge(detail)))
}

/// An edge's refusal of a body; one over the limit closes the connection.
pub(super) fn body_refused(r: Refusal) -> Response<Body> {
    match r {
        Refusal::TooLarge(d) => too_large_answer(d),
        other => refused(other),
    }
}
