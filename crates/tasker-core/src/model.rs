//! The records the engine keeps, and the objects it hands out.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::state::{StepEvent, StepState, TaskEvent, TaskState};
use crate::template::Template;

/// A fresh, time-ordered id.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Parses an id given by a user; a malformed one is a validation error naming `field`.
pub fn parse_id(field: &str, s: &str) -> Result<Uuid> {
    Uuid::parse_str(s.trim()).map_err(|_| Error::field("id", field, format!("expected a UUID, found {s:?}")))
}

/// A registered template version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub id: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub content_hash: String,
    pub template: Template,
    pub created_at: Timestamp,
}

/// One run of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: Uuid,
    pub template_id: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub state: TaskState,
    pub context: Value,
    /// A JSON object of string tags.
    pub tags: Value,
    pub idempotency_key: Option<String>,
    pub initiator: Option<String>,
    pub source_system: Option<String>,
    pub reason: Option<String>,
    pub steps_total: i64,
    /// Steps `complete` or `resolved_manually`.
    pub steps_succeeded: i64,
    /// Steps in `error`.
    pub steps_failed: i64,
    /// How many transition rows this task has; the next one gets this plus one as its sort key.
    pub transition_count: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the first step was claimed.
    pub started_at: Option<Timestamp>,
    /// When the task last reached a terminal state.
    pub finished_at: Option<Timestamp>,
    /// Claims take higher priorities first; the default of its steps (a step of the template may override it).
    pub priority: i32,
    /// When the task was asked to start, if it was created to start later.
    pub run_at: Option<Timestamp>,
    /// While set, the task is held until then: its root steps wait for this time as for one more parent,
    /// and the first claim at or after it releases them. Cleared on release, `run_task_now` and on reaching
    /// a terminal state.
    pub held_until: Option<Timestamp>,
}

/// What a handler reported when it failed, as recorded on the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepErrorInfo {
    /// The exception class, or `worker_lost` when a lease expired.
    pub error_class: String,
    pub message: String,
    #[serde(default)]
    pub backtrace: Vec<String>,
    #[serde(default)]
    pub code: Option<String>,
    pub retryable: bool,
}

/// One step of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: Uuid,
    pub task_id: Uuid,
    pub name: String,
    pub handler_key: String,
    /// Declaration order within the template.
    pub position: i32,
    pub state: StepState,
    /// Attempts made so far, over the step's whole life (never reset), so claim tokens stay unique.
    pub attempts: i64,
    /// The attempt number at which the current budget ends; `retry_task` moves it forward.
    pub max_attempts: i64,
    pub retry: RetryPolicy,
    pub timeout_seconds: i64,
    pub config: Value,
    /// Parents not yet `complete` or `resolved_manually`; the step can be ready only at zero.
    pub unfinished_parents: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub lease_expires_at: Option<Timestamp>,
    pub worker_id: Option<String>,
    pub result: Option<Value>,
    pub error: Option<StepErrorInfo>,
    pub transition_count: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the current or last attempt was claimed.
    pub started_at: Option<Timestamp>,
    /// When the step last reached a terminal state.
    pub finished_at: Option<Timestamp>,
    /// Claims take higher priorities first: the template step's priority, else the task's.
    pub priority: i32,
    /// When the step became (or, waiting for a retry, becomes) claimable; claims of equal priority take the
    /// oldest first. Meaningful only while the step is claimable-shaped (pending or waiting, no parents left).
    pub ready_at: Timestamp,
    /// The key of the template step's concurrency limit, resolved against the context at creation (see
    /// [`crate::template::ConcurrencyLimit::resolve`]); `None` for a step without a limit.
    #[serde(default)]
    pub concurrency_key: Option<String>,
    /// How many steps with `concurrency_key` may be `in_progress` at once; set exactly when the key is.
    #[serde(default)]
    pub concurrency_limit: Option<i32>,
}

impl Step {
    /// The order claims take ready steps in: highest priority, then oldest ready time, then oldest id.
    pub fn claim_order(&self) -> (std::cmp::Reverse<i32>, Timestamp, Uuid) {
        (std::cmp::Reverse(self.priority), self.ready_at, self.id)
    }
}

/// A dependency edge: `child` waits for `parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Edge {
    pub task_id: Uuid,
    pub parent_id: Uuid,
    pub child_id: Uuid,
}

/// One row of a step's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTransition {
    pub id: Uuid,
    pub step_id: Uuid,
    pub task_id: Uuid,
    /// `None` for the row written at creation.
    pub from_state: Option<StepState>,
    pub to_state: StepState,
    /// `None` for the row written at creation.
    pub event: Option<StepEvent>,
    pub attempt: i64,
    pub worker_id: Option<String>,
    pub metadata: Value,
    pub sort_key: i64,
    pub created_at: Timestamp,
}

/// One row of a task's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTransition {
    pub id: Uuid,
    pub task_id: Uuid,
    pub from_state: Option<TaskState>,
    pub to_state: TaskState,
    pub event: Option<TaskEvent>,
    pub metadata: Value,
    pub sort_key: i64,
    pub created_at: Timestamp,
}

/// Proof of a claim: the step and the attempt the claim made. Complete and fail must present it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClaimToken {
    pub step_id: Uuid,
    pub attempt: i64,
}

