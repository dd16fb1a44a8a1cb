//! The sections of services the server runs: CRL and OCSP publication, ACME, notifications,
//! the web console and webhooks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    pub fn is_default(&self) -> bool {
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
    pub fn is_default(&self) -> bool {
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
        // Which events exist is the webhook service's to say (`webhooks::check_events`).
        if self.secret.is_some() == self.secret_env.is_some() {
            return Err(at("give exactly one of secret, secret_env".into()));
        }
        if !matches!(self.format.as_str(), "json" | "slack") {
            return Err(at(format!("format '{}' is not json or slack", self.format)));
        }
        Ok(())
    }
}
