//! The `hallmark` command line: parse, call the engine, print. No policy and no signing here.
//!
//! This file holds the top of the clap tree ([`Cli`], [`Command`]), the options every command
//! shares, and the dispatcher [`run`]; each command family's arguments and handler live in a
//! file of their own beside it. The commands that only talk to a server over its API (`sign`,
//! `verify`, `request`, `approve`, `deny`, `gpg`, `client`) are the `hallmark-client` crate's
//! (`hallmark_client::cli`), named here so both binaries share one definition of each.

/// The client-side commands (the `hallmark-client` crate).
pub use hallmark_client::cli::{gpg, request, sign, verify};
/// The client context and HTTP client (the `hallmark-client` crate, which the PKCS#11 module
/// shares).
pub use hallmark_client::{client, context};
mod acme;
mod audit;
mod ca;
mod cert;
mod init;
mod key;
mod profile;
mod publisher;
mod revoke;
mod serve;
mod signature;
mod station;
mod token;
mod webhook;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};

pub use audit::AuditArgs;
pub use ca::CaCmd;
pub use cert::{CertCmd, IssueArgs};
pub use hallmark_client::cli::{output, read_input, ClientCmd, OidcArgs, Output, ServerArgs};
pub use init::InitArgs;
pub use key::{KeyCmd, KeyPolicyArgs};
pub use profile::ProfileCmd;
pub use publisher::PublisherCmd;
pub use request::{DecideArgs, RequestAction, RequestArgs, RequestCmd};
pub use token::TokenCmd;
pub use webhook::WebhookCmd;

use crate::engine::Hallmark;
use crate::keys::KeyAlgorithm;
/// Times in listings: RFC 3339.
pub(crate) use crate::store::rfc3339 as ts;

#[derive(Parser, Debug)]
#[command(
    name = "hallmark",
    version,
    about = "A private CA and signing service for code signing and IoT manufacturing"
)]
pub struct Cli {
    /// The configuration file (written by `hallmark init`).
    #[arg(long, global = true, env = "HALLMARK_CONFIG")]
    pub config: Option<PathBuf>,
    /// How list and show commands print: text, or json (one document; lists as
    /// {"items": [...], "next": CURSOR-or-null}).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "HALLMARK_OUTPUT"
    )]
    pub output: Output,
    /// Log lines on standard error: text, or json (one object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "HALLMARK_LOG_FORMAT"
    )]
    pub log_format: crate::logging::LogFormat,
    /// The least severe log events written: error, warn, info, debug or trace (or tracing
    /// directives, e.g. info,hallmark::access=warn).
    #[arg(
        long,
        global = true,
        default_value = "info",
        env = "HALLMARK_LOG_LEVEL"
    )]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a CA directory: config, profiles, database, root, issuing CAs and OCSP responders.
    Init(InitArgs),
    /// Run the server: the public plain-HTTP listener and the API listener (TLS).
    Serve {
        /// Public listener address (overrides server.listen).
        #[arg(long, alias = "listen")]
        public_listen: Option<String>,
        /// API listener address (overrides api.listen).
        #[arg(long)]
        api_listen: Option<String>,
        /// Serve only the public listener.
        #[arg(long)]
        no_api: bool,
    },
    /// Manage publishers (organisations with a verified identity).
    #[command(subcommand)]
    Publisher(PublisherCmd),
    /// Issue a certificate for a CSR under a profile.
    Issue(IssueArgs),
    /// Publisher signing keys held in the key store.
    #[command(subcommand)]
    Key(KeyCmd),
    /// The CA hierarchy.
    #[command(subcommand)]
    Ca(CaCmd),
    /// Issued certificates.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Certificate profiles.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Factory provisioning stations.
    #[command(subcommand)]
    Station(station::StationCmd),
    /// API tokens (only their hash is stored).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Submit a CSR to a hallmark server and wait for the certificate (CI jobs); `request
    /// cancel ID` withdraws a pending request.
    Request(RequestCmd),
    /// Approve a pending request on a hallmark server, with your own token.
    Approve(DecideArgs),
    /// Deny a pending request on a hallmark server, with your own token.
    Deny(DecideArgs),
    /// Revoke a certificate (recorded at once; OCSP and CRLs follow).
    Revoke(revoke::RevokeArgs),
    /// Issue a CRL now and write it to a file (the server publishes its own at /crl/CA.crl).
    Crl(revoke::CrlArgs),
    /// Sign a file with a key on a hallmark server: the file is hashed here, only the digest is sent.
    #[command(subcommand)]
    Sign(sign::SignCmd),
    /// Recorded signatures.
    #[command(subcommand)]
    Signature(signature::SignatureCmd),
    /// Webhooks (`[[webhook]]` in hallmark.toml): what each has delivered, and a test event.
    #[command(subcommand)]
    Webhook(WebhookCmd),
    /// A gpg-compatible signing front end (also installed as `hallmark-gpg`) for rpmsign and
    /// repository scripts: -u LABEL, -sb/--detach-sign, --clearsign, -a/--armor, -o FILE,
    /// --digest-algo. Takes gpg's own syntax: `hallmark gpg -u release -sbo sig file`.
    Gpg {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Verify anything hallmark signs: detached CMS, Authenticode PE, jars, MCUboot images,
    /// COSE_Sign1, RFC 3161 tokens and raw signatures; the chain to the root, key usage, the
    /// time-stamp and revocation (OCSP, else CRL). One line per check; exit 0 only when all pass.
    Verify(verify::VerifyArgs),
    /// The RFC 3161 time-stamp authority served at POST /tsa.
    #[command(subcommand)]
    Tsa(TsaCmd),
    /// The ACME server: external account binding keys.
    #[command(subcommand)]
    Acme(acme::AcmeCmd),
    /// Check the database, the key stores and the CAs.
    Doctor,
    /// The client profile: server, root and credential for sign, request, approve and deny.
    #[command(subcommand)]
    Client(ClientCmd),
    /// The audit trail, newest first: filtered by time, kind, actor and object, in pages.
    Audit(AuditArgs),
}

