//! `make bench`: issuance per second through the library, beside the raw rates of the two
//! operations it cannot avoid (CSR proof-of-possession verification and the CA key's signature),
//! measured in the same run on the same key. Goal: >= 50% of the slower raw rate.
//!
//! Runs with a software P-256 CA key and with a SoftHSM2 P-256 CA key (a token made in a temp
//! dir). Prints a table; no assertions.

use std::path::Path;
use std::time::{Duration, Instant};

use hallmark::engine::Hallmark;
use hallmark::init::{InitOptions, KeysChoice};
use hallmark::keys::soft::SoftKeyStore;
use hallmark::keys::{KeyAlgorithm, KeyStore, SecretSource};
use hallmark::policy::{IssueRequest, NameAttr};
use hallmark::store::Publisher;

mod common;
use common::*;

/// Runs `f` repeatedly for about `secs` seconds; returns operations per second.
fn rate(secs: f64, mut f: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        n += f();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Row {
    store: &'static str,
    csr_verify: f64,
    raw_sign: f64,
    issue_single: f64,
    issue_batch: f64,
    https: f64,
}

/// Certificates per second over HTTPS with `clients` concurrent keep-alive connections for
/// `secs` seconds, against a server started in this process on 127.0.0.1.
fn bench_https(
    config: &Path,
    csr_pem: &str,
    clients: usize,
    secs: f64,
) -> Result<f64, Box<dyn std::error::Error>> {
    use http_body_util::{BodyExt, Full};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    no_rate_limit(config)?;
    let hm = Arc::new(Hallmark::open(config)?);
    let (_, token) = hm.tokens.create_token(
        Some("acme"),
        Some("bench"),
        &[hallmark::policy::auth::Scope::Issue],
        false,
        None,
        "bench",
    )?;
    let root = hm
        .store
        .get_ca("root")?
        .and_then(|c| c.cert_der)
        .ok_or("no root")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let server_hm = hm.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let listen = hallmark::http::Listen {
            public: "127.0.0.1:0".parse().expect("addr"),
            api: Some("127.0.0.1:0".parse().expect("addr")),
        };
        let r = rt.block_on(hallmark::http::serve(server_hm, listen, |b| {
            let _ = tx.send(b.api.map(|(a, _)| a));
        }));
        if let Err(e) = r {
            eprintln!("bench server: {e}");
        }
    });
    let addr = rx.recv()?.ok_or("no API listener")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(root))?;
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let body = serde_json::json!({"profile": "code-signing", "csr": csr_pem}).to_string();
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let start = std::time::Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (connector, body, token, done, failed) = (
                connector.clone(),
                body.clone(),
                token.clone(),
                done.clone(),
                failed.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
                    return;
                };
                let Ok(name) = rustls::pki_types::ServerName::try_from("127.0.0.1") else {
                    return;
                };
                let Ok(tls) = connector.connect(name, tcp).await else {
                    return;
                };
                let Ok((mut sender, conn)) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await
                else {
                    return;
                };
                tokio::spawn(conn);
                while std::time::Instant::now() < deadline {
                    let req = hyper::Request::post("/api/v1/certificates")
                        .header("host", "127.0.0.1")
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(Full::new(bytes::Bytes::from(body.clone())));
                    let Ok(req) = req else { return };
                    match sender.send_request(req).await {
                        Ok(resp) => {
                            let ok = resp.status() == 201;
                            let _ = resp.into_body().collect().await;
                            if ok {
                                done.fetch_add(1, Ordering::Relaxed);
                            } else {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => return,
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
    if f > 0 {
        return Err(format!("{f} HTTPS requests failed").into());
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed)
}

fn bench_store(
    label: &'static str,
    dir: &Path,
    keys: KeysChoice,
) -> Result<Row, Box<dyn std::error::Error>> {
    let mut opts = InitOptions::new(dir.join("ca"), keys);
    opts.ca_algorithm = KeyAlgorithm::P256;
    let config = hallmark::init::init(&opts)?;
    let hm = Hallmark::open(&config)?;
    hm.add_publisher(
        &Publisher {
            id: "acme".into(),
            org: "Acme Corp".into(),
            country: "US".into(),
            state: Some("California".into()),
            locality: Some("San Jose".into()),
            profiles: vec!["code-signing".into()],
            created_at: 0,
        },
        "bench",
    )?;
    // A P-256 subscriber key (software) and its CSR.
    std::env::set_var("HALLMARK_BENCH_SUBSCRIBER", "subscriber passphrase");
    let sub = SoftKeyStore::new(
        dir.join("subscriber"),
        SecretSource::Env("HALLMARK_BENCH_SUBSCRIBER".into()),
    );
    let key = sub.generate("subscriber", KeyAlgorithm::P256)?;
    let subject = [("C", "US"), ("O", "Acme Corp"), ("CN", "Acme Corp")].map(|(k, v)| NameAttr {
        kind: k.into(),
        value: v.into(),
    });
    let csr = hallmark::issuer::make_csr(&subject, key.as_ref())?;

    let ca = hm.ca("code-signing-ca")?;
    let tbs = vec![0x5au8; 400];
    let mut sign_err = None;
    let raw_sign = rate(2.0, || {
        if let Err(e) = ca.signer.sign(ca.scheme, &tbs) {
            sign_err = Some(e);
        }
        1
    });
    if let Some(e) = sign_err {
        return Err(e.into());
    }
    let csr_verify = rate(2.0, || {
        usize::from(hallmark::policy::csr::verify(&csr).is_ok())
    });
    let req = IssueRequest {
        profile: "code-signing".into(),
        publisher: "acme".into(),
        csr: csr.clone(),
        requester: "bench".into(),
        device_serial: None,
        name: None,
    };
    let issue_single = rate(3.0, || usize::from(hm.issuance.issue(&req).is_ok()));
    let batch_size: usize = std::env::var("HALLMARK_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let batch: Vec<IssueRequest> = (0..batch_size).map(|_| req.clone()).collect();
    let issue_batch = rate(3.0, || {
        hm.issuance
            .issue_batch(&batch)
            .iter()
            .filter(|r| r.is_ok())
            .count()
    });
    let csr_pem = hallmark::pemfmt::encode("CERTIFICATE REQUEST", csr.clone());
    let https = bench_https(&config, &csr_pem, 16, 5.0)?;
    let errors = hm.issuance.issue(&req).err();
    if let Some(e) = errors {
        return Err(format!("issuance failed during the bench: {e}").into());
    }
    Ok(Row {
        store: label,
        csr_verify,
        raw_sign,
        issue_single,
        issue_batch,
        https,
    })
}

fn softhsm_keys(dir: &Path) -> Result<KeysChoice, Box<dyn std::error::Error>> {
    let conf = softhsm_token(dir, "hallmark-bench")?;
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var("HALLMARK_BENCH_PIN", "123456");
    Ok(KeysChoice::Pkcs11 {
        module: SOFTHSM_MODULE.into(),
        token_label: "hallmark-bench".into(),
        pin_env: Some("HALLMARK_BENCH_PIN".into()),
        pin_file: None,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; nothing to parse.
    let soft_dir = tempfile::tempdir()?;
    std::env::set_var("HALLMARK_BENCH_PASS", "bench passphrase");
    let soft = bench_store(
        "soft",
        soft_dir.path(),
        KeysChoice::Soft {
            passphrase_env: Some("HALLMARK_BENCH_PASS".into()),
        },
    )?;
    let hsm_dir = tempfile::tempdir()?;
    let keys = softhsm_keys(hsm_dir.path())?;
    let hsm = bench_store("softhsm2", hsm_dir.path(), keys)?;

    println!("issuance through the library, P-256 CA key, P-256 subscriber CSR (peers: one thread; single: one call at a time; batch: the pipeline, on every core)");
    println!(
        "| CA key store | CSR verify/s (peer) | CA raw sign/s (peer) | slower peer/s | issue/s (single) | ratio | issue/s (batch 1024) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let rows = [soft, hsm];
    for r in &rows {
        let slower = r.csr_verify.min(r.raw_sign);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} |",
            r.store,
            r.csr_verify,
            r.raw_sign,
            slower,
            r.issue_single,
            r.issue_single / slower,
            r.issue_batch,
            r.issue_batch / slower
        );
    }
    println!("goal: ratio >= 0.50 of the slower of (CSR verification, raw signing)");
    println!();
    println!("issuance over HTTPS (TLS 1.3, 16 concurrent keep-alive clients, 5 s) against the library path (one call per certificate)");
    println!("| CA key store | library issue/s (peer) | HTTPS issue/s | ratio |");
    println!("|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} |",
            r.store,
            r.issue_single,
            r.https,
            r.https / r.issue_single
        );
    }
    println!("goal: HTTPS >= 0.80 of the library rate");
    Ok(())
}
