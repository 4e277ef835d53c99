//! The migration runner of the SQL stores: numbered migrations, applied in order, each recorded with its
//! checksum, exactly once however many processes connect at the same moment.
//!
//! The runner decides what runs; a [`MigrationTarget`] says how on its database: which lock makes one
//! process migrate at a time (SQLite: an immediate transaction; PostgreSQL: a session advisory lock), where
//! the record lives, and how one migration is applied.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::sql::rows::{Cols, SqlRow};

/// One numbered migration, embedded so that an installed binary needs no files on disk.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

impl Migration {
    pub(crate) fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// `(version, checksum)` of each migration a database has recorded, by version.
pub(crate) type Recorded = Vec<(i64, String)>;

/// The query that reads [`Recorded`] rows, given the record table's name.
pub(crate) fn recorded_sql(table: &str) -> String {
    format!("SELECT version, checksum FROM {table} ORDER BY version")
}

/// Decodes the rows of [`recorded_sql`].
pub(crate) fn recorded_from_rows<R: SqlRow>(rows: &[R]) -> Result<Recorded> {
    rows.iter()
        .map(|row| {
            let c = Cols::new(row, "_tasker_migrations");
            Ok((c.int("version")?, c.text("checksum")?))
        })
        .collect()
}

/// One database as the runner sees it.
#[async_trait]
pub(crate) trait MigrationTarget: Send {
    /// How messages name the database, e.g. `sqlite database tasker.db`.
    fn database(&self) -> String;
    /// The store kind, for the log line of each applied migration.
    fn kind(&self) -> &'static str;
    /// The record as it stands, read without any lock; `None` while the record table does not exist.
    async fn recorded(&mut self) -> Result<Option<Recorded>>;
    /// Takes the lock that lets one process migrate at a time.
    async fn lock(&mut self) -> Result<()>;
    /// Under the lock: creates the record table if missing, then reads it again, since another process may
    /// have migrated since [`MigrationTarget::recorded`] looked.
    async fn recorded_locked(&mut self) -> Result<Recorded>;
    /// Under the lock: runs one migration and records it.
    async fn apply(&mut self, m: &'static Migration) -> Result<()>;
    /// Ends the locked part with the outcome of what ran under it: keeps what was applied if it is `Ok` and
    /// what the target's transactions allow if not, releases the lock, and returns the outcome.
    async fn unlock(&mut self, outcome: Result<()>) -> Result<()>;
}

/// Brings `target` up to `migrations`, which are in version order.
pub(crate) async fn run(target: &mut impl MigrationTarget, migrations: &'static [Migration]) -> Result<()> {
    // Fast path, a plain read: an up-to-date database opens without waiting for whoever holds the lock, and
    // without the privileges that creating the record needs, so a least-privilege role can connect.
    if let Some(recorded) = target.recorded().await? {
        if pending(migrations, &recorded, &target.database())?.is_empty() {
            return Ok(());
        }
    }
    target.lock().await?;
    let outcome = async {
        let recorded = target.recorded_locked().await?;
        for m in pending(migrations, &recorded, &target.database())? {
            target.apply(m).await?;
            tracing::info!(
                version = m.version,
                description = m.description,
                database = %target.database(),
                "applied {} migration",
                target.kind()
            );
        }
        Ok(())
    }
    .await;
    target.unlock(outcome).await
}

/// The migrations not yet in `recorded`, after checking that the recorded ones are ours and unchanged.
fn pending(migrations: &'static [Migration], recorded: &Recorded, database: &str) -> Result<Vec<&'static Migration>> {
    let latest = migrations.last().map_or(0, |m| m.version);
    if let Some((v, _)) = recorded.iter().find(|(v, _)| *v > latest) {
        return Err(Error::Configuration(format!(
            "{database} has schema version {v}, newer than the {latest} this build knows; upgrade tasker"
        )));
    }
    let mut out = Vec::new();
    for m in migrations {
        match recorded.iter().find(|(v, _)| *v == m.version) {
            Some((_, checksum)) if *checksum != m.checksum() => {
                return Err(Error::Database(format!(
                    "migration failed: migration {} ({}) was changed after it was applied",
                    m.version, m.description
                )));
            }
            Some(_) => {}
            None => out.push(m),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    static SET: &[Migration] = &[
        Migration {
            version: 1,
            description: "one",
            sql: "CREATE TABLE a (x int)",
        },
        Migration {
            version: 2,
            description: "two",
            sql: "CREATE TABLE b (x int)",
        },
    ];

    /// A database in memory that records what the runner asked of it.
    #[derive(Default)]
    struct Fake {
        table: Option<Recorded>,
        locked: bool,
        calls: Vec<String>,
        fail_on: Option<i64>,
    }

    #[async_trait]
    impl MigrationTarget for Fake {
        fn database(&self) -> String {
            "fake database".into()
        }
        fn kind(&self) -> &'static str {
            "fake"
        }
        async fn recorded(&mut self) -> Result<Option<Recorded>> {
            self.calls.push("recorded".into());
            Ok(self.table.clone())
        }
        async fn lock(&mut self) -> Result<()> {
            self.calls.push("lock".into());
            self.locked = true;
            Ok(())
        }
        async fn recorded_locked(&mut self) -> Result<Recorded> {
            assert!(self.locked);
            self.calls.push("recorded_locked".into());
            Ok(self.table.get_or_insert_with(Vec::new).clone())
        }
        async fn apply(&mut self, m: &'static Migration) -> Result<()> {
            assert!(self.locked);
            self.calls.push(format!("apply {}", m.version));
            if self.fail_on == Some(m.version) {
                return Err(Error::Database("boom".into()));
            }
            self.table.get_or_insert_with(Vec::new).push((m.version, m.checksum()));
            Ok(())
        }
        async fn unlock(&mut self, outcome: Result<()>) -> Result<()> {
            self.calls
                .push(format!("unlock {}", if outcome.is_ok() { "ok" } else { "err" }));
            self.locked = false;
            outcome
        }
    }

    #[tokio::test]
    async fn a_fresh_database_gets_every_migration_in_order_under_the_lock() {
        let mut db = Fake::default();
        run(&mut db, SET).await.unwrap();
        assert_eq!(
            db.calls,
            ["recorded", "lock", "recorded_locked", "apply 1", "apply 2", "unlock ok"]
        );
        // Up to date: the fast path takes no lock.
        db.calls.clear();
        run(&mut db, SET).await.unwrap();
        assert_eq!(db.calls, ["recorded"]);
        // One behind: only the missing one runs.
        db.table.as_mut().unwrap().pop();
        db.calls.clear();
        run(&mut db, SET).await.unwrap();
        assert_eq!(
            db.calls,
            ["recorded", "lock", "recorded_locked", "apply 2", "unlock ok"]
        );
    }

    #[tokio::test]
    async fn a_failed_migration_still_releases_the_lock() {
        let mut db = Fake {
            fail_on: Some(2),
            ..Fake::default()
        };
        let err = run(&mut db, SET).await.unwrap_err();
        assert_eq!(err.to_string(), "database error: boom");
        assert_eq!(db.calls.last().map(String::as_str), Some("unlock err"));
        assert!(!db.locked);
    }

    #[tokio::test]
    async fn changed_and_newer_schemas_are_refused() {
        let mut changed = Fake {
            table: Some(vec![(1, "not the checksum".into())]),
            ..Fake::default()
        };
        let err = run(&mut changed, SET).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Database);
        assert!(
            err.to_string()
                .contains("migration 1 (one) was changed after it was applied"),
            "{err}"
        );
        assert_eq!(changed.calls, ["recorded"]);

        let mut newer = Fake {
            table: Some(vec![(1, SET[0].checksum()), (7, "x".into())]),
            ..Fake::default()
        };
        let err = run(&mut newer, SET).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert_eq!(
            err.to_string(),
            "configuration error: fake database has schema version 7, newer than the 2 this build knows; \
             upgrade tasker"
        );
    }
}
