//! Which CI job acts as whom: the rules (`[[identity.oidc.rule]]`) that map the claims of a
//! verified OIDC token to a publisher, scopes and the name key policies and approvers know it
//! by. Pure functions over claims; the token's signature and times are checked in `identity`.
//!
//! A rule matches when every claim it names matches (exact, or a glob whose only wildcard is
//! `*`); the first matching rule in the file wins. A refusal names the job's own claims, never
//! another rule.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::auth::Scope;
use crate::config::{ClaimValue, OidcRuleConfig};

/// Claims that identify a run, recorded with what it asks for when the token has them
/// (GitHub Actions, GitLab CI, and the claims any rule names).
pub const RUN_CLAIMS: &[&str] = &[
    "repository",
    "repository_owner",
    "project_path",
    "namespace_path",
    "ref",
    "ref_type",
    "ref_protected",
    "sha",
    "environment",
    "workflow",
    "workflow_ref",
    "job_workflow_ref",
    "event_name",
    "pipeline_source",
    "run_id",
    "run_number",
    "run_attempt",
    "pipeline_id",
    "job_id",
    "actor",
    "user_login",
    "jti",
];

/// The claims a refusal shows to say which job it was (the job's own values).
const SUMMARY_CLAIMS: &[&str] = &[
    "repository",
    "project_path",
    "ref",
    "environment",
    "job_workflow_ref",
    "sub",
];

/// Claims verification settles; a rule cannot name them.
const VERIFIED_CLAIMS: &[&str] = &["iss", "aud", "exp", "nbf", "iat"];

/// The longest claim value recorded.
const MAX_RECORDED: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    Exact(String),
    /// The pattern split at `*` (at least two pieces).
    Glob(Vec<String>),
    Bool(bool),
    Number(i64),
}

impl Matcher {
    fn new(claim: &str, v: &ClaimValue) -> Result<Matcher, String> {
        match v {
            ClaimValue::Bool(b) => Ok(Matcher::Bool(*b)),
            ClaimValue::Number(n) => Ok(Matcher::Number(*n)),
            ClaimValue::Text(s) => {
                if s.is_empty() {
                    return Err(format!("claim '{claim}': an empty value matches nothing"));
                }
                if let Some(c) = s.chars().find(|c| "?[]{}\\".contains(*c)) {
                    return Err(format!(
                        "claim '{claim}': '{s}' is not a glob hallmark reads ('{c}'): the one wildcard is *"
                    ));
                }
                if s.chars().all(|c| c == '*') {
                    return Err(format!(
                        "claim '{claim}': '{s}' matches every value; leave the claim out (and set allow_any if no claim is left)"
                    ));
                }
                if s.contains('*') {
                    Ok(Matcher::Glob(s.split('*').map(str::to_string).collect()))
                } else {
                    Ok(Matcher::Exact(s.clone()))
                }
            }
        }
    }

    fn matches(&self, v: &Value) -> bool {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => return false,
        };
        match self {
            Matcher::Exact(want) => text == *want,
            Matcher::Glob(pieces) => glob_match(pieces, &text),
            Matcher::Bool(b) => text == b.to_string(),
            Matcher::Number(n) => text == n.to_string(),
        }
    }
}

/// `pieces` is a pattern split at `*`: the first must start the text, the last end it, the
/// others appear in order between.
fn glob_match(pieces: &[String], text: &str) -> bool {
    let (Some(first), Some(last)) = (pieces.first(), pieces.last()) else {
        return false;
    };
    if pieces.len() < 2 {
        return text == first;
    }
    if text.len() < first.len() + last.len() || !text.starts_with(first.as_str()) {
        return false;
    }
    if !text.ends_with(last.as_str()) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for p in &pieces[1..pieces.len() - 1] {
        match rest.find(p.as_str()) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    true
}

/// A rule, checked and compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub issuer: String,
    pub publisher: String,
    pub scopes: Vec<Scope>,
    pub name: String,
    pub approvals: u32,
    pub approvers: Vec<String>,
    claims: Vec<(String, Matcher)>,
}

