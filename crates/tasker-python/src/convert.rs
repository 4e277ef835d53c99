//! Every conversion between Python and Rust values: `lift_*` (Python → Rust) and `lower_*` (Rust → Python),
//! following the type table of docs/bindings.md §3. A conversion error is a `ValidationError` naming the field
//! path, for example `context.items[3].sku: expected a JSON value, found datetime`.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;
use serde_json::{Map, Number, Value};
use tasker_shared_ffi::{dto, FfiError, Timestamp};

use crate::errors::IntoPy;

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown type".into())
}

/// A validation error at `path`.
pub fn invalid(py: Python<'_>, path: &str, message: impl Into<String>) -> PyErr {
    FfiError::validation(path, message).into_py(py)
}

/// Lifts a Python value that JSON can hold: dict (str keys), list or tuple, str, int, float (finite), bool,
/// None. Anything else is a `ValidationError` at `path`.
pub fn lift_json(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int subclass.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(invalid(py, path, "expected an integer that fits in 64 bits"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| invalid(py, path, format!("expected a JSON value, found float {v}")));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(invalid(py, path, format!("expected str keys, found {}", type_name(&k))));
            };
            let key = key.to_cow()?.into_owned();
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            map.insert(key, lift_json(&v, &child)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            out.push(lift_json(&item?, &format!("{path}[{i}]"))?);
        }
        return Ok(Value::Array(out));
    }
    Err(invalid(
        py,
        path,
        format!("expected a JSON value, found {}", type_name(obj)),
    ))
}

/// Lifts an optional JSON object (`context`, `tags`): None stays None; anything but a dict is refused.
pub fn lift_object(obj: Option<&Bound<'_, PyAny>>, path: &str) -> PyResult<Option<Value>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) if !o.is_instance_of::<PyDict>() => Err(invalid(
            o.py(),
            path,
            format!("expected a dict, found {}", type_name(o)),
        )),
        Some(o) => lift_json(o, path).map(Some),
    }
}

/// Lifts a timezone-aware `datetime`; a naive one is refused, since its zone would be a guess.
pub fn lift_timestamp(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Timestamp> {
    match obj.extract::<DateTime<FixedOffset>>() {
        Ok(t) => Ok(t.with_timezone(&Utc)),
        Err(_) => Err(invalid(
            obj.py(),
            path,
            format!("expected a timezone-aware datetime, found {}", type_name(obj)),
        )),
    }
}

/// Lifts a duration given in seconds (int or float, not negative) to milliseconds.
pub fn lift_seconds_ms(py: Python<'_>, seconds: f64, path: &str) -> PyResult<u64> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(invalid(
            py,
            path,
            format!("expected a number of seconds >= 0, found {seconds}"),
        ));
    }
    Ok((seconds * 1000.0).round() as u64)
}

/// Lowers JSON to dict / list / str / int / float / bool / None.
pub fn lower_json(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    match v {
        Value::Null => Ok(py.None()),
        Value::Bool(b) => b.into_py_any(py),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_py_any(py)
            } else if let Some(u) = n.as_u64() {
                u.into_py_any(py)
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_py_any(py)
            }
        }
        Value::String(s) => s.into_py_any(py),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(lower_json(py, item)?)?;
            }
            Ok(list.into_any().unbind())
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, lower_json(py, item)?)?;
            }
            Ok(dict.into_any().unbind())
        }
    }
}

