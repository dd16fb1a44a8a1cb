//! The `hallmark` command line: parse, call the engine, print. No policy and no signing here.

mod acme;
pub mod client;
pub mod context;
pub mod gpg;
mod revoke;
mod sign;
mod sign_authenticode;
mod sign_cose;
mod sign_image;
mod sign_jar;
mod sign_mcuboot;
mod sign_openpgp;
mod station;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::engine::{CaPurpose, Hallmark};
use crate::init::{InitOptions, KeysChoice};
use crate::keys::KeyAlgorithm;
use crate::policy::IssueRequest;
use crate::profile::{Profile, Profiles};
/// Times in listings: RFC 3339.
pub(crate) use crate::store::rfc3339 as ts;
use crate::store::{now, CertFilter, Publisher};

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

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Events at or after this time: a date (YYYY-MM-DD, UTC) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Events before this time (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// An action (certificate.issued) or a family of them (certificate).
    #[arg(long)]
    pub kind: Option<String>,
    /// Text found in the actor (a token id or name, a person, a station).
    #[arg(long)]
    pub actor: Option<String>,
    /// The object acted on, exactly (a serial, a key label, a request id).
    #[arg(long)]
    pub object: Option<String>,
    /// Events older than this id: the cursor the previous page printed.
    #[arg(long)]
    pub before: Option<i64>,
    /// Events a page.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
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

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Directory to create (must not hold a CA yet).
    #[arg(long)]
    pub dir: PathBuf,
    /// Where keys live: `pkcs11` (an HSM) or `soft` (encrypted files, development only).
    #[arg(long, value_parser = ["soft", "pkcs11"], default_value = "soft")]
    pub keys: String,
    /// PKCS#11 module path (with --keys pkcs11).
    #[arg(long)]
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token (with --keys pkcs11).
    #[arg(long)]
    pub token_label: Option<String>,
    /// Environment variable holding the token PIN (with --keys pkcs11).
    #[arg(long)]
    pub pin_env: Option<String>,
    /// File holding the token PIN (with --keys pkcs11).
    #[arg(long)]
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the soft-key passphrase; without it a random one is written
    /// to DIR/keys/passphrase.
    #[arg(long)]
    pub passphrase_env: Option<String>,
    /// O of the CA certificates.
    #[arg(long, default_value = "Hallmark Demo")]
    pub org: String,
    /// C of the CA certificates.
    #[arg(long, default_value = "US")]
    pub country: String,
    /// Address `hallmark serve` listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Base URL written into certificates (default http://LISTEN).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Address of the API listener (TLS).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub api_listen: String,
    /// Host names and IPs for the API's TLS certificate (repeat or comma-separate).
    #[arg(long = "api-hostname", value_delimiter = ',', default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    pub api_hostnames: Vec<String>,
    /// The CA's certificate policy OID (default: a random one under the documentation
    /// enterprise number 1.3.6.1.4.1.32473, for tests and demos; set your own).
    #[arg(long)]
    pub policy_oid: Option<String>,
    /// Root key algorithm.
    #[arg(long, default_value = "p384")]
    pub root_algorithm: KeyAlgorithm,
    /// Issuing CA and responder key algorithm.
    #[arg(long, default_value = "p256")]
    pub ca_algorithm: KeyAlgorithm,
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token and print it once.
    Create {
        /// The publisher the token acts for.
        #[arg(long)]
        publisher: Option<String>,
        /// The identity approvals name (e.g. release-manager); default token-ID.
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated: issue, revoke, sign, approve.
        #[arg(long, default_value = "issue")]
        scopes: String,
        /// Lifetime like 90d, 12h, 30m (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
        /// An officer token: may manage publishers and act for any publisher.
        #[arg(long)]
        officer: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
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

/// `hallmark request --profile P --csr F` submits; `hallmark request cancel ID` withdraws.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RequestCmd {
    #[command(subcommand)]
    pub action: Option<RequestAction>,
    #[command(flatten)]
    pub submit: RequestArgs,
}

#[derive(Subcommand, Debug)]
pub enum RequestAction {
    /// Withdraw a pending request (its requester or an officer): it never issues or signs.
    Cancel {
        #[command(flatten)]
        server: ServerArgs,
        /// The request id (`hallmark request` or `hallmark sign` printed it).
        id: i64,
        /// The id is a signature request's, not a certificate request's.
        #[arg(long)]
        signature: bool,
    },
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, required = true)]
    pub profile: Option<String>,
    /// CSR file (PEM or DER).
    #[arg(long, required = true)]
    pub csr: Option<PathBuf>,
    /// Publisher (officer tokens only; a publisher token uses its own).
    #[arg(long)]
    pub publisher: Option<String>,
    #[arg(long)]
    pub device_serial: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// Write the certificate and chain here (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How long to wait for approvals, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Seconds between polls while approvals are pending.
    #[arg(long, default_value_t = 5)]
    pub poll: u64,
}

