//! Objects out: the typed records every binding turns into native objects of its language.
//!
//! They are thin mappings from tasker-core types, with no logic. Field names are stable: bindings keep
//! them as they are in Ruby and Python and camelCase them in JS and Java. Conventions, the same everywhere:
//!
//! - ids are UUIDv7 strings in their hyphenated lowercase form;
//! - timestamps are `DateTime<Utc>` with millisecond precision (bindings convert them to native time types;
//!   serde writes RFC 3339);
//! - states, events and enum-like values are their stable snake_case strings;
//! - JSON payloads (context, config, results, metadata) are `serde_json::Value`, converted to native maps and
//!   lists;
//! - counts are `i64`, durations in milliseconds are `i64` or `u64` as the field says.
//!
//! docs/bindings.md holds the table of how each field type maps to each host language.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FfiResult;

/// A point in time, UTC, millisecond precision.
pub type Timestamp = DateTime<Utc>;

fn id(u: uuid::Uuid) -> String {
    u.to_string()
}

fn opt_id(u: Option<uuid::Uuid>) -> Option<String> {
    u.map(id)
}

/// Proof of a claim: the step and the attempt the claim made. `complete` and `fail` must present it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClaimToken {
    /// String (UUID): the claimed step.
    pub step_id: String,
    /// i64: the attempt this claim made, from 1.
    pub attempt: i64,
}

impl ClaimToken {
    pub fn new(step_id: impl Into<String>, attempt: i64) -> Self {
        ClaimToken {
            step_id: step_id.into(),
            attempt,
        }
    }

    /// The engine's token; a malformed step id is a validation error naming `token.step_id`.
    pub fn to_core(&self) -> FfiResult<tasker_core::ClaimToken> {
        Ok(tasker_core::ClaimToken {
            step_id: tasker_core::parse_id("token.step_id", &self.step_id)?,
            attempt: self.attempt,
        })
    }
}

impl From<tasker_core::ClaimToken> for ClaimToken {
    fn from(t: tasker_core::ClaimToken) -> Self {
        ClaimToken {
            step_id: id(t.step_id),
            attempt: t.attempt,
        }
    }
}

/// Everything a handler needs to run one claimed step (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepContext {
    /// String (UUID).
    pub task_id: String,
    /// String (UUID).
    pub step_id: String,
    /// String: the step's name within its template.
    pub step_name: String,
    /// String: the handler key the step runs under.
    pub handler_key: String,
    /// i64: this attempt, from 1; never reset, not even by `retry_task`.
    pub attempt: i64,
    /// i64: the attempt number at which the current budget ends.
    pub max_attempts: i64,
    /// JSON object: the task context.
    pub context: Value,
    /// JSON: the step's config from the template, as written there.
    pub config: Value,
    /// Map of step name → JSON: the results of the step's parents.
    pub dependency_results: BTreeMap<String, Value>,
    /// Timestamp: when the handler's time runs out (`timeout_seconds` after the claim).
    pub deadline: Timestamp,
    /// Timestamp: when the claim's lease ends unless a heartbeat extends it.
    pub lease_expires_at: Timestamp,
    /// String: the task's template namespace.
    pub namespace: String,
    /// String: the task's template name.
    pub task_name: String,
    /// ClaimToken: present it to `complete` or `fail`; also the handler's idempotency key.
    pub token: ClaimToken,
}

impl From<tasker_core::StepContext> for StepContext {
    fn from(c: tasker_core::StepContext) -> Self {
        StepContext {
            task_id: id(c.task_id),
            step_id: id(c.step_id),
            step_name: c.step_name,
            handler_key: c.handler_key,
            attempt: c.attempt,
            max_attempts: c.max_attempts,
            context: c.context,
            config: c.config,
            dependency_results: c.dependency_results,
            deadline: c.deadline,
            lease_expires_at: c.lease_expires_at,
            namespace: c.namespace,
            task_name: c.task_name,
            token: c.token.into(),
        }
    }
}

