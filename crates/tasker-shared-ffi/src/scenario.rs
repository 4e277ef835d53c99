//! The reference runner of the language-neutral scenarios in `tests/scenarios/`.
//!
//! Every binding replays the same files through its own client and worker and must observe what this runner
//! observes; docs/bindings.md describes the file format and the replay rules. In short, a scenario file has:
//!
//! - `name`, `description`, `clock` (`manual`, the default, or `system`), `lease_ms` (default 30 000);
//! - `templates`: each a `definition` (a mapping), a `text` (YAML/JSON string) or a factory `pattern`, with an
//!   optional `expect_error` (the registration must fail so) or `expect_created`;
//! - `tasks`: each with an `alias`, `namespace`, `name`, optional `version`, `context`, `idempotency_key`,
//!   `tags`, and optionally `expect_error` or `same_as: <alias>` (an idempotent repeat);
//! - `handlers`: step name (or handler key) → the outcome of attempt 1, 2, … (the last repeats; unlisted
//!   steps succeed with `{ok: true, step: <name>}`);
//! - `script`: the actions, in order (default `[run]`): running the handlers, moving the clock, operator
//!   actions on tasks, and registering, pausing, resuming, removing, firing and checking cron schedules;
//! - `expect`: the final state of each task by alias, with its steps and its event sequence, and the
//!   registered templates.
//!
//! The runner fails loudly: every difference is listed, with the observed state printed as YAML.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
#[cfg(feature = "native")]
use std::str::FromStr;
#[cfg(feature = "native")]
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
#[cfg(feature = "native")]
use serde_json::Map;
use serde_json::{json, Value};

use crate::client::ClockKind;
#[cfg(feature = "native")]
use crate::client::{Client, ClientOptions, CreateTaskOptions, ScheduleOptions};
use crate::dto::Event;
#[cfg(feature = "native")]
use crate::dto::{Schedule, StepContext, Task};
use crate::error::{FfiError, FfiResult};
#[cfg(feature = "native")]
use crate::events::{EventFilterInput, Subscription};
#[cfg(feature = "native")]
use crate::testkit::{self, RunOptions};
use crate::testkit::{HandlerScript, PatternSpec};
use crate::worker::FailureKind;
#[cfg(feature = "native")]
use crate::worker::{FailureInput, WorkerOptions, WorkerSession};

/// Deserializes a field that is present (even as `null`) to `Some`, so `result: null` can be asserted.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// An expected error: its kind code alone, or with more facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorExpectation {
    Kind(String),
    Full {
        kind: String,
        /// A substring of the message.
        #[serde(default)]
        message_contains: Option<String>,
        /// A subset of the error's `details`: every key given must be there with a matching value.
        #[serde(default)]
        details: Option<Value>,
    },
}

/// A template to register.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateEntry {
    /// The template as a mapping.
    pub definition: Option<Value>,
    /// The template as YAML or JSON text.
    pub text: Option<String>,
    /// A factory pattern (testkit).
    pub pattern: Option<PatternSpec>,
    /// The registration must fail with this error.
    pub expect_error: Option<ErrorExpectation>,
    /// Whether the registration created a new version (false: the same content was there).
    pub expect_created: Option<bool>,
}

/// A task to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskEntry {
    /// The name later actions and `expect` use for this task.
    pub alias: String,
    pub namespace: String,
    pub name: String,
    pub version: Option<String>,
    pub context: Option<Value>,
    pub idempotency_key: Option<String>,
    pub tags: Option<Value>,
    pub priority: Option<i64>,
    /// The task starts this many milliseconds after creation (by the scenario's clock).
    pub delay_ms: Option<i64>,
    /// The creation must fail with this error.
    pub expect_error: Option<ErrorExpectation>,
    /// The creation must return the task already created under this alias.
    pub same_as: Option<String>,
}

/// `run`: the scripted handlers run until idle, one claim of one step at a time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunAction {
    /// Stop after this many handler runs.
    pub max_claims: Option<u64>,
}

/// `reap`: recover steps whose lease expired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReapAction {
    pub expect_retried: Option<u32>,
    pub expect_failed: Option<u32>,
}

/// An operator action on a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskAction {
    pub task: String,
    pub reason: Option<String>,
    pub expect_error: Option<ErrorExpectation>,
}

/// `resolve_step`: an operator resolves a step with a result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResolveStepAction {
    pub task: String,
    pub step: String,
    pub result: Value,
    pub expect_error: Option<ErrorExpectation>,
}

/// `claim`: take one ready step without running its handler, and keep its token under `as`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimAction {
    #[serde(rename = "as")]
    pub save_as: Option<String>,
    /// The claimed step must be this one.
    pub expect_step: Option<String>,
    pub expect_attempt: Option<i64>,
    /// Nothing must be claimable.
    pub expect_none: bool,
}

/// `complete`: report a success for a claim kept by `claim`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompleteAction {
    pub claim: String,
    /// The default result `{ok: true, step: <name>}` when absent.
    pub result: Option<Value>,
    pub expect_error: Option<ErrorExpectation>,
}

/// `fail`: report a failure for a claim kept by `claim`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailAction {
    pub claim: String,
    pub kind: FailureKind,
    pub message: Option<String>,
    pub error_class: Option<String>,
    pub retry_after_ms: Option<u64>,
    pub code: Option<String>,
    pub expect_error: Option<ErrorExpectation>,
}

/// What a schedule must look like. Absent fields are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleExpectation {
    pub paused: Option<bool>,
    pub fired: Option<i64>,
    pub missed: Option<i64>,
    /// An RFC 3339 time; `null` asserts there is none (a paused schedule).
    #[serde(deserialize_with = "present")]
    pub next_fire_at: Option<Value>,
    /// An RFC 3339 time; `null` asserts there is none.
    #[serde(deserialize_with = "present")]
    pub last_fire_at: Option<Value>,
}

/// `register_schedule`: register (or replace) a cron schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterScheduleAction {
    pub name: String,
    pub namespace: String,
    pub template: String,
    pub cron: String,
    pub version: Option<String>,
    pub timezone: Option<String>,
    pub context: Option<Value>,
    pub priority: Option<i64>,
    /// `skip` or `run_once`.
    pub misfire: Option<String>,
    pub expect_error: Option<ErrorExpectation>,
    /// What the registered schedule must look like.
    pub expect: Option<ScheduleExpectation>,
}

