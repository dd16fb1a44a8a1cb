//! `make bench`: the signing service (issue 5), each figure beside its peer measured in the
//! same run:
//!
//! 1. `hallmark sign cms` of a 1 GiB file end to end (the real CLI against a real
//!    `hallmark serve` over TLS, with a token) against `sha256sum` of the same file. Page cache
//!    warmed first; best and median of 3 runs each. Goal: <= 1.2x sha256sum's time.
//! 2. Signatures per second over HTTPS (`POST /api/v1/signatures`, format raw, SHA-256 digests,
//!    16 concurrent keep-alive TLS 1.3 clients, 5 s) against the raw `sign_digest` rate of the
//!    same key through the library (one thread), with a software and a SoftHSM2 P-256 publisher
//!    key (made with `hallmark key create`). Goal: >= 0.80 of the raw rate.
//!
//! Prints markdown tables; no assertions. `HALLMARK_BENCH_FILE_MIB` shrinks the file (default
//! 1024) for a quick run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark::keys::SignatureScheme;

mod common;
use common::*;

const KEY: &str = "bench-p256";
const CLIENTS: usize = 16;
const HTTPS_SECS: f64 = 5.0;

/// A CA made with `hallmark init`, publisher `acme`, a P-256 publisher key and a `sign` token,
/// with the environment its commands need.
struct Ca {
    store: &'static str,
    ca: BenchCa,
    root: PathBuf,
    token: String,
}

impl std::ops::Deref for Ca {
    type Target = BenchCa;
    fn deref(&self) -> &BenchCa {
        &self.ca
    }
}

impl Ca {
    fn new(store: &'static str, dir: &Path) -> Res<Ca> {
        let ca = BenchCa::init(store, dir)?;
        ca.add_acme("code-signing")?;
        ok(&mut ca.cmd(&[
            "key",
            "create",
            "--publisher",
            "acme",
            "--label",
            KEY,
            "--algorithm",
            "p256",
        ]))?;
        let token = ok(&mut ca.cmd(&[
            "token",
            "create",
            "--publisher",
            "acme",
            "--scopes",
            "sign",
            "--name",
            "bench",
        ]))?
        .trim()
        .to_string();
        let root = dir.join("root.pem");
        std::fs::write(&root, ok(&mut ca.cmd(&["ca", "cert", "root"]))?)?;
        Ok(Ca {
            store,
            ca,
            root,
            token,
        })
    }

    /// The key store's `sign_digest` on the publisher key, through the library, one thread;
    /// and, for reference, sign plus the verification hallmark runs on every signature.
    fn raw_sign_rate(&self, secs: f64) -> Res<(f64, f64)> {
        self.set_env();
        let hm = hallmark::engine::Hallmark::open(&self.config())?;
        let rec = hm.key(KEY)?;
        let signer = hm
            .key_store(&rec.key_store)?
            .open(&hallmark::engine::publisher_key_label(KEY))?;
        let digest = [0x5a_u8; 32];
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_secs_f64(secs) {
            for _ in 0..16 {
                signer.sign_digest(SignatureScheme::EcdsaSha256, &digest)?;
            }
            n += 16;
        }
        let raw = n as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_secs_f64(secs / 2.0) {
            for _ in 0..16 {
                let sig = signer.sign_digest(SignatureScheme::EcdsaSha256, &digest)?;
                hallmark::signing::check_signature(
                    SignatureScheme::EcdsaSha256,
                    signer.spki_der(),
                    &digest,
                    &sig,
                )?;
            }
            n += 16;
        }
        Ok((raw, n as f64 / start.elapsed().as_secs_f64()))
    }
}

/// Best and median of `runs` timings of `f`, in seconds.
fn timings(runs: usize, mut f: impl FnMut() -> Res<()>) -> Res<(f64, f64)> {
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok((t[0], t[t.len() / 2]))
}

struct CmsRow {
    mib: usize,
    sha256sum: (f64, f64),
    openssl: (f64, f64),
    ours: (f64, f64),
}

