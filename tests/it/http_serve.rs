//! `hallmark serve` on 127.0.0.1: health and CA certificates at the URLs written into certificates.

use crate::common::*;

#[test]
fn serves_health_and_ca_certificates() {
    let ca = TestCa::new(Keys::Soft);
    let server = Server::start(&ca, false);
    let base = server.public.clone();

    let (code, body, _) = curl(&format!("{base}/healthz"), &[]);
    assert_eq!((code, body.as_slice()), (200, b"ok\n".as_slice()));

    let (code, der, ctype) = curl(&format!("{base}/ca/root.crt"), &[]);
    assert_eq!(code, 200);
    assert_eq!(ctype, "application/pkix-cert");
    let pem_text = ca.hm(&["ca", "cert", "root"]);
    assert_eq!(
        ::pem::parse(pem_text).expect("pem").contents(),
        der.as_slice()
    );

    let (code, body, _) = curl(&format!("{base}/ca/code-signing-ca.pem"), &[]);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("BEGIN CERTIFICATE"));

    let (code, body, ctype) = curl(&format!("{base}/ca/nope.crt"), &[]);
    assert_eq!(code, 404);
    assert_eq!(ctype, "application/problem+json");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("problem json");
    assert_eq!(v["type"], "urn:hallmark:problem:not-found");
    assert_eq!(v["status"], 404);
}

/// 2,000 slow connections (bodies that never finish on the public listener, TLS handshakes that
/// never start on the API listener) do not stop either listener: `/healthz` and OCSP keep
/// answering; past `max_connections` a new connection is admitted and the oldest slow one
/// closed; a body not sent within `body_timeout_secs` gets 408 and its connection is closed.
#[test]
fn slow_clients_cannot_take_the_listeners() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let ca = TestCa::new(Keys::Soft);
    let config = std::fs::read_to_string(ca.config()).expect("config");
    assert!(config.contains("body_timeout_secs = 30") && config.contains("max_connections = 4096"));
    let config = config
        .replace("body_timeout_secs = 30", "body_timeout_secs = 6")
        .replace("max_connections = 4096", "max_connections = 1600");
    std::fs::write(ca.config(), config).expect("write config");
    let server = Server::start(&ca, true);
    let root = ca.ca_pem("root").display().to_string();
    let addr = |url: &str| url.rsplit("//").next().unwrap_or("").to_string();
    let (public, api) = (
        addr(&server.public),
        addr(server.api.as_deref().expect("api")),
    );
    let slow_body = |to: &str| {
        let mut s = TcpStream::connect(to).expect("connect");
        s.write_all(
            b"POST /ocsp HTTP/1.1\r\nHost: t\r\nContent-Type: application/ocsp-request\r\nContent-Length: 1000\r\n\r\nx",
        )
        .expect("send");
        s
    };
    let mut held: Vec<TcpStream> = (0..1500).map(|_| slow_body(&public)).collect();
    let silent: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(&api).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // Both listeners still answer.
    let (code, body, _) = curl(&format!("{}/healthz", server.public), &[]);
    assert_eq!((code, body.as_slice()), (200, b"ok\n".as_slice()));
    let healthz = format!("{}/healthz", server.api.as_deref().expect("api"));
    let (code, _, _) = curl(&healthz, &["--cacert", &root]);
    assert_eq!(code, 200);
    let (code, _, ctype) = curl(
        &format!("{}/ocsp", server.public),
        &[
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            "not an OCSP request",
        ],
    );
    assert_eq!((code, ctype.as_str()), (200, "application/ocsp-response"));

    // Past the cap (1,600 per listener), a new connection is admitted and the one that has
    // made the least progress (the oldest slow body) is closed to make room.
    let extra: Vec<TcpStream> = (0..200).map(|_| slow_body(&public)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let closed_now = |s: &TcpStream| {
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let mut s = s;
        let mut b = [0u8; 16];
        // Closed with the request unread: a FIN (0 bytes) or a reset.
        match s.read(&mut b) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    };
    let oldest_closed = held[..100].iter().filter(|s| closed_now(s)).count();
    assert_eq!(oldest_closed, 100, "the 100 oldest slow bodies made room");
    let newcomers_open = extra.iter().filter(|s| !closed_now(s)).count();
    assert_eq!(newcomers_open, 200, "every new connection is admitted");
    // The health check is admitted too (and the next oldest slow body makes room for it).
    let (code, body, _) = curl(&format!("{}/healthz", server.public), &[]);
    assert_eq!((code, body.as_slice()), (200, b"ok\n".as_slice()));
    drop(extra);
    held.drain(..101);

    // The bodies that never come: 408 after body_timeout_secs, then the connection is closed.
    let start = Instant::now();
    let mut timed_out = 0;
    for s in held.iter_mut().step_by(50) {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        if String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408") {
            timed_out += 1;
        }
    }
    assert_eq!(timed_out, 28, "every sampled slow body got 408");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "cut, not held open"
    );
    drop(silent);
    let (code, _, _) = curl(&healthz, &["--cacert", &root]);
    assert_eq!(code, 200);
}

