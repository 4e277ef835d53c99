//! `tasker_core.Subscription`: a bounded event subscription, iterable in Python (`for e in sub`) over a
//! blocking `next(timeout)` that releases the GIL.

use std::time::Duration;

use pyo3::prelude::*;
use tasker_shared_ffi as ffi;

use crate::blocking;
use crate::convert::{lift_seconds_ms, Event};
use crate::errors::ResultExt;

/// How long one wait of the iterator lasts before it looks again at whether the client was closed.
const ITER_SLICE: Duration = Duration::from_millis(200);

/// Events published after the subscription was made, oldest first.
#[pyclass(module = "tasker_core", frozen)]
pub struct Subscription {
    inner: ffi::Subscription,
    client: ffi::Client,
}

impl Subscription {
    pub(crate) fn new(inner: ffi::Subscription, client: ffi::Client) -> Self {
        Subscription { inner, client }
    }
}

#[pymethods]
impl Subscription {
    /// The next event, waiting at most `timeout` seconds (GIL released); None when none came, or when the
    /// client is closed and the buffer is empty.
    #[pyo3(signature = (timeout = 1.0))]
    fn next(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Event>> {
        let timeout = Duration::from_millis(lift_seconds_ms(py, timeout, "timeout")?);
        let s = self.inner.clone();
        Ok(blocking(py, move || s.next(timeout))?.map(Event))
    }

    /// The next buffered event, never waiting.
    fn try_next(&self, py: Python<'_>) -> PyResult<Option<Event>> {
        Ok(self.inner.try_next().py(py)?.map(Event))
    }

    /// Every buffered event, never waiting.
    fn drain(&self, py: Python<'_>) -> PyResult<Vec<Event>> {
        Ok(self.inner.drain().py(py)?.into_iter().map(Event).collect())
    }

    /// Events lost because this subscription fell more than its buffer behind.
    #[getter]
    fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Waits for the next event; the iteration ends once the client is closed and the buffer is empty.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Event>> {
        loop {
            let s = self.inner.clone();
            if let Some(e) = blocking(py, move || s.next(ITER_SLICE))? {
                return Ok(Some(Event(e)));
            }
            if self.client.is_closed() {
                return Ok(None);
            }
            // Let Ctrl-C interrupt a long wait.
            py.check_signals()?;
        }
    }
}
