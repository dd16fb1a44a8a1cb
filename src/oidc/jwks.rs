//! An issuer's signing keys (its JWKS): fetched over HTTPS (found by OIDC discovery, or at a
//! configured `jwks_uri`) or read from a file, cached for as long as the answer's
//! `Cache-Control` allows, fetched again on an unknown key id at most once every
//! `jwks_min_refresh_secs` (so a flood of made-up key ids cannot hammer the issuer), and kept
//! verifying while the issuer is down until `jwks_max_age_secs` after they were fetched.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::OidcError;
use crate::outbound::{self, Tls};

/// The largest discovery document or JWKS read.
const MAX_DOCUMENT: usize = 256 * 1024;
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Freshness when the answer says nothing (and the ceiling of what it may say).
const DEFAULT_FRESH: Duration = Duration::from_secs(3600);
const MAX_FRESH: Duration = Duration::from_secs(86_400);

/// One verification key and the algorithms it verifies (from its `alg`, else its type).
pub struct Key {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

/// A fetched key set.
struct KeySet {
    keys: HashMap<String, Arc<Key>>,
    fetched: Instant,
    fresh_for: Duration,
}

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `{issuer}/.well-known/openid-configuration`, then its `jwks_uri`.
    Discovery {
        issuer: String,
    },
    Uri(String),
    File(PathBuf),
}

struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    /// The discovered `jwks_uri`.
    jwks_uri: Option<String>,
}

/// The cache of one issuer's keys.
pub struct IssuerKeys {
    name: String,
    source: Source,
    tls: Option<Tls>,
    min_refresh: Duration,
    max_age: Duration,
    set: RwLock<Option<Arc<KeySet>>>,
    fetch: tokio::sync::Mutex<FetchState>,
    fetches: AtomicU64,
}

/// What a key lookup found.
pub enum Lookup {
    Found(Arc<Key>),
    /// Not among the keys, after a refresh or within the refresh interval.
    Unknown,
}

impl IssuerKeys {
    pub fn new(
        name: &str,
        source: Source,
        tls: Option<Tls>,
        min_refresh: Duration,
        max_age: Duration,
    ) -> IssuerKeys {
        IssuerKeys {
            name: name.to_string(),
            source,
            tls,
            min_refresh,
            max_age,
            set: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState {
                last_attempt: None,
                last_error: None,
                jwks_uri: None,
            }),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many times the keys were fetched (or read) so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.set.read().ok().and_then(|s| s.clone())
    }

    /// The key `kid` (or the only key, when the token names none) from the cache if it is
    /// fresh there; otherwise after a fetch the refresh interval allows.
    pub async fn key(&self, kid: Option<&str>) -> Result<Lookup, OidcError> {
        if let Some(set) = self.current() {
            if set.fetched.elapsed() < set.fresh_for {
                if let Some(k) = pick(&set, kid) {
                    return Ok(Lookup::Found(k));
                }
            }
        }
        self.refresh().await?;
        let Some(set) = self.current() else {
            return Err(self.unavailable(None).await);
        };
        Ok(match pick(&set, kid) {
            Some(k) => Lookup::Found(k),
            None => Lookup::Unknown,
        })
    }

    /// The key `kid` if it is cached, whatever its age (to say whose a key id is).
    pub fn cached(&self, kid: &str) -> bool {
        self.current().is_some_and(|s| s.keys.contains_key(kid))
    }

    async fn unavailable(&self, why: Option<String>) -> OidcError {
        let why = match why {
            Some(w) => w,
            None => self
                .fetch
                .lock()
                .await
                .last_error
                .clone()
                .unwrap_or_else(|| "no keys fetched yet".into()),
        };
        OidcError::KeysUnavailable {
            issuer: self.name.clone(),
            why,
        }
    }

