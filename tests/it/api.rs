//! The JSON API on a real server (TLS on 127.0.0.1, random ports), driven by curl and by the
//! `hallmark request` / `approve` / `deny` commands, which verify the server against the root.

use crate::common::*;
use serde_json::Value;

const ACME_SUBJ: &str = "/C=US/ST=California/L=San Jose/O=Acme Corp/CN=Acme Corp";

/// Fields drop in order: the server stops before its directory is deleted.
struct Api {
    server: Server,
    ca: TestCa,
    root: String,
}

impl Api {
    fn start(setup: impl FnOnce(&TestCa)) -> Api {
        let ca = TestCa::new(Keys::Soft);
        ca.add_acme();
        setup(&ca);
        let root = ca.ca_pem("root").display().to_string();
        let server = Server::start(&ca, true);
        Api { ca, server, root }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.api.as_deref().expect("api"))
    }

    fn token(&self, args: &[&str]) -> String {
        self.ca.token(args)
    }

    /// curl with TLS verified against hallmark's root.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        ctype: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, Value, Vec<u8>) {
        let auth;
        let ct;
        let mut args: Vec<&str> = vec!["--cacert", &self.root, "-X", method];
        if let Some(t) = token {
            auth = format!("Authorization: Bearer {t}");
            args.extend(["-H", &auth]);
        }
        if let Some(c) = ctype {
            ct = format!("Content-Type: {c}");
            args.extend(["-H", &ct]);
        }
        let body_file = self.ca.path(&format!("body-{}", rand_name()));
        let data_arg;
        if let Some(b) = body {
            std::fs::write(&body_file, b).expect("body");
            data_arg = format!("@{}", body_file.display());
            args.extend(["--data-binary", &data_arg]);
        }
        let (code, raw, _) = curl(&self.url(path), &args);
        let v = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        (code, v, raw)
    }

    fn cert_count(&self) -> i64 {
        self.ca.store().count_certificates(None).expect("count")
    }
}

/// The 2-of-3 `release-signing` profile and publisher `rel` (Acme Corp, San Jose) that uses it.
fn add_release_publisher(ca: &TestCa) {
    std::fs::write(
        ca.dir.path().join("ca/ca-profiles/release-signing.toml"),
        RELEASE_PROFILE,
    )
    .expect("profile");
    ca.hm(&[
        "publisher",
        "add",
        "rel",
        "--org",
        "Acme Corp",
        "--country",
        "US",
        "--state",
        "California",
        "--locality",
        "San Jose",
        "--profiles",
        "release-signing",
    ]);
}

/// Publisher `beta` (Beta Ltd, GB, London) for code signing.
fn add_beta(ca: &TestCa) {
    ca.hm(&[
        "publisher",
        "add",
        "beta",
        "--org",
        "Beta Ltd",
        "--country",
        "GB",
        "--locality",
        "London",
        "--profiles",
        "code-signing",
    ]);
}