fn bench_cms(ca: &Ca, api: &str, mib: usize) -> Res<CmsRow> {
    // On the same disk as the rest of the run; written once, read once to warm the cache.
    let file = ca.dir.join("artifact.bin");
    {
        let mut block = vec![0u8; 1 << 20];
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        for i in 0..mib {
            block[0..8].copy_from_slice(&(i as u64).to_le_bytes());
            f.write_all(&block)?;
        }
        f.into_inner().map_err(|e| e.to_string())?.sync_all()?;
    }
    std::io::copy(&mut std::fs::File::open(&file)?, &mut std::io::sink())?;
    let expected = ok(Command::new("sha256sum").arg(&file))?;
    let expected = expected
        .split_whitespace()
        .next()
        .ok_or("sha256sum")?
        .to_string();
    let sha256sum = timings(3, || ok(Command::new("sha256sum").arg(&file)).map(|_| ()))?;
    // For reference: OpenSSL's SHA-256 (hardware SHA where the CPU has it; Debian's
    // coreutils sha256sum uses its own portable C code).
    let openssl = timings(3, || {
        ok(Command::new("openssl").args(["dgst", "-sha256"]).arg(&file)).map(|_| ())
    })?;
    let out = ca.dir.join("artifact.bin.p7s");
    let ours = timings(3, || {
        let mut c = hallmark();
        c.args(["sign", "cms"])
            .arg(&file)
            .args(["--key", KEY, "--out"])
            .arg(&out)
            .args([
                "--server",
                api,
                "--token-env",
                "HALLMARK_BENCH_TOKEN",
                "--ca",
            ])
            .arg(&ca.root)
            .env("HALLMARK_BENCH_TOKEN", &ca.token);
        ok(&mut c).map(|_| ())
    })?;
    // What came back verifies over the file, and is over the digest sha256sum printed.
    ok(Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-in",
        ])
        .arg(&out)
        .arg("-content")
        .arg(&file)
        .arg("-CAfile")
        .arg(&ca.root)
        .args(["-out", "/dev/null"]))?;
    let list = ok(&mut ca.cmd(&["signature", "list", "--key", KEY, "--limit", "1"]))?;
    if !list.contains(&expected) {
        return Err(format!("the recorded signature is not over {expected}: {list}").into());
    }
    std::fs::remove_file(&file)?;
    Ok(CmsRow {
        mib,
        sha256sum,
        openssl,
        ours,
    })
}

