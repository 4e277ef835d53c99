//! `TaskerCore::Internal::Testing`: the shared test kit (factory workflows, handler scripts) and the
//! scenario files, for TaskerCore::TestHelpers and the RSpec scenario runner.

use std::path::Path;

use magnus::{function, prelude::*, Error, RArray, RModule, Ruby, Value};
use serde_json::json;
use tasker_shared_ffi::scenario::{self, Scenario};
use tasker_shared_ffi::testkit::{self, HandlerScript, PatternSpec, RunOptions};
use tasker_shared_ffi::FfiError;

use crate::client::RbClient;
use crate::convert::{lift_json, lift_struct, lift_value, lower, lower_value};
use crate::errors::RbResult;
use crate::gvl::without_gvl;

fn register_pattern(ruby: &Ruby, client: &RbClient, spec: Value) -> Result<Value, Error> {
    let spec: PatternSpec = lift_struct(ruby, spec, "spec")?;
    let c = client.inner.clone();
    lower(ruby, &without_gvl(move || testkit::register_pattern(&c, &spec)).rb()?)
}

fn create_pattern_tasks(
    ruby: &Ruby,
    client: &RbClient,
    spec: Value,
    count: usize,
    context: Value,
) -> Result<Value, Error> {
    let spec: PatternSpec = lift_struct(ruby, spec, "spec")?;
    let context = lift_value(ruby, context, "context").rb()?;
    let context = if context.is_null() { None } else { Some(context) };
    let c = client.inner.clone();
    lower(
        ruby,
        &without_gvl(move || testkit::create_pattern_tasks(&c, &spec, count, context)).rb()?,
    )
}

/// The outcome a handler script gives one attempt: `{"succeed" => result}`, `{"fail_retryable" => {…}}`,
/// `{"fail_permanent" => {…}}` or `{"overrun_lease" => nil}`; the default result is filled in.
fn script_outcome(ruby: &Ruby, script: Value, step_name: String, key: String, attempt: i64) -> Result<Value, Error> {
    let script = HandlerScript::from_value(&lift_value(ruby, script, "script").rb()?).rb()?;
    let outcome = match script.outcome_for(&step_name, &key, attempt) {
        testkit::ScriptedOutcome::Succeed(None) => json!({ "succeed": testkit::default_result(&step_name) }),
        other => serde_json::to_value(other)
            .map_err(|e| FfiError::internal(e.to_string()))
            .rb()?,
    };
    lower_value(ruby, &outcome)
}

/// Runs *scripted* (Rust) handlers until idle: for factory tasks whose handlers do nothing in Ruby.
fn run_scripted(ruby: &Ruby, client: &RbClient, script: Value, options: Value) -> Result<Value, Error> {
    let script = HandlerScript::from_value(&lift_value(ruby, script, "script").rb()?).rb()?;
    let options: RunOptions = lift_struct(ruby, options, "options")?;
    let c = client.inner.clone();
    lower(
        ruby,
        &without_gvl(move || testkit::run_until_idle(&c, &script, &options)).rb()?,
    )
}

fn scenario_files(dir: String) -> Result<Vec<String>, Error> {
    let files = scenario::scenario_files(Path::new(&dir)).rb()?;
    Ok(files.iter().map(|p| p.display().to_string()).collect())
}

/// A scenario file, parsed and normalised by the reference parser (bare actions, defaults), as a Hash.
fn load_scenario(ruby: &Ruby, path: String) -> Result<Value, Error> {
    let s: Scenario = Scenario::load(Path::new(&path)).rb()?;
    let doc = json!({
        "name": s.name,
        "description": s.description,
        "clock": s.clock,
        "lease_ms": s.lease_ms,
        "templates": s.templates,
        "tasks": s.tasks,
        "handlers": s.handlers,
        "script": s.script,
        "expect": s.expect,
    });
    lower_value(ruby, &doc)
}

/// The reference runner's subset rule (objects: a subset of keys; lists: same length, element-wise).
fn json_contains(ruby: &Ruby, actual: Value, expected: Value) -> Result<bool, Error> {
    let actual = lift_value(ruby, actual, "actual").rb()?;
    let expected = lift_value(ruby, expected, "expected").rb()?;
    Ok(scenario::json_contains(&actual, &expected))
}

/// Validates a scripted outcome list the way the reference parser does; used by the scenario runner only
/// through `script_outcome`, kept here so a bad script is a ValidationError naming `script`.
fn check_script(ruby: &Ruby, script: Value) -> Result<RArray, Error> {
    let json = lift_value(ruby, script, "script").rb()?;
    let parsed: HandlerScript = lift_json(json, "script").rb()?;
    let keys = ruby.ary_new();
    for k in parsed.outcomes.keys() {
        keys.push(k.as_str())?;
    }
    Ok(keys)
}

pub fn init(_ruby: &Ruby, internal: RModule) -> Result<(), Error> {
    let m = internal.define_module("Testing")?;
    m.define_module_function("register_pattern", function!(register_pattern, 2))?;
    m.define_module_function("create_pattern_tasks", function!(create_pattern_tasks, 4))?;
    m.define_module_function("script_outcome", function!(script_outcome, 4))?;
    m.define_module_function("check_script", function!(check_script, 1))?;
    m.define_module_function("run_scripted", function!(run_scripted, 3))?;
    m.define_module_function("scenario_files", function!(scenario_files, 1))?;
    m.define_module_function("load_scenario", function!(load_scenario, 1))?;
    m.define_module_function("json_contains", function!(json_contains, 2))?;
    Ok(())
}
