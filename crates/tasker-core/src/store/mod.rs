//! The store seam: persistence behind one trait, with no engine rules in it.
//!
//! Stores read and write rows. The engine decides every state change (see [`crate::state`]) and hands the
//! store the rows to write and the transition rows that record them, in one transaction. The one place a
//! store encodes a rule is the claim predicate of [`StoreTx::step_claim`], which must mirror
//! [`crate::readiness`]; the conformance suite checks that every store agrees with it.
//!
//! Opening a store from a URL is this seam's job too ([`open`]): nothing here knows the engine, and the
//! engine knows no URL scheme.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::schedule::Schedule;
use crate::state::StepState;

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// How long an operator action's statement waits for a step row that another transaction holds before it
/// gives the task back and tries again (see [`StoreTx::step_lock_all`]). Shorter than PostgreSQL's default
/// `deadlock_timeout` (1 s), so the operator's side gives way before the server picks a victim.
pub const OPERATOR_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// How [`open`] opens a store. A store that has no use for a setting ignores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Apply pending migrations at open (default true).
    pub migrate: bool,
    /// Connections in the pool of a SQL store (default 8).
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            migrate: true,
            max_connections: 8,
        }
    }
}

/// Opens the store a URL names: `memory:` (or `memory://`), `sqlite::memory:`, `sqlite://path`,
/// `sqlite:///abs/path`, or `postgres://user:password@host:port/db` (`postgresql://` too).
///
/// An unknown scheme, or one whose store this build leaves out (features `sqlite`, `postgres`), is a
/// `configuration` error that shows the URL with its password masked.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(unused_variables))]
pub async fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    if url == "memory:" || url == "memory://" {
        return Ok(Arc::new(memory::MemoryStore::new()));
    }
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            let opts = sqlite::SqliteOptions {
                migrate: options.migrate,
                max_connections: options.max_connections,
                ..Default::default()
            };
            return Ok(Arc::new(sqlite::SqliteStore::connect(url, &opts).await?));
        }
        #[cfg(not(feature = "sqlite"))]
        return Err(left_out(url, "SQLite", "sqlite"));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let opts = postgres::PgOptions {
                migrate: options.migrate,
                max_connections: options.max_connections,
                ..Default::default()
            };
            return Ok(Arc::new(postgres::PgStore::connect(url, &opts).await?));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(left_out(url, "PostgreSQL", "postgres"));
    }
    Err(Error::Configuration(format!(
        "unsupported database url scheme in {:?}: expected memory:, sqlite:, postgres:",
        crate::url::redact(url)
    )))
}

/// The error for a URL whose store this build was compiled without.
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn left_out(url: &str, store: &str, feature: &str) -> Error {
    Error::Configuration(format!(
        "cannot open {:?}: this build has no {store} store (feature `{feature}`)",
        crate::url::redact(url)
    ))
}

/// Which backend a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Memory,
    Sqlite,
    Postgres,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Memory => "memory",
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        })
    }
}

/// Parameters of one claim.
#[derive(Debug, Clone)]
pub struct ClaimParams {
    pub worker_id: String,
    pub handler_keys: Vec<String>,
    pub limit: u32,
    pub now: Timestamp,
    pub lease_expires_at: Timestamp,
}

/// A step a claim took: the row as it is after the claim, the state it was claimed from, and the state
/// of its task at the time of the claim.
#[derive(Debug, Clone)]
pub struct ClaimedRow {
    pub step: Step,
    pub from_state: StepState,
    pub task_state: crate::state::TaskState,
}

/// What a claimed step needs beyond its own row: the task's context and its parents' results.
#[derive(Debug, Clone)]
pub struct ClaimInput {
    pub step_id: Uuid,
    pub namespace: String,
    pub task_name: String,
    pub context: Value,
    /// Results of the parents, by step name (`null` for a parent without a result).
    pub dependency_results: Map<String, Value>,
}

/// Pool figures for health reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

/// Where a reader of the event feed stands. Made and read by one store; the engine only hands it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedCursor {
    /// PostgreSQL: the `pg_snapshot` of the previous read, as text.
    Snapshot(String),
    /// SQLite: the highest `seq` read from each transition table.
    Seq { task: i64, step: i64 },
}

/// The transition rows that became visible between two feed reads, each step row with its step's name. The
/// store returns them in no particular order; the engine orders them (see [`crate::events`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedBatch {
    pub steps: Vec<(StepTransition, Option<String>)>,
    pub tasks: Vec<TaskTransition>,
}

