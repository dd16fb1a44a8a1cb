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

/// Signing keys' policies kept in the config file, `[signing.keys.<label>]`. A key named here
/// takes its policy from the file, and `hallmark key policy` refuses to change it: the file
/// (reviewed and versioned like the rest of the deployment) stays the one place it is set.
/// Keys not named here keep the policy set with `hallmark key policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningSection {
    /// Written as the `hallmark key policy` flags are; normalized and checked at load
    /// ([`KeyPolicy::from_config`](crate::policy::signing::KeyPolicy::from_config)).
    pub keys: BTreeMap<String, crate::policy::signing::KeyPolicy>,
}

impl SigningSection {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Workload identity: OIDC issuers whose tokens are credentials (`[[identity.oidc]]`), and the
/// rules that map a token's claims to a publisher (`[[identity.oidc.rule]]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    pub oidc: Vec<OidcIssuerConfig>,
}

impl IdentitySection {
    pub fn is_empty(&self) -> bool {
        self.oidc.is_empty()
    }

    /// Every rule, wherever in the file it was written: TOML nests a `[[identity.oidc.rule]]`
    /// under the `[[identity.oidc]]` above it, but each rule names its issuer itself.
    pub fn rules(&self) -> impl Iterator<Item = &OidcRuleConfig> {
        self.oidc.iter().flat_map(|i| i.rules.iter())
    }

    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        for i in &self.oidc {
            i.validate()?;
            if !names.insert(i.name.as_str()) {
                return Err(format!(
                    "identity.oidc: issuer name '{}' is given twice",
                    i.name
                ));
            }
        }
        let urls: std::collections::BTreeSet<&str> =
            self.oidc.iter().map(|i| i.issuer.as_str()).collect();
        if urls.len() != self.oidc.len() {
            return Err("identity.oidc: two entries trust the same issuer URL".into());
        }
        let mut rule_names = std::collections::BTreeSet::new();
        for r in self.rules() {
            crate::policy::workload::Rule::compile(r, &names)
                .map_err(|e| format!("identity.oidc.rule '{}': {e}", r.name))?;
            if !rule_names.insert(r.name.as_str()) {
                return Err(format!(
                    "identity.oidc.rule: name '{}' is given twice",
                    r.name
                ));
            }
        }
        Ok(())
    }
}

/// One trusted OIDC issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// What rules and records call it (`github`, `gitlab`).
    pub name: String,
    /// The `iss` its tokens carry, exactly (`https://token.actions.githubusercontent.com`).
    pub issuer: String,
    /// The `aud` values accepted: what the job asks its token for.
    pub audiences: Vec<String>,
    /// Where its keys are; default: discovered from `{issuer}/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Its keys from a file instead (air-gapped sites); read again on an unknown key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// PEM bundle the issuer's TLS certificate must chain to (private issuers); default: the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// A token older than this (by `iat`) is refused, whatever its `exp`, in seconds.
    #[serde(default = "default_max_token_age")]
    pub max_token_age_secs: u64,
    /// An unknown key id fetches the keys again at most this often, in seconds.
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_secs: u64,
    /// Fetched keys keep verifying while the issuer cannot be reached, this long after they
    /// were fetched, in seconds.
    #[serde(default = "default_jwks_max_age")]
    pub jwks_max_age_secs: u64,
    /// `[[identity.oidc.rule]]` entries written below this issuer (each names its issuer).
    #[serde(default, rename = "rule", skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<OidcRuleConfig>,
}

fn default_leeway() -> u64 {
    60
}
fn default_max_token_age() -> u64 {
    3600
}
fn default_min_refresh() -> u64 {
    60
}
fn default_jwks_max_age() -> u64 {
    86_400
}