/// `openssl verify -CAfile ROOT -untrusted CHAIN LEAF`; its output.
fn verify(api: &Api, chain: &str, leaf: &str) -> String {
    openssl(
        api.ca.dir.path(),
        &["verify", "-CAfile", &api.root, "-untrusted", chain, leaf],
    )
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn csr_pem(ca: &TestCa, name: &str) -> String {
    let p = make_csr(
        ca.dir.path(),
        name,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ACME_SUBJ,
        &[],
    );
    std::fs::read_to_string(p).expect("csr")
}

fn cert_body(profile: &str, csr: &str) -> Vec<u8> {
    serde_json::json!({"profile": profile, "csr": csr})
        .to_string()
        .into_bytes()
}

#[test]
fn issues_over_tls_json_and_raw_der() {
    let api = Api::start(|_| {});
    let t = api.token(&["--publisher", "acme", "--name", "ci", "--scopes", "issue"]);
    let csr = csr_pem(&api.ca, "a");
    let (code, v, raw) = api.call(
        "POST",
        "/api/v1/certificates",
        Some(&t),
        Some("application/json"),
        Some(&cert_body("code-signing", &csr)),
    );
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&raw));
    let serial = v["serial"].as_str().expect("serial").to_string();
    let leaf = api.ca.path("api-leaf.pem");
    std::fs::write(&leaf, v["certificate"].as_str().expect("cert")).expect("write");
    let chain = api.ca.path("api-chain.pem");
    std::fs::write(&chain, v["chain"][0].as_str().expect("chain")).expect("write");
    let out = verify(
        &api,
        &chain.display().to_string(),
        &leaf.display().to_string(),
    );
    assert!(out.contains(": OK"));

    // Raw DER with ?profile=.
    openssl(
        api.ca.dir.path(),
        &["req", "-in", "a.csr", "-outform", "DER", "-out", "a.der"],
    );
    let der = std::fs::read(api.ca.path("a.der")).expect("der");
    let (code, v, raw) = api.call(
        "POST",
        "/api/v1/certificates?profile=code-signing",
        Some(&t),
        Some("application/pkcs10"),
        Some(&der),
    );
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&raw));
    assert_ne!(v["serial"].as_str(), Some(serial.as_str()));

    // Read back: JSON and PEM by Accept; listed with paging.
    let (code, v, _) = api.call(
        "GET",
        &format!("/api/v1/certificates/{serial}"),
        Some(&t),
        None,
        None,
    );
    assert_eq!((code, v["serial"].as_str()), (200, Some(serial.as_str())));
    let auth = format!("Authorization: Bearer {t}");
    let (code, pem_body, ctype) = curl(
        &api.url(&format!("/api/v1/certificates/{serial}")),
        &[
            "--cacert",
            &api.root,
            "-H",
            &auth,
            "-H",
            "Accept: application/pem-certificate-chain",
        ],
    );
    assert_eq!(
        (code, ctype.as_str()),
        (200, "application/pem-certificate-chain")
    );
    assert_eq!(
        String::from_utf8_lossy(&pem_body)
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    let (code, v, _) = api.call("GET", "/api/v1/certificates?limit=1", Some(&t), None, None);
    assert_eq!(code, 200);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    let cursor = v["next_cursor"].as_str().expect("cursor").to_string();
    let (_, v, _) = api.call(
        "GET",
        &format!("/api/v1/certificates?limit=1&cursor={cursor}"),
        Some(&t),
        None,
        None,
    );
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    assert_ne!(v["items"][0]["serial"].as_str(), Some(cursor.as_str()));

    // The CLI client does the same in one command.
    let out_file = api.ca.path("cli-cert.pem");
    let mut c = api.ca.cmd(&[
        "request",
        "--server",
        api.server.api.as_deref().expect("api"),
        "--ca",
        &api.root,
        "--token-env",
        "CI_TOKEN",
        "--profile",
        "code-signing",
        "--csr",
        &api.ca.path("a.csr").display().to_string(),
        "--out",
        &out_file.display().to_string(),
    ]);
    c.env("CI_TOKEN", &t);
    ok(&mut c);
    let out = verify(
        &api,
        &out_file.display().to_string(),
        &out_file.display().to_string(),
    );
    assert!(out.contains(": OK"));

    // Health, readiness and metrics.
    let (code, _, _) = api.call("GET", "/readyz", None, None, None);
    assert_eq!(code, 200);
    let (code, _, metrics) = api.call("GET", "/metrics", None, None, None);
    assert_eq!(code, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(
            "hallmark_http_requests_total{route=\"/api/v1/certificates\",status=\"201\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("hallmark_certificates_issued_total{profile=\"code-signing\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("hallmark_keystore_sign_duration_seconds_count"));
    // The audit trail names the token and the address.
    let audit = api.ca.hm(&["audit", "--limit", "200"]);
    assert!(audit.contains("(ci)@127.0.0.1"), "{audit}");
}

#[test]
fn bad_input_gets_its_status_and_type_and_changes_nothing() {
    let api = Api::start(add_beta);
    let t = api.token(&["--publisher", "acme", "--name", "ci"]);
    let beta = api.token(&["--publisher", "beta", "--name", "beta-ci"]);
    let no_scope = api.token(&[
        "--publisher",
        "acme",
        "--name",
        "reader",
        "--scopes",
        "approve",
    ]);
    let revoked = api.token(&["--publisher", "acme", "--name", "old"]);
    let revoked_id = revoked.split('_').nth(1).expect("id").to_string();
    api.ca.hm(&["token", "revoke", &revoked_id]);
    let csr = csr_pem(&api.ca, "b");
    let good = cert_body("code-signing", &csr);
    let before = api.cert_count();
    // (what, token, content type, body, status, problem type)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "no token",
            None,
            Some("application/json"),
            good.clone(),
            401,
            "unauthorized",
        ),
        (
            "wrong token",
            Some(
                "hmk_000000000000_0000000000000000000000000000000000000000000000000000000000000000",
            ),
            Some("application/json"),
            good.clone(),
            401,
            "unauthorized",
        ),
        (
            "garbage token",
            Some("hello"),
            Some("application/json"),
            good.clone(),
            401,
            "unauthorized",
        ),
        (
            "revoked token",
            Some(&revoked),
            Some("application/json"),
            good.clone(),
            401,
            "unauthorized",
        ),
        (
            "missing scope",
            Some(&no_scope),
            Some("application/json"),
            good.clone(),
            403,
            "forbidden",
        ),
        (
            "invalid JSON",
            Some(&t),
            Some("application/json"),
            b"{\"profile\": ".to_vec(),
            400,
            "malformed-json",
        ),
        (
            "unknown field",
            Some(&t),
            Some("application/json"),
            br#"{"profile":"code-signing","csr":"x","colour":"red"}"#.to_vec(),
            400,
            "malformed-json",
        ),
        (
            "wrong content type",
            Some(&t),
            Some("text/plain"),
            good.clone(),
            415,
            "unsupported-media-type",
        ),
        (
            "too large",
            Some(&t),
            Some("application/json"),
            vec![b' '; 70 * 1024],
            413,
            "too-large",
        ),
        (
            "bad CSR",
            Some(&t),
            Some("application/json"),
            cert_body(
                "code-signing",
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            ),
            400,
            "bad-csr",
        ),
        (
            "unknown profile",
            Some(&t),
            Some("application/json"),
            cert_body("nope", &csr),
            400,
            "unknown-profile",
        ),
    ];
    for (what, token, ctype, body, status, kind) in cases {
        let (code, v, raw) = api.call("POST", "/api/v1/certificates", token, ctype, Some(&body));
        assert_eq!(code, status, "{what}: {}", String::from_utf8_lossy(&raw));
        assert_eq!(
            v["type"].as_str(),
            Some(format!("urn:hallmark:problem:{kind}").as_str()),
            "{what}"
        );
        assert!(
            v["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what} has a detail"
        );
        assert_eq!(api.cert_count(), before, "{what} stored nothing");
    }
    // Another publisher's token: cannot issue for acme, read acme's certificates or list them.
    let other =
        serde_json::json!({"profile": "code-signing", "csr": csr, "publisher": "acme"}).to_string();
    let (code, v, _) = api.call(
        "POST",
        "/api/v1/certificates",
        Some(&beta),
        Some("application/json"),
        Some(other.as_bytes()),
    );
    assert_eq!(
        (code, v["type"].as_str()),
        (403, Some("urn:hallmark:problem:forbidden"))
    );
    let (code, v, _) = api.call(
        "POST",
        "/api/v1/certificates",
        Some(&t),
        Some("application/json"),
        Some(&good),
    );
    assert_eq!(code, 201);
    let serial = v["serial"].as_str().expect("serial");
    let (code, _, _) = api.call(
        "GET",
        &format!("/api/v1/certificates/{serial}"),
        Some(&beta),
        None,
        None,
    );
    assert_eq!(code, 404, "another publisher's certificate is invisible");
    let (code, _, _) = api.call(
        "GET",
        "/api/v1/certificates?publisher=acme",
        Some(&beta),
        None,
        None,
    );
    assert_eq!(code, 403);
    // Publisher management is for officers.
    let body = br#"{"id":"gamma","org":"Gamma","country":"US","state":"Ohio","profiles":["code-signing"]}"#;
    let (code, _, _) = api.call(
        "POST",
        "/api/v1/publishers",
        Some(&t),
        Some("application/json"),
        Some(body),
    );
    assert_eq!(code, 403);
    let officer = api.token(&["--officer", "--name", "officer"]);
    let (code, v, _) = api.call(
        "POST",
        "/api/v1/publishers",
        Some(&officer),
        Some("application/json"),
        Some(body),
    );
    assert_eq!((code, v["id"].as_str()), (201, Some("gamma")));
    let (code, v, _) = api.call(
        "POST",
        "/api/v1/publishers",
        Some(&officer),
        Some("application/json"),
        Some(body),
    );
    assert_eq!(
        (code, v["type"].as_str()),
        (409, Some("urn:hallmark:problem:conflict"))
    );
    let (code, v, _) = api.call("GET", "/api/v1/publishers", Some(&officer), None, None);
    assert_eq!((code, v["items"].as_array().map(Vec::len)), (200, Some(3)));
    // Unknown routes and methods.
    let (code, _, _) = api.call("GET", "/api/v1/nothing", Some(&t), None, None);
    assert_eq!(code, 404);
    let (code, _, _) = api.call("DELETE", "/api/v1/certificates", Some(&t), None, None);
    assert_eq!(code, 405);
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let api = Api::start(|ca| {
        let cfg = ca.config();
        let text = std::fs::read_to_string(&cfg).expect("config");
        std::fs::write(
            &cfg,
            text.replace("rate_limit_per_minute = 600", "rate_limit_per_minute = 3"),
        )
        .expect("config");
    });
    let t = api.token(&["--publisher", "acme"]);
    let mut codes = Vec::new();
    let auth = format!("Authorization: Bearer {t}");
    let mut retry = String::new();
    for _ in 0..5 {
        let out = run(std::process::Command::new(tool("curl")).args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "--cacert",
            &api.root,
            "-H",
            &auth,
            &api.url("/api/v1/certificates"),
        ]));
        let head = String::from_utf8_lossy(&out.stdout).to_string();
        codes.push(head.split_whitespace().nth(1).unwrap_or("").to_string());
        if let Some(l) = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("retry-after:"))
        {
            retry = l.to_string();
        }
    }
    assert_eq!(codes, ["200", "200", "200", "429", "429"]);
    assert!(!retry.is_empty(), "429 carries Retry-After");
}

