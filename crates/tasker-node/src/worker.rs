//! `WorkerSession` and `IdleRun` (native): the one worker session of docs/bindings.md §6 (made by
//! `Client.workerSession`) and its run until idle. The JS `Worker` (lib/worker.js) drives it: it awaits
//! `nextBatch` (a Promise; the wait happens on the shared runtime), runs handlers as Promises, and reports
//! each outcome, which returns at once. Nothing here calls into JS from a Tokio thread. Tokens are passed
//! as their two primitives, the step id and the attempt.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tasker_shared_ffi::{self as ffi, dto, FailureInput, FfiResult, HostOutcome, OutcomeInput, Reports};

use crate::blocking::{promise, rejected};
use crate::client::{lifted, settle};
use crate::convert::{lift_options, lift_value, lower};
use crate::errors::IntoHost;

fn token(step_id: String, attempt: i64) -> dto::ClaimToken {
    dto::ClaimToken::new(step_id, attempt)
}

fn wait(ms: f64) -> FfiResult<Duration> {
    tasker_shared_ffi::objects::seconds(ms / 1000.0, "waitMs")
}

/// The handler returned `result` (the session's and the idle run's `report*` call these three): the shared
/// layer makes a lift error an `InvalidResult` failure.
fn report(to: &dyn Reports, env: &Env, step_id: String, attempt: i64, result: Unknown) -> Result<()> {
    let outcome = HostOutcome::returned(lift_value(&result, "result"));
    to.report(&token(step_id, attempt), outcome).into_host(env)
}

/// The handler threw; `failure` is `{ kind, message, error_class, backtrace, retry_after_ms, code }`.
fn report_failure(to: &dyn Reports, env: &Env, step_id: String, attempt: i64, failure: Unknown) -> Result<()> {
    let failure: FailureInput = lift_options(Some(failure), "failure").into_host(env)?;
    to.report(&token(step_id, attempt), HostOutcome::Failure(failure))
        .into_host(env)
}

fn report_missing(to: &dyn Reports, env: &Env, step_id: String, attempt: i64, handler_key: String) -> Result<()> {
    let missing = HostOutcome::HandlerMissing(handler_key);
    to.report(&token(step_id, attempt), missing).into_host(env)
}

/// A worker session: claims steps for its handler keys, heartbeats their leases, and takes their outcomes.
#[napi]
pub struct WorkerSession {
    inner: ffi::WorkerSession,
}

impl WorkerSession {
    pub(crate) fn new(inner: ffi::WorkerSession) -> Self {
        WorkerSession { inner }
    }
}

/// `finish_many`'s answer: each item's `Step`, or the error (not thrown) for that item.
fn settle_steps(env: &Env, results: Vec<FfiResult<dto::Step>>) -> Result<Unknown<'_>> {
    let mut array = env.create_array(0)?;
    for r in results {
        array.insert(r.map_or_else(|e| crate::errors::lower_error(env, &e), |step| lower(env, &step))?)?;
    }
    array.into_unknown(env)
}

#[napi]
impl WorkerSession {
    #[napi(getter)]
    pub fn worker_id(&self) -> String {
        self.inner.worker_id().to_string()
    }

    #[napi(getter)]
    pub fn handler_keys(&self) -> Vec<String> {
        self.inner.handler_keys().to_vec()
    }

    #[napi(getter)]
    pub fn is_shutdown(&self) -> bool {
        self.inner.is_shutdown()
    }

