//! The worker session: the one piece of machinery every worker drives, whatever language runs its handlers.
//!
//! The Rust [`crate::worker::Worker`] and every binding's host loop (through tasker-shared-ffi) stand on it.
//! A host only claims ([`Session::next_batch`]), runs its handlers, and hands each outcome back
//! ([`Session::report`]). Everything else happens here, on the runtime, with no callback into the host:
//!
//! - a claim that finds nothing waits for work: woken by the engine's work signal (NOTIFY on PostgreSQL),
//!   by the next retry falling due, or by the poll interval, and interrupted by [`Session::shutdown`];
//! - a claim that fails on a store error (the database went away) is retried with backoff and logged; a
//!   worker never ends because the database was gone for a while;
//! - a heartbeat extends the lease of every outstanding claim;
//! - a handler's deadline (its step's `timeout_seconds`) is enforced: past it the lease is no longer
//!   extended and the attempt is reported as a retryable `timeout` failure; a late outcome is then rejected
//!   by the engine as a stale claim, and counted;
//! - a reporter batches outcomes into `finish_many` (one transaction per batch), retries store errors with
//!   backoff, and never drops an outcome silently: when it gives up on one (the client closed, or the store
//!   stayed down past [`SessionConfig::report_patience`]) it logs an error, counts it, and stops
//!   heartbeating that claim, so its lease expires and the reaper recovers the step;
//! - a maintenance pass reaps expired leases, so the steps of crashed workers are recovered even when only
//!   host-language workers run;
//! - [`IdleRun`] is the one definition of "run until idle" that every `run_until_idle` uses.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, error, warn};

use crate::clock::{ManualClock, Timestamp};
use crate::engine::{ClaimRequest, Engine};
use crate::error::{Error, Result};
use crate::model::{ClaimToken, Outcome, Step, StepContext, StepFailure};
use crate::rt;

/// Where a session gets its engine. A closure rather than an [`Engine`], so that a client that rebuilds its
/// store (`validate_or_refresh`) hands the new engine to sessions already running.
pub type EngineSource = Arc<dyn Fn() -> Result<Engine> + Send + Sync>;

/// How a session runs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Recorded on every claim.
    pub worker_id: String,
    /// The handler keys this session claims steps for; at least one.
    pub handler_keys: Vec<String>,
    /// How long a claim holds without a heartbeat.
    pub lease: Duration,
    /// How often outstanding leases are extended; never when `None`.
    pub heartbeat_interval: Option<Duration>,
    /// How long a waiting claim sleeps before trying again without a wake-up.
    pub poll_interval: Duration,
    /// How often this session runs a maintenance pass; never when `None`.
    pub maintenance_interval: Option<Duration>,
    /// Whether handlers past their step's deadline are failed with `timeout` (scenario replays, which move
    /// time by hand, turn it off together with heartbeats).
    pub enforce_deadlines: bool,
    /// The most outcomes the reporter writes in one transaction.
    pub report_batch: usize,
    /// How long the reporter keeps retrying a batch that fails on a store error before it gives up on it.
    pub report_patience: Duration,
}

impl SessionConfig {
    /// A session for `handler_keys` with the defaults: a 30 s lease, heartbeats every 10 s, a 1 s poll,
    /// maintenance every 5 s, deadlines enforced, batches of 64, and two minutes of patience with the store.
    pub fn new(worker_id: impl Into<String>, handler_keys: Vec<String>) -> Self {
        let lease = Duration::from_secs(30);
        SessionConfig {
            worker_id: worker_id.into(),
            handler_keys,
            lease,
            heartbeat_interval: Some(lease / 3),
            poll_interval: Duration::from_secs(1),
            maintenance_interval: Some(Duration::from_secs(5)),
            enforce_deadlines: true,
            report_batch: 64,
            report_patience: Duration::from_secs(120),
        }
    }
}

pub use crate::model::SessionStats;

