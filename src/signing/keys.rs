//! Publisher keys as the signing service sees them: their certificate (parsed once and cached,
//! checked usable before each signature), their policy, and the document the API and CLI show.

use super::*;

/// The parts of a publisher key's certificate every signature checks, parsed once per
/// certificate: the certificate is re-read from the store's cache on each request, parsing it
/// again each time cost more than the signature.
pub(crate) struct KeyCertFacts {
    pub(super) der: Vec<u8>,
    pub(super) not_before: i64,
    pub(super) not_after: i64,
    pub(super) serial: String,
    pub(super) spki: Vec<u8>,
}

impl KeyCertFacts {
    fn parse(der: &[u8]) -> Result<KeyCertFacts> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
            Error::Corrupt(format!("the stored key certificate does not parse: {e}"))
        })?;
        let v = cert.validity();
        Ok(KeyCertFacts {
            der: der.to_vec(),
            not_before: v.not_before.timestamp(),
            not_after: v.not_after.timestamp(),
            serial: hex::encode(cert.raw_serial()),
            spki: cert.public_key().raw.to_vec(),
        })
    }
}

/// A publisher key's certificate, checked usable now: its DER, the hallmark CA that issued it
/// (None for an external CA), and its SubjectPublicKeyInfo.
pub(crate) struct UsableCert {
    pub(crate) facts: Arc<KeyCertFacts>,
    pub(crate) ca: Option<String>,
}

impl UsableCert {
    pub(crate) fn der(&self) -> &[u8] {
        &self.facts.der
    }
    pub(super) fn spki(&self) -> &[u8] {
        &self.facts.spki
    }
}

impl Signing {
    /// The parsed facts of a key's certificate, from the cache when the stored certificate is
    /// the one parsed before (a new certificate for the label is parsed again).
    pub(super) fn key_cert_facts(&self, label: &str, der: &[u8]) -> Result<Arc<KeyCertFacts>> {
        if let Some(f) = self
            .key_cert_facts
            .lock()
            .ok()
            .and_then(|m| m.get(label).cloned())
        {
            if f.der == der {
                return Ok(f);
            }
        }
        let f = Arc::new(KeyCertFacts::parse(der)?);
        if let Ok(mut m) = self.key_cert_facts.lock() {
            m.insert(label.to_string(), f.clone());
        }
        Ok(f)
    }

    /// Checks that a key may sign now: it has a certificate, valid at this moment, not revoked.
    pub(super) fn usable_key_certificate(&self, key: &KeyRecord) -> Result<UsableCert> {
        let refuse = |why: String| -> Error { PolicyError::BadKey(why).into() };
        let der = key.cert_der.as_deref().ok_or_else(|| {
            refuse(format!(
                "key '{}' has no certificate and signs nothing",
                key.label
            ))
        })?;
        let facts = self.key_cert_facts(&key.label, der)?;
        let t = self.clock.now();
        if t < facts.not_before {
            return Err(refuse(format!(
                "the certificate of key '{}' is not valid before {}",
                key.label,
                crate::store::rfc3339(facts.not_before)
            )));
        }
        if t > facts.not_after {
            return Err(refuse(format!(
                "the certificate of key '{}' expired at {}",
                key.label,
                crate::store::rfc3339(facts.not_after)
            )));
        }
        let ca = match self.store.certificate_standing_cached(&facts.serial)? {
            Some(s) => {
                if let Some((reason, _)) = s.revoked {
                    let name = crate::revocation::reason::RevocationReason::from_code(reason)
                        .map(|r| r.name().to_string())
                        .unwrap_or_else(|| format!("reason {reason}"));
                    return Err(refuse(format!(
                        "the certificate of key '{}' (serial {}) is revoked ({name})",
                        key.label, facts.serial
                    )));
                }
                Some(s.ca)
            }
            // A certificate from an external CA: its revocation is that CA's to publish.
            None => None,
        };
        Ok(UsableCert { facts, ca })
    }

    /// The key's policy: the config's `[signing.keys.<label>]` when it names the key, else the
    /// one set with `hallmark key policy`, else the default (the service's own rules only).
    pub fn key_policy(&self, label: &str) -> Result<KeyPolicy> {
        if let Some(p) = self.config_policies.get(label) {
            return Ok(p.clone());
        }
        Ok(self
            .store
            .get_key_policy(label)?
            .map(|r| KeyPolicy::from_record(&r))
            .unwrap_or_default())
    }

