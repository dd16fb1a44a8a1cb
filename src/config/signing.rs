//! `[signing.keys.<label>]`: key policies kept in the file, as data for the policy layer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Signing keys' policies kept in the config file, `[signing.keys.<label>]`. A key named here
/// takes its policy from the file, and `hallmark key policy` refuses to change it: the file
/// (reviewed and versioned like the rest of the deployment) stays the one place it is set.
/// Keys not named here keep the policy set with `hallmark key policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningSection {
    pub keys: BTreeMap<String, KeyPolicySection>,
}

impl SigningSection {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// One `[signing.keys.<label>]`, written as the `hallmark key policy` flags are. Plain data:
/// the policy layer normalizes and checks it
/// ([`KeyPolicy::from_config`](crate::policy::signing::KeyPolicy::from_config)) when the
/// configuration is opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyPolicySection {
    pub formats: Vec<String>,
    pub digests: Vec<String>,
    pub signers: Vec<String>,
    /// Approvals needed before a signature is made; 0 signs at once.
    pub approvals: u32,
    pub approvers: Vec<String>,
    /// Signatures (and signature requests) per minute; `None` is unlimited.
    pub rate_per_minute: Option<u32>,
}