impl Rule {
    /// Checks a rule as written; `issuers` are the names of the configured issuers.
    pub fn compile(r: &OidcRuleConfig, issuers: &BTreeSet<&str>) -> Result<Rule, String> {
        if !issuers.contains(r.issuer.as_str()) {
            return Err(format!(
                "issuer '{}' is not the name of an [[identity.oidc]] entry",
                r.issuer
            ));
        }
        let name_ok = !r.name.trim().is_empty()
            && r.name.len() <= 128
            && r.name.trim() == r.name
            && !r.name.contains(',')
            && !r.name.chars().any(char::is_control);
        if !name_ok {
            return Err(
                "name must be 1-128 printable characters, without commas or surrounding spaces"
                    .into(),
            );
        }
        let publisher_ok = !r.publisher.is_empty()
            && r.publisher.len() <= 64
            && r.publisher
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !publisher_ok || super::identity::is_reserved_publisher(&r.publisher) {
            return Err(format!(
                "publisher '{}' is not a publisher id a job may act for",
                r.publisher
            ));
        }
        let mut scopes = Vec::new();
        for s in &r.scopes {
            let sc = Scope::parse(s)?;
            if !scopes.contains(&sc) {
                scopes.push(sc);
            }
        }
        if scopes.is_empty() {
            return Err("scopes must name what its jobs may do (issue, sign)".into());
        }
        if r.claims.is_empty() && !r.allow_any {
            return Err(format!(
                "no claims: it would match every job of issuer '{}'; name claims (repository, ref, ...) or set allow_any = true",
                r.issuer
            ));
        }
        let mut claims = Vec::new();
        for (k, v) in &r.claims {
            if VERIFIED_CLAIMS.contains(&k.as_str()) {
                return Err(format!(
                    "claim '{k}' is checked when the token is verified, not by rules"
                ));
            }
            claims.push((k.clone(), Matcher::new(k, v)?));
        }
        let approvers: Vec<String> = r
            .approvers
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        if !approvers.is_empty() && (approvers.len() as u64) < u64::from(r.approvals) {
            return Err(format!(
                "{} approvals need at least {} approvers; {} named",
                r.approvals,
                r.approvals,
                approvers.len()
            ));
        }
        if r.approvals == 0 && !approvers.is_empty() {
            return Err("approvers without approvals: say how many must approve".into());
        }
        Ok(Rule {
            issuer: r.issuer.clone(),
            publisher: r.publisher.clone(),
            scopes,
            name: r.name.clone(),
            approvals: r.approvals,
            approvers,
            claims,
        })
    }

    fn matches(&self, claims: &serde_json::Map<String, Value>) -> bool {
        self.claims
            .iter()
            .all(|(k, m)| claims.get(k).is_some_and(|v| m.matches(v)))
    }
}

/// The rules of every issuer, in file order.
#[derive(Debug, Clone, Default)]
pub struct Rules(Vec<Rule>);

impl Rules {
    pub fn new(rules: Vec<Rule>) -> Rules {
        Rules(rules)
    }

    /// The first rule of `issuer` that the claims match; otherwise the refusal's text, naming
    /// the job's own claims.
    pub fn find(
        &self,
        issuer: &str,
        claims: &serde_json::Map<String, Value>,
    ) -> Result<&Rule, String> {
        self.0
            .iter()
            .find(|r| r.issuer == issuer && r.matches(claims))
            .ok_or_else(|| {
                format!(
                    "no rule for issuer '{issuer}' matches this job ({})",
                    summary(claims)
                )
            })
    }
}

/// Every `[[identity.oidc.rule]]` compiles against the configured issuers: checked when the
/// configuration is opened, so a bad rule stops the server before it answers.
pub fn check_rules(section: &crate::config::IdentitySection) -> Result<(), String> {
    let issuers: BTreeSet<&str> = section.oidc.iter().map(|i| i.name.as_str()).collect();
    for r in section.rules() {
        Rule::compile(r, &issuers).map_err(|e| format!("identity.oidc.rule '{}': {e}", r.name))?;
    }
    Ok(())
}

