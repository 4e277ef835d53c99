//! The test kit every binding exposes to its users' tests: factory workflows and "run until idle".
//!
//! Host handlers cannot be called from Rust, so [`run_until_idle`] here runs *scripted* handlers: a map from
//! step name (or handler key) to the outcome of each attempt. That is also what the scenario runner needs.
//! Bindings implement their own `run_until_idle` with real host handlers over a [`WorkerSession`], with the
//! same idle rule (documented on [`run_session_until_idle_async`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tasker_core::testkit::Pattern;

use crate::client::{Client, CreateTaskOptions};
use crate::dto::Registration;
pub use crate::dto::{HandlerCall, PatternTasks, RunReport};
use crate::error::{FfiError, FfiResult};
#[cfg(feature = "native")]
use crate::runtime;
#[cfg(any(feature = "native", feature = "local"))]
use crate::worker::{FailureInput, FailureKind, HostOutcome, WorkerOptions, WorkerSession};

/// Which factory workflow to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatternSpec {
    /// `linear`, `diamond`, `parallel`, `tree` or `mixed`.
    pub pattern: String,
    /// Steps of `linear`, branches of `parallel` (default 3).
    pub n: Option<usize>,
    /// Levels below the root of `tree` (default 2).
    pub depth: Option<u32>,
    /// Children per node of `tree` (default 2).
    pub fanout: Option<u32>,
    /// The template namespace (default `testkit`).
    pub namespace: Option<String>,
    /// The handler key of every step (default `testkit.noop`); `{step}` in it is replaced by the step name,
    /// so `shop.{step}` gives each step its own key.
    pub handler_key: Option<String>,
    /// The default retry policy of the template (default `{max_attempts: 3, backoff: none}`).
    pub retry: Option<Value>,
}

impl Default for PatternSpec {
    fn default() -> Self {
        PatternSpec {
            pattern: "linear".into(),
            n: None,
            depth: None,
            fanout: None,
            namespace: None,
            handler_key: None,
            retry: None,
        }
    }
}

impl PatternSpec {
    pub fn new(pattern: impl Into<String>) -> Self {
        PatternSpec {
            pattern: pattern.into(),
            ..Default::default()
        }
    }

    fn shape(&self) -> FfiResult<Pattern> {
        let n = self.n.unwrap_or(3);
        match self.pattern.as_str() {
            "linear" | "parallel" if !(1..=500).contains(&n) => Err(FfiError::validation(
                "pattern.n",
                format!("expected 1..=500, found {n}"),
            )),
            "linear" => Ok(Pattern::Linear(n)),
            "diamond" => Ok(Pattern::Diamond),
            "parallel" => Ok(Pattern::Parallel(n)),
            "tree" => {
                let (depth, fanout) = (self.depth.unwrap_or(2), self.fanout.unwrap_or(2));
                let size: u64 = (0..=depth).map(|d| u64::from(fanout.max(1)).saturating_pow(d)).sum();
                if size > tasker_core::template::MAX_STEPS as u64 {
                    return Err(FfiError::validation(
                        "pattern.depth",
                        format!(
                            "tree of depth {depth} and fanout {fanout} has {size} steps, more than {}",
                            tasker_core::template::MAX_STEPS
                        ),
                    ));
                }
                Ok(Pattern::Tree { depth, fanout })
            }
            "mixed" => Ok(Pattern::Mixed),
            other => Err(FfiError::validation(
                "pattern.pattern",
                format!("expected linear, diamond, parallel, tree or mixed, found {other:?}"),
            )),
        }
    }

    /// The template document this spec builds (a JSON mapping, as a host would write it).
    pub fn template_document(&self) -> FfiResult<Value> {
        let shape = self.shape()?;
        let key = self
            .handler_key
            .clone()
            .unwrap_or_else(|| tasker_core::testkit::NOOP_HANDLER.to_string());
        let namespace = self.namespace.clone().unwrap_or_else(|| "testkit".to_string());
        let retry = self
            .retry
            .clone()
            .unwrap_or_else(|| json!({"max_attempts": 3, "backoff": "none"}));
        let template = shape.try_template_with(&namespace, |step| key.replace("{step}", step), retry)?;
        serde_json::to_value(&template).map_err(|e| FfiError::internal(format!("encoding a pattern failed: {e}")))
    }
}

#[cfg(feature = "native")]
/// Registers the template of a factory pattern (idempotently). Blocks.
pub fn register_pattern(client: &Client, spec: &PatternSpec) -> FfiResult<Registration> {
    runtime::block_on(register_pattern_async(client, spec))
}

