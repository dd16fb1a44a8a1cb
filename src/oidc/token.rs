//! One JWT, checked in the order that never trusts what is not yet verified: its shape and
//! header (unsigned and HMAC tokens refused outright), its issuer (one configured exactly),
//! its key (by `kid`, in that issuer's keys only) and the algorithm that key allows (never the
//! header's alone), the signature, and only then its claims: audience, expiry, not-before,
//! issue time and age, with the issuer's leeway.

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::OidcError;

/// The largest token accepted, in bytes.
pub const MAX_TOKEN: usize = 16 * 1024;

/// A JWT's header and payload, read but not yet verified.
pub struct Unverified {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub iss: String,
}

fn segment(part: &str, what: &str) -> Result<Map<String, Value>, OidcError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| OidcError::Malformed(format!("its {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(OidcError::Malformed(format!(
            "its {what} is not a JSON object"
        ))),
    }
}

pub use hallmark_client::jwt::looks_like_jwt;

/// Reads the header and the issuer, refusing what no key could make acceptable.
pub fn read(token: &str) -> Result<Unverified, OidcError> {
    if token.len() > MAX_TOKEN {
        return Err(OidcError::Malformed(format!(
            "it is over {MAX_TOKEN} bytes"
        )));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(OidcError::Malformed(
            "a JWT has three parts separated by dots".into(),
        ));
    }
    let header = segment(parts[0], "header")?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = match alg {
        "" => return Err(OidcError::Malformed("its header names no alg".into())),
        a if a.eq_ignore_ascii_case("none") => return Err(OidcError::Unsigned),
        "HS256" | "HS384" | "HS512" => return Err(OidcError::Hmac(alg.to_string())),
        a => a
            .parse::<Algorithm>()
            .map_err(|_| OidcError::UnsupportedAlgorithm(a.to_string()))?,
    };
    if parts[2].is_empty() {
        return Err(OidcError::Malformed("it has no signature".into()));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) if k.len() <= 256 => Some(k.clone()),
        Some(Value::String(_)) => {
            return Err(OidcError::Malformed(
                "its kid is over 256 characters".into(),
            ))
        }
        Some(_) => return Err(OidcError::Malformed("its kid is not a string".into())),
    };
    let payload = segment(parts[1], "payload")?;
    let iss = payload
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| OidcError::Malformed("it has no iss (issuer) claim".into()))?
        .to_string();
    if iss.len() > 512 || iss.chars().any(char::is_control) {
        return Err(OidcError::Malformed(
            "its iss is not an issuer URL (over 512 characters, or control characters)".into(),
        ));
    }
    Ok(Unverified { alg, kid, iss })
}

/// Verifies the signature with `key` under `alg` (which the key allows) and returns the claims.
pub fn verify_signature(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    alg: Algorithm,
    issuer: &str,
) -> Result<Map<String, Value>, OidcError> {
    let mut v = Validation::new(alg);
    // The claims are checked below, with this issuer's words for each failure.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.leeway = 0;
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &v) {
        Ok(d) => Ok(d.claims),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                Err(OidcError::BadSignature(issuer.to_string()))
            }
            _ => Err(OidcError::Malformed(format!(
                "it does not verify with issuer '{issuer}'s key ({e})"
            ))),
        },
    }
}

/// What the claims must satisfy for one issuer.
pub struct ClaimRules<'a> {
    pub issuer: &'a str,
    pub audiences: &'a [String],
    pub leeway: i64,
    pub max_age: i64,
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, OidcError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| OidcError::Malformed(format!("its {name} is not a number"))),
    }
}

/// Checks audience and times of verified claims at `now`; returns `exp`.
pub fn check_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<i64, OidcError> {
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !auds.iter().any(|a| rules.audiences.iter().any(|w| w == a)) {
        return Err(OidcError::Audience {
            got: if auds.is_empty() {
                "none".into()
            } else {
                auds.join(", ")
            },
            issuer: rules.issuer.to_string(),
            want: rules.audiences.join(", "),
        });
    }
    let exp = number(claims, "exp")?
        .ok_or_else(|| OidcError::Malformed("it has no exp (expiry) claim".into()))?;
    if exp + rules.leeway <= now {
        return Err(OidcError::Expired(exp));
    }
    if let Some(nbf) = number(claims, "nbf")? {
        if nbf - rules.leeway > now {
            return Err(OidcError::NotYetValid(nbf));
        }
    }
    let iat = number(claims, "iat")?
        .ok_or_else(|| OidcError::Malformed("it has no iat (issued-at) claim".into()))?;
    if iat - rules.leeway > now {
        return Err(OidcError::NotYetValid(iat));
    }
    if now - iat > rules.max_age + rules.leeway {
        return Err(OidcError::TooOld {
            iat,
            max_age: rules.max_age,
        });
    }
    match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err(OidcError::Malformed("it has no sub (subject) claim".into())),
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused_before_any_key() {
        let p = b64(r#"{"iss":"https://x"}"#);
        let none = format!("{}.{p}.", b64(r#"{"alg":"none"}"#));
        assert!(matches!(read(&none), Err(OidcError::Unsigned)));
        let hs = format!("{}.{p}.c2ln", b64(r#"{"alg":"HS256","kid":"k"}"#));
        assert!(matches!(read(&hs), Err(OidcError::Hmac(_))));
        let rs = format!("{}.{p}.c2ln", b64(r#"{"alg":"RS256","kid":"k"}"#));
        let u = read(&rs).unwrap();
        assert_eq!((u.alg, u.iss.as_str()), (Algorithm::RS256, "https://x"));
        assert!(read("a.b").is_err());
    }

    #[test]
    fn claims_are_checked_with_leeway() {
        let auds = vec!["hallmark".to_string()];
        let rules = ClaimRules {
            issuer: "github",
            audiences: &auds,
            leeway: 60,
            max_age: 3600,
        };
        let c = |v: Value| v.as_object().unwrap().clone();
        let now = 1_000_000;
        let good = c(serde_json::json!({"aud":"hallmark","exp":now+300,"iat":now-10,"sub":"s"}));
        assert_eq!(check_claims(&good, &rules, now).unwrap(), now + 300);
        let late = c(serde_json::json!({"aud":"hallmark","exp":now-61,"iat":now-400,"sub":"s"}));
        assert!(matches!(
            check_claims(&late, &rules, now),
            Err(OidcError::Expired(_))
        ));
        let skew = c(serde_json::json!({"aud":"hallmark","exp":now-30,"iat":now-400,"sub":"s"}));
        assert!(check_claims(&skew, &rules, now).is_ok());
        let aud = c(serde_json::json!({"aud":["other"],"exp":now+300,"iat":now,"sub":"s"}));
        assert!(matches!(
            check_claims(&aud, &rules, now),
            Err(OidcError::Audience { .. })
        ));
        let old = c(serde_json::json!({"aud":"hallmark","exp":now+300,"iat":now-7200,"sub":"s"}));
        assert!(matches!(
            check_claims(&old, &rules, now),
            Err(OidcError::TooOld { .. })
        ));
    }
}
