//! The built-in lint: every certificate is checked against the rules of `shared/design.md`
//! *before* it is signed, and a finding refuses it.
//!
//! It runs on the to-be-signed template (rcgen's output before the real signature), so a profile
//! or code mistake can never reach the key store. pkilint runs on the results in the test suite.

use x509_parser::prelude::*;

use crate::profile::{Eku, Profile, Validity};

/// What the lint needs to know besides the certificate.
pub struct LintContext<'a> {
    /// The DER subject of the issuing CA (for self-signed: the certificate's own subject).
    pub issuer_subject: &'a [u8],
    /// The issuing CA's notAfter (unix seconds), if any.
    pub issuer_not_after: Option<i64>,
    /// The profile of an end-entity certificate; `None` for CA and responder certificates.
    pub profile: Option<&'a Profile>,
    /// The SubjectPublicKeyInfo the certificate must carry (the CSR's), when known.
    pub subject_spki: Option<&'a [u8]>,
}

use crate::profile::eku_oid::{
    ANY as EKU_ANY, CLIENT_AUTH, CODE_SIGNING as EKU_CODE_SIGNING, EMAIL_PROTECTION, OCSP_SIGNING,
    SERVER_AUTH as EKU_SERVER_AUTH, TIME_STAMPING as EKU_TIME_STAMPING,
};

/// Returns the findings; an empty list means the certificate may be signed.
pub fn lint(der: &[u8], ctx: &LintContext<'_>) -> Vec<String> {
    let mut f = Vec::new();
    let cert = match X509Certificate::from_der(der) {
        Ok(([], c)) => c,
        Ok(_) => return vec!["trailing bytes after the certificate".into()],
        Err(e) => return vec![format!("the certificate template does not parse: {e}")],
    };
    let tbs = &cert.tbs_certificate;

    if tbs.version != X509Version::V3 {
        f.push("not a version 3 certificate".into());
    }
    let serial = tbs.raw_serial();
    if serial.len() < 8 || serial.len() > 20 {
        f.push(format!("serial is {} octets (needs 8..=20)", serial.len()));
    }
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        f.push("serial is negative".into());
    }
    let sig_alg = tbs.signature.algorithm.to_id_string();
    if !matches!(
        sig_alg.as_str(),
        "1.2.840.10045.4.3.2"
            | "1.2.840.10045.4.3.3"
            | "1.2.840.10045.4.3.4"
            | "1.2.840.113549.1.1.11"
            | "1.2.840.113549.1.1.12"
            | "1.2.840.113549.1.1.13"
            | "1.2.840.113549.1.1.10"
            | "1.3.101.112"
    ) {
        f.push(format!(
            "signature algorithm {sig_alg} is not SHA-256 or stronger"
        ));
    }
    if ctx.subject_spki.is_some_and(|k| k != tbs.subject_pki.raw) {
        f.push("the public key is not the one the request proved possession of".into());
    }
    if tbs.issuer.as_raw() != ctx.issuer_subject {
        f.push("issuer name differs from the issuing CA's subject".into());
    }
    let nb = tbs.validity.not_before.timestamp();
    let na = tbs.validity.not_after.timestamp();
    if nb >= na {
        f.push("notBefore is not before notAfter".into());
    }
    if let Some(limit) = ctx.issuer_not_after {
        if na > limit {
            f.push("notAfter is past the issuing CA's notAfter".into());
        }
    }
    if tbs.subject.iter().next().is_none() {
        f.push("empty subject".into());
    }

    let mut seen = std::collections::HashSet::new();
    for e in tbs.extensions() {
        if !seen.insert(e.oid.to_id_string()) {
            f.push(format!("extension {} appears twice", e.oid));
        }
    }
    let ext = |oid: &str| {
        tbs.extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == oid)
    };
    if ext("2.5.29.14").is_none() {
        f.push("no subjectKeyIdentifier".into());
    }
    match ext("2.5.29.35") {
        None => f.push("no authorityKeyIdentifier".into()),
        Some(e) if e.critical => f.push("authorityKeyIdentifier is critical".into()),
        _ => {}
    }

    let bc = tbs.basic_constraints().ok().flatten();
    let is_ca = bc.as_ref().is_some_and(|b| b.value.ca);
    if let Some(b) = &bc {
        if !b.critical {
            f.push("basicConstraints is not critical".into());
        }
    } else if ctx.profile.is_none() {
        f.push("a CA certificate needs basicConstraints".into());
    }
    let ku = tbs.key_usage().ok().flatten();
    match &ku {
        None => f.push("no keyUsage".into()),
        Some(k) if !k.critical => f.push("keyUsage is not critical".into()),
        _ => {}
    }
    let ekus: Vec<String> = match tbs.extended_key_usage() {
        Ok(Some(e)) => {
            let v = &e.value;
            let mut out = Vec::new();
            if v.any {
                out.push(EKU_ANY.to_string());
            }
            if v.server_auth {
                out.push(EKU_SERVER_AUTH.to_string());
            }
            if v.client_auth {
                out.push(CLIENT_AUTH.to_string());
            }
            if v.code_signing {
                out.push(EKU_CODE_SIGNING.to_string());
            }
            if v.email_protection {
                out.push(EMAIL_PROTECTION.to_string());
            }
            if v.time_stamping {
                out.push(EKU_TIME_STAMPING.to_string());
            }
            if v.ocsp_signing {
                out.push(OCSP_SIGNING.to_string());
            }
            out.extend(v.other.iter().map(|o| o.to_id_string()));
            out
        }
        Ok(None) => Vec::new(),
        Err(e) => {
            f.push(format!("extendedKeyUsage does not parse: {e}"));
            Vec::new()
        }
    };
    let has = |o: &str| ekus.iter().any(|e| e == o);
    if has(EKU_ANY) {
        f.push("anyExtendedKeyUsage is never issued".into());
    }
    if has(EKU_CODE_SIGNING) && has(EKU_TIME_STAMPING) {
        f.push("codeSigning and timeStamping in one certificate".into());
    }
    if has(EKU_CODE_SIGNING) && has(EKU_SERVER_AUTH) {
        f.push("codeSigning together with serverAuth".into());
    }
    if has(EKU_TIME_STAMPING) && !is_ca {
        let critical = ext("2.5.29.37").is_some_and(|e| e.critical);
        if ekus.len() != 1 || !critical {
            f.push("a time-stamping certificate needs EKU timeStamping alone and critical".into());
        }
    }

    if is_ca {
        if let Some(k) = &ku {
            if !k.value.key_cert_sign() {
                f.push("a CA certificate without keyCertSign".into());
            }
        }
        if ctx.profile.is_some() {
            f.push("profiles never issue CA certificates".into());
        }
    } else if let Some(k) = &ku {
        if k.value.key_cert_sign() || k.value.crl_sign() {
            f.push("an end-entity certificate with keyCertSign or cRLSign".into());
        }
    }

    if let Some(p) = ctx.profile {
        lint_profile(&cert, p, &ekus, na - nb, &mut f);
    }
    f
}

