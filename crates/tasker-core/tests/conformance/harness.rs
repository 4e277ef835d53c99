//! What every conformance case gets: an engine over one store, with a manual clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tasker_core::engine::{ClaimRequest, CreateTask, EngineOptions};
use tasker_core::*;
use uuid::Uuid;

pub struct H {
    pub engine: Engine,
    pub clock: ManualClock,
    pub kind: Kind,
    _dirs: Vec<tempfile::TempDir>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

pub const LEASE: Duration = Duration::from_secs(30);

impl H {
    pub async fn memory() -> H {
        Self::open(Kind::Memory).await
    }

    pub async fn sqlite() -> H {
        Self::open(Kind::Sqlite).await
    }

    #[cfg(feature = "postgres")]
    pub async fn postgres() -> H {
        Self::open(Kind::Postgres).await
    }

    async fn open(kind: Kind) -> H {
        let clock = ManualClock::fixed();
        let mut dirs = Vec::new();
        let engine = open_engine(kind, Arc::new(clock.clone()), &mut dirs).await;
        H {
            engine,
            clock,
            kind,
            _dirs: dirs,
        }
    }

    /// Another, empty engine on the same kind of store, on the wall clock: for running real workers,
    /// which sleep until retries are due.
    pub async fn wall_clock_engine(&mut self) -> Engine {
        open_engine(self.kind, Arc::new(SystemClock), &mut self._dirs).await
    }

    /// Registers a template named `name` in namespace `t` whose steps are `(name, deps)`; each step's
    /// handler key is `h.<name>`. `retry` is the default retry policy.
    pub async fn template(&self, name: &str, steps: &[(&str, &[&str])], retry: Value) -> TemplateRecord {
        let steps: Vec<Value> = steps
            .iter()
            .map(|(n, d)| json!({"name": n, "handler": format!("h.{n}"), "depends_on": d, "config": {"step": n}}))
            .collect();
        let doc = json!({
            "namespace": "t", "name": name, "version": "1.0.0",
            "defaults": {"retry": retry, "timeout_seconds": 60},
            "steps": steps,
        });
        self.engine
            .register_template_value(&doc)
            .await
            .expect("register")
            .template
    }

    pub async fn diamond(&self) -> TemplateRecord {
        self.template(
            "diamond",
            &[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])],
            json!({"max_attempts": 3, "backoff": "exponential", "base_ms": 1000, "max_ms": 10000, "jitter": 0.0}),
        )
        .await
    }

    pub async fn create(&self, name: &str) -> Task {
        self.engine
            .create_task(CreateTask::new("t", name, json!({"n": 1})))
            .await
            .expect("create task")
    }

    pub async fn claim(&self, keys: &[&str], limit: u32) -> Vec<StepContext> {
        self.claim_as("w1", keys, limit, LEASE).await
    }

    pub async fn claim_as(&self, worker: &str, keys: &[&str], limit: u32, lease: Duration) -> Vec<StepContext> {
        self.engine
            .claim(&ClaimRequest {
                worker_id: worker.into(),
                handler_keys: keys.iter().map(|k| k.to_string()).collect(),
                limit,
                lease,
            })
            .await
            .expect("claim")
    }

    /// Claims the one ready step with handler `h.<name>`, failing if it is not claimable.
    pub async fn claim_step(&self, name: &str) -> StepContext {
        let mut c = self.claim(&[&format!("h.{name}")], 1).await;
        assert_eq!(c.len(), 1, "expected step {name} to be claimable");
        c.remove(0)
    }

    /// Claims and completes step `name` with result `{"from": name}`.
    pub async fn run_step(&self, name: &str) -> Step {
        let c = self.claim_step(name).await;
        self.engine
            .complete(c.token, json!({"from": name}))
            .await
            .expect("complete")
    }

    pub async fn step(&self, task: &Task, name: &str) -> Step {
        self.engine
            .steps(task.id)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.name == name)
            .expect("step exists")
    }

    pub async fn task_state(&self, task: &Task) -> TaskState {
        self.engine.task(task.id).await.unwrap().state
    }

    pub async fn step_states(&self, task: &Task) -> HashMap<String, StepState> {
        self.engine
            .steps(task.id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.name, s.state))
            .collect()
    }

    pub fn advance_ms(&self, ms: i64) {
        self.clock.advance_ms(ms);
    }

    /// Holds every invariant of the audit trail and the counters for one task.
    pub async fn check(&self, task: &Task) {
        check_invariants(&self.engine, task.id).await;
    }
}

