//! A local OIDC issuer on 127.0.0.1, speaking what GitHub Actions' and GitLab's issuers speak:
//! HTTPS (its own test CA), `/.well-known/openid-configuration`, a JWKS with Cache-Control,
//! RS256 tokens with GitHub- and GitLab-shaped claims, and GitHub's token request endpoint
//! (`ACTIONS_ID_TOKEN_REQUEST_URL`, answering `{"value": JWT}` to the request bearer token).
//! Keys rotate on demand, the issuer can go down, and it counts JWKS fetches. It signs with
//! aws-lc-rs directly, not with the verifier's JWT library.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use serde_json::{json, Value};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct Key {
    kid: String,
    pair: aws_lc_rs::rsa::KeyPair,
}

impl Key {
    fn new(kid: &str) -> Key {
        Key {
            kid: kid.to_string(),
            pair: aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .expect("RSA key"),
        }
    }

    fn jwk(&self) -> Value {
        let c = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(self.pair.public_key());
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": b64(&c.n), "e": b64(&c.e)})
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut sig,
            )
            .expect("sign");
        sig
    }
}

struct State {
    url: String,
    keys: Vec<Key>,
    /// The key new tokens are signed with.
    current: usize,
    /// Keys the JWKS does not list (made to sign tokens the issuer never published).
    hidden: Vec<Key>,
    jwks_fetches: u64,
    down: bool,
    max_age: u64,
    request_token: String,
    /// The claims GitHub's token endpoint puts in the job's token (besides aud and times).
    job: Value,
}

/// A running issuer; stops with the test process.
pub struct OidcIssuer {
    pub url: String,
    /// The PEM of the CA its TLS certificate chains to.
    pub ca_file: PathBuf,
    state: Arc<Mutex<State>>,
}

impl OidcIssuer {
    /// Starts an issuer whose first key is `{name}-1`; its CA is written to DIR/NAME-ca.pem.
    pub fn start(dir: &Path, name: &str) -> OidcIssuer {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test OIDC CA"));
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("leaf");
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("leaf cert");
        let ca_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, ca_cert.pem()).expect("write CA");

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("https://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State {
            url: url.clone(),
            keys: vec![Key::new(&format!("{name}-1"))],
            current: 0,
            hidden: vec![],
            jwks_fetches: 0,
            down: false,
            max_age: 300,
            request_token: format!("{name}-request-token"),
            job: json!({}),
        }));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("TLS cert");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    let st = st.clone();
                    tokio::spawn(async move {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let svc = hyper::service::service_fn(move |req| {
                            let st = st.clone();
                            async move { Ok::<_, std::convert::Infallible>(answer(&st, req)) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        OidcIssuer {
            url,
            ca_file,
            state,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("state"))
    }

    /// A token signed with the current key, with `header` fields added to {alg, typ, kid}.
    pub fn mint(&self, claims: &Value) -> String {
        self.with(|s| {
            let k = &s.keys[s.current];
            sign_with(
                k,
                &json!({"alg": "RS256", "typ": "JWT", "kid": k.kid}),
                claims,
            )
        })
    }

    /// A token signed with a key this issuer never publishes, under key id `kid`.
    pub fn mint_unpublished(&self, kid: &str, claims: &Value) -> String {
        self.with(|s| {
            if !s.hidden.iter().any(|k| k.kid == kid) {
                s.hidden.push(Key::new(kid));
            }
            let k = s.hidden.iter().find(|k| k.kid == kid).expect("hidden key");
            sign_with(
                k,
                &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
                claims,
            )
        })
    }

    /// A token whose header is exactly `header`, HMAC-SHA256-signed with `secret`.
    pub fn mint_hmac(&self, header: &Value, claims: &Value, secret: &[u8]) -> String {
        let msg = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        let tag = aws_lc_rs::hmac::sign(&key, msg.as_bytes());
        format!("{msg}.{}", b64(tag.as_ref()))
    }

    /// The current key's kid and its public key (SubjectPublicKeyInfo DER, and as PEM).
    pub fn public_key(&self) -> (String, Vec<u8>, String) {
        self.with(|s| {
            let k = &s.keys[s.current];
            let der = k
                .pair
                .public_key()
                .as_der()
                .expect("SPKI")
                .as_ref()
                .to_vec();
            let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", der.clone()));
            (k.kid.clone(), der, pem)
        })
    }

    /// Adds a new key to the JWKS and signs with it from now on; its kid.
    pub fn rotate(&self) -> String {
        self.with(|s| {
            let kid = format!(
                "{}-{}",
                s.keys[0].kid.trim_end_matches("-1"),
                s.keys.len() + 1
            );
            s.keys.push(Key::new(&kid));
            s.current = s.keys.len() - 1;
            kid
        })
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.with(|s| s.jwks_fetches)
    }

    /// While down, every request is answered 503.
    pub fn set_down(&self, down: bool) {
        self.with(|s| s.down = down)
    }

    /// GitHub's `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN` for a job
    /// whose token carries `job` claims.
    pub fn github_job_env(&self, job: &Value) -> Vec<(String, String)> {
        self.with(|s| {
            s.job = job.clone();
            vec![
                (
                    "ACTIONS_ID_TOKEN_REQUEST_URL".into(),
                    format!("{}/_apis/token?api-version=2.0", s.url),
                ),
                (
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(),
                    s.request_token.clone(),
                ),
            ]
        })
    }

    /// Registered claims for now: iss, aud, iat, nbf, exp (5 minutes), jti.
    pub fn times(&self, aud: &str) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        json!({"iss": self.url, "aud": aud, "iat": now, "nbf": now, "exp": now + 300,
               "jti": format!("{:x}", rand_u64())})
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).expect("rand");
    u64::from_le_bytes(b)
}

/// `base` with `extra`'s fields set over it.
pub fn merged(base: &Value, extra: &Value) -> Value {
    let mut v = base.clone();
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            m.insert(k.clone(), x.clone());
        }
    }
    v
}

