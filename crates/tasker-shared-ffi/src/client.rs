//! The `Client` handle: one store connection (pool) per client, shared by everything made from it.
//!
//! Call convention, the same on every type of this crate: `x(…)` blocks the calling thread until the work
//! is done (Ruby, Python and the JVM call it with their interpreter lock released), and `x_async(…)` is an
//! `async fn` whose work runs on the shared runtime, so that any executor (napi's Promises) can await it.
//! Calls that never wait (`subscribe`, `advance_clock_ms`, `is_closed`, …) have only the plain form.
//!
//! The blocking forms, `close`, and worker sessions need the `native` feature (the shared runtime); without
//! it each `x_async` runs in place on the executor that awaits it.

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use web_time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tasker_core::engine::{CreateTask, EngineOptions};
use tasker_core::{parse_id, Clock, Engine, ManualClock, SystemClock};

use crate::dto::*;
use crate::error::{FfiError, FfiResult};
use crate::events::{EventFilterInput, Subscription};
use crate::runtime;
#[cfg(any(feature = "native", feature = "local"))]
use crate::worker::{WorkerOptions, WorkerSession};

/// Which clock the engine of a client reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockKind {
    /// The wall clock.
    #[default]
    System,
    /// A clock that moves only through [`Client::advance_clock_ms`]; for tests and scenario replays.
    Manual,
}

impl FromStr for ClockKind {
    type Err = FfiError;
    fn from_str(s: &str) -> FfiResult<Self> {
        match s {
            "system" => Ok(ClockKind::System),
            "manual" => Ok(ClockKind::Manual),
            other => Err(FfiError::validation(
                "options.clock",
                format!("expected system or manual, found {other:?}"),
            )),
        }
    }
}

/// How a client is opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientOptions {
    /// `system` (default) or `manual`.
    pub clock: ClockKind,
    /// Where a manual clock starts; 2030-01-01T00:00:00Z when absent.
    pub manual_clock_start: Option<Timestamp>,
    /// Apply pending migrations at open (default true).
    pub migrate: bool,
    /// Connections in the pool of a SQL store (default 8).
    pub max_connections: u32,
    /// Events each subscription buffers before the oldest are dropped (default 4096).
    pub event_capacity: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        let e = EngineOptions::default();
        ClientOptions {
            clock: ClockKind::System,
            manual_clock_start: None,
            migrate: e.migrate,
            max_connections: e.max_connections,
            event_capacity: e.event_capacity,
        }
    }
}

/// What to create with [`Client::create_task`], besides the template's namespace and name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateTaskOptions {
    /// The newest registered version (by semver) when absent.
    pub version: Option<String>,
    /// A JSON object checked against the template's `input_schema`; `{}` when absent.
    pub context: Option<Value>,
    /// A repeat with the same key returns the existing task.
    pub idempotency_key: Option<String>,
    /// A JSON object of string values.
    pub tags: Option<Value>,
    pub initiator: Option<String>,
    pub source_system: Option<String>,
    pub reason: Option<String>,
    /// Claims take higher priorities first (-1000..=1000); the template's priority, else 0, when absent.
    pub priority: Option<i64>,
    /// An RFC 3339 time: no step runs before it. A time already past starts the task at once.
    pub run_at: Option<String>,
    /// Seconds from now: the same as `run_at` at that time. At most one of the two.
    pub delay_seconds: Option<f64>,
}

/// How [`Client::register_schedule`] registers a schedule, besides its name, template and cron expression.
/// Unknown keys are refused, so that a misspelt option fails instead of being ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleOptions {
    /// The template version; the newest registered at each fire when absent.
    pub version: Option<String>,
    /// An IANA zone such as `Europe/Berlin` that the expression is read in; `UTC` when absent.
    pub timezone: Option<String>,
    /// The context of every task it creates: a JSON object checked against the template's schema now; `{}`
    /// when absent.
    pub context: Option<Value>,
    /// The priority of its tasks (-1000..=1000); the template's when absent.
    pub priority: Option<i64>,
    /// `skip` (default) or `run_once`: what happens to occurrences missed while nothing ran.
    pub misfire: Option<String>,
}

/// Which tasks [`Client::tasks`] lists: newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskFilterInput {
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// A task state, for example `error`.
    pub state: Option<String>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<u32>,
    /// Only tasks with ids strictly below this one (paging).
    pub before: Option<String>,
}

/// How far back the slowest-steps and slowest-tasks calls look when the caller gives no `since`: the last 24
/// hours by the client's clock. Defined here once for every binding, so that `slowest_steps(10)` reads a
/// bounded window of a long history in Ruby and Python alike.
pub const DEFAULT_ANALYTICS_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Which finished work the slowest-steps and slowest-tasks calls look at. Unknown keys are refused, so that
/// a misspelt filter fails instead of silently widening the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsFilterInput {
    /// Absent: the last [`DEFAULT_ANALYTICS_WINDOW`]. `null`: the whole history. A time: work finished at or
    /// after it.
    #[serde(
        deserialize_with = "since_input",
        skip_serializing_if = "SinceInput::is_default_window"
    )]
    pub since: SinceInput,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// The start of the window of [`AnalyticsFilterInput`]: a key left out, a `null`, or a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SinceInput {
    /// The last [`DEFAULT_ANALYTICS_WINDOW`] before now.
    #[default]
    DefaultWindow,
    /// Everything ever finished.
    All,
    At(Timestamp),
}