pub async fn register_pattern_async(client: &Client, spec: &PatternSpec) -> FfiResult<Registration> {
    let doc = spec.template_document()?;
    client.register_template_value_async(&doc).await
}

#[cfg(feature = "native")]
/// Registers a factory pattern and creates `count` tasks of it with `context` (`{}` when `None`). Blocks.
pub fn create_pattern_tasks(
    client: &Client,
    spec: &PatternSpec,
    count: usize,
    context: Option<Value>,
) -> FfiResult<PatternTasks> {
    runtime::block_on(create_pattern_tasks_async(client, spec, count, context))
}

pub async fn create_pattern_tasks_async(
    client: &Client,
    spec: &PatternSpec,
    count: usize,
    context: Option<Value>,
) -> FfiResult<PatternTasks> {
    let reg = register_pattern_async(client, spec).await?;
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let options = CreateTaskOptions {
            version: Some(reg.template.version.clone()),
            context: context.clone(),
            ..Default::default()
        };
        tasks.push(
            client
                .create_task_async(&reg.template.namespace, &reg.template.name, options)
                .await?,
        );
    }
    Ok(PatternTasks {
        template: reg.template,
        tasks,
    })
}

/// A scripted failure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptedFailure {
    /// Default `scripted failure`.
    pub message: Option<String>,
    /// Default `RetryableError` / `PermanentError`.
    pub error_class: Option<String>,
    /// For a retryable failure: ask for this delay before the next attempt.
    pub retry_after_ms: Option<u64>,
    /// For a permanent failure: an error code.
    pub code: Option<String>,
}

/// What a scripted handler does on one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptedOutcome {
    /// Succeed with this result; `{"ok": true, "step": <step name>}` when `None`.
    Succeed(Option<Value>),
    /// Raise a retryable error.
    FailRetryable(ScriptedFailure),
    /// Raise a permanent error.
    FailPermanent(ScriptedFailure),
    /// Never report: the worker stops heartbeating the claim, as if it crashed, and the lease expires.
    OverrunLease,
}

impl ScriptedOutcome {
    /// The snake_case name of this outcome, as recorded in [`HandlerCall::outcome`].
    pub fn name(&self) -> &'static str {
        match self {
            ScriptedOutcome::Succeed(_) => "succeed",
            ScriptedOutcome::FailRetryable(_) => "fail_retryable",
            ScriptedOutcome::FailPermanent(_) => "fail_permanent",
            ScriptedOutcome::OverrunLease => "overrun_lease",
        }
    }
}

/// The default result of a scripted success.
pub fn default_result(step_name: &str) -> Value {
    json!({"ok": true, "step": step_name})
}

/// Scripted handlers: for each step name or handler key, the outcome of attempt 1, 2, … in order. Past the
/// end of its list a step repeats the last outcome; a step not in the map succeeds with the default result.
/// A step name takes precedence over a handler key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HandlerScript {
    pub outcomes: BTreeMap<String, Vec<ScriptedOutcome>>,
}

/// Writes a bare `name` as `{name: null}`, so that an outcome or action without arguments can be written as a
/// plain string in YAML and JSON alike.
pub(crate) fn bare_to_tagged(v: Value) -> Value {
    match v {
        Value::String(s) => json!({ s: null }),
        other => other,
    }
}

impl HandlerScript {
    /// Reads a script from a host map (or parsed YAML/JSON): step name or handler key → list of outcomes,
    /// each `{succeed: <result>}`, `{fail_retryable: {…}}`, `{fail_permanent: {…}}` or `overrun_lease`.
    pub fn from_value(value: &Value) -> FfiResult<HandlerScript> {
        let Value::Object(map) = value else {
            return Err(FfiError::validation(
                "handlers",
                "expected a mapping of step name to outcomes",
            ));
        };
        let mut outcomes = BTreeMap::new();
        for (key, list) in map {
            let Value::Array(items) = list else {
                return Err(FfiError::validation(
                    &format!("handlers.{key}"),
                    "expected a list of outcomes, one per attempt",
                ));
            };
            let parsed = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    serde_json::from_value::<ScriptedOutcome>(bare_to_tagged(item.clone()))
                        .map_err(|e| FfiError::validation(&format!("handlers.{key}[{i}]"), e.to_string()))
                })
                .collect::<FfiResult<Vec<_>>>()?;
            outcomes.insert(key.clone(), parsed);
        }
        Ok(HandlerScript { outcomes })
    }

    /// Reads a script from YAML or JSON text; see [`HandlerScript::from_value`].
    pub fn from_yaml(text: &str) -> FfiResult<HandlerScript> {
        let v: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| FfiError::validation("handlers", format!("expected YAML or JSON ({e})")))?;
        Self::from_value(&v)
    }

    /// What the handler of `step_name` (with `handler_key`) does on `attempt` (from 1).
    pub fn outcome_for(&self, step_name: &str, handler_key: &str, attempt: i64) -> ScriptedOutcome {
        let list = self
            .outcomes
            .get(step_name)
            .or_else(|| self.outcomes.get(handler_key))
            .filter(|l| !l.is_empty());
        match list {
            None => ScriptedOutcome::Succeed(None),
            Some(l) => {
                let i = usize::try_from(attempt.max(1) - 1)
                    .unwrap_or(usize::MAX)
                    .min(l.len() - 1);
                l[i].clone()
            }
        }
    }
}

