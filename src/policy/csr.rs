//! CSR checks: parsing, proof of possession, and key quality.
//!
//! Like Boulder's `csr.VerifyCSR`, this is a pure function over bytes with fixed, named errors.
//! Proof of possession is verified with aws-lc-rs for every scheme hallmark accepts (RSA PKCS#1,
//! RSA-PSS, ECDSA on P-256/P-384/P-521 with any SHA-2 hash, Ed25519); SHA-1 is refused.

use aws_lc_rs::signature as sig;
use x509_parser::prelude::*;

use super::PolicyError;
use crate::profile::AllowedKey;

/// The subject public key of a CSR, as policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKey {
    Rsa { bits: usize },
    P256,
    P384,
    P521,
    Ed25519,
}

impl SubjectKey {
    pub fn allowed_as(self) -> AllowedKey {
        match self {
            SubjectKey::Rsa { .. } => AllowedKey::Rsa,
            SubjectKey::P256 => AllowedKey::P256,
            SubjectKey::P384 => AllowedKey::P384,
            SubjectKey::P521 => AllowedKey::P521,
            SubjectKey::Ed25519 => AllowedKey::Ed25519,
        }
    }

    pub fn describe(self) -> String {
        match self {
            SubjectKey::Rsa { bits } => format!("RSA-{bits}"),
            SubjectKey::P256 => "ECDSA P-256".into(),
            SubjectKey::P384 => "ECDSA P-384".into(),
            SubjectKey::P521 => "ECDSA P-521".into(),
            SubjectKey::Ed25519 => "Ed25519".into(),
        }
    }
}

/// One attribute of a distinguished name, by short name (or dotted OID when unnamed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAttr {
    pub kind: String,
    pub value: String,
}

impl NameAttr {
    /// The subject of a certificate hallmark makes for itself (a CA, a responder, the TSA):
    /// `C = country, O = organization, CN = cn`.
    pub fn ca_subject(country: &str, organization: &str, cn: String) -> Vec<NameAttr> {
        let attr = |kind: &str, value: String| NameAttr {
            kind: kind.into(),
            value,
        };
        vec![
            attr("C", country.to_string()),
            attr("O", organization.to_string()),
            attr("CN", cn),
        ]
    }
}

/// A requested extension, as the CSR asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedExtension {
    BasicConstraints { ca: bool },
    SubjectAltName(Vec<SanEntry>),
    Other { oid: String, name: &'static str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanEntry {
    Dns(String),
    Email(String),
    Uri(String),
    Ip(std::net::IpAddr),
    Other(String),
}

/// A CSR whose signature was verified.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    pub der: Vec<u8>,
    pub spki_der: Vec<u8>,
    pub key: SubjectKey,
    pub subject: Vec<NameAttr>,
    pub extensions: Vec<RequestedExtension>,
}

/// Reads a CSR given as PEM or DER.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, PolicyError> {
    let trimmed = input.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(trimmed)
            .map_err(|_| PolicyError::BadCsr("the PEM text is not UTF-8".into()))?;
        let block = ::pem::parse(text)
            .map_err(|e| PolicyError::BadCsr(format!("cannot read the PEM: {e}")))?;
        if block.tag() != "CERTIFICATE REQUEST" && block.tag() != "NEW CERTIFICATE REQUEST" {
            return Err(PolicyError::BadCsr(format!(
                "the PEM block is a {}, not a CERTIFICATE REQUEST",
                block.tag()
            )));
        }
        Ok(block.into_contents())
    } else if trimmed.first() == Some(&0x30) {
        Ok(input.to_vec())
    } else if trimmed.is_empty() {
        Err(PolicyError::BadCsr("the CSR is empty".into()))
    } else {
        Err(PolicyError::BadCsr(
            "not a CSR: expected PEM (-----BEGIN CERTIFICATE REQUEST-----) or DER".into(),
        ))
    }
}

/// Parses `der`, verifies proof of possession and classifies the key.
pub fn verify(der: &[u8]) -> Result<VerifiedCsr, PolicyError> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| PolicyError::BadCsr(format!("malformed CSR DER: {e}")))?;
    if !rest.is_empty() {
        return Err(PolicyError::BadCsr(format!(
            "{} bytes of trailing data after the CSR",
            rest.len()
        )));
    }
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let key = classify_key(spki)?;
    verify_pop(&csr, key)?;
    check_key_quality(spki, key)?;

    let subject = name_attrs(&info.subject)?;
    let mut extensions = Vec::new();
    for attr in info.iter_attributes() {
        if let ParsedCriAttribute::ExtensionRequest(req) = attr.parsed_attribute() {
            for ext in &req.extensions {
                extensions.push(requested_extension(ext)?);
            }
        }
    }
    Ok(VerifiedCsr {
        der: der.to_vec(),
        spki_der: spki.raw.to_vec(),
        key,
        subject,
        extensions,
    })
}