/// Whether an error means the store could not be reached (so trying again later may succeed).
pub fn is_store_error(e: &Error) -> bool {
    matches!(e, Error::Database(_) | Error::Timeout(_))
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
    timed_out: AtomicU64,
    late: AtomicU64,
    abandoned: AtomicU64,
    store_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A claim the host holds: heartbeated until it is reported, forgotten, lost or timed out.
#[derive(Debug, Clone, Copy)]
struct Held {
    deadline: Timestamp,
    timeout_ms: i64,
    /// Past its deadline: its `timeout` failure is queued, and it is no longer heartbeated.
    timing_out: bool,
}

/// The most timed-out tokens remembered, to count late outcomes.
const TIMED_OUT_MEMORY: usize = 10_000;

/// What the session, its background tasks and its reporter share.
struct Shared {
    source: EngineSource,
    config: SessionConfig,
    held: Mutex<HashMap<ClaimToken, Held>>,
    timed_out: Mutex<HashSet<ClaimToken>>,
    /// Claims stop and waiters wake.
    stopping: Latch,
    /// Heartbeats and deadline checks end: the session was dropped, or shut down with nothing held.
    finished: Latch,
    /// A claim was added, so the deadline check recomputes its next wake-up.
    claimed: Notify,
    counters: Counters,
    /// The delay before the next claim after a store error; zero while claims succeed.
    claim_backoff: Mutex<Duration>,
    /// The reporter's queue, for the deadline check; weak, so the reporter ends with the last handle.
    reports: mpsc::WeakUnboundedSender<Msg>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn engine(&self) -> Result<Engine> {
        (self.source)()
    }

    fn held_tokens(&self) -> Vec<ClaimToken> {
        lock(&self.held).keys().copied().collect()
    }

    /// The held claims whose leases are still extended (not past their deadline).
    fn live_tokens(&self) -> Vec<ClaimToken> {
        lock(&self.held)
            .iter()
            .filter(|(_, h)| !h.timing_out)
            .map(|(t, _)| *t)
            .collect()
    }

    fn release(&self, token: &ClaimToken) {
        lock(&self.held).remove(token);
        self.maybe_finish();
    }

    /// After a shutdown, heartbeats live only until the last held claim is reported.
    fn maybe_finish(&self) {
        if self.stopping.is_set() && lock(&self.held).is_empty() {
            self.finished.trigger();
        }
    }

    /// Counts one item's result and lets go of its claim when the claim is settled or gone.
    fn record(&self, token: &ClaimToken, r: &Result<Step>) {
        match r {
            Ok(step) => {
                bump(if step.state == crate::StepState::Complete {
                    &self.counters.completed
                } else {
                    &self.counters.failed
                });
                self.release(token);
            }
            Err(e) => {
                bump(&self.counters.rejected);
                debug!(step_id = %token.step_id, attempt = token.attempt, error = %e, "outcome rejected");
                if !is_store_error(e) {
                    self.release(token);
                }
            }
        }
    }

    fn abandon(&self, token: &ClaimToken, why: &str) {
        bump(&self.counters.abandoned);
        error!(
            step_id = %token.step_id,
            attempt = token.attempt,
            reason = why,
            "gave up reporting an outcome; the step is recovered when its lease expires"
        );
        self.release(token);
    }
}

/// One queued outcome, and where its result goes when a caller waits for it.
type Item = (ClaimToken, Outcome, Option<oneshot::Sender<Result<Step>>>);

enum Msg {
    Outcome {
        token: ClaimToken,
        outcome: Outcome,
        reply: Option<oneshot::Sender<Result<Step>>>,
    },
    Flush(oneshot::Sender<()>),
}

/// Ends the background work when the last handle on the session goes away.
struct Owner {
    shared: Arc<Shared>,
    /// Dropping it lets the reporter write what is queued and end.
    reports: mpsc::UnboundedSender<Msg>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.stopping.trigger();
        self.shared.finished.trigger();
    }
}

