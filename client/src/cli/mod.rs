//! The client side of the command line, shared by `hallmark` and `hallmark-client`: the
//! commands that talk to a hallmark server only over its API (`sign`, `verify`, `request`,
//! `approve`, `deny`, `gpg`, `client`), as clap argument types and handlers. The `hallmark`
//! binary's clap tree names these same types, so each flag and its help are written once.

pub mod gpg;
pub mod request;
pub mod sign;
mod sign_authenticode;
mod sign_cose;
mod sign_image;
mod sign_jar;
mod sign_mcuboot;
mod sign_openpgp;
pub mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::{client, context};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
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
    pub fn flags(&self, token_env: Option<&str>) -> context::CredentialFlags {
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

/// `hallmark client bootstrap|login|show`.
pub fn cmd_client(c: &ClientCmd) -> anyhow::Result<()> {
    match c {
        ClientCmd::Bootstrap {
            server,
            fingerprint,
            public,
            force,
        } => context::bootstrap(server, fingerprint, public.as_deref(), *force),
        ClientCmd::Login {
            token_env,
            token_file,
            oidc,
        } => context::login(
            token_env.as_deref(),
            token_file.as_deref(),
            &oidc.flags(None),
        ),
        ClientCmd::Show => {
            let p = context::load()?;
            print!("{}", toml::to_string(&p)?);
            Ok(())
        }
    }
}

/// A file's bytes, or standard input's for `-`.
pub fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
        Ok(v)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Writes `text` to `out`, or to standard output.
pub fn output(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
    }
}
