//! The ACME server (issue 7) with real clients: instant-acme (Rust, with EAB), certbot (PyPI),
//! and hand-built JWS requests (signed with aws-lc-rs) for the error cases RFC 8555 names.
//! Validation runs from the server against a responder on a random port on 127.0.0.1
//! (`[acme] http01_port`, `validation_address`), as Pebble does for tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// A CA with an ACME directory for `tls-server` limited to `*.internal.test` names, validating
/// against 127.0.0.1:`http01_port`.
struct Acme {
    ca: TestCa,
    server: Server,
    root: String,
    http01_port: u16,
    tls_alpn01_port: u16,
    dns_port: u16,
    directory: String,
}

impl Acme {
    fn start() -> Acme {
        Acme::start_with(false, false)
    }

    /// With `http01_env`, the config names a port nobody listens on and the server gets the
    /// real one from `HALLMARK_ACME_HTTP01_PORT`, which must win.
    /// With `short_lived`, nonces live 2 s and orders 3 s.
    fn start_with(http01_env: bool, short_lived: bool) -> Acme {
        let ca = TestCa::new(Keys::Soft);
        ca.add_acme();
        let http01_port = free_port();
        let config_port = if http01_env { free_port() } else { http01_port };
        let cfg = std::fs::read_to_string(ca.config()).expect("config");
        assert!(
            cfg.contains("http01_port = 80"),
            "init writes [acme]:\n{cfg}"
        );
        let tls_alpn01_port = free_port();
        let dns_port = free_port();
        let cfg = cfg
            .replace(
                "http01_port = 80",
                &format!(
                    "http01_port = {config_port}\nvalidation_address = \"127.0.0.1\"\ndns_resolver = \"127.0.0.1:{dns_port}\""
                ),
            )
            .replace(
                "tls_alpn01_port = 443",
                &format!("tls_alpn01_port = {tls_alpn01_port}"),
            );
        let cfg = if short_lived {
            assert!(cfg.contains("nonce_lifetime_secs = 3600"), "{cfg}");
            assert!(cfg.contains("order_lifetime_secs = 604800"), "{cfg}");
            cfg.replace("nonce_lifetime_secs = 3600", "nonce_lifetime_secs = 2")
                .replace("order_lifetime_secs = 604800", "order_lifetime_secs = 3")
        } else {
            cfg
        };
        std::fs::write(ca.config(), cfg).expect("write config");
        let profile = ca.dir.path().join("ca/ca-profiles/tls-server.toml");
        let text = std::fs::read_to_string(&profile).expect("tls-server profile");
        let text = text.replace(
            "allowed = [\"dns\", \"ip\"]",
            "allowed = [\"dns\", \"ip\"]\ndns_suffix = \".internal.test\"",
        );
        assert!(text.contains("dns_suffix"));
        std::fs::write(&profile, text).expect("write profile");
        let server = if http01_env {
            let port = http01_port.to_string();
            Server::start_with_env(&ca, true, &[("HALLMARK_ACME_HTTP01_PORT", &port)])
        } else {
            Server::start(&ca, true)
        };
        let root = ca.ca_pem("root").display().to_string();
        let directory = format!(
            "{}/acme/tls-server/directory",
            server.api.as_deref().expect("api")
        );
        Acme {
            ca,
            server,
            root,
            http01_port,
            tls_alpn01_port,
            dns_port,
            directory,
        }
    }

    /// `hallmark acme eab create --publisher acme`: (kid, HMAC key as base64url).
    fn eab(&self) -> (String, String) {
        let out = self
            .ca
            .hm(&["acme", "eab", "create", "--publisher", "acme"]);
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in {out}"))
        };
        let (kid, hmac) = (field("kid:"), field("hmac_key:"));
        // At rest the HMAC key is sealed: the database alone cannot bind an account.
        use base64::Engine;
        let clear = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(hmac.trim_start_matches("--eab-hmac-key="))
            .expect("base64url HMAC key");
        let stored = self
            .ca
            .store()
            .get_eab_key(&kid)
            .expect("read")
            .expect("stored EAB key")
            .hmac_key;
        assert!(stored.starts_with(b"hms1"), "sealed at rest");
        assert!(!stored.windows(clear.len()).any(|w| w == clear.as_slice()));
        (kid, hmac)
    }

    fn url(&self, rest: &str) -> String {
        format!(
            "{}/acme/tls-server/{rest}",
            self.server.api.as_deref().expect("api")
        )
    }

    /// `openssl ocsp` for a certificate issued by tls-ca; returns its output.
    fn ocsp(&self, cert: &str) -> String {
        let ica = self.ca.ca_pem("tls-ca").display().to_string();
        let url = format!("{}/ocsp", self.server.public);
        let out = run(Command::new(tool("openssl"))
            .current_dir(self.ca.dir.path())
            .args([
                "ocsp",
                "-issuer",
                &ica,
                "-cert",
                cert,
                "-url",
                &url,
                "-CAfile",
                &self.root,
                "-no_nonce",
            ]));
        let text = text_of(&out);
        assert!(text.contains("Response verify OK"), "{text}");
        text
    }

    /// The certificate chain verifies under hallmark's root.
    fn verify_chain(&self, pem: &str, name: &str) -> String {
        let blocks = pem_blocks(pem);
        assert!(blocks.len() >= 2, "leaf and tls-ca expected: {pem}");
        let leaf = self.ca.path(&format!("{name}.pem"));
        let chain = self.ca.path(&format!("{name}-chain.pem"));
        std::fs::write(&leaf, &blocks[0]).expect("leaf");
        std::fs::write(&chain, blocks[1..].concat()).expect("chain");
        let out = openssl(
            self.ca.dir.path(),
            &[
                "verify",
                "-CAfile",
                &self.root,
                "-untrusted",
                &chain.display().to_string(),
                "-purpose",
                "sslserver",
                &leaf.display().to_string(),
            ],
        );
        assert!(out.contains(": OK"), "{out}");
        leaf.display().to_string()
    }
}