/// One run of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// String (UUID).
    pub id: String,
    /// String (UUID): the template version this task runs.
    pub template_id: String,
    /// String.
    pub namespace: String,
    /// String: the template name.
    pub name: String,
    /// String: the template version (semver).
    pub version: String,
    /// String: `pending`, `in_progress`, `complete`, `error`, `cancelled` or `resolved_manually`.
    pub state: String,
    /// JSON object: the task context.
    pub context: Value,
    /// Map of String → String.
    pub tags: BTreeMap<String, String>,
    /// Optional String.
    pub idempotency_key: Option<String>,
    /// Optional String: who asked for the task.
    pub initiator: Option<String>,
    /// Optional String: which system asked for it.
    pub source_system: Option<String>,
    /// Optional String: why.
    pub reason: Option<String>,
    /// i64: how many steps the task has.
    pub steps_total: i64,
    /// i64: steps `complete` or `resolved_manually`.
    pub steps_succeeded: i64,
    /// i64: steps in `error`.
    pub steps_failed: i64,
    /// Timestamp.
    pub created_at: Timestamp,
    /// Timestamp.
    pub updated_at: Timestamp,
    /// Optional Timestamp: when its first step was claimed.
    pub started_at: Option<Timestamp>,
    /// Optional Timestamp: when it last reached a terminal state.
    pub finished_at: Option<Timestamp>,
    /// i32: claims take higher priorities first; the default of its steps.
    pub priority: i32,
    /// Optional Timestamp: when it was asked to start, if it was created to start later.
    pub run_at: Option<Timestamp>,
    /// Optional Timestamp: while set, no step runs before this time.
    pub held_until: Option<Timestamp>,
}

impl From<tasker_core::Task> for Task {
    fn from(t: tasker_core::Task) -> Self {
        let tags = match t.tags {
            Value::Object(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        Task {
            id: id(t.id),
            template_id: id(t.template_id),
            namespace: t.namespace,
            name: t.name,
            version: t.version,
            state: t.state.to_string(),
            context: t.context,
            tags,
            idempotency_key: t.idempotency_key,
            initiator: t.initiator,
            source_system: t.source_system,
            reason: t.reason,
            steps_total: t.steps_total,
            steps_succeeded: t.steps_succeeded,
            steps_failed: t.steps_failed,
            created_at: t.created_at,
            updated_at: t.updated_at,
            started_at: t.started_at,
            finished_at: t.finished_at,
            priority: t.priority,
            run_at: t.run_at,
            held_until: t.held_until,
        }
    }
}

/// What a handler reported when it failed, as recorded on the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    /// String: the exception class, or `worker_lost` when a lease expired.
    pub error_class: String,
    /// String.
    pub message: String,
    /// List of String: backtrace lines, outermost first.
    pub backtrace: Vec<String>,
    /// Optional String: an error code the handler gave.
    pub code: Option<String>,
    /// bool: whether the handler called the failure retryable.
    pub retryable: bool,
}

impl From<tasker_core::StepErrorInfo> for StepError {
    fn from(e: tasker_core::StepErrorInfo) -> Self {
        StepError {
            error_class: e.error_class,
            message: e.message,
            backtrace: e.backtrace,
            code: e.code,
            retryable: e.retryable,
        }
    }
}

/// The retry policy of a step, after template defaults are applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// u32: attempts in one budget, including the first.
    pub max_attempts: u32,
    /// bool: `false` means the step runs once.
    pub retryable: bool,
    /// String: `exponential`, `linear` or `none`.
    pub backoff: String,
    /// u64: milliseconds.
    pub base_ms: u64,
    /// u64: milliseconds; caps the delay and any `retry_after`.
    pub max_ms: u64,
    /// f64: 0.0..=1.0, the fraction of the delay added or removed at random.
    pub jitter: f64,
}

impl From<tasker_core::retry::RetryPolicy> for RetryPolicy {
    fn from(r: tasker_core::retry::RetryPolicy) -> Self {
        RetryPolicy {
            max_attempts: r.max_attempts,
            retryable: r.retryable,
            backoff: serde_json::to_value(r.backoff)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            base_ms: r.base_ms,
            max_ms: r.max_ms,
            jitter: r.jitter,
        }
    }
}

/// One step of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// String (UUID).
    pub id: String,
    /// String (UUID).
    pub task_id: String,
    /// String.
    pub name: String,
    /// String.
    pub handler_key: String,
    /// i32: declaration order within the template.
    pub position: i32,
    /// String: `pending`, `in_progress`, `waiting_for_retry`, `complete`, `error`, `cancelled` or
    /// `resolved_manually`.
    pub state: String,
    /// i64: attempts made so far; never reset.
    pub attempts: i64,
    /// i64: the attempt number at which the current budget ends.
    pub max_attempts: i64,
    /// RetryPolicy.
    pub retry: RetryPolicy,
    /// i64: how long one attempt may run.
    pub timeout_seconds: i64,
    /// JSON: the step's config.
    pub config: Value,
    /// Optional Timestamp: when a scheduled retry falls due.
    pub next_attempt_at: Option<Timestamp>,
    /// Optional Timestamp: when the current claim's lease ends.
    pub lease_expires_at: Option<Timestamp>,
    /// Optional String: the worker that last claimed the step.
    pub worker_id: Option<String>,
    /// Optional JSON: the handler's (or operator's) result.
    pub result: Option<Value>,
    /// Optional StepError: the last failure.
    pub error: Option<StepError>,
    /// Timestamp.
    pub created_at: Timestamp,
    /// Timestamp.
    pub updated_at: Timestamp,
    /// Optional Timestamp: when the current or last attempt was claimed.
    pub started_at: Option<Timestamp>,
    /// Optional Timestamp: when the step last reached a terminal state.
    pub finished_at: Option<Timestamp>,
    /// i32: claims take higher priorities first.
    pub priority: i32,
}

