//! The orchestration engine: every operation on templates, tasks and steps.
//!
//! Each write operation runs in one store transaction: it reads and locks the rows it needs, decides each
//! state change through the transition tables of [`crate::state`], writes the rows and their transition
//! rows, and commits. Events are published after the commit, one per transition row.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{broadcast, Notify};
use tracing::{debug, info_span, Instrument};
use uuid::Uuid;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::{Error, Result};
use crate::events::{Event, EventFilter, Subscription, DEFAULT_EVENT_CAPACITY};
use crate::model::*;
use crate::readiness::{self, Explain};
use crate::retry::has_attempts_left;
use crate::state::{StepEvent, StepState, TaskEvent, TaskState};
use crate::store::memory::MemoryStore;
use crate::store::{ClaimParams, Store, StoreKind, StoreOptions, StoreTx};
use crate::template::{Template, MAX_PRIORITY};

mod schedules;
pub use schedules::ScheduleReport;

/// The most steps one claim may take.
pub const MAX_CLAIM_LIMIT: u32 = 1000;

/// A clock offset from the store's this large is logged as a warning (the engine corrects it either way).
const CLOCK_SKEW_WARNING_MS: i64 = 1_000;

/// How long an operator action (`cancel_task`, `retry_task`, `resolve_step_manually`) keeps trying when the
/// task's steps are held by transactions in flight, before it fails with `timeout`.
pub const OPERATOR_PATIENCE: Duration = Duration::from_secs(10);

/// The longest lease a claim or heartbeat may ask for: a week. Longer ones are refused, not saturated, since
/// `now + lease` must stay a real time.
pub const MAX_LEASE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Checks a lease against `1 ms..=MAX_LEASE`.
pub fn check_lease(what: &'static str, lease: Duration) -> Result<()> {
    if lease.is_zero() || lease > MAX_LEASE {
        return Err(Error::field(
            what,
            "lease",
            format!(
                "expected 1..={} ms, found {} ms",
                MAX_LEASE.as_millis(),
                lease.as_millis()
            ),
        ));
    }
    Ok(())
}

/// How an engine is opened.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub clock: Arc<dyn Clock>,
    /// Apply pending migrations at connect (default true).
    pub migrate: bool,
    /// Connections in the pool of a SQL store.
    pub max_connections: u32,
    /// Events each subscriber buffers before the oldest are dropped.
    pub event_capacity: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let store = StoreOptions::default();
        EngineOptions {
            clock: Arc::new(SystemClock),
            migrate: store.migrate,
            max_connections: store.max_connections,
            event_capacity: DEFAULT_EVENT_CAPACITY,
        }
    }
}

/// What to create: a task of a registered template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateTask {
    pub namespace: String,
    pub name: String,
    /// The newest registered version (by semver) when absent.
    pub version: Option<String>,
    /// A JSON object, checked against the template's `input_schema`.
    pub context: Value,
    /// A repeat with the same key returns the existing task.
    pub idempotency_key: Option<String>,
    /// A JSON object of string values.
    pub tags: Option<Value>,
    pub initiator: Option<String>,
    pub source_system: Option<String>,
    pub reason: Option<String>,
    /// Claims take higher priorities first; the template's `priority` (else 0) when absent. Steps of the
    /// template that set their own priority keep it.
    pub priority: Option<i32>,
    /// No step is claimable before this time; `None` or a time already past starts the task at once.
    pub run_at: Option<Timestamp>,
}

impl CreateTask {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, context: Value) -> Self {
        CreateTask {
            namespace: namespace.into(),
            name: name.into(),
            context,
            ..Default::default()
        }
    }
}

/// The result of registering a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub template: TemplateRecord,
    /// False when the same content was already registered under this version.
    pub created: bool,
}

/// What a claim asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub handler_keys: Vec<String>,
    pub limit: u32,
    pub lease: Duration,
}

/// What a maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapReport {
    /// Steps whose lease expired and that will be retried.
    pub retried: u32,
    /// Steps whose lease expired with no attempts left: now `error` with `worker_lost`.
    pub failed: u32,
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceReport {
    /// False when another process held the maintenance lock.
    pub ran: bool,
    pub reaped: ReapReport,
    /// Retries that fell due since the previous pass (workers were woken for them).
    pub retries_due: i64,
    /// The time of this pass; hand it to the next one.
    pub at: Option<Timestamp>,
    /// The schedules it fired.
    pub schedules: ScheduleReport,
}

/// A step and the level of the DAG it sits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyLevel {
    pub step_id: Uuid,
    pub name: String,
    /// Roots are level 0; every other step is one more than its deepest parent.
    pub level: u32,
}

/// A summary of where a task stands and what should happen next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionContext {
    pub task_id: Uuid,
    pub task_state: TaskState,
    pub total_steps: i64,
    pub pending_steps: i64,
    pub ready_steps: i64,
    pub in_progress_steps: i64,
    pub waiting_for_retry_steps: i64,
    pub completed_steps: i64,
    pub failed_steps: i64,
    pub cancelled_steps: i64,
    pub resolved_manually_steps: i64,
    /// Pending steps that cannot run because an ancestor failed or was cancelled.
    pub blocked_steps: i64,
    pub execution_status: ExecutionStatus,
    pub recommended_action: RecommendedAction,
    /// Share of steps that succeeded, 0.0..=1.0.
    pub completion_ratio: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    AllComplete,
    HasReadySteps,
    Processing,
    WaitingForRetry,
    BlockedByFailures,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendedAction {
    /// Nothing to do: the task is finished.
    None,
    ExecuteReadySteps,
    WaitForCompletion,
    WaitForRetry,
    /// An operator should retry the task or resolve the failed steps.
    HandleFailures,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<Event>,
    /// The event feed, on a store other processes commit to: then subscriptions hear every commit from it,
    /// this process's too, and the engine publishes nothing itself. `None` on the memory store.
    #[cfg(feature = "runtime")]
    feed: Option<Arc<crate::feed::Feed>>,
    /// Woken whenever a commit may have made steps ready, so idle in-process workers claim at once; a
    /// store shared across processes wakes it too.
    work: Arc<Notify>,
    closed: AtomicBool,
    /// The store's clock minus this machine's, in milliseconds, as last measured (see
    /// [`Engine::sync_clock`]); added to a wall clock's readings.
    skew_ms: AtomicI64,
    /// Compiled input schemas by template id.
    schemas: std::sync::Mutex<HashMap<Uuid, Arc<jsonschema::Validator>>>,
}

/// The engine. Cheap to clone; clones share the store, the clock and the event bus.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

/// Transition rows written in one transaction, turned into events after it commits.
#[derive(Default)]
struct Log {
    steps: Vec<(StepTransition, String)>,
    tasks: Vec<TaskTransition>,
    /// The order the transitions happened in, across both lists; events are published in this order.
    order: Vec<Logged>,
    /// Whether some step may have become ready.
    wake: bool,
}

#[derive(Clone, Copy)]
enum Logged {
    Step(usize),
    Task(usize),
}

impl Log {
    fn push_step(&mut self, t: StepTransition, name: String) {
        self.order.push(Logged::Step(self.steps.len()));
        self.steps.push((t, name));
    }

    fn push_task(&mut self, t: TaskTransition) {
        self.order.push(Logged::Task(self.tasks.len()));
        self.tasks.push(t);
    }

    fn step(&mut self, step: &mut Step, event: StepEvent, to: StepState, now: Timestamp, metadata: Value) {
        step.transition_count += 1;
        self.push_step(
            StepTransition {
                id: new_id(),
                step_id: step.id,
                task_id: step.task_id,
                from_state: Some(step.state),
                to_state: to,
                event: Some(event),
                attempt: step.attempts,
                worker_id: step.worker_id.clone(),
                metadata,
                sort_key: step.transition_count,
                created_at: now,
            },
            step.name.clone(),
        );
        // A keyed step that stops running frees a slot of its key, which a waiting step may take now.
        if step.state == StepState::InProgress && to != StepState::InProgress && step.concurrency_key.is_some() {
            self.wake = true;
        }
        step.state = to;
        step.updated_at = now;
        if to.is_terminal() {
            step.finished_at = Some(now);
        }
    }

    /// Records a claim the store already applied to `step` (whose `transition_count` it advanced).
    fn claimed(&mut self, step: &Step, from: StepState, to: StepState, now: Timestamp, metadata: Value) {
        self.push_step(
            StepTransition {
                id: new_id(),
                step_id: step.id,
                task_id: step.task_id,
                from_state: Some(from),
                to_state: to,
                event: Some(StepEvent::Claim),
                attempt: step.attempts,
                worker_id: step.worker_id.clone(),
                metadata,
                sort_key: step.transition_count,
                created_at: now,
            },
            step.name.clone(),
        );
    }

