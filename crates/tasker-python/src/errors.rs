//! The one mapping from [`FfiError`] to Python exceptions: one class per [`ErrorKind`], named by
//! [`ErrorClass::class_name`], all under `tasker_core.TaskerError`, each instance carrying `.code`, `.details`
//! and `.causes` (docs/bindings.md §5).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use tasker_shared_ffi::{ErrorClass, ErrorKind, FfiError, FfiResult};

use crate::convert::{host, lower_json};

create_exception!(
    tasker_core,
    TaskerError,
    PyException,
    "Base class of every error Tasker Core raises."
);

/// The class of each kind, in [`ErrorKind::ALL`] order, made by host.py's `error_class` (which also makes
/// `tasker_core.TimeoutError` a builtin `TimeoutError`, so `except TimeoutError` catches it).
static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

/// The Python class of each kind.
pub fn class_of(py: Python<'_>, kind: ErrorKind) -> PyResult<&Bound<'_, PyType>> {
    let classes = CLASSES.get_or_try_init(py, || {
        let base = py.get_type::<TaskerError>();
        let make = |k: ErrorKind| host(py)?.call_method1("error_class", (k.class_name(), &base, k.code()));
        ErrorKind::ALL
            .into_iter()
            .map(|k| Ok(make(k)?.cast_into::<PyType>()?.unbind()))
            .collect::<PyResult<_>>()
    })?;
    Ok(classes[ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)].bind(py))
}

/// Adds `TaskerError` and the class of every kind to the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TaskerError", py.get_type::<TaskerError>())?;
    for kind in ErrorKind::ALL {
        m.add(kind.class_name(), class_of(py, kind)?)?;
    }
    Ok(())
}

/// The one extension trait: an error of the shared layer becomes the Python exception to raise, and a
/// result of the shared layer a `PyResult`.
pub trait IntoHost {
    type Host;
    fn into_host(self) -> Self::Host;
}

impl IntoHost for FfiError {
    type Host = PyErr;

    fn into_host(self) -> PyErr {
        Python::attach(|py| match build(py, &self) {
            Ok(exc) => PyErr::from_value(exc),
            // Building the exception itself failed (out of memory, interpreter shutting down): raise that.
            Err(e) => e,
        })
    }
}

impl<T> IntoHost for FfiResult<T> {
    type Host = PyResult<T>;

    fn into_host(self) -> PyResult<T> {
        self.map_err(IntoHost::into_host)
    }
}

/// The exception instance for `e` (not raised): the class of its kind with `code`, `details` and `causes`,
/// the causes chained as `__cause__`.
fn build<'py>(py: Python<'py>, e: &FfiError) -> PyResult<Bound<'py, PyAny>> {
    let (class, base) = (class_of(py, e.kind)?, py.get_type::<TaskerError>());
    let details = lower_json(py, &e.details)?;
    host(py)?.call_method1(
        "exception",
        (class, base, e.message.as_str(), e.code, details, e.causes.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The class name, code and `details` of the exception `kind` raises, and whether it is a `TaskerError`.
    fn raised(kind: ErrorKind) -> (String, String, i64, bool) {
        Python::initialize();
        Python::attach(|py| {
            let err = FfiError::new(kind, "it went wrong").with_detail("k", 1).into_host();
            let v = err.value(py);
            let name = v.get_type().name().unwrap().to_string();
            let code: String = v.getattr("code").unwrap().extract().unwrap();
            let k: i64 = v.getattr("details").unwrap().get_item("k").unwrap().extract().unwrap();
            (name, code, k, err.is_instance_of::<TaskerError>(py))
        })
    }

    /// One row per kind: the class each code raises, under `TaskerError` (docs/bindings.md §5).
    #[test]
    fn every_kind_raises_its_class() {
        let rows = [
            (ErrorKind::Validation, "ValidationError", "validation"),
            (ErrorKind::NotFound, "NotFoundError", "not_found"),
            (ErrorKind::Conflict, "ConflictError", "conflict"),
            (
                ErrorKind::InvalidTransition,
                "InvalidTransitionError",
                "invalid_transition",
            ),
            (ErrorKind::StaleClaim, "StaleClaimError", "stale_claim"),
            (ErrorKind::CycleDetected, "CycleDetectedError", "cycle_detected"),
            (ErrorKind::Closed, "ClosedError", "closed"),
            (ErrorKind::Timeout, "TimeoutError", "timeout"),
            (ErrorKind::Database, "DatabaseError", "database"),
            (ErrorKind::Configuration, "ConfigurationError", "configuration"),
            (ErrorKind::Handler, "HandlerError", "handler"),
            (ErrorKind::Internal, "InternalError", "internal"),
        ];
        assert_eq!(rows.len(), ErrorKind::ALL.len());
        for (kind, class, code) in rows {
            assert_eq!(raised(kind), (class.to_string(), code.to_string(), 1, true), "{code}");
        }
    }
}
