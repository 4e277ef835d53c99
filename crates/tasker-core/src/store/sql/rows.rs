//! Rows as model values, for both SQL stores: the column lists, and one decoder per row type.
//!
//! The stores keep some values differently (SQLite: ids as text, timestamps as unix milliseconds, JSON as
//! text; PostgreSQL: uuid, timestamptz, jsonb), so each says how it reads those few types ([`SqlRow`]); which
//! column goes into which field, and what a bad value is called, is written once here.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use sqlx::{ColumnIndex, Decode, Row, Type};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::state::{StepEvent, StepState, TaskEvent, TaskState};

pub(crate) const TEMPLATE_COLUMNS: &str = "id, namespace, name, version, content_hash, template, created_at";

pub(crate) const TASK_COLUMNS: &str = "id, template_id, namespace, name, version, state, context, tags, \
     idempotency_key, initiator, source_system, reason, steps_total, steps_succeeded, steps_failed, transition_count, \
     created_at, updated_at, started_at, finished_at, priority, run_at, held_until";

pub(crate) const STEP_COLUMNS: &str = "id, task_id, name, handler_key, position, state, attempts, max_attempts, \
     retry, timeout_seconds, config, unfinished_parents, next_attempt_at, lease_expires_at, worker_id, result, error, \
     transition_count, created_at, updated_at, started_at, finished_at, priority, ready_at, concurrency_key, \
     concurrency_limit";

pub(crate) const STEP_TRANSITION_COLUMNS: &str =
    "id, step_id, task_id, from_state, to_state, event, attempt, worker_id, metadata, sort_key, created_at";

pub(crate) const TASK_TRANSITION_COLUMNS: &str =
    "id, task_id, from_state, to_state, event, metadata, sort_key, created_at";

