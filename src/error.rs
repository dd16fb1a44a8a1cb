//! The library's error: one enum whose variants wrap each layer's own closed list.
//!
//! The edges turn these into exit codes and messages (CLI) or problem documents (HTTP) in one
//! place each; [`Error::kind`] is the stable name they use and [`Error::class`] how an edge
//! answers it, both decided here by variant so the compiler sees every case.

use crate::config::ConfigError;
use crate::engine::error::EngineError;
use crate::issuer::IssueError;
use crate::keys::KeyError;
use crate::policy::PolicyError;
use crate::profile::ProfileError;
use crate::provision::error::ProvisionError;
use crate::requests::error::RequestError;
use crate::revocation::error::RevocationError;
use crate::signing::error::SigningError;
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
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Revocation(#[from] RevocationError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{0} was not found")]
    NotFound(String),
    #[error("{0}")]
    Io(String),
    /// A stored record that does not read back (a corrupt certificate in the database): the
    /// server's fault, never the client's.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The server's own fault (a poisoned lock, a key store that cannot seal, a key that could
    /// not be made): never the client's, its detail for the log only.
    #[error("{0}")]
    Internal(String),
    /// Too many requests (e.g. a key's signing rate); retry after the given seconds.
    #[error("{detail}")]
    RateLimited { detail: String, retry_after: u64 },
    /// What an edge refuses before any service is called.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// A request an edge refuses before any service sees it: nothing at the path, a method the
/// path does not serve, a request over a limit, a body not sent in time. Each detail is the
/// edge's own text, never a stored value or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("{0}")]
    NotFound(String),
    /// `allow`: the methods the path serves (the 405's Allow header).
    #[error("{detail}")]
    MethodNotAllowed { detail: String, allow: String },
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UriTooLong(String),
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("the request body was not sent in time")]
    Timeout,
    /// A body that kept arriving, but slower than `[api] min_body_rate` once its grace was over.
    #[error("the request body arrived slower than {0} bytes a second")]
    TooSlow(u64),
    #[error("the request body is malformed (HTTP framing)")]
    BadFraming,
    /// A path segment, query parameter or body field the route cannot use.
    #[error("{0}")]
    BadParameter(String),
    /// The database or key store cannot answer now; the detail says which, in general terms.
    #[error("{0}")]
    Unavailable(String),
    /// A handler that did not finish (it panicked): the server's fault.
    #[error("a request handler did not finish")]
    Internal,
}

