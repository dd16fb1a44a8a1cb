//! The client context, as `step ca bootstrap` and `VAULT_ADDR` give one: `hallmark client
//! bootstrap` fetches the root over the public listener, checks it against the fingerprint the
//! operator pasted, and writes the server URL and the root to
//! `$XDG_CONFIG_HOME/hallmark/client.toml` (default `~/.config/hallmark`); `hallmark client
//! login` adds which credential to use (the name of a variable, or a file: never the token).
//! `sign`, `request`, `approve` and `deny` then need no `--server`, `--ca` or `--token-env`;
//! flags, then `HALLMARK_SERVER` / `HALLMARK_CA`, still win.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};

use crate::client::{Client, TokenSource};

/// `client.toml`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientProfile {
    /// The API listener's base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The public listener the root was fetched from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<String>,
    /// The root certificate (PEM) checked against `fingerprint` at bootstrap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// SHA-256 of the root certificate (DER), hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The environment variable holding the API token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// A file holding the API token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Authenticate with the CI job's OIDC token (GitHub Actions', or `oidc_token_env`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oidc: bool,
    /// The variable holding the job's OIDC token (GitLab's `id_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_token_env: Option<String>,
    /// The audience asked of GitHub Actions (default `hallmark`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_audience: Option<String>,
}

/// How a networked command authenticates, as its flags say.
#[derive(Debug, Default, Clone)]
pub struct CredentialFlags {
    pub token_env: Option<String>,
    pub oidc: bool,
    pub oidc_token_env: Option<String>,
    pub oidc_audience: Option<String>,
}

/// The OIDC source: a variable when one is named, else GitHub Actions' token service.
fn oidc_source(env: Option<String>, audience: Option<String>) -> TokenSource {
    match env {
        Some(v) => TokenSource::OidcEnv(v),
        None => TokenSource::GithubActions {
            audience: audience.unwrap_or_else(|| "hallmark".into()),
        },
    }
}

/// `$XDG_CONFIG_HOME/hallmark`, else `$HOME/.config/hallmark`.
pub fn dir() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("hallmark"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            anyhow!("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the client profile")
        })?;
    Ok(PathBuf::from(home).join(".config/hallmark"))
}

fn profile_path() -> anyhow::Result<PathBuf> {
    Ok(dir()?.join("client.toml"))
}

/// The client profile, or an empty one when there is none (or no directory to hold one:
/// flags alone then say everything).
pub fn load() -> anyhow::Result<ClientProfile> {
    let Ok(path) = profile_path() else {
        return Ok(ClientProfile::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a client profile (hallmark client bootstrap --force writes a new one)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClientProfile::default()),
        Err(e) => Err(anyhow!("reading {}: {e}", path.display())),
    }
}

fn save(p: &ClientProfile) -> anyhow::Result<PathBuf> {
    let path = profile_path()?;
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    std::fs::write(&path, toml::to_string(p)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Hex SHA-256 of DER, lower case.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// A fingerprint as users paste it: hex, any case, colons or spaces allowed, `SHA256:` prefix
/// allowed.
fn normalize_fingerprint(s: &str) -> anyhow::Result<String> {
    let t = s.trim();
    let t = t
        .strip_prefix("SHA256:")
        .or_else(|| t.strip_prefix("sha256:"))
        .unwrap_or(t);
    let hex: String = t
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("--fingerprint takes the SHA-256 of the root certificate: 64 hex digits (hallmark init and make run print it)");
    }
    Ok(hex)
}

/// What a bootstrap does to the client profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProfileWrite {
    /// None yet, or one without a server and root (a login made first): written, keeping
    /// what is there.
    Write,
    /// It names the same server, public listener and root: nothing changes, its credential
    /// is kept.
    Same,
    /// It names another server or root, and `--force` was given: replaced, its credential
    /// dropped (a token for one server is not sent to another).
    Replace,
}