impl SinceInput {
    fn is_default_window(&self) -> bool {
        *self == SinceInput::DefaultWindow
    }

    /// The window's start for a call made at `now`; `None` for the whole history.
    pub fn resolve(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            SinceInput::DefaultWindow => Some(
                chrono::TimeDelta::from_std(DEFAULT_ANALYTICS_WINDOW)
                    .ok()
                    .and_then(|d| now.checked_sub_signed(d))
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            ),
            SinceInput::All => None,
            SinceInput::At(t) => Some(t),
        }
    }
}

impl Serialize for SinceInput {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SinceInput::At(t) => t.serialize(s),
            SinceInput::All | SinceInput::DefaultWindow => s.serialize_none(),
        }
    }
}

/// A present `since` key: `null` is the whole history, anything else must be a time.
fn since_input<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SinceInput, D::Error> {
    Ok(Option::<Timestamp>::deserialize(d)?.map_or(SinceInput::All, SinceInput::At))
}

struct Inner {
    engine: Engine,
    /// Bumped by every rebuild, so concurrent refreshes rebuild once.
    generation: u64,
}

struct Handle {
    url: String,
    options: ClientOptions,
    clock: Arc<dyn Clock>,
    manual: Option<ManualClock>,
    pid: u32,
    opened_at: Instant,
    opened_wall: Timestamp,
    state: Mutex<Option<Arc<Inner>>>,
    refreshes: AtomicU32,
    refresh: tokio::sync::Mutex<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.pid != crate::pid() {
            // The pool's sockets belong to the parent process; tearing them down here would break it.
            if let Some(inner) = self.state.get_mut().map(Option::take).unwrap_or_default() {
                std::mem::forget(inner);
            }
        }
    }
}

/// A handle on one store. Cheap to clone: clones share the store pool, and `close` closes it for all.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &tasker_core::url::redact(&self.handle.url))
            .field("closed", &self.is_closed())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn id(field: &str, s: &str) -> FfiResult<uuid::Uuid> {
    Ok(parse_id(field, s)?)
}

/// Stores whose data lives only in this process cannot be rebuilt without losing it.
fn is_ephemeral(url: &str) -> bool {
    url == "memory:" || url == "memory://" || url.starts_with("sqlite::memory:") || url.contains("mode=memory")
}