/// Lowers a Rust value to its Python form (docs/bindings.md §3).
pub trait Lower {
    fn lower(&self, py: Python<'_>) -> PyResult<Py<PyAny>>;
}

macro_rules! lower_scalar {
    ($($t:ty),*) => {$(
        impl Lower for $t {
            fn lower(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                self.clone().into_py_any(py)
            }
        }
    )*};
}
lower_scalar!(String, bool, i32, i64, u32, u64, usize, f64);

impl Lower for Timestamp {
    /// A `datetime` in `timezone.utc` (pyo3's chrono conversion).
    fn lower(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.into_py_any(py)
    }
}

impl Lower for Value {
    fn lower(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        lower_json(py, self)
    }
}

impl<T: Lower> Lower for Option<T> {
    fn lower(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self {
            None => Ok(py.None()),
            Some(v) => v.lower(py),
        }
    }
}

impl<T: Lower> Lower for Vec<T> {
    fn lower(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let list = PyList::empty(py);
        for item in self {
            list.append(item.lower(py)?)?;
        }
        Ok(list.into_any().unbind())
    }
}

impl<T: Lower> Lower for BTreeMap<String, T> {
    fn lower(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let dict = PyDict::new(py);
        for (k, v) in self {
            dict.set_item(k, v.lower(py)?)?;
        }
        Ok(dict.into_any().unbind())
    }
}

/// Declares the Python class of a DTO: a frozen wrapper with one typed read-only property per field, a
/// `to_dict()` of the same values, and a `repr`. The field list is the DTO's, in its declaration order.
macro_rules! py_object {
    ($(#[$m:meta])* $name:ident($rust:ty) { $($field:ident),* $(,)? }) => {
        $(#[$m])*
        #[pyclass(module = "tasker_core", frozen)]
        #[derive(Clone)]
        pub struct $name(pub $rust);

        #[pymethods]
        impl $name {
            $(
                #[getter]
                // Getter names are the DTO's field names (`from_state` is a field, not a conversion).
                #[allow(clippy::wrong_self_convention)]
                fn $field(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                    $crate::convert::Lower::lower(&self.0.$field, py)
                }
            )*

            /// Every field as a plain dict (nested objects stay objects).
            fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                let d = pyo3::types::PyDict::new(py);
                $( d.set_item(stringify!($field), $crate::convert::Lower::lower(&self.0.$field, py)?)?; )*
                Ok(d.into_any().unbind())
            }

            fn __repr__(&self) -> String {
                format!("tasker_core.{}({})", stringify!($name), serde_json::to_string(&self.0).unwrap_or_default())
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
                other.cast::<$name>().is_ok_and(|o| o.get().0 == self.0)
            }
        }

        impl $crate::convert::Lower for $rust {
            fn lower(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                pyo3::IntoPyObjectExt::into_py_any($name(self.clone()), py)
            }
        }
    };
}
pub(crate) use py_object;

py_object!(
    /// A workflow run.
    Task(dto::Task) {
        id, template_id, namespace, name, version, state, context, tags, idempotency_key, initiator,
        source_system, reason, steps_total, steps_succeeded, steps_failed, created_at, updated_at, started_at,
        finished_at,
    }
);
py_object!(
    /// One step of a task.
    Step(dto::Step) {
        id, task_id, name, handler_key, position, state, attempts, max_attempts, retry, timeout_seconds, config,
        next_attempt_at, lease_expires_at, worker_id, result, error, created_at, updated_at, started_at,
        finished_at,
    }
);
py_object!(
    /// The last failure of a step.
    StepError(dto::StepError) { error_class, message, backtrace, code, retryable }
);
py_object!(
    /// How a step is retried.
    RetryPolicy(dto::RetryPolicy) { max_attempts, retryable, backoff, base_ms, max_ms, jitter }
);
py_object!(
    /// What a handler gets for one claimed step.
    StepContext(dto::StepContext) {
        task_id, step_id, step_name, handler_key, attempt, max_attempts, context, config, dependency_results,
        deadline, lease_expires_at, namespace, task_name, token,
    }
);
py_object!(
    /// Proof of one claim; hand it back with the outcome.
    ClaimToken(dto::ClaimToken) { step_id, attempt }
);
py_object!(
    /// A registered template version.
    TemplateInfo(dto::TemplateInfo) {
        id, namespace, name, version, description, content_hash, input_schema, steps, created_at,
    }
);
py_object!(
    /// One step of a template.
    TemplateStep(dto::TemplateStep) { name, handler_key, description, depends_on, config, retry, timeout_seconds }
);
py_object!(
    /// What `register_template` did.
    Registration(dto::Registration) { template, created }
);
py_object!(
    /// The audit trail of a task.
    Transitions(dto::Transitions) { task, steps }
);
py_object!(
    /// One row of a task's audit trail.
    TaskTransition(dto::TaskTransition) { id, task_id, from_state, to_state, event, metadata, sort_key, created_at }
);
py_object!(
    /// One row of a step's audit trail.
    StepTransition(dto::StepTransition) {
        id, step_id, task_id, from_state, to_state, event, attempt, worker_id, metadata, sort_key, created_at,
    }
);
py_object!(
    /// Why each step of a task is or is not ready.
    Explain(dto::Explain) { task_id, task_state, steps }
);
py_object!(
    /// The readiness of one step.
    StepReadiness(dto::StepReadiness) {
        step_id, name, handler_key, state, ready, attempts, max_attempts, blocked_by, blocked_by_failure, retry_at,
        attempts_exhausted, task_runnable, lease_expires_at, reasons,
    }
);
py_object!(
    /// Step counts by state and what to do next.
    ExecutionContext(dto::ExecutionContext) {
        task_id, task_state, total_steps, pending_steps, ready_steps, in_progress_steps, waiting_for_retry_steps,
        completed_steps, failed_steps, cancelled_steps, resolved_manually_steps, blocked_steps, execution_status,
        recommended_action, completion_ratio,
    }
);
py_object!(
    /// The depth of a step in its task's DAG.
    DependencyLevel(dto::DependencyLevel) { step_id, name, level }
);
py_object!(
    /// Something that happened to a task or step.
    Event(dto::Event) {
        name, task_id, step_id, step_name, attempt, from_state, to_state, worker_id, metadata, timestamp,
    }
);
py_object!(
    /// What a reaping pass recovered.
    ReapReport(dto::ReapReport) { retried, failed }
);
py_object!(
    /// The state of a client's connection.
    ClientHealth(dto::ClientHealth) {
        store_kind, url, pool_size, idle_connections, age_ms, opened_at, pid, refreshes, clock,
    }
);
py_object!(
    /// What a worker session did so far.
    SessionStats(tasker_shared_ffi::SessionStats) { claimed, completed, failed, rejected, lost, outstanding }
);

/// Lifts a claim token: a `ClaimToken`, or a `StepContext` (its token).
pub fn lift_token(obj: &Bound<'_, PyAny>) -> PyResult<dto::ClaimToken> {
    if let Ok(t) = obj.cast::<ClaimToken>() {
        return Ok(t.get().0.clone());
    }
    if let Ok(c) = obj.cast::<StepContext>() {
        return Ok(c.get().0.token.clone());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "token: expected a ClaimToken or StepContext, found {}",
        type_name(obj)
    )))
}