impl OidcIssuerConfig {
    pub fn validate(&self) -> Result<(), String> {
        let at = |m: String| format!("identity.oidc '{}': {m}", self.name);
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(format!(
                "identity.oidc: name '{}' must be 1-32 of A-Z a-z 0-9 - _",
                self.name
            ));
        }
        if !self.issuer.starts_with("https://") {
            return Err(at(format!(
                "issuer '{}' must be an https:// URL (the iss its tokens carry)",
                self.issuer
            )));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(at(
                "audiences must name at least one aud (what the job asks its token for)".into(),
            ));
        }
        if self.jwks_uri.is_some() && self.jwks_file.is_some() {
            return Err(at("give jwks_uri or jwks_file, not both".into()));
        }
        if let Some(u) = &self.jwks_uri {
            if !u.starts_with("https://") {
                return Err(at(format!("jwks_uri '{u}' must be an https:// URL")));
            }
        }
        if self.max_token_age_secs == 0 || self.jwks_min_refresh_secs == 0 {
            return Err(at(
                "max_token_age_secs and jwks_min_refresh_secs must be at least 1".into(),
            ));
        }
        if self.leeway_secs > 300 {
            return Err(at("leeway_secs is at most 300".into()));
        }
        if self.jwks_max_age_secs < self.jwks_min_refresh_secs {
            return Err(at(
                "jwks_max_age_secs must be at least jwks_min_refresh_secs".into(),
            ));
        }
        Ok(())
    }
}

/// A value a rule asks a claim for: a string (exact, or a glob with `*`), or a boolean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClaimValue {
    Text(String),
    Bool(bool),
    Number(i64),
}

/// Which jobs of an issuer act for a publisher: every claim must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcRuleConfig {
    /// The `name` of an `[[identity.oidc]]` issuer.
    pub issuer: String,
    pub publisher: String,
    /// What a matching job may do: issue, sign (revoke and approve too, if you must).
    pub scopes: Vec<String>,
    /// Claim name to the value it must have; `*` in a string matches any run of characters.
    #[serde(default)]
    pub claims: BTreeMap<String, ClaimValue>,
    /// The identity recorded and shown to approvers; key policies name it as `oidc:NAME`.
    pub name: String,
    /// A rule without claims matches every job of its issuer: refused unless this is set.
    #[serde(default)]
    pub allow_any: bool,
    /// Approvals every signature this rule's jobs ask for needs (at least; the key's policy
    /// may ask more), from `approvers` or the key's approvers.
    #[serde(default)]
    pub approvals: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

/// CRL publication (`GET /crl/...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrlSection {
    /// nextUpdate minus thisUpdate, in days (1 to 7).
    pub next_update_days: u32,
    /// The server reissues each CRL this often without revocations, in hours (< nextUpdate).
    pub refresh_hours: u32,
    /// CRL partitions per issuing CA (1: none). Each certificate's CRL DP names its partition;
    /// the full CRL stays published. Changing it affects certificates issued afterwards only.
    pub shards: u32,
    /// Cache-Control max-age of served CRLs, in seconds.
    pub max_age_seconds: u32,
}

impl Default for CrlSection {
    fn default() -> Self {
        CrlSection {
            next_update_days: 7,
            refresh_hours: 24,
            shards: 1,
            max_age_seconds: 300,
        }
    }
}

impl CrlSection {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=7).contains(&self.next_update_days) {
            return Err("crl.next_update_days must be 1 to 7".into());
        }
        if self.refresh_hours == 0 || self.refresh_hours >= self.next_update_days * 24 {
            return Err("crl.refresh_hours must be at least 1 and less than nextUpdate".into());
        }
        if !(1..=256).contains(&self.shards) {
            return Err("crl.shards must be 1 to 256".into());
        }
        Ok(())
    }
}

/// One ACME directory, served at `/acme/{profile}/directory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeDirectoryConfig {
    /// New accounts must present an external account binding (`hallmark acme eab create`).
    pub eab_required: bool,
    /// The publisher of accounts made without EAB (only when `eab_required = false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
}

impl Default for AcmeDirectoryConfig {
    fn default() -> Self {
        AcmeDirectoryConfig {
            eab_required: true,
            publisher: None,
        }
    }
}

