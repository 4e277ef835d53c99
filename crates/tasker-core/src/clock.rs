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

    /// Whether this clock reads a machine's wall clock. The engine corrects such a clock by the store's own
    /// (the PostgreSQL server's), so that the leases, retry times and timestamps of every process sharing
    /// a store follow one clock however far the machines' clocks drift apart. A clock that moves only when
    /// told (tests) is the engine's time as it is.
    fn is_wall_clock(&self) -> bool {
        false
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // web_time is std's SystemTime on native targets and the JS clock in a browser, where std's (and so
        // chrono's `Utc::now`) panics.
        use web_time::{SystemTime, UNIX_EPOCH};
        let ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        };
        DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }
    fn is_wall_clock(&self) -> bool {
        true
    }
}

/// The wall clock of a machine whose clock is off by a fixed amount: for tests of clock skew. The engine
/// corrects it by the store's clock as it does the [`SystemClock`].
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock {
    offset: TimeDelta,
}

impl SkewedClock {
    /// A wall clock `offset_ms` milliseconds ahead (negative: behind).
    pub fn new(offset_ms: i64) -> Self {
        SkewedClock {
            offset: TimeDelta::milliseconds(offset_ms),
        }
    }
}

impl Clock for SkewedClock {
    fn now(&self) -> Timestamp {
        SystemClock.now() + self.offset
    }

    fn is_wall_clock(&self) -> bool {
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_reads_the_wall_clock_in_whole_milliseconds() {
        let before = Utc::now();
        let now = SystemClock.now();
        let after = Utc::now();
        assert!(
            to_millis_precision(before) <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
        assert_eq!(now.timestamp_subsec_nanos() % 1_000_000, 0);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::fixed();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance_ms(1500);
        assert_eq!((clock.now() - t0).num_milliseconds(), 1500);
        clock.set(t0);
        assert_eq!(clock.now(), t0);
    }
}
