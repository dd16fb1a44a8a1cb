//! `hallmark init`: a directory with a config, the profiles, a database and the CA hierarchy.
//!
//! The hierarchy: a root, three issuing CAs (code signing, timestamping, devices; pathlen 0;
//! code signing and timestamping never in one CA) and a delegated OCSP responder for each.

use std::path::{Path, PathBuf};

use crate::config::{
    ApiSection, CaSection, Config, DatabaseSection, KeyStoreConfig, KeysSection, ProfilesSection,
    ServerSection,
};
use crate::engine::{CaPurpose, EngineError, Hallmark};
use crate::error::{Error, Result};
use crate::keys::KeyAlgorithm;

/// Key-store label of the API listener's TLS key.
pub const API_TLS_KEY: &str = "tls-api";

/// The profiles shipped with hallmark, written into a new directory by `init`.
pub const DEFAULT_PROFILES: &[(&str, &str)] = &[
    (
        "code-signing.toml",
        include_str!("../ca-profiles/code-signing.toml"),
    ),
    (
        "firmware-signing.toml",
        include_str!("../ca-profiles/firmware-signing.toml"),
    ),
    (
        "timestamping.toml",
        include_str!("../ca-profiles/timestamping.toml"),
    ),
    (
        "iot-device.toml",
        include_str!("../ca-profiles/iot-device.toml"),
    ),
    ("station.toml", include_str!("../ca-profiles/station.toml")),
    (
        "tls-server.toml",
        include_str!("../ca-profiles/tls-server.toml"),
    ),
    (
        "matter-dac.toml",
        include_str!("../ca-profiles/matter-dac.toml"),
    ),
    (
        "package-signing.toml",
        include_str!("../ca-profiles/package-signing.toml"),
    ),
];

