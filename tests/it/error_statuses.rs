//! Whose fault an error is decides its status: a stored record that no longer reads back (here
//! a corrupt key certificate) is the server's fault, a 500 whose detail stays in the log, never
//! a 400 that shows the client internal detail.

use crate::common::*;

#[test]
fn a_corrupt_stored_key_certificate_is_a_500_without_detail() {
    let (env, token) = SignEnv::start(Keys::Soft, |ca| {
        ca.create_key("acme", "release", "p256", &[]);
        // Truncated DER where the certificate was (written as any backend would store it).
        let key = ca.store().get_key("release").expect("read").expect("key");
        let serial = key.cert_serial.expect("serial");
        ca.store()
            .set_key_certificate("release", &serial, &[0x30, 0x82], "test")
            .expect("corrupt");
        ca.token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"])
    });
    let body = serde_json::json!({
        "key": "release",
        "digest": "00".repeat(32),
        "digest_algorithm": "sha256",
        "format": "raw",
    });
    for (method, path, body) in [
        (Some("POST"), "/api/v1/signatures", Some(body.to_string())),
        (None, "/api/v1/keys/release", None),
    ] {
        let (code, v) = env.call(method, path, Some(&token), body.as_deref());
        assert_eq!(code, 500, "{path}: {v}");
        assert_eq!(v["type"], "urn:hallmark:problem:internal", "{v}");
        let detail = v["detail"].as_str().unwrap_or("");
        assert!(
            !detail.contains("parse") && !detail.contains("certificate"),
            "internal detail shown to the client: {v}"
        );
    }
    assert_eq!(env.recorded(), 0);
}

/// The public listener's refusals are problem documents from the one mapping: a 405 names the
/// methods the path serves in Allow (RFC 9110), a 404 says where things are.
#[test]
fn public_refusals_are_problem_documents_with_allow() {
    let ca = TestCa::new(Keys::Soft);
    let server = Server::start(&ca, false);
    for (path, allow) in [
        ("/crl/tls-ca.crl", "GET, HEAD"),
        ("/ca/root.pem", "GET, HEAD"),
        ("/ocsp", "GET, HEAD, POST"),
        ("/tsa", "POST"),
    ] {
        let url = format!("{}{path}", server.public);
        let (code, body, ctype) = curl(&url, &["-X", "DELETE"]);
        assert_eq!(code, 405, "{path}");
        assert_eq!(ctype, "application/problem+json", "{path}");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("a problem document");
        assert_eq!(v["type"], "urn:hallmark:problem:method-not-allowed", "{v}");
        let head = run(std::process::Command::new(tool("curl"))
            .args(["-s", "-o", "/dev/null", "-D", "-", "-X", "DELETE"])
            .arg(&url));
        let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
        assert!(
            head.contains(&format!("allow: {}", allow.to_ascii_lowercase())),
            "{path}: {head}"
        );
    }
    let (code, body, _) = curl(&format!("{}/nothing-here", server.public), &[]);
    assert_eq!(code, 404);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("a problem document");
    assert_eq!(v["type"], "urn:hallmark:problem:not-found", "{v}");
}
