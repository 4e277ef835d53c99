//! `tasker-bench`: measures end-to-end no-op throughput of the Rust worker, `explain` and `create_task` on
//! 1,000-step DAGs, and writes the figures into one store's section of a markdown file.
//!
//! Run it through `cargo xtask bench --store <sqlite|postgres>`, which builds it in release mode.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::json;
use tasker_core::analytics::HealthCounts;
use tasker_core::engine::{redact_url, ClaimRequest, CreateTask};
use tasker_core::testkit::{Pattern, NOOP_HANDLER};
use tasker_core::worker::{handler_fn, Worker, WorkerConfig};
use tasker_core::{Engine, EngineOptions, StepState, TaskState, Template};
use uuid::Uuid;

type BenchResult<T> = Result<T, Box<dyn StdError + Send + Sync>>;

const AIM_STEPS_PER_SECOND: f64 = 3_000.0;
const AIM_EXPLAIN_MS: f64 = 5.0;
/// Steps of the large DAG: `start`, 998 branches and `join`, the most a template may hold.
const WIDE_BRANCHES: usize = 998;
const LINEAR_STEPS: usize = 4;
/// (concurrency, batch size) of each B1 run.
const WORKER_SETTINGS: [(usize, u32); 2] = [(16, 32), (64, 64)];

#[derive(Parser, Debug)]
#[command(
    name = "tasker-bench",
    about = "Benchmarks Tasker Core and writes the figures to a markdown file"
)]
struct Args {
    /// The store to measure.
    #[arg(long, value_enum)]
    store: StoreArg,
    /// The markdown file whose section for this store is replaced.
    #[arg(long)]
    out: PathBuf,
    /// Smaller counts: checks that the bench runs, not how fast.
    #[arg(long)]
    quick: bool,
    /// The PostgreSQL URL (required with `--store postgres`).
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StoreArg {
    Sqlite,
    Postgres,
}

impl StoreArg {
    fn name(self) -> &'static str {
        match self {
            StoreArg::Sqlite => "sqlite",
            StoreArg::Postgres => "postgres",
        }
    }

    fn title(self) -> &'static str {
        match self {
            StoreArg::Sqlite => "SQLite",
            StoreArg::Postgres => "PostgreSQL",
        }
    }
}

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

/// Where each benchmark's engine comes from.
enum Target {
    /// A fresh database file per benchmark, so no run inherits the tables another run filled.
    Sqlite { dir: TempDir },
    /// One database for the whole run; benchmarks keep apart through their own namespaces and handler
    /// keys, and check their results as differences of counts.
    Postgres { url: String },
}

impl Target {
    async fn open(&self, label: &str) -> BenchResult<Engine> {
        let url = match self {
            Target::Sqlite { dir } => format!("sqlite://{}", dir.path.join(format!("{label}.db")).display()),
            Target::Postgres { url } => url.clone(),
        };
        Engine::connect(&url, EngineOptions::default())
            .await
            .map_err(|e| format!("cannot open the store at {}: {e}", redact_url(&url)).into())
    }

    fn describe(&self) -> String {
        match self {
            Target::Sqlite { .. } => "a fresh SQLite file per benchmark in a temporary directory (WAL journal, \
                 synchronous=NORMAL, as the store configures it)"
                .into(),
            Target::Postgres { url } => format!("one PostgreSQL database for the whole run ({})", redact_url(url)),
        }
    }
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

struct Row {
    benchmark: String,
    setting: String,
    result: String,
    aim: String,
    met: String,
}

impl Row {
    fn new(benchmark: impl Into<String>, setting: impl Into<String>, result: impl Into<String>) -> Row {
        Row {
            benchmark: benchmark.into(),
            setting: setting.into(),
            result: result.into(),
            aim: "—".into(),
            met: "—".into(),
        }
    }

