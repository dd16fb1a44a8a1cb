//! `make crash-test`: `kill -9` of the server at random moments while a factory batch, a stream
//! of direct issuances, a stream of signatures, approvals and revocations (CRL republication)
//! run against it; after each restart the invariants must hold:
//! - every certificate and signature a client received is recorded, identically;
//! - no device has two live certificates, and each station's counter equals its live ones;
//! - CRL numbers only grow;
//! - no certificate intent and no claimed request older than the start survives;
//! - `hallmark doctor` passes.
//!
//! With soft keys and with SoftHSM. Not part of `make test` (it takes minutes):
//! `HALLMARK_CRASH_KILLS` sets the kills per key store (default 8).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use rand::Rng;
use serde_json::{json, Value};

const ACME_SUBJ: &str = "/C=US/ST=California/L=San Jose/O=Acme Corp/CN=Acme Corp";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// What clients were given: certificates by serial (DER), signatures by id (key, digest).
#[derive(Default)]
struct Received {
    certs: HashMap<String, Vec<u8>>,
    signatures: HashMap<i64, (String, String)>,
}

/// What one round's clients got before the kill: a round that received nothing tested nothing.
#[derive(Default)]
struct Round {
    issued: AtomicUsize,
    approved: AtomicUsize,
    signatures: AtomicUsize,
    /// Answers that are neither the success asked for nor a lost connection (the kill): a
    /// refusal here means the load stopped testing (a broken token, a changed route).
    unexpected: Mutex<Vec<String>>,
}

impl Round {
    fn unexpected(&self, what: &str, code: u16, v: &Value) {
        if (400..500).contains(&code) {
            if let Ok(mut u) = self.unexpected.lock() {
                u.push(format!("{what}: {code} {v}"));
            }
        }
    }
}

fn pem_der(pem_text: &str) -> Vec<u8> {
    ::pem::parse(pem_text).expect("pem").into_contents()
}

/// curl to the API with a token and an optional JSON body; (status, JSON).
fn call(
    api: &str,
    root: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let auth = format!("Authorization: Bearer {token}");
    let data = body.map(Value::to_string);
    let mut args = vec![
        "--cacert",
        root,
        "-X",
        method,
        "-H",
        &auth,
        "--max-time",
        "20",
    ];
    if let Some(d) = &data {
        args.extend(["-H", "Content-Type: application/json", "--data-binary", d]);
    }
    let (code, raw, _) = curl(&format!("{api}{path}"), &args);
    (code, serde_json::from_slice(&raw).unwrap_or(Value::Null))
}

