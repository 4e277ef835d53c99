//! Tests of the PostgreSQL store; those shared with the other stores are in `store::fixtures`. All but the
//! first few need a server (`TASKER_TEST_PG_URL`): `cargo xtask test-all --only postgres` starts one.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;
use sqlx::postgres::PgConnection;

use super::codec::qualified;
use super::tx::{claim_sql, keyed_claim_sql, KEYED_KEYS_SQL};
use super::*;
use crate::store::ClaimParams;
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
        holds: store.holds.clone(),
        keyed: store.keyed.clone(),
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
    const X: &str = "xid8";
    let expected: &[(&str, &[(&str, &str)])] = &[
        (
            "_tasker_migrations",
            &[("version", B), ("description", T), ("checksum", T), ("applied_at", TS)],
        ),
        ("namespaces", &[("name", T), ("created_at", TS)]),
        ("schedules", &[("name", T), ("next_fire_at", TS), ("body", J)]),
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
                ("xid", X),
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
                ("priority", I),
                ("ready_at", TS),
                ("concurrency_key", T),
                ("concurrency_limit", I),
            ],
        ),
        ("task_holds", &[("task_id", U), ("held_until", TS)]),
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
                ("xid", X),
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
                ("priority", I),
                ("run_at", TS),
                ("held_until", TS),
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
            "schedules_next_fire_idx",
            "schedules_pkey",
            "step_edges_child_idx",
            "step_edges_pkey",
            "step_edges_task_position_idx",
            "step_transitions_created_at_idx",
            "step_transitions_pkey",
            "step_transitions_task_step_sort_idx",
            "step_transitions_xid_idx",
            "steps_claim_idx",
            "steps_claim_order_idx",
            "steps_concurrency_running_idx",
            "steps_finished_at_idx",
            "steps_in_progress_idx",
            "steps_keyed_claim_idx",
            "steps_pkey",
            "steps_retry_due_idx",
            "steps_task_id_name_key",
            "task_holds_pkey",
            "task_transitions_pkey",
            "task_transitions_task_sort_idx",
            "task_transitions_xid_idx",
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
    check_duplicate_template_is_a_conflict(&store).await;
    // Both versions share one namespace row.
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
async fn claims_follow_priority_then_ready_time_and_release_holds() {
    let db = TestDb::create().await;
    let store = db.store().await;
    check_claim_order_and_holds(&store).await;
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
    // One key and several: either way the index hands rows back in claim order, so nothing is sorted, and
    // the hold release reads only the held tasks' index.
    for keys in [vec!["k.a".to_string()], vec!["k.a".to_string(), "k.b".to_string()]] {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", claim_sql()))
            .bind(at)
            .bind(keys)
            .bind(10_i64)
            .bind("w")
            .bind(at)
            .fetch_all(tx.conn())
            .await
            .unwrap();
        let text = plan.join("\n");
        assert!(
            plan.iter()
                .any(|l| l.contains("steps_claim_idx") || l.contains("steps_claim_order_idx")),
            "{text}"
        );
        assert!(!plan.iter().any(|l| l.contains("Sort")), "{text}");
    }
    // The keyed claim reads keyed rows only, through their own indexes: the keys with room (never the
    // tasks), then each locked key's steps in claim order.
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {KEYED_KEYS_SQL}"))
        .bind(at)
        .bind(vec!["k.a".to_string()])
        .bind(10_i64)
        .bind(1_i32)
        .fetch_all(tx.conn())
        .await
        .unwrap();
    let text = plan.join("\n");
    assert!(text.contains("steps_keyed_claim_idx"), "{text}");
    assert!(text.contains("steps_concurrency_running_idx"), "{text}");
    assert!(!text.contains("tasks"), "{text}");
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", keyed_claim_sql()))
        .bind(at)
        .bind(vec!["k.a".to_string()])
        .bind(10_i64)
        .bind("w")
        .bind(at)
        .bind(vec!["ns/t/s:1".to_string()])
        .bind(vec![1_i32])
        .fetch_all(tx.conn())
        .await
        .unwrap();
    let text = plan.join("\n");
    assert!(text.contains("steps_keyed_claim_idx"), "{text}");
    assert!(text.contains("steps_concurrency_running_idx"), "{text}");
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
    // An operator action that holds the task and needs its steps waits only briefly while a claim holds
    // one, then answers busy (the engine rolls back, giving the task back, and tries again).
    let mut operator = store.begin().await.unwrap();
    operator.task_lock(a[0].step.task_id).await.unwrap();
    let busy = tokio::time::timeout(Duration::from_secs(10), operator.step_lock_all(a[0].step.task_id))
        .await
        .expect("an operator action must not wait long for a claim")
        .unwrap();
    assert_eq!(busy, None);
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
async fn finished_summaries_and_slowest() {
    let db = TestDb::create().await;
    let store = db.store().await;
    check_finished_summaries_and_slowest(&store).await;
    store.close().await;
    db.finish().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
async fn lists_and_counts() {
    let db = TestDb::create().await;
    let store = db.store().await;
    check_lists_and_counts(&store).await;
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
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tasker-listener'")
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
