//! `hallmark.toml`: where the database, profiles and key stores are, and what the CA is called.
//!
//! Relative paths are relative to the directory of the config file. Secrets (HSM PIN, soft-key
//! passphrase) are never in this file: it names the environment variable or file that holds them.
//!
//! The configuration is plain data. This module checks what is its own (shapes, ranges, one of
//! two fields); what a value means to a layer above (a key policy, a workload rule, a webhook
//! event) is checked by that layer when the configuration is opened (`engine::open_config`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::keys::SecretSource;

mod error;
mod identity;
mod services;
mod signing;

pub use error::ConfigError;
pub use identity::*;
pub use services::*;
pub use signing::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// The O of CA certificates.
    pub organization: String,
    /// The C of CA certificates.
    pub country: String,
    /// The CA's certificate policy OID, written where a profile says `ca-policy`.
    pub policy_oid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesSection {
    pub dir: PathBuf,
}

/// How the API listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tls,
    /// Plain HTTP: development only (`make run`), with a loud warning.
    Plain,
}

/// The authenticated JSON API (`/api/v1/`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Where the API listener listens.
    pub listen: String,
    pub transport: Transport,
    /// Host names and IP addresses in the API's TLS certificate.
    pub hostnames: Vec<String>,
    /// Key-store label of the API's TLS key (hallmark issues its certificate at init).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_label: Option<String>,
    /// PEM key file instead of a key-store key (a certificate from elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM certificate chain of the API listener, leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// Ask TLS clients for a certificate issued by `tls-ca` (factory stations); optional.
    pub client_auth: bool,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Requests per minute per credential (429 with Retry-After beyond).
    pub rate_limit_per_minute: u32,
    /// How long a request waiting for approvals stays open.
    pub request_ttl_hours: u32,
    /// Time allowed to send the request headers.
    pub header_timeout_secs: u64,
    /// A connection on which no byte moves for this long is closed (a slow or vanished client
    /// cannot hold it forever; a long provisioning stream that keeps moving is not cut).
    pub connection_timeout_secs: u64,
    /// Time allowed to send a request body once the headers are in (408 after it), on both
    /// listeners: with `header_timeout_secs` it bounds the whole request.
    pub body_timeout_secs: u64,
    /// Open connections each listener (public, API) holds at most (fewer when the descriptor
    /// limit leaves no room for them); when a listener is full, the connection that has made
    /// the least progress is closed to admit a new one.
    pub max_connections: usize,
    /// Once `min_body_rate_grace_secs` have passed, a request body must keep arriving at this
    /// many bytes a second on average (408 otherwise); 0: no minimum (Apache's `MinRate`).
    pub min_body_rate: u64,
    /// How long a body may arrive slower than `min_body_rate`.
    pub min_body_rate_grace_secs: u64,
}

