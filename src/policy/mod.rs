//! The registration authority: decides *whether* and *what* to issue, never signs.
//!
//! `approve` checks, in this order: the profile exists, the publisher exists and may use it,
//! approvals, the CSR (format, proof of possession, key quality), the key against the profile,
//! the subject against the publisher's *verified* record, and requested extensions. Its output,
//! [`Approved`], is the only thing the issuer accepts.

pub mod auth;
pub mod csr;
pub mod identity;
pub mod signing;
pub mod workload;

use crate::profile::{ExtensionAction, Profile, ProfileError, Profiles, SanKind};
use crate::store::{AuthoritiesRead, Publisher, StoreError};
pub use csr::{NameAttr, RequestedExtension, SanEntry, SubjectKey, VerifiedCsr};

/// Why a request was refused. A closed list, mapped to problem types at the HTTP edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("bad CSR: {0}")]
    BadCsr(String),
    #[error("bad CSR: the signature does not verify with the CSR's own public key (no proof of possession)")]
    BadSignature,
    #[error("key refused: {0}")]
    BadKey(String),
    #[error("subject attribute {attribute}='{csr_value}' contradicts the verified publisher record ({attribute}='{record_value}')")]
    SubjectMismatch {
        attribute: String,
        csr_value: String,
        record_value: String,
    },
    #[error("subject attribute {attribute}='{value}' is not part of the verified publisher record; remove it from the CSR")]
    UnexpectedAttribute { attribute: String, value: String },
    #[error("requested extension refused: {0}")]
    ExtensionRefused(String),
    /// The profile error's text: the name, the known profiles and the nearest one.
    #[error("{0}")]
    UnknownProfile(String),
    #[error("unknown publisher '{0}'")]
    UnknownPublisher(String),
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    #[error("approvals required: {0}")]
    ApprovalRequired(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request for a certificate, as the edges hand it in.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub profile: String,
    pub publisher: String,
    /// PEM or DER.
    pub csr: Vec<u8>,
    /// Who asks (a token id, `cli:USER`, a station name).
    pub requester: String,
    /// The device serial, for device profiles (else taken from the CSR's serialNumber).
    pub device_serial: Option<String>,
    /// The CN for profiles whose CN is `request-name`.
    pub name: Option<String>,
}

/// A request the RA approved: everything the CA needs, nothing it has to decide. Only this
/// module makes one (its fields are private, read through methods, so it cannot be built or
/// changed elsewhere), so holding an `Approved` means policy ran.
#[derive(Debug, Clone)]
pub struct Approved {
    profile: Profile,
    publisher: Publisher,
    csr: VerifiedCsr,
    subject: Vec<NameAttr>,
    sans: Vec<SanEntry>,
    requester: String,
    /// The device serial in the subject, for device profiles.
    device_serial: Option<String>,
    /// Who asked, when a CI job did: its OIDC identity as JSON (issuer, subject, rule, the
    /// run's claims); `None` for a hallmark token or the command line.
    identity: Option<String>,
}

impl Approved {
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }
    pub fn csr(&self) -> &VerifiedCsr {
        &self.csr
    }
    pub fn subject(&self) -> &[NameAttr] {
        &self.subject
    }
    pub fn sans(&self) -> &[SanEntry] {
        &self.sans
    }
    pub fn requester(&self) -> &str {
        &self.requester
    }
    /// The device serial in the subject, for device profiles.
    pub fn device_serial(&self) -> Option<&str> {
        self.device_serial.as_deref()
    }
    /// Who asked, when a CI job did: its OIDC identity as JSON.
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// The same approval, recorded as asked by `requester` (a token's actor string, with its
    /// address) and, for a CI job, its OIDC `identity`: who asked changes no decision.
    pub fn on_behalf_of(self, requester: String, identity: Option<String>) -> Approved {
        Approved {
            requester,
            identity,
            ..self
        }
    }
}

/// The subject of one of hallmark's own certificates (its API's TLS, its TSA, a station's
/// client certificate): `C` and `O` of `publisher`, and `cn`.
pub fn own_subject(publisher: &Publisher, cn: &str) -> Vec<NameAttr> {
    let attr = |k: &str, v: &str| NameAttr {
        kind: k.into(),
        value: v.to_string(),
    };
    vec![
        attr("C", &publisher.country),
        attr("O", &publisher.org),
        attr("CN", cn),
    ]
}

/// Approves one of hallmark's own certificates: a key hallmark made for itself under
/// `profile`, for `publisher` (the operator, or a station's publisher), subject
/// [`own_subject`]. The key must be one the profile allows, as for any request.
pub fn approve_own(
    profile: &Profile,
    publisher: Publisher,
    csr: VerifiedCsr,
    cn: &str,
    sans: Vec<SanEntry>,
    requester: &str,
) -> Result<Approved, PolicyError> {
    check_key_against_profile(profile, csr.key)?;
    Ok(Approved {
        profile: profile.clone(),
        subject: own_subject(&publisher, cn),
        publisher,
        csr,
        sans,
        requester: requester.to_string(),
        device_serial: None,
        identity: None,
    })
}

