//! The SQLite store: the embedded default, one machine and nothing to set up.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, so the write lock is taken before anything is read
//! and two writers never race from the same snapshot; that lock is also what makes a claim exclusive.
//! Reads outside a transaction go straight to the pool and, thanks to WAL, never wait for a writer.
//!
//! Storage conventions: ids are lowercase hyphenated TEXT (UUIDv7, so text order is creation order),
//! timestamps are INTEGER unix milliseconds, JSON is TEXT, and states and events are their stable strings.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Executor, QueryBuilder, Row, Sqlite, Transaction};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::state::{StepEvent, StepState, TaskEvent, TaskState};
use crate::store::{ClaimInput, ClaimParams, ClaimedRow, PoolStats, Store, StoreKind, StoreTx};

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

/// One numbered migration, embedded so that an installed binary needs no files on disk.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

impl Migration {
    fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// Applied in order; never edit one that has shipped (its checksum is verified), add a new file instead.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "init",
    sql: include_str!("../../migrations/sqlite/0001_init.sql"),
}];

/// Where the database lives; all that `Debug` shows of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Memory,
    File(PathBuf),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Memory => f.write_str(":memory:"),
            Location::File(p) => write!(f, "{}", p.display()),
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

/// Parses `sqlite://path`, `sqlite:///abs/path`, `sqlite:path` and `sqlite::memory:`.
fn parse_url(url: &str) -> Result<Location> {
    let bad = |why: &str| {
        Error::Configuration(format!(
            "invalid sqlite url {:?}: {why} (expected sqlite://path/to/file.db, sqlite:///abs/path.db or sqlite::memory:)",
            crate::url::redact(url)
        ))
    };
    let rest = url
        .trim()
        .strip_prefix("sqlite:")
        .ok_or_else(|| bad("it must start with sqlite:"))?;
    if rest == ":memory:" || rest == "//:memory:" {
        return Ok(Location::Memory);
    }
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.contains('?') || path.contains('#') {
        return Err(bad("query parameters and fragments are not supported"));
    }
    if path.is_empty() {
        return Err(bad("the path is empty"));
    }
    Ok(Location::File(PathBuf::from(path)))
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
            if let Err(e) = store.migrate().await {
                store.pool.close().await;
                return Err(e);
            }
        }
        Ok(store)
    }

    /// Applies the embedded migrations that are not yet recorded, all in one immediate transaction, so
    /// that two processes connecting at once apply each migration exactly once.
    async fn migrate(&self) -> Result<()> {
        // Fast path, a plain read: an up-to-date database is not made to wait for whoever holds the write lock.
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_tasker_migrations'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        if exists > 0 {
            let rows = sqlx::query(APPLIED_MIGRATIONS_SQL)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
            if self.pending_migrations(&applied_migrations(&rows)?)?.is_empty() {
                return Ok(());
            }
        }

        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS _tasker_migrations (
                version INTEGER PRIMARY KEY NOT NULL,
                description TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at INTEGER NOT NULL
            )",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Read again under the lock: another process may have migrated since the fast path looked.
        let rows = sqlx::query(APPLIED_MIGRATIONS_SQL)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        for m in self.pending_migrations(&applied_migrations(&rows)?)? {
            // Executor::execute with plain text runs every statement of the file. (sqlx::raw_sql would too,
            // but its future is not Send for a borrowed transaction, which would make connect() unspawnable.)
            (&mut *tx)
                .execute(m.sql)
                .await
                .map_err(|e| Error::Database(format!("migration failed: {} ({}): {e}", m.version, m.description)))?;
            sqlx::query(
                "INSERT INTO _tasker_migrations (version, description, checksum, applied_at) VALUES (?, ?, ?, ?)",
            )
            .bind(m.version)
            .bind(m.description)
            .bind(m.checksum())
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            tracing::info!(
                version = m.version,
                description = m.description,
                "applied sqlite migration"
            );
        }
        tx.commit().await.map_err(db_err)
    }

    /// The embedded migrations not yet in `applied`, after checking that the recorded ones are ours, unchanged.
    fn pending_migrations(&self, applied: &[(i64, String)]) -> Result<Vec<&'static Migration>> {
        let latest = MIGRATIONS.last().map_or(0, |m| m.version);
        if let Some((v, _)) = applied.iter().find(|(v, _)| *v > latest) {
            return Err(Error::Configuration(format!(
                "sqlite database {} has schema version {v}, newer than the {latest} this build knows; upgrade tasker",
                self.location
            )));
        }
        let mut pending = Vec::new();
        for m in MIGRATIONS {
            match applied.iter().find(|(v, _)| *v == m.version) {
                Some((_, recorded)) if *recorded != m.checksum() => {
                    return Err(Error::Database(format!(
                        "migration failed: migration {} ({}) was changed after it was applied",
                        m.version, m.description
                    )));
                }
                Some(_) => {}
                None => pending.push(m),
            }
        }
        Ok(pending)
    }
}

const APPLIED_MIGRATIONS_SQL: &str = "SELECT version, checksum FROM _tasker_migrations ORDER BY version";

