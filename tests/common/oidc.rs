//! A local OIDC issuer on 127.0.0.1, speaking what GitHub Actions' and GitLab's issuers speak:
//! HTTPS (its own test CA), `/.well-known/openid-configuration`, a JWKS with Cache-Control,
//! RS256 tokens with GitHub- and GitLab-shaped claims, and GitHub's token request endpoint
//! (`ACTIONS_ID_TOKEN_REQUEST_URL`, answering `{"value": JWT}` to the request bearer token).
//! Keys rotate on demand, the issuer can go down, and it counts JWKS fetches. It signs with
//! aws-lc-rs directly, not with the verifier's JWT library.
//!
//! For people (the console's sign-in) it is also an OpenID provider's authorization server:
//! `/authorize` (the authorization code flow; it signs in the person `sign_in_as` set, without
//! a login form), `/userinfo` (the person's claims for the access token; `release_in_userinfo`
//! keeps chosen claims out of the ID token) and `/token` (client_secret_basic, PKCE S256
//! checked, codes used once),
//! answering an ID token with the person's claims, the client's audience and the nonce.

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
    /// The person `/authorize` signs in (their claims), and the client it knows.
    person: Value,
    client: Option<(String, String)>,
    /// Codes given out and not yet redeemed.
    codes: std::collections::HashMap<String, Grant>,
    /// Claims of the person released only by `/userinfo`, not in the ID token (OIDC Core
    /// §5.4 allows either).
    userinfo_only: Vec<String>,
    /// Access tokens given out: the person each stands for.
    access: std::collections::HashMap<String, Value>,
}

