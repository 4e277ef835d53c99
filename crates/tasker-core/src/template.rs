//! Workflow templates: parsing, validation, hashing, context checks and rendering.
//!
//! A template is parsed into a JSON value first and then walked by hand, so that every problem is reported
//! with the path of its field and all problems are reported at once.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, FieldError, Result};
use crate::retry::{BackoffKind, RetryPolicy};

/// The most steps one template may hold.
pub const MAX_STEPS: usize = 1000;
/// The largest `max_attempts` accepted.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;
/// The largest `timeout_seconds` accepted (one day).
pub const MAX_TIMEOUT_SECONDS: u32 = 86_400;
/// The step timeout when neither the step nor the defaults give one.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 300;
/// Priorities lie in `-MAX_PRIORITY..=MAX_PRIORITY`; higher runs first.
pub const MAX_PRIORITY: i32 = 1000;
/// The largest `concurrency.limit` accepted.
pub const MAX_CONCURRENCY_LIMIT: u32 = 10_000;

/// A cap on how many runs of a step that share a key may be `in_progress` at once, across every worker
/// (docs/adr/0008-keyed-concurrency-limits.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcurrencyLimit {
    /// An RFC 6901 JSON pointer into the task context (`/customer_id`); its value is the key.
    pub key: String,
    /// At most this many steps with the same key run at once, in `1..=MAX_CONCURRENCY_LIMIT`.
    pub limit: u32,
    /// Steps (of any template) that give the same name share one limit per key value; without a name the
    /// limit belongs to this step of this template alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ConcurrencyLimit {
    /// The key a step of a task with `context` runs under: `<name>:<value>` when the limit is named, else
    /// `<namespace>/<template>/<step>:<value>`, where a string value is taken as-is and a number or boolean
    /// by its JSON text. A pointer that finds nothing, `null`, a list or a mapping is a `validation` error
    /// naming the step and the pointer.
    pub fn resolve(&self, namespace: &str, template: &str, step: &str, context: &Value) -> Result<String> {
        let found = context.pointer(&self.key);
        let value = match found {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            other => {
                let found = match other {
                    None => "nothing".to_string(),
                    Some(v) => type_name(v).to_string(),
                };
                return Err(Error::field(
                    "task",
                    pointer_path("context", &self.key),
                    format!(
                        "step {step:?} limits its concurrency by {:?}: expected a string, number or boolean \
                         there, found {found}",
                        self.key
                    ),
                ));
            }
        };
        Ok(match &self.name {
            Some(n) => format!("{n}:{value}"),
            None => format!("{namespace}/{template}/{step}:{value}"),
        })
    }
}

/// The dotted field path of an RFC 6901 pointer under `root`, as validation errors name fields:
/// `/customer/id` under `context` is `context.customer.id`.
fn pointer_path(root: &str, pointer: &str) -> String {
    let mut path = root.to_string();
    for token in pointer.split('/').skip(1) {
        path.push('.');
        path.push_str(&token.replace("~1", "/").replace("~0", "~"));
    }
    path
}

/// Whether `s` is an RFC 6901 JSON pointer: empty, or `/`-separated tokens in which `~` is only ever
/// followed by `0` or `1`.
pub fn is_json_pointer(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    if !s.starts_with('/') {
        return false;
    }
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

/// One step of a validated template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTemplate {
    pub name: String,
    pub handler: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Handed to the handler as-is.
    #[serde(default)]
    pub config: Value,
    pub retry: RetryPolicy,
    pub timeout_seconds: u32,
    /// Overrides the task's priority for this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// At most `limit` runs of this step (or of every step naming the same limit) with the same key value
    /// run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ConcurrencyLimit>,
}

/// A validated workflow definition, with defaults applied to every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// The priority of its tasks unless `create_task` gives one (0 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    pub steps: Vec<StepTemplate>,
}

