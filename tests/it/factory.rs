//! The factory line over mutual TLS: a 10,000-device batch, idempotent resubmission, refusals
//! in their own answer lines, disabled and certificate-less clients, and a client killed halfway.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::*;
use base64::Engine;
use hallmark::store::CertStatus;
use x509_parser::prelude::*;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Devices 1..=N: (serial, CSR), the serial made by SERIAL.
fn devices(n: u32, serial: impl Fn(u32) -> String) -> Vec<(String, Vec<u8>)> {
    (1..=n)
        .map(|i| {
            let s = serial(i);
            let csr = device_csr(&s);
            (s, csr)
        })
        .collect()
}

/// How many complete lines a file has (0 if it is missing).
fn lines_in(path: &Path) -> usize {
    std::fs::read(path)
        .map(|d| d.iter().filter(|&&b| b == b'\n').count())
        .unwrap_or(0)
}

fn write_batch(path: &Path, lines: &[(String, Vec<u8>)]) {
    let mut f = std::fs::File::create(path).expect("batch");
    for (serial, csr) in lines {
        writeln!(
            f,
            "{}",
            serde_json::json!({"device_serial": serial, "csr": b64().encode(csr)})
        )
        .expect("write");
    }
}

/// Fields drop in order: the server stops before its directory is deleted.
struct Line {
    server: Server,
    ca: TestCa,
    root: String,
}

impl Line {
    fn new() -> Line {
        let ca = TestCa::new(Keys::Soft);
        ca.add_acme();
        let root = ca.ca_pem("root").display().to_string();
        let server = Server::start(&ca, true);
        Line { ca, server, root }
    }

    fn station(&self, name: &str, pattern: &str, quota: u32, extra: &[&str]) {
        let dir = self.ca.path("stations").display().to_string();
        let q = quota.to_string();
        let mut args = vec![
            "station",
            "add",
            name,
            "--profile",
            "iot-device",
            "--serial-pattern",
            pattern,
            "--quota",
            &q,
            "--out-dir",
            &dir,
        ];
        args.extend_from_slice(extra);
        self.ca.hm(&args);
    }

    /// Station NAME (PATTERN, QUOTA) and a batch file INPUT of devices 1..=N named by SERIAL.
    fn station_with_batch(
        &self,
        name: &str,
        pattern: &str,
        quota: u32,
        n: u32,
        serial: impl Fn(u32) -> String,
        input: &str,
    ) -> (Vec<(String, Vec<u8>)>, PathBuf) {
        self.station(name, pattern, quota, &[]);
        let devices = devices(n, serial);
        let input = self.ca.path(input);
        write_batch(&input, &devices);
        (devices, input)
    }

    fn run(&self, station: &str, input: &Path, output: &Path) -> std::process::Command {
        let dir = self.ca.path("stations");
        let mut c = std::process::Command::new(hallmark_bin());
        c.args([
            "station",
            "run",
            "--quiet",
            "--server",
            self.api(),
            "--ca",
            &self.root,
        ])
        .arg("--cert")
        .arg(dir.join(format!("{station}.pem")))
        .arg("--key")
        .arg(dir.join(format!("{station}.key")))
        .arg("--in")
        .arg(input)
        .arg("--out")
        .arg(output);
        c
    }

    fn api(&self) -> &str {
        self.server.api.as_deref().expect("api")
    }

    fn store(&self) -> std::sync::Arc<dyn hallmark::store::hooks::HookedStore> {
        self.ca.store()
    }

    fn station_certs(&self, station: &str) -> HashMap<String, Vec<u8>> {
        self.store()
            .certificates_of_station(station)
            .expect("read")
            .into_iter()
            .filter(|c| c.status == CertStatus::Issued)
            .map(|c| (c.serial, c.cert_der.expect("issued certificate")))
            .collect()
    }
}

fn answers(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("answers")
        .lines()
        .map(|l| serde_json::from_str(l).expect("answer json"))
        .collect()
}