    fn task(&mut self, task: &mut Task, event: TaskEvent, to: TaskState, now: Timestamp, metadata: Value) {
        task.transition_count += 1;
        self.push_task(TaskTransition {
            id: new_id(),
            task_id: task.id,
            from_state: Some(task.state),
            to_state: to,
            event: Some(event),
            metadata,
            sort_key: task.transition_count,
            created_at: now,
        });
        task.state = to;
        task.updated_at = now;
        if to.is_terminal() {
            task.finished_at = Some(now);
            task.held_until = None;
        } else {
            task.finished_at = None;
        }
    }

    /// Adds another log's transitions after this one's.
    fn append(&mut self, other: Log) {
        let (steps, tasks) = (self.steps.len(), self.tasks.len());
        self.order.extend(other.order.into_iter().map(|e| match e {
            Logged::Step(i) => Logged::Step(i + steps),
            Logged::Task(i) => Logged::Task(i + tasks),
        }));
        self.steps.extend(other.steps);
        self.tasks.extend(other.tasks);
        self.wake |= other.wake;
    }

    async fn write(&self, tx: &mut Box<dyn StoreTx>) -> Result<()> {
        let steps: Vec<StepTransition> = self.steps.iter().map(|(t, _)| t.clone()).collect();
        tx.transitions_insert(&steps, &self.tasks).await
    }
}

/// The event feed of `store`, if other processes commit to it and there is a runtime to read it on.
#[cfg(feature = "runtime")]
fn new_feed(store: &Arc<dyn Store>, events: &broadcast::Sender<Event>) -> Option<Arc<crate::feed::Feed>> {
    if !store.has_feed() {
        return None;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => Some(crate::feed::Feed::new(store.clone(), events, runtime)),
        Err(_) => {
            tracing::warn!(
                "no tokio runtime to read the event feed on: subscriptions hear only this process's commits"
            );
            None
        }
    }
}

impl Engine {
    /// Opens the store a URL names (see [`crate::store::open`] for the forms) and an engine over it.
    pub async fn connect(url: &str, options: EngineOptions) -> Result<Engine> {
        let store = open_store(url, &options).await?;
        let engine = Engine::with_store(store, options);
        engine.sync_clock().await?;
        Ok(engine)
    }

    /// An engine over an opened store.
    pub fn with_store(store: Arc<dyn Store>, options: EngineOptions) -> Engine {
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        let work = Arc::new(Notify::new());
        store.attach_wakeups(work.clone());
        #[cfg(feature = "runtime")]
        let feed = new_feed(&store, &events);
        Engine {
            inner: Arc::new(Inner {
                store,
                clock: options.clock,
                events,
                #[cfg(feature = "runtime")]
                feed,
                work,
                closed: AtomicBool::new(false),
                skew_ms: AtomicI64::new(0),
                schemas: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Opens the store `url` names again, for an engine whose store broke (a database restart): the new engine
    /// shares this one's clock, event bus and wake-ups, so subscriptions and waiting claims carry on over it
    /// instead of ending with the old store.
    pub async fn reopen(&self, url: &str, options: EngineOptions) -> Result<Engine> {
        let store = open_store(url, &options).await?;
        store.attach_wakeups(self.inner.work.clone());
        // The feed carries on over the new store from the same cursor: the database is the same, so nothing
        // committed meanwhile is lost.
        #[cfg(feature = "runtime")]
        let feed = match &self.inner.feed {
            Some(feed) => {
                feed.switch(store.clone());
                Some(feed.clone())
            }
            None => new_feed(&store, &self.inner.events),
        };
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                clock: self.inner.clock.clone(),
                events: self.inner.events.clone(),
                #[cfg(feature = "runtime")]
                feed,
                work: self.inner.work.clone(),
                closed: AtomicBool::new(false),
                skew_ms: AtomicI64::new(self.inner.skew_ms.load(Ordering::Relaxed)),
                schemas: std::sync::Mutex::new(HashMap::new()),
            }),
        };
        engine.sync_clock().await?;
        Ok(engine)
    }

    /// An engine over a fresh in-memory store.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Engine {
        Engine::with_store(
            Arc::new(MemoryStore::new()),
            EngineOptions {
                clock,
                ..Default::default()
            },
        )
    }