    /// How many approvals a signature by `cred` with key `label` needs: the key's policy's, or
    /// more when the rule that admitted a CI job asks more. Refused when fewer approvers are
    /// named than approvals needed.
    pub(super) fn approvals_needed(
        &self,
        label: &str,
        policy: &KeyPolicy,
        cred: &Credential,
    ) -> Result<u32> {
        let rule = cred.workload.as_ref().map(|w| w.approvals).unwrap_or(0);
        let needed = policy.approvals.max(rule);
        let approvers = self.approvers_of(policy, &cred.name);
        if needed > 0 && (approvers.len() as u64) < u64::from(needed) {
            return Err(PolicyError::NotAuthorized(format!(
                "a signature with key '{label}' by '{}' needs {needed} approvals, but only {} approvers are named (the key's policy and the identity rule's approvers)",
                cred.name,
                approvers.len()
            ))
            .into());
        }
        Ok(needed)
    }

    /// Who may approve a signature request of `requester` under `policy`: the key's approvers,
    /// and those of the identity rule that admitted a CI job when that rule asks for approvals.
    pub(crate) fn approvers_of(&self, policy: &KeyPolicy, requester: &str) -> Vec<String> {
        let mut all = policy.approvers.clone();
        if let Some(rule) = crate::policy::workload::rule_of_requester(&self.identity, requester) {
            if rule.approvals > 0 {
                for a in rule.approvers {
                    if !all.contains(&a) {
                        all.push(a);
                    }
                }
            }
        }
        all
    }

    /// Where key `label`'s policy comes from: "config", "set" (`hallmark key policy`) or
    /// "default".
    pub fn key_policy_source(&self, label: &str) -> Result<&'static str> {
        Ok(if self.config_policies.contains_key(label) {
            "config"
        } else if self.store.get_key_policy(label)?.is_some() {
            "set"
        } else {
            "default"
        })
    }

    /// Sets a key's policy (replacing any earlier one). Refused for a key whose policy the
    /// config file sets.
    pub fn set_key_policy(&self, label: &str, policy: &KeyPolicy, actor: &str) -> Result<()> {
        self.keyring.key(label)?;
        if self.config_policies.contains_key(label) {
            return Err(Error::Conflict(format!(
                "the policy of key '{label}' is set in {} ([signing.keys.{label}]); change it \
                 there (a running server reads it when it starts)",
                self.config_path.display()
            )));
        }
        policy.validate()?;
        self.store.set_key_policy(&policy.to_record(label), actor)?;
        Ok(())
    }

    /// What `GET /api/v1/keys/{label}` and `hallmark --output json key show` say of a key: its
    /// publisher and algorithm, certificate (PEM) and the CA certificates above it, notAfter,
    /// and its policy with where the policy comes from.
    pub fn key_document(&self, key: &KeyRecord) -> Result<serde_json::Value> {
        let pem = |der: &[u8]| crate::pemfmt::encode("CERTIFICATE", der.to_vec());
        let (certificate, chain, not_after) = match &key.cert_der {
            Some(_) => {
                let (cert, chain) = self.key_certificate_chain(key)?;
                let not_after = X509Certificate::from_der(&cert)
                    .ok()
                    .map(|(_, c)| crate::store::rfc3339(c.validity().not_after.timestamp()));
                (
                    Some(pem(&cert)),
                    chain.iter().map(|c| pem(c)).collect::<Vec<_>>(),
                    not_after,
                )
            }
            None => (None, Vec::new(), None),
        };
        let p = self.key_policy(&key.label)?;
        Ok(serde_json::json!({
            "label": key.label,
            "publisher": key.publisher,
            "algorithm": key.algorithm,
            "certificate": certificate,
            "chain": chain,
            "not_after": not_after,
            "openpgp": self.openpgp_document(&key.label)?,
            "policy": {
                "formats": p.formats,
                "digests": p.digests,
                "signers": p.signers,
                "approvals": p.approvals,
                "approvers": p.approvers,
                "rate_per_minute": p.rate_per_minute,
                "source": self.key_policy_source(&key.label)?,
            },
        }))
    }

    /// A key's certificate and the CA certificates above it (root excluded), without the
    /// validity checks: for showing what an earlier signature was made with.
    pub fn key_certificate_chain(&self, key: &KeyRecord) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
        let der = key
            .cert_der
            .clone()
            .ok_or_else(|| Error::NotFound(format!("the certificate of key '{}'", key.label)))?;
        let (_, cert) = X509Certificate::from_der(&der).map_err(|e| {
            Error::Corrupt(format!("the stored key certificate does not parse: {e}"))
        })?;
        let chain = match self
            .store
            .certificate_standing(&hex::encode(cert.raw_serial()))?
        {
            Some(s) => self.keyring.chain(&s.ca)?,
            None => Vec::new(),
        };
        Ok((der, chain))
    }
}
