//! `hallmark verify`: one check of anything hallmark signs, on the relying party's side.
//!
//! A format is recognised from the file (Authenticode PE, JAR, MCUboot) or from the signature
//! given beside it (detached CMS, COSE_Sign1, an RFC 3161 token, else a raw signature checked
//! with `--cert`/`--key`). Every format ends in the same questions, each one line of the
//! report: does the signature verify over this file; does the signer's certificate chain to
//! the trusted root; was every certificate valid at the time that counts (the time-stamp's,
//! else now); may the key sign code; and has anything in the path been revoked. A revoked
//! signer fails, except where a valid time-stamp predates the revocation's invalidity date:
//! what was signed before the key went bad stays valid (the code-signing rule).
//!
//! Nothing here touches the network itself: OCSP and CRL fetches go through
//! [`revocation::Fetch`], which the CLI implements, and `--offline` skips them.

pub mod authenticode;
pub mod chain;
pub mod cms;
pub mod crypto;
pub mod detached;
pub mod firmware;
pub mod jar;
pub mod revocation;
pub mod timestamp;

use crate::algorithm::HashAlg;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not checked, and the line says why (`--offline`, no certificate, no time-stamp).
    Skip,
}

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub check: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// Everything `verify` found, in order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub format: String,
    pub valid: bool,
    pub checks: Vec<Check>,
}

impl Report {
    fn new(format: &str) -> Report {
        Report {
            format: format.into(),
            valid: true,
            checks: Vec::new(),
        }
    }
    fn add(&mut self, check: &'static str, outcome: Outcome, detail: impl Into<String>) {
        if outcome == Outcome::Fail {
            self.valid = false;
        }
        self.checks.push(Check {
            check,
            outcome,
            detail: detail.into(),
        });
    }
    pub(crate) fn pass(&mut self, check: &'static str, detail: impl Into<String>) {
        self.add(check, Outcome::Pass, detail)
    }
    pub(crate) fn fail(&mut self, check: &'static str, detail: impl Into<String>) {
        self.add(check, Outcome::Fail, detail)
    }
    pub(crate) fn skip(&mut self, check: &'static str, detail: impl Into<String>) {
        self.add(check, Outcome::Skip, detail)
    }
}

/// What the relying party brings.
pub struct Options<'a> {
    /// Trusted roots (DER): `--ca`, else the client profile's root.
    pub roots: Vec<Vec<u8>>,
    /// Certificates from `--cert` (the signer's, and any chain): for formats that carry none.
    pub certs: Vec<Vec<u8>>,
    /// A bare public key (`--key`, SubjectPublicKeyInfo DER): the signature only.
    pub key: Option<Vec<u8>>,
    /// The digest a raw signature was made over (`--digest`).
    pub digest: HashAlg,
    /// A time-stamp token for a raw signature (`--timestamp`, else SIG.tst beside it).
    pub timestamp: Option<Vec<u8>>,
    pub offline: bool,
    pub fetch: &'a dyn revocation::Fetch,
    /// Unix seconds.
    pub now: i64,
}

/// Verifies `file`, with `signature` when the signature is not inside the file.
pub fn verify(file: &[u8], signature: Option<&[u8]>, o: &Options<'_>) -> Report {
    match signature {
        Some(sig) => detached::verify(file, &decode_text(sig), o),
        None => {
            if file.starts_with(b"MZ") || file.starts_with(b"MSCF") || file.starts_with(&CFB_MAGIC)
            {
                authenticode::verify(file, o)
            } else if file.starts_with(b"PK\x03\x04") {
                jar::verify(file, o)
            } else if firmware::is_mcuboot(file) {
                firmware::verify_mcuboot(file, o)
            } else {
                let mut r = Report::new("unknown");
                r.fail(
                    "format",
                    "the file is not Authenticode (PE, CAB, MSI), a jar or an MCUboot image: \
                     pass the detached signature with --signature SIG",
                );
                r
            }
        }
    }
}

const CFB_MAGIC: [u8; 8] = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];

/// PEM (any label) or base64 text to bytes; anything else as it is.
pub fn decode_text(data: &[u8]) -> Vec<u8> {
    if let Ok(p) = pem::parse(data) {
        return p.into_contents();
    }
    let text: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let looks_base64 = !text.is_empty()
        && text
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if looks_base64 {
        use base64::Engine as _;
        if let Ok(d) = base64::engine::general_purpose::STANDARD.decode(&text) {
            return d;
        }
    }
    data.to_vec()
}