/// Answers http-01 requests from a token → key authorization map, on 127.0.0.1:port.
fn http01_responder(port: u16) -> Arc<Mutex<HashMap<String, String>>> {
    let map: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind http-01 port");
    let m = map.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map(|n| n == 0).unwrap_or(true) || h == "\r\n" {
                    break;
                }
            }
            let token = path
                .strip_prefix("/.well-known/acme-challenge/")
                .unwrap_or("");
            let answer = m.lock().expect("lock").get(token).cloned();
            let mut s = reader.into_inner();
            let _ = match answer {
                Some(a) => write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{a}",
                    a.len()
                ),
                None => write!(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            };
        }
    });
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_acme_full_flow_with_eab() {
    use instant_acme::{
        Account, ChallengeType, ExternalAccountKey, Identifier, NewAccount, NewOrder, OrderStatus,
        RetryPolicy, RevocationReason, RevocationRequest,
    };
    let started = Instant::now();
    let acme = Acme::start();
    let answers = http01_responder(acme.http01_port);
    let (kid, hmac) = acme.eab();
    let eab = ExternalAccountKey::new(kid.clone(), &URL_SAFE_NO_PAD.decode(&hmac).expect("hmac"));
    let (mut account, _creds) = Account::builder_with_root(&acme.root)
        .expect("builder")
        .create(
            &NewAccount {
                contact: &["mailto:ops@internal.test"],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            acme.directory.clone(),
            Some(&eab),
        )
        .await
        .expect("newAccount with EAB");
    // The EAB key is now bound: it shows as such, and cannot make a second account.
    let list = acme.ca.hm(&["acme", "eab", "list"]);
    assert!(list.contains(&kid) && list.contains("bound"), "{list}");
    let again = Account::builder_with_root(&acme.root)
        .expect("builder")
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            acme.directory.clone(),
            Some(&eab),
        )
        .await;
    assert!(again.is_err(), "a bound EAB key made a second account");

    let ids = [
        Identifier::Dns("host1.internal.test".into()),
        Identifier::Ip("127.0.0.1".parse().expect("ip")),
    ];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .expect("newOrder");
    assert_eq!(order.state().status, OrderStatus::Pending);
    {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.expect("authz");
            let mut ch = a.challenge(ChallengeType::Http01).expect("http-01 offered");
            answers.lock().expect("lock").insert(
                ch.token.clone(),
                ch.key_authorization().as_str().to_string(),
            );
            ch.set_ready().await.expect("challenge ready");
        }
    }
    let status = order
        .poll_ready(&RetryPolicy::default())
        .await
        .expect("poll ready");
    assert_eq!(status, OrderStatus::Ready);

    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![
        "host1.internal.test".to_string(),
        "127.0.0.1".to_string(),
    ])
    .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).expect("csr");
    order.finalize_csr(csr.der()).await.expect("finalize");
    let pem = order
        .poll_certificate(&RetryPolicy::default())
        .await
        .expect("certificate");
    let leaf = acme.verify_chain(&pem, "ia-leaf");
    let text = openssl(
        acme.ca.dir.path(),
        &["x509", "-in", &leaf, "-noout", "-text"],
    );
    assert!(text.contains("DNS:host1.internal.test"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    // The subject comes from the publisher's verified record, as on every other path.
    assert!(text.contains("O = Acme Corp"), "{text}");
    assert!(text.contains("CN = host1.internal.test"), "{text}");
    assert_pkilint_clean(acme.ca.dir.path(), &leaf);
    // Recorded like any certificate, for the account's publisher.
    let list = acme.ca.hm(&["cert", "list"]);
    assert!(list.contains("tls-server"), "{list}");

    // Account update and key rollover, then revocation with the new key.
    account
        .update_contacts(&["mailto:pki@internal.test"])
        .await
        .expect("update contacts");
    let _new_credentials = account.update_key().await.expect("keyChange");
    let der = pem::parse(&pem).expect("pem");
    let cert = rustls::pki_types::CertificateDer::from(der.contents().to_vec());
    account
        .revoke(&RevocationRequest {
            certificate: &cert,
            reason: Some(RevocationReason::KeyCompromise),
        })
        .await
        .expect("revokeCert after keyChange");
    let out = acme.ocsp(&leaf);
    assert!(out.contains("revoked"), "{out}");
    // Twice is alreadyRevoked.
    let twice = account
        .revoke(&RevocationRequest {
            certificate: &cert,
            reason: None,
        })
        .await
        .expect_err("second revocation");
    assert!(format!("{twice:?}").contains("alreadyRevoked"), "{twice:?}");

    // A deactivated account can do nothing more.
    let orders_before = account.new_order(&NewOrder::new(&ids[..1])).await;
    assert!(orders_before.is_ok());
    account.deactivate().await.expect("deactivate");
    let audit = acme.ca.hm(&["audit"]);
    for action in [
        "acme.eab.create",
        "acme.account.create",
        "acme.order.create",
        "acme.challenge.valid",
        "acme.order.valid",
        "acme.account.key-change",
        "acme.account.status",
    ] {
        assert!(audit.contains(action), "audit lacks {action}:\n{audit}");
    }
    eprintln!("instant-acme flow took {:?}", started.elapsed());
}

#[test]
fn certbot_gets_and_revokes_a_certificate() {
    // The http-01 port comes from HALLMARK_ACME_HTTP01_PORT (the config names another).
    let acme = Acme::start_with(true, false);
    let (kid, hmac) = acme.eab();
    let work = acme.ca.path("certbot");
    std::fs::create_dir_all(&work).expect("certbot dir");
    let w = |d: &str| work.join(d).display().to_string();
    let certbot = |args: &[&str]| {
        let out = run(Command::new(tool("certbot"))
            .env("REQUESTS_CA_BUNDLE", &acme.root)
            .args(args)
            .args([
                "--config-dir",
                &w("config"),
                "--work-dir",
                &w("work"),
                "--logs-dir",
                &w("logs"),
                "--non-interactive",
                "--server",
                &acme.directory,
            ])
            .stdin(Stdio::null()));
        let text = text_of(&out);
        if !out.status.success() {
            // certbot's own log says more than its output (which request, which answer).
            let log = std::fs::read_to_string(work.join("logs").join("letsencrypt.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "certbot {args:?} failed:\n{text}\n--- letsencrypt.log (last 80 lines) ---\n{}",
                tail.join("\n")
            );
        }
        text
    };
    let port = acme.http01_port.to_string();
    certbot(&[
        "certonly",
        "--standalone",
        "--http-01-port",
        &port,
        "--http-01-address",
        "127.0.0.1",
        "--eab-kid",
        &kid,
        "--eab-hmac-key",
        &hmac,
        "--agree-tos",
        "-m",
        "ops@internal.test",
        "-d",
        "web.internal.test",
        "--cert-name",
        "web",
    ]);
    let live = work.join("config/live/web");
    let fullchain = std::fs::read_to_string(live.join("fullchain.pem")).expect("fullchain");
    let leaf = acme.verify_chain(&fullchain, "certbot-leaf");
    let text = openssl(
        acme.ca.dir.path(),
        &["x509", "-in", &leaf, "-noout", "-text"],
    );
    assert!(text.contains("DNS:web.internal.test"), "{text}");
    let out = acme.ocsp(&leaf);
    assert!(out.contains(": good"), "{out}");

    certbot(&[
        "revoke",
        "--cert-path",
        &live.join("cert.pem").display().to_string(),
        "--reason",
        "superseded",
        "--no-delete-after-revoke",
    ]);
    let out = acme.ocsp(&leaf);
    assert!(out.contains("revoked"), "{out}");
    assert!(
        out.contains("superseded") || out.contains("Superseded"),
        "{out}"
    );
}

/// A hand-built ACME client: JWS signed with aws-lc-rs, sent with curl.
enum TestKey {
    Es256(EcdsaKeyPair),
    Es384(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl TestKey {
    fn es256() -> TestKey {
        TestKey::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("p256"))
    }

    fn es384() -> TestKey {
        TestKey::Es384(EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).expect("p384"))
    }

    fn ed25519() -> TestKey {
        TestKey::Ed25519(Ed25519KeyPair::generate().expect("ed25519"))
    }

    fn alg(&self) -> &'static str {
        match self {
            TestKey::Es256(_) => "ES256",
            TestKey::Es384(_) => "ES384",
            TestKey::Ed25519(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            TestKey::Es256(k) => {
                let p = k.public_key().as_ref();
                json!({"crv": "P-256", "kty": "EC", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            TestKey::Es384(k) => {
                let p = k.public_key().as_ref();
                json!({"crv": "P-384", "kty": "EC", "x": b64(&p[1..49]), "y": b64(&p[49..97])})
            }
            TestKey::Ed25519(k) => {
                json!({"crv": "Ed25519", "kty": "OKP", "x": b64(k.public_key().as_ref())})
            }
        }
    }

    fn thumbprint(&self) -> String {
        let canonical = self.jwk().to_string(); // serde_json sorts keys; no whitespace
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            TestKey::Es256(k) | TestKey::Es384(k) => k
                .sign(&SystemRandom::new(), msg)
                .expect("sign")
                .as_ref()
                .to_vec(),
            TestKey::Ed25519(k) => k.sign(msg).as_ref().to_vec(),
        }
    }

    /// A flattened JWS; `payload` None is POST-as-GET.
    fn jws(&self, protected: &Value, payload: Option<&Value>) -> Value {
        let mut p = protected.clone();
        p["alg"] = json!(self.alg());
        let p64 = b64(p.to_string().as_bytes());
        let pl64 = payload
            .map(|v| b64(v.to_string().as_bytes()))
            .unwrap_or_default();
        let sig = self.sign(format!("{p64}.{pl64}").as_bytes());
        json!({"protected": p64, "payload": pl64, "signature": b64(&sig)})
    }
}

/// One answer: status, lower-case headers, body.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn nonce(&self) -> String {
        self.headers
            .get("replay-nonce")
            .cloned()
            .unwrap_or_else(|| panic!("no Replay-Nonce: {:?}", self.headers))
    }

    /// The answer is an ACME problem of `kind`, with a nonce.
    fn assert_problem(&self, kind: &str) {
        let v = self.json();
        assert_eq!(
            v["type"],
            json!(format!("urn:ietf:params:acme:error:{kind}")),
            "status {}: {v}",
            self.status
        );
        assert_eq!(
            self.headers.get("content-type").map(String::as_str),
            Some("application/problem+json")
        );
        assert!(
            self.status >= 400 && self.status < 500,
            "status {}",
            self.status
        );
        let _ = self.nonce();
    }
}

fn call(acme: &Acme, method: &str, url: &str, body: Option<&Value>) -> Answer {
    let dir = tempfile::tempdir().expect("tmp");
    let h = dir.path().join("h");
    let b = dir.path().join("b");
    let mut c = Command::new(tool("curl"));
    c.args(["-s", "--cacert", &acme.root, "-X", method, "-D"])
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .args(["-w", "%{http_code}"]);
    if method == "HEAD" {
        c.arg("-I");
    }
    if let Some(v) = body {
        c.args(["-H", "Content-Type: application/jose+json", "--data-binary"])
            .arg(v.to_string());
    }
    c.arg(url);
    let out = ok(&mut c);
    let headers = std::fs::read_to_string(&h)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status: out.trim().parse().unwrap_or(0),
        headers,
        body: std::fs::read(&b).unwrap_or_default(),
    }
}

fn fresh_nonce(acme: &Acme) -> String {
    let a = call(acme, "HEAD", &acme.url("new-nonce"), None);
    assert_eq!(a.status, 200);
    a.nonce()
}

/// A JWS by KEY for URL with a fresh nonce and the account URL as `kid`.
fn kid_jws(acme: &Acme, key: &TestKey, account: &str, url: &str, payload: Option<&Value>) -> Value {
    key.jws(
        &json!({"nonce": fresh_nonce(acme), "url": url, "kid": account}),
        payload,
    )
}

/// A newAccount JWS by KEY (`jwk`, fresh nonce) with only an external account binding.
fn eab_account_jws(acme: &Acme, key: &TestKey, kid: &str, hmac: &str) -> Value {
    let new_account = acme.url("new-account");
    key.jws(
        &json!({"nonce": fresh_nonce(acme), "url": new_account, "jwk": key.jwk()}),
        Some(&json!({"externalAccountBinding": eab_binding(kid, hmac, key, &new_account)})),
    )
}

/// The URL of the first authorization of an order.
fn first_authz(order: &Value) -> String {
    order["authorizations"][0]
        .as_str()
        .expect("authz")
        .to_string()
}

/// The challenge of KIND in an authorization.
fn challenge(authz: &Value, kind: &str) -> Value {
    authz["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .find(|c| c["type"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} in {authz}"))
}

