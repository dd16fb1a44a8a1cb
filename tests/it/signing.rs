//! The signing service on a real server (TLS on 127.0.0.1): `hallmark sign cms|raw` hash the file
//! locally and send only the digest; openssl verifies what comes back and rejects a tampered
//! file; every refusal records nothing. Run once per key store (soft keys and SoftHSM2).

use crate::common::*;
use serde_json::{json, Value};

struct Signing {
    env: SignEnv,
    /// acme, scope sign.
    acme: String,
    /// acme, scope issue only.
    acme_issue: String,
    /// globex, scope sign.
    globex: String,
    officer: String,
    /// Serial of the certificate of acme's key `doomed`.
    doomed_serial: String,
}

impl std::ops::Deref for Signing {
    type Target = SignEnv;
    fn deref(&self) -> &SignEnv {
        &self.env
    }
}

fn create_key(ca: &TestCa, publisher: &str, label: &str, alg: &str) -> String {
    let out = ca.create_key(publisher, label, alg, &[]);
    out.lines()
        .find_map(|l| l.strip_prefix("certificate "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no serial in: {out}"))
        .to_string()
}

impl Signing {
    fn start(keys: Keys) -> Signing {
        let (env, (doomed_serial, [acme, acme_issue, globex, officer])) =
            SignEnv::start(keys, |ca| {
                ca.add_globex();
                create_key(ca, "acme", "release", "p256");
                create_key(ca, "acme", "release-rsa", "rsa3072");
                create_key(ca, "globex", "globex-release", "p256");
                let doomed_serial = create_key(ca, "acme", "doomed", "p384");
                // A key without a certificate yet (one from an outside CA is attached later).
                ca.hm(&[
                    "key",
                    "create",
                    "--publisher",
                    "acme",
                    "--label",
                    "stale",
                    "--no-issue",
                ]);
                let tokens = [
                    ca.token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"]),
                    ca.token(&["--publisher", "acme", "--scopes", "issue"]),
                    ca.token(&["--publisher", "globex", "--scopes", "sign"]),
                    ca.token(&["--officer", "--scopes", "sign,issue"]),
                ];
                (doomed_serial, tokens)
            });
        Signing {
            env,
            acme,
            acme_issue,
            globex,
            officer,
            doomed_serial,
        }
    }

    /// `hallmark sign FORMAT FILE --key KEY ...` with the token in the environment.
    fn sign(&self, format: &str, file: &str, key: &str, extra: &[&str]) -> std::process::Output {
        run(&mut self.sign_cmd(&self.acme, format, file, key, &[], extra))
    }

    fn post(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.call(
            Some("POST"),
            "/api/v1/signatures",
            token,
            Some(&body.to_string()),
        )
    }

    fn list(&self, token: &str, query: &str) -> (u16, Value) {
        self.call(
            None,
            &format!("/api/v1/signatures{query}"),
            Some(token),
            None,
        )
    }

    /// The key's public key as PEM, from its certificate (`hallmark key show`).
    fn public_key(&self, label: &str) -> String {
        self.cert_and_public_key(label).1
    }
}

fn write_artifact(s: &Signing, name: &str) -> String {
    let p = s.path(name);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    std::fs::write(&p, data).expect("artifact");
    p
}

/// Flips one byte of a copy of `file`.
fn tampered(file: &str) -> String {
    let mut data = std::fs::read(file).expect("read");
    data[1234] ^= 0x01;
    let p = format!("{file}.tampered");
    std::fs::write(&p, data).expect("write");
    p
}

fn cli_signatures_verify_with_openssl(keys: Keys) {
    let s = Signing::start(keys);
    let file = write_artifact(&s, "app.bin");
    let bad = tampered(&file);

    // CMS, P-256 with SHA-256 and RSA-3072 with SHA-384.
    for (key, digest) in [("release", "sha256"), ("release-rsa", "sha384")] {
        let p7s = s.path(&format!("app-{key}.p7s"));
        let out = s.sign(
            "cms",
            &file,
            key,
            &["--digest", digest, "--out", &p7s, "--meta", "commit=abc123"],
        );
        assert!(
            out.status.success(),
            "sign cms: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (ok, text) = s.cms_verify(&p7s, &file);
        assert!(ok, "openssl cms -verify ({key}, {digest}): {text}");
        let (ok, text) = s.cms_verify(&p7s, &bad);
        assert!(!ok, "a tampered file verified ({key}): {text}");
        // The signed attributes are the three the format promises.
        let (_, dump) = tool_run(
            s.ca.dir.path(),
            "openssl",
            &["cms", "-cmsout", "-print", "-inform", "DER", "-in", &p7s],
        );
        for attr in ["contentType", "messageDigest", "signingTime"] {
            assert!(dump.contains(attr), "{attr} missing:\n{dump}");
        }
    }

    // Raw, verified with `openssl dgst -verify` and the key certificate's public key.
    for (key, digest) in [
        ("release", "sha256"),
        ("release", "sha384"),
        ("release-rsa", "sha512"),
    ] {
        let sig = s.path(&format!("app-{key}-{digest}.sig"));
        let out = s.sign("raw", &file, key, &["--digest", digest, "--out", &sig]);
        assert!(
            out.status.success(),
            "sign raw: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pubkey = s.public_key(key);
        let dgst = format!("-{digest}");
        let args = |f: &str| {
            ["dgst", &dgst, "-verify", &pubkey, "-signature", &sig, f].map(str::to_string)
        };
        let a = args(&file);
        let (ok, text) = tool_run(
            s.ca.dir.path(),
            "openssl",
            &a.each_ref().map(String::as_str),
        );
        assert!(ok && text.contains("Verified OK"), "{key} {digest}: {text}");
        let a = args(&bad);
        let (ok, text) = tool_run(
            s.ca.dir.path(),
            "openssl",
            &a.each_ref().map(String::as_str),
        );
        assert!(!ok, "a tampered file verified ({key} {digest}): {text}");
    }

    // Raw to standard output is base64.
    let out = s.sign("raw", &file, "release", &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim().len() > 60 && !text.contains(' '), "{text}");

    // Every signature is recorded, with its metadata; each caller sees its own.
    assert_eq!(s.recorded(), 6);
    let (code, v) = s.list(&s.acme, "?key=release-rsa");
    assert_eq!(code, 200, "{v}");
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{v}");
    assert_eq!(items[1]["format"], "cms");
    assert_eq!(items[1]["digest_algorithm"], "sha384");
    assert_eq!(items[1]["requester"], "ci");
    assert_eq!(items[1]["metadata"]["commit"], "abc123");
    assert_eq!(items[1]["metadata"]["artifact"], "app.bin");
    let (code, v) = s.list(&s.globex, "");
    assert_eq!((code, v["items"].as_array().map(Vec::len)), (200, Some(0)));
    // Another publisher's key is "not found", as an unknown key is.
    let (code, _) = s.list(&s.globex, "?key=release");
    assert_eq!(code, 404);
    let (code, _) = s.list(&s.globex, "?key=no-such-key");
    assert_eq!(code, 404);
    let (code, v) = s.list(&s.officer, "");
    assert_eq!((code, v["items"].as_array().map(Vec::len)), (200, Some(6)));
    let listed = s.ca.hm(&["signature", "list", "--key", "release"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert!(listed.contains("commit"), "{listed}");
}

/// A certificate for the CSR's key from a throwaway CA, valid only during 2020.
fn expired_certificate(csr_pem: &str) -> String {
    use x509_parser::prelude::FromDer;
    let der = pem::parse(csr_pem).expect("CSR PEM").into_contents();
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&der).expect("CSR");
    let spki =
        rcgen::SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
            .expect("SPKI");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Outside CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Acme Corp");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x42; 16]));
    params.signed_by(&spki, &issuer).expect("sign").pem()
}

fn refusals_record_nothing(keys: Keys) {
    let s = Signing::start(keys);
    let d256 = "ab".repeat(32);
    let body = |key: &str, digest: &str, alg: &str, format: &str| {
        json!({"key": key, "digest": digest, "digest_algorithm": alg, "format": format,
               "metadata": {"artifact": "app.exe"}})
    };
    let refused = |token: Option<&str>, b: Value, status: u16, kind: &str, says: &str| {
        let (code, v) = s.post(token, &b);
        assert_eq!(code, status, "{b} -> {v}");
        assert_eq!(
            v["type"].as_str().unwrap_or(""),
            format!("urn:hallmark:problem:{kind}"),
            "{v}"
        );
        assert!(
            v["detail"].as_str().unwrap_or("").contains(says),
            "{b} -> {v}"
        );
    };

    refused(
        Some(&s.acme),
        body("release", &"ab".repeat(20), "sha1", "raw"),
        400,
        "bad-request",
        "SHA-1",
    );
    refused(
        Some(&s.acme),
        body("release", &"ab".repeat(48), "sha256", "cms"),
        400,
        "bad-request",
        "32 bytes",
    );
    refused(
        Some(&s.acme),
        body("release", "not hex", "sha256", "raw"),
        400,
        "bad-request",
        "hex",
    );
    refused(
        Some(&s.acme),
        body("release", &d256, "sha256", "pgp"),
        400,
        "bad-request",
        "format",
    );
    refused(
        Some(&s.acme_issue),
        body("release", &d256, "sha256", "raw"),
        403,
        "forbidden",
        "'sign' scope",
    );
    // Another publisher's key is answered as an unknown key: the label reveals no owner.
    refused(
        Some(&s.globex),
        body("release", &d256, "sha256", "raw"),
        404,
        "not-found",
        "key 'release' was not found",
    );
    refused(
        Some(&s.acme),
        body("no-such-key", &d256, "sha256", "raw"),
        404,
        "not-found",
        "no-such-key",
    );
    refused(
        None,
        body("release", &d256, "sha256", "raw"),
        401,
        "unauthorized",
        "token",
    );

    // A key whose certificate is revoked signs nothing, in either format.
    let (code, v) = s.post(Some(&s.acme), &body("doomed", &d256, "sha256", "raw"));
    assert_eq!(code, 201, "{v}");
    assert_eq!(s.recorded(), 1);
    // `Store::revoke` opens a deferred transaction that reads before it writes, so beside a
    // running server it can meet SQLITE_BUSY at once (the busy timeout does not cover a lock
    // upgrade); retry that case only.
    let mut tries = 0;
    loop {
        let out = run(&mut s
            .ca
            .cmd(&["revoke", &s.doomed_serial, "--reason", "keyCompromise"]));
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        tries += 1;
        assert!(
            err.contains("database is locked") && tries < 10,
            "revoke: {err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for format in ["raw", "cms"] {
        refused(
            Some(&s.acme),
            body("doomed", &d256, "sha256", format),
            422,
            "bad-key",
            "revoked (keyCompromise)",
        );
    }
    // The officer may sign for acme, but not with a revoked key either.
    refused(
        Some(&s.officer),
        body("doomed", &d256, "sha256", "raw"),
        422,
        "bad-key",
        "revoked",
    );
    assert_eq!(s.recorded(), 1, "a refusal was recorded as a signature");

    // A key without a certificate, then with an expired one (from an outside CA), signs nothing.
    refused(
        Some(&s.acme),
        body("stale", &d256, "sha256", "raw"),
        422,
        "bad-key",
        "has no certificate",
    );
    let expired = s.path("stale-expired.pem");
    std::fs::write(
        &expired,
        expired_certificate(&s.ca.hm(&["key", "csr", "stale"])),
    )
    .expect("cert");
    s.ca.hm(&["key", "import-cert", "stale", &expired]);
    refused(
        Some(&s.acme),
        body("stale", &d256, "sha256", "cms"),
        422,
        "bad-key",
        "expired",
    );
    assert_eq!(s.recorded(), 1);

    // The CLI says why, and writes nothing.
    let file = write_artifact(&s, "fw.bin");
    let out = s.sign("cms", &file, "doomed", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"));
    assert!(!std::path::Path::new(&format!("{file}.p7s")).exists());
    let out = s.sign("raw", &file, "release", &["--digest", "sha1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SHA-1"));
    assert_eq!(s.recorded(), 1);
}

per_key_store!(cli_signatures_verify_with_openssl, refusals_record_nothing);

/// What `hallmark sign` sends for a 100 MB artifact: one small JSON request with the digest
/// (captured by a stand-in server on 127.0.0.1 that reads the request and answers 503).
#[test]
fn the_request_for_a_100_mb_artifact_is_under_4_kib() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("big.bin");
    let f = std::fs::File::create(&big).expect("create");
    f.set_len(100 * 1024 * 1024).expect("set_len");
    drop(f);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let capture = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        // Headers, then Content-Length bytes of body.
        loop {
            let n = conn.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break;
                }
            }
        }
        let _ = conn.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        );
        got
    });
    let out = run(std::process::Command::new(hallmark_bin())
        .args(["sign", "cms"])
        .arg(&big)
        .args(["--key", "release", "--server"])
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["--token-env", "SIGN_TOKEN"])
        .env(
            "SIGN_TOKEN",
            "hmk_000000000000_".to_string() + &"0".repeat(64),
        ));
    assert!(!out.status.success(), "a 503 must fail the command");
    let request = capture.join().expect("capture");
    let text = String::from_utf8_lossy(&request);
    assert!(text.starts_with("POST /api/v1/signatures "), "{text}");
    // SHA-256 of 100 MiB of zeros.
    assert!(
        text.contains("20492a4d0d84f8beb1767f6616229f85d44c2827b64bdbfb260ee12fa1109e0e"),
        "{text}"
    );
    assert!(request.len() < 4096, "{} bytes: {text}", request.len());
}
