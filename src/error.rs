//! The library's error: one enum whose variants wrap each layer's own closed list.
//!
//! The edges turn these into exit codes and messages (CLI) or problem documents (HTTP) in one
//! place each; [`Error::kind`] is the stable name they use.

use crate::config::ConfigError;
use crate::issuer::IssueError;
use crate::keys::KeyError;
use crate::policy::PolicyError;
use crate::profile::ProfileError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] crate::policy::auth::AuthError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{0} was not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
    /// Too many requests (e.g. a key's signing rate); retry after the given seconds.
    #[error("{detail}")]
    RateLimited { detail: String, retry_after: u64 },
}

impl Error {
    /// A stable short name of the error kind (problem `type` suffix, log field).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Policy(p) => match p {
                PolicyError::BadCsr(_) | PolicyError::BadSignature => "bad-csr",
                PolicyError::BadKey(_) => "bad-key",
                PolicyError::SubjectMismatch { .. } | PolicyError::UnexpectedAttribute { .. } => {
                    "subject-mismatch"
                }
                PolicyError::ExtensionRefused(_) => "extension-refused",
                PolicyError::UnknownProfile(_) => "unknown-profile",
                PolicyError::UnknownPublisher(_) => "unknown-publisher",
                PolicyError::NotAuthorized(_) => "forbidden",
                PolicyError::ApprovalRequired(_) => "approval-required",
                PolicyError::BadRequest(_) => "bad-request",
                PolicyError::Store(_) => "internal",
            },
            Error::Profile(ProfileError::Unknown { .. }) => "unknown-profile",
            Error::Profile(_) => "bad-profile",
            Error::Store(StoreError::Conflict(_) | StoreError::Decided(_)) => "conflict",
            Error::Store(StoreError::DeviceTaken(_)) => "device-exists",
            Error::Store(StoreError::QuotaExceeded(_)) => "quota-exceeded",
            Error::Store(StoreError::NotFound(_)) | Error::NotFound(_) => "not-found",
            Error::Store(_) => "internal",
            Error::Key(_) => "key-store",
            Error::Issue(IssueError::Lint(_)) => "lint",
            Error::Issue(_) => "issuance",
            Error::Config(_) => "config",
            Error::Invalid(_) => "bad-request",
            Error::Auth(crate::policy::auth::AuthError::Unauthorized(_)) => "unauthorized",
            Error::Auth(crate::policy::auth::AuthError::Forbidden(_)) => "forbidden",
            Error::Conflict(_) => "conflict",
            Error::MalformedJson(_) => "malformed-json",
            Error::UnsupportedMedia(_) => "unsupported-media-type",
            Error::Io(_) => "io",
            Error::RateLimited { .. } => "rate-limited",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
