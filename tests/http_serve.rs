//! `hallmark serve` on 127.0.0.1: health and CA certificates at the URLs written into certificates.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(url: &str) -> (String, Vec<u8>, String) {
    let out = run(std::process::Command::new(tool("curl")).args([
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code} %{content_type}",
        url,
    ]));
    let body = out.stdout;
    let split = body
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("curl trailer");
    let trailer = String::from_utf8_lossy(&body[split + 1..]).into_owned();
    let (code, ctype) = trailer.split_once(' ').unwrap_or((&trailer, ""));
    (code.to_string(), body[..split].to_vec(), ctype.to_string())
}

#[test]
fn serves_health_and_ca_certificates() {
    let ca = TestCa::new(Keys::Soft);
    let mut child = ca
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let _server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read banner");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in banner: {line}"))
        .to_string();

    let (code, body, _) = curl(&format!("{base}/healthz"));
    assert_eq!(
        (code.as_str(), body.as_slice()),
        ("200", b"ok\n".as_slice())
    );

    let (code, der, ctype) = curl(&format!("{base}/ca/root.crt"));
    assert_eq!(code, "200");
    assert_eq!(ctype, "application/pkix-cert");
    let pem_text = ca.hm(&["ca", "cert", "root"]);
    assert_eq!(
        ::pem::parse(pem_text).expect("pem").contents(),
        der.as_slice()
    );

    let (code, body, _) = curl(&format!("{base}/ca/code-signing-ca.pem"));
    assert_eq!(code, "200");
    assert!(String::from_utf8_lossy(&body).contains("BEGIN CERTIFICATE"));

    let (code, body, ctype) = curl(&format!("{base}/ca/nope.crt"));
    assert_eq!(code, "404");
    assert_eq!(ctype, "application/problem+json");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("problem json");
    assert_eq!(v["type"], "https://hallmark.dev/problems/not-found");
    assert_eq!(v["status"], 404);
}