#[derive(Args, Debug)]
pub struct DecideArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The request id.
    pub id: i64,
    /// The id is a signature request's (`hallmark sign` printed it), not a certificate request's.
    #[arg(long)]
    pub signature: bool,
    #[arg(long)]
    pub comment: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum PublisherCmd {
    /// Register a publisher with its verified identity.
    Add {
        /// Short id, e.g. `acme`.
        id: String,
        /// Verified legal name (becomes O and CN).
        #[arg(long)]
        org: String,
        /// Two-letter country code.
        #[arg(long)]
        country: String,
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        locality: Option<String>,
        /// Profiles the publisher may use, comma separated.
        #[arg(long, value_delimiter = ',', required = true)]
        profiles: Vec<String>,
    },
    /// List publishers.
    List,
    /// Show one publisher.
    Show { id: String },
    /// Change the profiles a publisher may use (its verified identity stays as registered).
    Update {
        id: String,
        /// The new list of profiles, comma separated (replaces the old one).
        #[arg(long, value_delimiter = ',', required = true)]
        profiles: Vec<String>,
    },
}

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

#[derive(Subcommand, Debug)]
pub enum WebhookCmd {
    /// Send a `webhook.test` event to webhook NAME now (not through the outbox) and print the
    /// receiver's answer; exits non-zero when it is not delivered.
    Test { name: String },
    /// The configured webhooks: URL, events, the last event delivered and any failure.
    List,
}

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

#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// Validate a profile file, or every profile of the config.
    Check { file: Option<PathBuf> },
    /// List the profiles of the config.
    List,
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

