//! The retry policy and the one backoff function of the engine.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the delay grows between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// `base_ms * 2^(attempt-1)`.
    #[default]
    Exponential,
    /// `base_ms * attempt`.
    Linear,
    /// No delay: a failed step is ready again at once.
    None,
}

/// The retry policy of one step, after template defaults are applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Counts every attempt, including the first. 1..=100.
    pub max_attempts: u32,
    /// `false` means the step runs once, whatever `max_attempts` says.
    pub retryable: bool,
    pub backoff: BackoffKind,
    pub base_ms: u64,
    pub max_ms: u64,
    /// Fraction of the delay added or removed at random, 0.0..=1.0.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            retryable: true,
            backoff: BackoffKind::Exponential,
            base_ms: 1000,
            max_ms: 60_000,
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The number of attempts this policy allows in one budget: 1 when not retryable.
    pub fn attempt_budget(&self) -> u32 {
        if self.retryable {
            self.max_attempts.max(1)
        } else {
            1
        }
    }

    /// The delay before the attempt that follows failed attempt `attempt` (1-based).
    ///
    /// `unit` is a uniform sample in `[0, 1)`; it maps to a jitter factor in `[-jitter, +jitter]`, so the
    /// function stays pure and testable. A handler's `retry_after` replaces the computed delay, and both are
    /// capped at `max_ms`.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let cap = self.max_ms;
        if let Some(after) = retry_after {
            return Duration::from_millis((after.as_millis().min(u128::from(cap))) as u64);
        }
        let attempt = attempt.max(1);
        let raw: u64 = match self.backoff {
            BackoffKind::None => 0,
            BackoffKind::Linear => self.base_ms.saturating_mul(u64::from(attempt)),
            BackoffKind::Exponential => {
                let shift = (attempt - 1).min(63);
                self.base_ms.saturating_mul(1u64.checked_shl(shift).unwrap_or(u64::MAX))
            }
        };
        let capped = raw.min(cap) as f64;
        let factor = 1.0 + self.jitter.clamp(0.0, 1.0) * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let ms = (capped * factor).round().clamp(0.0, cap as f64);
        Duration::from_millis(ms as u64)
    }
}

/// Whether another attempt may follow attempt number `attempts_used` (absolute) when the budget ends at
/// `max_attempts` (absolute). The first attempt is always allowed because a fresh step has used none.
pub fn has_attempts_left(attempts_used: i64, max_attempts: i64) -> bool {
    attempts_used < max_attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(kind: BackoffKind, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            retryable: true,
            backoff: kind,
            base_ms: 1000,
            max_ms: 10_000,
            jitter,
        }
    }

    #[test]
    fn first_attempt_is_always_allowed() {
        assert!(has_attempts_left(0, 1));
        let p = RetryPolicy {
            max_attempts: 1,
            retryable: false,
            ..RetryPolicy::default()
        };
        assert!(has_attempts_left(0, i64::from(p.attempt_budget())));
    }

    #[test]
    fn not_retryable_runs_once() {
        let p = RetryPolicy {
            max_attempts: 7,
            retryable: false,
            ..RetryPolicy::default()
        };
        assert_eq!(p.attempt_budget(), 1);
        assert!(!has_attempts_left(1, i64::from(p.attempt_budget())));
    }

    #[test]
    fn max_attempts_counts_the_first_attempt() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let budget = i64::from(p.attempt_budget());
        assert!(has_attempts_left(1, budget));
        assert!(has_attempts_left(2, budget));
        assert!(!has_attempts_left(3, budget));
    }

    #[test]
    fn exponential_doubles_and_the_cap_holds() {
        let p = policy(BackoffKind::Exponential, 0.0);
        let ms: Vec<u64> = (1..=6).map(|a| p.backoff(a, None, 0.5).as_millis() as u64).collect();
        assert_eq!(ms, vec![1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(
            p.backoff(200, None, 0.5).as_millis(),
            10_000,
            "huge attempts do not overflow"
        );
    }

    #[test]
    fn linear_and_none() {
        let p = policy(BackoffKind::Linear, 0.0);
        assert_eq!(p.backoff(3, None, 0.5).as_millis(), 3000);
        assert_eq!(p.backoff(30, None, 0.5).as_millis(), 10_000);
        let p = policy(BackoffKind::None, 0.5);
        assert_eq!(p.backoff(3, None, 0.99).as_millis(), 0);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = policy(BackoffKind::Exponential, 0.1);
        assert_eq!(p.backoff(1, None, 0.0).as_millis(), 900);
        assert_eq!(p.backoff(1, None, 0.5).as_millis(), 1000);
        assert_eq!(p.backoff(1, None, 1.0).as_millis(), 1100);
        for i in 0..=100 {
            let d = p.backoff(2, None, f64::from(i) / 100.0).as_millis();
            assert!((1800..=2200).contains(&d), "{d}");
        }
        // Jitter never pushes past the cap.
        assert_eq!(p.backoff(10, None, 1.0).as_millis(), 10_000);
    }

    #[test]
    fn retry_after_is_capped() {
        let p = policy(BackoffKind::Exponential, 0.1);
        assert_eq!(p.backoff(1, Some(Duration::from_millis(250)), 0.9).as_millis(), 250);
        assert_eq!(p.backoff(1, Some(Duration::from_secs(3600)), 0.9).as_millis(), 10_000);
    }
}
