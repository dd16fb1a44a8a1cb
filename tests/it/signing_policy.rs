//! Per-key signing policy and M-of-N signing approvals on a real server (TLS on 127.0.0.1):
//! policy refusals record nothing, the rate is kept, a firmware release needs two distinct
//! approvers (never the requester, each once), denied and expired requests never sign, and
//! `hallmark sign` waits for the approvals and writes a CMS that `openssl cms -verify` accepts.

use crate::common::*;
use serde_json::{json, Value};

struct Env(SignEnv);

impl std::ops::Deref for Env {
    type Target = SignEnv;
    fn deref(&self) -> &SignEnv {
        &self.0
    }
}

impl Env {
    fn start(setup: impl FnOnce(&TestCa)) -> Env {
        Env(SignEnv::start(Keys::Soft, setup).0)
    }

    fn token(&self, name: &str, scopes: &str) -> String {
        self.ca
            .token(&["--publisher", "acme", "--name", name, "--scopes", scopes])
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
        let data = body.map(Value::to_string);
        self.0
            .call(Some(method), path, Some(token), data.as_deref())
    }

    fn sign(&self, token: &str, key: &str, format: &str, alg: &str, digest: &str) -> (u16, Value) {
        let body = json!({"key": key, "digest": digest, "digest_algorithm": alg, "format": format,
            "metadata": {"artifact": "fw.bin"}});
        self.call("POST", "/api/v1/signatures", token, Some(&body))
    }

    fn decide(&self, token: &str, id: i64, what: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/api/v1/signatures/requests/{id}/{what}"),
            token,
            Some(&json!({"comment": "reviewed"})),
        )
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

/// Key `fw-release` (P-256, firmware-signing) with `key policy fw-release POLICY...`.
fn fw_key(ca: &TestCa, policy: &[&str]) {
    ca.create_key(
        "acme",
        "fw-release",
        "p256",
        &["--profile", "firmware-signing"],
    );
    let mut args = vec!["key", "policy", "fw-release"];
    args.extend_from_slice(policy);
    ca.hm(&args);
}

#[test]
fn policy_refusals_record_nothing_and_the_rate_is_kept() {
    let env = Env::start(|ca| {
        ca.hm(&[
            "key",
            "create",
            "--publisher",
            "acme",
            "--label",
            "release",
            "--algorithm",
            "p256",
        ]);
        ca.hm(&[
            "key",
            "policy",
            "release",
            "--formats",
            "cms",
            "--digests",
            "sha384",
            "--signers",
            "ci",
            "--rate-per-minute",
            "2",
        ]);
    });
    let shown = env.ca.hm(&["key", "policy", "release"]);
    assert!(
        shown.contains("formats: cms") && shown.contains("digests: sha384"),
        "{shown}"
    );
    assert!(shown.contains("signers: ci") && shown.contains("rate per minute: 2"));
    assert_eq!(env.ca.hm(&["key", "show", "release", "--policy"]), shown);
    // A policy that cannot be met, or names SHA-1, is refused.
    let bad = run(&mut env.ca.cmd(&[
        "key",
        "policy",
        "release",
        "--approvals",
        "2",
        "--approvers",
        "a",
    ]));
    assert!(!bad.status.success());
    let bad = run(&mut env
        .ca
        .cmd(&["key", "policy", "release", "--digests", "sha1"]));
    assert!(!bad.status.success());

    let ci = env.token("ci", "sign");
    let other = env.token("other", "sign");
    let d384 = "ab".repeat(48);
    let d256 = "ab".repeat(32);
    for (token, format, alg, digest, why) in [
        (&ci, "raw", "sha384", &d384, "format 'raw'"),
        (&ci, "cms", "sha256", &d256, "sha256 digests"),
        (&other, "cms", "sha384", &d384, "'other' may not sign"),
    ] {
        let (code, v) = env.sign(token, "release", format, alg, digest);
        assert_eq!(code, 403, "{v}");
        assert_eq!(
            v["type"].as_str().map(|t| t.ends_with("forbidden")),
            Some(true),
            "{v}"
        );
        assert!(v["detail"].as_str().unwrap_or("").contains(why), "{v}");
    }
    assert_eq!(env.recorded(), 0);

    // The rate: two a minute, the third is 429 with a clear detail, and nothing is recorded.
    for _ in 0..2 {
        let (code, v) = env.sign(&ci, "release", "cms", "sha384", &d384);
        assert_eq!(code, 201, "{v}");
    }
    let (code, v) = env.sign(&ci, "release", "cms", "sha384", &d384);
    assert_eq!(code, 429, "{v}");
    assert!(
        v["type"].as_str().unwrap_or("").ends_with("rate-limited"),
        "{v}"
    );
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or("")
            .contains("at most 2 times a minute"),
        "{v}"
    );
    assert_eq!(env.recorded(), 2);
}