fn cmd_webhook(cli: &Cli, c: &WebhookCmd) -> anyhow::Result<()> {
    let hm = open(cli)?;
    let find = |name: &str| {
        hm.config
            .webhooks
            .iter()
            .find(|w| w.name == name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no webhook '{name}' in {} (configured: {})",
                    hm.config.path.display(),
                    hm.config
                        .webhooks
                        .iter()
                        .map(|w| w.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    };
    match c {
        WebhookCmd::Test { name } => {
            let r = crate::webhooks::Receiver::new(find(name)?)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let status = rt
                .block_on(r.send(&crate::webhooks::test_event(&actor())))
                .map_err(|why| anyhow::anyhow!("webhook '{name}' ({}): {why}", r.config.url))?;
            println!("webhook '{name}' ({}): delivered, {status}", r.config.url);
        }
        WebhookCmd::List => {
            let rows = hm
                .config
                .webhooks
                .iter()
                .map(|w| {
                    let cur = hm.store.webhook_cursor(&w.name)?;
                    let events = if w.events.is_empty() {
                        "all".to_string()
                    } else {
                        w.events.join(",")
                    };
                    let j = serde_json::json!({
                        "name": w.name, "url": w.url, "events": w.events, "format": w.format,
                        "last_delivered": cur.as_ref().map(|c| c.last_id),
                        "failed_attempts": cur.as_ref().map(|c| c.attempts).unwrap_or(0),
                        "last_error": cur.as_ref().and_then(|c| c.last_error.clone()),
                    });
                    let line = format!(
                        "{:<16} {} events={} format={} last={} {}",
                        w.name,
                        w.url,
                        events,
                        w.format,
                        cur.as_ref()
                            .map(|c| c.last_id.to_string())
                            .unwrap_or_else(|| "-".into()),
                        cur.as_ref()
                            .and_then(|c| c.last_error.as_ref())
                            .map(|e| format!(
                                "failing ({} attempts): {e}",
                                cur.as_ref().map(|c| c.attempts).unwrap_or(0)
                            ))
                            .unwrap_or_default()
                    );
                    Ok((j, line))
                })
                .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
            print_list(cli.output, rows, false, None, "")?;
        }
    }
    Ok(())
}

/// Runs the CLI; errors carry context for the message.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    // Held until the command returns: what the log thread holds is written then.
    let _log = crate::logging::init(cli.log_format, &cli.log_level).map_err(|e| anyhow!(e))?;
    match &cli.command {
        Command::Init(a) => cmd_init(a),
        Command::Serve {
            public_listen,
            api_listen,
            no_api,
        } => cmd_serve(
            &cli,
            public_listen.as_deref(),
            api_listen.as_deref(),
            *no_api,
        ),
        Command::Publisher(c) => cmd_publisher(&cli, c),
        Command::Issue(a) => {
            let hm = open(&cli)?;
            let csr = read_input(&a.csr)?;
            let issued = hm.issue(&IssueRequest {
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
        Command::Key(c) => cmd_key(&cli, c),
        Command::Ca(c) => cmd_ca(&cli, c),
        Command::Tsa(TsaCmd::Init { algorithm }) => {
            let hm = open(&cli)?;
            let path = crate::tsa::init(&hm, *algorithm, &actor())?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Cert(c) => cmd_cert(&cli, c),
        Command::Profile(c) => cmd_profile(&cli, c),
        Command::Token(c) => cmd_token(&cli, c),
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
        }) => {
            let client = server.client()?;
            let path = format!(
                "/api/v1/{}requests/{id}/cancel",
                if *signature { "signatures/" } else { "" }
            );
            let r = client.send("POST", &path, None, vec![])?;
            if r.status != 200 {
                bail!("{} {}", r.status, r.problem());
            }
            println!(
                "{}request {id}: {}",
                if *signature { "signature " } else { "" },
                r.json()?["status"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        Command::Request(RequestCmd { submit, .. }) => cmd_request(submit),
        Command::Approve(a) => cmd_decide(a, true),
        Command::Deny(a) => cmd_decide(a, false),
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
        Command::Webhook(c) => cmd_webhook(&cli, c),
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
        Command::Audit(a) => cmd_audit(&cli, a),
    }
}

fn cmd_audit(cli: &Cli, a: &AuditArgs) -> anyhow::Result<()> {
    let time = |v: &Option<String>, flag: &str| -> anyhow::Result<Option<i64>> {
        match v {
            None => Ok(None),
            Some(v) => crate::timespec::parse(v)
                .map(Some)
                .ok_or_else(|| anyhow!("{flag} '{v}' is not {}", crate::timespec::FORMS)),
        }
    };
    if !(1..=1000).contains(&a.limit) {
        bail!("--limit must be 1 to 1000");
    }
    if a.before.is_some_and(|b| b < 1) {
        bail!("--before takes the cursor a previous page printed (a positive id)");
    }
    let search = crate::store::AuditSearch {
        actor: a.actor.clone(),
        action: a.kind.clone().map(crate::store::AuditSearch::kind),
        subject: a.object.clone(),
        from: time(&a.since, "--since")?,
        to: time(&a.until, "--until")?,
        before: a.before,
        limit: a.limit,
    };
    let hm = open(cli)?;
    let page = hm.audit_page(&search)?;
    let full = page.next.is_some();
    let rows = page
        .items
        .into_iter()
        .map(|e| {
            let j = serde_json::json!({
                "id": e.id, "at": ts(e.at), "actor": e.actor, "action": e.action,
                "subject": e.subject, "detail": e.detail,
            });
            let line = format!(
                "{:>6} {} {:<20} {:<28} {} {}",
                e.id,
                ts(e.at),
                e.actor,
                e.action,
                e.subject.unwrap_or_default(),
                e.detail.unwrap_or_default()
            );
            (j, line)
        })
        .collect();
    print_list(
        cli.output,
        rows,
        full,
        page.next.map(|n| n.to_string()),
        "hallmark audit (same filters) --before",
    )
}

fn cmd_init(a: &InitArgs) -> anyhow::Result<()> {
    let keys = match a.keys.as_str() {
        "pkcs11" => {
            let module = a
                .pkcs11_module
                .clone()
                .ok_or_else(|| anyhow!("--keys pkcs11 needs --pkcs11-module PATH"))?;
            let token_label = a
                .token_label
                .clone()
                .ok_or_else(|| anyhow!("--keys pkcs11 needs --token-label LABEL"))?;
            if a.pin_env.is_none() == a.pin_file.is_none() {
                bail!("--keys pkcs11 needs exactly one of --pin-env VAR or --pin-file FILE (never the PIN itself)");
            }
            KeysChoice::Pkcs11 {
                module,
                token_label,
                pin_env: a.pin_env.clone(),
                pin_file: a.pin_file.clone(),
            }
        }
        _ => {
            eprintln!("WARNING: software keys (--keys soft) are for development only: keys are encrypted files on this disk, not in an HSM.");
            KeysChoice::Soft {
                passphrase_env: a.passphrase_env.clone(),
            }
        }
    };
    let opts = InitOptions {
        organization: a.org.clone(),
        country: a.country.clone(),
        listen: a.listen.clone(),
        public_url: a.public_url.clone(),
        policy_oid: a.policy_oid.clone(),
        api_listen: a.api_listen.clone(),
        api_hostnames: a.api_hostnames.clone(),
        root_algorithm: a.root_algorithm,
        ca_algorithm: a.ca_algorithm,
        ..InitOptions::new(&a.dir, keys)
    };
    let path = crate::init::init(&opts)?;
    println!("created {}", path.display());
    let hm = Hallmark::open(&path)?;
    for ca in hm.store.list_cas()? {
        println!(
            "  {:<22} {:<8} {}",
            ca.name,
            ca.role.as_str(),
            ca.subject.unwrap_or_default()
        );
    }
    println!(
        "next: hallmark --config {} publisher add ...",
        path.display()
    );
    // The line a client machine pastes (the API listener, the root's fingerprint).
    if let Some(root) = hm.store.get_ca("root")?.and_then(|c| c.cert_der) {
        let scheme = match hm.config.api.transport {
            crate::config::Transport::Tls => "https",
            crate::config::Transport::Plain => "http",
        };
        println!(
            "clients: hallmark client bootstrap --server {scheme}://{} --fingerprint {} --public {}",
            hm.config.api.listen,
            context::fingerprint(&root),
            hm.config.server.public_url.trim_end_matches('/')
        );
    }
    Ok(())
}

fn cmd_serve(
    cli: &Cli,
    public: Option<&str>,
    api: Option<&str>,
    no_api: bool,
) -> anyhow::Result<()> {
    let hm = Arc::new(open(cli)?);
    let parse = |a: &str| -> anyhow::Result<std::net::SocketAddr> {
        a.parse().with_context(|| format!("listen address '{a}'"))
    };
    let listen = crate::http::Listen {
        public: parse(public.unwrap_or(&hm.config.server.listen))?,
        api: if no_api {
            None
        } else {
            Some(parse(api.unwrap_or(&hm.config.api.listen))?)
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::http::serve(hm, listen, |b| {
        println!("hallmark public listener on http://{} (/healthz, /ca/NAME.crt, /crl/NAME.crl, /ocsp)", b.public);
        match b.api {
            Some((a, true)) => println!("hallmark API listener on https://{a} (/api/v1/, /readyz, /metrics)"),
            Some((a, false)) => {
                println!("hallmark API listener on http://{a} (/api/v1/, /readyz, /metrics)");
                tracing::warn!("the API is served over plain HTTP (api.transport = \"plain\"): tokens cross the network in clear. Development only.");
            }
            None => {}
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }))?;
    Ok(())
}

fn cmd_token(cli: &Cli, c: &TokenCmd) -> anyhow::Result<()> {
    use crate::policy::auth::{parse_duration, Scope};
    let hm = open(cli)?;
    match c {
        TokenCmd::Create {
            publisher,
            name,
            scopes,
            expires,
            officer,
        } => {
            let scopes = Scope::parse_list(scopes).map_err(|e| anyhow!(e))?;
            let expires = expires
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| anyhow!(e))?;
            let (rec, secret) = hm.create_token(
                publisher.as_deref(),
                name.as_deref(),
                &scopes,
                *officer,
                expires,
                &actor(),
            )?;
            eprintln!(
                "token {} ({}) for {}{} scopes={}{}; it is shown once:",
                rec.id,
                rec.name,
                rec.publisher.as_deref().unwrap_or("any publisher"),
                if rec.officer { ", officer" } else { "" },
                rec.scopes,
                rec.expires_at
                    .map(|e| format!(", expires {}", ts(e)))
                    .unwrap_or_default()
            );
            println!("{secret}");
        }
        TokenCmd::List => {
            let mut rows = Vec::new();
            for t in hm.store.list_tokens()? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked".to_string(),
                    (None, Some(e)) if e <= now() => "expired".to_string(),
                    (None, Some(e)) => format!("expires {}", ts(e)),
                    (None, None) => "active".to_string(),
                };
                let j = serde_json::json!({
                    "id": t.id, "name": t.name, "publisher": t.publisher, "officer": t.officer,
                    "scopes": t.scopes.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
                    "state": state, "expires_at": t.expires_at.map(ts), "revoked_at": t.revoked_at.map(ts),
                });
                let line = format!(
                    "{} {:<20} {:<12} {:<7} {:<24} {}",
                    t.id,
                    t.name,
                    t.publisher.unwrap_or_else(|| "-".into()),
                    if t.officer { "officer" } else { "" },
                    t.scopes,
                    state
                );
                rows.push((j, line));
            }
            print_list(cli.output, rows, false, None, "")?;
        }
        TokenCmd::Revoke { id } => {
            hm.revoke_token(id, &actor())?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}

fn cmd_request(a: &RequestArgs) -> anyhow::Result<()> {
    let (Some(profile), Some(csr_file)) = (&a.profile, &a.csr) else {
        bail!("hallmark request needs --profile and --csr (or: hallmark request cancel ID)");
    };
    let client = a.server.client()?;
    // Caught from before the request exists (see `hallmark sign`).
    let mut interrupts = client.interrupts()?;
    let csr = String::from_utf8(read_input(csr_file)?).unwrap_or_default();
    let csr = if csr.contains("BEGIN") {
        csr
    } else {
        crate::pemfmt::encode("CERTIFICATE REQUEST", read_input(csr_file)?)
    };
    let body = serde_json::json!({
        "profile": profile, "csr": csr, "publisher": a.publisher,
        "device_serial": a.device_serial, "name": a.name,
    });
    let mut body = body;
    if let Some(o) = body.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    let reply = client.send(
        "POST",
        "/api/v1/certificates",
        Some("application/json"),
        body.to_string().into_bytes(),
    )?;
    let cert = match reply.status {
        201 => reply.json()?,
        202 => {
            let id = reply.json()?["request_id"]
                .as_i64()
                .ok_or_else(|| anyhow!("202 without a request id"))?;
            eprintln!(
                "request {id} waits for approvals; polling for up to {} s (Ctrl-C cancels it)",
                a.timeout
            );
            let path = format!("/api/v1/requests/{id}");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(a.timeout);
            loop {
                if client.pause(
                    std::time::Duration::from_secs(a.poll.max(1)),
                    &mut interrupts,
                ) {
                    bail!(
                        "interrupted while request {id} waited for approvals; {}",
                        client.cancel(&path)
                    );
                }
                let r = client.send("GET", &path, None, vec![])?;
                if r.status != 200 {
                    bail!("request {id}: {} {}", r.status, r.problem());
                }
                let v = r.json()?;
                match v["status"].as_str() {
                    Some("issued") => {
                        let serial = v["certificate_serial"]
                            .as_str()
                            .ok_or_else(|| anyhow!("issued without a serial"))?;
                        let c = client.send(
                            "GET",
                            &format!("/api/v1/certificates/{serial}"),
                            None,
                            vec![],
                        )?;
                        if c.status != 200 {
                            bail!("certificate {serial}: {} {}", c.status, c.problem());
                        }
                        let mut v = c.json()?;
                        let chain = client.send_pem_chain(serial)?;
                        v["chain_pem"] = serde_json::Value::String(chain);
                        break v;
                    }
                    Some("pending") if std::time::Instant::now() < deadline => continue,
                    Some("pending") => bail!(
                        "request {id} was still waiting for approvals after {} s; {}",
                        a.timeout,
                        client.cancel(&path)
                    ),
                    Some(other) => bail!("request {id} was {other}; no certificate"),
                    None => bail!("request {id}: unexpected answer"),
                }
            }
        }
        s => bail!("the server refused: {s} {}", reply.problem()),
    };
    let text = match cert.get("chain_pem").and_then(|c| c.as_str()) {
        Some(chain) => chain.to_string(),
        None => {
            let mut t = cert["certificate"].as_str().unwrap_or_default().to_string();
            for c in cert["chain"].as_array().into_iter().flatten() {
                t.push_str(c.as_str().unwrap_or_default());
            }
            t
        }
    };
    if !text.contains("BEGIN CERTIFICATE") {
        bail!("the server's answer holds no certificate");
    }
    output(a.out.as_deref(), &text)?;
    eprintln!("issued serial {}", cert["serial"].as_str().unwrap_or("?"));
    Ok(())
}

fn cmd_decide(a: &DecideArgs, approve: bool) -> anyhow::Result<()> {
    let client = a.server.client()?;
    let body = match &a.comment {
        Some(c) => serde_json::json!({ "comment": c }).to_string().into_bytes(),
        None => b"{}".to_vec(),
    };
    let path = format!(
        "/api/v1/{}requests/{}/{}",
        if a.signature { "signatures/" } else { "" },
        a.id,
        if approve { "approve" } else { "deny" }
    );
    let r = client.send("POST", &path, Some("application/json"), body)?;
    if r.status != 200 {
        bail!("{} {}", r.status, r.problem());
    }
    let v = r.json()?;
    println!(
        "request {}: {} ({} approval(s) of {})",
        a.id,
        v["status"].as_str().unwrap_or("?"),
        v["approvals"]
            .as_array()
            .map(|x| x.iter().filter(|d| d["decision"] == "approve").count())
            .unwrap_or(0),
        v["approvals_required"]
    );
    if let Some(serial) = v["certificate"]["serial"].as_str() {
        println!("issued certificate {serial}");
    }
    if a.signature && v["status"] == "signed" {
        println!("signed: signature record {}", v["id"]);
    }
    Ok(())
}

fn cmd_publisher(cli: &Cli, c: &PublisherCmd) -> anyhow::Result<()> {
    let hm = open(cli)?;
    match c {
        PublisherCmd::Add {
            id,
            org,
            country,
            state,
            locality,
            profiles,
        } => {
            let p = Publisher {
                id: id.clone(),
                org: org.clone(),
                country: country.clone(),
                state: state.clone(),
                locality: locality.clone(),
                profiles: profiles.clone(),
                created_at: now(),
            };
            hm.add_publisher(&p, &actor())?;
            println!("added publisher {id}");
        }
        PublisherCmd::List => {
            let rows = hm
                .store
                .list_publishers()?
                .into_iter()
                .map(|p| {
                    let line = format!(
                        "{:<16} {:<30} {} profiles={}",
                        p.id,
                        p.org,
                        p.country,
                        p.profiles.join(",")
                    );
                    (publisher_json(&p), line)
                })
                .collect();
            print_list(cli.output, rows, false, None, "")?;
        }
        PublisherCmd::Update { id, profiles } => {
            hm.set_publisher_profiles(id, profiles, &actor())?;
            println!("publisher {id} may now use: {}", profiles.join(", "));
        }
        PublisherCmd::Show { id } => {
            let p = hm
                .store
                .get_publisher(id)?
                .ok_or_else(|| anyhow!("unknown publisher '{id}'"))?;
            if cli.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&publisher_json(&p))?);
                return Ok(());
            }
            println!("id:       {}\norg:      {}\ncountry:  {}\nstate:    {}\nlocality: {}\nprofiles: {}\ncreated:  {}",
                p.id, p.org, p.country, p.state.unwrap_or_default(), p.locality.unwrap_or_default(), p.profiles.join(", "), ts(p.created_at));
        }
    }
    Ok(())
}

fn publisher_json(p: &Publisher) -> serde_json::Value {
    serde_json::json!({
        "id": p.id, "org": p.org, "country": p.country, "state": p.state,
        "locality": p.locality, "profiles": p.profiles, "created_at": ts(p.created_at),
    })
}

fn cmd_key(cli: &Cli, c: &KeyCmd) -> anyhow::Result<()> {
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
                Some(uid) => hm.make_openpgp_key(label, uid, &actor())?,
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
            println!("{}", serde_json::to_string_pretty(&hm.key_document(&rec)?)?);
        }
        KeyCmd::Show {
            label,
            policy: true,
        } => print_key_policy(&hm, &hm.key(label)?.label)?,
        KeyCmd::Policy(a) => {
            if a.changes() {
                // Setting one field keeps the others (the --clear-* flags remove one).
                let policy = a.applied_to(&hm.key_policy(&a.label)?)?;
                hm.set_key_policy(&a.label, &policy, &actor())?;
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
    print!("{}", hm.key_policy(label)?.describe());
    match hm.key_policy_source(label)? {
        "config" => println!(
            "source: {} [signing.keys.{label}]",
            hm.config.path.display()
        ),
        "set" => println!("source: hallmark key policy"),
        _ => println!("source: none set (the service's own rules only)"),
    }
    Ok(())
}

fn cmd_ca(cli: &Cli, c: &CaCmd) -> anyhow::Result<()> {
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

fn cmd_cert(cli: &Cli, c: &CertCmd) -> anyhow::Result<()> {
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

/// Why a profile's issuer is not usable: not a CA (root or issuing) in the config's database.
fn issuer_missing(cfg: &crate::config::Config, issuer: &str) -> anyhow::Result<Option<String>> {
    let store = crate::store::open_existing(&cfg.database_path())?;
    let cas: Vec<String> = store
        .list_cas()?
        .into_iter()
        .filter(|c| c.role != crate::store::CaRole::Ocsp)
        .map(|c| c.name)
        .collect();
    if cas.iter().any(|c| c == issuer) {
        return Ok(None);
    }
    Ok(Some(format!(
        "'{issuer}' is not a CA of this hallmark (its CAs: {}); create it (hallmark ca create-issuing {issuer} --purpose ...) or name one of these",
        cas.join(", ")
    )))
}

fn cmd_profile(cli: &Cli, c: &ProfileCmd) -> anyhow::Result<()> {
    match c {
        ProfileCmd::Check { file: Some(f) } => {
            let p = Profile::load_file(f)?;
            // With a CA's config, the issuer must be one of its CAs too.
            let note = match &cli.config {
                Some(path) => {
                    let cfg = crate::config::Config::load(path)?;
                    if let Some(why) = issuer_missing(&cfg, &p.issuer)? {
                        bail!("{}: issuer: {why}", f.display());
                    }
                    "a CA of this config"
                }
                None => "not checked against a CA: give --config for that",
            };
            println!(
                "{}: ok (profile '{}', issuer {} - {note})",
                f.display(),
                p.name,
                p.issuer
            );
        }
        ProfileCmd::Check { file: None } => {
            let path = cli.config.as_ref().ok_or_else(|| {
                anyhow!("give a FILE, or --config to check the config's profiles")
            })?;
            let cfg = crate::config::Config::load(path)?;
            let ps = Profiles::load_dir(&cfg.profiles_dir())?;
            for p in ps.iter() {
                // A shipped profile whose CA is made on demand (matter-dac's PAI) is valid but
                // not usable yet: said so, not "ok".
                match issuer_missing(&cfg, &p.issuer)? {
                    None => println!(
                        "{}: ok (profile '{}', issuer {})",
                        p.file.display(),
                        p.name,
                        p.issuer
                    ),
                    Some(why) => println!(
                        "{}: valid, not usable yet (profile '{}'): {why}",
                        p.file.display(),
                        p.name
                    ),
                }
            }
        }
        ProfileCmd::List => {
            let hm = open(cli)?;
            for p in hm.profiles.iter() {
                println!("{:<18} issuer={:<16} {}", p.name, p.issuer, p.description);
            }
        }
    }
    Ok(())
}
