//! `hallmark.toml`: where the database, profiles and key stores are, and what the CA is called.
//!
//! Relative paths are relative to the directory of the config file. Secrets (HSM PIN, soft-key
//! passphrase) are never in this file: it names the environment variable or file that holds them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::keys::SecretSource;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("no config: give --config FILE or set HALLMARK_CONFIG")]
    Missing,
}

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
    pub keys: KeysSection,
    pub key_stores: BTreeMap<String, KeyStoreConfig>,
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
                    pin_env, pin_file, ..
                } => {
                    if pin_env.is_some() == pin_file.is_some() {
                        return Err(format!(
                            "key_stores.{name}: give exactly one of pin_env, pin_file"
                        ));
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
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.resolve(&self.database.path)
    }

    pub fn profiles_dir(&self) -> PathBuf {
        self.resolve(&self.profiles.dir)
    }

    pub fn secret_source(&self, env: &Option<String>, file: &Option<PathBuf>) -> SecretSource {
        match (env, file) {
            (Some(v), _) => SecretSource::Env(v.clone()),
            (None, Some(f)) => SecretSource::File(self.resolve(f)),
            (None, None) => SecretSource::Env("HALLMARK_PIN".into()),
        }
    }

    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| e.to_string())
    }
}
