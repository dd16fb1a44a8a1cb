//! `hallmark init`: the arguments that shape a new CA directory, and its creation.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Args;

use super::context;
use crate::engine::Hallmark;
use crate::init::{InitOptions, KeysChoice};
use crate::keys::KeyAlgorithm;

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

pub(super) fn cmd_init(a: &InitArgs) -> anyhow::Result<()> {
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
