//! B1–B3 on SQLite: end-to-end no-op throughput of the in-process Rust worker, `explain` and `create_task`
//! on 1,000-step DAGs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use tasker_core::engine::{ClaimRequest, CreateTask};
use tasker_core::testkit::{Pattern, NOOP_HANDLER};
use tasker_core::worker::{handler_fn, Worker, WorkerConfig};
use tasker_core::{Engine, EngineOptions, StepState, TaskState, Template};
use uuid::Uuid;

use crate::{count, describe_counts, plural, thousands, BenchResult, Latency, Report, Row};

const AIM_STEPS_PER_SECOND: f64 = 3_000.0;
const AIM_EXPLAIN_MS: f64 = 5.0;
/// Steps of the large DAG: `start`, 998 branches and `join`, the most a template may hold.
const WIDE_BRANCHES: usize = 998;
const LINEAR_STEPS: usize = 4;
/// (concurrency, batch size) of each B1 run.
const WORKER_SETTINGS: [(usize, u32); 2] = [(16, 32), (64, 64)];

struct Sizes {
    linear_tasks: usize,
    explain_warmups: usize,
    explain_runs: usize,
    create_warmups: usize,
    create_runs: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                linear_tasks: 200,
                explain_warmups: 5,
                explain_runs: 50,
                create_warmups: 1,
                create_runs: 10,
            }
        } else {
            Sizes {
                linear_tasks: 2_000,
                explain_warmups: 10,
                explain_runs: 200,
                create_warmups: 2,
                create_runs: 50,
            }
        }
    }
}

/// A fresh database file per benchmark, so no run inherits the tables another run filled.
struct Target {
    dir: TempDir,
}

impl Target {
    async fn open(&self, label: &str) -> BenchResult<Engine> {
        let url = format!("sqlite://{}", self.dir.path.join(format!("{label}.db")).display());
        Engine::connect(&url, EngineOptions::default())
            .await
            .map_err(|e| format!("cannot open the store at {}: {e}", tasker_core::url::redact(&url)).into())
    }
}

/// Runs B1–B3, each on a fresh SQLite file in a temporary directory.
pub async fn run(quick: bool) -> BenchResult<Report> {
    let target = Target { dir: TempDir::new()? };
    let sizes = Sizes::new(quick);
    let mut rows = Vec::new();
    for (concurrency, batch) in WORKER_SETTINGS {
        rows.extend(bench_worker(&target, &sizes, concurrency, batch).await?);
    }
    rows.extend(bench_explain(&target, &sizes).await?);
    rows.push(bench_create(&target, &sizes).await?);
    Ok(Report {
        details: vec![
            "Store: a fresh SQLite file per benchmark in a temporary directory (WAL journal, synchronous=NORMAL, \
             as the store configures it)"
                .into(),
        ],
        rows,
        notes: notes(&sizes),
        after: Vec::new(),
    })
}

fn notes(sizes: &Sizes) -> Vec<String> {
    vec![
        format!(
            "**B1**: {} tasks of `linear_{LINEAR_STEPS}` (four steps in a chain) are created one `create_task` call \
             at a time (timed on its own), then one in-process `Worker` with a no-op handler runs \
             `run_until_idle`; the time is from its start until it returns idle. Steps/s is steps completed ÷ that \
             time. Afterwards `health_counts` must show every task and step complete, or the run fails. Engine \
             defaults (pool of {} connections).",
            thousands(sizes.linear_tasks as f64),
            EngineOptions::default().max_connections
        ),
        format!(
            "**B2**: `explain` of one task of `parallel_{WIDE_BRANCHES}` (`start`, {WIDE_BRANCHES} branches, \
             `join`: 1,000 steps). The half-way task has `start` and half the branches completed through real \
             claims and completions, so `explain` sees complete, ready and blocked steps. Met? is judged on p95."
        ),
        "**B3**: `create_task` of the same 1,000-step template, each call timed on its own, in one transaction \
         per task."
            .into(),
        "Percentiles are nearest-rank over all timed runs, in fractional milliseconds.".into(),
    ]
}

/// A directory removed when dropped, so an aborted run leaves no database files behind.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> BenchResult<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "tasker-bench-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ------------------------------------------------------------------------------------------------ B1

