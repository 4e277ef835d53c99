//! Write transactions of the SQLite store: every one holds the database's write lock from its first
//! statement (`BEGIN IMMEDIATE`), which is also what makes a claim exclusive.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::codec::{id, id_array, json, ms, opt_json, opt_ms, string_array};
use super::{db_err, fetch_claim_inputs, fetch_step, fetch_steps_of_task, fetch_task, is_unique_violation};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::state::{StepEvent, StepState, TaskEvent, TaskState};
use crate::store::sql::error::{idempotency_key_taken, template_taken};
use crate::store::sql::query::batch_updated;
use crate::store::sql::rows::{
    released_from_rows, rows, schedule_from_row, step_from_row, task_from_row, template_from_row, Cols, STEP_COLUMNS,
    STEP_TRANSITION_COLUMNS, TASK_COLUMNS, TASK_TRANSITION_COLUMNS, TEMPLATE_COLUMNS,
};
use crate::store::{ClaimInput, ClaimParams, ClaimedRow, StoreTx};

/// The ready steps a claim may take, in claim order; binds: handler keys as a JSON array, now, limit.
///
/// The state and unfinished_parents terms repeat steps_claim_idx's WHERE clause word for word, which is what
/// lets the planner use that partial index, and CROSS JOIN makes SQLite drive from steps: left to itself it may
/// start from tasks by state and walk every step of every runnable task. A test checks the plan.
///
/// A keyed step is a candidate only while fewer than its limit steps of its key run (`running`, counted
/// through steps_concurrency_running_idx; the OR leaves unkeyed rows uncounted). The write lock, held since
/// the transaction's first statement, keeps every other claimer out until this claim commits, so the count
/// cannot change underneath it; several candidates of one key in one answer are sorted out by `step_claim`.
pub(super) const CLAIM_CANDIDATES_SQL: &str = "SELECT s.id AS id, s.state AS state, t.state AS task_state,
            s.concurrency_key AS concurrency_key, s.concurrency_limit AS concurrency_limit,
            CASE WHEN s.concurrency_key IS NULL THEN 0 ELSE (
                SELECT count(*) FROM steps r
                WHERE r.state = 'in_progress' AND r.concurrency_key IS NOT NULL
                  AND r.concurrency_key = s.concurrency_key) END AS running
     FROM steps s CROSS JOIN tasks t ON t.id = s.task_id
     WHERE s.state IN ('pending', 'waiting_for_retry') AND s.unfinished_parents = 0
       AND s.handler_key IN (SELECT value FROM json_each(?))
       AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= ?)
       AND t.state IN ('pending', 'in_progress')
       AND (s.concurrency_key IS NULL OR s.concurrency_limit > (
                SELECT count(*) FROM steps r
                WHERE r.state = 'in_progress' AND r.concurrency_key IS NOT NULL
                  AND r.concurrency_key = s.concurrency_key))
     ORDER BY s.priority DESC, s.ready_at, s.id
     LIMIT ?";

/// Takes away the start-time parent of the root steps of tasks whose hold fell due (see `Task::held_until`),
/// through tasks_held_idx, which holds only held tasks. Binds: now.
const RELEASE_HELD_STEPS_SQL: &str = "UPDATE steps SET unfinished_parents = unfinished_parents - 1,
         ready_at = (SELECT t.held_until FROM tasks t WHERE t.id = steps.task_id), updated_at = ?1
     WHERE task_id IN (SELECT id FROM tasks WHERE held_until <= ?1)
       AND state = 'pending' AND unfinished_parents > 0
       AND NOT EXISTS (SELECT 1 FROM step_edges e WHERE e.child_id = steps.id)";