/// The EAB inner JWS (HS256 over the account JWK).
fn eab_binding(kid: &str, hmac_b64: &str, key: &TestKey, url: &str) -> Value {
    use aws_lc_rs::hmac;
    let p64 = b64(json!({"alg": "HS256", "kid": kid, "url": url})
        .to_string()
        .as_bytes());
    let pl64 = b64(key.jwk().to_string().as_bytes());
    let k = hmac::Key::new(
        hmac::HMAC_SHA256,
        &URL_SAFE_NO_PAD.decode(hmac_b64).expect("hmac"),
    );
    let tag = hmac::sign(&k, format!("{p64}.{pl64}").as_bytes());
    json!({"protected": p64, "payload": pl64, "signature": b64(tag.as_ref())})
}

/// A CSR whose key is the test key (so a JWS can be signed with the certificate's key).
fn csr_with(key: &TestKey, names: &[&str]) -> Vec<u8> {
    let TestKey::Es256(k) = key else {
        panic!("ES256 keys only")
    };
    let pkcs8 = k.to_pkcs8v1().expect("pkcs8");
    let kp = rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("rcgen key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&kp).expect("csr").der().to_vec()
}

fn csr_der(names: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&key).expect("csr").der().to_vec()
}

#[test]
fn protocol_errors_have_the_rfc_types() {
    let acme = Acme::start();
    let answers = http01_responder(acme.http01_port);

    // Directory and nonces: GET and HEAD, Replay-Nonce everywhere.
    let d = call(&acme, "GET", &acme.directory, None);
    assert_eq!(d.status, 200);
    let dir = d.json();
    assert_eq!(dir["meta"]["externalAccountRequired"], json!(true));
    assert_eq!(dir["newAccount"], json!(acme.url("new-account")));
    let _ = d.nonce();
    let unknown = call(
        &acme,
        "GET",
        &acme.directory.replace("tls-server", "code-signing"),
        None,
    );
    assert_eq!(unknown.status, 404);
    unknown.assert_problem("malformed");
    let g = call(&acme, "GET", &acme.url("new-nonce"), None);
    assert_eq!(g.status, 204);
    assert_eq!(
        g.headers.get("cache-control").map(String::as_str),
        Some("no-store")
    );
    let _ = g.nonce();

    let key = TestKey::es256();
    let new_account = acme.url("new-account");
    let account_req = |nonce: &str, url: &str, eab: Option<Value>| {
        let mut payload =
            json!({"termsOfServiceAgreed": true, "contact": ["mailto:a@internal.test"]});
        if let Some(e) = eab {
            payload["externalAccountBinding"] = e;
        }
        key.jws(
            &json!({"nonce": nonce, "url": url, "jwk": key.jwk()}),
            Some(&payload),
        )
    };

    // A contact that is not mailto: unsupportedContact.
    let tel = key.jws(
        &json!({"nonce": fresh_nonce(&acme), "url": new_account, "jwk": key.jwk()}),
        Some(&json!({"contact": ["tel:+15555550100"]})),
    );
    call(&acme, "POST", &new_account, Some(&tel)).assert_problem("unsupportedContact");

    // Missing EAB: externalAccountRequired.
    let a = call(
        &acme,
        "POST",
        &new_account,
        Some(&account_req(&fresh_nonce(&acme), &new_account, None)),
    );
    a.assert_problem("externalAccountRequired");

    // Bad signature: malformed (RFC 8555 §6.2 via Boulder/Pebble: "JWS verification error").
    let (kid, hmac) = acme.eab();
    let mut bad = account_req(
        &fresh_nonce(&acme),
        &new_account,
        Some(eab_binding(&kid, &hmac, &key, &new_account)),
    );
    let mut sig = URL_SAFE_NO_PAD
        .decode(bad["signature"].as_str().expect("sig"))
        .expect("b64");
    sig[5] ^= 0x55;
    bad["signature"] = json!(b64(&sig));
    let a = call(&acme, "POST", &new_account, Some(&bad));
    a.assert_problem("malformed");
    assert!(
        a.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("signature"),
        "{}",
        a.json()
    );

    // Unsupported alg: badSignatureAlgorithm, with the list.
    let mut none = account_req(&fresh_nonce(&acme), &new_account, None);
    let p =
        json!({"alg": "none", "nonce": fresh_nonce(&acme), "url": new_account, "jwk": key.jwk()});
    none["protected"] = json!(b64(p.to_string().as_bytes()));
    let a = call(&acme, "POST", &new_account, Some(&none));
    a.assert_problem("badSignatureAlgorithm");
    assert!(a.json()["algorithms"].is_array());

    // Wrong url: unauthorized (RFC 8555 §6.4.1).
    let wrong = acme.url("new-order");
    let a = call(
        &acme,
        "POST",
        &new_account,
        Some(&account_req(
            &fresh_nonce(&acme),
            &wrong,
            Some(eab_binding(&kid, &hmac, &key, &new_account)),
        )),
    );
    a.assert_problem("unauthorized");

    // A good newAccount, then the same nonce again: badNonce.
    let nonce = fresh_nonce(&acme);
    let good = account_req(
        &nonce,
        &new_account,
        Some(eab_binding(&kid, &hmac, &key, &new_account)),
    );
    let a = call(&acme, "POST", &new_account, Some(&good));
    assert_eq!(a.status, 201, "{}", a.json());
    let account_url = a.headers.get("location").cloned().expect("Location");
    assert_eq!(a.json()["status"], json!("valid"));
    let a = call(&acme, "POST", &new_account, Some(&good));
    a.assert_problem("badNonce");
    // The same key again returns the account (200), even without EAB.
    let a = call(
        &acme,
        "POST",
        &new_account,
        Some(&account_req(&fresh_nonce(&acme), &new_account, None)),
    );
    assert_eq!(a.status, 200, "{}", a.json());
    assert_eq!(a.headers.get("location"), Some(&account_url));
    // onlyReturnExisting with an unknown key: accountDoesNotExist.
    let other = TestKey::ed25519();
    let a = call(
        &acme,
        "POST",
        &new_account,
        Some(&other.jws(
            &json!({"nonce": fresh_nonce(&acme), "url": new_account, "jwk": other.jwk()}),
            Some(&json!({"onlyReturnExisting": true})),
        )),
    );
    a.assert_problem("accountDoesNotExist");

    // Unknown kid: accountDoesNotExist.
    let new_order = acme.url("new-order");
    let order_payload = json!({"identifiers": [{"type": "dns", "value": "app.internal.test"}]});
    let a = call(
        &acme,
        "POST",
        &new_order,
        Some(&kid_jws(
            &acme,
            &key,
            &acme.url("account/nosuchaccount"),
            &new_order,
            Some(&order_payload),
        )),
    );
    a.assert_problem("accountDoesNotExist");

    // A name the profile does not allow: rejectedIdentifier.
    let kid_req =
        |url: &str, payload: Option<&Value>| kid_jws(&acme, &key, &account_url, url, payload);
    let a = call(
        &acme,
        "POST",
        &new_order,
        Some(&kid_req(
            &new_order,
            Some(&json!({"identifiers": [{"type": "dns", "value": "www.example.com"}]})),
        )),
    );
    a.assert_problem("rejectedIdentifier");

    // An order, validated over http-01.
    let a = call(
        &acme,
        "POST",
        &new_order,
        Some(&kid_req(&new_order, Some(&order_payload))),
    );
    assert_eq!(a.status, 201, "{}", a.json());
    let order_url = a.headers.get("location").cloned().expect("order Location");
    let order = a.json();
    let finalize = order["finalize"].as_str().expect("finalize").to_string();
    // Finalizing before validation: orderNotReady.
    let cert_key = TestKey::es256();
    let csr = csr_with(&cert_key, &["app.internal.test"]);
    let a = call(
        &acme,
        "POST",
        &finalize,
        Some(&kid_req(&finalize, Some(&json!({"csr": b64(&csr)})))),
    );
    a.assert_problem("orderNotReady");
    let authz_url = first_authz(&order);
    let authz = call(&acme, "POST", &authz_url, Some(&kid_req(&authz_url, None))).json();
    assert_eq!(authz["identifier"]["value"], json!("app.internal.test"));
    let types: Vec<&str> = authz["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    for t in ["http-01", "dns-01", "tls-alpn-01"] {
        assert!(types.contains(&t), "{types:?}");
    }
    let ch = challenge(&authz, "http-01");
    let token = ch["token"].as_str().expect("token");
    answers
        .lock()
        .expect("lock")
        .insert(token.to_string(), format!("{token}.{}", key.thumbprint()));
    let ch_url = ch["url"].as_str().expect("url").to_string();
    let a = call(
        &acme,
        "POST",
        &ch_url,
        Some(&kid_req(&ch_url, Some(&json!({})))),
    );
    assert_eq!(a.status, 200, "{}", a.json());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = call(&acme, "POST", &order_url, Some(&kid_req(&order_url, None))).json();
        if o["status"] == "ready" {
            break;
        }
        assert!(o["status"] == "pending", "order: {o}");
        assert!(Instant::now() < deadline, "order never became ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A CSR with a name outside the order: badCSR (and the order stays ready).
    let outside = csr_der(&["app.internal.test", "other.internal.test"]);
    let a = call(
        &acme,
        "POST",
        &finalize,
        Some(&kid_req(&finalize, Some(&json!({"csr": b64(&outside)})))),
    );
    a.assert_problem("badCSR");
    // The right CSR: a certificate, downloadable as a PEM chain.
    let a = call(
        &acme,
        "POST",
        &finalize,
        Some(&kid_req(&finalize, Some(&json!({"csr": b64(&csr)})))),
    );
    assert_eq!(a.status, 200, "{}", a.json());
    assert_eq!(a.json()["status"], json!("valid"));
    let cert_url = a.json()["certificate"]
        .as_str()
        .expect("certificate url")
        .to_string();
    let c = call(&acme, "POST", &cert_url, Some(&kid_req(&cert_url, None)));
    assert_eq!(c.status, 200);
    assert_eq!(
        c.headers.get("content-type").map(String::as_str),
        Some("application/pem-certificate-chain")
    );
    let leaf = acme.verify_chain(&String::from_utf8_lossy(&c.body), "hand-leaf");

    // Another account (Ed25519, EdDSA) may not read it, nor revoke it.
    let (kid2, hmac2) = acme.eab();
    let a = call(
        &acme,
        "POST",
        &new_account,
        Some(&eab_account_jws(&acme, &other, &kid2, &hmac2)),
    );
    assert_eq!(a.status, 201, "EdDSA account: {}", a.json());
    let other_url = a.headers.get("location").cloned().expect("Location");
    let a = call(
        &acme,
        "POST",
        &cert_url,
        Some(&kid_jws(&acme, &other, &other_url, &cert_url, None)),
    );
    a.assert_problem("unauthorized");
    let der = pem_blocks(&String::from_utf8_lossy(&c.body))
        .first()
        .map(|p| pem::parse(p).expect("pem").contents().to_vec())
        .expect("leaf");
    let revoke = acme.url("revoke-cert");
    let a = call(
        &acme,
        "POST",
        &revoke,
        Some(&kid_jws(
            &acme,
            &other,
            &other_url,
            &revoke,
            Some(&json!({"certificate": b64(&der)})),
        )),
    );
    a.assert_problem("unauthorized");
    // A bad reason code.
    let a = call(
        &acme,
        "POST",
        &revoke,
        Some(&kid_req(
            &revoke,
            Some(&json!({"certificate": b64(&der), "reason": 7})),
        )),
    );
    a.assert_problem("badRevocationReason");
    // Revocation signed with the certificate's own key (jwk), no account needed.
    let a = call(
        &acme,
        "POST",
        &revoke,
        Some(&cert_key.jws(
            &json!({"nonce": fresh_nonce(&acme), "url": revoke, "jwk": cert_key.jwk()}),
            Some(&json!({"certificate": b64(&der), "reason": 1})),
        )),
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let _ = a.nonce();
    let out = acme.ocsp(&leaf);
    assert!(
        out.contains("revoked") && out.contains("keyCompromise"),
        "{out}"
    );
    let a = call(
        &acme,
        "POST",
        &revoke,
        Some(&kid_req(&revoke, Some(&json!({"certificate": b64(&der)})))),
    );
    a.assert_problem("alreadyRevoked");
    // A non-JOSE content type is refused (415, malformed).
    let mut cc = Command::new(tool("curl"));
    cc.args([
        "-s",
        "--cacert",
        &acme.root,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        "{}",
    ])
    .arg(&new_order);
    assert_eq!(ok(&mut cc).trim(), "415");
}

#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A tls-alpn-01 responder (RFC 8737): a self-signed certificate for `name` with the critical
/// acmeIdentifier extension, served only with ALPN acme-tls/1.
fn tls_alpn01_responder(port: u16, name: &str, key_authz: &str) {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authz.as_bytes());
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
    let cert = params.self_signed(&key).expect("self-signed");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // rustls refuses to load a certificate with an unknown critical extension, so the
    // certificate is handed over as is by a resolver.
    let signing = provider
        .key_provider
        .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(
            key.serialize_der().into(),
        ))
        .expect("signing key");
    let certified = Arc::new(rustls::sign::CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    ));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(certified)));
    cfg.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let cfg = Arc::new(cfg);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind tls-alpn-01 port");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let Ok(mut conn) = rustls::ServerConnection::new(cfg.clone()) else {
                continue;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            while conn.is_handshaking() {
                if conn.complete_io(&mut stream).is_err() {
                    break;
                }
            }
            let _ = conn.complete_io(&mut stream);
        }
    });
}

