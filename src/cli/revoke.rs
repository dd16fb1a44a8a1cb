//! `hallmark revoke` and `hallmark crl`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{actor, open, ts, Cli};
use crate::revocation::RevocationReason;

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// Serial number of the certificate (hex, as `hallmark cert list` prints it).
    pub serial: String,
    /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
    /// cessationOfOperation, privilegeWithdrawn or aACompromise (no certificateHold: revocation
    /// is permanent). A revoked certificate may later move to keyCompromise, nothing else.
    #[arg(long)]
    pub reason: RevocationReason,
    /// When the key is known or suspected to have been compromised (RFC 3339, e.g.
    /// 2026-11-01T00:00:00Z); written as the CRL entry's invalidityDate.
    #[arg(long)]
    pub invalidity_date: Option<String>,
}

#[derive(Args, Debug)]
pub struct CrlArgs {
    /// The CA whose CRL to issue (`root` for the CRL of CA certificates).
    #[arg(long)]
    pub ca: String,
    /// Where to write the CRL (DER, as served at /crl/CA.crl).
    #[arg(long)]
    pub out: PathBuf,
    /// One partition instead of the full CRL (with `crl.shards` > 1).
    #[arg(long)]
    pub shard: Option<u32>,
    /// Write PEM instead of DER.
    #[arg(long)]
    pub pem: bool,
}

pub fn cmd_revoke(cli: &Cli, a: &RevokeArgs) -> anyhow::Result<()> {
    let invalidity = a
        .invalidity_date
        .as_deref()
        .map(|d| {
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .with_context(|| format!("--invalidity-date '{d}' is not an RFC 3339 time"))
        })
        .transpose()?;
    let hm = open(cli)?;
    let r = hm
        .revocation
        .revoke(&a.serial, a.reason, invalidity, &actor())?;
    match r.previous_reason {
        Some(prev) => println!(
            "certificate {} (CA {}): reason changed from {prev} to {}; revoked since {}",
            r.serial,
            r.ca,
            r.reason,
            ts(r.revoked_at)
        ),
        None => println!(
            "revoked certificate {} (CA {}) at {}: {}",
            r.serial,
            r.ca,
            ts(r.revoked_at),
            r.reason
        ),
    }
    println!(
        "OCSP answers 'revoked' now; a running server reissues the CRL of {} within seconds",
        r.ca
    );
    Ok(())
}

pub fn cmd_crl(cli: &Cli, a: &CrlArgs) -> anyhow::Result<()> {
    let hm = open(cli)?;
    let crl = hm.revocation.issue_crl(&a.ca, a.shard, &actor())?;
    let written = if a.pem {
        std::fs::write(
            &a.out,
            pem::encode(&pem::Pem::new("X509 CRL", crl.der.to_vec())),
        )
    } else {
        std::fs::write(&a.out, &crl.der[..])
    };
    written.with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "CRL number {} of {} ({} entries, next update {}) written to {}",
        crl.number,
        a.ca,
        crl.entries,
        ts(crl.next_update),
        a.out.display()
    );
    Ok(())
}