/// `pause_schedule`, `resume_schedule` and `remove_schedule`: an operator action on a schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleAction {
    pub schedule: String,
    pub expect_error: Option<ErrorExpectation>,
    /// What the call must return.
    pub expect: Option<ScheduleExpectation>,
}

/// `fire_schedules`: one pass over the due schedules, as a worker's maintenance makes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FireSchedulesAction {
    pub expect_fired: Option<u32>,
    pub expect_missed: Option<i64>,
    pub expect_failed: Option<u32>,
    /// Alias → schedule name: the schedule's last task (which this pass must have created) gets the alias.
    pub tasks: BTreeMap<String, String>,
}

/// One step of a scenario's script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Run(RunAction),
    /// Move the manual clock forward by this many milliseconds.
    AdvanceMs(i64),
    Reap(ReapAction),
    CreateTask(TaskEntry),
    Cancel(TaskAction),
    /// Start a task created to start later now.
    RunNow(TaskAction),
    Retry(TaskAction),
    ResolveStep(ResolveStepAction),
    ResolveTask(TaskAction),
    Claim(ClaimAction),
    Complete(CompleteAction),
    Fail(FailAction),
    /// Assert the state of tasks now, by alias.
    Check(BTreeMap<String, TaskExpectation>),
    RegisterSchedule(RegisterScheduleAction),
    PauseSchedule(ScheduleAction),
    ResumeSchedule(ScheduleAction),
    RemoveSchedule(ScheduleAction),
    FireSchedules(FireSchedulesAction),
    /// Assert the state of schedules now, by name.
    CheckSchedules(BTreeMap<String, ScheduleExpectation>),
}

impl Action {
    #[cfg(feature = "native")]
    fn name(&self) -> &'static str {
        match self {
            Action::Run(_) => "run",
            Action::AdvanceMs(_) => "advance_ms",
            Action::Reap(_) => "reap",
            Action::CreateTask(_) => "create_task",
            Action::Cancel(_) => "cancel",
            Action::RunNow(_) => "run_now",
            Action::Retry(_) => "retry",
            Action::ResolveStep(_) => "resolve_step",
            Action::ResolveTask(_) => "resolve_task",
            Action::Claim(_) => "claim",
            Action::Complete(_) => "complete",
            Action::Fail(_) => "fail",
            Action::Check(_) => "check",
            Action::RegisterSchedule(_) => "register_schedule",
            Action::PauseSchedule(_) => "pause_schedule",
            Action::ResumeSchedule(_) => "resume_schedule",
            Action::RemoveSchedule(_) => "remove_schedule",
            Action::FireSchedules(_) => "fire_schedules",
            Action::CheckSchedules(_) => "check_schedules",
        }
    }
}

/// What a step's error must look like.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepErrorExpectation {
    pub error_class: Option<String>,
    pub code: Option<String>,
    pub message_contains: Option<String>,
    pub retryable: Option<bool>,
}

/// One claim of a step, as the handler saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimExpectation {
    pub attempt: i64,
    /// The parents' results the claim handed out, by step name.
    pub dependency_results: Option<BTreeMap<String, Value>>,
}

/// The expected state of one step. Absent fields are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepExpectation {
    pub state: Option<String>,
    pub attempts: Option<i64>,
    /// The step's result; `null` asserts there is none.
    #[serde(deserialize_with = "present")]
    pub result: Option<Value>,
    /// The step's last error; `null` asserts there is none.
    #[serde(deserialize_with = "present")]
    pub error: Option<Value>,
    /// Whether `explain` says it is ready.
    pub ready: Option<bool>,
    /// `explain`'s failed or cancelled parents that block it.
    pub blocked_by_failure: Option<Vec<String>>,
    /// Every claim of this step, in order (by `run` and by `claim`).
    pub claims: Option<Vec<ClaimExpectation>>,
}

/// The expected state of one task. Absent fields are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskExpectation {
    pub state: Option<String>,
    pub execution_status: Option<String>,
    pub recommended_action: Option<String>,
    /// By step name. Every step of the task must be listed unless `all_steps` is given.
    pub steps: Option<BTreeMap<String, StepExpectation>>,
    /// Applies to every step not listed in `steps`.
    pub all_steps: Option<StepExpectation>,
    /// Every event of the task so far, in publish order: `task.<x>` for task events, `step.<x> <step>` for
    /// step events, with `#<attempt>` appended once the step has been claimed (attempt > 0).
    pub events: Option<Vec<String>>,
}

/// What must hold at the end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expectations {
    /// Every registered template as `namespace/name@version`, sorted.
    pub templates: Option<Vec<String>>,
    /// By task alias.
    pub tasks: BTreeMap<String, TaskExpectation>,
}

/// The parts of a scenario serde reads as they are; `handlers` and `script` are read separately so that bare
/// names work and errors name their entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "manual")]
    clock: ClockKind,
    #[serde(default = "default_lease")]
    lease_ms: u64,
    #[serde(default)]
    templates: Vec<TemplateEntry>,
    #[serde(default)]
    tasks: Vec<TaskEntry>,
    #[serde(default)]
    expect: Expectations,
}

fn manual() -> ClockKind {
    ClockKind::Manual
}

fn default_lease() -> u64 {
    30_000
}

/// A parsed scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub clock: ClockKind,
    pub lease_ms: u64,
    pub templates: Vec<TemplateEntry>,
    pub tasks: Vec<TaskEntry>,
    pub handlers: HandlerScript,
    pub script: Vec<Action>,
    pub expect: Expectations,
}

fn action_from(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({ s: {} }),
        Value::Object(m) if m.len() == 1 && m.values().all(Value::is_null) => {
            let k = m.keys().next().cloned().unwrap_or_default();
            json!({ k: {} })
        }
        other => other.clone(),
    }
}