/// A DNS server on 127.0.0.1:port (UDP) answering TXT queries from a name → values map.
fn dns_responder(port: u16) -> Arc<Mutex<HashMap<String, Vec<String>>>> {
    let map: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let sock = std::net::UdpSocket::bind(("127.0.0.1", port)).expect("bind dns port");
    let m = map.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            if n < 12 {
                continue;
            }
            // The question: labels from byte 12, then type and class.
            let mut i = 12;
            let mut labels = Vec::new();
            while i < n && q[i] != 0 {
                let l = q[i] as usize;
                labels.push(String::from_utf8_lossy(&q[i + 1..(i + 1 + l).min(n)]).to_string());
                i += 1 + l;
            }
            let qend = (i + 5).min(n);
            let name = labels.join(".").to_ascii_lowercase();
            let values = m
                .lock()
                .expect("lock")
                .get(&name)
                .cloned()
                .unwrap_or_default();
            let mut r = Vec::new();
            r.extend_from_slice(&q[0..2]);
            r.extend_from_slice(&[0x81, 0x80, 0, 1]);
            r.extend_from_slice(&(values.len() as u16).to_be_bytes());
            r.extend_from_slice(&[0, 0, 0, 0]);
            r.extend_from_slice(&q[12..qend]);
            for v in &values {
                r.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
                r.extend_from_slice(&((v.len() + 1) as u16).to_be_bytes());
                r.push(v.len() as u8);
                r.extend_from_slice(v.as_bytes());
            }
            let _ = sock.send_to(&r, from);
        }
    });
    map
}

