//! The certification path from a signer's certificate to a trusted root, and what the
//! certificates allow: each link's signature and CA flag, validity at the time that counts
//! (the time-stamp's, else now), and the signer's key usage and extended key usage.

use x509_parser::prelude::*;

use super::crypto;

/// The longest path looked for (leaf, intermediates, root).
const MAX_DEPTH: usize = 8;

/// A certificate's subject as one line.
pub fn subject(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| {
            let s = c.subject().to_string();
            if s.is_empty() {
                "(empty subject)".into()
            } else {
                s
            }
        })
        .unwrap_or_else(|_| "(unparsable certificate)".into())
}

/// A certificate's common name, else its whole subject.
pub fn short_name(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .ok()
        .and_then(|(_, c)| {
            c.subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok().map(str::to_string))
        })
        .unwrap_or_else(|| subject(der))
}

/// The serial of a certificate in hex (as `hallmark cert list` prints it).
pub fn serial_hex(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| hex::encode(c.raw_serial()))
        .unwrap_or_default()
}

/// How a report names a signer: its common name and serial.
pub fn signer_text(der: &[u8]) -> String {
    format!("{} (serial {})", short_name(der), serial_hex(der))
}

/// " by SIGNER" when there is a certificate, else nothing.
pub fn by(cert: Option<&[u8]>) -> String {
    cert.map(|c| format!(" by {}", signer_text(c)))
        .unwrap_or_default()
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| format!("a certificate does not parse: {e}"))
}

/// Whether `issuer` signed `cert`.
pub fn signed_by(cert: &[u8], issuer: &[u8]) -> Result<(), String> {
    let c = parse(cert)?;
    let i = parse(issuer)?;
    if c.issuer().as_raw() != i.subject().as_raw() {
        return Err("issuer name differs".into());
    }
    let scheme = crypto::scheme_of_oid(&c.signature_algorithm.algorithm.to_id_string(), None)?;
    crypto::verify(
        i.public_key().raw,
        scheme,
        false,
        c.tbs_certificate.as_ref(),
        &c.signature_value.data,
    )
    .map(|_| ())
}

fn is_ca(der: &[u8]) -> bool {
    parse(der)
        .ok()
        .and_then(|c| c.basic_constraints().ok().flatten().map(|b| b.value.ca))
        .unwrap_or(false)
}

/// A path from `leaf` through certificates of `pool` to one of `roots` (leaf first, root
/// last): every link's signature checked, every certificate above the leaf a CA.
pub fn build(leaf: &[u8], pool: &[Vec<u8>], roots: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
    if roots.is_empty() {
        return Err(
            "no trusted root: pass --ca ROOT.pem or run `hallmark client bootstrap`".into(),
        );
    }
    let mut path = vec![leaf.to_vec()];
    loop {
        let current = path.last().cloned().unwrap_or_default();
        if roots.iter().any(|r| r == &current) {
            return Ok(path);
        }
        if path.len() >= MAX_DEPTH {
            return Err(format!("no trusted root within {MAX_DEPTH} certificates"));
        }
        let mut why = None;
        let found = roots.iter().chain(pool.iter()).find(|cand| {
            if path.contains(cand) || *cand == &current {
                return false;
            }
            match signed_by(&current, cand) {
                Ok(()) if is_ca(cand) => true,
                Ok(()) => {
                    why = Some(format!("{} is not a CA", subject(cand)));
                    false
                }
                Err(e) if e != "issuer name differs" => {
                    why = Some(format!("{}: {e}", subject(cand)));
                    false
                }
                Err(_) => false,
            }
        });
        match found {
            Some(next) => path.push(next.clone()),
            None => {
                return Err(match why {
                    Some(w) => format!("{} has no valid issuer ({w})", subject(&current)),
                    None => format!(
                        "no issuer of {} chains to the trusted root (is --ca hallmark's root?)",
                        subject(&current)
                    ),
                })
            }
        }
    }
}

