//! The SQLite side of the migration runner: one immediate transaction is the lock, and everything applied
//! under it commits together, so two processes connecting at once apply each migration exactly once.

use async_trait::async_trait;
use sqlx::sqlite::SqlitePool;
use sqlx::{Executor, Sqlite, Transaction};

use super::db_err;
use super::url::Location;
use crate::error::{Error, Result};
use crate::store::sql::migrate::{recorded_from_rows, recorded_sql, Migration, MigrationTarget, Recorded};

/// Applied in order; never edit one that has shipped (its checksum is verified), add a new file instead.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "event feed",
        sql: include_str!("../../../migrations/sqlite/0002_event_feed.sql"),
    },
    Migration {
        version: 3,
        description: "priorities and scheduled tasks",
        sql: include_str!("../../../migrations/sqlite/0003_priorities_and_scheduled_tasks.sql"),
    },
    Migration {
        version: 4,
        description: "schedules",
        sql: include_str!("../../../migrations/sqlite/0004_schedules.sql"),
    },
    Migration {
        version: 5,
        description: "keyed concurrency limits",
        sql: include_str!("../../../migrations/sqlite/0005_keyed_concurrency_limits.sql"),
    },
];

const RECORD: &str = "_tasker_migrations";

/// One SQLite database being migrated.
pub(super) struct SqliteMigrations<'a> {
    pool: &'a SqlitePool,
    location: &'a Location,
    /// The immediate transaction that holds the write lock, from `lock` to `unlock`.
    tx: Option<Transaction<'static, Sqlite>>,
}

impl<'a> SqliteMigrations<'a> {
    pub(super) fn new(pool: &'a SqlitePool, location: &'a Location) -> Self {
        SqliteMigrations {
            pool,
            location,
            tx: None,
        }
    }

    fn tx(&mut self) -> Result<&mut Transaction<'static, Sqlite>> {
        self.tx
            .as_mut()
            .ok_or_else(|| Error::Internal("sqlite migration ran without its lock".into()))
    }
}

#[async_trait]
impl MigrationTarget for SqliteMigrations<'_> {
    fn database(&self) -> String {
        format!("sqlite database {}", self.location)
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn recorded(&mut self) -> Result<Option<Recorded>> {
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(RECORD)
            .fetch_one(self.pool)
            .await
            .map_err(db_err)?;
        if exists == 0 {
            return Ok(None);
        }
        let rows = sqlx::query(&recorded_sql(RECORD))
            .fetch_all(self.pool)
            .await
            .map_err(db_err)?;
        recorded_from_rows(&rows).map(Some)
    }

    async fn lock(&mut self) -> Result<()> {
        self.tx = Some(self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?);
        Ok(())
    }

    async fn recorded_locked(&mut self) -> Result<Recorded> {
        let tx = self.tx()?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS _tasker_migrations (
                version INTEGER PRIMARY KEY NOT NULL,
                description TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at INTEGER NOT NULL
            )",
        )
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
        let rows = sqlx::query(&recorded_sql(RECORD))
            .fetch_all(&mut **tx)
            .await
            .map_err(db_err)?;
        recorded_from_rows(&rows)
    }

    async fn apply(&mut self, m: &'static Migration) -> Result<()> {
        let tx = self.tx()?;
        // Executor::execute with plain text runs every statement of the file. (sqlx::raw_sql would too, but
        // its future is not Send for a borrowed transaction, which would make connect() unspawnable.)
        (&mut **tx)
            .execute(m.sql)
            .await
            .map_err(|e| Error::Database(format!("migration failed: {} ({}): {e}", m.version, m.description)))?;
        sqlx::query("INSERT INTO _tasker_migrations (version, description, checksum, applied_at) VALUES (?, ?, ?, ?)")
            .bind(m.version)
            .bind(m.description)
            .bind(m.checksum())
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn unlock(&mut self, outcome: Result<()>) -> Result<()> {
        let Some(tx) = self.tx.take() else {
            return outcome;
        };
        match outcome {
            Ok(()) => tx.commit().await.map_err(db_err),
            Err(e) => {
                if let Err(rb) = tx.rollback().await {
                    tracing::debug!(error = %rb, "rollback after a failed sqlite migration failed");
                }
                Err(e)
            }
        }
    }
}
