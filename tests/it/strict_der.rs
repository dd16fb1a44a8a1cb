//! Every kind of structure hallmark emits is DER as X.690 defines it: certificates, CRLs, OCSP
//! responses, CMS signatures with an embedded time-stamp token, and the TSA's own tokens,
//! decoded by a strict DER parser (pyca/cryptography's rust-asn1, which refuses a SET OF out of
//! order) through `tests/strict_der/check.py`.

use crate::common::*;

fn strict(dir: &std::path::Path, kind: &str, files: &[String]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/strict_der/check.py");
    let mut c = std::process::Command::new(tool("python3"));
    c.current_dir(dir).arg(script).arg(kind).args(files);
    let out = run(&mut c);
    let text = text_of(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("DER: ").count(), files.len(), "{text}");
}

fn der_of_pem(pem_text: &str) -> Vec<Vec<u8>> {
    ::pem::parse_many(pem_text)
        .expect("pem")
        .into_iter()
        .map(|p| p.into_contents())
        .collect()
}

#[test]
fn every_output_is_strict_der() {
    let (env, token) = SignEnv::start(Keys::Soft, |ca| {
        ca.create_key("acme", "release", "p256", &["--profile", "code-signing"]);
        ca.token(&["--publisher", "acme", "--scopes", "sign", "--name", "ci"])
    });
    let dir = env.ca.path("");
    let write = |name: &str, der: &[u8]| -> String {
        std::fs::write(env.ca.path(name), der).expect("write");
        name.to_string()
    };

    // Certificates: every CA's, the responders' and the signing key's.
    let mut certs = Vec::new();
    for ca in [
        "root",
        "code-signing-ca",
        "timestamping-ca",
        "device-ca",
        "tls-ca",
        "code-signing-ca-ocsp",
    ] {
        for (i, der) in der_of_pem(&env.ca.hm(&["ca", "cert", ca]))
            .iter()
            .enumerate()
        {
            certs.push(write(&format!("{ca}-{i}.der"), der));
        }
    }
    let key_cert = der_of_pem(&env.ca.hm(&["key", "show", "release"]));
    certs.push(write("release.der", &key_cert[0]));
    strict(&dir, "cert", &certs);

    // CRLs of the root and an issuing CA.
    let mut crls = Vec::new();
    for ca in ["root", "code-signing-ca"] {
        let out = env.path(&format!("{ca}.crl"));
        env.ca.hm(&["crl", "--ca", ca, "--out", &out]);
        crls.push(format!("{ca}.crl"));
    }
    strict(&dir, "crl", &crls);

    // An OCSP response (pre-signed, from the server) about the key's certificate.
    std::fs::write(
        env.ca.path("release.pem"),
        env.ca.hm(&["key", "show", "release"]),
    )
    .expect("pem");
    env.ca.ca_pem("code-signing-ca");
    openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            "code-signing-ca.pem",
            "-cert",
            "release.pem",
            "-url",
            &format!("{}/ocsp", env.server.public),
            "-no_nonce",
            "-respout",
            "ocsp.der",
            "-noverify",
        ],
    );
    strict(&dir, "ocsp", &["ocsp.der".to_string()]);

    // A CMS signature with its time-stamp token inside, and the TSA's own token (with the TSA
    // certificate and its chain: a SET OF two certificates).
    std::fs::write(env.ca.path("app.bin"), b"an artifact").expect("artifact");
    let out = run(&mut env.sign_cmd(
        &token,
        "cms",
        &env.path("app.bin"),
        "release",
        &["--timestamp", "--out", &env.path("app.p7s")],
        &[],
    ));
    assert!(out.status.success(), "{}", text_of(&out));
    openssl(
        &dir,
        &[
            "ts", "-query", "-data", "app.bin", "-sha256", "-cert", "-out", "ts.req",
        ],
    );
    let (code, resp, _) = curl(
        &format!("{}/tsa", env.server.public),
        &[
            "-H",
            "Content-Type: application/timestamp-query",
            "--data-binary",
            &format!("@{}", env.path("ts.req")),
        ],
    );
    assert_eq!(code, 200);
    std::fs::write(env.ca.path("ts.resp"), &resp).expect("resp");
    openssl(
        &dir,
        &[
            "ts",
            "-reply",
            "-in",
            "ts.resp",
            "-token_out",
            "-out",
            "ts.token",
        ],
    );
    strict(
        &dir,
        "pkcs7",
        &["app.p7s".to_string(), "ts.token".to_string()],
    );
}