/// RFC 3339 in UTC.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// The checks every signer goes through once its signature verified: the time-stamp over
/// `stamped` (the signature value), the chain, validity at the time that counts, key usage
/// and revocation.
pub(crate) fn signer_checks(
    r: &mut Report,
    signer: &[u8],
    pool: &[Vec<u8>],
    token: Option<&[u8]>,
    stamped: &[u8],
    o: &Options<'_>,
) {
    let mut pool = pool.to_vec();
    pool.extend(o.certs.iter().cloned());
    let stamp = match token {
        Some(t) => match timestamp::check(t, stamped, &pool, &o.roots) {
            Ok(s) => {
                r.pass(
                    "timestamp",
                    format!(
                        "{} by {} ({})",
                        rfc3339(s.time),
                        chain::short_name(&s.path[0]),
                        chain::describe(&s.path[1..])
                    ),
                );
                Some(s)
            }
            Err(e) => {
                r.fail("timestamp", e);
                None
            }
        },
        None => {
            r.skip(
                "timestamp",
                "none: the certificates must be valid now, and a revoked signer fails",
            );
            None
        }
    };
    let mut fetched = Vec::new();
    let mut built = chain::build(signer, &pool, &o.roots);
    if built.is_err() && !o.offline {
        // Issuers the signature does not carry, from the caIssuers URLs (as Windows does).
        let mut current = signer.to_vec();
        for _ in 0..4 {
            let Some((url, cert)) = chain::urls(&current).ca_issuers.iter().find_map(|u| {
                let body = o.fetch.get(u).ok()?;
                Some((u.clone(), decode_text(&body)))
            }) else {
                break;
            };
            if pool.contains(&cert) || o.roots.contains(&cert) {
                break;
            }
            pool.push(cert.clone());
            fetched.push(url);
            current = cert;
        }
        if !fetched.is_empty() {
            built = chain::build(signer, &pool, &o.roots);
        }
    }
    let path = match built {
        Ok(p) => {
            let from = if fetched.is_empty() {
                String::new()
            } else {
                format!(" (fetched {})", fetched.join(", "))
            };
            r.pass("chain", format!("{}{from}", chain::describe(&p)));
            p
        }
        Err(e) => {
            r.fail("chain", e);
            r.skip("validity", "no path to a trusted root");
            match chain::usage(signer, chain::Purpose::CodeSigning) {
                Ok(u) => r.pass("usage", u),
                Err(e) => r.fail("usage", e),
            }
            r.skip("revocation", "no path to a trusted root");
            return;
        }
    };
    let at = stamp.as_ref().map(|s| s.time).unwrap_or(o.now);
    let when = match &stamp {
        Some(_) => format!("at the time-stamp, {}", rfc3339(at)),
        None => format!("now, {}", rfc3339(at)),
    };
    match chain::valid_at(&path, at) {
        Ok(()) => r.pass("validity", format!("every certificate valid {when}")),
        Err(e) => r.fail("validity", format!("{e} ({when})")),
    }
    match chain::usage(signer, chain::Purpose::CodeSigning) {
        Ok(u) => r.pass("usage", u),
        Err(e) => r.fail("usage", e),
    }
    revocation_check(r, &path, stamp.as_ref(), o);
}

/// Revocation of every certificate under the root in `path` (and of the TSA's).
fn revocation_check(
    r: &mut Report,
    path: &[Vec<u8>],
    stamp: Option<&timestamp::Stamp>,
    o: &Options<'_>,
) {
    if o.offline {
        r.skip("revocation", "--offline: not checked");
        return;
    }
    let mut parts = Vec::new();
    let mut failed = false;
    for pair in path.windows(2) {
        let (cert, issuer) = (&pair[0], &pair[1]);
        let name = chain::short_name(cert);
        match revocation::status(cert, issuer, o.fetch, o.now) {
            Ok(revocation::Status::Good { via }) => parts.push(format!("{name}: good ({via})")),
            Ok(revocation::Status::Revoked {
                revoked_at,
                invalid_from,
                reason,
                via,
            }) => {
                let from = invalid_from.unwrap_or(revoked_at);
                let what = format!(
                    "{name}: revoked at {}{}, invalid from {} ({via})",
                    rfc3339(revoked_at),
                    reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                    rfc3339(from),
                );
                match stamp {
                    Some(s) if s.time < from => parts.push(format!(
                        "{what}; the time-stamp {} predates it, so the signature stays valid",
                        rfc3339(s.time)
                    )),
                    Some(s) => {
                        failed = true;
                        parts.push(format!(
                            "{what}; the time-stamp {} does not predate it",
                            rfc3339(s.time)
                        ))
                    }
                    None => {
                        failed = true;
                        parts.push(format!(
                            "{what}; no time-stamp shows the signature is older"
                        ))
                    }
                }
            }
            Err(e) => {
                failed = true;
                parts.push(format!(
                    "{name}: could not be checked ({e}); --offline skips revocation"
                ))
            }
        }
    }
    if let Some(s) = stamp {
        if let (Some(tsa), Some(issuer)) = (s.path.first(), s.path.get(1)) {
            let name = chain::short_name(tsa);
            match revocation::status(tsa, issuer, o.fetch, o.now) {
                Ok(revocation::Status::Good { .. }) => parts.push(format!("{name}: good")),
                Ok(revocation::Status::Revoked { revoked_at, .. }) => {
                    if s.time >= revoked_at {
                        failed = true;
                    }
                    parts.push(format!("{name}: revoked at {}", rfc3339(revoked_at)))
                }
                Err(e) => {
                    failed = true;
                    parts.push(format!("{name}: could not be checked ({e})"))
                }
            }
        }
    }
    if failed {
        r.fail("revocation", parts.join("; "))
    } else {
        r.pass("revocation", parts.join("; "))
    }
}
