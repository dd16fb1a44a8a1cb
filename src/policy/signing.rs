//! A signing key's policy: which formats and digest algorithms it signs, which token names may
//! ask, how many distinct approvals a signature needs and from whom, and how often it signs.
//! Pure functions over data; the engine loads the policy and calls [`KeyPolicy::check`].

use super::PolicyError;
use crate::store::KeyPolicyRecord;

/// A key's policy. Empty lists mean "no restriction beyond the service's own rules". It is
/// also the shape of a `[signing.keys.<label>]` config section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyPolicy {
    pub formats: Vec<String>,
    pub digests: Vec<String>,
    pub signers: Vec<String>,
    /// Approvals needed before a signature is made; 0 signs at once.
    pub approvals: u32,
    pub approvers: Vec<String>,
    /// Signatures (and signature requests) per minute; `None` is unlimited.
    pub rate_per_minute: Option<u32>,
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn joined(v: &[String]) -> Option<String> {
    (!v.is_empty()).then(|| v.join(","))
}

fn shown(v: &[String]) -> String {
    if v.is_empty() {
        "any".into()
    } else {
        v.join(",")
    }
}

impl KeyPolicy {
    /// A policy from its parts as a user writes them (flags or config): formats lower-cased,
    /// digest names made canonical ("SHA-256" → "sha256"; SHA-1 refused), names trimmed, empty
    /// entries dropped; then [`KeyPolicy::validate`]d.
    pub fn normalized(
        formats: &[String],
        digests: &[String],
        signers: &[String],
        approvals: u32,
        approvers: &[String],
        rate_per_minute: Option<u32>,
    ) -> Result<KeyPolicy, PolicyError> {
        let names = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        };
        let digests = names(digests)
            .iter()
            .map(|d| {
                crate::formats::names::parse_digest_algorithm(&d.to_ascii_lowercase())
                    .map(|h| crate::formats::names::digest_algorithm_name(h).to_string())
                    .map_err(|e| PolicyError::BadRequest(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let policy = KeyPolicy {
            formats: names(formats)
                .iter()
                .map(|f| f.to_ascii_lowercase())
                .collect(),
            digests,
            signers: names(signers),
            approvals,
            approvers: names(approvers),
            rate_per_minute,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// The policy a `[signing.keys.<label>]` config section gives, normalized and checked.
    pub fn from_config(p: &crate::config::KeyPolicySection) -> Result<KeyPolicy, PolicyError> {
        KeyPolicy::normalized(
            &p.formats,
            &p.digests,
            &p.signers,
            p.approvals,
            &p.approvers,
            p.rate_per_minute,
        )
    }

    pub fn from_record(r: &KeyPolicyRecord) -> KeyPolicy {
        KeyPolicy {
            formats: list(&r.formats),
            digests: list(&r.digests),
            signers: list(&r.signers),
            approvals: u32::try_from(r.approvals_required.max(0)).unwrap_or(u32::MAX),
            approvers: list(&r.approvers),
            rate_per_minute: r.rate_per_minute.and_then(|v| u32::try_from(v).ok()),
        }
    }

    pub fn to_record(&self, label: &str) -> KeyPolicyRecord {
        KeyPolicyRecord {
            key_label: label.to_string(),
            formats: joined(&self.formats),
            digests: joined(&self.digests),
            signers: joined(&self.signers),
            approvals_required: i64::from(self.approvals),
            approvers: joined(&self.approvers),
            rate_per_minute: self.rate_per_minute.map(i64::from),
            updated_at: 0,
        }
    }

    /// Checks that a policy can be satisfied and names only known formats and digests.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |m: String| Err(PolicyError::BadRequest(m));
        for f in &self.formats {
            if crate::formats::names::SignatureFormat::parse(f).is_err() {
                return bad(format!(
                    "format '{f}' is not offered ({})",
                    crate::formats::names::SignatureFormat::NAMES.join(", ")
                ));
            }
        }
        for d in &self.digests {
            if let Err(e) = crate::formats::names::parse_digest_algorithm(d) {
                return bad(e.to_string());
            }
        }
        if self.approvals > 0 && (self.approvers.len() as u64) < u64::from(self.approvals) {
            return bad(format!(
                "{} approvals need at least {} approvers; {} named",
                self.approvals,
                self.approvals,
                self.approvers.len()
            ));
        }
        if self.approvals == 0 && !self.approvers.is_empty() {
            return bad("approvers without --approvals N: say how many must approve".into());
        }
        if self.rate_per_minute == Some(0) {
            return bad("a rate of 0 per minute signs nothing; leave it out for no limit".into());
        }
        Ok(())
    }

    /// May `signer` have `digest` signed in `format` with key `label`? (Names as canonical.)
    /// A signer entry is a token name (`ci` or `token:ci`) or a CI identity (`oidc:RULE`).
    pub fn check(
        &self,
        label: &str,
        format: &str,
        digest: &str,
        signer: &str,
    ) -> Result<(), PolicyError> {
        if !self.formats.is_empty() && !self.formats.iter().any(|f| f == format) {
            return Err(PolicyError::NotAuthorized(format!(
                "key '{label}' does not sign format '{format}' (its policy allows: {})",
                self.formats.join(", ")
            )));
        }
        if !self.digests.is_empty() && !self.digests.iter().any(|d| d == digest) {
            return Err(PolicyError::NotAuthorized(format!(
                "key '{label}' does not sign {digest} digests (its policy allows: {})",
                self.digests.join(", ")
            )));
        }
        if !self.signers.is_empty()
            && !self
                .signers
                .iter()
                .any(|s| super::auth::names_match(s, signer))
        {
            return Err(PolicyError::NotAuthorized(format!(
                "'{signer}' may not sign with key '{label}' (its signers: {})",
                self.signers.join(", ")
            )));
        }
        Ok(())
    }

    /// One line per rule, for `hallmark key policy LABEL`.
    pub fn describe(&self) -> String {
        format!(
            "formats: {}\ndigests: {}\nsigners: {}\napprovals: {}{}\nrate per minute: {}\n",
            shown(&self.formats),
            shown(&self.digests),
            shown(&self.signers),
            self.approvals,
            if self.approvals > 0 {
                format!(" of {}", self.approvers.join(","))
            } else {
                String::new()
            },
            self.rate_per_minute
                .map(|r| r.to_string())
                .unwrap_or_else(|| "unlimited".into())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn checks_each_rule() {
        let p = KeyPolicy {
            formats: v(&["cms"]),
            digests: v(&["sha384"]),
            signers: v(&["ci"]),
            ..Default::default()
        };
        assert!(p.check("k", "cms", "sha384", "ci").is_ok());
        assert!(p.check("k", "raw", "sha384", "ci").is_err());
        assert!(p.check("k", "cms", "sha256", "ci").is_err());
        assert!(p.check("k", "cms", "sha384", "other").is_err());
        assert!(p.check("k", "cms", "sha384", "oidc:ci").is_err());
        let named = KeyPolicy {
            signers: v(&["token:ci", "oidc:github:acme/app release"]),
            ..Default::default()
        };
        assert!(named.check("k", "raw", "sha256", "ci").is_ok());
        assert!(named
            .check("k", "raw", "sha256", "oidc:github:acme/app release")
            .is_ok());
        assert!(named
            .check("k", "raw", "sha256", "oidc:github:other")
            .is_err());
        assert!(KeyPolicy::default()
            .check("k", "raw", "sha512", "x")
            .is_ok());
    }

    #[test]
    fn validates_and_round_trips() {
        let p = KeyPolicy {
            approvals: 2,
            approvers: v(&["a", "b", "c"]),
            rate_per_minute: Some(10),
            ..Default::default()
        };
        p.validate().unwrap();
        assert_eq!(KeyPolicy::from_record(&p.to_record("k")), p);
        let short = KeyPolicy {
            approvals: 3,
            approvers: v(&["a"]),
            ..Default::default()
        };
        assert!(short.validate().is_err());
        let sha1 = KeyPolicy {
            digests: v(&["sha1"]),
            ..Default::default()
        };
        assert!(sha1.validate().is_err());
    }
}
