//! `tasker_core._native.WorkerSession`: the pull-based worker protocol of docs/bindings.md §6 (made by
//! `Client.worker_session`). The Python `Worker`
//! (python/tasker_core/worker.py) drives it from Python threads: claim with the GIL released, run handlers on
//! a thread pool, report. Nothing here calls into Python from a Tokio thread.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tasker_shared_ffi as ffi;

use crate::blocking::blocking;
use crate::convert::{lift_failure, lift_json, lift_outcome, lift_seconds, lift_token, lower};
use crate::errors::IntoHost;

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

    /// Claims up to `max` ready steps, waiting up to `wait` seconds when none is ready (GIL released).
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

    /// When the next scheduled retry of this session's keys falls due (None: none is scheduled); the idle
    /// rule of `run_until_idle` asks this when a claim finds nothing.
    fn next_retry_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.inner.clone();
        lower(py, &blocking(py, move || inner.next_retry_at())?)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<WorkerSession>()
}
