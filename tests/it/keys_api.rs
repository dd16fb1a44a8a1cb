//! `GET /api/v1/keys/{label}` on a real server (TLS on 127.0.0.1): the key's own publisher gets
//! its certificate, chain and policy; another publisher's token and an unknown label get 404, a
//! token without the `sign` scope 403, all as problem documents.

use crate::common::*;
use serde_json::Value;

const PROBLEMS: &str = "urn:hallmark:problem:";

fn get(api: &str, root: &str, token: Option<&str>, label: &str) -> (u16, Value, String) {
    let auth;
    let mut args: Vec<&str> = vec!["--cacert", root];
    if let Some(t) = token {
        auth = format!("Authorization: Bearer {t}");
        args.extend(["-H", &auth]);
    }
    let (code, raw, ctype) = curl(&format!("{api}/api/v1/keys/{label}"), &args);
    let v = serde_json::from_slice(&raw)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&raw)));
    (code, v, ctype)
}

fn assert_problem(what: &str, got: (u16, Value, String), status: u16, kind: &str) {
    let (code, v, ctype) = got;
    assert_eq!(code, status, "{what}: {v}");
    assert!(
        ctype.starts_with("application/problem+json"),
        "{what}: content type {ctype}"
    );
    assert_eq!(
        v["type"].as_str(),
        Some(format!("{PROBLEMS}{kind}").as_str()),
        "{what}: {v}"
    );
    assert_eq!(v["status"].as_u64(), Some(u64::from(status)), "{what}: {v}");
}

#[test]
fn a_publisher_reads_its_own_key_and_no_one_elses() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    ca.add_globex();
    ca.create_key("acme", "fw-release", "p256", &[]);
    ca.hm(&[
        "key",
        "policy",
        "fw-release",
        "--formats",
        "raw,cose_sign1",
        "--digests",
        "sha256",
    ]);
    // An unknown format is refused with the formats on offer.
    let out = run(&mut ca.cmd(&["key", "policy", "fw-release", "--formats", "pdf"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("format 'pdf' is not offered (raw, cms, cose_sign1, openpgp, image)"),
        "{err}"
    );
    ca.hm(&[
        "key",
        "create",
        "--publisher",
        "acme",
        "--label",
        "pending-cert",
        "--no-issue",
    ]);
    ca.hm(&[
        "key",
        "create",
        "--publisher",
        "globex",
        "--label",
        "globex-release",
    ]);
    let token = |args: &[&str]| {
        let mut a = vec!["token", "create"];
        a.extend_from_slice(args);
        ca.hm(&a).trim().to_string()
    };
    let acme = token(&["--publisher", "acme", "--scopes", "sign"]);
    let acme_issue = token(&["--publisher", "acme", "--scopes", "issue"]);
    let globex = token(&["--publisher", "globex", "--scopes", "sign"]);
    let cert_pem = ca.hm(&["key", "show", "fw-release"]);
    let root = ca.ca_pem("root").display().to_string();
    let server = Server::start(&ca, true);
    let api = server.api.as_deref().expect("api listener");

    // The owner.
    let (code, v, ctype) = get(api, &root, Some(&acme), "fw-release");
    assert_eq!(code, 200, "{v}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    assert_eq!(v["label"], "fw-release");
    assert_eq!(v["publisher"], "acme");
    assert_eq!(v["algorithm"], "p256");
    assert_eq!(
        v["certificate"].as_str().map(str::trim),
        Some(cert_pem.trim()),
        "the certificate is `hallmark key show`'s"
    );
    let chain = v["chain"].as_array().expect("chain");
    assert!(!chain.is_empty(), "the issuing CA is in the chain: {v}");
    let code_signing_ca = ca.hm(&["ca", "cert", "code-signing-ca"]);
    assert_eq!(
        chain[0].as_str().map(str::trim),
        Some(code_signing_ca.trim())
    );
    assert!(
        chain.iter().all(|c| c
            .as_str()
            .is_some_and(|c| c.starts_with("-----BEGIN CERTIFICATE-----"))),
        "{v}"
    );
    let not_after = v["not_after"].as_str().expect("not_after");
    assert!(
        time::OffsetDateTime::parse(not_after, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|t| t > time::OffsetDateTime::now_utc()),
        "not_after {not_after}"
    );
    assert_eq!(
        v["policy"]["formats"],
        serde_json::json!(["raw", "cose_sign1"])
    );
    assert_eq!(v["policy"]["digests"], serde_json::json!(["sha256"]));
    assert_eq!(v["policy"]["approvals"], 0);

    // A key without a certificate yet is there, with no certificate.
    let (code, v, _) = get(api, &root, Some(&acme), "pending-cert");
    assert_eq!(code, 200, "{v}");
    assert!(v["certificate"].is_null(), "{v}");
    assert_eq!(v["chain"], serde_json::json!([]));
    assert!(v["not_after"].is_null(), "{v}");

    // Refusals, as problem documents.
    assert_problem(
        "another publisher's token",
        get(api, &root, Some(&globex), "fw-release"),
        404,
        "not-found",
    );
    assert_problem(
        "another publisher's key",
        get(api, &root, Some(&acme), "globex-release"),
        404,
        "not-found",
    );
    assert_problem(
        "a token without sign",
        get(api, &root, Some(&acme_issue), "fw-release"),
        403,
        "forbidden",
    );
    assert_problem(
        "an unknown label",
        get(api, &root, Some(&acme), "no-such-key"),
        404,
        "not-found",
    );
    assert_problem(
        "no token",
        get(api, &root, None, "fw-release"),
        401,
        "unauthorized",
    );
    // Only GET is served there.
    let (code, _, _) = curl(
        &format!("{api}/api/v1/keys/fw-release"),
        &[
            "--cacert",
            &root,
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {acme}"),
        ],
    );
    assert_eq!(code, 405);
}

/// `key policy LABEL --FIELD ...` changes that field and keeps the others (approvals set
/// earlier survive a change of formats); `--clear-*` removes one; the stored policy is printed.
#[test]
fn key_policy_changes_only_the_fields_given() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    ca.create_key("acme", "rel", "p256", &[]);
    ca.hm(&[
        "key",
        "policy",
        "rel",
        "--approvals",
        "2",
        "--approvers",
        "alice,bob,carol",
        "--rate-per-minute",
        "30",
    ]);
    let out = ca.hm(&["key", "policy", "rel", "--formats", "cms"]);
    assert!(out.contains("formats: cms"), "{out}");
    assert!(out.contains("approvals: 2 of alice,bob,carol"), "{out}");
    assert!(out.contains("rate per minute: 30"), "{out}");
    let out = ca.hm(&["key", "policy", "rel", "--clear-approvals", "--clear-rate"]);
    assert!(out.contains("approvals: 0"), "{out}");
    assert!(out.contains("rate per minute: unlimited"), "{out}");
    assert!(out.contains("formats: cms"), "{out}");
    // A flag and its --clear-* together are refused, and nothing changes.
    let o = run(&mut ca.cmd(&[
        "key",
        "policy",
        "rel",
        "--formats",
        "raw",
        "--clear-formats",
    ]));
    assert!(!o.status.success());
    assert!(ca.hm(&["key", "policy", "rel"]).contains("formats: cms"));
}
