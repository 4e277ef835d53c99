//! The one definition of readiness, and the reasons a step is or is not ready.
//!
//! A step is ready when all of these hold:
//! - its state is `pending` or `waiting_for_retry`;
//! - every parent is `complete` or `resolved_manually`;
//! - its `next_attempt_at` is null or not in the future;
//! - it has parents, or its task is not held for a start time still in the future (`Task::held_until`);
//! - its task is `pending` or `in_progress`;
//! - it has no concurrency limit, or fewer than its limit steps of its concurrency key are `in_progress`
//!   (docs/adr/0008-keyed-concurrency-limits.md).
//!
//! Among ready steps, claims take the highest `priority` first, then the oldest `ready_at`, then the
//! oldest id ([`Step::claim_order`]).
//!
//! Stores keep `unfinished_parents` so that claims never walk the graph; the claim predicate of each store
//! is this function written in its query language, and the conformance suite holds them to it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::model::Step;
use crate::state::{StepState, TaskState};

/// Why a step is or is not ready, for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReadiness {
    pub step_id: Uuid,
    pub name: String,
    pub handler_key: String,
    pub state: StepState,
    pub ready: bool,
    pub attempts: i64,
    pub max_attempts: i64,
    /// Parents that are not yet `complete` or `resolved_manually`, by name.
    pub blocked_by: Vec<String>,
    /// Parents in `error` or `cancelled`: these block the step until an operator acts.
    pub blocked_by_failure: Vec<String>,
    /// When a waiting retry becomes due, if it is not yet.
    pub retry_at: Option<Timestamp>,
    /// When the step's task starts, if it is a root step of a task held until a time still to come.
    pub scheduled_for: Option<Timestamp>,
    /// Claims take higher priorities first.
    pub priority: i32,
    /// The step failed and has no attempts left in its budget.
    pub attempts_exhausted: bool,
    pub task_runnable: bool,
    pub lease_expires_at: Option<Timestamp>,
    /// The step's concurrency key (its limit's name or template step, and the context value), if its
    /// template step declares a concurrency limit.
    pub concurrency_key: Option<String>,
    /// How many steps of `concurrency_key` may run at once.
    pub concurrency_limit: Option<i32>,
    /// How many steps of `concurrency_key` are `in_progress` now, this one included if it runs.
    pub concurrency_running: Option<i64>,
    /// Human-readable reasons, one per fact above that keeps the step from running.
    pub reasons: Vec<String>,
}

/// Why each step of a task is or is not ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explain {
    pub task_id: Uuid,
    pub task_state: TaskState,
    /// When the task starts, if it was created to start at a time still to come.
    pub scheduled_for: Option<Timestamp>,
    /// The schedule that created the task, if one did and it is still registered.
    pub schedule: Option<String>,
    /// That schedule's next occurrence (`None` while it is paused).
    pub schedule_next_fire_at: Option<Timestamp>,
    pub steps: Vec<StepReadiness>,
}

/// Whether `state` allows a claim.
pub fn state_is_claimable(state: StepState) -> bool {
    matches!(state, StepState::Pending | StepState::WaitingForRetry)
}

/// Whether a due time has come.
pub fn is_due(next_attempt_at: Option<Timestamp>, now: Timestamp) -> bool {
    next_attempt_at.is_none_or(|t| t <= now)
}

/// When a held task starts, if that time is still to come.
pub fn scheduled_for(held_until: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
    held_until.filter(|t| *t > now)
}

/// Whether a step of a key with `running` steps in progress may start under `limit`.
pub fn has_slot(running: i64, limit: i32) -> bool {
    running < i64::from(limit)
}

/// Evaluates readiness of `step`, given its parents (name and state), its task's state and hold
/// ([`Task::held_until`](crate::model::Task::held_until)), how many steps of its concurrency key are
/// `in_progress` (`running`; ignored for a step without a key), and the time.
pub fn evaluate(
    step: &Step,
    parents: &[(&str, StepState)],
    task_state: TaskState,
    held_until: Option<Timestamp>,
    running: i64,
    now: Timestamp,
) -> StepReadiness {
    let blocked_by: Vec<String> = parents
        .iter()
        .filter(|(_, s)| !s.is_success())
        .map(|(n, _)| (*n).to_string())
        .collect();
    let blocked_by_failure: Vec<String> = parents
        .iter()
        .filter(|(_, s)| matches!(s, StepState::Error | StepState::Cancelled))
        .map(|(n, _)| (*n).to_string())
        .collect();
    let task_runnable = task_state.is_runnable();
    let due = is_due(step.next_attempt_at, now);
    let scheduled_for =
        scheduled_for(held_until, now).filter(|_| parents.is_empty() && step.state == StepState::Pending);
    let attempts_exhausted = step.state == StepState::Error && step.attempts >= step.max_attempts;
    let concurrency_running = step.concurrency_key.as_ref().map(|_| running);
    let slot = match (&step.concurrency_key, step.concurrency_limit) {
        (Some(_), Some(limit)) => has_slot(running, limit),
        _ => true,
    };
    let ready = state_is_claimable(step.state)
        && blocked_by.is_empty()
        && due
        && scheduled_for.is_none()
        && task_runnable
        && slot;

    let mut reasons = Vec::new();
    match step.state {
        StepState::InProgress => reasons.push(match (&step.worker_id, step.lease_expires_at) {
            (Some(w), Some(l)) => format!("running on worker {w}, lease until {}", l.to_rfc3339()),
            _ => "running".to_string(),
        }),
        s if s.is_terminal() => reasons.push(format!("step is {s}")),
        _ => {}
    }
    if attempts_exhausted {
        reasons.push(format!(
            "attempts exhausted ({} of {})",
            step.attempts, step.max_attempts
        ));
    }
    if !blocked_by.is_empty() && !step.state.is_terminal() {
        reasons.push(format!("waiting for {}", blocked_by.join(", ")));
    }
    if !blocked_by_failure.is_empty() && !step.state.is_terminal() {
        reasons.push(format!("blocked by failed {}", blocked_by_failure.join(", ")));
    }
    let retry_at = if state_is_claimable(step.state) && !due {
        step.next_attempt_at
    } else {
        None
    };
    if let Some(t) = retry_at {
        reasons.push(format!("retry due at {}", t.to_rfc3339()));
    }
    if let Some(t) = scheduled_for {
        reasons.push(format!("scheduled for {}", t.to_rfc3339()));
    }
    if !task_runnable && !step.state.is_terminal() {
        reasons.push(format!("task is {task_state}"));
    }
    if let (Some(key), Some(limit)) = (&step.concurrency_key, step.concurrency_limit) {
        if state_is_claimable(step.state) && !slot {
            reasons.push(format!(
                "waits for a concurrency slot: key {key} has {running} of {limit} running"
            ));
        }
    }
    if ready {
        reasons.push("ready".to_string());
    }
    StepReadiness {
        step_id: step.id,
        name: step.name.clone(),
        handler_key: step.handler_key.clone(),
        state: step.state,
        ready,
        attempts: step.attempts,
        max_attempts: step.max_attempts,
        blocked_by,
        blocked_by_failure,
        retry_at,
        scheduled_for,
        priority: step.priority,
        attempts_exhausted,
        task_runnable,
        lease_expires_at: if step.state == StepState::InProgress {
            step.lease_expires_at
        } else {
            None
        },
        concurrency_key: step.concurrency_key.clone(),
        concurrency_limit: step.concurrency_limit,
        concurrency_running,
        reasons,
    }
}
