//! The test kit's language-neutral parts (docs/bindings.md §8–§9): factory workflows, scripted handlers, and
//! the scenario format the node:test runner replays, for `testing` (js/testing.js). Scenario files are read
//! by the JS side (a wasm module has no file system) and checked here by the reference parser.

use js_sys::Promise;
use serde_json::{json, Value};
use tasker_shared_ffi::scenario::{self, Scenario};
use tasker_shared_ffi::testkit::{self, HandlerScript, PatternSpec, RunOptions, ScriptedOutcome};
use tasker_shared_ffi::{ErrorKind, FfiError, FfiResult};
use wasm_bindgen::prelude::*;

use crate::blocking::{lifted, promise};
use crate::client::Client;
use crate::convert::{lift_options, lift_value, lower_json};
use crate::errors::{lower_error, IntoHost};

fn spec_of(spec: &JsValue) -> FfiResult<PatternSpec> {
    lift_options(spec, "spec")
}

fn script_of(script: &JsValue) -> FfiResult<HandlerScript> {
    lift_value(script, "script").and_then(|s| HandlerScript::from_value(&s))
}

/// The template document of a factory pattern, as an object.
#[wasm_bindgen(js_name = patternTemplate)]
pub fn pattern_template(spec: JsValue) -> Result<JsValue, JsValue> {
    lower_json(&spec_of(&spec).into_host()?.template_document().into_host()?)
}

#[wasm_bindgen(js_name = registerPattern)]
pub fn register_pattern(client: &Client, spec: JsValue) -> Promise {
    let (c, spec) = (client.inner.clone(), lifted!(spec_of(&spec)));
    promise(async move { testkit::register_pattern_async(&c, &spec).await })
}

#[wasm_bindgen(js_name = createPatternTasks)]
pub fn create_pattern_tasks(client: &Client, spec: JsValue, count: u32, context: JsValue) -> Promise {
    let (c, spec) = (client.inner.clone(), lifted!(spec_of(&spec)));
    let context = lifted!(lift_value(&context, "context"));
    let context = (!context.is_null()).then_some(context);
    promise(async move { testkit::create_pattern_tasks_async(&c, &spec, count as usize, context).await })
}

/// Runs *scripted* (Rust) handlers until idle: for factory tasks whose handlers do nothing in JS.
#[wasm_bindgen(js_name = runScripted)]
pub fn run_scripted(client: &Client, script: JsValue, options: JsValue) -> Promise {
    let (c, script) = (client.inner.clone(), lifted!(script_of(&script)));
    let options: RunOptions = lifted!(lift_options(&options, "options"));
    promise(async move { testkit::run_until_idle_async(&c, &script, &options).await })
}

/// The outcome a handler script gives one attempt: `{ succeed: result }` (the default result filled in),
/// `{ fail_retryable: {...} }`, `{ fail_permanent: {...} }` or `"overrun_lease"`.
#[wasm_bindgen(js_name = scriptOutcome)]
pub fn script_outcome(script: JsValue, step_name: String, key: String, attempt: f64) -> Result<JsValue, JsValue> {
    let script = script_of(&script).into_host()?;
    let outcome = match script.outcome_for(&step_name, &key, attempt as i64) {
        ScriptedOutcome::Succeed(None) => json!({ "succeed": testkit::default_result(&step_name) }),
        other => serde_json::to_value(other)
            .map_err(|e| FfiError::internal(e.to_string()))
            .into_host()?,
    };
    lower_json(&outcome)
}

/// A scenario file's text, checked by the reference parser (unknown keys are errors), as the object it holds.
#[wasm_bindgen(js_name = loadScenario)]
pub fn load_scenario(text: String, name: String) -> Result<JsValue, JsValue> {
    Scenario::parse(&text)
        .map_err(|e| e.context(format!("scenario {name} is malformed")))
        .into_host()?;
    let doc: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| FfiError::validation("scenario", e.to_string()))
        .into_host()?;
    lower_json(&doc)
}

/// The reference runner's subset rule (objects: a subset of keys; lists: same length, element-wise).
#[wasm_bindgen(js_name = jsonContains)]
pub fn json_contains(actual: JsValue, expected: JsValue) -> Result<bool, JsValue> {
    let actual = lift_value(&actual, "actual").into_host()?;
    let expected = lift_value(&expected, "expected").into_host()?;
    Ok(scenario::json_contains(&actual, &expected))
}

/// The JS error a shared-layer error of kind `code` becomes, with `details: { k: 1 }` and one cause: the
/// per-kind test of errors.rs's mapping.
#[wasm_bindgen(js_name = errorOf)]
pub fn error_of(code: String) -> Result<JsValue, JsValue> {
    let kind = ErrorKind::ALL.into_iter().find(|k| k.code() == code);
    let kind = kind.ok_or_else(|| JsValue::from_str(&format!("no error kind {code:?}")))?;
    let mut e = FfiError::new(kind, "outer").with_detail("k", 1);
    e.causes.push("inner".into());
    Ok(lower_error(&e))
}
