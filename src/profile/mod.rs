//! Certificate profiles: `ca-profiles/*.toml`, loaded and validated before anything is issued.
//!
//! A profile says what a certificate looks like and who may get one. Every field is checked at
//! load time, and an error names the file, the field and the problem, so a typo never turns into
//! a certificate. The format is documented in `ca-profiles/README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Errors loading profiles.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{file}: {problem}")]
    Invalid { file: String, problem: String },
    #[error("{file}: field `{field}`: {problem}")]
    Field {
        file: String,
        field: String,
        problem: String,
    },
    #[error("profile directory {0}: {1}")]
    Dir(String, String),
    /// `hint` names the known profiles, the nearest one, and that a new one needs a restart.
    #[error("unknown profile '{name}'{hint}")]
    Unknown { name: String, hint: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsage {
    DigitalSignature,
    #[serde(alias = "nonRepudiation")]
    ContentCommitment,
    KeyEncipherment,
    KeyAgreement,
    KeyCertSign,
    CrlSign,
}

impl KeyUsage {
    /// The bit number in the KeyUsage BIT STRING.
    pub fn bit(self) -> u8 {
        match self {
            KeyUsage::DigitalSignature => 0,
            KeyUsage::ContentCommitment => 1,
            KeyUsage::KeyEncipherment => 2,
            KeyUsage::KeyAgreement => 4,
            KeyUsage::KeyCertSign => 5,
            KeyUsage::CrlSign => 6,
        }
    }
}

/// Extended key usages by name. Anything else is written as a dotted OID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eku {
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    TimeStamping,
    OcspSigning,
    Other(String),
}

/// The profile name a CA's own certificate is recorded under (no profile file has it).
pub const CA_CERTIFICATE_PROFILE: &str = "ca-certificate";

/// The extended key usage OIDs hallmark names (RFC 5280 §4.2.1.12), written once.
pub mod eku_oid {
    pub const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
    pub const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
    pub const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
    pub const EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";
    pub const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
    pub const OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
    /// anyExtendedKeyUsage: never issued, looked for by the lint.
    pub const ANY: &str = "2.5.29.37.0";
}

impl Eku {
    pub fn oid(&self) -> &str {
        match self {
            Eku::ServerAuth => eku_oid::SERVER_AUTH,
            Eku::ClientAuth => eku_oid::CLIENT_AUTH,
            Eku::CodeSigning => eku_oid::CODE_SIGNING,
            Eku::EmailProtection => eku_oid::EMAIL_PROTECTION,
            Eku::TimeStamping => eku_oid::TIME_STAMPING,
            Eku::OcspSigning => eku_oid::OCSP_SIGNING,
            Eku::Other(o) => o,
        }
    }

    fn parse(s: &str) -> Result<Eku, String> {
        Ok(match s {
            "serverAuth" => Eku::ServerAuth,
            "clientAuth" => Eku::ClientAuth,
            "codeSigning" => Eku::CodeSigning,
            "emailProtection" => Eku::EmailProtection,
            "timeStamping" => Eku::TimeStamping,
            "OCSPSigning" | "ocspSigning" => Eku::OcspSigning,
            "anyExtendedKeyUsage" => return Err("anyExtendedKeyUsage is never issued".into()),
            other if is_dotted_oid(other) => Eku::Other(other.to_string()),
            other => {
                return Err(format!(
                "unknown extended key usage '{other}' (use serverAuth, clientAuth, codeSigning, emailProtection, timeStamping, OCSPSigning or a dotted OID)"
            ))
            }
        })
    }
}

/// In `certificate_policies`, stands for the CA's own policy OID from `hallmark.toml`.
pub const CA_POLICY: &str = "ca-policy";

/// A dotted OID whose arcs each fit in four base-128 octets (< 2^28): longer arcs are refused by
/// pkilint and by older Windows.
pub fn is_dotted_oid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|v| v < 1 << 28)
        })
        && matches!(parts[0], "0" | "1" | "2")
}

/// Subject public key types a profile can accept in a CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowedKey {
    Rsa,
    P256,
    P384,
    P521,
    Ed25519,
}

/// What the CN of the subject holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CommonName {
    /// The publisher's verified legal name (its O).
    #[default]
    Organization,
    /// The device serial.
    DeviceSerial,
    /// A name given with the request (stations, responders).
    RequestName,
    /// No CN.
    None,
}

