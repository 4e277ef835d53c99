//! The pull-based worker protocol every binding's worker loop drives.
//!
//! The host loop is: `claim` → run its handler → `complete` or `fail`, until it wants to stop, then
//! `shutdown`. Everything else happens here, on the shared runtime, with no callback into the host:
//!
//! - a claim that finds nothing waits (up to `wait`) for work: woken by the engine's work signal (NOTIFY on
//!   PostgreSQL), with a poll as the fallback, and interrupted by `shutdown`;
//! - a heartbeat extends the lease of every outstanding claim every `lease / 3`;
//! - a maintenance pass reaps expired leases every few seconds, so the steps of crashed workers are
//!   recovered even when only host-language workers run.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tasker_core::engine::ClaimRequest;
use tasker_core::{Outcome, StepFailure};
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::client::{blocking, Client};
use crate::dto::{ClaimToken, Step, StepContext};
use crate::error::{ErrorKind, FfiError, FfiResult};
use crate::runtime;

/// How a worker session runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerOptions {
    /// Recorded on every claim; `host-pid-random` when absent.
    pub worker_id: Option<String>,
    /// The handler keys this worker claims steps for; at least one.
    pub handler_keys: Vec<String>,
    /// How long a claim holds without a heartbeat (default 30 000 ms).
    pub lease_ms: u64,
    /// How often outstanding leases are extended; `lease_ms / 3` when absent, never when 0.
    pub heartbeat_interval_ms: Option<u64>,
    /// How long a waiting claim sleeps before trying again without a wake-up (default 1000 ms).
    pub poll_interval_ms: u64,
    /// How often this session runs a maintenance pass (default 5000 ms); never when 0.
    pub maintenance_interval_ms: u64,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            worker_id: None,
            handler_keys: Vec::new(),
            lease_ms: 30_000,
            heartbeat_interval_ms: None,
            poll_interval_ms: 1000,
            maintenance_interval_ms: 5000,
        }
    }
}

/// Whether a failure may be retried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Retried while attempts are left (the default for an unclassified exception).
    #[default]
    Retryable,
    /// Never retried.
    Permanent,
}

impl FromStr for FailureKind {
    type Err = FfiError;
    fn from_str(s: &str) -> FfiResult<Self> {
        match s {
            "retryable" => Ok(FailureKind::Retryable),
            "permanent" => Ok(FailureKind::Permanent),
            other => Err(FfiError::validation(
                "failure.kind",
                format!("expected retryable or permanent, found {other:?}"),
            )),
        }
    }
}

/// How a handler failed, as the host reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailureInput {
    pub kind: FailureKind,
    pub message: String,
    /// The exception class; `RetryableError` or `PermanentError` when absent.
    pub error_class: Option<String>,
    /// Backtrace lines, outermost first.
    pub backtrace: Vec<String>,
    /// Asks for this delay before the next attempt (capped at the policy's `max_ms`); retryable only.
    pub retry_after_ms: Option<u64>,
    /// An error code, for permanent failures.
    pub code: Option<String>,
}

impl FailureInput {
    pub fn retryable(message: impl Into<String>) -> Self {
        FailureInput {
            kind: FailureKind::Retryable,
            message: message.into(),
            ..Default::default()
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        FailureInput {
            kind: FailureKind::Permanent,
            message: message.into(),
            ..Default::default()
        }
    }

    fn to_core(&self) -> StepFailure {
        let mut f = match self.kind {
            FailureKind::Retryable => StepFailure::retryable(self.message.clone()),
            FailureKind::Permanent => StepFailure::permanent(self.message.clone()),
        };
        if let Some(c) = &self.error_class {
            f.error_class = c.clone();
        }
        f.backtrace = self.backtrace.clone();
        f.retry_after = self.retry_after_ms.map(Duration::from_millis);
        f.code = self.code.clone();
        f
    }
}

/// The outcome of one claim, for [`WorkerSession::finish_many`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeInput {
    Success(Value),
    Failure(FailureInput),
}

/// What a session did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStats {
    /// u64: steps claimed.
    pub claimed: u64,
    /// u64: completions the engine accepted.
    pub completed: u64,
    /// u64: failures the engine accepted.
    pub failed: u64,
    /// u64: outcomes rejected (stale claim, cancelled step, malformed token, …).
    pub rejected: u64,
    /// u64: claims whose lease a heartbeat found already lost.
    pub lost: u64,
    /// u64: claims not yet reported.
    pub outstanding: u64,
}

