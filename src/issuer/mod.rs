//! The CA: builds certificates from what policy approved, lints them, and signs.
//!
//! Issuance is two-phase (Boulder's `issuance`): [`prepare_leaf`] lays out the to-be-signed
//! certificate and lints it; the caller records that intent; only then [`sign`] asks the key
//! store to sign exactly those bytes. The issuer never decides policy: it re-checks the few
//! facts it relies on (the profile belongs to this CA, the key is the CSR's) and nothing else.

pub mod cms;
pub mod crl;
pub mod extensions;
pub mod lint;
pub mod ocsp;
pub mod tsp;

use std::sync::Arc;

use ::time::OffsetDateTime;
use rcgen::{DistinguishedName, DnType, DnValue, SerialNumber};
use x509_parser::prelude::*;

use crate::der::split_signed;
use crate::keys::{
    resign, subject_public_key_bits, KeyError, SignatureScheme, Signer, TemplateKey,
};
use crate::policy::{Approved, NameAttr};
use crate::profile::{Validity, CA_POLICY};
use crate::store::CaRecord;
use extensions as ext;

/// Errors from the CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    #[error("the lint refused the certificate: {}", .0.join("; "))]
    Lint(Vec<String>),
    #[error("CA '{0}' has no certificate yet (import it with `hallmark ca import`)")]
    NoCertificate(String),
    #[error("CA '{ca}' cannot issue for profile '{profile}' (the profile names '{wanted}')")]
    WrongCa {
        ca: String,
        profile: String,
        wanted: String,
    },
    #[error("CA '{0}' has expired")]
    Expired(String),
    /// What policy approved fails the CA's own repeat of its checks (a bug, never the client's).
    #[error("the CA refuses what policy approved: {0}")]
    NotApproved(String),
    #[error("certificate encoding: {0}")]
    Encoding(String),
    /// A certificate given to hallmark (to import or record) that does not parse.
    #[error("certificate does not parse: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl From<rcgen::Error> for IssueError {
    fn from(e: rcgen::Error) -> Self {
        IssueError::Encoding(e.to_string())
    }
}

impl From<crate::keys::ResignError> for IssueError {
    fn from(e: crate::keys::ResignError) -> Self {
        match e {
            crate::keys::ResignError::Key(k) => IssueError::Key(k),
            crate::keys::ResignError::Der(d) => IssueError::Encoding(d.to_string()),
        }
    }
}

/// Where certificates point relying parties: CRLs, CA certificates and OCSP.
#[derive(Debug, Clone)]
pub struct Urls {
    pub public_base: String,
    /// CRL partitions per issuing CA (`crl.shards`; 1: none).
    pub crl_shards: u32,
}

impl Urls {
    /// The full CRL of a CA.
    pub fn crl(&self, ca: &str) -> String {
        format!("{}/crl/{ca}.crl", self.public_base.trim_end_matches('/'))
    }
    /// One partition of a CA's CRL.
    pub fn crl_shard(&self, ca: &str, shard: u32) -> String {
        format!(
            "{}/crl/{ca}/shard-{shard}.crl",
            self.public_base.trim_end_matches('/')
        )
    }
    /// The CRL a certificate with `serial` names: its partition when CRLs are partitioned.
    pub fn crl_for_serial(&self, ca: &str, serial: &[u8]) -> String {
        match crl::shard_of(serial, self.crl_shards) {
            Some(k) => self.crl_shard(ca, k),
            None => self.crl(ca),
        }
    }
    pub fn ca_cert(&self, ca: &str) -> String {
        format!("{}/ca/{ca}.crt", self.public_base.trim_end_matches('/'))
    }
    pub fn ocsp(&self) -> String {
        format!("{}/ocsp", self.public_base.trim_end_matches('/'))
    }
}

/// A CA ready to sign: its record, certificate facts and key.
pub struct CaHandle {
    pub record: CaRecord,
    pub cert_der: Vec<u8>,
    pub signer: Arc<dyn Signer>,
    pub scheme: SignatureScheme,
    pub subject_raw: Vec<u8>,
    pub ski: Vec<u8>,
    pub not_after: i64,
    rcgen_issuer: rcgen::Issuer<'static, TemplateKey>,
}