impl Scenario {
    /// Parses a scenario from YAML or JSON text.
    pub fn parse(text: &str) -> FfiResult<Scenario> {
        let mut v: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| FfiError::validation("scenario", format!("expected YAML or JSON ({e})")))?;
        let Value::Object(map) = &mut v else {
            return Err(FfiError::validation("scenario", "expected a mapping"));
        };
        let handlers = match map.remove("handlers") {
            Some(h) => HandlerScript::from_value(&h)?,
            None => HandlerScript::default(),
        };
        let script = match map.remove("script") {
            None => vec![Action::Run(RunAction::default())],
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    serde_json::from_value::<Action>(action_from(a))
                        .map_err(|e| FfiError::validation(&format!("script[{i}]"), e.to_string()))
                })
                .collect::<FfiResult<Vec<_>>>()?,
            Some(_) => return Err(FfiError::validation("script", "expected a list of actions")),
        };
        let doc: Doc = serde_json::from_value(v).map_err(|e| FfiError::validation("scenario", e.to_string()))?;
        for (i, t) in doc.templates.iter().enumerate() {
            let given = [t.definition.is_some(), t.text.is_some(), t.pattern.is_some()];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(FfiError::validation(
                    &format!("templates[{i}]"),
                    "expected exactly one of definition, text or pattern",
                ));
            }
        }
        Ok(Scenario {
            name: doc.name,
            description: doc.description,
            clock: doc.clock,
            lease_ms: doc.lease_ms,
            templates: doc.templates,
            tasks: doc.tasks,
            handlers,
            script,
            expect: doc.expect,
        })
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> FfiResult<Scenario> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| FfiError::configuration(format!("reading {} failed: {e}", path.display())))?;
        Scenario::parse(&text).map_err(|e| e.context(format!("scenario {} is malformed", path.display())))
    }
}

/// A scenario file as the document it holds (for a host's own runner), once [`Scenario::load`] accepts it.
pub fn load_document(path: &Path) -> FfiResult<Value> {
    Scenario::load(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| FfiError::configuration(format!("reading {} failed: {e}", path.display())))?;
    serde_yaml_ng::from_str(&text).map_err(|e| FfiError::validation("scenario", format!("expected YAML or JSON ({e})")))
}

/// The scenario files of a directory (`*.yaml` and `*.yml`), sorted by name.
pub fn scenario_files(dir: &Path) -> FfiResult<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| FfiError::configuration(format!("reading {} failed: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Why a scenario did not pass.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioFailure {
    pub scenario: String,
    /// The store URL, redacted.
    pub url: String,
    /// Each difference, or the error that stopped the replay.
    pub problems: Vec<String>,
    /// The observed state of every task, as YAML in the shape of `expect.tasks`.
    pub observed: String,
}

impl fmt::Display for ScenarioFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario {} failed on {}:", self.scenario, self.url)?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        writeln!(f, "observed:")?;
        for line in self.observed.lines() {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioFailure {}

/// What a passing replay observed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    pub scenario: String,
    /// The observed state of every task, in the shape of `expect.tasks`.
    pub observed: Value,
    /// How many events the replay saw.
    pub events: usize,
}

#[cfg(feature = "native")]
/// Replays `scenario` on a fresh store at `url` through the FFI [`Client`] and [`WorkerSession`]. Blocks.
pub fn run(scenario: &Scenario, url: &str) -> Result<ScenarioReport, ScenarioFailure> {
    let fail = |problems: Vec<String>, observed: String| ScenarioFailure {
        scenario: scenario.name.clone(),
        url: tasker_core::url::redact(url),
        problems,
        observed,
    };
    let client = Client::open(
        url,
        ClientOptions {
            clock: scenario.clock,
            // Big enough that a scenario never loses an event; a loss is reported as a failure anyway.
            event_capacity: 1 << 16,
            ..Default::default()
        },
    )
    .map_err(|e| fail(vec![format!("opening the store failed: {e}")], String::new()))?;
    let mut r = Replay::new(scenario, client.clone())
        .map_err(|e| fail(vec![format!("subscribing failed: {e}")], String::new()))?;
    if let Err(stop) = r.replay() {
        r.problems.push(stop);
    }
    let observed = r.observe_all();
    let _ = client.close();
    let yaml = serde_yaml_ng::to_string(&observed).unwrap_or_default();
    if r.problems.is_empty() {
        Ok(ScenarioReport {
            scenario: scenario.name.clone(),
            observed,
            events: r.events.len(),
        })
    } else {
        Err(fail(r.problems, yaml))
    }
}

#[cfg(feature = "native")]
struct ClaimSeen {
    task_id: String,
    step_name: String,
    attempt: i64,
    dependency_results: BTreeMap<String, Value>,
}

#[cfg(feature = "native")]
struct Replay<'a> {
    s: &'a Scenario,
    client: Client,
    sub: Subscription,
    session: Option<WorkerSession>,
    events: Vec<Event>,
    tasks: BTreeMap<String, Task>,
    saved: BTreeMap<String, StepContext>,
    claims: Vec<ClaimSeen>,
    problems: Vec<String>,
}

/// A replay stops at the first unexpected error; its message says where.
#[cfg(feature = "native")]
type Stop = String;

#[cfg(feature = "native")]
impl<'a> Replay<'a> {
    fn new(s: &'a Scenario, client: Client) -> FfiResult<Self> {
        let sub = client.subscribe(EventFilterInput::default())?;
        Ok(Replay {
            s,
            client,
            sub,
            session: None,
            events: Vec::new(),
            tasks: BTreeMap::new(),
            saved: BTreeMap::new(),
            claims: Vec::new(),
            problems: Vec::new(),
        })
    }

    fn replay(&mut self) -> Result<(), Stop> {
        for (i, t) in self.s.templates.iter().enumerate() {
            self.register(&format!("templates[{i}]"), t)?;
        }
        let keys = testkit::all_handler_keys(&self.client).map_err(|e| format!("listing templates: {e}"))?;
        if !keys.is_empty() {
            self.session = Some(
                self.client
                    .worker_session(WorkerOptions {
                        worker_id: Some("scenario".into()),
                        handler_keys: keys,
                        lease_ms: self.s.lease_ms,
                        // Leases move only with the scenario's clock and its `reap` actions.
                        heartbeat_interval_ms: Some(0),
                        maintenance_interval_ms: 0,
                        enforce_deadlines: false,
                        ..Default::default()
                    })
                    .map_err(|e| format!("starting the worker session: {e}"))?,
            );
        }
        for (i, t) in self.s.tasks.iter().enumerate() {
            self.create(&format!("tasks[{i}]"), t)?;
        }
        for (i, a) in self.s.script.iter().enumerate() {
            let at = format!("script[{i}] {}", a.name());
            self.act(&at, a)?;
        }
        self.collect_events();
        let expect = self.s.expect.clone();
        if let Some(want) = &expect.templates {
            let found: Vec<String> = self
                .client
                .templates()
                .map_err(|e| format!("listing templates: {e}"))?
                .into_iter()
                .map(|t| format!("{}/{}@{}", t.namespace, t.name, t.version))
                .collect();
            if &found != want {
                self.problems
                    .push(format!("expect.templates: expected {want:?}, found {found:?}"));
            }
        }
        for (alias, want) in &expect.tasks {
            self.check_task(&format!("expect.tasks.{alias}"), alias, want)?;
        }
        for alias in self.tasks.keys().cloned().collect::<Vec<_>>() {
            self.check_trail(&alias)?;
        }
        if self.sub.dropped() > 0 {
            self.problems
                .push(format!("the event subscription dropped {} events", self.sub.dropped()));
        }
        Ok(())
    }