#[test]
fn ten_thousand_devices_then_idempotent_resubmission() {
    let line = Line::new();
    let (devices, input) = line.station_with_batch(
        "line-3",
        "^ACME-L3-[0-9]{8}$",
        1_000_000,
        10_000,
        |i| format!("ACME-L3-{i:08}"),
        "batch.ndjson",
    );
    let out = line.ca.path("certs.ndjson");
    ok(&mut line.run("line-3", &input, &out));

    let ans = answers(&out);
    assert_eq!(ans.len(), 10_000, "one answer per line");
    let stored = line.station_certs("line-3");
    assert_eq!(
        stored.len(),
        10_000,
        "the records match the answers one to one"
    );
    let certs_dir = line.ca.path("device-certs");
    std::fs::create_dir_all(&certs_dir).expect("dir");
    let mut files: Vec<PathBuf> = Vec::new();
    for (a, (serial, _)) in ans.iter().zip(&devices) {
        assert_eq!(a["status"], "issued", "{a}");
        assert_eq!(
            a["device_serial"].as_str(),
            Some(serial.as_str()),
            "answers are in input order"
        );
        let der = b64()
            .decode(a["certificate"].as_str().expect("cert"))
            .expect("b64");
        assert_eq!(
            stored.get(a["serial"].as_str().expect("serial")),
            Some(&der)
        );
        let (_, cert) = X509Certificate::from_der(&der).expect("parse");
        assert!(cert
            .subject()
            .to_string()
            .contains(&format!("serialNumber={serial}")));
        assert_eq!(cert.validity().not_after.to_datetime().year(), 9999);
        let f = certs_dir.join(format!("{serial}.pem"));
        std::fs::write(&f, hallmark::pemfmt::encode("CERTIFICATE", der)).expect("write");
        files.push(f);
    }
    // Every certificate verifies under the device CA (openssl, many files per call).
    let device_ca = line.ca.ca_pem("device-ca").display().to_string();
    for chunk in files.chunks(1000) {
        let mut c = std::process::Command::new(tool("openssl"));
        c.args(["verify", "-CAfile", &line.root, "-untrusted", &device_ca])
            .args(chunk);
        let out = ok(&mut c);
        assert_eq!(out.matches(": OK").count(), chunk.len());
    }
    for f in files.iter().step_by(2500) {
        assert_pkilint_clean(line.ca.dir.path(), &f.display().to_string());
    }

    // The same file again, to a new output: the same certificates, nothing new issued.
    let again = line.ca.path("again.ndjson");
    ok(&mut line.run("line-3", &input, &again));
    let ans2 = answers(&again);
    assert_eq!(ans2.len(), 10_000);
    for (a, b) in ans.iter().zip(&ans2) {
        assert_eq!(a["serial"], b["serial"]);
        assert_eq!(a["certificate"], b["certificate"]);
    }
    assert_eq!(line.station_certs("line-3").len(), 10_000);
    // A rerun with the finished output sends nothing.
    let out_run = run(&mut line.run("line-3", &input, &out));
    assert!(out_run.status.success());
    assert!(String::from_utf8_lossy(&out_run.stderr).contains("already answered"));
}

