//! The SQLite store: the embedded default, one machine and nothing to set up.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, so the write lock is taken before anything is read
//! and two writers never race from the same snapshot; that lock is also what makes a claim exclusive.
//! Reads outside a transaction go straight to the pool and, thanks to WAL, never wait for a writer.
//!
//! The store is a folder: this file opens the pool and serves the reads outside transactions ([`Store`]);
//! `tx.rs` holds the write transactions ([`StoreTx`]), `url.rs` the URL forms, `codec.rs` how values are
//! kept, and `migrate.rs` the migrations. What the SQL stores share is in `store/sql/`.

mod codec;
mod migrate;
#[cfg(test)]
mod tests;
mod tx;
mod url;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, QueryBuilder, Sqlite};
use uuid::Uuid;

use self::codec::{id, id_array, ms, string_array, PackedStep};
use self::migrate::{SqliteMigrations, MIGRATIONS};
use self::tx::SqliteTx;
use self::url::{parse_url, Location};
use crate::analytics::nearest_rank;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::state::{StepState, TaskState};
use crate::store::sql::error::lowercase_first;
use crate::store::sql::migrate::run as migrate;
use crate::store::sql::query::{push_task_filters, push_task_list, push_template_filters};
use crate::store::sql::rows::{
    event_count_from_row, feed_step_from_row, rows, schedule_from_row, step_from_row, step_timing_from_row,
    step_transition_from_row, task_from_row, task_timing_from_row, task_transition_from_row, template_from_row, Cols,
    STEP_COLUMNS, STEP_TRANSITION_COLUMNS, TASK_COLUMNS, TASK_TRANSITION_COLUMNS, TEMPLATE_COLUMNS,
};
use crate::store::{ClaimInput, FeedBatch, FeedCursor, PoolStats, Store, StoreKind, StoreTx};

/// Connection settings of a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Apply pending migrations at connect time.
    pub migrate: bool,
    /// Pool size for a file database; an in-memory database always uses exactly one connection.
    pub max_connections: u32,
    /// How long a statement waits for another connection's lock before giving up.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            migrate: true,
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A store backed by one SQLite database file (or an in-memory database).
pub struct SqliteStore {
    pool: SqlitePool,
    location: Location,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location.to_string())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and, unless told not to, migrates it.
    pub async fn connect(url: &str, options: &SqliteOptions) -> Result<SqliteStore> {
        let location = parse_url(url)?;
        if options.max_connections == 0 {
            return Err(Error::Configuration("sqlite max_connections must be at least 1".into()));
        }
        let connect = match &location {
            // sqlx names each `:memory:` database uniquely, so two stores never share one by accident.
            Location::Memory => SqliteConnectOptions::from_str("sqlite::memory:")
                .map_err(|e| Error::Configuration(format!("invalid sqlite options: {e}")))?,
            Location::File(path) => {
                check_parent_dir(path)?;
                SqliteConnectOptions::new().filename(path).create_if_missing(true)
            }
        }
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(options.busy_timeout)
        .foreign_keys(true);
        if matches!(location, Location::File(_)) {
            enable_wal(&connect, &location, options.busy_timeout).await?;
        }

        let pool_options = match &location {
            // An in-memory database lives exactly as long as its connection and is private to it, so the
            // pool holds one connection forever.
            Location::Memory => SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            Location::File(_) => SqlitePoolOptions::new().max_connections(options.max_connections),
        };
        let pool = pool_options
            .connect_with(connect)
            .await
            .map_err(|e| Error::Database(format!("cannot open sqlite database {location}: {e}")))?;
        let store = SqliteStore { pool, location };
        if options.migrate {
            let migrated = migrate(&mut SqliteMigrations::new(&store.pool, &store.location), MIGRATIONS).await;
            if let Err(e) = migrated {
                store.pool.close().await;
                return Err(e);
            }
        }
        Ok(store)
    }
}

