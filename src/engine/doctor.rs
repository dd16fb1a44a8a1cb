//! `hallmark doctor`: the database, the key stores, every CA's key and validity, the signing
//! policies and what each ACME directory issues for, one line each.

use super::*;

/// One line of `doctor`.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Hallmark {
    /// Health checks: database integrity, key store reachable, CA keys and expiry.
    pub fn doctor(&self) -> Vec<Check> {
        let mut out = Vec::new();
        match self.store.integrity_check() {
            Ok(p) if p.is_empty() => out.push(Check {
                name: "database".into(),
                ok: true,
                detail: format!("{} integrity ok", self.config.database_path().display()),
            }),
            Ok(p) => out.push(Check {
                name: "database".into(),
                ok: false,
                detail: p.join("; "),
            }),
            Err(e) => out.push(Check {
                name: "database".into(),
                ok: false,
                detail: e.to_string(),
            }),
        }
        if let Ok(publishers) = self.store.list_publishers() {
            for p in publishers
                .iter()
                .filter(|p| policy::identity::is_reserved_publisher(&p.id))
            {
                out.push(Check {
                    name: format!("publisher {}", p.id),
                    ok: false,
                    detail: format!(
                        "the id '{}' is reserved for hallmark's own certificates; it was created before that, and its tokens are refused: add the publisher again under another id, make new tokens, and disable this one's",
                        p.id
                    ),
                });
            }
        }
        for name in self.config.key_stores.keys() {
            let r = self
                .key_store(name)
                .and_then(|ks| ks.check().map_err(Error::from));
            out.push(Check {
                name: format!("key store {name}"),
                ok: r.is_ok(),
                detail: r.unwrap_or_else(|e| e.to_string()),
            });
        }
        match self.store.list_cas() {
            Ok(cas) => {
                let t = self.clock.now();
                for ca in cas {
                    let (ok, detail) = match (ca.cert_der.as_ref(), ca.not_after) {
                        (None, _) => (
                            false,
                            "no certificate yet (waiting for `ca import`)".to_string(),
                        ),
                        (Some(_), Some(na)) if na <= t => (false, "expired".to_string()),
                        (Some(_), Some(na)) => {
                            let days = (na - t) / 86_400;
                            let key = self
                                .ca(&ca.name)
                                .map(|_| "key ok".to_string())
                                .unwrap_or_else(|e| format!("key: {e}"));
                            let soon = days < 30;
                            (!soon && key == "key ok", format!("{days} days left, {key}"))
                        }
                        _ => (false, "no notAfter recorded".to_string()),
                    };
                    out.push(Check {
                        name: format!("CA {}", ca.name),
                        ok,
                        detail,
                    });
                }
            }
            Err(e) => out.push(Check {
                name: "CAs".into(),
                ok: false,
                detail: e.to_string(),
            }),
        }
        out.extend(self.acme_checks());
        out.extend(self.signing_policy_checks());
        out.extend(self.identity_rule_checks());
        out
    }

    /// Each `[[identity.oidc.rule]]`: its publisher exists (a job it admits can act), or not
    /// (yet).
    pub fn identity_rule_checks(&self) -> Vec<Check> {
        self.config
            .identity
            .rules()
            .map(|r| {
                let (ok, detail) = match self.store.get_publisher(&r.publisher) {
                    Ok(Some(_)) => (
                        true,
                        format!("jobs of issuer '{}' act for '{}'", r.issuer, r.publisher),
                    ),
                    Ok(None) => (
                        false,
                        format!(
                            "publisher '{}' does not exist (yet): the jobs it admits can do nothing",
                            r.publisher
                        ),
                    ),
                    Err(e) => (false, e.to_string()),
                };
                Check {
                    name: format!("identity.oidc.rule '{}'", r.name),
                    ok,
                    detail,
                }
            })
            .collect()
    }

    /// Each key policy the config sets: in force, or naming a key that does not exist (a typo,
    /// or a key not created yet: the policy applies once `key create` makes it).
    pub fn signing_policy_checks(&self) -> Vec<Check> {
        let mut labels: Vec<&String> = self.signing.config_policies().keys().collect();
        labels.sort();
        labels
            .into_iter()
            .map(|label| {
                let (ok, detail) = match self.store.get_key(label) {
                    Ok(Some(_)) => (true, "policy from the config file".to_string()),
                    Ok(None) => (
                        false,
                        "no such key (yet): the policy applies once `hallmark key create` makes it"
                            .to_string(),
                    ),
                    Err(e) => (false, e.to_string()),
                };
                Check {
                    name: format!("signing.keys.{label}"),
                    ok,
                    detail,
                }
            })
            .collect()
    }

    /// Which names each ACME directory will issue for. A profile without `[san] dns_suffix`
    /// issues for any DNS name a client proves control of — fine on a closed network, worth
    /// knowing anywhere else; a directory whose profile is missing cannot serve at all.
    pub fn acme_checks(&self) -> Vec<Check> {
        self.config
            .acme
            .directories
            .keys()
            .map(|name| {
                let check = |ok, detail: String| Check {
                    name: format!("ACME /acme/{name}/"),
                    ok,
                    detail,
                };
                match self.profiles.get(name) {
                    Err(e) => check(false, e.to_string()),
                    Ok(p) => match &p.san.dns_suffix {
                        Some(suffix) => check(true, format!("DNS names under {suffix}")),
                        None => check(
                            true,
                            format!(
                                "any DNS name a client proves control of (set [san] dns_suffix \
                                 in ca-profiles/{name}.toml to limit it)"
                            ),
                        ),
                    },
                }
            })
            .collect()
    }
}
