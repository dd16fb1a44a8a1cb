//! Where the module finds its server: the file `HALLMARK_PKCS11_CONFIG` names (TOML), with the
//! client profile (`hallmark client bootstrap`) filling what it leaves out. The credential is a
//! hallmark token from a variable or a file, a CI job's OIDC token, or — when none is named —
//! the PIN the tool logs in with (CloudHSM's way: the PIN carries the token).

use std::collections::BTreeMap;
use std::path::PathBuf;

use hallmark_client::client::TokenSource;

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The API listener, `https://HOST:8443`.
    pub server: Option<String>,
    /// hallmark's root certificate (PEM).
    pub ca: Option<PathBuf>,
    /// A variable holding a hallmark token.
    pub token_env: Option<String>,
    /// A file holding a hallmark token.
    pub token_file: Option<PathBuf>,
    /// The CI job's OIDC token (GitHub Actions' token service, or `oidc_token_env`).
    pub oidc: bool,
    pub oidc_token_env: Option<String>,
    pub oidc_audience: Option<String>,
    /// The key labels the token shows (each with its certificate and public key); none: every
    /// key the credential may sign with.
    pub keys: Vec<String>,
    /// How long a signature that needs approvals waits (C_Sign blocks), in seconds.
    pub approval_timeout_secs: Option<u64>,
    /// How often a waiting signature asks, in seconds.
    pub poll_secs: Option<u64>,
    /// Recorded with every signature (besides the tool, host, user and `HALLMARK_META_*`).
    pub metadata: BTreeMap<String, String>,
}

/// The settings, complete.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: String,
    pub ca: Option<PathBuf>,
    /// `None`: the PIN is the token.
    pub source: Option<TokenSource>,
    pub keys: Vec<String>,
    pub approval_timeout_secs: u64,
    pub poll_secs: u64,
    pub metadata: BTreeMap<String, String>,
}

/// Reads `HALLMARK_PKCS11_CONFIG` (when set) and the client profile.
pub fn load() -> Result<Settings, String> {
    let cfg = match std::env::var_os("HALLMARK_PKCS11_CONFIG") {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("HALLMARK_PKCS11_CONFIG {}: {e}", path.to_string_lossy()))?;
            toml::from_str::<Config>(&text).map_err(|e| {
                // The parser's message without its quote of the file, which could hold a
                // secret pasted into the wrong setting.
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                format!(
                    "HALLMARK_PKCS11_CONFIG {}{}: {}",
                    path.to_string_lossy(),
                    line.map(|l| format!(" line {l}")).unwrap_or_default(),
                    e.message()
                )
            })?
        }
        None => Config::default(),
    };
    let profile = hallmark_client::context::load().unwrap_or_default();
    let server = cfg
        .server
        .clone()
        .or(profile.server.clone())
        .ok_or("no server: set server in the HALLMARK_PKCS11_CONFIG file, or run `hallmark client bootstrap`")?;
    let source = if let Some(v) = &cfg.token_env {
        Some(TokenSource::Env(v.clone()))
    } else if let Some(f) = &cfg.token_file {
        Some(TokenSource::File(f.clone()))
    } else if cfg.oidc || cfg.oidc_token_env.is_some() {
        Some(match &cfg.oidc_token_env {
            Some(v) => TokenSource::OidcEnv(v.clone()),
            None => TokenSource::GithubActions {
                audience: cfg
                    .oidc_audience
                    .clone()
                    .unwrap_or_else(|| "hallmark".into()),
            },
        })
    } else if let Some(v) = &profile.token_env {
        Some(TokenSource::Env(v.clone()))
    } else {
        profile.token_file.clone().map(TokenSource::File)
    };
    Ok(Settings {
        server,
        ca: cfg.ca.clone().or(profile.root.clone()),
        source,
        keys: cfg.keys.clone(),
        approval_timeout_secs: cfg.approval_timeout_secs.unwrap_or(3600),
        poll_secs: cfg.poll_secs.unwrap_or(2).max(1),
        metadata: cfg.metadata.clone(),
    })
}