fn applied_migrations(rows: &[SqliteRow]) -> Result<Vec<(i64, String)>> {
    rows.iter()
        .map(|row| {
            let c = Cols::new(row, "_tasker_migrations");
            Ok((c.int("version")?, c.text("checksum")?))
        })
        .collect()
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

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Encoding and decoding, in one place.
// ---------------------------------------------------------------------------------------------------------

fn id(u: Uuid) -> String {
    u.hyphenated().to_string()
}

fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

fn opt_ms(t: Option<Timestamp>) -> Option<i64> {
    t.map(ms)
}

fn json<T: Serialize + ?Sized>(column: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("cannot encode {column} as json: {e}")))
}

fn opt_json<T: Serialize>(column: &str, v: Option<&T>) -> Result<Option<String>> {
    v.map(|v| json(column, v)).transpose()
}

/// A JSON array of id strings, for `IN (SELECT value FROM json_each(?))`: one bound parameter however many
/// ids there are.
fn id_array(ids: &[Uuid]) -> String {
    Value::Array(ids.iter().map(|u| Value::String(id(*u))).collect()).to_string()
}

fn string_array(items: &[String]) -> String {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect()).to_string()
}

/// Typed reads of one row; every failure is an internal error naming `table.column`.
struct Cols<'r> {
    row: &'r SqliteRow,
    table: &'static str,
}

impl<'r> Cols<'r> {
    fn new(row: &'r SqliteRow, table: &'static str) -> Self {
        Cols { row, table }
    }

    fn corrupt(&self, column: &str, detail: impl fmt::Display) -> Error {
        Error::Internal(format!("corrupt value in {}.{column}: {detail}", self.table))
    }

    fn get<T>(&self, column: &str) -> Result<T>
    where
        T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
    {
        self.row.try_get::<T, _>(column).map_err(|e| self.corrupt(column, e))
    }

    fn text(&self, column: &str) -> Result<String> {
        self.get(column)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        self.get(column)
    }

    fn int(&self, column: &str) -> Result<i64> {
        self.get(column)
    }

    fn uuid(&self, column: &str) -> Result<Uuid> {
        let s = self.text(column)?;
        Uuid::parse_str(&s).map_err(|e| self.corrupt(column, format!("expected a uuid, found {s:?} ({e})")))
    }

    fn ts(&self, column: &str) -> Result<Timestamp> {
        let v = self.int(column)?;
        DateTime::from_timestamp_millis(v).ok_or_else(|| self.corrupt(column, format!("timestamp {v} out of range")))
    }

    fn opt_ts(&self, column: &str) -> Result<Option<Timestamp>> {
        match self.get::<Option<i64>>(column)? {
            None => Ok(None),
            Some(v) => DateTime::from_timestamp_millis(v)
                .map(Some)
                .ok_or_else(|| self.corrupt(column, format!("timestamp {v} out of range"))),
        }
    }

    fn json<T: DeserializeOwned>(&self, column: &str) -> Result<T> {
        let s = self.text(column)?;
        serde_json::from_str(&s).map_err(|e| self.corrupt(column, e))
    }

    fn opt_json<T: DeserializeOwned>(&self, column: &str) -> Result<Option<T>> {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| self.corrupt(column, e)),
        }
    }

    fn parse<T: FromStr>(&self, column: &str) -> Result<T>
    where
        T::Err: fmt::Display,
    {
        let s = self.text(column)?;
        s.parse().map_err(|e| self.corrupt(column, e))
    }

    fn opt_parse<T: FromStr>(&self, column: &str) -> Result<Option<T>>
    where
        T::Err: fmt::Display,
    {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|e| self.corrupt(column, e)),
        }
    }
}

const TEMPLATE_COLUMNS: &str = "id, namespace, name, version, content_hash, template, created_at";

const TASK_COLUMNS: &str = "id, template_id, namespace, name, version, state, context, tags, idempotency_key, \
     initiator, source_system, reason, steps_total, steps_succeeded, steps_failed, transition_count, created_at, \
     updated_at, started_at, finished_at";

const STEP_COLUMNS: &str = "id, task_id, name, handler_key, position, state, attempts, max_attempts, retry, \
     timeout_seconds, config, unfinished_parents, next_attempt_at, lease_expires_at, worker_id, result, error, \
     transition_count, created_at, updated_at, started_at, finished_at";

const STEP_TRANSITION_COLUMNS: &str =
    "id, step_id, task_id, from_state, to_state, event, attempt, worker_id, metadata, sort_key, created_at";

const TASK_TRANSITION_COLUMNS: &str = "id, task_id, from_state, to_state, event, metadata, sort_key, created_at";

fn template_from_row(row: &SqliteRow) -> Result<TemplateRecord> {
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

fn task_from_row(row: &SqliteRow) -> Result<Task> {
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
    })
}

fn step_from_row(row: &SqliteRow) -> Result<Step> {
    let c = Cols::new(row, "steps");
    let position = c.int("position")?;
    Ok(Step {
        id: c.uuid("id")?,
        task_id: c.uuid("task_id")?,
        name: c.text("name")?,
        handler_key: c.text("handler_key")?,
        position: i32::try_from(position).map_err(|_| c.corrupt("position", format!("{position} out of range")))?,
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
    })
}