/// A chunked body with broken framing is a 400 problem document, not 413.
#[test]
fn malformed_chunked_bodies_are_bad_requests() {
    use std::io::{Read, Write};
    let ca = TestCa::new(Keys::Soft);
    let server = Server::start(&ca, false);
    let addr = server.public.rsplit("//").next().unwrap_or("").to_string();
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.write_all(
        b"POST /ocsp HTTP/1.1\r\nHost: t\r\nContent-Type: application/ocsp-request\r\nTransfer-Encoding: chunked\r\n\r\nZZ-not-hex\r\nabc\r\n0\r\n\r\n",
    )
    .expect("send");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("bad-request"), "{text}");
}

/// A request target or head over the listeners' limits is a problem document (414, 431) on
/// both listeners, not hyper's bare answer; an OCSP GET too long to be a request is still an
/// OCSP answer.
#[test]
fn oversized_heads_are_problem_documents() {
    let ca = TestCa::new(Keys::Soft);
    let server = Server::start(&ca, true);
    let api = server.api.clone().expect("api listener");
    let root = ca.ca_pem("root").display().to_string();
    let long = "a".repeat(hallmark::http::MAX_URI_BYTES + 100);
    let big_header = format!(
        "X-Padding: {}",
        "b".repeat(hallmark::http::MAX_HEADER_BYTES)
    );
    for (base, tls) in [
        (server.public.as_str(), None),
        (api.as_str(), Some(root.as_str())),
    ] {
        let tls_args: Vec<&str> = tls.map(|r| vec!["--cacert", r]).unwrap_or_default();
        let (code, body, ctype) = curl(&format!("{base}/healthz?{long}"), &tls_args);
        assert_eq!(code, 414, "{base}: {}", String::from_utf8_lossy(&body));
        assert_eq!(ctype, "application/problem+json");
        assert!(String::from_utf8_lossy(&body).contains("uri-too-long"));
        let mut args = tls_args.clone();
        args.extend(["-H", big_header.as_str()]);
        let (code, body, ctype) = curl(&format!("{base}/healthz"), &args);
        assert_eq!(code, 431, "{base}: {}", String::from_utf8_lossy(&body));
        assert_eq!(ctype, "application/problem+json");
        assert!(String::from_utf8_lossy(&body).contains("headers-too-large"));
        // Just under the limits: served.
        let (code, _, _) = curl(&format!("{base}/healthz?{}", &long[..4000]), &tls_args);
        assert_eq!(code, 200, "{base}");
    }
    let (code, body, ctype) = curl(&format!("{}/ocsp/{long}", server.public), &[]);
    assert_eq!(code, 200);
    assert_eq!(ctype, "application/ocsp-response");
    // OCSPResponse { responseStatus malformedRequest (1) }
    assert_eq!(body, [0x30, 0x03, 0x0a, 0x01, 0x01]);
}