impl From<tasker_core::Step> for Step {
    fn from(s: tasker_core::Step) -> Self {
        Step {
            id: id(s.id),
            task_id: id(s.task_id),
            name: s.name,
            handler_key: s.handler_key,
            position: s.position,
            state: s.state.to_string(),
            attempts: s.attempts,
            max_attempts: s.max_attempts,
            retry: s.retry.into(),
            timeout_seconds: s.timeout_seconds,
            config: s.config,
            next_attempt_at: s.next_attempt_at,
            lease_expires_at: s.lease_expires_at,
            worker_id: s.worker_id,
            result: s.result,
            error: s.error.map(Into::into),
            created_at: s.created_at,
            updated_at: s.updated_at,
            started_at: s.started_at,
            finished_at: s.finished_at,
            priority: s.priority,
        }
    }
}

/// One step of a registered template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateStep {
    /// String.
    pub name: String,
    /// String.
    pub handler_key: String,
    /// Optional String.
    pub description: Option<String>,
    /// List of String: the steps this one waits for.
    pub depends_on: Vec<String>,
    /// JSON: handed to the handler as-is.
    pub config: Value,
    /// RetryPolicy.
    pub retry: RetryPolicy,
    /// u32.
    pub timeout_seconds: u32,
    /// Optional i32: overrides the task's priority for this step.
    pub priority: Option<i32>,
}

/// A registered template version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateInfo {
    /// String (UUID).
    pub id: String,
    /// String.
    pub namespace: String,
    /// String.
    pub name: String,
    /// String (semver).
    pub version: String,
    /// Optional String.
    pub description: Option<String>,
    /// String: SHA-256 (hex) of the canonical content.
    pub content_hash: String,
    /// Optional JSON: the JSON Schema task contexts are checked against.
    pub input_schema: Option<Value>,
    /// Optional i32: the priority of its tasks unless `create_task` gives one.
    pub priority: Option<i32>,
    /// List of TemplateStep, in declaration order.
    pub steps: Vec<TemplateStep>,
    /// Timestamp.
    pub created_at: Timestamp,
}

impl From<tasker_core::TemplateRecord> for TemplateInfo {
    fn from(r: tasker_core::TemplateRecord) -> Self {
        TemplateInfo {
            id: id(r.id),
            namespace: r.namespace,
            name: r.name,
            version: r.version,
            description: r.template.description,
            content_hash: r.content_hash,
            input_schema: r.template.input_schema,
            priority: r.template.priority,
            steps: r
                .template
                .steps
                .into_iter()
                .map(|s| TemplateStep {
                    name: s.name,
                    handler_key: s.handler,
                    description: s.description,
                    depends_on: s.depends_on,
                    config: s.config,
                    retry: s.retry.into(),
                    timeout_seconds: s.timeout_seconds,
                    priority: s.priority,
                })
                .collect(),
            created_at: r.created_at,
        }
    }
}

/// The result of registering a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// TemplateInfo: the registered version.
    pub template: TemplateInfo,
    /// bool: false when the same content was already registered under this version.
    pub created: bool,
}

impl From<tasker_core::engine::Registration> for Registration {
    fn from(r: tasker_core::engine::Registration) -> Self {
        Registration {
            template: r.template.into(),
            created: r.created,
        }
    }
}

/// One row of a task's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTransition {
    /// String (UUID).
    pub id: String,
    /// String (UUID).
    pub task_id: String,
    /// Optional String: absent on the row written at creation.
    pub from_state: Option<String>,
    /// String.
    pub to_state: String,
    /// Optional String: the task event (`start`, `complete`, …); absent on the creation row.
    pub event: Option<String>,
    /// JSON.
    pub metadata: Value,
    /// i64: 1, 2, … in order.
    pub sort_key: i64,
    /// Timestamp.
    pub created_at: Timestamp,
}