fn step_transition_from_row(row: &SqliteRow) -> Result<StepTransition> {
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

fn task_transition_from_row(row: &SqliteRow) -> Result<TaskTransition> {
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

fn step_timing_from_row(row: &SqliteRow) -> Result<StepTiming> {
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

fn task_timing_from_row(row: &SqliteRow) -> Result<TaskTiming> {
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

fn rows<T>(rows: &[SqliteRow], decode: fn(&SqliteRow) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(decode).collect()
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
                    worker_id, result, json(error), transition_count, created_at, updated_at, started_at, finished_at))
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

/// One step as `fetch_steps_of_task` packs it: the columns in order, as a JSON array.
#[derive(Deserialize)]
struct PackedStep(
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    crate::retry::RetryPolicy,
    i64,
    Value,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<crate::model::StepErrorInfo>,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

impl PackedStep {
    fn into_step(self) -> Result<Step> {
        let corrupt =
            |column: &str, detail: String| Error::Internal(format!("corrupt value in steps.{column}: {detail}"));
        let uuid = |column: &str, s: &str| Uuid::parse_str(s).map_err(|e| corrupt(column, format!("{s:?}: {e}")));
        let ts = |column: &str, v: i64| {
            DateTime::from_timestamp_millis(v).ok_or_else(|| corrupt(column, format!("timestamp {v} out of range")))
        };
        let opt_ts = |column: &str, v: Option<i64>| v.map(|v| ts(column, v)).transpose();
        Ok(Step {
            id: uuid("id", &self.0)?,
            task_id: uuid("task_id", &self.1)?,
            name: self.2,
            handler_key: self.3,
            position: i32::try_from(self.4).map_err(|_| corrupt("position", format!("{} out of range", self.4)))?,
            state: self.5.parse().map_err(|_| corrupt("state", self.5.clone()))?,
            attempts: self.6,
            max_attempts: self.7,
            retry: self.8,
            timeout_seconds: self.9,
            config: self.10,
            unfinished_parents: self.11,
            next_attempt_at: opt_ts("next_attempt_at", self.12)?,
            lease_expires_at: opt_ts("lease_expires_at", self.13)?,
            worker_id: self.14,
            result: self
                .15
                .map(|r| serde_json::from_str(&r).map_err(|e| corrupt("result", e.to_string())))
                .transpose()?,
            error: self.16,
            transition_count: self.17,
            created_at: ts("created_at", self.18)?,
            updated_at: ts("updated_at", self.19)?,
            started_at: opt_ts("started_at", self.20)?,
            finished_at: opt_ts("finished_at", self.21)?,
        })
    }
}

/// The ready steps a claim may take, oldest first; binds: handler keys as a JSON array, now, limit.
///
/// The state and unfinished_parents terms repeat steps_claim_idx's WHERE clause word for word, which is what
/// lets the planner use that partial index, and CROSS JOIN makes SQLite drive from steps: left to itself it may
/// start from tasks by state and walk every step of every runnable task. A test checks the plan.
const CLAIM_CANDIDATES_SQL: &str = "SELECT s.id AS id, s.state AS state, t.state AS task_state
     FROM steps s CROSS JOIN tasks t ON t.id = s.task_id
     WHERE s.state IN ('pending', 'waiting_for_retry') AND s.unfinished_parents = 0
       AND s.handler_key IN (SELECT value FROM json_each(?))
       AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= ?)
       AND t.state IN ('pending', 'in_progress')
     ORDER BY s.id
     LIMIT ?";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

// ---------------------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------------------

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        // Dropping a sqlx transaction queues a ROLLBACK on its connection before the connection can serve
        // anyone else, so an abandoned transaction never leaks its lock back into the pool.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        Ok(Box::new(SqliteTx { tx }))
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

    async fn template_list(&self, namespace: Option<&str>, name: Option<&str>) -> Result<Vec<TemplateRecord>> {
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE 1 = 1"));
        if let Some(ns) = namespace {
            q.push(" AND namespace = ").push_bind(ns.to_owned());
        }
        if let Some(n) = name {
            q.push(" AND name = ").push_bind(n.to_owned());
        }
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
        let limit = i64::from(filter.limit.unwrap_or(50).clamp(1, 1000));
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1"));
        if let Some(ns) = &filter.namespace {
            q.push(" AND namespace = ").push_bind(ns.clone());
        }
        if let Some(n) = &filter.name {
            q.push(" AND name = ").push_bind(n.clone());
        }
        if let Some(s) = filter.state {
            q.push(" AND state = ").push_bind(s.as_str());
        }
        if let Some(before) = filter.before {
            q.push(" AND id < ").push_bind(id(before));
        }
        q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
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

    async fn claim_inputs(&self, step_ids: &[Uuid]) -> Result<Vec<ClaimInput>> {
        if step_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = id_array(step_ids);
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
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
        found
            .iter()
            .map(|row| {
                let c = Cols::new(row, "step_transitions");
                Ok((c.text("event")?, c.int("n")?))
            })
            .collect()
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

    async fn step_timings(&self, filter: &AnalyticsFilter) -> Result<Vec<StepTiming>> {
        // The unary + keeps SQLite off the state index, which matches most rows, so that a `since` range is
        // read from the finished_at index instead; the same in task_timings.
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT s.id AS step_id, s.task_id AS task_id, t.namespace AS namespace, t.name AS task_name,
                    t.version AS version, s.name AS step_name, s.state AS state, s.attempts AS attempts,
                    s.started_at AS started_at, s.finished_at AS finished_at
             FROM steps s JOIN tasks t ON t.id = s.task_id
             WHERE +s.state IN ('complete', 'error') AND s.finished_at IS NOT NULL",
        );
        if let Some(since) = filter.since {
            q.push(" AND s.finished_at >= ").push_bind(ms(since));
        }
        push_task_filters(&mut q, "t", filter);
        q.push(" ORDER BY s.finished_at, s.id");
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, step_timing_from_row)
    }

    async fn task_timings(&self, filter: &AnalyticsFilter) -> Result<Vec<TaskTiming>> {
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
        q.push(" ORDER BY t.finished_at, t.id");
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, task_timing_from_row)
    }

    async fn next_retry_at(&self, handler_keys: &[String]) -> Result<Option<Timestamp>> {
        if handler_keys.is_empty() {
            return Ok(None);
        }
        // Written like the claim query (partial index terms, steps first) so that it reads the same small index.
        // A waiting step was claimed once, so its parents are done and unfinished_parents = 0 holds anyway.
        let row = sqlx::query(
            "SELECT MIN(s.next_attempt_at) AS next_at
             FROM steps s CROSS JOIN tasks t ON t.id = s.task_id
             WHERE s.state IN ('pending', 'waiting_for_retry') AND s.unfinished_parents = 0
               AND s.state = 'waiting_for_retry'
               AND s.handler_key IN (SELECT value FROM json_each(?))
               AND t.state IN ('pending', 'in_progress')",
        )
        .bind(string_array(handler_keys))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Cols::new(&row, "steps").opt_ts("next_at")
    }
}

/// Appends the namespace/name/version filters on the task alias `t`; values are always bound.
fn push_task_filters(q: &mut QueryBuilder<'_, Sqlite>, alias: &'static str, filter: &AnalyticsFilter) {
    if let Some(ns) = &filter.namespace {
        q.push(format_args!(" AND {alias}.namespace = ")).push_bind(ns.clone());
    }
    if let Some(n) = &filter.name {
        q.push(format_args!(" AND {alias}.name = ")).push_bind(n.clone());
    }
    if let Some(v) = &filter.version {
        q.push(format_args!(" AND {alias}.version = ")).push_bind(v.clone());
    }
}

// ---------------------------------------------------------------------------------------------------------
// StoreTx
// ---------------------------------------------------------------------------------------------------------

/// A write transaction holding the database's write lock from its first statement.
struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
}

