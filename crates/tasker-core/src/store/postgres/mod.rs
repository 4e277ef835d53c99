//! The PostgreSQL store: the production store, one database shared by many worker processes.
//!
//! Transactions run at READ COMMITTED. Writers serialise on row locks, which the `*_lock` methods take with
//! `SELECT ... FOR UPDATE`; a claim locks the rows it takes with `FOR UPDATE SKIP LOCKED`, so concurrent
//! claimers pass each other instead of queueing, and the reaper skips a step that is being finished right now.
//! Cross-process coordination uses what PostgreSQL offers: an advisory lock for migrations and for the one
//! maintenance pass at a time, and `LISTEN/NOTIFY` on the channel `tasker_work` to wake idle workers.
//!
//! Storage conventions: every table lives in the `tasker` schema and every statement names it, so a role's
//! search_path never matters. Ids are uuid, timestamps timestamptz, JSON is jsonb, and states and events are
//! their stable strings under CHECKs (see `codec.rs`).
//!
//! The store is a folder: this file opens the pool and serves the reads outside transactions ([`Store`]);
//! `tx.rs` holds the write transactions ([`StoreTx`]), `listen.rs` the LISTEN/NOTIFY wake-ups, `url.rs` the
//! URL and what messages show of it, `error.rs` the SQLSTATE mapping, `codec.rs` how values are kept, and
//! `migrate.rs` the migrations. What the SQL stores share is in `store/sql/`.

mod codec;
mod error;
mod feed;
mod listen;
mod migrate;
#[cfg(test)]
mod tests;
mod tx;
mod url;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, Postgres, QueryBuilder, Row};
use tokio::sync::Notify;
use uuid::Uuid;

use self::codec::{claim_input_from_row, edge_from_row};
use self::error::{connect_err, db_err};
use self::listen::Listening;
use self::migrate::{PgMigrations, MIGRATIONS};
use self::tx::PgTx;
use self::url::{parse_url, Target};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::state::{StepState, TaskState};
use crate::store::sql::migrate::run as migrate;
use crate::store::sql::query::{push_task_filters, push_task_list, push_template_filters};
use crate::store::sql::rows::{
    event_count_from_row, rows, schedule_from_row, step_from_row, step_timing_from_row, step_transition_from_row,
    summary_from_row, task_from_row, task_timing_from_row, task_transition_from_row, template_from_row, Cols,
    STEP_COLUMNS, STEP_TRANSITION_COLUMNS, TASK_COLUMNS, TASK_TRANSITION_COLUMNS, TEMPLATE_COLUMNS,
};
use crate::store::{ClaimInput, FeedBatch, FeedCursor, PoolStats, Store, StoreKind, StoreTx};
use crate::url::secrets as url_secrets;

/// Connection settings of a [`PgStore`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Apply pending migrations at connect time.
    pub migrate: bool,
    /// Pool size. The wake-up listener, when attached, holds one more connection of its own.
    pub max_connections: u32,
    /// How long to wait for a connection: when opening the store, and when taking one from a busy pool.
    pub connect_timeout: Duration,
    /// The server-side `statement_timeout` of every pooled connection; a statement that runs longer, or
    /// waits longer for a lock, fails with a `timeout` error. `None` keeps the server's setting.
    pub statement_timeout: Option<Duration>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            migrate: true,
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: None,
        }
    }
}

/// The advisory lock key of the one maintenance pass at a time. Advisory locks are per database, so two
/// tasker databases on one server never contend; the value spells "taskermn" in ASCII, to be recognisable in
/// `pg_locks`.
const MAINTENANCE_LOCK_KEY: i64 = 0x7461_736b_6572_6d6e;

/// The NOTIFY channel on which commits announce that steps may have become ready.
const WORK_CHANNEL: &str = "tasker_work";

const APPLICATION_NAME: &str = "tasker";