/// Signatures per second over HTTPS: `clients` keep-alive TLS connections posting SHA-256
/// digests (format raw) for `secs` seconds.
fn bench_https(ca: &Ca, api: &str, clients: usize, secs: f64, floor: bool) -> Res<f64> {
    use http_body_util::{BodyExt, Full};
    let addr: std::net::SocketAddr = api
        .strip_prefix("https://")
        .ok_or("API URL")?
        .trim_end_matches('/')
        .parse()?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_file_iter(&ca.root)? {
        roots.add(c?)?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let token = Arc::new(ca.token.clone());
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (connector, token, done, failed, first_error) = (
                connector.clone(),
                token.clone(),
                done.clone(),
                failed.clone(),
                first_error.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let note = |e: String| {
                    if let Ok(mut f) = first_error.lock() {
                        f.get_or_insert(e);
                    }
                };
                let tls = async {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
                    let tls = connector.connect(name, tcp).await?;
                    let (sender, conn) =
                        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                            .await?;
                    tokio::spawn(conn);
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(sender)
                };
                let mut sender = match tls.await {
                    Ok(s) => s,
                    Err(e) => return note(format!("connect: {e}")),
                };
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    // A distinct digest per request.
                    let mut d = [0u8; 32];
                    d[..8].copy_from_slice(&(client as u64).to_be_bytes());
                    d[8..16].copy_from_slice(&i.to_be_bytes());
                    let body = format!(
                        r#"{{"key":"{KEY}","digest":"{}","digest_algorithm":"sha256","format":"raw"}}"#,
                        hex::encode(d)
                    );
                    let req = if floor {
                        hyper::Request::get("/healthz")
                            .header("host", "127.0.0.1")
                            .body(Full::new(bytes::Bytes::new()))
                    } else {
                        hyper::Request::post("/api/v1/signatures")
                            .header("host", "127.0.0.1")
                            .header("authorization", format!("Bearer {token}"))
                            .header("content-type", "application/json")
                            .body(Full::new(bytes::Bytes::from(body)))
                    };
                    let Ok(req) = req else { return };
                    match sender.send_request(req).await {
                        Ok(resp) => {
                            let status = resp.status();
                            let body = resp.into_body().collect().await;
                            if status == 201 || (floor && status == 200) {
                                done.fetch_add(1, Ordering::Relaxed);
                            } else {
                                failed.fetch_add(1, Ordering::Relaxed);
                                let text = body
                                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                                    .unwrap_or_default();
                                note(format!("{status}: {text}"));
                            }
                        }
                        Err(e) => return note(format!("request: {e}")),
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let f = failed.load(Ordering::Relaxed);
    let first = first_error.lock().ok().and_then(|mut e| e.take());
    if f > 0 || first.is_some() {
        return Err(format!(
            "{f} HTTPS requests failed; first: {}",
            first.unwrap_or_default()
        )
        .into());
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed)
}

struct RateRow {
    store: &'static str,
    raw: f64,
    checked: f64,
    https: f64,
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> Res<()> {
    // `cargo bench` passes `--bench`; nothing to parse.
    let mib: usize = std::env::var("HALLMARK_BENCH_FILE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let mut rates = Vec::new();
    let mut cms = None;
    let mut loads = Vec::new();
    let mut floor = None;
    for store in ["soft", "softhsm2"] {
        if !common::wanted_store(store) {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let ca = Ca::new(store, dir.path())?;
        loads.push(format!("before {store} raw: {}", load()));
        let (raw, checked) = ca.raw_sign_rate(3.0)?;
        let (server, api) = ca.serve(Stdio::inherit())?;
        if store == "soft" {
            loads.push(format!("before cms: {}", load()));
            cms = Some(bench_cms(&ca, &api, mib)?);
        }
        loads.push(format!("before {store} HTTPS: {}", load()));
        if store == "soft" {
            loads.push(format!("before the HTTPS floor: {}", load()));
            floor = Some(bench_https(&ca, &api, CLIENTS, 3.0, true)?);
        }
        let https = bench_https(&ca, &api, CLIENTS, HTTPS_SECS, false)?;
        drop(server);
        rates.push(RateRow {
            store: ca.store,
            raw,
            checked,
            https,
        });
    }
    loads.push(format!("end: {}", load()));

    if let Some(c) = cms {
        println!("hallmark sign cms end to end (CLI: hash the file, TLS, token, server signs with a soft P-256 key, write .p7s) against sha256sum, {} MiB file in the page cache, 3 runs each", c.mib);
        println!("| command | best s | median s | hallmark sign cms / this (best) | (median) |");
        println!("|---|---|---|---|---|");
        for (name, t) in [
            ("sha256sum (peer)", c.sha256sum),
            ("openssl dgst -sha256 (reference)", c.openssl),
            ("hallmark sign cms", c.ours),
        ] {
            println!(
                "| {name} | {:.3} | {:.3} | {:.2} | {:.2} |",
                t.0,
                t.1,
                c.ours.0 / t.0,
                c.ours.1 / t.1
            );
        }
        println!("goal: hallmark sign cms <= 1.2x sha256sum's time");
        println!();
    }
    println!("signatures over HTTPS (POST /api/v1/signatures, raw, SHA-256 digests, TLS 1.3, {CLIENTS} concurrent keep-alive clients, {HTTPS_SECS} s) against the key's raw sign_digest rate (library, 1 thread)");
    println!("| publisher key (P-256) | raw sign_digest/s (peer) | HTTPS signatures/s | ratio | sign + verify-after-sign/s (reference, 1 thread) | HTTPS / that |");
    println!("|---|---|---|---|---|---|");
    for r in &rates {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} |",
            r.store,
            r.raw,
            r.https,
            r.https / r.raw,
            r.checked,
            r.https / r.checked
        );
    }
    println!("goal: HTTPS >= 0.80 of the raw rate");
    if let Some(f) = floor {
        println!("the HTTPS floor with the same {CLIENTS} clients: GET /healthz {f:.0}/s (TLS, HTTP and the handler hop; no token, crypto or record)");
    }
    println!("load average (1/5/15 min): {}", loads.join("; "));
    Ok(())
}