/// A one-way latch that wakes everyone waiting on it.
#[derive(Default)]
struct Latch {
    set: AtomicBool,
    notify: Notify,
}

impl Latch {
    fn trigger(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            // Registered before the check, so a trigger between the check and the await is not lost.
            n.as_mut().enable();
            if self.is_set() {
                return;
            }
            n.await;
        }
    }
}

#[derive(Default)]
struct Counters {
    claimed: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    lost: AtomicU64,
}

/// What the session and its background tasks share.
struct Core {
    client: Client,
    worker_id: String,
    handler_keys: Vec<String>,
    lease: Duration,
    poll: Duration,
    outstanding: Mutex<HashSet<tasker_core::ClaimToken>>,
    /// Claims stop and waiters wake.
    stopping: Latch,
    /// Background tasks end: the session was dropped, or shut down with nothing outstanding.
    finished: Latch,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Core {
    fn outstanding_tokens(&self) -> Vec<tasker_core::ClaimToken> {
        lock(&self.outstanding).iter().copied().collect()
    }

    /// After a shutdown, the heartbeat lives only until the last outstanding claim is reported.
    fn maybe_finish(&self) {
        if self.stopping.is_set() && lock(&self.outstanding).is_empty() {
            self.finished.trigger();
        }
    }
}

/// Stops the background tasks when the last handle on the session goes away.
struct Owner {
    core: Arc<Core>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.core.stopping.trigger();
        self.core.finished.trigger();
    }
}

/// A worker's session with the engine. Cheap to clone; clones share claims, heartbeats and shutdown.
#[derive(Clone)]
pub struct WorkerSession {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for WorkerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSession")
            .field("worker_id", &self.owner.core.worker_id)
            .field("handler_keys", &self.owner.core.handler_keys)
            .finish_non_exhaustive()
    }
}

/// Whether a rejected outcome means the claim is gone (so it needs no more heartbeats), as opposed to a
/// failure to reach the store, after which the claim still holds and the host may report again.
fn claim_is_gone(e: &FfiError) -> bool {
    matches!(
        e.kind,
        ErrorKind::StaleClaim | ErrorKind::InvalidTransition | ErrorKind::NotFound | ErrorKind::Validation
    )
}

impl WorkerSession {
    /// Starts a session and its background heartbeat and maintenance tasks.
    pub fn new(client: Client, options: WorkerOptions) -> FfiResult<WorkerSession> {
        client.engine()?;
        if options.handler_keys.is_empty() {
            return Err(FfiError::validation(
                "options.handler_keys",
                "expected at least one handler key",
            ));
        }
        if options.lease_ms == 0 {
            return Err(FfiError::validation("options.lease_ms", "expected a positive lease"));
        }
        let worker_id = match options.worker_id.clone() {
            Some(w) if w.is_empty() => {
                return Err(FfiError::validation(
                    "options.worker_id",
                    "expected a non-empty worker id",
                ))
            }
            Some(w) => w,
            None => tasker_core::worker::default_worker_id(),
        };
        let lease = Duration::from_millis(options.lease_ms);
        let core = Arc::new(Core {
            client,
            worker_id,
            handler_keys: options.handler_keys.clone(),
            lease,
            poll: Duration::from_millis(options.poll_interval_ms.max(1)),
            outstanding: Mutex::new(HashSet::new()),
            stopping: Latch::default(),
            finished: Latch::default(),
            counters: Counters::default(),
        });
        let heartbeat = options.heartbeat_interval_ms.unwrap_or((options.lease_ms / 3).max(1));
        if heartbeat > 0 {
            runtime::spawn_background(heartbeat_loop(Arc::downgrade(&core), Duration::from_millis(heartbeat)))?;
        }
        if options.maintenance_interval_ms > 0 {
            runtime::spawn_background(maintenance_loop(
                Arc::downgrade(&core),
                Duration::from_millis(options.maintenance_interval_ms),
            ))?;
        }
        Ok(WorkerSession {
            owner: Arc::new(Owner { core }),
        })
    }

    fn core(&self) -> &Arc<Core> {
        &self.owner.core
    }

    pub fn worker_id(&self) -> &str {
        &self.core().worker_id
    }

