//! The native Rust worker: the Rust host loop over the one worker [`Session`] that every language's worker
//! drives. It keeps only what a host must: running handlers concurrently (as Tokio tasks), catching their
//! failures and panics, and stopping. Claims, heartbeats, deadlines, batched reporting, store-error retries
//! and maintenance are the session's.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::clock::ManualClock;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{ClaimToken, Outcome, StepContext, StepFailure};
use crate::session::{IdleOptions, Session, SessionConfig};

/// What a handler returns on failure.
pub type StepError = StepFailure;

/// Runs one step. Handlers should be idempotent: a step may run more than once (at-least-once), and
/// `ctx.token` (step id + attempt) serves as an idempotency key.
#[async_trait]
pub trait StepHandler: Send + Sync + 'static {
    async fn call(&self, ctx: &StepContext) -> std::result::Result<Value, StepError>;
}

/// A handler made from an async closure returning any serializable result: a result that cannot become JSON
/// fails the attempt permanently with class `InvalidResult`, as in every binding.
pub struct SerdeHandler<F>(F);

/// Wraps `f(ctx)`, whose result is any `T: Serialize`, as a [`StepHandler`].
pub fn serde_handler_fn<F, Fut, T>(f: F) -> SerdeHandler<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<T, StepError>> + Send + 'static,
    T: Serialize,
{
    SerdeHandler(f)
}

#[async_trait]
impl<F, Fut, T> StepHandler for SerdeHandler<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<T, StepError>> + Send + 'static,
    T: Serialize,
{
    async fn call(&self, ctx: &StepContext) -> std::result::Result<Value, StepError> {
        let value = (self.0)(ctx.clone()).await?;
        serde_json::to_value(value).map_err(|e| StepFailure::invalid_result(format!("result: {e}")))
    }
}

/// A handler made from an async closure.
pub struct FnHandler<F>(F);

/// Wraps `f(ctx)` as a [`StepHandler`].
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<Value, StepError>> + Send + 'static,
{
    FnHandler(f)
}

#[async_trait]
impl<F, Fut> StepHandler for FnHandler<F>
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<Value, StepError>> + Send + 'static,
{
    async fn call(&self, ctx: &StepContext) -> std::result::Result<Value, StepError> {
        (self.0)(ctx.clone()).await
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub worker_id: String,
    /// Handlers running at once.
    pub concurrency: usize,
    /// Most steps taken by one claim.
    pub batch_size: u32,
    pub lease: Duration,
    /// How often leases of running steps are extended; a third of the lease by default.
    pub heartbeat_interval: Duration,
    /// How long an idle worker waits before claiming again without a wake-up.
    pub poll_interval: Duration,
    /// How often this worker reaps expired leases.
    pub reap_interval: Duration,
    /// The engine's manual clock, if it has one: `run_until_idle` moves it to scheduled retries.
    pub manual_clock: Option<ManualClock>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let lease = Duration::from_secs(30);
        WorkerConfig {
            worker_id: default_worker_id(),
            concurrency: 4,
            batch_size: 16,
            lease,
            heartbeat_interval: lease / 3,
            poll_interval: Duration::from_millis(500),
            reap_interval: Duration::from_secs(5),
            manual_clock: None,
        }
    }
}

/// `host-pid-random`, unique enough to tell workers apart in the audit trail.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub claimed: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Outcomes the engine rejected because the claim no longer held.
    pub rejected: u64,
    /// Handlers failed with `timeout` for running past their deadline.
    pub timed_out: u64,
}

impl From<crate::session::SessionStats> for WorkerStats {
    fn from(s: crate::session::SessionStats) -> Self {
        WorkerStats {
            claimed: s.claimed,
            succeeded: s.completed,
            failed: s.failed,
            rejected: s.rejected,
            timed_out: s.timed_out,
        }
    }
}

/// A pool of handler tasks fed by claims.
pub struct Worker {
    engine: Engine,
    handlers: HashMap<String, Arc<dyn StepHandler>>,
    config: WorkerConfig,
}

impl Worker {
    pub fn new(engine: Engine, config: WorkerConfig) -> Self {
        Worker {
            engine,
            handlers: HashMap::new(),
            config,
        }
    }

    /// Registers the handler of a handler key.
    pub fn handle(&mut self, key: impl Into<String>, handler: impl StepHandler) -> &mut Self {
        self.handlers.insert(key.into(), Arc::new(handler));
        self
    }

    /// Registers a shared handler.
    pub fn handle_arc(&mut self, key: impl Into<String>, handler: Arc<dyn StepHandler>) -> &mut Self {
        self.handlers.insert(key.into(), handler);
        self
    }