/// How [`run_until_idle`] runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOptions {
    /// The handler keys to run; every key of every registered template when empty.
    pub handler_keys: Vec<String>,
    /// Steps taken per claim (default 16).
    pub batch_size: u32,
    /// Stop after this many handler runs.
    pub max_claims: Option<u64>,
    /// Give up with a `timeout` error after this long (default 30 000 ms).
    pub timeout_ms: u64,
    /// Under a manual clock, move the clock to each scheduled retry instead of stopping (default true).
    pub auto_advance_clock: bool,
    /// The lease of each claim (default 30 000 ms).
    pub lease_ms: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            handler_keys: Vec::new(),
            batch_size: 16,
            max_claims: None,
            timeout_ms: 30_000,
            auto_advance_clock: true,
            lease_ms: 30_000,
        }
    }
}

#[cfg(feature = "native")]
/// Runs scripted handlers until nothing is left to do; see [`run_session_until_idle`]. Blocks.
pub fn run_until_idle(client: &Client, script: &HandlerScript, options: &RunOptions) -> FfiResult<RunReport> {
    runtime::block_on(run_until_idle_async(client, script, options))
}

#[cfg(any(feature = "native", feature = "local"))]
pub async fn run_until_idle_async(
    client: &Client,
    script: &HandlerScript,
    options: &RunOptions,
) -> FfiResult<RunReport> {
    let keys = if options.handler_keys.is_empty() {
        all_handler_keys_async(client).await?
    } else {
        options.handler_keys.clone()
    };
    if keys.is_empty() {
        return Ok(RunReport::default());
    }
    let session = client.worker_session(WorkerOptions {
        worker_id: Some("testkit".into()),
        handler_keys: keys,
        lease_ms: options.lease_ms,
        maintenance_interval_ms: 0,
        ..Default::default()
    })?;
    let report = run_session_until_idle_async(client, &session, script, options).await;
    session.shutdown();
    report
}

#[cfg(feature = "native")]
/// Every handler key of every registered template, sorted. Blocks.
pub fn all_handler_keys(client: &Client) -> FfiResult<Vec<String>> {
    runtime::block_on(all_handler_keys_async(client))
}

pub async fn all_handler_keys_async(client: &Client) -> FfiResult<Vec<String>> {
    let keys: BTreeSet<String> = client
        .templates_async()
        .await?
        .into_iter()
        .flat_map(|t| t.steps.into_iter().map(|s| s.handler_key))
        .collect();
    Ok(keys.into_iter().collect())
}

#[cfg(feature = "native")]
/// Runs scripted handlers over `session` until idle; see [`run_session_until_idle_async`]. Blocks.
pub fn run_session_until_idle(
    client: &Client,
    session: &WorkerSession,
    script: &HandlerScript,
    options: &RunOptions,
) -> FfiResult<RunReport> {
    runtime::block_on(run_session_until_idle_async(client, session, script, options))
}

#[cfg(any(feature = "native", feature = "local"))]
/// Runs scripted handlers over `session` until idle: the loop every binding runs with host handlers
/// ([`WorkerSession::until_idle`]), with the script standing in for them.
pub async fn run_session_until_idle_async(
    _client: &Client,
    session: &WorkerSession,
    script: &HandlerScript,
    options: &RunOptions,
) -> FfiResult<RunReport> {
    let run = session.until_idle(options);
    while let Some(batch) = run.next_batch_async().await? {
        for ctx in batch {
            let outcome = match script.outcome_for(&ctx.step_name, &ctx.handler_key, ctx.attempt) {
                ScriptedOutcome::Succeed(v) => {
                    HostOutcome::Success(v.unwrap_or_else(|| default_result(&ctx.step_name)))
                }
                ScriptedOutcome::FailRetryable(f) => HostOutcome::Failure(failure(FailureKind::Retryable, f)),
                ScriptedOutcome::FailPermanent(f) => HostOutcome::Failure(failure(FailureKind::Permanent, f)),
                ScriptedOutcome::OverrunLease => {
                    run.forget(&ctx.token)?;
                    continue;
                }
            };
            run.report(&ctx.token, outcome)?;
        }
    }
    run.finish_async().await
}

