//! What the engine refuses in its own operations (the CA hierarchy, publisher keys, `init`),
//! by kind; each is the caller's mistake, answered 400 with its detail (`Error::class`).

/// A refusal of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A CA purpose hallmark does not have.
    #[error("unknown CA purpose '{0}' (code-signing, timestamping, devices or tls)")]
    UnknownPurpose(String),
    /// An option or value refused (its own message says which and why).
    #[error("{0}")]
    Argument(String),
    /// A certificate given to import that does not parse.
    #[error("certificate does not parse: {0}")]
    BadCertificate(String),
    /// A certificate given to import that is for another key (the message names which).
    #[error("the certificate is not for {0} (public keys differ)")]
    NotForKey(String),
    /// A certificate given as a CA's that is not a CA certificate.
    #[error("the certificate is not a CA certificate (basicConstraints CA:TRUE)")]
    NotACaCertificate,
    /// `init` in a directory that already holds a CA (or an unfinished one).
    #[error("{0}")]
    InitRefused(String),
}
