//! schemathesis against `openapi.yaml`: a bounded run on both listeners of a real server, with
//! an officer token (every scope) on the API listener, failing on any 5xx, any status the
//! document does not list for the operation, a body that does not match its schema, or a wrong
//! content type or header. Binary bodies (OCSP, RFC 3161, NDJSON) and path parameters that
//! name existing records come from `tests/schemathesis/hallmark_hooks.py`.
//!
//! `HALLMARK_ST_EXAMPLES` (default 40 per operation) and `HALLMARK_ST_SEED` (default fixed, so a
//! failure repeats) tune the run; the seed is printed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

/// The checks that make the run fail (schemathesis' names).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance";

/// Runs schemathesis against BASE with ARGS; panics with its report unless it found nothing.
fn schemathesis(dir: &Path, fixtures: &Path, base: &str, args: &[&str]) {
    let examples = std::env::var("HALLMARK_ST_EXAMPLES").unwrap_or_else(|_| "40".into());
    let seed = std::env::var("HALLMARK_ST_SEED").unwrap_or_else(|_| "20261203".into());
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    let mut c = Command::new(tool("schemathesis"));
    c.current_dir(dir)
        .env("HALLMARK_ST_FIXTURES", fixtures)
        .env("PYTHONPATH", &hooks)
        .env("SCHEMATHESIS_HOOKS", "hallmark_hooks")
        .arg("run")
        .arg(&spec)
        .args(["--url", base, "--checks", CHECKS])
        .args(["--max-examples", &examples, "--seed", &seed])
        .arg("--no-color")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = c.spawn().expect("start schemathesis");
    // A bounded run: a hang is a failure, not a wait.
    let limit = Duration::from_secs(600);
    while child.try_wait().expect("schemathesis state").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("schemathesis against {base} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().expect("schemathesis output");
    let text = text_of(&out);
    let summary: String = text
        .lines()
        .rev()
        .take(25)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    println!(
        "schemathesis against {base} (seed {seed}, {examples} examples per operation, {:.1} s):\n{summary}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "schemathesis found failures against {base} (seed {seed}; repeat with HALLMARK_ST_SEED={seed}):\n{text}"
    );
    assert!(
        text.contains(" passed"),
        "schemathesis ran no test case against {base}:\n{text}"
    );
}

#[test]
fn both_listeners_answer_as_openapi_yaml_documents() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    // The per-token rate limit (documented as 429 on every authenticated operation) would
    // answer most of a fast run; raised here so the run reaches the handlers.
    let config = std::fs::read_to_string(ca.config()).expect("config");
    assert!(config.contains("rate_limit_per_minute = 600"));
    std::fs::write(
        ca.config(),
        config.replace(
            "rate_limit_per_minute = 600",
            "rate_limit_per_minute = 1000000",
        ),
    )
    .expect("write config");
    ca.create_key("acme", "release", "p256", &["--profile", "code-signing"]);
    let officer = ca.token(&["--officer", "--scopes", "issue,revoke,sign,approve"]);
    let dir = ca.path("");

    // Real requests for the binary bodies, about the key's certificate.
    std::fs::write(ca.path("release.pem"), ca.hm(&["key", "show", "release"])).expect("pem");
    ca.ca_pem("code-signing-ca");
    openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            "code-signing-ca.pem",
            "-cert",
            "release.pem",
            "-no_nonce",
            "-reqout",
            "ocsp.req",
        ],
    );
    std::fs::write(ca.path("data.txt"), "hallmark\n").expect("data");
    openssl(
        &dir,
        &[
            "ts", "-query", "-data", "data.txt", "-sha256", "-cert", "-out", "ts.req",
        ],
    );
    let serial = openssl(&dir, &["x509", "-in", "release.pem", "-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_lowercase();
    let read_hex = |name: &str| hex::encode(std::fs::read(ca.path(name)).expect("fixture"));

    let server = Server::start(&ca, true);
    let api = server.api.clone().expect("api listener");
    let root = ca.ca_pem("root");

    // One signature, so GET /api/v1/signatures/{id} has a record to show.
    let (status, body, _) = curl(
        &format!("{api}/api/v1/signatures"),
        &[
            "--cacert",
            &root.display().to_string(),
            "-H",
            &format!("Authorization: Bearer {officer}"),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!(
                r#"{{"key":"release","digest":"{}","digest_algorithm":"sha256","format":"raw"}}"#,
                "ab".repeat(32)
            ),
        ],
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let signature_id = serde_json::from_slice::<serde_json::Value>(&body).expect("json")["id"]
        .as_i64()
        .expect("signature id")
        .to_string();

    let fixtures = serde_json::json!({
        "bodies": {
            "application/ocsp-request": [read_hex("ocsp.req")],
            "application/timestamp-query": [read_hex("ts.req")],
            "application/x-ndjson": [hex::encode(
                format!("{{\"device_serial\":\"SN-1\",\"csr\":\"{}\"}}\n", "AAAA")
            )],
        },
        "params": {
            "name": ["root", "code-signing-ca", "tls-ca"],
            "ca": ["code-signing-ca"],
            "k": ["0"],
            "serial": [serial],
            "label": ["release"],
            "profile": ["tls-server"],
            "id": [signature_id],
        },
    });
    let fixtures_path = ca.path("schemathesis-fixtures.json");
    std::fs::write(&fixtures_path, fixtures.to_string()).expect("fixtures");

    schemathesis(
        &dir,
        &fixtures_path,
        &server.public,
        &["--include-tag", "public"],
    );
    schemathesis(
        &dir,
        &fixtures_path,
        &api,
        &[
            "--exclude-tag",
            "public",
            "--header",
            &format!("Authorization: Bearer {officer}"),
            "--tls-verify",
            &root.display().to_string(),
        ],
    );
    // The server is still up and answering after the run.
    let (status, _, _) = curl(&format!("{}/healthz", server.public), &[]);
    assert_eq!(status, 200);
}
