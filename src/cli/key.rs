//! `hallmark key`: publisher signing keys in the key store, their certificates and signing policies.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};

use super::{actor, open, output, pem_cert, print_list, read_cert, Cli, Output};
use crate::engine::Hallmark;
use crate::keys::KeyAlgorithm;

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Generate a signing key in the key store, make its CSR and have it issued.
    Create {
        #[arg(long)]
        publisher: String,
        #[arg(long)]
        label: String,
        /// p256, p384, rsa3072 or rsa4096.
        #[arg(long, default_value = "p256")]
        algorithm: KeyAlgorithm,
        /// Profile to issue under.
        #[arg(long, default_value = "code-signing")]
        profile: String,
        /// Make only the key and CSR (for an external CA; see `key csr` and `key import-cert`).
        #[arg(long)]
        no_issue: bool,
    },
    /// Print a key's CSR (PEM).
    Csr {
        label: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Attach a certificate an external CA issued for a key.
    ImportCert { label: String, cert: PathBuf },
    /// List keys.
    List {
        #[arg(long)]
        publisher: Option<String>,
    },
    /// Print a key's certificate (PEM), or with --policy its signing policy.
    Show {
        label: String,
        /// Print the key's signing policy instead of its certificate.
        #[arg(long)]
        policy: bool,
    },
    /// Change a key's signing policy (the fields given; the others stay), or print it when no
    /// flag is given. Prints the policy stored.
    Policy(KeyPolicyArgs),
    /// Make, once, the key's OpenPGP certificate (v4; the key as the primary key, its user ID
    /// bound by a self-signature the key store makes) and print it armored. Again later: print
    /// the stored one.
    Openpgp {
        label: String,
        /// The user ID, e.g. "Acme Release <release@acme.example>"; needed the first time.
        #[arg(long)]
        uid: Option<String>,
        /// Binary instead of armored (what apt's `signed-by` keyrings and `gpgv --keyring`
        /// read).
        #[arg(long)]
        export: bool,
        /// Write it here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct KeyPolicyArgs {
    pub label: String,
    /// Formats the key signs (raw, cms, cose_sign1, openpgp); all when left out.
    #[arg(long, value_delimiter = ',')]
    pub formats: Vec<String>,
    /// Digest algorithms the key signs (sha256, sha384, sha512); all when left out.
    #[arg(long, value_delimiter = ',')]
    pub digests: Vec<String>,
    /// Token names that may sign with the key; any token of the publisher when left out.
    #[arg(long, value_delimiter = ',')]
    pub signers: Vec<String>,
    /// Distinct approvals a signature needs (never the requester's own).
    #[arg(long)]
    pub approvals: Option<u32>,
    /// Token names that may approve (tokens with the `approve` scope).
    #[arg(long, value_delimiter = ',')]
    pub approvers: Vec<String>,
    /// Signatures per minute with this key (bursts of as many); unlimited when never set.
    #[arg(long)]
    pub rate_per_minute: Option<u32>,
    /// Remove the format restriction (every format).
    #[arg(long, conflicts_with = "formats")]
    pub clear_formats: bool,
    /// Remove the digest restriction (every digest algorithm).
    #[arg(long, conflicts_with = "digests")]
    pub clear_digests: bool,
    /// Remove the signer restriction (any token of the publisher).
    #[arg(long, conflicts_with = "signers")]
    pub clear_signers: bool,
    /// Remove the approvals (and the approvers): signatures are made at once.
    #[arg(long, conflicts_with_all = ["approvals", "approvers"])]
    pub clear_approvals: bool,
    /// Remove the rate limit.
    #[arg(long, conflicts_with = "rate_per_minute")]
    pub clear_rate: bool,
}

impl KeyPolicyArgs {
    /// Whether any field is to change.
    fn changes(&self) -> bool {
        !(self.formats.is_empty()
            && self.digests.is_empty()
            && self.signers.is_empty()
            && self.approvers.is_empty()
            && self.approvals.is_none()
            && self.rate_per_minute.is_none())
            || self.clear_formats
            || self.clear_digests
            || self.clear_signers
            || self.clear_approvals
            || self.clear_rate
    }

    /// The current policy with the fields given (or cleared) changed.
    fn applied_to(
        &self,
        current: &crate::policy::signing::KeyPolicy,
    ) -> Result<crate::policy::signing::KeyPolicy, crate::policy::PolicyError> {
        let field = |given: &Vec<String>, clear: bool, now: &Vec<String>| -> Vec<String> {
            match (clear, given.is_empty()) {
                (true, _) => Vec::new(),
                (false, true) => now.clone(),
                (false, false) => given.clone(),
            }
        };
        crate::policy::signing::KeyPolicy::normalized(
            &field(&self.formats, self.clear_formats, &current.formats),
            &field(&self.digests, self.clear_digests, &current.digests),
            &field(&self.signers, self.clear_signers, &current.signers),
            if self.clear_approvals {
                0
            } else {
                self.approvals.unwrap_or(current.approvals)
            },
            &field(&self.approvers, self.clear_approvals, &current.approvers),
            if self.clear_rate {
                None
            } else {
                self.rate_per_minute.or(current.rate_per_minute)
            },
        )
    }
}

pub(super) fn cmd_key(cli: &Cli, c: &KeyCmd) -> anyhow::Result<()> {
    let hm = open(cli)?;
    match c {
        KeyCmd::Create {
            publisher,
            label,
            algorithm,
            profile,
            no_issue,
        } => {
            let (rec, issued) = hm.create_key(
                publisher,
                label,
                *algorithm,
                (!no_issue).then_some(profile.as_str()),
                &actor(),
            )?;
            println!(
                "key {} ({}) created in the key store: {}",
                rec.label, rec.algorithm, rec.uri
            );
            match issued {
                Some(i) => println!(
                    "certificate {} issued under {profile}; `hallmark key show {label}` prints it",
                    i.serial
                ),
                None => println!(
                    "no certificate yet: `hallmark key csr {label}` prints the CSR for your CA"
                ),
            }
        }
        KeyCmd::Csr { label, out } => {
            let rec = hm.key(label)?;
            output(
                out.as_deref(),
                &crate::pemfmt::encode("CERTIFICATE REQUEST", rec.csr_der),
            )?;
        }
        KeyCmd::Openpgp {
            label,
            uid,
            export,
            out,
        } => {
            let made = match uid {
                Some(uid) => hm.signing.make_openpgp_key(label, uid, &actor())?,
                None => match hm.store.get_openpgp_key(label)? {
                    Some(record) => crate::signing::OpenPgpKey {
                        record,
                        made: false,
                        warning: None,
                    },
                    None => bail!(
                        "key '{label}' has no OpenPGP certificate yet: give its user ID, \
                         e.g. --uid \"Acme Release <release@acme.example>\""
                    ),
                },
            };
            if let Some(w) = &made.warning {
                eprintln!("warning: {w}");
            }
            eprintln!(
                "{} OpenPGP certificate of key '{label}': {} \"{}\"",
                if made.made { "made the" } else { "the" },
                made.record.fingerprint,
                made.record.user_id
            );
            if *export {
                match out {
                    Some(p) => std::fs::write(p, &made.record.certificate)
                        .with_context(|| format!("writing {}", p.display()))?,
                    None => {
                        let mut o = std::io::stdout().lock();
                        o.write_all(&made.record.certificate)?;
                        o.flush()?;
                    }
                }
            } else {
                output(out.as_deref(), &made.armored()?)?;
            }
        }
        KeyCmd::ImportCert { label, cert } => {
            let der = read_cert(cert)?;
            let serial = hm.import_key_certificate(label, &der, &actor())?;
            println!("attached certificate {serial} to key {label}");
        }
        KeyCmd::List { publisher } => {
            let rows = hm
                .store
                .list_keys(publisher.as_deref())?
                .into_iter()
                .map(|k| {
                    let j = serde_json::json!({
                        "label": k.label, "publisher": k.publisher, "algorithm": k.algorithm,
                        "certificate_serial": k.cert_serial, "uri": k.uri,
                    });
                    let line = format!(
                        "{:<16} {:<12} {:<8} cert={} {}",
                        k.label,
                        k.publisher,
                        k.algorithm,
                        k.cert_serial.unwrap_or_else(|| "-".into()),
                        k.uri
                    );
                    (j, line)
                })
                .collect();
            print_list(cli.output, rows, false, None, "")?;
        }
        // JSON: one document, the policy included (what GET /api/v1/keys/{label} answers).
        KeyCmd::Show { label, .. } if cli.output == Output::Json => {
            let rec = hm.key(label)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&hm.signing.key_document(&rec)?)?
            );
        }
        KeyCmd::Show {
            label,
            policy: true,
        } => print_key_policy(&hm, &hm.key(label)?.label)?,
        KeyCmd::Policy(a) => {
            if a.changes() {
                // Setting one field keeps the others (the --clear-* flags remove one).
                let policy = a.applied_to(&hm.signing.key_policy(&a.label)?)?;
                hm.signing.set_key_policy(&a.label, &policy, &actor())?;
                println!("policy of key {} set:", a.label);
            }
            print_key_policy(&hm, &hm.key(&a.label)?.label)?;
        }
        KeyCmd::Show {
            label,
            policy: false,
        } => {
            let rec = hm.key(label)?;
            let der = rec
                .cert_der
                .ok_or_else(|| anyhow!("key '{label}' has no certificate yet"))?;
            print!("{}", pem_cert(&der));
        }
    }
    Ok(())
}

/// A key's policy, and where it comes from.
fn print_key_policy(hm: &Hallmark, label: &str) -> anyhow::Result<()> {
    print!("{}", hm.signing.key_policy(label)?.describe());
    match hm.signing.key_policy_source(label)? {
        "config" => println!(
            "source: {} [signing.keys.{label}]",
            hm.config.path.display()
        ),
        "set" => println!("source: hallmark key policy"),
        _ => println!("source: none set (the service's own rules only)"),
    }
    Ok(())
}
