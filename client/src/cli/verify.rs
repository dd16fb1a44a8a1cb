//! `hallmark verify FILE [--signature SIG]`: reads the files and the trust anchors, gives the
//! verifier an HTTP client for OCSP and CRLs, and prints one line per check (or the JSON
//! report). Exit status 0 only when no check failed.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use super::Output;
use crate::verify::{self, revocation::Fetch, Outcome};
use crate::{client, context};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The signed file (Authenticode PE, jar, MCUboot image), or the file a detached signature
    /// covers.
    pub file: PathBuf,
    /// The detached signature: CMS (.p7s), COSE_Sign1, an RFC 3161 token or response (.tst,
    /// .tsr), or a raw signature (binary or base64, with --cert or --key).
    #[arg(long)]
    pub signature: Option<PathBuf>,
    /// The trusted root (PEM or DER; several PEM certificates allowed). Default: the client
    /// profile's root (`hallmark client bootstrap`).
    #[arg(long, env = "HALLMARK_CA")]
    pub ca: Option<PathBuf>,
    /// The signer's certificate, and any CA certificates above it (PEM): for raw and MCUboot
    /// signatures, which carry none.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// The signer's public key (PEM or DER SubjectPublicKeyInfo): checks the signature only.
    #[arg(long, conflicts_with = "cert")]
    pub key: Option<PathBuf>,
    /// The digest a raw signature was made over: sha256, sha384 or sha512 (as `hallmark sign
    /// raw --digest`).
    #[arg(long, default_value = "sha256")]
    pub digest: String,
    /// The time-stamp token of a raw signature (default: SIG.tst when it exists).
    #[arg(long)]
    pub timestamp: Option<PathBuf>,
    /// Do not ask OCSP responders or fetch CRLs (revocation is then reported as not checked).
    #[arg(long)]
    pub offline: bool,
    /// Seconds to wait for each OCSP or CRL answer.
    #[arg(long, default_value_t = 10)]
    pub fetch_timeout: u64,
}

/// OCSP and CRL fetches over plain HTTP (their URLs are http:// as RFC 5280 and 6960 expect).
struct HttpFetch {
    timeout: std::time::Duration,
}

impl HttpFetch {
    fn split(url: &str) -> Result<(String, String), String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are fetched"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Ok((format!("http://{host}"), path.to_string()))
    }
    fn exchange(
        &self,
        method: &str,
        url: &str,
        ct: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let (base, path) = Self::split(url)?;
        let c = client::Client::new(&base, None, None)
            .map_err(|e| format!("{e:#}"))?
            .with_timeout(self.timeout);
        let r = c
            .send(method, &path, ct, body)
            .map_err(|e| format!("{e:#}"))?;
        if r.status != 200 {
            return Err(format!("HTTP {}", r.status));
        }
        Ok(r.body)
    }
}

impl Fetch for HttpFetch {
    fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        self.exchange("GET", url, None, Vec::new())
    }
    fn post(&self, url: &str, content_type: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        self.exchange("POST", url, Some(content_type), body.to_vec())
    }
}

fn read(path: &std::path::Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

/// Certificates from a PEM bundle or one DER certificate.
fn certificates(path: &std::path::Path, what: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let data = read(path, what)?;
    if let Ok(blocks) = pem::parse_many(&data) {
        let certs: Vec<Vec<u8>> = blocks
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.into_contents())
            .collect();
        if !certs.is_empty() {
            return Ok(certs);
        }
    }
    if data.first() == Some(&0x30) {
        return Ok(vec![data]);
    }
    bail!(
        "{what} {} holds no certificate (PEM or DER expected)",
        path.display()
    )
}

pub fn cmd_verify(output: Output, a: &VerifyArgs) -> anyhow::Result<()> {
    let digest = crate::formats::names::parse_digest_algorithm(&a.digest)
        .map_err(|e| anyhow!("--digest: {e}"))?;
    let roots = match &a.ca {
        Some(p) => certificates(p, "--ca")?,
        None => match context::load()?.root {
            Some(p) => certificates(&p, "the client profile's root")?,
            None => bail!(
                "no trusted root: pass --ca ROOT.pem (hallmark ca cert root) or run \
                 `hallmark client bootstrap` once"
            ),
        },
    };
    let certs = match &a.cert {
        Some(p) => certificates(p, "--cert")?,
        None => Vec::new(),
    };
    let key = match &a.key {
        Some(p) => Some(verify::decode_text(&read(p, "--key")?)),
        None => None,
    };
    let file = read(&a.file, "the file")?;
    let signature = match &a.signature {
        Some(p) => Some(read(p, "--signature")?),
        None => None,
    };
    let timestamp = match (&a.timestamp, &a.signature) {
        (Some(p), _) => Some(verify::decode_text(&read(p, "--timestamp")?)),
        (None, Some(s)) => {
            let mut t = s.clone().into_os_string();
            t.push(".tst");
            std::fs::read(PathBuf::from(t)).ok()
        }
        _ => None,
    };
    let fetch = HttpFetch {
        timeout: std::time::Duration::from_secs(a.fetch_timeout.max(1)),
    };
    let opts = verify::Options {
        roots,
        certs,
        key,
        digest,
        timestamp,
        offline: a.offline,
        fetch: &fetch,
        now: crate::clock::Clock::now(&crate::clock::SystemClock),
    };
    let report = verify::verify(&file, signature.as_deref(), &opts);
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            for c in &report.checks {
                let mark = match c.outcome {
                    Outcome::Pass => "ok  ",
                    Outcome::Fail => "FAIL",
                    Outcome::Skip => "skip",
                };
                println!("{mark} {:<10} {}", c.check, c.detail);
            }
        }
    }
    if !report.valid {
        let failed = report
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .count();
        bail!("{}: {failed} check(s) failed", a.file.display());
    }
    Ok(())
}
