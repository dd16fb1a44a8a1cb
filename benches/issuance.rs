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

const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

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
    let issue_single = rate(3.0, || usize::from(hm.issue(&req).is_ok()));
    let batch: Vec<IssueRequest> = (0..1024).map(|_| req.clone()).collect();
    let issue_batch = rate(3.0, || {
        hm.issue_batch(&batch).iter().filter(|r| r.is_ok()).count()
    });
    let errors = hm.issue(&req).err();
    if let Some(e) = errors {
        return Err(format!("issuance failed during the bench: {e}").into());
    }
    Ok(Row {
        store: label,
        csr_verify,
        raw_sign,
        issue_single,
        issue_batch,
    })
}

fn softhsm_token(dir: &Path) -> Result<KeysChoice, Box<dyn std::error::Error>> {
    if !Path::new(SOFTHSM_MODULE).exists() {
        return Err(format!("{SOFTHSM_MODULE} is missing: run `make deps`").into());
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )?;
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var("HALLMARK_BENCH_PIN", "123456");
    let st = std::process::Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "hallmark-bench",
            "--pin",
            "123456",
            "--so-pin",
            "12345678",
        ])
        .stdout(std::process::Stdio::null())
        .status()?;
    if !st.success() {
        return Err("softhsm2-util --init-token failed".into());
    }
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
    let keys = softhsm_token(hsm_dir.path())?;
    let hsm = bench_store("softhsm2", hsm_dir.path(), keys)?;

    println!("issuance through the library, one thread, P-256 CA key, P-256 subscriber CSR");
    println!(
        "| CA key store | CSR verify/s (peer) | CA raw sign/s (peer) | slower peer/s | issue/s (single) | ratio | issue/s (batch 1024) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in [soft, hsm] {
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
    Ok(())
}
