//! Every conversion between Python and Rust values: `lift_*` (Python → Rust) and `lower_*` (Rust → Python),
//! following the type table of docs/bindings.md §3. A conversion error is a `ValidationError` naming the field
//! path, for example `context.items[3].sku: expected a JSON value, found datetime`.
//!
//! Objects are lowered by walking tasker-shared-ffi's object table (`tasker_shared_ffi::objects`): this file
//! says only how Python builds each kind, and makes one class per table object (`tasker_core.Task`, …) under
//! the `Object` base of host.py.

use std::ffi::CString;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use pyo3::IntoPyObjectExt;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use tasker_shared_ffi::objects::{self, Items, Lower, Lowering, Nesting, ObjectType, OBJECTS};
use tasker_shared_ffi::{dto, FailureInput, FfiError, FfiResult, OutcomeInput, Timestamp};

use crate::errors::IntoHost;

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown type".into())
}

/// A validation error at `path`.
pub fn invalid(path: &str, message: impl Into<String>) -> PyErr {
    invalid_at(path, message).into_host()
}

fn invalid_at(path: &str, message: impl Into<String>) -> FfiError {
    FfiError::validation(path, message)
}

/// Lifts a Python value that JSON can hold: dict (str keys), list or tuple, str, int, float (finite), bool,
/// None. Anything else is a `ValidationError` at `path`.
pub fn lift_json(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    lift_value(obj, path).into_host()
}

/// [`lift_json`] with the shared layer's error, whose details name the field path (a handler's result that
/// cannot become JSON is reported with it). A cycle, or nesting deeper than `MAX_JSON_DEPTH`, is such an error
/// too (the shared layer's `Nesting`), never a stack overflow.
pub fn lift_value(obj: &Bound<'_, PyAny>, path: &str) -> FfiResult<Value> {
    lift_nested(obj, path, &mut Nesting::default())
}

fn lift_nested<'py>(obj: &Bound<'py, PyAny>, path: &str, nest: &mut Nesting<Bound<'py, PyAny>>) -> FfiResult<Value> {
    let same = |a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>| a.is(b);
    let py_err = |e: PyErr| invalid_at(path, e.to_string());
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
        return Err(invalid_at(path, "expected an integer that fits in 64 bits"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| invalid_at(path, format!("expected a JSON value, found float {v}")));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow().map_err(py_err)?.into_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        nest.enter(obj.clone(), path, same)?;
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(invalid_at(path, format!("expected str keys, found {}", type_name(&k))));
            };
            let key = key.to_cow().map_err(py_err)?.into_owned();
            map.insert(key.clone(), lift_nested(&v, &objects::field_path(path, &key), nest)?);
        }
        nest.leave();
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        nest.enter(obj.clone(), path, same)?;
        let mut out = Vec::new();
        for (i, item) in obj.try_iter().map_err(py_err)?.enumerate() {
            out.push(lift_nested(&item.map_err(py_err)?, &format!("{path}[{i}]"), nest)?);
        }
        nest.leave();
        return Ok(Value::Array(out));
    }
    Err(invalid_at(
        path,
        format!("expected a JSON value, found {}", type_name(obj)),
    ))
}

/// A dict of options (or None), as the Python surface passes them.
pub type Options<'a, 'py> = Option<&'a Bound<'py, PyDict>>;

/// An options dict (or None) → an input struct of the shared layer; an error names `what.field`.
pub fn lift_options<T: DeserializeOwned>(options: Options<'_, '_>, what: &str) -> PyResult<T> {
    let lift = |d: &Bound<'_, PyDict>| lift_nested(d.as_any(), what, &mut Nesting::for_options());
    let json = options.map(lift).transpose().into_host()?;
    objects::options(json.unwrap_or(Value::Null), what).into_host()
}

