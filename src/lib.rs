//! hallmark: a private certificate authority and signing service for code signing and IoT
//! manufacturing. The flow follows the folders: `http`/`cli` (edges) → `policy` (the RA) →
//! `issuer` (the CA) → `store` (records); keys live behind `keys`.
#![forbid(unsafe_code)]

pub mod acme;
pub mod cli;
pub mod config;
pub mod console;
pub mod engine;
pub mod error;
pub mod http;
pub mod init;
pub mod issuance;
pub mod issuer;
pub mod keyring;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod oidc;
pub mod policy;
pub mod profile;
pub mod provision;
pub mod requests;
pub mod revocation;
pub mod signing;
pub mod store;
pub mod timespec;
pub mod tsa;
pub mod webhooks;

/// The client side, shared with the PKCS#11 module (the `hallmark-client` crate): the clock,
/// DER plumbing, PEM output, the signed formats and `verify` are the same modules on both sides.
pub use hallmark_client::{clock, der, envvar, formats, outbound, pemfmt, verify};