/// Clears the holds [`RELEASE_HELD_STEPS_SQL`] released. Binds: now.
const CLEAR_HOLDS_SQL: &str = "UPDATE tasks SET held_until = NULL, updated_at = ?1 WHERE held_until <= ?1";

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Binds every column of a task in [`TASK_COLUMNS`] order; the insert and the full update share it, so they
/// cannot disagree on a column.
fn bind_task<'q>(q: Query<'q>, t: &'q Task) -> Result<Query<'q>> {
    Ok(q.bind(id(t.id))
        .bind(id(t.template_id))
        .bind(&t.namespace)
        .bind(&t.name)
        .bind(&t.version)
        .bind(t.state.as_str())
        .bind(json("tasks.context", &t.context)?)
        .bind(json("tasks.tags", &t.tags)?)
        .bind(&t.idempotency_key)
        .bind(&t.initiator)
        .bind(&t.source_system)
        .bind(&t.reason)
        .bind(t.steps_total)
        .bind(t.steps_succeeded)
        .bind(t.steps_failed)
        .bind(t.transition_count)
        .bind(ms(t.created_at))
        .bind(ms(t.updated_at))
        .bind(opt_ms(t.started_at))
        .bind(opt_ms(t.finished_at))
        .bind(t.priority)
        .bind(opt_ms(t.run_at))
        .bind(opt_ms(t.held_until)))
}

/// Binds every column of a step in [`STEP_COLUMNS`] order, for the insert and the full update alike.
fn bind_step<'q>(q: Query<'q>, s: &'q Step) -> Result<Query<'q>> {
    Ok(q.bind(id(s.id))
        .bind(id(s.task_id))
        .bind(&s.name)
        .bind(&s.handler_key)
        .bind(s.position)
        .bind(s.state.as_str())
        .bind(s.attempts)
        .bind(s.max_attempts)
        .bind(json("steps.retry", &s.retry)?)
        .bind(s.timeout_seconds)
        .bind(json("steps.config", &s.config)?)
        .bind(s.unfinished_parents)
        .bind(opt_ms(s.next_attempt_at))
        .bind(opt_ms(s.lease_expires_at))
        .bind(&s.worker_id)
        .bind(opt_json("steps.result", s.result.as_ref())?)
        .bind(opt_json("steps.error", s.error.as_ref())?)
        .bind(s.transition_count)
        .bind(ms(s.created_at))
        .bind(ms(s.updated_at))
        .bind(opt_ms(s.started_at))
        .bind(opt_ms(s.finished_at))
        .bind(s.priority)
        .bind(ms(s.ready_at))
        .bind(&s.concurrency_key)
        .bind(s.concurrency_limit))
}

/// A write transaction holding the database's write lock from its first statement.
pub(super) struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
}

impl SqliteTx {
    pub(super) fn new(tx: Transaction<'static, Sqlite>) -> Self {
        SqliteTx { tx }
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    /// Moves the picked candidates (id, state, task state, in claim order) to `in_progress`; answers them in
    /// that order.
    async fn claim_picked(
        &mut self,
        params: &ClaimParams,
        picked: Vec<(Uuid, StepState, TaskState)>,
    ) -> Result<Vec<ClaimedRow>> {
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = picked.iter().map(|(i, _, _)| *i).collect();
        let sql = format!(
            "UPDATE steps SET state = 'in_progress', attempts = attempts + 1, transition_count = transition_count + 1,
                 worker_id = ?, lease_expires_at = ?,
                 started_at = ?, next_attempt_at = NULL, updated_at = ?
             WHERE id IN (SELECT value FROM json_each(?))
             RETURNING {STEP_COLUMNS}"
        );
        let updated = sqlx::query(&sql)
            .bind(&params.worker_id)
            .bind(ms(params.lease_expires_at))
            .bind(ms(params.now))
            .bind(ms(params.now))
            .bind(id_array(&ids))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        let mut by_id: HashMap<Uuid, Step> = HashMap::with_capacity(updated.len());
        for row in &updated {
            let step = step_from_row(row)?;
            by_id.insert(step.id, step);
        }
        // RETURNING has no defined order; answer in claim order, the candidates' order.
        picked
            .into_iter()
            .map(|(step_id, from_state, task_state)| {
                by_id
                    .remove(&step_id)
                    .map(|step| ClaimedRow {
                        step,
                        from_state,
                        task_state,
                    })
                    .ok_or_else(|| Error::Internal(format!("claimed step {step_id} vanished during the claim")))
            })
            .collect()
    }
}

#[async_trait]
impl StoreTx for SqliteTx {
    async fn template_insert(&mut self, rec: &TemplateRecord) -> Result<()> {
        let now = ms(rec.created_at);
        sqlx::query("INSERT OR IGNORE INTO namespaces (name, created_at) VALUES (?, ?)")
            .bind(&rec.namespace)
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        let sql = format!("INSERT INTO templates ({TEMPLATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)");
        let inserted = sqlx::query(&sql)
            .bind(id(rec.id))
            .bind(&rec.namespace)
            .bind(&rec.name)
            .bind(&rec.version)
            .bind(&rec.content_hash)
            .bind(json("templates.template", &rec.template)?)
            .bind(now)
            .execute(self.conn())
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(template_taken(rec)),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn template_find(&mut self, namespace: &str, name: &str, version: &str) -> Result<Option<TemplateRecord>> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE namespace = ? AND name = ? AND version = ?");
        let row = sqlx::query(&sql)
            .bind(namespace)
            .bind(name)
            .bind(version)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(template_from_row).transpose()
    }