#[cfg(any(feature = "native", feature = "local"))]
fn failure(kind: FailureKind, f: ScriptedFailure) -> FailureInput {
    FailureInput {
        kind,
        message: f.message.unwrap_or_else(|| "scripted failure".into()),
        error_class: f.error_class,
        backtrace: Vec::new(),
        retry_after_ms: f.retry_after_ms,
        code: f.code,
    }
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use crate::client::{ClientOptions, ClockKind};
    use crate::ErrorKind;

    fn script(yaml: &str) -> HandlerScript {
        HandlerScript::from_yaml(yaml).unwrap()
    }

    #[test]
    fn outcomes_follow_attempts_and_repeat_the_last() {
        let s = script(
            "b:\n  - fail_retryable: {message: flaky}\n  - succeed: {n: 2}\nshared.key:\n  - fail_permanent: {code: x}\n",
        );
        assert_eq!(s.outcome_for("a", "k", 1), ScriptedOutcome::Succeed(None));
        assert_eq!(s.outcome_for("b", "k", 1).name(), "fail_retryable");
        assert_eq!(
            s.outcome_for("b", "k", 2),
            ScriptedOutcome::Succeed(Some(json!({"n": 2})))
        );
        assert_eq!(
            s.outcome_for("b", "k", 9),
            ScriptedOutcome::Succeed(Some(json!({"n": 2})))
        );
        assert_eq!(s.outcome_for("c", "shared.key", 1).name(), "fail_permanent");
        // The step name wins over the handler key.
        assert_eq!(s.outcome_for("b", "shared.key", 1).name(), "fail_retryable");
    }

    #[test]
    fn bad_scripts_name_the_entry() {
        let e = HandlerScript::from_yaml("a:\n  - succeed: 1\n  - explode\n").unwrap_err();
        assert!(e.message.contains("handlers.a[1]"), "{}", e.message);
        assert!(HandlerScript::from_yaml("a: succeed").is_err());
        assert!(HandlerScript::from_yaml("- a").is_err());
    }

    #[test]
    fn pattern_specs_validate() {
        assert!(PatternSpec::new("hexagon").template_document().is_err());
        let e = PatternSpec {
            n: Some(0),
            ..PatternSpec::new("linear")
        }
        .template_document()
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        let e = PatternSpec {
            depth: Some(12),
            fanout: Some(4),
            ..PatternSpec::new("tree")
        }
        .template_document()
        .unwrap_err();
        assert!(e.message.contains("pattern.depth"), "{}", e.message);
        let doc = PatternSpec {
            handler_key: Some("shop.{step}".into()),
            namespace: Some("shop".into()),
            ..PatternSpec::new("diamond")
        }
        .template_document()
        .unwrap();
        assert_eq!(doc["namespace"], "shop");
        assert_eq!(doc["steps"][3]["handler"], "shop.end");
    }

    #[test]
    fn every_pattern_runs_to_completion_with_noop_handlers() {
        let c = Client::open("memory:", ClientOptions::default()).unwrap();
        for (p, steps) in [
            ("linear", 3),
            ("diamond", 4),
            ("parallel", 5),
            ("tree", 7),
            ("mixed", 7),
        ] {
            let made = create_pattern_tasks(&c, &PatternSpec::new(p), 2, Some(json!({"p": p}))).unwrap();
            assert_eq!(made.tasks.len(), 2);
            assert_eq!(made.template.steps.len(), steps, "{p}");
            assert_eq!(made.tasks[0].context, json!({"p": p}));
        }
        let r = run_until_idle(&c, &HandlerScript::default(), &RunOptions::default()).unwrap();
        assert_eq!(r.completed, 2 * (3 + 4 + 5 + 7 + 7));
        assert_eq!(r.rejected, 0);
        assert!(c
            .tasks(Default::default())
            .unwrap()
            .iter()
            .all(|t| t.state == "complete"));
    }

    #[test]
    fn scripted_failures_and_manual_clock_retries() {
        let c = Client::open(
            "memory:",
            ClientOptions {
                clock: ClockKind::Manual,
                ..Default::default()
            },
        )
        .unwrap();
        let spec = PatternSpec {
            retry: Some(json!({"max_attempts": 3, "backoff": "exponential", "base_ms": 1000, "jitter": 0.0})),
            ..PatternSpec::new("linear")
        };
        let t = create_pattern_tasks(&c, &spec, 1, None).unwrap().tasks.remove(0);
        let s = script("step_2:\n  - fail_retryable: {}\n  - fail_retryable: {retry_after_ms: 5000}\n  - succeed: 7\n");
        // Without moving the clock, the run stops at the first scheduled retry.
        let stopped = run_until_idle(
            &c,
            &s,
            &RunOptions {
                auto_advance_clock: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((stopped.completed, stopped.failed, stopped.advanced_ms), (1, 1, 0));
        let r = run_until_idle(&c, &s, &RunOptions::default()).unwrap();
        assert_eq!(r.advanced_ms, 1000 + 5000);
        let steps = c.steps(&t.id).unwrap();
        assert_eq!(steps[1].result, Some(json!(7)));
        assert_eq!(steps[1].attempts, 3);
        assert_eq!(c.task(&t.id).unwrap().state, "complete");
        let calls: Vec<(String, i64)> = r.calls.iter().map(|c| (c.step_name.clone(), c.attempt)).collect();
        assert_eq!(
            calls,
            [
                ("step_2".to_string(), 2),
                ("step_2".to_string(), 3),
                ("step_3".to_string(), 1)
            ]
        );
        assert_eq!(r.calls[2].dependency_results["step_2"], json!(7));
    }

    #[test]
    fn system_clock_runs_wait_for_short_retries() {
        let c = Client::open("memory:", ClientOptions::default()).unwrap();
        let spec = PatternSpec {
            retry: Some(json!({"max_attempts": 2, "backoff": "linear", "base_ms": 30, "jitter": 0.0})),
            ..PatternSpec::new("linear")
        };
        let t = create_pattern_tasks(&c, &spec, 1, None).unwrap().tasks.remove(0);
        let s = script("step_1:\n  - fail_retryable: {}\n  - succeed: null\n");
        let r = run_until_idle(&c, &s, &RunOptions::default()).unwrap();
        assert_eq!((r.completed, r.failed), (3, 1));
        assert_eq!(c.task(&t.id).unwrap().state, "complete");
    }

    #[test]
    fn overrun_claims_are_left_to_expire() {
        let c = Client::open(
            "memory:",
            ClientOptions {
                clock: ClockKind::Manual,
                ..Default::default()
            },
        )
        .unwrap();
        let t = create_pattern_tasks(&c, &PatternSpec::new("linear"), 1, None)
            .unwrap()
            .tasks
            .remove(0);
        let s = script("step_1:\n  - overrun_lease\n  - succeed: null\n");
        let r = run_until_idle(&c, &s, &RunOptions::default()).unwrap();
        assert_eq!((r.overrun, r.completed), (1, 0));
        assert_eq!(c.steps(&t.id).unwrap()[0].state, "in_progress");
        c.advance_clock_ms(30_001).unwrap();
        assert_eq!(c.reap_expired_leases(100).unwrap().retried, 1);
        let r = run_until_idle(&c, &s, &RunOptions::default()).unwrap();
        assert_eq!(r.completed, 3);
        let first = &c.steps(&t.id).unwrap()[0];
        assert_eq!((first.state.as_str(), first.attempts), ("complete", 2));
    }

    #[test]
    fn async_forms_are_send() {
        fn send<T: Send>(t: T) -> T {
            t
        }
        let c = Client::open("memory:", ClientOptions::default()).unwrap();
        let (spec, script, options) = (
            PatternSpec::new("diamond"),
            HandlerScript::default(),
            RunOptions::default(),
        );
        let made = runtime::block_on(send(create_pattern_tasks_async(&c, &spec, 1, None))).unwrap();
        assert_eq!(
            runtime::block_on(send(register_pattern_async(&c, &spec))).map(|r| r.created),
            Ok(false)
        );
        assert_eq!(
            runtime::block_on(send(all_handler_keys_async(&c))).unwrap(),
            ["testkit.noop"]
        );
        let r = runtime::block_on(send(run_until_idle_async(&c, &script, &options))).unwrap();
        assert_eq!(r.completed, 4);
        assert_eq!(c.task(&made.tasks[0].id).unwrap().state, "complete");
        assert_eq!(register_pattern(&c, &spec).unwrap().template.name, "diamond");
    }

    #[test]
    fn a_run_with_nothing_registered_is_idle_at_once() {
        let c = Client::open("memory:", ClientOptions::default()).unwrap();
        assert_eq!(
            run_until_idle(&c, &HandlerScript::default(), &RunOptions::default()).unwrap(),
            RunReport::default()
        );
    }
}
