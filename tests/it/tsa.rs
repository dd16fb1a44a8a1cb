//! The RFC 3161 time-stamp authority at `POST /tsa`, checked with `openssl ts` and pkilint.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Posts a query file to /tsa and writes the reply to DIR/OUT.
fn post(srv: &Server, dir: &Path, query: &str, out: &str) -> Vec<u8> {
    let data = format!("@{}", dir.join(query).display());
    let (code, body, ctype) = curl(
        &format!("{}/tsa", srv.public),
        &[
            "--data-binary",
            &data,
            "-H",
            "Content-Type: application/timestamp-query",
        ],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/timestamp-reply");
    std::fs::write(dir.join(out), &body).expect("write reply");
    body
}

fn reply_text(dir: &Path, reply: &str) -> String {
    openssl(dir, &["ts", "-reply", "-in", reply, "-text"])
}

fn verify(dir: &Path, data: &str, reply: &str, chain: &str) -> std::process::Output {
    tool_in(
        dir,
        "openssl",
        &[
            "ts",
            "-verify",
            "-data",
            data,
            "-in",
            reply,
            "-CAfile",
            "root.pem",
            "-untrusted",
            chain,
        ],
    )
}

/// `openssl ts -query -data artifact.bin ARGS... -out OUT` in DIR.
fn query(dir: &Path, args: &[&str], out: &str) {
    let mut a = vec!["ts", "-query", "-data", "artifact.bin"];
    a.extend_from_slice(args);
    a.extend(["-out", out]);
    openssl(dir, &a);
}

fn serial_of(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Serial number:"))
        .expect("serial in reply")
        .trim()
        .to_string()
}

/// The root as DIR/root.pem, the timestamping CA as DIR/chain.pem and ARTIFACT as
/// DIR/artifact.bin, in the CA's temp dir; that dir.
fn ca_files(ca: &TestCa, artifact: &[u8]) -> std::path::PathBuf {
    let dir = ca.path("");
    assert_eq!(ca.ca_pem("root"), dir.join("root.pem"));
    std::fs::copy(ca.ca_pem("timestamping-ca"), dir.join("chain.pem")).expect("chain");
    std::fs::write(dir.join("artifact.bin"), artifact).expect("artifact");
    dir
}

/// A CA with its root and chain files in the temp dir, and a running server.
fn setup() -> (TestCa, Server) {
    let ca = TestCa::new(Keys::Soft);
    let dir = ca_files(&ca, b"release 1.2.3\n");
    let tsa = std::fs::read_to_string(ca.path("ca/tsa.pem")).expect("tsa.pem");
    let leaf = pem_blocks(&tsa).remove(0);
    std::fs::write(dir.join("tsa-cert.pem"), &leaf).expect("tsa cert");
    let chain = std::fs::read_to_string(dir.join("chain.pem")).expect("chain");
    std::fs::write(dir.join("chain-tsa.pem"), format!("{chain}{leaf}")).expect("chain+tsa");
    std::fs::write(dir.join("tampered.bin"), b"release 1.2.4\n").expect("tampered");
    let srv = Server::start(&ca, false);
    (ca, srv)
}

#[test]
fn tsa_tokens_verify_with_openssl_and_honour_nonce_and_cert_req() {
    let (ca, srv) = setup();
    let dir = ca.path("");
    // certReq true: the token carries the TSA certificate.
    query(&dir, &["-sha256", "-cert"], "q.tsq");
    post(&srv, &dir, "q.tsq", "r.tsr");
    let out = verify(&dir, "artifact.bin", "r.tsr", "chain.pem");
    assert!(
        out.status.success(),
        "openssl ts -verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The query's nonce is echoed.
    let qtext = openssl(&dir, &["ts", "-query", "-in", "q.tsq", "-text"]);
    let nonce = |t: &str| {
        t.lines()
            .find_map(|l| l.trim().strip_prefix("Nonce:"))
            .map(|n| n.trim().to_string())
    };
    let rtext = reply_text(&dir, "r.tsr");
    assert!(rtext.contains("Status: Granted"), "{rtext}");
    assert!(nonce(&qtext).is_some(), "{qtext}");
    assert_eq!(nonce(&qtext), nonce(&rtext), "{rtext}");
    assert!(rtext.contains("Accuracy: 0x01 seconds"), "{rtext}");
    // The query checks too (nonce, imprint, certificate) with -queryfile.
    let out = tool_in(
        &dir,
        "openssl",
        &[
            "ts",
            "-verify",
            "-queryfile",
            "q.tsq",
            "-in",
            "r.tsr",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "chain.pem",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A tampered file fails.
    let out = verify(&dir, "tampered.bin", "r.tsr", "chain.pem");
    assert!(!out.status.success(), "a tampered file verified");

    // certReq false and no nonce: the TSA certificate comes from -untrusted.
    query(&dir, &["-sha512", "-no_nonce"], "q2.tsq");
    post(&srv, &dir, "q2.tsq", "r2.tsr");
    let out = verify(&dir, "artifact.bin", "r2.tsr", "chain-tsa.pem");
    assert!(
        out.status.success(),
        "openssl ts -verify (no certReq): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r2text = reply_text(&dir, "r2.tsr");
    assert!(
        nonce(&r2text).is_none_or(|n| n == "unspecified"),
        "{r2text}"
    );
    // Without the TSA certificate anywhere, verification fails.
    let out = verify(&dir, "artifact.bin", "r2.tsr", "chain.pem");
    assert!(
        !out.status.success(),
        "verified without the TSA certificate"
    );

    // Two tokens, two serials; each is in the audit log.
    let (s1, s2) = (serial_of(&rtext), serial_of(&r2text));
    assert_ne!(s1, s2);
    let audit = ca.hm(&["audit", "--limit", "20"]);
    assert_eq!(audit.matches("tsa.timestamp").count(), 2, "{audit}");
}

#[test]
fn tsa_refuses_sha1_and_garbage_and_keeps_serving() {
    let (ca, srv) = setup();
    let dir = ca.path("");
    query(&dir, &["-sha1", "-cert"], "sha1.tsq");
    post(&srv, &dir, "sha1.tsq", "sha1.tsr");
    let text = reply_text(&dir, "sha1.tsr");
    assert!(text.contains("Status: Rejected"), "{text}");
    assert!(
        text.contains("unrecognized or unsupported algorithm"),
        "{text}"
    );

    std::fs::write(dir.join("garbage.tsq"), b"this is not DER at all").expect("garbage");
    post(&srv, &dir, "garbage.tsq", "garbage.tsr");
    let text = reply_text(&dir, "garbage.tsr");
    assert!(text.contains("Status: Rejected"), "{text}");
    assert!(
        text.contains("the data submitted has the wrong format"),
        "{text}"
    );

    // Still serving.
    query(&dir, &["-sha384", "-cert"], "q.tsq");
    post(&srv, &dir, "q.tsq", "r.tsr");
    let out = verify(&dir, "artifact.bin", "r.tsr", "chain.pem");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing was recorded for the refused queries.
    let audit = ca.hm(&["audit", "--limit", "20"]);
    assert_eq!(audit.matches("tsa.timestamp").count(), 1, "{audit}");
}

/// Once the TSA's own certificate is revoked, the TSA answers systemFailure (no Granted token
/// under a revoked certificate) and records no token.
#[test]
fn tsa_refuses_once_its_certificate_is_revoked() {
    let (ca, srv) = setup();
    let dir = ca.path("");
    query(&dir, &["-sha256", "-cert"], "q.tsq");
    post(&srv, &dir, "q.tsq", "before.tsr");
    assert!(reply_text(&dir, "before.tsr").contains("Status: Granted"));
    let serial = openssl(&dir, &["x509", "-in", "tsa-cert.pem", "-noout", "-serial"]);
    let serial = serial
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    ca.hm(&["revoke", &serial, "--reason", "keyCompromise"]);
    post(&srv, &dir, "q.tsq", "after.tsr");
    let text = reply_text(&dir, "after.tsr");
    assert!(text.contains("Status: Rejected"), "{text}");
    assert!(text.contains("system failure"), "{text}");
    let audit = ca.hm(&["audit", "--limit", "50"]);
    assert_eq!(audit.matches("tsa.timestamp").count(), 1, "{audit}");
}

#[test]
fn tsa_certificate_is_lint_clean_and_has_a_critical_timestamping_eku() {
    let (ca, _srv) = setup();
    let dir = ca.path("");
    assert_pkilint_clean(&dir, "tsa-cert.pem");
    let text = openssl(&dir, &["x509", "-in", "tsa-cert.pem", "-noout", "-text"]);
    assert!(
        text.contains("X509v3 Extended Key Usage: critical\n                Time Stamping"),
        "{text}"
    );
    assert!(text.contains("Time-Stamping Authority"), "{text}");
    // A second `tsa init` is refused (the certificate file exists).
    let out = run(&mut ca.cmd(&["tsa", "init"]));
    assert!(!out.status.success());

    // An attempt that stopped after making the key but before writing tsa.pem leaves the key in
    // the store: the next `tsa init` certifies that key instead of failing on it.
    let chain = ca.path("ca/tsa.pem");
    let key_spki = || {
        let path = chain.display().to_string();
        openssl(&dir, &["x509", "-in", &path, "-noout", "-pubkey"])
    };
    let before = key_spki();
    std::fs::remove_file(&chain).expect("remove tsa.pem");
    let out = run(&mut ca.cmd(&["tsa", "init"]));
    assert!(out.status.success(), "{}", text_of(&out));
    assert_eq!(key_spki(), before, "the same key, certified again");
    // Asking for another algorithm than the left key's is refused with a clear message.
    std::fs::remove_file(&chain).expect("remove tsa.pem");
    let out = run(&mut ca.cmd(&["tsa", "init", "--algorithm", "p384"]));
    assert!(!out.status.success());
    assert!(
        text_of(&out).contains("another algorithm"),
        "{}",
        text_of(&out)
    );
}

fn tool_in(dir: &Path, name: &str, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(tool(name));
    c.current_dir(dir).args(args);
    run(&mut c)
}

#[test]
fn tsa_serves_jarsigner_and_osslsigncode() {
    let (ca, srv) = setup();
    let dir = ca.path("");
    let url = format!("{}/tsa", srv.public);
    // jarsigner -tsa, then -verify -strict against a truststore holding hallmark's root (the
    // TSA chain must build from the certificates in the token) and the self-signed signer.
    let ks = ["-storetype", "PKCS12", "-storepass", "changeit"];
    let mut a = vec!["-genkeypair", "-keystore", "ks.p12", "-alias", "signer"];
    a.extend(ks);
    a.extend([
        "-keyalg",
        "EC",
        "-groupname",
        "secp256r1",
        "-dname",
        "CN=Test",
        "-validity",
        "30",
    ]);
    let out = tool_in(&dir, "keytool", &a);
    assert!(out.status.success(), "{}", text_of(&out));
    let mut a = vec![
        "-exportcert",
        "-rfc",
        "-keystore",
        "ks.p12",
        "-alias",
        "signer",
    ];
    a.extend(ks);
    a.extend(["-file", "signer.pem"]);
    assert!(tool_in(&dir, "keytool", &a).status.success());
    for (alias, file) in [("root", "root.pem"), ("signer", "signer.pem")] {
        let mut a = vec![
            "-importcert",
            "-noprompt",
            "-keystore",
            "trust.p12",
            "-alias",
            alias,
        ];
        a.extend(ks);
        a.extend(["-file", file]);
        let out = tool_in(&dir, "keytool", &a);
        assert!(out.status.success(), "{}", text_of(&out));
    }
    let out = tool_in(&dir, "jar", &["cf", "app.jar", "artifact.bin"]);
    assert!(out.status.success(), "{}", text_of(&out));
    let out = tool_in(
        &dir,
        "jarsigner",
        &[
            "-keystore",
            "ks.p12",
            "-storepass",
            "changeit",
            "-tsa",
            &url,
            "app.jar",
            "signer",
        ],
    );
    assert!(out.status.success(), "jarsigner: {}", text_of(&out));
    let out = tool_in(
        &dir,
        "jarsigner",
        &[
            "-verify",
            "-strict",
            "-verbose",
            "-keystore",
            "trust.p12",
            "-storepass",
            "changeit",
            "app.jar",
        ],
    );
    let text = text_of(&out);
    assert!(out.status.success(), "jarsigner -verify: {text}");
    assert!(text.contains("Timestamped by"), "{text}");
    assert!(text.contains("Time-Stamping Authority"), "{text}");
    assert!(!text.contains("TSA certificate chain is invalid"), "{text}");

    // osslsigncode sign -ts (Authenticode RFC 3161 countersignature) on a PowerShell script.
    code_signing_cert(&dir, "code signer");
    std::fs::write(dir.join("s.ps1"), "Write-Host \"hi\"\r\n").expect("script");
    let out = tool_in(
        &dir,
        "osslsigncode",
        &[
            "sign",
            "-certs",
            "c.pem",
            "-key",
            "k.pem",
            "-ts",
            &url,
            "-in",
            "s.ps1",
            "-out",
            "signed.ps1",
        ],
    );
    assert!(out.status.success(), "osslsigncode sign: {}", text_of(&out));
    // The TSA chain's CRLs, from this server (the CRL URLs in the certificates name the
    // configured public URL, not this test's port).
    let mut crls = String::new();
    for c in ["timestamping-ca", "root"] {
        let (code, body, _) = curl(&format!("{}/crl/{c}.crl", srv.public), &[]);
        assert_eq!(code, 200);
        std::fs::write(dir.join(format!("{c}.crl")), body).expect("crl");
        crls.push_str(&openssl(
            &dir,
            &["crl", "-inform", "DER", "-in", &format!("{c}.crl")],
        ));
    }
    std::fs::write(dir.join("tsa-crls.pem"), crls).expect("crls");
    let verify = |file: &str| {
        tool_in(
            &dir,
            "osslsigncode",
            &[
                "verify",
                "-in",
                file,
                "-CAfile",
                "c.pem",
                "-TSA-CAfile",
                "root.pem",
                "-TSA-CRLfile",
                "tsa-crls.pem",
            ],
        )
    };
    let out = verify("signed.ps1");
    let text = text_of(&out);
    assert!(out.status.success(), "osslsigncode verify: {text}");
    assert!(
        text.contains("Timestamp Server Signature verification: ok"),
        "{text}"
    );
    let signed = std::fs::read_to_string(dir.join("signed.ps1")).expect("signed");
    std::fs::write(dir.join("tampered.ps1"), signed.replacen("hi", "ho", 1)).expect("tampered");
    assert!(
        !verify("tampered.ps1").status.success(),
        "a tampered script verified"
    );
}

#[test]
fn tsa_with_an_hsm_key_verifies() {
    let ca = TestCa::new(Keys::SoftHsm);
    let dir = ca_files(&ca, b"firmware\n");
    let srv = Server::start(&ca, false);
    query(&dir, &["-sha256", "-cert"], "q.tsq");
    post(&srv, &dir, "q.tsq", "r.tsr");
    let out = verify(&dir, "artifact.bin", "r.tsr", "chain.pem");
    assert!(out.status.success(), "{}", text_of(&out));
}