/// A store backed by one PostgreSQL database, shared by any number of processes.
pub struct PgStore {
    pool: PgPool,
    /// The pool's options, reused for the wake-up listener's own connection.
    connect: PgConnectOptions,
    connect_timeout: Duration,
    target: Target,
    /// Set once by `close`, under the `listeners` lock, so that no listener starts after it.
    closed: AtomicBool,
    listeners: Mutex<Vec<Listening>>,
    /// The event feed's own pool of one connection (see `feed.rs`), connected only while someone reads.
    feed: PgPool,
    /// When claims next look for holds that fell due (see [`tx::Holds`]).
    holds: std::sync::Arc<tx::Holds>,
    /// When claims run the keyed claim (see [`tx::Keyed`]).
    keyed: std::sync::Arc<tx::Keyed>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("addr", &self.target.addr)
            .field("database", &self.target.database)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // A store dropped without close must not leave its listener running (and holding a connection).
        for l in lock(&self.listeners).iter() {
            l.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PgStore {
    /// Connects to the database at a `postgres://` or `postgresql://` URL and, unless told not to, migrates it.
    pub async fn connect(url: &str, options: &PgOptions) -> Result<PgStore> {
        let secrets = url_secrets(url);
        let mut connect = parse_url(url, &secrets)?;
        if options.max_connections == 0 {
            return Err(Error::Configuration(
                "postgres max_connections must be at least 1".into(),
            ));
        }
        if connect.get_application_name().is_none() {
            connect = connect.application_name(APPLICATION_NAME);
        }
        if let Some(limit) = options.statement_timeout {
            // 0 would mean "no limit" to the server; the smallest real limit is 1 ms.
            let ms = limit.as_millis().max(1);
            connect = connect.options([("statement_timeout", format!("{ms}ms"))]);
        }
        let target = Target::of(&connect);

        // One direct connection first. The pool retries a refused connection until its timeout and then
        // reports only that it timed out; a direct attempt says why it failed, and then runs the migrations.
        let mut conn = match tokio::time::timeout(options.connect_timeout, connect.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(connect_err(&target, &e, &secrets)),
            Err(_) => {
                return Err(Error::Database(format!(
                    "cannot connect to postgres at {target}: no answer within {:?}",
                    options.connect_timeout
                )))
            }
        };
        if options.migrate {
            if let Err(e) = migrate(&mut PgMigrations::new(&mut conn, &target), MIGRATIONS).await {
                // Closing the session also releases the migration lock if it is still held.
                let _ = conn.close().await;
                return Err(e);
            }
        }
        let _ = conn.close().await;

        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_lazy_with(connect.clone());
        let feed = feed::pool(&connect, options.connect_timeout);
        Ok(PgStore {
            pool,
            feed,
            connect,
            connect_timeout: options.connect_timeout,
            target,
            closed: AtomicBool::new(false),
            listeners: Mutex::new(Vec::new()),
            holds: Default::default(),
            keyed: Default::default(),
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// Queries shared by the pool (reads) and a transaction (locking reads).
// ---------------------------------------------------------------------------------------------------------

/// How a read of a task locks it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TaskLock {
    None,
    Wait,
}

/// The statement is the same whatever the lock, so both share one shape.
async fn fetch_task<'e, E: Executor<'e, Database = Postgres>>(
    ex: E,
    task_id: Uuid,
    lock: TaskLock,
) -> Result<Option<Task>> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasker.tasks WHERE id = $1{}",
        match lock {
            TaskLock::None => "",
            TaskLock::Wait => " FOR UPDATE",
        }
    );
    let row = sqlx::query(&sql)
        .bind(task_id)
        .fetch_optional(ex)
        .await
        .map_err(db_err)?;
    row.as_ref().map(task_from_row).transpose()
}

async fn fetch_step<'e, E: Executor<'e, Database = Postgres>>(
    ex: E,
    step_id: Uuid,
    lock: bool,
) -> Result<Option<Step>> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM tasker.steps WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = sqlx::query(&sql)
        .bind(step_id)
        .fetch_optional(ex)
        .await
        .map_err(db_err)?;
    row.as_ref().map(step_from_row).transpose()
}

/// A task's steps by position; locked in that order, so two transactions locking them all never deadlock
/// with each other.
async fn fetch_steps_of_task<'e, E: Executor<'e, Database = Postgres>>(
    ex: E,
    task_id: Uuid,
    lock: bool,
) -> Result<Vec<Step>> {
    // Only operator actions lock every step of a task, and they hold the task already. A claim may hold one
    // of those steps while it waits for the task (to start it); the caller's short lock_timeout (55P03)
    // breaks that cycle on the operator's side, which rolls back and tries again (`PgTx::step_lock_all`).
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM tasker.steps WHERE task_id = $1 ORDER BY position, id{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let found = sqlx::query(&sql).bind(task_id).fetch_all(ex).await.map_err(db_err)?;
    rows(&found, step_from_row)
}

/// Each step with its task's context and its parents' results, in the order asked for; an id given twice is
/// answered once.
pub(super) async fn fetch_claim_inputs(conn: &mut PgConnection, step_ids: &[Uuid]) -> Result<Vec<ClaimInput>> {
    if step_ids.is_empty() {
        return Ok(Vec::new());
    }
    // One round trip: each step with its task's context and its parents' results gathered into one jsonb
    // object by name (jsonb null for a parent without a result).
    let found = sqlx::query(
        "SELECT s.id AS step_id, t.namespace AS namespace, t.name AS task_name, t.context AS context,
                COALESCE((SELECT jsonb_object_agg(p.name, COALESCE(p.result, 'null'::jsonb))
                          FROM tasker.step_edges e JOIN tasker.steps p ON p.id = e.parent_id
                          WHERE e.child_id = s.id), '{}'::jsonb) AS dependency_results
         FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
         WHERE s.id = ANY($1)",
    )
    .bind(step_ids)
    .fetch_all(conn)
    .await
    .map_err(db_err)?;
    let mut by_id = HashMap::with_capacity(found.len());
    for row in &found {
        let input = claim_input_from_row(row)?;
        by_id.insert(input.step_id, input);
    }
    // In the order asked for; an id given twice is answered once.
    Ok(step_ids.iter().filter_map(|s| by_id.remove(s)).collect())
}

// ---------------------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------------------

/// The aggregate columns of a finished summary over rows aliased `alias` (state) and `d` (ms, null for a row
/// without a duration), for `summary_from_row`. `alias` is one of this file's constants, never user input.
fn summary_select(alias: &str) -> String {
    format!(
        "SELECT COUNT(*) FILTER (WHERE {alias}.state = 'complete') AS completed,
                COUNT(*) FILTER (WHERE {alias}.state = 'error') AS failed,
                COUNT(d.ms) AS n,
                COALESCE(SUM(d.ms), 0)::bigint AS sum_ms,
                COALESCE(percentile_disc(0.5) WITHIN GROUP (ORDER BY d.ms), 0) AS p50_ms,
                COALESCE(percentile_disc(0.95) WITHIN GROUP (ORDER BY d.ms), 0) AS p95_ms,
                COALESCE(MAX(d.ms), 0) AS max_ms"
    )
}

fn has_task_filter(filter: &AnalyticsFilter) -> bool {
    filter.namespace.is_some() || filter.name.is_some() || filter.version.is_some()
}

#[async_trait]
impl Store for PgStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Postgres
    }

    async fn schedule_list(&self) -> Result<Vec<crate::schedule::Schedule>> {
        let found = sqlx::query("SELECT body FROM tasker.schedules ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows(&found, schedule_from_row)
    }

    async fn schedule_get(&self, name: &str) -> Result<Option<crate::schedule::Schedule>> {
        let row = sqlx::query("SELECT body FROM tasker.schedules WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(schedule_from_row).transpose()
    }

    async fn schedule_next_fire_at(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT min(next_fire_at) AS at FROM tasker.schedules WHERE next_fire_at IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Cols::new(&row, "schedules").opt_ts("at")
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        // Dropping a sqlx transaction queues a ROLLBACK that runs before its connection serves anyone else.
        let tx = self.pool.begin().await.map_err(db_err)?;
        Ok(Box::new(PgTx {
            tx,
            holds: self.holds.clone(),
            keyed: self.keyed.clone(),
        }))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
        }
    }

    async fn close(&self) {
        let listening = {
            let mut listeners = lock(&self.listeners);
            self.closed.store(true, Ordering::Release);
            std::mem::take(&mut *listeners)
        };
        for l in &listening {
            l.abort();
        }
        for l in listening {
            l.stop(&self.target).await;
        }
        self.feed.close().await;
        self.pool.close().await;
    }

    fn attach_wakeups(&self, work: Arc<Notify>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                database = %self.target.database,
                "no tokio runtime: postgres wake-ups are off, idle workers fall back to polling"
            );
            return;
        };
        let mut listeners = lock(&self.listeners);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        listeners.push(Listening::start(
            &runtime,
            &self.connect,
            self.connect_timeout,
            &self.target,
            work,
        ));
    }