impl From<crate::formats::names::NameError> for Error {
    fn from(e: crate::formats::names::NameError) -> Self {
        Error::Signing(SigningError::Name(e))
    }
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
            Error::Issue(IssueError::Unreadable(_)) => "bad-request",
            Error::Issue(_) => "issuance",
            Error::Config(_) => "config",
            Error::Signing(SigningError::Internal(_)) => "internal",
            Error::Engine(_) | Error::Revocation(_) | Error::Request(_) | Error::Provision(_) => {
                "bad-request"
            }
            Error::Signing(_) => "bad-request",
            Error::Auth(crate::policy::auth::AuthError::Unauthorized(_)) => "unauthorized",
            Error::Auth(crate::policy::auth::AuthError::Forbidden(_)) => "forbidden",
            Error::Conflict(_) => "conflict",
            Error::MalformedJson(_) => "malformed-json",
            Error::UnsupportedMedia(_) => "unsupported-media-type",
            Error::Io(_) => "io",
            Error::Corrupt(_) | Error::Internal(_) => "internal",
            Error::RateLimited { .. } => "rate-limited",
            Error::Refused(r) => match r {
                Refusal::NotFound(_) => "not-found",
                Refusal::MethodNotAllowed { .. } => "method-not-allowed",
                Refusal::UnsupportedMedia(_) => "unsupported-media-type",
                Refusal::TooLarge(_) => "too-large",
                Refusal::UriTooLong(_) => "uri-too-long",
                Refusal::HeadersTooLarge(_) => "headers-too-large",
                Refusal::Timeout | Refusal::TooSlow(_) => "timeout",
                Refusal::BadFraming | Refusal::BadParameter(_) => "bad-request",
                Refusal::Unavailable(_) => "unavailable",
                Refusal::Internal => "internal",
            },
        }
    }

    /// The kind a client is told: [`Error::kind`], except that a fault of the server is only
    /// `internal` (or `unavailable`), whatever failed inside.
    pub fn public_kind(&self) -> &'static str {
        match (self.class(), self) {
            (_, Error::Refused(Refusal::Unavailable(_))) | (Class::Unavailable, _) => "unavailable",
            (Class::Internal, _) => "internal",
            _ => self.kind(),
        }
    }

    /// What a client may read of this error: its own words, or for a fault of the server a
    /// generic sentence (the error itself goes to the log, once, here). Every edge that answers
    /// a client (the API, the console, a factory station's batch lines) says it through this.
    pub fn public_detail(&self) -> String {
        match (self.class(), self) {
            (_, Error::Refused(Refusal::Unavailable(detail))) => detail.clone(),
            (Class::Internal | Class::Unavailable, _) => {
                tracing::error!("internal error ({}): {self}", self.kind());
                "the server could not complete the request; the error is in its log".into()
            }
            _ => self.to_string(),
        }
    }

    /// How an edge answers this error (HTTP status; the CLI's message is the same either way).
    pub fn class(&self) -> Class {
        use crate::policy::auth::AuthError;
        match self {
            Error::Policy(p) => match p {
                PolicyError::BadCsr(_)
                | PolicyError::BadSignature
                | PolicyError::UnknownProfile(_)
                | PolicyError::BadRequest(_) => Class::BadRequest,
                PolicyError::BadKey(_)
                | PolicyError::SubjectMismatch { .. }
                | PolicyError::UnexpectedAttribute { .. }
                | PolicyError::ExtensionRefused(_)
                | PolicyError::ApprovalRequired(_) => Class::Unprocessable,
                PolicyError::UnknownPublisher(_) => Class::NotFound,
                PolicyError::NotAuthorized(_) => Class::Forbidden,
                PolicyError::Store(_) => Class::Internal,
            },
            Error::Profile(ProfileError::Unknown { .. }) => Class::BadRequest,
            // A profile that does not load is the server's configuration, not the request.
            Error::Profile(_) => Class::Internal,
            Error::Store(s) => match s {
                StoreError::Conflict(_)
                | StoreError::Decided(_)
                | StoreError::DeviceTaken(_)
                | StoreError::QuotaExceeded(_) => Class::Conflict,
                StoreError::NotFound(_) => Class::NotFound,
                _ => Class::Internal,
            },
            Error::Key(_) => Class::Unavailable,
            Error::Issue(IssueError::Lint(_)) => Class::Unprocessable,
            Error::Issue(IssueError::Unreadable(_)) => Class::BadRequest,
            Error::Issue(_)
            | Error::Config(_)
            | Error::Io(_)
            | Error::Corrupt(_)
            | Error::Internal(_) => Class::Internal,
            Error::Auth(AuthError::Unauthorized(_)) => Class::Unauthorized,
            Error::Auth(AuthError::Forbidden(_)) => Class::Forbidden,
            Error::Signing(s) => match s {
                SigningError::Name(_)
                | SigningError::BadDigest(_)
                | SigningError::BadContent(_)
                | SigningError::Unsupported(_)
                | SigningError::BadMetadata(_) => Class::BadRequest,
                SigningError::Internal(_) => Class::Internal,
            },
            Error::Engine(e) => match e {
                EngineError::UnknownPurpose(_)
                | EngineError::Argument(_)
                | EngineError::BadCertificate(_)
                | EngineError::NotForKey(_)
                | EngineError::NotACaCertificate
                | EngineError::InitRefused(_) => Class::BadRequest,
            },
            Error::Revocation(r) => match r {
                RevocationError::BadSerial(_) | RevocationError::FutureInvalidityDate => {
                    Class::BadRequest
                }
            },
            Error::Request(r) => match r {
                RequestError::UnknownStatus(..)
                | RequestError::TokenWithoutOwner
                | RequestError::BadTokenName(_) => Class::BadRequest,
            },
            Error::Provision(p) => match p {
                ProvisionError::NotDeviceProfile(_)
                | ProvisionError::BadSerialPattern(..)
                | ProvisionError::BadQuota
                | ProvisionError::PublisherAmbiguous { .. } => Class::BadRequest,
            },
            Error::Conflict(_) => Class::Conflict,
            Error::MalformedJson(_) => Class::BadRequest,
            Error::UnsupportedMedia(_) => Class::UnsupportedMedia,
            Error::NotFound(_) => Class::NotFound,
            Error::RateLimited { .. } => Class::RateLimited,
            Error::Refused(r) => match r {
                Refusal::NotFound(_) => Class::NotFound,
                Refusal::MethodNotAllowed { .. } => Class::MethodNotAllowed,
                Refusal::UnsupportedMedia(_) => Class::UnsupportedMedia,
                Refusal::TooLarge(_) => Class::TooLarge,
                Refusal::UriTooLong(_) => Class::UriTooLong,
                Refusal::HeadersTooLarge(_) => Class::HeadersTooLarge,
                Refusal::Timeout | Refusal::TooSlow(_) => Class::Timeout,
                Refusal::BadFraming | Refusal::BadParameter(_) => Class::BadRequest,
                Refusal::Unavailable(_) => Class::Unavailable,
                Refusal::Internal => Class::Internal,
            },
        }
    }
}

