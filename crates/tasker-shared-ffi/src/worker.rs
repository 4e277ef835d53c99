//! The one worker session every binding's host loop drives, over tasker-core's [`Session`] (which the Rust
//! worker uses too).
//!
//! A host loop is:
//!
//! ```text
//! session = client.worker_session(options)
//! until stopping:
//!     for ctx in session.next_batch(free slots, wait):   # blocking with the host lock released
//!         run the handler for ctx.handler_key on a host thread / fiber / Promise
//!         session.report(ctx.token, outcome)             # returns at once
//! session.shutdown(); wait for running handlers; session.flush()
//! ```
//!
//! and `run_until_idle` is [`WorkerSession::until_idle`]: `while batch = run.next_batch(): run each,
//! run.report(..)`, then `run.finish()`. Claim waits, store-error retries, heartbeats, deadlines, batched
//! reporting and maintenance are the core session's; this module converts and applies the one rule for each
//! host mistake ([`HostOutcome`]).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tasker_core::session::{IdleOptions, IdleRun as CoreIdleRun, Session, SessionConfig};
use tasker_core::{Outcome, StepFailure};

use crate::client::{blocking, Client, ClockKind};
use crate::dto::{ClaimToken, Step, StepContext};
use crate::error::{FfiError, FfiResult};
use crate::runtime;
use crate::testkit::{HandlerCall, RunOptions, RunReport};

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
    /// Whether a handler past its step's deadline is failed with `timeout` (default true; scenario replays,
    /// which move time by hand, turn it off).
    pub enforce_deadlines: bool,
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
            enforce_deadlines: true,
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

impl OutcomeInput {
    /// The items of a host's `finish_many`, lifted from `[{step_id, attempt, success | failure}]`; a mismatch is
    /// a `validation` error at `outcomes[i]…`.
    pub fn items(value: Value) -> FfiResult<Vec<(ClaimToken, OutcomeInput)>> {
        #[derive(Deserialize)]
        struct Item {
            step_id: String,
            attempt: i64,
            #[serde(flatten)]
            outcome: OutcomeInput,
        }
        let items: Vec<Item> = crate::objects::options(value, "outcomes")?;
        Ok(items
            .into_iter()
            .map(|i| (ClaimToken::new(i.step_id, i.attempt), i.outcome))
            .collect())
    }

    fn to_core(&self) -> Outcome {
        match self {
            OutcomeInput::Success(v) => Outcome::Success(v.clone()),
            OutcomeInput::Failure(f) => Outcome::Failure(f.to_core()),
        }
    }
}

/// What a host's handler did, as its adapter saw it. Each host mistake has one rule here, the same in every
/// language and in the Rust worker:
///
/// - a result that cannot become JSON is a permanent failure of class `InvalidResult` whose message names
///   the field path ([`HostOutcome::returned`] with the adapter's lift error);
/// - a step whose handler key has no handler is a retryable `HandlerMissing` failure;
/// - any other exception is the [`FailureInput`] the adapter built: retryable unless it is a
///   `PermanentError`, with its class, message and backtrace.
#[derive(Debug, Clone, PartialEq)]
pub enum HostOutcome {
    Success(Value),
    Failure(FailureInput),
    /// The handler returned something that is not JSON; the message names the field path.
    InvalidResult(String),
    /// No handler is registered for this handler key.
    HandlerMissing(String),
}

impl HostOutcome {
    /// A handler's return value as its adapter lifted it: the value, or the lift error that names the path.
    pub fn returned(lifted: FfiResult<Value>) -> Self {
        match lifted {
            Ok(v) => HostOutcome::Success(v),
            Err(e) => HostOutcome::InvalidResult(field_errors(&e)),
        }
    }

    fn to_core(&self) -> Outcome {
        match self {
            HostOutcome::Success(v) => Outcome::Success(v.clone()),
            HostOutcome::Failure(f) => Outcome::Failure(f.to_core()),
            HostOutcome::InvalidResult(m) => Outcome::Failure(StepFailure::invalid_result(m.clone())),
            HostOutcome::HandlerMissing(key) => Outcome::Failure(StepFailure::handler_missing(key)),
        }
    }

