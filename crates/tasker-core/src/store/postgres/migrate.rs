//! The PostgreSQL side of the migration runner: a session advisory lock lets one process migrate at a
//! time, and each migration runs in its own transaction together with its record, so a failed one leaves
//! nothing behind.

use async_trait::async_trait;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use super::error::db_err;
use super::url::Target;
use crate::error::{Error, Result};
use crate::store::sql::migrate::{recorded_from_rows, recorded_sql, Migration, MigrationTarget, Recorded};

/// Applied in order; never edit one that has shipped (its checksum is verified), add a new file instead.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "claim order and retry indexes",
        sql: include_str!("../../../migrations/postgres/0002_claim_order_and_retry_indexes.sql"),
    },
    Migration {
        version: 3,
        description: "event feed",
        sql: include_str!("../../../migrations/postgres/0003_event_feed.sql"),
    },
    Migration {
        version: 4,
        description: "priorities and scheduled tasks",
        sql: include_str!("../../../migrations/postgres/0004_priorities_and_scheduled_tasks.sql"),
    },
    Migration {
        version: 5,
        description: "schedules",
        sql: include_str!("../../../migrations/postgres/0005_schedules.sql"),
    },
    Migration {
        version: 6,
        description: "keyed concurrency limits",
        sql: include_str!("../../../migrations/postgres/0006_keyed_concurrency_limits.sql"),
    },
];

/// The advisory lock key of migrations. Advisory locks are per database, so two tasker databases on one
/// server never contend; the value spells "taskermg" in ASCII, to be recognisable in `pg_locks`.
const MIGRATION_LOCK_KEY: i64 = 0x7461_736b_6572_6d67;

const RECORD: &str = "tasker._tasker_migrations";

/// One PostgreSQL database being migrated, over a connection of its own that dies with the migration.
pub(super) struct PgMigrations<'a> {
    conn: &'a mut PgConnection,
    target: &'a Target,
}

impl<'a> PgMigrations<'a> {
    pub(super) fn new(conn: &'a mut PgConnection, target: &'a Target) -> Self {
        PgMigrations { conn, target }
    }
}

#[async_trait]
impl MigrationTarget for PgMigrations<'_> {
    fn database(&self) -> String {
        format!("postgres database {} at {}", self.target.database, self.target)
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn recorded(&mut self) -> Result<Option<Recorded>> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(RECORD)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(db_err)?;
        if !exists {
            return Ok(None);
        }
        let rows = sqlx::query(&recorded_sql(RECORD))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db_err)?;
        recorded_from_rows(&rows).map(Some)
    }

    async fn lock(&mut self) -> Result<()> {
        // The configured statement_timeout guards the hot path; a migration on a big table, or the wait for
        // another process's migration, must not be cut off by it. The setting dies with this one-off session.
        self.conn.execute("SET statement_timeout = 0").await.map_err(db_err)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *self.conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn recorded_locked(&mut self) -> Result<Recorded> {
        // Plain text runs as a simple query, which may hold several statements.
        self.conn
            .execute(
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
        let rows = sqlx::query(&recorded_sql(RECORD))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db_err)?;
        recorded_from_rows(&rows)
    }

    async fn apply(&mut self, m: &'static Migration) -> Result<()> {
        let mut tx = self.conn.begin().await.map_err(db_err)?;
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
        tx.commit().await.map_err(db_err)
    }

    async fn unlock(&mut self, outcome: Result<()>) -> Result<()> {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *self.conn)
            .await
            .map_err(db_err);
        outcome?;
        unlocked.map(|_| ())
    }
}
