//! Factory stations and the device certificates they obtained.

use super::*;

/// A station as stored.
#[derive(Debug, Clone)]
pub struct StationRecord {
    pub name: String,
    pub publisher: String,
    pub profile: String,
    pub serial_pattern: String,
    pub quota: i64,
    pub cert_serial: Option<String>,
    pub disabled: bool,
    pub reprovision: bool,
    pub created_at: i64,
}

/// The live certificate of a device.
#[derive(Debug, Clone)]
pub struct DeviceCertificate {
    pub serial: String,
    pub spki_sha256: String,
    pub status: String,
    pub cert_der: Option<Vec<u8>>,
    pub ca: String,
}

/// Reads of stations and device certificates.
pub trait FactoryRead: Send + Sync {
    fn get_station(&self, name: &str) -> Result<Option<StationRecord>, StoreError>;

    fn station_by_certificate(&self, serial: &str) -> Result<Option<StationRecord>, StoreError>;

    fn list_stations(&self) -> Result<Vec<StationRecord>, StoreError>;

    /// Live certificates a station obtained (recorded intents included: they count against the
    /// quota). A counter kept exact by triggers (see the migrations), so this is one row read
    /// however many devices the station has provisioned.
    /// The certificate records station `name` obtained (any status), in serial order.
    fn certificates_of_station(&self, name: &str) -> Result<Vec<CertRecord>, StoreError>;

    fn station_issued_count(&self, name: &str) -> Result<i64, StoreError>;

    /// The live certificate of a device under a profile, if any.
    fn device_certificate(
        &self,
        profile: &str,
        device_serial: &str,
    ) -> Result<Option<DeviceCertificate>, StoreError>;

    /// [`FactoryRead::device_certificate`] for many devices at once, in one read transaction on one
    /// read connection (a provisioning chunk's lookups). Answers come in the order asked.
    fn device_certificates(
        &self,
        profile: &str,
        device_serials: &[&str],
    ) -> Result<Vec<Option<DeviceCertificate>>, StoreError>;
}

/// Writes of stations and device certificates; each records its audit event
/// in the same transaction.
pub trait FactoryWrite: Send + Sync {
    fn insert_station(&self, s: &StationRecord, actor: &str) -> Result<(), StoreError>;

    /// Disables a station; returns false if it was already disabled.
    fn disable_station(&self, name: &str, actor: &str) -> Result<bool, StoreError>;

    /// Frees a device for a new certificate (reprovisioning): the old certificate keeps its
    /// record but no longer counts as the device's live one.
    fn release_device(&self, serial: &str, actor: &str) -> Result<(), StoreError>;
}
