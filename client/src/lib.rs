//! The client side of hallmark: what the `hallmark` command line, the PKCS#11 module and a CI
//! job that only signs need to talk to a hallmark server — the client context (server URLs,
//! pinned CA, token source), the HTTP client, outbound TLS, and DER reading. It names nothing
//! of the server: no store, no key store, no HTTP server, no templates.

pub mod algorithm;
pub mod client;
pub mod clock;
pub mod context;
pub mod der;
pub mod envvar;
pub mod formats;
pub mod jwt;
pub mod ocsp;
pub mod outbound;
pub mod pemfmt;
pub mod spki;
pub mod verify;