    /// Fetches the keys unless another caller just did, or the last attempt was within the
    /// refresh interval. A failed fetch keeps the cached keys while they are younger than
    /// `jwks_max_age_secs`, and drops them after.
    async fn refresh(&self) -> Result<(), OidcError> {
        let mut st = self.fetch.lock().await;
        let throttled = st
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.min_refresh);
        if throttled {
            // Another caller fetched a moment ago (or failed to): use what there is.
            return self.drop_if_too_old();
        }
        st.last_attempt = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.load(&mut st).await {
            Ok(set) => {
                st.last_error = None;
                if let Ok(mut s) = self.set.write() {
                    *s = Some(Arc::new(set));
                }
                Ok(())
            }
            Err(why) => {
                tracing::warn!(issuer = %self.name, error = %why, "fetching the issuer's keys failed");
                st.last_error = Some(why);
                self.drop_if_too_old()
            }
        }
    }

    fn drop_if_too_old(&self) -> Result<(), OidcError> {
        if let Ok(mut s) = self.set.write() {
            if s.as_ref()
                .is_some_and(|k| k.fetched.elapsed() >= self.max_age)
            {
                *s = None;
            }
        }
        Ok(())
    }

    async fn load(&self, st: &mut FetchState) -> Result<KeySet, String> {
        let (body, fresh_for) = match &self.source {
            Source::File(path) => {
                let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                (b, self.min_refresh)
            }
            Source::Uri(uri) => self.get(uri).await?,
            Source::Discovery { issuer } => {
                let uri = match &st.jwks_uri {
                    Some(u) => u.clone(),
                    None => {
                        let u = self.discover(issuer).await?;
                        st.jwks_uri = Some(u.clone());
                        u
                    }
                };
                match self.get(&uri).await {
                    Ok(r) => r,
                    Err(e) => {
                        // The issuer may have moved its keys: discover again next time.
                        st.jwks_uri = None;
                        return Err(e);
                    }
                }
            }
        };
        let keys = parse_jwks(&body)?;
        Ok(KeySet {
            keys,
            fetched: Instant::now(),
            fresh_for: fresh_for.max(self.min_refresh).min(MAX_FRESH),
        })
    }

    async fn get(&self, url: &str) -> Result<(Vec<u8>, Duration), String> {
        let tls = self
            .tls
            .as_ref()
            .ok_or_else(|| "no TLS trust anchors".to_string())?;
        let r = outbound::get(url, None, tls, FETCH_TIMEOUT, MAX_DOCUMENT)
            .await
            .map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!("{url} answered HTTP {}", r.status));
        }
        let fresh = r
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_FRESH);
        Ok((r.body.to_vec(), fresh))
    }

    async fn discover(&self, issuer: &str) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let (body, _) = self.get(&url).await?;
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{url} is not a JSON discovery document: {e}"))?;
        if doc["issuer"].as_str() != Some(issuer) {
            return Err(format!(
                "{url} names issuer {} , not {issuer}",
                doc["issuer"]
            ));
        }
        let uri = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| format!("{url} has no jwks_uri"))?;
        if !uri.starts_with("https://") {
            return Err(format!("{url} gives a jwks_uri that is not https: {uri}"));
        }
        Ok(uri.to_string())
    }
}

fn pick(set: &KeySet, kid: Option<&str>) -> Option<Arc<Key>> {
    match kid {
        Some(k) => set.keys.get(k).cloned(),
        None if set.keys.len() == 1 => set.keys.values().next().cloned(),
        None => None,
    }
}

/// `max-age` (or `s-maxage`) of a Cache-Control value; `no-cache` / `no-store` give 0.
fn max_age(v: &str) -> Option<Duration> {
    let mut found = None;
    for d in v.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if d == "no-cache" || d == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = d
            .strip_prefix("max-age=")
            .or_else(|| d.strip_prefix("s-maxage="))
        {
            if let Ok(n) = n.trim_matches('"').parse::<u64>() {
                found = Some(Duration::from_secs(n));
            }
        }
    }
    found
}

/// The signature keys of a JWKS by key id; a key of a type or algorithm hallmark does not
/// verify with (HMAC secrets, encryption keys, P-521) is left out.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<Key>>, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let list = doc["keys"]
        .as_array()
        .ok_or_else(|| "the JWKS has no keys array".to_string())?;
    let mut keys = HashMap::new();
    for (i, raw) in list.iter().enumerate() {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            continue;
        }
        let Some(algorithms) = algorithms_of(&jwk) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let kid = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{i}"));
        keys.insert(kid, Arc::new(Key { key, algorithms }));
    }
    Ok(keys)
}

/// The algorithms a key verifies: its `alg` when it has one, else all its type allows
/// (RSA: RS* and PS*; P-256: ES256; P-384: ES384; Ed25519: EdDSA). HMAC never.
fn algorithms_of(jwk: &Jwk) -> Option<Vec<Algorithm>> {
    use Algorithm::*;
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => vec![EdDSA],
            _ => return None,
        },
        _ => return None,
    };
    let named = match jwk.common.key_algorithm {
        None => return Some(family),
        Some(a) => match a {
            KeyAlgorithm::ES256 => ES256,
            KeyAlgorithm::ES384 => ES384,
            KeyAlgorithm::RS256 => RS256,
            KeyAlgorithm::RS384 => RS384,
            KeyAlgorithm::RS512 => RS512,
            KeyAlgorithm::PS256 => PS256,
            KeyAlgorithm::PS384 => PS384,
            KeyAlgorithm::PS512 => PS512,
            KeyAlgorithm::EdDSA => EdDSA,
            _ => return None,
        },
    };
    family.contains(&named).then(|| vec![named])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }

    #[test]
    fn hmac_and_encryption_keys_are_left_out() {
        let jwks = br#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"EC","kid":"e","use":"enc","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","kid":"s","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","kid":"mismatch","alg":"RS256","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"weird","kid":"w"}
        ]}"#;
        let keys = parse_jwks(jwks).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["s"]);
        assert_eq!(keys["s"].algorithms, vec![Algorithm::ES256]);
    }
}