/// Registers the object classes on the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Task>()?;
    m.add_class::<Step>()?;
    m.add_class::<StepError>()?;
    m.add_class::<RetryPolicy>()?;
    m.add_class::<StepContext>()?;
    m.add_class::<ClaimToken>()?;
    m.add_class::<TemplateInfo>()?;
    m.add_class::<TemplateStep>()?;
    m.add_class::<Registration>()?;
    m.add_class::<Transitions>()?;
    m.add_class::<TaskTransition>()?;
    m.add_class::<StepTransition>()?;
    m.add_class::<Explain>()?;
    m.add_class::<StepReadiness>()?;
    m.add_class::<ExecutionContext>()?;
    m.add_class::<DependencyLevel>()?;
    m.add_class::<Event>()?;
    m.add_class::<ReapReport>()?;
    m.add_class::<ClientHealth>()?;
    m.add_class::<SessionStats>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lift(code: &str) -> Result<Value, (String, String)> {
        Python::initialize();
        Python::attach(|py| {
            let code = std::ffi::CString::new(code).unwrap();
            let obj = py.eval(&code, None, None).unwrap();
            lift_json(&obj, "context").map_err(|e| {
                let v = e.value(py);
                let errors = v.getattr("details").unwrap().get_item("errors").unwrap();
                let first = errors.get_item(0).unwrap();
                (
                    first.get_item("path").unwrap().extract().unwrap(),
                    first.get_item("message").unwrap().extract().unwrap(),
                )
            })
        })
    }

    #[test]
    fn json_round_trips() {
        let v = lift("{'a': [1, 2.5, True, None, 'x', (3,)], 'b': {'c': 2**63}}").unwrap();
        assert_eq!(
            v,
            json!({"a": [1, 2.5, true, null, "x", [3]], "b": {"c": 9223372036854775808u64}})
        );
        Python::attach(|py| {
            let back = lower_json(py, &v).unwrap();
            assert_eq!(lift_json(back.bind(py), "x").unwrap(), v);
        });
    }

    #[test]
    fn conversion_errors_name_the_field_path() {
        let (path, message) = lift("{'items': [1, 2, 3, {'sku': object()}]}").unwrap_err();
        assert_eq!(path, "context.items[3].sku");
        assert_eq!(message, "expected a JSON value, found object");
        let (path, message) = lift("{'x': float('nan')}").unwrap_err();
        assert_eq!((path.as_str(), message.contains("NaN")), ("context.x", true));
        let (_, message) = lift("{1: 2}").unwrap_err();
        assert_eq!(message, "expected str keys, found int");
    }
}
