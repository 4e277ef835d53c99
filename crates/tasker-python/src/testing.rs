//! The test kit's language-neutral parts (docs/bindings.md §8–§9): factory workflows, the scenario file
//! reader, and the handler script the pytest scenario runner follows. The host side
//! (python/tasker_core/testing.py) runs real Python handlers over a `WorkerSession`.

use std::path::PathBuf;

use pyo3::prelude::*;
use tasker_shared_ffi::scenario::{self, Scenario};
use tasker_shared_ffi::testkit::{self, HandlerScript as FfiScript, PatternSpec};

use crate::blocking;
use crate::client::Client;
use crate::convert::{invalid, lift_json, lower_json, Event, Registration, Task, TemplateInfo};
use crate::errors::ResultExt;

#[allow(clippy::too_many_arguments)]
fn spec(
    py: Python<'_>,
    pattern: String,
    n: Option<usize>,
    depth: Option<u32>,
    fanout: Option<u32>,
    namespace: Option<String>,
    handler_key: Option<String>,
    retry: Option<&Bound<'_, PyAny>>,
) -> PyResult<PatternSpec> {
    let retry = match retry {
        Some(r) if !r.is_none() => Some(lift_json(r, "retry")?),
        _ => None,
    };
    let _ = py;
    Ok(PatternSpec {
        pattern,
        n,
        depth,
        fanout,
        namespace,
        handler_key,
        retry,
    })
}

/// The template document of a factory pattern (`linear`, `diamond`, `parallel`, `tree`, `mixed`), as a dict.
#[pyfunction]
#[pyo3(signature = (pattern, *, n = None, depth = None, fanout = None, namespace = None, handler_key = None, retry = None))]
#[allow(clippy::too_many_arguments)]
fn pattern_template(
    py: Python<'_>,
    pattern: String,
    n: Option<usize>,
    depth: Option<u32>,
    fanout: Option<u32>,
    namespace: Option<String>,
    handler_key: Option<String>,
    retry: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let s = spec(py, pattern, n, depth, fanout, namespace, handler_key, retry)?;
    lower_json(py, &s.template_document().py(py)?)
}

/// Registers the template of a factory pattern (idempotently).
#[pyfunction]
#[pyo3(signature = (client, pattern, *, n = None, depth = None, fanout = None, namespace = None, handler_key = None, retry = None))]
#[allow(clippy::too_many_arguments)]
fn register_pattern(
    py: Python<'_>,
    client: &Client,
    pattern: String,
    n: Option<usize>,
    depth: Option<u32>,
    fanout: Option<u32>,
    namespace: Option<String>,
    handler_key: Option<String>,
    retry: Option<&Bound<'_, PyAny>>,
) -> PyResult<Registration> {
    let s = spec(py, pattern, n, depth, fanout, namespace, handler_key, retry)?;
    let c = client.ffi();
    blocking(py, move || testkit::register_pattern(&c, &s)).map(Registration)
}

/// Registers a factory pattern and creates `count` tasks of it; returns `(template, tasks)`.
#[pyfunction]
#[pyo3(signature = (client, pattern, count = 1, *, context = None, n = None, depth = None, fanout = None, namespace = None, handler_key = None, retry = None))]
#[allow(clippy::too_many_arguments)]
fn create_pattern_tasks(
    py: Python<'_>,
    client: &Client,
    pattern: String,
    count: usize,
    context: Option<&Bound<'_, PyAny>>,
    n: Option<usize>,
    depth: Option<u32>,
    fanout: Option<u32>,
    namespace: Option<String>,
    handler_key: Option<String>,
    retry: Option<&Bound<'_, PyAny>>,
) -> PyResult<(TemplateInfo, Vec<Task>)> {
    let s = spec(py, pattern, n, depth, fanout, namespace, handler_key, retry)?;
    let context = crate::convert::lift_object(context, "context")?;
    let c = client.ffi();
    let made = blocking(py, move || testkit::create_pattern_tasks(&c, &s, count, context))?;
    Ok((TemplateInfo(made.template), made.tasks.into_iter().map(Task).collect()))
}

/// Reads a scenario file, checks it as the reference runner does, and returns it as a dict.
#[pyfunction]
fn load_scenario(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    Scenario::load(&path).py(py)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("reading {} failed: {e}", path.display())))?;
    let value: serde_json::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| invalid(py, "scenario", format!("expected YAML or JSON ({e})")))?;
    lower_json(py, &value)
}

/// The scenario files of a directory, sorted.
#[pyfunction]
fn scenario_files(py: Python<'_>, dir: PathBuf) -> PyResult<Vec<PathBuf>> {
    scenario::scenario_files(&dir).py(py)
}

/// An event as scenario files write it: `task.completed`, `step.claimed b#2`.
#[pyfunction]
fn event_line(event: &Event) -> String {
    scenario::event_line(&event.0)
}

/// Whether `expected` is a recursive subset of `actual` (the scenarios' matching rule).
#[pyfunction]
fn json_contains(actual: &Bound<'_, PyAny>, expected: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(scenario::json_contains(
        &lift_json(actual, "actual")?,
        &lift_json(expected, "expected")?,
    ))
}

/// The result of a scripted success with no result given: `{"ok": True, "step": step_name}`.
#[pyfunction]
fn default_result(py: Python<'_>, step_name: &str) -> PyResult<Py<PyAny>> {
    lower_json(py, &testkit::default_result(step_name))
}

/// A scenario's `handlers`: what each step's handler does on each attempt.
#[pyclass(module = "tasker_core", frozen)]
pub struct HandlerScript(FfiScript);

#[pymethods]
impl HandlerScript {
    #[new]
    fn new(py: Python<'_>, handlers: &Bound<'_, PyAny>) -> PyResult<Self> {
        let v = lift_json(handlers, "handlers")?;
        Ok(HandlerScript(FfiScript::from_value(&v).py(py)?))
    }

    /// The outcome of `attempt` (from 1): `{"succeed": result_or_None}`, `{"fail_retryable": {...}}`,
    /// `{"fail_permanent": {...}}` or `"overrun_lease"`.
    fn outcome_for(&self, py: Python<'_>, step_name: &str, handler_key: &str, attempt: i64) -> PyResult<Py<PyAny>> {
        let o = self.0.outcome_for(step_name, handler_key, attempt);
        let v = serde_json::to_value(&o).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        lower_json(py, &v)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pattern_template, m)?)?;
    m.add_function(wrap_pyfunction!(register_pattern, m)?)?;
    m.add_function(wrap_pyfunction!(create_pattern_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(load_scenario, m)?)?;
    m.add_function(wrap_pyfunction!(scenario_files, m)?)?;
    m.add_function(wrap_pyfunction!(event_line, m)?)?;
    m.add_function(wrap_pyfunction!(json_contains, m)?)?;
    m.add_function(wrap_pyfunction!(default_result, m)?)?;
    m.add_class::<HandlerScript>()?;
    Ok(())
}