async fn open_engine(kind: Kind, clock: Arc<dyn Clock>, dirs: &mut Vec<tempfile::TempDir>) -> Engine {
    match kind {
        Kind::Memory => Engine::in_memory(clock),
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}/conformance.db", dir.path().display());
            dirs.push(dir);
            Engine::connect(
                &url,
                EngineOptions {
                    clock,
                    ..Default::default()
                },
            )
            .await
            .expect("open sqlite")
        }
        #[cfg(feature = "postgres")]
        Kind::Postgres => {
            let url = fresh_pg_database().await;
            Engine::connect(
                &url,
                EngineOptions {
                    clock,
                    ..Default::default()
                },
            )
            .await
            .expect("open postgres")
        }
    }
}

/// Creates an empty database on the server `TASKER_TEST_PG_URL` names and returns its URL, so that every
/// case runs alone even when cases run in parallel.
#[cfg(feature = "postgres")]
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection;
    let base = std::env::var("TASKER_TEST_PG_URL")
        .expect("TASKER_TEST_PG_URL must name a PostgreSQL server; `cargo xtask test-all --only postgres` sets it");
    let name = format!("tasker_c_{}", Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to the test server");
    // The name is generated here, never user input; identifiers cannot be bound as parameters.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    conn.close().await.ok();
    let (head, tail) = base
        .split_once('?')
        .map(|(h, t)| (h, format!("?{t}")))
        .unwrap_or((&base, String::new()));
    let root = head.rsplit_once('/').map(|(r, _)| r).unwrap_or(head);
    format!("{root}/{name}{tail}")
}

pub async fn check_invariants(engine: &Engine, task_id: Uuid) {
    let task = engine.task(task_id).await.unwrap();
    let steps = engine.steps(task_id).await.unwrap();
    let (task_rows, step_rows) = engine.transitions(task_id).await.unwrap();

    // The task's trail is a chain from creation to its current state.
    assert_eq!(task_rows.len() as i64, task.transition_count, "task transition count");
    for (i, r) in task_rows.iter().enumerate() {
        assert_eq!(r.sort_key, i as i64 + 1);
        if i == 0 {
            assert_eq!((r.from_state, r.to_state, r.event), (None, TaskState::Pending, None));
        } else {
            assert_eq!(r.from_state, Some(task_rows[i - 1].to_state), "task chain at {i}");
            let ev = r.event.expect("event");
            assert_eq!(
                r.from_state.unwrap().next(ev),
                Some(r.to_state),
                "task row is in the table"
            );
        }
    }
    assert_eq!(
        task_rows.last().unwrap().to_state,
        task.state,
        "task state matches its trail"
    );

    for s in &steps {
        let rows: Vec<_> = step_rows.iter().filter(|r| r.step_id == s.id).collect();
        assert_eq!(
            rows.len() as i64,
            s.transition_count,
            "step {} transition count",
            s.name
        );
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.sort_key, i as i64 + 1, "step {} sort keys", s.name);
            if i == 0 {
                assert_eq!((r.from_state, r.to_state, r.event), (None, StepState::Pending, None));
            } else {
                assert_eq!(r.from_state, Some(rows[i - 1].to_state), "step {} chain at {i}", s.name);
                let ev = r.event.expect("event");
                assert_eq!(
                    r.from_state.unwrap().next(ev),
                    Some(r.to_state),
                    "step row is in the table"
                );
            }
        }
        assert_eq!(
            rows.last().unwrap().to_state,
            s.state,
            "step {} state matches its trail",
            s.name
        );
    }

    // Counters agree with the rows they summarise.
    // A held task's pending roots count its start time as one more parent.
    let explain = engine.explain(task_id).await.unwrap();
    let levels = engine.dependency_levels(task_id).await.unwrap();
    for (s, r) in steps.iter().zip(&explain.steps) {
        assert_eq!(s.id, r.step_id);
        let root = levels.iter().any(|l| l.step_id == s.id && l.level == 0);
        let held = i64::from(task.held_until.is_some() && root && s.state == StepState::Pending);
        assert_eq!(
            s.unfinished_parents,
            r.blocked_by.len() as i64 + held,
            "unfinished parents of {}",
            s.name
        );
    }
    assert!(
        task.held_until.is_none() || task.state == TaskState::Pending,
        "only pending tasks are held"
    );
    let succeeded = steps.iter().filter(|s| s.state.is_success()).count() as i64;
    let failed = steps.iter().filter(|s| s.state == StepState::Error).count() as i64;
    assert_eq!(
        (task.steps_succeeded, task.steps_failed),
        (succeeded, failed),
        "task counters"
    );
    assert_eq!(task.steps_total, steps.len() as i64);
}
