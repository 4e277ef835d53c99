//! `TaskerCore::Internal::Testing`: the shared test kit (factory workflows, scripted handlers) and the
//! scenario files, for `TaskerCore::Testing` (lib/tasker_core/testing.rb) and the RSpec scenario runner.

use std::path::Path;

use magnus::{function, prelude::*, Error, RModule, Ruby, Value};
use serde_json::{json, Value as Json};
use tasker_shared_ffi::scenario::{self, Scenario};
use tasker_shared_ffi::testkit::{self, HandlerScript, PatternSpec, RunOptions, ScriptedOutcome};
use tasker_shared_ffi::FfiError;

use crate::client::RbClient;
use crate::convert::{lift_json, lift_options, lower_json};
use crate::errors::IntoHost;

/// The template document of a factory pattern, as a Hash.
fn pattern_template(ruby: &Ruby, spec: Value) -> Result<Value, Error> {
    let spec: PatternSpec = lift_options(ruby, spec, "spec")?;
    lower_json(ruby, &spec.template_document().into_host()?)
}

fn register_pattern(ruby: &Ruby, client: &RbClient, spec: Value) -> Result<Value, Error> {
    let spec: PatternSpec = lift_options(ruby, spec, "spec")?;
    client.call(ruby, move |c| testkit::register_pattern(&c, &spec))
}

fn create_pattern_tasks(ruby: &Ruby, client: &RbClient, spec: Value, count: usize, ctx: Value) -> Result<Value, Error> {
    let spec: PatternSpec = lift_options(ruby, spec, "spec")?;
    let context = Some(lift_json(ruby, ctx, "context").into_host()?).filter(|c| !c.is_null());
    client.call(ruby, move |c| testkit::create_pattern_tasks(&c, &spec, count, context))
}

/// Runs *scripted* (Rust) handlers until idle: for factory tasks whose handlers do nothing in Ruby.
fn run_scripted(ruby: &Ruby, client: &RbClient, script: Value, options: Value) -> Result<Value, Error> {
    let script = HandlerScript::from_value(&lift_json(ruby, script, "script").into_host()?).into_host()?;
    let options: RunOptions = lift_options(ruby, options, "options")?;
    client.call(ruby, move |c| testkit::run_until_idle(&c, &script, &options))
}

/// The outcome a handler script gives one attempt: `{"succeed" => result}` (the default result filled in),
/// `{"fail_retryable" => {…}}`, `{"fail_permanent" => {…}}` or `"overrun_lease"`.
fn script_outcome(ruby: &Ruby, script: Value, step_name: String, key: String, attempt: i64) -> Result<Value, Error> {
    let script = HandlerScript::from_value(&lift_json(ruby, script, "script").into_host()?).into_host()?;
    let outcome = match script.outcome_for(&step_name, &key, attempt) {
        ScriptedOutcome::Succeed(None) => json!({ "succeed": testkit::default_result(&step_name) }),
        other => serde_json::to_value(other)
            .map_err(|e| FfiError::internal(e.to_string()))
            .into_host()?,
    };
    lower_json(ruby, &outcome)
}

fn scenario_files(dir: String) -> Result<Vec<String>, Error> {
    let files = scenario::scenario_files(Path::new(&dir)).into_host()?;
    Ok(files.iter().map(|p| p.display().to_string()).collect())
}

/// A scenario file, checked by the reference parser (unknown keys are errors), as the Hash it holds.
fn load_scenario(ruby: &Ruby, path: String) -> Result<Value, Error> {
    Scenario::load(Path::new(&path)).into_host()?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| FfiError::configuration(format!("reading {path} failed: {e}")))
        .into_host()?;
    let doc: Json = serde_yaml_ng::from_str(&text)
        .map_err(|e| FfiError::validation("scenario", format!("expected YAML or JSON ({e})")))
        .into_host()?;
    lower_json(ruby, &doc)
}

/// The reference runner's subset rule (objects: a subset of keys; lists: same length, element-wise).
fn json_contains(ruby: &Ruby, actual: Value, expected: Value) -> Result<bool, Error> {
    let actual = lift_json(ruby, actual, "actual").into_host()?;
    let expected = lift_json(ruby, expected, "expected").into_host()?;
    Ok(scenario::json_contains(&actual, &expected))
}

pub fn register(_ruby: &Ruby, internal: RModule) -> Result<(), Error> {
    let m = internal.define_module("Testing")?;
    m.define_module_function("pattern_template", function!(pattern_template, 1))?;
    m.define_module_function("register_pattern", function!(register_pattern, 2))?;
    m.define_module_function("create_pattern_tasks", function!(create_pattern_tasks, 4))?;
    m.define_module_function("run_scripted", function!(run_scripted, 3))?;
    m.define_module_function("script_outcome", function!(script_outcome, 4))?;
    m.define_module_function("scenario_files", function!(scenario_files, 1))?;
    m.define_module_function("load_scenario", function!(load_scenario, 1))?;
    m.define_module_function("json_contains", function!(json_contains, 2))?;
    Ok(())
}
