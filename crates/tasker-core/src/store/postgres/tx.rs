//! Write transactions of the PostgreSQL store, at READ COMMITTED: rows are locked by the statements that need
//! them, and batches travel as one array per column, so a statement's text never depends on its size.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::codec::{opt_to_json, qualified, to_json};
use super::error::{db_err, LOCK_WAIT_TIMEOUT};
use super::{
    fetch_claim_inputs, fetch_step, fetch_steps_of_task, fetch_task, TaskLock, MAINTENANCE_LOCK_KEY, WORK_CHANNEL,
};
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
use crate::store::{ClaimInput, ClaimParams, ClaimedRow, StoreTx, OPERATOR_LOCK_WAIT};

/// The claim, in one statement: pick ready steps in claim order (highest priority, then oldest ready time,
/// then oldest id), lock them (skipping rows another claimer or writer holds, instead of waiting), and move
/// them to `in_progress`.
///
/// Binds: now, handler keys (text[]), limit, worker id, lease expiry. The state, unfinished_parents and
/// concurrency_key terms repeat the claim indexes' WHERE clause word for word so that the planner can use
/// those partial indexes. Steps with a concurrency key are left to the keyed claim ([`KEYED_KEYS_SQL`], [`keyed_claim_sql`]).
/// Under READ COMMITTED a picked row that changed since the snapshot is re-checked against the WHERE
/// clause once locked, so a row that stopped being ready is dropped, never claimed.
///
/// `ready_at` only orders; a waiting retry's `next_attempt_at` decides whether it is due, as before. A
/// released step's `ready_at` is the releasing process's clock, which another claimer's may trail by a few
/// milliseconds: filtering on it made claims come back empty (P1 fell by half, P3's worst case became the
/// poll interval).
pub(super) fn claim_sql() -> String {
    format!(
        "WITH picked AS (
             SELECT s.id, s.state AS from_state, t.state AS task_state
             FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
             WHERE s.state IN ('pending', 'waiting_for_retry') AND s.unfinished_parents = 0
               AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= $1)
               AND s.concurrency_key IS NULL
               AND s.handler_key = ANY($2)
               AND t.state IN ('pending', 'in_progress')
             ORDER BY s.priority DESC, s.ready_at, s.id
             LIMIT $3
             FOR UPDATE OF s SKIP LOCKED
         )
         UPDATE tasker.steps s
         SET state = 'in_progress', attempts = s.attempts + 1, transition_count = s.transition_count + 1,
             worker_id = $4, lease_expires_at = $5, started_at = $1, next_attempt_at = NULL, updated_at = $1
         FROM picked
         WHERE s.id = picked.id
         RETURNING {}, picked.from_state AS from_state, picked.task_state AS task_state",
        qualified(STEP_COLUMNS, "s")
    )
}

/// The keys of claimable keyed steps that have a free slot, at most $3 of them (the keys of the highest
/// priorities and oldest ready times first), each with the largest limit its waiting steps declare; each key
/// answered is locked for this transaction by `pg_try_advisory_xact_lock($4, hashtext(key))`, and a key
/// another claimer holds is skipped, never waited for. Binds: now, handler keys, how many keys, lock class.
///
/// What this statement finds is only a hint: it is [`keyed_claim_sql`], a later statement with a later
/// snapshot, that counts again under the locks, checks the tasks and claims. A holder's claims are committed
/// before its lock is released, so a claimer that gets the lock sees them. The tasks are not read here: a
/// join with them made the planner scan every runnable task; a key whose waiting steps all belong to tasks
/// that cannot run is locked for nothing, which costs nothing. It reads the claimable keyed rows through
/// steps_keyed_claim_idx and counts each key's running ones through steps_concurrency_running_idx. The
/// try-lock sits outside the subquery, whose LIMIT keeps the planner from pushing it down: only the keys
/// answered are locked.
pub(super) const KEYED_KEYS_SQL: &str = "SELECT k.key, k.cap FROM (
         SELECT s.concurrency_key AS key, max(s.concurrency_limit) AS cap
         FROM tasker.steps s
         WHERE s.state IN ('pending', 'waiting_for_retry') AND s.unfinished_parents = 0
           AND s.concurrency_key IS NOT NULL
           AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= $1)
           AND s.handler_key = ANY($2)
         GROUP BY s.concurrency_key
         HAVING max(s.concurrency_limit) > (
             SELECT count(*) FROM tasker.steps r
             WHERE r.state = 'in_progress' AND r.concurrency_key IS NOT NULL
               AND r.concurrency_key = s.concurrency_key)
         ORDER BY max(s.priority) DESC, min(s.ready_at), s.concurrency_key
         LIMIT $3
     ) k
     WHERE pg_try_advisory_xact_lock($4, hashtext(k.key))";