#[test]
fn bad_lines_are_refused_in_their_own_answers() {
    let line = Line::new();
    line.station("line-4", "^ACME-L4-[0-9]{4}$", 3, &[]);
    let ok1 = device_csr("ACME-L4-0001");
    let mut lines: Vec<String> = Vec::new();
    let enc = |s: &str, csr: &[u8]| {
        serde_json::json!({"device_serial": s, "csr": b64().encode(csr)}).to_string()
    };
    lines.push(enc("ACME-L4-0001", &ok1));
    lines.push(enc("EVIL-0001", &device_csr("EVIL-0001")));
    lines.push(
        serde_json::json!({"device_serial": "ACME-L4-0002", "csr": "bm90IGEgQ1NS"}).to_string(),
    );
    lines.push("this is not json".to_string());
    lines.push(enc("ACME-L4-0003", &device_csr("ACME-L4-0003")));
    lines.push(enc("ACME-L4-0004", &device_csr("ACME-L4-0004")));
    lines.push(enc("ACME-L4-0005", &device_csr("ACME-L4-0005")));
    let input = line.ca.path("bad.ndjson");
    std::fs::write(&input, lines.join("\n") + "\n").expect("write");
    let out = line.ca.path("bad-out.ndjson");
    ok(&mut line.run("line-4", &input, &out));
    let a = answers(&out);
    let kinds: Vec<String> = a
        .iter()
        .map(|x| match x["status"].as_str() {
            Some("issued") => "issued".to_string(),
            _ => x["error"]["type"]
                .as_str()
                .and_then(|t| t.strip_prefix("urn:hallmark:problem:"))
                .unwrap_or("")
                .to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "issued",
            "serial-not-allowed",
            "bad-csr",
            "bad-request",
            "issued",
            "issued",
            "quota-exceeded"
        ],
        "{a:?}"
    );
    assert!(a
        .iter()
        .all(|x| x["status"] == "issued"
            || x["error"]["detail"].as_str().is_some_and(|d| !d.is_empty())));

    // A device that already has a certificate, with another key: refused (no reprovision right).
    let other = line.ca.path("other.ndjson");
    write_batch(
        &other,
        &[("ACME-L4-0001".to_string(), device_csr("ACME-L4-0001"))],
    );
    let out2 = line.ca.path("other-out.ndjson");
    ok(&mut line.run("line-4", &other, &out2));
    assert_eq!(
        answers(&out2)[0]["error"]["type"],
        "urn:hallmark:problem:device-exists"
    );
    assert_eq!(line.station_certs("line-4").len(), 3);

    // A station with the reprovision right gets a new certificate; the old one is revoked.
    line.station("line-9", "^ACME-L4-[0-9]{4}$", 10, &["--reprovision"]);
    let out3 = line.ca.path("re-out.ndjson");
    ok(&mut line.run("line-9", &other, &out3));
    let a3 = answers(&out3);
    assert_eq!(a3[0]["status"], "issued", "{a3:?}");
    let old_serial = a[0]["serial"].as_str().expect("serial");
    let revoked = line.store().get_revocation(old_serial).expect("read");
    assert!(revoked.is_some(), "the superseded certificate is revoked");

    // A disabled station is refused; a client without a station certificate gets 401.
    line.ca.hm(&["station", "disable", "line-4"]);
    let out4 = line.ca.path("disabled-out.ndjson");
    let r = run(&mut line.run("line-4", &input, &out4));
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("disabled"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let (code, body, _) = curl(
        &format!("{}/api/v1/provision/batch", line.api()),
        &["--cacert", &line.root, "-X", "POST", "--data-binary", "{}"],
    );
    assert_eq!(code, 401, "{}", String::from_utf8_lossy(&body));
    // The station list shows what happened.
    let list = line.ca.hm(&["station", "list"]);
    assert!(
        list.contains("line-4") && list.contains("DISABLED"),
        "{list}"
    );
}

#[test]
fn a_client_killed_halfway_resumes_without_duplicates() {
    let line = Line::new();
    let (devices, input) = line.station_with_batch(
        "line-5",
        "^ACME-L5-[0-9]{6}$",
        100_000,
        4_000,
        |i| format!("ACME-L5-{i:06}"),
        "l5.ndjson",
    );
    let out = line.ca.path("l5-out.ndjson");
    let mut child = line.run("line-5", &input, &out).spawn().expect("spawn");
    let start = std::time::Instant::now();
    loop {
        let n = lines_in(&out);
        if n >= 300 || start.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    let partial = lines_in(&out);
    assert!(
        partial > 0 && partial < 4_000,
        "killed halfway ({partial} answers)"
    );
    // Every certificate the killed client had received is in the database.
    let stored = line.station_certs("line-5");
    let text = std::fs::read_to_string(&out).expect("out");
    for l in text.lines().filter(|l| !l.is_empty()) {
        let a: serde_json::Value = serde_json::from_str(l).expect("json");
        let der = b64()
            .decode(a["certificate"].as_str().expect("cert"))
            .expect("b64");
        assert_eq!(
            stored.get(a["serial"].as_str().expect("serial")),
            Some(&der)
        );
    }
    // Run again: it completes the rest.
    ok(&mut line.run("line-5", &input, &out));
    let all = answers(&out);
    assert_eq!(all.len(), 4_000);
    let mut serials = HashSet::new();
    for (a, (dev, _)) in all.iter().zip(&devices) {
        assert_eq!(a["status"], "issued");
        assert_eq!(a["device_serial"].as_str(), Some(dev.as_str()));
        assert!(
            serials.insert(a["serial"].as_str().expect("serial").to_string()),
            "no duplicate serial"
        );
    }
    // No device has two certificates.
    let mut devices = HashSet::new();
    for c in line
        .store()
        .certificates_of_station("line-5")
        .expect("read")
    {
        let device = c.device_serial.expect("a device certificate");
        assert!(
            devices.insert(device.clone()),
            "{device} has two certificates"
        );
    }
    assert_eq!(
        line.store().integrity_check().expect("check"),
        Vec::<String>::new()
    );
    assert_eq!(line.station_certs("line-5").len(), 4_000);
}

#[test]
fn sigterm_lets_a_batch_in_flight_finish() {
    let mut line = Line::new();
    let (_, input) = line.station_with_batch(
        "line-6",
        "^ACME-L6-[0-9]{6}$",
        100_000,
        3_000,
        |i| format!("ACME-L6-{i:06}"),
        "l6.ndjson",
    );
    let out = line.ca.path("l6-out.ndjson");
    let mut client = line.run("line-6", &input, &out).spawn().expect("spawn");
    let start = std::time::Instant::now();
    while std::fs::read(&out).map(|d| d.is_empty()).unwrap_or(true)
        && start.elapsed().as_secs() < 60
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Stop the server while the batch streams: it stops accepting, finishes this request, exits.
    ok(std::process::Command::new("kill").args(["-TERM", &line.server.pid().to_string()]));
    let status = client.wait().expect("client");
    assert!(status.success(), "the batch in flight completed");
    assert_eq!(answers(&out).len(), 3_000);
    let code = line.server.wait_exit(std::time::Duration::from_secs(30));
    assert_eq!(code, Some(0), "the server exited cleanly after SIGTERM");
}

/// `kill -9` of the server while a batch streams, then a restart: what the stop left between
/// record and sign (certificate intents) is finished at start, before any request is answered;
/// the resumed `station run` completes every device without duplicates, the station's counter
/// equals its live certificates, and `doctor` passes.
#[test]
fn a_server_killed_mid_batch_recovers_its_intents_at_start() {
    let mut line = Line::new();
    let (devices, input) = line.station_with_batch(
        "line-7",
        "^ACME-L7-[0-9]{6}$",
        100_000,
        4_000,
        |i| format!("ACME-L7-{i:06}"),
        "l7.ndjson",
    );
    let out = line.ca.path("l7-out.ndjson");
    let intents = |line: &Line| -> i64 {
        line.store()
            .count_certificates(Some(CertStatus::Intent))
            .expect("count")
    };
    // Kill it (SIGKILL, sent directly) as soon as the database holds a recorded, unsigned chunk;
    // tried up to five times, since the chunk can be completed between the look and the kill.
    let mut left = 0;
    for _ in 0..5 {
        let mut client = line.run("line-7", &input, &out).spawn().expect("spawn");
        let before = lines_in(&out);
        let start = std::time::Instant::now();
        while lines_in(&out) < before + 100 && start.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let store = line.store();
        while start.elapsed().as_secs() < 60 {
            let n = store
                .count_certificates(Some(CertStatus::Intent))
                .unwrap_or(0);
            if n > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        line.server.kill();
        let _ = client.wait();
        left = intents(&line);
        line.server = Server::start(&line.ca, true);
        if left > 0 {
            break;
        }
    }
    assert!(left > 0, "a kill -9 mid-batch left certificate intents");
    // The restarted server finished them before it said it was ready.
    assert_eq!(intents(&line), 0, "no intent older than the start survives");
    let recovered = line
        .store()
        .audit_events(1_000_000)
        .expect("audit")
        .iter()
        .filter(|e| e.actor == "recovery" && e.action == "certificate.issued")
        .count() as i64;
    assert!(recovered >= left, "recovered {recovered} of {left} intents");

    // The resumed run completes every device at once (no waiting on leftovers).
    ok(&mut line.run("line-7", &input, &out));
    let all = answers(&out);
    assert_eq!(all.len(), 4_000);
    let mut serials = HashSet::new();
    for (a, (dev, _)) in all.iter().zip(&devices) {
        assert_eq!(a["status"], "issued", "{a}");
        assert_eq!(a["device_serial"].as_str(), Some(dev.as_str()));
        assert!(serials.insert(a["serial"].as_str().expect("serial").to_string()));
    }
    let stored = line.station_certs("line-7");
    assert_eq!(stored.len(), 4_000, "one live certificate per device");
    for a in &all {
        let der = b64()
            .decode(a["certificate"].as_str().expect("cert"))
            .expect("b64");
        assert_eq!(
            stored.get(a["serial"].as_str().expect("serial")),
            Some(&der)
        );
    }
    let counter = line
        .store()
        .station_issued_count("line-7")
        .expect("counter");
    let live = line
        .store()
        .certificates_of_station("line-7")
        .expect("read")
        .iter()
        .filter(|c| c.status != CertStatus::Abandoned)
        .count() as i64;
    assert_eq!(
        counter, live,
        "the station counter equals its live certificates"
    );
    assert_eq!(
        line.store().integrity_check().expect("check"),
        Vec::<String>::new()
    );
    line.ca.hm(&["doctor"]);
}

/// A station whose certificate is revoked (the station itself still enabled) is refused with 403
/// on its next batch, nothing is issued for it, and `station list` shows why.
#[test]
fn a_station_with_a_revoked_certificate_is_refused() {
    let line = Line::new();
    let (_, input) = line.station_with_batch(
        "line-8",
        "^ACME-L8-[0-9]{4}$",
        100,
        3,
        |i| format!("ACME-L8-{i:04}"),
        "l8.ndjson",
    );
    let first = line.ca.path("l8-first.ndjson");
    ok(&mut line.run("line-8", &input, &first));
    assert_eq!(answers(&first).len(), 3);
    let serial = line
        .store()
        .get_station("line-8")
        .expect("read")
        .and_then(|s| s.cert_serial)
        .expect("station certificate");
    line.ca
        .hm(&["revoke", &serial, "--reason", "keyCompromise"]);
    let more = line.ca.path("l8-more.ndjson");
    write_batch(
        &more,
        &[("ACME-L8-0009".to_string(), device_csr("ACME-L8-0009"))],
    );
    let out = line.ca.path("l8-out.ndjson");
    let r = run(&mut line.run("line-8", &more, &out));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "{stderr}");
    assert!(stderr.contains("revoked"), "{stderr}");
    assert_eq!(line.station_certs("line-8").len(), 3, "nothing more issued");
    let list = line.ca.hm(&["station", "list"]);
    let row = list.lines().find(|l| l.starts_with("line-8")).unwrap_or("");
    assert!(row.contains("CERT-REVOKED"), "{list}");
}

/// A line over 64 KiB after valid lines ends the batch with `too-large` in its own answer: the
/// lines before it are answered, nothing after it is parsed or issued.
#[test]
fn a_line_over_the_limit_ends_the_batch() {
    let line = Line::new();
    line.station("line-11", "^ACME-L11-[0-9]{4}$", 10, &[]);
    let enc = |s: &str| {
        serde_json::json!({"device_serial": s, "csr": b64().encode(device_csr(s))}).to_string()
    };
    let long = format!(
        "{{\"device_serial\": \"ACME-L11-0003\", \"csr\": \"{}\"}}",
        "A".repeat(70_000)
    );
    let body = [
        enc("ACME-L11-0001"),
        enc("ACME-L11-0002"),
        long,
        enc("ACME-L11-0004"),
    ]
    .join("\n")
        + "\n";
    let input = line.ca.path("l11.ndjson");
    std::fs::write(&input, body).expect("write");
    let dir = line.ca.path("stations");
    let data = format!("@{}", input.display());
    let (cert, key) = (
        dir.join("line-11.pem").display().to_string(),
        dir.join("line-11.key").display().to_string(),
    );
    let (code, out, _) = curl(
        &format!("{}/api/v1/provision/batch", line.api()),
        &[
            "--cacert",
            &line.root,
            "--cert",
            &cert,
            "--key",
            &key,
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            &data,
        ],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&out));
    let answers: Vec<serde_json::Value> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("answer json"))
        .collect();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0]["status"], "issued");
    assert_eq!(answers[1]["status"], "issued");
    assert!(
        answers[2]["error"]["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("too-large")),
        "{answers:?}"
    );
    assert_eq!(
        line.station_certs("line-11").len(),
        2,
        "nothing after the long line"
    );
}

