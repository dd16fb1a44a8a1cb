//! Every integration test that runs `hallmark` as users do (child processes, servers on
//! 127.0.0.1, the real clients and verifiers) in one binary: one link of the crate instead of
//! one per file. Three kinds stay binaries of their own because they load a PKCS#11 module into
//! the test process, which reads its configuration once per process: `engine` (the library on a
//! SoftHSM2 token), `pkcs11_keystore` (the key store) and `pkcs11_module` (hallmark's module
//! through cryptoki); `crash` is built only with `--features crash-test`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod acme;
mod api;
mod ca_revocation;
mod cab;
mod cancel;
mod cli_output;
mod client_binary;
mod client_context;
mod console;
mod error_statuses;
mod factory;
mod fuzz_regressions;
mod http_serve;
mod issuance_interop;
mod keys_api;
mod logs;
mod make_run;
mod msi;
mod oidc;
mod openapi;
mod openpgp;
mod readme;
mod refusals;
mod revocation;
mod schemathesis;
mod signing;
mod signing_firmware;
mod signing_formats;
mod signing_policy;
mod store_contract;
mod strict_der;
mod tsa;
mod verify;
mod webhooks;