    pub fn handler_keys(&self) -> &[String] {
        &self.core().handler_keys
    }

    /// Whether `shutdown` was called.
    pub fn is_shutdown(&self) -> bool {
        self.core().stopping.is_set()
    }

    /// Claims up to `max` ready steps. When none is ready, waits up to `wait` for one, and returns empty if
    /// none came or the session was shut down meanwhile. Blocks; [`Self::claim_async`] is the async form.
    pub fn claim(&self, max: u32, wait: Duration) -> FfiResult<Vec<StepContext>> {
        runtime::block_on(self.claim_async(max, wait))
    }

    /// The async form of [`WorkerSession::claim`].
    pub async fn claim_async(&self, max: u32, wait: Duration) -> FfiResult<Vec<StepContext>> {
        let core = self.core().clone();
        let claimed = runtime::spawn({
            let core = core.clone();
            async move { claim_wait(&core, max, wait).await }
        })
        .await?;
        // Heartbeats start only once the host has the claims: claims whose result never reached it (a dropped
        // future) expire and are recovered instead of being kept alive forever.
        let tokens: Vec<tasker_core::ClaimToken> = claimed.iter().map(|c| c.token).collect();
        lock(&core.outstanding).extend(tokens);
        core.counters.claimed.fetch_add(claimed.len() as u64, Ordering::Relaxed);
        Ok(claimed.into_iter().map(Into::into).collect())
    }

    blocking!(
        /// Records a successful attempt; the claim must still hold.
        fn complete => complete_async(token: &ClaimToken, result: Value) -> Step
    );

    pub async fn complete_async(&self, token: &ClaimToken, result: Value) -> FfiResult<Step> {
        let mut r = self
            .finish_many_async(vec![(token.clone(), OutcomeInput::Success(result))])
            .await?;
        r.pop()
            .unwrap_or_else(|| Err(FfiError::internal("an outcome produced no result")))
    }

    blocking!(
        /// Records a failed attempt: retried if retryable and attempts are left, otherwise the step errors.
        fn fail => fail_async(token: &ClaimToken, failure: FailureInput) -> Step
    );

    pub async fn fail_async(&self, token: &ClaimToken, failure: FailureInput) -> FfiResult<Step> {
        let mut r = self
            .finish_many_async(vec![(token.clone(), OutcomeInput::Failure(failure))])
            .await?;
        r.pop()
            .unwrap_or_else(|| Err(FfiError::internal("an outcome produced no result")))
    }

    blocking!(
        /// Completes each claim with its result in one transaction; each item gets its own result.
        fn complete_many => complete_many_async(items: Vec<(ClaimToken, Value)>) -> Vec<FfiResult<Step>>
    );

    pub async fn complete_many_async(&self, items: Vec<(ClaimToken, Value)>) -> FfiResult<Vec<FfiResult<Step>>> {
        self.finish_many_async(items.into_iter().map(|(t, v)| (t, OutcomeInput::Success(v))).collect())
            .await
    }

    blocking!(
        /// Fails each claim in one transaction; each item gets its own result.
        fn fail_many => fail_many_async(items: Vec<(ClaimToken, FailureInput)>) -> Vec<FfiResult<Step>>
    );

    pub async fn fail_many_async(&self, items: Vec<(ClaimToken, FailureInput)>) -> FfiResult<Vec<FfiResult<Step>>> {
        self.finish_many_async(items.into_iter().map(|(t, f)| (t, OutcomeInput::Failure(f))).collect())
            .await
    }

    blocking!(
        /// Records a batch of outcomes in one transaction. A stale or invalid item is rejected alone (its own
        /// `Err`); only a store failure fails the whole call, and then nothing was written.
        fn finish_many => finish_many_async(items: Vec<(ClaimToken, OutcomeInput)>) -> Vec<FfiResult<Step>>
    );