/// The claim of keyed steps, for keys this transaction locked with [`KEYED_KEYS_SQL`]. Per key it counts the
/// steps of that key in_progress now (`run.n`, under the lock, so no other claimer adds to it before this
/// transaction commits) and locks, in claim order, up to `cap - n` claimable steps whose own limit is above
/// `n`. Of those, the r-th (from 1) is claimed when `n + r` is within its own limit, so no step starts while
/// its limit or more steps of its key run; then at most $3 of them all, in claim order. When every step of a
/// key declares one limit (the case in practice) this is exactly the rule of the other stores; with mixed
/// limits it may take fewer than they would in one claim, never more (docs/adr/0008-keyed-concurrency-limits.md).
/// Binds: now, handler keys, limit, worker id, lease expiry, keys (text[]), their caps (integer[]).
pub(super) fn keyed_claim_sql() -> String {
    format!(
        "WITH candidates AS (
             SELECT c.id, c.from_state, c.task_state, c.priority, c.ready_at, c.lim, k.key, run.n
             FROM unnest($6::text[], $7::integer[]) AS k(key, cap)
             CROSS JOIN LATERAL (
                 SELECT count(*) AS n FROM tasker.steps r
                 WHERE r.state = 'in_progress' AND r.concurrency_key IS NOT NULL AND r.concurrency_key = k.key
             ) run
             CROSS JOIN LATERAL (
                 SELECT s.id, s.state AS from_state, t.state AS task_state, s.priority, s.ready_at,
                        s.concurrency_limit AS lim
                 FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
                 WHERE s.state IN ('pending', 'waiting_for_retry') AND s.unfinished_parents = 0
                   AND s.concurrency_key IS NOT NULL AND s.concurrency_key = k.key
                   AND s.concurrency_limit > run.n
                   AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= $1)
                   AND s.handler_key = ANY($2)
                   AND t.state IN ('pending', 'in_progress')
                 ORDER BY s.priority DESC, s.ready_at, s.id
                 LIMIT greatest(0, k.cap - run.n)
                 FOR UPDATE OF s SKIP LOCKED
             ) c
         ),
         picked AS (
             SELECT r.id, r.from_state, r.task_state FROM (
                 SELECT candidates.*, row_number() OVER (
                     PARTITION BY candidates.key ORDER BY candidates.priority DESC, candidates.ready_at, candidates.id
                 ) AS rank
                 FROM candidates
             ) r
             WHERE r.n + r.rank <= r.lim
             ORDER BY r.priority DESC, r.ready_at, r.id
             LIMIT $3
         )
         UPDATE tasker.steps s
         SET state = 'in_progress', attempts = s.attempts + 1, transition_count = s.transition_count + 1,
             worker_id = $4, lease_expires_at = $5, started_at = $1, next_attempt_at = NULL, updated_at = $1
         FROM picked
         WHERE s.id = picked.id
         RETURNING {}, picked.from_state AS from_state, picked.task_state AS task_state",
        qualified(STEP_COLUMNS, "s")
    )
}

/// The class of the advisory locks of concurrency keys (the two-integer form, which never meets the
/// one-bigint maintenance lock); the key's `hashtext` is the other half. Two keys with the same hash share a
/// lock: a claimer may skip a key for the length of another's claim transaction, nothing worse.
const CONCURRENCY_LOCK_CLASS: i32 = 0x7463_6b79;

/// When this process's claims run the keyed claim, which costs two statements. Claims carry no keyed work
/// while none is known: the hot path (steps without a concurrency limit) stays one statement. A claim runs
/// the keyed claim while keyed work was seen in the last second (this process created a keyed task, claimed
/// or finished a keyed step, or its last keyed claim took a step), and otherwise once a second, for
/// keyed work of other processes: keyed steps another process created, or slots another process freed, are
/// claimed here within a second of this process's next claim (an idle worker claims at least once per poll
/// interval). While keyed work is known the keyed claim runs before the main one, so a flood of unkeyed work
/// cannot take every batch and starve keyed steps.
#[derive(Debug)]
pub(crate) struct Keyed {
    /// Epoch milliseconds until which every claim runs the keyed claim.
    busy_until: AtomicI64,
    /// When claims last ran it, epoch milliseconds.
    looked: AtomicI64,
}

impl Default for Keyed {
    fn default() -> Self {
        Keyed {
            busy_until: AtomicI64::new(i64::MIN),
            looked: AtomicI64::new(i64::MIN),
        }
    }
}

/// How long keyed work that was seen keeps every claim looking, and how often claims look otherwise.
const KEYED_LOOK_EVERY_MS: i64 = 1000;

impl Keyed {
    pub(super) fn seen(&self, now: Timestamp) {
        self.busy_until.fetch_max(
            now.timestamp_millis().saturating_add(KEYED_LOOK_EVERY_MS),
            Ordering::AcqRel,
        );
    }

    fn due(&self, now: Timestamp) -> bool {
        let now = now.timestamp_millis();
        now < self.busy_until.load(Ordering::Acquire)
            || now.saturating_sub(self.looked.load(Ordering::Acquire)) >= KEYED_LOOK_EVERY_MS
    }

    fn looked(&self, now: Timestamp) {
        self.looked.store(now.timestamp_millis(), Ordering::Release);
    }
}

/// Releases the holds that fell due by $1, in one statement: deletes their task_holds rows (one per held
/// task, written by `task_insert`), clears the tasks' hold and takes the start-time parent away from their
/// pending root steps (see `Task::held_until`). A row whose task is no longer held is deleted without effect.
/// Answers the earliest hold left, so that claims know when to look again.
const RELEASE_HOLDS_SQL: &str = "WITH due AS (
         DELETE FROM tasker.task_holds h
         USING (SELECT task_id FROM tasker.task_holds WHERE held_until <= $1 LIMIT 1000 FOR UPDATE SKIP LOCKED) d
         WHERE h.task_id = d.task_id
         RETURNING h.task_id, h.held_until
     ),
     unheld AS (
         UPDATE tasker.tasks t SET held_until = NULL, updated_at = $1
         FROM due
         WHERE t.id = due.task_id AND t.held_until IS NOT NULL
         RETURNING t.id, due.held_until AS at
     ),
     released AS (
         UPDATE tasker.steps s SET unfinished_parents = s.unfinished_parents - 1, ready_at = unheld.at,
             updated_at = $1
         FROM unheld
         WHERE s.task_id = unheld.id AND s.state = 'pending' AND s.unfinished_parents > 0
           AND NOT EXISTS (SELECT 1 FROM tasker.step_edges e WHERE e.child_id = s.id)
         RETURNING s.id
     )
     SELECT (SELECT count(*) FROM released) AS released,
            (SELECT min(h.held_until) FROM tasker.task_holds h
             WHERE NOT EXISTS (SELECT 1 FROM due WHERE due.task_id = h.task_id)) AS next_at";