impl SqliteTx {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
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
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                "template {}/{} version {} is already registered",
                rec.namespace, rec.name, rec.version
            ))),
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
            "INSERT INTO tasks ({TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let inserted = sqlx::query(&sql)
            .bind(id(task.id))
            .bind(id(task.template_id))
            .bind(&task.namespace)
            .bind(&task.name)
            .bind(&task.version)
            .bind(task.state.as_str())
            .bind(json("tasks.context", &task.context)?)
            .bind(json("tasks.tags", &task.tags)?)
            .bind(&task.idempotency_key)
            .bind(&task.initiator)
            .bind(&task.source_system)
            .bind(&task.reason)
            .bind(task.steps_total)
            .bind(task.steps_succeeded)
            .bind(task.steps_failed)
            .bind(task.transition_count)
            .bind(ms(task.created_at))
            .bind(ms(task.updated_at))
            .bind(opt_ms(task.started_at))
            .bind(opt_ms(task.finished_at))
            .execute(self.conn())
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) && task.idempotency_key.is_some() => {
                return Err(Error::Conflict(format!(
                    "a task {}/{} with idempotency key {:?} already exists",
                    task.namespace,
                    task.name,
                    task.idempotency_key.as_deref().unwrap_or_default()
                )))
            }
            Err(e) => return Err(db_err(e)),
        }

        let sql = format!(
            "INSERT INTO steps ({STEP_COLUMNS})
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        for s in steps {
            sqlx::query(&sql)
                .bind(id(s.id))
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
        let done = sqlx::query(
            "UPDATE tasks SET template_id = ?, namespace = ?, name = ?, version = ?, state = ?, context = ?,
                 tags = ?, idempotency_key = ?, initiator = ?, source_system = ?, reason = ?, steps_total = ?,
                 steps_succeeded = ?, steps_failed = ?, transition_count = ?, created_at = ?, updated_at = ?,
                 started_at = ?, finished_at = ?
             WHERE id = ?",
        )
        .bind(id(task.template_id))
        .bind(&task.namespace)
        .bind(&task.name)
        .bind(&task.version)
        .bind(task.state.as_str())
        .bind(json("tasks.context", &task.context)?)
        .bind(json("tasks.tags", &task.tags)?)
        .bind(&task.idempotency_key)
        .bind(&task.initiator)
        .bind(&task.source_system)
        .bind(&task.reason)
        .bind(task.steps_total)
        .bind(task.steps_succeeded)
        .bind(task.steps_failed)
        .bind(task.transition_count)
        .bind(ms(task.created_at))
        .bind(ms(task.updated_at))
        .bind(opt_ms(task.started_at))
        .bind(opt_ms(task.finished_at))
        .bind(id(task.id))
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
                    t.finished_at.map(ms)
                ])
            })
            .collect();
        let done = sqlx::query(
            "UPDATE tasks SET state = b.value ->> 1, steps_succeeded = b.value ->> 2, steps_failed = b.value ->> 3,
                 transition_count = b.value ->> 4, updated_at = b.value ->> 5, started_at = b.value ->> 6,
                 finished_at = b.value ->> 7
             FROM json_each(?) AS b WHERE tasks.id = b.value ->> 0",
        )
        .bind(Value::Array(batch).to_string())
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        if done.rows_affected() != tasks.len() as u64 {
            return Err(Error::not_found("task", "one of a batch"));
        }
        Ok(())
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
                s.finished_at.map(ms)
            ]));
        }
        // `->>` hands back the SQL value of each element: text stays text (results and errors are JSON text
        // in the batch, stored as the text they are), numbers stay integers and JSON null becomes NULL.
        let done = sqlx::query(
            "UPDATE steps SET state = b.value ->> 1, attempts = b.value ->> 2, max_attempts = b.value ->> 3,
                 next_attempt_at = b.value ->> 4, lease_expires_at = b.value ->> 5, worker_id = b.value ->> 6,
                 result = b.value ->> 7, error = b.value ->> 8, transition_count = b.value ->> 9,
                 updated_at = b.value ->> 10, started_at = b.value ->> 11, finished_at = b.value ->> 12
             FROM json_each(?) AS b WHERE steps.id = b.value ->> 0",
        )
        .bind(Value::Array(batch).to_string())
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        if done.rows_affected() != steps.len() as u64 {
            return Err(Error::not_found("step", "one of a batch"));
        }
        Ok(())
    }

    async fn step_children_release_many(&mut self, parent_ids: &[Uuid], now: Timestamp) -> Result<Vec<Uuid>> {
        if parent_ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = sqlx::query(
            "UPDATE steps SET unfinished_parents = unfinished_parents - c.n, updated_at = ?
             FROM (SELECT child_id, COUNT(*) AS n FROM step_edges
                   WHERE parent_id IN (SELECT value FROM json_each(?)) GROUP BY child_id) AS c
             WHERE steps.id = c.child_id
             RETURNING id, unfinished_parents",
        )
        .bind(ms(now))
        .bind(id_array(parent_ids))
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let mut ready = Vec::new();
        for row in &found {
            let c = Cols::new(row, "steps");
            if c.int("unfinished_parents")? == 0 {
                ready.push(c.uuid("id")?);
            }
        }
        Ok(ready)
    }

    async fn step_lock(&mut self, step_id: Uuid) -> Result<Option<Step>> {
        fetch_step(self.conn(), step_id).await
    }

    async fn step_lock_all(&mut self, task_id: Uuid) -> Result<Vec<Step>> {
        fetch_steps_of_task(self.conn(), task_id).await
    }

    async fn step_update(&mut self, s: &Step) -> Result<()> {
        let done = sqlx::query(
            "UPDATE steps SET task_id = ?, name = ?, handler_key = ?, position = ?, state = ?, attempts = ?,
                 max_attempts = ?, retry = ?, timeout_seconds = ?, config = ?, unfinished_parents = ?,
                 next_attempt_at = ?, lease_expires_at = ?, worker_id = ?, result = ?, error = ?,
                 transition_count = ?, created_at = ?, updated_at = ?, started_at = ?, finished_at = ?
             WHERE id = ?",
        )
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
        .bind(id(s.id))
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
        let candidates = sqlx::query(CLAIM_CANDIDATES_SQL)
            .bind(string_array(&params.handler_keys))
            .bind(ms(params.now))
            .bind(i64::from(params.limit))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut picked = Vec::with_capacity(candidates.len());
        for row in &candidates {
            let c = Cols::new(row, "steps");
            picked.push((
                c.uuid("id")?,
                c.parse::<StepState>("state")?,
                c.parse::<TaskState>("task_state")?,
            ));
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
        let mut by_id: std::collections::HashMap<Uuid, Step> = std::collections::HashMap::with_capacity(updated.len());
        for row in &updated {
            let step = step_from_row(row)?;
            by_id.insert(step.id, step);
        }
        // RETURNING has no defined order; answer in claim (id) order.
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
            "UPDATE steps SET unfinished_parents = unfinished_parents - 1, updated_at = ?
             WHERE id IN (SELECT child_id FROM step_edges WHERE parent_id = ?) AND unfinished_parents > 0
             RETURNING id, unfinished_parents",
        )
        .bind(ms(now))
        .bind(id(parent_id))
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let mut ready = Vec::new();
        for row in &found {
            let c = Cols::new(row, "steps");
            if c.int("unfinished_parents")? == 0 {
                ready.push(c.uuid("id")?);
            }
        }
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

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(db_err)
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await.map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;

    use super::*;

    fn file_url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}", dir.path().join("tasker.db").display())
    }

    async fn file_store(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::connect(&file_url(dir), &SqliteOptions::default())
            .await
            .expect("connect to file")
    }

    async fn memory_store() -> SqliteStore {
        SqliteStore::connect("sqlite::memory:", &SqliteOptions::default())
            .await
            .expect("connect to memory")
    }

    use crate::store::fixtures::*;

    #[tokio::test]
    async fn fresh_database_gets_exactly_the_expected_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let expected: &[(&str, &[&str])] = &[
            (
                "_tasker_migrations",
                &["version", "description", "checksum", "applied_at"],
            ),
            ("namespaces", &["name", "created_at"]),
            ("step_edges", &["task_id", "parent_id", "child_id"]),
            (
                "step_transitions",
                &[
                    "id",
                    "step_id",
                    "task_id",
                    "from_state",
                    "to_state",
                    "event",
                    "attempt",
                    "worker_id",
                    "metadata",
                    "sort_key",
                    "created_at",
                ],
            ),
            (
                "steps",
                &[
                    "id",
                    "task_id",
                    "name",
                    "handler_key",
                    "position",
                    "state",
                    "attempts",
                    "max_attempts",
                    "retry",
                    "timeout_seconds",
                    "config",
                    "unfinished_parents",
                    "next_attempt_at",
                    "lease_expires_at",
                    "worker_id",
                    "result",
                    "error",
                    "transition_count",
                    "created_at",
                    "updated_at",
                    "started_at",
                    "finished_at",
                ],
            ),
            (
                "task_transitions",
                &[
                    "id",
                    "task_id",
                    "from_state",
                    "to_state",
                    "event",
                    "metadata",
                    "sort_key",
                    "created_at",
                ],
            ),
            (
                "tasks",
                &[
                    "id",
                    "template_id",
                    "namespace",
                    "name",
                    "version",
                    "state",
                    "context",
                    "tags",
                    "idempotency_key",
                    "initiator",
                    "source_system",
                    "reason",
                    "steps_total",
                    "steps_succeeded",
                    "steps_failed",
                    "transition_count",
                    "created_at",
                    "updated_at",
                    "started_at",
                    "finished_at",
                ],
            ),
            (
                "templates",
                &[
                    "id",
                    "namespace",
                    "name",
                    "version",
                    "content_hash",
                    "template",
                    "created_at",
                ],
            ),
        ];

        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        let expected_tables: Vec<&str> = expected.iter().map(|(t, _)| *t).collect();
        assert_eq!(tables, expected_tables);
        for (table, columns) in expected {
            let found: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(*table)
                .fetch_all(&store.pool)
                .await
                .unwrap();
            assert_eq!(found, *columns, "columns of {table}");
        }

        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%' ORDER BY name",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            indexes,
            [
                "step_edges_child_idx",
                "step_edges_task_idx",
                "step_transitions_created_at_idx",
                "step_transitions_step_sort_idx",
                "step_transitions_task_idx",
                "steps_claim_idx",
                "steps_finished_at_idx",
                "steps_lease_idx",
                "steps_task_position_idx",
                "task_transitions_task_sort_idx",
                "tasks_finished_at_idx",
                "tasks_namespace_name_id_idx",
                "tasks_state_idx",
            ]
        );

        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[tokio::test]
    async fn claim_query_uses_the_partial_index() {
        let store = memory_store().await;
        // EXPLAIN QUERY PLAN rows are (id, parent, notused, detail); read the detail column.
        let plan = format!("EXPLAIN QUERY PLAN {CLAIM_CANDIDATES_SQL}");
        let rows = sqlx::query(&plan)
            .bind("[\"k.a\"]")
            .bind(0_i64)
            .bind(10_i64)
            .fetch_all(&store.pool)
            .await
            .unwrap();
        let details: Vec<String> = rows.iter().map(|r| r.get::<String, _>("detail")).collect();
        assert!(
            details.iter().any(|d| d.contains("steps_claim_idx")),
            "plan: {details:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connecting_twice_applies_migrations_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = file_store(&dir).await;
        first.close().await;
        let second = file_store(&dir).await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _tasker_migrations")
            .fetch_one(&second.pool)
            .await
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);

        // Pools racing on a fresh file behave like processes starting at once: each has its own connections.
        let dir = tempfile::tempdir().unwrap();
        let url = file_url(&dir);
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { SqliteStore::connect(&url, &SqliteOptions::default()).await })
            })
            .collect();
        let mut stores = Vec::new();
        for r in racers {
            stores.push(r.await.unwrap().expect("every racer connects"));
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _tasker_migrations")
            .fetch_one(&stores[0].pool)
            .await
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn migrate_false_leaves_the_database_empty() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions {
            migrate: false,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::connect(&file_url(&dir), &opts).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_changed_migration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        sqlx::query("UPDATE _tasker_migrations SET checksum = 'x' WHERE version = 1")
            .execute(&store.pool)
            .await
            .unwrap();
        store.close().await;
        let err = SqliteStore::connect(&file_url(&dir), &SqliteOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("changed after it was applied"), "{err}");
    }

    #[tokio::test]
    async fn urls_are_parsed_and_bad_ones_are_configuration_errors() {
        assert!(matches!(parse_url("sqlite::memory:").unwrap(), Location::Memory));
        assert!(parse_url("sqlite:///abs/path.db").unwrap() == Location::File("/abs/path.db".into()));
        assert!(parse_url("sqlite://rel/path.db").unwrap() == Location::File("rel/path.db".into()));
        for bad in [
            "postgres://x",
            "sqlite://",
            "sqlite:",
            "sqlite://x.db?mode=ro",
            "memory:",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Configuration, "{bad}");
            assert!(err.to_string().contains("invalid sqlite url"), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("missing/dir/t.db").display());
        let err = SqliteStore::connect(&url, &SqliteOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Configuration, "{err}");

        // The file is created when missing, with a relative path too.
        let store = file_store(&dir).await;
        assert!(dir.path().join("tasker.db").exists());
        let debug = format!("{store:?}");
        assert!(
            debug.contains("tasker.db") && debug.starts_with("SqliteStore"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn task_steps_and_edges_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        check_task_steps_and_edges_round_trip(&store).await;
    }

    #[tokio::test]
    async fn duplicate_template_is_a_conflict() {
        let store = memory_store().await;
        let tpl = template_record("billing", "invoice_sync", "1.0.0");
        let mut tx = store.begin().await.unwrap();
        tx.template_insert(&tpl).await.unwrap();
        tx.commit().await.unwrap();

        let again = template_record("billing", "invoice_sync", "1.0.0");
        let mut tx = store.begin().await.unwrap();
        let err = tx.template_insert(&again).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Conflict, "{err}");
        assert!(err.to_string().contains("billing/invoice_sync version 1.0.0"), "{err}");
        // Another version of the same template is fine, in the same transaction.
        tx.template_insert(&template_record("billing", "invoice_sync", "1.0.1"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            store
                .template_list(Some("billing"), Some("invoice_sync"))
                .await
                .unwrap()
                .len(),
            2
        );
        let ns: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM namespaces")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(ns, 1);
    }

    async fn dropped_tx_rolls_back(store: &SqliteStore) {
        let tpl = template_record("ns", "t", "1.0.0");
        let task = task_row(&tpl, TaskState::Pending, now());
        let step = step_row(&task, "a", "k.a", 0, 0);
        {
            let mut tx = store.begin().await.unwrap();
            tx.template_insert(&tpl).await.unwrap();
            tx.task_insert(&task, std::slice::from_ref(&step), &[]).await.unwrap();
            // Dropped here without commit.
        }
        let mut tx = tokio::time::timeout(Duration::from_secs(10), store.begin())
            .await
            .expect("begin after a dropped transaction must not hang")
            .unwrap();
        assert_eq!(tx.template_find("ns", "t", "1.0.0").await.unwrap(), None);
        tx.template_insert(&tpl).await.unwrap();
        tx.commit().await.unwrap();
        assert!(store.task_get(task.id).await.unwrap().is_none());
        assert!(store.step_get(step.id).await.unwrap().is_none());
        assert_eq!(store.template_list(None, None).await.unwrap(), vec![tpl]);
    }

    #[tokio::test]
    async fn dropping_a_tx_without_commit_leaves_nothing_written() {
        dropped_tx_rolls_back(&memory_store().await).await;
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        dropped_tx_rolls_back(&store).await;
        // Every pooled connection is usable for writes afterwards: no half-open transaction went back.
        for _ in 0..16 {
            let tx = tokio::time::timeout(Duration::from_secs(10), store.begin())
                .await
                .unwrap()
                .unwrap();
            tx.commit().await.unwrap();
        }
    }

    #[tokio::test]
    async fn immediate_transactions_serialise_writers() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir).await;
        let tx = store.begin().await.unwrap();
        // A second writer cannot even begin while the first holds the lock, with a short busy timeout.
        let impatient = SqliteStore::connect(
            &file_url(&dir),
            &SqliteOptions {
                busy_timeout: Duration::from_millis(100),
                ..SqliteOptions::default()
            },
        )
        .await
        .unwrap();
        let err = impatient
            .begin()
            .await
            .err()
            .expect("second writer must not get the lock");
        assert_eq!(err.kind(), crate::ErrorKind::Timeout, "{err}");
        // Readers are not blocked by the writer.
        store.ping().await.unwrap();
        assert!(impatient.task_list(&TaskFilter::default()).await.unwrap().is_empty());
        tx.commit().await.unwrap();
        impatient.begin().await.unwrap().commit().await.unwrap();
    }

    #[tokio::test]
    async fn claim_takes_only_ready_steps() {
        let store = memory_store().await;
        check_claim_takes_only_ready_steps(&store).await;
    }

    /// SQLite refuses a second transition row with the same sort key for a step (on PostgreSQL the unique
    /// violation would abort the transaction, which the shared test cannot survive).
    #[tokio::test]
    async fn a_second_transition_with_the_same_sort_key_is_a_conflict() {
        let store = memory_store().await;
        let tpl = template_record("ns", "dup", "1.0.0");
        let task = task_row(&tpl, TaskState::InProgress, now());
        let a = step_row(&task, "a", "k.a", 0, 0);
        seed(&store, &tpl, &task, std::slice::from_ref(&a), &[]).await;
        let row = StepTransition {
            id: Uuid::now_v7(),
            step_id: a.id,
            task_id: task.id,
            from_state: Some(StepState::Pending),
            to_state: StepState::InProgress,
            event: Some(StepEvent::Claim),
            attempt: 1,
            worker_id: Some("w".into()),
            metadata: Value::Null,
            sort_key: 2,
            created_at: now(),
        };
        let mut tx = store.begin().await.unwrap();
        tx.transitions_insert(std::slice::from_ref(&row), &[]).await.unwrap();
        let dup = StepTransition {
            id: Uuid::now_v7(),
            ..row
        };
        assert_eq!(
            tx.transitions_insert(&[dup], &[]).await.unwrap_err().kind(),
            crate::ErrorKind::Conflict
        );
    }

    #[tokio::test]
    async fn leases_children_counts_and_transitions() {
        let store = memory_store().await;
        check_leases_children_counts_and_transitions(&store).await;
    }

    #[tokio::test]
    async fn lists_timings_and_counts() {
        let store = memory_store().await;
        let t0 = now();
        let v1 = template_record("ns", "t", "1.0.0");
        let v2 = template_record("ns", "t", "2.0.0");
        let other = template_record("other", "u", "1.0.0");
        let mut tasks = Vec::new();
        for (i, tpl) in [&v1, &v1, &v2, &other].into_iter().enumerate() {
            let mut task = task_row(tpl, TaskState::Complete, t0);
            task.finished_at = Some(t0 + TimeDelta::seconds(i as i64));
            task.steps_total = 1;
            let mut s = step_row(&task, "a", "k.a", 0, 0);
            s.state = if i == 3 { StepState::Error } else { StepState::Complete };
            s.attempts = 3;
            s.started_at = Some(t0);
            s.finished_at = task.finished_at;
            seed(&store, tpl, &task, &[s], &[]).await;
            tasks.push(task);
        }
        let mut running = task_row(&v1, TaskState::InProgress, t0);
        running.steps_total = 1;
        seed(&store, &v1, &running, &[step_row(&running, "a", "k.a", 0, 0)], &[]).await;

        let all = store.task_list(&TaskFilter::default()).await.unwrap();
        assert_eq!(
            all.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![running.id, tasks[3].id, tasks[2].id, tasks[1].id, tasks[0].id]
        );
        let page = store
            .task_list(&TaskFilter {
                limit: Some(2),
                before: Some(tasks[3].id),
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![tasks[2].id, tasks[1].id]
        );
        let filtered = store
            .task_list(&TaskFilter {
                namespace: Some("ns".into()),
                name: Some("t".into()),
                state: Some(TaskState::Complete),
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(filtered.len(), 3);
        // A name that looks like SQL is just a value.
        let odd = TaskFilter {
            namespace: Some("ns' OR '1'='1".into()),
            ..TaskFilter::default()
        };
        assert!(store.task_list(&odd).await.unwrap().is_empty());

        let timings = store.task_timings(&AnalyticsFilter::default()).await.unwrap();
        assert_eq!(timings.len(), 4);
        assert_eq!(timings[0].task_id, tasks[0].id);
        assert_eq!(timings[0].finished_at, t0);
        let since = store
            .task_timings(&AnalyticsFilter {
                since: Some(t0 + TimeDelta::seconds(1)),
                ..AnalyticsFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(since.len(), 3);
        let v1_steps = store
            .step_timings(&AnalyticsFilter {
                namespace: Some("ns".into()),
                name: Some("t".into()),
                version: Some("1.0.0".into()),
                ..AnalyticsFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(v1_steps.len(), 2);
        assert_eq!(v1_steps[0].task_name, "t");
        assert_eq!(v1_steps[0].step_name, "a");
        assert_eq!(v1_steps[0].started_at, Some(t0));
        let failed = store
            .step_timings(&AnalyticsFilter {
                namespace: Some("other".into()),
                ..AnalyticsFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].state, StepState::Error);

        let counts = store.state_counts().await.unwrap();
        assert_eq!(counts.tasks.get(&TaskState::Complete), Some(&4));
        assert_eq!(counts.steps.get(&StepState::Complete), Some(&3));
        assert_eq!(counts.steps_exhausted, 1);
    }

    #[tokio::test]
    async fn corrupt_rows_are_internal_errors_naming_the_column() {
        let store = memory_store().await;
        let tpl = template_record("ns", "t", "1.0.0");
        let task = task_row(&tpl, TaskState::Pending, now());
        let step = step_row(&task, "a", "k.a", 0, 0);
        seed(&store, &tpl, &task, std::slice::from_ref(&step), &[]).await;
        sqlx::query("UPDATE steps SET state = 'bogus'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.step_get(step.id).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Internal);
        assert!(err.to_string().contains("steps.state"), "{err}");
        sqlx::query("UPDATE tasks SET context = '{not json'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.task_get(task.id).await.unwrap_err();
        assert!(err.to_string().contains("tasks.context"), "{err}");
    }

    #[tokio::test]
    async fn closed_store_reports_closed_and_pool_stats() {
        let store = memory_store().await;
        store.ping().await.unwrap();
        let stats = store.pool_stats();
        assert_eq!(stats.size, 1);
        assert!(stats.idle <= 1);
        assert_eq!(store.kind(), StoreKind::Sqlite);
        store.close().await;
        assert_eq!(store.ping().await.unwrap_err().kind(), crate::ErrorKind::Closed);
        assert_eq!(
            store.begin().await.err().map(|e| e.kind()),
            Some(crate::ErrorKind::Closed)
        );
    }
}
