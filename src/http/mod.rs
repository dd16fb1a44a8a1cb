//! The HTTP edge: hyper 1 on tokio, thin over the engine.
//!
//! The public listener (`public`) serves what relying parties fetch without credentials: health,
//! CA certificates at the URLs written into certificates. Errors are RFC 9457
//! `application/problem+json` with a stable `type`.

pub mod access;
pub mod acme;
pub mod api;
mod body;
mod idle;
mod linger;
mod parse_errors;
mod problem;
pub mod provision;
pub mod public;
pub mod publication;
pub mod ratelimit;
mod slots;
pub mod tls;
pub mod ui;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::engine::Hallmark;

use crate::error::Refusal;
pub use crate::error::PROBLEM_BASE;
use body::{body_refused, closing, declared_over, read_body, too_large_answer};
pub use problem::{error_response, public_detail, refused, status_of};

pub type Body = Full<Bytes>;

pub fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// The media type of a request's Content-Type (lower case, parameters dropped; empty if none).
pub fn media_type(h: &hyper::HeaderMap) -> String {
    h.get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// The largest request body the public listener reads (OCSP requests are small).
pub const PUBLIC_BODY_LIMIT: usize = 16 * 1024;

/// The longest request target (path and query) either listener serves.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) either listener serves.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// A request head over hallmark's limits, answered with a problem document (414, 431).
///
/// hyper answers heads it cannot parse itself, with a bare 400, 414 or 431 and no hook to give
/// them a body; its limits (a 64 KiB target, a ~400 KiB head, 100 headers) lie above these,
/// so an oversized target or head gets a problem document here, and only a malformed head, a
/// target beyond 64 KiB or a head beyond hyper's buffer or header count gets hyper's bare answer.
fn head_refusal(parts: &hyper::http::request::Parts) -> Option<Response<Body>> {
    let target = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(refused(Refusal::UriTooLong(format!(
            "request targets here are limited to {MAX_URI_BYTES} bytes"
        ))));
    }
    let head: usize = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if head > MAX_HEADER_BYTES {
        return Some(refused(Refusal::HeadersTooLarge(format!(
            "request headers here are limited to {MAX_HEADER_BYTES} bytes in all"
        ))));
    }
    None
}