    async fn task_find_by_idempotency_key(&mut self, namespace: &str, name: &str, key: &str) -> Result<Option<Task>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE namespace = ? AND name = ? AND idempotency_key = ?");
        let row = sqlx::query(&sql)
            .bind(namespace)
            .bind(name)
            .bind(key)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn task_insert(&mut self, task: &Task, steps: &[Step], edges: &[Edge]) -> Result<()> {
        let sql = format!(
            "INSERT INTO tasks ({TASK_COLUMNS})
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let inserted = bind_task(sqlx::query(&sql), task)?.execute(self.conn()).await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) && task.idempotency_key.is_some() => {
                return Err(idempotency_key_taken(task))
            }
            Err(e) => return Err(db_err(e)),
        }

        let sql = format!(
            "INSERT INTO steps ({STEP_COLUMNS})
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        for s in steps {
            bind_step(sqlx::query(&sql), s)?
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }

        for e in edges {
            sqlx::query("INSERT INTO step_edges (task_id, parent_id, child_id) VALUES (?, ?, ?)")
                .bind(id(e.task_id))
                .bind(id(e.parent_id))
                .bind(id(e.child_id))
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    async fn task_lock(&mut self, task_id: Uuid) -> Result<Option<Task>> {
        // The immediate transaction already holds the database's only write lock.
        fetch_task(self.conn(), task_id).await
    }

    async fn task_update(&mut self, task: &Task) -> Result<()> {
        // Numbered so that the binds follow TASK_COLUMNS, as the insert's do.
        let done = bind_task(
            sqlx::query(
                "UPDATE tasks SET template_id = ?2, namespace = ?3, name = ?4, version = ?5, state = ?6, context = ?7,
                     tags = ?8, idempotency_key = ?9, initiator = ?10, source_system = ?11, reason = ?12,
                     steps_total = ?13, steps_succeeded = ?14, steps_failed = ?15, transition_count = ?16,
                     created_at = ?17, updated_at = ?18, started_at = ?19, finished_at = ?20, priority = ?21,
                     run_at = ?22, held_until = ?23
                 WHERE id = ?1",
            ),
            task,
        )?
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("task", task.id));
        }
        Ok(())
    }

    async fn task_lock_many(&mut self, ids: &[Uuid]) -> Result<Vec<Task>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id");
        let found = sqlx::query(&sql)
            .bind(id_array(ids))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        rows(&found, task_from_row)
    }

    async fn task_update_many(&mut self, tasks: &[Task]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        // One statement for the batch: the rows travel as one JSON array parameter.
        let batch: Vec<Value> = tasks
            .iter()
            .map(|t| {
                serde_json::json!([
                    id(t.id),
                    t.state.as_str(),
                    t.steps_succeeded,
                    t.steps_failed,
                    t.transition_count,
                    ms(t.updated_at),
                    t.started_at.map(ms),
                    t.finished_at.map(ms),
                    t.held_until.map(ms)
                ])
            })
            .collect();
        let done = sqlx::query(
            "UPDATE tasks SET state = b.value ->> 1, steps_succeeded = b.value ->> 2, steps_failed = b.value ->> 3,
                 transition_count = b.value ->> 4, updated_at = b.value ->> 5, started_at = b.value ->> 6,
                 finished_at = b.value ->> 7, held_until = b.value ->> 8
             FROM json_each(?) AS b WHERE tasks.id = b.value ->> 0",
        )
        .bind(Value::Array(batch).to_string())
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        batch_updated(done.rows_affected(), tasks.len(), "task")
    }