impl std::fmt::Debug for CaHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaHandle")
            .field("name", &self.record.name)
            .finish_non_exhaustive()
    }
}

impl CaHandle {
    pub fn new(record: CaRecord, signer: Arc<dyn Signer>) -> Result<CaHandle, IssueError> {
        let cert_der = record
            .cert_der
            .clone()
            .ok_or_else(|| IssueError::NoCertificate(record.name.clone()))?;
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|e| IssueError::Encoding(format!("CA '{}' certificate: {e}", record.name)))?;
        if cert.public_key().raw != signer.spki_der() {
            return Err(IssueError::Encoding(format!(
                "CA '{}': the certificate's public key is not the key '{}' in the key store",
                record.name,
                signer.label()
            )));
        }
        let ski = match cert
            .get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        {
            Ok(Some(e)) => match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => k.0.to_vec(),
                _ => ext::key_id(&subject_public_key_bits(signer.spki_der())?),
            },
            _ => ext::key_id(&subject_public_key_bits(signer.spki_der())?),
        };
        let scheme = signer.algorithm().default_scheme();
        let template_key = TemplateKey::new(signer.spki_der(), scheme)?;
        let rcgen_issuer = rcgen::Issuer::from_ca_cert_der(&cert_der.clone().into(), template_key)?;
        Ok(CaHandle {
            subject_raw: cert.subject().as_raw().to_vec(),
            not_after: cert.validity().not_after.timestamp(),
            ski,
            scheme,
            cert_der,
            signer,
            record,
            rcgen_issuer,
        })
    }
}

/// A certificate laid out and linted, waiting to be recorded and signed.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub serial: String,
    pub template: Vec<u8>,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub spki_sha256: String,
}

impl Prepared {
    pub fn tbs(&self) -> Result<Vec<u8>, IssueError> {
        Ok(split_signed(&self.template)
            .map_err(|e| IssueError::Encoding(e.to_string()))?
            .tbs
            .to_vec())
    }
}

/// A serial number: 16 octets, positive, with no leading zero octet. The first octet is 0x01,
/// the next six the time in milliseconds (big-endian), the last nine (72 bits) from the OS
/// CSPRNG.
///
/// Why not 16 random octets: the store indexes certificates by serial three times, and random
/// keys put every new certificate on a random page of each index. At a few hundred thousand
/// certificates a batch's commit then wrote most of those indexes again (the factory line's
/// writer spent its time there). With the time first, serials issued together sort together and
/// the indexes grow at their ends. The random part is still more than the 64 CSPRNG bits the
/// CA/Browser Forum asks for, so serials stay unpredictable and a collision needs the same
/// millisecond and 72 equal random bits (the store refuses a duplicate serial anyway).
/// `unix_millis` is the issuing service's clock.
pub fn random_serial(unix_millis: i64) -> [u8; 16] {
    let ms = u64::try_from(unix_millis).unwrap_or(0);
    let mut b = [0u8; 16];
    b[0] = 0x01;
    b[1..7].copy_from_slice(&ms.to_be_bytes()[2..8]);
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut b[7..]);
    b
}

/// The subject as rcgen writes it: C and serialNumber as PrintableString, the rest UTF8String.
pub fn distinguished_name(attrs: &[NameAttr]) -> Result<DistinguishedName, IssueError> {
    let mut dn = DistinguishedName::new();
    for a in attrs {
        let (t, printable) = match a.kind.as_str() {
            "C" => (DnType::CountryName, true),
            "ST" => (DnType::StateOrProvinceName, false),
            "L" => (DnType::LocalityName, false),
            "O" => (DnType::OrganizationName, false),
            "OU" => (DnType::OrganizationalUnitName, false),
            "CN" => (DnType::CommonName, false),
            "serialNumber" => (DnType::CustomDnType(vec![2, 5, 4, 5]), true),
            // Matter (CSA) vendor and product ids: UTF8String of four upper-case hex digits.
            "matterVID" => (
                DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 37244, 2, 1]),
                false,
            ),
            "matterPID" => (
                DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 37244, 2, 2]),
                false,
            ),
            other => {
                return Err(IssueError::Encoding(format!(
                    "subject attribute {other} is not supported"
                )))
            }
        };
        let v = if printable {
            DnValue::PrintableString(a.value.as_str().try_into().map_err(|_| {
                IssueError::Encoding(format!("{}='{}' is not a PrintableString", a.kind, a.value))
            })?)
        } else {
            DnValue::Utf8String(a.value.clone())
        };
        dn.push(t, v);
    }
    Ok(dn)
}