/// SQLite creates a missing file but not a missing directory; say so instead of "unable to open".
fn check_parent_dir(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(Error::Configuration(format!(
            "cannot open sqlite database {}: directory {} does not exist",
            path.display(),
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Maps a sqlx error: unique violations are conflicts, a closed pool is `closed`, a lock wait that ran out is
/// a timeout, and the rest go through the crate-wide conversion.
fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::PoolClosed => Error::Closed,
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(lowercase_first(d.message())),
        sqlx::Error::Database(d) if is_busy(&e) => {
            Error::Timeout(format!("waiting for the sqlite write lock: {}", d.message()))
        }
        _ => Error::from(e),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// SQLITE_BUSY and its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT) share the low byte 5.
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| c & 0xff == 5))
}

/// Switches the file to WAL once, before the pool opens it.
///
/// WAL is a property of the file, so later connections need not ask for it. Switching needs an exclusive lock
/// that SQLite's busy timeout does not wait for, so two processes opening a fresh file at once would see a
/// spurious "database is locked" if sqlx set it on every connection; here it is retried until `busy_timeout`.
async fn enable_wal(connect: &SqliteConnectOptions, location: &Location, busy_timeout: Duration) -> Result<()> {
    use sqlx::{ConnectOptions, Connection};

    let open_err = |e: sqlx::Error| Error::Database(format!("cannot open sqlite database {location}: {e}"));
    let mut conn = connect.connect().await.map_err(open_err)?;
    // Wall-clock time on purpose: tests that pause tokio's clock must not make this give up at once.
    let deadline = std::time::Instant::now() + busy_timeout;
    let mut delay = Duration::from_millis(5);
    let mode = loop {
        match sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(&mut conn)
            .await
        {
            Ok(mode) => break mode,
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                let _ = conn.close().await;
                return Err(db_err(e));
            }
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        // Still correct, only readers now wait for writers; some file systems cannot do WAL.
        tracing::warn!(database = %location, journal_mode = %mode, "sqlite database could not switch to WAL");
    }
    conn.close().await.map_err(db_err)
}

// ---------------------------------------------------------------------------------------------------------
// Queries shared by the pool (reads) and a transaction (reads under the write lock).
// ---------------------------------------------------------------------------------------------------------

async fn fetch_task<'e, E: Executor<'e, Database = Sqlite>>(ex: E, task_id: Uuid) -> Result<Option<Task>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?");
    let row = sqlx::query(&sql)
        .bind(id(task_id))
        .fetch_optional(ex)
        .await
        .map_err(db_err)?;
    row.as_ref().map(task_from_row).transpose()
}

async fn fetch_step<'e, E: Executor<'e, Database = Sqlite>>(ex: E, step_id: Uuid) -> Result<Option<Step>> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM steps WHERE id = ?");
    let row = sqlx::query(&sql)
        .bind(id(step_id))
        .fetch_optional(ex)
        .await
        .map_err(db_err)?;
    row.as_ref().map(step_from_row).transpose()
}

/// The steps of a task, by position.
///
/// SQLite builds the whole list as one JSON document, parsed here in one pass: sqlx copies every column
/// value of every row into its own allocation, which for a 1,000-step task cost several times more than
/// the query. JSON columns are embedded as values (`json(...)`), except `result`, which stays text because
/// SQL NULL (no result) and JSON `null` (a handler that returned null) must stay apart.
async fn fetch_steps_of_task<'e, E: Executor<'e, Database = Sqlite>>(ex: E, task_id: Uuid) -> Result<Vec<Step>> {
    let packed: Option<String> = sqlx::query_scalar(
        "SELECT json_group_array(json_array(id, task_id, name, handler_key, position, state, attempts, max_attempts,
                    json(retry), timeout_seconds, json(config), unfinished_parents, next_attempt_at, lease_expires_at,
                    worker_id, result, json(error), transition_count, created_at, updated_at, started_at, finished_at,
                    priority, ready_at, concurrency_key, concurrency_limit))
         FROM (SELECT * FROM steps WHERE task_id = ? ORDER BY position, id)",
    )
    .bind(id(task_id))
    .fetch_one(ex)
    .await
    .map_err(db_err)?;
    let Some(packed) = packed else { return Ok(Vec::new()) };
    let rows: Vec<PackedStep> = serde_json::from_str(&packed)
        .map_err(|e| Error::Internal(format!("corrupt value in steps: cannot read the packed rows: {e}")))?;
    rows.into_iter().map(PackedStep::into_step).collect()
}

