//! What a CSR or a certificate names (as ACME identifiers), and whether a JWK is a
//! certificate's key: the checks behind finalize (`badCSR`) and revokeCert.

use std::net::IpAddr;

use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::identifier::Identifier;
use super::jws::{Jwk, PublicKey};
use super::{AcmeError, ProblemType};

/// An address from a SAN iPAddress (4 or 16 bytes).
pub fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The names a CSR asks for (SAN DNS names and addresses, sorted, deduplicated) and its CN.
pub fn csr_names(der: &[u8]) -> Result<(Vec<Identifier>, Option<String>), AcmeError> {
    use x509_parser::prelude::FromDer;
    let bad = |d: &str| AcmeError::new(ProblemType::BadCsr, d.to_string());
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|_| bad("the CSR does not parse"))?;
    let mut names = Vec::new();
    let cn = csr
        .certification_request_info
        .subject
        .iter_common_name()
        .next()
        .map(|c| c.as_str().map(str::to_string))
        .transpose()
        .map_err(|_| bad("the CSR's CN is not a string"))?;
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for n in &san.general_names {
                match n {
                    GeneralName::DNSName(d) => {
                        names.push(Identifier::parse("dns", d).map_err(|e| bad(&e.detail))?)
                    }
                    GeneralName::IPAddress(b) => {
                        let ip = ip_from_bytes(b)
                            .ok_or_else(|| bad("a SAN address is not 4 or 16 bytes"))?;
                        names.push(Identifier {
                            kind: "ip".into(),
                            value: ip.to_string(),
                        });
                    }
                    other => {
                        return Err(bad(&format!(
                            "the CSR asks for a SAN of an unsupported kind: {other}"
                        )))
                    }
                }
            }
        }
    }
    names.sort();
    names.dedup();
    Ok((names, cn))
}

/// The DNS names and addresses of a certificate's SAN (other kinds are left out).
pub fn cert_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<Identifier> {
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => out.push(Identifier {
                    kind: "dns".into(),
                    value: d.to_ascii_lowercase(),
                }),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        out.push(Identifier {
                            kind: "ip".into(),
                            value: ip.to_string(),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Whether the certificate's public key is the JWK's key.
pub fn cert_key_matches(cert: &x509_parser::certificate::X509Certificate<'_>, key: &Jwk) -> bool {
    use x509_parser::public_key::PublicKey as P;
    let spki = cert.public_key();
    match (spki.parsed(), &key.key) {
        (Ok(P::EC(point)), PublicKey::Ec { point: p, .. }) => point.data() == p.as_slice(),
        (Ok(P::RSA(rsa)), PublicKey::Rsa { n, e }) => {
            let strip = |b: &[u8]| {
                b.iter()
                    .skip_while(|x| **x == 0)
                    .copied()
                    .collect::<Vec<u8>>()
            };
            strip(rsa.modulus) == strip(n) && strip(rsa.exponent) == strip(e)
        }
        (_, PublicKey::Ed25519(x)) => {
            spki.algorithm.algorithm.to_id_string() == crate::keys::oid::ED25519
                && spki.subject_public_key.data.as_ref() == x.as_slice()
        }
        _ => false,
    }
}