    fn expect_outcome<T>(
        &mut self,
        at: &str,
        r: FfiResult<T>,
        want: &Option<ErrorExpectation>,
    ) -> Result<Option<T>, Stop> {
        match (r, want) {
            (Ok(v), None) => Ok(Some(v)),
            (Ok(_), Some(w)) => {
                self.problems
                    .push(format!("{at}: expected error {}, but the call succeeded", describe(w)));
                Ok(None)
            }
            (Err(e), None) => Err(format!("{at}: unexpected error ({}): {e}", e.code)),
            (Err(e), Some(w)) => {
                if let Some(p) = error_mismatch(&e, w) {
                    self.problems.push(format!("{at}: {p}"));
                }
                Ok(None)
            }
        }
    }

    fn register(&mut self, at: &str, t: &TemplateEntry) -> Result<(), Stop> {
        let r = if let Some(d) = &t.definition {
            self.client.register_template_value(d)
        } else if let Some(text) = &t.text {
            self.client.register_template(text)
        } else if let Some(p) = &t.pattern {
            testkit::register_pattern(&self.client, p)
        } else {
            return Err(format!("{at}: expected one of definition, text or pattern"));
        };
        if let Some(reg) = self.expect_outcome(at, r, &t.expect_error)? {
            if let Some(want) = t.expect_created {
                if reg.created != want {
                    self.problems
                        .push(format!("{at}.created: expected {want}, found {}", reg.created));
                }
            }
        }
        Ok(())
    }

    fn create(&mut self, at: &str, t: &TaskEntry) -> Result<(), Stop> {
        let r = self.client.create_task(
            &t.namespace,
            &t.name,
            CreateTaskOptions {
                version: t.version.clone(),
                context: t.context.clone(),
                idempotency_key: t.idempotency_key.clone(),
                tags: t.tags.clone(),
                initiator: Some("scenario".into()),
                source_system: None,
                reason: Some(self.s.name.clone()),
                priority: t.priority,
                run_at: None,
                delay_seconds: t.delay_ms.map(|ms| ms as f64 / 1000.0),
            },
        );
        let Some(task) = self.expect_outcome(at, r, &t.expect_error)? else {
            return Ok(());
        };
        if let Some(other) = &t.same_as {
            match self.tasks.get(other) {
                Some(o) if o.id == task.id => {}
                Some(o) => self.problems.push(format!(
                    "{at}: expected the task of {other:?} ({}), found a new task {}",
                    o.id, task.id
                )),
                None => return Err(format!("{at}.same_as: no task has alias {other:?}")),
            }
        }
        if !t.alias.is_empty() {
            self.tasks.insert(t.alias.clone(), task);
        }
        Ok(())
    }

    fn task_id(&self, at: &str, alias: &str) -> Result<String, Stop> {
        self.tasks
            .get(alias)
            .map(|t| t.id.clone())
            .ok_or_else(|| format!("{at}: no task has alias {alias:?}"))
    }

    fn session(&self, at: &str) -> Result<&WorkerSession, Stop> {
        self.session
            .as_ref()
            .ok_or_else(|| format!("{at}: no template is registered, so nothing can be claimed"))
    }