/// Lifts a timezone-aware `datetime`; a naive one is refused, since its zone would be a guess.
pub fn lift_time(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Timestamp> {
    match obj.extract::<DateTime<FixedOffset>>() {
        Ok(t) => Ok(t.with_timezone(&Utc)),
        Err(_) => Err(invalid(
            path,
            format!("expected a timezone-aware datetime, found {}", type_name(obj)),
        )),
    }
}

/// Lifts a duration given in seconds (int or float, not negative).
pub fn lift_seconds(seconds: f64, path: &str) -> PyResult<Duration> {
    objects::seconds(seconds, path).into_host()
}

/// Lifts a claim token: a `ClaimToken`, or a `StepContext` (its token).
pub fn lift_token(obj: &Bound<'_, PyAny>) -> PyResult<dto::ClaimToken> {
    let py = obj.py();
    let token = if obj.is_instance(class(py, "StepContext")?)? {
        obj.getattr("token")?
    } else {
        obj.clone()
    };
    if !token.is_instance(class(py, "ClaimToken")?)? {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "token: expected a ClaimToken or StepContext, found {}",
            type_name(obj)
        )));
    }
    Ok(dto::ClaimToken::new(
        token.getattr("step_id")?.extract::<String>()?,
        token.getattr("attempt")?.extract()?,
    ))
}

/// Lifts a failure as Python reports it (`kind`, `message`, `error_class`, `backtrace`, `retry_after` in
/// seconds, `code`).
pub fn lift_failure(failure: Option<&Bound<'_, PyAny>>, path: &str) -> PyResult<FailureInput> {
    let mut json = failure.map(|f| lift_json(f, path)).transpose()?.unwrap_or(Value::Null);
    if let Some(after) = json.as_object_mut().and_then(|m| m.remove("retry_after")) {
        let at = format!("{path}.retry_after");
        if let Some(s) = after.as_f64() {
            json["retry_after_ms"] = Value::from(lift_seconds(s, &at)?.as_millis() as u64);
        } else if !after.is_null() {
            return Err(invalid(&at, "expected a number of seconds"));
        }
    }
    objects::options(json, path).into_host()
}

/// Lifts one outcome of `finish_many`: `(token, "success", result)` or `(token, "failure", {kind, message,
/// error_class, backtrace, retry_after, code})`.
pub fn lift_outcome(item: &Bound<'_, PyAny>, i: usize) -> PyResult<(dto::ClaimToken, OutcomeInput)> {
    let (token, tag, payload): (Bound<'_, PyAny>, String, Bound<'_, PyAny>) = item.extract().map_err(|_| {
        let message = format!("outcomes[{i}]: expected a (token, \"success\" | \"failure\", value) tuple");
        pyo3::exceptions::PyTypeError::new_err(message)
    })?;
    let outcome = match tag.as_str() {
        "success" => OutcomeInput::Success(lift_json(&payload, &format!("outcomes[{i}].result"))?),
        "failure" => OutcomeInput::Failure(lift_failure(Some(&payload), &format!("outcomes[{i}].failure"))?),
        other => {
            let message = format!("expected \"success\" or \"failure\", found {other:?}");
            return Err(invalid(&format!("outcomes[{i}]"), message));
        }
    };
    Ok((lift_token(&token)?, outcome))
}

/// Lowers JSON to dict / list / str / int / float / bool / None.
pub fn lower_json(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    objects::lower_json(&Host(py), v)
}

/// A timestamp → a `datetime` in `timezone.utc` (pyo3's chrono conversion).
pub fn lower_time(py: Python<'_>, t: Timestamp) -> PyResult<Py<PyAny>> {
    t.into_py_any(py)
}

/// A result of the shared layer (an object of the table such as `Task`, a list or option of them, a
/// timestamp) → an instance of its Python class, a list, None or a `datetime`.
pub fn lower<T: Lower>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    value.lower(&Host(py))
}

/// How Python builds each kind of the object table.
struct Host<'py>(Python<'py>);

