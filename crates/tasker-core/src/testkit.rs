//! The test kit: template builders for common DAG shapes and helpers to run them to completion.
//!
//! It is for users' tests as much as ours: every pattern builds a real template, and `run_until_idle` (with
//! the `runtime` feature) drives real claims and completions through the engine with the native worker.

#[cfg(feature = "runtime")]
use std::sync::Arc;

use serde_json::{json, Value};

use crate::engine::{CreateTask, Engine};
use crate::error::Result;
use crate::model::Task;
use crate::template::Template;
#[cfg(feature = "runtime")]
use crate::worker::{handler_fn, StepHandler, Worker, WorkerConfig, WorkerStats};

/// The handler key every step of a pattern uses unless told otherwise.
pub const NOOP_HANDLER: &str = "testkit.noop";

/// A DAG shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `step_1 -> step_2 -> … -> step_n`.
    Linear(usize),
    /// `start -> (left, right) -> end`.
    Diamond,
    /// `start -> branch_1..branch_n -> join`.
    Parallel(usize),
    /// A tree of `depth` levels below the root, each node with `fanout` children.
    Tree { depth: u32, fanout: u32 },
    /// Seven steps: two roots, a join, a fan-out and a final join.
    Mixed,
}

impl Pattern {
    /// The template name of this pattern, for example `linear_4` or `tree_2x3`.
    pub fn name(&self) -> String {
        match self {
            Pattern::Linear(n) => format!("linear_{n}"),
            Pattern::Diamond => "diamond".into(),
            Pattern::Parallel(n) => format!("parallel_{n}"),
            Pattern::Tree { depth, fanout } => format!("tree_{depth}x{fanout}"),
            Pattern::Mixed => "mixed".into(),
        }
    }

    /// The (step name, dependencies) of the shape, in an order where parents come first.
    pub fn shape(&self) -> Vec<(String, Vec<String>)> {
        match *self {
            Pattern::Linear(n) => (1..=n.max(1))
                .map(|i| {
                    (
                        format!("step_{i}"),
                        if i == 1 {
                            vec![]
                        } else {
                            vec![format!("step_{}", i - 1)]
                        },
                    )
                })
                .collect(),
            Pattern::Diamond => vec![
                ("start".into(), vec![]),
                ("left".into(), vec!["start".into()]),
                ("right".into(), vec!["start".into()]),
                ("end".into(), vec!["left".into(), "right".into()]),
            ],
            Pattern::Parallel(n) => {
                let n = n.max(1);
                let mut v = vec![("start".to_string(), vec![])];
                v.extend((1..=n).map(|i| (format!("branch_{i}"), vec!["start".to_string()])));
                v.push(("join".into(), (1..=n).map(|i| format!("branch_{i}")).collect()));
                v
            }
            Pattern::Tree { depth, fanout } => {
                let mut v = vec![("node".to_string(), vec![])];
                let mut frontier = vec!["node".to_string()];
                for _ in 0..depth {
                    let mut next = Vec::new();
                    for parent in &frontier {
                        for c in 1..=fanout.max(1) {
                            let name = format!("{parent}_{c}");
                            v.push((name.clone(), vec![parent.clone()]));
                            next.push(name);
                        }
                    }
                    frontier = next;
                }
                v
            }
            Pattern::Mixed => vec![
                ("extract_a".into(), vec![]),
                ("extract_b".into(), vec![]),
                ("merge".into(), vec!["extract_a".into(), "extract_b".into()]),
                ("enrich".into(), vec!["merge".into()]),
                ("score".into(), vec!["merge".into()]),
                ("audit".into(), vec!["extract_b".into()]),
                ("publish".into(), vec!["enrich".into(), "score".into(), "audit".into()]),
            ],
        }
    }

    /// The template in namespace `testkit`, every step using [`NOOP_HANDLER`].
    pub fn template(&self) -> Template {
        self.template_with(
            "testkit",
            |_| NOOP_HANDLER.to_string(),
            json!({"max_attempts": 3, "backoff": "none"}),
        )
    }

    /// The template in `namespace`, with handler keys from `handler_for(step_name)` and `retry` as the
    /// default retry policy.
    ///
    /// Panics when `retry` is not a valid retry policy; use [`Pattern::try_template_with`] for a policy that
    /// comes from a user.
    pub fn template_with(&self, namespace: &str, handler_for: impl Fn(&str) -> String, retry: Value) -> Template {
        self.try_template_with(namespace, handler_for, retry)
            .expect("a valid retry policy")
    }