    pub fn handler_keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.handlers.keys().cloned().collect();
        k.sort();
        k
    }

    fn session(&self, keys: Vec<String>) -> Result<Session> {
        if self.handlers.is_empty() {
            return Err(Error::Configuration("worker has no handlers registered".into()));
        }
        let cfg = &self.config;
        let engine = self.engine.clone();
        let source = Arc::new(move || Ok(engine.clone()));
        Session::start(
            source,
            SessionConfig {
                lease: cfg.lease,
                heartbeat_interval: Some(cfg.heartbeat_interval.max(Duration::from_millis(10))),
                poll_interval: cfg.poll_interval,
                maintenance_interval: Some(cfg.reap_interval),
                ..SessionConfig::new(cfg.worker_id.clone(), keys)
            },
        )
    }

    /// Runs until `shutdown` resolves, then stops claiming, lets running handlers finish, reports their
    /// outcomes and returns. A database outage does not end it: the session retries with backoff.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<WorkerStats> {
        self.run_keys(self.handler_keys(), shutdown).await
    }

    /// [`Worker::run`], claiming steps for `keys` (a key with no handler fails its steps with
    /// `HandlerMissing`, retryably, as in every binding).
    pub async fn run_keys(&self, keys: Vec<String>, shutdown: impl Future<Output = ()> + Send) -> Result<WorkerStats> {
        let session = self.session(keys)?;
        let concurrency = self.config.concurrency.max(1);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
        tokio::pin!(shutdown);
        let mut stop_seen = false;
        let mut running = 0usize;
        let result = loop {
            while done_rx.try_recv().is_ok() {
                running -= 1;
            }
            if session.is_shutdown() {
                break Ok(());
            }
            if running >= concurrency {
                tokio::select! {
                    biased;
                    _ = &mut shutdown, if !stop_seen => { stop_seen = true; session.shutdown(); }
                    _ = done_rx.recv() => running -= 1,
                }
                continue;
            }
            let limit = (concurrency - running).min(self.config.batch_size.max(1) as usize) as u32;
            // The claim is never dropped half-way (its steps would wait for their leases): a stop wakes it
            // through the session instead.
            let batch = session.next_batch(limit, self.config.poll_interval);
            tokio::pin!(batch);
            // Biased: a stop requested while handlers ran takes effect before the next claim, not after it.
            let claimed = loop {
                tokio::select! {
                    biased;
                    _ = &mut shutdown, if !stop_seen => { stop_seen = true; session.shutdown(); }
                    r = &mut batch => break r,
                }
            };
            match claimed {
                Ok(ctxs) => {
                    for ctx in ctxs {
                        running += 1;
                        let done = done_tx.clone();
                        let run = self.call(ctx);
                        let s = session.clone();
                        tokio::spawn(async move {
                            if let Some((token, outcome)) = run.await {
                                s.report(token, outcome);
                            }
                            let _ = done.send(());
                        });
                    }
                }
                Err(e) => break Err(e),
            }
        };
        session.shutdown();
        while running > 0 && done_rx.recv().await.is_some() {
            running -= 1;
        }
        session.flush().await;
        result.map(|()| session.stats().into())
    }

    /// Runs until nothing is ready, nothing is running, and no retry of these handler keys is scheduled
    /// (the one idle rule, [`crate::session::IdleRun`]). Each claimed batch runs concurrently.
    pub async fn run_until_idle(&self) -> Result<WorkerStats> {
        let session = self.session(self.handler_keys())?;
        let mut run = session.until_idle(IdleOptions {
            batch_size: self.config.batch_size.min(self.config.concurrency.max(1) as u32),
            timeout: None,
            manual_clock: self.config.manual_clock.clone(),
            ..IdleOptions::default()
        });
        while let Some(batch) = run.next_batch().await? {
            let mut set = tokio::task::JoinSet::new();
            for ctx in batch {
                set.spawn(self.call(ctx));
            }
            while let Some(done) = set.join_next().await {
                if let Ok(Some((token, outcome))) = done {
                    run.report(token, outcome);
                }
            }
        }
        run.settle().await;
        session.shutdown();
        Ok(session.stats().into())
    }

    /// Runs one handler, as a future the caller spawns. Returns the outcome to report, or `None` when the
    /// handler ran past its deadline (the session reports the `timeout` itself).
    fn call(&self, ctx: StepContext) -> impl Future<Output = Option<(ClaimToken, Outcome)>> + Send + 'static {
        let token = ctx.token;
        let handler = self.handlers.get(&ctx.handler_key).cloned();
        // A little past the deadline, so the session's timeout is what gets recorded; this only frees the slot.
        let budget = (ctx.deadline - self.engine.now()).to_std().unwrap_or(Duration::ZERO) + Duration::from_secs(1);
        async move {
            let Some(handler) = handler else {
                return Some((token, Outcome::Failure(StepFailure::handler_missing(&ctx.handler_key))));
            };
            // An inner task isolates a panicking handler: its JoinError becomes a failed attempt.
            let run = tokio::spawn(async move { handler.call(&ctx).await });
            let abort = run.abort_handle();
            let outcome = match tokio::time::timeout(budget, run).await {
                Ok(Ok(Ok(v))) => Outcome::Success(v),
                Ok(Ok(Err(f))) => Outcome::Failure(f),
                Ok(Err(e)) => {
                    Outcome::Failure(StepFailure::retryable(format!("handler panicked: {e}")).with_class("Panic"))
                }
                Err(_) => {
                    abort.abort();
                    return None;
                }
            };
            Some((token, outcome))
        }
    }
}