/// The credential, its scope and its rate are settled from the head: a caller without the
/// right is answered at once (401/403) without the server waiting for a body it announced, and
/// only an admitted caller's body is read.
#[test]
fn the_credential_is_checked_before_the_body_is_read() {
    use std::io::{Read, Write};
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    // Plain HTTP on the API listener (development mode), so the test speaks raw HTTP/1.1.
    let config = std::fs::read_to_string(ca.config()).expect("config");
    std::fs::write(
        ca.config(),
        config.replace("transport = \"tls\"", "transport = \"plain\""),
    )
    .expect("write config");
    let issue_only = ca.token(&["--publisher", "acme", "--scopes", "issue"]);
    let server = Server::start(&ca, true);
    let api = server.api.clone().expect("api listener");
    let addr = api.rsplit("//").next().unwrap_or("").to_string();
    // Sends a head announcing a 60,000-byte body and no body; the answer, if one comes in 5 s.
    let head_only = |path: &str, token: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
        )
        .expect("send");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut answer = vec![0u8; 4096];
        let n = s.read(&mut answer).unwrap_or(0);
        String::from_utf8_lossy(&answer[..n]).into_owned()
    };
    // Each refusal arrives within the 5 s read timeout, long before the body deadline (30 s).
    let text = head_only("/api/v1/certificates", "hmk_0123456789ab_nosuchsecret");
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    let text = head_only("/api/v1/signatures", &issue_only);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    let text = head_only("/api/v1/certificates/00/revoke", &issue_only);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    // A refused caller that sends its body at once still reads the refusal (the server takes
    // the body off the wire instead of resetting the connection), every time.
    let body = vec![b'x'; 60_000];
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        let mut req = format!(
            "POST /api/v1/certificates HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer hmk_0123456789ab_nosuchsecret\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        let _ = s.write_all(&req);
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut answer = vec![0u8; 4096];
        let n = s.read(&mut answer).unwrap_or(0);
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 401"), "{text:?}");
    }
    // An admitted caller's announced body is waited for: no answer while it is missing.
    let text = head_only("/api/v1/certificates", &issue_only);
    assert!(text.is_empty(), "answered before the body arrived: {text}");
}

/// A listener address in use is refused with the address and the flag to change it; plain
/// HTTP sent to the TLS port is a 400 problem document that says to use https.
#[test]
fn a_busy_port_and_http_on_the_tls_port_say_what_to_do() {
    let ca = TestCa::new(Keys::Soft);
    let server = Server::start(&ca, true);
    let public = server.public.rsplit("//").next().unwrap_or("").to_string();
    let out = run(&mut ca.cmd(&["serve", "--public-listen", &public, "--no-api"]));
    let text = text_of(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!("cannot listen on {public}"))
            && text.contains("in use")
            && text.contains("--public-listen"),
        "{text}"
    );
    let api = server.api.clone().expect("api");
    let plain = api.replace("https://", "http://");
    let (code, body, ctype) = curl(&format!("{plain}/healthz"), &[]);
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/problem+json");
    assert!(String::from_utf8_lossy(&body).contains("use https://"));
    // The TLS port still serves TLS.
    let root = ca.ca_pem("root").display().to_string();
    let (code, _, _) = curl(&format!("{api}/healthz"), &["--cacert", &root]);
    assert_eq!(code, 200);
}

/// A head hyper cannot parse (a garbage request line, a target over 64 KiB, more than 100
/// headers) is answered by hyper itself; the answer that reaches the client is still a problem
/// document (400, 414, 431), and the connection is closed.
#[test]
fn unparsable_heads_get_problem_documents() {
    use std::io::{Read, Write};
    let ca = TestCa::new(Keys::Soft);
    let server = Server::start(&ca, false);
    let addr = server.public.rsplit("//").next().unwrap_or("").to_string();
    let many_headers: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    for (request, status, kind) in [
        ("GARBAGE\r\n\r\n".to_string(), "400", "bad-request"),
        (
            format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(70_000)),
            "414",
            "uri-too-long",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{many_headers}\r\n"),
            "431",
            "headers-too-large",
        ),
    ] {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        let _ = s.write_all(request.as_bytes());
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
        assert!(text.contains("application/problem+json"), "{text}");
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let v: serde_json::Value = serde_json::from_str(body).expect("problem document");
        assert_eq!(v["type"], format!("urn:hallmark:problem:{kind}"), "{text}");
    }
    // The listener goes on serving.
    let (code, _, _) = curl(&format!("{}/healthz", server.public), &[]);
    assert_eq!(code, 200);
}