    /// The name `run_until_idle` records for this outcome.
    fn name(&self) -> &'static str {
        match self {
            HostOutcome::Success(_) => "succeed",
            HostOutcome::Failure(f) if f.kind == FailureKind::Permanent => "fail_permanent",
            HostOutcome::InvalidResult(_) => "fail_permanent",
            HostOutcome::Failure(_) | HostOutcome::HandlerMissing(_) => "fail_retryable",
        }
    }
}

impl From<OutcomeInput> for HostOutcome {
    fn from(o: OutcomeInput) -> Self {
        match o {
            OutcomeInput::Success(v) => HostOutcome::Success(v),
            OutcomeInput::Failure(f) => HostOutcome::Failure(f),
        }
    }
}

/// `path: message` for each field a validation error names (`result.at: expected …`), else its message.
fn field_errors(e: &FfiError) -> String {
    let listed: Vec<String> = e.details["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["path"].as_str().unwrap_or("result"),
                        f["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if listed.is_empty() {
        e.message.clone()
    } else {
        listed.join("; ")
    }
}

pub use crate::dto::SessionStats;

/// A worker's session with the engine. Cheap to clone; clones share claims, heartbeats, the reporter and
/// shutdown. Dropping the last handle stops everything.
#[derive(Clone)]
pub struct WorkerSession {
    session: Session,
    client: Client,
}

impl std::fmt::Debug for WorkerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSession")
            .field("worker_id", &self.session.worker_id())
            .field("handler_keys", &self.session.handler_keys())
            .finish_non_exhaustive()
    }
}

/// What a host loop hands its handlers' outcomes to: the session (`run`) or a run until idle. Adapters write
/// their report methods once, over this.
pub trait Reports {
    /// Takes the outcome of one claimed step; returns at once.
    fn report(&self, token: &ClaimToken, outcome: HostOutcome) -> FfiResult<()>;
    /// Leaves a claimed step to expire without an outcome.
    fn forget(&self, token: &ClaimToken) -> FfiResult<()>;
}

impl Reports for WorkerSession {
    fn report(&self, token: &ClaimToken, outcome: HostOutcome) -> FfiResult<()> {
        WorkerSession::report(self, token, outcome)
    }

    fn forget(&self, token: &ClaimToken) -> FfiResult<()> {
        WorkerSession::forget(self, token)
    }
}

impl Reports for IdleRun {
    fn report(&self, token: &ClaimToken, outcome: HostOutcome) -> FfiResult<()> {
        IdleRun::report(self, token, outcome)
    }

    fn forget(&self, token: &ClaimToken) -> FfiResult<()> {
        IdleRun::forget(self, token)
    }
}

