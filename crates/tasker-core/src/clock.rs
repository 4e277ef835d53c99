//! Time for the engine, injectable so that tests control it instead of sleeping.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

/// Millisecond-precision timestamps: every store keeps milliseconds, so the engine works in them too.
pub type Timestamp = DateTime<Utc>;

/// Truncates to whole milliseconds, the precision every store keeps.
pub fn to_millis_precision(t: Timestamp) -> Timestamp {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        to_millis_precision(Utc::now())
    }
}

/// A clock that moves only when told to; for tests of timing-dependent behaviour.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(to_millis_precision(start))),
        }
    }

    /// A clock stopped at 2030-01-01T00:00:00Z.
    pub fn fixed() -> Self {
        Self::new(DateTime::from_timestamp(1_893_456_000, 0).expect("valid timestamp"))
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        let mut n = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *n += TimeDelta::milliseconds(ms);
    }

    /// Sets the clock.
    pub fn set(&self, t: Timestamp) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to_millis_precision(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}
