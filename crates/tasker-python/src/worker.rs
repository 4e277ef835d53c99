//! `tasker_core._native.WorkerSession` and `IdleRun`: the one worker session of docs/bindings.md §6 (made
//! by `Client.worker_session`) and its run until idle. The Python `Worker` (python/tasker_core/worker.py)
//! drives it from Python threads: claim with the GIL released, run handlers on a thread pool, report. Nothing
//! here calls into Python from a Tokio thread.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tasker_shared_ffi::{self as ffi, HostOutcome, Reports};

use crate::blocking::blocking;
use crate::convert::{
    lift_failure, lift_json, lift_options, lift_outcome, lift_seconds, lift_token, lift_value, lower, Options,
};
use crate::errors::IntoHost;

// The session and the idle run take outcomes the same way; their `report*` and `forget` methods call these.

/// The handler returned `result`: the shared layer makes a lift error an `InvalidResult` failure.
fn report(to: &dyn Reports, token: &Bound<'_, PyAny>, result: &Bound<'_, PyAny>) -> PyResult<()> {
    let result = HostOutcome::returned(lift_value(result, "result"));
    to.report(&lift_token(token)?, result).into_host()
}

/// The handler raised; `failure` holds `failure_of`'s keywords.
fn report_failure(to: &dyn Reports, token: &Bound<'_, PyAny>, failure: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    let failure = HostOutcome::Failure(lift_failure(failure.map(|d| d.as_any()), "failure")?);
    to.report(&lift_token(token)?, failure).into_host()
}

fn report_missing(to: &dyn Reports, token: &Bound<'_, PyAny>, handler_key: String) -> PyResult<()> {
    let missing = HostOutcome::HandlerMissing(handler_key);
    to.report(&lift_token(token)?, missing).into_host()
}

/// A worker session: claims steps for its handler keys, heartbeats their leases, and takes their outcomes.
#[pyclass(module = "tasker_core._native", frozen)]
pub struct WorkerSession {
    inner: ffi::WorkerSession,
}

impl WorkerSession {
    pub(crate) fn new(inner: ffi::WorkerSession) -> Self {
        WorkerSession { inner }
    }
}

#[pymethods]
impl WorkerSession {
    #[getter]
    fn worker_id(&self) -> String {
        self.inner.worker_id().to_string()
    }

    #[getter]
    fn handler_keys(&self) -> Vec<String> {
        self.inner.handler_keys().to_vec()
    }

    #[getter]
    fn is_shutdown(&self) -> bool {
        self.inner.is_shutdown()
    }

    /// Claims up to `max` ready steps for free slots, waiting up to `wait` seconds when none is ready (GIL
    /// released); a store error is retried with backoff, and the call then returns `[]` once `wait` passed.
    #[pyo3(signature = (max, wait = 1.0))]
    fn next_batch(&self, py: Python<'_>, max: u32, wait: f64) -> PyResult<Py<PyAny>> {
        let wait = lift_seconds(wait, "wait")?;
        let s = self.inner.clone();
        lower(py, &blocking(py, move || s.next_batch(max, wait))?)
    }

    /// Hands a handler's result to the session's reporter and returns at once.
    fn report(&self, token: &Bound<'_, PyAny>, result: &Bound<'_, PyAny>) -> PyResult<()> {
        report(&self.inner, token, result)
    }

    /// Hands a handler's failure (the keywords of `fail`) to the session's reporter and returns at once.
    #[pyo3(signature = (token, **failure))]
    fn report_failure(&self, token: &Bound<'_, PyAny>, failure: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        report_failure(&self.inner, token, failure)
    }

    /// Reports that no handler is registered for `handler_key`.
    fn report_missing(&self, token: &Bound<'_, PyAny>, handler_key: String) -> PyResult<()> {
        report_missing(&self.inner, token, handler_key)
    }