/// Everything a handler needs to run one claimed step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepContext {
    pub token: ClaimToken,
    pub task_id: Uuid,
    pub step_id: Uuid,
    pub namespace: String,
    pub task_name: String,
    pub step_name: String,
    pub handler_key: String,
    /// Starts at 1.
    pub attempt: i64,
    pub max_attempts: i64,
    pub context: Value,
    pub config: Value,
    /// Results of the parents, by step name.
    pub dependency_results: BTreeMap<String, Value>,
    /// When the handler's time runs out (`timeout_seconds` after the claim).
    pub deadline: Timestamp,
    pub lease_expires_at: Timestamp,
}

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailure {
    /// Retry if attempts are left; `false` for a permanent error.
    pub retryable: bool,
    pub message: String,
    pub error_class: String,
    #[serde(default)]
    pub backtrace: Vec<String>,
    /// Asks for this delay before the next attempt; capped at the policy's `max_ms`.
    #[serde(default, with = "opt_duration_ms")]
    pub retry_after: Option<Duration>,
    #[serde(default)]
    pub code: Option<String>,
}

impl StepFailure {
    /// A retryable failure.
    pub fn retryable(message: impl Into<String>) -> Self {
        StepFailure {
            retryable: true,
            message: message.into(),
            error_class: "RetryableError".into(),
            backtrace: Vec::new(),
            retry_after: None,
            code: None,
        }
    }

    /// A permanent failure: never retried.
    pub fn permanent(message: impl Into<String>) -> Self {
        StepFailure {
            retryable: false,
            error_class: "PermanentError".into(),
            ..Self::retryable(message)
        }
    }

    /// A handler that ran past its step's deadline: retryable, class `TimeoutError`, code `timeout`. The
    /// session reports it for every host, so it reads the same whatever language ran the handler.
    pub fn timed_out(timeout_ms: i64) -> Self {
        StepFailure::retryable(format!("handler exceeded its timeout of {timeout_ms} ms"))
            .with_class("TimeoutError")
            .with_code("timeout")
    }

    /// A handler whose result cannot become JSON: permanent (running it again returns the same thing),
    /// class `InvalidResult`, code `invalid_result`; `message` names the field path, e.g.
    /// `result.items[2]: expected a JSON value, found a Time`.
    pub fn invalid_result(message: impl Into<String>) -> Self {
        StepFailure::permanent(message)
            .with_class("InvalidResult")
            .with_code("invalid_result")
    }

    /// A step whose handler key has no handler in the worker that claimed it: retryable (another worker,
    /// or a redeploy, may have it), class `HandlerMissing`.
    pub fn handler_missing(handler_key: &str) -> Self {
        StepFailure::retryable(format!("no handler is registered for {handler_key:?}")).with_class("HandlerMissing")
    }

    pub fn with_retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d);
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_class(mut self, class: impl Into<String>) -> Self {
        self.error_class = class.into();
        self
    }
}

mod opt_duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// The result of one attempt, as a worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success(Value),
    Failure(StepFailure),
}

/// Filter and page for [`crate::Engine::tasks`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskFilter {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub state: Option<TaskState>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<u32>,
    /// Return tasks with ids strictly below this one (newest first paging).
    pub before: Option<Uuid>,
}

impl TaskFilter {
    /// The most tasks a list returns: `limit`, 50 when absent, kept within 1..=1000.
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 1000)
    }
}

/// Which finished work analytics look at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsFilter {
    /// Only work finished at or after this time.
    pub since: Option<Timestamp>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// Counts and durations of finished work as a store computes them, in the store, without handing back rows.
/// Percentiles follow the rule in [`crate::analytics`]: nearest rank, the same on every store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedSummary {
    /// How many finished in `complete`.
    pub completed: i64,
    /// How many finished in `error`.
    pub failed: i64,
    /// How many of the completed ones have a duration (a step needs a start time).
    pub durations: i64,
    /// The sum of those durations, in milliseconds; the mean is computed from it.
    pub sum_ms: i64,
    pub p50_ms: i64,
    pub p95_ms: i64,
    pub max_ms: i64,
}

/// Timing of one finished step, the raw material of step analytics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub step_id: Uuid,
    pub task_id: Uuid,
    pub namespace: String,
    pub task_name: String,
    pub version: String,
    pub step_name: String,
    pub state: StepState,
    pub attempts: i64,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
}

/// Timing of one finished task, the raw material of task analytics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTiming {
    pub task_id: Uuid,
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub state: TaskState,
    pub steps_total: i64,
    pub created_at: Timestamp,
    pub finished_at: Timestamp,
}

/// Counts of tasks and steps by state, straight from the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateCounts {
    pub tasks: BTreeMap<TaskState, i64>,
    pub steps: BTreeMap<StepState, i64>,
    /// Steps in `error` whose attempts reached their budget.
    pub steps_exhausted: i64,
}

/// What a worker session ([`crate::session::Session`]) did so far; hosts see it as is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStats {
    /// Steps claimed.
    pub claimed: u64,
    /// Completions the engine accepted.
    pub completed: u64,
    /// Failures the engine accepted (timeouts included).
    pub failed: u64,
    /// Outcomes the engine rejected (stale claim, cancelled step, malformed token, …).
    pub rejected: u64,
    /// Claims whose lease a heartbeat found already lost.
    pub lost: u64,
    /// Handlers that ran past their deadline and were failed with `timeout`.
    pub timed_out: u64,
    /// Outcomes reported after their handler had been timed out (each is rejected as a stale claim).
    pub late: u64,
    /// Outcomes the reporter gave up on (the client closed, or the store stayed down); their steps are
    /// recovered by the reaper once their leases expire.
    pub abandoned: u64,
    /// Claims, reports, heartbeats and maintenance passes that failed on a store error and were retried.
    pub store_errors: u64,
    /// Claims not yet reported.
    pub outstanding: u64,
}