    fn with_aim(mut self, aim: impl Into<String>, met: bool) -> Row {
        self.aim = aim.into();
        self.met = if met { "yes" } else { "no" }.into();
        self
    }
}

/// Latencies in milliseconds, summarised with nearest-rank percentiles as `tasker_core::analytics` does,
/// but kept fractional: whole milliseconds would hide the difference that matters against a 5 ms aim.
struct Latency {
    p50: f64,
    p95: f64,
    mean: f64,
}

impl Latency {
    fn of(samples: &[Duration]) -> Latency {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1_000.0).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len().max(1);
        let rank = |p: f64| {
            ms.get(((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1)
                .copied()
                .unwrap_or(0.0)
        };
        Latency {
            p50: rank(50.0),
            p95: rank(95.0),
            mean: ms.iter().sum::<f64>() / n as f64,
        }
    }

    fn show(&self) -> String {
        format!(
            "p50 {:.2} ms · p95 {:.2} ms · mean {:.2} ms",
            self.p50, self.p95, self.mean
        )
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tasker-bench: error: {e}");
            eprintln!("tasker-bench: nothing was written to {}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> BenchResult<()> {
    let target = match (args.store, &args.database_url) {
        (StoreArg::Sqlite, None) => Target::Sqlite { dir: TempDir::new()? },
        (StoreArg::Sqlite, Some(_)) => {
            return Err(
                "--database-url is only for --store postgres; the SQLite bench always uses fresh files \
                 in a temporary directory"
                    .into(),
            )
        }
        (StoreArg::Postgres, None) => return Err("--store postgres requires --database-url postgres://…".into()),
        (StoreArg::Postgres, Some(url)) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(format!("--database-url must be a postgres:// URL, found {}", redact_url(url)).into());
            }
            Target::Postgres { url: url.clone() }
        }
    };
    // Fail on a bad output path before spending minutes measuring.
    let existing = read_existing(&args.out)?;
    let sizes = Sizes::new(args.quick);
    let started = chrono::Utc::now();
    let mut rows = Vec::new();

    for (concurrency, batch) in WORKER_SETTINGS {
        rows.extend(bench_worker(&target, &sizes, concurrency, batch).await?);
    }
    rows.extend(bench_explain(&target, &sizes).await?);
    rows.push(bench_create(&target, &sizes).await?);

    let table = render_table(&rows);
    let section = render_section(args, &target, &sizes, started, &table);
    let doc = splice(existing.as_deref(), args.store.name(), &section)?;
    write_atomically(&args.out, &doc)?;
    println!("{table}");
    eprintln!(
        "tasker-bench: wrote the {} section of {}",
        args.store.name(),
        args.out.display()
    );
    Ok(())
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

fn count(map: &std::collections::BTreeMap<String, i64>, state: &str) -> i64 {
    map.get(state).copied().unwrap_or(0)
}

fn describe_counts(h: &HealthCounts) -> String {
    let nonzero = |m: &std::collections::BTreeMap<String, i64>| {
        m.iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("tasks [{}], steps [{}]", nonzero(&h.tasks), nonzero(&h.steps))
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

// ------------------------------------------------------------------------------------------------ report

fn render_table(rows: &[Row]) -> String {
    let mut s = String::from("| Benchmark | Setting | Result | Aim | Met? |\n|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.benchmark, r.setting, r.result, r.aim, r.met
        );
    }
    s
}

fn render_section(
    args: &Args,
    target: &Target,
    sizes: &Sizes,
    started: chrono::DateTime<chrono::Utc>,
    table: &str,
) -> String {
    let store = args.store;
    let quick = if args.quick { " --quick" } else { "" };
    let profile = if cfg!(debug_assertions) {
        "debug (figures are not meaningful)"
    } else {
        "release"
    };
    let mut s = String::new();
    let _ = writeln!(s, "{}", start_marker(store.name()));
    let _ = writeln!(s, "## {}\n", store.title());
    if args.quick {
        let _ = writeln!(
            s,
            "> Quick run: smaller counts, meant to check that the bench works. Do not compare.\n"
        );
    }
    let _ = writeln!(s, "- Command: `cargo xtask bench --store {}{quick}`", store.name());
    let _ = writeln!(s, "- Date: {}", started.format("%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(s, "- Machine: {}", machine());
    let _ = writeln!(s, "- Toolchain: {}; build profile: {profile}", rustc_version());
    let _ = writeln!(s, "- Store: {}", target.describe());
    let _ = writeln!(s, "\n{table}");
    let _ = writeln!(s, "How each figure is taken:\n");
    let _ = writeln!(
        s,
        "- **B1**: {} tasks of `linear_{LINEAR_STEPS}` (four steps in a chain) are created one `create_task` call at a \
         time (timed on its own), then one in-process `Worker` with a no-op handler runs `run_until_idle`; the \
         time is from its start until it returns idle. Steps/s is steps completed ÷ that time. Afterwards \
         `health_counts` must show every task and step complete, or the run fails. Engine defaults (pool of {} \
         connections).",
        thousands(sizes.linear_tasks as f64),
        EngineOptions::default().max_connections
    );
    let _ = writeln!(
        s,
        "- **B2**: `explain` of one task of `parallel_{WIDE_BRANCHES}` (`start`, {WIDE_BRANCHES} branches, `join`: \
         1,000 steps). The half-way task has `start` and half the branches completed through real claims and \
         completions, so `explain` sees complete, ready and blocked steps. Met? is judged on p95."
    );
    let _ = writeln!(
        s,
        "- **B3**: `create_task` of the same 1,000-step template, each call timed on its own, in one transaction \
         per task."
    );
    let _ = writeln!(
        s,
        "- Percentiles are nearest-rank over all timed runs, in fractional milliseconds."
    );
    let _ = writeln!(s, "{}", end_marker(store.name()));
    s
}

fn start_marker(store: &str) -> String {
    format!("<!-- bench:{store}:start -->")
}

fn end_marker(store: &str) -> String {
    format!("<!-- bench:{store}:end -->")
}

fn read_existing(path: &Path) -> BenchResult<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            Ok(None)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display()).into()),
    }
}

/// The document with this store's section replaced, or appended when it has none; other stores'
/// sections and any hand-written text are kept as they are.
fn splice(existing: Option<&str>, store: &str, section: &str) -> BenchResult<String> {
    let doc = existing.map(str::to_string).unwrap_or_else(|| {
        "# Benchmarks\n\nEvery figure below comes from a run of `tasker-bench`; reproduce one with \
         `cargo xtask bench --store sqlite` (or `--store postgres`), which replaces that store's section and \
         keeps the rest of this file.\n"
            .to_string()
    });
    let (start, end) = (start_marker(store), end_marker(store));
    match (doc.find(&start), doc.find(&end)) {
        (Some(a), Some(b)) if a < b => {
            let b = b + end.len();
            let rest = doc[b..].strip_prefix('\n').unwrap_or(&doc[b..]);
            Ok(format!("{}{section}{rest}", &doc[..a]))
        }
        (None, None) => {
            let sep = if doc.ends_with("\n\n") {
                ""
            } else if doc.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            Ok(format!("{doc}{sep}{section}"))
        }
        _ => Err(format!("the {store} markers in the output file are unbalanced; fix them by hand").into()),
    }
}

fn write_atomically(path: &Path, text: &str) -> BenchResult<()> {
    let tmp = path.with_extension(format!("md.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot replace {}: {e}", path.display()).into()
    })
}

// ------------------------------------------------------------------------------------------------ machine

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let online = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let available = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let cores = if online > 0 {
        format!("{available} logical CPUs available to the process ({online} online)")
    } else {
        format!("{available} logical CPUs available to the process")
    };
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| format!("{:.1} GiB memory", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown memory".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("Linux {}", k.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    format!("{model}, {cores}, {memory}, {kernel}")
}

fn rustc_version() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "rustc version unknown (`rustc --version` failed)".into())
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `12345.6` as `12,346`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_creates_replaces_and_keeps_other_sections() {
        let first = splice(
            None,
            "sqlite",
            "<!-- bench:sqlite:start -->\nA\n<!-- bench:sqlite:end -->\n",
        )
        .unwrap();
        assert!(first.starts_with("# Benchmarks\n"));
        assert!(first.ends_with("\n\n<!-- bench:sqlite:start -->\nA\n<!-- bench:sqlite:end -->\n"));

        let pg = "<!-- bench:postgres:start -->\nP\n<!-- bench:postgres:end -->\n";
        let both = splice(Some(&first), "postgres", pg).unwrap();
        let both = format!("{both}\nHand-written notes.\n");
        let replaced = splice(
            Some(&both),
            "sqlite",
            "<!-- bench:sqlite:start -->\nB\n<!-- bench:sqlite:end -->\n",
        )
        .unwrap();
        assert_eq!(replaced, both.replace("\nA\n", "\nB\n"));
        // Replacing with the same section is a fixed point: no blank lines pile up.
        assert_eq!(splice(Some(&replaced), "postgres", pg).unwrap(), replaced);

        let broken = "# Benchmarks\n<!-- bench:sqlite:start -->\nA\n";
        assert!(splice(Some(broken), "sqlite", "x").is_err());
    }

    #[test]
    fn latency_uses_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let l = Latency::of(&samples);
        assert_eq!((l.p50, l.p95), (50.0, 95.0));
        assert!((l.mean - 50.5).abs() < 1e-9);
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.6), "1,234,568");
    }
}