/// A worker's session with the engine. Cheap to clone; clones share claims, heartbeats, the reporter and
/// shutdown. Must be created inside a Tokio runtime (or, with `local` alone, on the JS event loop): it spawns
/// its background tasks there.
#[derive(Clone)]
pub struct Session {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("worker_id", &self.shared().config.worker_id)
            .field("handler_keys", &self.shared().config.handler_keys)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts a session and its reporter, heartbeat, deadline and maintenance tasks.
    pub fn start(source: EngineSource, config: SessionConfig) -> Result<Session> {
        if config.handler_keys.is_empty() {
            return Err(Error::field(
                "worker options",
                "handler_keys",
                "expected at least one handler key",
            ));
        }
        crate::engine::check_lease("worker options", config.lease)?;
        if config.worker_id.is_empty() {
            return Err(Error::field(
                "worker options",
                "worker_id",
                "expected a non-empty worker id",
            ));
        }
        source()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            source,
            config,
            held: Mutex::new(HashMap::new()),
            timed_out: Mutex::new(HashSet::new()),
            stopping: Latch::default(),
            finished: Latch::default(),
            claimed: Notify::new(),
            counters: Counters::default(),
            claim_backoff: Mutex::new(Duration::ZERO),
            reports: tx.downgrade(),
        });
        rt::spawn(reporter(shared.clone(), rx));
        let cfg = &shared.config;
        if let Some(every) = cfg.heartbeat_interval.filter(|d| !d.is_zero()) {
            rt::spawn(heartbeat_loop(Arc::downgrade(&shared), every));
        }
        if cfg.enforce_deadlines {
            rt::spawn(deadline_loop(Arc::downgrade(&shared)));
        }
        if let Some(every) = cfg.maintenance_interval.filter(|d| !d.is_zero()) {
            rt::spawn(maintenance_loop(Arc::downgrade(&shared), every));
        }
        Ok(Session {
            owner: Arc::new(Owner { shared, reports: tx }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.shared
    }

    pub fn worker_id(&self) -> &str {
        &self.shared().config.worker_id
    }

    pub fn handler_keys(&self) -> &[String] {
        &self.shared().config.handler_keys
    }

    /// The engine the session works on now.
    pub fn engine(&self) -> Result<Engine> {
        self.shared().engine()
    }

    /// Whether [`Session::shutdown`] was called.
    pub fn is_shutdown(&self) -> bool {
        self.shared().stopping.is_set()
    }

    /// Claims up to `max` ready steps for the host's free slots. When none is ready, waits up to `wait`
    /// for one. Returns empty when none came, or the session was shut down meanwhile. A store error is
    /// logged and retried with backoff (the call then returns empty once `wait` has passed), so a host loop
    /// rides out a database outage; only a closed client, a fork, or bad options end it with an error.
    pub async fn next_batch(&self, max: u32, wait: Duration) -> Result<Vec<StepContext>> {
        let sh = self.shared();
        let deadline = rt::Instant::now() + wait;
        loop {
            let backoff = *lock(&sh.claim_backoff);
            if !backoff.is_zero() {
                // Back off even when `wait` is shorter, so a host that calls again at once cannot hammer a
                // database that is down.
                tokio::select! {
                    _ = sh.stopping.wait() => return Ok(Vec::new()),
                    _ = rt::sleep(backoff) => {}
                }
            }
            match self.claim_wait(max, deadline).await {
                Ok(v) => {
                    *lock(&sh.claim_backoff) = Duration::ZERO;
                    return Ok(v);
                }
                Err(e) if is_store_error(&e) => {
                    bump(&sh.counters.store_errors);
                    let mut b = lock(&sh.claim_backoff);
                    *b = (*b * 2).clamp(Duration::from_millis(50), Duration::from_secs(2));
                    warn!(error = %e, backoff_ms = b.as_millis() as u64, "claim failed; retrying");
                    drop(b);
                    if rt::Instant::now() >= deadline {
                        return Ok(Vec::new());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Claims up to `max` ready steps at once, without waiting or retrying: errors are returned as they are.
    pub async fn claim_now(&self, max: u32) -> Result<Vec<StepContext>> {
        self.claim_wait(max, rt::Instant::now()).await
    }

    /// Claims up to `max` ready steps, waiting up to `wait` when none is ready, without retrying: errors are
    /// returned as they are. Tests and scenario replays use it; worker loops use [`Session::next_batch`].
    pub async fn claim(&self, max: u32, wait: Duration) -> Result<Vec<StepContext>> {
        self.claim_wait(max, rt::Instant::now() + wait).await
    }

    /// Claims; when nothing is ready, waits for a wake-up, the poll interval, the next due retry or
    /// shutdown, whichever comes first, until `deadline`.
    async fn claim_wait(&self, max: u32, deadline: rt::Instant) -> Result<Vec<StepContext>> {
        let sh = self.shared();
        let req = ClaimRequest {
            worker_id: sh.config.worker_id.clone(),
            handler_keys: sh.config.handler_keys.clone(),
            limit: max,
            lease: sh.config.lease,
        };
        loop {
            // Fetched each round, so a claim that waits across a store rebuild uses the new store.
            let engine = sh.engine()?;
            let signal = engine.work_signal();
            tokio::pin!(signal);
            // Enabled before the claim: a commit between the claim and the wait still wakes us.
            signal.as_mut().enable();
            let stop = sh.stopping.wait();
            tokio::pin!(stop);
            if sh.stopping.is_set() {
                return Ok(Vec::new());
            }
            let claimed = engine.claim(&req).await?;
            if !claimed.is_empty() {
                self.hold(&claimed);
                return Ok(claimed);
            }
            let now = rt::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut nap = sh
                .config
                .poll_interval
                .max(Duration::from_millis(1))
                .min(deadline - now);
            if let Ok(Some(at)) = engine.next_retry_at(&sh.config.handler_keys).await {
                let ms = (at - engine.now()).num_milliseconds().max(1) as u64;
                nap = nap.min(Duration::from_millis(ms));
            }
            tokio::select! {
                _ = &mut signal => {}
                _ = &mut stop => return Ok(Vec::new()),
                _ = rt::sleep(nap) => {}
            }
        }
    }

    fn hold(&self, claimed: &[StepContext]) {
        let sh = self.shared();
        let lease = chrono::TimeDelta::from_std(sh.config.lease).unwrap_or(chrono::TimeDelta::MAX);
        let mut held = lock(&sh.held);
        for c in claimed {
            let claimed_at = c.lease_expires_at - lease;
            held.insert(
                c.token,
                Held {
                    deadline: c.deadline,
                    timeout_ms: (c.deadline - claimed_at).num_milliseconds(),
                    timing_out: false,
                },
            );
        }
        drop(held);
        sh.counters.claimed.fetch_add(claimed.len() as u64, Ordering::Relaxed);
        sh.claimed.notify_waiters();
    }

    /// Hands an outcome to the reporter and returns at once. The reporter writes it with others in one
    /// transaction; see the module docs for what happens when the store fails.
    pub fn report(&self, token: ClaimToken, outcome: Outcome) {
        self.send(token, outcome, None);
    }

    fn send(&self, token: ClaimToken, outcome: Outcome, reply: Option<oneshot::Sender<Result<Step>>>) {
        let sh = self.shared();
        if lock(&sh.timed_out).remove(&token) {
            bump(&sh.counters.late);
        }
        let msg = Msg::Outcome { token, outcome, reply };
        if let Err(mpsc::error::SendError(Msg::Outcome { token, reply, .. })) = self.owner.reports.send(msg) {
            // Only possible once the reporter ended, which it does only when the session is gone.
            sh.abandon(&token, "the reporter has stopped");
            if let Some(r) = reply {
                let _ = r.send(Err(Error::Closed));
            }
        }
    }

    /// Waits until every outcome reported before this call has been written (or given up on).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.owner.reports.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Writes a batch of outcomes now, in one transaction, and returns one result per item: a stale or
    /// invalid item is rejected alone. Only a store failure fails the whole call, and then nothing was
    /// written. For callers that need each answer at once (scenario replays, tests); workers use
    /// [`Session::report`].
    pub async fn finish_now(&self, items: Vec<(ClaimToken, Outcome)>) -> Result<Vec<Result<Step>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let sh = self.shared();
        let tokens: Vec<ClaimToken> = items.iter().map(|(t, _)| *t).collect();
        let results = sh.engine()?.finish_many(items).await?;
        for (t, r) in tokens.iter().zip(&results) {
            sh.record(t, r);
        }
        Ok(results)
    }

    /// Counts an outcome that could not even be presented to the engine (a malformed token).
    pub fn count_rejected(&self) {
        bump(&self.shared().counters.rejected);
    }

    /// Stops extending the lease of a claim without reporting an outcome, as when the host gave up on a
    /// handler it cannot stop. The step is recovered by the reaper once the lease expires.
    pub fn forget(&self, token: &ClaimToken) {
        self.shared().release(token);
    }

    /// Stops claiming and wakes every waiting claim at once. Held claims keep their heartbeat until they
    /// are reported (or forgotten), so running handlers can finish; then the heartbeat stops. The
    /// maintenance pass stops at once. Idempotent; never waits.
    pub fn shutdown(&self) {
        let sh = self.shared();
        sh.stopping.trigger();
        sh.maybe_finish();
    }

    /// The claims taken and not yet reported.
    pub fn outstanding(&self) -> Vec<ClaimToken> {
        self.shared().held_tokens()
    }

    /// When the next scheduled retry of this session's handler keys falls due; `None` when none is.
    pub async fn next_retry_at(&self) -> Result<Option<Timestamp>> {
        let sh = self.shared();
        sh.engine()?.next_retry_at(&sh.config.handler_keys).await
    }

    pub fn stats(&self) -> SessionStats {
        let sh = self.shared();
        let c = &sh.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SessionStats {
            claimed: get(&c.claimed),
            completed: get(&c.completed),
            failed: get(&c.failed),
            rejected: get(&c.rejected),
            lost: get(&c.lost),
            timed_out: get(&c.timed_out),
            late: get(&c.late),
            abandoned: get(&c.abandoned),
            store_errors: get(&c.store_errors),
            outstanding: lock(&sh.held).len() as u64,
        }
    }

    /// Starts a run until idle over this session; see [`IdleRun`].
    pub fn until_idle(&self, options: IdleOptions) -> IdleRun {
        IdleRun {
            session: self.clone(),
            deadline: options.timeout.map(|t| rt::Instant::now() + t),
            options,
            claims: 0,
            advanced_ms: 0,
            waiting: Vec::new(),
            settled: Vec::new(),
        }
    }
}

/// The reporter: drains queued outcomes into batches of up to `report_batch`, one `finish_many` each.
async fn reporter(sh: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut carried: VecDeque<Msg> = VecDeque::new();
    loop {
        let first = match carried.pop_front() {
            Some(m) => m,
            None => match rx.recv().await {
                Some(m) => m,
                None => return,
            },
        };
        let mut batch: Vec<Item> = Vec::new();
        let mut in_batch = HashSet::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Flush(ack) => {
                    flushes.push(ack);
                    break;
                }
                Msg::Outcome { token, outcome, reply } => {
                    if !in_batch.insert(token) {
                        // The same claim twice (a timeout and the handler's late outcome): the second goes in
                        // the next batch, so the engine sees them in order.
                        carried.push_back(Msg::Outcome { token, outcome, reply });
                        break;
                    }
                    batch.push((token, outcome, reply));
                }
            }
            if batch.len() >= sh.config.report_batch.max(1) {
                break;
            }
            next = match carried.pop_front() {
                Some(m) => Some(m),
                None => rx.try_recv().ok(),
            };
        }
        if !batch.is_empty() {
            write_batch(&sh, batch).await;
        }
        for ack in flushes {
            let _ = ack.send(());
        }
    }
}

async fn write_batch(sh: &Shared, batch: Vec<Item>) {
    let started = rt::Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let result = match sh.engine() {
            Ok(engine) => {
                let items = batch.iter().map(|(t, o, _)| (*t, o.clone())).collect();
                engine.finish_many(items).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(results) => {
                for ((token, _, reply), r) in batch.into_iter().zip(results) {
                    sh.record(&token, &r);
                    if let Some(reply) = reply {
                        let _ = reply.send(r);
                    }
                }
                return;
            }
            Err(e) if is_store_error(&e) && started.elapsed() < sh.config.report_patience => {
                bump(&sh.counters.store_errors);
                warn!(error = %e, outcomes = batch.len(), retry_in_ms = delay.as_millis() as u64, "reporting outcomes failed; retrying");
                rt::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) if batch.len() > 1 && !is_store_error(&e) && !matches!(e, Error::Closed) => {
                // Something about one item failed the whole batch: write each alone, so it fails alone.
                warn!(error = %e, "a batch of outcomes failed; reporting each on its own");
                for item in batch {
                    Box::pin(write_batch(sh, vec![item])).await;
                }
                return;
            }
            Err(e) => {
                let why = e.to_string();
                for (token, _, reply) in batch {
                    sh.abandon(&token, &why);
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(gave_up(&e)));
                    }
                }
                return;
            }
        }
    }
}

/// The error handed to each waiting caller of a batch the reporter gave up on (errors are not `Clone`).
fn gave_up(e: &Error) -> Error {
    match e {
        Error::Closed => Error::Closed,
        Error::Configuration(m) => Error::Configuration(m.clone()),
        Error::Timeout(m) => Error::Timeout(m.clone()),
        other => Error::Database(other.to_string()),
    }
}

async fn heartbeat_loop(sh: Weak<Shared>, every: Duration) {
    loop {
        let Some(s) = sh.upgrade() else { return };
        let finished = async {
            tokio::select! {
                _ = s.finished.wait() => true,
                _ = rt::sleep(every) => false,
            }
        };
        if finished.await {
            return;
        }
        let tokens = s.live_tokens();
        if tokens.is_empty() {
            continue;
        }
        let engine = match s.engine() {
            Ok(e) => e,
            Err(_) => return,
        };
        match engine.heartbeat(&tokens, s.config.lease).await {
            Ok(extended) if extended.len() < tokens.len() => {
                let kept: HashSet<_> = extended.into_iter().collect();
                let mut held = lock(&s.held);
                for t in tokens.iter().filter(|t| !kept.contains(t)) {
                    // A claim released meanwhile (reported, timed out) is not lost.
                    if held.remove(t).is_some() {
                        warn!(step_id = %t.step_id, attempt = t.attempt, "claim lost; its outcome will be rejected");
                        bump(&s.counters.lost);
                    }
                }
                drop(held);
                s.maybe_finish();
            }
            Ok(_) => {}
            Err(Error::Closed) => return,
            Err(e) => {
                bump(&s.counters.store_errors);
                warn!(error = %e, "heartbeat failed; retrying at the next interval");
            }
        }
    }
}

/// The longest the deadline check sleeps, so a manual clock moved by hand is noticed soon.
const DEADLINE_TICK: Duration = Duration::from_millis(250);

async fn deadline_loop(sh: Weak<Shared>) {
    loop {
        let Some(s) = sh.upgrade() else { return };
        let Ok(engine) = s.engine() else { return };
        let now = engine.now();
        let mut expired = Vec::new();
        let mut next: Option<Timestamp> = None;
        for (t, h) in lock(&s.held).iter_mut().filter(|(_, h)| !h.timing_out) {
            if h.deadline <= now {
                h.timing_out = true;
                expired.push((*t, h.timeout_ms));
            } else {
                next = Some(next.map_or(h.deadline, |n| n.min(h.deadline)));
            }
        }
        for (token, timeout_ms) in expired {
            bump(&s.counters.timed_out);
            {
                let mut t = lock(&s.timed_out);
                if t.len() >= TIMED_OUT_MEMORY {
                    t.clear();
                }
                t.insert(token);
            }
            warn!(step_id = %token.step_id, attempt = token.attempt, timeout_ms, "handler timed out");
            let msg = Msg::Outcome {
                token,
                outcome: Outcome::Failure(StepFailure::timed_out(timeout_ms)),
                reply: None,
            };
            match s.reports.upgrade() {
                Some(tx) => {
                    let _ = tx.send(msg);
                }
                None => return,
            }
        }
        let nap = next
            .map(|n| (n - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(DEADLINE_TICK)
            .clamp(Duration::from_millis(5), DEADLINE_TICK);
        let finished = async {
            tokio::select! {
                _ = s.finished.wait() => true,
                _ = s.claimed.notified() => false,
                _ = rt::sleep(nap) => false,
            }
        };
        drop(engine);
        if finished.await {
            return;
        }
    }
}

/// The shortest wait between maintenance passes when a schedule falls due sooner than the interval: while
/// another process commits the firing of a due schedule, this one sees it due still.
const SCHEDULE_NAP: Duration = Duration::from_millis(50);

async fn maintenance_loop(sh: Weak<Shared>, every: Duration) {
    let mut last_pass = None;
    let mut wait = every;
    loop {
        let Some(s) = sh.upgrade() else { return };
        let stopped = async {
            tokio::select! {
                _ = s.stopping.wait() => true,
                _ = rt::sleep(wait) => false,
            }
        };
        if stopped.await {
            return;
        }
        let engine = match s.engine() {
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
                // The next pass comes at the next occurrence of a schedule, if that is sooner.
                wait = match r.schedules.next_fire_at {
                    Some(next) => (next - engine.now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .clamp(SCHEDULE_NAP, every.max(SCHEDULE_NAP)),
                    None => every,
                };
            }
            Err(Error::Closed) => return,
            Err(e) => {
                bump(&s.counters.store_errors);
                warn!(error = %e, "maintenance pass failed; retrying at the next interval");
                wait = every;
            }
        }
    }
}

/// How a run until idle goes.
#[derive(Debug, Clone)]
pub struct IdleOptions {
    /// Steps taken per claim.
    pub batch_size: u32,
    /// Stop after this many handler runs.
    pub max_claims: Option<u64>,
    /// Give up with a `timeout` error after this long; never when `None`.
    pub timeout: Option<Duration>,
    /// The engine's manual clock, if it has one: a run moves it to each scheduled retry instead of waiting.
    pub manual_clock: Option<ManualClock>,
    /// With a manual clock: move it to scheduled retries (true) or stop at the first one (false).
    pub auto_advance_clock: bool,
}

impl Default for IdleOptions {
    fn default() -> Self {
        IdleOptions {
            batch_size: 16,
            max_claims: None,
            timeout: Some(Duration::from_secs(30)),
            manual_clock: None,
            auto_advance_clock: true,
        }
    }
}

/// Run until idle, defined once. Each round: write every outcome of the previous batch; claim up to
/// `batch_size` without waiting and hand the batch to the caller, who runs each step and reports it. When a
/// claim finds nothing, ask when the next retry of these keys falls due: none means idle; otherwise, under a
/// manual clock, move the clock to it (or stop, when `auto_advance_clock` is off), and under the system
/// clock, wait for it. Overrun claims are forgotten ([`IdleRun::forget`]), not waited for.
pub struct IdleRun {
    session: Session,
    options: IdleOptions,
    deadline: Option<rt::Instant>,
    claims: u64,
    advanced_ms: u64,
    waiting: Vec<(ClaimToken, oneshot::Receiver<Result<Step>>)>,
    settled: Vec<(ClaimToken, Result<Step>)>,
}

impl IdleRun {
    /// The next batch to run, or `None` when the run is idle (or reached `max_claims`).
    pub async fn next_batch(&mut self) -> Result<Option<Vec<StepContext>>> {
        self.settle().await;
        loop {
            let left = self.options.max_claims.map(|m| m.saturating_sub(self.claims));
            if left == Some(0) {
                return Ok(None);
            }
            if self.deadline.is_some_and(|d| rt::Instant::now() >= d) {
                return Err(Error::Timeout(format!(
                    "run_until_idle did not become idle within {} ms",
                    self.options.timeout.unwrap_or_default().as_millis()
                )));
            }
            let batch = self.options.batch_size.max(1);
            let limit = left.map_or(batch, |l| batch.min(u32::try_from(l).unwrap_or(u32::MAX)));
            let mut claimed = self.session.claim_now(limit).await?;
            if claimed.is_empty() {
                let Some(at) = self.session.next_retry_at().await? else {
                    return Ok(None);
                };
                let engine = self.session.engine()?;
                let gap = (at - engine.now()).num_milliseconds().max(0);
                if let Some(clock) = &self.options.manual_clock {
                    if !self.options.auto_advance_clock {
                        return Ok(None);
                    }
                    clock.advance_ms(gap);
                    self.advanced_ms += gap as u64;
                    continue;
                }
                let until = rt::Instant::now() + Duration::from_millis(gap as u64 + 5);
                let until = self.deadline.map_or(until, |d| until.min(d));
                claimed = self.session.claim_wait(limit, until).await?;
                if claimed.is_empty() {
                    continue;
                }
            }
            self.claims += claimed.len() as u64;
            return Ok(Some(claimed));
        }
    }

    /// Reports one outcome of the current batch; it is written before the next claim.
    pub fn report(&mut self, token: ClaimToken, outcome: Outcome) {
        let (tx, rx) = oneshot::channel();
        self.session.send(token, outcome, Some(tx));
        self.waiting.push((token, rx));
    }

    /// Leaves a claim to expire (a crashed worker, in tests).
    pub fn forget(&mut self, token: &ClaimToken) {
        self.session.forget(token);
    }

    /// Writes every reported outcome and keeps each one's result for [`IdleRun::take_settled`].
    pub async fn settle(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        self.session.flush().await;
        for (token, rx) in self.waiting.drain(..) {
            let r = rx.await.unwrap_or(Err(Error::Closed));
            self.settled.push((token, r));
        }
    }

    /// The results of the outcomes written so far and not yet taken, in report order.
    pub fn take_settled(&mut self) -> Vec<(ClaimToken, Result<Step>)> {
        std::mem::take(&mut self.settled)
    }

    /// Milliseconds the manual clock was moved forward to reach scheduled retries.
    pub fn advanced_ms(&self) -> u64 {
        self.advanced_ms
    }

    pub fn session(&self) -> &Session {
        &self.session
    }
}

#[cfg(all(test, feature = "runtime"))]
mod tests {
    use std::sync::atomic::AtomicU8;

    use serde_json::json;

    use super::*;
    use crate::engine::CreateTask;
    use crate::worker::{handler_fn, serde_handler_fn, Worker, WorkerConfig};
    use crate::{Engine, StepState, SystemClock};

    const TEMPLATE: &str = "namespace: s\nname: pair\nversion: 1.0.0\ndefaults:\n  timeout_seconds: 1\n  retry: { max_attempts: 3, backoff: none }\nsteps:\n  - { name: a, handler: s.a }\n  - { name: b, handler: s.b, depends_on: [a] }\n";

    async fn engine() -> Engine {
        let e = Engine::in_memory(Arc::new(SystemClock));
        e.register_template(TEMPLATE).await.unwrap();
        e
    }

    const UP: u8 = 0;
    const DOWN: u8 = 1;
    const CLOSED: u8 = 2;

    /// An engine source that can be made to fail like a database that went away, or a closed client.
    fn switchable(engine: &Engine) -> (EngineSource, Arc<AtomicU8>) {
        let state = Arc::new(AtomicU8::new(UP));
        let (e, s) = (engine.clone(), state.clone());
        let source: EngineSource = Arc::new(move || match s.load(Ordering::SeqCst) {
            UP => Ok(e.clone()),
            DOWN => Err(Error::Database("connection refused".into())),
            _ => Err(Error::Closed),
        });
        (source, state)
    }

    fn config(keys: &[&str]) -> SessionConfig {
        SessionConfig {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(20),
            maintenance_interval: None,
            ..SessionConfig::new("test", keys.iter().map(|k| k.to_string()).collect())
        }
    }

    async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn step_state(e: &Engine, task: uuid::Uuid, name: &str) -> crate::Step {
        e.steps(task)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_and_reports_ride_out_a_store_outage() {
        let e = engine().await;
        let t = e.create_task(CreateTask::new("s", "pair", json!({}))).await.unwrap();
        let (source, state) = switchable(&e);
        // Deadlines off: on a slow machine the 1 s timeout could otherwise be written before the outcome.
        let s = Session::start(
            source,
            SessionConfig {
                enforce_deadlines: false,
                ..config(&["s.a", "s.b"])
            },
        )
        .unwrap();
        state.store(DOWN, Ordering::SeqCst);
        // A claim while the store is down is retried, then comes back empty; it does not fail.
        assert!(s.next_batch(1, Duration::from_millis(100)).await.unwrap().is_empty());
        assert!(s.stats().store_errors >= 1);
        state.store(UP, Ordering::SeqCst);
        let a = s.next_batch(1, Duration::from_secs(5)).await.unwrap().remove(0);
        // The store goes away again before the outcome is written: the reporter keeps it and retries.
        state.store(DOWN, Ordering::SeqCst);
        s.report(a.token, Outcome::Success(json!({"a": 1})));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(s.stats().completed, 0);
        assert_eq!(
            s.outstanding(),
            vec![a.token],
            "still heartbeated while it waits to be written"
        );
        state.store(UP, Ordering::SeqCst);
        s.flush().await;
        assert_eq!(step_state(&e, t.id, "a").await.state, StepState::Complete);
        let st = s.stats();
        assert_eq!((st.completed, st.abandoned, st.outstanding), (1, 0, 0));
        assert!(st.store_errors >= 2, "{st:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reporter_that_gives_up_stops_heartbeating_and_says_so() {
        let e = engine().await;
        e.create_task(CreateTask::new("s", "pair", json!({}))).await.unwrap();
        let (source, state) = switchable(&e);
        let s = Session::start(
            source,
            SessionConfig {
                report_patience: Duration::from_millis(100),
                enforce_deadlines: false,
                ..config(&["s.a"])
            },
        )
        .unwrap();
        let a = s.next_batch(1, Duration::from_secs(5)).await.unwrap().remove(0);
        state.store(DOWN, Ordering::SeqCst);
        s.report(a.token, Outcome::Success(json!(1)));
        s.flush().await;
        let st = s.stats();
        assert_eq!((st.abandoned, st.outstanding, st.completed), (1, 0, 0), "{st:?}");
        // A closed client ends claims with `closed`, and abandons what is queued at once.
        state.store(CLOSED, Ordering::SeqCst);
        assert!(matches!(s.next_batch(1, Duration::ZERO).await, Err(Error::Closed)));
    }

    #[tokio::test]
    async fn a_lease_too_long_for_the_clock_is_refused_not_a_panic() {
        let e = engine().await;
        let forever = Duration::from_secs(u64::MAX / 2);
        let err = Session::start(
            Arc::new(move || Ok(e.clone())),
            SessionConfig {
                lease: forever,
                ..config(&["s.a"])
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("expected 1..=604800000 ms"), "{err}");
        let e = engine().await;
        let req = crate::engine::ClaimRequest {
            worker_id: "w".into(),
            handler_keys: vec!["s.a".into()],
            limit: 1,
            lease: forever,
        };
        assert!(matches!(e.claim(&req).await, Err(Error::Validation { .. })));
        let token = ClaimToken {
            step_id: uuid::Uuid::now_v7(),
            attempt: 1,
        };
        assert!(matches!(
            e.heartbeat(&[token], forever).await,
            Err(Error::Validation { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_past_its_deadline_fails_with_timeout_and_its_late_outcome_is_rejected() {
        let e = engine().await;
        let t = e.create_task(CreateTask::new("s", "pair", json!({}))).await.unwrap();
        let s = Session::start(
            Arc::new({
                let e = e.clone();
                move || Ok(e.clone())
            }),
            config(&["s.a"]),
        )
        .unwrap();
        let a = s.next_batch(1, Duration::from_secs(5)).await.unwrap().remove(0);
        assert_eq!((a.deadline - a.lease_expires_at).num_seconds(), 1 - 30);
        let e2 = e.clone();
        wait_for("the timeout to be written", || s.stats().failed == 1).await;
        let step = step_state(&e2, t.id, "a").await;
        assert_eq!(step.state, StepState::WaitingForRetry);
        let err = step.error.unwrap();
        assert_eq!(
            (err.error_class.as_str(), err.code.as_deref(), err.retryable),
            ("TimeoutError", Some("timeout"), true)
        );
        assert!(err.message.contains("1000 ms"), "{}", err.message);
        s.report(a.token, Outcome::Success(json!("too late")));
        s.flush().await;
        let st = s.stats();
        assert_eq!(
            (st.timed_out, st.late, st.rejected, st.outstanding),
            (1, 1, 1, 0),
            "{st:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_rust_worker_applies_the_host_mistake_rules() {
        let e = engine().await;
        let t = e.create_task(CreateTask::new("s", "pair", json!({}))).await.unwrap();
        let mut w = Worker::new(e.clone(), WorkerConfig::default());
        // A result with a map keyed by something other than strings cannot become JSON.
        w.handle(
            "s.a",
            serde_handler_fn(|_| async { Ok(std::collections::HashMap::from([((1, 2), "pair key")])) }),
        );
        w.run_until_idle().await.unwrap();
        let a = step_state(&e, t.id, "a").await;
        assert_eq!(a.state, StepState::Error);
        let err = a.error.unwrap();
        assert_eq!(
            (err.error_class.as_str(), err.code.as_deref(), err.retryable),
            ("InvalidResult", Some("invalid_result"), false)
        );
        assert!(err.message.starts_with("result: "), "{}", err.message);

        // A claimed key with no handler fails retryably with HandlerMissing.
        let t = e.create_task(CreateTask::new("s", "pair", json!({}))).await.unwrap();
        let mut w = Worker::new(e.clone(), WorkerConfig::default());
        w.handle("s.a", handler_fn(|_| async { Ok(json!(1)) }));
        // Stops once b has failed, however long that takes on a busy machine.
        let watched = e.clone();
        let stop = async move {
            while step_state(&watched, t.id, "b").await.error.is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        w.run_keys(vec!["s.a".into(), "s.b".into()], stop).await.unwrap();
        let b = step_state(&e, t.id, "b").await;
        let err = b.error.expect("b ran and failed");
        assert_eq!((err.error_class.as_str(), err.retryable), ("HandlerMissing", true));
        assert!(err.message.contains("\"s.b\""), "{}", err.message);
    }
}
