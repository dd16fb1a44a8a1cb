//! The end of every request on either listener: its id (`X-Request-Id`, and `request_id` in a
//! problem document) and its access line (target `hallmark::access`).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

use super::Body;

/// What the access line of a finished request says.
pub struct Done<'a> {
    pub listener: &'static str,
    pub method: &'a hyper::Method,
    pub route: &'a str,
    /// The token (its id, never its secret) or station that made the request.
    pub credential: Option<&'a str>,
    pub request_id: &'a str,
    pub started: std::time::Instant,
}

impl Done<'_> {
    /// Ends a response: the request id as `X-Request-Id` (and in a problem document), and the
    /// access line.
    pub async fn finish(&self, resp: Response<Body>) -> Response<Body> {
        use http_body_util::BodyExt;
        let problem = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == b"application/problem+json");
        let mut resp = if problem {
            let (mut parts, body) = resp.into_parts();
            let bytes = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(never) => match never {},
            };
            let bytes = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(mut v) if v.is_object() => {
                    v["request_id"] = serde_json::Value::from(self.request_id);
                    Bytes::from(v.to_string())
                }
                _ => bytes,
            };
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            Response::from_parts(parts, Full::new(bytes))
        } else {
            resp
        };
        if let Ok(v) = hyper::header::HeaderValue::from_str(self.request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        self.log(
            resp.status(),
            http_body::Body::size_hint(resp.body()).exact(),
        );
        resp
    }

    /// One access line (target `hallmark::access`): method, route template, status, latency,
    /// bytes, credential id and request id.
    pub fn log(&self, status: StatusCode, bytes: Option<u64>) {
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "hallmark::access",
            listener = self.listener,
            method = %self.method,
            route = self.route,
            status = status.as_u16(),
            latency_ms,
            bytes,
            credential = self.credential,
            request_id = self.request_id,
            "request"
        );
    }
}