    /// Waits (GIL released) until everything reported so far has been written.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let s = self.inner.clone();
        blocking(py, move || s.flush())
    }

    /// Claims up to `max` ready steps, waiting up to `wait` seconds when none is ready (GIL released); no
    /// retries, for tests.
    #[pyo3(signature = (max, wait = 0.0))]
    fn claim(&self, py: Python<'_>, max: u32, wait: f64) -> PyResult<Py<PyAny>> {
        let wait = lift_seconds(wait, "wait")?;
        let s = self.inner.clone();
        lower(py, &blocking(py, move || s.claim(max, wait))?)
    }

    /// Reports a success.
    fn complete(&self, py: Python<'_>, token: &Bound<'_, PyAny>, result: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let token = lift_token(token)?;
        let result = lift_json(result, "result")?;
        let s = self.inner.clone();
        lower(py, &blocking(py, move || s.complete(&token, result))?)
    }

    /// Reports a failure: keywords `message`, `kind` (`"retryable"` or `"permanent"`), `error_class`,
    /// `backtrace`, `retry_after` (seconds) and `code`.
    #[pyo3(signature = (token, **failure))]
    fn fail(
        &self,
        py: Python<'_>,
        token: &Bound<'_, PyAny>,
        failure: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let token = lift_token(token)?;
        let failure = lift_failure(failure.map(|d| d.as_any()), "failure")?;
        let s = self.inner.clone();
        lower(py, &blocking(py, move || s.fail(&token, failure))?)
    }

    /// Reports many outcomes in one transaction. Each item is `(token, "success", result)` or
    /// `(token, "failure", {...})`; each result is a `Step` or the exception (not raised) for that item.
    fn finish_many(&self, py: Python<'_>, outcomes: Vec<Bound<'_, PyAny>>) -> PyResult<Vec<Py<PyAny>>> {
        let items = outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| lift_outcome(o, i))
            .collect::<PyResult<Vec<_>>>()?;
        let s = self.inner.clone();
        let results = blocking(py, move || s.finish_many(items))?;
        results
            .into_iter()
            .map(|r| match r {
                Ok(step) => lower(py, &step),
                Err(e) => Ok(e.into_host().into_value(py).into_any()),
            })
            .collect()
    }

    /// Stops heartbeating a claim without reporting it; the reaper recovers it when the lease expires.
    fn forget(&self, token: &Bound<'_, PyAny>) -> PyResult<()> {
        let token = lift_token(token)?;
        self.inner.forget(&token).into_host()
    }

    /// Stops claiming and wakes any waiting claim; outstanding claims keep their lease until reported.
    fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn outstanding(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        lower(py, &self.inner.outstanding())
    }

    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        lower(py, &self.inner.stats())
    }

    /// When the next scheduled retry of this session's keys falls due (None: none is scheduled).
    fn next_retry_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.inner.clone();
        lower(py, &blocking(py, move || inner.next_retry_at())?)
    }

    /// A run until idle over this session: `batch_size`, `max_claims`, `timeout_ms`, `auto_advance_clock`.
    #[pyo3(signature = (options = None))]
    fn until_idle(&self, options: Options<'_, '_>) -> PyResult<IdleRun> {
        let options = lift_options(options, "options")?;
        Ok(IdleRun {
            inner: self.inner.until_idle(&options),
        })
    }
}

/// One run until idle: `while (batch := run.next_batch()) is not None`, report each, then `finish()`.
#[pyclass(module = "tasker_core._native", frozen)]
pub struct IdleRun {
    inner: ffi::IdleRun,
}

#[pymethods]
impl IdleRun {
    /// Writes the previous batch's outcomes, then claims the next batch; None when the run is idle.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let run = &self.inner;
        lower(py, &blocking(py, || run.next_batch())?)
    }

    fn report(&self, token: &Bound<'_, PyAny>, result: &Bound<'_, PyAny>) -> PyResult<()> {
        report(&self.inner, token, result)
    }

    #[pyo3(signature = (token, **failure))]
    fn report_failure(&self, token: &Bound<'_, PyAny>, failure: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        report_failure(&self.inner, token, failure)
    }

    fn report_missing(&self, token: &Bound<'_, PyAny>, handler_key: String) -> PyResult<()> {
        report_missing(&self.inner, token, handler_key)
    }

    /// Leaves a claimed step to expire (a crashed worker, in tests).
    fn forget(&self, token: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.forget(&lift_token(token)?).into_host()
    }

    /// Writes what is left and returns the `RunReport`.
    fn finish(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let run = &self.inner;
        lower(py, &blocking(py, || run.finish())?)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<WorkerSession>()?;
    m.add_class::<IdleRun>()
}