/// `station run` takes the server and the root from the client profile (`hallmark client
/// bootstrap`) when `--server` and `--ca` are not given.
#[test]
fn station_run_reads_the_client_profile() {
    let line = Line::new();
    let (devices, input) = line.station_with_batch(
        "line-cp",
        "^CP-[0-9]{4}$",
        10,
        2,
        |i| format!("CP-{i:04}"),
        "cp.ndjson",
    );
    let xdg = line.ca.path("xdg");
    let fp = line
        .ca
        .hm(&["ca", "fingerprint", "root"])
        .trim()
        .to_string();
    ok(std::process::Command::new(hallmark_bin())
        .args([
            "client",
            "bootstrap",
            "--server",
            line.api(),
            "--fingerprint",
            &fp,
            "--public",
            &line.server.public,
        ])
        .env("XDG_CONFIG_HOME", &xdg));
    let dir = line.ca.path("stations");
    let out = line.ca.path("cp-out.ndjson");
    ok(std::process::Command::new(hallmark_bin())
        .args(["station", "run", "--quiet", "--cert"])
        .arg(dir.join("line-cp.pem"))
        .arg("--key")
        .arg(dir.join("line-cp.key"))
        .arg("--in")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .env("XDG_CONFIG_HOME", &xdg)
        .env_remove("HALLMARK_CONFIG"));
    assert_eq!(lines_in(&out), devices.len());
    assert!(std::fs::read_to_string(&out)
        .expect("answers")
        .lines()
        .all(|l| l.contains("\"issued\"")));
}

