//! The event feed on PostgreSQL: the transition rows of every process's commits, read back by snapshot.
//!
//! Each transition row carries the id of the transaction that wrote it (`xid`, migration 0003). A read keeps
//! the snapshot of the previous one and takes the rows whose transaction is visible in a new snapshot and
//! was not visible in the previous one. A transaction is visible in a snapshot exactly when it committed
//! before the snapshot was taken, so each committed transaction falls between exactly one pair of
//! consecutive snapshots: nothing is read twice, nothing is skipped, and a transaction still running at a
//! read is picked up by a later one, whatever happened to the connection in between. Rows older than the
//! previous snapshot's xmin were all visible in it, which bounds the scan (the `xid` indexes).
//!
//! The feed reads on a pool of one connection of its own, named `<application_name>-feed` so that operators
//! can tell it apart in pg_stat_activity; it connects on the first read (only while someone subscribes) and
//! lets the connection go when idle.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::error::db_err;
use super::APPLICATION_NAME;
use crate::error::Result;
use crate::store::sql::rows::{
    feed_step_from_row, rows, task_transition_from_row, STEP_TRANSITION_COLUMNS, TASK_TRANSITION_COLUMNS,
};
use crate::store::{FeedBatch, FeedCursor};

/// How long the feed's connection stays open with no read; the reader reads every few hundred milliseconds
/// while someone subscribes, so this closes it only once nobody does.
const FEED_IDLE: Duration = Duration::from_secs(30);

/// The feed's pool of one connection, connected lazily.
pub(super) fn pool(connect: &PgConnectOptions, connect_timeout: Duration) -> PgPool {
    let name = format!("{}-feed", connect.get_application_name().unwrap_or(APPLICATION_NAME));
    PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(FEED_IDLE)
        .acquire_timeout(connect_timeout)
        .connect_lazy_with(connect.clone().application_name(&name))
}

/// The snapshot now.
pub(super) async fn position(pool: &PgPool) -> Result<FeedCursor> {
    let snapshot: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    Ok(FeedCursor::Snapshot(snapshot))
}

/// The rows of the transactions visible in the snapshot now and not in `prev`, and that snapshot.
///
/// The three statements need no common transaction: the rows are chosen by the two snapshots alone, and any
/// statement after the first sees at least what its snapshot does (each READ COMMITTED statement takes a
/// newer snapshot).
pub(super) async fn read(pool: &PgPool, prev: &str) -> Result<(FeedBatch, FeedCursor)> {
    let mut conn = pool.acquire().await.map_err(db_err)?;
    let now: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    let between = "t.xid >= pg_snapshot_xmin($1::text::pg_snapshot)
         AND NOT pg_visible_in_snapshot(t.xid, $1::text::pg_snapshot)
         AND pg_visible_in_snapshot(t.xid, $2::text::pg_snapshot)";
    let steps = sqlx::query(&format!(
        "SELECT {STEP_TRANSITION_COLUMNS}, (SELECT s.name FROM tasker.steps s WHERE s.id = t.step_id) AS step_name
         FROM tasker.step_transitions t WHERE {between}"
    ))
    .bind(prev)
    .bind(&now)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let tasks = sqlx::query(&format!(
        "SELECT {TASK_TRANSITION_COLUMNS} FROM tasker.task_transitions t WHERE {between}"
    ))
    .bind(prev)
    .bind(&now)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok((
        FeedBatch {
            steps: rows(&steps, feed_step_from_row)?,
            tasks: rows(&tasks, task_transition_from_row)?,
        },
        FeedCursor::Snapshot(now),
    ))
}