impl From<tasker_core::TaskTransition> for TaskTransition {
    fn from(t: tasker_core::TaskTransition) -> Self {
        TaskTransition {
            id: id(t.id),
            task_id: id(t.task_id),
            from_state: t.from_state.map(|s| s.to_string()),
            to_state: t.to_state.to_string(),
            event: t.event.map(|e| e.to_string()),
            metadata: t.metadata,
            sort_key: t.sort_key,
            created_at: t.created_at,
        }
    }
}

/// One row of a step's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTransition {
    /// String (UUID).
    pub id: String,
    /// String (UUID).
    pub step_id: String,
    /// String (UUID).
    pub task_id: String,
    /// Optional String: absent on the row written at creation.
    pub from_state: Option<String>,
    /// String.
    pub to_state: String,
    /// Optional String: the step event (`claim`, `complete`, `fail_retryable`, …); absent on the creation row.
    pub event: Option<String>,
    /// i64: the step's attempt count when the row was written.
    pub attempt: i64,
    /// Optional String.
    pub worker_id: Option<String>,
    /// JSON.
    pub metadata: Value,
    /// i64: 1, 2, … in order, per step.
    pub sort_key: i64,
    /// Timestamp.
    pub created_at: Timestamp,
}

impl From<tasker_core::StepTransition> for StepTransition {
    fn from(t: tasker_core::StepTransition) -> Self {
        StepTransition {
            id: id(t.id),
            step_id: id(t.step_id),
            task_id: id(t.task_id),
            from_state: t.from_state.map(|s| s.to_string()),
            to_state: t.to_state.to_string(),
            event: t.event.map(|e| e.to_string()),
            attempt: t.attempt,
            worker_id: t.worker_id,
            metadata: t.metadata,
            sort_key: t.sort_key,
            created_at: t.created_at,
        }
    }
}

/// The audit trail of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transitions {
    /// List of TaskTransition, by sort key.
    pub task: Vec<TaskTransition>,
    /// List of StepTransition, by step then sort key.
    pub steps: Vec<StepTransition>,
}

/// A step and the level of the DAG it sits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyLevel {
    /// String (UUID).
    pub step_id: String,
    /// String: the step name.
    pub name: String,
    /// u32: roots are 0; every other step is one more than its deepest parent.
    pub level: u32,
}

impl From<tasker_core::engine::DependencyLevel> for DependencyLevel {
    fn from(d: tasker_core::engine::DependencyLevel) -> Self {
        DependencyLevel {
            step_id: id(d.step_id),
            name: d.name,
            level: d.level,
        }
    }
}

/// Why one step is or is not ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReadiness {
    /// String (UUID).
    pub step_id: String,
    /// String.
    pub name: String,
    /// String.
    pub handler_key: String,
    /// String: the step state.
    pub state: String,
    /// bool: a claim would take it now.
    pub ready: bool,
    /// i64.
    pub attempts: i64,
    /// i64.
    pub max_attempts: i64,
    /// List of String: parents not yet `complete` or `resolved_manually`.
    pub blocked_by: Vec<String>,
    /// List of String: parents in `error` or `cancelled`, which block until an operator acts.
    pub blocked_by_failure: Vec<String>,
    /// Optional Timestamp: when a waiting retry falls due, if not yet.
    pub retry_at: Option<Timestamp>,
    /// Optional Timestamp: for a root step of a task that starts later, when it starts.
    pub scheduled_for: Option<Timestamp>,
    /// i32: claims take higher priorities first.
    pub priority: i32,
    /// bool: the step failed and has no attempts left in its budget.
    pub attempts_exhausted: bool,
    /// bool: the task is `pending` or `in_progress`.
    pub task_runnable: bool,
    /// Optional Timestamp: for a running step, when its lease ends.
    pub lease_expires_at: Option<Timestamp>,
    /// Optional String: the step's concurrency key, if its template step declares a concurrency limit.
    pub concurrency_key: Option<String>,
    /// Optional i64: how many steps of that key may run at once.
    pub concurrency_limit: Option<i64>,
    /// Optional i64: how many steps of that key are `in_progress` now.
    pub concurrency_running: Option<i64>,
    /// List of String: human-readable reasons.
    pub reasons: Vec<String>,
}

