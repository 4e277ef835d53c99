//! Analytics computed from stored data: counts, rates and exact percentiles. Nothing is estimated, and the
//! stores compute them where the data is: no call loads the finished history into the process.
//!
//! # Percentiles
//!
//! Every store uses one rule, nearest rank: the p-th percentile of n durations is the value at 1-based rank
//! `ceil(p/100 * n)` of the durations sorted ascending (rank 1 when that is 0). It is always one of the
//! durations, never an interpolation, and it is what PostgreSQL's `percentile_disc(p/100)` returns. For the
//! durations 10, 20, 30, 40 the p50 is 20 (rank 2) and the p95 is 40 (rank 4). [`nearest_rank`] gives the
//! rank; PostgreSQL computes the value with `percentile_disc`, SQLite by numbering the sorted durations in the
//! database and returning the ones at those ranks, and the memory store by sorting in memory. Durations are
//! whole milliseconds: a step's runs from the claim of its final attempt to its end, a task's from its
//! creation to its end.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{AnalyticsFilter, FinishedSummary, StepTiming, TaskTiming};
use crate::state::{StepState, TaskState};

/// Tasks and steps by state, with retrying and exhausted counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCounts {
    /// Every task state, with zero for states no task is in.
    pub tasks: BTreeMap<String, i64>,
    /// Every step state, with zero for states no step is in.
    pub steps: BTreeMap<String, i64>,
    pub total_tasks: i64,
    pub total_steps: i64,
    /// Steps waiting for a retry.
    pub retrying: i64,
    /// Steps in `error` that used their whole attempt budget.
    pub exhausted: i64,
}

/// Summary statistics of durations in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationStats {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: i64,
    pub p95_ms: i64,
    pub max_ms: i64,
}

/// The 1-based nearest rank of the `percent`-th percentile among `n` sorted values: `ceil(percent/100 * n)`,
/// at least 1. Integer arithmetic, so that no store's answer depends on rounding.
pub fn nearest_rank(percent: u32, n: i64) -> i64 {
    let rank = (i128::from(percent) * i128::from(n) + 99) / 100;
    i64::try_from(rank).unwrap_or(i64::MAX).max(1)
}

/// The summary of finished work from its counts and the durations of the completed part (any order); the
/// memory store's way, and the definition the SQL stores' queries are checked against.
pub fn finished_summary(completed: i64, failed: i64, mut durations: Vec<i64>) -> FinishedSummary {
    durations.sort_unstable();
    let n = durations.len() as i64;
    let at = |percent| {
        if n == 0 {
            0
        } else {
            durations[(nearest_rank(percent, n) - 1) as usize]
        }
    };
    FinishedSummary {
        completed,
        failed,
        durations: n,
        sum_ms: durations.iter().sum(),
        p50_ms: at(50),
        p95_ms: at(95),
        max_ms: durations.last().copied().unwrap_or(0),
    }
}

impl DurationStats {
    /// Stats of `values` (any order); all zero when empty.
    pub fn of(values: Vec<i64>) -> DurationStats {
        DurationStats::from_summary(&finished_summary(0, 0, values))
    }

    /// The duration part of a store's summary; all zero when it holds no durations.
    pub fn from_summary(s: &FinishedSummary) -> DurationStats {
        if s.durations == 0 {
            return DurationStats::default();
        }
        DurationStats {
            count: s.durations as u64,
            mean_ms: s.sum_ms as f64 / s.durations as f64,
            p50_ms: s.p50_ms,
            p95_ms: s.p95_ms,
            max_ms: s.max_ms,
        }
    }
}

/// Throughput, rates and durations of work finished in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsMetrics {
    pub since: Timestamp,
    pub until: Timestamp,
    pub window_seconds: f64,
    pub tasks_completed: i64,
    pub tasks_failed: i64,
    /// Completed ÷ (completed + failed) among tasks finished in the window; 0 when none finished.
    pub task_completion_rate: f64,
    pub task_error_rate: f64,
    /// Tasks completed per second of the window.
    pub task_throughput_per_second: f64,
    pub steps_completed: i64,
    pub steps_failed: i64,
    /// Attempts that failed and were scheduled to run again (handler failures and expired leases).
    pub step_retries: i64,
    /// Steps completed per second of the window.
    pub step_throughput_per_second: f64,
    /// From task creation to its terminal transition, for tasks completed in the window.
    pub task_duration: DurationStats,
    /// From the claim of the final attempt to completion, for steps completed in the window.
    pub step_duration: DurationStats,
}

/// A finished step and how long its final attempt took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowStep {
    pub step_id: Uuid,
    pub task_id: Uuid,
    pub namespace: String,
    pub task_name: String,
    pub version: String,
    pub step_name: String,
    pub state: StepState,
    pub attempts: i64,
    pub duration_ms: i64,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
}

/// A finished task and how long it took from creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowTask {
    pub task_id: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub state: TaskState,
    pub steps_total: i64,
    pub duration_ms: i64,
    pub created_at: Timestamp,
    pub finished_at: Timestamp,
}

fn step_ms(s: &StepTiming) -> Option<i64> {
    s.started_at.map(|st| (s.finished_at - st).num_milliseconds())
}

