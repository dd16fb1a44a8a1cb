//! CAs and publishers: the hierarchy's records and the verified identities certificates are issued
//! to.

use super::*;

/// The role a CA plays in the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    Root,
    Issuing,
    Ocsp,
}

impl CaRole {
    pub fn as_str(self) -> &'static str {
        match self {
            CaRole::Root => "root",
            CaRole::Issuing => "issuing",
            CaRole::Ocsp => "ocsp",
        }
    }
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "root" => Ok(CaRole::Root),
            "issuing" => Ok(CaRole::Issuing),
            "ocsp" => Ok(CaRole::Ocsp),
            other => Err(StoreError::Schema(format!("unknown CA role '{other}'"))),
        }
    }
}

/// A CA (or OCSP responder) of the hierarchy.
#[derive(Debug, Clone)]
pub struct CaRecord {
    pub name: String,
    pub role: CaRole,
    pub parent: Option<String>,
    pub purpose: Option<String>,
    pub key_store: String,
    pub key_label: String,
    pub key_algorithm: String,
    pub csr_der: Option<Vec<u8>>,
    pub cert_der: Option<Vec<u8>>,
    pub serial: Option<String>,
    pub subject: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub created_at: i64,
}

/// A publisher and its verified identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    pub id: String,
    pub org: String,
    pub country: String,
    pub state: Option<String>,
    pub locality: Option<String>,
    pub profiles: Vec<String>,
    pub created_at: i64,
}

/// Reads of CAs and publishers.
pub trait AuthoritiesRead: Send + Sync {
    fn get_ca(&self, name: &str) -> Result<Option<CaRecord>, StoreError>;

    fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError>;

    fn get_publisher(&self, id: &str) -> Result<Option<Publisher>, StoreError>;

    fn list_publishers(&self) -> Result<Vec<Publisher>, StoreError>;
}

/// Writes of CAs and publishers, each with its audit event in the same transaction.
pub trait AuthoritiesWrite: Send + Sync {
    fn insert_ca(&self, ca: &CaRecord, actor: &str) -> Result<(), StoreError>;

    /// Attaches a certificate to a CA that was waiting for one (external root).
    fn set_ca_certificate(&self, ca: &CaRecord, actor: &str) -> Result<(), StoreError>;

    fn add_publisher(&self, p: &Publisher, actor: &str) -> Result<(), StoreError>;

    /// Replaces the profiles a publisher may use (its verified identity does not change here).
    fn set_publisher_profiles(
        &self,
        id: &str,
        profiles: &[String],
        actor: &str,
    ) -> Result<(), StoreError>;

    /// Replaces the certificate of a CA or responder whose key stays (renewal), with an audit
    /// event.
    #[allow(clippy::too_many_arguments)]
    fn renew_ca_certificate(
        &self,
        name: &str,
        cert_der: &[u8],
        serial: &str,
        subject: &str,
        not_before: i64,
        not_after: i64,
        actor: &str,
    ) -> Result<(), StoreError>;
}
