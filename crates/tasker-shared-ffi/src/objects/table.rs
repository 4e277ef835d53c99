//! The object table: every type handed to a host, its fields, and each field's kind.
//!
//! This file is plain data with no dependency on the rest of the crate, so that `cargo xtask gen` can
//! include it (`#[path]`) and write the host type files from it without building the engine. The unit tests
//! in `objects/mod.rs` hold it to the real Rust types: a field added to a type without a row here fails them.

/// The kind of a field, which decides the host type it lowers to (docs/bindings.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text: ids (UUIDv7), names, states, events.
    String,
    /// A whole number (counts, attempts, milliseconds).
    Integer,
    /// A floating-point number (rates, means, jitter).
    Float,
    Boolean,
    /// A point in time, UTC, millisecond precision (RFC 3339 on the wire).
    Timestamp,
    /// Any JSON value: context, config, results, metadata. Lowered to native maps and lists as it is.
    Json,
    /// An object of this table, by name.
    Object(&'static str),
    List(&'static Kind),
    /// Absent (nil, None, null) or a value of the inner kind.
    Optional(&'static Kind),
    /// A map from strings to values of the inner kind.
    Map(&'static Kind),
}

impl Kind {
    /// How docs/bindings.md names the kind: `string`, `optional timestamp`, `list of TemplateStep`, ….
    pub fn describe(&self) -> String {
        match self {
            Kind::String => "string".into(),
            Kind::Integer => "integer".into(),
            Kind::Float => "float".into(),
            Kind::Boolean => "boolean".into(),
            Kind::Timestamp => "timestamp".into(),
            Kind::Json => "JSON".into(),
            Kind::Object(name) => (*name).into(),
            Kind::List(k) => format!("list of {}", k.describe()),
            Kind::Optional(k) => format!("optional {}", k.describe()),
            Kind::Map(k) => format!("map of string to {}", k.describe()),
        }
    }
}

/// One field of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The field name, `snake_case` (camelCased by JS and Java bindings).
    pub name: &'static str,
    pub kind: Kind,
    /// What the field holds, for the generated docs; empty when the name says it all.
    pub doc: &'static str,
}

/// One object type handed to hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectType {
    /// The class name in every host (`TaskerCore::Task`, `tasker_core.Task`).
    pub name: &'static str,
    /// The host module that groups it, if any: `performance`, `events` or `testing` (Ruby nests the class
    /// there, `TaskerCore::Performance::SlowStep`; Python re-exports it from `tasker_core.performance`).
    pub module: Option<&'static str>,
    /// One sentence on what the object is.
    pub doc: &'static str,
    /// In declaration order; hosts keep it for readers, `to_h`/`to_dict` and `inspect`/`repr`.
    pub fields: &'static [Field],
}

const S: Kind = Kind::String;
const I: Kind = Kind::Integer;
const F: Kind = Kind::Float;
const B: Kind = Kind::Boolean;
const T: Kind = Kind::Timestamp;
const J: Kind = Kind::Json;
const OPT_S: Kind = Kind::Optional(&S);
const OPT_I: Kind = Kind::Optional(&I);
const OPT_T: Kind = Kind::Optional(&T);
const OPT_J: Kind = Kind::Optional(&J);
const LIST_S: Kind = Kind::List(&S);

const fn f(name: &'static str, kind: Kind, doc: &'static str) -> Field {
    Field { name, kind, doc }
}

const fn object(name: &'static str, doc: &'static str, fields: &'static [Field]) -> ObjectType {
    ObjectType {
        name,
        module: None,
        doc,
        fields,
    }
}

const fn grouped(module: &'static str, name: &'static str, doc: &'static str, fields: &'static [Field]) -> ObjectType {
    ObjectType {
        name,
        module: Some(module),
        doc,
        fields,
    }
}

/// Every object a binding hands out, in the order docs/bindings.md lists them.
pub const OBJECTS: &[ObjectType] = &[
    object(
        "Task",
        "One run of a template.",
        &[
            f("id", S, "UUID"),
            f("template_id", S, "UUID of the template version the task runs"),
            f("namespace", S, ""),
            f("name", S, "the template name"),
            f("version", S, "the template version (semver)"),
            f(
                "state",
                S,
                "`pending`, `in_progress`, `complete`, `error`, `cancelled` or `resolved_manually`",
            ),
            f("context", J, "the task context, a JSON object"),
            f("tags", Kind::Map(&S), ""),
            f("idempotency_key", OPT_S, ""),
            f("initiator", OPT_S, "who asked for the task"),
            f("source_system", OPT_S, "which system asked for it"),
            f("reason", OPT_S, "why"),
            f("steps_total", I, "how many steps the task has"),
            f("steps_succeeded", I, "steps `complete` or `resolved_manually`"),
            f("steps_failed", I, "steps in `error`"),
            f("created_at", T, ""),
            f("updated_at", T, ""),
            f("started_at", OPT_T, "when its first step was claimed"),
            f("finished_at", OPT_T, "when it last reached a terminal state"),
            f("priority", I, "claims take higher priorities first; the default of its steps"),
            f("run_at", OPT_T, "when it was asked to start, if it was created to start later"),
            f("held_until", OPT_T, "while set, no step runs before this time (its start time)"),
        ],
    ),
    object(
        "Step",
        "One step of one task.",
        &[
            f("id", S, "UUID"),
            f("task_id", S, "UUID"),
            f("name", S, ""),
            f("handler_key", S, ""),
            f("position", I, "declaration order within the template"),
            f(
                "state",
                S,
                "`pending`, `in_progress`, `waiting_for_retry`, `complete`, `error`, `cancelled` or `resolved_manually`",
            ),
            f("attempts", I, "attempts made so far; never reset"),
            f("max_attempts", I, "the attempt number at which the current budget ends"),
            f("retry", Kind::Object("RetryPolicy"), ""),
            f("timeout_seconds", I, "how long one attempt may run"),
            f("config", J, "the step's config from the template"),
            f("next_attempt_at", OPT_T, "when a scheduled retry falls due"),
            f("lease_expires_at", OPT_T, "when the current claim's lease ends"),
            f("worker_id", OPT_S, "the worker that last claimed the step"),
            f("result", OPT_J, "the handler's (or operator's) result"),
            f("error", Kind::Optional(&Kind::Object("StepError")), "the last failure"),
            f("created_at", T, ""),
            f("updated_at", T, ""),
            f("started_at", OPT_T, "when the current or last attempt was claimed"),
            f("finished_at", OPT_T, "when the step last reached a terminal state"),
            f("priority", I, "claims take higher priorities first"),
        ],
    ),
    object(
        "StepError",
        "What a handler reported when it failed, as recorded on the step.",
        &[
            f("error_class", S, "the exception class, or `worker_lost` when a lease expired"),
            f("message", S, ""),
            f("backtrace", LIST_S, "backtrace lines, outermost first"),
            f("code", OPT_S, "an error code the handler gave"),
            f("retryable", B, "whether the handler called the failure retryable"),
        ],
    ),
    object(
        "RetryPolicy",
        "The retry policy of a step, after template defaults are applied.",
        &[
            f("max_attempts", I, "attempts in one budget, including the first"),
            f("retryable", B, "`false` means the step runs once"),
            f("backoff", S, "`exponential`, `linear` or `none`"),
            f("base_ms", I, "milliseconds"),
            f("max_ms", I, "milliseconds; caps the delay and any `retry_after`"),
            f("jitter", F, "0.0..=1.0, the fraction of the delay added or removed at random"),
        ],
    ),
    object(
        "StepContext",
        "Everything a handler needs to run one claimed step.",
        &[
            f("task_id", S, "UUID"),
            f("step_id", S, "UUID"),
            f("step_name", S, "the step's name within its template"),
            f("handler_key", S, "the handler key the step runs under"),
            f("attempt", I, "this attempt, from 1; never reset, not even by `retry_task`"),
            f("max_attempts", I, "the attempt number at which the current budget ends"),
            f("context", J, "the task context"),
            f("config", J, "the step's config from the template"),
            f("dependency_results", Kind::Map(&J), "the results of the step's parents, by step name"),
            f("deadline", T, "when the handler's time runs out (`timeout_seconds` after the claim)"),
            f("lease_expires_at", T, "when the claim's lease ends unless a heartbeat extends it"),
            f("namespace", S, "the task's template namespace"),
            f("task_name", S, "the task's template name"),
            f(
                "token",
                Kind::Object("ClaimToken"),
                "present it to `complete` or `fail`; also the handler's idempotency key",
            ),
        ],
    ),
    object(
        "ClaimToken",
        "Proof of a claim: the step and the attempt the claim made.",
        &[
            f("step_id", S, "UUID of the claimed step"),
            f("attempt", I, "the attempt this claim made, from 1"),
        ],
    ),
    object(
        "TemplateInfo",
        "A registered template version.",
        &[
            f("id", S, "UUID"),
            f("namespace", S, ""),
            f("name", S, ""),
            f("version", S, "semver"),
            f("description", OPT_S, ""),
            f("content_hash", S, "SHA-256 (hex) of the canonical content"),
            f("input_schema", OPT_J, "the JSON Schema task contexts are checked against"),
            f("priority", OPT_I, "the priority of its tasks unless `create_task` gives one"),
            f("steps", Kind::List(&Kind::Object("TemplateStep")), "in declaration order"),
            f("created_at", T, ""),
        ],
    ),
    object(
        "TemplateStep",
        "One step of a registered template.",
        &[
            f("name", S, ""),
            f("handler_key", S, ""),
            f("description", OPT_S, ""),
            f("depends_on", LIST_S, "the steps this one waits for"),
            f("config", J, "handed to the handler as-is"),
            f("retry", Kind::Object("RetryPolicy"), ""),
            f("timeout_seconds", I, ""),
            f("priority", OPT_I, "overrides the task's priority for this step"),
        ],
    ),
    object(
        "Registration",
        "The result of registering a template.",
        &[
            f("template", Kind::Object("TemplateInfo"), "the registered version"),
            f("created", B, "false when the same content was already registered under this version"),
        ],
    ),
    object(
        "Transitions",
        "The audit trail of a task.",
        &[
            f("task", Kind::List(&Kind::Object("TaskTransition")), "by sort key"),
            f("steps", Kind::List(&Kind::Object("StepTransition")), "by step, then sort key"),
        ],
    ),
    object(
        "TaskTransition",
        "One row of a task's audit trail.",
        &[
            f("id", S, "UUID"),
            f("task_id", S, "UUID"),
            f("from_state", OPT_S, "absent on the row written at creation"),
            f("to_state", S, ""),
            f("event", OPT_S, "the task event (`start`, `complete`, …); absent on the creation row"),
            f("metadata", J, ""),
            f("sort_key", I, "1, 2, … in order"),
            f("created_at", T, ""),
        ],
    ),
    object(
        "StepTransition",
        "One row of a step's audit trail.",
        &[
            f("id", S, "UUID"),
            f("step_id", S, "UUID"),
            f("task_id", S, "UUID"),
            f("from_state", OPT_S, "absent on the row written at creation"),
            f(
                "to_state",
                S,
                "",
            ),
            f(
                "event",
                OPT_S,
                "the step event (`claim`, `complete`, `fail_retryable`, …); absent on the creation row",
            ),
            f("attempt", I, "the step's attempt count when the row was written"),
            f("worker_id", OPT_S, ""),
            f("metadata", J, ""),
            f("sort_key", I, "1, 2, … in order, per step"),
            f("created_at", T, ""),
        ],
    ),
    object(
        "Explain",
        "Why each step of a task is or is not ready.",
        &[
            f("task_id", S, "UUID"),
            f("task_state", S, ""),
            f("scheduled_for", OPT_T, "when the task starts, if that time is still to come"),
            f("schedule", OPT_S, "the schedule that created the task, if one did and it is still registered"),
            f("schedule_next_fire_at", OPT_T, "that schedule's next occurrence; absent while it is paused"),
            f("steps", Kind::List(&Kind::Object("StepReadiness")), "in template order"),
        ],
    ),
    object(
        "StepReadiness",
        "Why one step is or is not ready.",
        &[
            f("step_id", S, "UUID"),
            f("name", S, ""),
            f("handler_key", S, ""),
            f("state", S, "the step state"),
            f("ready", B, "a claim would take it now"),
            f("attempts", I, ""),
            f("max_attempts", I, ""),
            f("blocked_by", LIST_S, "parents not yet `complete` or `resolved_manually`"),
            f(
                "blocked_by_failure",
                LIST_S,
                "parents in `error` or `cancelled`, which block until an operator acts",
            ),
            f("retry_at", OPT_T, "when a waiting retry falls due, if not yet"),
            f(
                "scheduled_for",
                OPT_T,
                "for a root step of a task that starts later, when it starts",
            ),
            f("priority", I, "claims take higher priorities first"),
            f("attempts_exhausted", B, "the step failed and has no attempts left in its budget"),
            f("task_runnable", B, "the task is `pending` or `in_progress`"),
            f("lease_expires_at", OPT_T, "for a running step, when its lease ends"),
            f(
                "concurrency_key",
                OPT_S,
                "the step's concurrency key, if its template step declares a concurrency limit",
            ),
            f("concurrency_limit", OPT_I, "how many steps of that key may run at once"),
            f("concurrency_running", OPT_I, "how many steps of that key are `in_progress` now"),
            f("reasons", LIST_S, "human-readable reasons"),
        ],
    ),
    grouped(
        "performance",
        "ExecutionContext",
        "Where a task stands and what should happen next.",
        &[
            f("task_id", S, "UUID"),
            f("task_state", S, ""),
            f("total_steps", I, ""),
            f("pending_steps", I, ""),
            f("ready_steps", I, "claimable now"),
            f("in_progress_steps", I, ""),
            f("waiting_for_retry_steps", I, ""),
            f("completed_steps", I, ""),
            f("failed_steps", I, "in `error`"),
            f("cancelled_steps", I, ""),
            f("resolved_manually_steps", I, ""),
            f("blocked_steps", I, "pending steps held up by a failed or cancelled ancestor"),
            f(
                "execution_status",
                S,
                "`all_complete`, `has_ready_steps`, `processing`, `waiting_for_retry`, `blocked_by_failures` or `cancelled`",
            ),
            f(
                "recommended_action",
                S,
                "`none`, `execute_ready_steps`, `wait_for_completion`, `wait_for_retry` or `handle_failures`",
            ),
            f("completion_ratio", F, "share of steps that succeeded, 0.0..=1.0"),
        ],
    ),
    grouped(
        "performance",
        "DependencyLevel",
        "A step and the level of the DAG it sits on.",
        &[
            f("step_id", S, "UUID"),
            f("name", S, "the step name"),
            f("level", I, "roots are 0; every other step is one more than its deepest parent"),
        ],
    ),
    grouped(
        "performance",
        "HealthCounts",
        "Tasks and steps by state.",
        &[
            f("tasks", Kind::Map(&I), "task state to count, every state present"),
            f("steps", Kind::Map(&I), "step state to count, every state present"),
            f("total_tasks", I, ""),
            f("total_steps", I, ""),
            f("retrying", I, "steps waiting for a retry"),
            f("exhausted", I, "steps in `error` that used their whole budget"),
        ],
    ),
    grouped(
        "performance",
        "AnalyticsMetrics",
        "Throughput, rates and durations of work finished in a window, computed from stored data.",
        &[
            f("since", T, "start of the window"),
            f("until", T, "end of the window (now, by the engine's clock)"),
            f("window_seconds", F, ""),
            f("tasks_completed", I, ""),
            f("tasks_failed", I, ""),
            f("task_completion_rate", F, "completed ÷ (completed + failed); 0 when none finished"),
            f("task_error_rate", F, ""),
            f("task_throughput_per_second", F, "tasks completed per second"),
            f("steps_completed", I, ""),
            f("steps_failed", I, ""),
            f(
                "step_retries",
                I,
                "failed attempts scheduled to run again (handler failures and expired leases)",
            ),
            f("step_throughput_per_second", F, "steps completed per second"),
            f(
                "task_duration",
                Kind::Object("DurationStats"),
                "creation to completion, for tasks completed in the window",
            ),
            f(
                "step_duration",
                Kind::Object("DurationStats"),
                "claim of the final attempt to completion, for steps completed in the window",
            ),
        ],
    ),
    grouped(
        "performance",
        "DurationStats",
        "Summary statistics of durations, in milliseconds.",
        &[
            f("count", I, "how many durations"),
            f("mean_ms", F, ""),
            f("p50_ms", I, "nearest-rank"),
            f("p95_ms", I, "nearest-rank"),
            f("max_ms", I, ""),
        ],
    ),
    grouped(
        "performance",
        "SlowStep",
        "A finished step and how long its final attempt took.",
        &[
            f("step_id", S, "UUID"),
            f("task_id", S, "UUID"),
            f("namespace", S, ""),
            f("task_name", S, ""),
            f("version", S, ""),
            f("step_name", S, ""),
            f("state", S, "`complete` or `error`"),
            f("attempts", I, ""),
            f("duration_ms", I, ""),
            f("started_at", OPT_T, ""),
            f("finished_at", T, ""),
        ],
    ),
    grouped(
        "performance",
        "SlowTask",
        "A finished task and how long it took from creation.",
        &[
            f("task_id", S, "UUID"),
            f("namespace", S, ""),
            f("name", S, ""),
            f("version", S, ""),
            f("state", S, "`complete` or `error`"),
            f("steps_total", I, ""),
            f("duration_ms", I, ""),
            f("created_at", T, ""),
            f("finished_at", T, ""),
        ],
    ),
    grouped(
        "events",
        "Event",
        "Something that happened to a task or a step: one per transition row.",
        &[
            f(
                "name",
                S,
                "for example `task.created`, `step.claimed`, `step.completed`, `step.retry_scheduled`",
            ),
            f("task_id", S, "UUID"),
            f("step_id", OPT_S, "UUID; absent on task events"),
            f("step_name", OPT_S, "absent on task events"),
            f("attempt", OPT_I, "the step's attempt count; absent on task events"),
            f("from_state", OPT_S, "absent on creation events"),
            f("to_state", S, ""),
            f("worker_id", OPT_S, ""),
            f("metadata", J, "the transition row's metadata"),
            f("timestamp", T, ""),
        ],
    ),
    object(
        "ReapReport",
        "What a pass of lease reaping did.",
        &[
            f("retried", I, "expired steps that will be retried"),
            f("failed", I, "expired steps with no attempts left, now `error` with `worker_lost`"),
        ],
    ),
    object(
        "Schedule",
        "A registered cron schedule and where it stands.",
        &[
            f("name", S, "unique among schedules"),
            f("namespace", S, ""),
            f("template", S, "the template's name"),
            f("version", OPT_S, "the template version; the newest at each fire when absent"),
            f("cron", S, "the cron expression (5 or 6 fields, or `@daily` and the like)"),
            f("timezone", S, "the IANA zone the expression is read in"),
            f("context", J, "the context of every task it creates"),
            f("priority", OPT_I, "the priority of its tasks; the template's when absent"),
            f("misfire", S, "what happens to occurrences missed while nothing ran: `skip` or `run_once`"),
            f("paused", B, ""),
            f("next_fire_at", OPT_T, "the next occurrence; absent while paused"),
            f("last_fire_at", OPT_T, "the occurrence that last created a task"),
            f("last_task_id", OPT_S, "UUID of the task it created last"),
            f("fired", I, "tasks created"),
            f("missed", I, "occurrences missed while nothing ran"),
            f("last_error", OPT_S, "why the last occurrence could not create its task; cleared by the next that does"),
            f("created_at", T, ""),
            f("updated_at", T, ""),
        ],
    ),
    object(
        "ScheduleReport",
        "What one pass over due schedules did.",
        &[
            f("fired", I, "tasks created"),
            f("missed", I, "occurrences missed (more than the misfire grace late)"),
            f("failed", I, "occurrences whose task could not be created (see `Schedule.last_error`)"),
            f("next_fire_at", OPT_T, "the earliest next occurrence of any schedule not paused"),
        ],
    ),
    object(
        "ClientHealth",
        "What the handle of a client reports about itself.",
        &[
            f("store_kind", S, "`memory`, `sqlite` or `postgres`"),
            f("url", S, "the URL the client opened, with any password replaced by `***`"),
            f("pool_size", I, "connections in the pool (1 for the memory store)"),
            f("idle_connections", I, ""),
            f("age_ms", I, "milliseconds since the client was opened"),
            f("opened_at", T, "when the client was opened (wall clock)"),
            f("pid", I, "the process that opened the client"),
            f("refreshes", I, "how many times `validate_or_refresh` rebuilt the store connection"),
            f("clock", S, "`system` or `manual`"),
        ],
    ),
    object(
        "SessionStats",
        "What a worker session did so far.",
        &[
            f("claimed", I, "steps claimed"),
            f("completed", I, "completions the engine accepted"),
            f("failed", I, "failures the engine accepted (timeouts included)"),
            f("rejected", I, "outcomes rejected (stale claim, cancelled step, malformed token, …)"),
            f("lost", I, "claims whose lease a heartbeat found already lost"),
            f("timed_out", I, "handlers failed with `timeout` for running past their deadline"),
            f("late", I, "outcomes reported after their handler was timed out (each rejected as a stale claim)"),
            f("abandoned", I, "outcomes the reporter gave up on; their steps are recovered when their leases expire"),
            f("store_errors", I, "claims, reports, heartbeats and maintenance passes that failed on a store error and were retried"),
            f("outstanding", I, "claims not yet reported"),
        ],
    ),
    grouped(
        "testing",
        "PatternTasks",
        "A factory workflow and the tasks made of it.",
        &[
            f("template", Kind::Object("TemplateInfo"), "the registered template"),
            f("tasks", Kind::List(&Kind::Object("Task")), "in creation order"),
        ],
    ),
    grouped(
        "testing",
        "HandlerCall",
        "One handler run of a run until idle.",
        &[
            f("task_id", S, "UUID"),
            f("step_id", S, "UUID"),
            f("step_name", S, ""),
            f("handler_key", S, ""),
            f("attempt", I, ""),
            f("dependency_results", Kind::Map(&J), "what the handler saw of its parents"),
            f("outcome", S, "`succeed`, `fail_retryable`, `fail_permanent` or `overrun_lease`"),
            f("rejected", OPT_S, "the error kind when the engine rejected the outcome"),
        ],
    ),
    grouped(
        "testing",
        "RunReport",
        "What a run until idle did: every `run_until_idle` returns one.",
        &[
            f("calls", Kind::List(&Kind::Object("HandlerCall")), "in the order the handlers ran"),
            f("completed", I, "successes the engine accepted"),
            f("failed", I, "failures the engine accepted"),
            f("overrun", I, "claims left to expire"),
            f("rejected", I, "outcomes the engine rejected"),
            f(
                "advanced_ms",
                I,
                "milliseconds a manual clock was moved forward to reach scheduled retries",
            ),
            f("timed_out", I, "handlers the session failed with `timeout` for running past their deadline"),
        ],
    ),
];

/// The position of the object called `name` in [`OBJECTS`].
pub fn index_of(name: &str) -> Option<usize> {
    OBJECTS.iter().position(|o| o.name == name)
}