#[test]
fn tls_alpn_01_and_dns_01_validate_and_failures_invalidate() {
    let acme = Acme::start();
    let txt = dns_responder(acme.dns_port);
    let key = TestKey::es256();
    let new_account = acme.url("new-account");
    let (kid, hmac) = acme.eab();
    let a = call(
        &acme,
        "POST",
        &new_account,
        Some(&eab_account_jws(&acme, &key, &kid, &hmac)),
    );
    assert_eq!(a.status, 201, "{}", a.json());
    let account_url = a.headers.get("location").cloned().expect("Location");
    let req = |url: &str, payload: Option<&Value>| kid_jws(&acme, &key, &account_url, url, payload);
    let post =
        |url: &str, payload: Option<&Value>| call(&acme, "POST", url, Some(&req(url, payload)));
    let challenge_of =
        |authz_url: &str, kind: &str| -> Value { challenge(&post(authz_url, None).json(), kind) };
    let wait_authz = |authz_url: &str| -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let a = post(authz_url, None).json();
            if a["status"] != "pending" {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "authorization stays pending: {a}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    let new_order = acme.url("new-order");
    let o = post(
        &new_order,
        Some(&json!({"identifiers": [
            {"type": "dns", "value": "alpn.internal.test"},
            {"type": "dns", "value": "txt.internal.test"},
        ]})),
    );
    assert_eq!(o.status, 201, "{}", o.json());
    let order_url = o.headers.get("location").cloned().expect("Location");
    let order = o.json();
    let authzs: Vec<String> = order["authorizations"]
        .as_array()
        .expect("authorizations")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for authz_url in &authzs {
        let value = post(authz_url, None).json()["identifier"]["value"]
            .as_str()
            .expect("value")
            .to_string();
        if value == "alpn.internal.test" {
            let ch = challenge_of(authz_url, "tls-alpn-01");
            let token = ch["token"].as_str().expect("token");
            tls_alpn01_responder(
                acme.tls_alpn01_port,
                &value,
                &format!("{token}.{}", key.thumbprint()),
            );
            let r = post(ch["url"].as_str().expect("url"), Some(&json!({})));
            assert_eq!(r.status, 200, "{}", r.json());
        } else {
            let ch = challenge_of(authz_url, "dns-01");
            let token = ch["token"].as_str().expect("token");
            let ka = format!("{token}.{}", key.thumbprint());
            let digest =
                b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ka.as_bytes()).as_ref());
            txt.lock().expect("lock").insert(
                format!("_acme-challenge.{value}"),
                vec!["unrelated".into(), digest],
            );
            let r = post(ch["url"].as_str().expect("url"), Some(&json!({})));
            assert_eq!(r.status, 200, "{}", r.json());
        }
        let a = wait_authz(authz_url);
        assert_eq!(a["status"], json!("valid"), "{value}: {a}");
        assert_eq!(a["challenges"].as_array().map(Vec::len), Some(1), "{a}");
    }
    let o = post(&order_url, None).json();
    assert_eq!(o["status"], json!("ready"), "{o}");
    let csr = csr_der(&["txt.internal.test", "alpn.internal.test"]);
    let fin = order["finalize"].as_str().expect("finalize");
    let r = post(fin, Some(&json!({"csr": b64(&csr)})));
    assert_eq!(r.json()["status"], json!("valid"), "{}", r.json());

    // A wrong dns-01 answer makes the challenge, the authorization and the order invalid.
    let o = post(
        &new_order,
        Some(&json!({"identifiers": [{"type": "dns", "value": "wrong.internal.test"}]})),
    );
    let order_url = o.headers.get("location").cloned().expect("Location");
    let authz_url = first_authz(&o.json());
    txt.lock().expect("lock").insert(
        "_acme-challenge.wrong.internal.test".into(),
        vec!["not-the-digest".into()],
    );
    let ch = challenge_of(&authz_url, "dns-01");
    post(ch["url"].as_str().expect("url"), Some(&json!({})));
    let a = wait_authz(&authz_url);
    assert_eq!(a["status"], json!("invalid"), "{a}");
    let ch = challenge_of(&authz_url, "dns-01");
    assert_eq!(ch["status"], json!("invalid"));
    assert_eq!(
        ch["error"]["type"],
        json!("urn:ietf:params:acme:error:incorrectResponse"),
        "{ch}"
    );
    let o = post(&order_url, None).json();
    assert_eq!(o["status"], json!("invalid"), "{o}");

    // http-01 with nobody listening: connection error.
    let o = post(
        &new_order,
        Some(&json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})),
    );
    let authz_url = first_authz(&o.json());
    let ch = challenge_of(&authz_url, "http-01");
    post(ch["url"].as_str().expect("url"), Some(&json!({})));
    let a = wait_authz(&authz_url);
    assert_eq!(a["status"], json!("invalid"), "{a}");
    let ch = challenge_of(&authz_url, "http-01");
    assert_eq!(
        ch["error"]["type"],
        json!("urn:ietf:params:acme:error:connection"),
        "{ch}"
    );

    // Deactivating the account: its requests are refused from then on.
    let r = post(&account_url, Some(&json!({"status": "deactivated"})));
    assert_eq!(r.json()["status"], json!("deactivated"), "{}", r.json());
    let r = post(
        &new_order,
        Some(&json!({"identifiers": [{"type": "dns", "value": "x.internal.test"}]})),
    );
    r.assert_problem("unauthorized");
}