/// A fault of the database in the middle of a batch: the station reads a generic line (kind
/// `internal`, no text of the fault), the server's log keeps the fault's own words, and once
/// the fault is gone the same lines are issued.
#[test]
fn a_store_fault_gives_the_station_a_generic_line_and_the_log_the_detail() {
    let line = Line::new();
    let (devices, input) = line.station_with_batch(
        "line-12",
        "^ACME-L12-[0-9]{4}$",
        10,
        3,
        |i| format!("ACME-L12-{i:04}"),
        "l12.ndjson",
    );
    const FAULT: &str = "disk sector 4711 unreadable";
    line.store()
        .fail_certificate_records(Some(FAULT))
        .expect("fault");
    let output = line.ca.path("l12.out");
    let status = line.run("line-12", &input, &output).status().expect("run");
    let got = answers(&output);
    assert_eq!(got.len(), devices.len(), "{got:?}");
    for a in &got {
        let text = a.to_string();
        assert_eq!(a["status"], "refused", "{text}");
        assert!(
            a["error"]["type"]
                .as_str()
                .is_some_and(|t| t.ends_with(":internal")),
            "{text}"
        );
        assert!(
            !text.contains("4711"),
            "the fault's text reached the station: {text}"
        );
        assert!(!text.contains("database"), "{text}");
    }
    assert!(status.success(), "refusals are answers, not a failed run");
    assert!(
        line.server.log_text().contains(FAULT),
        "the log keeps the detail: {}",
        line.server.log_text()
    );
    assert!(line.station_certs("line-12").is_empty());
    line.store().fail_certificate_records(None).expect("heal");
    let again = line.ca.path("l12-again.out");
    let status = line.run("line-12", &input, &again).status().expect("run");
    assert!(status.success());
    assert!(answers(&again).iter().all(|a| a["status"] == "issued"));
    assert_eq!(line.station_certs("line-12").len(), devices.len());
}