    fn store(&self) -> Result<&Arc<dyn Store>> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(&self.inner.store)
        }
    }

    pub fn store_kind(&self) -> StoreKind {
        self.inner.store.kind()
    }

    /// The current time by the engine's clock: a wall clock corrected by the store's clock (see
    /// [`Engine::sync_clock`]), or a test clock as it reads.
    pub fn now(&self) -> Timestamp {
        let now = self.inner.clock.now();
        if self.inner.clock.is_wall_clock() {
            now + TimeDelta::milliseconds(self.inner.skew_ms.load(Ordering::Relaxed))
        } else {
            now
        }
    }

    /// Measures how far the store's clock is from this machine's and corrects [`Engine::now`] by it.
    ///
    /// The clock rule for leases: a lease's expiry is written by the claiming process and compared by the
    /// reaping one, so both must read one clock. On PostgreSQL that is the server's: every engine measures
    /// its offset from it when it connects and at each maintenance pass (taking the midpoint of the round
    /// trip), so two machines whose clocks disagree by minutes still agree on every lease to within their
    /// round-trip times. Stores without a clock of their own (SQLite, memory: one machine) leave the clock
    /// as it is, and so do test clocks.
    pub async fn sync_clock(&self) -> Result<()> {
        if !self.inner.clock.is_wall_clock() {
            return Ok(());
        }
        let before = self.inner.clock.now();
        let Some(server) = self.store()?.server_time().await? else {
            return Ok(());
        };
        let after = self.inner.clock.now();
        let local = before + (after - before) / 2;
        let skew = (server - local).num_milliseconds();
        let old = self.inner.skew_ms.swap(skew, Ordering::Relaxed);
        if skew.abs() >= CLOCK_SKEW_WARNING_MS && (old - skew).abs() >= CLOCK_SKEW_WARNING_MS / 2 {
            tracing::warn!(
                skew_ms = skew,
                "this machine's clock differs from the database server's; the engine follows the server's"
            );
        }
        Ok(())
    }

    /// Closes the store. Idempotent; every later call fails with `closed`.
    pub async fn close(&self) {
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            #[cfg(feature = "runtime")]
            if let Some(feed) = &self.inner.feed {
                feed.close(&self.inner.store);
            }
            self.inner.store.close().await;
            self.inner.work.notify_waiters();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// A real round trip to the store.
    pub async fn ping(&self) -> Result<()> {
        self.store()?.ping().await
    }

    pub fn pool_stats(&self) -> crate::store::PoolStats {
        self.inner.store.pool_stats()
    }

    /// Subscribes to events from now on: on the memory store, this engine's; on a SQL store shared by
    /// processes, those of every process's commits (see [`crate::feed`] and docs/ARCHITECTURE.md, Events).
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        let rx = self.inner.events.subscribe();
        #[cfg(feature = "runtime")]
        let guard = self
            .inner
            .feed
            .as_ref()
            .map(|f| Box::new(f.subscribe()) as Box<dyn std::any::Any + Send + Sync>);
        #[cfg(not(feature = "runtime"))]
        let guard = None;
        Subscription::new(rx, filter, guard)
    }

    /// A future that resolves when a later commit may have made work ready. Create it (and `enable` it)
    /// before claiming, so that a wake-up between the claim and the wait is not missed.
    pub fn work_signal(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.work.notified()
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        let store = self.store()?;
        #[cfg(feature = "runtime")]
        if let Some(feed) = &self.inner.feed {
            feed.before_write().await;
        }
        store.begin().await
    }

    /// Ends a write operation: commits `tx` with its log when `result` is Ok, and otherwise rolls back at
    /// once, so no lock outlives a failed operation (some drivers roll back a dropped transaction later).
    async fn conclude<T>(&self, tx: Box<dyn StoreTx>, log: Log, result: Result<T>) -> Result<T> {
        match result {
            Ok(v) => {
                self.commit(tx, log).await?;
                Ok(v)
            }
            Err(e) => {
                if let Err(rb) = tx.rollback().await {
                    debug!(error = %rb, "rollback after a failed operation failed");
                }
                Err(e)
            }
        }
    }

    /// [`Engine::conclude`] for an operator action: `Ok(None)` means its steps were busy, so the transaction
    /// is rolled back (it holds the task, which the step's holder may be waiting for) and nothing is logged.
    async fn conclude_unless_busy<T>(
        &self,
        tx: Box<dyn StoreTx>,
        log: Log,
        result: Result<Option<T>>,
    ) -> Result<Option<T>> {
        match result {
            Ok(None) => {
                if let Err(rb) = tx.rollback().await {
                    debug!(error = %rb, "rollback after busy steps failed");
                }
                Ok(None)
            }
            other => self.conclude(tx, log, other).await,
        }
    }

    /// Runs an operator action until it finds the task's steps free: each try that finds a step held by
    /// another transaction (a claim, heartbeat, report or reap in flight) has given the task back, and the
    /// next one starts after a short pause, doubling from 10 ms to 250 ms. After [`OPERATOR_PATIENCE`] the
    /// action fails with `timeout`, naming the task.
    async fn when_steps_free<T, F, Fut>(&self, action: &'static str, task_id: Uuid, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let mut pause = Duration::from_millis(10);
        let mut waited = Duration::ZERO;
        loop {
            if let Some(done) = attempt().await? {
                return Ok(done);
            }
            if waited >= OPERATOR_PATIENCE || !cfg!(feature = "runtime") {
                return Err(Error::Timeout(format!(
                    "{action}: the steps of task {task_id} stayed busy for {} s; try again",
                    OPERATOR_PATIENCE.as_secs()
                )));
            }
            debug!(%task_id, action, "steps busy; trying again");
            // The wait under the store's own lock timeout counts as well as the pause.
            waited += pause + crate::store::OPERATOR_LOCK_WAIT;
            pause_for(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    async fn commit(&self, mut tx: Box<dyn StoreTx>, log: Log) -> Result<()> {
        if log.wake {
            tx.notify_work().await?;
        }
        log.write_and_commit(tx).await?;
        #[cfg(feature = "runtime")]
        if let Some(feed) = &self.inner.feed {
            if log.wake {
                self.inner.work.notify_waiters();
            }
            if !log.order.is_empty() {
                feed.after_commit().await;
            }
            return Ok(());
        }
        for entry in &log.order {
            let event = match *entry {
                Logged::Step(i) => Event::from_step(&log.steps[i].0, Some(&log.steps[i].1)),
                Logged::Task(i) => Event::from_task(&log.tasks[i]),
            };
            let _ = self.inner.events.send(event);
        }
        if log.wake {
            self.inner.work.notify_waiters();
        }
        Ok(())
    }

    // ---------------------------------------------------------------- templates

    /// Validates and registers a template given as YAML or JSON text.
    pub async fn register_template(&self, text: &str) -> Result<Registration> {
        self.register(Template::parse(text)?).await
    }

    /// Validates and registers a template given as a parsed document.
    pub async fn register_template_value(&self, value: &Value) -> Result<Registration> {
        self.register(Template::from_value(value)?).await
    }

    async fn register(&self, template: Template) -> Result<Registration> {
        let hash = template.content_hash();
        let mut tx = self.begin().await?;
        let result = async {
            if let Some(existing) = tx
                .template_find(&template.namespace, &template.name, &template.version)
                .await?
            {
                return if existing.content_hash == hash {
                    Ok(Registration {
                        template: existing,
                        created: false,
                    })
                } else {
                    Err(Error::Conflict(format!(
                        "template {}/{}@{} is already registered with different content; register a new version",
                        template.namespace, template.name, template.version
                    )))
                };
            }
            let rec = TemplateRecord {
                id: new_id(),
                namespace: template.namespace.clone(),
                name: template.name.clone(),
                version: template.version.clone(),
                content_hash: hash,
                template,
                created_at: self.now(),
            };
            tx.template_insert(&rec).await?;
            Ok(Registration {
                template: rec,
                created: true,
            })
        }
        .await;
        self.conclude(tx, Log::default(), result).await
    }

    /// A registered template; the newest version by semver when `version` is `None`.
    pub async fn template(&self, namespace: &str, name: &str, version: Option<&str>) -> Result<TemplateRecord> {
        let all = self.store()?.template_list(Some(namespace), Some(name)).await?;
        let found = match version {
            Some(v) => all.into_iter().find(|t| t.version == v),
            None => all
                .into_iter()
                .max_by(|a, b| semver_of(&a.version).cmp(&semver_of(&b.version))),
        };
        found.ok_or_else(|| {
            Error::not_found(
                "template",
                format!("{namespace}/{name}@{}", version.unwrap_or("latest")),
            )
        })
    }

    /// Every registered template version.
    pub async fn templates(&self) -> Result<Vec<TemplateRecord>> {
        let mut all = self.store()?.template_list(None, None).await?;
        all.sort_by(|a, b| {
            (&a.namespace, &a.name, semver_of(&a.version)).cmp(&(&b.namespace, &b.name, semver_of(&b.version)))
        });
        Ok(all)
    }

    // ---------------------------------------------------------------- tasks

    /// Creates a task: validates the context, then writes the task, its steps, edges and creation
    /// transitions in one transaction. A repeated idempotency key returns the existing task.
    pub async fn create_task(&self, req: CreateTask) -> Result<Task> {
        let span = info_span!("create_task", namespace = %req.namespace, name = %req.name);
        async move {
            let prepared = self.prepare_task(&req, self.now()).await?;
            let mut tx = self.begin().await?;
            let mut log = Log::default();
            let result = self.insert_task(&mut tx, &mut log, prepared).await;
            self.conclude(tx, log, result).await
        }
        .instrument(span)
        .await
    }

    /// Checks a task request and builds its rows, writing nothing.
    async fn prepare_task(&self, req: &CreateTask, now: Timestamp) -> Result<PreparedTask> {
        let rec = self.template(&req.namespace, &req.name, req.version.as_deref()).await?;
        self.prepare_task_of(&rec, req, now)
    }

    /// [`Engine::prepare_task`] for a template already looked up.
    fn prepare_task_of(&self, rec: &TemplateRecord, req: &CreateTask, now: Timestamp) -> Result<PreparedTask> {
        check_context_object("context", &req.context)?;
        let tags = match &req.tags {
            None | Some(Value::Null) => json!({}),
            Some(Value::Object(m)) => {
                if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                    return Err(Error::field(
                        "task",
                        format!("tags.{k}"),
                        format!("expected a string, found {}", crate::template::type_name(v)),
                    ));
                }
                Value::Object(m.clone())
            }
            Some(other) => {
                return Err(Error::field(
                    "task",
                    "tags",
                    format!(
                        "expected a mapping of strings, found {}",
                        crate::template::type_name(other)
                    ),
                ))
            }
        };
        if let Some(k) = &req.idempotency_key {
            if k.is_empty() || k.len() > 255 {
                return Err(Error::field("task", "idempotency_key", "expected 1-255 characters"));
            }
        }
        check_priority("task", req.priority)?;
        self.check_context(rec, &req.context)?;
        let keys = concurrency_keys(rec, &req.context)?;
        let (task, steps, edges, log) = build_task(rec, req, tags, &keys, now);
        Ok(PreparedTask {
            key: req.idempotency_key.clone(),
            task,
            steps,
            edges,
            log,
        })
    }

    /// Writes a prepared task in `tx`, or answers the task that already has its idempotency key.
    async fn insert_task(&self, tx: &mut Box<dyn StoreTx>, log: &mut Log, p: PreparedTask) -> Result<Task> {
        let PreparedTask {
            key,
            task,
            steps,
            edges,
            log: created,
        } = p;
        if let Some(k) = &key {
            if let Some(existing) = tx.task_find_by_idempotency_key(&task.namespace, &task.name, k).await? {
                return Ok(existing);
            }
        }
        match tx.task_insert(&task, &steps, &edges).await {
            Ok(()) => {}
            Err(Error::Conflict(_)) if key.is_some() => {
                // Another process created it between our check and insert; the store reports the
                // conflict without aborting the transaction, so read the winner in it.
                let key = key.as_deref().unwrap_or_default();
                return tx
                    .task_find_by_idempotency_key(&task.namespace, &task.name, key)
                    .await?
                    .ok_or_else(|| Error::Conflict(format!("idempotency key {key:?} is in use")));
            }
            Err(e) => return Err(e),
        }
        log.append(created);
        debug!(task_id = %task.id, steps = steps.len(), "task created");
        Ok(task)
    }

    fn check_context(&self, rec: &TemplateRecord, context: &Value) -> Result<()> {
        let Some(schema) = &rec.template.input_schema else {
            return Ok(());
        };
        let validator = {
            let mut cache = self.inner.schemas.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(&rec.id) {
                Some(v) => v.clone(),
                None => {
                    let v = Arc::new(
                        crate::template::compile_schema(schema)
                            .map_err(|m| Error::field("template", "input_schema", m))?,
                    );
                    cache.insert(rec.id, v.clone());
                    v
                }
            }
        };
        crate::template::check_context_with(&validator, context)
    }

    pub async fn task(&self, id: Uuid) -> Result<Task> {
        self.store()?
            .task_get(id)
            .await?
            .ok_or_else(|| Error::not_found("task", id))
    }

    pub async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.store()?.task_list(filter).await
    }

    /// The steps of a task, in template order.
    pub async fn steps(&self, task_id: Uuid) -> Result<Vec<Step>> {
        let store = self.store()?;
        if store.task_get(task_id).await?.is_none() {
            return Err(Error::not_found("task", task_id));
        }
        store.step_list(task_id).await
    }

    pub async fn step(&self, id: Uuid) -> Result<Step> {
        self.store()?
            .step_get(id)
            .await?
            .ok_or_else(|| Error::not_found("step", id))
    }

    /// The audit trail of a task: its own transitions and those of its steps.
    pub async fn transitions(&self, task_id: Uuid) -> Result<(Vec<TaskTransition>, Vec<StepTransition>)> {
        let store = self.store()?;
        if store.task_get(task_id).await?.is_none() {
            return Err(Error::not_found("task", task_id));
        }
        Ok((
            store.task_transition_list(task_id).await?,
            store.step_transition_list(task_id).await?,
        ))
    }

    // ---------------------------------------------------------------- claims

    /// Claims up to `limit` ready steps for the handler keys and leases them for `lease`.
    pub async fn claim(&self, req: &ClaimRequest) -> Result<Vec<StepContext>> {
        check_claim_request(req)?;
        let span = info_span!("claim", worker_id = %req.worker_id, limit = req.limit);
        async move {
            let now = self.now();
            let params = claim_params(req, now);
            let mut tx = self.begin().await?;
            let mut log = Log::default();
            let result = self.claim_in(&mut tx, &mut log, &params).await;
            let claimed = self.conclude(tx, log, result).await?;
            contexts(claimed, &params)
        }
        .instrument(span)
        .await
    }

    /// Records a batch of outcomes and claims the next steps in one transaction, one commit: what a worker
    /// loop does between two batches. A step released by one of the outcomes can be claimed at once. Each
    /// outcome gets its own result as in [`Engine::finish_many`]; a store error fails the whole call, and then
    /// nothing was written or claimed.
    pub async fn finish_and_claim(
        &self,
        items: Vec<(ClaimToken, Outcome)>,
        req: &ClaimRequest,
    ) -> Result<(Vec<Result<Step>>, Vec<StepContext>)> {
        check_claim_request(req)?;
        let span = info_span!("finish_and_claim", count = items.len(), limit = req.limit);
        async move {
            let task_ids = self.task_ids_of(&items).await?;
            let now = self.now();
            let params = claim_params(req, now);
            let mut tx = self.begin().await?;
            let mut log = Log::default();
            let result = async {
                let finished = self.finish_in(&mut tx, &mut log, items, &task_ids, now).await?;
                let claimed = self.claim_in(&mut tx, &mut log, &params).await?;
                Ok((finished, claimed))
            }
            .await;
            let (finished, claimed) = self.conclude(tx, log, result).await?;
            Ok((finished, contexts(claimed, &params)?))
        }
        .instrument(span)
        .await
    }

    /// The claim inside `tx`: the store's claim statement, the transitions it made, the tasks it starts, and
    /// the inputs of what it took. In the claim's transaction: if the inputs cannot be read, the claim rolls
    /// back and the attempt is not spent (a step that may run once must not end `worker_lost` unrun).
    async fn claim_in(&self, tx: &mut Box<dyn StoreTx>, log: &mut Log, params: &ClaimParams) -> Result<Claimed> {
        let now = params.now;
        let rows = tx.step_claim(params).await?;
        let mut steps = Vec::with_capacity(rows.len());
        let mut to_start: Vec<Uuid> = Vec::new();
        for row in rows {
            let step = row.step;
            let to = row.from_state.apply(StepEvent::Claim, step.id)?;
            // The store wrote the claimed row already; record the transition it made.
            log.claimed(
                &step,
                row.from_state,
                to,
                now,
                json!({"lease_expires_at": params.lease_expires_at}),
            );
            if row.task_state == TaskState::Pending {
                to_start.push(step.task_id);
            }
            steps.push(step);
        }
        if steps.is_empty() {
            return Ok(Claimed::default());
        }
        // Tasks in id order, so that claimers starting the same tasks never wait in a cycle.
        to_start.sort_unstable();
        to_start.dedup();
        let mut started = Vec::new();
        for mut task in tx.task_lock_many(&to_start).await? {
            if task.state == TaskState::Pending {
                let to = task.state.apply(TaskEvent::Start, task.id)?;
                task.started_at = Some(now);
                log.task(&mut task, TaskEvent::Start, to, now, Value::Null);
                started.push(task);
            }
        }
        tx.task_update_many(&started).await?;
        let ids: Vec<Uuid> = steps.iter().map(|s| s.id).collect();
        let inputs = tx.claim_inputs(&ids).await?;
        Ok(Claimed { steps, inputs })
    }

    /// Extends the lease of each claim that still holds; returns those extended. A token missing from
    /// the answer has lost its claim: the handler's result will be rejected as stale.
    pub async fn heartbeat(&self, tokens: &[ClaimToken], lease: Duration) -> Result<Vec<ClaimToken>> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        check_lease("heartbeat", lease)?;
        let now = self.now();
        let mut tx = self.begin().await?;
        let result = tx.step_lease_extend(tokens, now + delta(lease), now).await;
        self.conclude(tx, Log::default(), result).await
    }

    /// Records a successful attempt.
    pub async fn complete(&self, token: ClaimToken, result: Value) -> Result<Step> {
        self.finish_many(vec![(token, Outcome::Success(result))])
            .await?
            .pop()
            .unwrap_or_else(|| Err(Error::Internal("empty finish".into())))
    }

    /// Records a failed attempt: a retry is scheduled if the failure is retryable and attempts are left.
    pub async fn fail(&self, token: ClaimToken, failure: StepFailure) -> Result<Step> {
        self.finish_many(vec![(token, Outcome::Failure(failure))])
            .await?
            .pop()
            .unwrap_or_else(|| Err(Error::Internal("empty finish".into())))
    }

    /// Records a batch of outcomes in one transaction.
    ///
    /// Each item gets its own result: a stale or invalid item is rejected (and writes nothing) without
    /// failing the others. Only a store error fails the whole batch, and then nothing is written.
    pub async fn finish_many(&self, items: Vec<(ClaimToken, Outcome)>) -> Result<Vec<Result<Step>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let span = info_span!("finish", count = items.len());
        async move {
            let task_ids = self.task_ids_of(&items).await?;
            let now = self.now();
            let mut tx = self.begin().await?;
            let mut log = Log::default();
            let result = self.finish_in(&mut tx, &mut log, items, &task_ids, now).await;
            self.conclude(tx, log, result).await
        }
        .instrument(span)
        .await
    }

    /// The tasks of the outcomes' steps, in id order: the order a finish locks them in, so concurrent batches
    /// never wait in a cycle. Read before the transaction (tasks before their steps is the lock order).
    async fn task_ids_of(&self, items: &[(ClaimToken, Outcome)]) -> Result<Vec<Uuid>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = items.iter().map(|(t, _)| t.step_id).collect();
        let mut task_ids: Vec<Uuid> = self
            .store()?
            .step_task_ids(&ids)
            .await?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        task_ids.sort_unstable();
        task_ids.dedup();
        Ok(task_ids)
    }

    /// The finish inside `tx`: locks the tasks, then the steps, judges each outcome, writes the changed rows,
    /// releases children and settles the tasks.
    async fn finish_in(
        &self,
        tx: &mut Box<dyn StoreTx>,
        log: &mut Log,
        items: Vec<(ClaimToken, Outcome)>,
        task_ids: &[Uuid],
        now: Timestamp,
    ) -> Result<Vec<Result<Step>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = items.iter().map(|(t, _)| t.step_id).collect();
        let mut tasks: HashMap<Uuid, Task> = tx
            .task_lock_many(task_ids)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        let mut steps: HashMap<Uuid, Step> = tx.step_lock_many(&ids).await?.into_iter().map(|s| (s.id, s)).collect();
        let mut results = Vec::with_capacity(items.len());
        let mut changed: Vec<Uuid> = Vec::new();
        let mut succeeded: Vec<Uuid> = Vec::new();
        for (token, outcome) in items {
            match Self::judge(&mut steps, &mut tasks, log, token, outcome, now) {
                Ok(step) => {
                    if !changed.contains(&step.id) {
                        changed.push(step.id);
                    }
                    if step.state == StepState::Complete {
                        succeeded.push(step.id);
                    }
                    results.push(Ok(step));
                }
                Err(e @ (Error::StaleClaim { .. } | Error::InvalidTransition { .. } | Error::NotFound { .. })) => {
                    debug!(step_id = %token.step_id, attempt = token.attempt, error = %e, "outcome rejected");
                    results.push(Err(e));
                }
                Err(e) => return Err(e),
            }
        }
        let rows: Vec<Step> = changed.iter().filter_map(|id| steps.get(id).cloned()).collect();
        tx.step_update_many(&rows).await?;
        if !succeeded.is_empty() && !tx.step_children_release_many(&succeeded, now).await?.is_empty() {
            log.wake = true;
        }
        self.settle_and_write(tx, log, tasks, now).await?;
        Ok(results)
    }

    /// Completes each given claim with its result in one transaction.
    pub async fn complete_many(&self, items: Vec<(ClaimToken, Value)>) -> Result<Vec<Result<Step>>> {
        self.finish_many(items.into_iter().map(|(t, v)| (t, Outcome::Success(v))).collect())
            .await
    }

    /// Fails each given claim in one transaction.
    pub async fn fail_many(&self, items: Vec<(ClaimToken, StepFailure)>) -> Result<Vec<Result<Step>>> {
        self.finish_many(items.into_iter().map(|(t, f)| (t, Outcome::Failure(f))).collect())
            .await
    }

    /// Decides one outcome against the locked rows, changing them in memory. Everything is checked before
    /// anything changes, so a rejected item leaves no trace. Returns the step as changed.
    fn judge(
        steps: &mut HashMap<Uuid, Step>,
        tasks: &mut HashMap<Uuid, Task>,
        log: &mut Log,
        token: ClaimToken,
        outcome: Outcome,
        now: Timestamp,
    ) -> Result<Step> {
        let step = steps
            .get_mut(&token.step_id)
            .ok_or_else(|| Error::not_found("step", token.step_id))?;
        check_claim(step, token)?;
        let event = match &outcome {
            Outcome::Success(_) => StepEvent::Complete,
            Outcome::Failure(f) => {
                if f.retryable && step.retry.retryable && has_attempts_left(step.attempts, step.max_attempts) {
                    StepEvent::FailRetryable
                } else {
                    StepEvent::FailPermanent
                }
            }
        };
        let to = step.state.apply(event, step.id)?;
        let task = tasks
            .get_mut(&step.task_id)
            .ok_or_else(|| Error::not_found("task", step.task_id))?;
        step.lease_expires_at = None;
        match outcome {
            Outcome::Success(result) => {
                step.result = Some(result);
                step.error = None;
                log.step(step, event, to, now, Value::Null);
                task.steps_succeeded += 1;
            }
            Outcome::Failure(f) => {
                let mut meta = json!({"error_class": f.error_class, "message": f.message});
                if to == StepState::WaitingForRetry {
                    let wait = step
                        .retry
                        .backoff(attempt_in_budget(step), f.retry_after, rand::random::<f64>());
                    let at = now + delta(wait);
                    step.next_attempt_at = Some(at);
                    step.ready_at = at;
                    meta["next_attempt_at"] = json!(at);
                    log.wake = true;
                } else {
                    task.steps_failed += 1;
                }
                step.error = Some(StepErrorInfo {
                    error_class: f.error_class,
                    message: f.message,
                    backtrace: f.backtrace,
                    code: f.code,
                    retryable: f.retryable,
                });
                log.step(step, event, to, now, meta);
            }
        }
        Ok(step.clone())
    }

    /// Finalizes each touched task as the rules say, then writes it with the transaction's log.
    async fn settle_and_write(
        &self,
        tx: &mut Box<dyn StoreTx>,
        log: &mut Log,
        tasks: HashMap<Uuid, Task>,
        now: Timestamp,
    ) -> Result<()> {
        let mut rows = Vec::with_capacity(tasks.len());
        for (_, mut task) in tasks {
            settle(tx, log, &mut task, now).await?;
            task.updated_at = now;
            rows.push(task);
        }
        tx.task_update_many(&rows).await
    }

    // ---------------------------------------------------------------- operator actions

    /// Cancels a task: every non-terminal step goes to `cancelled`.
    pub async fn cancel_task(&self, task_id: Uuid, reason: Option<&str>) -> Result<Task> {
        let children = self.children_of(task_id).await?;
        self.when_steps_free("cancel_task", task_id, || {
            self.try_cancel_task(task_id, reason, &children)
        })
        .await
    }

    /// The steps of a task that have parents; the others are its roots. Edges never change.
    async fn children_of(&self, task_id: Uuid) -> Result<HashSet<Uuid>> {
        Ok(self
            .store()?
            .edge_list(task_id)
            .await?
            .iter()
            .map(|e| e.child_id)
            .collect())
    }

    async fn try_cancel_task(
        &self,
        task_id: Uuid,
        reason: Option<&str>,
        children: &HashSet<Uuid>,
    ) -> Result<Option<Task>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut log = Log::default();
        let result = async {
            let mut task = tx
                .task_lock(task_id)
                .await?
                .ok_or_else(|| Error::not_found("task", task_id))?;
            let to = task.state.apply(TaskEvent::Cancel, task.id)?;
            let meta = json!({"reason": reason});
            let Some(steps) = tx.step_lock_all(task_id).await? else {
                return Ok(None);
            };
            let held = task.held_until.is_some();
            for mut step in steps {
                if let Some(sto) = step.state.next(StepEvent::Cancel) {
                    if held {
                        lift_hold(&mut step, children, now);
                    }
                    step.lease_expires_at = None;
                    log.step(&mut step, StepEvent::Cancel, sto, now, meta.clone());
                    tx.step_update(&step).await?;
                }
            }
            log.task(&mut task, TaskEvent::Cancel, to, now, meta);
            tx.task_update(&task).await?;
            Ok(Some(task))
        }
        .await;
        self.conclude_unless_busy(tx, log, result).await
    }

    /// Starts a task created to start later now: its root steps become ready at once. A task that is
    /// `pending` and not held (already started, or never scheduled) is returned unchanged; a task in any
    /// other state is an `invalid_transition`. No state changes, so no transition row is written.
    pub async fn run_task_now(&self, task_id: Uuid) -> Result<Task> {
        let children = self.children_of(task_id).await?;
        self.when_steps_free("run_task_now", task_id, || self.try_run_task_now(task_id, &children))
            .await
    }

    async fn try_run_task_now(&self, task_id: Uuid, children: &HashSet<Uuid>) -> Result<Option<Task>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut log = Log::default();
        let result = async {
            let mut task = tx
                .task_lock(task_id)
                .await?
                .ok_or_else(|| Error::not_found("task", task_id))?;
            if task.state != TaskState::Pending {
                return Err(Error::InvalidTransition {
                    entity: "task",
                    id: task.id.to_string(),
                    from: task.state.to_string(),
                    event: "run_now".into(),
                });
            }
            if task.held_until.is_none() {
                return Ok(Some(task));
            }
            let Some(steps) = tx.step_lock_all(task_id).await? else {
                return Ok(None);
            };
            for mut step in steps {
                if lift_hold(&mut step, children, now) {
                    tx.step_update(&step).await?;
                }
            }
            task.held_until = None;
            task.run_at = Some(now);
            task.updated_at = now;
            tx.task_update(&task).await?;
            log.wake = true;
            Ok(Some(task))
        }
        .await;
        self.conclude_unless_busy(tx, log, result).await
    }

    /// Retries a task in `error`: each failed step gets a fresh attempt budget and runs again.
    pub async fn retry_task(&self, task_id: Uuid) -> Result<Task> {
        self.when_steps_free("retry_task", task_id, || self.try_retry_task(task_id))
            .await
    }

    async fn try_retry_task(&self, task_id: Uuid) -> Result<Option<Task>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut log = Log::default();
        let result = async {
            let mut task = tx
                .task_lock(task_id)
                .await?
                .ok_or_else(|| Error::not_found("task", task_id))?;
            let to = task.state.apply(TaskEvent::Retry, task.id)?;
            let Some(steps) = tx.step_lock_all(task_id).await? else {
                return Ok(None);
            };
            for mut step in steps {
                if step.state == StepState::Error {
                    let sto = step.state.apply(StepEvent::Retry, step.id)?;
                    step.max_attempts = step.attempts + i64::from(step.retry.attempt_budget());
                    step.next_attempt_at = None;
                    step.ready_at = now;
                    let meta = json!({"max_attempts": step.max_attempts});
                    log.step(&mut step, StepEvent::Retry, sto, now, meta);
                    step.finished_at = None;
                    task.steps_failed -= 1;
                    tx.step_update(&step).await?;
                }
            }
            log.task(&mut task, TaskEvent::Retry, to, now, Value::Null);
            log.wake = true;
            tx.task_update(&task).await?;
            Ok(Some(task))
        }
        .await;
        self.conclude_unless_busy(tx, log, result).await
    }

    /// Marks a `pending` or `error` step as resolved by an operator, with `result` as its result.
    /// Dependants may then run, and the task resumes or completes as the rules say.
    pub async fn resolve_step_manually(&self, step_id: Uuid, result: Value) -> Result<Step> {
        let task_id = self.step(step_id).await?.task_id;
        self.when_steps_free("resolve_step_manually", task_id, || {
            self.try_resolve_step(task_id, step_id, result.clone())
        })
        .await
    }

    async fn try_resolve_step(&self, task_id: Uuid, step_id: Uuid, result: Value) -> Result<Option<Step>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut log = Log::default();
        let result = async {
            // Lock order: the task before its steps; as an operator action it locks them the way that gives
            // the task back to a claim in flight (`StoreTx::step_lock_all`).
            let mut task = tx
                .task_lock(task_id)
                .await?
                .ok_or_else(|| Error::not_found("task", task_id))?;
            let Some(steps) = tx.step_lock_all(task_id).await? else {
                return Ok(None);
            };
            let mut step = steps
                .into_iter()
                .find(|s| s.id == step_id)
                .ok_or_else(|| Error::not_found("step", step_id))?;
            if !matches!(
                task.state,
                TaskState::Pending | TaskState::InProgress | TaskState::Error
            ) {
                return Err(Error::InvalidTransition {
                    entity: "task",
                    id: task.id.to_string(),
                    from: task.state.to_string(),
                    event: "resolve_step".into(),
                });
            }
            let from = step.state;
            let to = step.state.apply(StepEvent::ResolveManually, step.id)?;
            step.result = Some(result);
            log_and_count_resolution(&mut task, from);
            log.step(&mut step, StepEvent::ResolveManually, to, now, Value::Null);
            tx.step_update(&step).await?;
            if !tx.step_children_release(step.id, now).await?.is_empty() {
                log.wake = true;
            }
            let mut tasks = HashMap::new();
            tasks.insert(task.id, task);
            self.settle_and_write(&mut tx, &mut log, tasks, now).await?;
            Ok(Some(step))
        }
        .await;
        self.conclude_unless_busy(tx, log, result).await
    }

    /// Marks a task in `error` as resolved by an operator. Its steps keep their states; none runs again.
    pub async fn resolve_task_manually(&self, task_id: Uuid, reason: Option<&str>) -> Result<Task> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut log = Log::default();
        let result = async {
            let mut task = tx
                .task_lock(task_id)
                .await?
                .ok_or_else(|| Error::not_found("task", task_id))?;
            let to = task.state.apply(TaskEvent::ResolveManually, task.id)?;
            log.task(
                &mut task,
                TaskEvent::ResolveManually,
                to,
                now,
                json!({"reason": reason}),
            );
            tx.task_update(&task).await?;
            Ok(task)
        }
        .await;
        self.conclude(tx, log, result).await
    }

    /// Recovers steps whose lease expired: each is retried if attempts are left, and otherwise errors
    /// with `worker_lost`. Processes at most `limit` steps. Runs even if another process holds the
    /// maintenance lock; workers call [`Engine::run_maintenance`] instead.
    pub async fn reap_expired_leases(&self, limit: u32) -> Result<ReapReport> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut log = Log::default();
        let result = async {
            let report = self.reap(&mut tx, &mut log, limit, now).await?;
            Ok(report)
        }
        .await;
        self.conclude(tx, log, result).await
    }

    /// One maintenance pass: reaps expired leases, wakes workers for retries that fell due since
    /// `last_pass`, and fires due schedules ([`Engine::fire_schedules`]). Only one reaping runs at a time
    /// across every process sharing the store; a pass that finds the lock taken reaps nothing and reports
    /// `ran: false`. Schedules fire either way: firing locks each schedule row by itself.
    pub async fn run_maintenance(&self, last_pass: Option<Timestamp>, limit: u32) -> Result<MaintenanceReport> {
        self.sync_clock().await?;
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut log = Log::default();
        let result = async {
            if !tx.maintenance_lock().await? {
                return Ok(MaintenanceReport {
                    ran: false,
                    ..Default::default()
                });
            }
            let reaped = self.reap(&mut tx, &mut log, limit, now).await?;
            // Retries that fell due need no state change, only a wake-up for idle workers elsewhere.
            let retries_due = match last_pass {
                Some(after) => tx.step_retries_due(after, now).await?,
                None => 0,
            };
            if retries_due > 0 {
                log.wake = true;
            }
            Ok(MaintenanceReport {
                ran: true,
                reaped,
                retries_due,
                at: Some(now),
                schedules: ScheduleReport::default(),
            })
        }
        .await;
        let mut report = self.conclude(tx, log, result).await?;
        report.schedules = self.fire_schedules().await?;
        Ok(report)
    }

    async fn reap(&self, tx: &mut Box<dyn StoreTx>, log: &mut Log, limit: u32, now: Timestamp) -> Result<ReapReport> {
        let expired = tx.step_lease_expired(now, limit.max(1)).await?;
        if expired.is_empty() {
            return Ok(ReapReport::default());
        }
        let mut tasks: HashMap<Uuid, Task> = HashMap::new();
        let mut report = ReapReport::default();
        for mut step in expired {
            let retry = step.retry.retryable && has_attempts_left(step.attempts, step.max_attempts);
            let event = if retry {
                StepEvent::LeaseExpired
            } else {
                StepEvent::WorkerLost
            };
            let to = step.state.apply(event, step.id)?;
            let lost = format!(
                "lease of worker {} expired at {}",
                step.worker_id.as_deref().unwrap_or("?"),
                step.lease_expires_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            );
            step.error = Some(StepErrorInfo {
                error_class: "worker_lost".into(),
                message: lost.clone(),
                backtrace: Vec::new(),
                code: Some("worker_lost".into()),
                retryable: retry,
            });
            step.lease_expires_at = None;
            let mut meta = json!({"message": lost});
            if !tasks.contains_key(&step.task_id) {
                let t = tx
                    .task_lock(step.task_id)
                    .await?
                    .ok_or_else(|| Error::not_found("task", step.task_id))?;
                tasks.insert(t.id, t);
            }
            if retry {
                let wait = step
                    .retry
                    .backoff(attempt_in_budget(&step), None, rand::random::<f64>());
                step.next_attempt_at = Some(now + delta(wait));
                step.ready_at = now + delta(wait);
                meta["next_attempt_at"] = json!(step.next_attempt_at);
                report.retried += 1;
                log.wake = true;
            } else {
                if let Some(t) = tasks.get_mut(&step.task_id) {
                    t.steps_failed += 1;
                }
                report.failed += 1;
            }
            log.step(&mut step, event, to, now, meta);
            tx.step_update(&step).await?;
        }
        self.settle_and_write(tx, log, tasks, now).await?;
        Ok(report)
    }

    /// When the earliest scheduled retry for these handler keys falls due, if any.
    pub async fn next_retry_at(&self, handler_keys: &[String]) -> Result<Option<Timestamp>> {
        self.store()?.next_retry_at(handler_keys).await
    }

    // ---------------------------------------------------------------- introspection

    /// Why each step of a task is or is not ready.
    pub async fn explain(&self, task_id: Uuid) -> Result<Explain> {
        let store = self.store()?;
        let task = store
            .task_get(task_id)
            .await?
            .ok_or_else(|| Error::not_found("task", task_id))?;
        let steps = store.step_list(task_id).await?;
        let edges = store.edge_list(task_id).await?;
        let mut keys: Vec<String> = steps.iter().filter_map(|s| s.concurrency_key.clone()).collect();
        keys.sort();
        keys.dedup();
        let running: HashMap<String, i64> = store.step_running_counts(&keys).await?.into_iter().collect();
        let mut ex = explain_rows(&task, &steps, &edges, &running, self.now());
        if let Some(name) = task
            .initiator
            .as_deref()
            .and_then(|i| i.strip_prefix(crate::schedule::INITIATOR_PREFIX))
        {
            if let Some(s) = store.schedule_get(name).await? {
                ex.schedule = Some(s.name);
                ex.schedule_next_fire_at = s.next_fire_at;
            }
        }
        Ok(ex)
    }

    /// Counts of a task's steps, its execution status and the recommended next action.
    pub async fn execution_context(&self, task_id: Uuid) -> Result<ExecutionContext> {
        let ex = self.explain(task_id).await?;
        Ok(execution_context_of(&ex))
    }

    /// The dependency level of each step of a task.
    pub async fn dependency_levels(&self, task_id: Uuid) -> Result<Vec<DependencyLevel>> {
        let store = self.store()?;
        if store.task_get(task_id).await?.is_none() {
            return Err(Error::not_found("task", task_id));
        }
        let steps = store.step_list(task_id).await?;
        let edges = store.edge_list(task_id).await?;
        Ok(levels_of(&steps, &edges))
    }

    pub(crate) fn store_for_analytics(&self) -> Result<&Arc<dyn Store>> {
        self.store()
    }
}

