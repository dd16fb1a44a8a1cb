//! `hallmark ca`: the CA hierarchy: listing, certificates, issuing CAs and the offline-root ceremony.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Subcommand;

use super::{actor, context, open, output, pem_cert, print_list, read_cert, read_input, ts, Cli};
use crate::engine::CaPurpose;
use crate::keys::KeyAlgorithm;

#[derive(Subcommand, Debug)]
pub enum CaCmd {
    /// List the CAs.
    List,
    /// Print a CA certificate (PEM); the root is `root`.
    Cert {
        name: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the SHA-256 fingerprint of a CA certificate (DER), hex: what `hallmark client
    /// bootstrap --fingerprint` checks the root against.
    Fingerprint { name: String },
    /// Create an issuing CA under the root, or (with --csr-out) a CSR for an external root.
    CreateIssuing {
        name: String,
        #[arg(long, value_parser = ["code-signing", "timestamping", "devices", "tls"])]
        purpose: String,
        #[arg(long, default_value = "p256")]
        algorithm: KeyAlgorithm,
        /// Write a CSR for an external (or offline) root here instead of signing with `root`.
        #[arg(long)]
        csr_out: Option<PathBuf>,
        /// A Matter PAI: its vendor id (four hex digits) goes into the subject (devices CAs).
        #[arg(long)]
        matter_vid: Option<String>,
    },
    /// Import the certificate an external root issued for a CA made with --csr-out.
    Import {
        name: String,
        cert: PathBuf,
        /// Name of the issuing CA in this database, if it is here.
        #[arg(long)]
        parent: Option<String>,
    },
    /// With this config's root: sign an issuing-CA CSR (the offline-root ceremony).
    SignCsr {
        #[arg(long)]
        csr: PathBuf,
        #[arg(long, value_parser = ["code-signing", "timestamping", "devices", "tls"])]
        purpose: String,
        #[arg(long)]
        out: PathBuf,
    },
}

pub(super) fn cmd_ca(cli: &Cli, c: &CaCmd) -> anyhow::Result<()> {
    let hm = open(cli)?;
    match c {
        CaCmd::List => {
            let rows = hm
                .store
                .list_cas()?
                .into_iter()
                .map(|ca| {
                    let j = serde_json::json!({
                        "name": ca.name, "role": ca.role.as_str(), "algorithm": ca.key_algorithm,
                        "parent": ca.parent, "not_after": ca.not_after.map(ts), "subject": ca.subject,
                    });
                    let line = format!(
                        "{:<22} {:<8} {:<8} parent={:<16} notAfter={} {}",
                        ca.name,
                        ca.role.as_str(),
                        ca.key_algorithm,
                        ca.parent.unwrap_or_else(|| "-".into()),
                        ca.not_after
                            .map(ts)
                            .unwrap_or_else(|| "(no certificate)".into()),
                        ca.subject.unwrap_or_default()
                    );
                    (j, line)
                })
                .collect();
            print_list(cli.output, rows, false, None, "")?;
        }
        CaCmd::Cert { name, out } => {
            let ca = hm
                .store
                .get_ca(name)?
                .ok_or_else(|| anyhow!("no CA named '{name}'"))?;
            let der = ca
                .cert_der
                .ok_or_else(|| anyhow!("CA '{name}' has no certificate yet"))?;
            output(out.as_deref(), &pem_cert(&der))?;
        }
        CaCmd::Fingerprint { name } => {
            let der = hm
                .store
                .get_ca(name)?
                .ok_or_else(|| anyhow!("no CA named '{name}'"))?
                .cert_der
                .ok_or_else(|| anyhow!("CA '{name}' has no certificate yet"))?;
            println!("{}", context::fingerprint(&der));
        }
        CaCmd::CreateIssuing {
            name,
            purpose,
            algorithm,
            csr_out,
            matter_vid,
        } => {
            let purpose = CaPurpose::parse(purpose)?;
            let csr = hm.create_issuing_with(
                name,
                purpose,
                "root",
                *algorithm,
                csr_out.is_some(),
                matter_vid.as_deref(),
                &actor(),
            )?;
            match (csr, csr_out) {
                (Some(csr), Some(path)) => {
                    std::fs::write(path, crate::pemfmt::encode("CERTIFICATE REQUEST", csr))?;
                    println!("CSR for CA {name} written to {}; have it signed, then `hallmark ca import {name} CERT`", path.display());
                }
                _ => println!("created issuing CA {name} and its OCSP responder {name}-ocsp"),
            }
        }
        CaCmd::Import { name, cert, parent } => {
            let der = read_cert(cert)?;
            hm.import_ca_certificate(name, &der, parent.as_deref(), &actor())?;
            println!(
                "imported the certificate of CA {name}; created its OCSP responder {name}-ocsp"
            );
        }
        CaCmd::SignCsr { csr, purpose, out } => {
            let purpose = CaPurpose::parse(purpose)?;
            let der = hm.sign_issuing_csr(&read_input(csr)?, purpose, &actor())?;
            std::fs::write(out, pem_cert(&der))?;
            println!("signed; certificate written to {}", out.display());
        }
    }
    Ok(())
}
