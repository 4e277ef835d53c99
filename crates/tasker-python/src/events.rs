//! `tasker_core._native.Subscription`: a bounded event subscription (made by `Client.subscribe`);
//! python/tasker_core/events.py adds iteration.

use pyo3::prelude::*;
use tasker_shared_ffi as ffi;

use crate::blocking::blocking;
use crate::convert::{lift_seconds, lower};
use crate::errors::IntoHost;

#[pyclass(module = "tasker_core._native", frozen)]
pub struct Subscription {
    inner: ffi::Subscription,
}

impl Subscription {
    pub(crate) fn new(inner: ffi::Subscription) -> Self {
        Subscription { inner }
    }
}

#[pymethods]
impl Subscription {
    /// The next event, waiting at most `timeout` seconds (GIL released); None when none came.
    fn next(&self, py: Python<'_>, timeout: f64) -> PyResult<Py<PyAny>> {
        let (timeout, s) = (lift_seconds(timeout, "timeout")?, self.inner.clone());
        lower(py, &blocking(py, move || s.next(timeout))?)
    }

    fn try_next(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        lower(py, &self.inner.try_next().into_host()?)
    }

    fn drain(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        lower(py, &self.inner.drain().into_host()?)
    }

    fn dropped(&self) -> u64 {
        self.inner.dropped()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Subscription>()
}