impl WorkerSession {
    /// Starts a session and its background tasks on the shared runtime.
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
            None => default_worker_id(),
        };
        let lease = Duration::from_millis(options.lease_ms);
        let heartbeat = options.heartbeat_interval_ms.unwrap_or((options.lease_ms / 3).max(1));
        let config = SessionConfig {
            lease,
            heartbeat_interval: (heartbeat > 0).then(|| Duration::from_millis(heartbeat)),
            poll_interval: Duration::from_millis(options.poll_interval_ms.max(1)),
            maintenance_interval: (options.maintenance_interval_ms > 0)
                .then(|| Duration::from_millis(options.maintenance_interval_ms)),
            enforce_deadlines: options.enforce_deadlines,
            ..SessionConfig::new(worker_id, options.handler_keys.clone())
        };
        let source = {
            let c = client.clone();
            std::sync::Arc::new(move || c.engine().map_err(FfiError::into_core))
        };
        #[cfg(feature = "native")]
        let _entered = runtime::runtime()?.enter();
        let session = Session::start(source, config)?;
        Ok(WorkerSession { session, client })
    }

    pub fn worker_id(&self) -> &str {
        self.session.worker_id()
    }

    pub fn handler_keys(&self) -> &[String] {
        self.session.handler_keys()
    }

    /// Whether `shutdown` was called.
    pub fn is_shutdown(&self) -> bool {
        self.session.is_shutdown()
    }

    blocking!(
        /// Claims up to `max` ready steps for the host's free slots, waiting up to `wait` when none is ready;
        /// empty when none came or the session was shut down. A store error is logged and retried with
        /// backoff (the call then returns empty once `wait` has passed): a host loop built on it rides out a
        /// database outage. Only a closed client, a fork or bad input end it with an error.
        fn next_batch => next_batch_async(max: u32, wait: Duration) -> Vec<StepContext>
    );

    pub async fn next_batch_async(&self, max: u32, wait: Duration) -> FfiResult<Vec<StepContext>> {
        let s = self.session.clone();
        let claimed = runtime::spawn(async move { Ok(s.next_batch(max, wait).await?) }).await?;
        Ok(claimed.into_iter().map(Into::into).collect())
    }

    blocking!(
        /// Claims up to `max` ready steps, waiting up to `wait` when none is ready, with no retry: a store
        /// error is returned as it is. For tests and scenario replays; worker loops use `next_batch`.
        fn claim => claim_async(max: u32, wait: Duration) -> Vec<StepContext>
    );

    pub async fn claim_async(&self, max: u32, wait: Duration) -> FfiResult<Vec<StepContext>> {
        let s = self.session.clone();
        let claimed = runtime::spawn(async move { Ok(s.claim(max, wait).await?) }).await?;
        Ok(claimed.into_iter().map(Into::into).collect())
    }

    /// Hands a handler's outcome to the session's reporter and returns at once; it is written with others in
    /// one transaction, retried while the store is down, and never dropped silently. A malformed token is
    /// a `validation` error, and nothing is queued.
    pub fn report(&self, token: &ClaimToken, outcome: HostOutcome) -> FfiResult<()> {
        let t = token.to_core().inspect_err(|_| self.session.count_rejected())?;
        self.session.report(t, outcome.to_core());
        Ok(())
    }

    blocking!(
        /// Waits until every outcome reported before this call has been written (or given up on).
        fn flush => flush_async() -> ()
    );

    pub async fn flush_async(&self) -> FfiResult<()> {
        let s = self.session.clone();
        runtime::spawn(async move {
            s.flush().await;
            Ok(())
        })
        .await
    }

    blocking!(
        /// Records a successful attempt now; the claim must still hold.
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
        /// Records a failed attempt now: retried if retryable and attempts are left, otherwise the step errors.
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
        /// Records a batch of outcomes now, in one transaction. A stale or invalid item is rejected alone (its
        /// own `Err`); only a store failure fails the whole call, and then nothing was written.
        fn finish_many => finish_many_async(items: Vec<(ClaimToken, OutcomeInput)>) -> Vec<FfiResult<Step>>
    );

    pub async fn finish_many_async(&self, items: Vec<(ClaimToken, OutcomeInput)>) -> FfiResult<Vec<FfiResult<Step>>> {
        self.client.engine()?;
        // A malformed token fails alone, like a stale one, and never reaches the engine.
        let mut out: Vec<Option<FfiResult<Step>>> = Vec::with_capacity(items.len());
        let (mut index, mut batch) = (Vec::new(), Vec::new());
        for (i, (token, outcome)) in items.into_iter().enumerate() {
            match token.to_core() {
                Ok(t) => {
                    index.push(i);
                    batch.push((t, outcome.to_core()));
                    out.push(None);
                }
                Err(e) => {
                    self.session.count_rejected();
                    out.push(Some(Err(e)));
                }
            }
        }
        let s = self.session.clone();
        let results = runtime::spawn(async move { Ok(s.finish_now(batch).await?) }).await?;
        for (i, r) in index.into_iter().zip(results) {
            out[i] = Some(r.map(Into::into).map_err(FfiError::from));
        }
        Ok(out
            .into_iter()
            .map(|s| s.unwrap_or_else(|| Err(FfiError::internal("an outcome produced no result"))))
            .collect())
    }

    /// Stops extending the lease of a claim without reporting an outcome, as when the host gave up on a
    /// handler it cannot stop. The step is recovered by the reaper once the lease expires.
    pub fn forget(&self, token: &ClaimToken) -> FfiResult<()> {
        self.session.forget(&token.to_core()?);
        Ok(())
    }

    /// Stops claiming and wakes every waiting claim at once. Outstanding claims keep their heartbeat until
    /// they are reported (or forgotten), so running handlers can finish; then the heartbeat stops. The
    /// maintenance pass stops at once. Idempotent; never waits.
    pub fn shutdown(&self) {
        self.session.shutdown();
    }

    /// The claims taken and not yet reported.
    pub fn outstanding(&self) -> Vec<ClaimToken> {
        self.session.outstanding().into_iter().map(Into::into).collect()
    }

    blocking!(
        /// When the next scheduled retry of this session's handler keys falls due; `None` when none is.
        fn next_retry_at => next_retry_at_async() -> Option<crate::Timestamp>
    );

    pub async fn next_retry_at_async(&self) -> FfiResult<Option<crate::Timestamp>> {
        let s = self.session.clone();
        runtime::spawn(async move { Ok(s.next_retry_at().await?) }).await
    }

    pub fn stats(&self) -> SessionStats {
        self.session.stats()
    }

    /// Starts a run until idle over this session, with the one idle rule ([`tasker_core::session::IdleRun`]):
    /// under a manual clock it moves the clock to scheduled retries (unless `auto_advance_clock` is off).
    pub fn until_idle(&self, options: &RunOptions) -> IdleRun {
        let run = self.session.until_idle(IdleOptions {
            batch_size: options.batch_size.max(1),
            max_claims: options.max_claims,
            timeout: Some(Duration::from_millis(options.timeout_ms)),
            manual_clock: match self.client.clock_kind() {
                ClockKind::Manual => self.client.manual_clock(),
                ClockKind::System => None,
            },
            auto_advance_clock: options.auto_advance_clock,
        });
        IdleRun {
            state: Mutex::new(Some(IdleState {
                run,
                report: RunReport::default(),
                calls: HashMap::new(),
                handed: HashMap::new(),
            })),
        }
    }
}