/// A backend that keeps templates, tasks, steps, edges and the two transition tables.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    fn kind(&self) -> StoreKind;

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`); on
    /// PostgreSQL, row locks are taken by the `*_lock` methods. Dropping it without commit rolls back.
    async fn begin(&self) -> Result<Box<dyn StoreTx>>;

    /// A real round trip to the backend.
    async fn ping(&self) -> Result<()>;

    fn pool_stats(&self) -> PoolStats;

    /// Releases connections; later calls fail.
    async fn close(&self);

    /// Hands the store the engine's wake-up signal. A store shared by several processes (PostgreSQL) listens
    /// for the notifications that [`StoreTx::notify_work`] sends and calls `notify_waiters` on each, so idle
    /// workers everywhere claim at once. Stores of one process need do nothing: the engine wakes its own
    /// workers after each commit.
    fn attach_wakeups(&self, _work: std::sync::Arc<tokio::sync::Notify>) {}

    /// Whether other processes can commit to this store, so that subscriptions read events back from it (the
    /// event feed) instead of hearing only this process's commits. The memory store is one process by nature.
    fn has_feed(&self) -> bool {
        false
    }

    /// The feed's position now: a [`Store::feed_read`] from it returns exactly the rows committed after this
    /// call began (and none committed before it returned).
    async fn feed_position(&self) -> Result<FeedCursor> {
        Err(Error::Internal(format!("the {} store has no event feed", self.kind())))
    }

    /// The transition rows committed after `after` and visible now, and the position after them. Every
    /// committed row is returned by exactly one read of a chain of cursors, however far apart the reads are.
    async fn feed_read(&self, _after: &FeedCursor) -> Result<(FeedBatch, FeedCursor)> {
        Err(Error::Internal(format!("the {} store has no event feed", self.kind())))
    }

    async fn template_list(&self, namespace: Option<&str>, name: Option<&str>) -> Result<Vec<TemplateRecord>>;
    async fn template_by_id(&self, id: Uuid) -> Result<Option<TemplateRecord>>;

    async fn task_get(&self, id: Uuid) -> Result<Option<Task>>;
    /// Newest first (by id), filtered and paged as [`TaskFilter`] says.
    async fn task_list(&self, filter: &TaskFilter) -> Result<Vec<Task>>;

    async fn step_get(&self, id: Uuid) -> Result<Option<Step>>;
    /// The task of each given step, as (step id, task id); unknown steps are left out. Read without locks:
    /// a step's task never changes, so the engine uses this to lock tasks before their steps.
    async fn step_task_ids(&self, step_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>>;

    /// The steps of a task, by position.
    async fn step_list(&self, task_id: Uuid) -> Result<Vec<Step>>;
    async fn edge_list(&self, task_id: Uuid) -> Result<Vec<Edge>>;

    /// A task's transition rows, by sort key.
    async fn task_transition_list(&self, task_id: Uuid) -> Result<Vec<TaskTransition>>;
    /// The transition rows of every step of a task, by step then sort key.
    async fn step_transition_list(&self, task_id: Uuid) -> Result<Vec<StepTransition>>;
    /// How many step transitions with each event were written at or after `since`.
    async fn step_event_counts(&self, since: Timestamp) -> Result<Vec<(String, i64)>>;

    async fn state_counts(&self) -> Result<StateCounts>;
    /// Counts of the steps that reached `complete` or `error` with `finished_at` at or after `filter.since`,
    /// of the tasks `filter` names (namespace, name, version), and the durations of the completed ones with a
    /// start time (`finished_at - started_at`), with nearest-rank percentiles (crate::analytics). Computed in
    /// the store: memory use does not grow with the history.
    async fn step_finished_summary(&self, filter: &AnalyticsFilter) -> Result<FinishedSummary>;
    /// The same for tasks; a task's duration is `finished_at - created_at`.
    async fn task_finished_summary(&self, filter: &AnalyticsFilter) -> Result<FinishedSummary>;
    /// At most `limit` (at least 1) finished steps with a start time, as `step_finished_summary` selects
    /// them, longest duration first, ties by step id.
    async fn step_slowest(&self, filter: &AnalyticsFilter, limit: i64) -> Result<Vec<StepTiming>>;
    /// At most `limit` (at least 1) finished tasks, longest duration first, ties by task id.
    async fn task_slowest(&self, filter: &AnalyticsFilter, limit: i64) -> Result<Vec<TaskTiming>>;

    /// The earliest `next_attempt_at` among `waiting_for_retry` steps with these handler keys whose task
    /// is runnable; how long an idle worker may sleep.
    async fn next_retry_at(&self, handler_keys: &[String]) -> Result<Option<Timestamp>>;

    /// How many steps of each of these concurrency keys are `in_progress` now, as (key, count); a key with
    /// none running is left out. What `explain` tells of a keyed step's slot.
    async fn step_running_counts(&self, keys: &[String]) -> Result<Vec<(String, i64)>>;

    /// The store's own clock, for a store that several machines share (PostgreSQL: the server's
    /// `clock_timestamp()`); `None` for a store whose clock is this machine's.
    /// Every schedule, by name.
    async fn schedule_list(&self) -> Result<Vec<Schedule>>;
    async fn schedule_get(&self, name: &str) -> Result<Option<Schedule>>;
    /// The earliest next occurrence of a schedule that is not paused.
    async fn schedule_next_fire_at(&self) -> Result<Option<Timestamp>>;

    async fn server_time(&self) -> Result<Option<Timestamp>> {
        Ok(None)
    }
}

/// One write transaction.
#[async_trait]
pub trait StoreTx: Send {
    /// Inserts a template version; a second row for the same (namespace, name, version) is a `conflict`.
    async fn template_insert(&mut self, rec: &TemplateRecord) -> Result<()>;
    async fn template_find(&mut self, namespace: &str, name: &str, version: &str) -> Result<Option<TemplateRecord>>;

    async fn task_find_by_idempotency_key(&mut self, namespace: &str, name: &str, key: &str) -> Result<Option<Task>>;
    /// Inserts a task with all its steps and edges.
    async fn task_insert(&mut self, task: &Task, steps: &[Step], edges: &[Edge]) -> Result<()>;
    /// Reads a task and locks it until the transaction ends.
    async fn task_lock(&mut self, id: Uuid) -> Result<Option<Task>>;
    /// Reads and locks the given tasks, in id order so that concurrent batches lock alike; unknown ids are
    /// left out. SQL stores do it in one statement.
    async fn task_lock_many(&mut self, ids: &[Uuid]) -> Result<Vec<Task>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = self.task_lock(id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Writes the state columns of many tasks: `state`, `steps_succeeded`, `steps_failed`,
    /// `transition_count`, `updated_at`, `started_at`, `finished_at`.
    async fn task_update_many(&mut self, tasks: &[Task]) -> Result<()> {
        for t in tasks {
            self.task_update(t).await?;
        }
        Ok(())
    }

    /// Writes every mutable column of a task.
    async fn task_update(&mut self, task: &Task) -> Result<()>;

    /// Reads a step and locks it until the transaction ends.
    async fn step_lock(&mut self, id: Uuid) -> Result<Option<Step>>;
    /// Reads and locks every step of a task, by position. Only operator actions use it, holding the task
    /// already. A store with row locks waits only briefly ([`OPERATOR_LOCK_WAIT`]) for a step another
    /// transaction holds (a claim in flight may hold one while it waits for this task) and then answers
    /// `None`: the transaction is then unusable and must be rolled back, which lets that claim through; the
    /// engine tries again (see `Engine::cancel_task`).
    async fn step_lock_all(&mut self, task_id: Uuid) -> Result<Option<Vec<Step>>>;
    /// Reads and locks the given steps, in id order; unknown ids are left out.
    async fn step_lock_many(&mut self, ids: &[Uuid]) -> Result<Vec<Step>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.step_lock(id).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Writes what an attempt changes on many steps: `state`, `attempts`, `max_attempts`,
    /// `next_attempt_at`, `lease_expires_at`, `worker_id`, `result`, `error`, `transition_count`,
    /// `updated_at`, `started_at`, `finished_at`. (`unfinished_parents` belongs to
    /// [`StoreTx::step_children_release_many`].)
    async fn step_update_many(&mut self, steps: &[Step]) -> Result<()> {
        for s in steps {
            self.step_update(s).await?;
        }
        Ok(())
    }

    /// Writes every mutable column of a step.
    async fn step_update(&mut self, step: &Step) -> Result<()>;

    /// Claims up to `limit` ready steps whose handler key is one of `handler_keys`, oldest id first.
    ///
    /// Lock order: everywhere else the engine locks a task before its steps. A claim cannot (it finds the
    /// steps first): it locks only the steps, skipping rows another transaction holds (`SKIP LOCKED`), and
    /// the engine then waits for the `pending` tasks it must start, in id order. Operator actions, which hold
    /// a task and then lock its steps, wait for them only briefly and then give the task back (see
    /// [`StoreTx::step_lock_all`]), so no cycle outlives that short wait.
    ///
    /// Ready means: state `pending` or `waiting_for_retry`, `unfinished_parents = 0`, `next_attempt_at`
    /// null or at or before `now`, and the task `pending` or `in_progress` (see [`crate::readiness`]).
    /// Each claimed step gets state `in_progress`, `attempts + 1`, `transition_count + 1`, the worker id,
    /// `lease_expires_at`, `started_at = now`, `next_attempt_at = null`, `updated_at = now`. The engine
    /// writes the transition row (its sort key is the new `transition_count`). The returned `Step` rows are
    /// as after the update.
    async fn step_claim(&mut self, params: &ClaimParams) -> Result<Vec<ClaimedRow>>;

    /// The context and parents' results of each given step, in the order asked for (an id given twice is
    /// answered once; steps that do not exist are left out). Read in the claim's own transaction, so that a
    /// claim whose inputs cannot be read rolls back instead of spending the attempt.
    async fn claim_inputs(&mut self, step_ids: &[Uuid]) -> Result<Vec<ClaimInput>>;

    /// Extends the lease of each step that is `in_progress` with `attempts` equal to the token's attempt;
    /// returns the tokens that were extended.
    async fn step_lease_extend(
        &mut self,
        tokens: &[ClaimToken],
        lease_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<ClaimToken>>;

    /// Locks and returns up to `limit` steps `in_progress` whose lease expired before `now`, locking their
    /// tasks too and skipping rows another transaction holds, as [`StoreTx::step_claim`] does.
    async fn step_lease_expired(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Step>>;

    /// Decrements `unfinished_parents` of every child of `parent_id` (setting `updated_at = now`) and
    /// returns the children whose count reached zero.
    async fn step_children_release(&mut self, parent_id: Uuid, now: Timestamp) -> Result<Vec<Uuid>>;

    /// [`StoreTx::step_children_release`] for many parents at once: each child's count drops by the number of
    /// its parents given. Returns the children whose count reached zero.
    async fn step_children_release_many(&mut self, parent_ids: &[Uuid], now: Timestamp) -> Result<Vec<Uuid>> {
        let mut out = Vec::new();
        for p in parent_ids {
            out.extend(self.step_children_release(*p, now).await?);
        }
        Ok(out)
    }

    /// Steps of the task that can still make progress without an operator: `in_progress`,
    /// `waiting_for_retry`, or `pending` with `unfinished_parents = 0`.
    async fn task_active_step_count(&mut self, task_id: Uuid) -> Result<i64>;

    async fn transitions_insert(&mut self, steps: &[StepTransition], tasks: &[TaskTransition]) -> Result<()>;

    /// Announces, on commit, that steps may have become ready (PostgreSQL: `NOTIFY`). Stores of one process
    /// may ignore it.
    async fn notify_work(&mut self) -> Result<()> {
        Ok(())
    }

    /// Takes the maintenance lock for the rest of the transaction, if no other process holds it; returns
    /// whether it was taken. One maintenance pass runs at a time across all processes sharing a store.
    async fn maintenance_lock(&mut self) -> Result<bool> {
        Ok(true)
    }

    /// How many `waiting_for_retry` steps, of runnable tasks, fell due in `(after, until]`.
    async fn step_retries_due(&mut self, after: Timestamp, until: Timestamp) -> Result<i64>;

    /// Locks a schedule for update.
    async fn schedule_lock(&mut self, name: &str) -> Result<Option<Schedule>>;
    /// Inserts or replaces a schedule (by name).
    async fn schedule_put(&mut self, schedule: &Schedule) -> Result<()>;
    /// Deletes a schedule; false when there was none.
    async fn schedule_delete(&mut self, name: &str) -> Result<bool>;
    /// Locks up to `limit` schedules whose next occurrence has come by `now`, earliest first, skipping
    /// those another transaction holds (it is firing them).
    async fn schedules_lock_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>>;

    async fn commit(self: Box<Self>) -> Result<()>;

    /// Rolls back now. Dropping a transaction also rolls back, but some drivers do it later in the
    /// background, and until then its row locks make claims skip rows; the engine always calls this.
    async fn rollback(self: Box<Self>) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[tokio::test]
    async fn open_picks_the_store_by_scheme() {
        let opts = StoreOptions::default();
        for url in ["memory:", "memory://"] {
            assert_eq!(open(url, &opts).await.unwrap().kind(), StoreKind::Memory, "{url}");
        }
        #[cfg(feature = "sqlite")]
        assert_eq!(open("sqlite::memory:", &opts).await.unwrap().kind(), StoreKind::Sqlite);
        // A postgres URL goes to the PostgreSQL store, which finds nothing to talk to on a closed port.
        #[cfg(feature = "postgres")]
        {
            let err = open("postgresql://u:hunter2@127.0.0.1:1/db", &opts).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Database, "{err}");
            assert!(err.to_string().contains("cannot connect to postgres"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    /// Run by `cargo test -p tasker-core --no-default-features --lib`.
    #[cfg(not(all(feature = "sqlite", feature = "postgres")))]
    #[tokio::test]
    async fn a_store_left_out_of_the_build_is_a_configuration_error_without_the_password() {
        #[cfg(not(feature = "sqlite"))]
        let url = "sqlite://u:hunter2@x.db";
        #[cfg(all(feature = "sqlite", not(feature = "postgres")))]
        let url = "postgres://u:hunter2@h/db";
        let err = open(url, &StoreOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("this build has no") && msg.contains("store (feature `"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[tokio::test]
    async fn unknown_schemes_are_configuration_errors_without_the_password() {
        for url in [
            "mysql://root:hunter2@db/x",
            "memory:extra",
            "postgres:/u:hunter2@h/db",
            "",
        ] {
            let err = open(url, &StoreOptions::default()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Configuration, "{url}: {err}");
            let msg = err.to_string();
            assert!(msg.contains("unsupported database url scheme"), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
    }
}

/// Rows for the store tests, shared by every store so that each tests the same data.
#[cfg(all(test, any(feature = "sqlite", feature = "postgres")))]
pub(crate) mod fixtures {
    use chrono::TimeDelta;
    use serde_json::{json, Value};
    use uuid::Uuid;

    use super::{ClaimParams, Store};
    use crate::clock::{to_millis_precision, Timestamp};
    use crate::error::ErrorKind;
    use crate::model::*;
    use crate::retry::RetryPolicy;
    use crate::state::{StepEvent, TaskEvent};
    use crate::state::{StepState, TaskState};
    use crate::template::Template;

    pub(crate) fn now() -> Timestamp {
        to_millis_precision(chrono::Utc::now())
    }

    pub(crate) fn template_record(namespace: &str, name: &str, version: &str) -> TemplateRecord {
        let text = format!(
            "namespace: {namespace}\nname: {name}\nversion: {version}\nsteps:\n  - name: a\n    handler: k.a\n  \
             - name: b\n    handler: k.b\n    depends_on: [a]\n"
        );
        let template = Template::parse(&text).expect("valid template");
        TemplateRecord {
            id: Uuid::now_v7(),
            namespace: namespace.into(),
            name: name.into(),
            version: version.into(),
            content_hash: template.content_hash(),
            template,
            created_at: now(),
        }
    }

    pub(crate) fn task_row(tpl: &TemplateRecord, state: TaskState, at: Timestamp) -> Task {
        Task {
            id: Uuid::now_v7(),
            template_id: tpl.id,
            namespace: tpl.namespace.clone(),
            name: tpl.name.clone(),
            version: tpl.version.clone(),
            state,
            context: json!({"account_id": 42, "nested": {"list": [1, 2.5, "x", null]}, "big": 9007199254740993_u64}),
            tags: json!({"env": "test"}),
            idempotency_key: None,
            initiator: Some("tests".into()),
            source_system: None,
            reason: None,
            steps_total: 0,
            steps_succeeded: 0,
            steps_failed: 0,
            transition_count: 1,
            created_at: at,
            updated_at: at,
            started_at: None,
            finished_at: None,
            priority: 0,
            run_at: None,
            held_until: None,
        }
    }

    pub(crate) fn step_row(task: &Task, name: &str, handler_key: &str, position: i32, unfinished_parents: i64) -> Step {
        Step {
            id: Uuid::now_v7(),
            task_id: task.id,
            name: name.into(),
            handler_key: handler_key.into(),
            position,
            state: StepState::Pending,
            attempts: 0,
            max_attempts: 3,
            retry: RetryPolicy::default(),
            timeout_seconds: 300,
            config: json!({"page_size": 200}),
            unfinished_parents,
            next_attempt_at: None,
            lease_expires_at: None,
            worker_id: None,
            result: None,
            error: None,
            transition_count: 1,
            created_at: task.created_at,
            updated_at: task.created_at,
            started_at: None,
            finished_at: None,
            priority: task.priority,
            ready_at: task.created_at,
            concurrency_key: None,
            concurrency_limit: None,
        }
    }

    pub(crate) fn edge(task: &Task, parent: &Step, child: &Step) -> Edge {
        Edge {
            task_id: task.id,
            parent_id: parent.id,
            child_id: child.id,
        }
    }

    /// Inserts a template (unless present) and a task with the given steps and edges, committed.
    /// Reads claim inputs in a transaction of their own, rolled back.
    pub(crate) async fn claim_inputs(store: &dyn Store, ids: &[Uuid]) -> Vec<super::ClaimInput> {
        let mut tx = store.begin().await.unwrap();
        let inputs = tx.claim_inputs(ids).await.unwrap();
        tx.rollback().await.unwrap();
        inputs
    }

    pub(crate) async fn seed(store: &dyn Store, tpl: &TemplateRecord, task: &Task, steps: &[Step], edges: &[Edge]) {
        let mut tx = store.begin().await.unwrap();
        if tx
            .template_find(&tpl.namespace, &tpl.name, &tpl.version)
            .await
            .unwrap()
            .is_none()
        {
            tx.template_insert(tpl).await.unwrap();
        }
        tx.task_insert(task, steps, edges).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Shared by every store's tests: the same rows, the same expectations.
    pub(crate) async fn check_task_steps_and_edges_round_trip(store: &dyn Store) {
        let t0 = now();
        let tpl = template_record("billing", "invoice_sync", "1.2.0");
        let mut task = task_row(&tpl, TaskState::InProgress, t0);
        task.idempotency_key = Some("inv-42".into());
        task.reason = Some("because".into());
        task.started_at = Some(t0 + TimeDelta::milliseconds(5));
        task.steps_total = 3;

        let mut a = step_row(&task, "fetch", "billing.fetch", 0, 0);
        a.state = StepState::Complete;
        a.attempts = 1;
        a.result = Some(json!({"invoices": [1, 2, 3], "ratio": 0.1, "tiny": 1e-7}));
        a.worker_id = Some("w-1".into());
        a.started_at = Some(t0);
        a.finished_at = Some(t0 + TimeDelta::milliseconds(250));
        let mut b = step_row(&task, "normalize", "billing.normalize", 1, 0);
        b.state = StepState::WaitingForRetry;
        b.attempts = 1;
        b.result = Some(Value::Null);
        b.next_attempt_at = Some(t0 + TimeDelta::seconds(2));
        b.lease_expires_at = Some(t0 + TimeDelta::seconds(30));
        b.error = Some(StepErrorInfo {
            error_class: "Net::ReadTimeout".into(),
            message: "timed out: 'quoted' \"and\" ünïcødé".into(),
            backtrace: vec!["a.rb:1".into(), "b.rb:2".into()],
            code: Some("E42".into()),
            retryable: true,
        });
        b.retry = RetryPolicy {
            max_attempts: 5,
            retryable: true,
            jitter: 0.25,
            ..RetryPolicy::default()
        };
        let c = step_row(&task, "post", "billing.post", 2, 2);
        let steps = vec![a.clone(), b.clone(), c.clone()];
        // Given in an order that is neither parent nor child order: edge_list keeps it.
        let edges = vec![edge(&task, &b, &c), edge(&task, &a, &b), edge(&task, &a, &c)];
        seed(store, &tpl, &task, &steps, &edges).await;

        assert_eq!(store.task_get(task.id).await.unwrap(), Some(task.clone()));
        assert_eq!(store.step_list(task.id).await.unwrap(), steps);
        assert_eq!(store.edge_list(task.id).await.unwrap(), edges);
        assert_eq!(store.step_get(b.id).await.unwrap(), Some(b.clone()));
        assert_eq!(store.template_by_id(tpl.id).await.unwrap(), Some(tpl.clone()));
        assert_eq!(
            store.template_list(Some("billing"), None).await.unwrap(),
            vec![tpl.clone()]
        );
        assert!(store.template_list(Some("other"), None).await.unwrap().is_empty());
        assert_eq!(store.task_get(Uuid::now_v7()).await.unwrap(), None);

        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.template_find("billing", "invoice_sync", "1.2.0").await.unwrap(),
            Some(tpl.clone())
        );
        assert_eq!(
            tx.task_find_by_idempotency_key("billing", "invoice_sync", "inv-42")
                .await
                .unwrap(),
            Some(task.clone())
        );
        assert_eq!(tx.task_lock(task.id).await.unwrap(), Some(task.clone()));
        assert_eq!(tx.step_lock_all(task.id).await.unwrap(), Some(steps));
        assert_eq!(tx.step_lock(a.id).await.unwrap(), Some(a.clone()));

        // A second task with the same idempotency key is a conflict that leaves the transaction usable; tasks
        // without a key never collide.
        let mut dup = task_row(&tpl, TaskState::Pending, t0);
        dup.idempotency_key = Some("inv-42".into());
        let err = tx.task_insert(&dup, &[], &[]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        tx.task_insert(&task_row(&tpl, TaskState::Pending, t0), &[], &[])
            .await
            .unwrap();
        tx.task_insert(&task_row(&tpl, TaskState::Pending, t0), &[], &[])
            .await
            .unwrap();

        // Updates write every mutable column.
        let mut task2 = task.clone();
        task2.state = TaskState::Complete;
        task2.finished_at = Some(t0 + TimeDelta::seconds(3));
        task2.steps_succeeded = 3;
        task2.transition_count = 4;
        task2.context = json!({"changed": true});
        tx.task_update(&task2).await.unwrap();
        let mut c2 = c.clone();
        c2.state = StepState::Error;
        c2.unfinished_parents = 0;
        c2.error = Some(StepErrorInfo {
            error_class: "PermanentError".into(),
            message: "no".into(),
            backtrace: vec![],
            code: None,
            retryable: false,
        });
        c2.max_attempts = 6;
        c2.result = Some(json!("partial"));
        tx.step_update(&c2).await.unwrap();
        let missing = task_row(&tpl, TaskState::Pending, t0);
        assert_eq!(tx.task_update(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(
            tx.step_update(&step_row(&missing, "x", "k", 0, 0))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        tx.commit().await.unwrap();
        assert_eq!(store.task_get(task.id).await.unwrap(), Some(task2));
        assert_eq!(store.step_get(c.id).await.unwrap(), Some(c2));
    }

    /// Shared by every store's tests: the same rows, the same expectations.
    pub(crate) async fn check_claim_takes_only_ready_steps(store: &dyn Store) {
        let t0 = now();
        let tpl = template_record("ns", "t", "1.0.0");
        let task = task_row(&tpl, TaskState::InProgress, t0);
        let ready_pending = step_row(&task, "ready_pending", "k.a", 0, 0);
        let blocked = step_row(&task, "blocked", "k.a", 1, 1);
        let mut not_due = step_row(&task, "not_due", "k.a", 2, 0);
        not_due.state = StepState::WaitingForRetry;
        not_due.attempts = 1;
        not_due.next_attempt_at = Some(t0 + TimeDelta::seconds(1));
        not_due.ready_at = t0 + TimeDelta::seconds(1);
        let mut due = step_row(&task, "due", "k.a", 3, 0);
        due.state = StepState::WaitingForRetry;
        due.attempts = 1;
        due.next_attempt_at = Some(t0);
        due.worker_id = Some("old".into());
        let other_key = step_row(&task, "other_key", "k.other", 4, 0);
        let mut done = step_row(&task, "done", "k.a", 5, 0);
        done.state = StepState::Complete;
        let mut running = step_row(&task, "running", "k.a", 6, 0);
        running.state = StepState::InProgress;
        let also_ready = step_row(&task, "also_ready", "k.b", 7, 0);
        seed(
            store,
            &tpl,
            &task,
            &[
                ready_pending.clone(),
                blocked.clone(),
                not_due.clone(),
                due.clone(),
                other_key.clone(),
                done.clone(),
                running.clone(),
                also_ready.clone(),
            ],
            &[],
        )
        .await;
        // A cancelled task's ready-looking step is never claimed.
        let cancelled = task_row(&tpl, TaskState::Cancelled, t0);
        let orphan = step_row(&cancelled, "orphan", "k.a", 0, 0);
        seed(store, &tpl, &cancelled, std::slice::from_ref(&orphan), &[]).await;
        let pending_task = task_row(&tpl, TaskState::Pending, t0);
        let fresh = step_row(&pending_task, "fresh", "k.a", 0, 0);
        seed(store, &tpl, &pending_task, std::slice::from_ref(&fresh), &[]).await;

        assert_eq!(store.next_retry_at(&["k.a".into()]).await.unwrap(), Some(t0));
        assert_eq!(store.next_retry_at(&["k.other".into()]).await.unwrap(), None);
        assert_eq!(store.next_retry_at(&[]).await.unwrap(), None);

        let params = |limit: u32, keys: &[&str]| ClaimParams {
            worker_id: "w-1".into(),
            handler_keys: keys.iter().map(|k| k.to_string()).collect(),
            limit,
            now: t0,
            lease_expires_at: t0 + TimeDelta::seconds(30),
        };

        let mut tx = store.begin().await.unwrap();
        assert!(tx.step_claim(&params(10, &[])).await.unwrap().is_empty());
        assert!(tx.step_claim(&params(0, &["k.a"])).await.unwrap().is_empty());
        let first = tx.step_claim(&params(1, &["k.a", "k.b"])).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].step.id, ready_pending.id);
        assert_eq!(first[0].from_state, StepState::Pending);
        assert_eq!(first[0].task_state, TaskState::InProgress);
        let rest = tx.step_claim(&params(10, &["k.a", "k.b"])).await.unwrap();
        tx.commit().await.unwrap();

        let ids: Vec<Uuid> = rest.iter().map(|r| r.step.id).collect();
        assert_eq!(
            ids,
            vec![due.id, also_ready.id, fresh.id],
            "oldest id first, only ready steps"
        );
        assert_eq!(rest[0].from_state, StepState::WaitingForRetry);
        assert_eq!(rest[2].task_state, TaskState::Pending);

        let claimed = &rest[0].step;
        let mut expected = due.clone();
        expected.state = StepState::InProgress;
        expected.attempts = 2;
        expected.transition_count = 2;
        expected.worker_id = Some("w-1".into());
        expected.lease_expires_at = Some(t0 + TimeDelta::seconds(30));
        expected.started_at = Some(t0);
        expected.next_attempt_at = None;
        expected.updated_at = t0;
        assert_eq!(*claimed, expected);
        assert_eq!(store.step_get(due.id).await.unwrap(), Some(expected));

        for untouched in [&blocked, &not_due, &other_key, &done, &running, &orphan] {
            assert_eq!(
                store.step_get(untouched.id).await.unwrap().as_ref(),
                Some(untouched),
                "{}",
                untouched.name
            );
        }
        let mut tx = store.begin().await.unwrap();
        assert!(tx.step_claim(&params(10, &["k.a", "k.b"])).await.unwrap().is_empty());
        // Once due, the waiting step is claimable.
        let later = ClaimParams {
            now: t0 + TimeDelta::seconds(1),
            ..params(10, &["k.a"])
        };
        let got = tx.step_claim(&later).await.unwrap();
        assert_eq!(got.iter().map(|r| r.step.id).collect::<Vec<_>>(), vec![not_due.id]);
        tx.commit().await.unwrap();
    }

    /// Shared by every store's tests: claims take the highest priority, then the oldest ready time, then
    /// the oldest id; a held task's root steps wait for its start time, and the first claim at or after it
    /// releases them (clearing the hold), whatever handler keys that claim asks for.
    pub(crate) async fn check_claim_order_and_holds(store: &dyn Store) {
        let t0 = now();
        let tpl = template_record("ns", "t", "1.0.0");
        let task = task_row(&tpl, TaskState::Pending, t0);
        let mut low_old = step_row(&task, "low_old", "k.a", 0, 0);
        low_old.priority = -5;
        low_old.ready_at = t0 - TimeDelta::seconds(60);
        let mut high_late = step_row(&task, "high_late", "k.b", 1, 0);
        high_late.priority = 7;
        let mut high_early = step_row(&task, "high_early", "k.a", 2, 0);
        high_early.priority = 7;
        high_early.ready_at = t0 - TimeDelta::seconds(1);
        let plain_first = step_row(&task, "plain_first", "k.a", 3, 0);
        let plain_second = step_row(&task, "plain_second", "k.b", 4, 0);
        let mut retry_due = step_row(&task, "retry_due", "k.a", 5, 0);
        retry_due.state = StepState::WaitingForRetry;
        retry_due.attempts = 1;
        retry_due.next_attempt_at = Some(t0 - TimeDelta::seconds(2));
        retry_due.ready_at = t0 - TimeDelta::seconds(2);
        let all = [
            &low_old,
            &high_late,
            &high_early,
            &plain_first,
            &plain_second,
            &retry_due,
        ];
        seed(store, &tpl, &task, &all.map(|s| s.clone()), &[]).await;

        // A task held until t0 + 5 s: its root waits for that time as for a parent; its child waits for the root.
        let mut held = task_row(&tpl, TaskState::Pending, t0);
        held.run_at = Some(t0 + TimeDelta::seconds(5));
        held.held_until = held.run_at;
        held.priority = 100;
        let mut root = step_row(&held, "root", "k.a", 0, 1);
        root.ready_at = t0 + TimeDelta::seconds(5);
        let child = step_row(&held, "child", "k.a", 1, 1);
        seed(
            store,
            &tpl,
            &held,
            &[root.clone(), child.clone()],
            &[edge(&held, &root, &child)],
        )
        .await;

        assert_eq!(
            store.next_retry_at(&["k.other".into()]).await.unwrap(),
            Some(t0 + TimeDelta::seconds(5)),
            "a hold wakes workers of any key"
        );
        let params = |limit: u32, keys: &[&str], at: Timestamp| ClaimParams {
            worker_id: "w-1".into(),
            handler_keys: keys.iter().map(|k| k.to_string()).collect(),
            limit,
            now: at,
            lease_expires_at: at + TimeDelta::seconds(30),
        };
        let mut tx = store.begin().await.unwrap();
        let got = tx.step_claim(&params(3, &["k.a", "k.b"], t0)).await.unwrap();
        assert_eq!(
            got.iter().map(|r| r.step.name.as_str()).collect::<Vec<_>>(),
            ["high_early", "high_late", "retry_due"],
            "priority first, then ready time"
        );
        let got = tx.step_claim(&params(10, &["k.a", "k.b"], t0)).await.unwrap();
        assert_eq!(
            got.iter().map(|r| r.step.name.as_str()).collect::<Vec<_>>(),
            ["plain_first", "plain_second", "low_old"],
            "equal priority and ready time: oldest id first; the held task's steps are not claimable"
        );
        tx.commit().await.unwrap();
        assert_eq!(
            store.task_get(held.id).await.unwrap().unwrap().held_until,
            held.held_until
        );

        // The first claim after the start time releases the root (of a key it did not even ask for)...
        let at = t0 + TimeDelta::seconds(5);
        let mut tx = store.begin().await.unwrap();
        assert!(tx.step_claim(&params(10, &["k.other"], at)).await.unwrap().is_empty());
        tx.commit().await.unwrap();
        let task_now = store.task_get(held.id).await.unwrap().unwrap();
        assert_eq!(task_now.held_until, None);
        assert_eq!(task_now.run_at, held.run_at);
        let root_now = store.step_get(root.id).await.unwrap().unwrap();
        assert_eq!((root_now.unfinished_parents, root_now.ready_at), (0, at));
        assert_eq!(store.step_get(child.id).await.unwrap().unwrap().unfinished_parents, 1);
        // ... and a claim of its key takes it.
        let mut tx = store.begin().await.unwrap();
        let got = tx.step_claim(&params(10, &["k.a"], at)).await.unwrap();
        assert_eq!(got.iter().map(|r| r.step.id).collect::<Vec<_>>(), vec![root.id]);
        tx.commit().await.unwrap();
        assert_eq!(store.next_retry_at(&["k.other".into()]).await.unwrap(), None);

        // A claim of the key releases and takes in one call.
        let mut held2 = task_row(&tpl, TaskState::Pending, t0);
        held2.held_until = Some(at);
        let root2 = step_row(&held2, "root", "k.c", 0, 1);
        seed(store, &tpl, &held2, std::slice::from_ref(&root2), &[]).await;
        let mut tx = store.begin().await.unwrap();
        let got = tx.step_claim(&params(10, &["k.c"], at)).await.unwrap();
        assert_eq!(got.iter().map(|r| r.step.id).collect::<Vec<_>>(), vec![root2.id]);
        tx.commit().await.unwrap();
    }

    /// Shared by every store's tests: the same rows, the same expectations.
    pub(crate) async fn check_leases_children_counts_and_transitions(store: &dyn Store) {
        let t0 = now();
        let tpl = template_record("ns", "t", "1.0.0");
        let task = task_row(&tpl, TaskState::InProgress, t0);
        let a = step_row(&task, "a", "k.a", 0, 0);
        let b = step_row(&task, "b", "k.b", 1, 1);
        let c = step_row(&task, "c", "k.c", 2, 2);
        let d = step_row(&task, "d", "k.d", 3, 1);
        let edges = vec![
            edge(&task, &a, &b),
            edge(&task, &a, &c),
            edge(&task, &b, &c),
            edge(&task, &a, &d),
        ];
        seed(
            store,
            &tpl,
            &task,
            &[a.clone(), b.clone(), c.clone(), d.clone()],
            &edges,
        )
        .await;

        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.task_active_step_count(task.id).await.unwrap(), 1);
        let claim = ClaimParams {
            worker_id: "w".into(),
            handler_keys: vec!["k.a".into()],
            limit: 5,
            now: t0,
            lease_expires_at: t0 + TimeDelta::seconds(10),
        };
        let claimed = tx.step_claim(&claim).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let good = ClaimToken {
            step_id: a.id,
            attempt: 1,
        };
        let stale = ClaimToken {
            step_id: a.id,
            attempt: 7,
        };
        let unknown = ClaimToken {
            step_id: b.id,
            attempt: 0,
        };
        let later = t0 + TimeDelta::seconds(20);
        let extended = tx.step_lease_extend(&[good, stale, unknown], later, t0).await.unwrap();
        assert_eq!(extended, vec![good]);
        assert!(tx.step_lease_extend(&[], later, t0).await.unwrap().is_empty());
        assert!(tx.step_lease_expired(later, 10).await.unwrap().is_empty());
        let expired = tx
            .step_lease_expired(later + TimeDelta::milliseconds(1), 10)
            .await
            .unwrap();
        assert_eq!(expired.iter().map(|s| s.id).collect::<Vec<_>>(), vec![a.id]);
        assert_eq!(expired[0].lease_expires_at, Some(later));
        assert!(tx
            .step_lease_expired(later + TimeDelta::milliseconds(1), 0)
            .await
            .unwrap()
            .is_empty());

        let mut released = tx.step_children_release(a.id, later).await.unwrap();
        released.sort();
        let mut expect = vec![b.id, d.id];
        expect.sort();
        assert_eq!(released, expect);
        assert_eq!(tx.step_lock(c.id).await.unwrap().unwrap().unfinished_parents, 1);
        assert_eq!(tx.step_lock(c.id).await.unwrap().unwrap().updated_at, later);
        assert_eq!(tx.step_children_release(b.id, later).await.unwrap(), vec![c.id]);
        assert!(tx.step_children_release(d.id, later).await.unwrap().is_empty());
        // a in_progress, b, c and d pending with no unfinished parents.
        assert_eq!(tx.task_active_step_count(task.id).await.unwrap(), 4);

        let st = StepTransition {
            id: Uuid::now_v7(),
            step_id: a.id,
            task_id: task.id,
            from_state: Some(StepState::Pending),
            to_state: StepState::InProgress,
            event: Some(StepEvent::Claim),
            attempt: 1,
            worker_id: Some("w".into()),
            metadata: json!({"k": 1}),
            sort_key: 2,
            created_at: t0,
        };
        let st0 = StepTransition {
            id: Uuid::now_v7(),
            from_state: None,
            to_state: StepState::Pending,
            event: None,
            attempt: 0,
            worker_id: None,
            metadata: json!({}),
            sort_key: 1,
            ..st.clone()
        };
        let tt = TaskTransition {
            id: Uuid::now_v7(),
            task_id: task.id,
            from_state: Some(TaskState::Pending),
            to_state: TaskState::InProgress,
            event: Some(TaskEvent::Start),
            metadata: json!(null),
            sort_key: 2,
            created_at: t0,
        };
        tx.transitions_insert(&[st.clone(), st0.clone()], std::slice::from_ref(&tt))
            .await
            .unwrap();
        tx.transitions_insert(&[], &[]).await.unwrap();
        tx.commit().await.unwrap();

        assert_eq!(store.step_transition_list(task.id).await.unwrap(), vec![st0, st]);
        assert_eq!(store.task_transition_list(task.id).await.unwrap(), vec![tt]);
        assert_eq!(
            store.step_event_counts(t0).await.unwrap(),
            vec![("claim".to_string(), 1)]
        );
        assert!(store
            .step_event_counts(t0 + TimeDelta::milliseconds(1))
            .await
            .unwrap()
            .is_empty());

        let inputs = claim_inputs(store, &[c.id, Uuid::now_v7(), a.id, c.id]).await;
        assert_eq!(inputs.len(), 2);
        assert_eq!(inputs[0].step_id, c.id);
        assert_eq!(inputs[0].namespace, "ns");
        assert_eq!(inputs[0].task_name, "t");
        assert_eq!(inputs[0].context, task.context);
        assert_eq!(
            Value::Object(inputs[0].dependency_results.clone()),
            json!({"a": null, "b": null})
        );
        assert!(inputs[1].dependency_results.is_empty());
        assert!(claim_inputs(store, &[]).await.is_empty());

        let counts = store.state_counts().await.unwrap();
        assert_eq!(counts.tasks.get(&TaskState::InProgress), Some(&1));
        assert_eq!(counts.steps.get(&StepState::Pending), Some(&3));
        assert_eq!(counts.steps.get(&StepState::InProgress), Some(&1));
        assert_eq!(counts.steps_exhausted, 0);

        // Results reach the children by parent name.
        let mut tx = store.begin().await.unwrap();
        let mut a_done = tx.step_lock(a.id).await.unwrap().unwrap();
        a_done.state = StepState::Complete;
        a_done.result = Some(json!({"rows": [1, 2]}));
        tx.step_update(&a_done).await.unwrap();
        tx.commit().await.unwrap();
        let inputs = claim_inputs(store, &[c.id]).await;
        assert_eq!(
            Value::Object(inputs[0].dependency_results.clone()),
            json!({"a": {"rows": [1, 2]}, "b": null})
        );
    }

    /// Shared by every store's tests: the same rows, the same expectations.
    pub(crate) async fn check_lists_and_counts(store: &dyn Store) {
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
            seed(store, tpl, &task, &[s], &[]).await;
            tasks.push(task);
        }
        let mut running = task_row(&v1, TaskState::InProgress, t0);
        running.steps_total = 1;
        seed(store, &v1, &running, &[step_row(&running, "a", "k.a", 0, 0)], &[]).await;

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

        let counts = store.state_counts().await.unwrap();
        assert_eq!(counts.tasks.get(&TaskState::Complete), Some(&4));
        assert_eq!(counts.tasks.get(&TaskState::InProgress), Some(&1));
        assert_eq!(counts.steps.get(&StepState::Complete), Some(&3));
        assert_eq!(counts.steps.get(&StepState::Pending), Some(&1));
        assert_eq!(counts.steps_exhausted, 1);
    }

    /// Shared by every store's tests: counts, exact nearest-rank percentiles, the window and the task filters of
    /// the finished-work summaries and the slowest lists, on one known data set.
    pub(crate) async fn check_finished_summaries_and_slowest(store: &dyn Store) {
        let t0 = now();
        let ms = TimeDelta::milliseconds;
        let v1 = template_record("ns", "t", "1.0.0");
        let v2 = template_record("ns", "t", "2.0.0");
        let other = template_record("other", "u", "1.0.0");
        let finished_step = |task: &Task, name: &str, state: StepState, took: Option<i64>| {
            let mut s = step_row(task, name, "k.a", 0, 0);
            s.state = state;
            s.attempts = 1;
            s.started_at = took.map(|_| task.created_at);
            s.finished_at = Some(task.created_at + ms(took.unwrap_or(1)));
            s
        };
        let finished_task = |tpl: &TemplateRecord, state: TaskState, created: Timestamp, took: i64| {
            let mut t = task_row(tpl, state, created);
            t.finished_at = Some(created + ms(took));
            t
        };
        // ns/t@1.0.0: 20 completed steps of 10..=200 ms, in an order unrelated to their ids; the task took 5 s.
        let a = finished_task(&v1, TaskState::Complete, t0, 5_000);
        let a_steps: Vec<Step> = (0..20)
            .map(|i| finished_step(&a, &format!("s{i}"), StepState::Complete, Some((i * 7 % 20 + 1) * 10)))
            .collect();
        seed(store, &v1, &a, &a_steps, &[]).await;
        // ns/t@2.0.0: 1, 3 and 2 s; the task took 9 s.
        let b = finished_task(&v2, TaskState::Complete, t0, 9_000);
        let b_steps: Vec<Step> = [1_000, 3_000, 2_000]
            .into_iter()
            .enumerate()
            .map(|(i, d)| finished_step(&b, &format!("s{i}"), StepState::Complete, Some(d)))
            .collect();
        seed(store, &v2, &b, &b_steps, &[]).await;
        // other/u@1.0.0, failed after 1 s: a step that failed after 50 s (a duration for the slowest list, not
        // for the percentiles) and a completed step with no start time (counted, no duration).
        let c = finished_task(&other, TaskState::Error, t0, 1_000);
        let c_failed = finished_step(&c, "x", StepState::Error, Some(50_000));
        let c_steps = vec![c_failed.clone(), finished_step(&c, "y", StepState::Complete, None)];
        seed(store, &other, &c, &c_steps, &[]).await;
        // ns/t@1.0.0 long ago: outside a window that starts a minute before t0.
        let old = finished_task(&v1, TaskState::Complete, t0 - TimeDelta::hours(2), 3_600_000);
        let old_steps = vec![finished_step(&old, "s0", StepState::Complete, Some(99_999))];
        seed(store, &v1, &old, &old_steps, &[]).await;
        // Unfinished work counts nowhere.
        let mut running = task_row(&v1, TaskState::InProgress, t0);
        running.steps_total = 1;
        let mut busy = step_row(&running, "a", "k.a", 0, 0);
        busy.state = StepState::InProgress;
        busy.started_at = Some(t0);
        seed(store, &v1, &running, &[busy], &[]).await;

        let since = Some(t0 - TimeDelta::minutes(1));
        let f = |namespace: Option<&str>, name: Option<&str>, version: Option<&str>, since: Option<Timestamp>| {
            AnalyticsFilter {
                since,
                namespace: namespace.map(Into::into),
                name: name.map(Into::into),
                version: version.map(Into::into),
            }
        };
        let summary = |completed, failed, durations, sum_ms, p50_ms, p95_ms, max_ms| FinishedSummary {
            completed,
            failed,
            durations,
            sum_ms,
            p50_ms,
            p95_ms,
            max_ms,
        };
        let steps = |filter: AnalyticsFilter| async move { store.step_finished_summary(&filter).await.unwrap() };
        // 23 durations: 10..=200 and 1000, 2000, 3000. p50 is rank ceil(11.5) = 12, p95 rank ceil(21.85) = 22.
        assert_eq!(
            steps(f(None, None, None, since)).await,
            summary(24, 1, 23, 8_100, 120, 2_000, 3_000)
        );
        // With the old step, 24 durations: p50 rank 12, p95 rank ceil(22.8) = 23.
        assert_eq!(
            steps(f(None, None, None, None)).await,
            summary(25, 1, 24, 108_099, 120, 3_000, 99_999)
        );
        // Each filter narrows: 20 durations, p50 rank 10, p95 rank 19.
        assert_eq!(
            steps(f(Some("ns"), Some("t"), Some("1.0.0"), since)).await,
            summary(20, 0, 20, 2_100, 100, 190, 200)
        );
        assert_eq!(
            steps(f(None, None, Some("2.0.0"), None)).await,
            summary(3, 0, 3, 6_000, 2_000, 3_000, 3_000)
        );
        assert_eq!(
            steps(f(None, Some("t"), None, None)).await,
            summary(24, 0, 24, 108_099, 120, 3_000, 99_999)
        );
        assert_eq!(
            steps(f(Some("other"), None, None, since)).await,
            summary(1, 1, 0, 0, 0, 0, 0)
        );
        assert_eq!(
            steps(f(Some("ns' OR '1'='1"), None, None, None)).await,
            FinishedSummary::default()
        );

        let tasks = |filter: AnalyticsFilter| async move { store.task_finished_summary(&filter).await.unwrap() };
        assert_eq!(
            tasks(f(None, None, None, since)).await,
            summary(2, 1, 2, 14_000, 5_000, 9_000, 9_000)
        );
        assert_eq!(
            tasks(f(None, None, Some("1.0.0"), None)).await,
            summary(2, 1, 2, 3_605_000, 5_000, 3_600_000, 3_600_000)
        );
        assert_eq!(
            tasks(f(Some("ns"), Some("t"), Some("1.0.0"), None)).await,
            summary(2, 0, 2, 3_605_000, 5_000, 3_600_000, 3_600_000)
        );
        assert_eq!(
            tasks(f(None, Some("u"), None, since)).await,
            summary(0, 1, 0, 0, 0, 0, 0)
        );

        let slow_steps = |filter: AnalyticsFilter, limit| async move {
            store
                .step_slowest(&filter, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|s| (s.step_id, (s.finished_at - s.started_at.unwrap()).num_milliseconds()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            slow_steps(f(None, None, None, since), 3).await,
            vec![(c_failed.id, 50_000), (b_steps[1].id, 3_000), (b_steps[2].id, 2_000)]
        );
        assert_eq!(
            slow_steps(f(None, None, None, None), 1).await,
            vec![(old_steps[0].id, 99_999)]
        );
        assert_eq!(
            slow_steps(f(Some("ns"), None, None, since), 2).await,
            vec![(b_steps[1].id, 3_000), (b_steps[2].id, 2_000)]
        );
        let v1_slowest = slow_steps(f(Some("ns"), None, Some("1.0.0"), since), 2).await;
        assert_eq!(v1_slowest.iter().map(|(_, d)| *d).collect::<Vec<_>>(), vec![200, 190]);
        assert!(slow_steps(f(Some("other"), Some("t"), None, None), 5).await.is_empty());
        let full = store.step_slowest(&f(None, Some("u"), None, since), 5).await.unwrap();
        assert_eq!(full.len(), 1, "the step without a start time has no duration");
        assert_eq!(
            (
                full[0].namespace.as_str(),
                full[0].task_name.as_str(),
                full[0].version.as_str()
            ),
            ("other", "u", "1.0.0")
        );
        assert_eq!((full[0].step_name.as_str(), full[0].state), ("x", StepState::Error));

        let slow_tasks = |filter: AnalyticsFilter, limit| async move {
            store
                .task_slowest(&filter, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|t| (t.task_id, (t.finished_at - t.created_at).num_milliseconds()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            slow_tasks(f(None, None, None, since), 5).await,
            vec![(b.id, 9_000), (a.id, 5_000), (c.id, 1_000)]
        );
        assert_eq!(
            slow_tasks(f(None, None, Some("1.0.0"), None), 1).await,
            vec![(old.id, 3_600_000)]
        );
        assert_eq!(
            slow_tasks(f(Some("other"), None, None, None), 5).await,
            vec![(c.id, 1_000)]
        );
        assert!(slow_tasks(f(None, None, Some("9.9.9"), None), 5).await.is_empty());
    }

    /// Shared by every store's tests: a second row for one template version is a conflict that leaves the
    /// transaction usable.
    pub(crate) async fn check_duplicate_template_is_a_conflict(store: &dyn Store) {
        let tpl = template_record("billing", "invoice_sync", "1.0.0");
        let mut tx = store.begin().await.unwrap();
        tx.template_insert(&tpl).await.unwrap();
        tx.commit().await.unwrap();

        let again = template_record("billing", "invoice_sync", "1.0.0");
        let mut tx = store.begin().await.unwrap();
        let err = tx.template_insert(&again).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert!(err.to_string().contains("billing/invoice_sync version 1.0.0"), "{err}");
        // Another version of the same template goes in, in the same transaction.
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
    }
}