/// A key as people name it (`RSA-3072`, `ECDSA P-256`), or the algorithm's OID when it is none
/// of the kinds hallmark accepts.
pub fn describe_key(spki: &SubjectPublicKeyInfo<'_>) -> String {
    classify_key(spki)
        .map(SubjectKey::describe)
        .unwrap_or_else(|_| spki.algorithm.algorithm.to_id_string())
}

fn classify_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<SubjectKey, PolicyError> {
    use crate::keys::{oid, KeyKind, UnknownKey};
    match crate::keys::kind_of_spki(spki) {
        Ok(KeyKind::Rsa) => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Ok(SubjectKey::Rsa {
                bits: bit_len(rsa.modulus),
            }),
            _ => Err(PolicyError::BadCsr("the RSA public key does not parse".into())),
        },
        Ok(KeyKind::P256) => Ok(SubjectKey::P256),
        Ok(KeyKind::P384) => Ok(SubjectKey::P384),
        Ok(KeyKind::P521) => Ok(SubjectKey::P521),
        Ok(KeyKind::Ed25519) => Ok(SubjectKey::Ed25519),
        Err(UnknownKey::Curve(c)) if c.is_empty() => {
            Err(PolicyError::BadCsr("the EC public key names no curve".into()))
        }
        Err(UnknownKey::Curve(c)) if c == oid::P192 => Err(PolicyError::BadKey(
            "the P-192 curve is refused: it is too weak".into(),
        )),
        Err(UnknownKey::Curve(other)) => Err(PolicyError::BadKey(format!(
            "the elliptic curve {} is refused (use P-256, P-384 or P-521)",
            curve_name(&other)
        ))),
        Err(UnknownKey::Algorithm(a)) if a == oid::RSASSA_PSS => Err(PolicyError::BadKey(
            "RSASSA-PSS-only public keys (id-RSASSA-PSS) are not supported; use an rsaEncryption key (it may still sign the CSR with PSS)".into(),
        )),
        Err(UnknownKey::Algorithm(other)) => Err(PolicyError::BadKey(format!(
            "public key algorithm {other} is not supported"
        ))),
    }
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.3.132.0.10" => "secp256k1".into(),
        "1.3.132.0.33" => "P-224".into(),
        o => o.to_string(),
    }
}

/// The length in bits of a big-endian unsigned integer.
pub fn bit_len(bytes: &[u8]) -> usize {
    let Some(first) = bytes.iter().position(|&b| b != 0) else {
        return 0;
    };
    (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize
}

fn hash_from_oid(oid: &str) -> Result<&'static str, PolicyError> {
    match oid {
        "2.16.840.1.101.3.4.2.1" => Ok("sha256"),
        "2.16.840.1.101.3.4.2.2" => Ok("sha384"),
        "2.16.840.1.101.3.4.2.3" => Ok("sha512"),
        "1.3.14.3.2.26" => Err(PolicyError::BadCsr(
            "the CSR is signed with SHA-1, which is refused".into(),
        )),
        o => Err(PolicyError::BadCsr(format!(
            "unsupported hash {o} in the CSR signature"
        ))),
    }
}

