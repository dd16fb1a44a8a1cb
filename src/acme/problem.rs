//! ACME errors (RFC 8555 §6.7): a closed list of `urn:ietf:params:acme:error:*` types, turned
//! into problem documents only at the HTTP edge.

use serde_json::{json, Value};

/// The error types of RFC 8555 §6.7 that hallmark sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    AccountDoesNotExist,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
}

impl ProblemType {
    pub fn name(self) -> &'static str {
        match self {
            ProblemType::AccountDoesNotExist => "accountDoesNotExist",
            ProblemType::AlreadyRevoked => "alreadyRevoked",
            ProblemType::BadCsr => "badCSR",
            ProblemType::BadNonce => "badNonce",
            ProblemType::BadPublicKey => "badPublicKey",
            ProblemType::BadRevocationReason => "badRevocationReason",
            ProblemType::BadSignatureAlgorithm => "badSignatureAlgorithm",
            ProblemType::Connection => "connection",
            ProblemType::Dns => "dns",
            ProblemType::ExternalAccountRequired => "externalAccountRequired",
            ProblemType::IncorrectResponse => "incorrectResponse",
            ProblemType::InvalidContact => "invalidContact",
            ProblemType::Malformed => "malformed",
            ProblemType::OrderNotReady => "orderNotReady",
            ProblemType::RateLimited => "rateLimited",
            ProblemType::RejectedIdentifier => "rejectedIdentifier",
            ProblemType::ServerInternal => "serverInternal",
            ProblemType::Tls => "tls",
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::UnsupportedContact => "unsupportedContact",
            ProblemType::UnsupportedIdentifier => "unsupportedIdentifier",
        }
    }

    /// The URN of the type.
    pub fn urn(self) -> String {
        format!("urn:ietf:params:acme:error:{}", self.name())
    }

    /// The HTTP status the type is answered with.
    pub fn status(self) -> u16 {
        match self {
            ProblemType::Unauthorized => 403,
            ProblemType::AccountDoesNotExist => 400,
            ProblemType::OrderNotReady => 403,
            ProblemType::RateLimited => 429,
            ProblemType::ServerInternal => 500,
            _ => 400,
        }
    }
}

/// An ACME error: a type and a human-readable detail.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {detail}", kind.name())]
pub struct AcmeError {
    pub kind: ProblemType,
    pub detail: String,
    /// Extra members of the problem document (e.g. `algorithms` for badSignatureAlgorithm).
    pub extra: Option<Value>,
    /// An HTTP status other than the type's usual one (404 for an unknown resource, 415).
    pub status: Option<u16>,
}

impl AcmeError {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> AcmeError {
        AcmeError {
            kind,
            detail: detail.into(),
            extra: None,
            status: None,
        }
    }

    /// The same error answered with another HTTP status.
    pub fn with_status(mut self, status: u16) -> AcmeError {
        self.status = Some(status);
        self
    }

    /// The HTTP status of the answer.
    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.kind.status())
    }

    pub fn malformed(detail: impl Into<String>) -> AcmeError {
        AcmeError::new(ProblemType::Malformed, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> AcmeError {
        AcmeError::new(ProblemType::Unauthorized, detail)
    }

    pub fn internal() -> AcmeError {
        AcmeError::new(
            ProblemType::ServerInternal,
            "the server could not complete the request; the error is in its log",
        )
    }

    /// The problem document (RFC 7807 with an ACME type).
    pub fn document(&self) -> Value {
        let mut v = json!({
            "type": self.kind.urn(),
            "detail": self.detail,
            "status": self.http_status(),
        });
        if let (Some(Value::Object(extra)), Value::Object(m)) = (&self.extra, &mut v) {
            for (k, x) in extra {
                m.insert(k.clone(), x.clone());
            }
        }
        v
    }
}

impl From<crate::store::StoreError> for AcmeError {
    fn from(e: crate::store::StoreError) -> AcmeError {
        tracing::error!("acme: store: {e}");
        AcmeError::internal()
    }
}
