//! `WorkerSession` and `IdleRun` (native): the one worker session of docs/bindings.md §6 (made by
//! `Client.workerSession`) and its run until idle. The JS `Worker` (js/worker.js) drives it: it awaits
//! `nextBatch`, runs handlers as Promises and reports each outcome, which returns at once. Claim waits,
//! heartbeats, batching, retries and the idle rule are the shared session's, running on the JS event loop.
//! Tokens are passed as their two primitives, the step id and the attempt.

use std::rc::Rc;
use std::time::Duration;

use js_sys::Promise;
use tasker_shared_ffi::{self as ffi, dto, FailureInput, FfiResult, HostOutcome, OutcomeInput, Reports};
use wasm_bindgen::prelude::*;

use crate::blocking::{lifted, promise, settle_with};
use crate::convert::{lift_options, lift_value, lower};
use crate::errors::{lower_error, IntoHost};

fn token(step_id: String, attempt: f64) -> dto::ClaimToken {
    dto::ClaimToken::new(step_id, attempt as i64)
}

fn wait(ms: f64) -> FfiResult<Duration> {
    ffi::objects::seconds(ms / 1000.0, "waitMs")
}

/// The handler returned `result`: the shared layer makes a lift error an `InvalidResult` failure.
fn report(to: &dyn Reports, step_id: String, attempt: f64, result: &JsValue) -> Result<(), JsValue> {
    let outcome = HostOutcome::returned(lift_value(result, "result"));
    to.report(&token(step_id, attempt), outcome).into_host()
}

/// The handler threw; `failure` is `{ kind, message, error_class, backtrace, retry_after_ms, code }`.
fn report_failure(to: &dyn Reports, step_id: String, attempt: f64, failure: &JsValue) -> Result<(), JsValue> {
    let failure: FailureInput = lift_options(failure, "failure").into_host()?;
    to.report(&token(step_id, attempt), HostOutcome::Failure(failure))
        .into_host()
}

fn report_missing(to: &dyn Reports, step_id: String, attempt: f64, handler_key: String) -> Result<(), JsValue> {
    let missing = HostOutcome::HandlerMissing(handler_key);
    to.report(&token(step_id, attempt), missing).into_host()
}

/// A worker session: claims steps for its handler keys, heartbeats their leases, and takes their outcomes.
#[wasm_bindgen]
pub struct WorkerSession {
    inner: ffi::WorkerSession,
}

impl WorkerSession {
    pub(crate) fn new(inner: ffi::WorkerSession) -> Self {
        WorkerSession { inner }
    }
}

#[wasm_bindgen]
impl WorkerSession {
    #[wasm_bindgen(getter, js_name = workerId)]
    pub fn worker_id(&self) -> String {
        self.inner.worker_id().to_string()
    }

    #[wasm_bindgen(getter, js_name = handlerKeys)]
    pub fn handler_keys(&self) -> Vec<String> {
        self.inner.handler_keys().to_vec()
    }

    #[wasm_bindgen(getter, js_name = isShutdown)]
    pub fn is_shutdown(&self) -> bool {
        self.inner.is_shutdown()
    }

    /// A Promise of up to `max` claimed steps, waiting up to `waitMs` when none is ready.
    #[wasm_bindgen(js_name = nextBatch)]
    pub fn next_batch(&self, max: u32, wait_ms: f64) -> Promise {
        let (s, wait) = (self.inner.clone(), lifted!(wait(wait_ms)));
        promise(async move { s.next_batch_async(max, wait).await })
    }

    pub fn report(&self, step_id: String, attempt: f64, result: JsValue) -> Result<(), JsValue> {
        report(&self.inner, step_id, attempt, &result)
    }

    #[wasm_bindgen(js_name = reportFailure)]
    pub fn report_failure(&self, step_id: String, attempt: f64, failure: JsValue) -> Result<(), JsValue> {
        report_failure(&self.inner, step_id, attempt, &failure)
    }

    #[wasm_bindgen(js_name = reportMissing)]
    pub fn report_missing(&self, step_id: String, attempt: f64, handler_key: String) -> Result<(), JsValue> {
        report_missing(&self.inner, step_id, attempt, handler_key)
    }

    /// A Promise settled once everything reported before it is written.
    pub fn flush(&self) -> Promise {
        let s = self.inner.clone();
        promise(async move { s.flush_async().await })
    }