#[test]
fn two_of_three_approvals_sign_a_firmware_release() {
    let env = Env::start(|ca| {
        fw_key(
            ca,
            &[
                "--approvals",
                "2",
                "--approvers",
                "release-manager,security-lead,qa-lead",
            ],
        )
    });
    // The requester is itself an approver: it still never approves its own request.
    let rm = env.token("release-manager", "sign,approve");
    let sl = env.token("security-lead", "approve");
    let qa = env.token("qa-lead", "approve");
    let ci = env.token("ci", "sign");
    let stranger = env.token("stranger", "approve");

    let fw = env.path("fw.bin");
    std::fs::write(&fw, b"firmware image 1.2.3\n".repeat(1000)).expect("fw");
    let digest = sha256_hex(&std::fs::read(&fw).expect("fw"));

    let (code, v) = env.sign(&rm, "fw-release", "cms", "sha256", &digest);
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["approvals_required"], 2);
    let id = v["request_id"].as_i64().expect("request id");
    assert_eq!(env.recorded(), 0);
    // The answer's id is the one to poll: GET /api/v1/signatures/{id} shows the request now
    // and the signature once it is made.
    assert_eq!(v["id"].as_i64(), Some(id), "{v}");
    let (code, p) = env.call("GET", &format!("/api/v1/signatures/{id}"), &rm, None);
    assert_eq!((code, p["status"].as_str()), (200, Some("pending")), "{p}");
    assert_eq!(p["request_id"].as_i64(), Some(id), "{p}");
    assert!(p.get("signature").is_none(), "{p}");

    // Not an approver, or no approve scope: 403.
    let (code, v) = env.decide(&stranger, id, "approve");
    assert_eq!(code, 403, "{v}");
    let (code, v) = env.decide(&ci, id, "approve");
    assert_eq!(code, 403, "{v}");

    let (code, v) = env.decide(&sl, id, "approve");
    assert_eq!((code, v["status"].as_str()), (200, Some("pending")), "{v}");
    assert_eq!(v["approvals"].as_array().map(Vec::len), Some(1));
    let (code, v) = env.decide(&sl, id, "approve");
    assert_eq!(code, 409, "an approver counts once: {v}");
    let (code, v) = env.decide(&rm, id, "approve");
    assert_eq!(code, 403, "self-approval: {v}");
    assert!(
        v["detail"].as_str().unwrap_or("").contains("requester"),
        "{v}"
    );
    assert_eq!(env.recorded(), 0);

    let (code, v) = env.decide(&qa, id, "approve");
    assert_eq!((code, v["status"].as_str()), (200, Some("signed")), "{v}");
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(v["signature"].as_str().expect("signature"))
        .expect("base64");
    let p7s = env.path("fw.bin.p7s");
    std::fs::write(&p7s, &der).expect("p7s");
    let (ok, text) = env.cms_verify(&p7s, &fw);
    assert!(ok, "openssl cms -verify: {text}");
    let bad = env.path("fw-bad.bin");
    std::fs::write(&bad, b"firmware image 1.2.4\n".repeat(1000)).expect("bad");
    assert!(!env.cms_verify(&p7s, &bad).0, "a tampered image verified");
    assert_eq!(env.recorded(), 1);

    // The record names the requester and both approvers; the request shows it signed.
    let sig_id = v["id"].as_i64().expect("signature id");
    assert_eq!(sig_id, id, "the signature takes its request's id");
    let (code, rec) = env.call("GET", &format!("/api/v1/signatures/{sig_id}"), &rm, None);
    assert_eq!(code, 200, "{rec}");
    assert_eq!(rec["requester"], "release-manager");
    assert_eq!(rec["approvers"], "security-lead,qa-lead");
    assert_eq!(rec["status"], "signed", "{rec}");
    assert_eq!(rec["signature"], v["signature"], "{rec}");
    assert!(rec["certificate"].as_str().is_some(), "{rec}");
    let (code, r) = env.call(
        "GET",
        &format!("/api/v1/signatures/requests/{id}"),
        &rm,
        None,
    );
    assert_eq!((code, r["status"].as_str()), (200, Some("signed")), "{r}");
    // A decided request takes no more decisions.
    let (code, v) = env.decide(&sl, id, "deny");
    assert_eq!(code, 409, "{v}");

    // Denied: one denial ends it, and it never signs.
    let (code, v) = env.sign(&rm, "fw-release", "cms", "sha256", &digest);
    assert_eq!(code, 202, "{v}");
    let denied = v["request_id"].as_i64().expect("id");
    let (code, v) = env.decide(&sl, denied, "approve");
    assert_eq!(code, 200, "{v}");
    let (code, v) = env.decide(&qa, denied, "deny");
    assert_eq!((code, v["status"].as_str()), (200, Some("denied")), "{v}");
    let (code, v) = env.decide(&rm, denied, "approve");
    assert!(code == 403 || code == 409, "{code} {v}");
    let (code, v) = env.call(
        "GET",
        &format!("/api/v1/signatures/requests/{denied}"),
        &rm,
        None,
    );
    assert_eq!((code, v["status"].as_str()), (200, Some("denied")), "{v}");
    assert!(v.get("signature").is_none(), "{v}");
    let (code, v) = env.call("GET", &format!("/api/v1/signatures/{denied}"), &rm, None);
    assert_eq!((code, v["status"].as_str()), (200, Some("denied")), "{v}");

    // Expired: past api.request_ttl_hours it never signs.
    let (code, v) = env.sign(&rm, "fw-release", "raw", "sha256", &digest);
    assert_eq!(code, 202, "{v}");
    let expired = v["request_id"].as_i64().expect("id");
    let (code, _) = env.decide(&sl, expired, "approve");
    assert_eq!(code, 200);
    env.store()
        .expire_signature_request_now(expired)
        .expect("age the request");
    let (code, v) = env.decide(&qa, expired, "approve");
    assert_eq!(code, 409, "{v}");
    assert!(
        v["detail"].as_str().unwrap_or("").contains("expired"),
        "{v}"
    );
    let (code, v) = env.call(
        "GET",
        &format!("/api/v1/signatures/requests/{expired}"),
        &rm,
        None,
    );
    assert_eq!((code, v["status"].as_str()), (200, Some("expired")), "{v}");

    assert_eq!(env.recorded(), 1);
    let statuses: Vec<String> = {
        let store = env.store();
        let mut requests: Vec<_> = hallmark::store::SignatureRequestStatus::ALL
            .iter()
            .flat_map(|&s| store.signature_request_ids(s).expect("read"))
            .collect();
        requests.sort_unstable();
        requests
            .into_iter()
            .map(|id| {
                let r = store.get_signature_request(id).expect("read");
                r.expect("request").status.to_string()
            })
            .collect()
    };
    assert_eq!(statuses, ["signed", "denied", "expired"]);
    // Another publisher's token sees none of them.
    env.ca.add_globex();
    let other = env
        .ca
        .token(&["--publisher", "globex", "--name", "x", "--scopes", "sign"]);
    for n in [id, denied, expired] {
        let (code, v) = env.call("GET", &format!("/api/v1/signatures/{n}"), &other, None);
        assert_eq!(code, 404, "{v}");
    }
}