impl Log {
    async fn write_and_commit(&self, mut tx: Box<dyn StoreTx>) -> Result<()> {
        if !self.steps.is_empty() || !self.tasks.is_empty() {
            self.write(&mut tx).await?;
        }
        tx.commit().await
    }
}

/// Counts a step's resolution on its task.
/// Takes the start-time parent away from `step` if it is a pending root of a held task (`children` are the
/// task's steps that have parents); says whether it did.
fn lift_hold(step: &mut Step, children: &HashSet<Uuid>, now: Timestamp) -> bool {
    let lifted = !children.contains(&step.id) && step.state == StepState::Pending && step.unfinished_parents > 0;
    if lifted {
        step.unfinished_parents -= 1;
        step.ready_at = now;
        step.updated_at = now;
    }
    lifted
}

fn log_and_count_resolution(task: &mut Task, from: StepState) {
    if from == StepState::Error {
        task.steps_failed -= 1;
    }
    task.steps_succeeded += 1;
}

/// Whether `token` still holds the claim on `step`.
/// A claim request's own checks, before anything is read or written.
fn check_claim_request(req: &ClaimRequest) -> Result<()> {
    if req.handler_keys.is_empty() {
        return Err(Error::field(
            "claim",
            "handler_keys",
            "expected at least one handler key",
        ));
    }
    if req.limit == 0 || req.limit > MAX_CLAIM_LIMIT {
        return Err(Error::field(
            "claim",
            "limit",
            format!("expected 1..={MAX_CLAIM_LIMIT}, found {}", req.limit),
        ));
    }
    check_lease("claim", req.lease)?;
    if req.worker_id.is_empty() {
        return Err(Error::field("claim", "worker_id", "expected a non-empty worker id"));
    }
    Ok(())
}