impl ApiSection {
    pub fn validate(&self) -> Result<(), String> {
        if self.header_timeout_secs == 0 || self.body_timeout_secs == 0 {
            return Err(
                "api.header_timeout_secs and api.body_timeout_secs must be at least 1".into(),
            );
        }
        if !(16..=1_000_000).contains(&self.max_connections) {
            return Err("api.max_connections must be 16 to 1000000".into());
        }
        if self.min_body_rate_grace_secs == 0 {
            return Err("api.min_body_rate_grace_secs must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: "127.0.0.1:8443".into(),
            transport: Transport::Tls,
            hostnames: vec!["localhost".into(), "127.0.0.1".into()],
            tls_key_label: None,
            tls_key_file: None,
            tls_cert_file: None,
            client_auth: true,
            body_limit: 64 * 1024,
            rate_limit_per_minute: 600,
            request_ttl_hours: 72,
            header_timeout_secs: 10,
            connection_timeout_secs: 120,
            body_timeout_secs: 30,
            max_connections: 4096,
            min_body_rate: 500,
            min_body_rate_grace_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Where `hallmark serve` listens.
    pub listen: String,
    /// The base URL written into certificates (CRL DP, AIA); served by the public listener.
    pub public_url: String,
}

/// One key store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyStoreConfig {
    Pkcs11 {
        module: PathBuf,
        token_label: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin_env: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin_file: Option<PathBuf>,
        /// How many signatures a batch (the factory line, `issue_batch`) asks of this token at
        /// once; default: one per core. A network HSM that signs in parallel, with a round trip
        /// per signature, wants more (1 to 256).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sign_threads: Option<u16>,
    },
    Soft {
        dir: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passphrase_env: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// The store where issuing CA, responder and publisher keys are generated.
    pub default_store: String,
    /// The store holding the root key (may be a different token: an offline root).
    pub root_store: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub ca: CaSection,
    pub database: DatabaseSection,
    pub profiles: ProfilesSection,
    pub server: ServerSection,
    #[serde(default)]
    pub api: ApiSection,
    pub keys: KeysSection,
    pub key_stores: BTreeMap<String, KeyStoreConfig>,
    #[serde(default)]
    pub crl: CrlSection,
    #[serde(default)]
    pub ocsp: OcspSection,
    #[serde(default)]
    pub acme: AcmeSection,
    #[serde(default, skip_serializing_if = "SigningSection::is_empty")]
    pub signing: SigningSection,
    #[serde(default, skip_serializing_if = "IdentitySection::is_empty")]
    pub identity: IdentitySection,
    /// `[notifications]`: when a certificate's coming end is announced.
    #[serde(default, skip_serializing_if = "NotificationsSection::is_default")]
    pub notifications: NotificationsSection,
    /// `[console]`: web console session lifetimes.
    #[serde(default, skip_serializing_if = "ConsoleSection::is_default")]
    pub console: ConsoleSection,
    /// `[[webhook]]`: where events are delivered (see [`crate::webhooks`]).
    #[serde(default, rename = "webhook", skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookConfig>,
    /// The directory of the config file (not in the file).
    #[serde(skip)]
    pub base_dir: PathBuf,
    #[serde(skip)]
    pub path: PathBuf,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let invalid = |problem: String| ConfigError::Invalid {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let mut cfg: Config =
            toml::from_str(&text).map_err(|e| invalid(e.to_string().trim().replace('\n', " ")))?;
        cfg.base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        cfg.path = path.to_path_buf();
        cfg.validate().map_err(invalid)?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.api.validate()?;
        if !(1..=1440).contains(&self.console.idle_minutes) {
            return Err(format!(
                "console.idle_minutes = {} must be 1..1440",
                self.console.idle_minutes
            ));
        }
        if !(1..=720).contains(&self.console.absolute_hours) {
            return Err(format!(
                "console.absolute_hours = {} must be 1..720",
                self.console.absolute_hours
            ));
        }
        if let Some(o) = &self.console.oidc {
            let at = |why: String| format!("[console.oidc]: {why}");
            if !o.issuer.starts_with("https://") {
                return Err(at(format!("issuer '{}' is not an https:// URL", o.issuer)));
            }
            if !(o.redirect_url.starts_with("https://") || o.redirect_url.starts_with("http://"))
                || !o.redirect_url.ends_with("/ui/login/callback")
            {
                return Err(at(format!(
                    "redirect_url '{}' must be this server's https://HOST:PORT/ui/login/callback",
                    o.redirect_url
                )));
            }
            if o.client_id.is_empty() || o.claim.is_empty() || o.name.is_empty() {
                return Err(at("name, client_id and claim must not be empty".into()));
            }
        } else if !self.console.people.is_empty() {
            return Err(
                "[[console.person]] needs a [console.oidc] provider to sign in with".into(),
            );
        }
        let mut ids = std::collections::BTreeSet::new();
        for p in &self.console.people {
            if !ids.insert(p.id.as_str()) {
                return Err(format!("[[console.person]] '{}' is listed twice", p.id));
            }
        }
        if !(1..=3650).contains(&self.notifications.expiring_days) {
            return Err("notifications.expiring_days must be 1 to 3650".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for w in &self.webhooks {
            w.validate()?;
            if !names.insert(w.name.as_str()) {
                return Err(format!("webhook '{}' is defined twice", w.name));
            }
        }
        self.crl.validate()?;
        self.ocsp.validate()?;
        self.acme.validate()?;
        self.identity.validate()?;
        for name in [&self.keys.default_store, &self.keys.root_store] {
            if !self.key_stores.contains_key(name) {
                return Err(format!(
                    "keys: key store '{name}' is not defined under [key_stores]"
                ));
            }
        }
        for (name, ks) in &self.key_stores {
            match ks {
                KeyStoreConfig::Pkcs11 {
                    pin_env,
                    pin_file,
                    sign_threads,
                    ..
                } => {
                    if pin_env.is_some() == pin_file.is_some() {
                        return Err(format!(
                            "key_stores.{name}: give exactly one of pin_env, pin_file"
                        ));
                    }
                    if sign_threads.is_some_and(|t| !(1..=256).contains(&t)) {
                        return Err(format!("key_stores.{name}: sign_threads must be 1 to 256"));
                    }
                }
                KeyStoreConfig::Soft {
                    passphrase_env,
                    passphrase_file,
                    ..
                } => {
                    if passphrase_env.is_some() == passphrase_file.is_some() {
                        return Err(format!(
                            "key_stores.{name}: give exactly one of passphrase_env, passphrase_file"
                        ));
                    }
                }
            }
        }
        if !crate::profile::is_dotted_oid(&self.ca.policy_oid) {
            return Err(format!(
                "ca.policy_oid '{}' is not a dotted OID",
                self.ca.policy_oid
            ));
        }
        if self.ca.country.len() != 2 {
            return Err(format!(
                "ca.country '{}' must be a two-letter code",
                self.ca.country
            ));
        }
        if self.api.transport == Transport::Tls
            && (self.api.tls_cert_file.is_none()
                || self.api.tls_key_label.is_some() == self.api.tls_key_file.is_some())
        {
            return Err(
                "api: TLS needs tls_cert_file and exactly one of tls_key_label, tls_key_file"
                    .into(),
            );
        }
        if self.api.body_limit < 1024
            || self.api.rate_limit_per_minute == 0
            || self.api.request_ttl_hours == 0
        {
            return Err(
                "api: body_limit >= 1024, rate_limit_per_minute >= 1 and request_ttl_hours >= 1"
                    .into(),
            );
        }
        if !self.server.public_url.starts_with("http://")
            && !self.server.public_url.starts_with("https://")
        {
            return Err(format!(
                "server.public_url '{}' must be an http(s) URL",
                self.server.public_url
            ));
        }
        Ok(())
    }

    /// Resolves a path from the config against the config's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve_in(&self.base_dir, p)
    }

    pub fn database_path(&self) -> PathBuf {
        self.resolve(&self.database.path)
    }

    pub fn profiles_dir(&self) -> PathBuf {
        self.resolve(&self.profiles.dir)
    }

    pub fn secret_source(&self, env: &Option<String>, file: &Option<PathBuf>) -> SecretSource {
        secret_source_in(&self.base_dir, env, file)
    }

    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| e.to_string())
    }
}

/// A path from the configuration: absolute as written, else relative to `base_dir` (the
/// configuration file's directory).
pub fn resolve_in(base_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// Where a key store's PIN or passphrase comes from: the variable `env`, else the file `file`
/// (relative to `base_dir`), else `HALLMARK_PIN`.
pub fn secret_source_in(
    base_dir: &Path,
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> SecretSource {
    match (env, file) {
        (Some(v), _) => SecretSource::Env(v.clone()),
        (None, Some(f)) => SecretSource::File(resolve_in(base_dir, f)),
        (None, None) => SecretSource::Env("HALLMARK_PIN".into()),
    }
}
