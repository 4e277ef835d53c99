//! `tasker demo`: registers the example workflows, creates tasks of them, runs them in-process with the
//! example handlers and summarizes what the engine recorded.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tasker_core::engine::{CreateTask, DependencyLevel, ExecutionContext};
use tasker_core::events::{Event, EventFilter};
use tasker_core::readiness::Explain;
use tasker_core::worker::{default_worker_id, Worker, WorkerConfig, WorkerStats};
use tasker_core::{Engine, StepState, Task, TaskState};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::analytics::metrics_table;
use super::{shutdown_signal, Ctx};
use crate::cli::DemoArgs;
use crate::error::{CliError, CliResult, EXIT_FAILURE, EXIT_INTERRUPTED};
use crate::output::{explain_table, print_json, snake, states_table, table};
use crate::{examples, handlers};

/// The workflows demo tasks are spread over, in turn.
const WORKFLOWS: [(&str, &str); 3] = [
    ("ecommerce", "order_fulfillment"),
    ("data", "etl_pipeline"),
    ("reports", "regional_report"),
];

/// Task events after which a task does no more work unless an operator acts.
const TERMINAL_EVENTS: [&str; 4] = [
    "task.completed",
    "task.failed",
    "task.cancelled",
    "task.resolved_manually",
];

pub async fn run(ctx: &Ctx, args: DemoArgs) -> CliResult {
    let engine = ctx.engine().await?;
    let out = demo(ctx, &engine, &args).await;
    engine.close().await;
    out
}

async fn demo(ctx: &Ctx, engine: &Engine, args: &DemoArgs) -> CliResult {
    let n = args.tasks as usize;
    let concurrency = args.concurrency as usize;
    examples::register_all(engine).await?;
    let since = engine.now();

    let bar = progress_bar(n as u64, "creating", "tasks");
    let run_tag = radix36(since.timestamp_millis().unsigned_abs());
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(engine.create_task(demo_task(i, &run_tag)).await?.id);
        bar.inc(1);
    }
    bar.finish_and_clear();

    // Subscribed only now: creation events are of no interest, and they would fill the buffer.
    let mut events = engine.subscribe(EventFilter {
        task_id: None,
        names: vec!["task".into(), "step.retry_scheduled".into()],
    });
    let mut worker = Worker::new(
        engine.clone(),
        WorkerConfig {
            worker_id: format!("demo-{}", default_worker_id()),
            concurrency,
            batch_size: concurrency.clamp(1, 64) as u32,
            ..WorkerConfig::default()
        },
    );
    handlers::register_examples(&mut worker);

    let bar = progress_bar(n as u64, "running", "tasks finished");
    let mut tracker = Tracker::new(&ids);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let worker_run = worker.run(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    tokio::pin!(worker_run);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut interrupted = false;
    let mut finished = false;
    let stats = loop {
        tokio::select! {
            r = &mut worker_run => break r?,
            e = events.next(Duration::from_millis(250)), if !finished => {
                let quiet = e.is_none();
                if let Some(e) = e {
                    tracker.on_event(&e);
                }
                // The bus drops events when a subscriber falls behind, and a quiet spell may hide a missed
                // one: then the store, not the event stream, says which tasks are done. At most once a
                // second, since it costs a query per unfinished task.
                let suspect = events.dropped() > tracker.dropped_seen || quiet;
                if suspect && tracker.last_reconcile.elapsed() >= Duration::from_secs(1) {
                    tracker.dropped_seen = events.dropped();
                    tracker.reconcile(engine).await?;
                }
                bar.set_position((n - tracker.remaining.len()) as u64);
                bar.set_message(format!("{} retries", tracker.retries));
                if tracker.remaining.is_empty() {
                    finished = true;
                    let _ = stop_tx.send(true);
                }
            }
            _ = &mut signal, if !interrupted => {
                interrupted = true;
                bar.println("interrupted: letting running steps finish, then stopping");
                let _ = stop_tx.send(true);
            }
        }
    };
    bar.finish_and_clear();

    let summary = summarize(ctx, engine, &ids, since, args, stats, interrupted).await?;
    if ctx.json {
        print_json(&summary)?;
    } else {
        print_summary(&summary);
    }
    let complete = summary.tasks_by_state.get(&TaskState::Complete).copied().unwrap_or(0) as usize;
    if interrupted && complete < n {
        return Err(CliError::new(
            EXIT_INTERRUPTED,
            format!("interrupted with {complete} of {n} demo tasks complete; the rest stay queued for `tasker worker`"),
        ));
    }
    if complete < n {
        return Err(CliError::new(
            EXIT_FAILURE,
            format!(
                "{} of {n} demo tasks did not complete; see `tasker task list --state error`",
                n - complete
            ),
        ));
    }
    Ok(())
}