/// When this process's claims next look for due holds. Claims carry no release work of their own: measured
/// as CTEs of every claim statement, releasing halved P1. A claim runs [`RELEASE_HOLDS_SQL`] first when the
/// earliest hold this process knows of (its own creations, the answer of the last release) has come, and at
/// least once a second anyway, for holds other processes created. A held task thus starts at its time in
/// the process that knows of it, and within a second elsewhere.
#[derive(Debug)]
pub(crate) struct Holds {
    /// Epoch milliseconds of the earliest hold known; `i64::MAX` for none.
    next: AtomicI64,
    /// When claims last looked, epoch milliseconds.
    looked: AtomicI64,
}

impl Default for Holds {
    fn default() -> Self {
        Holds {
            next: AtomicI64::new(i64::MAX),
            looked: AtomicI64::new(i64::MIN),
        }
    }
}

/// How often claims look for holds other processes created.
const HOLDS_LOOK_EVERY_MS: i64 = 1000;

impl Holds {
    pub(super) fn known(&self, at: Timestamp) {
        self.next.fetch_min(at.timestamp_millis(), Ordering::AcqRel);
    }

    fn due(&self, now: Timestamp) -> bool {
        let now = now.timestamp_millis();
        now >= self.next.load(Ordering::Acquire)
            || now.saturating_sub(self.looked.load(Ordering::Acquire)) >= HOLDS_LOOK_EVERY_MS
    }

    fn looked(&self, now: Timestamp, next: Option<Timestamp>) {
        self.looked.store(now.timestamp_millis(), Ordering::Release);
        self.next
            .store(next.map_or(i64::MAX, |t| t.timestamp_millis()), Ordering::Release);
    }
}

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// Binds every column of a task in [`TASK_COLUMNS`] order; the insert and the full update share it, so they
/// cannot disagree on a column.
fn bind_task<'q>(q: Query<'q>, t: &'q Task) -> Query<'q> {
    q.bind(t.id)
        .bind(t.template_id)
        .bind(&t.namespace)
        .bind(&t.name)
        .bind(&t.version)
        .bind(t.state.as_str())
        .bind(&t.context)
        .bind(&t.tags)
        .bind(&t.idempotency_key)
        .bind(&t.initiator)
        .bind(&t.source_system)
        .bind(&t.reason)
        .bind(t.steps_total)
        .bind(t.steps_succeeded)
        .bind(t.steps_failed)
        .bind(t.transition_count)
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(t.started_at)
        .bind(t.finished_at)
        .bind(t.priority)
        .bind(t.run_at)
        .bind(t.held_until)
}

/// A READ COMMITTED transaction; rows are locked by the statements that need them.
pub(super) struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
    pub(super) holds: std::sync::Arc<Holds>,
    pub(super) keyed: std::sync::Arc<Keyed>,
}

impl PgTx {
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Claims keyed steps with free slots ([`KEYED_KEYS_SQL`], then [`keyed_claim_sql`]); rows as the main
    /// claim returns them.
    async fn keyed_claim(&mut self, params: &ClaimParams) -> Result<Vec<sqlx::postgres::PgRow>> {
        self.keyed.looked(params.now);
        let keys = sqlx::query(KEYED_KEYS_SQL)
            .bind(params.now)
            .bind(&params.handler_keys)
            // Each key answered has room for one step at least, so more keys than the claim's limit would only
            // keep other claimers off keys this claim cannot use.
            .bind(i64::from(params.limit))
            .bind(CONCURRENCY_LOCK_CLASS)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut names = Vec::with_capacity(keys.len());
        let mut limits = Vec::with_capacity(keys.len());
        for row in &keys {
            let c = Cols::new(row, "steps");
            names.push(c.text("key")?);
            limits.push(c.int32("cap")?);
        }
        let rows = sqlx::query(&keyed_claim_sql())
            .bind(params.now)
            .bind(&params.handler_keys)
            .bind(i64::from(params.limit))
            .bind(&params.worker_id)
            .bind(params.lease_expires_at)
            .bind(names)
            .bind(limits)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        // Keyed work claimed here: this process's claims keep looking for more while it runs. (Keys found
        // without a claimable step, such as those of tasks that cannot run, do not keep them looking.)
        if !rows.is_empty() {
            self.keyed.seen(params.now);
        }
        Ok(rows)
    }
}