/// How an edge answers an error: the client's fault (all but the last two, with the error's
/// own detail), or the server's (the last two: a generic detail, the error in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    BadRequest,
    UnsupportedMedia,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Timeout,
    Conflict,
    TooLarge,
    UriTooLong,
    HeadersTooLarge,
    Unprocessable,
    RateLimited,
    /// The key store cannot sign now (a token away, a session lost): retry later.
    Unavailable,
    Internal,
}

/// The prefix of every problem `type` (RFC 9457): `urn:hallmark:problem:KIND`, a URI the
/// project can stand behind; the KIND strings ([`Error::kind`]) are stable.
pub const PROBLEM_BASE: &str = "urn:hallmark:problem:";

/// The problem `type` URI of a kind.
pub fn problem_type(kind: &str) -> String {
    format!("{PROBLEM_BASE}{kind}")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_refusals_are_the_client_s_and_its_faults_the_server_s() {
        let client = Error::from(SigningError::BadDigest("the digest must be hex".into()));
        assert_eq!(
            (client.class(), client.kind()),
            (Class::BadRequest, "bad-request")
        );
        assert_eq!(client.to_string(), "the digest must be hex");
        let server = Error::from(SigningError::Internal(
            "an ECDSA signature of 3 bytes".into(),
        ));
        assert_eq!(
            (server.class(), server.kind()),
            (Class::Internal, "internal")
        );
    }

    #[test]
    fn the_server_s_own_faults_are_never_a_400() {
        // A sealed secret that does not open, a key store that cannot seal: once 400s.
        for e in [
            Error::Corrupt("the sealed secret of 'kid' does not open".into()),
            Error::Internal("sealing failed".into()),
        ] {
            assert_eq!((e.class(), e.kind()), (Class::Internal, "internal"), "{e}");
        }
    }

    #[test]
    fn each_layer_s_refusals_are_400s_with_their_own_words() {
        let refusals: Vec<Error> = vec![
            EngineError::UnknownPurpose("web".into()).into(),
            EngineError::NotACaCertificate.into(),
            RevocationError::FutureInvalidityDate.into(),
            RequestError::TokenWithoutOwner.into(),
            ProvisionError::BadQuota.into(),
            IssueError::Unreadable("truncated".into()).into(),
            Refusal::BadParameter("limit '0' must be 1..1000".into()).into(),
        ];
        for e in refusals {
            assert_eq!(
                (e.class(), e.kind()),
                (Class::BadRequest, "bad-request"),
                "{e}"
            );
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(
            Error::from(EngineError::UnknownPurpose("web".into())).to_string(),
            "unknown CA purpose 'web' (code-signing, timestamping, devices or tls)"
        );
    }
}