fn progress_bar(len: u64, verb: &str, noun: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!(
        "{{spinner:.green}} {verb} [{{elapsed_precise}}] [{{wide_bar:.cyan/blue}}] {{pos}}/{{len}} {noun} {{msg}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Which demo tasks are not finished yet, from task events, corrected from the store when events are lost.
struct Tracker {
    ours: HashSet<Uuid>,
    remaining: HashSet<Uuid>,
    retries: u64,
    dropped_seen: u64,
    last_reconcile: Instant,
}

impl Tracker {
    fn new(ids: &[Uuid]) -> Self {
        let ours: HashSet<Uuid> = ids.iter().copied().collect();
        Tracker {
            remaining: ours.clone(),
            ours,
            retries: 0,
            dropped_seen: 0,
            last_reconcile: Instant::now(),
        }
    }

    fn on_event(&mut self, e: &Event) {
        if !self.ours.contains(&e.task_id) {
            return;
        }
        if e.name == "step.retry_scheduled" {
            self.retries += 1;
        } else if TERMINAL_EVENTS.contains(&e.name.as_str()) {
            self.remaining.remove(&e.task_id);
        }
    }

    async fn reconcile(&mut self, engine: &Engine) -> CliResult {
        let mut done = Vec::new();
        for id in &self.remaining {
            if engine.task(*id).await?.state.is_terminal() {
                done.push(*id);
            }
        }
        for id in done {
            self.remaining.remove(&id);
        }
        self.last_reconcile = Instant::now();
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------ contexts

/// Bytes that vary with `i`, so that every task gets a different but reproducible context.
fn seed(kind: &str, i: usize) -> [u8; 32] {
    Sha256::digest(format!("{kind}:{i}").as_bytes()).into()
}

fn radix36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The `i`-th demo task: the workflows take turns, each with a valid context.
fn demo_task(i: usize, run_tag: &str) -> CreateTask {
    const CURRENCIES: [&str; 3] = ["USD", "EUR", "GBP"];
    let (namespace, name) = WORKFLOWS[i % WORKFLOWS.len()];
    let s = seed(name, i);
    let context = match name {
        "order_fulfillment" => {
            const CATALOG: [(&str, u64); 8] = [
                ("sku-kettle", 3_499),
                ("sku-mug", 1_250),
                ("sku-teapot", 5_900),
                ("sku-beans-1kg", 2_400),
                ("sku-grinder", 8_900),
                ("sku-filter", 650),
                ("sku-scale", 4_200),
                ("sku-tin", 1_100),
            ];
            let lines = 1 + (s[0] % 4) as usize;
            let items: Vec<Value> = (0..lines)
                .map(|k| {
                    let (sku, price) = CATALOG[(s[1] as usize + k * 3) % CATALOG.len()];
                    json!({"sku": sku, "quantity": 1 + s[2 + k] % 3, "unit_price_cents": price})
                })
                .collect();
            json!({
                "order_id": format!("ord-{run_tag}-{i:06}"),
                "customer_email": format!("customer{}@example.com", u16::from_be_bytes([s[8], s[9]])),
                "currency": CURRENCIES[s[10] as usize % 3],
                "items": items,
            })
        }
        "etl_pipeline" => {
            const SOURCES: [&str; 3] = ["orders_db", "clickstream", "crm_export"];
            json!({
                "source": SOURCES[s[0] as usize % 3],
                "batch_id": i + 1,
                "record_count": 20 + u64::from(s[1]) % 80,
            })
        }
        _ => {
            let base = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
            let date = base
                .checked_add_days(Days::new((i / WORKFLOWS.len()) as u64 % 365))
                .unwrap_or(base);
            json!({
                "report_date": date.format("%Y-%m-%d").to_string(),
                "currency": CURRENCIES[s[0] as usize % 3],
                "sample_size": 20 + u64::from(s[1]) % 60,
            })
        }
    };
    CreateTask {
        tags: Some(json!({"demo_run": run_tag})),
        source_system: Some("tasker-demo".into()),
        ..CreateTask::new(namespace, name, context)
    }
}

// ------------------------------------------------------------------------------------------ summary

#[derive(Serialize)]
struct WorkflowRow {
    template: String,
    tasks: i64,
    complete: i64,
    steps: i64,
    /// Steps that needed more than one attempt.
    retried_steps: i64,
    /// Attempts beyond the first, over all steps.
    extra_attempts: i64,
}

#[derive(Serialize)]
struct ExplainedTask {
    task: Task,
    execution_context: ExecutionContext,
    explain: Explain,
    dependency_levels: Vec<DependencyLevel>,
}

#[derive(Serialize)]
struct Summary {
    database_url: String,
    tasks_created: usize,
    concurrency: usize,
    interrupted: bool,
    workflows: Vec<WorkflowRow>,
    tasks_by_state: BTreeMap<TaskState, i64>,
    steps_by_state: BTreeMap<StepState, i64>,
    worker: WorkerStats,
    /// The engine's analytics of all work finished since the demo started.
    metrics: tasker_core::analytics::AnalyticsMetrics,
    explained: Option<ExplainedTask>,
}

async fn summarize(
    ctx: &Ctx,
    engine: &Engine,
    ids: &[Uuid],
    since: tasker_core::Timestamp,
    args: &DemoArgs,
    worker: WorkerStats,
    interrupted: bool,
) -> CliResult<Summary> {
    let mut tasks_by_state: BTreeMap<TaskState, i64> = BTreeMap::new();
    let mut steps_by_state: BTreeMap<StepState, i64> = BTreeMap::new();
    let mut rows: BTreeMap<String, WorkflowRow> = BTreeMap::new();
    // The task to explain: preferably a diamond whose steps needed retries, since it shows the most.
    let mut pick: Option<(u8, Uuid)> = None;
    for &id in ids {
        let task = engine.task(id).await?;
        let steps = engine.steps(id).await?;
        *tasks_by_state.entry(task.state).or_default() += 1;
        let key = format!("{}/{}@{}", task.namespace, task.name, task.version);
        let row = rows.entry(key.clone()).or_insert_with(|| WorkflowRow {
            template: key,
            tasks: 0,
            complete: 0,
            steps: 0,
            retried_steps: 0,
            extra_attempts: 0,
        });
        row.tasks += 1;
        row.complete += i64::from(task.state == TaskState::Complete);
        let mut retried = false;
        for s in &steps {
            *steps_by_state.entry(s.state).or_default() += 1;
            row.steps += 1;
            if s.attempts > 1 {
                retried = true;
                row.retried_steps += 1;
                row.extra_attempts += s.attempts - 1;
            }
        }
        let score = match (
            task.state != TaskState::Complete,
            retried,
            task.name == "order_fulfillment",
        ) {
            (true, _, _) => 3,
            (false, true, true) => 2,
            (false, true, false) => 1,
            _ => 0,
        };
        if pick.is_none_or(|(best, _)| score > best) {
            pick = Some((score, id));
        }
    }
    let explained = match pick {
        Some((_, id)) => Some(ExplainedTask {
            task: engine.task(id).await?,
            execution_context: engine.execution_context(id).await?,
            explain: engine.explain(id).await?,
            dependency_levels: engine.dependency_levels(id).await?,
        }),
        None => None,
    };
    Ok(Summary {
        database_url: ctx.redacted_url(),
        tasks_created: ids.len(),
        concurrency: args.concurrency as usize,
        interrupted,
        workflows: rows.into_values().collect(),
        tasks_by_state,
        steps_by_state,
        worker,
        metrics: engine.analytics_metrics(since).await?,
        explained,
    })
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn print_summary(s: &Summary) {
    let complete = s.tasks_by_state.get(&TaskState::Complete).copied().unwrap_or(0);
    outln!(
        "Demo: {} over {}, {} at a time, on {}",
        plural(s.tasks_created, "task"),
        plural(s.workflows.len(), "workflow"),
        plural(s.concurrency, "handler"),
        s.database_url
    );
    if complete as usize == s.tasks_created {
        outln!("All {} complete.", plural(s.tasks_created, "task"));
    } else {
        outln!("{complete} of {} complete.", plural(s.tasks_created, "task"));
    }
    outln!();

    outln!("Workflows");
    let mut t = table(
        &[
            "workflow",
            "tasks",
            "complete",
            "steps",
            "retried steps",
            "extra attempts",
        ],
        &[1, 2, 3, 4, 5],
    );
    for w in &s.workflows {
        t.add_row(vec![
            w.template.clone(),
            w.tasks.to_string(),
            w.complete.to_string(),
            w.steps.to_string(),
            w.retried_steps.to_string(),
            w.extra_attempts.to_string(),
        ]);
    }
    outln!("{t}\n");

    outln!("Demo tasks and steps by state");
    let tasks = |st: TaskState| s.tasks_by_state.get(&st).copied().unwrap_or(0);
    let steps = |st: StepState| s.steps_by_state.get(&st).copied().unwrap_or(0);
    outln!("{}", states_table(&tasks, &steps));
    outln!(
        "worker: {} attempts claimed, {} succeeded, {} failed, {} outcomes rejected as stale\n",
        s.worker.claimed,
        s.worker.succeeded,
        s.worker.failed,
        s.worker.rejected
    );

    outln!("Analytics of work finished since the demo started");
    outln!("{}\n", metrics_table(&s.metrics));

    if let Some(x) = &s.explained {
        let t = &x.task;
        let e = &x.execution_context;
        outln!(
            "Explain of task {} ({}/{}@{}): {}, {}, next: {}",
            t.id,
            t.namespace,
            t.name,
            t.version,
            t.state,
            snake(&e.execution_status),
            snake(&e.recommended_action)
        );
        outln!("{}", explain_table(&x.explain, &x.dependency_levels));
        outln!(
            "More: tasker task show {0} | tasker task explain {0} | tasker analytics",
            t.id
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker_core::Template;

    #[test]
    fn every_demo_context_satisfies_its_input_schema() {
        let templates: Vec<Template> = examples::TEMPLATES
            .iter()
            .map(|(_, text)| Template::parse(text).expect("example template"))
            .collect();
        for i in 0..300 {
            let req = demo_task(i, "abc123");
            let t = templates
                .iter()
                .find(|t| t.namespace == req.namespace && t.name == req.name)
                .expect("workflow");
            t.validate_context(&req.context)
                .unwrap_or_else(|e| panic!("task {i}: {e}"));
        }
    }

    #[test]
    fn radix36_digits() {
        assert_eq!(radix36(0), "0");
        assert_eq!(radix36(35), "z");
        assert_eq!(radix36(36), "10");
    }
}
