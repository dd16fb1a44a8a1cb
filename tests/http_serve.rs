//! `hallmark serve` on 127.0.0.1: health and CA certificates at the URLs written into certificates.

mod common;

use common::*;

#[test]
fn serves_health_and_ca_certificates() {
    let ca = TestCa::new(Keys::Soft);
    let server = Server::start(&ca, false);
    let base = server.public.clone();

    let (code, body, _) = curl(&format!("{base}/healthz"), &[]);
    assert_eq!((code, body.as_slice()), (200, b"ok\n".as_slice()));

    let (code, der, ctype) = curl(&format!("{base}/ca/root.crt"), &[]);
    assert_eq!(code, 200);
    assert_eq!(ctype, "application/pkix-cert");
    let pem_text = ca.hm(&["ca", "cert", "root"]);
    assert_eq!(
        ::pem::parse(pem_text).expect("pem").contents(),
        der.as_slice()
    );

    let (code, body, _) = curl(&format!("{base}/ca/code-signing-ca.pem"), &[]);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("BEGIN CERTIFICATE"));

    let (code, body, ctype) = curl(&format!("{base}/ca/nope.crt"), &[]);
    assert_eq!(code, 404);
    assert_eq!(ctype, "application/problem+json");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("problem json");
    assert_eq!(v["type"], "https://hallmark.dev/problems/not-found");
    assert_eq!(v["status"], 404);
}
