//! Workload identity: a CI job's OIDC token (GitHub Actions, GitLab CI, Buildkite, a
//! Kubernetes service account: any issuer in `[[identity.oidc]]`) is a credential, so no
//! long-lived hallmark secret sits on a build server.
//!
//! [`Verifier::authenticate`] checks the token (`token`: shape, issuer, key, signature, claims;
//! `jwks`: the issuer's keys, cached) and lets the RA's rules (`policy::workload`) say which
//! publisher the job acts for and with what scopes. A verified token is remembered until it
//! expires, so a job that sends the same token a hundred times is verified once. Tokens are
//! never logged or stored: what is recorded is the identity a rule gave (issuer, subject, rule,
//! the run's claims).

pub mod jwks;
pub mod people;
pub mod token;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use sha2::Digest;

use crate::config::{Config, OidcIssuerConfig};
use crate::policy::auth::Credential;
use crate::policy::workload::{Rule, Rules, WorkloadIdentity};
use jwks::{IssuerKeys, Lookup, Source};

/// Why a token was refused; each says what failed, never what another rule asks.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("no OIDC issuer is trusted here (the server has no [[identity.oidc]]); send a hallmark token (hmk_...)")]
    NotConfigured,
    #[error("the token is not a JWT hallmark can read: {0}")]
    Malformed(String),
    #[error("the token is unsigned (alg none): hallmark never accepts one")]
    Unsigned,
    #[error("the token is signed with {0}, a shared-secret (HMAC) algorithm: hallmark accepts only an issuer's public-key signatures (RS256/384/512, PS256/384/512, ES256/384, EdDSA)")]
    Hmac(String),
    #[error("the token's algorithm '{0}' is not one hallmark verifies (RS256/384/512, PS256/384/512, ES256/384, EdDSA)")]
    UnsupportedAlgorithm(String),
    #[error("the token's issuer '{0}' is not trusted here")]
    UntrustedIssuer(String),
    #[error("the token's key id '{kid}' is not among the keys of issuer '{issuer}' (fetched again at most every {every} s)")]
    UnknownKey {
        kid: String,
        issuer: String,
        every: u64,
    },
    #[error("the token names no key id (kid) and issuer '{0}' has more than one key")]
    NoKeyId(String),
    #[error("the token's key id '{kid}' is a key of issuer '{owner}', not of '{issuer}' that the token names")]
    ForeignKey {
        kid: String,
        owner: String,
        issuer: String,
    },
    #[error("the token's algorithm {alg} is not the one its key verifies ({allowed})")]
    AlgorithmMismatch { alg: String, allowed: String },
    #[error(
        "the token's signature does not verify: it was altered, or not signed by issuer '{0}'"
    )]
    BadSignature(String),
    #[error("the token's audience ({got}) is not one hallmark accepts from issuer '{issuer}' (ask for: {want})")]
    Audience {
        got: String,
        issuer: String,
        want: String,
    },
    #[error("the token expired at {} (ask the CI for a fresh one)", crate::store::rfc3339(*.0))]
    Expired(i64),
    #[error("the token is not valid before {} (is this clock or the issuer's wrong?)", crate::store::rfc3339(*.0))]
    NotYetValid(i64),
    #[error("the token was issued at {}, more than {max_age} s ago (max_token_age_secs)", crate::store::rfc3339(*iat))]
    TooOld { iat: i64, max_age: i64 },
    /// No rule admits the job; the text names its own claims.
    #[error("{0}")]
    NoRule(String),
    /// The issuer's keys cannot be had and none are cached (HTTP 503).
    #[error("the keys of OIDC issuer '{issuer}' cannot be fetched now: {why}")]
    KeysUnavailable { issuer: String, why: String },
}

impl From<OidcError> for crate::error::Error {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::KeysUnavailable { issuer, why } => {
                tracing::warn!(%issuer, error = %why, "an OIDC token could not be verified: no keys");
                crate::error::Refusal::Unavailable(format!(
                    "the keys of OIDC issuer '{issuer}' cannot be fetched now and none are cached; retry later"
                ))
                .into()
            }
            other => crate::policy::auth::AuthError::Unauthorized(other.to_string()).into(),
        }
    }
}

