//! The one mapping from [`FfiError`] to Python exceptions: one class per [`ErrorKind`], all under
//! `tasker_core.TaskerError`, each instance carrying `.code`, `.details` and `.causes` (docs/bindings.md §5).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple, PyType};
use tasker_shared_ffi::{ErrorKind, FfiError};

use crate::convert::lower_json;

create_exception!(
    tasker_core,
    TaskerError,
    PyException,
    "Base class of every error Tasker Core raises."
);
create_exception!(
    tasker_core,
    ValidationError,
    TaskerError,
    "Input failed validation; details.errors lists each field path."
);
create_exception!(
    tasker_core,
    NotFoundError,
    TaskerError,
    "The task, step or template does not exist."
);
create_exception!(
    tasker_core,
    ConflictError,
    TaskerError,
    "The write conflicts with the stored state."
);
create_exception!(
    tasker_core,
    InvalidTransitionError,
    TaskerError,
    "The state machine refuses this event in this state."
);
create_exception!(
    tasker_core,
    StaleClaimError,
    TaskerError,
    "The claim was reclaimed, cancelled or already reported."
);
create_exception!(
    tasker_core,
    CycleDetectedError,
    TaskerError,
    "The template's dependencies form a cycle."
);
create_exception!(tasker_core, ClosedError, TaskerError, "The client was closed.");
create_exception!(tasker_core, DatabaseError, TaskerError, "The store failed.");
create_exception!(
    tasker_core,
    ConfigurationError,
    TaskerError,
    "The setup is wrong (bad URL, clock, use after fork, ...)."
);
create_exception!(tasker_core, HandlerError, TaskerError, "A handler misbehaved.");
create_exception!(
    tasker_core,
    InternalError,
    TaskerError,
    "A bug inside Tasker Core (a caught panic has details.panic)."
);

/// `tasker_core.TimeoutError` is also a builtin `TimeoutError`, so `except TimeoutError` catches it as Python
/// programmers expect. `create_exception!` takes a single base, so this one class is built with `type()`.
static TIMEOUT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The `tasker_core.TimeoutError` class.
pub fn timeout_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let ty = TIMEOUT_ERROR.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let builtins = py.import("builtins")?;
        let bases = PyTuple::new(
            py,
            [
                py.get_type::<TaskerError>().into_any(),
                builtins.getattr("TimeoutError")?,
            ],
        )?;
        let ns = pyo3::types::PyDict::new(py);
        ns.set_item("__module__", "tasker_core")?;
        ns.set_item("__doc__", "A wait ran out of time; also a builtin TimeoutError.")?;
        let made = builtins.getattr("type")?.call1(("TimeoutError", bases, ns))?;
        Ok(made.cast_into::<PyType>()?.unbind())
    })?;
    Ok(ty.bind(py))
}

/// The Python class of each kind.
pub fn class_of<'py>(py: Python<'py>, kind: ErrorKind) -> PyResult<Bound<'py, PyType>> {
    Ok(match kind {
        ErrorKind::Validation => py.get_type::<ValidationError>(),
        ErrorKind::NotFound => py.get_type::<NotFoundError>(),
        ErrorKind::Conflict => py.get_type::<ConflictError>(),
        ErrorKind::InvalidTransition => py.get_type::<InvalidTransitionError>(),
        ErrorKind::StaleClaim => py.get_type::<StaleClaimError>(),
        ErrorKind::CycleDetected => py.get_type::<CycleDetectedError>(),
        ErrorKind::Closed => py.get_type::<ClosedError>(),
        ErrorKind::Timeout => timeout_error_type(py)?.clone(),
        ErrorKind::Database => py.get_type::<DatabaseError>(),
        ErrorKind::Configuration => py.get_type::<ConfigurationError>(),
        ErrorKind::Handler => py.get_type::<HandlerError>(),
        ErrorKind::Internal => py.get_type::<InternalError>(),
    })
}

/// Builds the exception instance for `e` (not raised): the class of its kind, with `code`, `details`,
/// `causes`, and the causes chained as `__cause__` so tracebacks show them.
pub fn exception_of<'py>(py: Python<'py>, e: &FfiError) -> PyResult<Bound<'py, PyAny>> {
    let class = class_of(py, e.kind)?;
    let exc = class.call1((e.message.as_str(),))?;
    exc.setattr("code", e.code)?;
    exc.setattr("details", lower_json(py, &e.details)?)?;
    exc.setattr("causes", PyList::new(py, &e.causes)?)?;
    // Innermost cause last: link them outermost → innermost.
    let mut below: Option<Bound<'py, PyAny>> = None;
    for message in e.causes.iter().rev() {
        let c = py.get_type::<TaskerError>().call1((message.as_str(),))?;
        c.setattr("code", e.code)?;
        if let Some(b) = below.take() {
            c.setattr("__cause__", b)?;
        }
        below = Some(c);
    }
    if let Some(b) = below {
        exc.setattr("__cause__", b)?;
    }
    Ok(exc)
}