/// Each step with its task's context and its parents' results, in the order asked for; an id given twice is
/// answered once.
pub(super) async fn fetch_claim_inputs(conn: &mut SqliteConnection, step_ids: &[Uuid]) -> Result<Vec<ClaimInput>> {
    if step_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = id_array(step_ids);
    let heads = sqlx::query(
        "SELECT s.id AS step_id, t.namespace AS namespace, t.name AS task_name, t.context AS context
         FROM steps s JOIN tasks t ON t.id = s.task_id
         WHERE s.id IN (SELECT value FROM json_each(?))",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let parents = sqlx::query(
        "SELECT e.child_id AS child_id, p.name AS name, p.result AS result
         FROM step_edges e JOIN steps p ON p.id = e.parent_id
         WHERE e.child_id IN (SELECT value FROM json_each(?))",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;

    let mut results: std::collections::HashMap<Uuid, Map<String, Value>> = std::collections::HashMap::new();
    for row in &parents {
        let c = Cols::new(row, "steps");
        let result: Option<Value> = c.opt_json("result")?;
        results
            .entry(c.uuid("child_id")?)
            .or_default()
            .insert(c.text("name")?, result.unwrap_or(Value::Null));
    }
    let mut by_id = std::collections::HashMap::with_capacity(heads.len());
    for row in &heads {
        let c = Cols::new(row, "tasks");
        let step_id = c.uuid("step_id")?;
        by_id.insert(
            step_id,
            ClaimInput {
                step_id,
                namespace: c.text("namespace")?,
                task_name: c.text("task_name")?,
                context: c.json("context")?,
                dependency_results: results.remove(&step_id).unwrap_or_default(),
            },
        );
    }
    // In the order asked for; an id given twice is answered once.
    Ok(step_ids.iter().filter_map(|s| by_id.remove(s)).collect())
}

// ---------------------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------------------

/// Appends ` FROM steps s … WHERE` for finished steps: `state_terms`, then `filter`'s window and task
/// filters. The unary + keeps SQLite off the state index, which matches most rows, so that a `since` range
/// is read from the finished_at index instead; the task join is there only when a task filter is.
fn push_finished_steps(q: &mut QueryBuilder<'_, Sqlite>, filter: &AnalyticsFilter, state_terms: &'static str) {
    q.push(" FROM steps s");
    if filter.namespace.is_some() || filter.name.is_some() || filter.version.is_some() {
        q.push(" JOIN tasks t ON t.id = s.task_id");
    }
    q.push(" WHERE ")
        .push(state_terms)
        .push(" AND s.finished_at IS NOT NULL");
    if let Some(since) = filter.since {
        q.push(" AND s.finished_at >= ").push_bind(ms(since));
    }
    push_task_filters(q, "t", filter);
}

/// Appends ` FROM tasks t WHERE` for finished tasks, as [`push_finished_steps`] does for steps.
fn push_finished_tasks(q: &mut QueryBuilder<'_, Sqlite>, filter: &AnalyticsFilter, state_terms: &'static str) {
    q.push(" FROM tasks t WHERE ")
        .push(state_terms)
        .push(" AND t.finished_at IS NOT NULL");
    if let Some(since) = filter.since {
        q.push(" AND t.finished_at >= ").push_bind(ms(since));
    }
    push_task_filters(q, "t", filter);
}

impl SqliteStore {
    /// Runs a summary's two queries in one read transaction, so that both see the same rows: `counts` returns
    /// one row of completed, failed, n, sum_ms and max_ms; `ranked` is the open subquery `SELECT ms, rn FROM
    /// (…` that numbers the durations in ascending order, closed here so that only the rows at the two
    /// nearest ranks come back. SQLite sorts in its own sorter,
    /// which spills to temporary files, so the process never holds more than those two values.
    async fn finished_summary(
        &self,
        table: &'static str,
        mut counts: QueryBuilder<'_, Sqlite>,
        mut ranked: QueryBuilder<'_, Sqlite>,
    ) -> Result<FinishedSummary> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row = counts.build().fetch_one(&mut *tx).await.map_err(db_err)?;
        let c = Cols::new(&row, table);
        let mut summary = FinishedSummary {
            completed: c.int("completed")?,
            failed: c.int("failed")?,
            durations: c.int("n")?,
            sum_ms: c.int("sum_ms")?,
            max_ms: c.int("max_ms")?,
            ..FinishedSummary::default()
        };
        if summary.durations > 0 {
            let (r50, r95) = (nearest_rank(50, summary.durations), nearest_rank(95, summary.durations));
            ranked
                .push(") WHERE rn IN (")
                .push_bind(r50)
                .push(", ")
                .push_bind(r95)
                .push(")");
            let found = ranked.build().fetch_all(&mut *tx).await.map_err(db_err)?;
            for row in &found {
                let c = Cols::new(row, table);
                let (ms, rn) = (c.int("ms")?, c.int("rn")?);
                if rn == r50 {
                    summary.p50_ms = ms;
                }
                if rn == r95 {
                    summary.p95_ms = ms;
                }
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(summary)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    async fn schedule_list(&self) -> Result<Vec<crate::schedule::Schedule>> {
        let found = sqlx::query("SELECT body FROM schedules ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows(&found, schedule_from_row)
    }

    async fn schedule_get(&self, name: &str) -> Result<Option<crate::schedule::Schedule>> {
        let row = sqlx::query("SELECT body FROM schedules WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(schedule_from_row).transpose()
    }

    async fn schedule_next_fire_at(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query("SELECT MIN(next_fire_at) AS at FROM schedules WHERE next_fire_at IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Cols::new(&row, "schedules").opt_ts("at")
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        // Dropping a sqlx transaction queues a ROLLBACK on its connection before the connection can serve
        // anyone else, so an abandoned transaction never leaks its lock back into the pool.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        Ok(Box::new(SqliteTx::new(tx)))
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
        self.pool.close().await;
    }

    /// A file database can be shared by processes; an in-memory one lives and dies with this one.
    fn has_feed(&self) -> bool {
        matches!(self.location, Location::File(_))
    }

    async fn feed_position(&self) -> Result<FeedCursor> {
        let (task, step): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM task_transitions),
                    (SELECT COALESCE(MAX(seq), 0) FROM step_transitions)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(FeedCursor::Seq { task, step })
    }

    /// Writers take turns (BEGIN IMMEDIATE), so `seq` grows in commit order and a snapshot holds a prefix of
    /// the commits: the rows above the cursor are exactly the commits since. Both tables are read in one read
    /// transaction, so a commit is never half in one read and half in the next.
    async fn feed_read(&self, after: &FeedCursor) -> Result<(FeedBatch, FeedCursor)> {
        let &FeedCursor::Seq { task, step } = after else {
            return Err(Error::Internal(format!(
                "sqlite event feed handed a cursor of another store: {after:?}"
            )));
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let steps = sqlx::query(&format!(
            "SELECT seq, {STEP_TRANSITION_COLUMNS},
                    (SELECT s.name FROM steps s WHERE s.id = t.step_id) AS step_name
             FROM step_transitions t WHERE seq > ? ORDER BY seq"
        ))
        .bind(step)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let tasks = sqlx::query(&format!(
            "SELECT seq, {TASK_TRANSITION_COLUMNS} FROM task_transitions WHERE seq > ? ORDER BY seq"
        ))
        .bind(task)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let last = |found: &[sqlx::sqlite::SqliteRow], from: i64| -> Result<i64> {
            match found.last() {
                Some(row) => Cols::new(row, "transitions").int("seq"),
                None => Ok(from),
            }
        };
        let next = FeedCursor::Seq {
            task: last(&tasks, task)?,
            step: last(&steps, step)?,
        };
        Ok((
            FeedBatch {
                steps: rows(&steps, feed_step_from_row)?,
                tasks: rows(&tasks, task_transition_from_row)?,
            },
            next,
        ))
    }

    async fn template_list(&self, namespace: Option<&str>, name: Option<&str>) -> Result<Vec<TemplateRecord>> {
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE 1 = 1"));
        push_template_filters(&mut q, namespace, name);
        q.push(" ORDER BY id");
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, template_from_row)
    }

    async fn template_by_id(&self, template_id: Uuid) -> Result<Option<TemplateRecord>> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id(template_id))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(template_from_row).transpose()
    }

    async fn task_get(&self, task_id: Uuid) -> Result<Option<Task>> {
        fetch_task(&self.pool, task_id).await
    }

    async fn task_list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1"));
        push_task_list(&mut q, filter, |q, before| {
            q.push_bind(id(before));
        });
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, task_from_row)
    }

    async fn step_get(&self, step_id: Uuid) -> Result<Option<Step>> {
        fetch_step(&self.pool, step_id).await
    }

    async fn step_task_ids(&self, step_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
        if step_ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = sqlx::query("SELECT id, task_id FROM steps WHERE id IN (SELECT value FROM json_each(?))")
            .bind(id_array(step_ids))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        found
            .iter()
            .map(|row| {
                let c = Cols::new(row, "steps");
                Ok((c.uuid("id")?, c.uuid("task_id")?))
            })
            .collect()
    }

    async fn step_list(&self, task_id: Uuid) -> Result<Vec<Step>> {
        fetch_steps_of_task(&self.pool, task_id).await
    }

    async fn edge_list(&self, task_id: Uuid) -> Result<Vec<Edge>> {
        // rowid order is insertion order, the order the edges were given in. Packed as one JSON document for
        // the reason `fetch_steps_of_task` gives.
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(json_array(parent_id, child_id))
             FROM (SELECT parent_id, child_id FROM step_edges WHERE task_id = ? ORDER BY rowid)",
        )
        .bind(id(task_id))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(packed) = packed else { return Ok(Vec::new()) };
        let pairs: Vec<(String, String)> = serde_json::from_str(&packed)
            .map_err(|e| Error::Internal(format!("corrupt value in step_edges: cannot read the packed rows: {e}")))?;
        let parse = |s: &str| {
            Uuid::parse_str(s).map_err(|e| Error::Internal(format!("corrupt value in step_edges: {s:?}: {e}")))
        };
        pairs
            .iter()
            .map(|(p, c)| {
                Ok(Edge {
                    task_id,
                    parent_id: parse(p)?,
                    child_id: parse(c)?,
                })
            })
            .collect()
    }

    async fn task_transition_list(&self, task_id: Uuid) -> Result<Vec<TaskTransition>> {
        let sql =
            format!("SELECT {TASK_TRANSITION_COLUMNS} FROM task_transitions WHERE task_id = ? ORDER BY sort_key, id");
        let found = sqlx::query(&sql)
            .bind(id(task_id))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows(&found, task_transition_from_row)
    }

    async fn step_transition_list(&self, task_id: Uuid) -> Result<Vec<StepTransition>> {
        let sql = format!(
            "SELECT {STEP_TRANSITION_COLUMNS} FROM step_transitions WHERE task_id = ? ORDER BY step_id, sort_key, id"
        );
        let found = sqlx::query(&sql)
            .bind(id(task_id))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows(&found, step_transition_from_row)
    }

    async fn step_event_counts(&self, since: Timestamp) -> Result<Vec<(String, i64)>> {
        let found = sqlx::query(
            "SELECT event, COUNT(*) AS n FROM step_transitions
             WHERE created_at >= ? AND event IS NOT NULL
             GROUP BY event ORDER BY event",
        )
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows(&found, event_count_from_row)
    }

    async fn state_counts(&self) -> Result<StateCounts> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let mut counts = StateCounts::default();
        let task_rows = sqlx::query("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state")
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        for row in &task_rows {
            let c = Cols::new(row, "tasks");
            counts.tasks.insert(c.parse::<TaskState>("state")?, c.int("n")?);
        }
        let step_rows = sqlx::query("SELECT state, COUNT(*) AS n FROM steps GROUP BY state")
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        for row in &step_rows {
            let c = Cols::new(row, "steps");
            counts.steps.insert(c.parse::<StepState>("state")?, c.int("n")?);
        }
        counts.steps_exhausted =
            sqlx::query("SELECT COUNT(*) AS n FROM steps WHERE state = 'error' AND attempts >= max_attempts")
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)
                .and_then(|row| Cols::new(&row, "steps").int("n"))?;
        Ok(counts)
    }

    async fn step_finished_summary(&self, filter: &AnalyticsFilter) -> Result<FinishedSummary> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT COUNT(*) FILTER (WHERE s.state = 'complete') AS completed,
                    COUNT(*) FILTER (WHERE s.state = 'error') AS failed,
                    COUNT(s.started_at) FILTER (WHERE s.state = 'complete') AS n,
                    COALESCE(SUM(s.finished_at - s.started_at) FILTER (WHERE s.state = 'complete'), 0) AS sum_ms,
                    COALESCE(MAX(s.finished_at - s.started_at) FILTER (WHERE s.state = 'complete'), 0) AS max_ms",
        );
        push_finished_steps(&mut q, filter, "+s.state IN ('complete', 'error')");
        let mut ranked = QueryBuilder::<Sqlite>::new(
            "SELECT ms, rn FROM (SELECT s.finished_at - s.started_at AS ms,
                    ROW_NUMBER() OVER (ORDER BY s.finished_at - s.started_at) AS rn",
        );
        push_finished_steps(
            &mut ranked,
            filter,
            "+s.state = 'complete' AND s.started_at IS NOT NULL",
        );
        self.finished_summary("steps", q, ranked).await
    }

    async fn task_finished_summary(&self, filter: &AnalyticsFilter) -> Result<FinishedSummary> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT COUNT(*) FILTER (WHERE t.state = 'complete') AS completed,
                    COUNT(*) FILTER (WHERE t.state = 'error') AS failed,
                    COUNT(*) FILTER (WHERE t.state = 'complete') AS n,
                    COALESCE(SUM(t.finished_at - t.created_at) FILTER (WHERE t.state = 'complete'), 0) AS sum_ms,
                    COALESCE(MAX(t.finished_at - t.created_at) FILTER (WHERE t.state = 'complete'), 0) AS max_ms",
        );
        push_finished_tasks(&mut q, filter, "+t.state IN ('complete', 'error')");
        let mut ranked = QueryBuilder::<Sqlite>::new(
            "SELECT ms, rn FROM (SELECT t.finished_at - t.created_at AS ms,
                    ROW_NUMBER() OVER (ORDER BY t.finished_at - t.created_at) AS rn",
        );
        push_finished_tasks(&mut ranked, filter, "+t.state = 'complete'");
        self.finished_summary("tasks", q, ranked).await
    }

    async fn step_slowest(&self, filter: &AnalyticsFilter, limit: i64) -> Result<Vec<StepTiming>> {
        // ORDER BY … LIMIT keeps only `limit` rows while SQLite scans; nothing indexes the duration (see
        // docs/benchmarks.md, "Analytics"), so the scan covers the steps that finished in the window.
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT s.id AS step_id, s.task_id AS task_id, t.namespace AS namespace, t.name AS task_name,
                    t.version AS version, s.name AS step_name, s.state AS state, s.attempts AS attempts,
                    s.started_at AS started_at, s.finished_at AS finished_at
             FROM steps s JOIN tasks t ON t.id = s.task_id
             WHERE +s.state IN ('complete', 'error') AND s.finished_at IS NOT NULL AND s.started_at IS NOT NULL",
        );
        if let Some(since) = filter.since {
            q.push(" AND s.finished_at >= ").push_bind(ms(since));
        }
        push_task_filters(&mut q, "t", filter);
        q.push(" ORDER BY s.finished_at - s.started_at DESC, s.id LIMIT ")
            .push_bind(limit);
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, step_timing_from_row)
    }

    async fn task_slowest(&self, filter: &AnalyticsFilter, limit: i64) -> Result<Vec<TaskTiming>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT t.id AS id, t.namespace AS namespace, t.name AS name, t.version AS version, t.state AS state,
                    t.steps_total AS steps_total, t.created_at AS created_at, t.finished_at AS finished_at
             FROM tasks t
             WHERE +t.state IN ('complete', 'error') AND t.finished_at IS NOT NULL",
        );
        if let Some(since) = filter.since {
            q.push(" AND t.finished_at >= ").push_bind(ms(since));
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
        // Written like the claim query (partial index terms, steps first) so that it reads the same small index.
        // A waiting step was claimed once, so its parents are done and unfinished_parents = 0 holds anyway.
        // Held tasks count whatever their handler keys: a claim of any worker releases them.
        let row = sqlx::query(
            "SELECT MIN(at) AS next_at FROM (
                 SELECT MIN(s.next_attempt_at) AS at
                 FROM steps s CROSS JOIN tasks t ON t.id = s.task_id
                 WHERE s.state IN ('pending', 'waiting_for_retry') AND s.unfinished_parents = 0
                   AND s.state = 'waiting_for_retry'
                   AND s.handler_key IN (SELECT value FROM json_each(?))
                   AND t.state IN ('pending', 'in_progress')
                 UNION ALL
                 SELECT MIN(held_until) FROM tasks WHERE held_until IS NOT NULL
             )",
        )
        .bind(string_array(handler_keys))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Cols::new(&row, "steps").opt_ts("next_at")
    }

    async fn step_running_counts(&self, keys: &[String]) -> Result<Vec<(String, i64)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // The terms of steps_concurrency_running_idx.
        let rows = sqlx::query(
            "SELECT concurrency_key AS key, count(*) AS n FROM steps
             WHERE state = 'in_progress' AND concurrency_key IS NOT NULL
               AND concurrency_key IN (SELECT value FROM json_each(?))
             GROUP BY concurrency_key",
        )
        .bind(string_array(keys))
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
}
