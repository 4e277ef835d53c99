//! Regression tests of defects that only real stores show: a claim whose inputs cannot be read, a heartbeat
//! and a report of the same claims at once, operator actions on a busy task, and machines whose clocks
//! disagree. Each case names the store it runs on; those on PostgreSQL need `TASKER_TEST_PG_URL`
//! (`cargo xtask test-all --only postgres`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tasker_core::engine::{ClaimRequest, CreateTask, EngineOptions};
use tasker_core::*;

const TEMPLATE: &str = r#"
namespace: hard
name: pair
version: "1.0.0"
steps:
  - name: first
    handler: hard.first
  - name: second
    handler: hard.second
    depends_on: [first]
"#;

/// A task of many independent steps, for claims that hold many rows at once.
fn wide_template(n: usize) -> String {
    let mut t = String::from("namespace: hard\nname: wide\nversion: \"1.0.0\"\nsteps:\n");
    for i in 0..n {
        t.push_str(&format!("  - name: s{i:03}\n    handler: hard.wide\n"));
    }
    t
}

fn claim_request(worker: &str, key: &str, limit: u32, lease: Duration) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.into(),
        handler_keys: vec![key.into()],
        limit,
        lease,
    }
}

async fn create(engine: &Engine, name: &str) -> Task {
    engine
        .create_task(CreateTask::new("hard", name, json!({})))
        .await
        .expect("create task")
}