/// Publisher attributes that can be copied into the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SubjectAttr {
    O,
    C,
    ST,
    L,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    Required,
    #[default]
    Forbidden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExtensionAction {
    #[default]
    Ignore,
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SanKind {
    Dns,
    Email,
    Uri,
    Ip,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRules {
    pub algorithms: Vec<AllowedKey>,
    #[serde(default = "default_rsa_min")]
    pub rsa_min_bits: usize,
}

fn default_rsa_min() -> usize {
    3072
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRules {
    pub key_usage: Vec<KeyUsage>,
    #[serde(default)]
    pub extended_key_usage: Vec<String>,
    #[serde(default)]
    pub extended_key_usage_critical: bool,
    #[serde(default)]
    pub certificate_policies: Vec<String>,
    #[serde(default)]
    pub crl_distribution_point: bool,
    #[serde(default)]
    pub authority_info_access: bool,
    #[serde(default)]
    pub ocsp_no_check: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectRules {
    #[serde(default)]
    pub common_name: CommonName,
    #[serde(default)]
    pub attributes: Vec<SubjectAttr>,
    #[serde(default)]
    pub device_serial: Requirement,
    pub device_serial_pattern: Option<String>,
    /// Matter-style device attestation: the vendor id written into every subject (4 hex digits).
    pub matter_vid: Option<String>,
    /// Matter-style device attestation: the product id (4 hex digits).
    pub matter_pid: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SanRules {
    #[serde(default)]
    pub allowed: Vec<SanKind>,
    pub dns_suffix: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CsrRules {
    /// What to do with a requested extension the profile does not take (never copied).
    #[serde(default)]
    pub requested_extensions: ExtensionAction,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRules {
    pub required: u32,
    pub approvers: Vec<String>,
}

/// A profile file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    description: String,
    issuer: String,
    validity_days: Option<u32>,
    not_after: Option<String>,
    #[serde(default)]
    backdate_seconds: Option<u32>,
    key: KeyRules,
    extensions: ExtensionRules,
    subject: SubjectRules,
    #[serde(default)]
    san: SanRules,
    #[serde(default)]
    csr: CsrRules,
    approvals: Option<ApprovalRules>,
}

/// How long certificates of a profile live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    Days(u32),
    /// The RFC 5280 "no well-defined expiration" value, 99991231235959Z.
    Forever,
}

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// The CA that signs certificates of this profile.
    pub issuer: String,
    pub validity: Validity,
    pub backdate_seconds: u32,
    pub key: KeyRules,
    pub key_usage: Vec<KeyUsage>,
    pub eku: Vec<Eku>,
    pub eku_critical: bool,
    pub policies: Vec<String>,
    pub crl_distribution_point: bool,
    pub authority_info_access: bool,
    pub ocsp_no_check: bool,
    pub subject: SubjectRules,
    pub device_serial_regex: Option<regex_lite::Regex>,
    pub san: SanRules,
    pub csr: CsrRules,
    pub approvals: Option<ApprovalRules>,
}

impl Profile {
    pub fn has_eku(&self, e: &Eku) -> bool {
        self.eku.contains(e)
    }

    pub fn allows_key(&self, k: AllowedKey) -> bool {
        self.key.algorithms.contains(&k)
    }

    /// Parses and validates one profile from TOML text; `file` names it in errors.
    pub fn from_toml(file: &Path, text: &str) -> Result<Profile, ProfileError> {
        let fname = file.display().to_string();
        let raw: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Invalid {
            file: fname.clone(),
            problem: e.to_string().trim().replace('\n', " "),
        })?;
        let field = |field: &str, problem: String| ProfileError::Field {
            file: fname.clone(),
            field: field.to_string(),
            problem,
        };

        if !valid_name(&raw.name) {
            return Err(field(
                "name",
                format!("'{}' must be 1-64 of a-z 0-9 -", raw.name),
            ));
        }
        if let Some(stem) = file.file_stem().and_then(|s| s.to_str()) {
            if file.extension().is_some() && stem != raw.name {
                return Err(field(
                    "name",
                    format!("'{}' does not match the file name '{stem}'", raw.name),
                ));
            }
        }
        if !valid_name(&raw.issuer) {
            return Err(field(
                "issuer",
                format!("'{}' is not a CA name", raw.issuer),
            ));
        }
        let validity = match (raw.validity_days, raw.not_after.as_deref()) {
            (Some(0), None) => return Err(field("validity_days", "must be at least 1".into())),
            (Some(d), None) if d > 36_500 => {
                return Err(field("validity_days", format!("{d} days is over 100 years; use not_after = \"99991231235959Z\"")))
            }
            (Some(d), None) => Validity::Days(d),
            (None, Some("99991231235959Z")) => Validity::Forever,
            (None, Some(other)) => {
                return Err(field(
                    "not_after",
                    format!("'{other}': only \"99991231235959Z\" (no expiration) is accepted; use validity_days otherwise"),
                ))
            }
            (Some(_), Some(_)) => {
                return Err(field("validity_days", "give validity_days or not_after, not both".into()))
            }
            (None, None) => return Err(field("validity_days", "missing (or not_after)".into())),
        };
        if raw.key.algorithms.is_empty() {
            return Err(field(
                "key.algorithms",
                "at least one key type is needed".into(),
            ));
        }
        if raw.key.rsa_min_bits < 2048 || raw.key.rsa_min_bits > 16384 {
            return Err(field(
                "key.rsa_min_bits",
                format!("{} is outside 2048..16384", raw.key.rsa_min_bits),
            ));
        }
        if raw.extensions.key_usage.is_empty() {
            return Err(field(
                "extensions.key_usage",
                "at least one key usage is needed".into(),
            ));
        }
        if raw
            .extensions
            .key_usage
            .iter()
            .any(|k| matches!(k, KeyUsage::KeyCertSign | KeyUsage::CrlSign))
        {
            return Err(field(
                "extensions.key_usage",
                "keyCertSign and cRLSign are for CA certificates, which profiles never issue"
                    .into(),
            ));
        }
        let mut eku = Vec::new();
        for e in &raw.extensions.extended_key_usage {
            let parsed = Eku::parse(e).map_err(|p| field("extensions.extended_key_usage", p))?;
            if eku.contains(&parsed) {
                return Err(field(
                    "extensions.extended_key_usage",
                    format!("'{e}' is listed twice"),
                ));
            }
            eku.push(parsed);
        }
        for p in &raw.extensions.certificate_policies {
            if p != CA_POLICY && !is_dotted_oid(p) {
                return Err(field(
                    "extensions.certificate_policies",
                    format!("'{p}' is neither a dotted OID nor \"{CA_POLICY}\""),
                ));
            }
        }
        // Rules from the design standards (shared/design.md).
        if eku.contains(&Eku::CodeSigning) {
            if eku.contains(&Eku::ServerAuth) {
                return Err(field(
                    "extensions.extended_key_usage",
                    "codeSigning and serverAuth never go together".into(),
                ));
            }
            match validity {
                Validity::Days(d) if d <= 460 => {}
                _ => {
                    return Err(field(
                        "validity_days",
                        "code-signing certificates live at most 460 days".into(),
                    ))
                }
            }
            if raw.extensions.key_usage != [KeyUsage::DigitalSignature] {
                return Err(field(
                    "extensions.key_usage",
                    "code-signing certificates carry digitalSignature only".into(),
                ));
            }
            if raw.key.algorithms.contains(&AllowedKey::Rsa) && raw.key.rsa_min_bits < 3072 {
                return Err(field(
                    "key.rsa_min_bits",
                    "code signing needs RSA of at least 3072 bits".into(),
                ));
            }
            if raw.extensions.certificate_policies.is_empty() {
                return Err(field(
                    "extensions.certificate_policies",
                    "code-signing certificates need a policy OID".into(),
                ));
            }
        }
        if eku.contains(&Eku::TimeStamping)
            && (eku.len() != 1 || !raw.extensions.extended_key_usage_critical)
        {
            return Err(field(
                "extensions.extended_key_usage",
                "timeStamping must be the only extended key usage, and critical (RFC 3161)".into(),
            ));
        }
        let device_serial_regex = match (
            &raw.subject.device_serial,
            &raw.subject.device_serial_pattern,
        ) {
            (Requirement::Required, Some(p)) => Some(
                regex_lite::Regex::new(p)
                    .map_err(|e| field("subject.device_serial_pattern", format!("'{p}': {e}")))?,
            ),
            (Requirement::Required, None) => {
                return Err(field(
                    "subject.device_serial_pattern",
                    "needed when device_serial = \"required\"".into(),
                ))
            }
            (Requirement::Forbidden, Some(_)) => {
                return Err(field(
                    "subject.device_serial_pattern",
                    "given but device_serial is not \"required\"".into(),
                ))
            }
            (Requirement::Forbidden, None) => None,
        };
        for (f, v) in [
            ("subject.matter_vid", &raw.subject.matter_vid),
            ("subject.matter_pid", &raw.subject.matter_pid),
        ] {
            if let Some(v) = v {
                if !is_matter_id(v) {
                    return Err(field(
                        f,
                        format!("'{v}' must be four upper-case hex digits, like FFF1"),
                    ));
                }
            }
        }
        if raw.subject.matter_pid.is_some() && raw.subject.matter_vid.is_none() {
            return Err(field(
                "subject.matter_pid",
                "a product id needs subject.matter_vid".into(),
            ));
        }
        if raw.subject.common_name == CommonName::DeviceSerial
            && raw.subject.device_serial != Requirement::Required
        {
            return Err(field(
                "subject.common_name",
                "\"device-serial\" needs device_serial = \"required\"".into(),
            ));
        }
        if let Some(a) = &raw.approvals {
            if a.required == 0 || a.required as usize > a.approvers.len() {
                return Err(field(
                    "approvals.required",
                    format!(
                        "{} approvals out of {} approvers cannot be met",
                        a.required,
                        a.approvers.len()
                    ),
                ));
            }
        }
        Ok(Profile {
            name: raw.name,
            description: raw.description,
            file: file.to_path_buf(),
            issuer: raw.issuer,
            validity,
            backdate_seconds: raw.backdate_seconds.unwrap_or(0),
            key: raw.key,
            key_usage: raw.extensions.key_usage,
            eku,
            eku_critical: raw.extensions.extended_key_usage_critical,
            policies: raw.extensions.certificate_policies,
            crl_distribution_point: raw.extensions.crl_distribution_point,
            authority_info_access: raw.extensions.authority_info_access,
            ocsp_no_check: raw.extensions.ocsp_no_check,
            subject: raw.subject,
            device_serial_regex,
            san: raw.san,
            csr: raw.csr,
            approvals: raw.approvals,
        })
    }

    pub fn load_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Invalid {
            file: path.display().to_string(),
            problem: e.to_string(),
        })?;
        Profile::from_toml(path, &text)
    }
}

/// A Matter vendor or product id: four upper-case hex digits.
pub fn is_matter_id(s: &str) -> bool {
    s.len() == 4
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// All profiles of a directory, by name.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
}

impl Profiles {
    /// Loads every `*.toml` in `dir`; the first invalid file stops the load.
    pub fn load_dir(dir: &Path) -> Result<Profiles, ProfileError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| ProfileError::Dir(dir.display().to_string(), e.to_string()))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut by_name = BTreeMap::new();
        for p in paths {
            let profile = Profile::load_file(&p)?;
            if by_name.contains_key(&profile.name) {
                return Err(ProfileError::Invalid {
                    file: p.display().to_string(),
                    problem: format!("a second profile named '{}'", profile.name),
                });
            }
            by_name.insert(profile.name.clone(), profile);
        }
        if by_name.is_empty() {
            return Err(ProfileError::Dir(
                dir.display().to_string(),
                "no *.toml profiles".into(),
            ));
        }
        Ok(Profiles { by_name })
    }

    pub fn get(&self, name: &str) -> Result<&Profile, ProfileError> {
        self.by_name.get(name).ok_or_else(|| ProfileError::Unknown {
            name: name.to_string(),
            hint: self.unknown_hint(name),
        })
    }

    /// What to say about a profile name that is not loaded: the known ones, the nearest (a
    /// typo), and that a file added to the directory is read at the next start.
    fn unknown_hint(&self, name: &str) -> String {
        let known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        let nearest = known
            .iter()
            .map(|k| (edit_distance(name, k), *k))
            .min()
            .filter(|(d, k)| *d <= (k.len() / 3).max(2))
            .map(|(_, k)| format!(" (did you mean '{k}'?)"))
            .unwrap_or_default();
        format!(
            "{nearest}: the profiles loaded are {}; a profile added to the profile directory is loaded when hallmark starts again (restart hallmark serve)",
            known.join(", ")
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_name.values()
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}

/// Levenshtein distance between two names (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod name_tests {
    #[test]
    fn edit_distances() {
        assert_eq!(super::edit_distance("code-signin", "code-signing"), 1);
        assert_eq!(super::edit_distance("firmware", "firmware-signing"), 8);
        assert_eq!(super::edit_distance("", "abc"), 3);
        assert_eq!(super::edit_distance("same", "same"), 0);
    }
}