#[test]
fn two_of_three_approvals_issue_and_every_refusal_holds() {
    let api = Api::start(|ca| {
        add_release_publisher(ca);
        ca.hm(&[
            "publisher",
            "add",
            "other",
            "--org",
            "Other",
            "--country",
            "US",
            "--state",
            "Ohio",
            "--profiles",
            "release-signing",
        ]);
    });
    let ci = api.token(&["--publisher", "rel", "--name", "ci", "--scopes", "issue"]);
    let rm = api.token(&[
        "--publisher",
        "rel",
        "--name",
        "release-manager",
        "--scopes",
        "issue,approve",
    ]);
    let sl = api.token(&[
        "--publisher",
        "rel",
        "--name",
        "security-lead",
        "--scopes",
        "approve",
    ]);
    let qa = api.token(&[
        "--publisher",
        "rel",
        "--name",
        "qa-lead",
        "--scopes",
        "approve",
    ]);
    let stranger = api.token(&[
        "--publisher",
        "rel",
        "--name",
        "intern",
        "--scopes",
        "approve",
    ]);
    let other_rm = api.token(&[
        "--publisher",
        "other",
        "--name",
        "release-manager",
        "--scopes",
        "approve",
    ]);
    let csr = csr_pem(&api.ca, "r");
    let body = cert_body("release-signing", &csr);
    let base_count = api.cert_count();
    let submit = |token: &str| -> i64 {
        let (code, v, raw) = api.call(
            "POST",
            "/api/v1/certificates",
            Some(token),
            Some("application/json"),
            Some(&body),
        );
        assert_eq!(code, 202, "{}", String::from_utf8_lossy(&raw));
        assert_eq!(v["status"].as_str(), Some("pending"));
        v["request_id"].as_i64().expect("request id")
    };
    let decide = |token: &str, id: i64, verb: &str| -> (u16, Value) {
        let (code, v, _) = api.call(
            "POST",
            &format!("/api/v1/requests/{id}/{verb}"),
            Some(token),
            Some("application/json"),
            Some(br#"{"comment":"ok"}"#),
        );
        (code, v)
    };

    // 2-of-3: one approval leaves it pending, a repeated one is refused, the second issues.
    let id = submit(&ci);
    let (code, v) = decide(&rm, id, "approve");
    assert_eq!((code, v["status"].as_str()), (200, Some("pending")));
    assert_eq!(decide(&rm, id, "approve").0, 409, "an approver counts once");
    assert_eq!(decide(&stranger, id, "approve").0, 403, "not an approver");
    assert_eq!(
        decide(&other_rm, id, "approve").0,
        404,
        "another publisher's request is invisible"
    );
    assert_eq!(decide(&ci, id, "approve").0, 403, "no approve scope");
    assert_eq!(
        api.cert_count(),
        base_count,
        "nothing issued before the second approval"
    );
    let (code, v) = decide(&sl, id, "approve");
    assert_eq!((code, v["status"].as_str()), (200, Some("issued")));
    let serial = v["certificate"]["serial"]
        .as_str()
        .expect("issued serial")
        .to_string();
    assert_eq!(api.cert_count(), base_count + 1);
    assert_eq!(
        decide(&qa, id, "approve").0,
        409,
        "an issued request takes no more decisions"
    );
    let (code, v, _) = api.call(
        "GET",
        &format!("/api/v1/requests/{id}"),
        Some(&ci),
        None,
        None,
    );
    assert_eq!(
        (code, v["certificate_serial"].as_str()),
        (200, Some(serial.as_str()))
    );
    assert_eq!(v["approvals"].as_array().map(Vec::len), Some(2));
    let (code, v, _) = api.call(
        "GET",
        "/api/v1/requests?status=pending",
        Some(&qa),
        None,
        None,
    );
    assert_eq!((code, v["items"].as_array().map(Vec::len)), (200, Some(0)));

    // Self-approval: the requester never approves its own request.
    let id = submit(&rm);
    let (code, v) = decide(&rm, id, "approve");
    assert_eq!(
        (code, v["type"].as_str()),
        (403, Some("urn:hallmark:problem:forbidden"))
    );

    // A denied request can never issue.
    let id = submit(&ci);
    assert_eq!(decide(&qa, id, "deny").0, 200);
    assert_eq!(decide(&rm, id, "approve").0, 409);
    assert_eq!(decide(&sl, id, "approve").0, 409);

    // An expired request can never issue (its deadline moved into the past).
    let id = submit(&ci);
    assert_eq!(decide(&rm, id, "approve").0, 200);
    api.ca.store().expire_request_now(id).expect("expire");
    let (code, v) = decide(&sl, id, "approve");
    assert_eq!(code, 409, "{v}");
    let (_, v, _) = api.call(
        "GET",
        &format!("/api/v1/requests/{id}"),
        Some(&ci),
        None,
        None,
    );
    assert_eq!(v["status"].as_str(), Some("expired"));

    assert_eq!(
        api.cert_count(),
        base_count + 1,
        "only the approved request issued"
    );

    // The CLI approver path: `hallmark approve` and `hallmark deny` with the approver's token.
    let id = submit(&ci);
    let base = api.server.api.clone().expect("api");
    let cli = |token: &str, verb: &str| {
        let mut c = api.ca.cmd(&[
            verb,
            "--server",
            &base,
            "--ca",
            &api.root,
            "--token-env",
            "APPROVER",
            &id.to_string(),
            "--comment",
            "looks good",
        ]);
        c.env("APPROVER", token);
        run(&mut c)
    };
    assert!(cli(&rm, "approve").status.success());
    let out = cli(&sl, "approve");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("issued certificate"));
    let out = cli(&qa, "deny");
    assert!(!out.status.success(), "deciding an issued request fails");
    assert_eq!(api.cert_count(), base_count + 2);
}