fn claim_params(req: &ClaimRequest, now: Timestamp) -> ClaimParams {
    ClaimParams {
        worker_id: req.worker_id.clone(),
        handler_keys: req.handler_keys.clone(),
        limit: req.limit,
        now,
        lease_expires_at: now + delta(req.lease),
    }
}

/// What a claim took inside its transaction: the claimed rows and their inputs.
#[derive(Default)]
struct Claimed {
    steps: Vec<Step>,
    inputs: Vec<crate::store::ClaimInput>,
}

/// The handler's view of each claimed step, built once the claim has committed.
fn contexts(claimed: Claimed, params: &ClaimParams) -> Result<Vec<StepContext>> {
    if claimed.steps.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_id: HashMap<Uuid, crate::store::ClaimInput> =
        claimed.inputs.into_iter().map(|i| (i.step_id, i)).collect();
    let mut out = Vec::with_capacity(claimed.steps.len());
    for s in claimed.steps {
        let input = by_id
            .remove(&s.id)
            .ok_or_else(|| Error::Internal(format!("claimed step {} has no inputs", s.id)))?;
        let started = s.started_at.unwrap_or(params.now);
        out.push(StepContext {
            token: ClaimToken {
                step_id: s.id,
                attempt: s.attempts,
            },
            task_id: s.task_id,
            step_id: s.id,
            namespace: input.namespace,
            task_name: input.task_name,
            step_name: s.name,
            handler_key: s.handler_key,
            attempt: s.attempts,
            max_attempts: s.max_attempts,
            context: input.context,
            config: s.config,
            dependency_results: input.dependency_results.into_iter().collect::<BTreeMap<_, _>>(),
            deadline: started + TimeDelta::seconds(s.timeout_seconds),
            lease_expires_at: s.lease_expires_at.unwrap_or(params.lease_expires_at),
        });
    }
    debug!(claimed = out.len(), "claimed");
    Ok(out)
}

