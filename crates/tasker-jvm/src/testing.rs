//! The test kit's native half (docs/bindings.md §8–§9): factory workflows, scripted handlers, and the
//! scenario files the JUnit runner replays, for `io.tasker.core.TestHelpers`.

use std::path::PathBuf;

use jni::objects::{JClass, JObject};
use jni::sys::{jboolean, jlong, jobject};
use serde_json::{json, Value};
use tasker_shared_ffi::testkit::{self, HandlerScript, PatternSpec, RunOptions, ScriptedOutcome};
use tasker_shared_ffi::{scenario, FfiError};

use crate::blocking::{entry, object, Env, JResult};
use crate::client::call;
use crate::convert::{count, lift_json, lift_options, lower_json, string};

fn spec(env: &mut Env, spec: &JObject) -> JResult<PatternSpec> {
    lift_options(env, spec, "spec")
}

fn script(env: &mut Env, script: &JObject) -> JResult<HandlerScript> {
    Ok(HandlerScript::from_value(&lift_json(env, script, "script")?)?)
}

/// The template document of a factory pattern, as a `Map`.
extern "system" fn pattern_template(mut env: Env, _: JClass, s: JObject) -> jobject {
    object(&mut env, |env| {
        let doc = spec(env, &s)?.template_document()?;
        lower_json(env, &doc)
    })
}

extern "system" fn register_pattern(mut env: Env, _: JClass, h: jlong, s: JObject) -> jobject {
    call(&mut env, h, |env, c| Ok(testkit::register_pattern(&c, &spec(env, &s)?)))
}

extern "system" fn pattern_tasks(mut env: Env, _: JClass, h: jlong, s: JObject, n: jlong, cx: JObject) -> jobject {
    call(&mut env, h, |env, c| {
        let spec = spec(env, &s)?;
        let context = Some(lift_json(env, &cx, "context")?).filter(|c| !c.is_null());
        Ok(testkit::create_pattern_tasks(&c, &spec, count(n) as usize, context))
    })
}

/// Runs *scripted* (Rust) handlers until idle: for factory tasks whose handlers do nothing in Java.
extern "system" fn run_scripted(mut env: Env, _: JClass, h: jlong, s: JObject, options: JObject) -> jobject {
    call(&mut env, h, |env, c| {
        let script = script(env, &s)?;
        let options: RunOptions = lift_options(env, &options, "options")?;
        Ok(testkit::run_until_idle(&c, &script, &options))
    })
}

/// The outcome a handler script gives one attempt: `{succeed: result}` (the default result filled in),
/// `{fail_retryable: {...}}`, `{fail_permanent: {...}}` or `"overrun_lease"`.
extern "system" fn script_outcome(mut env: Env, _: JClass, s: JObject, step: JObject, k: JObject, n: jlong) -> jobject {
    object(&mut env, |env| {
        let script = script(env, &s)?;
        let (step, key) = (string(env, &step, "stepName")?, string(env, &k, "handlerKey")?);
        let outcome = match script.outcome_for(&step, &key, n) {
            ScriptedOutcome::Succeed(None) => json!({ "succeed": testkit::default_result(&step) }),
            other => serde_json::to_value(other).map_err(|e| FfiError::internal(e.to_string()))?,
        };
        lower_json(env, &outcome)
    })
}

extern "system" fn scenario_files(mut env: Env, _: JClass, dir: JObject) -> jobject {
    object(&mut env, |env| {
        let dir = PathBuf::from(string(env, &dir, "dir")?);
        let files = scenario::scenario_files(&dir)?;
        lower_json(env, &Value::from_iter(files.iter().map(|p| p.display().to_string())))
    })
}

/// A scenario file, checked by the reference parser (unknown keys are errors), as the `Map` it holds.
extern "system" fn load_scenario(mut env: Env, _: JClass, path: JObject) -> jobject {
    object(&mut env, |env| {
        let doc = scenario::load_document(&PathBuf::from(string(env, &path, "path")?))?;
        lower_json(env, &doc)
    })
}

/// The reference runner's subset rule (objects: a subset of keys; lists: same length, element-wise).
extern "system" fn json_contains(mut env: Env, _: JClass, actual: JObject, expected: JObject) -> jboolean {
    entry(&mut env, |env| {
        let actual = lift_json(env, &actual, "actual")?;
        Ok(scenario::json_contains(&actual, &lift_json(env, &expected, "expected")?) as jboolean)
    })
}

crate::natives![
    "patternTemplate"("O") -> 'O' = pattern_template,
    "registerPattern"("JO") -> 'O' = register_pattern,
    "createPatternTasks"("JOJO") -> 'O' = pattern_tasks,
    "runScripted"("JOO") -> 'O' = run_scripted,
    "scriptOutcome"("OOOJ") -> 'O' = script_outcome,
    "scenarioFiles"("O") -> 'O' = scenario_files,
    "loadScenario"("O") -> 'O' = load_scenario,
    "jsonContains"("OO") -> 'Z' = json_contains,
];