pub fn subject_string(attrs: &[NameAttr]) -> String {
    attrs
        .iter()
        .map(|a| format!("{}={}", a.kind, a.value.replace(',', "\\,")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn to_time(unix: i64) -> Result<OffsetDateTime, IssueError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| IssueError::Encoding(e.to_string()))
}

const FOREVER: OffsetDateTime = ::time::macros::datetime!(9999-12-31 23:59:59 UTC);

/// The subject's public key as rcgen wants it (algorithm from the SPKI).
fn subject_key(spki_der: &[u8]) -> Result<rcgen::SubjectPublicKeyInfo, IssueError> {
    rcgen::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| IssueError::Encoding(format!("subject public key: {e}")))
}

/// A CSR's public key as rcgen writes it: the algorithm comes from the key type policy already
/// classified, so no second parse of the SubjectPublicKeyInfo is needed.
struct LeafKey<'a> {
    bits: &'a [u8],
    alg: &'static rcgen::SignatureAlgorithm,
}

impl rcgen::PublicKeyData for LeafKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.bits
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

fn leaf_key_algorithm(key: crate::policy::SubjectKey) -> &'static rcgen::SignatureAlgorithm {
    use crate::policy::SubjectKey;
    match key {
        SubjectKey::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        SubjectKey::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        SubjectKey::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        SubjectKey::P521 => &rcgen::PKCS_ECDSA_P521_SHA512,
        SubjectKey::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

/// Lays out and lints an end-entity certificate for an approved request.
pub fn prepare_leaf(
    approved: &Approved,
    ca: &CaHandle,
    urls: &Urls,
    policy_oid: &str,
    now: i64,
    serial: [u8; 16],
) -> Result<Prepared, IssueError> {
    let p = approved.profile();
    if p.issuer != ca.record.name {
        return Err(IssueError::WrongCa {
            ca: ca.record.name.clone(),
            profile: p.name.clone(),
            wanted: p.issuer.clone(),
        });
    }
    if ca.not_after <= now {
        return Err(IssueError::Expired(ca.record.name.clone()));
    }
    // Defence in depth, as Boulder's CA repeats the RA's checks: the key is one the profile
    // allows, and there is a subject to certify.
    crate::policy::check_key_against_profile(p, approved.csr().key)
        .map_err(|e| IssueError::NotApproved(e.to_string()))?;
    if approved.subject().is_empty() || approved.subject().iter().any(|a| a.value.is_empty()) {
        return Err(IssueError::NotApproved(
            "the subject is empty or has an empty attribute".into(),
        ));
    }
    let mut params = rcgen::CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.distinguished_name = distinguished_name(approved.subject())?;
    params.is_ca = rcgen::IsCa::NoCa;
    params.use_authority_key_identifier_extension = false;
    let not_before = now - i64::from(p.backdate_seconds);
    params.not_before = to_time(not_before)?;
    params.not_after = match p.validity {
        Validity::Days(d) => to_time((now + i64::from(d) * 86_400).min(ca.not_after))?,
        Validity::Forever => FOREVER,
    };
    let spki = &approved.csr().spki_der;
    let bits = subject_public_key_bits(spki)?;
    let mut exts = vec![
        ext::basic_constraints(false, None),
        ext::key_usage(&p.key_usage.iter().map(|k| k.bit()).collect::<Vec<_>>()),
    ];
    if !p.eku.is_empty() {
        let oids: Vec<&str> = p.eku.iter().map(|e| e.oid()).collect();
        exts.push(ext::ext_key_usage(&oids, p.eku_critical));
    }
    exts.push(ext::subject_key_id(&ext::key_id(&bits)));
    exts.push(ext::authority_key_id(&ca.ski));
    if !approved.sans().is_empty() {
        exts.push(ext::subject_alt_name(approved.sans()));
    }
    if !p.policies.is_empty() {
        let oids: Vec<String> = p
            .policies
            .iter()
            .map(|o| {
                if o == CA_POLICY {
                    policy_oid.to_string()
                } else {
                    o.clone()
                }
            })
            .collect();
        exts.push(ext::certificate_policies(&oids));
    }
    if p.crl_distribution_point {
        exts.push(ext::crl_distribution_point(
            &urls.crl_for_serial(&ca.record.name, &serial),
        ));
    }
    if p.authority_info_access {
        exts.push(ext::authority_info_access(
            Some(&urls.ocsp()),
            Some(&urls.ca_cert(&ca.record.name)),
        ));
    }
    if p.ocsp_no_check {
        exts.push(ext::ocsp_nocheck());
    }
    params.custom_extensions = exts.into_iter().map(ext::Ext::into_rcgen).collect();

    let leaf_key = LeafKey {
        bits: &bits,
        alg: leaf_key_algorithm(approved.csr().key),
    };
    let template = params.signed_by(&leaf_key, &ca.rcgen_issuer)?;
    let template = template.der().to_vec();
    let findings = lint::lint(
        &template,
        &lint::LintContext {
            issuer_subject: &ca.subject_raw,
            issuer_not_after: Some(ca.not_after),
            profile: Some(p),
            subject_spki: Some(spki),
        },
    );
    if !findings.is_empty() {
        return Err(IssueError::Lint(findings));
    }
    use sha2::Digest;
    Ok(Prepared {
        serial: hex::encode(serial),
        subject: subject_string(approved.subject()),
        not_before,
        not_after: params.not_after.unix_timestamp(),
        spki_sha256: hex::encode(sha2::Sha256::digest(spki)),
        template,
    })
}

/// Phase two: signs a recorded template with the CA's key.
pub fn sign(prepared: &Prepared, ca: &CaHandle) -> Result<Vec<u8>, IssueError> {
    Ok(resign(&prepared.template, ca.signer.as_ref(), ca.scheme)?)
}

/// What kind of CA certificate to make.
#[derive(Debug, Clone)]
pub struct CaCertSpec {
    pub subject: Vec<NameAttr>,
    pub validity: Validity,
    /// `None` for a root (no path length), `Some(0)` for issuing CAs. Ignored for responders.
    pub path_len: Option<u8>,
    /// An OCSP responder certificate (EKU OCSPSigning, id-pkix-ocsp-nocheck) instead of a CA.
    pub responder: bool,
    pub eku: Vec<&'static str>,
    pub policies: Vec<String>,
    /// CRL distribution point and caIssuers URLs (of the *issuer*), for subordinate certificates.
    pub crl_url: Option<String>,
    pub ca_issuers_url: Option<String>,
}

/// Builds, lints and signs a CA or responder certificate for the key `subject_spki`.
/// With `issuer == None` it is self-signed by `self_signer` (a root).
pub fn issue_ca_certificate(
    spec: &CaCertSpec,
    subject_spki: &[u8],
    issuer: Option<&CaHandle>,
    self_signer: &dyn Signer,
    now: i64,
) -> Result<Vec<u8>, IssueError> {
    let mut params = rcgen::CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&random_serial(
        now.saturating_mul(1000),
    )));
    params.distinguished_name = distinguished_name(&spec.subject)?;
    params.is_ca = rcgen::IsCa::NoCa;
    params.use_authority_key_identifier_extension = false;
    params.not_before = to_time(now)?;
    let limit = issuer.map(|i| i.not_after);
    params.not_after = match spec.validity {
        Validity::Days(d) => {
            let t = now + i64::from(d) * 86_400;
            to_time(limit.map_or(t, |l| t.min(l)))?
        }
        Validity::Forever => FOREVER,
    };
    let bits = subject_public_key_bits(subject_spki)?;
    let ski = ext::key_id(&bits);
    let aki = issuer.map_or(ski.clone(), |i| i.ski.clone());
    let mut exts = Vec::new();
    if spec.responder {
        exts.push(ext::basic_constraints(false, None));
        exts.push(ext::key_usage(&[0]));
        exts.push(ext::ext_key_usage(
            &[crate::profile::eku_oid::OCSP_SIGNING],
            false,
        ));
        exts.push(ext::ocsp_nocheck());
    } else {
        exts.push(ext::basic_constraints(true, spec.path_len));
        exts.push(ext::key_usage(&[5, 6]));
        if !spec.eku.is_empty() {
            exts.push(ext::ext_key_usage(&spec.eku, false));
        }
    }
    exts.push(ext::subject_key_id(&ski));
    exts.push(ext::authority_key_id(&aki));
    if !spec.policies.is_empty() {
        exts.push(ext::certificate_policies(&spec.policies));
    }
    if let Some(u) = &spec.crl_url {
        exts.push(ext::crl_distribution_point(u));
    }
    if let Some(u) = &spec.ca_issuers_url {
        exts.push(ext::authority_info_access(None, Some(u)));
    }
    params.custom_extensions = exts.into_iter().map(ext::Ext::into_rcgen).collect();

    let (template, scheme, signer, issuer_subject): (
        Vec<u8>,
        SignatureScheme,
        &dyn Signer,
        Vec<u8>,
    ) = match issuer {
        Some(i) => {
            let t = params.signed_by(&subject_key(subject_spki)?, &i.rcgen_issuer)?;
            (
                t.der().to_vec(),
                i.scheme,
                i.signer.as_ref(),
                i.subject_raw.clone(),
            )
        }
        None => {
            let key = TemplateKey::for_signer(self_signer)?;
            let t = params.self_signed(&key)?.der().to_vec();
            let subject = X509Certificate::from_der(&t)
                .map(|(_, c)| c.subject().as_raw().to_vec())
                .map_err(|e| IssueError::Encoding(e.to_string()))?;
            (
                t,
                self_signer.algorithm().default_scheme(),
                self_signer,
                subject,
            )
        }
    };
    let findings = lint::lint(
        &template,
        &lint::LintContext {
            issuer_subject: &issuer_subject,
            issuer_not_after: limit,
            profile: None,
            subject_spki: Some(subject_spki),
        },
    );
    if !findings.is_empty() {
        return Err(IssueError::Lint(findings));
    }
    Ok(resign(&template, signer, scheme)?)
}