    pub async fn finish_many_async(&self, items: Vec<(ClaimToken, OutcomeInput)>) -> FfiResult<Vec<FfiResult<Step>>> {
        let core = self.core().clone();
        let engine = core.client.engine()?;
        // A malformed token fails alone, like a stale one, and never reaches the engine.
        let mut slots: Vec<Option<FfiResult<Step>>> = Vec::with_capacity(items.len());
        let mut batch = Vec::with_capacity(items.len());
        let mut batch_tokens = Vec::with_capacity(items.len());
        for (i, (token, outcome)) in items.into_iter().enumerate() {
            match token.to_core() {
                Ok(t) => {
                    let o = match outcome {
                        OutcomeInput::Success(v) => Outcome::Success(v),
                        OutcomeInput::Failure(f) => Outcome::Failure(f.to_core()),
                    };
                    batch.push((t, o));
                    batch_tokens.push((i, t));
                    slots.push(None);
                }
                Err(e) => {
                    core.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    slots.push(Some(Err(e)));
                }
            }
        }
        let results = if batch.is_empty() {
            Vec::new()
        } else {
            runtime::spawn(async move { Ok(engine.finish_many(batch).await?) }).await?
        };
        for ((i, token), r) in batch_tokens.into_iter().zip(results) {
            let r: FfiResult<Step> = r.map(Into::into).map_err(FfiError::from);
            match &r {
                Ok(step) => {
                    let c = if step.state == "complete" {
                        &core.counters.completed
                    } else {
                        &core.counters.failed
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                    lock(&core.outstanding).remove(&token);
                }
                Err(e) => {
                    core.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    if claim_is_gone(e) {
                        lock(&core.outstanding).remove(&token);
                    }
                }
            }
            slots[i] = Some(r);
        }
        core.maybe_finish();
        Ok(slots
            .into_iter()
            .map(|s| s.unwrap_or_else(|| Err(FfiError::internal("an outcome produced no result"))))
            .collect())
    }

    /// Stops extending the lease of a claim without reporting an outcome, as when the host gave up on a
    /// handler it cannot stop. The step is recovered by the reaper once the lease expires.
    pub fn forget(&self, token: &ClaimToken) -> FfiResult<()> {
        let t = token.to_core()?;
        lock(&self.core().outstanding).remove(&t);
        self.core().maybe_finish();
        Ok(())
    }

    /// Stops claiming and wakes every waiting claim at once. Outstanding claims keep their heartbeat until
    /// they are reported (or forgotten), so running handlers can finish; then the heartbeat stops. The
    /// maintenance pass stops at once. Idempotent; never waits.
    pub fn shutdown(&self) {
        let core = self.core();
        core.stopping.trigger();
        core.maybe_finish();
    }

    /// The claims taken and not yet reported.
    pub fn outstanding(&self) -> Vec<ClaimToken> {
        self.core().outstanding_tokens().into_iter().map(Into::into).collect()
    }

    /// When the next scheduled retry of this session's handler keys falls due; `None` when none is
    /// scheduled. A host's `run_until_idle` asks it when a claim finds nothing. Blocks;
    /// [`Self::next_retry_at_async`] is the async form.
    pub fn next_retry_at(&self) -> FfiResult<Option<crate::Timestamp>> {
        runtime::block_on(self.next_retry_at_async())
    }

    /// The async form of [`WorkerSession::next_retry_at`].
    pub async fn next_retry_at_async(&self) -> FfiResult<Option<crate::Timestamp>> {
        let engine = self.core().client.engine()?;
        let keys = self.core().handler_keys.clone();
        runtime::spawn(async move { Ok(engine.next_retry_at(&keys).await?) }).await
    }

    pub fn stats(&self) -> SessionStats {
        let c = &self.core().counters;
        SessionStats {
            claimed: c.claimed.load(Ordering::Relaxed),
            completed: c.completed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            outstanding: lock(&self.core().outstanding).len() as u64,
        }
    }
}

/// Claims; when nothing is ready, waits for a wake-up, the poll interval, the next due retry or shutdown,
/// whichever comes first, until `wait` has passed.
async fn claim_wait(core: &Core, max: u32, wait: Duration) -> FfiResult<Vec<tasker_core::StepContext>> {
    let deadline = tokio::time::Instant::now() + wait;
    let req = ClaimRequest {
        worker_id: core.worker_id.clone(),
        handler_keys: core.handler_keys.clone(),
        limit: max,
        lease: core.lease,
    };
    loop {
        // Fetched each round, so a claim that waits across `validate_or_refresh` uses the rebuilt store.
        let engine = core.client.engine()?;
        let signal = engine.work_signal();
        tokio::pin!(signal);
        // Enabled before the claim: a commit between the claim and the wait still wakes us.
        signal.as_mut().enable();
        let stop = core.stopping.wait();
        tokio::pin!(stop);
        if core.stopping.is_set() {
            return Ok(Vec::new());
        }
        let claimed = engine.claim(&req).await?;
        if !claimed.is_empty() {
            return Ok(claimed);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(Vec::new());
        }
        let mut nap = core.poll.min(deadline - now);
        if let Ok(Some(at)) = engine.next_retry_at(&core.handler_keys).await {
            let ms = (at - engine.now()).num_milliseconds().max(1) as u64;
            nap = nap.min(Duration::from_millis(ms));
        }
        tokio::select! {
            _ = &mut signal => {}
            _ = &mut stop => return Ok(Vec::new()),
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

async fn heartbeat_loop(core: std::sync::Weak<Core>, every: Duration) {
    loop {
        let Some(c) = core.upgrade() else { return };
        let finished = async {
            tokio::select! {
                _ = c.finished.wait() => true,
                _ = tokio::time::sleep(every) => false,
            }
        };
        if finished.await {
            return;
        }
        let tokens = c.outstanding_tokens();
        if tokens.is_empty() {
            continue;
        }
        let engine = match c.client.engine() {
            Ok(e) => e,
            Err(_) => return,
        };
        match engine.heartbeat(&tokens, c.lease).await {
            Ok(extended) if extended.len() < tokens.len() => {
                let kept: HashSet<_> = extended.into_iter().collect();
                let mut out = lock(&c.outstanding);
                for t in tokens.iter().filter(|t| !kept.contains(t)) {
                    warn!(step_id = %t.step_id, attempt = t.attempt, "claim lost; its outcome will be rejected");
                    out.remove(t);
                    c.counters.lost.fetch_add(1, Ordering::Relaxed);
                }
                drop(out);
                c.maybe_finish();
            }
            Ok(_) => {}
            Err(tasker_core::Error::Closed) => return,
            Err(e) => warn!(error = %e, "heartbeat failed"),
        }
    }
}

async fn maintenance_loop(core: std::sync::Weak<Core>, every: Duration) {
    let mut last_pass = None;
    loop {
        let Some(c) = core.upgrade() else { return };
        let stopped = async {
            tokio::select! {
                _ = c.stopping.wait() => true,
                _ = tokio::time::sleep(every) => false,
            }
        };
        if stopped.await {
            return;
        }
        let engine = match c.client.engine() {
            Ok(e) => e,
            Err(_) => return,
        };
        match engine.run_maintenance(last_pass, 1000).await {
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
            Err(tasker_core::Error::Closed) => return,
            Err(e) => warn!(error = %e, "maintenance pass failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_kind_parses() {
        assert_eq!("permanent".parse::<FailureKind>().unwrap(), FailureKind::Permanent);
        assert_eq!("retryable".parse::<FailureKind>().unwrap(), FailureKind::Retryable);
        assert_eq!("maybe".parse::<FailureKind>().unwrap_err().kind, ErrorKind::Validation);
    }

    #[test]
    fn failure_input_defaults_its_class_and_keeps_the_rest() {
        let f = FailureInput {
            retry_after_ms: Some(250),
            backtrace: vec!["a.rb:1".into()],
            ..FailureInput::retryable("flaky")
        }
        .to_core();
        assert!(f.retryable);
        assert_eq!(f.error_class, "RetryableError");
        assert_eq!(f.retry_after, Some(Duration::from_millis(250)));
        assert_eq!(f.backtrace, vec!["a.rb:1".to_string()]);
        let p = FailureInput {
            error_class: Some("ArgumentError".into()),
            code: Some("bad_input".into()),
            ..FailureInput::permanent("nope")
        }
        .to_core();
        assert!(!p.retryable);
        assert_eq!(
            (p.error_class.as_str(), p.code.as_deref()),
            ("ArgumentError", Some("bad_input"))
        );
    }

    #[test]
    fn latch_wakes_waiters_registered_before_and_after() {
        runtime::block_on(runtime::spawn(async {
            let l = Arc::new(Latch::default());
            let waiter = tokio::spawn({
                let l = l.clone();
                async move { l.wait().await }
            });
            l.trigger();
            tokio::time::timeout(Duration::from_secs(10), waiter)
                .await
                .expect("woken")
                .unwrap();
            tokio::time::timeout(Duration::from_secs(10), l.wait())
                .await
                .expect("already set");
            Ok(())
        }))
        .unwrap();
    }
}