/// The rule a recorded requester (`oidc:RULE`) names, as the config has it now.
pub fn rule_of_requester(
    section: &crate::config::IdentitySection,
    requester: &str,
) -> Option<Rule> {
    let name = requester.strip_prefix("oidc:")?;
    let issuers: BTreeSet<&str> = section.oidc.iter().map(|i| i.name.as_str()).collect();
    section
        .rules()
        .find(|r| r.name == name)
        .and_then(|r| Rule::compile(r, &issuers).ok())
}

/// The recorded identity (JSON) as an object, for API answers.
pub fn identity_value(json: Option<&str>) -> Value {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null)
}

/// One line for listings: `issuer=github repository=acme/app ref=refs/tags/v1 sha=… run_id=…`.
pub fn identity_line(json: &str) -> String {
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let mut parts = vec![];
    if let Some(i) = v["issuer"].as_str() {
        parts.push(format!("issuer={i}"));
    }
    for k in [
        "repository",
        "project_path",
        "ref",
        "sha",
        "workflow",
        "run_id",
        "pipeline_id",
        "actor",
        "user_login",
    ] {
        if let Some(c) = v["claims"].get(k) {
            parts.push(format!("{k}={}", shown(c)));
        }
    }
    parts.join(" ")
}

/// `repository=acme/app ref=refs/heads/main ...`: the job's identifying claims.
pub fn summary(claims: &serde_json::Map<String, Value>) -> String {
    let parts: Vec<String> = SUMMARY_CLAIMS
        .iter()
        .filter_map(|k| claims.get(*k).map(|v| format!("{k}={}", shown(v))))
        .collect();
    if parts.is_empty() {
        "no identifying claims".into()
    } else {
        parts.join(" ")
    }
}

fn shown(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_RECORDED)
        .collect()
}

/// A CI job a rule admitted: who it is, as recorded with what it asks for.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkloadIdentity {
    /// The issuer's name in the config (`github`).
    pub issuer: String,
    /// Its `iss`.
    pub issuer_url: String,
    /// The token's `sub`.
    pub subject: String,
    /// The rule that matched: the identity key policies name as `oidc:RULE`.
    pub rule: String,
    /// The claims that identify the run (repository or project, ref, sha, workflow, run id,
    /// actor, and those the rule names).
    pub claims: BTreeMap<String, Value>,
    /// Approvals the rule asks of every signature (beyond the key's policy), and from whom.
    #[serde(skip)]
    pub approvals: u32,
    #[serde(skip)]
    pub approvers: Vec<String>,
    /// The record's JSON ([`WorkloadIdentity::to_json`]), made once per token.
    #[serde(skip)]
    pub json: String,
    /// `repository=…,ref=…,sha=…,run_id=…`: the run, for the audit trail's actor.
    #[serde(skip)]
    pub run: String,
}

impl WorkloadIdentity {
    /// The identity of a job that `rule` admitted.
    pub fn new(
        rule: &Rule,
        issuer_url: &str,
        claims: &serde_json::Map<String, Value>,
    ) -> WorkloadIdentity {
        let mut kept = BTreeMap::new();
        let named = rule.claims.iter().map(|(k, _)| k.as_str());
        for k in RUN_CLAIMS.iter().copied().chain(named) {
            if let Some(v) = claims.get(k) {
                let v = match v {
                    Value::String(_) => Value::String(shown(v)),
                    Value::Bool(_) | Value::Number(_) => v.clone(),
                    _ => continue,
                };
                kept.insert(k.to_string(), v);
            }
        }
        let run = [
            "repository",
            "project_path",
            "ref",
            "sha",
            "run_id",
            "pipeline_id",
        ]
        .iter()
        .filter_map(|k| kept.get(*k).map(|v| format!("{k}={}", shown(v))))
        .collect::<Vec<_>>()
        .join(",");
        let mut w = WorkloadIdentity {
            issuer: rule.issuer.clone(),
            issuer_url: issuer_url.to_string(),
            subject: claims.get("sub").map(shown).unwrap_or_default(),
            rule: rule.name.clone(),
            claims: kept,
            approvals: rule.approvals,
            approvers: rule.approvers.clone(),
            json: String::new(),
            run,
        };
        w.json = w.to_json();
        w
    }

