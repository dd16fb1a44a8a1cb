//! `make bench`: the signing service (issue 5), each figure beside its peer measured in the
//! same run:
//!
//! 1. `hallmark sign cms` of a 1 GiB file end to end (the real CLI against a real
//!    `hallmark serve` over TLS, with a token) against `sha256sum` of the same file. Page cache
//!    warmed first; best and median of 3 runs each. Goal: <= 1.2x sha256sum's time.
//! 2. Signatures per second over HTTPS (`POST /api/v1/signatures`, format raw, SHA-256 digests,
//!    16 concurrent keep-alive TLS 1.3 clients, 5 s) against the raw `sign_digest` rate of the
//!    same key through the library (one thread; the rate on every core is printed beside it),
//!    with software and SoftHSM2 publisher keys (made with `hallmark key create`) of two kinds:
//!    P-256, the firmware key, whose signature costs less than an HTTPS round trip, and
//!    RSA-3072, the usual Authenticode/JAR key. Goal: >= 0.80 of the raw rate.
//! 3. Signatures per second over HTTPS authenticated with CI jobs' OIDC tokens (a local
//!    issuer's RS256 JWTs; each client takes a new token every 100 requests) beside the same
//!    run with a hallmark token, soft P-256 key, same clients, back to back. Goal: >= 0.90 of
//!    the hallmark-token rate (verifying a cached key's token must not dominate).
//!
//! Prints markdown tables; no assertions. `HALLMARK_BENCH_FILE_MIB` shrinks the file (default
//! 1024) for a quick run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark::keys::SignatureScheme;

mod common;
use common::*;

// The local OIDC issuer the tests use (HTTPS, discovery, JWKS, RS256 tokens).
use common::shared::oidc as oidc_issuer;
use oidc_issuer::OidcIssuer;

/// How a load run authenticates.
#[derive(Clone)]
enum Auth {
    /// No credential: `GET /healthz`, the HTTPS floor.
    Floor,
    /// The CA's hallmark token.
    Token,
    /// OIDC tokens minted by this issuer, a new one every 100 requests per client.
    Oidc(Arc<OidcIssuer>),
}

/// Requests each OIDC client sends with one token.
const REQUESTS_PER_TOKEN: u64 = 100;

/// The key `hallmark sign cms` uses.
const KEY: &str = "bench-p256";
/// The keys of the HTTPS table: label, `key create --algorithm`, the scheme of a raw SHA-256
/// signature, and the name printed.
const RATE_KEYS: [(&str, &str, SignatureScheme, &str); 2] = [
    (KEY, "p256", SignatureScheme::EcdsaSha256, "P-256"),
    (
        "bench-rsa3072",
        "rsa3072",
        SignatureScheme::RsaPkcs1Sha256,
        "RSA-3072",
    ),
];
const CLIENTS: usize = 16;
const HTTPS_SECS: f64 = 5.0;

