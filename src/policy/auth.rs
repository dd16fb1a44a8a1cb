//! Credentials and authorization: API tokens, their scopes, and who may act for which publisher.
//!
//! A token is `hmk_<id>_<secret>`: the id finds the record, only SHA-256 of the 256-bit secret is
//! stored (a high-entropy secret needs no slow hash), and the comparison is constant-time.

use sha2::Digest;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Submit certificate requests.
    Issue,
    /// Revoke certificates.
    Revoke,
    /// Sign with publisher keys (signing service).
    Sign,
    /// Approve or deny requests.
    Approve,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Issue, Scope::Revoke, Scope::Sign, Scope::Approve];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Issue => "issue",
            Scope::Revoke => "revoke",
            Scope::Sign => "sign",
            Scope::Approve => "approve",
        }
    }

    pub fn parse(s: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|x| x.name() == s.trim())
            .ok_or_else(|| format!("unknown scope '{s}' (issue, revoke, sign, approve)"))
    }

    /// Parses a comma-separated list.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, String> {
        let mut out = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let sc = Scope::parse(part)?;
            if !out.contains(&sc) {
                out.push(sc);
            }
        }
        Ok(out)
    }

    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Why a caller was turned away.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No credential, a malformed, unknown, revoked or expired one (HTTP 401).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A valid credential that may not do this (HTTP 403).
    #[error("forbidden: {0}")]
    Forbidden(String),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Credential {
    pub token_id: String,
    /// The identity approvals name (e.g. `release-manager`).
    pub name: String,
    pub publisher: Option<String>,
    pub officer: bool,
    pub scopes: Vec<Scope>,
    /// The remote address, for the audit trail.
    pub address: Option<String>,
    /// The HTTP request's id (`X-Request-Id`, the access log), for the audit trail.
    pub request_id: Option<String>,
    /// A CI job's identity, when an OIDC token (not a hallmark token) authenticated the caller.
    pub workload: Option<std::sync::Arc<super::workload::WorkloadIdentity>>,
    /// The person the console's identity provider signed in, acting with this token's rights.
    pub person: Option<String>,
}

impl Credential {
    /// How the audit trail names this caller: `token:ID(NAME)@ADDRESS request:REQUEST-ID`; a
    /// person signed in to the console through its identity provider
    /// `person:ID@ADDRESS token:ID(NAME) ...` (the token whose rights they use); for a CI job
    /// `oidc:ISSUER/SUBJECT(RULE)@ADDRESS request:REQUEST-ID run:CLAIMS`.
    pub fn actor(&self) -> String {
        let address = self.address.as_deref().unwrap_or("local");
        let mut a = match (&self.workload, &self.person) {
            (Some(w), _) => format!("oidc:{}/{}({})@{address}", w.issuer, w.subject, w.rule),
            (None, Some(p)) => format!(
                "person:{p}@{address} token:{}({})",
                self.token_id, self.name
            ),
            (None, None) => format!("token:{}({})@{address}", self.token_id, self.name),
        };
        if let Some(id) = &self.request_id {
            a.push_str(" request:");
            a.push_str(id);
        }
        if let Some(w) = &self.workload {
            if !w.run.is_empty() {
                a.push_str(" run:");
                a.push_str(&w.run);
            }
        }
        a
    }

    /// Whether a name in a key policy or profile (`signers`, `approvers`) means this caller:
    /// `token:NAME` or a bare NAME for a hallmark token, `oidc:RULE` for a CI job that rule
    /// admitted.
    pub fn answers_to(&self, entry: &str) -> bool {
        names_match(entry, &self.name)
    }

    /// The identity recorded with what this caller asks for (JSON), when a CI job asks.
    pub fn identity_json(&self) -> Option<String> {
        self.workload.as_ref().map(|w| w.json.clone())
    }

    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "this {} lacks the '{}' scope (it has: {})",
                if self.workload.is_some() {
                    "identity's rule"
                } else {
                    "token"
                },
                scope.name(),
                if self.scopes.is_empty() {
                    "none".to_string()
                } else {
                    Scope::join(&self.scopes)
                }
            )))
        }
    }

    /// Officers act for any publisher; a publisher token only for its own.
    pub fn may_act_for(&self, publisher: &str) -> Result<(), AuthError> {
        if self.officer || self.publisher.as_deref() == Some(publisher) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "this {} belongs to publisher '{}' and may not act for '{publisher}'",
                if self.workload.is_some() {
                    "identity"
                } else {
                    "token"
                },
                self.publisher.as_deref().unwrap_or("-")
            )))
        }
    }

    pub fn require_officer(&self) -> Result<(), AuthError> {
        if self.officer {
            Ok(())
        } else {
            Err(AuthError::Forbidden(
                "only officer tokens may do this".into(),
            ))
        }
    }
}

/// Whether `entry` of a signers or approvers list names the caller called `name`: a token's
/// name is `ci` (written `ci` or `token:ci`); a CI job's is `oidc:RULE`. Token names hold no
/// colon, so the two never meet.
pub fn names_match(entry: &str, name: &str) -> bool {
    let entry = entry.trim();
    entry == name || (!name.contains(':') && entry.strip_prefix("token:") == Some(name))
}

/// A freshly made token: show `secret_token` once, store `id` and `hash`.
pub struct NewToken {
    pub id: String,
    pub secret_token: String,
    pub hash: String,
}

pub fn new_token() -> NewToken {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut id);
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut secret);
    let id = hex::encode(id);
    let secret = hex::encode(secret);
    NewToken {
        secret_token: format!("hmk_{id}_{secret}"),
        hash: hash_secret(&secret),
        id,
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// Splits `hmk_<id>_<secret>`.
pub fn parse_token(token: &str) -> Result<(&str, &str), AuthError> {
    let rest = token
        .strip_prefix("hmk_")
        .ok_or_else(|| AuthError::Unauthorized("not a hallmark token (expected hmk_...)".into()))?;
    let (id, secret) = rest
        .split_once('_')
        .ok_or_else(|| AuthError::Unauthorized("malformed token".into()))?;
    let hexok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hexok(id, 12) || !hexok(secret, 64) {
        return Err(AuthError::Unauthorized("malformed token".into()));
    }
    Ok((id, secret))
}

/// Constant-time equality of two hex digests.
pub fn digest_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Parses `90d`, `12h`, `30m` into seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 90d, 12h or 30m"))?;
    let mult = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        _ => return Err(format!("'{s}' is not a duration like 90d, 12h or 30m")),
    };
    if n <= 0 || n > 3650 * 86_400 / mult {
        return Err(format!("'{s}' is out of range (up to 10 years)"));
    }
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = new_token();
        let (id, secret) = parse_token(&t.secret_token).unwrap();
        assert_eq!(id, t.id);
        assert!(digest_eq(&hash_secret(secret), &t.hash));
        assert!(parse_token("hmk_zz_yy").is_err());
        assert!(parse_token("Bearer x").is_err());
    }

    #[test]
    fn scopes_and_durations() {
        assert_eq!(
            Scope::parse_list("issue,revoke").unwrap(),
            vec![Scope::Issue, Scope::Revoke]
        );
        assert!(Scope::parse_list("issue,fly").is_err());
        assert_eq!(parse_duration("90d").unwrap(), 90 * 86_400);
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("-1d").is_err());
    }
}