struct Issuer {
    cfg: OidcIssuerConfig,
    keys: IssuerKeys,
}

#[derive(Clone)]
struct Remembered {
    issuer: usize,
    claims: Arc<Map<String, Value>>,
    exp: i64,
    iat: i64,
    /// What the rules made of it (they are fixed while the server runs).
    admitted: Option<Arc<Admitted>>,
}

/// A token's standing once a rule admitted it: the credential's fixed parts.
struct Admitted {
    token_id: String,
    name: String,
    publisher: String,
    scopes: Vec<crate::policy::auth::Scope>,
    identity: Arc<WorkloadIdentity>,
}

/// How many verified tokens are remembered at most.
const REMEMBERED: usize = 10_000;

/// The trusted issuers, their keys and the rules.
pub struct Verifier {
    issuers: Vec<Issuer>,
    clock: crate::clock::SharedClock,
    rules: Rules,
    remembered: Mutex<HashMap<[u8; 32], Remembered>>,
}

impl Verifier {
    /// The verifier `config` describes; `None` when it trusts no issuer.
    pub fn new(
        config: &Config,
        clock: crate::clock::SharedClock,
    ) -> Result<Option<Verifier>, String> {
        let section = &config.identity;
        if section.oidc.is_empty() {
            return Ok(None);
        }
        let names: BTreeSet<&str> = section.oidc.iter().map(|i| i.name.as_str()).collect();
        let rules = section
            .rules()
            .map(|r| {
                Rule::compile(r, &names)
                    .map_err(|e| format!("identity.oidc.rule '{}': {e}", r.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut issuers = Vec::new();
        for i in &section.oidc {
            let source = match (&i.jwks_file, &i.jwks_uri) {
                (Some(f), _) => Source::File(config.resolve(f)),
                (None, Some(u)) => Source::Uri(u.clone()),
                (None, None) => Source::Discovery {
                    issuer: i.issuer.clone(),
                },
            };
            let tls = match source {
                Source::File(_) => None,
                _ => Some(
                    crate::outbound::Tls::new(
                        i.ca_file.as_ref().map(|f| config.resolve(f)).as_deref(),
                    )
                    .map_err(|e| format!("identity.oidc '{}': {e}", i.name))?,
                ),
            };
            issuers.push(Issuer {
                keys: IssuerKeys::new(
                    &i.name,
                    source,
                    tls,
                    Duration::from_secs(i.jwks_min_refresh_secs),
                    Duration::from_secs(i.jwks_max_age_secs),
                ),
                cfg: i.clone(),
            });
        }
        Ok(Some(Verifier {
            clock,
            issuers,
            rules: Rules::new(rules),
            remembered: Mutex::new(HashMap::new()),
        }))
    }

    /// Fetches every issuer's keys once (at start, so the first job does not wait); a failure
    /// is logged and tried again when a token needs the keys.
    pub async fn warm(&self) {
        for i in &self.issuers {
            if let Err(e) = i.keys.key(Some("")).await {
                tracing::warn!(issuer = %i.cfg.name, error = %e, "the OIDC issuer's keys are not available yet");
            }
        }
    }

    /// How many times issuer `name`'s keys were fetched (for `/metrics` and tests).
    pub fn fetches(&self, name: &str) -> Option<u64> {
        self.issuers
            .iter()
            .find(|i| i.cfg.name == name)
            .map(|i| i.keys.fetches())
    }

    /// The credential a bearer JWT stands for: verified, then admitted by a rule. A token seen
    /// before (and still valid) costs a hash and a lookup.
    pub async fn authenticate(
        &self,
        token: &str,
        address: Option<String>,
    ) -> Result<Credential, OidcError> {
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let admitted = match self.recall(&digest).and_then(|r| r.admitted) {
            Some(a) => a,
            None => {
                let (issuer, claims) = self.verify(token, &digest).await?;
                let rule = self
                    .rules
                    .find(&issuer.name, &claims)
                    .map_err(OidcError::NoRule)?;
                let identity = WorkloadIdentity::new(rule, &issuer.issuer, &claims);
                let a = Arc::new(Admitted {
                    token_id: format!("oidc:{}:{}", issuer.name, identity.subject),
                    name: format!("oidc:{}", rule.name),
                    publisher: rule.publisher.clone(),
                    scopes: rule.scopes.clone(),
                    identity: Arc::new(identity),
                });
                if let Ok(mut m) = self.remembered.lock() {
                    if let Some(r) = m.get_mut(&digest) {
                        r.admitted = Some(a.clone());
                    }
                }
                a
            }
        };
        Ok(Credential {
            token_id: admitted.token_id.clone(),
            name: admitted.name.clone(),
            publisher: Some(admitted.publisher.clone()),
            officer: false,
            scopes: admitted.scopes.clone(),
            address,
            request_id: None,
            workload: Some(admitted.identity.clone()),
            person: None,
        })
    }

    /// A token verified before whose times still hold now.
    fn recall(&self, digest: &[u8; 32]) -> Option<Remembered> {
        let r = self.remembered.lock().ok()?.get(digest).cloned()?;
        let i = &self.issuers[r.issuer].cfg;
        let now = self.clock.now();
        let leeway = i64::try_from(i.leeway_secs).unwrap_or(0);
        let max_age = i64::try_from(i.max_token_age_secs).unwrap_or(i64::MAX);
        (r.exp + leeway > now && now - r.iat <= max_age + leeway).then_some(r)
    }

    /// A token's issuer and verified claims (`digest`: the token's SHA-256).
    async fn verify(
        &self,
        token: &str,
        digest: &[u8; 32],
    ) -> Result<(&OidcIssuerConfig, Arc<Map<String, Value>>), OidcError> {
        let now = self.clock.now();
        if let Some(r) = self.recall(digest) {
            return Ok((&self.issuers[r.issuer].cfg, r.claims));
        }
        let u = token::read(token)?;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.cfg.issuer == u.iss)
            .ok_or_else(|| OidcError::UntrustedIssuer(u.iss.clone()))?;
        let key = match issuer.keys.key(u.kid.as_deref()).await? {
            Lookup::Found(k) => k,
            Lookup::Unknown => {
                let Some(kid) = u.kid else {
                    return Err(OidcError::NoKeyId(issuer.cfg.name.clone()));
                };
                if let Some(owner) = self
                    .issuers
                    .iter()
                    .find(|o| o.cfg.name != issuer.cfg.name && o.keys.cached(&kid))
                {
                    return Err(OidcError::ForeignKey {
                        kid,
                        owner: owner.cfg.name.clone(),
                        issuer: issuer.cfg.name.clone(),
                    });
                }
                return Err(OidcError::UnknownKey {
                    kid,
                    issuer: issuer.cfg.name.clone(),
                    every: issuer.cfg.jwks_min_refresh_secs,
                });
            }
        };
        if !key.algorithms.contains(&u.alg) {
            return Err(OidcError::AlgorithmMismatch {
                alg: format!("{:?}", u.alg),
                allowed: key
                    .algorithms
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let claims = token::verify_signature(token, &key.key, u.alg, &issuer.cfg.name)?;
        let rules = token::ClaimRules {
            issuer: &issuer.cfg.name,
            audiences: &issuer.cfg.audiences,
            leeway: i64::try_from(issuer.cfg.leeway_secs).unwrap_or(0),
            max_age: i64::try_from(issuer.cfg.max_token_age_secs).unwrap_or(i64::MAX),
        };
        let exp = token::check_claims(&claims, &rules, now)?;
        let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(now);
        let claims = Arc::new(claims);
        if let Ok(mut m) = self.remembered.lock() {
            if m.len() >= REMEMBERED {
                m.retain(|_, r| r.exp > now);
                if m.len() >= REMEMBERED {
                    m.clear();
                }
            }
            m.insert(
                *digest,
                Remembered {
                    issuer: index,
                    claims: claims.clone(),
                    exp,
                    iat,
                    admitted: None,
                },
            );
        }
        Ok((&issuer.cfg, claims))
    }
}