/// Runs every policy check on `req`.
pub fn approve(
    profiles: &Profiles,
    store: &dyn AuthoritiesRead,
    req: &IssueRequest,
) -> Result<Approved, PolicyError> {
    let publisher = lookup_publisher(profiles, store, req)?;
    approve_for(profiles, publisher, req)
}

/// The publisher a request names, after checking the profile exists (so an unknown profile is
/// reported as such even for an unknown publisher).
pub fn lookup_publisher(
    profiles: &Profiles,
    store: &dyn AuthoritiesRead,
    req: &IssueRequest,
) -> Result<Publisher, PolicyError> {
    profile_of(profiles, req)?;
    store
        .get_publisher(&req.publisher)?
        .ok_or_else(|| PolicyError::UnknownPublisher(req.publisher.clone()))
}

fn profile_of<'a>(profiles: &'a Profiles, req: &IssueRequest) -> Result<&'a Profile, PolicyError> {
    match profiles.get(&req.profile) {
        Ok(p) => Ok(p),
        Err(e @ ProfileError::Unknown { .. }) => Err(PolicyError::UnknownProfile(e.to_string())),
        Err(e) => Err(PolicyError::BadRequest(e.to_string())),
    }
}

/// Every check after the publisher lookup; `publisher` must be the record `req` names.
pub fn approve_for(
    profiles: &Profiles,
    publisher: Publisher,
    req: &IssueRequest,
) -> Result<Approved, PolicyError> {
    check(profiles, publisher, req, Approvals::Required)
}

/// Whether the approvals a profile asks for are already in hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approvals {
    /// Direct issuance: a profile that needs approvals refuses.
    Required,
    /// The approvals workflow: everything else is checked; the caller holds (or will collect)
    /// the approvals the profile names.
    Workflow,
}

/// Every check after the publisher lookup, with the approvals rule as `approvals` says.
pub fn check(
    profiles: &Profiles,
    publisher: Publisher,
    req: &IssueRequest,
    approvals: Approvals,
) -> Result<Approved, PolicyError> {
    let profile = profile_of(profiles, req)?;
    if publisher.id != req.publisher {
        return Err(PolicyError::BadRequest(format!(
            "publisher record '{}' does not match the request's '{}'",
            publisher.id, req.publisher
        )));
    }
    if !publisher.profiles.iter().any(|p| p == &profile.name) {
        return Err(PolicyError::NotAuthorized(format!(
            "publisher '{}' may not use profile '{}' (its profiles: {})",
            publisher.id,
            profile.name,
            publisher.profiles.join(", ")
        )));
    }
    if let (Some(a), Approvals::Required) = (&profile.approvals, approvals) {
        return Err(PolicyError::ApprovalRequired(format!(
            "profile '{}' needs {} approval(s) from {}; direct issuance is refused (use the approvals workflow)",
            profile.name,
            a.required,
            a.approvers.join(", ")
        )));
    }
    let der = csr::decode(&req.csr)?;
    let verified = csr::verify(&der)?;
    check_key_against_profile(profile, verified.key)?;
    let subject = identity::build_subject(profile, &publisher, &verified, req)?;
    identity::check_csr_subject(&verified.subject, &subject)?;
    let sans = check_extensions(profile, &verified)?;
    let device_serial = subject
        .iter()
        .find(|a| a.kind == "serialNumber")
        .map(|a| a.value.clone());
    Ok(Approved {
        profile: profile.clone(),
        publisher,
        csr: verified,
        subject,
        sans,
        requester: req.requester.clone(),
        device_serial,
        identity: None,
    })
}

/// Whether `profile` allows `key` (its algorithm, and an RSA key's size): policy's check, which
/// the issuer repeats before it signs.
pub fn check_key_against_profile(profile: &Profile, key: SubjectKey) -> Result<(), PolicyError> {
    if !profile.allows_key(key.allowed_as()) {
        let allowed: Vec<String> = profile
            .key
            .algorithms
            .iter()
            .map(|a| format!("{a:?}").to_lowercase())
            .collect();
        return Err(PolicyError::BadKey(format!(
            "{} keys are not allowed by profile '{}' (allowed: {})",
            key.describe(),
            profile.name,
            allowed.join(", ")
        )));
    }
    if let SubjectKey::Rsa { bits } = key {
        if bits < profile.key.rsa_min_bits {
            return Err(PolicyError::BadKey(format!(
                "RSA-{bits} is below the minimum of {} bits for profile '{}'",
                profile.key.rsa_min_bits, profile.name
            )));
        }
    }
    Ok(())
}