impl From<tasker_core::readiness::StepReadiness> for StepReadiness {
    fn from(r: tasker_core::readiness::StepReadiness) -> Self {
        StepReadiness {
            step_id: id(r.step_id),
            name: r.name,
            handler_key: r.handler_key,
            state: r.state.to_string(),
            ready: r.ready,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            blocked_by: r.blocked_by,
            blocked_by_failure: r.blocked_by_failure,
            retry_at: r.retry_at,
            scheduled_for: r.scheduled_for,
            priority: r.priority,
            attempts_exhausted: r.attempts_exhausted,
            task_runnable: r.task_runnable,
            lease_expires_at: r.lease_expires_at,
            concurrency_key: r.concurrency_key,
            concurrency_limit: r.concurrency_limit.map(i64::from),
            concurrency_running: r.concurrency_running,
            reasons: r.reasons,
        }
    }
}

/// Why each step of a task is or is not ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explain {
    /// String (UUID).
    pub task_id: String,
    /// String: the task state.
    pub task_state: String,
    /// Optional Timestamp: when the task starts, if that time is still to come.
    pub scheduled_for: Option<Timestamp>,
    /// Optional String: the schedule that created the task, if one did and it is still registered.
    pub schedule: Option<String>,
    /// Optional Timestamp: that schedule's next occurrence (absent while it is paused).
    pub schedule_next_fire_at: Option<Timestamp>,
    /// List of StepReadiness, in template order.
    pub steps: Vec<StepReadiness>,
}

impl From<tasker_core::readiness::Explain> for Explain {
    fn from(e: tasker_core::readiness::Explain) -> Self {
        Explain {
            task_id: id(e.task_id),
            task_state: e.task_state.to_string(),
            scheduled_for: e.scheduled_for,
            schedule: e.schedule,
            schedule_next_fire_at: e.schedule_next_fire_at,
            steps: e.steps.into_iter().map(Into::into).collect(),
        }
    }
}

fn snake<T: Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Where a task stands and what should happen next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionContext {
    /// String (UUID).
    pub task_id: String,
    /// String.
    pub task_state: String,
    /// i64.
    pub total_steps: i64,
    /// i64.
    pub pending_steps: i64,
    /// i64: claimable now.
    pub ready_steps: i64,
    /// i64.
    pub in_progress_steps: i64,
    /// i64.
    pub waiting_for_retry_steps: i64,
    /// i64.
    pub completed_steps: i64,
    /// i64: in `error`.
    pub failed_steps: i64,
    /// i64.
    pub cancelled_steps: i64,
    /// i64.
    pub resolved_manually_steps: i64,
    /// i64: pending steps held up by a failed or cancelled ancestor.
    pub blocked_steps: i64,
    /// String: `all_complete`, `has_ready_steps`, `processing`, `waiting_for_retry`, `blocked_by_failures` or
    /// `cancelled`.
    pub execution_status: String,
    /// String: `none`, `execute_ready_steps`, `wait_for_completion`, `wait_for_retry` or `handle_failures`.
    pub recommended_action: String,
    /// f64: share of steps that succeeded, 0.0..=1.0.
    pub completion_ratio: f64,
}

impl From<tasker_core::engine::ExecutionContext> for ExecutionContext {
    fn from(c: tasker_core::engine::ExecutionContext) -> Self {
        ExecutionContext {
            task_id: id(c.task_id),
            task_state: c.task_state.to_string(),
            total_steps: c.total_steps,
            pending_steps: c.pending_steps,
            ready_steps: c.ready_steps,
            in_progress_steps: c.in_progress_steps,
            waiting_for_retry_steps: c.waiting_for_retry_steps,
            completed_steps: c.completed_steps,
            failed_steps: c.failed_steps,
            cancelled_steps: c.cancelled_steps,
            resolved_manually_steps: c.resolved_manually_steps,
            blocked_steps: c.blocked_steps,
            execution_status: snake(c.execution_status),
            recommended_action: snake(c.recommended_action),
            completion_ratio: c.completion_ratio,
        }
    }
}

/// Tasks and steps by state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCounts {
    /// Map of task state → i64, every state present.
    pub tasks: BTreeMap<String, i64>,
    /// Map of step state → i64, every state present.
    pub steps: BTreeMap<String, i64>,
    /// i64.
    pub total_tasks: i64,
    /// i64.
    pub total_steps: i64,
    /// i64: steps waiting for a retry.
    pub retrying: i64,
    /// i64: steps in `error` that used their whole budget.
    pub exhausted: i64,
}

impl From<tasker_core::analytics::HealthCounts> for HealthCounts {
    fn from(h: tasker_core::analytics::HealthCounts) -> Self {
        HealthCounts {
            tasks: h.tasks,
            steps: h.steps,
            total_tasks: h.total_tasks,
            total_steps: h.total_steps,
            retrying: h.retrying,
            exhausted: h.exhausted,
        }
    }
}