struct IdleState {
    run: CoreIdleRun,
    report: RunReport,
    /// The index in `report.calls` of each reported claim not yet settled.
    calls: HashMap<tasker_core::ClaimToken, usize>,
    /// The steps handed out and not yet reported, so a report needs only the token.
    handed: HashMap<tasker_core::ClaimToken, StepContext>,
}

impl IdleState {
    fn take_handed(&mut self, token: &ClaimToken) -> FfiResult<(tasker_core::ClaimToken, StepContext)> {
        let t = token.to_core()?;
        let ctx = self.handed.remove(&t).ok_or_else(|| {
            FfiError::validation(
                "token",
                format!(
                    "step {} attempt {} is not an unreported claim of this run",
                    token.step_id, token.attempt
                ),
            )
        })?;
        Ok((t, ctx))
    }

    fn absorb_settled(&mut self) {
        for (token, r) in self.run.take_settled() {
            let Some(i) = self.calls.remove(&token) else { continue };
            match r {
                Ok(step) if step.state == tasker_core::StepState::Complete => self.report.completed += 1,
                Ok(_) => self.report.failed += 1,
                Err(e) => {
                    self.report.rejected += 1;
                    self.report.calls[i].rejected = Some(FfiError::from(e).code.to_string());
                }
            }
        }
    }
}

/// One run until idle, driven by a host: `while let Some(batch) = run.next_batch()`, run each step and
/// `report` it (or `forget` it), then `finish` for the [`RunReport`]. Every `run_until_idle` in every
/// language is this loop.
pub struct IdleRun {
    state: Mutex<Option<IdleState>>,
}

impl std::fmt::Debug for IdleRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleRun").finish_non_exhaustive()
    }
}

impl IdleRun {
    fn take(&self) -> FfiResult<IdleState> {
        lock(&self.state)
            .take()
            .ok_or_else(|| FfiError::configuration("this run is busy in another call, or finished"))
    }

    fn with<T>(&self, f: impl FnOnce(&mut IdleState) -> FfiResult<T>) -> FfiResult<T> {
        let mut g = lock(&self.state);
        let st = g
            .as_mut()
            .ok_or_else(|| FfiError::configuration("this run is busy in another call, or finished"))?;
        f(st)
    }