fn crash_loop(keys: Keys, kills: usize) {
    let ca = TestCa::new(keys);
    ca.add_acme();
    std::fs::write(
        ca.dir.path().join("ca/ca-profiles/release-signing.toml"),
        RELEASE_PROFILE,
    )
    .expect("profile");
    ca.hm(&[
        "publisher",
        "update",
        "acme",
        "--profiles",
        "code-signing,firmware-signing,timestamping,iot-device,station,tls-server,release-signing",
    ]);
    ca.create_key("acme", "release", "p256", &["--profile", "code-signing"]);
    let stations = ca.path("stations").display().to_string();
    ca.hm(&[
        "station",
        "add",
        "line",
        "--profile",
        "iot-device",
        "--serial-pattern",
        "^CRASH-[0-9]{8}$",
        "--quota",
        "1000000",
        "--out-dir",
        &stations,
    ]);
    let token = |name: &str, scopes: &str| {
        ca.token(&["--publisher", "acme", "--name", name, "--scopes", scopes])
    };
    let ci = token("ci", "issue,sign,revoke");
    let approvers = [
        token("release-manager", "approve"),
        token("security-lead", "approve"),
    ];
    let root = ca.ca_pem("root").display().to_string();
    let csr = std::fs::read_to_string(make_csr(
        ca.dir.path(),
        "crash",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ACME_SUBJ,
        &[],
    ))
    .expect("csr");
    let received = Mutex::new(Received::default());
    let mut crl_numbers: HashMap<String, u64> = HashMap::new();
    let mut rng = rand::thread_rng();
    let mut next_device = 0u32;
    let mut server = Server::start(&ca, true);
    for round in 0..kills {
        let api = server.api.clone().expect("api");
        // A new batch of devices for this round, and one resubmitted from the last.
        let input = ca.path(&format!("batch-{round}.ndjson"));
        let out = ca.path(&format!("answers-{round}.ndjson"));
        let mut text = String::new();
        // Larger than what a round's load window answers, so the kill lands mid-batch.
        for _ in 0..10_000 {
            next_device += 1;
            let s = format!("CRASH-{next_device:08}");
            text.push_str(
                &json!({"device_serial": s, "csr": b64().encode(device_csr(&s))}).to_string(),
            );
            text.push('\n');
        }
        std::fs::write(&input, text).expect("batch");
        let stop = AtomicBool::new(false);
        // Long enough for every kind of load to get answers before the kill.
        let kill_after = Duration::from_millis(rng.gen_range(1_000..3_000));
        let tally = Round::default();
        std::thread::scope(|s| {
            let (api, root, ci, csr, stop, received, approvers, tally) =
                (&api, &root, &ci, &csr, &stop, &received, &approvers, &tally);
            let mut station = std::process::Command::new(hallmark_bin());
            station
                .args(["station", "run", "--quiet", "--server", api, "--ca", root])
                .arg("--cert")
                .arg(format!("{stations}/line.pem"))
                .arg("--key")
                .arg(format!("{stations}/line.key"))
                .arg("--in")
                .arg(&input)
                .arg("--out")
                .arg(&out);
            let mut station = station.spawn().expect("station run");
            // Direct issuance.
            s.spawn(move || {
                let body = json!({"profile": "code-signing", "csr": csr});
                while !stop.load(Ordering::Relaxed) {
                    let (code, v) =
                        call(api, root, ci, "POST", "/api/v1/certificates", Some(&body));
                    tally.unexpected("issue", code, &v);
                    if code == 201 {
                        if let (Some(serial), Some(pem)) =
                            (v["serial"].as_str(), v["certificate"].as_str())
                        {
                            tally.issued.fetch_add(1, Ordering::Relaxed);
                            received
                                .lock()
                                .expect("lock")
                                .certs
                                .insert(serial.into(), pem_der(pem));
                        }
                    }
                }
            });
            // Signatures.
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let digest = hex::encode(aws_lc_rs::digest::digest(
                        &aws_lc_rs::digest::SHA256,
                        format!("{round}-{n}").as_bytes(),
                    ));
                    let body = json!({"key": "release", "digest": digest, "digest_algorithm": "sha256", "format": "raw"});
                    let (code, v) = call(api, root, ci, "POST", "/api/v1/signatures", Some(&body));
                    tally.unexpected("sign", code, &v);
                    if code == 201 {
                        if let Some(id) = v["id"].as_i64() {
                            tally.signatures.fetch_add(1, Ordering::Relaxed);
                            received.lock().expect("lock").signatures.insert(id, ("release".into(), digest));
                        }
                    }
                }
            });
            // Approvals (2 of 3) and revocations of what was issued directly.
            s.spawn(move || {
                let body = json!({"profile": "release-signing", "csr": csr});
                while !stop.load(Ordering::Relaxed) {
                    let (code, v) =
                        call(api, root, ci, "POST", "/api/v1/certificates", Some(&body));
                    tally.unexpected("request", code, &v);
                    let Some(id) = v["request_id"].as_i64().filter(|_| code == 202) else {
                        continue;
                    };
                    for a in approvers {
                        let (code, v) = call(
                            api,
                            root,
                            a,
                            "POST",
                            &format!("/api/v1/requests/{id}/approve"),
                            Some(&json!({})),
                        );
                        tally.unexpected("approve", code, &v);
                        if code == 200 {
                            if let (Some(serial), Some(pem)) = (
                                v["certificate"]["serial"].as_str(),
                                v["certificate"]["certificate"].as_str(),
                            ) {
                                tally.approved.fetch_add(1, Ordering::Relaxed);
                                received
                                    .lock()
                                    .expect("lock")
                                    .certs
                                    .insert(serial.into(), pem_der(pem));
                            }
                        }
                    }
                    let victim = received.lock().expect("lock").certs.keys().next().cloned();
                    if let Some(serial) = victim {
                        let _ = call(
                            api,
                            root,
                            ci,
                            "POST",
                            &format!("/api/v1/certificates/{serial}/revoke"),
                            Some(&json!({"reason": "superseded"})),
                        );
                    }
                }
            });
            std::thread::sleep(kill_after);
            ok(std::process::Command::new("kill").args(["-KILL", &server.pid().to_string()]));
            stop.store(true, Ordering::Relaxed);
            let _ = station.wait();
        });
        server.wait_exit(Duration::from_secs(10));
        let started = Instant::now();
        server = Server::start(&ca, true);
        eprintln!(
            "crash round {round}: killed after {kill_after:?}, restarted in {:?}",
            started.elapsed()
        );
        // Factory answers the client wrote before the kill.
        let mut devices = 0usize;
        if let Ok(text) = std::fs::read_to_string(&out) {
            let mut r = received.lock().expect("lock");
            for l in text.lines() {
                let Ok(a) = serde_json::from_str::<Value>(l) else {
                    continue;
                };
                if let (Some(serial), Some(c)) = (a["serial"].as_str(), a["certificate"].as_str()) {
                    r.certs.insert(serial.into(), b64().decode(c).expect("b64"));
                    devices += 1;
                } else {
                    tally.unexpected("device line", 400, &a);
                }
            }
        }
        let (issued, approved, signatures) = (
            tally.issued.load(Ordering::Relaxed),
            tally.approved.load(Ordering::Relaxed),
            tally.signatures.load(Ordering::Relaxed),
        );
        eprintln!(
            "crash round {round}: before the kill {issued} certificates issued directly, \
             {approved} after approvals, {signatures} signatures, {devices} device lines"
        );
        let unexpected = tally.unexpected.lock().expect("lock");
        assert!(
            unexpected.is_empty(),
            "round {round}: answers that stop the load from testing: {unexpected:?}"
        );
        assert!(
            issued > 0 && signatures > 0 && devices > 0,
            "round {round}: the load got no answers to check (issued {issued}, signatures \
             {signatures}, device lines {devices})"
        );
        let r = received.lock().expect("lock");
        eprintln!(
            "crash round {round}: {} certificates and {} signatures received so far, all checked",
            r.certs.len(),
            r.signatures.len()
        );
        check(&ca, &r, &mut crl_numbers, round);
    }
}