/// A body over the limit gets its 413 problem document, never a broken pipe: a declared
/// `Content-Length` over the limit is answered from the head (no `100 Continue`, no body read),
/// a chunked body that grows past the limit is answered when it does, and either way the
/// connection lingers until the client has read the answer. With curl as users run it, with
/// and without `Expect: 100-continue`, on the API, the console, ACME and the public listener
/// (whose OCSP route answers in OCSP's own form).
#[test]
fn oversized_bodies_get_413_on_every_listener() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let token = ca.token(&["--publisher", "acme", "--scopes", "issue"]);
    let server = Server::start(&ca, true);
    let api = server.api.clone().expect("api listener");
    let root = ca.ca_pem("root").display().to_string();
    let big = ca.path("two-megabytes.json");
    std::fs::write(&big, vec![b' '; 2 * 1024 * 1024]).expect("write");
    let data = format!("@{}", big.display());
    let auth = format!("Authorization: Bearer {token}");
    let before = ca.store().count_certificates(None).expect("count");
    for (url, tls, extra, ctype) in [
        (
            format!("{api}/api/v1/certificates"),
            true,
            vec!["-H", auth.as_str()],
            "application/json",
        ),
        (
            format!("{api}/ui/login"),
            true,
            vec![],
            "application/x-www-form-urlencoded",
        ),
        (
            format!("{api}/acme/tls-server/new-account"),
            true,
            vec![],
            "application/jose+json",
        ),
        (
            format!("{}/healthz", server.public),
            false,
            vec![],
            "text/plain",
        ),
    ] {
        for (expect, chunked) in [(true, false), (false, false), (true, true), (false, true)] {
            let content_type = format!("Content-Type: {ctype}");
            let mut args: Vec<&str> = vec!["--data-binary", &data, "-H", &content_type];
            if tls {
                args.extend(["--cacert", &root]);
            }
            args.extend(extra.iter().copied());
            args.push("-H");
            args.push(if expect {
                "Expect: 100-continue"
            } else {
                "Expect:"
            });
            if chunked {
                args.extend(["-H", "Transfer-Encoding: chunked"]);
            }
            let what = format!("{url} expect={expect} chunked={chunked}");
            let mut c = std::process::Command::new(tool("curl"));
            c.args(["-sS", "-i", "--max-time", "30"])
                .args(&args)
                .arg(&url);
            let out = run(&mut c);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{what}: curl failed: {err}\n{text}");
            assert!(!err.contains("Broken pipe"), "{what}: {err}");
            if !chunked {
                assert!(!text.contains("100 Continue"), "{what}: continued: {text}");
            }
            let answer = text
                .split("\r\n\r\n")
                .find(|h| h.starts_with("HTTP/1.1 4"))
                .unwrap_or_else(|| panic!("{what}: no answer: {text}"));
            assert!(answer.starts_with("HTTP/1.1 413"), "{what}: {text}");
            let lower = answer.to_ascii_lowercase();
            assert!(
                lower.contains("content-type: application/problem+json"),
                "{what}: {text}"
            );
            assert!(lower.contains("connection: close"), "{what}: {text}");
            assert!(
                text.contains("urn:hallmark:problem:too-large"),
                "{what}: {text}"
            );
        }
    }
    // OCSP keeps its own form: malformedRequest.
    for chunked in [false, true] {
        let mut args = vec![
            "--data-binary",
            data.as_str(),
            "-H",
            "Content-Type: application/ocsp-request",
        ];
        if chunked {
            args.extend(["-H", "Transfer-Encoding: chunked"]);
        }
        let (code, body, ctype) = curl(&format!("{}/ocsp", server.public), &args);
        assert_eq!((code, ctype.as_str()), (200, "application/ocsp-response"));
        assert_eq!(body, [0x30, 0x03, 0x0a, 0x01, 0x01]);
    }
    assert_eq!(
        ca.store().count_certificates(None).expect("count"),
        before,
        "nothing stored"
    );
    // The listeners still answer.
    let (code, _, _) = curl(&format!("{api}/healthz"), &["--cacert", &root]);
    assert_eq!(code, 200);
}