    /// Claims without retrying (for tests and scenario replays).
    pub fn claim(&self, max: u32, wait_ms: f64) -> Promise {
        let (s, wait) = (self.inner.clone(), lifted!(wait(wait_ms)));
        promise(async move { s.claim_async(max, wait).await })
    }

    /// Reports a success now and resolves to the `Step`.
    pub fn complete(&self, step_id: String, attempt: f64, result: JsValue) -> Promise {
        let result = lifted!(lift_value(&result, "result"));
        let (token, s) = (token(step_id, attempt), self.inner.clone());
        promise(async move { s.complete_async(&token, result).await })
    }

    /// Reports a failure now and resolves to the `Step`.
    pub fn fail(&self, step_id: String, attempt: f64, failure: JsValue) -> Promise {
        let failure: FailureInput = lifted!(lift_options(&failure, "failure"));
        let (token, s) = (token(step_id, attempt), self.inner.clone());
        promise(async move { s.fail_async(&token, failure).await })
    }

    /// Reports many outcomes now, in one transaction: `[{ step_id, attempt, success: result }]` or `{ …,
    /// failure: {…} }`; resolves to one `Step`, or the error (not thrown), per item.
    #[wasm_bindgen(js_name = finishMany)]
    pub fn finish_many(&self, outcomes: JsValue) -> Promise {
        let items = lifted!(lift_value(&outcomes, "outcomes").and_then(OutcomeInput::items));
        let s = self.inner.clone();
        settle_with(async move { s.finish_many_async(items).await }, |results| {
            let each = results
                .iter()
                .map(|r| r.as_ref().map_or_else(|e| Ok(lower_error(e)), lower));
            Ok(each.collect::<Result<js_sys::Array, JsValue>>()?.into())
        })
    }

    pub fn forget(&self, step_id: String, attempt: f64) -> Result<(), JsValue> {
        self.inner.forget(&token(step_id, attempt)).into_host()
    }

    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    pub fn outstanding(&self) -> Result<JsValue, JsValue> {
        lower(&self.inner.outstanding())
    }

    pub fn stats(&self) -> Result<JsValue, JsValue> {
        lower(&self.inner.stats())
    }

    #[wasm_bindgen(js_name = nextRetryAt)]
    pub fn next_retry_at(&self) -> Promise {
        let s = self.inner.clone();
        promise(async move { s.next_retry_at_async().await })
    }

    /// Starts a run until idle: `{ batch_size, max_claims, timeout_ms, auto_advance_clock }`.
    #[wasm_bindgen(js_name = untilIdle)]
    pub fn until_idle(&self, options: JsValue) -> Result<IdleRun, JsValue> {
        let options = lift_options(&options, "options").into_host()?;
        Ok(IdleRun {
            inner: Rc::new(self.inner.until_idle(&options)),
        })
    }
}

/// One run until idle (docs/bindings.md §8): `while ((batch = await run.nextBatch()) !== null)`, run and
/// report each step, then `await run.finish()` for the `RunReport`.
#[wasm_bindgen]
pub struct IdleRun {
    inner: Rc<ffi::IdleRun>,
}

#[wasm_bindgen]
impl IdleRun {
    /// Writes the previous batch's outcomes, then a Promise of the next batch; `null` when idle.
    #[wasm_bindgen(js_name = nextBatch)]
    pub fn next_batch(&self) -> Promise {
        let r = self.inner.clone();
        promise(async move { r.next_batch_async().await })
    }

    pub fn report(&self, step_id: String, attempt: f64, result: JsValue) -> Result<(), JsValue> {
        report(&*self.inner, step_id, attempt, &result)
    }

    #[wasm_bindgen(js_name = reportFailure)]
    pub fn report_failure(&self, step_id: String, attempt: f64, failure: JsValue) -> Result<(), JsValue> {
        report_failure(&*self.inner, step_id, attempt, &failure)
    }

    #[wasm_bindgen(js_name = reportMissing)]
    pub fn report_missing(&self, step_id: String, attempt: f64, handler_key: String) -> Result<(), JsValue> {
        report_missing(&*self.inner, step_id, attempt, handler_key)
    }

    pub fn forget(&self, step_id: String, attempt: f64) -> Result<(), JsValue> {
        self.inner.forget(&token(step_id, attempt)).into_host()
    }

    /// Writes what is left and resolves to the `RunReport`.
    pub fn finish(&self) -> Promise {
        let r = self.inner.clone();
        promise(async move { r.finish_async().await })
    }
}