    fn has_feed(&self) -> bool {
        true
    }

    async fn feed_position(&self) -> Result<FeedCursor> {
        feed::position(&self.feed).await
    }

    async fn feed_read(&self, after: &FeedCursor) -> Result<(FeedBatch, FeedCursor)> {
        match after {
            FeedCursor::Snapshot(prev) => feed::read(&self.feed, prev).await,
            other => Err(Error::Internal(format!(
                "postgres event feed handed a cursor of another store: {other:?}"
            ))),
        }
    }

    async fn template_list(&self, namespace: Option<&str>, name: Option<&str>) -> Result<Vec<TemplateRecord>> {
        let mut q =
            QueryBuilder::<Postgres>::new(format!("SELECT {TEMPLATE_COLUMNS} FROM tasker.templates WHERE true"));
        push_template_filters(&mut q, namespace, name);
        q.push(" ORDER BY id");
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, template_from_row)
    }

    async fn template_by_id(&self, template_id: Uuid) -> Result<Option<TemplateRecord>> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM tasker.templates WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(template_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(template_from_row).transpose()
    }

    async fn task_get(&self, task_id: Uuid) -> Result<Option<Task>> {
        fetch_task(&self.pool, task_id, TaskLock::None).await
    }

    async fn task_list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {TASK_COLUMNS} FROM tasker.tasks WHERE true"));
        push_task_list(&mut q, filter, |q, before| {
            q.push_bind(before);
        });
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, task_from_row)
    }

    async fn step_get(&self, step_id: Uuid) -> Result<Option<Step>> {
        fetch_step(&self.pool, step_id, false).await
    }

    async fn step_task_ids(&self, step_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
        if step_ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = sqlx::query("SELECT id, task_id FROM tasker.steps WHERE id = ANY($1)")
            .bind(step_ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(found
            .iter()
            .map(|row| (row.get::<Uuid, _>(0), row.get::<Uuid, _>(1)))
            .collect())
    }

    async fn step_list(&self, task_id: Uuid) -> Result<Vec<Step>> {
        fetch_steps_of_task(&self.pool, task_id, false).await
    }

    async fn edge_list(&self, task_id: Uuid) -> Result<Vec<Edge>> {
        let found = sqlx::query(
            "SELECT task_id, parent_id, child_id FROM tasker.step_edges WHERE task_id = $1 ORDER BY position",
        )
        .bind(task_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows(&found, edge_from_row)
    }

    async fn task_transition_list(&self, task_id: Uuid) -> Result<Vec<TaskTransition>> {
        let sql = format!(
            "SELECT {TASK_TRANSITION_COLUMNS} FROM tasker.task_transitions WHERE task_id = $1 ORDER BY sort_key, id"
        );
        let found = sqlx::query(&sql)
            .bind(task_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows(&found, task_transition_from_row)
    }

    async fn step_transition_list(&self, task_id: Uuid) -> Result<Vec<StepTransition>> {
        let sql = format!(
            "SELECT {STEP_TRANSITION_COLUMNS} FROM tasker.step_transitions WHERE task_id = $1
             ORDER BY step_id, sort_key, id"
        );
        let found = sqlx::query(&sql)
            .bind(task_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows(&found, step_transition_from_row)
    }

    async fn step_event_counts(&self, since: Timestamp) -> Result<Vec<(String, i64)>> {
        // COLLATE "C": byte order, whatever the database's collation, as the other stores sort.
        let found = sqlx::query(
            "SELECT event, COUNT(*) AS n FROM tasker.step_transitions
             WHERE created_at >= $1 AND event IS NOT NULL
             GROUP BY event ORDER BY event COLLATE \"C\"",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows(&found, event_count_from_row)
    }

    async fn state_counts(&self) -> Result<StateCounts> {
        // One statement, so every count comes from the same snapshot; exhausted steps are counted in the same
        // pass over steps.
        let found = sqlx::query(
            "SELECT 'task' AS kind, state, COUNT(*) AS n, 0::bigint AS exhausted
             FROM tasker.tasks GROUP BY state
             UNION ALL
             SELECT 'step', state, COUNT(*), COUNT(*) FILTER (WHERE attempts >= max_attempts)
             FROM tasker.steps GROUP BY state",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut counts = StateCounts::default();
        for row in &found {
            let c = Cols::new(row, "steps");
            if c.text("kind")? == "task" {
                counts.tasks.insert(c.parse::<TaskState>("state")?, c.int("n")?);
            } else {
                let state = c.parse::<StepState>("state")?;
                counts.steps.insert(state, c.int("n")?);
                if state == StepState::Error {
                    counts.steps_exhausted = c.int("exhausted")?;
                }
            }
        }
        Ok(counts)
    }

    async fn step_finished_summary(&self, filter: &AnalyticsFilter) -> Result<FinishedSummary> {
        // percentile_disc(p) is the nearest-rank percentile of crate::analytics: the first value whose rank
        // reaches ceil(p * n). It ignores NULLs, so only completed steps with a start time count.
        let mut q = QueryBuilder::<Postgres>::new(summary_select("s"));
        q.push(" FROM tasker.steps s");
        if has_task_filter(filter) {
            q.push(" JOIN tasker.tasks t ON t.id = s.task_id");
        }
        q.push(
            " CROSS JOIN LATERAL (SELECT CASE WHEN s.state = 'complete' THEN
                 (EXTRACT(EPOCH FROM s.finished_at - s.started_at) * 1000)::bigint END AS ms) d
             WHERE s.state IN ('complete', 'error') AND s.finished_at IS NOT NULL",
        );
        if let Some(since) = filter.since {
            q.push(" AND s.finished_at >= ").push_bind(since);
        }
        push_task_filters(&mut q, "t", filter);
        let row = q.build().fetch_one(&self.pool).await.map_err(db_err)?;
        summary_from_row(&row, "steps")
    }

    async fn task_finished_summary(&self, filter: &AnalyticsFilter) -> Result<FinishedSummary> {
        let mut q = QueryBuilder::<Postgres>::new(summary_select("t"));
        q.push(
            " FROM tasker.tasks t
             CROSS JOIN LATERAL (SELECT CASE WHEN t.state = 'complete' THEN
                 (EXTRACT(EPOCH FROM t.finished_at - t.created_at) * 1000)::bigint END AS ms) d
             WHERE t.state IN ('complete', 'error') AND t.finished_at IS NOT NULL",
        );
        if let Some(since) = filter.since {
            q.push(" AND t.finished_at >= ").push_bind(since);
        }
        push_task_filters(&mut q, "t", filter);
        let row = q.build().fetch_one(&self.pool).await.map_err(db_err)?;
        summary_from_row(&row, "tasks")
    }

    async fn step_slowest(&self, filter: &AnalyticsFilter, limit: i64) -> Result<Vec<StepTiming>> {
        // A top-N sort over the window's rows, read through steps_finished_at_idx: memory stays at `limit`
        // rows. No index orders steps by duration (docs/benchmarks.md, "Analytics", says why).
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT s.id AS step_id, s.task_id AS task_id, t.namespace AS namespace, t.name AS task_name,
                    t.version AS version, s.name AS step_name, s.state AS state, s.attempts AS attempts,
                    s.started_at AS started_at, s.finished_at AS finished_at
             FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
             WHERE s.state IN ('complete', 'error') AND s.finished_at IS NOT NULL AND s.started_at IS NOT NULL",
        );
        if let Some(since) = filter.since {
            q.push(" AND s.finished_at >= ").push_bind(since);
        }
        push_task_filters(&mut q, "t", filter);
        q.push(" ORDER BY s.finished_at - s.started_at DESC, s.id LIMIT ")
            .push_bind(limit);
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, step_timing_from_row)
    }

    async fn task_slowest(&self, filter: &AnalyticsFilter, limit: i64) -> Result<Vec<TaskTiming>> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT t.id AS id, t.namespace AS namespace, t.name AS name, t.version AS version, t.state AS state,
                    t.steps_total AS steps_total, t.created_at AS created_at, t.finished_at AS finished_at
             FROM tasker.tasks t
             WHERE t.state IN ('complete', 'error') AND t.finished_at IS NOT NULL",
        );
        if let Some(since) = filter.since {
            q.push(" AND t.finished_at >= ").push_bind(since);
        }
        push_task_filters(&mut q, "t", filter);
        q.push(" ORDER BY t.finished_at - t.created_at DESC, t.id LIMIT ")
            .push_bind(limit);
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, task_timing_from_row)
    }

    async fn next_retry_at(&self, handler_keys: &[String]) -> Result<Option<Timestamp>> {
        if handler_keys.is_empty() {
            return Ok(None);
        }
        // The state term matches steps_retry_due_idx, so MIN reads that index in order and stops early.
        // Held tasks count whatever their handler keys: a claim of any worker releases them.
        let row = sqlx::query(
            "SELECT LEAST(
                 (SELECT MIN(s.next_attempt_at)
                  FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
                  WHERE s.state = 'waiting_for_retry'
                    AND s.handler_key = ANY($1)
                    AND t.state IN ('pending', 'in_progress')),
                 (SELECT MIN(h.held_until) FROM tasker.task_holds h JOIN tasker.tasks t ON t.id = h.task_id
                  WHERE t.held_until IS NOT NULL)
             ) AS next_at",
        )
        .bind(handler_keys)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let next = Cols::new(&row, "steps").opt_ts("next_at")?;
        // Whether it is a retry or a hold, claims of this process look for due holds at that time.
        if let Some(at) = next {
            self.holds.known(at);
        }
        Ok(next)
    }

    async fn step_running_counts(&self, keys: &[String]) -> Result<Vec<(String, i64)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // The terms of steps_concurrency_running_idx.
        let rows = sqlx::query(
            "SELECT concurrency_key AS key, count(*) AS n FROM tasker.steps
             WHERE state = 'in_progress' AND concurrency_key IS NOT NULL AND concurrency_key = ANY($1)
             GROUP BY concurrency_key",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let c = Cols::new(r, "steps");
                Ok((c.text("key")?, c.int("n")?))
            })
            .collect()
    }

    async fn server_time(&self) -> Result<Option<Timestamp>> {
        // clock_timestamp(), not now(): now() is the transaction's start, and this is its own statement.
        let row = sqlx::query("SELECT clock_timestamp() AS now")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Cols::new(&row, "server").opt_ts("now")
    }
}