/// The public listener's service: the request's id and access line around [`handle_public`].
async fn handle(hm: Arc<Hallmark>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let started = std::time::Instant::now();
    let request_id = crate::logging::request_id();
    let method = req.method().clone();
    let route = public::template_of(req.uri().path());
    let resp = match handle_public(hm, req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let done = access::Done {
        listener: "public",
        method: &method,
        route,
        credential: None,
        request_id: &request_id,
        started,
    };
    Ok(done.finish(resp).await)
}

async fn handle_public(
    hm: Arc<Hallmark>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    // An OCSP GET too long to be a request still gets an OCSP answer (malformedRequest).
    if !parts.uri.path().starts_with("/ocsp/") {
        if let Some(r) = head_refusal(&parts) {
            return Ok(r);
        }
    }
    // An OCSP client gets an OCSP answer, even for a body too large to be a request.
    let too_large = |parts: &hyper::http::request::Parts| {
        if parts.method == hyper::Method::POST && parts.uri.path() == "/ocsp" {
            let mut r = response(
                StatusCode::OK,
                "application/ocsp-response",
                crate::issuer::ocsp::error_response(
                    crate::issuer::ocsp::ResponseStatus::MalformedRequest,
                ),
            );
            r.headers_mut().insert(
                hyper::header::CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("no-cache, no-store"),
            );
            closing(r)
        } else {
            too_large_answer(format!(
                "request bodies here are limited to {PUBLIC_BODY_LIMIT} bytes"
            ))
        }
    };
    if declared_over(&parts.headers, PUBLIC_BODY_LIMIT) {
        return Ok(too_large(&parts));
    }
    let body = match read_body(body, PUBLIC_BODY_LIMIT, &hm.config.api).await {
        Ok(b) => b,
        Err(Refusal::TooLarge(_)) => return Ok(too_large(&parts)),
        Err(r) => return Ok(refused(r)),
    };
    let req = public::PublicRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    if publication::answers_inline(&req) {
        return Ok(public::route(&hm, &req));
    }
    let resp = tokio::task::spawn_blocking(move || public::route(&hm, &req))
        .await
        .unwrap_or_else(|_| refused(Refusal::Internal));
    Ok(resp)
}

/// Addresses to listen on; `api: None` serves only the public listener.
#[derive(Debug, Clone)]
pub struct Listen {
    pub public: SocketAddr,
    pub api: Option<SocketAddr>,
}

/// What the listeners bound to.
#[derive(Debug, Clone)]
pub struct Bound {
    pub public: SocketAddr,
    /// The API address, and whether it speaks TLS.
    pub api: Option<(SocketAddr, bool)>,
}

/// Builds the API listener's TLS acceptor from the config.
fn tls_acceptor(hm: &Hallmark) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    let io_err = |e: String| std::io::Error::other(e);
    let api = &hm.config.api;
    let cert_file = api
        .tls_cert_file
        .as_ref()
        .ok_or_else(|| io_err("api.tls_cert_file is not set".into()))?;
    let cert_path = hm.config.resolve(cert_file);
    let chain_text = std::fs::read_to_string(&cert_path)
        .map_err(|e| io_err(format!("{}: {e}", cert_path.display())))?;
    let chain = tls::read_chain(&chain_text).map_err(|e| io_err(e.to_string()))?;
    let key = match (&api.tls_key_label, &api.tls_key_file) {
        (Some(label), _) => {
            let ks = hm
                .key_store(&hm.config.keys.default_store)
                .map_err(|e| io_err(e.to_string()))?;
            tls::TlsKey::Store(ks.open(label).map_err(|e| io_err(e.to_string()))?)
        }
        (None, Some(file)) => {
            let path = hm.config.resolve(file);
            tls::TlsKey::Pem(
                std::fs::read_to_string(&path)
                    .map_err(|e| io_err(format!("{}: {e}", path.display())))?,
            )
        }
        (None, None) => return Err(io_err("api: no TLS key configured".into())),
    };
    // Stations authenticate with certificates from the TLS CA.
    let client_roots = if api.client_auth {
        let tls_ca = hm
            .store
            .get_ca(crate::engine::CaPurpose::Tls.default_name())
            .map_err(|e| io_err(e.to_string()))?
            .and_then(|c| c.cert_der)
            .ok_or_else(|| io_err("api.client_auth needs the tls-ca certificate".into()))?;
        Some(vec![rustls::pki_types::CertificateDer::from(tls_ca)])
    } else {
        None
    };
    let cfg = tls::server_config(chain, key, client_roots).map_err(|e| io_err(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Serves both listeners until SIGINT/SIGTERM, then stops accepting and lets requests in
/// flight finish (up to 30 s). `ready` is called once the sockets are bound.
pub async fn serve(
    hm: Arc<Hallmark>,
    listen: Listen,
    ready: impl FnOnce(&Bound),
) -> std::io::Result<()> {
    let public = bind(listen.public).map_err(|e| {
        listen_error(
            e,
            listen.public,
            "--public-listen ADDR (or server.listen in the config)",
        )
    })?;
    let api =
        match listen.api {
            Some(a) => Some(bind(a).map_err(|e| {
                listen_error(e, a, "--api-listen ADDR (or api.listen in the config)")
            })?),
            None => None,
        };
    let use_tls = hm.config.api.transport == crate::config::Transport::Tls;
    let acceptor = match (&api, use_tls) {
        (Some(_), true) => Some(tls_acceptor(&hm)?),
        _ => None,
    };
    let bound = Bound {
        public: public.local_addr()?,
        api: match &api {
            Some(l) => Some((l.local_addr()?, use_tls)),
            None => None,
        },
    };
    // What a stop left half-done (certificate intents, claimed requests) is finished before
    // the server says it is ready and answers requests.
    match hm.recover() {
        Ok(r) if r.is_empty() => {}
        Ok(r) => tracing::info!("recovered what a stop left: {r}"),
        Err(e) => tracing::error!("recovery at start did not finish: {e}"),
    }
    // EAB keys an older hallmark stored in clear are sealed now.
    match hm.seal_clear_secrets() {
        Ok(0) => {}
        Ok(n) => tracing::info!("sealed {n} EAB key(s) that were stored in clear"),
        Err(e) => tracing::error!("cannot seal the EAB keys stored in clear: {e}"),
    }
    ready(&bound);
    let api_addr = bound
        .api
        .map_or_else(|| "none".to_string(), |(a, _)| a.to_string());
    tracing::info!(
        public = %bound.public,
        api = %api_addr,
        tls = bound.api.is_some_and(|(_, tls)| tls),
        version = env!("CARGO_PKG_VERSION"),
        "serving"
    );
    // Background tasks of the server (CRL and OCSP refresh) start here.
    crate::revocation::spawn_refresher(hm.revocation.clone());
    crate::webhooks::spawn(hm.webhooks.clone());
    // Say what each ACME directory issues for (on stderr, with the other notices).
    if bound.api.is_some() {
        for c in hm.acme_checks() {
            tracing::info!("{}: {}", c.name, c.detail);
        }
    }
    for c in hm
        .signing_policy_checks()
        .into_iter()
        .chain(hm.identity_rule_checks())
        .filter(|c| !c.ok)
    {
        tracing::warn!("{}: {}", c.name, c.detail);
    }
    let api_state = Arc::new(api::ApiState::new(hm.clone()).map_err(std::io::Error::other)?);
    if let Some(v) = api_state.oidc.clone() {
        // The first CI job should not wait for the issuers' keys.
        tokio::spawn(async move { v.warm().await });
    }
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let header_timeout = std::time::Duration::from_secs(hm.config.api.header_timeout_secs);
    let lifetime = std::time::Duration::from_secs(hm.config.api.connection_timeout_secs);
    // Each listener holds at most `max_connections`, and no more than the descriptor limit
    // leaves room for; when one is full, the connection that has made the least progress
    // closes to admit the new one (`slots`), so slow clients cannot lock a fresh one out.
    let (nofile, max) = slots::descriptor_budget(
        hm.config.api.max_connections,
        if api.is_some() { 2 } else { 1 },
    );
    if max < hm.config.api.max_connections {
        tracing::warn!(
            descriptors = nofile.unwrap_or(0),
            per_listener = max,
            "the descriptor limit allows {max} connections per listener, fewer than \
             api.max_connections ({}); raise the limit (systemd: LimitNOFILE=) to hold more",
            hm.config.api.max_connections
        );
    }
    let public_slots = slots::Slots::new(max);
    let api_slots = slots::Slots::new(max);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            r = public.accept() => {
                let stream = match r {
                    Ok((stream, _)) => stream,
                    Err(e) => { accept_failed("public", &e).await; continue }
                };
                let (slot, made_room) = public_slots.admit();
                if let Some(victim) = made_room {
                    hm.metrics.count_refused_connection("public");
                    // Its descriptor is free before the next accept (bounded: a connection
                    // closes as soon as its task runs).
                    let _ = tokio::time::timeout(std::time::Duration::from_millis(100), victim.closed()).await;
                }
                let hm = hm.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(parse_errors::ParseErrors::new(
                        linger::Linger::new(idle::IdleIo::new(stream, lifetime)),
                    ));
                    let answered = slot.answered.clone();
                    let svc = hyper::service::service_fn(move |req| {
                        let (hm, answered) = (hm.clone(), answered.clone());
                        async move {
                            let r = handle(hm, req).await;
                            answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            r
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .header_read_timeout(header_timeout)
                        .timer(hyper_util::rt::TokioTimer::new())
                        .serve_connection(io, svc);
                    tokio::select! {
                        _ = watcher.watch(conn) => {}
                        _ = slot.evicted.notified() => {}
                    }
                });
            }
            r = async { match &api { Some(l) => l.accept().await, None => std::future::pending().await } } => {
                let (stream, remote) = match r {
                    Ok(s) => s,
                    Err(e) => { accept_failed("API", &e).await; continue }
                };
                let (slot, made_room) = api_slots.admit();
                if let Some(victim) = made_room {
                    hm.metrics.count_refused_connection("api");
                    // Its descriptor is free before the next accept (bounded: a connection
                    // closes as soon as its task runs).
                    let _ = tokio::time::timeout(std::time::Duration::from_millis(100), victim.closed()).await;
                }
                let state = api_state.clone();
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                let evicted = slot.evicted.clone();
                let connection = async move {
                    let answered = slot.answered.clone();
                    let _slot = slot;
                    let served = move |r| {
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        r
                    };
                    let builder = {
                        let mut b = hyper::server::conn::http1::Builder::new();
                        b.header_read_timeout(header_timeout).timer(hyper_util::rt::TokioTimer::new());
                        b
                    };
                    match acceptor {
                        Some(acc) => {
                            // Plain HTTP sent to the TLS port gets an answer that says so.
                            let mut first = [0u8; 1];
                            match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
                                Ok(Ok(1)) if first[0].is_ascii_uppercase() => {
                                    plain_http_on_tls_port(stream, header_timeout).await;
                                    return;
                                }
                                Ok(Ok(1)) => {}
                                _ => return,
                            }
                            let stream = idle::IdleIo::new(stream, lifetime);
                            let Ok(Ok(tls)) = tokio::time::timeout(header_timeout, acc.accept(stream)).await else {
                                return;
                            };
                            // A verified client certificate (factory stations), if one was sent.
                            let peer: Option<Arc<Vec<u8>>> = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| Arc::new(c.to_vec()));
                            let svc = hyper::service::service_fn(move |req| {
                                let served = served.clone();
                                let f = handle_api(state.clone(), remote, peer.clone(), req);
                                async move { served(f.await) }
                            });
                            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(parse_errors::ParseErrors::new(linger::Linger::new(tls))), svc);
                            let _ = watcher.watch(conn).await;
                        }
                        None => {
                            let stream = idle::IdleIo::new(stream, lifetime);
                            let svc = hyper::service::service_fn(move |req| {
                                let served = served.clone();
                                let f = handle_api(state.clone(), remote, None, req);
                                async move { served(f.await) }
                            });
                            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(parse_errors::ParseErrors::new(linger::Linger::new(stream))), svc);
                            let _ = watcher.watch(conn).await;
                        }
                    }
                };
                // A connection told to make room ends here, its socket closed.
                tokio::spawn(async move {
                    tokio::select! {
                        _ = connection => {}
                        _ = evicted.notified() => {}
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    drop(public);
    drop(api);
    let open = |slots: &slots::Slots| slots.open();
    tracing::info!(
        public_connections = open(&public_slots),
        api_connections = open(&api_slots),
        "stopping: no new connections; draining those open (up to 30 s)"
    );
    let drained = tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown())
        .await
        .is_ok();
    if drained {
        tracing::info!("stopped: every connection drained");
    } else {
        tracing::warn!(
            public_connections = open(&public_slots),
            api_connections = open(&api_slots),
            "stopped after 30 s with connections still open"
        );
    }
    Ok(())
}

/// Reads and drops what a refused request is still sending (at most 64 KiB, for at most a
/// second), so the client reads the refusal: a server that closes a connection with unread
/// data makes the kernel reset it, and the client sees the reset instead of the answer.
pub(crate) async fn drain_refused(body: Incoming) {
    use http_body_util::BodyExt;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async move {
        let mut body = body;
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > 64 * 1024 {
                break;
            }
        }
    })
    .await;
}

/// Connections the kernel queues for a listener before it accepts them. The default of the
/// standard library and mio (128) overflows under a burst of clients: past it the kernel drops
/// handshakes, and a client that believes itself connected waits seconds for a retransmission
/// (the kernel caps this at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` (address reuse on, as `TcpListener::bind` sets it) with
/// [`LISTEN_BACKLOG`].
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Answers a plain HTTP request that reached the TLS port (its first byte is a method's letter,
/// not a TLS record) with a 400 problem document saying to use https, as nginx does, then
/// closes. The head is read first (up to 16 KiB, within the header timeout) so the answer is
/// not lost to a reset.
async fn plain_http_on_tls_port(mut stream: tokio::net::TcpStream, within: std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::with_capacity(1024);
    let _ = tokio::time::timeout(within, async {
        let mut buf = [0u8; 2048];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
    let body = serde_json::json!({
        "type": format!("{PROBLEM_BASE}bad-request"),
        "title": "Bad Request",
        "status": 400,
        "detail": format!(
            "this port ({port}) speaks HTTPS: use https:// in the URL, and trust the CA's root (hallmark ca cert root; --ca for hallmark, --cacert for curl)"
        ),
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A listener that cannot be opened, said with the address and the flag that moves it.
fn listen_error(e: std::io::Error, addr: SocketAddr, flag: &str) -> std::io::Error {
    let why = match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "the address is in use (another hallmark serve, or another program, listens there): stop it, or listen elsewhere with {flag}"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE): pick a port above 1024 with {flag}"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "no interface of this machine has that address: pick one it has (127.0.0.1, 0.0.0.0) with {flag}"
        ),
        _ => format!("{e}; another address can be given with {flag}"),
    };
    std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {why}"))
}

/// An accept that failed (descriptors used up: EMFILE/ENFILE, or a network error) is retried
/// after a pause, not at once: retrying at once spins a core and starves the connections that
/// are open.
async fn accept_failed(listener: &str, e: &std::io::Error) {
    use std::sync::atomic::{AtomicU64, Ordering};
    // At most one line a second: seconds since the first failure, on the monotonic clock.
    static FIRST: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    static LAST_LOGGED: AtomicU64 = AtomicU64::new(u64::MAX);
    let t = FIRST
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs();
    if LAST_LOGGED.swap(t, Ordering::Relaxed) != t {
        tracing::warn!("{listener} listener: accept failed ({e}); pausing 100 ms");
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// The API listener's response body: whole (most routes) or streamed (provisioning).
pub type ApiBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn boxed(r: Response<Body>) -> Response<ApiBody> {
    use http_body_util::BodyExt;
    r.map(|b| b.boxed())
}

async fn handle_api(
    state: Arc<api::ApiState>,
    remote: SocketAddr,
    peer: Option<Arc<Vec<u8>>>,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>, Infallible> {
    let started = std::time::Instant::now();
    let request_id = crate::logging::request_id();
    let method = req.method().clone();
    let (parts, body) = req.into_parts();
    if let Some(r) = head_refusal(&parts) {
        let done = access::Done {
            listener: "api",
            method: &method,
            route: "unmatched",
            credential: None,
            request_id: &request_id,
            started,
        };
        return Ok(boxed(done.finish(r).await));
    }
    let req = Request::from_parts(parts, body);
    if req.method() == hyper::Method::POST && req.uri().path() == "/api/v1/provision/batch" {
        const ROUTE: &str = "/api/v1/provision/batch";
        let mut resp = provision::stream(state.hm.clone(), peer, req.into_body()).await;
        state
            .hm
            .metrics
            .observe_request(ROUTE, resp.status().as_u16(), started.elapsed());
        if let Ok(v) = hyper::header::HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        // The station is named by its certificate in the provisioning records; the line says
        // when the answer began (it streams on).
        access::Done {
            listener: "api",
            method: &method,
            route: ROUTE,
            credential: Some("station"),
            request_id: &request_id,
            started,
        }
        .log(resp.status(), None);
        return Ok(resp);
    }
    let (route, credential, resp) = if ui::is_console(req.uri().path()) {
        let st = state.clone();
        let r = handle_console(state, remote, req).await;
        st.hm
            .metrics
            .observe_request("/ui", r.status().as_u16(), started.elapsed());
        ("/ui", None, r)
    } else {
        handle_api_whole(state, remote, req, started, &request_id).await
    };
    let done = access::Done {
        listener: "api",
        method: &method,
        route,
        credential: credential.as_deref(),
        request_id: &request_id,
        started,
    };
    Ok(boxed(done.finish(resp).await))
}

/// A web console request: its form read (within the console's limit), then the page.
async fn handle_console(
    state: Arc<api::ApiState>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    if declared_over(&parts.headers, ui::BODY_LIMIT) {
        return too_large_answer(format!(
            "the request body is over the limit of {} bytes",
            ui::BODY_LIMIT
        ));
    }
    let body = match read_body(body, ui::BODY_LIMIT, &state.hm.config.api).await {
        Ok(b) => b,
        Err(r) => return body_refused(r),
    };
    let req = ui::UiRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        remote: Some(remote),
        tls: state.hm.config.api.transport == crate::config::Transport::Tls,
    };
    ui::serve(state, req).await
}

/// A request read whole: (route template, credential id, response).
async fn handle_api_whole(
    state: Arc<api::ApiState>,
    remote: SocketAddr,
    req: Request<Incoming>,
    started: std::time::Instant,
    request_id: &str,
) -> (&'static str, Option<String>, Response<Body>) {
    let limit = state.hm.config.api.body_limit;
    let (parts, body) = req.into_parts();
    // The route, the credential, its rate and its scope are settled from the head, before the
    // body is read: a caller without the right waits for no body and sends none. (On the async
    // worker: a cached token and one read of the cache generation, as OCSP answers are.)
    let (template, cred) = match api::admit(
        &state,
        &parts.method,
        parts.uri.path(),
        &parts.headers,
        Some(remote),
        Some(request_id),
    )
    .await
    {
        api::Admission::Answered(route, r) => {
            state
                .hm
                .metrics
                .observe_request(route, r.status().as_u16(), started.elapsed());
            // Not parsed, not kept: only taken off the wire so the refusal arrives.
            drain_refused(body).await;
            return (route, None, r);
        }
        api::Admission::Proceed(template, cred) => (template, cred),
    };
    let credential = cred.as_ref().map(|c| c.token_id.clone());
    let read = if declared_over(&parts.headers, limit) {
        Err(Refusal::TooLarge(format!(
            "the request body is over the limit of {limit} bytes"
        )))
    } else {
        read_body(body, limit, &state.hm.config.api).await
    };
    let body = match read {
        Ok(b) => b,
        Err(r) => {
            if matches!(r, Refusal::TooLarge(_)) {
                state
                    .hm
                    .metrics
                    .observe_request("too-large", 413, started.elapsed());
            }
            return (template, credential, body_refused(r));
        }
    };
    let req = api::ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        remote: Some(remote),
    };
    let st = state.clone();
    let (route, resp) = tokio::task::spawn_blocking(move || {
        api::route_admitted(&st, &req, template, cred.as_ref())
    })
    .await
    .unwrap_or_else(|_| ("panic", refused(Refusal::Internal)));
    state
        .hm
        .metrics
        .observe_request(route, resp.status().as_u16(), started.elapsed());
    (route, credential, resp)
}
