//! `make bench`: the web console's time to first byte (issue 19), beside the JSON API on the
//! same store in the same run.
//!
//! A store holding 1,000,000 issued certificates (written in bulk through the store's test
//! hooks, a tenth of them ending within 30 days) and 1,000 pending signature requests (made
//! through `POST /api/v1/signatures` against a key that needs an approval); an approver signed in
//! to the console. Over one keep-alive TLS connection, one request at a time, 100 loads each of
//! `GET /ui/requests`, `GET /ui/certificates` and `GET /api/v1/certificates?limit=50` (the
//! peer), each page's loads in a row and then the three in turn; the time from sending a request
//! to its response head (first byte), p50 and p99, and the ratio to the API call. Goal: p99 < 50 ms and within 2x the API call.
//!
//! Knobs: HALLMARK_BENCH_CONSOLE_CERTS (1000000), HALLMARK_BENCH_CONSOLE_PENDING (1000),
//! HALLMARK_BENCH_CONSOLE_LOADS (100). The client and the server share the machine's 2 cores;
//! the server answers on its blocking pool, the client is one thread.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};

mod common;
use common::*;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Sender = hyper::client::conn::http1::SendRequest<Full<bytes::Bytes>>;

async fn connect(api: &str, root: &Path) -> Res<Sender> {
    let addr: std::net::SocketAddr = api.trim_start_matches("https://").parse()?;
    let cfg = tls_client(root)?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(rustls::pki_types::ServerName::try_from("127.0.0.1")?, tcp)
        .await?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One request: (status, time to the response head, headers, body).
async fn send(
    sender: &mut Sender,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Res<(u16, Duration, hyper::HeaderMap, bytes::Bytes)> {
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(bytes::Bytes::from(body.to_string())))?;
    sender.ready().await?;
    let start = Instant::now();
    let resp = sender.send_request(req).await?;
    let ttfb = start.elapsed();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, ttfb, headers, body))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Res<()> {
    let n_certs = env_num("HALLMARK_BENCH_CONSOLE_CERTS", 1_000_000);
    let n_pending = env_num("HALLMARK_BENCH_CONSOLE_PENDING", 1000);
    let loads = env_num("HALLMARK_BENCH_CONSOLE_LOADS", 100);
    let dir = tempfile::tempdir()?;
    let ca = BenchCa::init("soft", dir.path())?;
    ca.add_acme("code-signing")?;
    ca.create_key("rel", "p256", &[])?;
    ok(&mut ca.cmd(&[
        "key",
        "policy",
        "rel",
        "--approvals",
        "1",
        "--approvers",
        "lead",
    ]))?;
    let ci = ca.sign_token()?;
    let lead = ok(&mut ca.cmd(&[
        "token",
        "create",
        "--publisher",
        "acme",
        "--name",
        "lead",
        "--scopes",
        "approve",
    ]))?
    .trim()
    .to_string();
    // A million issued certificates of publisher acme, a tenth ending within 30 days.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let certs: Vec<(String, i64)> = (0..n_certs)
        .map(|i| {
            let mut b = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
            b[0] = (b[0] & 0x7f).max(1);
            let days = if i % 10 == 0 {
                1 + (i % 29)
            } else {
                31 + (i % 365)
            } as i64;
            (hex::encode(b), now + days * 86_400)
        })
        .collect();
    let t = Instant::now();
    let store = hallmark::store::hooks::open_with_hooks(&dir.path().join("ca/hallmark.db"))?;
    store.load_issued("code-signing-ca", "acme", &certs, now)?;
    drop(store);
    eprintln!(
        "console bench: {n_certs} certificates loaded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let root = dir.path().join("root.pem");
    ca.write_root(&root)?;
    let (server, api) = ca.serve(Stdio::inherit())?;
    // The server pre-signs an OCSP response for every certificate at start (a million here):
    // measure once it is idle again.
    let pid = server.0.id().to_string();
    let waited = Instant::now();
    loop {
        let before = cpu_secs(&pid, false)?;
        std::thread::sleep(Duration::from_secs(1));
        if cpu_secs(&pid, false)? - before < 0.05 || waited.elapsed().as_secs() > 300 {
            break;
        }
    }
    eprintln!(
        "console bench: the server was busy starting for {:.0} s",
        waited.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(async {
        let mut s = connect(&api, &root).await?;
        let bearer = format!("Bearer {ci}");
        let t = Instant::now();
        for i in 0..n_pending {
            let digest = hex::encode(sha2_digest(i));
            let body = format!(
                r#"{{"key":"rel","digest":"{digest}","digest_algorithm":"sha256","format":"raw","metadata":{{"artifact":"build-{i}.bin","build":"{i}"}}}}"#
            );
            let (status, _, _, b) = send(
                &mut s,
                "POST",
                "/api/v1/signatures",
                &[("authorization", &bearer), ("content-type", "application/json")],
                &body,
            )
            .await?;
            if status != 202 {
                return Err(format!("signature request {i}: {status} {}", String::from_utf8_lossy(&b)).into());
            }
        }
        eprintln!(
            "console bench: {n_pending} pending signature requests made in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let form = format!("token={}", lead.replace('_', "%5F"));
        let (status, _, headers, _) = send(
            &mut s,
            "POST",
            "/ui/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            &form,
        )
        .await?;
        let cookie = headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .filter(|_| status == 303)
            .ok_or("the console sign-in gave no session cookie")?
            .to_string();
        let lead_bearer = format!("Bearer {lead}");
        let requests = format!("GET /ui/requests ({n_pending} pending)");
        let certificates = format!("GET /ui/certificates ({n_certs} stored)");
        let runs: [(&str, &str, &str); 3] = [
            (&requests, "/ui/requests", "cookie"),
            (&certificates, "/ui/certificates", "cookie"),
            ("GET /api/v1/certificates?limit=50 (peer)", "/api/v1/certificates?limit=50", "bearer"),
        ];
        let header = |how: &str| -> (&str, String) {
            if how == "cookie" {
                ("cookie", cookie.clone())
            } else {
                ("authorization", lead_bearer.clone())
            }
        };
        // Warm each once and check it, then measure them in turn (page 1, 2, 3, 1, 2, 3, ...):
        // the three see the same moments of the machine.
        for (_, path, how) in runs {
            let (k, v) = header(how);
            let (status, _, _, body) = send(&mut s, "GET", path, &[(k, &v)], "").await?;
            if status != 200 {
                return Err(format!("{path}: {status} {}", String::from_utf8_lossy(&body)).into());
            }
            if path == "/ui/requests"
                && !String::from_utf8_lossy(&body)
                    .contains(&format!("Signature requests pending ({n_pending})"))
            {
                return Err("the Requests page does not count the pending requests".into());
            }
        }
        // Two orders: each page `loads` times in a row (blocked), then the three in turn
        // (interleaved: each sees the same moments of the machine, and the caches the others
        // leave behind).
        let mut tables = Vec::new();
        for interleaved in [false, true] {
            let mut ms = vec![Vec::with_capacity(loads); runs.len()];
            let mut bytes = vec![0; runs.len()];
            let order: Vec<usize> = if interleaved {
                (0..loads).flat_map(|_| 0..runs.len()).collect()
            } else {
                (0..runs.len()).flat_map(|i| std::iter::repeat_n(i, loads)).collect()
            };
            for i in order {
                let (_, path, how) = runs[i];
                let (k, v) = header(how);
                let (status, ttfb, _, body) = send(&mut s, "GET", path, &[(k, &v)], "").await?;
                if status != 200 {
                    return Err(format!("{path}: {status}").into());
                }
                ms[i].push(ttfb.as_secs_f64() * 1000.0);
                bytes[i] = body.len();
            }
            let mut rows = Vec::new();
            for (i, (name, _, _)) in runs.iter().enumerate() {
                ms[i].sort_by(f64::total_cmp);
                rows.push((name.to_string(), percentile(&ms[i], 0.5), percentile(&ms[i], 0.99), bytes[i]));
            }
            tables.push((interleaved, rows));
        }
        Ok::<_, Box<dyn std::error::Error>>(tables)
    })?;
    for (interleaved, rows) in &rows {
        let (_, api_p50, api_p99, _) = rows[2];
        println!(
            "\n### Console time to first byte ({loads} loads each, {}; one keep-alive TLS connection, 2 cores shared by client and server)\n",
            if *interleaved { "the three in turn" } else { "each page's loads in a row" }
        );
        println!("| page | p50 ms | p99 ms | p50 / API | p99 / API | body bytes |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, p50, p99, bytes) in rows {
            println!(
                "| {name} | {p50:.2} | {p99:.2} | {:.2}x | {:.2}x | {bytes} |",
                p50 / api_p50,
                p99 / api_p99
            );
        }
    }
    println!("\nGoal: p99 < 50 ms and within 2x the API call.");
    Ok(())
}

/// A distinct SHA-256-sized digest per request.
fn sha2_digest(i: usize) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&(i as u64).to_be_bytes());
    d[31] = 1;
    d
}