fn check_claim(step: &Step, token: ClaimToken) -> Result<()> {
    let stale = |reason: String| Error::StaleClaim {
        step_id: step.id.to_string(),
        attempt: token.attempt,
        reason,
    };
    if step.attempts != token.attempt {
        return Err(stale(format!("the step is on attempt {}", step.attempts)));
    }
    match step.state {
        StepState::InProgress => Ok(()),
        // A cancelled step rejects the outcome as the transition table says.
        StepState::Cancelled => step.state.apply(StepEvent::Complete, step.id).map(|_| ()),
        s => Err(stale(format!("the claim no longer holds: the step is {s}"))),
    }
}

/// The attempt number within the current budget (1-based), which drives the backoff.
fn attempt_in_budget(step: &Step) -> u32 {
    let budget = i64::from(step.retry.attempt_budget());
    (step.attempts - (step.max_attempts - budget)).clamp(1, i64::from(u32::MAX)) as u32
}

/// Finalization: runs in the transaction of every terminal step transition.
///
/// - every step succeeded: the task completes;
/// - a step failed and nothing else can run: the task errors (blocked steps stay pending);
/// - the task is in error but an operator made work runnable again: it resumes.
async fn settle(tx: &mut Box<dyn StoreTx>, log: &mut Log, task: &mut Task, now: Timestamp) -> Result<()> {
    if !matches!(
        task.state,
        TaskState::Pending | TaskState::InProgress | TaskState::Error
    ) {
        return Ok(());
    }
    if task.steps_succeeded == task.steps_total {
        let to = task.state.apply(TaskEvent::Complete, task.id)?;
        log.task(task, TaskEvent::Complete, to, now, Value::Null);
        return Ok(());
    }
    if task.steps_failed > 0 || task.state == TaskState::Error {
        let active = tx.task_active_step_count(task.id).await?;
        if active == 0 && task.state != TaskState::Error {
            let to = task.state.apply(TaskEvent::Fail, task.id)?;
            log.task(
                task,
                TaskEvent::Fail,
                to,
                now,
                json!({"failed_steps": task.steps_failed}),
            );
        } else if active > 0 && task.state == TaskState::Error {
            let to = task.state.apply(TaskEvent::Resume, task.id)?;
            log.task(task, TaskEvent::Resume, to, now, Value::Null);
        }
    }
    Ok(())
}