    /// Like [`Pattern::template_with`], but an invalid namespace or retry policy is a validation error.
    pub fn try_template_with(
        &self,
        namespace: &str,
        handler_for: impl Fn(&str) -> String,
        retry: Value,
    ) -> crate::Result<Template> {
        let steps: Vec<Value> = self
            .shape()
            .into_iter()
            .map(|(name, deps)| json!({"name": name, "handler": handler_for(&name), "depends_on": deps}))
            .collect();
        let doc = json!({
            "namespace": namespace,
            "name": self.name(),
            "version": "1.0.0",
            "defaults": {"retry": retry, "timeout_seconds": 60},
            "steps": steps,
        });
        Template::from_value(&doc)
    }
}

/// The handler key of a step that sleeps `sleep_ms` (from the step config, else the task context) and
/// then succeeds; for tests of leases and crashes.
pub const SLEEP_HANDLER: &str = "testkit.sleep";

/// The test kit's handlers by key: [`NOOP_HANDLER`] returns `{"ok": true, "step": name}` at once and
/// [`SLEEP_HANDLER`] sleeps first.
#[cfg(feature = "runtime")]
pub fn handlers() -> Vec<(String, Arc<dyn StepHandler>)> {
    let noop: Arc<dyn StepHandler> = Arc::new(handler_fn(|ctx: crate::model::StepContext| async move {
        Ok(json!({"ok": true, "step": ctx.step_name}))
    }));
    let sleep: Arc<dyn StepHandler> = Arc::new(handler_fn(|ctx: crate::model::StepContext| async move {
        let ms = ctx
            .config
            .get("sleep_ms")
            .or_else(|| ctx.context.get("sleep_ms"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        Ok(json!({"ok": true, "step": ctx.step_name, "slept_ms": ms}))
    }));
    vec![(NOOP_HANDLER.to_string(), noop), (SLEEP_HANDLER.to_string(), sleep)]
}

/// Registers `pattern` (idempotently) and creates `count` tasks of it with `context`.
pub async fn create_tasks(engine: &Engine, template: &Template, count: usize, context: Value) -> Result<Vec<Task>> {
    engine
        .register_template_value(&serde_json::to_value(template).unwrap_or(Value::Null))
        .await?;
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        tasks.push(
            engine
                .create_task(CreateTask::new(&template.namespace, &template.name, context.clone()))
                .await?,
        );
    }
    Ok(tasks)
}

/// Runs every step with handler key in `keys` with a handler that returns `{"ok": true, "step": name}`,
/// until nothing is left to do.
#[cfg(feature = "runtime")]
pub async fn run_noop_until_idle(engine: &Engine, keys: &[&str]) -> Result<WorkerStats> {
    let noop = handlers().remove(0).1;
    run_until_idle(engine, keys.iter().map(|k| (k.to_string(), noop.clone())).collect()).await
}

/// Runs the given handlers until nothing is left to do.
#[cfg(feature = "runtime")]
pub async fn run_until_idle(engine: &Engine, handlers: Vec<(String, Arc<dyn StepHandler>)>) -> Result<WorkerStats> {
    let mut worker = Worker::new(
        engine.clone(),
        WorkerConfig {
            worker_id: "testkit".into(),
            concurrency: 8,
            batch_size: 16,
            ..WorkerConfig::default()
        },
    );
    for (k, h) in handlers {
        worker.handle_arc(k, h);
    }
    worker.run_until_idle().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_retry_policy_is_a_validation_error() {
        let err = Pattern::Linear(2)
            .try_template_with("t", |_| "h".into(), json!({"jitter": false}))
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Validation);
        assert!(err.to_string().contains("defaults.retry.jitter"), "{err}");
    }

    #[test]
    fn shapes_have_the_expected_sizes() {
        assert_eq!(Pattern::Linear(5).template().steps.len(), 5);
        assert_eq!(Pattern::Diamond.template().steps.len(), 4);
        assert_eq!(Pattern::Parallel(6).template().steps.len(), 8);
        assert_eq!(Pattern::Tree { depth: 2, fanout: 3 }.template().steps.len(), 1 + 3 + 9);
        assert_eq!(Pattern::Mixed.template().steps.len(), 7);
        assert_eq!(Pattern::Mixed.template().levels()["publish"], 3);
    }
}