impl Template {
    /// Parses YAML or JSON text and validates it fully.
    pub fn parse(text: &str) -> Result<Template> {
        let value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
            Error::field(
                "template",
                "",
                format!("expected a YAML or JSON mapping, found unparseable text ({e})"),
            )
        })?;
        Template::from_value(&value)
    }

    /// Validates an already-parsed document.
    pub fn from_value(value: &Value) -> Result<Template> {
        let mut v = Walker::default();
        let template = v.template(value);
        if !v.errors.is_empty() {
            return Err(Error::Validation {
                what: "template",
                errors: v.errors,
            });
        }
        let template = template.ok_or_else(|| Error::Internal("template walker returned no value".into()))?;
        template.check_acyclic()?;
        Ok(template)
    }

    /// SHA-256 of the canonical JSON form: the same content gives the same hash whatever its layout.
    pub fn content_hash(&self) -> String {
        // serde_json maps are sorted by key, so this serialisation is canonical.
        let canonical = serde_json::to_vec(&serde_json::to_value(self).unwrap_or(Value::Null)).unwrap_or_default();
        hex::encode(Sha256::digest(&canonical))
    }

    /// The step with `name`, if any.
    pub fn step(&self, name: &str) -> Option<&StepTemplate> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Step indices in an order where every step follows its dependencies (stable by declaration order).
    pub fn topological_order(&self) -> Vec<usize> {
        let index: HashMap<&str, usize> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut indegree: Vec<usize> = self.steps.iter().map(|s| s.depends_on.len()).collect();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); self.steps.len()];
        for (i, s) in self.steps.iter().enumerate() {
            for d in &s.depends_on {
                children[index[d.as_str()]].push(i);
            }
        }
        let mut ready: std::collections::BTreeSet<usize> =
            (0..self.steps.len()).filter(|i| indegree[*i] == 0).collect();
        let mut order = Vec::with_capacity(self.steps.len());
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &c in &children[i] {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    ready.insert(c);
                }
            }
        }
        order
    }

    /// The dependency level of each step by name: roots are 0, others 1 + the deepest parent.
    pub fn levels(&self) -> BTreeMap<String, u32> {
        let mut level: HashMap<&str, u32> = HashMap::new();
        for i in self.topological_order() {
            let s = &self.steps[i];
            let l = s.depends_on.iter().map(|d| level[d.as_str()] + 1).max().unwrap_or(0);
            level.insert(&s.name, l);
        }
        level.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn check_acyclic(&self) -> Result<()> {
        // Iterative DFS with colours; on a back edge, the stack from the target onwards is the cycle.
        let index: HashMap<&str, usize> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut colour = vec![0u8; self.steps.len()]; // 0 new, 1 on stack, 2 done
        for start in 0..self.steps.len() {
            if colour[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            colour[start] = 1;
            while let Some((node, next)) = stack.last().copied() {
                let deps = &self.steps[node].depends_on;
                if next < deps.len() {
                    stack.last_mut().expect("non-empty").1 += 1;
                    let d = index[deps[next].as_str()];
                    match colour[d] {
                        0 => {
                            colour[d] = 1;
                            stack.push((d, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|(n, _)| *n == d).unwrap_or(0);
                            // The stack walks dependency edges (child -> parent); report it in run order.
                            let mut path: Vec<String> =
                                stack[from..].iter().map(|(n, _)| self.steps[*n].name.clone()).collect();
                            path.push(self.steps[d].name.clone());
                            path.reverse();
                            return Err(Error::CycleDetected { path });
                        }
                        _ => {}
                    }
                } else {
                    colour[node] = 2;
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    /// Checks a task context against `input_schema`; each violation names its JSON path.
    pub fn validate_context(&self, context: &Value) -> Result<()> {
        let Some(schema) = &self.input_schema else {
            return Ok(());
        };
        let validator = compile_schema(schema).map_err(|m| Error::field("template", "input_schema", m))?;
        check_context_with(&validator, context)
    }

    /// The DAG as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let ids = mermaid_ids(self.steps.iter().map(|s| s.name.as_str()));
        let id = |name: &str| ids.get(name).cloned().unwrap_or_default();
        let mut out = String::from("flowchart TD\n");
        for s in &self.steps {
            out.push_str(&format!(
                "    {}[\"{}<br/><small>{}</small>\"]\n",
                id(&s.name),
                s.name,
                s.handler
            ));
        }
        for s in &self.steps {
            for d in &s.depends_on {
                out.push_str(&format!("    {} --> {}\n", id(d), id(&s.name)));
            }
        }
        out
    }

    /// The DAG in Graphviz dot.
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}.{}@{}\" {{\n    rankdir=TB;\n",
            self.namespace, self.name, self.version
        );
        for s in &self.steps {
            out.push_str(&format!("    \"{}\" [label=\"{}\\n{}\"];\n", s.name, s.name, s.handler));
        }
        for s in &self.steps {
            for d in &s.depends_on {
                out.push_str(&format!("    \"{}\" -> \"{}\";\n", d, s.name));
            }
        }
        out.push_str("}\n");
        out
    }
}

/// A Mermaid node id for each step name: the name with `.` and `-` made `_` where that is unique, and a
/// suffix where two legal names would meet (`a.b` and `a_b`), so no two steps share a node.
fn mermaid_ids<'a>(names: impl Iterator<Item = &'a str> + Clone) -> std::collections::HashMap<&'a str, String> {
    let plain = |name: &str| -> String {
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
            .collect()
    };
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for name in names.clone() {
        *counts.entry(plain(name)).or_default() += 1;
    }
    let mut used = std::collections::HashSet::new();
    let mut ids = std::collections::HashMap::new();
    for (i, name) in names.enumerate() {
        let base = plain(name);
        let mut id = if counts[&base] == 1 {
            base
        } else {
            format!("{base}_{i}")
        };
        while !used.insert(id.clone()) {
            id.push('_');
        }
        ids.insert(name, id);
    }
    ids
}