/// Whether a bootstrap may write the profile; refused when one for another server or root
/// exists and `force` is not given.
fn profile_write(
    server: &str,
    public: &str,
    fingerprint: &str,
    force: bool,
) -> anyhow::Result<ProfileWrite> {
    let path = profile_path()?;
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str::<ClientProfile>(&text).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfileWrite::Write),
        Err(e) => return Err(anyhow!("reading {}: {e}", path.display())),
    };
    match &old {
        Some(o) if o.server.is_none() && o.fingerprint.is_none() => return Ok(ProfileWrite::Write),
        Some(o)
            if o.server.as_deref() == Some(server)
                && o.public.as_deref() == Some(public)
                && o.fingerprint.as_deref() == Some(fingerprint) =>
        {
            return Ok(ProfileWrite::Same)
        }
        _ if force => return Ok(ProfileWrite::Replace),
        _ => {}
    }
    let what = match &old {
        Some(o) => format!(
            "a client profile for server {} (public {}, root {})",
            o.server.as_deref().unwrap_or("(none)"),
            o.public.as_deref().unwrap_or("(none)"),
            o.fingerprint.as_deref().unwrap_or("(none)")
        ),
        None => "a file that is not a client profile".to_string(),
    };
    bail!(
        "{} already holds {what}: nothing was written. Pass --force to replace it (its credential is dropped: run hallmark client login again), or set XDG_CONFIG_HOME to keep another profile beside it",
        path.display()
    )
}

/// `hallmark client bootstrap`: fetches `PUBLIC/ca/root.pem`, checks its fingerprint, writes
/// the root and the profile. Nothing is written when the fingerprint differs, nor when a
/// profile for another server or root exists and `force` is not given.
pub fn bootstrap(
    server: &str,
    fingerprint_given: &str,
    public: Option<&str>,
    force: bool,
) -> anyhow::Result<()> {
    let want = normalize_fingerprint(fingerprint_given)?;
    let server = server.trim_end_matches('/').to_string();
    let url: hyper::Uri = server
        .parse()
        .with_context(|| format!("--server '{server}' is not a URL"))?;
    if url.scheme_str() != Some("https") {
        bail!("--server is the API listener's https:// URL (e.g. https://127.0.0.1:8443)");
    }
    let public = match public {
        Some(p) => p.trim_end_matches('/').to_string(),
        None => format!(
            "http://{}:8080",
            url.host().ok_or_else(|| anyhow!("--server has no host"))?
        ),
    };
    // Refused before anything is fetched or written.
    let write = profile_write(&server, &public, &want, force)?;
    let anonymous = Client::new(&public, None, None)?;
    let r = anonymous
        .send("GET", "/ca/root.pem", None, vec![])
        .with_context(|| {
            format!(
                "fetching the root from {public} (the public listener; --public URL names another)"
            )
        })?;
    if r.status != 200 {
        bail!(
            "{public}/ca/root.pem answered {}: {}",
            r.status,
            r.problem()
        );
    }
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let der = pem::parse(&text)
        .context("the root from the public listener is not PEM")?
        .into_contents();
    let got = fingerprint(&der);
    if got != want {
        bail!(
            "the root served at {public} has fingerprint {got}, not {want}: nothing was written. Check the fingerprint with the CA's operator (hallmark ca fingerprint root prints it)"
        );
    }
    let dir = dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let root = dir.join("root.pem");
    std::fs::write(&root, &text).with_context(|| format!("writing {}", root.display()))?;
    let mut p = match write {
        ProfileWrite::Replace => ClientProfile::default(),
        ProfileWrite::Write | ProfileWrite::Same => load()?,
    };
    p.server = Some(server.clone());
    p.public = Some(public);
    p.root = Some(root.clone());
    p.fingerprint = Some(got);
    let path = save(&p)?;
    // The profile works only if the API listener's TLS chains to this root.
    let check = Client::new(&server, None, Some(&root))?;
    match check.send("GET", "/healthz", None, vec![]) {
        Ok(h) if h.status == 200 => {}
        Ok(h) => eprintln!("warning: {server}/healthz answered {}", h.status),
        Err(e) => eprintln!("warning: {server} does not answer with this root yet: {e:#}"),
    }
    println!(
        "root {} checked and saved to {}",
        p.fingerprint.as_deref().unwrap_or(""),
        root.display()
    );
    match write {
        ProfileWrite::Same => {
            println!(
                "client profile {} unchanged (server {server}, this root)",
                path.display()
            );
            return Ok(());
        }
        ProfileWrite::Replace => println!(
            "client profile replaced at {} (server {server}; a credential the previous one named was dropped)",
            path.display()
        ),
        ProfileWrite::Write => println!(
            "client profile written to {} (server {server})",
            path.display()
        ),
    }
    println!("next: hallmark client login --token-env VAR (or --token-file FILE)");
    Ok(())
}