async fn bench_worker(target: &Target, sizes: &Sizes, concurrency: usize, batch: u32) -> BenchResult<Vec<Row>> {
    let label = format!("b1-c{concurrency}-b{batch}");
    let engine = target.open(&label).await?;
    let template = Pattern::Linear(LINEAR_STEPS).template();
    engine
        .register_template_value(&serde_json::to_value(&template)?)
        .await?;
    let tasks = sizes.linear_tasks;
    let steps = (tasks * LINEAR_STEPS) as i64;
    let before = engine.health_counts().await?;

    eprintln!("tasker-bench: B1 {label}: creating {tasks} tasks of {}", template.name);
    let t = Instant::now();
    for _ in 0..tasks {
        engine
            .create_task(CreateTask::new(&template.namespace, &template.name, json!({})))
            .await?;
    }
    let create_secs = t.elapsed().as_secs_f64();

    eprintln!("tasker-bench: B1 {label}: running {steps} no-op steps");
    let mut worker = Worker::new(
        engine.clone(),
        WorkerConfig {
            worker_id: format!("bench-{label}"),
            concurrency,
            batch_size: batch,
            ..WorkerConfig::default()
        },
    );
    worker.handle(NOOP_HANDLER, handler_fn(|_| async { Ok(json!({})) }));
    let t = Instant::now();
    let stats = worker.run_until_idle().await?;
    let run_secs = t.elapsed().as_secs_f64();

    // A figure from a run that lost or failed steps would measure something else; refuse to report it.
    let after = engine.health_counts().await?;
    let tasks_done =
        count(&after.tasks, TaskState::Complete.as_str()) - count(&before.tasks, TaskState::Complete.as_str());
    let steps_done =
        count(&after.steps, StepState::Complete.as_str()) - count(&before.steps, StepState::Complete.as_str());
    let new_tasks = after.total_tasks - before.total_tasks;
    if new_tasks != tasks as i64 || tasks_done != tasks as i64 || steps_done != steps {
        return Err(format!(
            "B1 {label}: the worker went idle with {tasks_done}/{tasks} tasks and {steps_done}/{steps} steps \
             complete; store counts: {}",
            describe_counts(&after)
        )
        .into());
    }
    if stats.failed != 0 || stats.rejected != 0 || stats.succeeded != steps as u64 {
        return Err(format!("B1 {label}: unexpected worker stats {stats:?} for {steps} no-op steps").into());
    }
    engine.close().await;

    let workload = format!(
        "{} × {} ({} steps)",
        thousands(tasks as f64),
        template.name,
        thousands(steps as f64)
    );
    let rate = steps_done as f64 / run_secs;
    Ok(vec![
        Row::new(
            "B1 create_task",
            format!("{workload}, one call at a time, before the c{concurrency}/b{batch} run"),
            format!(
                "{} tasks/s ({:.2} s)",
                thousands(tasks as f64 / create_secs),
                create_secs
            ),
        ),
        Row::new(
            "B1 no-op steps end to end",
            format!("{workload}, worker concurrency {concurrency}, batch {batch}"),
            format!("{} steps/s ({:.2} s)", thousands(rate), run_secs),
        )
        .with_aim(
            format!("≥ {} steps/s", thousands(AIM_STEPS_PER_SECOND)),
            rate >= AIM_STEPS_PER_SECOND,
        ),
    ])
}

// ------------------------------------------------------------------------------------------------ B2

/// The 1,000-step DAG in its own namespace and handler key, so claims for one benchmark never take
/// steps of another when they share a database.
fn wide_template(namespace: &str) -> Template {
    let key = format!("{namespace}.noop");
    Pattern::Parallel(WIDE_BRANCHES).template_with(
        namespace,
        |_| key.clone(),
        json!({"max_attempts": 3, "backoff": "none"}),
    )
}

