//! Publisher identity: the subject comes from the verified record, never from the CSR.
//!
//! The CSR's subject is only *compared*: each attribute it carries must equal the attribute the
//! record yields, or the request is refused naming the attribute.

use super::{IssueRequest, NameAttr, PolicyError, VerifiedCsr};
use crate::profile::{CommonName, Profile, Requirement, SubjectAttr};
use crate::store::Publisher;

/// Builds the subject (in DN order C, ST, L, O, serialNumber, CN) for `profile`.
pub fn build_subject(
    profile: &Profile,
    publisher: &Publisher,
    csr: &VerifiedCsr,
    req: &IssueRequest,
) -> Result<Vec<NameAttr>, PolicyError> {
    let attr = |kind: &str, value: &str| NameAttr {
        kind: kind.to_string(),
        value: value.to_string(),
    };
    let mut out = Vec::new();
    let wants = |a: SubjectAttr| profile.subject.attributes.contains(&a);
    if wants(SubjectAttr::C) {
        out.push(attr("C", &publisher.country));
    }
    if wants(SubjectAttr::ST) {
        if let Some(st) = &publisher.state {
            out.push(attr("ST", st));
        }
    }
    if wants(SubjectAttr::L) {
        if let Some(l) = &publisher.locality {
            out.push(attr("L", l));
        }
    }
    if wants(SubjectAttr::O) {
        out.push(attr("O", &publisher.org));
    }
    let device_serial = match profile.subject.device_serial {
        Requirement::Required => {
            let from_csr = csr
                .subject
                .iter()
                .find(|a| a.kind == "serialNumber")
                .map(|a| a.value.clone());
            let serial = match (&req.device_serial, from_csr) {
                (Some(given), Some(in_csr)) if *given != in_csr => {
                    return Err(PolicyError::SubjectMismatch {
                        attribute: "serialNumber".into(),
                        csr_value: in_csr,
                        record_value: given.clone(),
                    })
                }
                (Some(given), _) => given.clone(),
                (None, Some(in_csr)) => in_csr,
                (None, None) => {
                    return Err(PolicyError::BadRequest(format!(
                        "profile '{}' needs a device serial (give one, or put it in the CSR subject serialNumber)",
                        profile.name
                    )))
                }
            };
            let ok = profile
                .device_serial_regex
                .as_ref()
                .is_some_and(|re| re.is_match(&serial));
            if !ok {
                return Err(PolicyError::BadRequest(format!(
                    "device serial '{serial}' does not match the pattern of profile '{}'",
                    profile.name
                )));
            }
            let printable = serial
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c));
            if !printable {
                return Err(PolicyError::BadRequest(format!(
                    "device serial '{serial}' has characters a PrintableString cannot hold (use A-Z a-z 0-9 and ' ( ) + , - . / : = ? space)"
                )));
            }
            out.push(attr("serialNumber", &serial));
            Some(serial)
        }
        Requirement::Forbidden => {
            if req.device_serial.is_some() {
                return Err(PolicyError::BadRequest(format!(
                    "profile '{}' takes no device serial",
                    profile.name
                )));
            }
            None
        }
    };
    match profile.subject.common_name {
        CommonName::Organization => out.push(attr("CN", &publisher.org)),
        CommonName::DeviceSerial => {
            if let Some(s) = &device_serial {
                out.push(attr("CN", s));
            }
        }
        CommonName::RequestName => {
            let name = req.name.as_deref().ok_or_else(|| {
                PolicyError::BadRequest(format!(
                    "profile '{}' needs a name for the certificate's CN",
                    profile.name
                ))
            })?;
            if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
                return Err(PolicyError::BadRequest(format!(
                    "'{name}' is not a usable CN (1-64 printable characters)"
                )));
            }
            out.push(attr("CN", name));
        }
        CommonName::None => {}
    }
    if let Some(vid) = &profile.subject.matter_vid {
        out.push(attr("matterVID", vid));
    }
    if let Some(pid) = &profile.subject.matter_pid {
        out.push(attr("matterPID", pid));
    }
    Ok(out)
}

/// Every attribute of the CSR subject must be one the record yields, with the same value.
pub fn check_csr_subject(csr_subject: &[NameAttr], built: &[NameAttr]) -> Result<(), PolicyError> {
    for a in csr_subject {
        let matching: Vec<&NameAttr> = built.iter().filter(|b| b.kind == a.kind).collect();
        if matching.is_empty() {
            return Err(PolicyError::UnexpectedAttribute {
                attribute: a.kind.clone(),
                value: a.value.clone(),
            });
        }
        let same = |b: &&NameAttr| {
            if a.kind == "C" {
                b.value.eq_ignore_ascii_case(a.value.trim())
            } else {
                b.value == a.value.trim()
            }
        };
        if !matching.iter().any(same) {
            return Err(PolicyError::SubjectMismatch {
                attribute: a.kind.clone(),
                csr_value: a.value.clone(),
                record_value: matching[0].value.clone(),
            });
        }
    }
    Ok(())
}

/// Checks a publisher record before it is stored.
/// The publisher id hallmark's own certificates (API TLS, TSA, …) are recorded under. No
/// ordinary publisher may take it (or the `hallmark-` / `hallmark_` names beside it): it would own
/// and could revoke those certificates.
pub const INTERNAL_PUBLISHER: &str = "hallmark";

/// Whether `id` is reserved for hallmark's internal identities.
pub fn is_reserved_publisher(id: &str) -> bool {
    id == INTERNAL_PUBLISHER || id.starts_with("hallmark-") || id.starts_with("hallmark_")
}

pub fn validate_publisher(p: &Publisher) -> Result<(), PolicyError> {
    let bad = |m: String| Err(PolicyError::BadRequest(m));
    if is_reserved_publisher(&p.id) {
        return bad(format!(
            "publisher id '{}' is reserved for hallmark's own certificates (API TLS, TSA); choose another id",
            p.id
        ));
    }
    let id_ok = !p.id.is_empty()
        && p.id.len() <= 64
        && p.id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !id_ok {
        return bad(format!(
            "publisher id '{}' must be 1-64 of a-z 0-9 - _",
            p.id
        ));
    }
    if p.country.len() != 2 || !p.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return bad(format!(
            "country '{}' must be a two-letter ISO 3166 code in capitals, like US",
            p.country
        ));
    }
    for (field, v) in [
        ("org", Some(&p.org)),
        ("state", p.state.as_ref()),
        ("locality", p.locality.as_ref()),
    ] {
        if let Some(v) = v {
            if v.trim().is_empty()
                || v.len() > 64
                || v.trim() != v
                || v.chars().any(|c| c.is_control())
            {
                return bad(format!(
                    "{field} '{v}' must be 1-64 printable characters without surrounding spaces"
                ));
            }
        }
    }
    if p.state.is_none() && p.locality.is_none() {
        return bad("give --state or --locality (code-signing subjects need L or ST)".into());
    }
    Ok(())
}
