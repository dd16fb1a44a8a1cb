//! What the request and token services refuse, by kind (each the caller's mistake: a 400).

/// A refusal of the request or token service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A request status filter no request can have (the message lists those that exist).
    #[error("unknown status '{0}' ({1})")]
    UnknownStatus(String, String),
    /// A token for nobody: neither a publisher's nor an officer's.
    #[error("a token needs --publisher, or --officer")]
    TokenWithoutOwner,
    /// A token name outside the allowed characters or length.
    #[error("token name '{0}': use 1-64 of A-Z a-z 0-9 - _ . @")]
    BadTokenName(String),
}