/// Compiles a JSON Schema, or says why it is not one.
pub(crate) fn compile_schema(schema: &Value) -> std::result::Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| format!("expected a valid JSON Schema, found one that fails: {e}"))
}

/// Checks a context against a compiled input schema; each violation names its JSON path.
pub(crate) fn check_context_with(validator: &jsonschema::Validator, context: &Value) -> Result<()> {
    let errors: Vec<FieldError> = validator
        .iter_errors(context)
        .map(|e| {
            let p = e.instance_path().to_string();
            let path = if p.is_empty() || p == "/" {
                "context".to_string()
            } else {
                format!("context{}", p.replace('/', "."))
            };
            FieldError {
                path,
                message: e.to_string(),
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation {
            what: "context",
            errors,
        })
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
}

fn is_handler_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/'))
}

/// How an error message names the JSON type of a value it did not expect.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Collects every error while walking a raw template document.
#[derive(Default)]
struct Walker {
    errors: Vec<FieldError>,
}

struct Defaults {
    retry: RetryPolicy,
    timeout_seconds: u32,
}

impl Walker {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn unknown_keys(&mut self, map: &Map<String, Value>, path: &str, allowed: &[&str]) {
        for k in map.keys() {
            if !allowed.contains(&k.as_str()) {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                self.err(p, format!("unknown field, expected one of {}", allowed.join(", ")));
            }
        }
    }

    fn name_field(&mut self, map: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        let p = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        match map.get(key) {
            None | Some(Value::Null) => {
                self.err(p, "is required");
                None
            }
            Some(Value::String(s)) if is_name(s) => Some(s.clone()),
            Some(Value::String(s)) => {
                self.err(p, format!("expected 1-128 characters of [a-z0-9_.-], found {s:?}"));
                None
            }
            Some(other) => {
                self.err(p, format!("expected a string, found {}", type_name(other)));
                None
            }
        }
    }

    fn opt_string(&mut self, map: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.err(
                    format!("{path}{key}"),
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn int_in(&mut self, v: &Value, path: &str, lo: u64, hi: u64) -> Option<u64> {
        match v.as_u64() {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            _ => {
                self.err(path, format!("expected an integer in {lo}..={hi}, found {v}"));
                None
            }
        }
    }

    fn priority(&mut self, map: &Map<String, Value>, path: &str) -> Option<Option<i32>> {
        let p = if path.is_empty() {
            "priority".to_string()
        } else {
            format!("{path}.priority")
        };
        match map.get("priority") {
            None | Some(Value::Null) => Some(None),
            Some(v) => match v.as_i64() {
                Some(n) if (-i64::from(MAX_PRIORITY)..=i64::from(MAX_PRIORITY)).contains(&n) => Some(Some(n as i32)),
                _ => {
                    self.err(
                        p,
                        format!("expected an integer in {}..={MAX_PRIORITY}, found {v}", -MAX_PRIORITY),
                    );
                    None
                }
            },
        }
    }

    fn template(&mut self, value: &Value) -> Option<Template> {
        let Value::Object(map) = value else {
            self.err(
                "",
                format!("expected a mapping at the top level, found {}", type_name(value)),
            );
            return None;
        };
        self.unknown_keys(
            map,
            "",
            &[
                "namespace",
                "name",
                "version",
                "description",
                "input_schema",
                "priority",
                "defaults",
                "steps",
            ],
        );
        let namespace = self.name_field(map, "namespace", "");
        let name = self.name_field(map, "name", "");
        let version = match map.get("version") {
            None | Some(Value::Null) => {
                self.err("version", "is required");
                None
            }
            Some(Value::String(s)) => match semver::Version::parse(s) {
                Ok(_) => Some(s.clone()),
                Err(e) => {
                    self.err(
                        "version",
                        format!("expected a semver version such as 1.2.0, found {s:?} ({e})"),
                    );
                    None
                }
            },
            Some(other) => {
                self.err(
                    "version",
                    format!("expected a semver string such as \"1.2.0\", found {}", type_name(other)),
                );
                None
            }
        };
        let description = self.opt_string(map, "description", "");
        let input_schema = match map.get("input_schema") {
            None | Some(Value::Null) => None,
            Some(s @ Value::Object(_)) => match compile_schema(s) {
                Ok(_) => Some(s.clone()),
                Err(m) => {
                    self.err("input_schema", m);
                    None
                }
            },
            Some(other) => {
                self.err(
                    "input_schema",
                    format!("expected a JSON Schema mapping, found {}", type_name(other)),
                );
                None
            }
        };
        let priority = self.priority(map, "");
        let defaults = self.defaults(map.get("defaults"));
        let steps = self.steps(map.get("steps"), &defaults);
        Some(Template {
            namespace: namespace?,
            name: name?,
            version: version?,
            description,
            input_schema,
            priority: priority?,
            steps: steps?,
        })
    }

    fn defaults(&mut self, v: Option<&Value>) -> Defaults {
        let mut d = Defaults {
            retry: RetryPolicy::default(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
        };
        match v {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                self.unknown_keys(map, "defaults", &["retry", "timeout_seconds"]);
                if let Some(r) = map.get("retry") {
                    d.retry = self.retry(r, "defaults.retry", &RetryPolicy::default());
                }
                if let Some(t) = map.get("timeout_seconds") {
                    if let Some(t) = self.int_in(t, "defaults.timeout_seconds", 1, u64::from(MAX_TIMEOUT_SECONDS)) {
                        d.timeout_seconds = t as u32;
                    }
                }
            }
            Some(other) => self.err("defaults", format!("expected a mapping, found {}", type_name(other))),
        }
        d
    }

    fn retry(&mut self, v: &Value, path: &str, base: &RetryPolicy) -> RetryPolicy {
        let mut r = base.clone();
        let Value::Object(map) = v else {
            self.err(path, format!("expected a mapping, found {}", type_name(v)));
            return r;
        };
        self.unknown_keys(
            map,
            path,
            &["max_attempts", "retryable", "backoff", "base_ms", "max_ms", "jitter"],
        );
        if let Some(x) = map.get("max_attempts") {
            if let Some(n) = self.int_in(x, &format!("{path}.max_attempts"), 1, u64::from(MAX_ATTEMPTS_LIMIT)) {
                r.max_attempts = n as u32;
            }
        }
        if let Some(x) = map.get("retryable") {
            match x.as_bool() {
                Some(b) => r.retryable = b,
                None => self.err(format!("{path}.retryable"), format!("expected a boolean, found {x}")),
            }
        }
        if let Some(x) = map.get("backoff") {
            match x.as_str() {
                Some("exponential") => r.backoff = BackoffKind::Exponential,
                Some("linear") => r.backoff = BackoffKind::Linear,
                Some("none") => r.backoff = BackoffKind::None,
                _ => self.err(
                    format!("{path}.backoff"),
                    format!("expected exponential, linear or none, found {x}"),
                ),
            }
        }
        const DAY_MS: u64 = 86_400_000;
        if let Some(x) = map.get("base_ms") {
            if let Some(n) = self.int_in(x, &format!("{path}.base_ms"), 0, DAY_MS) {
                r.base_ms = n;
            }
        }
        if let Some(x) = map.get("max_ms") {
            if let Some(n) = self.int_in(x, &format!("{path}.max_ms"), 0, DAY_MS) {
                r.max_ms = n;
            }
        }
        if let Some(x) = map.get("jitter") {
            match x.as_f64() {
                Some(j) if (0.0..=1.0).contains(&j) => r.jitter = j,
                _ => self.err(
                    format!("{path}.jitter"),
                    format!("expected a number in 0.0..=1.0, found {x}"),
                ),
            }
        }
        if r.max_ms < r.base_ms {
            self.err(
                format!("{path}.max_ms"),
                format!("expected at least base_ms ({}), found {}", r.base_ms, r.max_ms),
            );
        }
        r
    }

    fn steps(&mut self, v: Option<&Value>, d: &Defaults) -> Option<Vec<StepTemplate>> {
        let list = match v {
            None | Some(Value::Null) => {
                self.err("steps", "is required");
                return None;
            }
            Some(Value::Array(a)) if a.is_empty() => {
                self.err("steps", "expected at least one step, found none");
                return None;
            }
            Some(Value::Array(a)) if a.len() > MAX_STEPS => {
                self.err(
                    "steps",
                    format!("expected at most {MAX_STEPS} steps, found {}", a.len()),
                );
                return None;
            }
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.err("steps", format!("expected a list, found {}", type_name(other)));
                return None;
            }
        };
        // Each parsed step keeps its index in the document, so paths stay right when an earlier step failed.
        let mut out: Vec<(usize, StepTemplate)> = Vec::with_capacity(list.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut ok = true;
        for (i, item) in list.iter().enumerate() {
            let path = format!("steps[{i}]");
            match self.step(item, &path, d) {
                Some(s) => {
                    if let Some(first) = seen.insert(s.name.clone(), i) {
                        self.err(
                            format!("{path}.name"),
                            format!("duplicate step name {:?}, first used by steps[{first}]", s.name),
                        );
                        ok = false;
                    }
                    out.push((i, s));
                }
                None => ok = false,
            }
        }
        let names: HashSet<&str> = out.iter().map(|(_, s)| s.name.as_str()).collect();
        let mut dep_errors = Vec::new();
        for (i, s) in &out {
            let mut uniq = HashSet::new();
            for (j, dep) in s.depends_on.iter().enumerate() {
                let p = format!("steps[{i}].depends_on[{j}]");
                if dep == &s.name {
                    dep_errors.push((p, format!("step {:?} cannot depend on itself", s.name)));
                } else if !names.contains(dep.as_str()) {
                    dep_errors.push((p, format!("unknown dependency {dep:?} of step {:?}", s.name)));
                } else if !uniq.insert(dep) {
                    dep_errors.push((p, format!("dependency {dep:?} is listed twice")));
                }
            }
        }
        if !dep_errors.is_empty() {
            ok = false;
            for (p, m) in dep_errors {
                self.err(p, m);
            }
        }
        // Steps that share a named limit share its number too: one key, one limit.
        let mut limits: HashMap<&str, (usize, u32)> = HashMap::new();
        for (i, s) in &out {
            let Some(ConcurrencyLimit {
                name: Some(n), limit, ..
            }) = &s.concurrency
            else {
                continue;
            };
            match limits.get(n.as_str()) {
                Some((first, l)) if l != limit => {
                    self.err(
                        format!("steps[{i}].concurrency.limit"),
                        format!(
                            "expected {l}, the limit steps[{first}] gives the concurrency limit {n:?}, found {limit}"
                        ),
                    );
                    ok = false;
                }
                Some(_) => {}
                None => {
                    limits.insert(n, (*i, *limit));
                }
            }
        }
        ok.then(|| out.into_iter().map(|(_, s)| s).collect())
    }

    fn step(&mut self, v: &Value, path: &str, d: &Defaults) -> Option<StepTemplate> {
        let Value::Object(map) = v else {
            self.err(path, format!("expected a mapping, found {}", type_name(v)));
            return None;
        };
        self.unknown_keys(
            map,
            path,
            &[
                "name",
                "handler",
                "description",
                "depends_on",
                "config",
                "retry",
                "timeout_seconds",
                "priority",
                "concurrency",
            ],
        );
        let name = self.name_field(map, "name", path);
        let handler = match map.get("handler") {
            None | Some(Value::Null) => {
                self.err(format!("{path}.handler"), "is required");
                None
            }
            Some(Value::String(s)) if is_handler_key(s) => Some(s.clone()),
            Some(other) => {
                self.err(
                    format!("{path}.handler"),
                    format!("expected a handler key of [A-Za-z0-9_.:/-], found {other}"),
                );
                None
            }
        };
        let description = self.opt_string(map, "description", &format!("{path}."));
        let depends_on = match map.get("depends_on") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(a)) => {
                let mut deps = Vec::new();
                let mut ok = true;
                for (j, x) in a.iter().enumerate() {
                    match x.as_str() {
                        Some(s) => deps.push(s.to_string()),
                        None => {
                            self.err(
                                format!("{path}.depends_on[{j}]"),
                                format!("expected a step name, found {x}"),
                            );
                            ok = false;
                        }
                    }
                }
                ok.then_some(deps)
            }
            Some(other) => {
                self.err(
                    format!("{path}.depends_on"),
                    format!("expected a list of step names, found {}", type_name(other)),
                );
                None
            }
        };
        let config = map.get("config").cloned().unwrap_or(Value::Object(Map::new()));
        let retry = match map.get("retry") {
            Some(r) => self.retry(r, &format!("{path}.retry"), &d.retry),
            None => d.retry.clone(),
        };
        let timeout_seconds = match map.get("timeout_seconds") {
            Some(t) => self.int_in(t, &format!("{path}.timeout_seconds"), 1, u64::from(MAX_TIMEOUT_SECONDS))? as u32,
            None => d.timeout_seconds,
        };
        let priority = self.priority(map, path);
        let concurrency = self.concurrency(map.get("concurrency"), path);
        Some(StepTemplate {
            name: name?,
            handler: handler?,
            description,
            depends_on: depends_on?,
            config,
            retry,
            timeout_seconds,
            priority: priority?,
            concurrency: concurrency?,
        })
    }

    fn concurrency(&mut self, v: Option<&Value>, path: &str) -> Option<Option<ConcurrencyLimit>> {
        let p = format!("{path}.concurrency");
        let map = match v {
            None | Some(Value::Null) => return Some(None),
            Some(Value::Object(map)) => map,
            Some(other) => {
                self.err(
                    p,
                    format!(
                        "expected a mapping such as {{ key: \"/customer_id\", limit: 1 }}, found {}",
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        self.unknown_keys(map, &p, &["key", "limit", "name"]);
        let key = match map.get("key") {
            None | Some(Value::Null) => {
                self.err(format!("{p}.key"), "is required");
                None
            }
            Some(Value::String(s)) if !s.is_empty() && is_json_pointer(s) => Some(s.clone()),
            Some(Value::String(s)) => {
                self.err(
                    format!("{p}.key"),
                    format!("expected a JSON pointer into the context such as \"/customer_id\", found {s:?}"),
                );
                None
            }
            Some(other) => {
                self.err(
                    format!("{p}.key"),
                    format!("expected a JSON pointer string, found {}", type_name(other)),
                );
                None
            }
        };
        let limit = match map.get("limit") {
            None | Some(Value::Null) => {
                self.err(format!("{p}.limit"), "is required");
                None
            }
            Some(l) => self
                .int_in(l, &format!("{p}.limit"), 1, u64::from(MAX_CONCURRENCY_LIMIT))
                .map(|n| n as u32),
        };
        let name = match map.get("name") {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) if is_name(s) => Some(Some(s.clone())),
            Some(other) => {
                self.err(
                    format!("{p}.name"),
                    format!("expected 1-128 characters of [a-z0-9_.-], found {other}"),
                );
                None
            }
        };
        Some(Some(ConcurrencyLimit {
            key: key?,
            limit: limit?,
            name: name?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const INVOICE: &str = r#"
namespace: billing
name: invoice_sync
version: 1.2.0
input_schema:
  type: object
  required: [account_id]
  properties: { account_id: { type: integer } }
defaults:
  retry: { max_attempts: 3, backoff: exponential, base_ms: 1000, max_ms: 60000, jitter: 0.1 }
  timeout_seconds: 300
steps:
  - name: fetch_invoices
    handler: billing.fetch_invoices
    config: { page_size: 200 }
  - name: normalize
    handler: billing.normalize
    depends_on: [fetch_invoices]
  - name: post_ledger
    handler: billing.post_ledger
    depends_on: [normalize]
    retry: { max_attempts: 5, retryable: true }
    timeout_seconds: 60
"#;

    fn errors_of(text: &str) -> Vec<FieldError> {
        match Template::parse(text) {
            Err(Error::Validation { errors, .. }) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_design_example_with_defaults_applied() {
        let t = Template::parse(INVOICE).unwrap();
        assert_eq!(t.steps.len(), 3);
        assert_eq!(t.steps[0].config["page_size"], 200);
        assert_eq!(t.steps[0].retry.max_attempts, 3);
        assert_eq!(t.steps[2].retry.max_attempts, 5);
        assert_eq!(
            t.steps[2].retry.base_ms, 1000,
            "step retry inherits unspecified fields from defaults"
        );
        assert_eq!(t.steps[2].timeout_seconds, 60);
        assert_eq!(t.steps[1].timeout_seconds, 300);
    }

    #[test]
    fn json_and_yaml_of_the_same_content_hash_the_same() {
        let t = Template::parse(INVOICE).unwrap();
        let json = serde_json::to_string(&serde_yaml_ng::from_str::<Value>(INVOICE).unwrap()).unwrap();
        let u = Template::parse(&json).unwrap();
        assert_eq!(t.content_hash(), u.content_hash());
        let changed = INVOICE.replace("page_size: 200", "page_size: 100");
        assert_ne!(Template::parse(&changed).unwrap().content_hash(), t.content_hash());
    }

    #[test]
    fn rejects_a_non_mapping() {
        let e = errors_of("- a\n- b\n");
        assert_eq!(e[0].path, "");
        assert!(e[0].message.contains("expected a mapping"));
    }

    #[test]
    fn rejects_missing_name_and_bad_semver_together() {
        let e = errors_of("namespace: a\nversion: one\nsteps: [{name: s, handler: h}]\n");
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["name", "version"]);
    }

    #[test]
    fn rejects_duplicate_unknown_and_self_dependencies() {
        let e = errors_of(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps:\n  - {name: s, handler: h}\n  - {name: s, handler: h}\n  - {name: t, handler: h, depends_on: [nope, t]}\n",
        );
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["steps[1].name", "steps[2].depends_on[0]", "steps[2].depends_on[1]"]
        );
        assert!(e[2].message.contains("itself"));
    }

    #[test]
    fn cycle_error_names_the_path() {
        let text = "namespace: a\nname: b\nversion: 1.0.0\nsteps:\n  - {name: a, handler: h, depends_on: [c]}\n  - {name: b, handler: h, depends_on: [a]}\n  - {name: c, handler: h, depends_on: [b]}\n  - {name: d, handler: h}\n";
        let err = Template::parse(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CycleDetected);
        let Error::CycleDetected { path } = err else {
            unreachable!()
        };
        assert_eq!(path.first(), path.last());
        assert_eq!(path.len(), 4);
        for w in path.windows(2) {
            // Each hop is a real edge: w[1] depends on w[0].
            let t = w[1].as_str();
            let dep = w[0].as_str();
            assert!(
                text.contains(&format!("name: {t}, handler: h, depends_on: [{dep}]")),
                "{path:?}"
            );
        }
    }

    #[test]
    fn limits_are_enforced() {
        let e = errors_of(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps: [{name: s, handler: h, retry: {max_attempts: 0}}]\n",
        );
        assert_eq!(e[0].path, "steps[0].retry.max_attempts");
        let e = errors_of(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps: [{name: s, handler: h, retry: {max_attempts: 101}}]\n",
        );
        assert_eq!(e[0].path, "steps[0].retry.max_attempts");
        let e = errors_of(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps: [{name: s, handler: h, timeout_seconds: 86401}]\n",
        );
        assert_eq!(e[0].path, "steps[0].timeout_seconds");
        let many: String = (0..1001).map(|i| format!("  - {{name: s{i}, handler: h}}\n")).collect();
        let e = errors_of(&format!("namespace: a\nname: b\nversion: 1.0.0\nsteps:\n{many}"));
        assert_eq!(e[0].path, "steps");
        assert!(e[0].message.contains("1000"));
    }

    #[test]
    fn dependency_paths_count_every_step_of_the_document() {
        let e = errors_of(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps:\n  - {handler: h}\n  - {name: t, handler: h, depends_on: [nope]}\n",
        );
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["steps[0].name", "steps[1].depends_on[0]"]);
    }

    #[test]
    fn concurrency_limits_are_parsed_and_checked_field_by_field() {
        let t = Template::parse(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps:\n  - {name: s, handler: h, concurrency: {key: /customer/id, limit: 2}}\n  - {name: t, handler: h, concurrency: {key: /c, limit: 1, name: charges}}\n",
        )
        .unwrap();
        let c = t.steps[0].concurrency.clone().unwrap();
        assert_eq!((c.key.as_str(), c.limit, c.name.as_deref()), ("/customer/id", 2, None));
        let ctx = serde_json::json!({"customer": {"id": 7}, "c": "acme", "l": [1], "n": null});
        assert_eq!(c.resolve("a", "b", "s", &ctx).unwrap(), "a/b/s:7");
        let named = t.steps[1].concurrency.clone().unwrap();
        assert_eq!(named.resolve("a", "b", "t", &ctx).unwrap(), "charges:acme");
        for key in ["/l", "/n", "/missing"] {
            let c = ConcurrencyLimit {
                key: key.into(),
                limit: 1,
                name: None,
            };
            let err = c.resolve("a", "b", "s", &ctx).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Validation, "{key}");
            let Error::Validation { errors, .. } = err else {
                panic!()
            };
            assert_eq!(errors[0].path, format!("context.{}", &key[1..]));
        }

        let e = errors_of(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps:\n  - {name: s, handler: h, concurrency: {key: customer, limit: 0, name: Bad Name, extra: 1}}\n  - {name: t, handler: h, concurrency: 3}\n  - {name: u, handler: h, concurrency: {}}\n",
        );
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "steps[0].concurrency.extra",
                "steps[0].concurrency.key",
                "steps[0].concurrency.limit",
                "steps[0].concurrency.name",
                "steps[1].concurrency",
                "steps[2].concurrency.key",
                "steps[2].concurrency.limit",
            ]
        );
        // One named limit, one number.
        let e = errors_of(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps:\n  - {name: s, handler: h, concurrency: {key: /c, limit: 1, name: n}}\n  - {name: t, handler: h, concurrency: {key: /d, limit: 2, name: n}}\n",
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "steps[1].concurrency.limit");
        assert!(e[0].message.contains("expected 1"), "{}", e[0].message);
    }

    #[test]
    fn json_pointers_follow_rfc_6901() {
        for ok in ["", "/", "/a", "/a/0", "/a~0b/c~1d"] {
            assert!(is_json_pointer(ok), "{ok:?}");
        }
        for bad in ["a", "a/b", "/a~", "/a~2"] {
            assert!(!is_json_pointer(bad), "{bad:?}");
        }
    }

    #[test]
    fn unknown_fields_are_reported() {
        let e =
            errors_of("namespace: a\nname: b\nversion: 1.0.0\nstepz: []\nsteps: [{name: s, handler: h, retries: 3}]\n");
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["stepz", "steps[0].retries"]);
    }

    #[test]
    fn context_is_checked_against_the_input_schema() {
        let t = Template::parse(INVOICE).unwrap();
        t.validate_context(&serde_json::json!({"account_id": 42})).unwrap();
        let err = t.validate_context(&serde_json::json!({"account_id": "x"})).unwrap_err();
        let Error::Validation { what, errors } = err else {
            panic!()
        };
        assert_eq!(what, "context");
        assert_eq!(errors[0].path, "context.account_id");
        let err = t.validate_context(&serde_json::json!({})).unwrap_err();
        assert!(err.to_string().contains("account_id"), "{err}");
    }

    #[test]
    fn invalid_input_schema_is_rejected() {
        let e = errors_of(
            "namespace: a\nname: b\nversion: 1.0.0\ninput_schema: {type: 12}\nsteps: [{name: s, handler: h}]\n",
        );
        assert_eq!(e[0].path, "input_schema");
    }

    #[test]
    fn levels_and_topological_order() {
        let t = Template::parse(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps:\n  - {name: d, handler: h, depends_on: [b, c]}\n  - {name: b, handler: h, depends_on: [a]}\n  - {name: c, handler: h, depends_on: [a]}\n  - {name: a, handler: h}\n",
        )
        .unwrap();
        let order: Vec<_> = t
            .topological_order()
            .into_iter()
            .map(|i| t.steps[i].name.clone())
            .collect();
        assert_eq!(order, vec!["a", "b", "c", "d"]);
        let l = t.levels();
        assert_eq!((l["a"], l["b"], l["c"], l["d"]), (0, 1, 1, 2));
        assert!(t.to_mermaid().contains("a --> b"));
        // Legal names that would meet as Mermaid ids get distinct nodes.
        let clash = Template::parse(
            "namespace: n\nname: m\nversion: 1.0.0\nsteps:\n  - { name: a.b, handler: h }\n  - { name: a_b, handler: h, depends_on: [a.b] }\n",
        )
        .unwrap()
        .to_mermaid();
        assert!(clash.contains("a_b_0 --> a_b_1"), "{clash}");
        assert!(t.to_dot().contains("\"b\" -> \"d\";"));
    }
}
