//! Tests of the SQLite store; those shared with the other stores are in `store::fixtures`.

use std::time::Duration;

use sqlx::Row;

use super::migrate::MIGRATIONS;
use super::tx::CLAIM_CANDIDATES_SQL;
use super::url::{parse_url, Location};
use super::*;
use crate::state::StepEvent;

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
        ("schedules", &["name", "next_fire_at", "body"]),
        ("step_edges", &["task_id", "parent_id", "child_id"]),
        (
            "step_transitions",
            &[
                "seq",
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
                "priority",
                "ready_at",
                "concurrency_key",
                "concurrency_limit",
            ],
        ),
        (
            "task_transitions",
            &[
                "seq",
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
                "priority",
                "run_at",
                "held_until",
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
            "schedules_next_fire_idx",
            "step_edges_child_idx",
            "step_edges_task_idx",
            "step_transitions_created_at_idx",
            "step_transitions_step_sort_idx",
            "step_transitions_task_idx",
            "steps_claim_idx",
            "steps_concurrency_running_idx",
            "steps_finished_at_idx",
            "steps_lease_idx",
            "steps_task_position_idx",
            "task_transitions_task_sort_idx",
            "tasks_finished_at_idx",
            "tasks_held_idx",
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
    check_duplicate_template_is_a_conflict(&store).await;
    // Both versions share one namespace row.
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

#[tokio::test]
async fn claims_follow_priority_then_ready_time_and_release_holds() {
    let store = memory_store().await;
    check_claim_order_and_holds(&store).await;
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
async fn finished_summaries_and_slowest() {
    let store = memory_store().await;
    check_finished_summaries_and_slowest(&store).await;
}

#[tokio::test]
async fn lists_and_counts() {
    let store = memory_store().await;
    check_lists_and_counts(&store).await;
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