/// Summary statistics of durations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DurationStats {
    /// u64: how many durations.
    pub count: u64,
    /// f64: milliseconds.
    pub mean_ms: f64,
    /// i64: milliseconds, nearest-rank.
    pub p50_ms: i64,
    /// i64: milliseconds, nearest-rank.
    pub p95_ms: i64,
    /// i64: milliseconds.
    pub max_ms: i64,
}

impl From<tasker_core::analytics::DurationStats> for DurationStats {
    fn from(d: tasker_core::analytics::DurationStats) -> Self {
        DurationStats {
            count: d.count,
            mean_ms: d.mean_ms,
            p50_ms: d.p50_ms,
            p95_ms: d.p95_ms,
            max_ms: d.max_ms,
        }
    }
}

/// Throughput, rates and durations of work finished in a window, computed from stored data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsMetrics {
    /// Timestamp: start of the window.
    pub since: Timestamp,
    /// Timestamp: end of the window (now, by the engine's clock).
    pub until: Timestamp,
    /// f64.
    pub window_seconds: f64,
    /// i64.
    pub tasks_completed: i64,
    /// i64.
    pub tasks_failed: i64,
    /// f64: completed ÷ (completed + failed); 0 when none finished.
    pub task_completion_rate: f64,
    /// f64.
    pub task_error_rate: f64,
    /// f64: tasks completed per second.
    pub task_throughput_per_second: f64,
    /// i64.
    pub steps_completed: i64,
    /// i64.
    pub steps_failed: i64,
    /// i64: failed attempts scheduled to run again (handler failures and expired leases).
    pub step_retries: i64,
    /// f64: steps completed per second.
    pub step_throughput_per_second: f64,
    /// DurationStats: creation to completion, for tasks completed in the window.
    pub task_duration: DurationStats,
    /// DurationStats: claim of the final attempt to completion, for steps completed in the window.
    pub step_duration: DurationStats,
}

impl From<tasker_core::analytics::AnalyticsMetrics> for AnalyticsMetrics {
    fn from(m: tasker_core::analytics::AnalyticsMetrics) -> Self {
        AnalyticsMetrics {
            since: m.since,
            until: m.until,
            window_seconds: m.window_seconds,
            tasks_completed: m.tasks_completed,
            tasks_failed: m.tasks_failed,
            task_completion_rate: m.task_completion_rate,
            task_error_rate: m.task_error_rate,
            task_throughput_per_second: m.task_throughput_per_second,
            steps_completed: m.steps_completed,
            steps_failed: m.steps_failed,
            step_retries: m.step_retries,
            step_throughput_per_second: m.step_throughput_per_second,
            task_duration: m.task_duration.into(),
            step_duration: m.step_duration.into(),
        }
    }
}

/// A finished step and how long its final attempt took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowStep {
    /// String (UUID).
    pub step_id: String,
    /// String (UUID).
    pub task_id: String,
    /// String.
    pub namespace: String,
    /// String.
    pub task_name: String,
    /// String.
    pub version: String,
    /// String.
    pub step_name: String,
    /// String: `complete` or `error`.
    pub state: String,
    /// i64.
    pub attempts: i64,
    /// i64: milliseconds.
    pub duration_ms: i64,
    /// Optional Timestamp.
    pub started_at: Option<Timestamp>,
    /// Timestamp.
    pub finished_at: Timestamp,
}

impl From<tasker_core::analytics::SlowStep> for SlowStep {
    fn from(s: tasker_core::analytics::SlowStep) -> Self {
        SlowStep {
            step_id: id(s.step_id),
            task_id: id(s.task_id),
            namespace: s.namespace,
            task_name: s.task_name,
            version: s.version,
            step_name: s.step_name,
            state: s.state.to_string(),
            attempts: s.attempts,
            duration_ms: s.duration_ms,
            started_at: s.started_at,
            finished_at: s.finished_at,
        }
    }
}

/// A finished task and how long it took from creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowTask {
    /// String (UUID).
    pub task_id: String,
    /// String.
    pub namespace: String,
    /// String.
    pub name: String,
    /// String.
    pub version: String,
    /// String: `complete` or `error`.
    pub state: String,
    /// i64.
    pub steps_total: i64,
    /// i64: milliseconds.
    pub duration_ms: i64,
    /// Timestamp.
    pub created_at: Timestamp,
    /// Timestamp.
    pub finished_at: Timestamp,
}

