//! The test kit's language-neutral parts (docs/bindings.md §8–§9): factory workflows, scripted handlers, and
//! the scenario files the pytest runner replays, for `tasker_core.testing` (python/tasker_core/testing.py).

use std::path::PathBuf;

use pyo3::prelude::*;
use serde_json::{json, Value};
use tasker_shared_ffi::scenario::{self, Scenario};
use tasker_shared_ffi::testkit::{self, HandlerScript, PatternSpec, RunOptions, ScriptedOutcome};
use tasker_shared_ffi::FfiError;

use crate::client::Client;
use crate::convert::{invalid, lift_json, lift_options, lower_json, Options};
use crate::errors::IntoHost;

/// The template document of a factory pattern, as a dict.
#[pyfunction]
fn pattern_template(py: Python<'_>, spec: Options<'_, '_>) -> PyResult<Py<PyAny>> {
    let spec: PatternSpec = lift_options(spec, "spec")?;
    lower_json(py, &spec.template_document().into_host()?)
}

#[pyfunction]
fn register_pattern(py: Python<'_>, client: &Client, spec: Options<'_, '_>) -> PyResult<Py<PyAny>> {
    let spec: PatternSpec = lift_options(spec, "spec")?;
    client.call(py, move |c| testkit::register_pattern(&c, &spec))
}

#[pyfunction]
fn create_pattern_tasks(
    py: Python<'_>,
    client: &Client,
    spec: Options<'_, '_>,
    count: usize,
    context: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let spec: PatternSpec = lift_options(spec, "spec")?;
    let context = context
        .map(|c| lift_json(c, "context"))
        .transpose()?
        .filter(|c| !c.is_null());
    client.call(py, move |c| testkit::create_pattern_tasks(&c, &spec, count, context))
}

/// Runs *scripted* (Rust) handlers until idle: for factory tasks whose handlers do nothing in Python.
#[pyfunction]
fn run_scripted(
    py: Python<'_>,
    client: &Client,
    script: &Bound<'_, PyAny>,
    options: Options<'_, '_>,
) -> PyResult<Py<PyAny>> {
    let script = HandlerScript::from_value(&lift_json(script, "script")?).into_host()?;
    let options: RunOptions = lift_options(options, "options")?;
    client.call(py, move |c| testkit::run_until_idle(&c, &script, &options))
}

/// The outcome a handler script gives one attempt: `{"succeed": result}` (the default result filled in),
/// `{"fail_retryable": {...}}`, `{"fail_permanent": {...}}` or `"overrun_lease"`.
#[pyfunction]
fn script_outcome(
    py: Python<'_>,
    script: &Bound<'_, PyAny>,
    step_name: &str,
    key: &str,
    attempt: i64,
) -> PyResult<Py<PyAny>> {
    let script = HandlerScript::from_value(&lift_json(script, "script")?).into_host()?;
    let outcome = match script.outcome_for(step_name, key, attempt) {
        ScriptedOutcome::Succeed(None) => json!({ "succeed": testkit::default_result(step_name) }),
        other => serde_json::to_value(other)
            .map_err(|e| FfiError::internal(e.to_string()))
            .into_host()?,
    };
    lower_json(py, &outcome)
}

#[pyfunction]
fn scenario_files(dir: PathBuf) -> PyResult<Vec<PathBuf>> {
    scenario::scenario_files(&dir).into_host()
}

/// A scenario file, checked by the reference parser (unknown keys are errors), as the dict it holds.
#[pyfunction]
fn load_scenario(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    Scenario::load(&path).into_host()?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| FfiError::configuration(format!("reading {} failed: {e}", path.display())))
        .into_host()?;
    let doc: Value =
        serde_yaml_ng::from_str(&text).map_err(|e| invalid("scenario", format!("expected YAML or JSON ({e})")))?;
    lower_json(py, &doc)
}

/// The reference runner's subset rule (objects: a subset of keys; lists: same length, element-wise).
#[pyfunction]
fn json_contains(actual: &Bound<'_, PyAny>, expected: &Bound<'_, PyAny>) -> PyResult<bool> {
    let (actual, expected) = (lift_json(actual, "actual")?, lift_json(expected, "expected")?);
    Ok(scenario::json_contains(&actual, &expected))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pattern_template, m)?)?;
    m.add_function(wrap_pyfunction!(register_pattern, m)?)?;
    m.add_function(wrap_pyfunction!(create_pattern_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(run_scripted, m)?)?;
    m.add_function(wrap_pyfunction!(script_outcome, m)?)?;
    m.add_function(wrap_pyfunction!(scenario_files, m)?)?;
    m.add_function(wrap_pyfunction!(load_scenario, m)?)?;
    m.add_function(wrap_pyfunction!(json_contains, m)?)?;
    Ok(())
}