/// The ACME server (RFC 8555) under `/acme/` on the API listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeSection {
    /// Profiles that have an ACME directory, and how each takes new accounts.
    pub directories: BTreeMap<String, AcmeDirectoryConfig>,
    /// The port http-01 validation connects to (80; `HALLMARK_ACME_HTTP01_PORT` wins).
    pub http01_port: u16,
    /// The port tls-alpn-01 validation connects to (443).
    pub tls_alpn01_port: u16,
    /// The DNS server dns-01 asks (`IP:PORT`); unset: the first nameserver of /etc/resolv.conf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_resolver: Option<String>,
    /// Connect every http-01 and tls-alpn-01 validation to this address instead of the one the
    /// name resolves to (tests and closed networks, like Pebble's resolver override).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_address: Option<std::net::IpAddr>,
    /// Seconds a nonce stays usable.
    pub nonce_lifetime_secs: u64,
    /// Seconds an order (and its authorizations) stay open.
    pub order_lifetime_secs: u64,
    /// Seconds a valid authorization may be reused by the account.
    pub authz_lifetime_secs: u64,
    /// Seconds one validation attempt may take.
    pub validation_timeout_secs: u64,
}

impl Default for AcmeSection {
    fn default() -> Self {
        let mut directories = BTreeMap::new();
        directories.insert("tls-server".to_string(), AcmeDirectoryConfig::default());
        AcmeSection {
            directories,
            http01_port: 80,
            tls_alpn01_port: 443,
            dns_resolver: None,
            validation_address: None,
            nonce_lifetime_secs: 3600,
            order_lifetime_secs: 7 * 24 * 3600,
            authz_lifetime_secs: 30 * 24 * 3600,
            validation_timeout_secs: 10,
        }
    }
}

impl AcmeSection {
    pub fn validate(&self) -> Result<(), String> {
        for (name, d) in &self.directories {
            if !d.eab_required && d.publisher.is_none() {
                return Err(format!(
                    "acme.directories.{name}: without eab_required, set the publisher of its accounts"
                ));
            }
        }
        if self.nonce_lifetime_secs == 0
            || self.order_lifetime_secs == 0
            || self.authz_lifetime_secs == 0
            || self.validation_timeout_secs == 0
        {
            return Err("acme: lifetimes and the validation timeout must be at least 1 s".into());
        }
        if let Some(r) = &self.dns_resolver {
            let ok =
                r.parse::<std::net::SocketAddr>().is_ok() || r.parse::<std::net::IpAddr>().is_ok();
            if !ok {
                return Err(format!("acme.dns_resolver '{r}' is not IP or IP:PORT"));
            }
        }
        Ok(())
    }

    /// The http-01 port: `HALLMARK_ACME_HTTP01_PORT` if set, else the config.
    pub fn http01_port(&self) -> u16 {
        std::env::var("HALLMARK_ACME_HTTP01_PORT")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.http01_port)
    }
}

/// The OCSP responder (`/ocsp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcspSection {
    /// nextUpdate minus thisUpdate of responses, in hours (at most 240: ten days).
    pub validity_hours: u32,
    /// Pre-signed responses are signed again when older than this, in hours (at most 96).
    pub refresh_hours: u32,
    /// The delegated responder certificate is renewed when fewer days than this remain.
    pub responder_renew_days: u32,
    /// Validity of a renewed responder certificate, in days.
    pub responder_validity_days: u32,
    /// Upper bound of Cache-Control max-age on GET answers, in seconds.
    pub max_age_seconds: u32,
}

impl Default for OcspSection {
    fn default() -> Self {
        OcspSection {
            validity_hours: 168,
            refresh_hours: 72,
            responder_renew_days: 30,
            responder_validity_days: 90,
            max_age_seconds: 3600,
        }
    }
}

impl OcspSection {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=240).contains(&self.validity_hours) {
            return Err("ocsp.validity_hours must be 1 to 240".into());
        }
        if self.refresh_hours == 0
            || self.refresh_hours > 96
            || self.refresh_hours >= self.validity_hours
        {
            return Err("ocsp.refresh_hours must be 1 to 96 and less than validity_hours".into());
        }
        if self.responder_validity_days < 2
            || self.responder_renew_days >= self.responder_validity_days
        {
            return Err(
                "ocsp.responder_renew_days must be less than responder_validity_days (at least 2)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `[notifications]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NotificationsSection {
    /// `certificate.expiring` is sent this many days before a certificate (a publisher key's,
    /// a TLS server's, ...; not a factory line's devices) ends.
    #[serde(default = "default_expiring_days")]
    pub expiring_days: u32,
}

fn default_expiring_days() -> u32 {
    30
}

impl NotificationsSection {
    fn is_default(&self) -> bool {
        *self == NotificationsSection::default()
    }
}

impl Default for NotificationsSection {
    fn default() -> Self {
        NotificationsSection {
            expiring_days: default_expiring_days(),
        }
    }
}

/// `[console]`: the web console's sessions (served at `/ui/` on the API listener).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// A session unused this long ends (sign in again).
    pub idle_minutes: u32,
    /// A session ends this long after sign-in, however busy.
    pub absolute_hours: u32,
    /// `[console.oidc]`: people also sign in through an identity provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<ConsoleOidcConfig>,
    /// `[[console.person]]`: who may sign in through the identity provider, and with which
    /// token's rights.
    #[serde(rename = "person", skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<ConsolePersonConfig>,
}