async fn bench_explain(target: &Target, sizes: &Sizes) -> BenchResult<Vec<Row>> {
    let engine = target.open("b2-explain").await?;
    let fresh_t = wide_template("bench_explain");
    let half_t = wide_template("bench_explain_half");
    for t in [&fresh_t, &half_t] {
        engine.register_template_value(&serde_json::to_value(t)?).await?;
    }
    let steps = fresh_t.steps.len();
    let fresh = engine
        .create_task(CreateTask::new(&fresh_t.namespace, &fresh_t.name, json!({})))
        .await?;
    let half = engine
        .create_task(CreateTask::new(&half_t.namespace, &half_t.name, json!({})))
        .await?;
    let half_done = advance_half_way(&engine, &half_t, half.id).await?;

    let runs = format!(
        "{} runs after {}",
        sizes.explain_runs,
        plural(sizes.explain_warmups, "warm-up")
    );
    let size = format!("{} steps", thousands(steps as f64));
    let cases = [
        (fresh.id, format!("{} ({size}), fresh task; {runs}", fresh_t.name)),
        (
            half.id,
            format!(
                "{} ({size}), task half-way through ({half_done} steps complete); {runs}",
                half_t.name
            ),
        ),
    ];
    let mut rows = Vec::new();
    for (task_id, setting) in cases {
        eprintln!("tasker-bench: B2 explain: {setting}");
        let lat = time_explain(&engine, task_id, steps, sizes).await?;
        rows.push(
            Row::new("B2 explain", setting, lat.show())
                .with_aim(format!("≤ {AIM_EXPLAIN_MS} ms (p95)"), lat.p95 <= AIM_EXPLAIN_MS),
        );
    }
    engine.close().await;
    Ok(rows)
}

/// Completes `start` and then half the branches, through real claims, so `explain` sees a mix of
/// complete, ready and blocked steps. Returns how many steps are complete.
async fn advance_half_way(engine: &Engine, template: &Template, task_id: Uuid) -> BenchResult<usize> {
    let target_done = template.steps.len() / 2;
    let req = |limit: u32| ClaimRequest {
        worker_id: "bench-explain".into(),
        handler_keys: vec![template.steps[0].handler.clone()],
        limit,
        lease: Duration::from_secs(300),
    };
    // Only `start` is ready at first; the branches become ready once it completes.
    for limit in [1, (target_done - 1) as u32] {
        let claimed = engine.claim(&req(limit)).await?;
        if claimed.len() != limit as usize || claimed.iter().any(|c| c.task_id != task_id) {
            return Err(format!(
                "B2: expected to claim {limit} steps of task {task_id}, got {}",
                claimed.len()
            )
            .into());
        }
        let results = engine
            .complete_many(claimed.into_iter().map(|c| (c.token, json!({}))).collect())
            .await?;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            return Err(format!("B2: completing a claimed step failed: {e}").into());
        }
    }
    let done = engine
        .explain(task_id)
        .await?
        .steps
        .iter()
        .filter(|s| s.state == StepState::Complete)
        .count();
    if done != target_done {
        return Err(format!("B2: expected {target_done} complete steps half-way, found {done}").into());
    }
    Ok(done)
}

async fn time_explain(engine: &Engine, task_id: Uuid, steps: usize, sizes: &Sizes) -> BenchResult<Latency> {
    for _ in 0..sizes.explain_warmups {
        let ex = engine.explain(task_id).await?;
        if ex.steps.len() != steps {
            return Err(format!("B2: explain returned {} steps, expected {steps}", ex.steps.len()).into());
        }
    }
    let mut samples = Vec::with_capacity(sizes.explain_runs);
    for _ in 0..sizes.explain_runs {
        let t = Instant::now();
        let ex = engine.explain(task_id).await?;
        samples.push(t.elapsed());
        std::hint::black_box(ex);
    }
    Ok(Latency::of(&samples))
}

// ------------------------------------------------------------------------------------------------ B3

async fn bench_create(target: &Target, sizes: &Sizes) -> BenchResult<Row> {
    let engine = target.open("b3-create").await?;
    let template = wide_template("bench_create");
    engine
        .register_template_value(&serde_json::to_value(&template)?)
        .await?;
    let steps = template.steps.len();
    let req = || CreateTask::new(&template.namespace, &template.name, json!({}));
    eprintln!("tasker-bench: B3 create_task of {steps} steps × {}", sizes.create_runs);
    for _ in 0..sizes.create_warmups {
        engine.create_task(req()).await?;
    }
    let mut samples = Vec::with_capacity(sizes.create_runs);
    for _ in 0..sizes.create_runs {
        let t = Instant::now();
        let task = engine.create_task(req()).await?;
        samples.push(t.elapsed());
        if task.steps_total != steps as i64 {
            return Err(format!("B3: created a task of {} steps, expected {steps}", task.steps_total).into());
        }
    }
    engine.close().await;
    let lat = Latency::of(&samples);
    Ok(Row::new(
        "B3 create_task",
        format!(
            "{} ({} steps, {} edges), {} creations after {}",
            template.name,
            thousands(steps as f64),
            thousands((2 * WIDE_BRANCHES) as f64),
            sizes.create_runs,
            plural(sizes.create_warmups, "warm-up")
        ),
        lat.show(),
    ))
}
