//! `hallmark serve --log-format json`: a start line, one access line per request (method, route
//! template, status, latency, bytes, credential id, request id) whose request id the response
//! carries as `X-Request-Id` (and a problem document as `request_id`), the request id in the
//! audit trail, and a drain line at SIGTERM. No token secret appears anywhere in the log.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::common::*;
use serde_json::Value;

/// curl with the response head: (status, headers lower-cased, body).
fn call(url: &str, args: &[&str]) -> (u16, Vec<(String, String)>, String) {
    let mut c = Command::new(tool("curl"));
    c.args(["-s", "-i"]).args(args).arg(url);
    let out = run(&mut c);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

#[test]
fn the_server_logs_json_lines_with_request_ids() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let officer = ca.token(&["--officer", "--scopes", "issue,revoke,sign,approve"]);
    let secret = officer.rsplit('_').next().expect("secret").to_string();
    let root = ca.ca_pem("root").display().to_string();
    let mut child = ca
        .cmd(&[
            "serve",
            "--public-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut url = |what: &str| {
        let mut line = String::new();
        out.read_line(&mut line).expect("banner");
        assert!(line.contains(what), "{line}");
        line.split_whitespace()
            .find(|w| w.starts_with("http"))
            .expect("url")
            .to_string()
    };
    let (public, api) = (url("public listener"), url("API listener"));
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    let err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().expect("log").push(line);
        }
    });

    let (code, h, _) = call(&format!("{public}/healthz"), &[]);
    assert_eq!(code, 200);
    let health_id = header(&h, "x-request-id").to_string();
    let auth = format!("Authorization: Bearer {officer}");
    let (code, h, _) = call(
        &format!("{api}/api/v1/certificates?limit=5"),
        &["--cacert", &root, "-H", &auth],
    );
    assert_eq!(code, 200);
    let list_id = header(&h, "x-request-id").to_string();
    let (code, h, body) = call(
        &format!("{api}/api/v1/certificates"),
        &[
            "--cacert",
            &root,
            "-H",
            "Authorization: Bearer hmk_0123456789ab_wrong",
        ],
    );
    assert_eq!(code, 401);
    let problem: Value = serde_json::from_str(&body).expect("problem");
    assert_eq!(problem["request_id"], header(&h, "x-request-id"), "{body}");
    // A write goes to the audit trail with its request id.
    let (code, h, body) = call(
        &format!("{api}/api/v1/publishers"),
        &[
            "--cacert",
            &root,
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"id":"initech","org":"Initech","country":"US","state":"Texas","profiles":["code-signing"]}"#,
        ],
    );
    assert_eq!(code, 201, "{body}");
    let write_id = header(&h, "x-request-id").to_string();
    let audit = ca.hm(&["audit", "--limit", "5"]);
    assert!(audit.contains(&format!("request:{write_id}")), "{audit}");

    // SIGTERM: the server says it drains and stops.
    let pid = child.id().to_string();
    ok(Command::new("kill").args(["-TERM", &pid]));
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    reader.join().expect("reader");
    let lines = log.lock().expect("log").clone();
    let all = lines.join("\n");
    assert!(
        !all.contains(&secret),
        "the token's secret is in the log:\n{all}"
    );
    let json: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |pred: &dyn Fn(&Value) -> bool, what: &str| -> Value {
        json.iter()
            .find(|v| pred(v))
            .cloned()
            .unwrap_or_else(|| panic!("no {what} line in:\n{all}"))
    };
    find(&|v| v["message"] == "serving", "start");
    let access = |id: &str| {
        find(
            &|v| v["target"] == "hallmark::access" && v["request_id"] == id,
            "access",
        )
    };
    let a = access(&health_id);
    assert_eq!(
        (
            &a["listener"],
            &a["method"],
            &a["route"],
            &a["status"],
            &a["level"]
        ),
        (
            &Value::from("public"),
            &Value::from("GET"),
            &Value::from("/healthz"),
            &Value::from(200),
            &Value::from("INFO")
        )
    );
    assert!(a["latency_ms"].as_f64().is_some() && a["bytes"] == 3, "{a}");
    assert!(a["timestamp"].is_string(), "{a}");
    let a = access(&list_id);
    assert_eq!(a["route"], "/api/v1/certificates");
    let token_id = officer.split('_').nth(1).expect("token id");
    assert_eq!(a["credential"], token_id, "{a}");
    let a = access(&write_id);
    assert_eq!(
        (a["method"].as_str(), a["status"].as_u64()),
        (Some("POST"), Some(201))
    );
    find(
        &|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("stopping"))
        },
        "stopping",
    );
    find(
        &|v| v["message"] == "stopped: every connection drained",
        "stopped",
    );
}