/// What an authorization code stands for.
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: String,
    person: Value,
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
            person: json!({}),
            client: None,
            codes: std::collections::HashMap::new(),
            userinfo_only: Vec::new(),
            access: std::collections::HashMap::new(),
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
                        let svc = hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                let st = st.clone();
                                async move {
                                    use http_body_util::BodyExt;
                                    let (parts, body) = req.into_parts();
                                    let body = body
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    Ok::<_, std::convert::Infallible>(answer(&st, &parts, &body))
                                }
                            },
                        );
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

    /// The OAuth client `/token` accepts (client_secret_basic).
    pub fn register_client(&self, client_id: &str, secret: &str) {
        self.with(|s| s.client = Some((client_id.to_string(), secret.to_string())))
    }

    /// The person `/authorize` signs in from now on: their ID token claims (sub, email, ...).
    pub fn sign_in_as(&self, claims: &Value) {
        self.with(|s| s.person = claims.clone())
    }

    /// From now on CLAIMS of the person come only from `/userinfo`, not in the ID token.
    pub fn release_in_userinfo(&self, claims: &[&str]) {
        self.with(|s| s.userinfo_only = claims.iter().map(|c| c.to_string()).collect())
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

/// `a=b&c=d` with %XX and +, as a map.
fn form_pairs(q: &str) -> std::collections::HashMap<String, String> {
    fn dec(s: &str) -> String {
        let b = s.replace('+', " ");
        let b = b.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&b[i + 1..i + 3]), 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

/// The authorization endpoint: checks the request as a provider would and, the person being
/// signed in already, redirects back with a code (or an error when no client is registered).
fn authorize(s: &mut State, query: &str) -> Reply {
    let q = form_pairs(query);
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let redirect = get("redirect_uri");
    let Some((client_id, _)) = s.client.clone() else {
        return reply(400, &[], json!({"error": "unauthorized_client"}));
    };
    if get("client_id") != client_id
        || get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").len() != 43
        || !get("scope").split(' ').any(|x| x == "openid")
        || get("state").is_empty()
        || get("nonce").is_empty()
    {
        return reply(
            400,
            &[],
            json!({"error": "invalid_request", "query": query}),
        );
    }
    let code = format!("{:x}{:x}", rand_u64(), rand_u64());
    s.codes.insert(
        code.clone(),
        Grant {
            client_id,
            redirect_uri: redirect.clone(),
            challenge: get("code_challenge"),
            nonce: get("nonce"),
            person: s.person.clone(),
        },
    );
    let to = format!("{redirect}?code={code}&state={}", get("state"));
    reply(302, &[("location", to)], json!({}))
}

/// The token endpoint: client_secret_basic, the code once, the same redirect_uri, and the
/// PKCE verifier whose S256 is the code's challenge; then an ID token.
fn token_endpoint(s: &mut State, parts: &hyper::http::request::Parts, body: &[u8]) -> Reply {
    let f = form_pairs(&String::from_utf8_lossy(body));
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let Some((client_id, secret)) = s.client.clone() else {
        return reply(401, &[], json!({"error": "invalid_client"}));
    };
    // client_secret_basic (RFC 6749 §2.3.1): id and secret form-encoded, then joined by ':'.
    let presented = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .and_then(|b| {
            b.split_once(':')
                .map(|(i, p)| form_pairs(&format!("i={i}&p={p}")))
        });
    let ok =
        presented.is_some_and(|f| f.get("i") == Some(&client_id) && f.get("p") == Some(&secret));
    if !ok {
        return reply(401, &[], json!({"error": "invalid_client"}));
    }
    if get("grant_type") != "authorization_code" {
        return reply(400, &[], json!({"error": "unsupported_grant_type"}));
    }
    let Some(grant) = s.codes.remove(&get("code")) else {
        return reply(400, &[], json!({"error": "invalid_grant"}));
    };
    let challenge = b64(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        get("code_verifier").as_bytes(),
    )
    .as_ref());
    if grant.redirect_uri != get("redirect_uri")
        || challenge != grant.challenge
        || grant.client_id != client_id
    {
        return reply(
            400,
            &[],
            json!({"error": "invalid_grant", "why": "redirect_uri or PKCE verifier"}),
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut person = grant.person.clone();
    if let Some(p) = person.as_object_mut() {
        p.retain(|k, _| !s.userinfo_only.contains(k));
    }
    let claims = merged(
        &person,
        &json!({"iss": s.url, "aud": grant.client_id, "iat": now, "exp": now + 300, "nonce": grant.nonce}),
    );
    let k = &s.keys[s.current];
    let id_token = sign_with(
        k,
        &json!({"alg": "RS256", "typ": "JWT", "kid": k.kid}),
        &claims,
    );
    let access_token = format!("{:x}{:x}", rand_u64(), rand_u64());
    s.access.insert(access_token.clone(), grant.person);
    reply(
        200,
        &[],
        json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}),
    )
}

/// The UserInfo endpoint (OIDC Core §5.3): the person's claims for a Bearer access token.
fn userinfo(s: &State, parts: &hyper::http::request::Parts) -> Reply {
    let token = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match s.access.get(token) {
        Some(person) => reply(200, &[], person.clone()),
        None => reply(
            401,
            &[("www-authenticate", "Bearer error=\"invalid_token\"".into())],
            json!({"error": "invalid_token"}),
        ),
    }
}

fn answer(st: &Arc<Mutex<State>>, parts: &hyper::http::request::Parts, body: &[u8]) -> Reply {
    let mut s = st.lock().expect("state");
    if s.down {
        return reply(503, &[], json!({"error": "down"}));
    }
    match parts.uri.path() {
        "/authorize" => authorize(&mut s, parts.uri.query().unwrap_or("")),
        "/token" if parts.method == hyper::Method::POST => token_endpoint(&mut s, parts, body),
        "/userinfo" => userinfo(&s, parts),
        "/.well-known/openid-configuration" => reply(
            200,
            &[],
            json!({
                "issuer": s.url,
                "authorization_endpoint": format!("{}/authorize", s.url),
                "token_endpoint": format!("{}/token", s.url),
                "userinfo_endpoint": format!("{}/userinfo", s.url),
                "code_challenge_methods_supported": ["S256"],
                "jwks_uri": format!("{}/.well-known/jwks", s.url),
                "subject_types_supported": ["public", "pairwise"],
                "response_types_supported": ["code", "id_token"],
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
            let auth = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if auth != format!("Bearer {}", s.request_token) {
                return reply(401, &[], json!({"message": "bad request token"}));
            }
            let aud = parts
                .uri
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