/// `[console.oidc]`: an OpenID Connect provider people sign in with (authorization code flow
/// with PKCE, S256).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleOidcConfig {
    /// What the sign-in button says: "Sign in with NAME".
    pub name: String,
    /// The provider's issuer, exactly as its ID tokens' `iss` (its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    /// The environment variable holding the client secret (a confidential client); none for a
    /// public client (PKCE alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// The redirect URI registered with the provider: `https://HOST:PORT/ui/login/callback`.
    pub redirect_url: String,
    /// The ID token claim that names a person (`email`, which must then be verified, or `sub`,
    /// or another the provider sets).
    #[serde(default = "default_person_claim")]
    pub claim: String,
    /// PEM bundle the provider's TLS certificate must chain to; default: the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

fn default_person_claim() -> String {
    "email".into()
}

/// `[[console.person]]`: a person the identity provider names (by `[console.oidc] claim`) and
/// the hallmark token whose rights (publisher, scopes, name in approvals) they act with.
/// Revoking the token ends their sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConsolePersonConfig {
    /// The claim's value (`alice@example.com`).
    pub id: String,
    /// The token's id (`hallmark token list`).
    pub token: String,
}

impl ConsoleSection {
    fn is_default(&self) -> bool {
        *self == ConsoleSection::default()
    }
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection {
            idle_minutes: 30,
            absolute_hours: 12,
            oidc: None,
            people: Vec::new(),
        }
    }
}

/// One `[[webhook]]`: a receiver of events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// How `hallmark webhook test NAME` and the logs call it (letters, digits, `-`, `_`).
    pub name: String,
    /// https:// (or http:// for a receiver on a trusted network).
    pub url: String,
    /// The events it gets (`request.pending`, ...); every event when empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// The HMAC-SHA256 key, in the file itself (keep the file private), or ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// ... the variable that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// `json` (hallmark's document) or `slack` (`{"text": ...}`, for an incoming webhook).
    #[serde(default = "default_webhook_format")]
    pub format: String,
    /// The CA certificates (PEM) to trust for an https:// receiver; the system's when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

fn default_webhook_format() -> String {
    "json".into()
}

impl WebhookConfig {
    pub fn validate(&self) -> Result<(), String> {
        let at = |why: String| format!("webhook '{}': {why}", self.name);
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "webhook name '{}' must be letters, digits, '-' and '_'",
                self.name
            ));
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://"))
            || self.url.parse::<hyper::Uri>().is_err()
        {
            return Err(at(format!("url '{}' is not an http(s) URL", self.url)));
        }
        for e in &self.events {
            if !crate::webhooks::EVENTS.contains(&e.as_str()) {
                return Err(at(format!(
                    "unknown event '{e}' (known: {})",
                    crate::webhooks::EVENTS.join(", ")
                )));
            }
        }
        if self.secret.is_some() == self.secret_env.is_some() {
            return Err(at("give exactly one of secret, secret_env".into()));
        }
        if !matches!(self.format.as_str(), "json" | "slack") {
            return Err(at(format!("format '{}' is not json or slack", self.format)));
        }
        Ok(())
    }
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
        for (label, p) in &self.signing.keys {
            crate::policy::signing::KeyPolicy::from_config(p).map_err(|e| match e {
                crate::policy::PolicyError::BadRequest(why) => {
                    format!("signing.keys.{label}: {why}")
                }
                e => format!("signing.keys.{label}: {e}"),
            })?;
        }
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
