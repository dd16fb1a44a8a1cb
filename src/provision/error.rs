//! What the factory line refuses when a station is set up, by kind (each the caller's mistake:
//! a 400). Refusals of single batch lines are answers in the batch, not errors.

/// A refusal of the factory line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// A profile that takes no device serial, named for a station.
    #[error("profile '{0}' is not a device profile (it takes no device serial)")]
    NotDeviceProfile(String),
    /// A device-serial pattern that is not a regular expression.
    #[error("--serial-pattern '{0}': {1}")]
    BadSerialPattern(String, String),
    /// A quota below one.
    #[error("--quota must be at least 1")]
    BadQuota,
    /// No `--publisher` while several (or no) publishers may use the profile.
    #[error("give --publisher: {count} publishers may use profile '{profile}'")]
    PublisherAmbiguous { profile: String, count: usize },
}