impl From<tasker_core::analytics::SlowTask> for SlowTask {
    fn from(t: tasker_core::analytics::SlowTask) -> Self {
        SlowTask {
            task_id: id(t.task_id),
            namespace: t.namespace,
            name: t.name,
            version: t.version,
            state: t.state.to_string(),
            steps_total: t.steps_total,
            duration_ms: t.duration_ms,
            created_at: t.created_at,
            finished_at: t.finished_at,
        }
    }
}

/// Something that happened to a task or a step: one per transition row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// String: for example `task.created`, `step.claimed`, `step.completed`, `step.retry_scheduled`.
    pub name: String,
    /// String (UUID).
    pub task_id: String,
    /// Optional String (UUID): absent on task events.
    pub step_id: Option<String>,
    /// Optional String: absent on task events.
    pub step_name: Option<String>,
    /// Optional i64: the step's attempt count; absent on task events.
    pub attempt: Option<i64>,
    /// Optional String: absent on creation events.
    pub from_state: Option<String>,
    /// String.
    pub to_state: String,
    /// Optional String.
    pub worker_id: Option<String>,
    /// JSON: the transition row's metadata.
    pub metadata: Value,
    /// Timestamp.
    pub timestamp: Timestamp,
}

impl From<tasker_core::events::Event> for Event {
    fn from(e: tasker_core::events::Event) -> Self {
        Event {
            name: e.name,
            task_id: id(e.task_id),
            step_id: opt_id(e.step_id),
            step_name: e.step_name,
            attempt: e.attempt,
            from_state: e.from_state,
            to_state: e.to_state,
            worker_id: e.worker_id,
            metadata: e.metadata,
            timestamp: e.timestamp,
        }
    }
}

/// What a pass of lease reaping did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapReport {
    /// u32: expired steps that will be retried.
    pub retried: u32,
    /// u32: expired steps with no attempts left, now `error` with `worker_lost`.
    pub failed: u32,
}

impl From<tasker_core::engine::ReapReport> for ReapReport {
    fn from(r: tasker_core::engine::ReapReport) -> Self {
        ReapReport {
            retried: r.retried,
            failed: r.failed,
        }
    }
}

/// A registered cron schedule and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// String: unique among schedules.
    pub name: String,
    /// String.
    pub namespace: String,
    /// String: the template's name.
    pub template: String,
    /// Optional String: the template version; the newest at each fire when absent.
    pub version: Option<String>,
    /// String: the cron expression.
    pub cron: String,
    /// String: the IANA zone the expression is read in.
    pub timezone: String,
    /// JSON: the context of every task it creates.
    pub context: Value,
    /// Optional i64: the priority of its tasks; the template's when absent.
    pub priority: Option<i64>,
    /// String: `skip` or `run_once`.
    pub misfire: String,
    /// Boolean.
    pub paused: bool,
    /// Optional Timestamp: the next occurrence; absent while paused.
    pub next_fire_at: Option<Timestamp>,
    /// Optional Timestamp: the occurrence that last created a task.
    pub last_fire_at: Option<Timestamp>,
    /// Optional String (UUID): the task it created last.
    pub last_task_id: Option<String>,
    /// i64: tasks created.
    pub fired: i64,
    /// i64: occurrences missed while nothing ran.
    pub missed: i64,
    /// Optional String: why the last occurrence could not create its task.
    pub last_error: Option<String>,
    /// Timestamp.
    pub created_at: Timestamp,
    /// Timestamp.
    pub updated_at: Timestamp,
}

impl From<tasker_core::schedule::Schedule> for Schedule {
    fn from(s: tasker_core::schedule::Schedule) -> Self {
        Schedule {
            name: s.name,
            namespace: s.namespace,
            template: s.template,
            version: s.version,
            cron: s.cron,
            timezone: s.timezone,
            context: s.context,
            priority: s.priority.map(i64::from),
            misfire: s.misfire.as_str().to_string(),
            paused: s.paused,
            next_fire_at: s.next_fire_at,
            last_fire_at: s.last_fire_at,
            last_task_id: s.last_task_id.map(id),
            fired: s.fired,
            missed: s.missed,
            last_error: s.last_error,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// What one pass over due schedules did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleReport {
    /// u32: tasks created.
    pub fired: u32,
    /// i64: occurrences missed (more than the misfire grace late).
    pub missed: i64,
    /// u32: occurrences whose task could not be created (see `Schedule.last_error`).
    pub failed: u32,
    /// Optional Timestamp: the earliest next occurrence of any schedule not paused.
    pub next_fire_at: Option<Timestamp>,
}

impl From<tasker_core::engine::ScheduleReport> for ScheduleReport {
    fn from(r: tasker_core::engine::ScheduleReport) -> Self {
        ScheduleReport {
            fired: r.fired,
            missed: r.missed,
            failed: r.failed,
            next_fire_at: r.next_fire_at,
        }
    }
}

/// What the handle of a client reports about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientHealth {
    /// String: `memory`, `sqlite` or `postgres`.
    pub store_kind: String,
    /// String: the URL the client opened, with any password replaced by `***`.
    pub url: String,
    /// u32: connections in the pool (1 for the memory store).
    pub pool_size: u32,
    /// u32: idle connections in the pool.
    pub idle_connections: u32,
    /// u64: milliseconds since the client was opened.
    pub age_ms: u64,
    /// Timestamp: when the client was opened (wall clock).
    pub opened_at: Timestamp,
    /// u32: the process that opened the client.
    pub pid: u32,
    /// u32: how many times `validate_or_refresh` rebuilt the store connection.
    pub refreshes: u32,
    /// String: `system` or `manual`.
    pub clock: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_token_round_trips_and_rejects_bad_ids() {
        let core = tasker_core::ClaimToken {
            step_id: tasker_core::new_id(),
            attempt: 3,
        };
        let t = ClaimToken::from(core);
        assert_eq!(t.to_core().unwrap(), core);
        let e = ClaimToken::new("nope", 1).to_core().unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Validation);
        assert!(e.message.contains("token.step_id"), "{}", e.message);
    }