fn check_extensions(profile: &Profile, csr: &VerifiedCsr) -> Result<Vec<SanEntry>, PolicyError> {
    let mut sans = Vec::new();
    for ext in &csr.extensions {
        match ext {
            RequestedExtension::BasicConstraints { ca: true } => {
                return Err(PolicyError::ExtensionRefused(
                    "the CSR asks for basicConstraints CA:TRUE; hallmark never makes a CA certificate from a CSR".into(),
                ))
            }
            RequestedExtension::BasicConstraints { ca: false } => {}
            RequestedExtension::SubjectAltName(entries) if !profile.san.allowed.is_empty() => {
                for e in entries {
                    let kind = match e {
                        SanEntry::Dns(_) => Some(SanKind::Dns),
                        SanEntry::Email(_) => Some(SanKind::Email),
                        SanEntry::Uri(_) => Some(SanKind::Uri),
                        SanEntry::Ip(_) => Some(SanKind::Ip),
                        SanEntry::Other(_) => None,
                    };
                    if !kind.is_some_and(|k| profile.san.allowed.contains(&k)) {
                        return Err(PolicyError::ExtensionRefused(format!(
                            "subjectAltName entry {e:?} is not allowed by profile '{}'",
                            profile.name
                        )));
                    }
                    if let (SanEntry::Dns(d), Some(suffix)) = (e, &profile.san.dns_suffix) {
                        if !d.to_ascii_lowercase().ends_with(&suffix.to_ascii_lowercase()) {
                            return Err(PolicyError::ExtensionRefused(format!(
                                "DNS name '{d}' is outside '{suffix}'"
                            )));
                        }
                    }
                    sans.push(e.clone());
                }
            }
            other => {
                if profile.csr.requested_extensions == ExtensionAction::Refuse {
                    let what = match other {
                        RequestedExtension::SubjectAltName(_) => "subjectAltName".to_string(),
                        RequestedExtension::Other { oid, name } => format!("{name} ({oid})"),
                        RequestedExtension::BasicConstraints { .. } => "basicConstraints".to_string(),
                    };
                    return Err(PolicyError::ExtensionRefused(format!(
                        "profile '{}' refuses requested extensions, and the CSR asks for {what}",
                        profile.name
                    )));
                }
            }
        }
    }
    Ok(sans)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::issuer::{self, CaCertSpec, CaHandle, IssueError, Urls};
    use crate::keys::{soft::SoftKeyStore, KeyAlgorithm, KeyStore, SecretSource};
    use crate::profile::{AllowedKey, Validity};
    use crate::store::{CaRecord, CaRole};

    /// The CA repeats policy's key check before it signs: an approval whose profile no longer
    /// allows the key (here changed after approval, as only a bug could) is refused by the
    /// issuer, and the same approval with the key allowed is laid out.
    #[test]
    fn the_issuer_repeats_the_key_check_policy_made() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::env::set_var("HALLMARK_POLICY_TEST_PASS", "a passphrase for the test");
        let keys = SoftKeyStore::new(
            dir.path(),
            SecretSource::Env("HALLMARK_POLICY_TEST_PASS".into()),
        );
        let profiles = Profiles::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ca-profiles"),
        )
        .expect("shipped profiles");
        let profile = profiles.get("station").expect("station").clone();
        let now = 1_800_000_000;
        let ca_key = keys.generate("ca", KeyAlgorithm::P256).expect("CA key");
        let operator = Publisher {
            id: "acme".into(),
            org: "Acme Corp".into(),
            country: "DE".into(),
            state: None,
            locality: None,
            profiles: vec![profile.name.clone()],
            created_at: now,
        };
        let spec = CaCertSpec {
            subject: own_subject(&operator, "Acme Code Signing CA"),
            validity: Validity::Days(3650),
            path_len: Some(0),
            responder: false,
            eku: vec![],
            policies: vec![],
            crl_url: None,
            ca_issuers_url: None,
        };
        let ca_der = issuer::issue_ca_certificate(&spec, ca_key.spki_der(), None, &*ca_key, now)
            .expect("CA certificate");
        let record = CaRecord {
            name: profile.issuer.clone(),
            role: CaRole::Issuing,
            parent: None,
            purpose: None,
            key_store: "default".into(),
            key_label: "ca".into(),
            key_algorithm: "p256".into(),
            csr_der: None,
            cert_der: Some(ca_der),
            serial: None,
            subject: None,
            not_before: Some(now),
            not_after: None,
            created_at: now,
        };
        let ca = CaHandle::new(record, Arc::clone(&ca_key)).expect("CA handle");
        let leaf = keys.generate("leaf", KeyAlgorithm::P256).expect("leaf key");
        let csr = issuer::make_csr(&own_subject(&operator, "release"), &*leaf).expect("CSR");
        let approved = approve_own(
            &profile,
            operator,
            csr::verify(&csr).expect("verified"),
            "release",
            vec![],
            "test",
        )
        .expect("approved");
        let urls = Urls {
            public_base: "http://127.0.0.1:8080".into(),
            crl_shards: 1,
        };
        let serial = issuer::random_serial(now * 1000);
        issuer::prepare_leaf(&approved, &ca, &urls, "1.3.6.1.4.1.99999.1", now, serial)
            .expect("an allowed key is laid out");

        let mut changed = approved.clone();
        changed.profile.key.algorithms = vec![AllowedKey::Rsa];
        let e = issuer::prepare_leaf(&changed, &ca, &urls, "1.3.6.1.4.1.99999.1", now, serial)
            .expect_err("a key the profile does not allow");
        assert!(
            matches!(&e, IssueError::NotApproved(why) if why.contains("not allowed by profile 'station'")),
            "{e}"
        );
    }
}