fn verify_pop(csr: &X509CertificationRequest<'_>, key: SubjectKey) -> Result<(), PolicyError> {
    let alg_oid = csr.signature_algorithm.algorithm.to_id_string();
    let key_bits: &[u8] = &csr
        .certification_request_info
        .subject_pki
        .subject_public_key
        .data;
    let msg = csr.certification_request_info.raw;
    let signature: &[u8] = &csr.signature_value.data;
    let mismatch = || {
        PolicyError::BadCsr(format!(
            "the CSR signature algorithm {alg_oid} does not fit its {} key",
            key.describe()
        ))
    };
    let verifier: &'static dyn sig::VerificationAlgorithm = match alg_oid.as_str() {
        "1.2.840.10045.4.3.2" | "1.2.840.10045.4.3.3" | "1.2.840.10045.4.3.4" => {
            let h = &alg_oid[alg_oid.len() - 1..];
            match (key, h) {
                (SubjectKey::P256, "2") => &sig::ECDSA_P256_SHA256_ASN1,
                (SubjectKey::P256, "3") => &sig::ECDSA_P256_SHA384_ASN1,
                (SubjectKey::P256, "4") => &sig::ECDSA_P256_SHA512_ASN1,
                (SubjectKey::P384, "2") => &sig::ECDSA_P384_SHA256_ASN1,
                (SubjectKey::P384, "3") => &sig::ECDSA_P384_SHA384_ASN1,
                (SubjectKey::P384, "4") => &sig::ECDSA_P384_SHA512_ASN1,
                (SubjectKey::P521, "2") => &sig::ECDSA_P521_SHA256_ASN1,
                (SubjectKey::P521, "3") => &sig::ECDSA_P521_SHA384_ASN1,
                (SubjectKey::P521, "4") => &sig::ECDSA_P521_SHA512_ASN1,
                _ => return Err(mismatch()),
            }
        }
        "1.2.840.113549.1.1.11" | "1.2.840.113549.1.1.12" | "1.2.840.113549.1.1.13" => {
            if !matches!(key, SubjectKey::Rsa { .. }) {
                return Err(mismatch());
            }
            match &alg_oid[alg_oid.len() - 2..] {
                "11" => &sig::RSA_PKCS1_2048_8192_SHA256,
                "12" => &sig::RSA_PKCS1_2048_8192_SHA384,
                _ => &sig::RSA_PKCS1_2048_8192_SHA512,
            }
        }
        "1.2.840.113549.1.1.10" => {
            if !matches!(key, SubjectKey::Rsa { .. }) {
                return Err(mismatch());
            }
            let parsed = x509_parser::signature_algorithm::SignatureAlgorithm::try_from(
                &csr.signature_algorithm,
            )
            .map_err(|e| PolicyError::BadCsr(format!("bad RSASSA-PSS parameters: {e}")))?;
            let x509_parser::signature_algorithm::SignatureAlgorithm::RSASSA_PSS(params) = parsed
            else {
                return Err(PolicyError::BadCsr("bad RSASSA-PSS parameters".into()));
            };
            let hash = hash_from_oid(&params.hash_algorithm_oid().to_id_string())?;
            let mgf = params
                .mask_gen_algorithm()
                .map_err(|e| PolicyError::BadCsr(format!("bad RSASSA-PSS mask generation: {e}")))?;
            let mgf_hash = hash_from_oid(&mgf.hash.to_id_string())?;
            let salt = params.salt_length() as usize;
            let want_salt = match hash {
                "sha256" => 32,
                "sha384" => 48,
                _ => 64,
            };
            if mgf_hash != hash
                || salt != want_salt
                || mgf.mgf.to_id_string() != "1.2.840.113549.1.1.8"
            {
                return Err(PolicyError::BadCsr(format!(
                    "RSASSA-PSS is accepted with MGF1 on the same hash and a salt as long as the hash ({hash}, salt {want_salt}); this CSR uses MGF hash {mgf_hash}, salt {salt}"
                )));
            }
            match hash {
                "sha256" => &sig::RSA_PSS_2048_8192_SHA256,
                "sha384" => &sig::RSA_PSS_2048_8192_SHA384,
                _ => &sig::RSA_PSS_2048_8192_SHA512,
            }
        }
        "1.3.101.112" => {
            if key != SubjectKey::Ed25519 {
                return Err(mismatch());
            }
            &sig::ED25519
        }
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" => {
            return Err(PolicyError::BadCsr(
                "the CSR is signed with SHA-1, which is refused".into(),
            ))
        }
        other => {
            return Err(PolicyError::BadCsr(format!(
                "unsupported CSR signature algorithm {other}"
            )))
        }
    };
    if let SubjectKey::Rsa { bits } = key {
        if bits < 2048 {
            return Err(PolicyError::BadKey(format!("RSA-{bits} is far too small")));
        }
    }
    sig::UnparsedPublicKey::new(verifier, key_bits)
        .verify(msg, signature)
        .map_err(|_| PolicyError::BadSignature)
}

/// Primes below 10,000 (1,229 of them): any RSA modulus divisible by one is broken.
fn small_primes() -> &'static [u32] {
    static PRIMES: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    PRIMES.get_or_init(|| {
        let n = 10_000usize;
        let mut sieve = vec![true; n];
        sieve[0] = false;
        sieve[1] = false;
        let mut i = 2;
        while i * i < n {
            if sieve[i] {
                let mut j = i * i;
                while j < n {
                    sieve[j] = false;
                    j += i;
                }
            }
            i += 1;
        }
        (0..n).filter(|&k| sieve[k]).map(|k| k as u32).collect()
    })
}

/// The smallest prime below 10,000 dividing `modulus` (big-endian), if any.
pub fn small_factor(modulus: &[u8]) -> Option<u32> {
    small_primes().iter().copied().find(|&p| {
        modulus
            .iter()
            .fold(0u64, |acc, &b| (acc * 256 + u64::from(b)) % u64::from(p))
            == 0
    })
}

fn check_key_quality(spki: &SubjectPublicKeyInfo<'_>, key: SubjectKey) -> Result<(), PolicyError> {
    if let SubjectKey::Rsa { .. } = key {
        let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(PolicyError::BadCsr(
                "the RSA public key does not parse".into(),
            ));
        };
        let e: &[u8] = rsa.exponent;
        let first = e.iter().position(|&b| b != 0).unwrap_or(e.len());
        if e[first..] != [0x01, 0x00, 0x01] {
            return Err(PolicyError::BadKey(format!(
                "the RSA public exponent must be 65537, not 0x{}",
                hex::encode(&e[first..])
            )));
        }
        if let Some(p) = small_factor(rsa.modulus) {
            return Err(PolicyError::BadKey(format!(
                "the RSA modulus is divisible by the small prime {p}: the key is broken"
            )));
        }
    }
    Ok(())
}