fn task_ms(t: &TaskTiming) -> i64 {
    (t.finished_at - t.created_at).num_milliseconds()
}

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl Engine {
    /// Tasks and steps by state, straight from the store.
    pub async fn health_counts(&self) -> Result<HealthCounts> {
        let c = self.store_for_analytics()?.state_counts().await?;
        let tasks: BTreeMap<String, i64> = TaskState::ALL
            .iter()
            .map(|s| (s.to_string(), c.tasks.get(s).copied().unwrap_or(0)))
            .collect();
        let steps: BTreeMap<String, i64> = StepState::ALL
            .iter()
            .map(|s| (s.to_string(), c.steps.get(s).copied().unwrap_or(0)))
            .collect();
        Ok(HealthCounts {
            total_tasks: tasks.values().sum(),
            total_steps: steps.values().sum(),
            retrying: c.steps.get(&StepState::WaitingForRetry).copied().unwrap_or(0),
            exhausted: c.steps_exhausted,
            tasks,
            steps,
        })
    }

    /// Metrics of work finished at or after `since`, up to now. Counts and percentiles come from the store in
    /// a fixed number of queries, however much history it holds.
    pub async fn analytics_metrics(&self, since: Timestamp) -> Result<AnalyticsMetrics> {
        let store = self.store_for_analytics()?;
        let filter = AnalyticsFilter {
            since: Some(since),
            ..Default::default()
        };
        let steps = store.step_finished_summary(&filter).await?;
        let tasks = store.task_finished_summary(&filter).await?;
        let events = store.step_event_counts(since).await?;
        let until = self.now();
        let window_seconds = ((until - since).num_milliseconds().max(0) as f64) / 1000.0;
        let step_retries = events
            .iter()
            .filter(|(e, _)| e == "fail_retryable" || e == "lease_expired")
            .map(|(_, n)| n)
            .sum();
        let per_second = |n: i64| {
            if window_seconds > 0.0 {
                n as f64 / window_seconds
            } else {
                0.0
            }
        };
        Ok(AnalyticsMetrics {
            since,
            until,
            window_seconds,
            tasks_completed: tasks.completed,
            tasks_failed: tasks.failed,
            task_completion_rate: ratio(tasks.completed, tasks.completed + tasks.failed),
            task_error_rate: ratio(tasks.failed, tasks.completed + tasks.failed),
            task_throughput_per_second: per_second(tasks.completed),
            steps_completed: steps.completed,
            steps_failed: steps.failed,
            step_retries,
            step_throughput_per_second: per_second(steps.completed),
            task_duration: DurationStats::from_summary(&tasks),
            step_duration: DurationStats::from_summary(&steps),
        })
    }

    /// The `limit` slowest finished steps (with a start time), longest first, ties by step id; the store sorts
    /// and limits, so this reads `limit` rows whatever the history holds.
    pub async fn slowest_steps(&self, filter: &AnalyticsFilter, limit: usize) -> Result<Vec<SlowStep>> {
        let store = self.store_for_analytics()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(store
            .step_slowest(filter, limit_i64(limit))
            .await?
            .into_iter()
            .filter_map(|s| {
                let duration_ms = step_ms(&s)?;
                Some(SlowStep {
                    step_id: s.step_id,
                    task_id: s.task_id,
                    namespace: s.namespace,
                    task_name: s.task_name,
                    version: s.version,
                    step_name: s.step_name,
                    state: s.state,
                    attempts: s.attempts,
                    duration_ms,
                    started_at: s.started_at,
                    finished_at: s.finished_at,
                })
            })
            .collect())
    }

    /// The `limit` slowest finished tasks, longest first, ties by task id; sorted and limited by the store.
    pub async fn slowest_tasks(&self, filter: &AnalyticsFilter, limit: usize) -> Result<Vec<SlowTask>> {
        let store = self.store_for_analytics()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(store
            .task_slowest(filter, limit_i64(limit))
            .await?
            .into_iter()
            .map(|t| SlowTask {
                duration_ms: task_ms(&t),
                task_id: t.task_id,
                namespace: t.namespace,
                name: t.name,
                version: t.version,
                state: t.state,
                steps_total: t.steps_total,
                created_at: t.created_at,
                finished_at: t.finished_at,
            })
            .collect())
    }
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = DurationStats::of((1..=100).rev().collect());
        assert_eq!((s.count, s.p50_ms, s.p95_ms, s.max_ms), (100, 50, 95, 100));
        assert_eq!(s.mean_ms, 50.5);
        let s = DurationStats::of(vec![7]);
        assert_eq!((s.p50_ms, s.p95_ms), (7, 7));
        let s = DurationStats::of(vec![10, 20, 30, 40]);
        assert_eq!((s.p50_ms, s.p95_ms), (20, 40));
        assert_eq!(DurationStats::of(vec![]), DurationStats::default());
    }

    #[test]
    fn nearest_rank_is_exact_integer_arithmetic() {
        assert_eq!(nearest_rank(50, 1), 1);
        assert_eq!(nearest_rank(95, 1), 1);
        assert_eq!(nearest_rank(50, 4), 2);
        assert_eq!(nearest_rank(95, 20), 19);
        assert_eq!(nearest_rank(95, 21), 20);
        assert_eq!(nearest_rank(95, 1_000_000), 950_000);
        assert_eq!(nearest_rank(50, 0), 1);
        // Agrees with percentile_disc's ceil(fraction * n) wherever f64 is exact enough to say.
        for n in 1..5_000i64 {
            for p in [50u32, 95] {
                assert_eq!(
                    nearest_rank(p, n),
                    ((f64::from(p) / 100.0) * n as f64).ceil() as i64,
                    "p{p} of {n}"
                );
            }
        }
    }
}
