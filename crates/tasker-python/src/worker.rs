//! `tasker_core.WorkerSession`: the pull-based worker protocol of docs/bindings.md §6. The Python `Worker`
//! (python/tasker_core/worker.py) drives it from Python threads: claim with the GIL released, run handlers on
//! a thread pool, report. Nothing here calls into Python from a Tokio thread.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tasker_shared_ffi as ffi;
use tasker_shared_ffi::{FailureInput, FailureKind, OutcomeInput};

use crate::blocking;
use crate::convert::{invalid, lift_json, lift_seconds_ms, lift_token, ClaimToken, SessionStats, Step, StepContext};
use crate::errors::{exception_of, ResultExt};

/// A worker session: claims steps for its handler keys, heartbeats their leases, and takes their outcomes.
#[pyclass(module = "tasker_core", frozen)]
pub struct WorkerSession {
    inner: ffi::WorkerSession,
}

impl WorkerSession {
    pub(crate) fn new(inner: ffi::WorkerSession) -> Self {
        WorkerSession { inner }
    }
}

/// Lifts a failure from keyword arguments; `retry_after` is in seconds.
fn lift_failure(
    py: Python<'_>,
    kind: &str,
    message: String,
    error_class: Option<String>,
    backtrace: Option<Vec<String>>,
    retry_after: Option<f64>,
    code: Option<String>,
) -> PyResult<FailureInput> {
    Ok(FailureInput {
        kind: kind.parse::<FailureKind>().py(py)?,
        message,
        error_class,
        backtrace: backtrace.unwrap_or_default(),
        retry_after_ms: retry_after.map(|s| lift_seconds_ms(py, s, "retry_after")).transpose()?,
        code,
    })
}

/// Lifts one outcome of `finish_many`: `("success", result)` or `("failure", {kind, message, error_class,
/// backtrace, retry_after, code})`.
fn lift_outcome(item: &Bound<'_, PyAny>, i: usize) -> PyResult<(ffi::ClaimToken, OutcomeInput)> {
    let py = item.py();
    let (token, tag, payload): (Bound<'_, PyAny>, String, Bound<'_, PyAny>) = item.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "outcomes[{i}]: expected a (token, \"success\" | \"failure\", value) tuple"
        ))
    })?;
    let token = lift_token(&token)?;
    let outcome = match tag.as_str() {
        "success" => OutcomeInput::Success(lift_json(&payload, &format!("outcomes[{i}].result"))?),
        "failure" => {
            let d = payload
                .cast::<PyDict>()
                .map_err(|_| invalid(py, &format!("outcomes[{i}].failure"), "expected a dict"))?;
            let get = |k: &str| -> PyResult<Option<Bound<'_, PyAny>>> { Ok(d.get_item(k)?.filter(|v| !v.is_none())) };
            let kind: String = get("kind")?
                .map(|v| v.extract())
                .transpose()?
                .unwrap_or("retryable".into());
            OutcomeInput::Failure(lift_failure(
                py,
                &kind,
                get("message")?.map(|v| v.extract()).transpose()?.unwrap_or_default(),
                get("error_class")?.map(|v| v.extract()).transpose()?,
                get("backtrace")?.map(|v| v.extract()).transpose()?,
                get("retry_after")?.map(|v| v.extract()).transpose()?,
                get("code")?.map(|v| v.extract()).transpose()?,
            )?)
        }
        other => {
            return Err(invalid(
                py,
                &format!("outcomes[{i}]"),
                format!("expected \"success\" or \"failure\", found {other:?}"),
            ))
        }
    };
    Ok((token, outcome))
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
    fn claim(&self, py: Python<'_>, max: u32, wait: f64) -> PyResult<Vec<StepContext>> {
        let wait = Duration::from_millis(lift_seconds_ms(py, wait, "wait")?);
        let s = self.inner.clone();
        Ok(blocking(py, move || s.claim(max, wait))?
            .into_iter()
            .map(StepContext)
            .collect())
    }

    /// Reports a success.
    fn complete(&self, py: Python<'_>, token: &Bound<'_, PyAny>, result: &Bound<'_, PyAny>) -> PyResult<Step> {
        let token = lift_token(token)?;
        let result = lift_json(result, "result")?;
        let s = self.inner.clone();
        blocking(py, move || s.complete(&token, result)).map(Step)
    }

    /// Reports a failure: `kind` is `"retryable"` or `"permanent"`; `retry_after` in seconds.
    #[pyo3(signature = (token, *, message, kind = "retryable", error_class = None, backtrace = None, retry_after = None, code = None))]
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        py: Python<'_>,
        token: &Bound<'_, PyAny>,
        message: String,
        kind: &str,
        error_class: Option<String>,
        backtrace: Option<Vec<String>>,
        retry_after: Option<f64>,
        code: Option<String>,
    ) -> PyResult<Step> {
        let token = lift_token(token)?;
        let failure = lift_failure(py, kind, message, error_class, backtrace, retry_after, code)?;
        let s = self.inner.clone();
        blocking(py, move || s.fail(&token, failure)).map(Step)
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
                Ok(step) => crate::convert::Lower::lower(&step, py),
                Err(e) => Ok(exception_of(py, &e)?.unbind()),
            })
            .collect()
    }

    /// Stops heartbeating a claim without reporting it; the reaper recovers it when the lease expires.
    fn forget(&self, py: Python<'_>, token: &Bound<'_, PyAny>) -> PyResult<()> {
        let token = lift_token(token)?;
        self.inner.forget(&token).py(py)
    }

    /// Stops claiming and wakes any waiting claim; outstanding claims keep their lease until reported.
    fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn outstanding(&self) -> Vec<ClaimToken> {
        self.inner.outstanding().into_iter().map(ClaimToken).collect()
    }

    fn stats(&self) -> SessionStats {
        SessionStats(self.inner.stats())
    }

    /// When the next scheduled retry of this session's keys falls due (None: none is scheduled); the idle
    /// rule of `run_until_idle` asks this when a claim finds nothing.
    fn next_retry_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.inner.clone();
        let at = blocking(py, move || inner.next_retry_at())?;
        crate::convert::Lower::lower(&at, py)
    }
}
