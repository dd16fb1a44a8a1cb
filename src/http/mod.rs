//! The HTTP edge: hyper 1 on tokio, thin over the engine.
//!
//! The public listener (`public`) serves what relying parties fetch without credentials: health,
//! CA certificates at the URLs written into certificates. Errors are RFC 9457
//! `application/problem+json` with a stable `type`.

pub mod public;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::engine::Hallmark;

pub const PROBLEM_BASE: &str = "https://hallmark.dev/problems/";

pub type Body = Full<Bytes>;

pub fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// An RFC 9457 problem document.
pub fn problem(status: StatusCode, kind: &str, detail: &str) -> Response<Body> {
    let body = serde_json::json!({
        "type": format!("{PROBLEM_BASE}{kind}"),
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    response(status, "application/problem+json", body.to_string())
}

/// The largest request body the public listener reads (OCSP requests are small).
pub const PUBLIC_BODY_LIMIT: usize = 16 * 1024;

async fn handle(hm: Arc<Hallmark>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, PUBLIC_BODY_LIMIT);
    let body = match limited.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                &format!("request bodies here are limited to {PUBLIC_BODY_LIMIT} bytes"),
            ))
        }
    };
    let req = public::PublicRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    let resp = tokio::task::spawn_blocking(move || public::route(&hm, &req))
        .await
        .unwrap_or_else(|_| {
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        });
    Ok(resp)
}

/// Serves until SIGINT/SIGTERM. `ready` is called with the bound address.
pub async fn serve(
    hm: Arc<Hallmark>,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    ready(listener.local_addr()?);
    // Background tasks of the server (CRL and OCSP refresh) start here.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        };
        let hm = hm.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper::service::service_fn(move |req| handle(hm.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(std::time::Duration::from_secs(10))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(io, svc);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(60), conn).await;
        });
    }
    Ok(())
}