    /// The record's JSON: `{"kind":"oidc","issuer":...,"subject":...,"rule":...,"claims":{...}}`.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("kind".into(), "oidc".into());
        }
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(claims: &[(&str, ClaimValue)]) -> OidcRuleConfig {
        OidcRuleConfig {
            issuer: "github".into(),
            publisher: "acme".into(),
            scopes: vec!["sign".into()],
            claims: claims
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            name: "github:acme/app release".into(),
            allow_any: false,
            approvals: 0,
            approvers: vec![],
        }
    }

    fn issuers() -> BTreeSet<&'static str> {
        ["github"].into_iter().collect()
    }

    fn t(s: &str) -> ClaimValue {
        ClaimValue::Text(s.into())
    }

    #[test]
    fn globs() {
        let p = |s: &str| s.split('*').map(str::to_string).collect::<Vec<_>>();
        assert!(glob_match(&p("refs/tags/v*"), "refs/tags/v1.2"));
        assert!(!glob_match(&p("refs/tags/v*"), "refs/heads/main"));
        assert!(glob_match(
            &p("acme/app/.github/workflows/release.yml@refs/tags/*"),
            "acme/app/.github/workflows/release.yml@refs/tags/v1"
        ));
        assert!(glob_match(&p("a*b*c"), "aXXbYYc"));
        assert!(!glob_match(&p("a*b*c"), "aXXcYYb"));
        assert!(!glob_match(&p("ab*ba"), "aba"));
    }

    #[test]
    fn rules_are_checked_at_load() {
        let ok = Rule::compile(&rule(&[("repository", t("acme/app"))]), &issuers());
        assert!(ok.is_ok());
        let mut unknown = rule(&[("repository", t("acme/app"))]);
        unknown.issuer = "gitlab".into();
        assert!(Rule::compile(&unknown, &issuers())
            .unwrap_err()
            .contains("not the name"));
        assert!(Rule::compile(&rule(&[]), &issuers())
            .unwrap_err()
            .contains("allow_any"));
        let mut any = rule(&[]);
        any.allow_any = true;
        assert!(Rule::compile(&any, &issuers()).is_ok());
        for bad in ["refs/tags/[v]*", "a?b", "*"] {
            assert!(
                Rule::compile(&rule(&[("ref", t(bad))]), &issuers()).is_err(),
                "{bad}"
            );
        }
        assert!(Rule::compile(&rule(&[("aud", t("x"))]), &issuers()).is_err());
    }

    #[test]
    fn first_matching_rule_wins_and_refusals_name_the_job() {
        let tag = Rule::compile(
            &rule(&[
                ("repository", t("acme/app")),
                ("ref", t("refs/tags/v*")),
                ("ref_protected", ClaimValue::Bool(true)),
            ]),
            &issuers(),
        )
        .unwrap();
        let rules = Rules::new(vec![tag]);
        let claims = |r: &str| -> serde_json::Map<String, Value> {
            serde_json::from_str(&format!(
                r#"{{"repository":"acme/app","ref":"{r}","ref_protected":"true","sub":"repo:acme/app"}}"#
            ))
            .unwrap()
        };
        assert!(rules.find("github", &claims("refs/tags/v1")).is_ok());
        let no = rules
            .find("github", &claims("refs/heads/main"))
            .unwrap_err();
        assert!(
            no.contains("repository=acme/app ref=refs/heads/main"),
            "{no}"
        );
        assert!(rules.find("gitlab", &claims("refs/tags/v1")).is_err());
    }
}