macro_rules! blocking {
    ($(#[$doc:meta])* fn $name:ident => $async_name:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        $(#[$doc])*
        #[doc = ""]
        #[doc = concat!("Blocks until done; [`Self::", stringify!($async_name), "`] is the async form.")]
        #[cfg(feature = "native")]
        pub fn $name(&self, $($arg: $ty),*) -> FfiResult<$ret> {
            runtime::block_on(self.$async_name($($arg),*))
        }
    };
}
// For worker.rs, which exists only with `native` or `local`.
#[cfg(any(feature = "native", feature = "local"))]
pub(crate) use blocking;

impl Client {
    /// Opens the store `url` names: `memory:`, `sqlite::memory:`, `sqlite://path` or `postgres://…`.
    #[cfg(feature = "native")]
    pub fn open(url: &str, options: ClientOptions) -> FfiResult<Client> {
        runtime::block_on(Self::open_async(url, options))
    }

    /// The async form of [`Client::open`].
    pub async fn open_async(url: &str, options: ClientOptions) -> FfiResult<Client> {
        let manual = match options.clock {
            ClockKind::Manual => Some(match options.manual_clock_start {
                Some(t) => ManualClock::new(t),
                None => ManualClock::fixed(),
            }),
            ClockKind::System => None,
        };
        let clock: Arc<dyn Clock> = match &manual {
            Some(m) => Arc::new(m.clone()),
            None => Arc::new(SystemClock),
        };
        let engine = connect(url.to_string(), engine_options(&options, clock.clone())).await?;
        Ok(Client {
            handle: Arc::new(Handle {
                url: url.to_string(),
                options,
                clock,
                manual,
                pid: crate::pid(),
                opened_at: Instant::now(),
                opened_wall: SystemClock.now(),
                state: Mutex::new(Some(Arc::new(Inner { engine, generation: 0 }))),
                refreshes: AtomicU32::new(0),
                refresh: tokio::sync::Mutex::new(()),
            }),
        })
    }

    fn check_pid(&self) -> FfiResult<()> {
        let current = crate::pid();
        if self.handle.pid != current {
            return Err(FfiError::forked("client", self.handle.pid, current));
        }
        Ok(())
    }

    fn inner(&self) -> FfiResult<Arc<Inner>> {
        self.check_pid()?;
        lock(&self.handle.state)
            .clone()
            .ok_or_else(|| FfiError::closed("client is closed; open a new one"))
    }

    /// The engine behind this client; a `closed` error after `close`, a `configuration` error after fork.
    pub fn engine(&self) -> FfiResult<Engine> {
        Ok(self.inner()?.engine.clone())
    }

    /// Runs `f` with the engine on the shared runtime.
    async fn call<T, Fut>(&self, f: impl FnOnce(Engine) -> Fut) -> FfiResult<T>
    where
        T: Send + 'static,
        Fut: Future<Output = tasker_core::Result<T>> + Send + 'static,
    {
        let fut = f(self.engine()?);
        runtime::spawn(async move { Ok(fut.await?) }).await
    }

    /// Whether `close` was called. Never fails.
    pub fn is_closed(&self) -> bool {
        lock(&self.handle.state).is_none()
    }

    /// In a forked child, only marks the handle closed, since the connections belong to the parent; returns
    /// whether it did.
    fn close_in_child(&self) -> bool {
        if self.handle.pid == crate::pid() {
            return false;
        }
        if let Some(inner) = lock(&self.handle.state).take() {
            std::mem::forget(inner);
        }
        true
    }

    /// Closes the store. Idempotent; every later call is a `closed` error. In a forked child it only marks
    /// the handle closed: the connections belong to the parent.
    #[cfg(feature = "native")]
    pub fn close(&self) -> FfiResult<()> {
        if self.close_in_child() {
            return Ok(());
        }
        let Some(inner) = lock(&self.handle.state).take() else {
            return Ok(());
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Called from async code (a destructor, say), where blocking would stall the executor.
            runtime::spawn_background(async move { inner.engine.close().await })?;
            return Ok(());
        }
        runtime::block_on(async move {
            inner.engine.close().await;
            Ok(())
        })
    }

    /// The async form of [`Client::close`].
    pub async fn close_async(&self) -> FfiResult<()> {
        if self.close_in_child() {
            return Ok(());
        }
        let taken = lock(&self.handle.state).take();
        match taken {
            Some(inner) => {
                runtime::spawn(async move {
                    inner.engine.close().await;
                    Ok(())
                })
                .await
            }
            None => Ok(()),
        }
    }

    blocking!(
        /// Checks the store with a real round trip; if that fails, reopens it from the stored URL (a new
        /// pool) and checks again. Returns whether it rebuilt. In-memory stores cannot be rebuilt: their
        /// failure is returned as is.
        fn validate_or_refresh => validate_or_refresh_async() -> bool
    );

    /// The async form of [`Client::validate_or_refresh`].
    pub async fn validate_or_refresh_async(&self) -> FfiResult<bool> {
        let client = self.clone();
        runtime::spawn(async move { client.refresh_inner(false).await }).await
    }

    blocking!(
        /// Reopens the store from the stored URL now, whether or not the old pool still answers: after a
        /// database failover or a credential rotation, when old connections reach the wrong server. Calls in
        /// flight finish on the old pool, which then closes; subscriptions and workers carry on over the new
        /// one. In-memory stores cannot be rebuilt.
        fn refresh => refresh_async() -> ()
    );

    /// The async form of [`Client::refresh`].
    pub async fn refresh_async(&self) -> FfiResult<()> {
        let client = self.clone();
        runtime::spawn(async move { client.refresh_inner(true).await.map(|_| ()) }).await
    }

    async fn refresh_inner(&self, force: bool) -> FfiResult<bool> {
        let seen = self.inner()?;
        // Why the store is rebuilt: the failed check, or nothing when the caller asked for it.
        let first = if force {
            None
        } else {
            match seen.engine.ping().await {
                Ok(()) => return Ok(false),
                Err(e) => Some(FfiError::from(e)),
            }
        };
        let url = &self.handle.url;
        if is_ephemeral(url) {
            let why = format!(
                "the store {} lives only in memory, so it cannot be rebuilt",
                tasker_core::url::redact(url)
            );
            return Err(match first {
                Some(first) => first.context(why),
                None => FfiError::from(tasker_core::Error::Configuration(why)),
            });
        }
        let _one_at_a_time = self.handle.refresh.lock().await;
        let current = self.inner()?;
        if current.generation != seen.generation && !force {
            // Another caller rebuilt it while we waited; check what it built.
            current.engine.ping().await?;
            return Ok(true);
        }
        // The new engine keeps the old one's event bus, so subscriptions survive the rebuild.
        let reopened = {
            let (old, url) = (current.engine.clone(), url.clone());
            let options = engine_options(&self.handle.options, self.handle.clock.clone());
            runtime::spawn(async move { Ok(old.reopen(&url, options).await?) }).await
        };
        let engine = match reopened {
            Ok(e) => e,
            Err(e) => {
                let mut e = e.context(format!("reopening {} failed", tasker_core::url::redact(url)));
                e.causes.extend(first.map(|f| f.message));
                return Err(e);
            }
        };
        engine.ping().await?;
        let swapped = {
            let mut state = lock(&self.handle.state);
            match state.as_mut() {
                Some(slot) => Ok(std::mem::replace(
                    slot,
                    Arc::new(Inner {
                        engine,
                        generation: seen.generation + 1,
                    }),
                )),
                None => Err(engine),
            }
        };
        match swapped {
            Ok(old) => {
                self.handle.refreshes.fetch_add(1, Ordering::Relaxed);
                // In the background: closing a broken pool waits for its checked-out connections.
                #[cfg(feature = "native")]
                tokio::spawn(async move { old.engine.close().await });
                // Only the memory store is left without `native`, and it is never rebuilt; close in place.
                #[cfg(not(feature = "native"))]
                old.engine.close().await;
                Ok(true)
            }
            Err(engine) => {
                engine.close().await;
                Err(FfiError::closed("client was closed during validate_or_refresh"))
            }
        }
    }

    /// Store kind, pool size and idle connections, age, and the URL with the password redacted.
    pub fn health(&self) -> FfiResult<ClientHealth> {
        let inner = self.inner()?;
        let stats = inner.engine.pool_stats();
        Ok(ClientHealth {
            store_kind: inner.engine.store_kind().to_string(),
            url: tasker_core::url::redact(&self.handle.url),
            pool_size: stats.size,
            idle_connections: stats.idle,
            age_ms: u64::try_from(self.handle.opened_at.elapsed().as_millis()).unwrap_or(u64::MAX),
            opened_at: self.handle.opened_wall,
            pid: self.handle.pid,
            refreshes: self.handle.refreshes.load(Ordering::Relaxed),
            clock: match self.handle.manual {
                Some(_) => "manual".into(),
                None => "system".into(),
            },
        })
    }

    /// Which clock this client's engine reads. Never fails.
    pub fn clock_kind(&self) -> ClockKind {
        match self.handle.manual {
            Some(_) => ClockKind::Manual,
            None => ClockKind::System,
        }
    }

    /// The engine's manual clock, when it has one.
    pub fn manual_clock(&self) -> Option<ManualClock> {
        self.handle.manual.clone()
    }

    /// The current time by the engine's clock.
    pub fn now(&self) -> FfiResult<Timestamp> {
        Ok(self.inner()?.engine.now())
    }

    /// Moves a manual clock forward by `ms` milliseconds; a `configuration` error on the system clock.
    pub fn advance_clock_ms(&self, ms: i64) -> FfiResult<Timestamp> {
        self.inner()?;
        if ms < 0 {
            return Err(FfiError::validation("ms", format!("expected 0 or more, found {ms}")));
        }
        let manual = self.handle.manual.as_ref().ok_or_else(|| {
            FfiError::configuration(
                "advance_clock_ms needs a client opened with clock: manual; this one reads the system clock",
            )
        })?;
        manual.advance_ms(ms);
        Ok(manual.now())
    }

    /// Events from now on, filtered by task and name; see [`Subscription`] for the buffer bound.
    pub fn subscribe(&self, filter: EventFilterInput) -> FfiResult<Subscription> {
        let filter = filter.to_core()?;
        Ok(Subscription::new(self.engine()?.subscribe(filter)))
    }

    /// A worker session claiming for `options.handler_keys`; its heartbeats and maintenance run in the
    /// background on the shared runtime (with `local`, as local tasks on the JS event loop).
    #[cfg(any(feature = "native", feature = "local"))]
    pub fn worker_session(&self, options: WorkerOptions) -> FfiResult<WorkerSession> {
        WorkerSession::new(self.clone(), options)
    }

    // ------------------------------------------------------------------ templates

    blocking!(
        /// Validates and registers a template given as YAML or JSON text.
        fn register_template => register_template_async(text: &str) -> Registration
    );

    pub async fn register_template_async(&self, text: &str) -> FfiResult<Registration> {
        let text = text.to_string();
        self.call(|e| async move { e.register_template(&text).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Validates and registers a template given as a parsed document (a host map).
        fn register_template_value => register_template_value_async(value: &Value) -> Registration
    );

    pub async fn register_template_value_async(&self, value: &Value) -> FfiResult<Registration> {
        let value = value.clone();
        self.call(|e| async move { e.register_template_value(&value).await.map(Into::into) })
            .await
    }

    blocking!(
        /// A registered template; the newest version by semver when `version` is `None`.
        fn template => template_async(namespace: &str, name: &str, version: Option<&str>) -> TemplateInfo
    );

    pub async fn template_async(&self, namespace: &str, name: &str, version: Option<&str>) -> FfiResult<TemplateInfo> {
        let (ns, n, v) = (namespace.to_string(), name.to_string(), version.map(str::to_string));
        self.call(|e| async move { e.template(&ns, &n, v.as_deref()).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Every registered template version, by namespace, name and version.
        fn templates => templates_async() -> Vec<TemplateInfo>
    );

    pub async fn templates_async(&self) -> FfiResult<Vec<TemplateInfo>> {
        self.call(|e| async move { Ok(e.templates().await?.into_iter().map(Into::into).collect()) })
            .await
    }

    // ------------------------------------------------------------------ tasks

    blocking!(
        /// Creates a task of the template `namespace`/`name`; a repeated idempotency key returns the
        /// existing task.
        fn create_task => create_task_async(namespace: &str, name: &str, options: CreateTaskOptions) -> Task
    );

    pub async fn create_task_async(&self, namespace: &str, name: &str, options: CreateTaskOptions) -> FfiResult<Task> {
        let priority = options.priority.map(priority).transpose()?;
        let run_at = match (&options.run_at, options.delay_seconds) {
            (Some(_), Some(_)) => {
                return Err(FfiError::validation(
                    "delay_seconds",
                    "give run_at or delay_seconds, not both",
                ))
            }
            (Some(at), None) => Some(crate::objects::time("run_at", at)?),
            (None, Some(d)) => Some(self.engine()?.now() + later(d)?),
            (None, None) => None,
        };
        let req = CreateTask {
            priority,
            run_at,
            namespace: namespace.to_string(),
            name: name.to_string(),
            version: options.version,
            context: options.context.unwrap_or_else(|| Value::Object(Default::default())),
            idempotency_key: options.idempotency_key,
            tags: options.tags,
            initiator: options.initiator,
            source_system: options.source_system,
            reason: options.reason,
        };
        self.call(|e| async move { e.create_task(req).await.map(Into::into) })
            .await
    }

    blocking!(fn task => task_async(task_id: &str) -> Task);

    pub async fn task_async(&self, task_id: &str) -> FfiResult<Task> {
        let id = id("task_id", task_id)?;
        self.call(|e| async move { e.task(id).await.map(Into::into) }).await
    }

    blocking!(
        /// Tasks newest first, filtered and paged.
        fn tasks => tasks_async(filter: TaskFilterInput) -> Vec<Task>
    );

    pub async fn tasks_async(&self, filter: TaskFilterInput) -> FfiResult<Vec<Task>> {
        let filter = tasker_core::TaskFilter {
            namespace: filter.namespace,
            name: filter.name,
            state: filter
                .state
                .as_deref()
                .map(|s| {
                    s.parse::<tasker_core::TaskState>().map_err(|_| {
                        let all: Vec<&str> = tasker_core::TaskState::ALL.iter().map(|s| s.as_str()).collect();
                        FfiError::validation(
                            "filter.state",
                            format!("expected one of {}, found {s:?}", all.join(", ")),
                        )
                    })
                })
                .transpose()?,
            limit: filter.limit,
            before: filter.before.as_deref().map(|b| id("filter.before", b)).transpose()?,
        };
        self.call(|e| async move { Ok(e.tasks(&filter).await?.into_iter().map(Into::into).collect()) })
            .await
    }

    blocking!(
        /// The steps of a task, in template order.
        fn steps => steps_async(task_id: &str) -> Vec<Step>
    );

    pub async fn steps_async(&self, task_id: &str) -> FfiResult<Vec<Step>> {
        let id = id("task_id", task_id)?;
        self.call(|e| async move { Ok(e.steps(id).await?.into_iter().map(Into::into).collect()) })
            .await
    }

    blocking!(fn step => step_async(step_id: &str) -> Step);

    pub async fn step_async(&self, step_id: &str) -> FfiResult<Step> {
        let id = id("step_id", step_id)?;
        self.call(|e| async move { e.step(id).await.map(Into::into) }).await
    }

    blocking!(
        /// Why each step of a task is or is not ready.
        fn explain => explain_async(task_id: &str) -> Explain
    );

    pub async fn explain_async(&self, task_id: &str) -> FfiResult<Explain> {
        let id = id("task_id", task_id)?;
        self.call(|e| async move { e.explain(id).await.map(Into::into) }).await
    }

    blocking!(
        /// Counts of a task's steps, its execution status and the recommended next action.
        fn execution_context => execution_context_async(task_id: &str) -> ExecutionContext
    );

    pub async fn execution_context_async(&self, task_id: &str) -> FfiResult<ExecutionContext> {
        let id = id("task_id", task_id)?;
        self.call(|e| async move { e.execution_context(id).await.map(Into::into) })
            .await
    }

    blocking!(
        /// The dependency level of each step of a task, roots first.
        fn dependency_levels => dependency_levels_async(task_id: &str) -> Vec<DependencyLevel>
    );

    pub async fn dependency_levels_async(&self, task_id: &str) -> FfiResult<Vec<DependencyLevel>> {
        let id = id("task_id", task_id)?;
        self.call(|e| async move { Ok(e.dependency_levels(id).await?.into_iter().map(Into::into).collect()) })
            .await
    }

    blocking!(
        /// The audit trail of a task: its own transitions and those of its steps.
        fn transitions => transitions_async(task_id: &str) -> Transitions
    );

    pub async fn transitions_async(&self, task_id: &str) -> FfiResult<Transitions> {
        let id = id("task_id", task_id)?;
        self.call(|e| async move {
            let (task, steps) = e.transitions(id).await?;
            Ok(Transitions {
                task: task.into_iter().map(Into::into).collect(),
                steps: steps.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    // ------------------------------------------------------------------ operator actions

    blocking!(
        /// Cancels a task: every non-terminal step goes to `cancelled`; a later completion is rejected.
        fn cancel_task => cancel_task_async(task_id: &str, reason: Option<&str>) -> Task
    );

    pub async fn cancel_task_async(&self, task_id: &str, reason: Option<&str>) -> FfiResult<Task> {
        let id = id("task_id", task_id)?;
        let reason = reason.map(str::to_string);
        self.call(|e| async move { e.cancel_task(id, reason.as_deref()).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Starts a task created to start later now; one already started is returned as it is.
        fn run_task_now => run_task_now_async(task_id: &str) -> Task
    );

    pub async fn run_task_now_async(&self, task_id: &str) -> FfiResult<Task> {
        let id = id("task_id", task_id)?;
        self.call(|e| async move { e.run_task_now(id).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Retries a task in `error`: each failed step gets a fresh attempt budget.
        fn retry_task => retry_task_async(task_id: &str) -> Task
    );

    pub async fn retry_task_async(&self, task_id: &str) -> FfiResult<Task> {
        let id = id("task_id", task_id)?;
        self.call(|e| async move { e.retry_task(id).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Marks a `pending` or `error` step resolved with `result`; dependants may then run.
        fn resolve_step_manually => resolve_step_manually_async(step_id: &str, result: Value) -> Step
    );

    pub async fn resolve_step_manually_async(&self, step_id: &str, result: Value) -> FfiResult<Step> {
        let id = id("step_id", step_id)?;
        self.call(|e| async move { e.resolve_step_manually(id, result).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Marks a task in `error` as resolved by an operator; none of its steps runs again.
        fn resolve_task_manually => resolve_task_manually_async(task_id: &str, reason: Option<&str>) -> Task
    );

    pub async fn resolve_task_manually_async(&self, task_id: &str, reason: Option<&str>) -> FfiResult<Task> {
        let id = id("task_id", task_id)?;
        let reason = reason.map(str::to_string);
        self.call(|e| async move { e.resolve_task_manually(id, reason.as_deref()).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Recovers up to `limit` steps whose lease expired: each retries if attempts are left, and
        /// otherwise errors with `worker_lost`. Worker sessions also do this in the background.
        fn reap_expired_leases => reap_expired_leases_async(limit: u32) -> ReapReport
    );

    pub async fn reap_expired_leases_async(&self, limit: u32) -> FfiResult<ReapReport> {
        self.call(|e| async move { e.reap_expired_leases(limit).await.map(Into::into) })
            .await
    }

    // ------------------------------------------------------------------ schedules

    blocking!(
        /// Registers (or replaces) the schedule `name`: a task of `namespace`/`template` at each occurrence of
        /// `cron`. Registering an unchanged definition again leaves the schedule as it is.
        fn register_schedule => register_schedule_async(
            name: &str, namespace: &str, template: &str, cron: &str, options: ScheduleOptions
        ) -> Schedule
    );

    pub async fn register_schedule_async(
        &self,
        name: &str,
        namespace: &str,
        template: &str,
        cron: &str,
        options: ScheduleOptions,
    ) -> FfiResult<Schedule> {
        let priority = options.priority.map(priority).transpose()?;
        let misfire = match &options.misfire {
            Some(m) => m.parse::<tasker_core::schedule::Misfire>()?,
            None => Default::default(),
        };
        let req = tasker_core::schedule::RegisterSchedule {
            name: name.to_string(),
            namespace: namespace.to_string(),
            template: template.to_string(),
            version: options.version,
            cron: cron.to_string(),
            timezone: options.timezone,
            context: options.context.unwrap_or_else(|| Value::Object(Default::default())),
            priority,
            misfire,
        };
        self.call(|e| async move { e.register_schedule(req).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Stops a schedule from firing until it is resumed; a paused schedule has no next fire time.
        fn pause_schedule => pause_schedule_async(name: &str) -> Schedule
    );

    pub async fn pause_schedule_async(&self, name: &str) -> FfiResult<Schedule> {
        let name = name.to_string();
        self.call(|e| async move { e.pause_schedule(&name).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Lets a paused schedule fire again, from its next occurrence after now.
        fn resume_schedule => resume_schedule_async(name: &str) -> Schedule
    );

    pub async fn resume_schedule_async(&self, name: &str) -> FfiResult<Schedule> {
        let name = name.to_string();
        self.call(|e| async move { e.resume_schedule(&name).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Removes a schedule and returns it as it was; the tasks it created stay.
        fn remove_schedule => remove_schedule_async(name: &str) -> Schedule
    );

    pub async fn remove_schedule_async(&self, name: &str) -> FfiResult<Schedule> {
        let name = name.to_string();
        self.call(|e| async move { e.remove_schedule(&name).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Every registered schedule, by name.
        fn schedules => schedules_async() -> Vec<Schedule>
    );

    pub async fn schedules_async(&self) -> FfiResult<Vec<Schedule>> {
        self.call(|e| async move { Ok(e.schedules().await?.into_iter().map(Into::into).collect()) })
            .await
    }

    blocking!(fn schedule => schedule_async(name: &str) -> Schedule);

    pub async fn schedule_async(&self, name: &str) -> FfiResult<Schedule> {
        let name = name.to_string();
        self.call(|e| async move { e.schedule(&name).await.map(Into::into) })
            .await
    }

    blocking!(
        /// Creates the tasks of the schedules that fell due, one per occurrence however many processes call
        /// it. Worker sessions also do this in their maintenance passes.
        fn fire_schedules => fire_schedules_async() -> ScheduleReport
    );

    pub async fn fire_schedules_async(&self) -> FfiResult<ScheduleReport> {
        self.call(|e| async move { e.fire_schedules().await.map(Into::into) })
            .await
    }

    // ------------------------------------------------------------------ analytics

    blocking!(
        /// Tasks and steps by state, with retrying and exhausted counts.
        fn health_counts => health_counts_async() -> HealthCounts
    );

    pub async fn health_counts_async(&self) -> FfiResult<HealthCounts> {
        self.call(|e| async move { e.health_counts().await.map(Into::into) })
            .await
    }

    blocking!(
        /// Throughput, rates and durations of work finished at or after `since`.
        fn analytics_metrics => analytics_metrics_async(since: Timestamp) -> AnalyticsMetrics
    );

    pub async fn analytics_metrics_async(&self, since: Timestamp) -> FfiResult<AnalyticsMetrics> {
        self.call(|e| async move { e.analytics_metrics(since).await.map(Into::into) })
            .await
    }

    blocking!(
        /// The `limit` slowest finished steps, longest first; the last [`DEFAULT_ANALYTICS_WINDOW`] unless the
        /// filter says otherwise.
        fn slowest_steps => slowest_steps_async(filter: AnalyticsFilterInput, limit: usize) -> Vec<SlowStep>
    );

    pub async fn slowest_steps_async(&self, filter: AnalyticsFilterInput, limit: usize) -> FfiResult<Vec<SlowStep>> {
        self.call(|e| async move {
            let filter = analytics_filter(filter, e.now());
            Ok(e.slowest_steps(&filter, limit)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
        })
        .await
    }

    blocking!(
        /// The `limit` slowest finished tasks, longest first; the last [`DEFAULT_ANALYTICS_WINDOW`] unless the
        /// filter says otherwise.
        fn slowest_tasks => slowest_tasks_async(filter: AnalyticsFilterInput, limit: usize) -> Vec<SlowTask>
    );

    pub async fn slowest_tasks_async(&self, filter: AnalyticsFilterInput, limit: usize) -> FfiResult<Vec<SlowTask>> {
        self.call(|e| async move {
            let filter = analytics_filter(filter, e.now());
            Ok(e.slowest_tasks(&filter, limit)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
        })
        .await
    }
}

fn analytics_filter(f: AnalyticsFilterInput, now: Timestamp) -> tasker_core::AnalyticsFilter {
    tasker_core::AnalyticsFilter {
        since: f.since.resolve(now),
        namespace: f.namespace,
        name: f.name,
        version: f.version,
    }
}

/// A priority a host gave as any integer; out of `i32` is the same `validation` error the engine gives
/// for one out of range.
fn priority(p: i64) -> FfiResult<i32> {
    i32::try_from(p).map_err(|_| {
        let max = tasker_core::template::MAX_PRIORITY;
        FfiError::validation(
            "priority",
            format!("expected an integer in {}..={max}, found {p}", -max),
        )
    })
}

/// A delay a host gave in seconds, as a time span.
fn later(seconds: f64) -> FfiResult<chrono::TimeDelta> {
    let d = crate::objects::seconds(seconds, "delay_seconds")?;
    chrono::TimeDelta::from_std(d)
        .ok()
        .filter(|d| *d <= chrono::TimeDelta::days(36_500))
        .ok_or_else(|| FfiError::validation("delay_seconds", format!("expected at most 100 years, found {seconds}")))
}

fn engine_options(o: &ClientOptions, clock: Arc<dyn Clock>) -> EngineOptions {
    EngineOptions {
        clock,
        migrate: o.migrate,
        max_connections: o.max_connections,
        event_capacity: o.event_capacity,
    }
}

/// Connects on the shared runtime, where the pool's connections will live.
async fn connect(url: String, options: EngineOptions) -> FfiResult<Engine> {
    runtime::spawn(async move { Ok(Engine::connect(&url, options).await?) }).await
}

#[cfg(all(test, feature = "native"))]
impl Client {
    /// Pretends the handle was opened by another process, as a forked child sees it.
    pub(crate) fn pretend_opened_in(&self, pid: u32) -> Client {
        let h = &self.handle;
        Client {
            handle: Arc::new(Handle {
                url: h.url.clone(),
                options: h.options.clone(),
                clock: h.clock.clone(),
                manual: h.manual.clone(),
                pid,
                opened_at: h.opened_at,
                opened_wall: h.opened_wall,
                state: Mutex::new(lock(&h.state).clone()),
                refreshes: AtomicU32::new(0),
                refresh: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    fn memory() -> Client {
        Client::open("memory:", ClientOptions::default()).unwrap()
    }

    const TEMPLATE: &str = r#"
namespace: unit
name: pair
version: 1.0.0
defaults: { retry: { max_attempts: 2, backoff: none } }
steps:
  - { name: a, handler: unit.a }
  - { name: b, handler: unit.b, depends_on: [a] }
"#;

    #[test]
    fn analytics_filter_tells_a_missing_since_from_a_null_one() {
        let lift = |v| crate::objects::options::<AnalyticsFilterInput>(v, "filter");
        assert_eq!(lift(json!({})).unwrap().since, SinceInput::DefaultWindow);
        assert_eq!(lift(Value::Null).unwrap().since, SinceInput::DefaultWindow);
        assert_eq!(lift(json!({"since": null})).unwrap().since, SinceInput::All);
        let at = lift(json!({"since": "2026-01-02T03:04:05Z", "namespace": "ns"})).unwrap();
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .to_utc();
        assert_eq!((at.since, at.namespace.as_deref()), (SinceInput::At(t), Some("ns")));
        assert_eq!(
            lift(json!({"since": "yesterday"})).unwrap_err().kind,
            ErrorKind::Validation
        );
        let typo = lift(json!({"namespce": "ns"})).unwrap_err();
        assert_eq!(typo.kind, ErrorKind::Validation);
        assert!(typo.message.contains("namespce"), "{typo}");

        assert_eq!(
            SinceInput::DefaultWindow.resolve(t),
            Some(t - chrono::TimeDelta::hours(24))
        );
        assert_eq!(SinceInput::All.resolve(t), None);
        assert_eq!(SinceInput::At(t).resolve(t + chrono::TimeDelta::days(9)), Some(t));
    }

    #[test]
    fn use_after_close_is_closed_and_close_is_idempotent() {
        let c = memory();
        c.register_template(TEMPLATE).unwrap();
        let clone = c.clone();
        c.close().unwrap();
        c.close().unwrap();
        assert!(clone.is_closed());
        for e in [
            clone.templates().unwrap_err(),
            clone.health().unwrap_err(),
            clone.task(&tasker_core::new_id().to_string()).unwrap_err(),
            clone.subscribe(EventFilterInput::default()).unwrap_err(),
            clone.advance_clock_ms(1).unwrap_err(),
            clone.validate_or_refresh().unwrap_err(),
        ] {
            assert_eq!(e.kind, ErrorKind::Closed, "{e}");
        }
        runtime::block_on(clone.close_async()).unwrap();
    }

    #[test]
    fn use_in_another_process_is_refused_with_advice() {
        let c = memory();
        let child = c.pretend_opened_in(crate::pid() + 1);
        let e = child.templates().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Configuration);
        assert!(e.message.contains("open a new client after fork"), "{}", e.message);
        assert_eq!(e.details["reason"], "forked");
        // Closing in the child only lets go of the parent's connections.
        child.close().unwrap();
        assert!(child.is_closed());
        assert!(c.templates().unwrap().is_empty());
    }

    #[test]
    fn malformed_ids_name_their_field() {
        let c = memory();
        let e = c.task("not-a-uuid").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert_eq!(crate::error::field_errors(&e)[0].0, "task_id");
        let e = c.resolve_step_manually("x", json!(1)).unwrap_err();
        assert_eq!(crate::error::field_errors(&e)[0].0, "step_id");
        let e = c
            .tasks(TaskFilterInput {
                state: Some("bogus".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(crate::error::field_errors(&e)[0].0, "filter.state");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Client::open(
            "memory:",
            ClientOptions {
                clock: ClockKind::Manual,
                ..Default::default()
            },
        )
        .unwrap();
        let t0 = c.now().unwrap();
        assert_eq!(t0.to_rfc3339(), "2030-01-01T00:00:00+00:00");
        let t1 = c.advance_clock_ms(1500).unwrap();
        assert_eq!((t1 - t0).num_milliseconds(), 1500);
        assert_eq!(c.now().unwrap(), t1);
        assert_eq!(c.advance_clock_ms(-1).unwrap_err().kind, ErrorKind::Validation);
        assert_eq!(c.health().unwrap().clock, "manual");
        let e = memory().advance_clock_ms(1).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Configuration);
    }

    #[test]
    fn clock_kind_parses() {
        assert_eq!("manual".parse::<ClockKind>().unwrap(), ClockKind::Manual);
        assert_eq!("system".parse::<ClockKind>().unwrap(), ClockKind::System);
        assert_eq!("lunar".parse::<ClockKind>().unwrap_err().kind, ErrorKind::Validation);
    }

    #[test]
    fn ephemeral_urls_are_recognised() {
        assert!(is_ephemeral("memory:"));
        assert!(is_ephemeral("sqlite::memory:"));
        assert!(is_ephemeral("sqlite://file:x?mode=memory"));
        assert!(!is_ephemeral("sqlite:///tmp/x.db"));
        assert!(!is_ephemeral("postgres://u:p@h/db"));
    }

    #[test]
    fn unsupported_urls_are_configuration_errors_without_secrets() {
        let e = Client::open("mysql://root:hunter2@db/x", ClientOptions::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Configuration);
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}

/// Without `native`: every `_async` form runs in place on a foreign executor, with no runtime anywhere.
/// Run by `cargo test -p tasker-shared-ffi --no-default-features` (and `cargo xtask test-all --only wasm`).
#[cfg(all(test, not(feature = "native")))]
mod in_place_tests {
    use super::*;
    use crate::runtime::run_in_place;
    use crate::ErrorKind;

    #[test]
    fn async_forms_work_on_the_memory_engine_without_a_runtime() {
        run_in_place(async {
            let c = Client::open_async("memory:", ClientOptions::default()).await.unwrap();
            let reg = c
                .register_template_async(
                    "namespace: w\nname: t\nversion: 1.0.0\nsteps:\n  - { name: a, handler: w.a }\n",
                )
                .await
                .unwrap();
            assert!(reg.created);
            let task = c
                .create_task_async("w", "t", CreateTaskOptions::default())
                .await
                .unwrap();
            assert_eq!(c.steps_async(&task.id).await.unwrap().len(), 1);
            assert!(!c.validate_or_refresh_async().await.unwrap());
            c.close_async().await.unwrap();
            assert_eq!(c.templates_async().await.unwrap_err().kind, ErrorKind::Closed);
        });
    }

    #[test]
    fn a_sql_url_is_a_configuration_error_in_a_build_without_sql_stores() {
        let e = run_in_place(Client::open_async("sqlite::memory:", ClientOptions::default())).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Configuration, "{}", e.message);
    }
}
