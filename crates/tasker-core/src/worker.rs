//! The native Rust worker: claims in batches, runs handlers concurrently, heartbeats leases, reports
//! outcomes in batches, and shuts down gracefully.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::engine::{ClaimRequest, Engine};
use crate::error::{Error, Result};
use crate::model::{ClaimToken, Outcome, StepContext, StepFailure};

/// What a handler returns on failure.
pub type StepError = StepFailure;

/// Runs one step. Handlers should be idempotent: a step may run more than once (at-least-once), and
/// `ctx.token` (step id + attempt) serves as an idempotency key.
#[async_trait]
pub trait StepHandler: Send + Sync + 'static {
    async fn call(&self, ctx: &StepContext) -> std::result::Result<Value, StepError>;
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
}

/// A pool of handler tasks fed by claims.
pub struct Worker {
    engine: Engine,
    handlers: HashMap<String, Arc<dyn StepHandler>>,
    config: WorkerConfig,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    UntilStopped,
    UntilIdle,
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

    /// Runs until `shutdown` resolves, then stops claiming, lets running handlers finish, reports their
    /// outcomes and returns.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<WorkerStats> {
        self.drive(Mode::UntilStopped, Box::pin(shutdown)).await
    }

    /// Runs until nothing is ready, nothing is running, and no retry of these handler keys is scheduled.
    pub async fn run_until_idle(&self) -> Result<WorkerStats> {
        self.drive(Mode::UntilIdle, Box::pin(std::future::pending())).await
    }

    async fn drive(
        &self,
        mode: Mode,
        mut shutdown: Pin<Box<dyn Future<Output = ()> + Send + '_>>,
    ) -> Result<WorkerStats> {
        let keys = self.handler_keys();
        if keys.is_empty() {
            return Err(Error::Configuration("worker has no handlers registered".into()));
        }
        let cfg = &self.config;
        let concurrency = cfg.concurrency.max(1);
        let (tx, mut rx) = mpsc::unbounded_channel::<(ClaimToken, Outcome)>();
        let inflight: Arc<Mutex<HashSet<ClaimToken>>> = Arc::default();
        let heartbeat = tokio::spawn(heartbeat_loop(
            self.engine.clone(),
            inflight.clone(),
            cfg.lease,
            cfg.heartbeat_interval,
        ));
        let _abort = AbortOnDrop(heartbeat);
        let mut stats = WorkerStats::default();
        let mut running = 0usize;
        let mut outcomes: Vec<(ClaimToken, Outcome)> = Vec::new();
        let mut last_reap: Option<tokio::time::Instant> = None;
        let mut last_pass: Option<crate::clock::Timestamp> = None;
        let mut stopping = false;
        loop {
            while let Ok(o) = rx.try_recv() {
                outcomes.push(o);
            }
            if !outcomes.is_empty() {
                running -= outcomes.len();
                self.report(std::mem::take(&mut outcomes), &inflight, &mut stats).await;
            }
            if last_reap.is_none_or(|t| t.elapsed() >= cfg.reap_interval) {
                match self.engine.run_maintenance(last_pass, 1000).await {
                    Ok(r) => {
                        if r.reaped.retried + r.reaped.failed > 0 {
                            debug!(
                                retried = r.reaped.retried,
                                failed = r.reaped.failed,
                                "reaped expired leases"
                            );
                        }
                        if r.ran {
                            last_pass = r.at;
                        }
                    }
                    Err(e) => warn!(error = %e, "maintenance pass failed"),
                }
                last_reap = Some(tokio::time::Instant::now());
            }
            let signal = self.engine.work_signal();
            tokio::pin!(signal);
            signal.as_mut().enable();
            if !stopping {
                // A stop requested while we were busy takes effect before the next claim, not after it.
                tokio::select! {
                    biased;
                    _ = &mut shutdown => stopping = true,
                    _ = std::future::ready(()) => {}
                }
            }
            let mut claimed = 0usize;
            if !stopping && running < concurrency {
                let req = ClaimRequest {
                    worker_id: cfg.worker_id.clone(),
                    handler_keys: keys.clone(),
                    limit: (concurrency - running).min(cfg.batch_size.max(1) as usize) as u32,
                    lease: cfg.lease,
                };
                let ctxs = match self.engine.claim(&req).await {
                    Ok(c) => c,
                    Err(e @ Error::Closed) => return Err(e),
                    Err(e) => {
                        warn!(error = %e, "claim failed; backing off");
                        tokio::time::sleep(cfg.poll_interval).await;
                        continue;
                    }
                };
                claimed = ctxs.len();
                stats.claimed += claimed as u64;
                for ctx in ctxs {
                    running += 1;
                    self.spawn(ctx, &inflight, tx.clone());
                }
            }
            if stopping && running == 0 {
                break;
            }
            if claimed > 0 && running < concurrency {
                continue;
            }
            let mut wait = cfg.poll_interval;
            if claimed == 0 && running < concurrency && !stopping {
                // Sleep no longer than until the next retry of ours falls due, so backoffs shorter than the
                // poll interval are honoured.
                match self.engine.next_retry_at(&keys).await {
                    Ok(None) if mode == Mode::UntilIdle && running == 0 => break,
                    Ok(None) => {}
                    Ok(Some(at)) => {
                        let ms = (at - self.engine.now()).num_milliseconds().max(1) as u64;
                        wait = wait.min(Duration::from_millis(ms));
                    }
                    Err(e @ Error::Closed) => return Err(e),
                    Err(e) => warn!(error = %e, "reading the next retry time failed"),
                }
            }
            tokio::select! {
                Some(o) = rx.recv() => outcomes.push(o),
                _ = &mut signal, if running < concurrency && !stopping => {}
                _ = tokio::time::sleep(wait), if running < concurrency || stopping => {}
                _ = &mut shutdown, if !stopping => {
                    debug!(running, "worker stopping");
                    stopping = true;
                }
            }
        }
        Ok(stats)
    }

    fn spawn(
        &self,
        ctx: StepContext,
        inflight: &Arc<Mutex<HashSet<ClaimToken>>>,
        tx: mpsc::UnboundedSender<(ClaimToken, Outcome)>,
    ) {
        let token = ctx.token;
        lock(inflight).insert(token);
        let Some(handler) = self.handlers.get(&ctx.handler_key).cloned() else {
            // Claims only ask for registered keys, so this is a bug; fail the attempt rather than hang.
            let f = StepFailure::retryable(format!("no handler registered for {:?}", ctx.handler_key))
                .with_class("HandlerMissing");
            let _ = tx.send((token, Outcome::Failure(f)));
            return;
        };
        let budget = (ctx.deadline - self.engine.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::spawn(async move {
            // An inner task isolates a panicking handler: its JoinError becomes a failed attempt.
            let run = tokio::spawn(async move { tokio::time::timeout(budget, handler.call(&ctx)).await });
            let outcome = match run.await {
                Ok(Ok(Ok(v))) => Outcome::Success(v),
                Ok(Ok(Err(f))) => Outcome::Failure(f),
                Ok(Err(_)) => Outcome::Failure(
                    StepFailure::retryable(format!("handler exceeded its timeout of {} ms", budget.as_millis()))
                        .with_class("TimeoutError"),
                ),
                Err(e) => {
                    Outcome::Failure(StepFailure::retryable(format!("handler panicked: {e}")).with_class("Panic"))
                }
            };
            let _ = tx.send((token, outcome));
        });
    }

    async fn report(
        &self,
        outcomes: Vec<(ClaimToken, Outcome)>,
        inflight: &Arc<Mutex<HashSet<ClaimToken>>>,
        stats: &mut WorkerStats,
    ) {
        {
            let mut set = lock(inflight);
            for (t, _) in &outcomes {
                set.remove(t);
            }
        }
        for (_, o) in &outcomes {
            match o {
                Outcome::Success(_) => stats.succeeded += 1,
                Outcome::Failure(_) => stats.failed += 1,
            }
        }
        // A store hiccup must not lose outcomes: retry a few times, then let the leases expire so the
        // steps run again (at-least-once).
        let mut delay = Duration::from_millis(20);
        for attempt in 1..=5 {
            match self.engine.finish_many(outcomes.clone()).await {
                Ok(results) => {
                    for r in results {
                        if let Err(e) = r {
                            stats.rejected += 1;
                            warn!(error = %e, "outcome rejected");
                        }
                    }
                    return;
                }
                Err(Error::Closed) => return,
                Err(e) => {
                    warn!(error = %e, attempt, "reporting outcomes failed");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn heartbeat_loop(engine: Engine, inflight: Arc<Mutex<HashSet<ClaimToken>>>, lease: Duration, every: Duration) {
    let every = every.max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        let tokens: Vec<ClaimToken> = lock(&inflight).iter().copied().collect();
        if tokens.is_empty() {
            continue;
        }
        match engine.heartbeat(&tokens, lease).await {
            Ok(extended) if extended.len() < tokens.len() => {
                let kept: HashSet<ClaimToken> = extended.into_iter().collect();
                for t in tokens.iter().filter(|t| !kept.contains(t)) {
                    warn!(step_id = %t.step_id, attempt = t.attempt, "claim lost; the outcome will be rejected");
                }
            }
            Ok(_) => {}
            Err(Error::Closed) => return,
            Err(e) => warn!(error = %e, "heartbeat failed"),
        }
    }
}