    /// Claims up to `max` ready steps for free slots, waiting up to `waitMs` when none is ready; a store
    /// error is retried with backoff, and the Promise then resolves to `[]` once the wait has passed.
    #[napi]
    pub fn next_batch<'env>(&self, env: &'env Env, max: u32, wait_ms: f64) -> Result<Object<'env>> {
        let (wait, s) = (lifted!(env, wait(wait_ms)), self.inner.clone());
        promise(env, async move { s.next_batch_async(max, wait).await }, settle)
    }

    /// Hands a handler's result to the session's reporter; returns at once.
    #[napi]
    pub fn report(&self, env: &Env, step_id: String, attempt: i64, result: Unknown) -> Result<()> {
        report(&self.inner, env, step_id, attempt, result)
    }

    #[napi]
    pub fn report_failure(&self, env: &Env, step_id: String, attempt: i64, failure: Unknown) -> Result<()> {
        report_failure(&self.inner, env, step_id, attempt, failure)
    }

    #[napi]
    pub fn report_missing(&self, env: &Env, step_id: String, attempt: i64, handler_key: String) -> Result<()> {
        report_missing(&self.inner, env, step_id, attempt, handler_key)
    }

    /// Resolves once everything reported so far has been written.
    #[napi]
    pub fn flush<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let s = self.inner.clone();
        promise(env, async move { s.flush_async().await }, settle)
    }

    /// Claims up to `max` ready steps, waiting up to `waitMs`; no retries, for tests.
    #[napi]
    pub fn claim<'env>(&self, env: &'env Env, max: u32, wait_ms: f64) -> Result<Object<'env>> {
        let (wait, s) = (lifted!(env, wait(wait_ms)), self.inner.clone());
        promise(env, async move { s.claim_async(max, wait).await }, settle)
    }

    /// Reports a success and resolves to the `Step`.
    #[napi]
    pub fn complete<'env>(
        &self,
        env: &'env Env,
        step_id: String,
        attempt: i64,
        result: Unknown,
    ) -> Result<Object<'env>> {
        let result = lifted!(env, lift_value(&result, "result"));
        let (token, s) = (token(step_id, attempt), self.inner.clone());
        promise(env, async move { s.complete_async(&token, result).await }, settle)
    }

    /// Reports a failure (`{ kind, message, error_class, backtrace, retry_after_ms, code }`) and resolves to
    /// the `Step`.
    #[napi]
    pub fn fail<'env>(&self, env: &'env Env, step_id: String, attempt: i64, failure: Unknown) -> Result<Object<'env>> {
        let failure: FailureInput = lifted!(env, lift_options(Some(failure), "failure"));
        let (token, s) = (token(step_id, attempt), self.inner.clone());
        promise(env, async move { s.fail_async(&token, failure).await }, settle)
    }

    /// Reports many outcomes in one transaction: each item `{ step_id, attempt, success: result }` or
    /// `{ step_id, attempt, failure: {...} }`; resolves to one `Step` or error per item.
    #[napi]
    pub fn finish_many<'env>(&self, env: &'env Env, outcomes: Unknown) -> Result<Object<'env>> {
        let items = lifted!(env, lift_value(&outcomes, "outcomes").and_then(OutcomeInput::items));
        let s = self.inner.clone();
        promise(env, async move { s.finish_many_async(items).await }, settle_steps)
    }

    /// Stops heartbeating a claim without reporting it; the reaper recovers it when the lease expires.
    #[napi]
    pub fn forget(&self, env: &Env, step_id: String, attempt: i64) -> Result<()> {
        self.inner.forget(&token(step_id, attempt)).into_host(env)
    }

    /// Stops claiming and wakes any waiting claim; outstanding claims keep their lease until reported.
    #[napi]
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    #[napi]
    pub fn outstanding<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        lower(env, &self.inner.outstanding())
    }

    #[napi]
    pub fn stats<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        lower(env, &self.inner.stats())
    }

    /// When the next scheduled retry of this session's keys falls due (`null`: none is scheduled).
    #[napi]
    pub fn next_retry_at<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let s = self.inner.clone();
        promise(env, async move { s.next_retry_at_async().await }, settle)
    }

    /// A run until idle over this session: `{ batch_size, max_claims, timeout_ms, auto_advance_clock }`.
    #[napi]
    pub fn until_idle(&self, env: &Env, options: Option<Unknown>) -> Result<IdleRun> {
        let options = lift_options(options, "options").into_host(env)?;
        Ok(IdleRun {
            inner: Arc::new(self.inner.until_idle(&options)),
        })
    }
}

/// One run until idle: `while ((batch = await run.nextBatch()) !== null)`, report each, then `finish()`.
#[napi]
pub struct IdleRun {
    inner: Arc<ffi::IdleRun>,
}

#[napi]
impl IdleRun {
    /// Writes the previous batch's outcomes, then claims the next batch; `null` when the run is idle.
    #[napi]
    pub fn next_batch<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let run = self.inner.clone();
        promise(env, async move { run.next_batch_async().await }, settle)
    }

    #[napi]
    pub fn report(&self, env: &Env, step_id: String, attempt: i64, result: Unknown) -> Result<()> {
        report(&*self.inner, env, step_id, attempt, result)
    }

    #[napi]
    pub fn report_failure(&self, env: &Env, step_id: String, attempt: i64, failure: Unknown) -> Result<()> {
        report_failure(&*self.inner, env, step_id, attempt, failure)
    }

    #[napi]
    pub fn report_missing(&self, env: &Env, step_id: String, attempt: i64, handler_key: String) -> Result<()> {
        report_missing(&*self.inner, env, step_id, attempt, handler_key)
    }

    /// Leaves a claimed step to expire (a crashed worker, in tests).
    #[napi]
    pub fn forget(&self, env: &Env, step_id: String, attempt: i64) -> Result<()> {
        self.inner.forget(&token(step_id, attempt)).into_host(env)
    }

    /// Writes what is left and resolves to the `RunReport`.
    #[napi]
    pub fn finish<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let run = self.inner.clone();
        promise(env, async move { run.finish_async().await }, settle)
    }
}