/// A checked task request's rows, not yet written.
struct PreparedTask {
    key: Option<String>,
    task: Task,
    steps: Vec<Step>,
    edges: Vec<Edge>,
    log: Log,
}

/// Checks that a task or schedule context is a JSON object.
fn check_context_object(what: &'static str, context: &Value) -> Result<()> {
    if context.is_object() {
        return Ok(());
    }
    Err(Error::field(
        what,
        "context",
        format!("expected a JSON object, found {}", crate::template::type_name(context)),
    ))
}

/// Checks a task or schedule priority against the template bounds.
fn check_priority(what: &'static str, priority: Option<i32>) -> Result<()> {
    match priority {
        Some(p) if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&p) => Err(Error::field(
            what,
            "priority",
            format!("expected an integer in {}..={MAX_PRIORITY}, found {p}", -MAX_PRIORITY),
        )),
        _ => Ok(()),
    }
}

/// The concurrency key of each template step (in declaration order) for a task of `context`; a pointer that
/// finds no scalar is a `validation` error, raised before anything is written.
fn concurrency_keys(rec: &TemplateRecord, context: &Value) -> Result<Vec<Option<String>>> {
    rec.template
        .steps
        .iter()
        .map(|s| {
            s.concurrency
                .as_ref()
                .map(|c| c.resolve(&rec.namespace, &rec.name, &s.name, context))
                .transpose()
        })
        .collect()
}

