//! The PostgreSQL store: the production store, one database shared by many worker processes.
//!
//! Transactions run at READ COMMITTED. Writers serialise on row locks, which the `*_lock` methods take with
//! `SELECT ... FOR UPDATE`; a claim locks the rows it takes with `FOR UPDATE SKIP LOCKED`, so concurrent
//! claimers pass each other instead of queueing, and the reaper skips a step that is being finished right now.
//! Cross-process coordination uses what PostgreSQL offers: an advisory lock for migrations and for the one
//! maintenance pass at a time, and `LISTEN/NOTIFY` on the channel `tasker_work` to wake idle workers.
//!
//! Storage conventions: every table lives in the `tasker` schema and every statement names it, so a role's
//! search_path never matters. Ids are uuid, timestamps timestamptz (the engine hands whole milliseconds,
//! which round-trip exactly), JSON is jsonb, and states and events are their stable strings under CHECKs.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{ConnectOptions, Connection, Executor, Postgres, QueryBuilder, Row, Transaction};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::state::{StepEvent, StepState, TaskEvent, TaskState};
use crate::store::{ClaimInput, ClaimParams, ClaimedRow, PoolStats, Store, StoreKind, StoreTx};
use crate::url::{redact, scrub, secrets as url_secrets};

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
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "claim order and retry indexes",
        sql: include_str!("../../migrations/postgres/0002_claim_order_and_retry_indexes.sql"),
    },
];

/// Advisory lock keys. Advisory locks are per database, so two tasker databases on one server never
/// contend; the values spell "taskermg" and "taskermn" in ASCII, to be recognisable in `pg_locks`.
const MIGRATION_LOCK_KEY: i64 = 0x7461_736b_6572_6d67;
const MAINTENANCE_LOCK_KEY: i64 = 0x7461_736b_6572_6d6e;

/// The NOTIFY channel on which commits announce that steps may have become ready.
const WORK_CHANNEL: &str = "tasker_work";

const APPLICATION_NAME: &str = "tasker";

/// The listener's first and longest wait between reconnection attempts.
const RECONNECT_MIN: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// How long `close` waits for the listener's connection to say goodbye; a dead network must not hang it.
const LISTENER_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Where the database lives; all that `Debug` and errors show of a store (never the user or password).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// `host:port`, or the socket path.
    addr: String,
    database: String,
}

impl Target {
    fn of(options: &PgConnectOptions) -> Target {
        let addr = match options.get_socket() {
            Some(dir) => format!("{}/.s.PGSQL.{}", dir.display(), options.get_port()),
            None if options.get_host().starts_with('/') => {
                format!("{}/.s.PGSQL.{}", options.get_host(), options.get_port())
            }
            None => format!("{}:{}", options.get_host(), options.get_port()),
        };
        // PostgreSQL's default database is the one named like the user.
        let database = options
            .get_database()
            .unwrap_or_else(|| options.get_username())
            .to_string();
        Target { addr, database }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

/// A wake-up listener: its task and the one-connection pool it listens on.
struct Listening {
    task: JoinHandle<()>,
    pool: PgPool,
}

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
            l.task.abort();
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
            if let Err(e) = migrate(&mut conn, &target).await {
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
        Ok(PgStore {
            pool,
            connect,
            connect_timeout: options.connect_timeout,
            target,
            closed: AtomicBool::new(false),
            listeners: Mutex::new(Vec::new()),
        })
    }
}

/// Checks the scheme and parses the URL; the error never shows a password.
fn parse_url(url: &str, secrets: &[String]) -> Result<PgConnectOptions> {
    let url = url.trim();
    let shown = scrub(&redact(url), secrets);
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::Configuration(format!(
            "invalid postgres url {shown:?}: it must start with postgres:// or postgresql://"
        )));
    }
    PgConnectOptions::from_str(url)
        .map_err(|e| Error::Configuration(scrub(&format!("invalid postgres url {shown:?}: {e}"), secrets)))
}

/// Why a connection could not be opened, naming where it went and never the password.
fn connect_err(target: &Target, e: &sqlx::Error, secrets: &[String]) -> Error {
    let why = match e {
        sqlx::Error::Io(io) => io_reason(io),
        sqlx::Error::Database(d) => {
            let msg = d.message();
            match d.code().as_deref() {
                // 28P01 invalid_password; 28000 invalid_authorization_specification (an unknown role, or no
                // pg_hba.conf line lets this user in).
                Some("28P01") | Some("28000") if msg.contains("authentication failed") => msg.to_string(),
                Some("28P01") | Some("28000") => format!("authentication failed: {msg}"),
                Some(code) => format!("{msg} (sqlstate {code})"),
                None => msg.to_string(),
            }
        }
        sqlx::Error::Tls(tls) => format!("tls handshake failed: {tls}"),
        other => other.to_string(),
    };
    Error::Database(scrub(
        &format!("cannot connect to postgres at {target}: {why}"),
        secrets,
    ))
}

fn io_reason(io: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match io.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::TimedOut => "timed out".into(),
        K::NotFound => "no such socket".into(),
        K::PermissionDenied => "permission denied".into(),
        _ => {
            let s = io.to_string();
            // "... (os error 101)" says nothing more to a reader.
            let s = match s.rfind(" (os error ") {
                Some(i) => s[..i].to_string(),
                None => s,
            };
            lowercase_first(&s)
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Migrations
// ---------------------------------------------------------------------------------------------------------

const APPLIED_MIGRATIONS_SQL: &str = "SELECT version, checksum FROM tasker._tasker_migrations ORDER BY version";

/// Applies the embedded migrations that are not yet recorded.
///
/// Two processes migrating at once serialise on a session advisory lock; whoever gets it second re-reads
/// the applied versions under the lock and finds nothing left to do. Each migration runs in its own
/// transaction together with its record, so a failed one leaves nothing behind.
async fn migrate(conn: &mut PgConnection, target: &Target) -> Result<()> {
    // Fast path, without the lock: an up-to-date database opens without waiting for anyone, and without the
    // CREATE privilege that the schema statements below need, so a least-privilege role can connect.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('tasker._tasker_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    if exists {
        let rows = sqlx::query(APPLIED_MIGRATIONS_SQL)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        if pending_migrations(&applied_migrations(&rows)?, target)?.is_empty() {
            return Ok(());
        }
    }

    // The configured statement_timeout guards the hot path; a migration on a big table, or the wait for another
    // process's migration, must not be cut off by it. The setting dies with this one-off session.
    conn.execute("SET statement_timeout = 0").await.map_err(db_err)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    let migrated = migrate_locked(conn, target).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *conn)
        .await
        .map_err(db_err);
    migrated?;
    unlocked.map(|_| ())
}

