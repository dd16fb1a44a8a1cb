//! The ACME server (RFC 8555) apart from HTTP: the service ([`Acme`]: accounts, orders,
//! authorizations, challenges, finalize, revocation) and its protocol pieces (problem types, JWS
//! verification, external account binding, identifiers, challenge validation).
//!
//! The HTTP edge (`http::acme`) verifies the JWS, calls one service function and renders JSON;
//! certificates come only from the engine's one issuance path (policy, lint, record), with the
//! account's publisher.

pub mod dns;
pub mod eab;
mod finalize;
pub mod identifier;
pub mod jws;
pub mod names;
mod orders;
pub mod problem;
mod service;
pub mod validate;

pub use finalize::Revoker;
pub use problem::{AcmeError, ProblemType};
pub use service::{contacts, Acme, KeyChange, NewAccount};

/// Random URL-safe text with `bytes` bytes of entropy (ids, tokens, nonces).
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// base64url without padding, as JOSE writes it.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding (JOSE); refuses padding and other alphabets.
pub fn unb64(s: &str) -> Result<Vec<u8>, AcmeError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| AcmeError::malformed("a value is not base64url without padding"))
}
