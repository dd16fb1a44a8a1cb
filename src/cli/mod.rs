//! The `hallmark` command line: parse, call the engine, print. No policy and no signing here.
//!
//! This file holds the top of the clap tree ([`Cli`], [`Command`]), the options every command
//! shares, and the dispatcher [`run`]; each command family's arguments and handler live in a
//! file of their own beside it.

/// The client context and HTTP client (the `hallmark-client` crate, which the PKCS#11 module
/// shares).
pub use hallmark_client::{client, context};
mod acme;
mod audit;
mod ca;
mod cert;
pub mod gpg;
mod init;
mod key;
mod profile;
mod publisher;
mod request;
mod revoke;
mod serve;
mod sign;
mod sign_authenticode;
mod sign_cose;
mod sign_image;
mod sign_jar;
mod sign_mcuboot;
mod sign_openpgp;
mod station;
mod token;
mod verify;
mod webhook;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};

pub use audit::AuditArgs;
pub use ca::CaCmd;
pub use cert::{CertCmd, IssueArgs};
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
    Signature(sign::SignatureCmd),
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

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
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

/// Where the server is and how to reach it; each falls back to the client profile
/// (`hallmark client bootstrap`, `hallmark client login`).
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Base URL of the API listener, e.g. https://127.0.0.1:8443.
    #[arg(long, env = "HALLMARK_SERVER")]
    pub server: Option<String>,
    /// Environment variable holding the API token (default: the client profile's credential,
    /// else HALLMARK_TOKEN).
    #[arg(long)]
    pub token_env: Option<String>,
    #[command(flatten)]
    pub oidc: OidcArgs,
    /// The root CA certificate to trust for https (hallmark's root).
    #[arg(long, env = "HALLMARK_CA")]
    pub ca: Option<PathBuf>,
}

/// A CI job's own OIDC token as the credential: no hallmark secret on the build server.
#[derive(Args, Debug, Default, Clone)]
pub struct OidcArgs {
    /// Authenticate with the CI job's OIDC token: GitHub Actions' (the job needs
    /// `permissions: id-token: write`), or the one in --oidc-token-env.
    #[arg(long, conflicts_with = "token_env")]
    pub oidc: bool,
    /// The variable holding the job's OIDC token (GitLab CI: an `id_tokens:` entry); implies
    /// --oidc.
    #[arg(long, value_name = "VAR", conflicts_with = "token_env")]
    pub oidc_token_env: Option<String>,
    /// The audience asked of GitHub Actions (default: hallmark; the server's
    /// `[[identity.oidc]] audiences` must list it).
    #[arg(long, value_name = "AUD")]
    pub oidc_audience: Option<String>,
}

impl OidcArgs {
    fn flags(&self, token_env: Option<&str>) -> context::CredentialFlags {
        context::CredentialFlags {
            token_env: token_env.map(str::to_string),
            oidc: self.oidc,
            oidc_token_env: self.oidc_token_env.clone(),
            oidc_audience: self.oidc_audience.clone(),
        }
    }
}

impl ServerArgs {
    /// The client these arguments (or the client profile) name.
    pub fn client(&self) -> anyhow::Result<client::Client> {
        context::client(
            self.server.as_deref(),
            &self.oidc.flags(self.token_env.as_deref()),
            self.ca.as_deref(),
        )
    }
}

/// `hallmark client`: the client profile.
#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Fetch the root over the public listener, check it against FINGERPRINT, and write the
    /// client profile ($XDG_CONFIG_HOME/hallmark/client.toml) with the server and the root.
    Bootstrap {
        /// The API listener, e.g. https://127.0.0.1:8443.
        #[arg(long)]
        server: String,
        /// SHA-256 of the root certificate, as `hallmark init` printed it.
        #[arg(long)]
        fingerprint: String,
        /// The public listener to fetch the root from (default: http://SERVER-HOST:8080).
        #[arg(long)]
        public: Option<String>,
        /// Replace a client profile for another server or root (its credential is dropped).
        #[arg(long)]
        force: bool,
    },
    /// Choose the credential the networked commands use: a variable or a file holding the
    /// token (the token itself is never stored or printed).
    Login {
        #[arg(long, conflicts_with = "token_file")]
        token_env: Option<String>,
        #[arg(long, conflicts_with = "oidc")]
        token_file: Option<PathBuf>,
        #[command(flatten)]
        oidc: OidcArgs,
    },
    /// Print the client profile.
    Show,
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

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
        Ok(v)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
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

fn output(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
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
        Command::Signature(c) => sign::cmd_signature(&cli, c),
        Command::Verify(a) => verify::cmd_verify(cli.output, a),
        Command::Client(ClientCmd::Bootstrap {
            server,
            fingerprint,
            public,
            force,
        }) => context::bootstrap(server, fingerprint, public.as_deref(), *force),
        Command::Client(ClientCmd::Login {
            token_env,
            token_file,
            oidc,
        }) => context::login(
            token_env.as_deref(),
            token_file.as_deref(),
            &oidc.flags(None),
        ),
        Command::Client(ClientCmd::Show) => {
            let p = context::load()?;
            print!("{}", toml::to_string(&p)?);
            Ok(())
        }
        Command::Audit(a) => audit::cmd_audit(&cli, a),
    }
}