/// The path written for a person: `CN=leaf → CA → root`.
pub fn describe(path: &[Vec<u8>]) -> String {
    path.iter()
        .map(|c| short_name(c))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Checks every certificate of `path` is valid at `at` (Unix seconds).
pub fn valid_at(path: &[Vec<u8>], at: i64) -> Result<(), String> {
    for der in path {
        let c = parse(der)?;
        let v = c.validity();
        if at < v.not_before.timestamp() {
            return Err(format!(
                "{} is not valid before {}",
                short_name(der),
                super::rfc3339(v.not_before.timestamp())
            ));
        }
        if at > v.not_after.timestamp() {
            return Err(format!(
                "{} expired at {}",
                short_name(der),
                super::rfc3339(v.not_after.timestamp())
            ));
        }
    }
    Ok(())
}

/// What a signer's certificate must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// digitalSignature; extendedKeyUsage, when present, with codeSigning (or anyExtendedKeyUsage).
    CodeSigning,
    /// digitalSignature; extendedKeyUsage timeStamping only, critical (RFC 3161 §2.3).
    TimeStamping,
}

/// Checks a signer certificate's key usage and extended key usage for `purpose`.
pub fn usage(der: &[u8], purpose: Purpose) -> Result<String, String> {
    let c = parse(der)?;
    let ku = c
        .key_usage()
        .map_err(|e| format!("bad keyUsage: {e}"))?
        .map(|k| k.value.digital_signature());
    if ku == Some(false) {
        return Err("keyUsage lacks digitalSignature".into());
    }
    let eku = c
        .extended_key_usage()
        .map_err(|e| format!("bad extendedKeyUsage: {e}"))?;
    let ku_text = if ku == Some(true) {
        "keyUsage digitalSignature"
    } else {
        "no keyUsage"
    };
    match purpose {
        Purpose::CodeSigning => match eku {
            Some(e) if e.value.code_signing => {
                Ok(format!("{ku_text}, extendedKeyUsage codeSigning"))
            }
            Some(e) if e.value.any => Ok(format!("{ku_text}, anyExtendedKeyUsage")),
            Some(_) => Err("extendedKeyUsage lacks codeSigning".into()),
            None => Ok(format!("{ku_text}, no extendedKeyUsage")),
        },
        Purpose::TimeStamping => match eku {
            Some(e)
                if e.value.time_stamping
                    && e.critical
                    && !e.value.any
                    && !e.value.code_signing
                    && !e.value.server_auth
                    && !e.value.client_auth
                    && e.value.other.is_empty() =>
            {
                Ok(format!(
                    "{ku_text}, extendedKeyUsage timeStamping (critical)"
                ))
            }
            Some(_) => Err(
                "the TSA certificate's extendedKeyUsage is not timeStamping alone and critical"
                    .into(),
            ),
            None => Err("the TSA certificate has no extendedKeyUsage timeStamping".into()),
        },
    }
}

/// The URLs a certificate names: OCSP responders and caIssuers (authorityInfoAccess), CRLs
/// (cRLDistributionPoints).
#[derive(Debug, Default)]
pub struct Urls {
    pub ocsp: Vec<String>,
    pub ca_issuers: Vec<String>,
    pub crl: Vec<String>,
}

pub fn urls(der: &[u8]) -> Urls {
    let mut out = Urls::default();
    let Ok(c) = parse(der) else {
        return out;
    };
    for ext in c.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for d in &aia.accessdescs {
                    if let GeneralName::URI(u) = d.access_location {
                        match d.access_method.to_id_string().as_str() {
                            "1.3.6.1.5.5.7.48.1" => out.ocsp.push(u.to_string()),
                            "1.3.6.1.5.5.7.48.2" => out.ca_issuers.push(u.to_string()),
                            _ => {}
                        }
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(cdp) => {
                for p in &cdp.points {
                    if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                        for n in names {
                            if let GeneralName::URI(u) = n {
                                out.crl.push(u.to_string());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}