async fn migrate_locked(conn: &mut PgConnection, target: &Target) -> Result<()> {
    // Plain text runs as a simple query, which may hold several statements.
    conn.execute(
        "CREATE SCHEMA IF NOT EXISTS tasker;
         CREATE TABLE IF NOT EXISTS tasker._tasker_migrations (
             version     bigint      NOT NULL PRIMARY KEY,
             description text        NOT NULL,
             checksum    text        NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await
    .map_err(db_err)?;
    // Read again under the lock: another process may have migrated since the fast path looked.
    let rows = sqlx::query(APPLIED_MIGRATIONS_SQL)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    for m in pending_migrations(&applied_migrations(&rows)?, target)? {
        let mut tx = conn.begin().await.map_err(db_err)?;
        (&mut *tx).execute(m.sql).await.map_err(|e| {
            Error::Database(format!(
                "migration failed: {} ({}): {}",
                m.version,
                m.description,
                db_err(e)
            ))
        })?;
        sqlx::query("INSERT INTO tasker._tasker_migrations (version, description, checksum) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.description)
            .bind(m.checksum())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        tracing::info!(
            version = m.version,
            description = m.description,
            database = %target.database,
            "applied postgres migration"
        );
    }
    Ok(())
}

/// The embedded migrations not yet in `applied`, after checking that the recorded ones are ours, unchanged.
fn pending_migrations(applied: &[(i64, String)], target: &Target) -> Result<Vec<&'static Migration>> {
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some((v, _)) = applied.iter().find(|(v, _)| *v > latest) {
        return Err(Error::Configuration(format!(
            "postgres database {} at {target} has schema version {v}, newer than the {latest} this build knows; \
             upgrade tasker",
            target.database
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

fn applied_migrations(rows: &[PgRow]) -> Result<Vec<(i64, String)>> {
    rows.iter()
        .map(|row| {
            let c = Cols::new(row, "_tasker_migrations");
            Ok((c.int("version")?, c.text("checksum")?))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------

/// Maps a sqlx error: unique violations are conflicts, a statement or lock wait cut off by the server is a
/// timeout, a closed pool is `closed`, and everything else is a database error that says what happened.
fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::PoolClosed => Error::Closed,
        sqlx::Error::PoolTimedOut => Error::Timeout("waiting for a postgres connection from the pool".into()),
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = lowercase_first(d.message());
            match code.as_str() {
                // unique_violation
                "23505" => Error::Conflict(msg),
                // query_canceled: statement_timeout (or an operator's pg_cancel_backend).
                "57014" => Error::Timeout(format!("postgres cancelled the statement: {msg}")),
                // lock_not_available: lock_timeout.
                "55P03" => Error::Timeout(format!("waiting for a postgres lock: {msg}")),
                // admin_shutdown, crash_shutdown, cannot_connect_now: the server ended the session.
                "57P01" | "57P02" | "57P03" => {
                    Error::Database(format!("lost the connection to postgres: {msg} (sqlstate {code})"))
                }
                // deadlock_detected: the server rolled this transaction back to let the other one through.
                "40P01" => Error::Database(format!("{msg} (sqlstate 40P01); the transaction was rolled back")),
                _ => Error::Database(format!("{msg} (sqlstate {code})")),
            }
        }
        sqlx::Error::Io(io) => Error::Database(format!("lost the connection to postgres: {}", io_reason(io))),
        _ => Error::from(e),
    }
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

fn to_json<T: Serialize + ?Sized>(column: &str, v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(format!("cannot encode {column} as json: {e}")))
}

fn opt_to_json<T: Serialize>(column: &str, v: Option<&T>) -> Result<Option<Value>> {
    v.map(|v| to_json(column, v)).transpose()
}

/// Typed reads of one row; every failure is an internal error naming `table.column`.
struct Cols<'r> {
    row: &'r PgRow,
    table: &'static str,
}

impl<'r> Cols<'r> {
    fn new(row: &'r PgRow, table: &'static str) -> Self {
        Cols { row, table }
    }

    fn corrupt(&self, column: &str, detail: impl fmt::Display) -> Error {
        Error::Internal(format!("corrupt value in {}.{column}: {detail}", self.table))
    }

    fn get<T>(&self, column: &str) -> Result<T>
    where
        T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
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

    fn int32(&self, column: &str) -> Result<i32> {
        self.get(column)
    }

    fn uuid(&self, column: &str) -> Result<Uuid> {
        self.get(column)
    }

    fn ts(&self, column: &str) -> Result<Timestamp> {
        self.get(column)
    }

    fn opt_ts(&self, column: &str) -> Result<Option<Timestamp>> {
        self.get(column)
    }

    fn json<T: DeserializeOwned>(&self, column: &str) -> Result<T> {
        self.get::<Json<T>>(column).map(|j| j.0)
    }

    fn opt_json<T: DeserializeOwned>(&self, column: &str) -> Result<Option<T>> {
        self.get::<Option<Json<T>>>(column).map(|j| j.map(|j| j.0))
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

/// `columns` with every name prefixed by `alias.`, for statements that join.
fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn template_from_row(row: &PgRow) -> Result<TemplateRecord> {
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

fn task_from_row(row: &PgRow) -> Result<Task> {
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

fn step_from_row(row: &PgRow) -> Result<Step> {
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
    })
}

fn edge_from_row(row: &PgRow) -> Result<Edge> {
    let c = Cols::new(row, "step_edges");
    Ok(Edge {
        task_id: c.uuid("task_id")?,
        parent_id: c.uuid("parent_id")?,
        child_id: c.uuid("child_id")?,
    })
}

fn step_transition_from_row(row: &PgRow) -> Result<StepTransition> {
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

fn task_transition_from_row(row: &PgRow) -> Result<TaskTransition> {
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

fn step_timing_from_row(row: &PgRow) -> Result<StepTiming> {
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

fn task_timing_from_row(row: &PgRow) -> Result<TaskTiming> {
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

fn claim_input_from_row(row: &PgRow) -> Result<ClaimInput> {
    let c = Cols::new(row, "tasks");
    Ok(ClaimInput {
        step_id: c.uuid("step_id")?,
        namespace: c.text("namespace")?,
        task_name: c.text("task_name")?,
        context: c.json("context")?,
        dependency_results: c.json("dependency_results")?,
    })
}

fn rows<T>(rows: &[PgRow], decode: fn(&PgRow) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(decode).collect()
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
    // NOWAIT: only operator actions lock every step of a task, and they hold the task already. A claim may
    // hold one of those steps while it waits for the task (to start it); failing at once with 55P03
    // (`Timeout`) breaks that cycle on the operator's side, who can retry.
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM tasker.steps WHERE task_id = $1 ORDER BY position, id{}",
        if lock { " FOR UPDATE NOWAIT" } else { "" }
    );
    let found = sqlx::query(&sql).bind(task_id).fetch_all(ex).await.map_err(db_err)?;
    rows(&found, step_from_row)
}

/// The claim, in one statement: pick ready steps oldest first, lock them (skipping rows another claimer or
/// writer holds, instead of waiting), and move them to `in_progress`.
///
/// Binds: now, handler keys (text[]), limit, worker id, lease expiry. The state and unfinished_parents terms
/// repeat steps_claim_idx's WHERE clause word for word so that the planner can use that partial index.
/// Under READ COMMITTED a picked row that changed since the snapshot is re-checked against the WHERE
/// clause once locked, so a row that stopped being ready is dropped, never claimed.
fn claim_sql() -> String {
    format!(
        "WITH picked AS (
             SELECT s.id, s.state AS from_state, t.state AS task_state
             FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
             WHERE s.state IN ('pending', 'waiting_for_retry') AND s.unfinished_parents = 0
               AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= $1)
               AND s.handler_key = ANY($2)
               AND t.state IN ('pending', 'in_progress')
             ORDER BY s.id
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

// ---------------------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------------------

#[async_trait]
impl Store for PgStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Postgres
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        // Dropping a sqlx transaction queues a ROLLBACK that runs before its connection serves anyone else.
        let tx = self.pool.begin().await.map_err(db_err)?;
        Ok(Box::new(PgTx { tx }))
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
            l.task.abort();
        }
        for l in listening {
            let _ = l.task.await;
            if tokio::time::timeout(LISTENER_CLOSE_GRACE, l.pool.close())
                .await
                .is_err()
            {
                tracing::debug!(database = %self.target.database, "postgres listener connection did not close in time");
            }
        }
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
        // A pool of one, of its own: the listener holds its connection for good, which must not shrink the
        // work pool, and it is named apart so that operators can tell it from the rest in pg_stat_activity.
        let name = format!(
            "{}-listener",
            self.connect.get_application_name().unwrap_or(APPLICATION_NAME)
        );
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(self.connect_timeout)
            .connect_lazy_with(self.connect.clone().application_name(&name));
        let task = runtime.spawn(listen_for_work(pool.clone(), self.target.clone(), work));
        listeners.push(Listening { task, pool });
    }

    async fn template_list(&self, namespace: Option<&str>, name: Option<&str>) -> Result<Vec<TemplateRecord>> {
        let mut q =
            QueryBuilder::<Postgres>::new(format!("SELECT {TEMPLATE_COLUMNS} FROM tasker.templates WHERE true"));
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
        let limit = i64::from(filter.limit.unwrap_or(50).clamp(1, 1000));
        let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {TASK_COLUMNS} FROM tasker.tasks WHERE true"));
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
            q.push(" AND id < ").push_bind(before);
        }
        q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
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

    async fn claim_inputs(&self, step_ids: &[Uuid]) -> Result<Vec<ClaimInput>> {
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
        .fetch_all(&self.pool)
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
        found
            .iter()
            .map(|row| {
                let c = Cols::new(row, "step_transitions");
                Ok((c.text("event")?, c.int("n")?))
            })
            .collect()
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

    async fn step_timings(&self, filter: &AnalyticsFilter) -> Result<Vec<StepTiming>> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT s.id AS step_id, s.task_id AS task_id, t.namespace AS namespace, t.name AS task_name,
                    t.version AS version, s.name AS step_name, s.state AS state, s.attempts AS attempts,
                    s.started_at AS started_at, s.finished_at AS finished_at
             FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
             WHERE s.state IN ('complete', 'error') AND s.finished_at IS NOT NULL",
        );
        if let Some(since) = filter.since {
            q.push(" AND s.finished_at >= ").push_bind(since);
        }
        push_task_filters(&mut q, "t", filter);
        q.push(" ORDER BY s.finished_at, s.id");
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, step_timing_from_row)
    }

    async fn task_timings(&self, filter: &AnalyticsFilter) -> Result<Vec<TaskTiming>> {
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
        q.push(" ORDER BY t.finished_at, t.id");
        let found = q.build().fetch_all(&self.pool).await.map_err(db_err)?;
        rows(&found, task_timing_from_row)
    }

    async fn next_retry_at(&self, handler_keys: &[String]) -> Result<Option<Timestamp>> {
        if handler_keys.is_empty() {
            return Ok(None);
        }
        // The state term matches steps_retry_due_idx, so MIN reads that index in order and stops early.
        let row = sqlx::query(
            "SELECT MIN(s.next_attempt_at) AS next_at
             FROM tasker.steps s JOIN tasker.tasks t ON t.id = s.task_id
             WHERE s.state = 'waiting_for_retry'
               AND s.handler_key = ANY($1)
               AND t.state IN ('pending', 'in_progress')",
        )
        .bind(handler_keys)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Cols::new(&row, "steps").opt_ts("next_at")
    }
}

/// Appends the namespace/name/version filters on the task alias `t`; values are always bound.
fn push_task_filters(q: &mut QueryBuilder<'_, Postgres>, alias: &'static str, filter: &AnalyticsFilter) {
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
// Wake-ups
// ---------------------------------------------------------------------------------------------------------

/// Listens on `tasker_work` until aborted or until its pool closes, waking every idle worker of this
/// process on each notification.
///
/// `PgListener::try_recv` reconnects by itself when the connection drops (it answers `None` once it has
/// listened again) but gives up with an error when the server cannot be reached; then the listener is
/// rebuilt here, with backoff, for as long as it takes. After any reconnection the workers are woken once,
/// because work announced while nobody listened was never delivered.
async fn listen_for_work(pool: PgPool, target: Target, work: Arc<Notify>) {
    let mut delay = RECONNECT_MIN;
    let mut first = true;
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(WORK_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match listening {
            Ok(mut listener) => {
                if !first {
                    tracing::info!(database = %target.database, "postgres wake-up listener reconnected");
                    work.notify_waiters();
                }
                delay = RECONNECT_MIN;
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => {
                            // One wake-up covers every notification already queued behind this one.
                            while listener.next_buffered().is_some() {}
                            work.notify_waiters();
                        }
                        Ok(None) => {
                            tracing::info!(database = %target.database, "postgres wake-up listener reconnected");
                            work.notify_waiters();
                        }
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(e) => {
                            tracing::warn!(
                                database = %target.database,
                                addr = %target,
                                error = %e,
                                "postgres wake-up listener lost its connection; reconnecting"
                            );
                            break;
                        }
                    }
                }
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(
                    database = %target.database,
                    addr = %target,
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "postgres wake-up listener cannot listen; idle workers poll until it can"
                );
            }
        }
        first = false;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}

// ---------------------------------------------------------------------------------------------------------
// StoreTx
// ---------------------------------------------------------------------------------------------------------

/// A READ COMMITTED transaction; rows are locked by the statements that need them.
struct PgTx {
    tx: Transaction<'static, Postgres>,
}

impl PgTx {
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
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
            return Err(Error::Conflict(format!(
                "template {}/{} version {} is already registered",
                rec.namespace, rec.name, rec.version
            )));
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
             ON CONFLICT ON CONSTRAINT tasks_idempotency_key_key DO NOTHING"
        );
        let done = sqlx::query(&sql)
            .bind(task.id)
            .bind(task.template_id)
            .bind(&task.namespace)
            .bind(&task.name)
            .bind(&task.version)
            .bind(task.state.as_str())
            .bind(&task.context)
            .bind(&task.tags)
            .bind(&task.idempotency_key)
            .bind(&task.initiator)
            .bind(&task.source_system)
            .bind(&task.reason)
            .bind(task.steps_total)
            .bind(task.steps_succeeded)
            .bind(task.steps_failed)
            .bind(task.transition_count)
            .bind(task.created_at)
            .bind(task.updated_at)
            .bind(task.started_at)
            .bind(task.finished_at)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict(format!(
                "a task {}/{} with idempotency key {:?} already exists",
                task.namespace,
                task.name,
                task.idempotency_key.as_deref().unwrap_or_default()
            )));
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
            }
            let sql = format!(
                "INSERT INTO tasker.steps ({STEP_COLUMNS})
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::integer[], $6::text[],
                     $7::bigint[], $8::bigint[], $9::jsonb[], $10::bigint[], $11::jsonb[], $12::bigint[],
                     $13::timestamptz[], $14::timestamptz[], $15::text[], $16::jsonb[], $17::jsonb[], $18::bigint[],
                     $19::timestamptz[], $20::timestamptz[], $21::timestamptz[], $22::timestamptz[])"
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
        let done = sqlx::query(
            "UPDATE tasker.tasks SET template_id = $1, namespace = $2, name = $3, version = $4, state = $5,
                 context = $6, tags = $7, idempotency_key = $8, initiator = $9, source_system = $10, reason = $11,
                 steps_total = $12, steps_succeeded = $13, steps_failed = $14, transition_count = $15,
                 created_at = $16, updated_at = $17, started_at = $18, finished_at = $19
             WHERE id = $20",
        )
        .bind(task.template_id)
        .bind(&task.namespace)
        .bind(&task.name)
        .bind(&task.version)
        .bind(task.state.as_str())
        .bind(&task.context)
        .bind(&task.tags)
        .bind(&task.idempotency_key)
        .bind(&task.initiator)
        .bind(&task.source_system)
        .bind(&task.reason)
        .bind(task.steps_total)
        .bind(task.steps_succeeded)
        .bind(task.steps_failed)
        .bind(task.transition_count)
        .bind(task.created_at)
        .bind(task.updated_at)
        .bind(task.started_at)
        .bind(task.finished_at)
        .bind(task.id)
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

    async fn step_lock_all(&mut self, task_id: Uuid) -> Result<Vec<Step>> {
        fetch_steps_of_task(self.conn(), task_id, true).await
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
        let done = sqlx::query(
            "UPDATE tasker.tasks t SET state = b.state, steps_succeeded = b.succeeded, steps_failed = b.failed,
                 transition_count = b.transition_count, updated_at = b.updated_at, started_at = b.started_at,
                 finished_at = b.finished_at
             FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::timestamptz[],
                         $7::timestamptz[], $8::timestamptz[])
                  AS b(id, state, succeeded, failed, transition_count, updated_at, started_at, finished_at)
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
        let done = sqlx::query(
            "UPDATE tasker.steps s SET state = b.state, attempts = b.attempts, max_attempts = b.max_attempts,
                 next_attempt_at = b.next_attempt_at, lease_expires_at = b.lease_expires_at, worker_id = b.worker_id,
                 result = b.result, error = b.error, transition_count = b.transition_count,
                 updated_at = b.updated_at, started_at = b.started_at, finished_at = b.finished_at
             FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::timestamptz[],
                         $7::text[], $8::jsonb[], $9::jsonb[], $10::bigint[], $11::timestamptz[], $12::timestamptz[],
                         $13::timestamptz[])
                  AS b(id, state, attempts, max_attempts, next_attempt_at, lease_expires_at, worker_id, result, error,
                       transition_count, updated_at, started_at, finished_at)
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
            "UPDATE tasker.steps s SET unfinished_parents = s.unfinished_parents - c.n, updated_at = $1
             FROM (SELECT child_id, count(*) AS n FROM tasker.step_edges WHERE parent_id = ANY($2) GROUP BY child_id) c
             WHERE s.id = c.child_id
             RETURNING s.id, s.unfinished_parents",
        )
        .bind(now)
        .bind(parent_ids)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        Ok(found
            .iter()
            .filter(|r| r.get::<i64, _>(1) == 0)
            .map(|r| r.get::<Uuid, _>(0))
            .collect())
    }

    async fn step_update(&mut self, s: &Step) -> Result<()> {
        let done = sqlx::query(
            "UPDATE tasker.steps SET task_id = $1, name = $2, handler_key = $3, position = $4, state = $5,
                 attempts = $6, max_attempts = $7, retry = $8, timeout_seconds = $9, config = $10,
                 unfinished_parents = $11, next_attempt_at = $12, lease_expires_at = $13, worker_id = $14,
                 result = $15, error = $16, transition_count = $17, created_at = $18, updated_at = $19,
                 started_at = $20, finished_at = $21
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
        let found = sqlx::query(&claim_sql())
            .bind(params.now)
            .bind(&params.handler_keys)
            .bind(i64::from(params.limit))
            .bind(&params.worker_id)
            .bind(params.lease_expires_at)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        let mut claimed = Vec::with_capacity(found.len());
        for row in &found {
            let c = Cols::new(row, "steps");
            claimed.push(ClaimedRow {
                step: step_from_row(row)?,
                from_state: c.parse::<StepState>("from_state")?,
                task_state: c.parse::<TaskState>("task_state")?,
            });
        }
        // RETURNING has no defined order; answer in claim (id) order.
        claimed.sort_by_key(|r| r.step.id);
        Ok(claimed)
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
        let step_ids: Vec<Uuid> = tokens.iter().map(|t| t.step_id).collect();
        let attempts: Vec<i64> = tokens.iter().map(|t| t.attempt).collect();
        let found = sqlx::query(
            "UPDATE tasker.steps s SET lease_expires_at = $1, updated_at = $2
             FROM UNNEST($3::uuid[], $4::bigint[]) AS k(id, attempt)
             WHERE s.id = k.id AND s.state = 'in_progress' AND s.attempts = k.attempt
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
            "UPDATE tasker.steps SET unfinished_parents = unfinished_parents - 1, updated_at = $1
             WHERE id IN (SELECT child_id FROM tasker.step_edges WHERE parent_id = $2) AND unfinished_parents > 0
             RETURNING id, unfinished_parents",
        )
        .bind(now)
        .bind(parent_id)
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
    use serde_json::json;

    use super::*;
    use crate::ErrorKind;

    /// A fresh database on the server `TASKER_TEST_PG_URL` names, so that tests run in parallel without
    /// seeing each other; `finish` drops it (best effort: a failed test leaves it for the throwaway cluster).
    struct TestDb {
        base: String,
        name: String,
        url: String,
    }

    impl TestDb {
        async fn create() -> TestDb {
            let base = std::env::var("TASKER_TEST_PG_URL").expect(
                "TASKER_TEST_PG_URL must name a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/postgres",
            );
            let name = format!("tasker_t_{}", Uuid::now_v7().simple());
            let mut admin = PgConnection::connect(&base).await.expect("connect to the test server");
            // The name is generated here, never user input; identifiers cannot be bound as parameters.
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create database");
            let _ = admin.close().await;
            let url = with_database(&base, &name);
            TestDb { base, name, url }
        }

        async fn store(&self) -> PgStore {
            PgStore::connect(&self.url, &PgOptions::default())
                .await
                .expect("connect to the test database")
        }

        /// A connection to the server's base database, outside every store.
        async fn admin(&self) -> PgConnection {
            PgConnection::connect(&self.base)
                .await
                .expect("connect to the test server")
        }

        async fn finish(self) {
            if let Ok(mut admin) = PgConnection::connect(&self.base).await {
                let _ = admin
                    .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                    .await;
                let _ = admin.close().await;
            }
        }
    }

    fn with_database(base: &str, name: &str) -> String {
        let (head, tail) = match base.split_once('?') {
            Some((h, t)) => (h, format!("?{t}")),
            None => (base, String::new()),
        };
        let root = match head.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('/') {
                Some((authority, _)) => format!("{scheme}://{authority}"),
                None => head.to_string(),
            },
            None => head.to_string(),
        };
        format!("{root}/{name}{tail}")
    }

    async fn begin_pg(store: &PgStore) -> PgTx {
        PgTx {
            tx: store.pool.begin().await.expect("begin"),
        }
    }

    use crate::store::fixtures::*;

    /// A task `in_progress` with `n` ready root steps on handler `k.a`, committed.
    async fn seed_ready(store: &PgStore, n: usize) -> (Task, Vec<Step>) {
        // A template of its own, so that a test may seed more than once.
        let tpl = template_record("ns", &format!("t{}", Uuid::now_v7().simple()), "1.0.0");
        let task = task_row(&tpl, TaskState::InProgress, now());
        let steps: Vec<Step> = (0..n)
            .map(|i| step_row(&task, &format!("s{i}"), "k.a", i as i32, 0))
            .collect();
        seed(store, &tpl, &task, &steps, &[]).await;
        (task, steps)
    }

    fn claim_params(worker: &str, limit: u32, at: Timestamp) -> ClaimParams {
        ClaimParams {
            worker_id: worker.into(),
            handler_keys: vec!["k.a".into()],
            limit,
            now: at,
            lease_expires_at: at + TimeDelta::seconds(30),
        }
    }

    // -----------------------------------------------------------------------------------------------------
    // Without a server
    // -----------------------------------------------------------------------------------------------------

    #[test]
    fn qualified_handles_the_line_breaks_of_the_column_lists() {
        assert_eq!(qualified("id, task_id,\n name", "s"), "s.id, s.task_id, s.name");
    }

    #[tokio::test]
    async fn bad_urls_are_configuration_errors_without_the_password() {
        for bad in [
            "mysql://u:hunter2@h/db",
            "sqlite://x.db",
            "postgres://u:hunter2@h:notaport/db",
            "memory:",
        ] {
            let err = PgStore::connect(bad, &PgOptions::default()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{bad}: {err}");
            assert!(err.to_string().contains("invalid postgres url"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let zero = PgOptions {
            max_connections: 0,
            ..PgOptions::default()
        };
        let err = PgStore::connect("postgres://u@127.0.0.1:1/db", &zero)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    }

    #[tokio::test]
    async fn unreachable_server_is_a_database_error_naming_host_and_port_but_not_the_password() {
        // A port that was free a moment ago: nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://tasker:s3cr3t-Pa55@127.0.0.1:{port}/tasker?password=s3cr3t-Pa55");
        let err = PgStore::connect(&url, &PgOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "cannot connect to postgres at 127.0.0.1:{port}: connection refused"
            )),
            "{msg}"
        );
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    // -----------------------------------------------------------------------------------------------------
    // Schema and migrations
    // -----------------------------------------------------------------------------------------------------

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn fresh_migration_yields_exactly_the_expected_schema() {
        let db = TestDb::create().await;
        let store = db.store().await;
        const U: &str = "uuid";
        const T: &str = "text";
        const TS: &str = "timestamp with time zone";
        const J: &str = "jsonb";
        const B: &str = "bigint";
        const I: &str = "integer";
        let expected: &[(&str, &[(&str, &str)])] = &[
            (
                "_tasker_migrations",
                &[("version", B), ("description", T), ("checksum", T), ("applied_at", TS)],
            ),
            ("namespaces", &[("name", T), ("created_at", TS)]),
            (
                "step_edges",
                &[("task_id", U), ("parent_id", U), ("child_id", U), ("position", I)],
            ),
            (
                "step_transitions",
                &[
                    ("id", U),
                    ("step_id", U),
                    ("task_id", U),
                    ("from_state", T),
                    ("to_state", T),
                    ("event", T),
                    ("attempt", B),
                    ("worker_id", T),
                    ("metadata", J),
                    ("sort_key", B),
                    ("created_at", TS),
                ],
            ),
            (
                "steps",
                &[
                    ("id", U),
                    ("task_id", U),
                    ("name", T),
                    ("handler_key", T),
                    ("position", I),
                    ("state", T),
                    ("attempts", B),
                    ("max_attempts", B),
                    ("retry", J),
                    ("timeout_seconds", B),
                    ("config", J),
                    ("unfinished_parents", B),
                    ("next_attempt_at", TS),
                    ("lease_expires_at", TS),
                    ("worker_id", T),
                    ("result", J),
                    ("error", J),
                    ("transition_count", B),
                    ("created_at", TS),
                    ("updated_at", TS),
                    ("started_at", TS),
                    ("finished_at", TS),
                ],
            ),
            (
                "task_transitions",
                &[
                    ("id", U),
                    ("task_id", U),
                    ("from_state", T),
                    ("to_state", T),
                    ("event", T),
                    ("metadata", J),
                    ("sort_key", B),
                    ("created_at", TS),
                ],
            ),
            (
                "tasks",
                &[
                    ("id", U),
                    ("template_id", U),
                    ("namespace", T),
                    ("name", T),
                    ("version", T),
                    ("state", T),
                    ("context", J),
                    ("tags", J),
                    ("idempotency_key", T),
                    ("initiator", T),
                    ("source_system", T),
                    ("reason", T),
                    ("steps_total", B),
                    ("steps_succeeded", B),
                    ("steps_failed", B),
                    ("transition_count", B),
                    ("created_at", TS),
                    ("updated_at", TS),
                    ("started_at", TS),
                    ("finished_at", TS),
                ],
            ),
            (
                "templates",
                &[
                    ("id", U),
                    ("namespace", T),
                    ("name", T),
                    ("version", T),
                    ("content_hash", T),
                    ("template", J),
                    ("created_at", TS),
                ],
            ),
        ];
        let found = sqlx::query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS data_type
             FROM information_schema.columns WHERE table_schema = 'tasker'
             ORDER BY table_name COLLATE \"C\", ordinal_position",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        let found: Vec<(String, String, String)> = found
            .iter()
            .map(|r| (r.get("table_name"), r.get("column_name"), r.get("data_type")))
            .collect();
        let want: Vec<(String, String, String)> = expected
            .iter()
            .flat_map(|(t, cols)| {
                cols.iter()
                    .map(|(c, ty)| (t.to_string(), c.to_string(), ty.to_string()))
            })
            .collect();
        assert_eq!(found, want);

        let mut indexes: Vec<String> =
            sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = 'tasker'")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        indexes.sort();
        assert_eq!(
            indexes,
            [
                "_tasker_migrations_pkey",
                "namespaces_pkey",
                "step_edges_child_idx",
                "step_edges_pkey",
                "step_edges_task_position_idx",
                "step_transitions_created_at_idx",
                "step_transitions_pkey",
                "step_transitions_task_step_sort_idx",
                "steps_claim_idx",
                "steps_claimable_id_idx",
                "steps_finished_at_idx",
                "steps_in_progress_idx",
                "steps_pkey",
                "steps_retry_due_idx",
                "steps_task_id_name_key",
                "task_transitions_pkey",
                "task_transitions_task_sort_idx",
                "tasks_finished_at_idx",
                "tasks_idempotency_key_key",
                "tasks_namespace_name_id_idx",
                "tasks_pkey",
                "tasks_state_id_idx",
                "templates_namespace_name_version_key",
                "templates_pkey",
            ]
        );

        // Storage parameters: HOT room and eager autovacuum on the updated tables, insert-driven vacuum on the
        // append-only ones.
        let options = |table: &'static str| {
            let pool = store.pool.clone();
            async move {
                let o: Option<Vec<String>> = sqlx::query_scalar(
                    "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'tasker' AND c.relname = $1",
                )
                .bind(table)
                .fetch_one(&pool)
                .await
                .unwrap();
                o.unwrap_or_default()
            }
        };
        assert!(options("steps").await.contains(&"fillfactor=70".to_string()));
        assert!(options("tasks").await.contains(&"fillfactor=80".to_string()));
        for t in ["steps", "tasks"] {
            assert!(
                options(t)
                    .await
                    .contains(&"autovacuum_vacuum_scale_factor=0.02".to_string()),
                "{t}"
            );
        }
        for t in ["step_transitions", "task_transitions"] {
            assert!(
                options(t)
                    .await
                    .contains(&"autovacuum_vacuum_insert_scale_factor=0.02".to_string()),
                "{t}"
            );
        }
        // No foreign key points from the transition tables anywhere.
        let fks: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
             JOIN pg_namespace n ON n.oid = r.relnamespace
             WHERE n.nspname = 'tasker' AND c.contype = 'f' AND r.relname IN ('step_transitions', 'task_transitions')",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(fks, 0);

        // A state outside the CHECK is refused by the database itself.
        let (task, steps) = seed_ready(&store, 1).await;
        let err = sqlx::query("UPDATE tasker.steps SET state = 'bogus' WHERE id = $1")
            .bind(steps[0].id)
            .execute(&store.pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("steps_state_check"), "{err}");
        assert!(store.task_get(task.id).await.unwrap().is_some());
        store.close().await;
        db.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn concurrent_connects_apply_migrations_exactly_once() {
        let db = TestDb::create().await;
        // Pools racing on a fresh database behave like processes starting at once.
        let racers: Vec<_> = (0..6)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move { PgStore::connect(&url, &PgOptions::default()).await })
            })
            .collect();
        let mut stores = Vec::new();
        for r in racers {
            stores.push(r.await.unwrap().expect("every racer connects"));
        }
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT version, checksum FROM tasker._tasker_migrations ORDER BY version")
                .fetch_all(&stores[0].pool)
                .await
                .unwrap();
        let want: Vec<(i64, String)> = MIGRATIONS.iter().map(|m| (m.version, m.checksum())).collect();
        assert_eq!(rows, want);
        for s in &stores {
            s.ping().await.unwrap();
            s.close().await;
        }

        // Connecting again takes the fast path and changes nothing.
        let again = db.store().await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasker._tasker_migrations")
            .fetch_one(&again.pool)
            .await
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);

        // A changed migration is refused, and so is a schema newer than this build.
        sqlx::query("UPDATE tasker._tasker_migrations SET checksum = 'x' WHERE version = 1")
            .execute(&again.pool)
            .await
            .unwrap();
        let err = PgStore::connect(&db.url, &PgOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database, "{err}");
        assert!(err.to_string().contains("changed after it was applied"), "{err}");
        sqlx::query("UPDATE tasker._tasker_migrations SET checksum = $1 WHERE version = 1")
            .bind(MIGRATIONS[0].checksum())
            .execute(&again.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO tasker._tasker_migrations (version, description, checksum) VALUES (999, 'x', 'y')")
            .execute(&again.pool)
            .await
            .unwrap();
        let err = PgStore::connect(&db.url, &PgOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        assert!(err.to_string().contains("newer than"), "{err}");
        // Without migrate, nothing is checked.
        let unchecked = PgStore::connect(
            &db.url,
            &PgOptions {
                migrate: false,
                ..PgOptions::default()
            },
        )
        .await
        .unwrap();
        unchecked.close().await;
        again.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn migrate_false_leaves_the_database_empty() {
        let db = TestDb::create().await;
        let opts = PgOptions {
            migrate: false,
            ..PgOptions::default()
        };
        let store = PgStore::connect(&db.url, &opts).await.unwrap();
        let schema: Option<String> = sqlx::query_scalar("SELECT to_regnamespace('tasker')::text")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(schema, None);
        store.close().await;
        db.finish().await;
    }

    // -----------------------------------------------------------------------------------------------------
    // Rows
    // -----------------------------------------------------------------------------------------------------

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn task_steps_and_edges_round_trip() {
        let db = TestDb::create().await;
        let store = db.store().await;
        check_task_steps_and_edges_round_trip(&store).await;
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn duplicate_template_is_a_conflict() {
        let db = TestDb::create().await;
        let store = db.store().await;
        let tpl = template_record("billing", "invoice_sync", "1.0.0");
        let mut tx = store.begin().await.unwrap();
        tx.template_insert(&tpl).await.unwrap();
        tx.commit().await.unwrap();

        let again = template_record("billing", "invoice_sync", "1.0.0");
        let mut tx = store.begin().await.unwrap();
        let err = tx.template_insert(&again).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert!(err.to_string().contains("billing/invoice_sync version 1.0.0"), "{err}");
        // The transaction is still usable: another version of the same template goes in.
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
        let ns: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasker.namespaces")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(ns, 1);

        // A unique violation that reaches the database as an error (two transitions with one sort key) is a
        // conflict too.
        let (task, steps) = seed_ready(&store, 1).await;
        let st = StepTransition {
            id: Uuid::now_v7(),
            step_id: steps[0].id,
            task_id: task.id,
            from_state: None,
            to_state: StepState::Pending,
            event: None,
            attempt: 0,
            worker_id: None,
            metadata: json!({}),
            sort_key: 1,
            created_at: now(),
        };
        let mut tx = store.begin().await.unwrap();
        tx.transitions_insert(std::slice::from_ref(&st), &[]).await.unwrap();
        let dup = StepTransition {
            id: Uuid::now_v7(),
            ..st.clone()
        };
        let err = tx.transitions_insert(&[dup], &[]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn dropping_a_tx_without_commit_leaves_nothing_written() {
        let db = TestDb::create().await;
        let store = PgStore::connect(
            &db.url,
            &PgOptions {
                max_connections: 2,
                ..PgOptions::default()
            },
        )
        .await
        .unwrap();
        let tpl = template_record("ns", "t", "1.0.0");
        let task = task_row(&tpl, TaskState::Pending, now());
        let step = step_row(&task, "a", "k.a", 0, 0);
        {
            let mut tx = store.begin().await.unwrap();
            tx.template_insert(&tpl).await.unwrap();
            tx.task_insert(&task, std::slice::from_ref(&step), &[]).await.unwrap();
            tx.notify_work().await.unwrap();
            // Dropped here without commit.
        }
        let mut tx = tokio::time::timeout(Duration::from_secs(10), store.begin())
            .await
            .expect("begin after a dropped transaction must not hang")
            .unwrap();
        assert_eq!(tx.template_find("ns", "t", "1.0.0").await.unwrap(), None);
        // Nothing is locked either: the same rows can be written at once.
        tx.template_insert(&tpl).await.unwrap();
        tx.commit().await.unwrap();
        assert!(store.task_get(task.id).await.unwrap().is_none());
        assert!(store.step_get(step.id).await.unwrap().is_none());
        assert_eq!(store.template_list(None, None).await.unwrap(), vec![tpl]);
        // Every pooled connection is usable afterwards: no half-open transaction went back to the pool.
        for _ in 0..8 {
            let tx = tokio::time::timeout(Duration::from_secs(10), store.begin())
                .await
                .unwrap()
                .unwrap();
            tx.commit().await.unwrap();
        }
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn corrupt_rows_are_internal_errors_naming_the_column() {
        let db = TestDb::create().await;
        let store = db.store().await;
        let (task, steps) = seed_ready(&store, 1).await;
        sqlx::query("UPDATE tasker.steps SET retry = '\"not a policy\"'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.step_get(steps[0].id).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.to_string().contains("steps.retry"), "{err}");
        sqlx::query("UPDATE tasker.templates SET template = '{}'")
            .execute(&store.pool)
            .await
            .unwrap();
        let err = store.template_by_id(task.template_id).await.unwrap_err();
        assert!(err.to_string().contains("templates.template"), "{err}");
        store.close().await;
        db.finish().await;
    }

    // -----------------------------------------------------------------------------------------------------
    // Claims, leases, children, transitions
    // -----------------------------------------------------------------------------------------------------

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn claim_takes_only_ready_steps() {
        let db = TestDb::create().await;
        let store = db.store().await;
        check_claim_takes_only_ready_steps(&store).await;
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn claim_uses_the_partial_index() {
        let db = TestDb::create().await;
        let store = db.store().await;
        seed_ready(&store, 3).await;
        let mut tx = begin_pg(&store).await;
        // The table is tiny, so a sequential scan would win on cost; the question is only whether the planner
        // can prove the partial index's predicate from the claim's WHERE clause.
        tx.conn().execute("SET LOCAL enable_seqscan = off").await.unwrap();
        let at = now();
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", claim_sql()))
            .bind(at)
            .bind(vec!["k.a".to_string()])
            .bind(10_i64)
            .bind("w")
            .bind(at)
            .fetch_all(tx.conn())
            .await
            .unwrap();
        assert!(
            plan.iter()
                .any(|l| l.contains("steps_claim_idx") || l.contains("steps_claimable_id_idx")),
            "{}",
            plan.join("\n")
        );
        store.close().await;
        db.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn concurrent_claimers_never_get_the_same_step() {
        let db = TestDb::create().await;
        let store = Arc::new(db.store().await);
        let (_, steps) = seed_ready(&store, 5).await;
        let at = now();

        // Two open transactions: the second skips the rows the first holds instead of waiting for it.
        let mut first = store.begin().await.unwrap();
        let a = first.step_claim(&claim_params("w1", 2, at)).await.unwrap();
        let mut second = store.begin().await.unwrap();
        let b = tokio::time::timeout(Duration::from_secs(10), second.step_claim(&claim_params("w2", 10, at)))
            .await
            .expect("a claimer must not wait for another claimer's rows")
            .unwrap();
        assert_eq!(
            a.iter().map(|r| r.step.id).collect::<Vec<_>>(),
            vec![steps[0].id, steps[1].id]
        );
        assert_eq!(
            b.iter().map(|r| r.step.id).collect::<Vec<_>>(),
            vec![steps[2].id, steps[3].id, steps[4].id]
        );
        // An operator action that holds the task and needs its steps fails at once while a claim holds one.
        let mut operator = store.begin().await.unwrap();
        operator.task_lock(a[0].step.task_id).await.unwrap();
        let err = tokio::time::timeout(Duration::from_secs(10), operator.step_lock_all(a[0].step.task_id))
            .await
            .expect("an operator action must not wait for a claim")
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Timeout, "{err}");
        operator.rollback().await.unwrap();
        second.commit().await.unwrap();
        first.commit().await.unwrap();

        // Many claimers at once over many rows: every row is handed out exactly once.
        let (_, many) = seed_ready(&store, 120).await;
        let mut joins = Vec::new();
        for w in 0..6 {
            let store = store.clone();
            joins.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let mut tx = store.begin().await.unwrap();
                    let rows = tx.step_claim(&claim_params(&format!("w{w}"), 7, now())).await.unwrap();
                    tx.commit().await.unwrap();
                    if rows.is_empty() {
                        return got;
                    }
                    got.extend(rows.into_iter().map(|r| r.step.id));
                }
            }));
        }
        let mut all = Vec::new();
        for j in joins {
            all.extend(j.await.unwrap());
        }
        let unique: HashSet<Uuid> = all.iter().copied().collect();
        assert_eq!(all.len(), many.len());
        assert_eq!(unique, many.iter().map(|s| s.id).collect::<HashSet<_>>());
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn heartbeats_are_hot_updates_and_claims_are_not() {
        let db = TestDb::create().await;
        let store = db.store().await;
        let (_, steps) = seed_ready(&store, 2).await;
        let at = now();

        let mut tx = begin_pg(&store).await;
        let claimed = tx.step_claim(&claim_params("w", 1, at)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let counts = "SELECT pg_stat_get_xact_tuples_updated('tasker.steps'::regclass),
                             pg_stat_get_xact_tuples_hot_updated('tasker.steps'::regclass)";
        let (updated, hot): (i64, i64) = sqlx::query_as(counts).fetch_one(tx.conn()).await.unwrap();
        // The claim changes state, a column of the partial indexes' predicates.
        assert_eq!((updated, hot), (1, 0));
        Box::new(tx).commit().await.unwrap();

        let mut tx = begin_pg(&store).await;
        let token = ClaimToken {
            step_id: steps[0].id,
            attempt: 1,
        };
        let extended = tx
            .step_lease_extend(&[token], at + TimeDelta::seconds(60), at)
            .await
            .unwrap();
        assert_eq!(extended, vec![token]);
        let (updated, hot): (i64, i64) = sqlx::query_as(counts).fetch_one(tx.conn()).await.unwrap();
        assert_eq!((updated, hot), (1, 1), "a heartbeat touches no indexed column");
        Box::new(tx).commit().await.unwrap();
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn leases_children_counts_and_transitions() {
        let db = TestDb::create().await;
        let store = db.store().await;
        check_leases_children_counts_and_transitions(&store).await;
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn maintenance_lock_is_exclusive_across_transactions() {
        let db = TestDb::create().await;
        let store = db.store().await;
        let mut holder = store.begin().await.unwrap();
        assert!(holder.maintenance_lock().await.unwrap());
        // Taking it again in the same transaction is fine (advisory locks nest).
        assert!(holder.maintenance_lock().await.unwrap());
        let mut other = store.begin().await.unwrap();
        assert!(!other.maintenance_lock().await.unwrap(), "held by another transaction");
        drop(other);
        holder.commit().await.unwrap();
        let mut next = begin_pg(&store).await;
        assert!(next.maintenance_lock().await.unwrap(), "released at commit");
        // Explicitly: a dropped transaction's rollback runs on a background task, a moment later.
        next.tx.rollback().await.unwrap();
        let mut after_rollback = store.begin().await.unwrap();
        assert!(after_rollback.maintenance_lock().await.unwrap(), "released at rollback");
        after_rollback.commit().await.unwrap();

        // The retries that fell due in a window, among runnable tasks only.
        let t0 = now();
        let tpl = template_record("ns", "t", "1.0.0");
        let task = task_row(&tpl, TaskState::InProgress, t0);
        let mut waiting = step_row(&task, "w", "k.a", 0, 0);
        waiting.state = StepState::WaitingForRetry;
        waiting.next_attempt_at = Some(t0 + TimeDelta::seconds(5));
        seed(&store, &tpl, &task, &[waiting], &[]).await;
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.step_retries_due(t0, t0 + TimeDelta::seconds(5)).await.unwrap(), 1);
        assert_eq!(
            tx.step_retries_due(t0 + TimeDelta::seconds(5), t0 + TimeDelta::seconds(9))
                .await
                .unwrap(),
            0
        );
        assert_eq!(tx.step_retries_due(t0, t0 + TimeDelta::seconds(4)).await.unwrap(), 0);
        tx.commit().await.unwrap();
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn lists_timings_and_counts() {
        let db = TestDb::create().await;
        let store = db.store().await;
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
        assert!(store
            .template_list(Some("ns'; DROP TABLE tasker.tasks; --"), None)
            .await
            .unwrap()
            .is_empty());

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
        assert_eq!(counts.tasks.get(&TaskState::InProgress), Some(&1));
        assert_eq!(counts.steps.get(&StepState::Complete), Some(&3));
        assert_eq!(counts.steps.get(&StepState::Pending), Some(&1));
        assert_eq!(counts.steps_exhausted, 1);
        store.close().await;
        db.finish().await;
    }

    // -----------------------------------------------------------------------------------------------------
    // Wake-ups
    // -----------------------------------------------------------------------------------------------------

    async fn announce(store: &PgStore) {
        let mut tx = store.begin().await.unwrap();
        tx.notify_work().await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Announces work and waits for the wake-up, again and again until the deadline: the listener starts in
    /// the background, so the first announcements may come before it listens.
    async fn announce_until_woken(store: &PgStore, work: &Notify) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            announce(store).await;
            if tokio::time::timeout(Duration::from_millis(200), notified).await.is_ok() {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "no wake-up arrived");
        }
    }

    async fn listener_backends(db: &TestDb, admin: &mut PgConnection) -> Vec<i32> {
        sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tasker-listener'",
        )
        .bind(&db.name)
        .fetch_all(admin)
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn notify_work_wakes_listeners_even_across_reconnects_until_closed() {
        let db = TestDb::create().await;
        let store = Arc::new(db.store().await);
        let mut admin = db.admin().await;
        let work = Arc::new(Notify::new());

        // Without a runtime there is nothing to listen with: skipped with a warning, no panic.
        let outside = store.clone();
        let n = work.clone();
        std::thread::spawn(move || outside.attach_wakeups(n)).join().unwrap();
        assert!(lock(&store.listeners).is_empty());

        store.attach_wakeups(work.clone());
        announce_until_woken(&store, &work).await;
        // Another store (another process, as far as the server knows) announcing wakes this one too.
        let other = db.store().await;
        announce_until_woken(&other, &work).await;
        other.close().await;

        // Kill the listener's connection: it reconnects by itself and wakes everyone once, since work may
        // have been announced while it was away.
        let pids = listener_backends(&db, &mut admin).await;
        assert_eq!(pids.len(), 1, "one listener connection");
        let notified = work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pids[0])
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(killed);
        tokio::time::timeout(Duration::from_secs(20), notified)
            .await
            .expect("a reconnect wakes the waiters");
        // And it listens again.
        announce_until_woken(&store, &work).await;
        let pids_after = listener_backends(&db, &mut admin).await;
        assert_eq!(pids_after.len(), 1);
        assert_ne!(pids_after, pids);

        // Close stops the listener and its connection goes away.
        store.close().await;
        assert!(lock(&store.listeners).is_empty());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !listener_backends(&db, &mut admin).await.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "listener connection still open after close"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A closed store starts no listener.
        store.attach_wakeups(work.clone());
        assert!(lock(&store.listeners).is_empty());
        let _ = admin.close().await;
        db.finish().await;
    }

    // -----------------------------------------------------------------------------------------------------
    // Errors
    // -----------------------------------------------------------------------------------------------------

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn unknown_role_is_an_authentication_error_without_the_password() {
        // The throwaway test cluster trusts every local connection, so a wrong password would be accepted;
        // an unknown role is refused under trust and under password authentication alike (28000 or 28P01).
        let base = std::env::var("TASKER_TEST_PG_URL").expect("TASKER_TEST_PG_URL");
        let opts = PgConnectOptions::from_str(&base).unwrap();
        let (host, port) = (opts.get_host().to_string(), opts.get_port());
        let url = format!("postgres://tasker_no_such_role:hunter2-Secret@{host}:{port}/postgres");
        let err = PgStore::connect(&url, &PgOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("cannot connect to postgres at {host}:{port}")),
            "{msg}"
        );
        assert!(msg.contains("authentication failed"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn statement_timeout_is_a_timeout() {
        let db = TestDb::create().await;
        let store = PgStore::connect(
            &db.url,
            &PgOptions {
                statement_timeout: Some(Duration::from_millis(200)),
                ..PgOptions::default()
            },
        )
        .await
        .unwrap();
        let (task, _) = seed_ready(&store, 1).await;
        let mut holder = store.begin().await.unwrap();
        holder.task_lock(task.id).await.unwrap();
        // Waiting for the holder's row lock runs into the statement timeout.
        let mut waiter = store.begin().await.unwrap();
        let err = waiter.task_lock(task.id).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("statement timeout"), "{err}");
        drop(waiter);
        holder.commit().await.unwrap();
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn connection_lost_mid_transaction_is_a_database_error() {
        let db = TestDb::create().await;
        let store = db.store().await;
        let (task, _) = seed_ready(&store, 1).await;
        let mut tx = begin_pg(&store).await;
        tx.task_lock(task.id).await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(tx.conn())
            .await
            .unwrap();
        let mut admin = db.admin().await;
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(killed);
        let err = tx.task_lock(task.id).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database, "{err}");
        assert!(err.to_string().contains("lost the connection to postgres"), "{err}");
        let err = Box::new(tx).commit().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database, "{err}");
        // The dead connection is not handed out again, and the row lock died with it.
        let mut tx = store.begin().await.unwrap();
        assert!(tx.task_lock(task.id).await.unwrap().is_some());
        tx.commit().await.unwrap();
        let _ = admin.close().await;
        store.close().await;
        db.finish().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn closed_store_reports_closed_and_debug_hides_credentials() {
        let db = TestDb::create().await;
        // Trust authentication ignores the password, so it can ride along to check that Debug hides it.
        let base = PgConnectOptions::from_str(&db.base).unwrap();
        let url = format!(
            "postgres://{}:pw-visible-nowhere@{}:{}/{}",
            base.get_username(),
            base.get_host(),
            base.get_port(),
            db.name
        );
        let store = PgStore::connect(&url, &PgOptions::default()).await.unwrap();
        let debug = format!("{store:?}");
        assert!(debug.starts_with("PgStore"), "{debug}");
        assert!(debug.contains(&db.name), "{debug}");
        assert!(!debug.contains("pw-visible-nowhere"), "{debug}");
        store.ping().await.unwrap();
        let stats = store.pool_stats();
        assert!(stats.size >= 1 && stats.size <= 10, "{stats:?}");
        assert_eq!(store.kind(), StoreKind::Postgres);
        let app: String = sqlx::query_scalar("SELECT current_setting('application_name')")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(app, "tasker");
        store.close().await;
        store.close().await;
        assert_eq!(store.ping().await.unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(store.begin().await.err().map(|e| e.kind()), Some(ErrorKind::Closed));
        assert_eq!(
            store.task_get(Uuid::now_v7()).await.unwrap_err().kind(),
            ErrorKind::Closed
        );
        db.finish().await;
    }
}