impl Lowering for Host<'_> {
    type Value = Py<PyAny>;
    type Error = PyErr;

    fn error(&self, e: FfiError) -> PyErr {
        e.into_host()
    }

    fn scalar(&self, v: &Value) -> PyResult<Py<PyAny>> {
        let py = self.0;
        match v {
            Value::Bool(b) => b.into_py_any(py),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i.into_py_any(py),
                (None, Some(u)) => u.into_py_any(py),
                _ => n.as_f64().unwrap_or(f64::NAN).into_py_any(py),
            },
            Value::String(s) => s.into_py_any(py),
            _ => Ok(py.None()),
        }
    }

    fn timestamp(&self, t: Timestamp) -> PyResult<Py<PyAny>> {
        lower_time(self.0, t)
    }

    fn list(&self, items: Items<'_, Py<PyAny>, PyErr>) -> PyResult<Py<PyAny>> {
        Ok(PyList::new(self.0, items.collect::<PyResult<Vec<_>>>()?)?
            .into_any()
            .unbind())
    }

    fn map(&self, entries: Items<'_, (&str, Py<PyAny>), PyErr>) -> PyResult<Py<PyAny>> {
        let dict = PyDict::new(self.0);
        for entry in entries {
            let (k, v) = entry?;
            dict.set_item(k, v)?;
        }
        Ok(dict.into_any().unbind())
    }

    fn object(&self, index: usize, fields: Items<'_, Py<PyAny>, PyErr>) -> PyResult<Py<PyAny>> {
        // Built without the Python-level `__init__` (keyword parsing and checks cost more than the values):
        // a bare instance, then each slot set through its member descriptor's `__set__`, in the table's order.
        let py = self.0;
        let class = &classes(py)?[index];
        let class_obj = class.class.bind(py);
        let obj = class_obj.call_method1(intern!(py, "__new__"), (class_obj,))?;
        for (slot, v) in class.slots.iter().zip(fields) {
            slot.bind(py).call1((&obj, v?))?;
        }
        Ok(obj.unbind())
    }
}

/// host.py, compiled into the native module once: the `Object` base and the class and error factories.
pub(crate) fn host(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static HOST: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = HOST.get_or_try_init(py, || {
        let source = CString::new(include_str!("host.py"))?;
        Ok::<_, PyErr>(PyModule::from_code(py, &source, c"tasker_core/host.py", c"tasker_core._host")?.unbind())
    })?;
    Ok(module.bind(py))
}

/// The class of one table object, made by host.py's `object_class`, and the `__set__` of each of its slots'
/// member descriptors, in table order.
struct Class {
    class: Py<PyType>,
    slots: Vec<Py<PyAny>>,
}

static CLASSES: PyOnceLock<Vec<Class>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Vec<Class>> {
    CLASSES.get_or_try_init(py, || {
        let make = |o: &ObjectType| {
            let fields = PyTuple::new(py, o.fields.iter().map(|f| f.name))?;
            let class = host(py)?
                .call_method1("object_class", (o.name, fields, o.doc))?
                .cast_into::<PyType>()?;
            let slots = o
                .fields
                .iter()
                .map(|f| Ok(class.getattr(f.name)?.getattr("__set__")?.unbind()));
            let slots = slots.collect::<PyResult<Vec<_>>>()?;
            Ok(Class {
                class: class.unbind(),
                slots,
            })
        };
        OBJECTS.iter().map(make).collect()
    })
}

/// The class of the table object `name`.
pub fn class<'py>(py: Python<'py>, name: &str) -> PyResult<&'py Bound<'py, PyType>> {
    let index = objects::index_of(name).ok_or_else(|| FfiError::internal(format!("no object {name}")).into_host())?;
    Ok(classes(py)?[index].class.bind(py))
}

/// Adds `Object` and the class of every table object to the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Object", host(m.py())?.getattr("Object")?)?;
    for (o, class) in OBJECTS.iter().zip(classes(m.py())?) {
        m.add(o.name, class.class.bind(m.py()))?;
    }
    Ok(())
}