#[test]
fn revoke_over_the_api() {
    let api = Api::start(add_beta);
    let issuer = api.token(&["--publisher", "acme", "--name", "ci", "--scopes", "issue"]);
    let revoker = api.token(&["--publisher", "acme", "--name", "sec", "--scopes", "revoke"]);
    let beta = api.token(&[
        "--publisher",
        "beta",
        "--name",
        "beta-sec",
        "--scopes",
        "revoke",
    ]);
    let csr = csr_pem(&api.ca, "rv");
    let (code, v, _) = api.call(
        "POST",
        "/api/v1/certificates",
        Some(&issuer),
        Some("application/json"),
        Some(&cert_body("code-signing", &csr)),
    );
    assert_eq!(code, 201);
    let serial = v["serial"].as_str().expect("serial").to_string();
    let path = format!("/api/v1/certificates/{serial}/revoke");
    let body = br#"{"reason":"keyCompromise","invalidity_date":"2026-11-01T00:00:00Z"}"#;
    let count = || -> u64 {
        let store = api.ca.store();
        let cas = store.list_cas().expect("CAs");
        cas.iter()
            .map(|ca| store.count_revocations(&ca.name, None).expect("count"))
            .sum()
    };
    assert_eq!(
        api.call(
            "POST",
            &path,
            Some(&issuer),
            Some("application/json"),
            Some(body)
        )
        .0,
        403,
        "no revoke scope"
    );
    assert_eq!(
        api.call(
            "POST",
            &path,
            Some(&beta),
            Some("application/json"),
            Some(body)
        )
        .0,
        404,
        "another publisher's certificate"
    );
    assert_eq!(
        api.call(
            "POST",
            &path,
            Some(&revoker),
            Some("application/json"),
            Some(br#"{"reason":"certificateHold"}"#)
        )
        .0,
        400
    );
    assert_eq!(
        api.call(
            "POST",
            &path,
            Some(&revoker),
            Some("application/json"),
            Some(br#"{"reason":"tired"}"#)
        )
        .0,
        400
    );
    assert_eq!(
        api.call(
            "POST",
            "/api/v1/certificates/00aa/revoke",
            Some(&revoker),
            Some("application/json"),
            Some(body)
        )
        .0,
        404
    );
    assert_eq!(count(), 0, "refusals revoke nothing");
    let (code, v, raw) = api.call(
        "POST",
        &path,
        Some(&revoker),
        Some("application/json"),
        Some(body),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(v["reason"], "keyCompromise");
    assert_eq!(count(), 1);
    let (code, v, _) = api.call(
        "POST",
        &path,
        Some(&revoker),
        Some("application/json"),
        Some(br#"{"reason":"superseded"}"#),
    );
    assert_eq!(
        (code, v["type"].as_str()),
        (409, Some("urn:hallmark:problem:conflict"))
    );
    assert!(api
        .ca
        .hm(&["audit", "--limit", "50"])
        .contains("(sec)@127.0.0.1"));
}

/// Approvals and denials sent at the same moment: a request is claimed by the approval that
/// completes it, in the same transaction, so it issues at most one certificate, and never after
/// a denial; the losers of each race get 409 and nothing else is issued.
#[test]
fn concurrent_approvals_and_denials_issue_at_most_once() {
    let api = Api::start(add_release_publisher);
    let token = |name: &str, scopes: &str| {
        api.token(&["--publisher", "rel", "--name", name, "--scopes", scopes])
    };
    let ci = token("ci", "issue");
    let approvers = [
        token("release-manager", "approve"),
        token("security-lead", "approve"),
        token("qa-lead", "approve"),
    ];
    let csr = csr_pem(&api.ca, "race");
    let body = cert_body("release-signing", &csr);
    let submit = || -> i64 {
        let (code, v, raw) = api.call(
            "POST",
            "/api/v1/certificates",
            Some(&ci),
            Some("application/json"),
            Some(&body),
        );
        assert_eq!(code, 202, "{}", String::from_utf8_lossy(&raw));
        v["request_id"].as_i64().expect("request id")
    };
    // Each (token, verb) sent by its own thread, all released together.
    let api = &api;
    let race = |id: i64, calls: &[(&str, &str)]| -> Vec<(u16, Value)> {
        let gate = std::sync::Barrier::new(calls.len());
        std::thread::scope(|s| {
            let handles: Vec<_> = calls
                .iter()
                .map(|&(t, verb)| {
                    let gate = &gate;
                    s.spawn(move || {
                        gate.wait();
                        let (code, v, _) = api.call(
                            "POST",
                            &format!("/api/v1/requests/{id}/{verb}"),
                            Some(t),
                            Some("application/json"),
                            Some(br#"{"comment":"race"}"#),
                        );
                        (code, v)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("caller"))
                .collect()
        })
    };
    // What the store holds for a request: its status, serial, and its live certificates.
    let stored = |id: i64| -> (String, Option<String>, Vec<String>) {
        let store = api.ca.store();
        let r = store.get_request(id).expect("read").expect("request");
        let certs = store
            .certificates_of_request(id)
            .expect("certs")
            .into_iter()
            .filter(|c| c.status != hallmark::store::CertStatus::Abandoned)
            .map(|c| c.serial)
            .collect();
        (r.status.to_string(), r.certificate_serial, certs)
    };
    let issued_serials = |answers: &[(u16, Value)]| -> Vec<String> {
        answers
            .iter()
            .filter_map(|(_, v)| v["certificate"]["serial"].as_str().map(str::to_string))
            .collect()
    };
    let (rm, sl, qa) = (&approvers[0], &approvers[1], &approvers[2]);

    // Two final approvals at once: one issues, the other is refused.
    for _ in 0..6 {
        let id = submit();
        let (code, _, _) = api.call(
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some(rm),
            Some("application/json"),
            Some(b"{}"),
        );
        assert_eq!(code, 200);
        let answers = race(id, &[(sl, "approve"), (qa, "approve")]);
        let mut codes: Vec<u16> = answers.iter().map(|a| a.0).collect();
        codes.sort();
        assert_eq!(codes, [200, 409], "{answers:?}");
        let returned = issued_serials(&answers);
        assert_eq!(returned.len(), 1, "exactly one caller gets a certificate");
        let (status, serial, certs) = stored(id);
        assert_eq!(status, "issued");
        assert_eq!(serial.as_deref(), Some(returned[0].as_str()));
        assert_eq!(certs, returned, "one certificate for the request");
    }

    // Three approvals at once on a 2-of-3 request: one leaves it pending, one issues, one is refused.
    for _ in 0..4 {
        let id = submit();
        let answers = race(id, &[(rm, "approve"), (sl, "approve"), (qa, "approve")]);
        let mut codes: Vec<u16> = answers.iter().map(|a| a.0).collect();
        codes.sort();
        assert_eq!(codes, [200, 200, 409], "{answers:?}");
        let returned = issued_serials(&answers);
        assert_eq!(returned.len(), 1, "{answers:?}");
        let (status, _, certs) = stored(id);
        assert_eq!((status.as_str(), certs), ("issued", returned));
    }

    // The final approval against a denial: either the request issued and the denial is refused,
    // or it was denied, the approval is refused and no certificate exists.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let id = submit();
        let (code, _, _) = api.call(
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            Some(rm),
            Some("application/json"),
            Some(b"{}"),
        );
        assert_eq!(code, 200);
        let answers = race(id, &[(sl, "approve"), (qa, "deny")]);
        let (approve, deny) = (&answers[0], &answers[1]);
        let (status, serial, certs) = stored(id);
        match status.as_str() {
            "issued" => {
                assert_eq!((approve.0, deny.0), (200, 409), "{answers:?}");
                let returned = issued_serials(&answers);
                assert_eq!(serial.as_deref(), returned.first().map(String::as_str));
                assert_eq!(certs, returned);
            }
            "denied" => {
                assert_eq!((approve.0, deny.0), (409, 200), "{answers:?}");
                assert!(issued_serials(&answers).is_empty(), "{answers:?}");
                assert!(certs.is_empty(), "a denied request has no certificate");
                assert_eq!(serial, None);
            }
            other => panic!("request {id} ended {other}: {answers:?}"),
        }
        seen.insert(status);
    }
    eprintln!("approve/deny races ended: {seen:?}");
}

/// A token without the route's scope gets 403 whatever body it sent (credentials and scope come
/// before parsing), and the auth scheme is case-insensitive.
#[test]
fn scope_is_checked_before_the_body_and_the_scheme_is_case_insensitive() {
    let api = Api::start(|_| {});
    let signer = api.token(&["--publisher", "acme", "--name", "ci", "--scopes", "sign"]);
    let issuer = api.token(&["--publisher", "acme", "--name", "ci2", "--scopes", "issue"]);
    /// Method, path, token, content type, body.
    type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a [u8]);
    let cases: [Case; 6] = [
        (
            "POST",
            "/api/v1/certificates",
            &signer,
            Some("application/json"),
            b"{not json",
        ),
        (
            "POST",
            "/api/v1/certificates",
            &signer,
            Some("text/plain"),
            b"x",
        ),
        (
            "POST",
            "/api/v1/certificates/00ff/revoke",
            &issuer,
            Some("application/json"),
            b"[]",
        ),
        (
            "POST",
            "/api/v1/requests/1/approve",
            &issuer,
            Some("text/plain"),
            b"x",
        ),
        (
            "POST",
            "/api/v1/signatures",
            &issuer,
            Some("application/json"),
            b"{",
        ),
        (
            "POST",
            "/api/v1/publishers",
            &issuer,
            Some("application/json"),
            b"{",
        ),
    ];
    for (method, path, token, ctype, body) in cases {
        let (code, v, _) = api.call(method, path, Some(token), ctype, Some(body));
        assert_eq!(code, 403, "{method} {path}: {v}");
        assert!(
            v["type"].as_str().is_some_and(|t| t.ends_with("forbidden")),
            "{v}"
        );
    }
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("Authorization: {scheme} {issuer}");
        let (code, body, _) = curl(
            &api.url("/api/v1/certificates"),
            &["--cacert", &api.root, "-H", &auth],
        );
        assert_eq!(code, 200, "{scheme}: {}", String::from_utf8_lossy(&body));
    }
}

/// List routes page with `limit` and `next_cursor` (requests newest first), a bad cursor is a
/// 400, and a 405 names the methods served at the path in `Allow`.
#[test]
fn lists_page_with_a_cursor_and_405_says_allow() {
    let api = Api::start(|ca| {
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
            "code-signing,release-signing",
        ]);
    });
    let ci = api.token(&["--publisher", "acme", "--name", "ci", "--scopes", "issue"]);
    let body = cert_body("release-signing", &csr_pem(&api.ca, "paged"));
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (code, v, _) = api.call(
            "POST",
            "/api/v1/certificates",
            Some(&ci),
            Some("application/json"),
            Some(&body),
        );
        assert_eq!(code, 202, "{v}");
        ids.push(v["request_id"].as_i64().expect("id"));
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/requests?limit=2".to_string();
    for _ in 0..5 {
        let (code, v, _) = api.call("GET", &path, Some(&ci), None, None);
        assert_eq!(code, 200, "{v}");
        let items = v["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(items.iter().filter_map(|r| r["id"].as_i64()));
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/requests?limit=2&cursor={c}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "every request once, newest first");
    let (code, v, _) = api.call("GET", "/api/v1/requests?cursor=zz", Some(&ci), None, None);
    assert_eq!(code, 400, "{v}");

    let (code, _, _) = curl(
        &api.url("/api/v1/certificates"),
        &["--cacert", &api.root, "-X", "DELETE"],
    );
    assert_eq!(code, 405);
    let out = run(std::process::Command::new(tool("curl")).args([
        "-s",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "--cacert",
        &api.root,
        "-X",
        "DELETE",
        &api.url("/api/v1/certificates"),
    ]));
    let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(headers.contains("allow: get, post"), "{headers}");
}

/// `GET /api/v1/audit` (officers only): newest first, filtered by kind, actor, object and time,
/// in pages with a cursor; bad filters are 400 problem documents; `hallmark audit` takes the
/// same filters and pages the same way.
#[test]
fn the_audit_trail_is_searched_and_paged_over_the_api_and_the_cli() {
    let api = Api::start(|_| {});
    let officer = api.token(&["--officer", "--name", "auditor"]);
    let ci = api.token(&["--publisher", "acme", "--name", "ci", "--scopes", "issue"]);
    let mut serials = Vec::new();
    for i in 0..3 {
        let body = cert_body("code-signing", &csr_pem(&api.ca, &format!("audit-{i}")));
        let (code, v, _) = api.call(
            "POST",
            "/api/v1/certificates",
            Some(&ci),
            Some("application/json"),
            Some(&body),
        );
        assert_eq!(code, 201, "{v}");
        serials.push(v["serial"].as_str().expect("serial").to_string());
    }
    // Every issuance by ci, newest first, two a page.
    let mut seen = Vec::new();
    let mut path = "/api/v1/audit?kind=certificate&actor=(ci)&limit=2".to_string();
    for _ in 0..4 {
        let (code, v, _) = api.call("GET", &path, Some(&officer), None, None);
        assert_eq!(code, 200, "{v}");
        for e in v["items"].as_array().expect("items") {
            assert!(
                e["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("certificate.")),
                "{e}"
            );
            assert!(
                e["actor"].as_str().is_some_and(|a| a.contains("(ci)")),
                "{e}"
            );
            assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
            seen.push(e["subject"].as_str().unwrap_or("").to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => {
                path = format!("/api/v1/audit?kind=certificate&actor=(ci)&limit=2&cursor={c}")
            }
            None => break,
        }
    }
    // A family of actions (the intent recorded, then the certificate issued): each serial's
    // events together, newest first.
    seen.dedup();
    let mut want = serials.clone();
    want.reverse();
    assert_eq!(seen, want, "each issuance, newest first");
    // One object; a time range that holds nothing.
    let (code, v, _) = api.call(
        "GET",
        &format!("/api/v1/audit?object={}", serials[1]),
        Some(&officer),
        None,
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert!(v["items"]
        .as_array()
        .is_some_and(|i| !i.is_empty() && i.iter().all(|e| e["subject"] == serials[1].as_str())));
    let (code, v, _) = api.call(
        "GET",
        "/api/v1/audit?until=2000-01-01",
        Some(&officer),
        None,
        None,
    );
    assert_eq!(
        (code, v["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    // Refusals: not an officer, a time that is not one, a cursor or limit out of range.
    let (code, v, _) = api.call("GET", "/api/v1/audit", Some(&ci), None, None);
    assert_eq!(code, 403, "{v}");
    for bad in [
        "since=yesterday",
        "until=2026-13-01",
        "cursor=0",
        "limit=5000",
    ] {
        let (code, v, _) = api.call(
            "GET",
            &format!("/api/v1/audit?{bad}"),
            Some(&officer),
            None,
            None,
        );
        assert_eq!(code, 400, "{bad}: {v}");
        assert_eq!(v["type"], "urn:hallmark:problem:bad-request", "{bad}: {v}");
    }

    // The CLI: the same filters, JSON, and the cursor of the next page.
    let cli = |args: &[&str]| -> Value {
        let mut a = vec!["audit", "--output", "json"];
        a.extend_from_slice(args);
        serde_json::from_str(&api.ca.hm(&a)).expect("json")
    };
    let page = cli(&[
        "--kind",
        "certificate.issued",
        "--actor",
        "(ci)",
        "--limit",
        "2",
    ]);
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["subject"], serials[2].as_str());
    let next = page["next"].as_str().expect("next").to_string();
    let page2 = cli(&[
        "--kind",
        "certificate.issued",
        "--actor",
        "(ci)",
        "--limit",
        "2",
        "--before",
        &next,
    ]);
    assert_eq!(page2["items"][0]["subject"], serials[0].as_str());
    assert!(page2["next"].is_null());
    let today = cli(&[
        "--since",
        "2000-01-01",
        "--until",
        "2999-01-01",
        "--kind",
        "token",
    ]);
    assert!(
        today["items"].as_array().is_some_and(|i| i.len() >= 2),
        "{today}"
    );
    for (args, says) in [
        (
            vec!["audit", "--since", "last week"],
            "--since 'last week' is not a date",
        ),
        (vec!["audit", "--limit", "0"], "--limit must be 1 to 1000"),
    ] {
        let out = run(&mut api.ca.cmd(&args));
        assert!(!out.status.success());
        assert!(text_of(&out).contains(says), "{}", text_of(&out));
    }
}
