//! What the signing service refuses, by kind. Each variant is the client's fault (a 400 with
//! its own detail) except [`SigningError::Internal`], the server's (a 500 whose detail goes to
//! the log only); the one mapping to an answer is `Error::class` in `crate::error`.

/// A refusal of the signing service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// A format or digest algorithm it does not take (SHA-1 among them).
    #[error(transparent)]
    Name(#[from] crate::formats::names::NameError),
    /// A digest that is not hex, or not as long as its algorithm's.
    #[error("{0}")]
    BadDigest(String),
    /// Content to sign (Authenticode's SpcIndirectDataContent) that is refused: its type, its
    /// encoding, its size, or a digest that is not its own.
    #[error("{0}")]
    BadContent(String),
    /// A format with an option it cannot have (content outside CMS, a time-stamp on COSE, a
    /// digest a COSE algorithm does not use).
    #[error("{0}")]
    Unsupported(String),
    /// Metadata that is not a JSON object, too large, or uses a reserved key.
    #[error("{0}")]
    BadMetadata(String),
    /// The server's fault: a signature the key store made that is not in the form asked, a
    /// scheme the service does not verify.
    #[error("signing failed inside the server: {0}")]
    Internal(String),
}
