//! Time, injected. Every decision that depends on the time (validity, expiry of requests and
//! sessions, CRL and OCSP windows, leases, records' timestamps) asks a [`Clock`] it was given,
//! never the system directly, so a test can hold time still or move it: the lifecycle of keys
//! and CAs is about nothing else. This file is the one place that reads the system clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::OffsetDateTime;

/// Where the time comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, to the nanosecond the source gives.
    fn now_utc(&self) -> OffsetDateTime;

    /// Now, in Unix seconds (what records keep).
    fn now(&self) -> i64 {
        self.now_utc().unix_timestamp()
    }

    /// Now, in Unix milliseconds.
    fn now_millis(&self) -> i64 {
        i64::try_from(self.now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// A clock shared by the services and the store that were wired with it.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clock: what a running hallmark uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The system's clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until told to move (tests, and replaying a scenario at a given
/// time). Its resolution is a nanosecond.
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicI64,
}

impl ManualClock {
    /// A clock showing `unix` seconds.
    pub fn at(unix: i64) -> ManualClock {
        ManualClock {
            nanos: AtomicI64::new(unix.saturating_mul(1_000_000_000)),
        }
    }

    /// Shows `unix` seconds from now on.
    pub fn set(&self, unix: i64) {
        self.nanos
            .store(unix.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }

    /// Moves the clock on by `secs` seconds (back, when negative).
    pub fn advance(&self, secs: i64) {
        self.nanos
            .fetch_add(secs.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> OffsetDateTime {
        let n = i128::from(self.nanos.load(Ordering::SeqCst));
        OffsetDateTime::from_unix_timestamp_nanos(n).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_and_moves_when_told() {
        let c = ManualClock::at(1_700_000_000);
        assert_eq!(c.now(), 1_700_000_000);
        assert_eq!(c.now(), 1_700_000_000);
        c.advance(86_400);
        assert_eq!(c.now(), 1_700_086_400);
        assert_eq!(c.now_millis(), 1_700_086_400_000);
        c.set(5);
        assert_eq!(c.now_utc().unix_timestamp(), 5);
    }

    #[test]
    fn the_system_clock_is_near_the_system_time() {
        let t = SystemClock.now();
        assert!(t > 1_700_000_000, "{t}");
    }
}
