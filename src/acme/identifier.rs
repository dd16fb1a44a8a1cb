//! ACME identifiers (RFC 8555 §7.1.3, RFC 8738): `dns` names and `ip` addresses, checked for
//! syntax and against the profile's allowed names before an order is made.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{AcmeError, ProblemType};
use crate::profile::{Profile, SanKind};

/// One identifier, normalized (lower-case names, canonical addresses).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl Identifier {
    /// Parses and normalizes one identifier.
    pub fn parse(kind: &str, value: &str) -> Result<Identifier, AcmeError> {
        match kind {
            "dns" => {
                let v = value.trim_end_matches('.').to_ascii_lowercase();
                if v.starts_with("*.") {
                    return Err(AcmeError::new(
                        ProblemType::RejectedIdentifier,
                        format!("wildcard names ('{value}') are not issued"),
                    ));
                }
                if !valid_dns_name(&v) {
                    return Err(AcmeError::new(
                        ProblemType::RejectedIdentifier,
                        format!("'{value}' is not a valid DNS name"),
                    ));
                }
                if v.parse::<IpAddr>().is_ok() {
                    return Err(AcmeError::malformed(format!(
                        "'{value}' is an IP address: use an identifier of type 'ip'"
                    )));
                }
                Ok(Identifier {
                    kind: "dns".into(),
                    value: v,
                })
            }
            "ip" => {
                let ip: IpAddr = value
                    .parse()
                    .map_err(|_| AcmeError::malformed(format!("'{value}' is not an IP address")))?;
                Ok(Identifier {
                    kind: "ip".into(),
                    value: ip.to_string(),
                })
            }
            other => Err(AcmeError::new(
                ProblemType::UnsupportedIdentifier,
                format!("identifier type '{other}' is not supported (dns, ip)"),
            )),
        }
    }

    /// Refuses an identifier the profile does not allow (`[san] allowed`, `dns_suffix`).
    pub fn check_profile(&self, profile: &Profile) -> Result<(), AcmeError> {
        let kind = if self.kind == "dns" {
            SanKind::Dns
        } else {
            SanKind::Ip
        };
        if !profile.san.allowed.contains(&kind) {
            return Err(AcmeError::new(
                ProblemType::RejectedIdentifier,
                format!(
                    "profile '{}' does not allow {} names ({})",
                    profile.name, self.kind, self.value
                ),
            ));
        }
        if let (true, Some(suffix)) = (self.kind == "dns", &profile.san.dns_suffix) {
            let suffix = suffix.to_ascii_lowercase();
            let bare = suffix.trim_start_matches('.');
            // The policy's plain suffix match, and on a label boundary.
            let on_label = self.value.ends_with(&format!(".{bare}")) || self.value == bare;
            if !(self.value.ends_with(&suffix) && on_label) {
                return Err(AcmeError::new(
                    ProblemType::RejectedIdentifier,
                    format!(
                        "'{}' is outside the names profile '{}' allows ({suffix})",
                        self.value, profile.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// LDH labels of 1-63 characters, at most 253 in all.
pub fn valid_dns_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Parses an order's identifiers: at least one, at most 100, no duplicates, each allowed.
pub fn parse_order(v: &serde_json::Value, profile: &Profile) -> Result<Vec<Identifier>, AcmeError> {
    let list = v
        .get("identifiers")
        .and_then(|x| x.as_array())
        .ok_or_else(|| AcmeError::malformed("the order has no 'identifiers' array"))?;
    if list.is_empty() || list.len() > 100 {
        return Err(AcmeError::malformed("an order names 1 to 100 identifiers"));
    }
    let mut out: Vec<Identifier> = Vec::new();
    for x in list {
        let kind = x.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let value = x
            .get("value")
            .and_then(|t| t.as_str())
            .ok_or_else(|| AcmeError::malformed("an identifier has no 'value'"))?;
        let id = Identifier::parse(kind, value)?;
        id.check_profile(profile)?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out.sort();
    Ok(out)
}