/// A CA made with `hallmark init`, publisher `acme`, the publisher keys of [`RATE_KEYS`] and a
/// `sign` token,
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
        for (label, alg, _, _) in RATE_KEYS {
            ca.create_key(label, alg, &[])?;
        }
        let token = ca.sign_token()?;
        let root = dir.join("root.pem");
        ca.write_root(&root)?;
        Ok(Ca {
            store,
            ca,
            root,
            token,
        })
    }

    /// The key store's `sign_digest` on publisher key `label`, through the library: on one
    /// thread (the peer), on one thread per core, and, for reference, sign plus the verification
    /// hallmark runs on every signature (one thread).
    fn raw_sign_rate(&self, label: &str, scheme: SignatureScheme, secs: f64) -> Res<RawRates> {
        self.set_env();
        let hm = hallmark::engine::Hallmark::open(&self.config())?;
        let rec = hm.key(label)?;
        let signer = hm
            .key_store(&rec.key_store)?
            .open(&hallmark::engine::publisher_key_label(label))?;
        let digest = [0x5a_u8; 32];
        let sign_for = |secs: f64, check: bool| -> Res<usize> {
            let start = Instant::now();
            let mut n = 0usize;
            while start.elapsed() < Duration::from_secs_f64(secs) {
                for _ in 0..4 {
                    let sig = signer.sign_digest(scheme, &digest)?;
                    if check {
                        hallmark::signing::check_signature(
                            scheme,
                            signer.spki_der(),
                            &digest,
                            &sig,
                        )?;
                    }
                }
                n += 4;
            }
            Ok(n)
        };
        let start = Instant::now();
        let one = sign_for(secs, false)? as f64 / start.elapsed().as_secs_f64();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let start = Instant::now();
        let all: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| s.spawn(|| sign_for(secs / 2.0, false).map_err(|e| e.to_string())))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .map_err(|_| "a signing thread panicked".to_string())?
                })
                .sum::<Result<usize, String>>()
        })?;
        let all = all as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        let checked = sign_for(secs / 2.0, true)? as f64 / start.elapsed().as_secs_f64();
        Ok(RawRates {
            one,
            all,
            threads,
            checked,
        })
    }
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
    page_cached_file(&file, mib)?;
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
fn bench_https(
    ca: &Ca,
    api: &str,
    key: &'static str,
    clients: usize,
    secs: f64,
    auth: &Auth,
) -> Res<HttpsRun> {
    let floor = matches!(auth, Auth::Floor);
    use http_body_util::{BodyExt, Full};
    let addr: std::net::SocketAddr = api
        .strip_prefix("https://")
        .ok_or("API URL")?
        .trim_end_matches('/')
        .parse()?;
    let cfg = tls_client(Path::new(&ca.root))?;
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
            let (connector, mut token, done, failed, first_error, auth) = (
                connector.clone(),
                token.clone(),
                done.clone(),
                failed.clone(),
                first_error.clone(),
                auth.clone(),
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
                    if let Auth::Oidc(issuer) = &auth {
                        if i.is_multiple_of(REQUESTS_PER_TOKEN) {
                            let claims = oidc_issuer::merged(
                                &issuer.times("hallmark"),
                                &oidc_issuer::github_job("acme/app", "refs/tags/v1.0.0", "release"),
                            );
                            token = Arc::new(issuer.mint(&claims));
                        }
                    }
                    i += 1;
                    // A distinct digest per request.
                    let mut d = [0u8; 32];
                    d[..8].copy_from_slice(&(client as u64).to_be_bytes());
                    d[8..16].copy_from_slice(&i.to_be_bytes());
                    let body = format!(
                        r#"{{"key":"{key}","digest":"{}","digest_algorithm":"sha256","format":"raw"}}"#,
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
    Ok(HttpsRun {
        rate: done.load(Ordering::Relaxed) as f64 / elapsed,
        requests: done.load(Ordering::Relaxed),
    })
}

/// What one HTTPS load run did.
struct HttpsRun {
    /// Answered requests per second.
    rate: f64,
    requests: usize,
}

/// An HTTPS load run with the CPU each side spent on it: (run, server µs per request, clients µs
/// per request).
fn measured_https(
    ca: &Ca,
    api: &str,
    server: &Server,
    key: &'static str,
    secs: f64,
    auth: &Auth,
) -> Res<(HttpsRun, f64, f64)> {
    let pid = server.0.id().to_string();
    let (s0, c0) = (cpu_secs(&pid, false)?, cpu_secs("self", false)?);
    let run = bench_https(ca, api, key, CLIENTS, secs, auth)?;
    let (s1, c1) = (cpu_secs(&pid, false)?, cpu_secs("self", false)?);
    let n = run.requests.max(1) as f64;
    Ok((run, (s1 - s0) * 1e6 / n, (c1 - c0) * 1e6 / n))
}

/// A key's signing rates through the library.
struct RawRates {
    /// One thread: the peer.
    one: f64,
    /// One thread per core, all at once.
    all: f64,
    threads: usize,
    /// Sign + verify-after-sign, one thread.
    checked: f64,
}

struct RateRow {
    store: &'static str,
    key: &'static str,
    raw: RawRates,
    https: f64,
    /// CPU per answered request in the server and in the 16 load clients, in µs.
    server_us: f64,
    client_us: f64,
}

/// The OIDC comparison: (rate, server µs/request) of each credential, best of two runs each.
struct OidcRow {
    token: (f64, f64),
    oidc: (f64, f64),
    fetches: u64,
}

/// Trusts a local issuer in the CA's config, serves, and runs the HTTPS load with the hallmark
/// token and with OIDC tokens, alternating (token, OIDC, token, OIDC), best of each.
fn bench_oidc(ca: &Ca, dir: &Path) -> Res<OidcRow> {
    let issuer = Arc::new(OidcIssuer::start(dir, "bench-issuer"));
    let mut text = std::fs::read_to_string(ca.config())?;
    text.push_str(&format!(
        "\n[[identity.oidc]]\nname = \"github\"\nissuer = \"{}\"\naudiences = [\"hallmark\"]\nca_file = \"{}\"\n\n[[identity.oidc.rule]]\nissuer = \"github\"\npublisher = \"acme\"\nscopes = [\"sign\"]\nclaims = {{ repository = \"acme/app\", ref = \"refs/tags/v*\" }}\nname = \"github:acme/app release\"\n",
        issuer.url,
        issuer.ca_file.display()
    ));
    std::fs::write(ca.config(), text)?;
    let (server, api) = ca.serve(Stdio::inherit())?;
    let oidc = Auth::Oidc(issuer.clone());
    let (mut token, mut best) = ((0.0, 0.0), (0.0, 0.0));
    for _ in 0..2 {
        for (auth, slot) in [(&Auth::Token, &mut token), (&oidc, &mut best)] {
            let (run, server_us, _) = measured_https(ca, &api, &server, KEY, HTTPS_SECS, auth)?;
            if run.rate > slot.0 {
                *slot = (run.rate, server_us);
            }
        }
    }
    drop(server);
    Ok(OidcRow {
        token,
        oidc: best,
        fetches: issuer.jwks_fetches(),
    })
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
    let mut oidc = None;
    for store in ["soft", "softhsm2"] {
        if !common::wanted_store(store) {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let ca = Ca::new(store, dir.path())?;
        let mut raws = Vec::new();
        for (label, _, scheme, name) in RATE_KEYS {
            loads.push(format!("before {store} {name} raw: {}", load()));
            raws.push(ca.raw_sign_rate(label, scheme, 3.0)?);
        }
        let (server, api) = ca.serve(Stdio::inherit())?;
        if store == "soft" {
            loads.push(format!("before cms: {}", load()));
            cms = Some(bench_cms(&ca, &api, mib)?);
        }
        if store == "soft" {
            loads.push(format!("before the HTTPS floor: {}", load()));
            floor = Some(measured_https(&ca, &api, &server, KEY, 3.0, &Auth::Floor)?);
        }
        for ((label, _, _, name), raw) in RATE_KEYS.into_iter().zip(raws) {
            loads.push(format!("before {store} {name} HTTPS: {}", load()));
            let (run, server_us, client_us) =
                measured_https(&ca, &api, &server, label, HTTPS_SECS, &Auth::Token)?;
            rates.push(RateRow {
                store: ca.store,
                key: name,
                raw,
                https: run.rate,
                server_us,
                client_us,
            });
        }
        drop(server);
        if store == "soft" {
            loads.push(format!("before OIDC: {}", load()));
            oidc = Some(bench_oidc(&ca, dir.path())?);
        }
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
    println!("signatures over HTTPS (POST /api/v1/signatures, raw, SHA-256 digests, TLS 1.3, {CLIENTS} concurrent keep-alive clients on this machine, {HTTPS_SECS} s) against the key's raw sign_digest rate (library, 1 thread)");
    println!("| key store | key | raw sign_digest/s, 1 thread (peer) | HTTPS signatures/s | ratio | goal >= 0.80 |");
    println!("|---|---|---|---|---|---|");
    for r in &rates {
        let ratio = r.https / r.raw.one;
        println!(
            "| {} | {} | {:.0} | {:.0} | **{ratio:.2}** | {} |",
            r.store,
            r.key,
            r.raw.one,
            r.https,
            if ratio >= 0.80 { "met" } else { "not met" }
        );
    }
    println!();
    println!("references for the same runs: the key's raw rate on every core, sign + the verify-after-sign hallmark runs on every signature (1 thread), CPU per answered request in the server and in the load clients (from /proc, both sides on the same {} cores), and how many cores the clients alone would need at 0.80 of the raw rate", rates.first().map_or(0, |r| r.raw.threads));
    println!("| key store | key | raw sign_digest/s, every core | HTTPS / that | sign + verify/s, 1 thread | HTTPS / that | server CPU µs/request | clients CPU µs/request | client cores at 0.80 x raw |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rates {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} |",
            r.store,
            r.key,
            r.raw.all,
            r.https / r.raw.all,
            r.raw.checked,
            r.https / r.raw.checked,
            r.server_us,
            r.client_us,
            0.80 * r.raw.one * r.client_us / 1e6
        );
    }
    if let Some(o) = &oidc {
        println!();
        println!("signatures over HTTPS authenticated with OIDC tokens (a local issuer's RS256 JWTs, a new token every {REQUESTS_PER_TOKEN} requests per client) beside a hallmark token, soft P-256 key, {CLIENTS} clients, {HTTPS_SECS} s each, alternated twice; server and clients share this machine's {} cores", rates.first().map_or(0, |r| r.raw.threads));
        println!("| credential | HTTPS signatures/s | server CPU µs/request | ratio to the hallmark token | goal >= 0.90 |");
        println!("|---|---|---|---|---|");
        println!(
            "| hallmark token (peer) | {:.0} | {:.0} | 1.00 | |",
            o.token.0, o.token.1
        );
        let ratio = o.oidc.0 / o.token.0;
        println!(
            "| OIDC token | {:.0} | {:.0} | **{ratio:.2}** | {} |",
            o.oidc.0,
            o.oidc.1,
            if ratio >= 0.90 { "met" } else { "not met" }
        );
        println!("JWKS fetches during the OIDC runs: {}", o.fetches);
    }
    if let Some((f, server_us, client_us)) = &floor {
        println!("the HTTPS floor with the same {CLIENTS} clients: GET /healthz {:.0}/s (TLS, HTTP and the handler hop; no token, crypto or record); server {server_us:.0} µs, clients {client_us:.0} µs of CPU per request", f.rate);
    }
    println!("load average (1/5/15 min): {}", loads.join("; "));
    Ok(())
}