    fn act(&mut self, at: &str, act: &Action) -> Result<(), Stop> {
        match act {
            Action::Run(run) => {
                let Some(session) = self.session.clone() else {
                    return Ok(());
                };
                let options = RunOptions {
                    batch_size: 1,
                    max_claims: run.max_claims,
                    auto_advance_clock: false,
                    ..Default::default()
                };
                let report = testkit::run_session_until_idle(&self.client, &session, &self.s.handlers, &options)
                    .map_err(|e| format!("{at}: {e}"))?;
                for c in report.calls {
                    if let Some(kind) = &c.rejected {
                        self.problems.push(format!(
                            "{at}: the outcome of {}#{} was rejected ({kind})",
                            c.step_name, c.attempt
                        ));
                    }
                    self.claims.push(ClaimSeen {
                        task_id: c.task_id,
                        step_name: c.step_name,
                        attempt: c.attempt,
                        dependency_results: c.dependency_results,
                    });
                }
            }
            Action::AdvanceMs(ms) => {
                self.client.advance_clock_ms(*ms).map_err(|e| format!("{at}: {e}"))?;
            }
            Action::Reap(reap) => {
                let r = self
                    .client
                    .reap_expired_leases(1000)
                    .map_err(|e| format!("{at}: {e}"))?;
                if reap.expect_retried.is_some_and(|n| n != r.retried)
                    || reap.expect_failed.is_some_and(|n| n != r.failed)
                {
                    self.problems.push(format!(
                        "{at}: expected retried {:?} and failed {:?}, found {} and {}",
                        reap.expect_retried, reap.expect_failed, r.retried, r.failed
                    ));
                }
            }
            Action::CreateTask(t) => self.create(at, t)?,
            Action::Cancel(t) => {
                let id = self.task_id(at, &t.task)?;
                let r = self.client.cancel_task(&id, t.reason.as_deref());
                self.expect_outcome(at, r, &t.expect_error)?;
            }
            Action::RunNow(t) => {
                let id = self.task_id(at, &t.task)?;
                let r = self.client.run_task_now(&id);
                self.expect_outcome(at, r, &t.expect_error)?;
            }
            Action::Retry(t) => {
                let id = self.task_id(at, &t.task)?;
                let r = self.client.retry_task(&id);
                self.expect_outcome(at, r, &t.expect_error)?;
            }
            Action::ResolveTask(t) => {
                let id = self.task_id(at, &t.task)?;
                let r = self.client.resolve_task_manually(&id, t.reason.as_deref());
                self.expect_outcome(at, r, &t.expect_error)?;
            }
            Action::ResolveStep(rs) => {
                let id = self.task_id(at, &rs.task)?;
                let steps = self.client.steps(&id).map_err(|e| format!("{at}: {e}"))?;
                let step = steps
                    .iter()
                    .find(|s| s.name == rs.step)
                    .ok_or_else(|| format!("{at}: task {:?} has no step {:?}", rs.task, rs.step))?;
                let r = self.client.resolve_step_manually(&step.id, rs.result.clone());
                self.expect_outcome(at, r, &rs.expect_error)?;
            }
            Action::Claim(c) => {
                let got = self
                    .session(at)?
                    .claim(1, Duration::ZERO)
                    .map_err(|e| format!("{at}: {e}"))?;
                match (got.into_iter().next(), c.expect_none) {
                    (None, true) => {}
                    (Some(ctx), true) => {
                        self.problems.push(format!(
                            "{at}: expected nothing claimable, claimed {}#{}",
                            ctx.step_name, ctx.attempt
                        ));
                    }
                    (None, false) => return Err(format!("{at}: expected a claimable step, found none")),
                    (Some(ctx), false) => {
                        if c.expect_step.as_ref().is_some_and(|s| *s != ctx.step_name) {
                            self.problems.push(format!(
                                "{at}: expected to claim {:?}, claimed {:?}",
                                c.expect_step.as_deref().unwrap_or_default(),
                                ctx.step_name
                            ));
                        }
                        if c.expect_attempt.is_some_and(|a| a != ctx.attempt) {
                            self.problems.push(format!(
                                "{at}: expected attempt {:?}, claimed attempt {}",
                                c.expect_attempt, ctx.attempt
                            ));
                        }
                        self.claims.push(ClaimSeen {
                            task_id: ctx.task_id.clone(),
                            step_name: ctx.step_name.clone(),
                            attempt: ctx.attempt,
                            dependency_results: ctx.dependency_results.clone(),
                        });
                        if let Some(name) = &c.save_as {
                            self.saved.insert(name.clone(), ctx);
                        }
                    }
                }
            }
            Action::Complete(c) => {
                let ctx = self.saved_claim(at, &c.claim)?;
                let result = c
                    .result
                    .clone()
                    .unwrap_or_else(|| testkit::default_result(&ctx.step_name));
                let r = self.session(at)?.complete(&ctx.token, result);
                self.expect_outcome(at, r, &c.expect_error)?;
            }
            Action::Fail(f) => {
                let ctx = self.saved_claim(at, &f.claim)?;
                let failure = FailureInput {
                    kind: f.kind,
                    message: f.message.clone().unwrap_or_else(|| "scripted failure".into()),
                    error_class: f.error_class.clone(),
                    backtrace: Vec::new(),
                    retry_after_ms: f.retry_after_ms,
                    code: f.code.clone(),
                };
                let r = self.session(at)?.fail(&ctx.token, failure);
                self.expect_outcome(at, r, &f.expect_error)?;
            }
            Action::Check(by_alias) => {
                self.collect_events();
                for (alias, want) in by_alias {
                    self.check_task(&format!("{at}.{alias}"), alias, want)?;
                }
            }
            Action::RegisterSchedule(r) => {
                let options = ScheduleOptions {
                    version: r.version.clone(),
                    timezone: r.timezone.clone(),
                    context: r.context.clone(),
                    priority: r.priority,
                    misfire: r.misfire.clone(),
                };
                let got = self
                    .client
                    .register_schedule(&r.name, &r.namespace, &r.template, &r.cron, options);
                if let Some(s) = self.expect_outcome(at, got, &r.expect_error)? {
                    self.check_schedule(at, &s, &r.expect);
                }
            }
            Action::PauseSchedule(a) | Action::ResumeSchedule(a) | Action::RemoveSchedule(a) => {
                let got = match act {
                    Action::PauseSchedule(_) => self.client.pause_schedule(&a.schedule),
                    Action::ResumeSchedule(_) => self.client.resume_schedule(&a.schedule),
                    _ => self.client.remove_schedule(&a.schedule),
                };
                if let Some(s) = self.expect_outcome(at, got, &a.expect_error)? {
                    self.check_schedule(at, &s, &a.expect);
                }
            }
            Action::FireSchedules(f) => {
                let r = self.client.fire_schedules().map_err(|e| format!("{at}: {e}"))?;
                for (name, want, found) in [
                    ("fired", f.expect_fired.map(i64::from), i64::from(r.fired)),
                    ("missed", f.expect_missed, r.missed),
                    ("failed", f.expect_failed.map(i64::from), i64::from(r.failed)),
                ] {
                    if want.is_some_and(|w| w != found) {
                        self.problems.push(format!(
                            "{at}: expected {name} {}, found {found}",
                            want.unwrap_or_default()
                        ));
                    }
                }
                for (alias, schedule) in &f.tasks {
                    let s = self
                        .client
                        .schedule(schedule)
                        .map_err(|e| format!("{at}.tasks.{alias}: {e}"))?;
                    let Some(id) = s.last_task_id else {
                        return Err(format!("{at}.tasks.{alias}: schedule {schedule:?} has created no task"));
                    };
                    if self.tasks.values().any(|t| t.id == id) {
                        return Err(format!(
                            "{at}.tasks.{alias}: the last task of schedule {schedule:?} is not new to this pass"
                        ));
                    }
                    let task = self.client.task(&id).map_err(|e| format!("{at}.tasks.{alias}: {e}"))?;
                    self.tasks.insert(alias.clone(), task);
                }
            }
            Action::CheckSchedules(by_name) => {
                for (name, want) in by_name {
                    let s = self.client.schedule(name).map_err(|e| format!("{at}.{name}: {e}"))?;
                    self.check_schedule(&format!("{at}.{name}"), &s, &Some(want.clone()));
                }
            }
        }
        Ok(())
    }

