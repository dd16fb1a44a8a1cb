//! The HTTP edge. For now: `/healthz` and the CA certificates at the URLs written into
//! certificates (AIA caIssuers). Later issues add the JSON API, CRLs, OCSP and ACME here.
//!
//! hyper 1 on tokio; every request is answered from the engine, errors as
//! `application/problem+json` with a stable `type`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::engine::Hallmark;

pub const PROBLEM_BASE: &str = "https://hallmark.dev/problems/";

type Body = Full<Bytes>;

fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
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

/// Routes one request.
pub fn route(hm: &Hallmark, method: &Method, path: &str) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "only GET is served here",
        );
    }
    if path == "/healthz" {
        return response(StatusCode::OK, "text/plain", "ok\n");
    }
    if let Some(file) = path.strip_prefix("/ca/") {
        let (name, pem) = if let Some(n) = file.strip_suffix(".crt") {
            (n, false)
        } else if let Some(n) = file.strip_suffix(".pem") {
            (n, true)
        } else {
            return problem(
                StatusCode::NOT_FOUND,
                "not-found",
                "CA certificates are at /ca/NAME.crt (DER) or /ca/NAME.pem",
            );
        };
        return match hm.store.get_ca(name) {
            Ok(Some(ca)) => match ca.cert_der {
                Some(der) if pem => response(
                    StatusCode::OK,
                    "application/x-pem-file",
                    pem::encode(&pem::Pem::new("CERTIFICATE", der)),
                ),
                Some(der) => response(StatusCode::OK, "application/pkix-cert", der),
                None => problem(
                    StatusCode::NOT_FOUND,
                    "not-found",
                    &format!("CA '{name}' has no certificate yet"),
                ),
            },
            Ok(None) => problem(
                StatusCode::NOT_FOUND,
                "not-found",
                &format!("no CA named '{name}'"),
            ),
            Err(e) => {
                eprintln!("hallmark: GET {path}: {e}");
                problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is not available",
                )
            }
        };
    }
    problem(
        StatusCode::NOT_FOUND,
        "not-found",
        &format!("nothing at {path}"),
    )
}

async fn handle(hm: Arc<Hallmark>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = tokio::task::spawn_blocking(move || route(&hm, &method, &path))
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