#[test]
fn jwk_thumbprint_matches_rfc7638_and_odd_keys_are_refused() {
    use hallmark::acme::jws::Jwk;
    use hallmark::acme::ProblemType;
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    let k = Jwk::from_json(&jwk).expect("jwk");
    assert_eq!(
        k.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    assert_eq!(k.alg(), "RS256");
    for bad in [
        json!({"kty": "oct", "k": "AAAA"}),
        json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
        json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        json!({"kty": "OKP", "crv": "X25519", "x": b64(&[0u8; 32])}),
    ] {
        let e = Jwk::from_json(&bad).expect_err("refused");
        assert_eq!(e.kind, ProblemType::BadPublicKey, "{bad}");
    }
}

#[test]
fn nonces_orders_and_eab_keys_expire_or_revoke() {
    let acme = Acme::start_with(false, true);
    let key = TestKey::es384();
    let new_account = acme.url("new-account");
    // A revoked EAB key binds nothing.
    let (kid, hmac) = acme.eab();
    acme.ca.hm(&["acme", "eab", "revoke", &kid]);
    let list = acme.ca.hm(&["acme", "eab", "list"]);
    assert!(list.contains("revoked"), "{list}");
    let signup = |kid: &str, hmac: &str| eab_account_jws(&acme, &key, kid, hmac);
    call(&acme, "POST", &new_account, Some(&signup(&kid, &hmac))).assert_problem("unauthorized");
    // A binding made with another HMAC key does not verify.
    let (kid, hmac) = acme.eab();
    let (_, other_hmac) = acme.eab();
    call(
        &acme,
        "POST",
        &new_account,
        Some(&signup(&kid, &other_hmac)),
    )
    .assert_problem("unauthorized");
    let a = call(&acme, "POST", &new_account, Some(&signup(&kid, &hmac)));
    assert_eq!(a.status, 201, "{}", a.json());
    let account_url = a.headers.get("location").cloned().expect("Location");

    // A nonce older than nonce_lifetime_secs is refused.
    let stale = fresh_nonce(&acme);
    let new_order = acme.url("new-order");
    let order = json!({"identifiers": [{"type": "dns", "value": "late.internal.test"}]});
    std::thread::sleep(Duration::from_millis(2500));
    let a = call(
        &acme,
        "POST",
        &new_order,
        Some(&key.jws(
            &json!({"nonce": stale, "url": new_order, "kid": account_url}),
            Some(&order),
        )),
    );
    a.assert_problem("badNonce");

    // An order (and its authorization) past order_lifetime_secs is invalid.
    let req = |url: &str, payload: Option<&Value>| kid_jws(&acme, &key, &account_url, url, payload);
    let a = call(
        &acme,
        "POST",
        &new_order,
        Some(&req(&new_order, Some(&order))),
    );
    assert_eq!(a.status, 201, "{}", a.json());
    let order_url = a.headers.get("location").cloned().expect("Location");
    let authz_url = first_authz(&a.json());
    std::thread::sleep(Duration::from_millis(3500));
    let o = call(&acme, "POST", &order_url, Some(&req(&order_url, None))).json();
    assert_eq!(o["status"], json!("invalid"), "{o}");
    let z = call(&acme, "POST", &authz_url, Some(&req(&authz_url, None))).json();
    assert_eq!(z["status"], json!("expired"), "{z}");
}

#[test]
fn the_api_route_list_names_every_acme_route() {
    // The ACME router serves the ACME entries of the one routing table, and only those.
    let acme: Vec<_> = hallmark::http::acme::routes().collect();
    assert_eq!(acme.len(), 13, "{acme:?}");
    for r in &acme {
        assert!(r.1.starts_with("/acme/{profile}/"), "{r:?}");
        assert!(
            hallmark::http::api::routes().contains(r),
            "{r:?} is served but missing from api::routes() (and so from the OpenAPI check)"
        );
    }
    let in_api = hallmark::http::api::routes()
        .into_iter()
        .filter(|(_, p)| p.starts_with("/acme/"))
        .count();
    assert_eq!(in_api, acme.len());
}