/// Where `init` puts keys.
#[derive(Debug, Clone)]
pub enum KeysChoice {
    /// Encrypted files in DIR/keys. Without `passphrase_env`, a random passphrase is written to
    /// DIR/keys/passphrase (mode 0600): fine for a demo, not for production.
    Soft { passphrase_env: Option<String> },
    Pkcs11 {
        module: PathBuf,
        token_label: String,
        pin_env: Option<String>,
        pin_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    pub keys: KeysChoice,
    pub organization: String,
    pub country: String,
    pub listen: String,
    pub public_url: Option<String>,
    /// Where the API listener listens, and the names in its TLS certificate.
    pub api_listen: String,
    pub api_hostnames: Vec<String>,
    pub policy_oid: Option<String>,
    pub root_algorithm: KeyAlgorithm,
    pub ca_algorithm: KeyAlgorithm,
}

impl InitOptions {
    pub fn new(dir: impl Into<PathBuf>, keys: KeysChoice) -> InitOptions {
        InitOptions {
            dir: dir.into(),
            keys,
            organization: "Hallmark Demo".into(),
            country: "US".into(),
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            api_listen: "127.0.0.1:8443".into(),
            api_hostnames: vec!["localhost".into(), "127.0.0.1".into()],
            policy_oid: None,
            root_algorithm: KeyAlgorithm::P384,
            ca_algorithm: KeyAlgorithm::P256,
        }
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// A random policy OID under the documentation enterprise number 32473 (RFC 5612), unique enough
/// to tell demo CAs apart. Production CAs pass their own (`--policy-oid`, under their enterprise
/// number). Not 2.25.UUID: its 128-bit arc breaks pkilint and older Windows.
fn random_policy_oid() -> String {
    use rand::Rng;
    let mut r = rand::rngs::OsRng;
    let arcs: Vec<String> = (0..2)
        .map(|_| r.gen_range(1..(1u32 << 28)).to_string())
        .collect();
    format!("1.3.6.1.4.1.32473.1.{}", arcs.join("."))
}

/// Runs `init`; returns the config path. Refuses a directory that already has a config.
pub fn init(opts: &InitOptions) -> Result<PathBuf> {
    let io = |what: &str, e: std::io::Error| Error::Io(format!("{what}: {e}"));
    let config_path = opts.dir.join("hallmark.toml");
    if config_path.exists() {
        return Err(EngineError::InitRefused(format!(
            "{} already exists: init never overwrites a CA",
            config_path.display()
        ))
        .into());
    }
    if opts.dir.join("hallmark.db").exists() {
        return Err(EngineError::InitRefused(format!(
            "{} holds a database from an unfinished init; remove the directory to start over",
            opts.dir.display()
        ))
        .into());
    }
    let new_dir = !opts.dir.exists();
    std::fs::create_dir_all(&opts.dir).map_err(|e| io(&opts.dir.display().to_string(), e))?;
    // The CA's directory holds its database, config and (soft) key files: its owner's only
    // (a directory that existed before keeps its mode; the database file is 0600 in any case).
    if new_dir {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&opts.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io(&opts.dir.display().to_string(), e))?;
    }
    let profiles_dir = opts.dir.join("ca-profiles");
    std::fs::create_dir_all(&profiles_dir).map_err(|e| io("ca-profiles", e))?;
    for (name, text) in DEFAULT_PROFILES {
        let p = profiles_dir.join(name);
        if !p.exists() {
            std::fs::write(&p, text).map_err(|e| io(name, e))?;
        }
    }
    let store_cfg = match &opts.keys {
        KeysChoice::Soft { passphrase_env } => {
            let keys_dir = opts.dir.join("keys");
            std::fs::create_dir_all(&keys_dir).map_err(|e| io("keys", e))?;
            match passphrase_env {
                Some(v) => KeyStoreConfig::Soft {
                    dir: "keys".into(),
                    passphrase_env: Some(v.clone()),
                    passphrase_file: None,
                },
                None => {
                    let mut b = [0u8; 32];
                    rand::Rng::fill(&mut rand::rngs::OsRng, &mut b);
                    write_private(&keys_dir.join("passphrase"), hex::encode(b).as_bytes())
                        .map_err(|e| io("keys/passphrase", e))?;
                    KeyStoreConfig::Soft {
                        dir: "keys".into(),
                        passphrase_env: None,
                        passphrase_file: Some("keys/passphrase".into()),
                    }
                }
            }
        }
        KeysChoice::Pkcs11 {
            module,
            token_label,
            pin_env,
            pin_file,
        } => KeyStoreConfig::Pkcs11 {
            module: module.clone(),
            token_label: token_label.clone(),
            pin_env: pin_env.clone(),
            pin_file: pin_file.clone(),
            sign_threads: None,
        },
    };
    let store_name = match opts.keys {
        KeysChoice::Soft { .. } => "soft",
        KeysChoice::Pkcs11 { .. } => "hsm",
    };
    let mut config = Config {
        ca: CaSection {
            organization: opts.organization.clone(),
            country: opts.country.clone(),
            policy_oid: opts.policy_oid.clone().unwrap_or_else(random_policy_oid),
        },
        database: DatabaseSection {
            path: "hallmark.db".into(),
        },
        profiles: ProfilesSection {
            dir: "ca-profiles".into(),
        },
        api: ApiSection {
            listen: opts.api_listen.clone(),
            hostnames: opts.api_hostnames.clone(),
            tls_key_label: Some(API_TLS_KEY.into()),
            tls_cert_file: Some("tls/api.pem".into()),
            ..ApiSection::default()
        },
        server: ServerSection {
            listen: opts.listen.clone(),
            public_url: opts
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", opts.listen)),
        },
        keys: KeysSection {
            default_store: store_name.into(),
            root_store: store_name.into(),
        },
        key_stores: [(store_name.to_string(), store_cfg)].into_iter().collect(),
        crl: Default::default(),
        ocsp: Default::default(),
        acme: Default::default(),
        identity: Default::default(),
        webhooks: Vec::new(),
        notifications: Default::default(),
        console: Default::default(),
        signing: Default::default(),
        base_dir: opts.dir.clone(),
        path: config_path.clone(),
    };
    config.validate().map_err(EngineError::Argument)?;
    let text = config.to_toml().map_err(Error::Internal)?;
    crate::store::open(&config.database_path())?;
    config.base_dir = opts.dir.clone();
    let hm = Hallmark::with_config(config)?;
    let actor = "init";
    hm.create_root(opts.root_algorithm, actor)?;
    for purpose in [
        CaPurpose::CodeSigning,
        CaPurpose::Timestamping,
        CaPurpose::Devices,
        CaPurpose::Tls,
    ] {
        hm.create_issuing(
            purpose.default_name(),
            purpose,
            "root",
            opts.ca_algorithm,
            false,
            actor,
        )?;
    }
    // The API listener's TLS certificate, for a key in the key store.
    let chain =
        hm.issue_service_certificate(API_TLS_KEY, &opts.api_hostnames, opts.ca_algorithm, actor)?;
    let tls_dir = opts.dir.join("tls");
    std::fs::create_dir_all(&tls_dir).map_err(|e| io("tls", e))?;
    std::fs::write(tls_dir.join("api.pem"), chain).map_err(|e| io("tls/api.pem", e))?;
    // The time-stamp authority's key and certificate (tsa.pem), for POST /tsa.
    hm.init_tsa(opts.ca_algorithm, actor)?;
    // The config is written last: a directory with a config is a finished CA.
    let header = "# hallmark configuration, written by `hallmark init`. Paths are relative to this file.\n# Secrets are never here: the key store names the environment variable or file holding them.\n\n";
    let signing = "\n# A signing key's policy can be kept here instead of with `hallmark key policy LABEL`;\n# the file then wins and the command refuses to change it. Read when the server starts.\n# [signing.keys.release]\n# formats = [\"cms\", \"raw\"]          # raw, cms, cose_sign1; all when left out\n# digests = [\"sha256\", \"sha384\"]    # sha256, sha384, sha512; all when left out\n# signers = [\"ci\"]                  # token names; any of the publisher's when left out\n# approvals = 2                     # distinct approvals before a signature (0: none)\n# approvers = [\"alice\", \"bob\", \"carol\"]\n# rate_per_minute = 60              # unlimited when left out\n";
    std::fs::write(&config_path, format!("{header}{text}{signing}"))
        .map_err(|e| io("hallmark.toml", e))?;
    Ok(config_path)
}