/// `hallmark client login`: which credential the networked commands use.
pub fn login(
    token_env: Option<&str>,
    token_file: Option<&Path>,
    oidc: &CredentialFlags,
) -> anyhow::Result<()> {
    let mut p = load()?;
    if oidc.oidc || oidc.oidc_token_env.is_some() {
        p.token_env = None;
        p.token_file = None;
        p.oidc = true;
        p.oidc_token_env = oidc.oidc_token_env.clone();
        p.oidc_audience = oidc.oidc_audience.clone();
        let path = save(&p)?;
        match &p.oidc_token_env {
            Some(v) => println!(
                "credential: the CI job's OIDC token in ${v} (read at each command; not stored) -> {}",
                path.display()
            ),
            None => println!(
                "credential: the CI job's OIDC token from GitHub Actions, audience {} (asked at each command) -> {}",
                p.oidc_audience.as_deref().unwrap_or("hallmark"),
                path.display()
            ),
        }
        return Ok(());
    }
    p.oidc = false;
    p.oidc_token_env = None;
    p.oidc_audience = None;
    let source = match (token_env, token_file) {
        (Some(var), None) => {
            let s = TokenSource::Env(var.to_string());
            p.token_env = Some(var.to_string());
            p.token_file = None;
            s
        }
        (None, Some(f)) => {
            let abs = std::path::absolute(f).with_context(|| format!("{}", f.display()))?;
            let s = TokenSource::File(abs.clone());
            p.token_env = None;
            p.token_file = Some(abs);
            s
        }
        _ => bail!("give --token-env VAR or --token-file FILE"),
    };
    // Checked now, never printed: a wrong name is found here, not at the first signature.
    let token = source.read()?;
    if !token.starts_with("hmk_") {
        bail!("the credential at that source does not look like a hallmark token (hmk_...); nothing was written");
    }
    let path = save(&p)?;
    match source {
        TokenSource::Env(v) => println!(
            "credential: the token in ${v} (read at each command; not stored) -> {}",
            path.display()
        ),
        TokenSource::File(f) => println!(
            "credential: the token in {} (read at each command; not copied) -> {}",
            f.display(),
            path.display()
        ),
        TokenSource::OidcEnv(_) | TokenSource::GithubActions { .. } => {}
    }
    Ok(())
}

/// The server, root and credential for a networked command: flags, then `HALLMARK_SERVER` /
/// `HALLMARK_CA` (clap reads those), then the client profile, then `HALLMARK_TOKEN`.
pub fn client(
    server: Option<&str>,
    flags: &CredentialFlags,
    ca: Option<&Path>,
) -> anyhow::Result<Client> {
    let p = load()?;
    let server = server
        .map(str::to_string)
        .or(p.server)
        .ok_or_else(|| {
            anyhow!("no server: pass --server URL (or set HALLMARK_SERVER), or run `hallmark client bootstrap --server URL --fingerprint SHA256` once")
        })?;
    let ca = ca.map(Path::to_path_buf).or(p.root);
    // Flags first (a token variable, or --oidc), then the profile, then HALLMARK_TOKEN.
    let source = if let Some(v) = &flags.token_env {
        TokenSource::Env(v.clone())
    } else if flags.oidc || flags.oidc_token_env.is_some() {
        oidc_source(
            flags.oidc_token_env.clone().or(p.oidc_token_env),
            flags.oidc_audience.clone().or(p.oidc_audience),
        )
    } else if let Some(v) = p.token_env {
        TokenSource::Env(v)
    } else if let Some(f) = p.token_file {
        TokenSource::File(f)
    } else if p.oidc {
        oidc_source(
            p.oidc_token_env,
            flags.oidc_audience.clone().or(p.oidc_audience),
        )
    } else {
        TokenSource::Env("HALLMARK_TOKEN".into())
    };
    Client::with_source(&server, source, ca.as_deref())
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_as_pasted() {
        let h = "AB".repeat(32);
        let colons = h
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        for s in [h.clone(), colons, format!("SHA256:{h}")] {
            assert_eq!(
                super::normalize_fingerprint(&s).expect("ok"),
                "ab".repeat(32)
            );
        }
        assert!(super::normalize_fingerprint("abc").is_err());
    }
}