    blocking!(
        /// Writes the previous batch's outcomes, then claims the next batch; `None` when the run is idle.
        fn next_batch => next_batch_async() -> Option<Vec<StepContext>>
    );

    pub async fn next_batch_async(&self) -> FfiResult<Option<Vec<StepContext>>> {
        let mut st = self.take()?;
        let (st, r) = runtime::spawn(async move {
            let r = st.run.next_batch().await;
            st.absorb_settled();
            Ok((st, r))
        })
        .await?;
        let mut st = st;
        let batch: Option<Vec<StepContext>> = r?.map(|b| b.into_iter().map(Into::into).collect());
        for ctx in batch.iter().flatten() {
            st.handed.insert(ctx.token.to_core()?, ctx.clone());
        }
        *lock(&self.state) = Some(st);
        Ok(batch)
    }

    /// Reports the outcome of one step of the current batch; written before the next claim. A token this run
    /// did not hand out (or one already reported) is a `validation` error.
    pub fn report(&self, token: &ClaimToken, outcome: HostOutcome) -> FfiResult<()> {
        self.with(|st| {
            let (token, ctx) = st.take_handed(token)?;
            st.report.calls.push(call_of(&ctx, outcome.name()));
            st.calls.insert(token, st.report.calls.len() - 1);
            st.run.report(token, outcome.to_core());
            Ok(())
        })
    }

    /// Leaves a claimed step to expire without reporting it, as a crashed worker would (`overrun_lease` in
    /// tests): its lease is no longer extended and the reaper recovers it.
    pub fn forget(&self, token: &ClaimToken) -> FfiResult<()> {
        self.with(|st| {
            let (token, ctx) = st.take_handed(token)?;
            st.report.calls.push(call_of(&ctx, "overrun_lease"));
            st.report.overrun += 1;
            st.run.forget(&token);
            Ok(())
        })
    }

    blocking!(
        /// Writes what is left and returns what the run did.
        fn finish => finish_async() -> RunReport
    );

    pub async fn finish_async(&self) -> FfiResult<RunReport> {
        let mut st = self.take()?;
        let mut st = runtime::spawn(async move {
            st.run.settle().await;
            st.absorb_settled();
            Ok(st)
        })
        .await?;
        st.report.advanced_ms = st.run.advanced_ms();
        st.report.timed_out = st.run.session().stats().timed_out;
        Ok(st.report)
    }
}

/// `host-pid-random` natively; a wasm32 module has no host name or process, so `wasm-` and random hex.
fn default_worker_id() -> String {
    #[cfg(feature = "native")]
    return tasker_core::worker::default_worker_id();
    #[cfg(not(feature = "native"))]
    format!("wasm-{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

fn call_of(ctx: &StepContext, outcome: &str) -> HandlerCall {
    HandlerCall {
        task_id: ctx.task_id.clone(),
        step_id: ctx.step_id.clone(),
        step_name: ctx.step_name.clone(),
        handler_key: ctx.handler_key.clone(),
        attempt: ctx.attempt,
        dependency_results: ctx.dependency_results.clone(),
        outcome: outcome.to_string(),
        rejected: None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn outcome_items_lift_successes_and_failures() {
        let v = serde_json::json!([
            {"step_id": "s1", "attempt": 1, "success": null},
            {"step_id": "s2", "attempt": 2, "failure": {"message": "no", "kind": "permanent"}},
        ]);
        let items = OutcomeInput::items(v).unwrap();
        assert_eq!(items[0], (ClaimToken::new("s1", 1), OutcomeInput::Success(Value::Null)));
        let OutcomeInput::Failure(f) = &items[1].1 else {
            panic!("{items:?}")
        };
        assert_eq!(
            (items[1].0.attempt, f.kind, f.message.as_str()),
            (2, FailureKind::Permanent, "no")
        );
        let e = OutcomeInput::items(serde_json::json!([{"step_id": "s1", "success": 1}])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert!(e.to_string().contains("outcomes[0]: missing field `attempt`"), "{e}");
    }

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
}
