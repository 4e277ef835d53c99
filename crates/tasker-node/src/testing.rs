//! The test kit's language-neutral parts (docs/bindings.md §8–§9): factory workflows, scripted handlers, and
//! the scenario files the node:test runner replays, for `testing` (lib/testing.js).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::{json, Value};
use tasker_shared_ffi::scenario::{self, Scenario};
use tasker_shared_ffi::testkit::{self, HandlerScript, PatternSpec, RunOptions, ScriptedOutcome};
use tasker_shared_ffi::{ErrorKind, FfiError, FfiResult};

use crate::blocking::rejected;
use crate::client::{lifted, Client};
use crate::convert::{lift_options, lift_value, lower_json};
use crate::errors::IntoHost;

fn spec_of(spec: Option<Unknown>) -> FfiResult<PatternSpec> {
    lift_options(spec, "spec")
}

/// The template document of a factory pattern, as an object.
#[napi]
pub fn pattern_template<'env>(env: &'env Env, spec: Option<Unknown>) -> Result<Unknown<'env>> {
    let spec = spec_of(spec).into_host(env)?;
    lower_json(env, &spec.template_document().into_host(env)?)
}

#[napi]
pub fn register_pattern<'env>(env: &'env Env, client: &Client, spec: Option<Unknown>) -> Result<Object<'env>> {
    let spec = lifted!(env, spec_of(spec));
    client.call(
        env,
        move |c| async move { testkit::register_pattern_async(&c, &spec).await },
    )
}

#[napi]
pub fn create_pattern_tasks<'env>(
    env: &'env Env,
    client: &Client,
    spec: Option<Unknown>,
    count: u32,
    context: Option<Unknown>,
) -> Result<Object<'env>> {
    let spec = lifted!(env, spec_of(spec));
    let context = lifted!(env, context.map(|c| lift_value(&c, "context")).transpose()).filter(|c| !c.is_null());
    client.call(env, move |c| async move {
        testkit::create_pattern_tasks_async(&c, &spec, count as usize, context).await
    })
}

/// Runs *scripted* (Rust) handlers until idle: for factory tasks whose handlers do nothing in JS.
#[napi]
pub fn run_scripted<'env>(
    env: &'env Env,
    client: &Client,
    script: Unknown,
    options: Option<Unknown>,
) -> Result<Object<'env>> {
    let script = lifted!(
        env,
        lift_value(&script, "script").and_then(|s| HandlerScript::from_value(&s))
    );
    let options: RunOptions = lifted!(env, lift_options(options, "options"));
    client.call(env, move |c| async move {
        testkit::run_until_idle_async(&c, &script, &options).await
    })
}

/// The outcome a handler script gives one attempt: `{ succeed: result }` (the default result filled in),
/// `{ fail_retryable: {...} }`, `{ fail_permanent: {...} }` or `"overrun_lease"`.
#[napi]
pub fn script_outcome<'env>(
    env: &'env Env,
    script: Unknown,
    step_name: String,
    key: String,
    attempt: i64,
) -> Result<Unknown<'env>> {
    let script = lift_value(&script, "script")
        .and_then(|s| HandlerScript::from_value(&s))
        .into_host(env)?;
    let outcome = match script.outcome_for(&step_name, &key, attempt) {
        ScriptedOutcome::Succeed(None) => json!({ "succeed": testkit::default_result(&step_name) }),
        other => serde_json::to_value(other)
            .map_err(|e| FfiError::internal(e.to_string()))
            .into_host(env)?,
    };
    lower_json(env, &outcome)
}

#[napi]
pub fn scenario_files(env: &Env, dir: String) -> Result<Vec<String>> {
    let files = scenario::scenario_files(std::path::Path::new(&dir)).into_host(env)?;
    Ok(files.into_iter().map(|p| p.display().to_string()).collect())
}

/// A scenario file, checked by the reference parser (unknown keys are errors), as the object it holds.
#[napi]
pub fn load_scenario<'env>(env: &'env Env, path: String) -> Result<Unknown<'env>> {
    // The reference parser checked the file, so reading it again and parsing it as plain YAML cannot fail on its
    // content; an error here is the file changing under the test.
    let path = std::path::PathBuf::from(path);
    Scenario::load(&path).into_host(env)?;
    let text = std::fs::read_to_string(&path).map_err(|e| Error::from_reason(format!("{}: {e}", path.display())))?;
    lower_json(
        env,
        &serde_yaml_ng::from_str::<Value>(&text).map_err(|e| Error::from_reason(e.to_string()))?,
    )
}

/// The reference runner's subset rule (objects: a subset of keys; lists: same length, element-wise).
#[napi]
pub fn json_contains(env: &Env, actual: Unknown, expected: Unknown) -> Result<bool> {
    let actual = lift_value(&actual, "actual").into_host(env)?;
    let expected = lift_value(&expected, "expected").into_host(env)?;
    Ok(scenario::json_contains(&actual, &expected))
}

/// The JS error a shared-layer error of kind `code` becomes, with `details: { k: 1 }` and one cause: the
/// per-kind test of errors.rs's mapping.
#[napi]
pub fn error_of<'env>(env: &'env Env, code: String) -> Result<Unknown<'env>> {
    let kind = ErrorKind::ALL.into_iter().find(|k| k.code() == code);
    let kind = kind.ok_or_else(|| Error::from_reason(format!("no error kind {code:?}")))?;
    let mut e = FfiError::new(kind, "outer").with_detail("k", 1);
    e.causes.push("inner".into());
    crate::errors::lower_error(env, &e)
}