#[test]
fn the_cli_waits_for_approvals_and_writes_the_signature() {
    let env = Env::start(|ca| {
        fw_key(
            ca,
            &[
                "--formats",
                "cms",
                "--approvals",
                "2",
                "--approvers",
                "security-lead,qa-lead,cto",
            ],
        )
    });
    let ci = env.token("ci", "sign");
    let sl = env.token("security-lead", "approve");
    let qa = env.token("qa-lead", "approve");
    let fw = env.path("fw.bin");
    std::fs::write(&fw, b"firmware 2.0\n".repeat(5000)).expect("fw");
    let p7s = env.path("fw.p7s");

    let child = env
        .sign_cmd(
            &ci,
            "cms",
            &fw,
            "fw-release",
            &["--out", &p7s, "--poll", "1", "--timeout", "120"],
            &[],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sign");

    // Wait for the pending request the CLI made.
    let id = env.pending_request();
    assert!(!std::path::Path::new(&p7s).exists());
    for token in [&sl, &qa] {
        let out = env.approve(id, token);
        assert!(
            out.status.success(),
            "approve: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = child.wait_with_output().expect("sign output");
    assert!(
        out.status.success(),
        "sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text) = env.cms_verify(&p7s, &fw);
    assert!(ok, "openssl cms -verify: {text}");
    assert_eq!(env.recorded(), 1);
    let listed = env.ca.hm(&["signature", "list", "--key", "fw-release"]);
    assert!(listed.contains("by ci"), "{listed}");
}

/// `[signing.keys.<label>]` in hallmark.toml sets the key's policy: the server enforces it over
/// a policy set earlier with the CLI, `hallmark key policy` refuses to change it (and leaves the
/// stored policy as it was), `GET /api/v1/keys/{label}` and `doctor` say where it comes from,
/// and a policy that cannot hold stops every command with the section's name.
#[test]
fn a_policy_in_the_config_file_wins_and_the_cli_cannot_change_it() {
    let config_text = std::cell::RefCell::new(String::new());
    let env = Env::start(|ca| {
        ca.create_key("acme", "release", "p256", &[]);
        // Set with the CLI first: raw only.
        ca.hm(&["key", "policy", "release", "--formats", "raw"]);
        let path = ca.config();
        let mut text = std::fs::read_to_string(&path).expect("config");
        text.push_str(
            "\n[signing.keys.release]\nformats = [\"CMS\"]\ndigests = [\"SHA-384\"]\nsigners = [\"ci\"]\n\n[signing.keys.not-yet]\nformats = [\"raw\"]\n",
        );
        std::fs::write(&path, &text).expect("config");
        *config_text.borrow_mut() = text;
    });
    let config_path = env.ca.config();

    let shown = env.ca.hm(&["key", "policy", "release"]);
    assert!(
        shown.contains("formats: cms") && shown.contains("digests: sha384"),
        "{shown}"
    );
    assert!(
        shown.contains("signers: ci") && shown.contains("[signing.keys.release]"),
        "{shown}"
    );
    // The CLI refuses to change it; the stored (CLI) policy is untouched.
    let out = run(&mut env
        .ca
        .cmd(&["key", "policy", "release", "--formats", "cose_sign1"]));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("is set in") && said.contains("[signing.keys.release]"),
        "{said}"
    );
    let stored = env
        .store()
        .get_key_policy("release")
        .expect("read")
        .expect("stored policy")
        .formats;
    assert_eq!(stored.as_deref(), Some("raw"));

    // The server enforces the config's policy, not the stored one.
    let ci = env.token("ci", "sign");
    let d384 = "cd".repeat(48);
    let (code, v) = env.sign(&ci, "release", "raw", "sha384", &d384);
    assert_eq!(code, 403, "{v}");
    assert!(
        v["detail"].as_str().unwrap_or("").contains("format 'raw'"),
        "{v}"
    );
    let (code, v) = env.sign(&ci, "release", "cms", "sha384", &d384);
    assert_eq!(code, 201, "{v}");
    assert_eq!(env.recorded(), 1);
    let (code, v) = env.call("GET", "/api/v1/keys/release", &ci, None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["policy"]["source"], "config", "{v}");
    assert_eq!(v["policy"]["formats"], json!(["cms"]), "{v}");

    // doctor: the policy of a key that does not exist (yet) is a failed check, by name.
    let out = run(&mut env.ca.cmd(&["doctor"]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    let line = |name: &str| said.lines().find(|l| l.contains(name)).map(str::to_string);
    assert!(
        line("signing.keys.not-yet")
            .is_some_and(|l| l.starts_with("FAIL") && l.contains("no such key")),
        "{said}"
    );
    assert!(
        line("signing.keys.release").is_some_and(|l| l.starts_with("ok")),
        "{said}"
    );

    // A policy that cannot hold stops every command, naming the section.
    let good = config_text.borrow().clone();
    for (section, why) in [
        ("formats = [\"zip\"]", "format 'zip'"),
        ("digests = [\"sha1\"]", "SHA-1 digests are refused"),
        (
            "approvals = 2\napprovers = [\"a\"]",
            "2 approvals need at least 2 approvers",
        ),
        ("aprovals = 1", "unknown field"),
        ("rate_per_minute = 0", "a rate of 0"),
    ] {
        std::fs::write(
            &config_path,
            format!("{good}\n[signing.keys.other]\n{section}\n"),
        )
        .expect("config");
        let out = run(&mut env.ca.cmd(&["key", "policy", "release"]));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{section}: {said}");
        assert!(said.contains(why), "{section}: {said}");
        if why != "unknown field" {
            assert!(said.contains("signing.keys.other"), "{section}: {said}");
        }
    }
    std::fs::write(&config_path, &good).expect("config");
    assert_eq!(env.recorded(), 1);
}

/// Concurrent decisions on one signature request, round after round: three approvers of a
/// 2-of-3 key decide at the same moment (two approve and one denies, or all three approve).
/// Each request ends exactly once — signed with one signature, or denied with none — and every
/// decision that came too late is refused with 409 as "no longer pending", never a 500.
#[test]
fn concurrent_decisions_on_a_signature_request_end_it_once() {
    let env = Env::start(|ca| {
        fw_key(
            ca,
            &[
                "--approvals",
                "2",
                "--approvers",
                "release-manager,security-lead,qa-lead",
            ],
        )
    });
    let ci = env.token("ci", "sign");
    let approvers = [
        env.token("release-manager", "approve"),
        env.token("security-lead", "approve"),
        env.token("qa-lead", "approve"),
    ];
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..8 {
        let digest = sha256_hex(format!("firmware build {round}").as_bytes());
        let (code, v) = env.sign(&ci, "fw-release", "cms", "sha256", &digest);
        assert_eq!(code, 202, "{v}");
        let id = v["request_id"].as_i64().expect("request id");
        let before = env.recorded();
        // Even rounds: the third approver denies; odd rounds: all three approve.
        let barrier = std::sync::Barrier::new(approvers.len());
        let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
            let handles: Vec<_> = approvers
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let (env, barrier) = (&env, &barrier);
                    s.spawn(move || {
                        let what = if i == 2 && round % 2 == 0 {
                            "deny"
                        } else {
                            "approve"
                        };
                        barrier.wait();
                        env.decide(t, id, what)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("decision thread"))
                .collect()
        });
        for (code, v) in &answers {
            assert!(*code == 200 || *code == 409, "{code} {v}");
            if *code == 409 {
                let detail = v["detail"].as_str().unwrap_or("");
                assert!(
                    detail.contains(&format!("signature request {id} is "))
                        && detail.contains("it can no longer be decided"),
                    "{v}"
                );
            }
        }
        let (code, end) = env.call("GET", &format!("/api/v1/signatures/{id}"), &ci, None);
        assert_eq!(code, 200, "{end}");
        let status = end["status"].as_str().unwrap_or("").to_string();
        let made = env.recorded() - before;
        match status.as_str() {
            "signed" => {
                assert_eq!(made, 1, "one signature for a signed request: {end}");
                let claimed = answers
                    .iter()
                    .filter(|(_, v)| v["status"] == "signed" && v["signature"].is_string())
                    .count();
                assert_eq!(claimed, 1, "exactly one decision signs: {answers:?}");
            }
            "denied" => assert_eq!(made, 0, "a denied request signs nothing: {end}"),
            other => panic!("request {id} ended '{other}': {end} {answers:?}"),
        }
        *outcomes.entry(status).or_insert(0) += 1;
    }
    assert!(
        outcomes.get("signed").copied().unwrap_or(0) >= 4,
        "{outcomes:?}"
    );
}