#[async_trait]
impl StoreTx for PgTx {
    async fn template_insert(&mut self, rec: &TemplateRecord) -> Result<()> {
        sqlx::query("INSERT INTO tasker.namespaces (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(&rec.namespace)
            .bind(rec.created_at)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        // ON CONFLICT rather than catching the unique violation: an error would abort the whole transaction,
        // while this leaves it usable and still waits for a concurrent insert of the same version to settle.
        let sql = format!(
            "INSERT INTO tasker.templates ({TEMPLATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT ON CONSTRAINT templates_namespace_name_version_key DO NOTHING"
        );
        let done = sqlx::query(&sql)
            .bind(rec.id)
            .bind(&rec.namespace)
            .bind(&rec.name)
            .bind(&rec.version)
            .bind(&rec.content_hash)
            .bind(to_json("templates.template", &rec.template)?)
            .bind(rec.created_at)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(template_taken(rec));
        }
        Ok(())
    }

    async fn template_find(&mut self, namespace: &str, name: &str, version: &str) -> Result<Option<TemplateRecord>> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM tasker.templates WHERE namespace = $1 AND name = $2 AND version = $3"
        );
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
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasker.tasks WHERE namespace = $1 AND name = $2 AND idempotency_key = $3"
        );
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
        // As for templates, ON CONFLICT keeps the transaction usable when the idempotency key is taken.
        let sql = format!(
            "INSERT INTO tasker.tasks ({TASK_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                     $21, $22, $23)
             ON CONFLICT ON CONSTRAINT tasks_idempotency_key_key DO NOTHING"
        );
        let done = bind_task(sqlx::query(&sql), task)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(idempotency_key_taken(task));
        }
        if let Some(at) = task.held_until {
            sqlx::query("INSERT INTO tasker.task_holds (task_id, held_until) VALUES ($1, $2)")
                .bind(task.id)
                .bind(at)
                .execute(self.conn())
                .await
                .map_err(db_err)?;
            self.holds.known(at);
        }

        if !steps.is_empty() {
            // All steps in one statement, one array per column: the statement text is the same whatever the
            // number of steps, so it is prepared once per connection.
            let n = steps.len();
            let mut ids = Vec::with_capacity(n);
            let mut task_ids = Vec::with_capacity(n);
            let mut names = Vec::with_capacity(n);
            let mut handler_keys = Vec::with_capacity(n);
            let mut positions = Vec::with_capacity(n);
            let mut states = Vec::with_capacity(n);
            let mut attempts = Vec::with_capacity(n);
            let mut max_attempts = Vec::with_capacity(n);
            let mut retries = Vec::with_capacity(n);
            let mut timeouts = Vec::with_capacity(n);
            let mut configs = Vec::with_capacity(n);
            let mut unfinished = Vec::with_capacity(n);
            let mut next_attempts = Vec::with_capacity(n);
            let mut leases = Vec::with_capacity(n);
            let mut workers = Vec::with_capacity(n);
            let mut results = Vec::with_capacity(n);
            let mut errors = Vec::with_capacity(n);
            let mut transition_counts = Vec::with_capacity(n);
            let mut created = Vec::with_capacity(n);
            let mut updated = Vec::with_capacity(n);
            let mut started = Vec::with_capacity(n);
            let mut finished = Vec::with_capacity(n);
            let mut priorities = Vec::with_capacity(n);
            let mut ready = Vec::with_capacity(n);
            let mut keys = Vec::with_capacity(n);
            let mut limits = Vec::with_capacity(n);
            for s in steps {
                ids.push(s.id);
                task_ids.push(s.task_id);
                names.push(s.name.as_str());
                handler_keys.push(s.handler_key.as_str());
                positions.push(s.position);
                states.push(s.state.as_str());
                attempts.push(s.attempts);
                max_attempts.push(s.max_attempts);
                retries.push(to_json("steps.retry", &s.retry)?);
                timeouts.push(s.timeout_seconds);
                configs.push(&s.config);
                unfinished.push(s.unfinished_parents);
                next_attempts.push(s.next_attempt_at);
                leases.push(s.lease_expires_at);
                workers.push(s.worker_id.as_deref());
                results.push(s.result.as_ref());
                errors.push(opt_to_json("steps.error", s.error.as_ref())?);
                transition_counts.push(s.transition_count);
                created.push(s.created_at);
                updated.push(s.updated_at);
                started.push(s.started_at);
                finished.push(s.finished_at);
                priorities.push(s.priority);
                ready.push(s.ready_at);
                keys.push(s.concurrency_key.as_deref());
                limits.push(s.concurrency_limit);
            }
            if keys.iter().any(Option::is_some) {
                self.keyed.seen(task.created_at);
            }
            let sql = format!(
                "INSERT INTO tasker.steps ({STEP_COLUMNS})
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::integer[], $6::text[],
                     $7::bigint[], $8::bigint[], $9::jsonb[], $10::bigint[], $11::jsonb[], $12::bigint[],
                     $13::timestamptz[], $14::timestamptz[], $15::text[], $16::jsonb[], $17::jsonb[], $18::bigint[],
                     $19::timestamptz[], $20::timestamptz[], $21::timestamptz[], $22::timestamptz[], $23::integer[],
                     $24::timestamptz[], $25::text[], $26::integer[])"
            );
            sqlx::query(&sql)
                .bind(ids)
                .bind(task_ids)
                .bind(names)
                .bind(handler_keys)
                .bind(positions)
                .bind(states)
                .bind(attempts)
                .bind(max_attempts)
                .bind(retries)
                .bind(timeouts)
                .bind(configs)
                .bind(unfinished)
                .bind(next_attempts)
                .bind(leases)
                .bind(workers)
                .bind(results)
                .bind(errors)
                .bind(transition_counts)
                .bind(created)
                .bind(updated)
                .bind(started)
                .bind(finished)
                .bind(priorities)
                .bind(ready)
                .bind(keys)
                .bind(limits)
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }

        if !edges.is_empty() {
            let task_ids: Vec<Uuid> = edges.iter().map(|e| e.task_id).collect();
            let parents: Vec<Uuid> = edges.iter().map(|e| e.parent_id).collect();
            let children: Vec<Uuid> = edges.iter().map(|e| e.child_id).collect();
            sqlx::query(
                "INSERT INTO tasker.step_edges (task_id, parent_id, child_id, position)
                 SELECT task_id, parent_id, child_id, (ord - 1)::integer
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) WITH ORDINALITY AS e(task_id, parent_id, child_id, ord)",
            )
            .bind(task_ids)
            .bind(parents)
            .bind(children)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }

    async fn task_lock(&mut self, task_id: Uuid) -> Result<Option<Task>> {
        fetch_task(self.conn(), task_id, TaskLock::Wait).await
    }

    async fn task_update(&mut self, task: &Task) -> Result<()> {
        // Writing a column with the value it has is not a change to PostgreSQL's HOT check, so rewriting
        // every column still lets updates that leave the indexed ones alone be HOT.
        // Numbered so that the binds follow TASK_COLUMNS, as the insert's do.
        let done = bind_task(
            sqlx::query(
                "UPDATE tasker.tasks SET template_id = $2, namespace = $3, name = $4, version = $5, state = $6,
                     context = $7, tags = $8, idempotency_key = $9, initiator = $10, source_system = $11,
                     reason = $12, steps_total = $13, steps_succeeded = $14, steps_failed = $15,
                     transition_count = $16, created_at = $17, updated_at = $18, started_at = $19, finished_at = $20,
                     priority = $21, run_at = $22, held_until = $23
                 WHERE id = $1",
            ),
            task,
        )
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("task", task.id));
        }
        Ok(())
    }

    async fn step_lock(&mut self, step_id: Uuid) -> Result<Option<Step>> {
        fetch_step(self.conn(), step_id, true).await
    }

    async fn step_lock_all(&mut self, task_id: Uuid) -> Result<Option<Vec<Step>>> {
        // SET LOCAL ends with the transaction; only operator actions take this path. The value is a
        // constant, formatted from a number, so nothing user-given reaches the statement text.
        let wait = format!("SET LOCAL lock_timeout = '{}ms'", OPERATOR_LOCK_WAIT.as_millis());
        sqlx::query(&wait).execute(self.conn()).await.map_err(db_err)?;
        match fetch_steps_of_task(self.conn(), task_id, true).await {
            Ok(steps) => Ok(Some(steps)),
            Err(Error::Timeout(msg)) if msg.starts_with(LOCK_WAIT_TIMEOUT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn task_lock_many(&mut self, ids: &[Uuid]) -> Result<Vec<Task>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // ORDER BY id sorts before the rows are locked, so every batch locks tasks in the same order.
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasker.tasks WHERE id = ANY($1) ORDER BY id FOR UPDATE");
        let found = sqlx::query(&sql)
            .bind(ids)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        rows(&found, task_from_row)
    }

    async fn task_update_many(&mut self, tasks: &[Task]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
        let states: Vec<&str> = tasks.iter().map(|t| t.state.as_str()).collect();
        let succeeded: Vec<i64> = tasks.iter().map(|t| t.steps_succeeded).collect();
        let failed: Vec<i64> = tasks.iter().map(|t| t.steps_failed).collect();
        let counts: Vec<i64> = tasks.iter().map(|t| t.transition_count).collect();
        let updated: Vec<Timestamp> = tasks.iter().map(|t| t.updated_at).collect();
        let started: Vec<Option<Timestamp>> = tasks.iter().map(|t| t.started_at).collect();
        let finished: Vec<Option<Timestamp>> = tasks.iter().map(|t| t.finished_at).collect();
        let held: Vec<Option<Timestamp>> = tasks.iter().map(|t| t.held_until).collect();
        let done = sqlx::query(
            "UPDATE tasker.tasks t SET state = b.state, steps_succeeded = b.succeeded, steps_failed = b.failed,
                 transition_count = b.transition_count, updated_at = b.updated_at, started_at = b.started_at,
                 finished_at = b.finished_at, held_until = b.held_until
             FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::timestamptz[],
                         $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
                  AS b(id, state, succeeded, failed, transition_count, updated_at, started_at, finished_at, held_until)
             WHERE t.id = b.id",
        )
        .bind(ids)
        .bind(states)
        .bind(succeeded)
        .bind(failed)
        .bind(counts)
        .bind(updated)
        .bind(started)
        .bind(finished)
        .bind(held)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        batch_updated(done.rows_affected(), tasks.len(), "task")
    }

    async fn step_lock_many(&mut self, ids: &[Uuid]) -> Result<Vec<Step>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {STEP_COLUMNS} FROM tasker.steps WHERE id = ANY($1) ORDER BY id FOR UPDATE");
        let found = sqlx::query(&sql)
            .bind(ids)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        rows(&found, step_from_row)
    }

    async fn step_update_many(&mut self, steps: &[Step]) -> Result<()> {
        if steps.is_empty() {
            return Ok(());
        }
        // A keyed step that leaves in_progress frees a slot: this process's next claims look for keyed work.
        if let Some(s) = steps.iter().find(|s| s.concurrency_key.is_some()) {
            self.keyed.seen(s.updated_at);
        }
        let ids: Vec<Uuid> = steps.iter().map(|s| s.id).collect();
        let states: Vec<&str> = steps.iter().map(|s| s.state.as_str()).collect();
        let attempts: Vec<i64> = steps.iter().map(|s| s.attempts).collect();
        let max_attempts: Vec<i64> = steps.iter().map(|s| s.max_attempts).collect();
        let next: Vec<Option<Timestamp>> = steps.iter().map(|s| s.next_attempt_at).collect();
        let leases: Vec<Option<Timestamp>> = steps.iter().map(|s| s.lease_expires_at).collect();
        let workers: Vec<Option<&str>> = steps.iter().map(|s| s.worker_id.as_deref()).collect();
        let results: Vec<Option<&Value>> = steps.iter().map(|s| s.result.as_ref()).collect();
        let mut errors = Vec::with_capacity(steps.len());
        for s in steps {
            errors.push(opt_to_json("steps.error", s.error.as_ref())?);
        }
        let counts: Vec<i64> = steps.iter().map(|s| s.transition_count).collect();
        let updated: Vec<Timestamp> = steps.iter().map(|s| s.updated_at).collect();
        let started: Vec<Option<Timestamp>> = steps.iter().map(|s| s.started_at).collect();
        let finished: Vec<Option<Timestamp>> = steps.iter().map(|s| s.finished_at).collect();
        let ready: Vec<Timestamp> = steps.iter().map(|s| s.ready_at).collect();
        let done = sqlx::query(
            "UPDATE tasker.steps s SET state = b.state, attempts = b.attempts, max_attempts = b.max_attempts,
                 next_attempt_at = b.next_attempt_at, lease_expires_at = b.lease_expires_at, worker_id = b.worker_id,
                 result = b.result, error = b.error, transition_count = b.transition_count,
                 updated_at = b.updated_at, started_at = b.started_at, finished_at = b.finished_at,
                 ready_at = b.ready_at
             FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::timestamptz[],
                         $7::text[], $8::jsonb[], $9::jsonb[], $10::bigint[], $11::timestamptz[], $12::timestamptz[],
                         $13::timestamptz[], $14::timestamptz[])
                  AS b(id, state, attempts, max_attempts, next_attempt_at, lease_expires_at, worker_id, result, error,
                       transition_count, updated_at, started_at, finished_at, ready_at)
             WHERE s.id = b.id",
        )
        .bind(ids)
        .bind(states)
        .bind(attempts)
        .bind(max_attempts)
        .bind(next)
        .bind(leases)
        .bind(workers)
        .bind(results)
        .bind(errors)
        .bind(counts)
        .bind(updated)
        .bind(started)
        .bind(finished)
        .bind(ready)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        batch_updated(done.rows_affected(), steps.len(), "step")
    }

    async fn step_children_release_many(&mut self, parent_ids: &[Uuid], now: Timestamp) -> Result<Vec<Uuid>> {
        if parent_ids.is_empty() {
            return Ok(Vec::new());
        }
        // One index lookup per parent (the LATERAL's OFFSET 0 keeps the planner from turning it into a join),
        // then one per child by primary key. Written as `parent_id = ANY($2)`, a table whose statistics lag
        // behind (a fresh one, or one that grew fast) got a sequential scan of step_edges hashed against a
        // sequential scan of steps: 4.3 ms for 64 parents among 8,000 steps, against 0.9 ms this way, and
        // that cost grew with the tables.
        let found = sqlx::query(
            "UPDATE tasker.steps s SET unfinished_parents = s.unfinished_parents - c.n, updated_at = $1,
                 ready_at = CASE WHEN s.unfinished_parents = c.n THEN $1 ELSE s.ready_at END
             FROM (SELECT e.child_id, count(*) AS n
                   FROM unnest($2::uuid[]) AS p(id)
                   CROSS JOIN LATERAL (SELECT child_id FROM tasker.step_edges WHERE parent_id = p.id OFFSET 0) e
                   GROUP BY e.child_id) c
             WHERE s.id = c.child_id
             RETURNING s.id, s.unfinished_parents",
        )
        .bind(now)
        .bind(parent_ids)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        released_from_rows(&found)
    }

    async fn step_update(&mut self, s: &Step) -> Result<()> {
        if s.concurrency_key.is_some() {
            self.keyed.seen(s.updated_at);
        }
        let done = sqlx::query(
            "UPDATE tasker.steps SET task_id = $1, name = $2, handler_key = $3, position = $4, state = $5,
                 attempts = $6, max_attempts = $7, retry = $8, timeout_seconds = $9, config = $10,
                 unfinished_parents = $11, next_attempt_at = $12, lease_expires_at = $13, worker_id = $14,
                 result = $15, error = $16, transition_count = $17, created_at = $18, updated_at = $19,
                 started_at = $20, finished_at = $21, ready_at = $23, concurrency_key = $24,
                 concurrency_limit = $25
             WHERE id = $22",
        )
        .bind(s.task_id)
        .bind(&s.name)
        .bind(&s.handler_key)
        .bind(s.position)
        .bind(s.state.as_str())
        .bind(s.attempts)
        .bind(s.max_attempts)
        .bind(to_json("steps.retry", &s.retry)?)
        .bind(s.timeout_seconds)
        .bind(&s.config)
        .bind(s.unfinished_parents)
        .bind(s.next_attempt_at)
        .bind(s.lease_expires_at)
        .bind(&s.worker_id)
        .bind(s.result.as_ref())
        .bind(opt_to_json("steps.error", s.error.as_ref())?)
        .bind(s.transition_count)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(s.started_at)
        .bind(s.finished_at)
        .bind(s.id)
        .bind(s.ready_at)
        .bind(&s.concurrency_key)
        .bind(s.concurrency_limit)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("step", s.id));
        }
        Ok(())
    }

    async fn step_claim(&mut self, params: &ClaimParams) -> Result<Vec<ClaimedRow>> {
        if params.handler_keys.is_empty() || params.limit == 0 {
            return Ok(Vec::new());
        }
        if self.holds.due(params.now) {
            // Released steps are this transaction's own writes, so the claim below sees them.
            let row = sqlx::query(RELEASE_HOLDS_SQL)
                .bind(params.now)
                .fetch_one(self.conn())
                .await
                .map_err(db_err)?;
            let next = Cols::new(&row, "task_holds").opt_ts("next_at")?;
            self.holds.looked(params.now, next);
        }
        // Keyed steps first, while keyed work is known: under a steady flow of unkeyed work the main claim
        // fills every batch, and keyed steps would never run.
        let mut found = Vec::new();
        if self.keyed.due(params.now) {
            found = self.keyed_claim(params).await?;
        }
        let left = params.limit.saturating_sub(found.len() as u32);
        if left > 0 {
            found.extend(
                sqlx::query(&claim_sql())
                    .bind(params.now)
                    .bind(&params.handler_keys)
                    .bind(i64::from(left))
                    .bind(&params.worker_id)
                    .bind(params.lease_expires_at)
                    .fetch_all(self.conn())
                    .await
                    .map_err(db_err)?,
            );
        }
        let mut claimed = Vec::with_capacity(found.len());
        for row in &found {
            let c = Cols::new(row, "steps");
            claimed.push(ClaimedRow {
                step: step_from_row(row)?,
                from_state: c.parse::<StepState>("from_state")?,
                task_state: c.parse::<TaskState>("task_state")?,
            });
        }
        // RETURNING has no defined order; answer in claim order.
        claimed.sort_by_key(|r| r.step.claim_order());
        Ok(claimed)
    }

    async fn claim_inputs(&mut self, step_ids: &[Uuid]) -> Result<Vec<ClaimInput>> {
        fetch_claim_inputs(self.conn(), step_ids).await
    }

    async fn step_lease_extend(
        &mut self,
        tokens: &[ClaimToken],
        lease_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<ClaimToken>> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the whole batch. It changes no indexed column, so on a page with room it is a
        // HOT update (see the schema).
        //
        // Lock order: steps by id, as `step_lock_many` (and so `finish_many`) locks them. An UPDATE … FROM
        // locks rows in whatever order its join produces them (a hash join: hash order), which against a
        // report of the same claims is a lock cycle that PostgreSQL ends by aborting one side (40P01). The
        // rows are therefore locked first by a SELECT … ORDER BY id FOR UPDATE, which locks in sorted order;
        // the update then finds them locked already. A row that changed meanwhile is re-checked once locked.
        let step_ids: Vec<Uuid> = tokens.iter().map(|t| t.step_id).collect();
        let attempts: Vec<i64> = tokens.iter().map(|t| t.attempt).collect();
        let found = sqlx::query(
            "WITH held AS (
                 SELECT s.id FROM tasker.steps s
                 JOIN UNNEST($3::uuid[], $4::bigint[]) AS k(id, attempt) ON s.id = k.id
                 WHERE s.state = 'in_progress' AND s.attempts = k.attempt
                 ORDER BY s.id
                 FOR UPDATE OF s
             )
             UPDATE tasker.steps s SET lease_expires_at = $1, updated_at = $2
             FROM held
             WHERE s.id = held.id
             RETURNING s.id AS id, s.attempts AS attempts",
        )
        .bind(lease_expires_at)
        .bind(now)
        .bind(step_ids)
        .bind(attempts)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let mut held = HashSet::with_capacity(found.len());
        for row in &found {
            let c = Cols::new(row, "steps");
            held.insert(ClaimToken {
                step_id: c.uuid("id")?,
                attempt: c.int("attempts")?,
            });
        }
        Ok(tokens.iter().filter(|t| held.contains(t)).copied().collect())
    }

    async fn step_lease_expired(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Step>> {
        // SKIP LOCKED: a step whose worker is completing it right now is left to that completion (the next
        // pass sees it again if the completion rolls back) instead of stalling the reaper behind it.
        // The task rows are locked too (and skipped when busy) because the engine locks a task before its
        // steps everywhere else; taking both here without waiting keeps the reaper out of every lock cycle.
        let sql = format!(
            "SELECT {} FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
             WHERE s.state = 'in_progress' AND s.lease_expires_at < $1
             ORDER BY s.lease_expires_at, s.id
             LIMIT $2
             FOR UPDATE OF s, t SKIP LOCKED",
            qualified(STEP_COLUMNS, "s")
        );
        let found = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        rows(&found, step_from_row)
    }

    async fn step_children_release(&mut self, parent_id: Uuid, now: Timestamp) -> Result<Vec<Uuid>> {
        // The > 0 guard keeps a count from going negative if a parent were ever released twice.
        let found = sqlx::query(
            "UPDATE tasker.steps SET unfinished_parents = unfinished_parents - 1, updated_at = $1,
                 ready_at = CASE WHEN unfinished_parents = 1 THEN $1 ELSE ready_at END
             WHERE id IN (SELECT child_id FROM tasker.step_edges WHERE parent_id = $2) AND unfinished_parents > 0
             RETURNING id, unfinished_parents",
        )
        .bind(now)
        .bind(parent_id)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let mut ready = released_from_rows(&found)?;
        ready.sort();
        Ok(ready)
    }

    async fn task_active_step_count(&mut self, task_id: Uuid) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM tasker.steps
             WHERE task_id = $1
               AND (state IN ('in_progress', 'waiting_for_retry') OR (state = 'pending' AND unfinished_parents = 0))",
        )
        .bind(task_id)
        .fetch_one(self.conn())
        .await
        .map_err(db_err)?;
        Cols::new(&row, "steps").int("n")
    }

    async fn transitions_insert(&mut self, steps: &[StepTransition], tasks: &[TaskTransition]) -> Result<()> {
        // One statement per table however many rows, with one array per column (same text every time, so
        // prepared once per connection). This runs in every state-changing transaction.
        if !steps.is_empty() {
            let sql = format!(
                "INSERT INTO tasker.step_transitions ({STEP_TRANSITION_COLUMNS})
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                     $7::bigint[], $8::text[], $9::jsonb[], $10::bigint[], $11::timestamptz[])"
            );
            sqlx::query(&sql)
                .bind(steps.iter().map(|t| t.id).collect::<Vec<_>>())
                .bind(steps.iter().map(|t| t.step_id).collect::<Vec<_>>())
                .bind(steps.iter().map(|t| t.task_id).collect::<Vec<_>>())
                .bind(
                    steps
                        .iter()
                        .map(|t| t.from_state.map(StepState::as_str))
                        .collect::<Vec<_>>(),
                )
                .bind(steps.iter().map(|t| t.to_state.as_str()).collect::<Vec<_>>())
                .bind(steps.iter().map(|t| t.event.map(StepEvent::as_str)).collect::<Vec<_>>())
                .bind(steps.iter().map(|t| t.attempt).collect::<Vec<_>>())
                .bind(steps.iter().map(|t| t.worker_id.as_deref()).collect::<Vec<_>>())
                .bind(steps.iter().map(|t| &t.metadata).collect::<Vec<_>>())
                .bind(steps.iter().map(|t| t.sort_key).collect::<Vec<_>>())
                .bind(steps.iter().map(|t| t.created_at).collect::<Vec<_>>())
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }
        if !tasks.is_empty() {
            let sql = format!(
                "INSERT INTO tasker.task_transitions ({TASK_TRANSITION_COLUMNS})
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[],
                     $7::bigint[], $8::timestamptz[])"
            );
            sqlx::query(&sql)
                .bind(tasks.iter().map(|t| t.id).collect::<Vec<_>>())
                .bind(tasks.iter().map(|t| t.task_id).collect::<Vec<_>>())
                .bind(
                    tasks
                        .iter()
                        .map(|t| t.from_state.map(TaskState::as_str))
                        .collect::<Vec<_>>(),
                )
                .bind(tasks.iter().map(|t| t.to_state.as_str()).collect::<Vec<_>>())
                .bind(tasks.iter().map(|t| t.event.map(TaskEvent::as_str)).collect::<Vec<_>>())
                .bind(tasks.iter().map(|t| &t.metadata).collect::<Vec<_>>())
                .bind(tasks.iter().map(|t| t.sort_key).collect::<Vec<_>>())
                .bind(tasks.iter().map(|t| t.created_at).collect::<Vec<_>>())
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    async fn notify_work(&mut self) -> Result<()> {
        // Delivered at commit, and not at all on rollback. Identical notifications of one transaction are
        // folded into one by the server.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORK_CHANNEL)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn maintenance_lock(&mut self) -> Result<bool> {
        // Transaction-scoped: released by commit or rollback, and by the server if this session dies.
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(MAINTENANCE_LOCK_KEY)
            .fetch_one(self.conn())
            .await
            .map_err(db_err)
    }

    async fn step_retries_due(&mut self, after: Timestamp, until: Timestamp) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n
             FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
             WHERE s.state = 'waiting_for_retry'
               AND s.next_attempt_at > $1 AND s.next_attempt_at <= $2
               AND t.state IN ('pending', 'in_progress')",
        )
        .bind(after)
        .bind(until)
        .fetch_one(self.conn())
        .await
        .map_err(db_err)?;
        Cols::new(&row, "steps").int("n")
    }

    async fn schedule_lock(&mut self, name: &str) -> Result<Option<crate::schedule::Schedule>> {
        let row = sqlx::query("SELECT body FROM tasker.schedules WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        row.as_ref().map(schedule_from_row).transpose()
    }

    async fn schedule_put(&mut self, s: &crate::schedule::Schedule) -> Result<()> {
        sqlx::query(
            "INSERT INTO tasker.schedules (name, next_fire_at, body) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET next_fire_at = excluded.next_fire_at, body = excluded.body",
        )
        .bind(&s.name)
        .bind(s.next_fire_at)
        .bind(to_json("body", s)?)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn schedule_delete(&mut self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tasker.schedules WHERE name = $1")
            .bind(name)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn schedules_lock_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<crate::schedule::Schedule>> {
        // SKIP LOCKED: a schedule another process is firing is its; this pass fires the others. The
        // occurrence's idempotency key keeps it to one task even if two passes ever read the same row.
        let found = sqlx::query(
            "SELECT body FROM tasker.schedules WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1
             ORDER BY next_fire_at, name LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
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