async fn step_named(engine: &Engine, task: &Task, name: &str) -> Step {
    engine
        .steps(task.id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .expect("step exists")
}

/// Point 7: the claim's inputs are read in the claim's transaction. `hide` makes that read fail (it hides
/// the edge table, which only the input read touches) and `restore` undoes it; the claim must then fail
/// having changed nothing, and claim the step on the next try with attempt 1.
async fn claim_whose_inputs_cannot_be_read_spends_no_attempt<H, R, HF, RF>(engine: Engine, hide: H, restore: R)
where
    H: FnOnce() -> HF,
    HF: std::future::Future<Output = ()>,
    R: FnOnce() -> RF,
    RF: std::future::Future<Output = ()>,
{
    engine.register_template(TEMPLATE).await.unwrap();
    let task = create(&engine, "pair").await;
    hide().await;
    let err = engine
        .claim(&claim_request("w", "hard.first", 10, Duration::from_secs(30)))
        .await
        .expect_err("the input read must fail");
    restore().await;
    let first = step_named(&engine, &task, "first").await;
    assert_eq!(
        first.state,
        StepState::Pending,
        "a failed claim left the step claimed ({err})"
    );
    assert_eq!(first.attempts, 0, "a failed claim spent an attempt ({err})");
    assert_eq!(engine.task(task.id).await.unwrap().state, TaskState::Pending);
    let claimed = engine
        .claim(&claim_request("w", "hard.first", 10, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempt, 1);
}

/// Point 6: heartbeats and reports of the same claims, at once, in opposite orders, many times. Before the
/// fix PostgreSQL aborted one side with a deadlock (40P01).
async fn heartbeats_and_reports_of_the_same_claims_never_deadlock(engine: Engine) {
    engine.register_template(&wide_template(120)).await.unwrap();
    for round in 0..15 {
        let _task = create(&engine, "wide").await;
        let claimed = engine
            .claim(&claim_request("w", "hard.wide", 120, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 120);
        let mut tokens: Vec<ClaimToken> = claimed.iter().map(|c| c.token).collect();
        // The heartbeat gets them in reverse, the report in claim order.
        let reports: Vec<(ClaimToken, Outcome)> = tokens
            .iter()
            .map(|t| (*t, Outcome::Success(json!({"round": round}))))
            .collect();
        tokens.reverse();
        let (beat, done) = tokio::join!(
            engine.heartbeat(&tokens, Duration::from_secs(30)),
            engine.finish_many(reports)
        );
        beat.unwrap_or_else(|e| panic!("heartbeat in round {round}: {e}"));
        let done = done.unwrap_or_else(|e| panic!("report in round {round}: {e}"));
        assert!(done.iter().all(|r| r.is_ok()), "round {round}: {done:?}");
    }
}

/// Point 5: two engines whose wall clocks disagree by far more than the lease. The one ahead reaps nothing
/// of the live claim of the one behind; once the lease really runs out, it is reaped.
async fn leases_hold_across_machines_whose_clocks_disagree(url: &str) {
    let open = |offset_ms: i64| {
        Engine::connect(
            url,
            EngineOptions {
                clock: Arc::new(SkewedClock::new(offset_ms)),
                ..Default::default()
            },
        )
    };
    let behind = open(-120_000).await.expect("open the engine whose clock is behind");
    let ahead = open(120_000).await.expect("open the engine whose clock is ahead");
    behind.register_template(TEMPLATE).await.unwrap();
    let task = create(&behind, "pair").await;
    let lease = Duration::from_secs(2);
    let claimed = behind
        .claim(&claim_request("behind", "hard.first", 1, lease))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let reaped = ahead.reap_expired_leases(100).await.unwrap();
    assert_eq!(
        reaped,
        Default::default(),
        "a live lease was reaped by a clock four minutes ahead"
    );
    let reaped = behind.reap_expired_leases(100).await.unwrap();
    assert_eq!(reaped, Default::default());
    // Both engines read the server's time: their corrected clocks agree to within a round trip.
    let gap = (ahead.now() - behind.now()).num_milliseconds().abs();
    assert!(gap < 5_000, "corrected clocks still {gap} ms apart");
    // The lease does run out, by the server's clock.
    let mut waited = 0;
    loop {
        let reaped = ahead.reap_expired_leases(100).await.unwrap();
        if reaped.retried == 1 {
            break;
        }
        waited += 1;
        assert!(waited < 100, "the expired lease was never reaped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = step_named(&behind, &task, "first").await;
    assert_eq!(first.state, StepState::WaitingForRetry);
    behind.close().await;
    ahead.close().await;
}

mod sqlite {
    use super::*;

    async fn engine(dir: &tempfile::TempDir) -> (Engine, String) {
        let path = dir.path().join("hardening.db");
        let url = format!("sqlite://{}", path.display());
        (Engine::connect(&url, EngineOptions::default()).await.unwrap(), url)
    }

    async fn exec(url: &str, sql: &str) {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect to the file");
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
        conn.close().await.ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claim_whose_inputs_cannot_be_read_spends_no_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, url) = engine(&dir).await;
        super::claim_whose_inputs_cannot_be_read_spends_no_attempt(
            engine,
            || exec(&url, "ALTER TABLE step_edges RENAME TO step_edges_hidden"),
            || exec(&url, "ALTER TABLE step_edges_hidden RENAME TO step_edges"),
        )
        .await;
    }

    /// One transaction records the parent's outcome and claims the child it released; a stale outcome in the
    /// same batch is rejected alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finish_and_claim_claims_the_child_its_outcome_releases() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = engine(&dir).await;
        engine.register_template(TEMPLATE).await.unwrap();
        let task = create(&engine, "pair").await;
        let req = ClaimRequest {
            handler_keys: vec!["hard.first".into(), "hard.second".into()],
            ..claim_request("w", "hard.first", 10, Duration::from_secs(30))
        };
        let first = engine.claim(&req).await.unwrap().remove(0);
        let stale = ClaimToken {
            attempt: first.token.attempt + 1,
            ..first.token
        };
        let items = vec![
            (first.token, Outcome::Success(json!({"n": 1}))),
            (stale, Outcome::Success(json!({}))),
        ];
        let (finished, claimed) = engine.finish_and_claim(items, &req).await.unwrap();
        assert_eq!(finished[0].as_ref().unwrap().state, StepState::Complete);
        assert!(
            matches!(finished[1], Err(Error::StaleClaim { .. })),
            "{:?}",
            finished[1]
        );
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].step_name, "second");
        assert_eq!(claimed[0].dependency_results["first"], json!({"n": 1}));
        let second = step_named(&engine, &task, "second").await;
        assert_eq!(second.state, StepState::InProgress);
        // One commit: the parent's completion and the child's claim carry the same time.
        assert_eq!(step_named(&engine, &task, "first").await.finished_at, second.started_at);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heartbeats_and_reports_of_the_same_claims_never_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = engine(&dir).await;
        super::heartbeats_and_reports_of_the_same_claims_never_deadlock(engine).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::conformance::harness::fresh_pg_database;
    use sqlx::Connection;
    use tasker_core::store::postgres::{PgOptions, PgStore};

    async fn admin(url: &str) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(url)
            .await
            .expect("connect to the test database")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn claim_whose_inputs_cannot_be_read_spends_no_attempt() {
        let url = fresh_pg_database().await;
        // A short statement timeout, and another session holding the edge table: the input read times out.
        let store = PgStore::connect(
            &url,
            &PgOptions {
                statement_timeout: Some(Duration::from_millis(300)),
                ..PgOptions::default()
            },
        )
        .await
        .unwrap();
        let engine = Engine::with_store(Arc::new(store), EngineOptions::default());
        let holder = Arc::new(tokio::sync::Mutex::new(admin(&url).await));
        let (h1, h2) = (holder.clone(), holder.clone());
        super::claim_whose_inputs_cannot_be_read_spends_no_attempt(
            engine,
            || async move {
                let mut c = h1.lock().await;
                sqlx::query("BEGIN").execute(&mut *c).await.unwrap();
                sqlx::query("LOCK TABLE tasker.step_edges IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut *c)
                    .await
                    .unwrap();
            },
            || async move {
                let mut c = h2.lock().await;
                sqlx::query("COMMIT").execute(&mut *c).await.unwrap();
            },
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn heartbeats_and_reports_of_the_same_claims_never_deadlock() {
        let url = fresh_pg_database().await;
        let engine = Engine::connect(&url, EngineOptions::default()).await.unwrap();
        super::heartbeats_and_reports_of_the_same_claims_never_deadlock(engine).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn leases_hold_across_machines_whose_clocks_disagree() {
        let url = fresh_pg_database().await;
        super::leases_hold_across_machines_whose_clocks_disagree(&url).await;
    }

    /// Point 8: a claim in flight holds a step of the task (here: another session holds its row for a
    /// while, as a claim waiting to start the task would). Cancelling waits for it instead of failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn operator_actions_wait_for_a_busy_task() {
        let url = fresh_pg_database().await;
        let engine = Engine::connect(&url, EngineOptions::default()).await.unwrap();
        engine.register_template(TEMPLATE).await.unwrap();
        for action in ["cancel", "resolve"] {
            let task = create(&engine, "pair").await;
            let second = step_named(&engine, &task, "second").await;
            let mut holder = admin(&url).await;
            sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
            sqlx::query("SELECT id FROM tasker.steps WHERE id = $1 FOR UPDATE")
                .bind(second.id)
                .execute(&mut holder)
                .await
                .unwrap();
            let release = tokio::spawn(async move {
                // Long enough for several of the operator's tries to find the row held.
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
            });
            match action {
                "cancel" => {
                    let t = engine
                        .cancel_task(task.id, Some("busy"))
                        .await
                        .expect("cancel a busy task");
                    assert_eq!(t.state, TaskState::Cancelled);
                }
                _ => {
                    let s = engine
                        .resolve_step_manually(second.id, json!({"by": "operator"}))
                        .await
                        .expect("resolve a step of a busy task");
                    assert_eq!(s.state, StepState::ResolvedManually);
                }
            }
            release.await.unwrap();
            crate::conformance::harness::check_invariants(&engine, task.id).await;
        }
        engine.close().await;
    }

    /// The wait is bounded: a task whose step stays held fails with `timeout`, naming the task, and leaves
    /// nothing written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn operator_actions_on_a_task_held_too_long_time_out() {
        let url = fresh_pg_database().await;
        let engine = Engine::connect(&url, EngineOptions::default()).await.unwrap();
        engine.register_template(TEMPLATE).await.unwrap();
        let task = create(&engine, "pair").await;
        let first = step_named(&engine, &task, "first").await;
        let mut holder = admin(&url).await;
        sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
        sqlx::query("SELECT id FROM tasker.steps WHERE id = $1 FOR UPDATE")
            .bind(first.id)
            .execute(&mut holder)
            .await
            .unwrap();
        let err = engine.cancel_task(task.id, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains(&task.id.to_string()), "{err}");
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
        assert_eq!(engine.task(task.id).await.unwrap().state, TaskState::Pending);
        engine.close().await;
    }
}