fn build_task(
    rec: &TemplateRecord,
    req: &CreateTask,
    tags: Value,
    keys: &[Option<String>],
    now: Timestamp,
) -> (Task, Vec<Step>, Vec<Edge>, Log) {
    let t = &rec.template;
    let task_id = new_id();
    let mut log = Log {
        wake: true,
        ..Log::default()
    };
    let mut task = Task {
        id: task_id,
        template_id: rec.id,
        namespace: rec.namespace.clone(),
        name: rec.name.clone(),
        version: rec.version.clone(),
        state: TaskState::Pending,
        context: req.context.clone(),
        tags,
        idempotency_key: req.idempotency_key.clone(),
        initiator: req.initiator.clone(),
        source_system: req.source_system.clone(),
        reason: req.reason.clone(),
        steps_total: t.steps.len() as i64,
        steps_succeeded: 0,
        steps_failed: 0,
        transition_count: 1,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        priority: req.priority.or(t.priority).unwrap_or(0),
        run_at: req.run_at,
        held_until: req.run_at.filter(|at| *at > now),
    };
    // A held task's root steps wait for its start time as for one more parent.
    let ready_at = task.held_until.unwrap_or(now);
    log.push_task(TaskTransition {
        id: new_id(),
        task_id,
        from_state: None,
        to_state: TaskState::Pending,
        event: None,
        metadata: {
            let mut m = json!({"initiator": req.initiator, "source_system": req.source_system, "reason": req.reason});
            if let Some(at) = task.held_until {
                m["run_at"] = json!(at);
            }
            m
        },
        sort_key: 1,
        created_at: now,
    });
    // Ids are minted in topological order so that claims (oldest id first) favour upstream steps.
    let order = t.topological_order();
    let mut ids = vec![Uuid::nil(); t.steps.len()];
    for &i in &order {
        ids[i] = new_id();
    }
    let index: HashMap<&str, usize> = t.steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut steps = Vec::with_capacity(t.steps.len());
    let mut edges = Vec::new();
    for (i, s) in t.steps.iter().enumerate() {
        for d in &s.depends_on {
            edges.push(Edge {
                task_id,
                parent_id: ids[index[d.as_str()]],
                child_id: ids[i],
            });
        }
        let step = Step {
            id: ids[i],
            task_id,
            name: s.name.clone(),
            handler_key: s.handler.clone(),
            position: i as i32,
            state: StepState::Pending,
            attempts: 0,
            max_attempts: i64::from(s.retry.attempt_budget()),
            retry: s.retry.clone(),
            timeout_seconds: i64::from(s.timeout_seconds),
            config: s.config.clone(),
            unfinished_parents: s.depends_on.len() as i64
                + i64::from(s.depends_on.is_empty() && task.held_until.is_some()),
            next_attempt_at: None,
            lease_expires_at: None,
            worker_id: None,
            result: None,
            error: None,
            transition_count: 1,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            priority: s.priority.unwrap_or(task.priority),
            ready_at,
            concurrency_key: keys[i].clone(),
            concurrency_limit: s.concurrency.as_ref().map(|c| c.limit as i32),
        };
        log.push_step(
            StepTransition {
                id: new_id(),
                step_id: step.id,
                task_id,
                from_state: None,
                to_state: StepState::Pending,
                event: None,
                attempt: 0,
                worker_id: None,
                metadata: Value::Null,
                sort_key: 1,
                created_at: now,
            },
            step.name.clone(),
        );
        steps.push(step);
    }
    task.transition_count = 1;
    (task, steps, edges, log)
}

/// Readiness of every step from loaded rows; `running` holds how many steps of each concurrency key are
/// `in_progress` (a key left out has none).
pub fn explain_rows(
    task: &Task,
    steps: &[Step],
    edges: &[Edge],
    running: &HashMap<String, i64>,
    now: Timestamp,
) -> Explain {
    let by_id: HashMap<Uuid, &Step> = steps.iter().map(|s| (s.id, s)).collect();
    let mut parents: HashMap<Uuid, Vec<(&str, StepState)>> = HashMap::new();
    for e in edges {
        if let Some(p) = by_id.get(&e.parent_id) {
            parents.entry(e.child_id).or_default().push((p.name.as_str(), p.state));
        }
    }
    let empty = Vec::new();
    Explain {
        task_id: task.id,
        task_state: task.state,
        scheduled_for: readiness::scheduled_for(task.held_until, now),
        schedule: None,
        schedule_next_fire_at: None,
        steps: steps
            .iter()
            .map(|s| {
                readiness::evaluate(
                    s,
                    parents.get(&s.id).unwrap_or(&empty),
                    task.state,
                    task.held_until,
                    s.concurrency_key
                        .as_ref()
                        .and_then(|k| running.get(k).copied())
                        .unwrap_or(0),
                    now,
                )
            })
            .collect(),
    }
}

fn execution_context_of(ex: &Explain) -> ExecutionContext {
    let count = |st: StepState| ex.steps.iter().filter(|s| s.state == st).count() as i64;
    let ready = ex.steps.iter().filter(|s| s.ready).count() as i64;
    let blocked = ex
        .steps
        .iter()
        .filter(|s| s.state == StepState::Pending && !s.ready && !s.blocked_by.is_empty())
        .filter(|s| blocked_by_failure(ex, &s.name))
        .count() as i64;
    let total = ex.steps.len() as i64;
    let (complete, resolved) = (count(StepState::Complete), count(StepState::ResolvedManually));
    let (in_progress, waiting, failed) = (
        count(StepState::InProgress),
        count(StepState::WaitingForRetry),
        count(StepState::Error),
    );
    let (status, action) = if ex.task_state == TaskState::Cancelled {
        (ExecutionStatus::Cancelled, RecommendedAction::None)
    } else if complete + resolved == total {
        (ExecutionStatus::AllComplete, RecommendedAction::None)
    } else if ready > 0 {
        (ExecutionStatus::HasReadySteps, RecommendedAction::ExecuteReadySteps)
    } else if in_progress > 0 {
        (ExecutionStatus::Processing, RecommendedAction::WaitForCompletion)
    } else if waiting > 0 {
        (ExecutionStatus::WaitingForRetry, RecommendedAction::WaitForRetry)
    } else if failed > 0 || blocked > 0 {
        (ExecutionStatus::BlockedByFailures, RecommendedAction::HandleFailures)
    } else {
        (ExecutionStatus::Processing, RecommendedAction::WaitForCompletion)
    };
    ExecutionContext {
        task_id: ex.task_id,
        task_state: ex.task_state,
        total_steps: total,
        pending_steps: count(StepState::Pending),
        ready_steps: ready,
        in_progress_steps: in_progress,
        waiting_for_retry_steps: waiting,
        completed_steps: complete,
        failed_steps: failed,
        cancelled_steps: count(StepState::Cancelled),
        resolved_manually_steps: resolved,
        blocked_steps: blocked,
        execution_status: status,
        recommended_action: action,
        completion_ratio: if total == 0 {
            0.0
        } else {
            (complete + resolved) as f64 / total as f64
        },
    }
}

/// Whether a pending step is held up, directly or through its ancestors, by a failed or cancelled step.
fn blocked_by_failure(ex: &Explain, name: &str) -> bool {
    let by_name: HashMap<&str, &readiness::StepReadiness> = ex.steps.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut stack = vec![name];
    let mut seen = HashSet::new();
    while let Some(n) = stack.pop() {
        let Some(s) = by_name.get(n) else { continue };
        if !s.blocked_by_failure.is_empty() {
            return true;
        }
        for p in &s.blocked_by {
            if seen.insert(p.as_str()) {
                stack.push(p.as_str());
            }
        }
    }
    false
}

fn levels_of(steps: &[Step], edges: &[Edge]) -> Vec<DependencyLevel> {
    let mut parents: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for e in edges {
        parents.entry(e.child_id).or_default().push(e.parent_id);
    }
    let mut level: HashMap<Uuid, u32> = HashMap::new();
    // Steps are few per task and acyclic; settle levels by repeated passes in position order.
    let mut remaining: Vec<&Step> = steps.iter().collect();
    while !remaining.is_empty() {
        let before = remaining.len();
        remaining.retain(|s| {
            let ps = parents.get(&s.id).map(Vec::as_slice).unwrap_or(&[]);
            if ps.iter().all(|p| level.contains_key(p)) {
                let l = ps.iter().map(|p| level[p] + 1).max().unwrap_or(0);
                level.insert(s.id, l);
                false
            } else {
                true
            }
        });
        if remaining.len() == before {
            break;
        }
    }
    let mut out: Vec<DependencyLevel> = steps
        .iter()
        .map(|s| DependencyLevel {
            step_id: s.id,
            name: s.name.clone(),
            level: level.get(&s.id).copied().unwrap_or(0),
        })
        .collect();
    out.sort_by_key(|d| d.level);
    out
}

fn semver_of(v: &str) -> semver::Version {
    semver::Version::parse(v).unwrap_or_else(|_| semver::Version::new(0, 0, 0))
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Sleeps on the runtime's timer. Without the `runtime` feature only the memory store exists, whose
/// operator actions are never busy, so there is nothing to wait for.
async fn pause_for(d: Duration) {
    #[cfg(feature = "runtime")]
    tokio::time::sleep(d).await;
    #[cfg(not(feature = "runtime"))]
    let _ = d;
}

/// Opens the store `url` names with the options of an engine; `connect` and `reopen` share it.
async fn open_store(url: &str, options: &EngineOptions) -> Result<Arc<dyn Store>> {
    crate::store::open(
        url,
        &StoreOptions {
            migrate: options.migrate,
            max_connections: options.max_connections,
        },
    )
    .await
}
