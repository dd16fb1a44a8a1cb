//! The client side of hallmark: what the `hallmark` command line, the PKCS#11 module and a CI
//! job that only signs need to talk to a hallmark server — the client context (server URLs,
//! pinned CA, token source), the HTTP client, outbound TLS, DER reading, the key vocabulary and
//! the clock; with the `cli` feature (the default) also the signed formats the client
//! assembles, `verify`, the SPKI and OCSP-request helpers, and the client-side commands that the
//! `hallmark` binary and the `hallmark-client` binary both run. It names nothing of the server:
//! no store, no key store, no HTTP server, no templates. The PKCS#11 module builds it without
//! `cli`.

pub mod algorithm;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod clock;
pub mod context;
pub mod der;
pub mod envvar;
#[cfg(feature = "cli")]
pub mod formats;
pub mod jwt;
#[cfg(feature = "cli")]
pub mod ocsp;
pub mod outbound;
pub mod pemfmt;
#[cfg(feature = "cli")]
pub mod spki;
#[cfg(feature = "cli")]
pub mod verify;
