//! What the revocation service refuses, by kind (each the caller's mistake: a 400).

/// A refusal of the revocation service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// Text that is not a certificate serial.
    #[error("'{0}' is not a certificate serial (hex, as `hallmark cert list` prints it)")]
    BadSerial(String),
    /// An invalidity date after now (RFC 5280: when the key is known or suspected compromised).
    #[error("the invalidity date is in the future")]
    FutureInvalidityDate,
}
