//! People sign in to the web console through an OpenID Connect provider: the authorization code
//! flow with PKCE (S256), `state` and `nonce`. [`PeopleLogin::begin`] makes the provider's
//! authorization URL and remembers (in memory, for ten minutes, never on disk) the flow's code
//! verifier and nonce under its state; [`PeopleLogin::finish`] redeems the code at the token
//! endpoint, verifies the ID token (issuer, signature by the provider's published keys,
//! audience = our client id, times, nonce) and returns the person it names. Which token's rights
//! that person gets is the console's `[[console.person]]` table, not the provider's say.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};
use sha2::Digest;

use super::jwks::{IssuerKeys, Lookup, Source};
use super::token;
use crate::config::{Config, ConsoleOidcConfig};
use crate::outbound::{self, form_encode as enc, Tls};

/// How long a started sign-in may take at the provider.
const FLOW_LIFETIME: Duration = Duration::from_secs(600);
/// The most sign-ins in flight (a flood of starts forgets the oldest).
const MAX_FLOWS: usize = 10_000;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_DOCUMENT: usize = 256 * 1024;

/// Why a sign-in through the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("this sign-in is unknown or took longer than 10 minutes; start again")]
    UnknownState,
    #[error("the identity provider refused the sign-in: {0}")]
    Provider(String),
    #[error("the identity provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider's ID token is not acceptable: {0}")]
    BadIdToken(String),
    #[error(
        "neither the ID token nor the provider's UserInfo answer names the claim '{0}' \
         ([console.oidc] claim says which claim names a person; the provider may need the scope \
         that releases it)"
    )]
    NoClaim(String),
    #[error("the email {0} is not verified by the identity provider (email_verified is not true)")]
    UnverifiedEmail(String),
}

impl From<PeopleError> for crate::error::Error {
    fn from(e: PeopleError) -> Self {
        match e {
            PeopleError::Unreachable(why) => {
                tracing::warn!(error = %why, "the console's identity provider cannot be reached");
                crate::error::Refusal::Unavailable(
                    "the identity provider cannot be reached now; retry later or sign in with a token".into(),
                )
                .into()
            }
            other => crate::policy::auth::AuthError::Unauthorized(other.to_string()).into(),
        }
    }
}

/// A sign-in in flight, by its state.
struct Flow {
    verifier: String,
    nonce: String,
    started: Instant,
}

/// The provider's endpoints, from its discovery document.
#[derive(Clone)]
struct Endpoints {
    authorization: String,
    token: String,
    /// OIDC Core §5.3: where a provider may release claims instead of in the ID token.
    userinfo: Option<String>,
}

/// The console's identity provider.
pub struct PeopleLogin {
    cfg: ConsoleOidcConfig,
    clock: crate::clock::SharedClock,
    client_secret: Option<String>,
    tls: Tls,
    keys: IssuerKeys,
    endpoints: tokio::sync::Mutex<Option<Endpoints>>,
    flows: Mutex<HashMap<String, Flow>>,
}

fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut b[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl PeopleLogin {
    /// The provider `config` names in `[console.oidc]`; `None` without one. Its client secret
    /// is read from the environment now (a missing variable stops the server).
    pub fn new(
        config: &Config,
        clock: crate::clock::SharedClock,
    ) -> Result<Option<PeopleLogin>, String> {
        let Some(cfg) = &config.console.oidc else {
            return Ok(None);
        };
        let client_secret = match &cfg.client_secret_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                format!(
                    "[console.oidc] client_secret_env: the environment variable {var} is not set"
                )
            })?),
            None => None,
        };
        let tls = Tls::new(cfg.ca_file.as_ref().map(|f| config.resolve(f)).as_deref())
            .map_err(|e| format!("[console.oidc]: {e}"))?;
        let keys = IssuerKeys::new(
            &cfg.name,
            Source::Discovery {
                issuer: cfg.issuer.clone(),
            },
            Some(tls.clone()),
            Duration::from_secs(60),
            Duration::from_secs(86_400),
        );
        Ok(Some(PeopleLogin {
            clock,
            cfg: cfg.clone(),
            client_secret,
            tls,
            keys,
            endpoints: tokio::sync::Mutex::new(None),
            flows: Mutex::new(HashMap::new()),
        }))
    }

    /// What the sign-in button says.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn endpoints(&self) -> Result<Endpoints, PeopleError> {
        let mut e = self.endpoints.lock().await;
        if let Some(found) = e.as_ref() {
            return Ok(found.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.trim_end_matches('/')
        );
        let r = outbound::get(&url, None, &self.tls, FETCH_TIMEOUT, MAX_DOCUMENT)
            .await
            .map_err(|e| PeopleError::Unreachable(e.to_string()))?;
        if r.status != 200 {
            return Err(PeopleError::Unreachable(format!(
                "{url} answered HTTP {}",
                r.status
            )));
        }
        let doc: Value = serde_json::from_slice(&r.body)
            .map_err(|e| PeopleError::Unreachable(format!("{url}: {e}")))?;
        if doc["issuer"].as_str() != Some(self.cfg.issuer.as_str()) {
            return Err(PeopleError::Unreachable(format!(
                "{url} names issuer {}, not {}",
                doc["issuer"], self.cfg.issuer
            )));
        }
        let https = |k: &str| {
            doc[k]
                .as_str()
                .filter(|u| u.starts_with("https://"))
                .map(str::to_string)
                .ok_or_else(|| PeopleError::Unreachable(format!("{url} has no https {k}")))
        };
        let found = Endpoints {
            authorization: https("authorization_endpoint")?,
            token: https("token_endpoint")?,
            userinfo: https("userinfo_endpoint").ok(),
        };
        *e = Some(found.clone());
        Ok(found)
    }

    /// Starts a sign-in: the provider's authorization URL to send the browser to, and the
    /// flow's state (the caller binds it to the browser with a cookie).
    pub async fn begin(&self) -> Result<(String, String), PeopleError> {
        let ep = self.endpoints().await?;
        let state = random(24);
        let verifier = random(32);
        let nonce = random(24);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let scope = if self.cfg.claim == "email" {
            "openid email"
        } else {
            "openid"
        };
        let url = format!(
            "{}{}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
            ep.authorization,
            if ep.authorization.contains('?') { '&' } else { '?' },
            enc(&self.cfg.client_id),
            enc(&self.cfg.redirect_url),
            enc(scope),
            state,
            nonce,
            challenge
        );
        if let Ok(mut f) = self.flows.lock() {
            f.retain(|_, v| v.started.elapsed() < FLOW_LIFETIME);
            if f.len() >= MAX_FLOWS {
                f.clear();
            }
            f.insert(
                state.clone(),
                Flow {
                    verifier,
                    nonce,
                    started: Instant::now(),
                },
            );
        }
        Ok((url, state))
    }

    /// Finishes the sign-in `state` with the provider's `code`: the person the verified ID
    /// token names. A state is used once.
    pub async fn finish(&self, state: &str, code: &str) -> Result<String, PeopleError> {
        let flow = self
            .flows
            .lock()
            .ok()
            .and_then(|mut f| f.remove(state))
            .filter(|f| f.started.elapsed() < FLOW_LIFETIME)
            .ok_or(PeopleError::UnknownState)?;
        let ep = self.endpoints().await?;
        let mut form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            enc(code),
            enc(&self.cfg.redirect_url),
            flow.verifier
        );
        let mut headers = vec![
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("accept".to_string(), "application/json".to_string()),
        ];
        match &self.client_secret {
            // client_secret_basic (RFC 6749 §2.3.1): both parts form-encoded first.
            Some(secret) => headers.push((
                "authorization".into(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        enc(&self.cfg.client_id),
                        enc(secret)
                    ))
                ),
            )),
            None => form.push_str(&format!("&client_id={}", enc(&self.cfg.client_id))),
        }
        let r = outbound::post(
            &ep.token,
            &headers,
            Bytes::from(form),
            &self.tls,
            FETCH_TIMEOUT,
            MAX_DOCUMENT,
        )
        .await
        .map_err(|e| PeopleError::Unreachable(e.to_string()))?;
        let doc: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        if r.status != 200 {
            return Err(PeopleError::Provider(format!(
                "the token endpoint answered HTTP {} ({})",
                r.status,
                doc["error"].as_str().unwrap_or("no error code")
            )));
        }
        let id_token = doc["id_token"]
            .as_str()
            .ok_or_else(|| PeopleError::Provider("the token answer has no id_token".into()))?;
        let claims = self.verify(id_token).await?;
        if claims.get("nonce").and_then(Value::as_str) != Some(flow.nonce.as_str()) {
            return Err(PeopleError::BadIdToken(
                "its nonce is not this sign-in's".into(),
            ));
        }
        // The claim from the ID token, else (OIDC Core §5.4: a provider may return the scope's
        // claims from UserInfo only) from the UserInfo endpoint.
        let named = |c: &Map<String, Value>| {
            c.get(&self.cfg.claim)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let (person, source) = match named(&claims) {
            Some(p) => (p, claims),
            None => {
                let info = self
                    .userinfo(&ep, doc["access_token"].as_str(), &claims)
                    .await?;
                match named(&info) {
                    Some(p) => (p, info),
                    None => return Err(PeopleError::NoClaim(self.cfg.claim.clone())),
                }
            }
        };
        // An email names a person only when the same answer says it is verified.
        if self.cfg.claim == "email"
            && source.get("email_verified").and_then(Value::as_bool) != Some(true)
        {
            return Err(PeopleError::UnverifiedEmail(person));
        }
        Ok(person)
    }

    /// The provider's UserInfo answer for `access_token` (OIDC Core §5.3), whose `sub` must be
    /// the ID token's (§5.3.2: otherwise the answer is not used).
    async fn userinfo(
        &self,
        ep: &Endpoints,
        access_token: Option<&str>,
        id_claims: &Map<String, Value>,
    ) -> Result<Map<String, Value>, PeopleError> {
        let (Some(url), Some(access_token)) = (&ep.userinfo, access_token) else {
            return Err(PeopleError::NoClaim(self.cfg.claim.clone()));
        };
        let r = outbound::get(
            url,
            Some(access_token),
            &self.tls,
            FETCH_TIMEOUT,
            MAX_DOCUMENT,
        )
        .await
        .map_err(|e| PeopleError::Unreachable(e.to_string()))?;
        if r.status != 200 {
            return Err(PeopleError::Provider(format!(
                "the UserInfo endpoint answered HTTP {}",
                r.status
            )));
        }
        let info: Map<String, Value> = serde_json::from_slice(&r.body).map_err(|_| {
            PeopleError::Provider(
                "the UserInfo answer is not a JSON object (a signed UserInfo JWT is not read)"
                    .into(),
            )
        })?;
        let sub = |c: &Map<String, Value>| c.get("sub").and_then(Value::as_str).map(str::to_string);
        if sub(&info).is_none() || sub(&info) != sub(id_claims) {
            return Err(PeopleError::BadIdToken(
                "the UserInfo answer is about another subject than the ID token".into(),
            ));
        }
        Ok(info)
    }

    async fn verify(&self, id_token: &str) -> Result<Map<String, Value>, PeopleError> {
        let bad = |e: super::OidcError| PeopleError::BadIdToken(e.to_string());
        let u = token::read(id_token).map_err(bad)?;
        if u.iss != self.cfg.issuer {
            return Err(PeopleError::BadIdToken(format!(
                "its issuer is {}, not {}",
                u.iss, self.cfg.issuer
            )));
        }
        let key = match self.keys.key(u.kid.as_deref()).await.map_err(bad)? {
            Lookup::Found(k) => k,
            Lookup::Unknown => {
                return Err(PeopleError::BadIdToken(
                    "it is signed with a key the provider does not publish".into(),
                ))
            }
        };
        if !key.algorithms.contains(&u.alg) {
            return Err(PeopleError::BadIdToken(format!(
                "its algorithm {:?} is not its key's",
                u.alg
            )));
        }
        let claims =
            token::verify_signature(id_token, &key.key, u.alg, &self.cfg.name).map_err(bad)?;
        let rules = token::ClaimRules {
            issuer: &self.cfg.name,
            audiences: std::slice::from_ref(&self.cfg.client_id),
            leeway: 60,
            max_age: 600,
        };
        token::check_claims(&claims, &rules, self.clock.now()).map_err(bad)?;
        Ok(claims)
    }
}
