//! Webhooks on a real server: a local receiver (plain HTTP on 127.0.0.1) gets `request.pending`,
//! `request.approved`, `signature.made` and `request.denied`, each with a valid HMAC-SHA256
//! signature; with the receiver down the event waits in the outbox and arrives once it is back,
//! across a `kill -9` of the server too; `hallmark webhook test` and `webhook list`; bad
//! `[[webhook]]` settings are refused at load.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

const SECRET: &str = "webhook secret for the test";

/// What the receiver got: headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Delivery {
    headers: BTreeMap<String, String>,
    body: serde_json::Value,
    raw: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1:PORT answering 200; stopped when dropped.
struct Receiver {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, got: Arc<Mutex<Vec<Delivery>>>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        let stop = Arc::new(AtomicBool::new(false));
        let (s, g) = (stop.clone(), got.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let Ok(n) = conn.read(&mut chunk) else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(p + 4);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let headers: BTreeMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let Ok(n) = conn.read(&mut chunk) else { break };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let raw = buf[head_end..].to_vec();
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                g.lock().unwrap().push(Delivery {
                    headers,
                    body: serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null),
                    raw,
                });
            }
        });
        Receiver {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits (up to LIMIT) for a delivery of EVENT whose data has `request_id` ID (any when None).
fn wait_for(
    got: &Arc<Mutex<Vec<Delivery>>>,
    event: &str,
    id: Option<i64>,
    limit: Duration,
) -> Delivery {
    let start = Instant::now();
    loop {
        if let Some(d) = got.lock().unwrap().iter().find(|d| {
            d.body["event"] == event && id.is_none_or(|i| d.body["data"]["request_id"] == i)
        }) {
            return d.clone();
        }
        assert!(
            start.elapsed() < limit,
            "no {event} delivery within {limit:?}; got {:?}",
            got.lock()
                .unwrap()
                .iter()
                .map(|d| d.body["event"].clone())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hmac_ok(d: &Delivery) -> bool {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
    let Some(sig) = d.headers.get("x-hallmark-signature") else {
        return false;
    };
    let Some(hex_sig) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(bytes) = hex::decode(hex_sig) else {
        return false;
    };
    aws_lc_rs::hmac::verify(&key, &d.raw, &bytes).is_ok()
}

#[test]
fn events_reach_the_receiver_signed_and_survive_an_outage_and_a_restart() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    ca.create_key("acme", "gated", "p256", &[]);
    ca.hm(&[
        "key",
        "policy",
        "gated",
        "--approvals",
        "1",
        "--approvers",
        "security-lead",
    ]);
    let sign_token = ca.token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"]);
    let lead = ca.token(&[
        "--publisher",
        "acme",
        "--scopes",
        "approve",
        "--name",
        "security-lead",
    ]);
    let port = free_port();
    let mut config = std::fs::read_to_string(ca.config()).expect("config");
    config.push_str(&format!(
        "\n[[webhook]]\nname = \"approvers\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"request.pending\", \"request.approved\", \"request.denied\", \"signature.made\", \"certificate.expiring\"]\nsecret_env = \"WEBHOOK_SECRET\"\n\n[notifications]\nexpiring_days = 400\n"
    ));
    std::fs::write(ca.config(), config).expect("config");
    let env = [("WEBHOOK_SECRET", SECRET)];
    let root = ca.ca_pem("root").display().to_string();
    let mut server = Server::start_with_env(&ca, true, &env);
    let api = server.api.clone().expect("api");
    let got = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(port, got.clone());

    let post = |api: &str, digest: &str| -> i64 {
        let body = serde_json::json!({
            "key": "gated", "digest": digest, "digest_algorithm": "sha256", "format": "raw",
            "metadata": {"artifact": "app-1.2.3.tar.gz", "commit": "abc123"},
        });
        let auth = format!("Authorization: Bearer {sign_token}");
        let (code, raw, _) = curl(
            &format!("{api}/api/v1/signatures"),
            &[
                "--cacert",
                &root,
                "-H",
                &auth,
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body.to_string(),
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        assert_eq!(code, 202, "{v}");
        v["request_id"].as_i64().expect("request id")
    };
    let decide = |api: &str, id: i64, verb: &str, comment: &str| {
        let auth = format!("Authorization: Bearer {lead}");
        let body = serde_json::json!({"comment": comment}).to_string();
        let (code, raw, _) = curl(
            &format!("{api}/api/v1/signatures/requests/{id}/{verb}"),
            &[
                "--cacert",
                &root,
                "-H",
                &auth,
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body,
            ],
        );
        assert!(
            code == 200 || code == 201,
            "{verb}: {code} {}",
            String::from_utf8_lossy(&raw)
        );
    };

    // 0. The key's certificate ends within 400 days: announced once, naming the key.
    let d = wait_for(&got, "certificate.expiring", None, Duration::from_secs(20));
    assert!(hmac_ok(&d));
    let key_cert = got
        .lock()
        .unwrap()
        .iter()
        .find(|d| d.body["event"] == "certificate.expiring" && d.body["data"]["key"] == "gated")
        .cloned()
        .expect("the gated key's certificate is announced");
    assert!(
        key_cert.body["data"]["days_left"].as_i64().unwrap_or(0) > 300,
        "{}",
        key_cert.body
    );
    assert_eq!(key_cert.body["data"]["profile"], "code-signing");

    // 1. A request that waits: request.pending, with what an approver needs, signed.
    let digest = "ab".repeat(32);
    let id = post(&api, &digest);
    let d = wait_for(&got, "request.pending", Some(id), Duration::from_secs(20));
    assert!(hmac_ok(&d), "bad HMAC: {:?}", d.headers);
    assert_eq!(
        d.headers.get("x-hallmark-event").map(String::as_str),
        Some("request.pending")
    );
    assert_eq!(d.body["data"]["kind"], "signature");
    assert_eq!(d.body["data"]["key"], "gated");
    assert_eq!(d.body["data"]["digest"], digest.as_str());
    assert_eq!(d.body["data"]["requester"], "ci");
    assert_eq!(d.body["data"]["metadata"]["artifact"], "app-1.2.3.tar.gz");
    assert_eq!(d.body["data"]["approvals_required"], 1);
    // 2. Approved: request.approved (with the comment), then signature.made.
    decide(&api, id, "approve", "release 1.2.3 is go");
    let d = wait_for(&got, "request.approved", Some(id), Duration::from_secs(20));
    assert!(hmac_ok(&d));
    assert_eq!(
        d.body["actor"]
            .as_str()
            .map(|a| a.contains("security-lead")),
        Some(true),
        "{}",
        d.body
    );
    assert_eq!(d.body["data"]["comment"], "release 1.2.3 is go");
    let d = wait_for(&got, "signature.made", None, Duration::from_secs(20));
    assert_eq!(d.body["data"]["digest"], digest.as_str());
    assert_eq!(d.body["data"]["approvers"], "security-lead");

    // 3. `hallmark webhook test` sends at once.
    let out = run(ca
        .cmd(&["webhook", "test", "approvers"])
        .env("WEBHOOK_SECRET", SECRET));
    assert!(out.status.success(), "{}", text_of(&out));
    let d = wait_for(&got, "webhook.test", None, Duration::from_secs(5));
    assert!(hmac_ok(&d));
    let out = run(&mut ca.cmd(&["webhook", "test", "nosuch"]));
    assert!(!out.status.success());
    assert!(
        text_of(&out).contains("no webhook 'nosuch'"),
        "{}",
        text_of(&out)
    );

    // 4. The receiver goes down: the next event waits in the outbox...
    drop(receiver);
    let id2 = post(&api, &"cd".repeat(32));
    std::thread::sleep(Duration::from_secs(2));
    let list = ca.hm(&["--output", "json", "webhook", "list"]);
    let v: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert!(
        v["items"][0]["failed_attempts"].as_i64().unwrap_or(0) >= 1,
        "{v}"
    );
    assert!(v["items"][0]["last_error"].is_string(), "{v}");
    // ...and the server is killed (-9) and started again before the receiver is back.
    server.kill();
    let server = Server::start_with_env(&ca, true, &env);
    let api = server.api.clone().expect("api");
    let got2 = Arc::new(Mutex::new(Vec::new()));
    let _receiver = Receiver::start(port, got2.clone());
    let d = wait_for(&got2, "request.pending", Some(id2), Duration::from_secs(40));
    assert!(hmac_ok(&d));
    // Nothing delivered twice, nothing lost: the first request's events are not sent again.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !got2
            .lock()
            .unwrap()
            .iter()
            .any(|d| d.body["data"]["request_id"] == id),
        "an event was delivered twice"
    );
    // The restarted server announced no certificate a second time.
    assert!(
        !got2
            .lock()
            .unwrap()
            .iter()
            .any(|d| d.body["event"] == "certificate.expiring"),
        "a certificate was announced twice"
    );
    // 5. A denial carries its comment.
    decide(&api, id2, "deny", "wrong commit");
    let d = wait_for(&got2, "request.denied", Some(id2), Duration::from_secs(20));
    assert_eq!(d.body["data"]["comment"], "wrong commit");
    drop(server);
}

#[test]
fn bad_webhook_settings_are_refused_at_load() {
    let ca = TestCa::new(Keys::Soft);
    let base = std::fs::read_to_string(ca.config()).expect("config");
    for (hook, why) in [
        (
            "name = \"a b\"\nurl = \"http://127.0.0.1:1/\"\nsecret = \"s\"",
            "letters, digits",
        ),
        (
            "name = \"x\"\nurl = \"ftp://h/\"\nsecret = \"s\"",
            "not an http(s) URL",
        ),
        (
            "name = \"x\"\nurl = \"https://h/\"\nsecret = \"s\"\nevents = [\"request.exploded\"]",
            "unknown event",
        ),
        (
            "name = \"x\"\nurl = \"https://h/\"",
            "exactly one of secret, secret_env",
        ),
        (
            "name = \"x\"\nurl = \"https://h/\"\nsecret = \"s\"\nformat = \"xml\"",
            "not json or slack",
        ),
    ] {
        std::fs::write(ca.config(), format!("{base}\n[[webhook]]\n{hook}\n")).expect("config");
        let out = run(&mut ca.cmd(&["webhook", "list"]));
        assert!(!out.status.success(), "{hook}");
        assert!(text_of(&out).contains(why), "{hook}: {}", text_of(&out));
    }
    std::fs::write(
        ca.config(),
        format!("{base}\n[notifications]\nexpiring_days = 0\n"),
    )
    .expect("config");
    let out = run(&mut ca.cmd(&["webhook", "list"]));
    assert!(!out.status.success());
    assert!(
        text_of(&out).contains("expiring_days must be 1 to 3650"),
        "{}",
        text_of(&out)
    );
    std::fs::write(ca.config(), base).expect("config");
}