/// Short name of a distinguished-name attribute type.
pub fn attr_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.8" => "ST",
        "2.5.4.7" => "L",
        "2.5.4.5" => "serialNumber",
        "1.3.6.1.4.1.37244.2.1" => "matterVID",
        "1.3.6.1.4.1.37244.2.2" => "matterPID",
        "2.5.4.9" => "street",
        "2.5.4.17" => "postalCode",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        "2.5.4.15" => "businessCategory",
        o => return o.to_string(),
    }
    .to_string()
}

pub fn name_attrs(name: &X509Name<'_>) -> Result<Vec<NameAttr>, PolicyError> {
    let mut out = Vec::new();
    for rdn in name.iter() {
        for attr in rdn.iter() {
            let kind = attr_name(&attr.attr_type().to_id_string());
            let value = attr.as_str().map_err(|_| {
                PolicyError::BadCsr(format!(
                    "the subject attribute {kind} is not a readable string"
                ))
            })?;
            out.push(NameAttr {
                kind,
                value: value.to_string(),
            });
        }
    }
    Ok(out)
}

fn requested_extension(ext: &X509Extension<'_>) -> Result<RequestedExtension, PolicyError> {
    let oid = ext.oid.to_id_string();
    Ok(match ext.parsed_extension() {
        ParsedExtension::BasicConstraints(bc) => RequestedExtension::BasicConstraints { ca: bc.ca },
        ParsedExtension::SubjectAlternativeName(san) => {
            let entries = san
                .general_names
                .iter()
                .map(|g| match g {
                    GeneralName::DNSName(d) => SanEntry::Dns(d.to_string()),
                    GeneralName::RFC822Name(e) => SanEntry::Email(e.to_string()),
                    GeneralName::URI(u) => SanEntry::Uri(u.to_string()),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => SanEntry::Ip(std::net::IpAddr::from(
                            <[u8; 4]>::try_from(*b).unwrap_or_default(),
                        )),
                        16 => SanEntry::Ip(std::net::IpAddr::from(
                            <[u8; 16]>::try_from(*b).unwrap_or_default(),
                        )),
                        _ => SanEntry::Other("a malformed IP address".into()),
                    },
                    other => SanEntry::Other(format!("{other:?}")),
                })
                .collect();
            RequestedExtension::SubjectAltName(entries)
        }
        ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. } => {
            RequestedExtension::Other {
                oid,
                name: "an unrecognised extension",
            }
        }
        ParsedExtension::KeyUsage(_) => RequestedExtension::Other {
            oid,
            name: "keyUsage",
        },
        ParsedExtension::ExtendedKeyUsage(_) => RequestedExtension::Other {
            oid,
            name: "extendedKeyUsage",
        },
        ParsedExtension::SubjectKeyIdentifier(_) => RequestedExtension::Other {
            oid,
            name: "subjectKeyIdentifier",
        },
        ParsedExtension::NameConstraints(_) => RequestedExtension::Other {
            oid,
            name: "nameConstraints",
        },
        ParsedExtension::CertificatePolicies(_) => RequestedExtension::Other {
            oid,
            name: "certificatePolicies",
        },
        _ => RequestedExtension::Other {
            oid,
            name: "an extension",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_factors_are_found() {
        assert_eq!(small_primes().len(), 1229);
        // 3 * 2^64 + 3 = 3 * (2^64 + 1)
        let m = [0x03, 0, 0, 0, 0, 0, 0, 0, 0x03];
        assert_eq!(small_factor(&m), Some(3));
        // 9973 * 9967 (both prime) = 99400891
        assert_eq!(small_factor(&99_400_891u64.to_be_bytes()), Some(9967));
        // 2^61 - 1 is prime: no small factor.
        assert_eq!(small_factor(&((1u64 << 61) - 1).to_be_bytes()), None);
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[0, 0]), 0);
    }

    #[test]
    fn garbage_is_a_bad_csr() {
        assert!(matches!(decode(b"hello"), Err(PolicyError::BadCsr(_))));
        assert!(matches!(decode(b""), Err(PolicyError::BadCsr(_))));
        assert!(matches!(
            verify(&[0x30, 0x03, 0x02, 0x01]),
            Err(PolicyError::BadCsr(_))
        ));
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            matches!(decode(pem), Err(PolicyError::BadCsr(m)) if m.contains("not a CERTIFICATE REQUEST"))
        );
    }
}