/// How one store's rows read each kind of value it keeps. Every read fails with an `internal` error naming
/// `table.column` (see [`Cols::corrupt`]).
pub(crate) trait SqlRow: Row + Sized {
    fn text(c: &Cols<'_, Self>, column: &str) -> Result<String>;
    fn opt_text(c: &Cols<'_, Self>, column: &str) -> Result<Option<String>>;
    fn int(c: &Cols<'_, Self>, column: &str) -> Result<i64>;
    fn int32(c: &Cols<'_, Self>, column: &str) -> Result<i32>;
    fn opt_int32(c: &Cols<'_, Self>, column: &str) -> Result<Option<i32>>;
    fn uuid(c: &Cols<'_, Self>, column: &str) -> Result<Uuid>;
    fn ts(c: &Cols<'_, Self>, column: &str) -> Result<Timestamp>;
    fn opt_ts(c: &Cols<'_, Self>, column: &str) -> Result<Option<Timestamp>>;
    fn json<T: DeserializeOwned>(c: &Cols<'_, Self>, column: &str) -> Result<T>;
    fn opt_json<T: DeserializeOwned>(c: &Cols<'_, Self>, column: &str) -> Result<Option<T>>;
}

/// Typed reads of one row of `table`.
pub(crate) struct Cols<'r, R> {
    row: &'r R,
    table: &'static str,
}

impl<'r, R: Row> Cols<'r, R> {
    pub(crate) fn new(row: &'r R, table: &'static str) -> Self {
        Cols { row, table }
    }

    pub(crate) fn corrupt(&self, column: &str, detail: impl fmt::Display) -> Error {
        Error::Internal(format!("corrupt value in {}.{column}: {detail}", self.table))
    }

    /// The column as the driver decodes it; for [`SqlRow`] implementations.
    pub(crate) fn get<T>(&self, column: &str) -> Result<T>
    where
        T: Decode<'r, R::Database> + Type<R::Database>,
        for<'c> &'c str: ColumnIndex<R>,
    {
        self.row.try_get::<T, _>(column).map_err(|e| self.corrupt(column, e))
    }
}

impl<R: SqlRow> Cols<'_, R> {
    pub(crate) fn text(&self, column: &str) -> Result<String> {
        R::text(self, column)
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>> {
        R::opt_text(self, column)
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64> {
        R::int(self, column)
    }

    pub(crate) fn int32(&self, column: &str) -> Result<i32> {
        R::int32(self, column)
    }

    pub(crate) fn opt_int32(&self, column: &str) -> Result<Option<i32>> {
        R::opt_int32(self, column)
    }

    pub(crate) fn uuid(&self, column: &str) -> Result<Uuid> {
        R::uuid(self, column)
    }

    pub(crate) fn ts(&self, column: &str) -> Result<Timestamp> {
        R::ts(self, column)
    }

    pub(crate) fn opt_ts(&self, column: &str) -> Result<Option<Timestamp>> {
        R::opt_ts(self, column)
    }

    pub(crate) fn json<T: DeserializeOwned>(&self, column: &str) -> Result<T> {
        R::json(self, column)
    }

    pub(crate) fn opt_json<T: DeserializeOwned>(&self, column: &str) -> Result<Option<T>> {
        R::opt_json(self, column)
    }

    /// A text column holding a state or event name.
    pub(crate) fn parse<T: FromStr>(&self, column: &str) -> Result<T>
    where
        T::Err: fmt::Display,
    {
        let s = self.text(column)?;
        s.parse().map_err(|e| self.corrupt(column, e))
    }

    pub(crate) fn opt_parse<T: FromStr>(&self, column: &str) -> Result<Option<T>>
    where
        T::Err: fmt::Display,
    {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|e| self.corrupt(column, e)),
        }
    }
}

/// Decodes every row with `decode`.
pub(crate) fn rows<R, T>(rows: &[R], decode: fn(&R) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(decode).collect()
}

pub(crate) fn template_from_row<R: SqlRow>(row: &R) -> Result<TemplateRecord> {
    let c = Cols::new(row, "templates");
    Ok(TemplateRecord {
        id: c.uuid("id")?,
        namespace: c.text("namespace")?,
        name: c.text("name")?,
        version: c.text("version")?,
        content_hash: c.text("content_hash")?,
        template: c.json("template")?,
        created_at: c.ts("created_at")?,
    })
}

pub(crate) fn task_from_row<R: SqlRow>(row: &R) -> Result<Task> {
    let c = Cols::new(row, "tasks");
    Ok(Task {
        id: c.uuid("id")?,
        template_id: c.uuid("template_id")?,
        namespace: c.text("namespace")?,
        name: c.text("name")?,
        version: c.text("version")?,
        state: c.parse::<TaskState>("state")?,
        context: c.json("context")?,
        tags: c.json("tags")?,
        idempotency_key: c.opt_text("idempotency_key")?,
        initiator: c.opt_text("initiator")?,
        source_system: c.opt_text("source_system")?,
        reason: c.opt_text("reason")?,
        steps_total: c.int("steps_total")?,
        steps_succeeded: c.int("steps_succeeded")?,
        steps_failed: c.int("steps_failed")?,
        transition_count: c.int("transition_count")?,
        created_at: c.ts("created_at")?,
        updated_at: c.ts("updated_at")?,
        started_at: c.opt_ts("started_at")?,
        finished_at: c.opt_ts("finished_at")?,
        priority: c.int32("priority")?,
        run_at: c.opt_ts("run_at")?,
        held_until: c.opt_ts("held_until")?,
    })
}

pub(crate) fn step_from_row<R: SqlRow>(row: &R) -> Result<Step> {
    let c = Cols::new(row, "steps");
    Ok(Step {
        id: c.uuid("id")?,
        task_id: c.uuid("task_id")?,
        name: c.text("name")?,
        handler_key: c.text("handler_key")?,
        position: c.int32("position")?,
        state: c.parse::<StepState>("state")?,
        attempts: c.int("attempts")?,
        max_attempts: c.int("max_attempts")?,
        retry: c.json("retry")?,
        timeout_seconds: c.int("timeout_seconds")?,
        config: c.json("config")?,
        unfinished_parents: c.int("unfinished_parents")?,
        next_attempt_at: c.opt_ts("next_attempt_at")?,
        lease_expires_at: c.opt_ts("lease_expires_at")?,
        worker_id: c.opt_text("worker_id")?,
        result: c.opt_json("result")?,
        error: c.opt_json("error")?,
        transition_count: c.int("transition_count")?,
        created_at: c.ts("created_at")?,
        updated_at: c.ts("updated_at")?,
        started_at: c.opt_ts("started_at")?,
        finished_at: c.opt_ts("finished_at")?,
        priority: c.int32("priority")?,
        ready_at: c.ts("ready_at")?,
        concurrency_key: c.opt_text("concurrency_key")?,
        concurrency_limit: c.opt_int32("concurrency_limit")?,
    })
}

pub(crate) fn step_transition_from_row<R: SqlRow>(row: &R) -> Result<StepTransition> {
    let c = Cols::new(row, "step_transitions");
    Ok(StepTransition {
        id: c.uuid("id")?,
        step_id: c.uuid("step_id")?,
        task_id: c.uuid("task_id")?,
        from_state: c.opt_parse::<StepState>("from_state")?,
        to_state: c.parse::<StepState>("to_state")?,
        event: c.opt_parse::<StepEvent>("event")?,
        attempt: c.int("attempt")?,
        worker_id: c.opt_text("worker_id")?,
        metadata: c.json("metadata")?,
        sort_key: c.int("sort_key")?,
        created_at: c.ts("created_at")?,
    })
}

/// A step transition row of the event feed, with its step's name in `step_name` (absent if the step is gone).
pub(crate) fn feed_step_from_row<R: SqlRow>(row: &R) -> Result<(StepTransition, Option<String>)> {
    let name = Cols::new(row, "steps").opt_text("step_name")?;
    Ok((step_transition_from_row(row)?, name))
}

pub(crate) fn task_transition_from_row<R: SqlRow>(row: &R) -> Result<TaskTransition> {
    let c = Cols::new(row, "task_transitions");
    Ok(TaskTransition {
        id: c.uuid("id")?,
        task_id: c.uuid("task_id")?,
        from_state: c.opt_parse::<TaskState>("from_state")?,
        to_state: c.parse::<TaskState>("to_state")?,
        event: c.opt_parse::<TaskEvent>("event")?,
        metadata: c.json("metadata")?,
        sort_key: c.int("sort_key")?,
        created_at: c.ts("created_at")?,
    })
}

pub(crate) fn step_timing_from_row<R: SqlRow>(row: &R) -> Result<StepTiming> {
    let c = Cols::new(row, "steps");
    Ok(StepTiming {
        step_id: c.uuid("step_id")?,
        task_id: c.uuid("task_id")?,
        namespace: c.text("namespace")?,
        task_name: c.text("task_name")?,
        version: c.text("version")?,
        step_name: c.text("step_name")?,
        state: c.parse::<StepState>("state")?,
        attempts: c.int("attempts")?,
        started_at: c.opt_ts("started_at")?,
        finished_at: c.ts("finished_at")?,
    })
}

pub(crate) fn task_timing_from_row<R: SqlRow>(row: &R) -> Result<TaskTiming> {
    let c = Cols::new(row, "tasks");
    Ok(TaskTiming {
        task_id: c.uuid("id")?,
        namespace: c.text("namespace")?,
        name: c.text("name")?,
        version: c.text("version")?,
        state: c.parse::<TaskState>("state")?,
        steps_total: c.int("steps_total")?,
        created_at: c.ts("created_at")?,
        finished_at: c.ts("finished_at")?,
    })
}

/// A summary row: completed, failed, n, sum_ms, p50_ms, p95_ms and max_ms.
pub(crate) fn summary_from_row<R: SqlRow>(row: &R, table: &'static str) -> Result<FinishedSummary> {
    let c = Cols::new(row, table);
    Ok(FinishedSummary {
        completed: c.int("completed")?,
        failed: c.int("failed")?,
        durations: c.int("n")?,
        sum_ms: c.int("sum_ms")?,
        p50_ms: c.int("p50_ms")?,
        p95_ms: c.int("p95_ms")?,
        max_ms: c.int("max_ms")?,
    })
}

/// `(event, n)` rows of a per-event count.
pub(crate) fn event_count_from_row<R: SqlRow>(row: &R) -> Result<(String, i64)> {
    let c = Cols::new(row, "step_transitions");
    Ok((c.text("event")?, c.int("n")?))
}

/// The ids of `(id, unfinished_parents)` rows, as a release of parents returns them, whose count reached
/// zero: the children that release made ready.
pub(crate) fn released_from_rows<R: SqlRow>(rows: &[R]) -> Result<Vec<Uuid>> {
    let mut ready = Vec::new();
    for row in rows {
        let c = Cols::new(row, "steps");
        if c.int("unfinished_parents")? == 0 {
            ready.push(c.uuid("id")?);
        }
    }
    Ok(ready)
}

/// A schedule: its `body` column holds all of it (`next_fire_at` is a copy kept for the index).
pub(crate) fn schedule_from_row<R: SqlRow>(row: &R) -> Result<crate::schedule::Schedule> {
    Cols::new(row, "schedules").json("body")
}