/// Makes a PKCS#10 CSR for a key in a key store (publisher keys, issuing CAs for an external root).
pub fn make_csr(subject: &[NameAttr], signer: &dyn Signer) -> Result<Vec<u8>, IssueError> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = distinguished_name(subject)?;
    let key = TemplateKey::for_signer(signer)?;
    let template = params.serialize_request(&key)?;
    Ok(resign(
        template.der(),
        signer,
        signer.algorithm().default_scheme(),
    )?)
}

/// A certificate's serial (hex), subject, notBefore and notAfter (Unix seconds): what the
/// store records beside the DER.
pub fn cert_summary(der: &[u8]) -> Result<(String, String, i64, i64), IssueError> {
    let (_, c) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| IssueError::Unreadable(e.to_string()))?;
    Ok((
        hex::encode(c.raw_serial()),
        c.subject().to_string(),
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_sort_by_time_and_keep_72_random_bits() {
        let a = random_serial(1_700_000_000_000);
        let b = random_serial(1_700_000_000_002);
        assert_eq!(a[0], 0x01);
        assert!(
            hex::encode(a) < hex::encode(b),
            "later serials sort after earlier ones"
        );
        // The same millisecond: the random tails differ.
        let (c, d) = (
            random_serial(1_700_000_000_000),
            random_serial(1_700_000_000_000),
        );
        assert_ne!(c[7..], d[7..]);
    }
}