    async fn step_lock_many(&mut self, ids: &[Uuid]) -> Result<Vec<Step>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id");
        let found = sqlx::query(&sql)
            .bind(id_array(ids))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        rows(&found, step_from_row)
    }

    async fn step_update_many(&mut self, steps: &[Step]) -> Result<()> {
        if steps.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(steps.len());
        for s in steps {
            batch.push(serde_json::json!([
                id(s.id),
                s.state.as_str(),
                s.attempts,
                s.max_attempts,
                s.next_attempt_at.map(ms),
                s.lease_expires_at.map(ms),
                s.worker_id,
                opt_json("steps.result", s.result.as_ref())?,
                opt_json("steps.error", s.error.as_ref())?,
                s.transition_count,
                ms(s.updated_at),
                s.started_at.map(ms),
                s.finished_at.map(ms),
                ms(s.ready_at)
            ]));
        }
        // `->>` hands back the SQL value of each element: text stays text (results and errors are JSON text
        // in the batch, stored as the text they are), numbers stay integers and JSON null becomes NULL.
        let done = sqlx::query(
            "UPDATE steps SET state = b.value ->> 1, attempts = b.value ->> 2, max_attempts = b.value ->> 3,
                 next_attempt_at = b.value ->> 4, lease_expires_at = b.value ->> 5, worker_id = b.value ->> 6,
                 result = b.value ->> 7, error = b.value ->> 8, transition_count = b.value ->> 9,
                 updated_at = b.value ->> 10, started_at = b.value ->> 11, finished_at = b.value ->> 12,
                 ready_at = b.value ->> 13
             FROM json_each(?) AS b WHERE steps.id = b.value ->> 0",
        )
        .bind(Value::Array(batch).to_string())
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        batch_updated(done.rows_affected(), steps.len(), "step")
    }

    async fn step_children_release_many(&mut self, parent_ids: &[Uuid], now: Timestamp) -> Result<Vec<Uuid>> {
        if parent_ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = sqlx::query(
            "UPDATE steps SET unfinished_parents = unfinished_parents - c.n, updated_at = ?1,
                 ready_at = CASE WHEN unfinished_parents = c.n THEN ?1 ELSE ready_at END
             FROM (SELECT child_id, COUNT(*) AS n FROM step_edges
                   WHERE parent_id IN (SELECT value FROM json_each(?2)) GROUP BY child_id) AS c
             WHERE steps.id = c.child_id
             RETURNING id, unfinished_parents",
        )
        .bind(ms(now))
        .bind(id_array(parent_ids))
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        released_from_rows(&found)
    }

    async fn step_lock(&mut self, step_id: Uuid) -> Result<Option<Step>> {
        fetch_step(self.conn(), step_id).await
    }

    async fn step_lock_all(&mut self, task_id: Uuid) -> Result<Option<Vec<Step>>> {
        // The write lock, held since the first statement, covers every row: never busy.
        fetch_steps_of_task(self.conn(), task_id).await.map(Some)
    }

    async fn step_update(&mut self, s: &Step) -> Result<()> {
        // Numbered so that the binds follow STEP_COLUMNS, as the insert's do.
        let done = bind_step(
            sqlx::query(
                "UPDATE steps SET task_id = ?2, name = ?3, handler_key = ?4, position = ?5, state = ?6, attempts = ?7,
                     max_attempts = ?8, retry = ?9, timeout_seconds = ?10, config = ?11, unfinished_parents = ?12,
                     next_attempt_at = ?13, lease_expires_at = ?14, worker_id = ?15, result = ?16, error = ?17,
                     transition_count = ?18, created_at = ?19, updated_at = ?20, started_at = ?21, finished_at = ?22,
                     priority = ?23, ready_at = ?24, concurrency_key = ?25, concurrency_limit = ?26
                 WHERE id = ?1",
            ),
            s,
        )?
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("step", s.id));
        }
        Ok(())
    }

    async fn claim_inputs(&mut self, step_ids: &[Uuid]) -> Result<Vec<ClaimInput>> {
        fetch_claim_inputs(self.conn(), step_ids).await
    }

    async fn step_claim(&mut self, params: &ClaimParams) -> Result<Vec<ClaimedRow>> {
        if params.handler_keys.is_empty() || params.limit == 0 {
            return Ok(Vec::new());
        }
        // Holds that fell due first, so that their root steps are candidates of this very claim.
        for sql in [RELEASE_HELD_STEPS_SQL, CLEAR_HOLDS_SQL] {
            sqlx::query(sql)
                .bind(ms(params.now))
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }
        let mut out = Vec::new();
        // Rounds: each claims what its candidates allow. Candidates of one key beyond its free slots are left
        // for the next round, which counts again (this round's claims included) and so claims the keyed
        // steps further down that still fit, in claim order. Every round claims one step at least (its first
        // candidate always fits), and with no candidate skipped there is one round, as without keyed steps.
        loop {
            let want = params.limit as usize - out.len();
            let candidates = sqlx::query(CLAIM_CANDIDATES_SQL)
                .bind(string_array(&params.handler_keys))
                .bind(ms(params.now))
                .bind(want as i64)
                .fetch_all(self.conn())
                .await
                .map_err(db_err)?;
            if candidates.is_empty() {
                break;
            }
            let exhausted = candidates.len() < want;
            let mut picked = Vec::with_capacity(candidates.len());
            let mut taken: HashMap<String, i64> = HashMap::new();
            let mut skipped = false;
            for row in &candidates {
                let c = Cols::new(row, "steps");
                if let Some(key) = c.opt_text("concurrency_key")? {
                    let limit = i64::from(c.opt_int32("concurrency_limit")?.unwrap_or(0));
                    let n = taken.entry(key).or_insert(0);
                    if c.int("running")? + *n >= limit {
                        skipped = true;
                        continue;
                    }
                    *n += 1;
                }
                picked.push((
                    c.uuid("id")?,
                    c.parse::<StepState>("state")?,
                    c.parse::<TaskState>("task_state")?,
                ));
            }
            out.extend(self.claim_picked(params, picked).await?);
            if out.len() >= params.limit as usize || exhausted || !skipped {
                break;
            }
        }
        Ok(out)
    }

    async fn step_lease_extend(
        &mut self,
        tokens: &[ClaimToken],
        lease_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<ClaimToken>> {
        let mut extended = Vec::with_capacity(tokens.len());
        for token in tokens {
            let done = sqlx::query(
                "UPDATE steps SET lease_expires_at = ?, updated_at = ?
                 WHERE id = ? AND state = 'in_progress' AND attempts = ?",
            )
            .bind(ms(lease_expires_at))
            .bind(ms(now))
            .bind(id(token.step_id))
            .bind(token.attempt)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
            if done.rows_affected() > 0 {
                extended.push(*token);
            }
        }
        Ok(extended)
    }

    async fn step_lease_expired(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Step>> {
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM steps
             WHERE state = 'in_progress' AND lease_expires_at < ?
             ORDER BY lease_expires_at, id
             LIMIT ?"
        );
        let found = sqlx::query(&sql)
            .bind(ms(now))
            .bind(i64::from(limit))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        rows(&found, step_from_row)
    }

    async fn step_children_release(&mut self, parent_id: Uuid, now: Timestamp) -> Result<Vec<Uuid>> {
        // The > 0 guard keeps a count from going negative if a parent were ever released twice.
        let found = sqlx::query(
            "UPDATE steps SET unfinished_parents = unfinished_parents - 1, updated_at = ?1,
                 ready_at = CASE WHEN unfinished_parents = 1 THEN ?1 ELSE ready_at END
             WHERE id IN (SELECT child_id FROM step_edges WHERE parent_id = ?2) AND unfinished_parents > 0
             RETURNING id, unfinished_parents",
        )
        .bind(ms(now))
        .bind(id(parent_id))
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let mut ready = released_from_rows(&found)?;
        ready.sort();
        Ok(ready)
    }

    async fn task_active_step_count(&mut self, task_id: Uuid) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM steps
             WHERE task_id = ?
               AND (state IN ('in_progress', 'waiting_for_retry') OR (state = 'pending' AND unfinished_parents = 0))",
        )
        .bind(id(task_id))
        .fetch_one(self.conn())
        .await
        .map_err(db_err)?;
        Cols::new(&row, "steps").int("n")
    }

    async fn step_retries_due(&mut self, after: Timestamp, until: Timestamp) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n
             FROM steps s CROSS JOIN tasks t ON t.id = s.task_id
             WHERE s.state IN ('pending', 'waiting_for_retry') AND s.unfinished_parents = 0
               AND s.state = 'waiting_for_retry'
               AND s.next_attempt_at > ? AND s.next_attempt_at <= ?
               AND t.state IN ('pending', 'in_progress')",
        )
        .bind(ms(after))
        .bind(ms(until))
        .fetch_one(self.conn())
        .await
        .map_err(db_err)?;
        Cols::new(&row, "steps").int("n")
    }

    async fn transitions_insert(&mut self, steps: &[StepTransition], tasks: &[TaskTransition]) -> Result<()> {
        // One statement per table for the whole batch: the rows travel as one JSON array parameter.
        if !steps.is_empty() {
            let mut batch = Vec::with_capacity(steps.len());
            for t in steps {
                batch.push(serde_json::json!([
                    id(t.id),
                    id(t.step_id),
                    id(t.task_id),
                    t.from_state.map(StepState::as_str),
                    t.to_state.as_str(),
                    t.event.map(StepEvent::as_str),
                    t.attempt,
                    t.worker_id,
                    json("step_transitions.metadata", &t.metadata)?,
                    t.sort_key,
                    ms(t.created_at)
                ]));
            }
            let sql = format!(
                "INSERT INTO step_transitions ({STEP_TRANSITION_COLUMNS})
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6,
                        value ->> 7, value ->> 8, value ->> 9, value ->> 10
                 FROM json_each(?)"
            );
            sqlx::query(&sql)
                .bind(Value::Array(batch).to_string())
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }
        if !tasks.is_empty() {
            let mut batch = Vec::with_capacity(tasks.len());
            for t in tasks {
                batch.push(serde_json::json!([
                    id(t.id),
                    id(t.task_id),
                    t.from_state.map(TaskState::as_str),
                    t.to_state.as_str(),
                    t.event.map(TaskEvent::as_str),
                    json("task_transitions.metadata", &t.metadata)?,
                    t.sort_key,
                    ms(t.created_at)
                ]));
            }
            let sql = format!(
                "INSERT INTO task_transitions ({TASK_TRANSITION_COLUMNS})
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6,
                        value ->> 7
                 FROM json_each(?)"
            );
            sqlx::query(&sql)
                .bind(Value::Array(batch).to_string())
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    async fn schedule_lock(&mut self, name: &str) -> Result<Option<crate::schedule::Schedule>> {
        // The transaction is immediate: it holds the database's write lock already.
        let row = sqlx::query("SELECT body FROM schedules WHERE name = ?")
            .bind(name)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(schedule_from_row).transpose()
    }

    async fn schedule_put(&mut self, s: &crate::schedule::Schedule) -> Result<()> {
        sqlx::query(
            "INSERT INTO schedules (name, next_fire_at, body) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET next_fire_at = excluded.next_fire_at, body = excluded.body",
        )
        .bind(&s.name)
        .bind(opt_ms(s.next_fire_at))
        .bind(json("body", s)?)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn schedule_delete(&mut self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM schedules WHERE name = ?")
            .bind(name)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn schedules_lock_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<crate::schedule::Schedule>> {
        let found = sqlx::query(
            "SELECT body FROM schedules WHERE next_fire_at IS NOT NULL AND next_fire_at <= ?
             ORDER BY next_fire_at, name LIMIT ?",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        rows(&found, schedule_from_row)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(db_err)
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await.map_err(db_err)
    }
}
