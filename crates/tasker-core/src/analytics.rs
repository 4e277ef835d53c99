//! Analytics computed from stored data: counts, rates and exact percentiles. Nothing is estimated.
//!
//! Percentiles use the nearest-rank method: the p-th percentile of n sorted values is the value at rank
//! `ceil(p/100 * n)` (1-based). Durations are whole milliseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{AnalyticsFilter, StepTiming, TaskTiming};
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

impl DurationStats {
    /// Stats of `values` (any order); all zero when empty.
    pub fn of(mut values: Vec<i64>) -> DurationStats {
        if values.is_empty() {
            return DurationStats::default();
        }
        values.sort_unstable();
        let n = values.len();
        let rank = |p: f64| values[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        DurationStats {
            count: n as u64,
            mean_ms: values.iter().map(|v| *v as f64).sum::<f64>() / n as f64,
            p50_ms: rank(50.0),
            p95_ms: rank(95.0),
            max_ms: values[n - 1],
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

    /// Metrics of work finished at or after `since`, up to now.
    pub async fn analytics_metrics(&self, since: Timestamp) -> Result<AnalyticsMetrics> {
        let store = self.store_for_analytics()?;
        let filter = AnalyticsFilter {
            since: Some(since),
            ..Default::default()
        };
        let steps = store.step_timings(&filter).await?;
        let tasks = store.task_timings(&filter).await?;
        let events = store.step_event_counts(since).await?;
        let until = self.now();
        let window_seconds = ((until - since).num_milliseconds().max(0) as f64) / 1000.0;
        let tasks_completed = tasks.iter().filter(|t| t.state == TaskState::Complete).count() as i64;
        let tasks_failed = tasks.iter().filter(|t| t.state == TaskState::Error).count() as i64;
        let steps_completed = steps.iter().filter(|s| s.state == StepState::Complete).count() as i64;
        let steps_failed = steps.iter().filter(|s| s.state == StepState::Error).count() as i64;
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
            tasks_completed,
            tasks_failed,
            task_completion_rate: ratio(tasks_completed, tasks_completed + tasks_failed),
            task_error_rate: ratio(tasks_failed, tasks_completed + tasks_failed),
            task_throughput_per_second: per_second(tasks_completed),
            steps_completed,
            steps_failed,
            step_retries,
            step_throughput_per_second: per_second(steps_completed),
            task_duration: DurationStats::of(
                tasks
                    .iter()
                    .filter(|t| t.state == TaskState::Complete)
                    .map(task_ms)
                    .collect(),
            ),
            step_duration: DurationStats::of(
                steps
                    .iter()
                    .filter(|s| s.state == StepState::Complete)
                    .filter_map(step_ms)
                    .collect(),
            ),
        })
    }

    /// The slowest finished steps, longest first.
    pub async fn slowest_steps(&self, filter: &AnalyticsFilter, limit: usize) -> Result<Vec<SlowStep>> {
        let mut out: Vec<SlowStep> = self
            .store_for_analytics()?
            .step_timings(filter)
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
            .collect();
        out.sort_by(|a, b| b.duration_ms.cmp(&a.duration_ms).then(a.step_id.cmp(&b.step_id)));
        out.truncate(limit);
        Ok(out)
    }

    /// The slowest finished tasks, longest first.
    pub async fn slowest_tasks(&self, filter: &AnalyticsFilter, limit: usize) -> Result<Vec<SlowTask>> {
        let mut out: Vec<SlowTask> = self
            .store_for_analytics()?
            .task_timings(filter)
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
            .collect();
        out.sort_by(|a, b| b.duration_ms.cmp(&a.duration_ms).then(a.task_id.cmp(&b.task_id)));
        out.truncate(limit);
        Ok(out)
    }
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
}