#[derive(Subcommand, Debug)]
pub enum TsaCmd {
    /// Make the TSA key (`tsa` in the default key store) and its certificate (profile
    /// `timestamping`, issued by `timestamping-ca`), written to tsa.pem beside the config.
    Init {
        /// p256, p384, rsa3072, rsa4096, or ed25519 (profile package-signing: OpenPGP only).
        #[arg(long, default_value = "p256")]
        algorithm: KeyAlgorithm,
    },
}

/// A list as `--output` asks: JSON `{"items", "next"}`, or the text lines; in text, a full page
/// says on standard error how to see more (`how` and the next cursor).
pub(crate) fn print_list(
    output: Output,
    rows: Vec<(serde_json::Value, String)>,
    full_page: bool,
    next: Option<String>,
    how: &str,
) -> anyhow::Result<()> {
    let next = next.filter(|_| full_page);
    match output {
        Output::Json => {
            let items: Vec<serde_json::Value> = rows.into_iter().map(|(j, _)| j).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"items": items, "next": next}))?
            );
        }
        Output::Text => {
            let n = rows.len();
            for (_, line) in rows {
                println!("{line}");
            }
            if full_page {
                match next {
                    Some(cursor) => {
                        eprintln!("({n} shown, the limit; more follow: {how} {cursor})")
                    }
                    None => eprintln!("({n} shown, the limit; more may follow: {how})"),
                }
            }
        }
    }
    Ok(())
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn open(cli: &Cli) -> anyhow::Result<Hallmark> {
    let path = cli
        .config
        .as_ref()
        .ok_or_else(|| anyhow!("no config: give --config FILE or set HALLMARK_CONFIG"))?;
    Hallmark::open(path).with_context(|| format!("opening {}", path.display()))
}

fn pem_cert(der: &[u8]) -> String {
    crate::pemfmt::encode("CERTIFICATE", der.to_vec())
}

/// A certificate file: PEM (first CERTIFICATE block) or DER.
fn read_cert(path: &Path) -> anyhow::Result<Vec<u8>> {
    let data = read_input(path)?;
    if data.trim_ascii_start().starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(&data).context("PEM is not UTF-8")?;
        let blocks = pem::parse_many(text).context("reading PEM")?;
        blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.into_contents())
            .ok_or_else(|| anyhow!("{} holds no CERTIFICATE", path.display()))
    } else {
        Ok(data)
    }
}

/// Runs the CLI; errors carry context for the message.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    // Held until the command returns: what the log thread holds is written then.
    let _log = crate::logging::init(cli.log_format, &cli.log_level).map_err(|e| anyhow!(e))?;
    match &cli.command {
        Command::Init(a) => init::cmd_init(a),
        Command::Serve {
            public_listen,
            api_listen,
            no_api,
        } => serve::cmd_serve(
            &cli,
            public_listen.as_deref(),
            api_listen.as_deref(),
            *no_api,
        ),
        Command::Publisher(c) => publisher::cmd_publisher(&cli, c),
        Command::Issue(a) => cert::cmd_issue(&cli, a),
        Command::Key(c) => key::cmd_key(&cli, c),
        Command::Ca(c) => ca::cmd_ca(&cli, c),
        Command::Tsa(TsaCmd::Init { algorithm }) => {
            let hm = open(&cli)?;
            let path = hm.init_tsa(*algorithm, &actor())?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Cert(c) => cert::cmd_cert(&cli, c),
        Command::Profile(c) => profile::cmd_profile(&cli, c),
        Command::Token(c) => token::cmd_token(&cli, c),
        Command::Acme(c) => acme::run(&open(&cli)?, &actor(), c),
        Command::Station(c) => {
            let hm = match c {
                station::StationCmd::Run(_) => None,
                _ => Some(open(&cli)?),
            };
            station::run(hm.as_ref(), &actor(), c, cli.output)
        }
        Command::Request(RequestCmd {
            action:
                Some(RequestAction::Cancel {
                    server,
                    id,
                    signature,
                }),
            ..
        }) => request::cmd_cancel(server, *id, *signature),
        Command::Request(RequestCmd { submit, .. }) => request::cmd_request(submit),
        Command::Approve(a) => request::cmd_decide(a, true),
        Command::Deny(a) => request::cmd_decide(a, false),
        Command::Doctor => {
            let hm = open(&cli)?;
            let checks = hm.doctor();
            let mut failed = 0;
            for c in &checks {
                println!(
                    "{} {:<28} {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.name,
                    c.detail
                );
                failed += usize::from(!c.ok);
            }
            if failed > 0 {
                bail!("{failed} check(s) failed");
            }
            Ok(())
        }
        Command::Revoke(a) => revoke::cmd_revoke(&cli, a),
        Command::Crl(a) => revoke::cmd_crl(&cli, a),
        Command::Sign(c) => sign::cmd_sign(c),
        Command::Webhook(c) => webhook::cmd_webhook(&cli, c),
        Command::Gpg { args } => {
            let code = gpg::main(args.iter().map(std::ffi::OsString::from).collect());
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Signature(c) => signature::cmd_signature(&cli, c),
        Command::Verify(a) => verify::cmd_verify(cli.output, a),
        Command::Client(c) => hallmark_client::cli::cmd_client(c),
        Command::Audit(a) => audit::cmd_audit(&cli, a),
    }
}