/// GitHub Actions' claims for a workflow run of REPOSITORY at REF (a tag build when REF is
/// refs/tags/...), in ENVIRONMENT.
pub fn github_job(repository: &str, git_ref: &str, environment: &str) -> Value {
    let owner = repository.split('/').next().unwrap_or("");
    let tag = git_ref.starts_with("refs/tags/");
    json!({
        "sub": format!("repo:{repository}:environment:{environment}"),
        "repository": repository,
        "repository_owner": owner,
        "repository_id": "74",
        "repository_owner_id": "65",
        "repository_visibility": "private",
        "ref": git_ref,
        "ref_type": if tag { "tag" } else { "branch" },
        "ref_protected": "true",
        "sha": "9f2c6e3a1d7b4c5e8f0a9b1c2d3e4f5a6b7c8d9e",
        "environment": environment,
        "workflow": "release",
        "workflow_ref": format!("{repository}/.github/workflows/release.yml@{git_ref}"),
        "job_workflow_ref": format!("{repository}/.github/workflows/release.yml@{git_ref}"),
        "event_name": "push",
        "run_id": "8123456789",
        "run_number": "42",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "583231",
        "runner_environment": "github-hosted",
    })
}

/// GitLab CI's claims for a pipeline job of PROJECT at REF (a branch).
pub fn gitlab_job(project: &str, git_ref: &str) -> Value {
    let ns = project.split('/').next().unwrap_or("");
    json!({
        "sub": format!("project_path:{project}:ref_type:branch:ref:{git_ref}"),
        "namespace_id": "3",
        "namespace_path": ns,
        "project_id": "22",
        "project_path": project,
        "user_id": "7",
        "user_login": "alice",
        "pipeline_id": "1001",
        "pipeline_source": "push",
        "job_id": "5021",
        "ref": git_ref,
        "ref_type": "branch",
        "ref_path": format!("refs/heads/{git_ref}"),
        "ref_protected": "true",
        "sha": "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e",
        "runner_environment": "self-hosted",
    })
}

fn sign_with(k: &Key, header: &Value, claims: &Value) -> String {
    let msg = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    format!("{msg}.{}", b64(&k.sign(msg.as_bytes())))
}

type Reply = hyper::Response<http_body_util::Full<bytes::Bytes>>;

fn reply(status: u16, headers: &[(&str, String)], body: Value) -> Reply {
    let mut b = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(http_body_util::Full::new(bytes::Bytes::from(
        body.to_string(),
    )))
    .expect("response")
}

fn answer(st: &Arc<Mutex<State>>, req: hyper::Request<hyper::body::Incoming>) -> Reply {
    let mut s = st.lock().expect("state");
    if s.down {
        return reply(503, &[], json!({"error": "down"}));
    }
    match req.uri().path() {
        "/.well-known/openid-configuration" => reply(
            200,
            &[],
            json!({
                "issuer": s.url,
                "jwks_uri": format!("{}/.well-known/jwks", s.url),
                "subject_types_supported": ["public", "pairwise"],
                "response_types_supported": ["id_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "sha"],
                "scopes_supported": ["openid"],
            }),
        ),
        "/.well-known/jwks" => {
            s.jwks_fetches += 1;
            let keys: Vec<Value> = s.keys.iter().map(Key::jwk).collect();
            reply(
                200,
                &[("cache-control", format!("public, max-age={}", s.max_age))],
                json!({ "keys": keys }),
            )
        }
        "/_apis/token" => {
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if auth != format!("Bearer {}", s.request_token) {
                return reply(401, &[], json!({"message": "bad request token"}));
            }
            let aud = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("audience="))
                .unwrap_or("https://github.com/acme")
                .to_string();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs() as i64;
            let claims = merged(
                &s.job,
                &json!({"iss": s.url, "aud": aud, "iat": now, "nbf": now, "exp": now + 300,
                        "jti": format!("{:x}", rand_u64())}),
            );
            let k = &s.keys[s.current];
            let jwt = sign_with(
                k,
                &json!({"alg": "RS256", "typ": "JWT", "kid": k.kid, "x5t": "test"}),
                &claims,
            );
            reply(200, &[], json!({"count": jwt.len(), "value": jwt}))
        }
        _ => reply(404, &[], json!({"error": "not found"})),
    }
}
