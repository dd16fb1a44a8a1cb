//! `hallmark issue` and `hallmark cert`: certificates issued here, and their records.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};

use super::{actor, open, output, pem_cert, print_list, read_input, ts, Cli, Output};
use crate::policy::IssueRequest;
use crate::store::CertFilter;

#[derive(Args, Debug)]
pub struct IssueArgs {
    #[arg(long)]
    pub profile: String,
    #[arg(long)]
    pub publisher: String,
    /// CSR file, PEM or DER (`-` for standard input).
    #[arg(long)]
    pub csr: PathBuf,
    /// Write certificate and chain (PEM) here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Device serial, for device profiles.
    #[arg(long)]
    pub device_serial: Option<String>,
    /// CN for profiles whose CN is given with the request (stations).
    #[arg(long)]
    pub name: Option<String>,
}

pub(super) fn cmd_issue(cli: &Cli, a: &IssueArgs) -> anyhow::Result<()> {
    let hm = open(cli)?;
    let csr = read_input(&a.csr)?;
    let issued = hm.issuance.issue(&IssueRequest {
        profile: a.profile.clone(),
        publisher: a.publisher.clone(),
        csr,
        requester: actor(),
        device_serial: a.device_serial.clone(),
        name: a.name.clone(),
    })?;
    let mut text = pem_cert(&issued.cert_der);
    for c in &issued.chain {
        text.push_str(&pem_cert(c));
    }
    output(a.out.as_deref(), &text)?;
    if a.out.is_some() {
        eprintln!("issued serial {}", issued.serial);
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum CertCmd {
    /// Show a certificate by serial (hex).
    Show {
        serial: String,
        /// Print only the PEM.
        #[arg(long)]
        pem: bool,
    },
    /// List issued certificates.
    List {
        #[arg(long)]
        publisher: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Start after this serial (paging).
        #[arg(long)]
        after: Option<String>,
    },
}

pub(super) fn cmd_cert(cli: &Cli, c: &CertCmd) -> anyhow::Result<()> {
    let hm = open(cli)?;
    match c {
        CertCmd::Show { serial, pem } => {
            let r = hm
                .store
                .get_certificate(&serial.to_ascii_lowercase())?
                .ok_or_else(|| anyhow!("no certificate with serial {serial}"))?;
            if *pem {
                let der = r.cert_der.ok_or_else(|| {
                    anyhow!(
                        "certificate {serial} was never signed (status {})",
                        r.status
                    )
                })?;
                print!("{}", pem_cert(&der));
                return Ok(());
            }
            let revoked = hm.store.get_revocation(&r.serial)?;
            let status = match &revoked {
                Some(rv) => format!(
                    "revoked ({}) at {}{}",
                    crate::revocation::RevocationReason::from_code(rv.reason)
                        .map_or("unknown", |x| x.name()),
                    ts(rv.revoked_at),
                    rv.invalidity_date
                        .map(|d| format!(", invalid since {}", ts(d)))
                        .unwrap_or_default()
                ),
                None => r.status.to_string(),
            };
            if cli.output == Output::Json {
                let v = serde_json::json!({
                    "serial": r.serial, "status": status, "subject": r.subject, "profile": r.profile,
                    "issuer": r.ca, "publisher": r.publisher, "not_before": ts(r.not_before),
                    "not_after": ts(r.not_after), "recorded_at": ts(r.created_at),
                    "certificate": r.cert_der.as_deref().map(pem_cert),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("serial:    {}\nstatus:    {}\nsubject:   {}\nprofile:   {}\nissuer:    {}\npublisher: {}\nnotBefore: {}\nnotAfter:  {}\nrecorded:  {}",
                r.serial, status, r.subject, r.profile, r.ca, r.publisher.unwrap_or_default(), ts(r.not_before), ts(r.not_after), ts(r.created_at));
            if let Some(der) = r.cert_der {
                print!("{}", pem_cert(&der));
            }
        }
        CertCmd::List {
            publisher,
            profile,
            limit,
            after,
        } => {
            let rows = hm.store.list_certificates(&CertFilter {
                publisher: publisher.clone(),
                profile: profile.clone(),
                ca: None,
                after: after.clone(),
                limit: *limit,
            })?;
            let full = rows.len() == *limit;
            let next = rows.last().map(|r| r.serial.clone());
            let rows = rows
                .into_iter()
                .map(|r| {
                    let j = serde_json::json!({
                        "serial": r.serial, "status": r.status, "profile": r.profile,
                        "publisher": r.publisher, "issuer": r.ca, "subject": r.subject,
                        "not_before": ts(r.not_before), "not_after": ts(r.not_after),
                    });
                    let line = format!(
                        "{} {:<16} {:<12} {} {}",
                        r.serial,
                        r.profile,
                        r.publisher.unwrap_or_default(),
                        ts(r.not_after),
                        r.subject
                    );
                    (j, line)
                })
                .collect();
            print_list(cli.output, rows, full, next, "hallmark cert list --after")?;
        }
    }
    Ok(())
}