    fn check_schedule(&mut self, at: &str, s: &Schedule, want: &Option<ScheduleExpectation>) {
        let Some(w) = want else { return };
        if w.paused.is_some_and(|p| p != s.paused) {
            self.problems
                .push(format!("{at}.paused: expected {:?}, found {}", w.paused, s.paused));
        }
        for (name, want, found) in [("fired", w.fired, s.fired), ("missed", w.missed, s.missed)] {
            if want.is_some_and(|n| n != found) {
                self.problems.push(format!(
                    "{at}.{name}: expected {}, found {found}",
                    want.unwrap_or_default()
                ));
            }
        }
        for (name, want, found) in [
            ("next_fire_at", &w.next_fire_at, s.next_fire_at),
            ("last_fire_at", &w.last_fire_at, s.last_fire_at),
        ] {
            let Some(want) = want else { continue };
            let expected = match want {
                Value::Null => None,
                Value::String(t) => match crate::objects::time(name, t) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        self.problems.push(format!("{at}.{name}: malformed expectation ({e})"));
                        continue;
                    }
                },
                other => {
                    self.problems
                        .push(format!("{at}.{name}: expected an RFC 3339 time or null, found {other}"));
                    continue;
                }
            };
            if expected != found {
                self.problems.push(format!(
                    "{at}.{name}: expected {}, found {}",
                    expected.map_or("none".into(), |t| t.to_rfc3339()),
                    found.map_or("none".into(), |t| t.to_rfc3339())
                ));
            }
        }
    }

    fn saved_claim(&self, at: &str, name: &str) -> Result<StepContext, Stop> {
        self.saved
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{at}: no claim was kept as {name:?}"))
    }

    fn collect_events(&mut self) {
        match self.sub.drain() {
            Ok(e) => self.events.extend(e),
            Err(e) => self.problems.push(format!("draining events failed: {e}")),
        }
    }

    fn event_lines(&self, task_id: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.task_id == task_id)
            .map(event_line)
            .collect()
    }

    fn check_task(&mut self, at: &str, alias: &str, want: &TaskExpectation) -> Result<(), Stop> {
        let Some(id) = self.tasks.get(alias).map(|t| t.id.clone()) else {
            self.problems.push(format!("{at}: no task has alias {alias:?}"));
            return Ok(());
        };
        let observed = self.observe(&id).map_err(|e| format!("{at}: {e}"))?;
        let mut p = Vec::new();
        let field = |name: &str| observed.get(name).cloned().unwrap_or(Value::Null);
        for (name, w) in [
            ("state", &want.state),
            ("execution_status", &want.execution_status),
            ("recommended_action", &want.recommended_action),
        ] {
            if let Some(w) = w {
                if field(name) != Value::String(w.clone()) {
                    p.push(format!("{at}.{name}: expected {w:?}, found {}", field(name)));
                }
            }
        }
        if let Some(w) = &want.events {
            let found = self.event_lines(&id);
            if &found != w {
                p.push(format!("{at}.events: {}", sequence_diff(w, &found)));
            }
        }
        let steps = observed
            .get("steps")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let listed = want.steps.clone().unwrap_or_default();
        if want.steps.is_some() || want.all_steps.is_some() {
            for name in listed.keys() {
                if !steps.contains_key(name) {
                    p.push(format!("{at}.steps.{name}: the task has no such step"));
                }
            }
            for (name, obs) in &steps {
                let w = match (listed.get(name), &want.all_steps) {
                    (Some(w), _) => w,
                    (None, Some(all)) => all,
                    (None, None) => {
                        p.push(format!(
                            "{at}.steps: step {name} is not listed (list every step, or give all_steps)"
                        ));
                        continue;
                    }
                };
                self.check_step(&format!("{at}.steps.{name}"), &id, name, obs, w, &mut p);
            }
        }
        self.problems.extend(p);
        Ok(())
    }

    fn check_step(&self, at: &str, task_id: &str, name: &str, obs: &Value, w: &StepExpectation, p: &mut Vec<String>) {
        let get = |k: &str| obs.get(k).cloned().unwrap_or(Value::Null);
        if let Some(s) = &w.state {
            if get("state") != Value::String(s.clone()) {
                p.push(format!("{at}.state: expected {s:?}, found {}", get("state")));
            }
        }
        if let Some(a) = w.attempts {
            if get("attempts") != json!(a) {
                p.push(format!("{at}.attempts: expected {a}, found {}", get("attempts")));
            }
        }
        if let Some(r) = &w.result {
            if &get("result") != r {
                p.push(format!("{at}.result: expected {r}, found {}", get("result")));
            }
        }
        if let Some(e) = &w.error {
            let found = get("error");
            match (e, &found) {
                (Value::Null, Value::Null) => {}
                (Value::Null, f) => p.push(format!("{at}.error: expected none, found {f}")),
                (want, f) => match serde_json::from_value::<StepErrorExpectation>(want.clone()) {
                    Err(x) => p.push(format!("{at}.error: malformed expectation ({x})")),
                    Ok(_) if f.is_null() => p.push(format!("{at}.error: expected {want}, found none")),
                    Ok(se) => {
                        let s = |k: &str| f.get(k).cloned().unwrap_or(Value::Null);
                        if se.error_class.as_ref().is_some_and(|c| s("error_class") != json!(c)) {
                            p.push(format!(
                                "{at}.error.error_class: expected {:?}, found {}",
                                se.error_class,
                                s("error_class")
                            ));
                        }
                        if se.code.as_ref().is_some_and(|c| s("code") != json!(c)) {
                            p.push(format!("{at}.error.code: expected {:?}, found {}", se.code, s("code")));
                        }
                        if se.retryable.is_some_and(|r| s("retryable") != json!(r)) {
                            p.push(format!(
                                "{at}.error.retryable: expected {:?}, found {}",
                                se.retryable,
                                s("retryable")
                            ));
                        }
                        if let Some(m) = &se.message_contains {
                            if !s("message").as_str().unwrap_or_default().contains(m.as_str()) {
                                p.push(format!(
                                    "{at}.error.message: expected it to contain {m:?}, found {}",
                                    s("message")
                                ));
                            }
                        }
                    }
                },
            }
        }
        if let Some(r) = w.ready {
            if get("ready") != json!(r) {
                p.push(format!("{at}.ready: expected {r}, found {}", get("ready")));
            }
        }
        if let Some(b) = &w.blocked_by_failure {
            if get("blocked_by_failure") != json!(b) {
                p.push(format!(
                    "{at}.blocked_by_failure: expected {b:?}, found {}",
                    get("blocked_by_failure")
                ));
            }
        }
        if let Some(want) = &w.claims {
            let found: Vec<&ClaimSeen> = self
                .claims
                .iter()
                .filter(|c| c.task_id == task_id && c.step_name == name)
                .collect();
            let attempts: Vec<i64> = found.iter().map(|c| c.attempt).collect();
            let wanted: Vec<i64> = want.iter().map(|c| c.attempt).collect();
            if attempts != wanted {
                p.push(format!("{at}.claims: expected attempts {wanted:?}, found {attempts:?}"));
            } else {
                for (c, f) in want.iter().zip(found) {
                    if let Some(d) = &c.dependency_results {
                        if d != &f.dependency_results {
                            p.push(format!(
                                "{at}.claims[attempt {}].dependency_results: expected {}, found {}",
                                c.attempt,
                                json!(d),
                                json!(f.dependency_results)
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Every event of the task must match its audit trail, row for row: events follow commits.
    fn check_trail(&mut self, alias: &str) -> Result<(), Stop> {
        let id = self.task_id("trail", alias)?;
        let trail = self
            .client
            .transitions(&id)
            .map_err(|e| format!("trail of {alias}: {e}"))?;
        let task_rows: Vec<String> = trail
            .task
            .iter()
            .map(|r| {
                let ev = r
                    .event
                    .as_deref()
                    .and_then(|e| tasker_core::TaskEvent::from_str(e).ok());
                tasker_core::events::event_name_for_task(ev).to_string()
            })
            .collect();
        let task_events: Vec<String> = self
            .events
            .iter()
            .filter(|e| e.task_id == id && e.step_id.is_none())
            .map(|e| e.name.clone())
            .collect();
        if task_rows != task_events {
            self.problems.push(format!(
                "tasks.{alias}: task events {task_events:?} do not match the task's transition rows {task_rows:?}"
            ));
        }
        let mut step_ids: Vec<&str> = trail.steps.iter().map(|r| r.step_id.as_str()).collect();
        step_ids.dedup();
        for sid in step_ids {
            let rows: Vec<(String, i64)> = trail
                .steps
                .iter()
                .filter(|r| r.step_id == sid)
                .map(|r| {
                    let ev = r
                        .event
                        .as_deref()
                        .and_then(|e| tasker_core::StepEvent::from_str(e).ok());
                    (tasker_core::events::event_name_for_step(ev).to_string(), r.attempt)
                })
                .collect();
            let events: Vec<(String, i64)> = self
                .events
                .iter()
                .filter(|e| e.step_id.as_deref() == Some(sid))
                .map(|e| (e.name.clone(), e.attempt.unwrap_or(0)))
                .collect();
            if rows != events {
                self.problems.push(format!(
                    "tasks.{alias}: events of step {sid} {events:?} do not match its transition rows {rows:?}"
                ));
            }
        }
        Ok(())
    }

    /// The state of a task in the shape of [`TaskExpectation`].
    fn observe(&self, task_id: &str) -> FfiResult<Value> {
        let task = self.client.task(task_id)?;
        let ctx = self.client.execution_context(task_id)?;
        let explain = self.client.explain(task_id)?;
        let mut steps = Map::new();
        for s in self.client.steps(task_id)? {
            let r = explain.steps.iter().find(|r| r.step_id == s.id);
            let claims: Vec<Value> = self
                .claims
                .iter()
                .filter(|c| c.task_id == task_id && c.step_name == s.name)
                .map(|c| json!({"attempt": c.attempt, "dependency_results": c.dependency_results}))
                .collect();
            steps.insert(
                s.name.clone(),
                json!({
                    "state": s.state,
                    "attempts": s.attempts,
                    "result": s.result,
                    "error": s.error.as_ref().map(|e| json!({
                        "error_class": e.error_class, "code": e.code, "message": e.message, "retryable": e.retryable,
                    })),
                    "ready": r.map(|r| r.ready),
                    "blocked_by_failure": r.map(|r| r.blocked_by_failure.clone()),
                    "claims": claims,
                }),
            );
        }
        Ok(json!({
            "state": task.state,
            "execution_status": ctx.execution_status,
            "recommended_action": ctx.recommended_action,
            "steps": steps,
            "events": self.event_lines(task_id),
        }))
    }

    fn observe_all(&mut self) -> Value {
        self.collect_events();
        let mut out = Map::new();
        for (alias, t) in &self.tasks {
            let v = self
                .observe(&t.id)
                .unwrap_or_else(|e| json!({"unavailable": e.to_string()}));
            out.insert(alias.clone(), v);
        }
        Value::Object(out)
    }
}

/// An event as scenario files write it: `task.completed`, `step.created b`, `step.claimed b#2`.
pub fn event_line(e: &Event) -> String {
    match (&e.step_name, e.attempt) {
        (Some(step), Some(a)) if a > 0 => format!("{} {step}#{a}", e.name),
        (Some(step), _) => format!("{} {step}", e.name),
        (None, _) => e.name.clone(),
    }
}

#[cfg(feature = "native")]
fn describe(w: &ErrorExpectation) -> String {
    match w {
        ErrorExpectation::Kind(k) => k.clone(),
        ErrorExpectation::Full { kind, .. } => kind.clone(),
    }
}

#[cfg(feature = "native")]
/// Why `e` does not meet `w`, if it does not.
fn error_mismatch(e: &FfiError, w: &ErrorExpectation) -> Option<String> {
    let (kind, contains, details) = match w {
        ErrorExpectation::Kind(k) => (k, None, None),
        ErrorExpectation::Full {
            kind,
            message_contains,
            details,
        } => (kind, message_contains.as_ref(), details.as_ref()),
    };
    if e.code != kind {
        return Some(format!("expected error {kind}, found {} ({})", e.code, e.message));
    }
    if let Some(c) = contains {
        if !e.message.contains(c.as_str()) {
            return Some(format!("expected the message to contain {c:?}, found {:?}", e.message));
        }
    }
    if let Some(d) = details {
        if !json_contains(&e.details, d) {
            return Some(format!("expected details to include {d}, found {}", e.details));
        }
    }
    None
}

/// Whether `expected` is a part of `actual`: object keys are a subset (recursively), arrays match element by
/// element with the same length, and scalars are equal.
pub fn json_contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            e.iter().all(|(k, ev)| a.get(k).is_some_and(|av| json_contains(av, ev)))
        }
        (Value::Array(a), Value::Array(e)) => a.len() == e.len() && a.iter().zip(e).all(|(x, y)| json_contains(x, y)),
        (a, e) => a == e,
    }
}

#[cfg(feature = "native")]
/// A readable account of how two sequences differ.
fn sequence_diff(want: &[String], found: &[String]) -> String {
    let first = want
        .iter()
        .zip(found)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(found.len()));
    format!(
        "sequences differ from position {first} (expected {} events, found {}); expected from there: {:?}; found from there: {:?}",
        want.len(),
        found.len(),
        &want[first.min(want.len())..],
        &found[first.min(found.len())..]
    )
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;

    const MINI: &str = r#"
name: mini
templates:
  - definition:
      namespace: s
      name: pair
      version: 1.0.0
      steps:
        - { name: a, handler: s.a }
        - { name: b, handler: s.b, depends_on: [a] }
tasks:
  - { alias: main, namespace: s, name: pair, context: { n: 1 } }
handlers:
  a: [ { succeed: { v: 1 } } ]
script:
  - run
expect:
  templates: [s/pair@1.0.0]
  tasks:
    main:
      state: complete
      steps:
        a: { state: complete, attempts: 1, result: { v: 1 } }
        b: { state: complete, claims: [ { attempt: 1, dependency_results: { a: { v: 1 } } } ] }
      events:
        - task.created
        - step.created a
        - step.created b
        - step.claimed a#1
        - task.started
        - step.completed a#1
        - step.claimed b#1
        - step.completed b#1
        - task.completed
"#;

    #[test]
    fn a_scenario_document_loads_once_checked() {
        let dir = std::env::temp_dir().join(format!("tasker-doc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (good, bad) = (dir.join("mini.yaml"), dir.join("bad.yaml"));
        std::fs::write(&good, MINI).unwrap();
        std::fs::write(&bad, MINI.replace("name: mini\n", "name: mini\nbogus: 1\n")).unwrap();
        assert_eq!(load_document(&good).unwrap()["tasks"][0]["alias"], "main");
        assert!(load_document(&bad).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_minimal_scenario_passes_on_memory() {
        let s = Scenario::parse(MINI).unwrap();
        assert_eq!(s.script, vec![Action::Run(RunAction::default())]);
        let report = run(&s, "memory:").unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(report.events, 9);
    }

    #[test]
    fn a_system_clock_scenario_replays_and_refuses_advance() {
        let s = Scenario::parse(&MINI.replace("name: mini\n", "name: mini\nclock: system\n")).unwrap();
        assert_eq!(s.clock, ClockKind::System);
        run(&s, "memory:").unwrap_or_else(|f| panic!("{f}"));
        let advancing = MINI
            .replace("name: mini\n", "name: mini\nclock: system\n")
            .replace("  - run\n", "  - advance_ms: 5\n  - run\n");
        let f = run(&Scenario::parse(&advancing).unwrap(), "memory:").unwrap_err();
        assert!(f.problems[0].contains("clock: manual"), "{f}");
    }

    #[test]
    fn every_difference_is_reported_with_the_observed_state() {
        let text = MINI
            .replace(
                "a: { state: complete, attempts: 1, result: { v: 1 } }",
                "a: { state: error, attempts: 2, result: { v: 2 } }",
            )
            .replace("- step.completed b#1", "- step.failed b#1");
        let f = run(&Scenario::parse(&text).unwrap(), "memory:").unwrap_err();
        let all = f.problems.join("\n");
        for want in [
            "steps.a.state",
            "steps.a.attempts",
            "steps.a.result",
            "events: sequences differ from position 7",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{f}");
        }
        assert!(f.observed.contains("step.completed b#1"), "{}", f.observed);
        assert!(f.to_string().starts_with("scenario mini failed on memory:"));
    }

    #[test]
    fn unlisted_steps_and_unexpected_success_fail() {
        let text = MINI
            .replace(
                "        b: { state: complete, claims: [ { attempt: 1, dependency_results: { a: { v: 1 } } } ] }\n",
                "",
            )
            .replace(
                "  - run\n",
                "  - run\n  - cancel: { task: main, expect_error: not_found }\n",
            );
        let f = run(&Scenario::parse(&text).unwrap(), "memory:").unwrap_err();
        let all = f.problems.join("\n");
        assert!(all.contains("step b is not listed"), "{all}");
        assert!(
            all.contains("expected error not_found, found invalid_transition"),
            "{all}"
        );
    }

    #[test]
    fn an_unexpected_error_stops_the_replay() {
        let text = MINI.replace("  - run\n", "  - retry: { task: main }\n  - run\n");
        let f = run(&Scenario::parse(&text).unwrap(), "memory:").unwrap_err();
        assert!(
            f.problems[0].contains("script[0] retry: unexpected error (invalid_transition)"),
            "{f}"
        );
    }

    #[test]
    fn malformed_files_name_the_place() {
        let e = Scenario::parse("name: x\nscript:\n  - jump\n").unwrap_err();
        assert!(e.message.contains("script[0]"), "{}", e.message);
        let e = Scenario::parse("name: x\nexpect:\n  tasks:\n    t: { stat: complete }\n").unwrap_err();
        assert!(e.message.contains("stat"), "{}", e.message);
        let e = Scenario::parse("name: x\ntemplates:\n  - {}\n").unwrap_err();
        assert!(e.message.contains("templates[0]"), "{}", e.message);
        let e = Scenario::parse("name: x\nhandlers:\n  a: [ { explode: 1 } ]\n").unwrap_err();
        assert!(e.message.contains("handlers.a[0]"), "{}", e.message);
    }

    #[test]
    fn json_contains_is_a_recursive_subset() {
        let a = json!({"errors": [{"path": "x", "message": "m"}], "what": "t"});
        assert!(json_contains(&a, &json!({"errors": [{"path": "x"}]})));
        assert!(!json_contains(&a, &json!({"errors": [{"path": "y"}]})));
        assert!(!json_contains(&a, &json!({"errors": []})));
        assert!(json_contains(&a, &json!({})));
    }

    #[test]
    fn event_lines_show_step_and_attempt() {
        let mk = |name: &str, step: Option<&str>, attempt: Option<i64>| Event {
            name: name.into(),
            task_id: "t".into(),
            step_id: step.map(|_| "s".into()),
            step_name: step.map(str::to_string),
            attempt,
            from_state: None,
            to_state: "x".into(),
            worker_id: None,
            metadata: Value::Null,
            timestamp: chrono::Utc::now(),
        };
        assert_eq!(event_line(&mk("task.created", None, None)), "task.created");
        assert_eq!(event_line(&mk("step.created", Some("a"), Some(0))), "step.created a");
        assert_eq!(event_line(&mk("step.claimed", Some("a"), Some(2))), "step.claimed a#2");
    }
}
