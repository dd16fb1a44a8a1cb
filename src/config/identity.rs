//! `[[identity.oidc]]` and `[[identity.oidc.rule]]`: which OIDC issuers' tokens are
//! credentials and the rules that map a token's claims to a publisher.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Workload identity: OIDC issuers whose tokens are credentials (`[[identity.oidc]]`), and the
/// rules that map a token's claims to a publisher (`[[identity.oidc.rule]]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    pub oidc: Vec<OidcIssuerConfig>,
}

impl IdentitySection {
    pub fn is_empty(&self) -> bool {
        self.oidc.is_empty()
    }

    /// Every rule, wherever in the file it was written: TOML nests a `[[identity.oidc.rule]]`
    /// under the `[[identity.oidc]]` above it, but each rule names its issuer itself.
    pub fn rules(&self) -> impl Iterator<Item = &OidcRuleConfig> {
        self.oidc.iter().flat_map(|i| i.rules.iter())
    }

    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        for i in &self.oidc {
            i.validate()?;
            if !names.insert(i.name.as_str()) {
                return Err(format!(
                    "identity.oidc: issuer name '{}' is given twice",
                    i.name
                ));
            }
        }
        let urls: std::collections::BTreeSet<&str> =
            self.oidc.iter().map(|i| i.issuer.as_str()).collect();
        if urls.len() != self.oidc.len() {
            return Err("identity.oidc: two entries trust the same issuer URL".into());
        }
        let mut rule_names = std::collections::BTreeSet::new();
        // What each rule means (its claims, its issuer) is checked by the policy that owns it,
        // `policy::workload::check_rules`, when the configuration is opened.
        for r in self.rules() {
            if !rule_names.insert(r.name.as_str()) {
                return Err(format!(
                    "identity.oidc.rule: name '{}' is given twice",
                    r.name
                ));
            }
        }
        Ok(())
    }
}

/// One trusted OIDC issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// What rules and records call it (`github`, `gitlab`).
    pub name: String,
    /// The `iss` its tokens carry, exactly (`https://token.actions.githubusercontent.com`).
    pub issuer: String,
    /// The `aud` values accepted: what the job asks its token for.
    pub audiences: Vec<String>,
    /// Where its keys are; default: discovered from `{issuer}/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Its keys from a file instead (air-gapped sites); read again on an unknown key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// PEM bundle the issuer's TLS certificate must chain to (private issuers); default: the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// A token older than this (by `iat`) is refused, whatever its `exp`, in seconds.
    #[serde(default = "default_max_token_age")]
    pub max_token_age_secs: u64,
    /// An unknown key id fetches the keys again at most this often, in seconds.
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_secs: u64,
    /// Fetched keys keep verifying while the issuer cannot be reached, this long after they
    /// were fetched, in seconds.
    #[serde(default = "default_jwks_max_age")]
    pub jwks_max_age_secs: u64,
    /// `[[identity.oidc.rule]]` entries written below this issuer (each names its issuer).
    #[serde(default, rename = "rule", skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<OidcRuleConfig>,
}

fn default_leeway() -> u64 {
    60
}
fn default_max_token_age() -> u64 {
    3600
}
fn default_min_refresh() -> u64 {
    60
}
fn default_jwks_max_age() -> u64 {
    86_400
}

impl OidcIssuerConfig {
    pub fn validate(&self) -> Result<(), String> {
        let at = |m: String| format!("identity.oidc '{}': {m}", self.name);
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(format!(
                "identity.oidc: name '{}' must be 1-32 of A-Z a-z 0-9 - _",
                self.name
            ));
        }
        if !self.issuer.starts_with("https://") {
            return Err(at(format!(
                "issuer '{}' must be an https:// URL (the iss its tokens carry)",
                self.issuer
            )));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(at(
                "audiences must name at least one aud (what the job asks its token for)".into(),
            ));
        }
        if self.jwks_uri.is_some() && self.jwks_file.is_some() {
            return Err(at("give jwks_uri or jwks_file, not both".into()));
        }
        if let Some(u) = &self.jwks_uri {
            if !u.starts_with("https://") {
                return Err(at(format!("jwks_uri '{u}' must be an https:// URL")));
            }
        }
        if self.max_token_age_secs == 0 || self.jwks_min_refresh_secs == 0 {
            return Err(at(
                "max_token_age_secs and jwks_min_refresh_secs must be at least 1".into(),
            ));
        }
        if self.leeway_secs > 300 {
            return Err(at("leeway_secs is at most 300".into()));
        }
        if self.jwks_max_age_secs < self.jwks_min_refresh_secs {
            return Err(at(
                "jwks_max_age_secs must be at least jwks_min_refresh_secs".into(),
            ));
        }
        Ok(())
    }
}

/// A value a rule asks a claim for: a string (exact, or a glob with `*`), or a boolean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClaimValue {
    Text(String),
    Bool(bool),
    Number(i64),
}

/// Which jobs of an issuer act for a publisher: every claim must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcRuleConfig {
    /// The `name` of an `[[identity.oidc]]` issuer.
    pub issuer: String,
    pub publisher: String,
    /// What a matching job may do: issue, sign (revoke and approve too, if you must).
    pub scopes: Vec<String>,
    /// Claim name to the value it must have; `*` in a string matches any run of characters.
    #[serde(default)]
    pub claims: BTreeMap<String, ClaimValue>,
    /// The identity recorded and shown to approvers; key policies name it as `oidc:NAME`.
    pub name: String,
    /// A rule without claims matches every job of its issuer: refused unless this is set.
    #[serde(default)]
    pub allow_any: bool,
    /// Approvals every signature this rule's jobs ask for needs (at least; the key's policy
    /// may ask more), from `approvers` or the key's approvers.
    #[serde(default)]
    pub approvals: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}