/// The one conversion of an engine error into a Python exception.
pub trait IntoPy {
    fn into_py(self, py: Python<'_>) -> PyErr;
}

impl IntoPy for FfiError {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match exception_of(py, &self) {
            Ok(exc) => PyErr::from_value(exc),
            // Building the exception itself failed (out of memory, interpreter shutting down): raise that.
            Err(e) => e,
        }
    }
}

/// Maps an [`FfiResult`](tasker_shared_ffi::FfiResult) into a `PyResult`.
pub trait ResultExt<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> ResultExt<T> for Result<T, FfiError> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| e.into_py(py))
    }
}

/// Registers every class on the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TaskerError", py.get_type::<TaskerError>())?;
    for kind in ErrorKind::ALL {
        let class = class_of(py, kind)?;
        m.add(class.name()?, class)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raised(kind: ErrorKind) -> (String, String, bool) {
        Python::initialize();
        Python::attach(|py| {
            let e = FfiError::new(kind, "it went wrong").with_detail("k", 1);
            let err = e.clone().into_py(py);
            let v = err.value(py);
            let name = v.get_type().name().unwrap().to_string();
            let code: String = v.getattr("code").unwrap().extract().unwrap();
            assert_eq!(code, e.code);
            let k: i64 = v.getattr("details").unwrap().get_item("k").unwrap().extract().unwrap();
            assert_eq!(k, 1);
            let base = err.is_instance_of::<TaskerError>(py);
            (name, code, base)
        })
    }

    macro_rules! row {
        ($test:ident, $kind:ident, $class:literal, $code:literal) => {
            #[test]
            fn $test() {
                assert_eq!(
                    raised(ErrorKind::$kind),
                    ($class.to_string(), $code.to_string(), true)
                );
            }
        };
    }

    row!(
        validation_is_validation_error,
        Validation,
        "ValidationError",
        "validation"
    );
    row!(not_found_is_not_found_error, NotFound, "NotFoundError", "not_found");
    row!(conflict_is_conflict_error, Conflict, "ConflictError", "conflict");
    row!(
        invalid_transition_is_invalid_transition_error,
        InvalidTransition,
        "InvalidTransitionError",
        "invalid_transition"
    );
    row!(
        stale_claim_is_stale_claim_error,
        StaleClaim,
        "StaleClaimError",
        "stale_claim"
    );
    row!(
        cycle_detected_is_cycle_detected_error,
        CycleDetected,
        "CycleDetectedError",
        "cycle_detected"
    );
    row!(closed_is_closed_error, Closed, "ClosedError", "closed");
    row!(timeout_is_timeout_error, Timeout, "TimeoutError", "timeout");
    row!(database_is_database_error, Database, "DatabaseError", "database");
    row!(
        configuration_is_configuration_error,
        Configuration,
        "ConfigurationError",
        "configuration"
    );
    row!(handler_is_handler_error, Handler, "HandlerError", "handler");
    row!(internal_is_internal_error, Internal, "InternalError", "internal");

    #[test]
    fn timeout_error_is_also_the_builtin() {
        Python::initialize();
        Python::attach(|py| {
            let err = FfiError::timeout("slow").into_py(py);
            assert!(err.is_instance_of::<pyo3::exceptions::PyTimeoutError>(py));
        });
    }

    #[test]
    fn causes_chain_outermost_first() {
        Python::initialize();
        Python::attach(|py| {
            let e = FfiError::new(ErrorKind::Database, "inner")
                .context("middle")
                .context("outer");
            let err = e.into_py(py);
            let v = err.value(py);
            let cause = v.getattr("__cause__").unwrap();
            assert_eq!(cause.str().unwrap().to_string(), "middle");
            let deeper = cause.getattr("__cause__").unwrap();
            assert_eq!(deeper.str().unwrap().to_string(), "inner");
            let causes: Vec<String> = v.getattr("causes").unwrap().extract().unwrap();
            assert_eq!(causes, vec!["middle", "inner"]);
            let details = v.getattr("details").unwrap();
            assert!(lower_json(py, &json!({})).unwrap().bind(py).eq(details).unwrap());
        });
    }
}