/// One slow client: connects (to the API listener over TLS when `tls` is given), sends a request
/// head announcing a 10 kB body (within both listeners' limits), then one body byte every 2 s; when the server answers or
/// closes, it connects again (after 100 ms), as slowloris tools keep their count up.
async fn slow_body_client(
    addr: String,
    tls: Option<tokio_rustls::TlsConnector>,
    path: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connects: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn trickle<S: AsyncRead + AsyncWrite + Unpin>(
        mut s: S,
        path: &str,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\n"
        );
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {
                    if s.write_all(b"a").await.is_err() {
                        return;
                    }
                }
                // An answer, or the server closed: this connection is over.
                _ = s.read(&mut buf) => return,
            }
        }
    }
    while !stop.load(Ordering::Relaxed) {
        if let Ok(tcp) = tokio::net::TcpStream::connect(&addr).await {
            connects.fetch_add(1, Ordering::Relaxed);
            match &tls {
                None => trickle(tcp, path, &stop).await,
                Some(c) => {
                    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
                        .expect("server name")
                        .to_owned();
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        c.connect(name, tcp),
                    );
                    if let Ok(Ok(s)) = handshake.await {
                        trickle(s, path, &stop).await;
                    }
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// 400 slow clients (a request head, then a body byte every 2 s, reconnecting when cut off),
/// half on each listener, against a server whose descriptor limit is 256: a client probing
/// `/healthz` on both listeners every 2 s with a 2 s timeout is answered every time, 50 of 50.
#[test]
fn slow_bodies_under_a_small_descriptor_limit_do_not_starve_health_checks() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let ca = TestCa::new(Keys::Soft);
    let server = Server::start_with_nofile(&ca, 256);
    let root = ca.ca_pem("root");
    let api = server.api.clone().expect("api listener");
    let addr = |url: &str| url.rsplit("//").next().unwrap_or("").to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_file_iter(&root).expect("root") {
        roots.add(c.expect("cert")).expect("add");
    }
    let tls = tokio_rustls::TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicUsize::new(0));
    for i in 0..400 {
        let (to, tls, path) = if i % 2 == 0 {
            (addr(&server.public), None, "/ocsp")
        } else {
            (addr(&api), Some(tls.clone()), "/ui/login")
        };
        rt.spawn(slow_body_client(
            to,
            tls,
            path,
            stop.clone(),
            connects.clone(),
        ));
    }
    std::thread::sleep(std::time::Duration::from_secs(5));
    let root = root.display().to_string();
    let probe = |url: String, tls: bool| {
        let root = root.clone();
        std::thread::spawn(move || {
            let mut args = vec!["--max-time", "2"];
            if tls {
                args.extend(["--cacert", root.as_str()]);
            }
            curl(&url, &args).0 == 200
        })
    };
    let mut answered = 0;
    let mut missed = Vec::new();
    for round in 0..25 {
        let tick = std::time::Instant::now();
        let probes = [
            ("public", probe(format!("{}/healthz", server.public), false)),
            ("api", probe(format!("{api}/healthz"), true)),
        ];
        for (which, p) in probes {
            if p.join().unwrap_or(false) {
                answered += 1;
            } else {
                missed.push(format!("round {round} {which}"));
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(2).saturating_sub(tick.elapsed()));
    }
    stop.store(true, Ordering::Relaxed);
    let connects = connects.load(Ordering::Relaxed);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    eprintln!("health probes answered: {answered} of 50; slow clients connected {connects} times");
    assert_eq!(answered, 50, "missed: {missed:?}");
}

/// A body that keeps coming, but slower than `[api] min_body_rate` once its grace is over, is
/// answered 408 and its connection closed (Apache's `MinRate`), long before
/// `body_timeout_secs`; a body at a fair pace in the same time is read.
#[test]
fn a_body_slower_than_the_minimum_rate_is_cut_after_its_grace() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let ca = TestCa::new(Keys::Soft);
    let config = std::fs::read_to_string(ca.config()).expect("config");
    assert!(config.contains("min_body_rate = 500"), "{config}");
    assert!(config.contains("min_body_rate_grace_secs = 10"), "{config}");
    std::fs::write(
        ca.config(),
        config.replace(
            "min_body_rate_grace_secs = 10",
            "min_body_rate_grace_secs = 1",
        ),
    )
    .expect("write config");
    let server = Server::start(&ca, false);
    let addr = server.public.rsplit("//").next().unwrap_or("").to_string();
    let trickle = |pause: Duration, bytes: usize| -> (String, Duration) {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.write_all(
            b"POST /ocsp HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/ocsp-request\r\nContent-Length: 4000\r\n\r\n",
        )
        .expect("head");
        let start = Instant::now();
        let chunk = vec![b'x'; bytes];
        while start.elapsed() < Duration::from_secs(8) {
            if s.write_all(&chunk).is_err() {
                break;
            }
            std::thread::sleep(pause);
            s.set_nonblocking(true).expect("nonblocking");
            let mut peek = [0u8; 1];
            let answered = matches!(s.peek(&mut peek), Ok(n) if n > 0);
            s.set_nonblocking(false).expect("blocking");
            if answered {
                break;
            }
        }
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        (
            String::from_utf8_lossy(&answer).into_owned(),
            start.elapsed(),
        )
    };
    // A byte every 200 ms (5 bytes a second): cut soon after the one-second grace.
    let (answer, took) = trickle(Duration::from_millis(200), 1);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("slower than 500 bytes a second"),
        "{answer}"
    );
    assert!(took < Duration::from_secs(5), "cut after {took:?}");
    // 400 bytes every 200 ms (2,000 a second): the whole body arrives and is answered.
    let (answer, _) = trickle(Duration::from_millis(200), 400);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("application/ocsp-response"), "{answer}");
}
