//! The factory line: stations, and batch provisioning of device certificates.
//!
//! A station is a TLS client certificate (from the `station` profile, under `tls-ca`) plus the
//! rules it works under: one device profile, a device-serial pattern, a quota and optionally the
//! right to reprovision. A batch is answered line by line, in order; one bad line never fails
//! the others. Provisioning is idempotent: a device that already holds a certificate for the
//! same public key gets that certificate again, so a station can resend a whole file after a
//! crash and nothing is issued twice (the database also holds at most one live certificate per
//! device: a partial unique index).

mod batch;
pub(crate) mod error;
mod stations;

pub use error::ProvisionError;
pub use stations::StationCredentials;

/// The factory line's service: stations and batch provisioning. It holds the store, the
/// profiles, the clock, issuance (certificates in volume), revocation (a disabled station's
/// certificate) and when this process opened the store (intents older than that were left by a
/// stop).
pub struct Provisioning {
    store: Arc<dyn Store>,
    profiles: Arc<Profiles>,
    clock: SharedClock,
    issuance: Arc<Issuance>,
    revocation: Arc<RevocationService>,
    started_at: i64,
}

impl Provisioning {
    pub fn new(
        store: Arc<dyn Store>,
        profiles: Arc<Profiles>,
        clock: SharedClock,
        issuance: Arc<Issuance>,
        revocation: Arc<RevocationService>,
        started_at: i64,
    ) -> Provisioning {
        Provisioning {
            store,
            profiles,
            clock,
            issuance,
            revocation,
            started_at,
        }
    }
}

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::issuance::{ChunkInput, Issuance, Issued};
use crate::policy::auth::AuthError;
use crate::policy::{self, IssueRequest, NameAttr};
use crate::profile::Profiles;
use crate::revocation::RevocationService;
use crate::store::Store;
use crate::store::{Publisher, StationRecord, StoreError};
use serde::Deserialize;
use sha2::Digest;
use std::collections::HashMap;
use x509_parser::prelude::FromDer;

/// One answer line.
#[derive(Debug, Clone)]
pub enum ProvisionAnswer {
    Issued {
        device_serial: String,
        serial: String,
        cert_der: Vec<u8>,
    },
    Refused {
        device_serial: Option<String>,
        kind: String,
        detail: String,
    },
}

impl ProvisionAnswer {
    fn refused(device: Option<&str>, kind: &str, detail: impl Into<String>) -> Self {
        ProvisionAnswer::Refused {
            device_serial: device.map(str::to_string),
            kind: kind.to_string(),
            detail: detail.into(),
        }
    }

    /// A line that failed: the station reads what [`Error::public_detail`] lets a client read
    /// (a fault of the database or the key store is a generic line; the log keeps the detail).
    fn failed(device: Option<&str>, e: &Error) -> Self {
        ProvisionAnswer::refused(device, e.public_kind(), e.public_detail())
    }

    /// The NDJSON line (without newline).
    pub fn to_json(&self) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            ProvisionAnswer::Issued {
                device_serial,
                serial,
                cert_der,
            } => serde_json::json!({
                "device_serial": device_serial,
                "status": "issued",
                "serial": serial,
                "certificate": b64.encode(cert_der),
            }),
            ProvisionAnswer::Refused {
                device_serial,
                kind,
                detail,
            } => serde_json::json!({
                "device_serial": device_serial,
                "status": "refused",
                "error": {"type": crate::error::problem_type(kind), "detail": detail},
            }),
        }
        .to_string()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    device_serial: String,
    csr: String,
}

/// One batch line's syntax: `{"device_serial": ..., "csr": BASE64}` → the device serial and the
/// CSR text as sent, or why the line is not such an object.
pub fn parse_batch_line(raw: &str) -> std::result::Result<(String, String), String> {
    serde_json::from_str::<Line>(raw)
        .map(|l| (l.device_serial, l.csr))
        .map_err(|e| e.to_string())
}

/// A chunk of batch lines for [`Hallmark::provision_stream`].
pub enum Lines {
    Chunk(Vec<String>),
    /// Nothing arrived yet (only when asked not to wait).
    NotYet,
    End,
}