/// The invariants, after a restart.
fn check(ca: &TestCa, r: &Received, crl_numbers: &mut HashMap<String, u64>, round: usize) {
    use hallmark::store::{CertStatus, SignatureRequestStatus};
    let store = ca.store();
    for (serial, der) in &r.certs {
        let stored = store
            .get_certificate(serial)
            .unwrap_or(None)
            .filter(|c| c.status == CertStatus::Issued)
            .and_then(|c| c.cert_der);
        assert_eq!(
            stored.as_ref(),
            Some(der),
            "round {round}: certificate {serial} as returned"
        );
    }
    for (id, (key, digest)) in &r.signatures {
        let stored = store
            .get_signature(*id)
            .unwrap_or_else(|e| panic!("round {round}: signature {id}: {e}"))
            .unwrap_or_else(|| panic!("round {round}: signature {id} not recorded"));
        assert_eq!(
            (&stored.key_label, &stored.digest),
            (key, digest),
            "round {round}: signature {id}"
        );
    }
    // A device with two live certificates, or a station counter that differs from its live
    // certificates, is reported by the integrity check.
    assert_eq!(
        store.integrity_check().expect("integrity"),
        Vec::<String>::new(),
        "round {round}: integrity"
    );
    assert_eq!(
        store
            .count_certificates(Some(CertStatus::Intent))
            .expect("count"),
        0,
        "round {round}: intents survived the restart"
    );
    assert!(
        store.claimed_requests().expect("claimed").is_empty(),
        "round {round}: a claimed request survived the restart"
    );
    assert!(
        store
            .signature_request_ids(SignatureRequestStatus::Signing)
            .expect("claimed")
            .is_empty(),
        "round {round}: a claimed signature request survived"
    );
    for ca_record in store.list_cas().expect("CAs") {
        let Some(n) = store.crl_number(&ca_record.name).expect("CRL number") else {
            continue;
        };
        let ca_name = ca_record.name;
        let before = crl_numbers.insert(ca_name.clone(), n).unwrap_or(0);
        assert!(
            n >= before,
            "round {round}: CRL number of {ca_name} went from {before} to {n}"
        );
    }
    ca.hm(&["doctor"]);
}

#[test]
fn kill_9_at_random_moments_keeps_every_record() {
    let kills = std::env::var("HALLMARK_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    crash_loop(Keys::Soft, kills);
    crash_loop(Keys::SoftHsm, kills);
}