    #[test]
    fn enum_like_values_are_snake_case_strings() {
        assert_eq!(
            snake(tasker_core::engine::ExecutionStatus::BlockedByFailures),
            "blocked_by_failures"
        );
        assert_eq!(
            snake(tasker_core::engine::RecommendedAction::HandleFailures),
            "handle_failures"
        );
        let r = RetryPolicy::from(tasker_core::retry::RetryPolicy::default());
        assert_eq!(r.backoff, "exponential");
    }

    #[test]
    fn task_tags_become_a_string_map() {
        let now = chrono::Utc::now();
        let t = tasker_core::Task {
            id: tasker_core::new_id(),
            template_id: tasker_core::new_id(),
            namespace: "n".into(),
            name: "x".into(),
            version: "1.0.0".into(),
            state: tasker_core::TaskState::InProgress,
            context: json!({"a": 1}),
            tags: json!({"team": "shop"}),
            idempotency_key: None,
            initiator: None,
            source_system: None,
            reason: None,
            steps_total: 1,
            steps_succeeded: 0,
            steps_failed: 0,
            transition_count: 2,
            created_at: now,
            updated_at: now,
            started_at: Some(now),
            finished_at: None,
            priority: -2,
            run_at: Some(now),
            held_until: None,
        };
        let d = Task::from(t.clone());
        assert_eq!((d.priority, d.run_at, d.held_until), (-2, Some(now), None));
        assert_eq!(d.id, t.id.to_string());
        assert_eq!(d.state, "in_progress");
        assert_eq!(d.tags.get("team").map(String::as_str), Some("shop"));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["context"], json!({"a": 1}));
    }
}

/// A factory workflow and the tasks made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternTasks {
    /// TemplateInfo: the registered template.
    pub template: TemplateInfo,
    /// List of Task, in creation order.
    pub tasks: Vec<Task>,
}

/// One handler run of a run until idle (scripted or host handlers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlerCall {
    /// String (UUID).
    pub task_id: String,
    /// String (UUID).
    pub step_id: String,
    /// String.
    pub step_name: String,
    /// String.
    pub handler_key: String,
    /// i64.
    pub attempt: i64,
    /// Map of String → JSON: what the handler saw of its parents.
    pub dependency_results: BTreeMap<String, Value>,
    /// String: `succeed`, `fail_retryable`, `fail_permanent` or `overrun_lease`.
    pub outcome: String,
    /// Optional String: the error kind when the engine rejected the outcome.
    pub rejected: Option<String>,
}

/// What a run until idle did (`run_until_idle` in every language, and the scripted one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// List of HandlerCall, in the order the handlers ran.
    pub calls: Vec<HandlerCall>,
    /// u64: successes the engine accepted.
    pub completed: u64,
    /// u64: failures the engine accepted.
    pub failed: u64,
    /// u64: claims left to expire.
    pub overrun: u64,
    /// u64: outcomes the engine rejected.
    pub rejected: u64,
    /// u64: milliseconds a manual clock was moved forward to reach scheduled retries.
    pub advanced_ms: u64,
    /// u64: handlers the session failed with `timeout` for running past their deadline.
    pub timed_out: u64,
}

/// What a worker session did so far: tasker-core's session counters, handed to hosts as they are.
pub use tasker_core::SessionStats;