fn lint_profile(
    cert: &X509Certificate<'_>,
    p: &Profile,
    ekus: &[String],
    lifetime: i64,
    f: &mut Vec<String>,
) {
    let tbs = &cert.tbs_certificate;
    let want: Vec<&str> = p.eku.iter().map(Eku::oid).collect();
    let mut got: Vec<&str> = ekus.iter().map(String::as_str).collect();
    let mut want_sorted = want.clone();
    got.sort_unstable();
    want_sorted.sort_unstable();
    if got != want_sorted {
        f.push(format!(
            "EKU {got:?} differs from the profile's {want_sorted:?}"
        ));
    }
    let ext = |oid: &str| tbs.extensions().iter().any(|e| e.oid.to_id_string() == oid);
    if p.crl_distribution_point != ext("2.5.29.31") {
        f.push("CRL distribution point presence differs from the profile".into());
    }
    if p.authority_info_access != ext("1.3.6.1.5.5.7.1.1") {
        f.push("authorityInfoAccess presence differs from the profile".into());
    }
    let attrs: Vec<String> = tbs
        .subject
        .iter_attributes()
        .map(|a| crate::policy::csr::attr_name(&a.attr_type().to_id_string()))
        .collect();
    let has_attr = |k: &str| attrs.iter().any(|a| a == k);

    if p.has_eku(&Eku::CodeSigning) {
        if lifetime > 460 * 86_400 {
            f.push("a code-signing certificate valid for more than 460 days".into());
        }
        match tbs.key_usage() {
            Ok(Some(k)) if k.value.flags == 1 => {}
            _ => {
                f.push("a code-signing certificate must have keyUsage digitalSignature only".into())
            }
        }
        if !ext("2.5.29.32") {
            f.push("a code-signing certificate without certificatePolicies".into());
        }
        if !(has_attr("CN") && has_attr("O") && has_attr("C") && (has_attr("L") || has_attr("ST")))
        {
            f.push("a code-signing subject needs CN, O, C and L or ST".into());
        }
        let key_ok = match tbs.subject_pki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(r)) => {
                crate::policy::csr::bit_len(r.modulus) >= 3072
            }
            Ok(x509_parser::public_key::PublicKey::EC(_)) => true,
            _ => false,
        };
        if !key_ok {
            f.push("a code-signing key must be RSA >= 3072 or ECDSA".into());
        }
    }
    if p.validity == Validity::Forever {
        let na = tbs.validity.not_after.to_datetime();
        if (
            na.year(),
            na.month() as u8,
            na.day(),
            na.hour(),
            na.minute(),
            na.second(),
        ) != (9999, 12, 31, 23, 59, 59)
        {
            f.push("a device identity certificate must have notAfter 99991231235959Z".into());
        }
    }
    if p.subject.device_serial == crate::profile::Requirement::Required && !has_attr("serialNumber")
    {
        f.push("a device certificate without the serialNumber attribute".into());
    }
}
