//! P1, P3, P4 and P6 on PostgreSQL, each in a fresh database `tasker_bench_…` created on the server the
//! `--database-url` names and dropped afterwards.
//!
//! - P1: no-op steps/s end to end, with 1 and 4 `tasker worker --testkit` processes and with one in-process
//!   `Worker`, at concurrency 64 and batch sizes 32 and 64.
//! - P3: ready→handler-start latency at low load, through LISTEN/NOTIFY: the worker runs on a second
//!   `Engine` (its own pool and listener connection), so the in-process wake-up cannot reach it.
//! - P4: create→complete of a 4-step linear task, observed through the worker engine's `task.completed`
//!   events.
//! - P6: in-process throughput on a database holding ~10k finished steps, and again after growing it towards
//!   1,000,000 finished steps within a time limit.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};
use tasker_core::engine::CreateTask;
use tasker_core::events::EventFilter;
use tasker_core::testkit::{Pattern, NOOP_HANDLER};
use tasker_core::worker::{handler_fn, Worker, WorkerConfig, WorkerStats};
use tasker_core::{Engine, EngineOptions, StepState, TaskFilter, TaskState, Template, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::cpu::{CpuProbe, CpuUsage};
use crate::{count, describe_counts, plural, thousands, BenchResult, Latency, Report, Row};

const AIM_P1_STEPS_PER_SECOND: f64 = 10_000.0;
const AIM_P3_P50_MS: f64 = 5.0;
const AIM_P3_P99_MS: f64 = 25.0;
const AIM_P4_P50_MS: f64 = 30.0;
const AIM_P6_DECAY_PERCENT: f64 = 20.0;

const LINEAR_STEPS: usize = 4;
/// Handlers running at once in every P1 worker (per process).
const P1_CONCURRENCY: usize = 64;
const P1_BATCHES: [u32; 2] = [32, 64];
const P1_PROCESSES: [usize; 2] = [1, 4];
/// How often P1 asks the store whether every task is complete while worker processes run.
const P1_POLL: Duration = Duration::from_millis(50);
/// Tasks are created by this many concurrent callers, so setting up is not one fsync after another.
const CREATORS: usize = 8;
/// How long the P3/P4 worker waits for a wake-up before it polls: long enough that polling cannot be what
/// wakes it.
const LOW_LOAD_POLL: Duration = Duration::from_secs(5);
/// The pause before each P3/P4 run, so the worker is back in its idle wait when the task arrives.
const LOW_LOAD_PAUSE: Duration = Duration::from_millis(20);
/// The longest a P3/P4 run may take before the bench gives up.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(20);
/// P6 grows the database with tasks of `start`, 98 branches and `join`: 100 steps each.
const P6_GROWTH_BRANCHES: usize = 98;
const P6_GROWTH_CREATORS: usize = 4;
/// Most steps created but not yet run while growing, so creation cannot run far ahead of the worker.
const P6_MAX_BACKLOG: u64 = 20_000;
const P6_TARGET_FINISHED: i64 = 1_000_000;
/// The measured P6 runs use the P1 in-process setting with the larger batch.
const P6_CONCURRENCY: usize = 64;
const P6_BATCH: u32 = 64;
/// The growth worker: large claims and large completion batches.
const P6_GROWTH_CONCURRENCY: usize = 512;
const P6_GROWTH_BATCH: u32 = 256;

struct Sizes {
    p1_tasks: usize,
    p3_warmups: usize,
    p3_runs: usize,
    p4_warmups: usize,
    p4_runs: usize,
    p6_seed_tasks: usize,
    p6_measure_tasks: usize,
    p6_growth_limit: Duration,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                p1_tasks: 200,
                p3_warmups: 3,
                p3_runs: 30,
                p4_warmups: 2,
                p4_runs: 20,
                p6_seed_tasks: 10,
                p6_measure_tasks: 100,
                p6_growth_limit: Duration::from_secs(30),
            }
        } else {
            Sizes {
                p1_tasks: 5_000,
                p3_warmups: 10,
                p3_runs: 200,
                p4_warmups: 5,
                p4_runs: 100,
                p6_seed_tasks: 100,
                p6_measure_tasks: 1_000,
                p6_growth_limit: Duration::from_secs(600),
            }
        }
    }
}

/// The server under test, as it reports itself.
struct Server {
    admin_url: String,
    version: String,
    settings: Vec<(&'static str, String)>,
    probe: CpuProbe,
}

impl Server {
    async fn inspect(admin_url: &str) -> BenchResult<Server> {
        let mut conn = PgConnection::connect(admin_url)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", tasker_core::url::redact(admin_url)))?;
        let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut conn).await?;
        let mut settings = Vec::new();
        for name in [
            "fsync",
            "synchronous_commit",
            "full_page_writes",
            "wal_sync_method",
            "shared_buffers",
            "max_connections",
        ] {
            let value: String = sqlx::query_scalar(&format!("SHOW {name}")).fetch_one(&mut conn).await?;
            settings.push((name, value));
        }
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?;
        let probe = CpuProbe::new(u32::try_from(backend).ok());
        let _ = conn.close().await;
        Ok(Server {
            admin_url: admin_url.to_string(),
            version,
            settings,
            probe,
        })
    }

    fn setting(&self, name: &str) -> &str {
        self.settings
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("?")
    }
}

/// A database of its own for one benchmark. Dropped by [`BenchDb::drop`]; a run that dies before that leaves
/// it on the server, where the throwaway cluster of `cargo xtask bench` takes it away.
struct BenchDb {
    admin_url: String,
    name: String,
    url: String,
}

impl BenchDb {
    async fn create(server: &Server, label: &str) -> BenchResult<BenchDb> {
        if label.is_empty()
            || label.len() > 40
            || !label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!("bench database label {label:?} must be 1-40 of [a-z0-9_]").into());
        }
        // Generated here, never user input: identifiers cannot be bound as parameters.
        let name = format!("tasker_bench_{label}_{:08x}", rand::random::<u32>());
        let mut admin = PgConnection::connect(&server.admin_url).await?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        let _ = admin.close().await;
        let url = with_database(&server.admin_url, &name)?;
        eprintln!("tasker-bench: {label}: fresh database {name}");
        Ok(BenchDb {
            admin_url: server.admin_url.clone(),
            name,
            url,
        })
    }

    /// Drops the database (closing any connection still on it) and hands back `result`.
    async fn finish<T>(self, result: BenchResult<T>) -> BenchResult<T> {
        let dropped = async {
            let mut admin = PgConnection::connect(&self.admin_url).await?;
            admin
                .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                .await?;
            let _ = admin.close().await;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if let Err(e) = dropped {
            eprintln!("tasker-bench: warning: could not drop database {}: {e}", self.name);
        }
        result
    }
}

/// `url` with its database replaced by `name`, keeping user, host, port and query parameters.
fn with_database(url: &str, name: &str) -> BenchResult<String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not a URL: {}", tasker_core::url::redact(url)))?;
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    Ok(format!("{scheme}://{authority}/{name}{query}"))
}

async fn open(url: &str) -> BenchResult<Engine> {
    Engine::connect(url, EngineOptions::default())
        .await
        .map_err(|e| format!("cannot open the store at {}: {e}", tasker_core::url::redact(url)).into())
}

/// The `tasker` binary built next to this one (`cargo build -p tasker-core --bins` builds both).
fn tasker_binary() -> BenchResult<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("tasker");
    if !path.is_file() {
        return Err(format!(
            "P1 runs `tasker worker` processes but {} does not exist; build both binaries with \
             `cargo build --release -p tasker-core --bins` (cargo xtask bench does)",
            path.display()
        )
        .into());
    }
    Ok(path)
}

// ------------------------------------------------------------------------------------------------ run

/// The benchmarks `--only` may name.
/// `p1-inproc` is P1 with the in-process `Worker` only: the Rust figure `cargo xtask bench --bindings` compares
/// the Ruby and Python workers with.
pub const NAMES: [&str; 5] = ["p1", "p1-inproc", "p3", "p4", "p6"];

/// Runs the benchmarks in `only`, or all of them when it is empty. `p1_tasks` overrides the P1 task count, so
/// the bindings bench can run the Rust worker on the workload its scripts run.
pub async fn run(admin_url: &str, quick: bool, only: &[String], p1_tasks: Option<usize>) -> BenchResult<Report> {
    let want = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let mut sizes = Sizes::new(quick);
    if let Some(n) = p1_tasks {
        sizes.p1_tasks = n;
    }
    let server = Server::inspect(admin_url).await?;
    let tasker = tasker_binary()?;
    eprintln!(
        "tasker-bench: PostgreSQL {} at {}; fsync={}, synchronous_commit={}",
        server.version,
        tasker_core::url::redact(admin_url),
        server.setting("fsync"),
        server.setting("synchronous_commit")
    );
    let mut rows = Vec::new();
    let mut cpu_lines = Vec::new();

    // P1
    let p1_steps = (sizes.p1_tasks * LINEAR_STEPS) as i64;
    let p1_workload = format!(
        "{} × linear_{LINEAR_STEPS} ({} no-op steps) created first",
        thousands(sizes.p1_tasks as f64),
        thousands(p1_steps as f64)
    );
    let mut p1_variants: Vec<Option<usize>> = Vec::new();
    if want("p1") || want("p1-inproc") {
        p1_variants.push(None);
    }
    if want("p1") {
        p1_variants.extend(P1_PROCESSES.map(Some));
    }
    for procs in p1_variants {
        for batch in P1_BATCHES {
            let label = match procs {
                None => format!("p1_inproc_b{batch}"),
                Some(n) => format!("p1_proc{n}_b{batch}"),
            };
            let db = BenchDb::create(&server, &label).await?;
            let result = p1(&db.url, &sizes, procs, batch, &server.probe, &tasker).await;
            let run = db.finish(result).await?;
            let (benchmark, who) = match procs {
                None => (
                    "P1 no-op steps/s, in-process `Worker`".to_string(),
                    "one `Worker` in the bench process".to_string(),
                ),
                Some(n) => (
                    format!("P1 no-op steps/s, {}", processes(n, "`tasker worker` process")),
                    format!("{} (`tasker worker --testkit`)", processes(n, "process")),
                ),
            };
            let rate = run.steps as f64 / run.secs;
            let mut result = format!("{} steps/s ({:.2} s)", thousands(rate), run.secs);
            if let Some((first_claim, span)) = run.from_first_claim {
                let _ = std::fmt::Write::write_fmt(
                    &mut result,
                    format_args!(
                        "; {} steps/s from the first claim ({:.0} ms after start) to the last completion",
                        thousands(run.steps as f64 / span),
                        first_claim * 1_000.0
                    ),
                );
            }
            // The server's CPU over the same window as the steps (the probe's), per step: the aim is ≤ 100 µs.
            if let Some(server) = run.cpu.server {
                let _ = std::fmt::Write::write_fmt(
                    &mut result,
                    format_args!("; PostgreSQL CPU {:.0} µs/step", server / run.steps as f64 * 1e6),
                );
            }
            let row = Row::new(
                benchmark,
                format!("{p1_workload}; {who}, concurrency {P1_CONCURRENCY}, batch {batch}"),
                result,
            );
            // The aim is for the worker processes; the in-process run is there to compare.
            rows.push(match procs {
                Some(_) => row.with_aim(
                    format!("≥ {} steps/s", thousands(AIM_P1_STEPS_PER_SECOND)),
                    rate >= AIM_P1_STEPS_PER_SECOND,
                ),
                None => row,
            });
            let who = match procs {
                None => "in-process".to_string(),
                Some(n) => processes(n, "process"),
            };
            cpu_lines.push(format!("P1 {who}, batch {batch}: {}", run.cpu.show()));
        }
    }

    // P3
    if want("p3") {
        let db = BenchDb::create(&server, "p3_notify").await?;
        let result = p3(&db.url, &sizes).await;
        let p3 = db.finish(result).await?;
        let lat = Latency::of(&p3.samples);
        let met = match (lat.p50 <= AIM_P3_P50_MS, lat.p99 <= AIM_P3_P99_MS) {
            (true, true) => "yes",
            (true, false) => "p50 yes, p99 no",
            (false, true) => "p50 no, p99 yes",
            (false, false) => "no",
        };
        let mut result = lat.show_tail();
        if p3.early > 0 {
            let _ = std::fmt::Write::write_fmt(
                &mut result,
                format_args!(
                    " ({} of {} handlers started before `create_task` returned: counted as 0)",
                    p3.early,
                    p3.samples.len()
                ),
            );
        }
        rows.push(
            Row::new(
                "P3 ready → handler start (LISTEN/NOTIFY)",
                format!(
                    "{} single-step tasks, one at a time, after {}; worker on a second `Engine`, poll interval {} s",
                    sizes.p3_runs,
                    plural(sizes.p3_warmups, "warm-up"),
                    LOW_LOAD_POLL.as_secs()
                ),
                result,
            )
            .with_aim_text(format!("p50 ≤ {AIM_P3_P50_MS} ms, p99 ≤ {AIM_P3_P99_MS} ms"), met),
        );
    }

    // P4
    if want("p4") {
        let db = BenchDb::create(&server, "p4_linear").await?;
        let result = p4(&db.url, &sizes).await;
        let (samples, commits) = db.finish(result).await?;
        let lat = Latency::of(&samples);
        rows.push(
            Row::new(
                "P4 create → complete",
                format!(
                    "linear_{LINEAR_STEPS} (4 no-op steps in a chain), {} tasks one at a time, after {}; worker on a \
                     second `Engine`",
                    sizes.p4_runs,
                    plural(sizes.p4_warmups, "warm-up")
                ),
                format!(
                    "{}; {} commits after `create_task` on the critical path (p50; max {})",
                    lat.show_tail(),
                    commits.p50,
                    commits.max
                ),
            )
            .with_aim(format!("p50 ≤ {AIM_P4_P50_MS} ms"), lat.p50 <= AIM_P4_P50_MS),
        );
    }

    // P6
    if want("p6") {
        let db = BenchDb::create(&server, "p6_decay").await?;
        let result = p6(&db.url, &sizes, &server.probe).await;
        let p6 = db.finish(result).await?;
        let measure = format!(
            "{} × linear_{LINEAR_STEPS} ({} steps), in-process `Worker`, concurrency {P6_CONCURRENCY}, batch {P6_BATCH}",
            thousands(sizes.p6_measure_tasks as f64),
            thousands((sizes.p6_measure_tasks * LINEAR_STEPS) as f64)
        );
        let show = |r: &Run| format!("{} steps/s ({:.2} s)", thousands(r.steps as f64 / r.secs), r.secs);
        let (rate_small, rate_large) = (
            p6.small.steps as f64 / p6.small.secs,
            p6.large.steps as f64 / p6.large.secs,
        );
        let decay = (rate_small - rate_large) / rate_small * 100.0;
        rows.push(Row::new(
            "P6 throughput, small database",
            format!(
                "{measure}; database holding {} finished steps",
                thousands(p6.finished_small as f64)
            ),
            show(&p6.small),
        ));
        let reached = if p6.finished_large >= P6_TARGET_FINISHED {
            "the target".to_string()
        } else {
            format!(
                "short of {}: the {} limit came first",
                thousands(P6_TARGET_FINISHED as f64),
                minutes(sizes.p6_growth_limit)
            )
        };
        rows.push(Row::new(
            "P6 throughput, grown database",
            format!(
                "{measure}; database holding {} finished steps ({reached}; grown in {} at {} steps/s)",
                thousands(p6.finished_large as f64),
                minutes(p6.growth_time),
                thousands(p6.grown_steps as f64 / p6.growth_time.as_secs_f64())
            ),
            show(&p6.large),
        ));
        rows.push(
            Row::new(
                "P6 throughput decay",
                format!(
                    "{} → {} finished steps",
                    thousands(p6.finished_small as f64),
                    thousands(p6.finished_large as f64)
                ),
                if decay >= 0.0 {
                    format!("{decay:.1} % slower")
                } else {
                    format!("{:.1} % faster", -decay)
                },
            )
            .with_aim(
                format!("≤ {AIM_P6_DECAY_PERCENT} % slower"),
                decay <= AIM_P6_DECAY_PERCENT,
            ),
        );
        cpu_lines.push(format!("P6 small database: {}", p6.small.cpu.show()));
        cpu_lines.push(format!("P6 grown database: {}", p6.large.cpu.show()));
    }

    Ok(Report {
        details: details(&server),
        rows,
        notes: notes(&sizes),
        after: vec![
            (
                "Where the CPU went during each timed window, in cores busy (CPU seconds ÷ wall seconds), read \
                 from /proc:"
                    .to_string(),
                cpu_lines,
            ),
            ("What limits the figures:".to_string(), limits(&server)),
        ],
    })
}

fn details(server: &Server) -> Vec<String> {
    let settings: Vec<String> = server.settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
    vec![
        format!(
            "Store: PostgreSQL {} on the server of {}, a fresh database per benchmark (`CREATE DATABASE \
             tasker_bench_…`, dropped afterwards); every engine with the default pool of {} connections",
            server.version,
            tasker_core::url::redact(&server.admin_url),
            EngineOptions::default().max_connections
        ),
        format!("Server settings, as `SHOW` reports them: {}", settings.join(", ")),
    ]
}

fn notes(sizes: &Sizes) -> Vec<String> {
    vec![
        format!(
            "**P1**: {} tasks of `linear_{LINEAR_STEPS}` (handler `testkit.noop`) are created first by {CREATORS} \
             concurrent callers (not timed). Then either one in-process `Worker` starts (`run_until_idle`), or N \
             `tasker worker --testkit --concurrency {P1_CONCURRENCY} --batch-size B --lease-seconds 30` processes \
             are spawned (the `tasker` binary next to `tasker-bench`). The time runs from the worker's start (for \
             processes: from spawning them, so process start-up and connecting are included) to the latest \
             `finished_at` among the tasks (stamped just before each completion commits), read from the store \
             afterwards. Steps/s is steps ÷ that time. The \
             second figure counts from the earliest `started_at` (the first claim) instead, so it leaves start-up \
             out. While processes run, the bench polls `health_counts` every {} ms to see that all tasks are \
             complete; then it sends SIGTERM, waits for each process to exit 0 and reads its `--json` stats. \
             Every task and step must be complete and the workers' stats must show exactly one success per step \
             with no failures or rejected outcomes, or the run fails.",
            thousands(sizes.p1_tasks as f64),
            P1_POLL.as_millis()
        ),
        format!(
            "**P3**: two engines on the same database in the bench process, each with its own pool and its own \
             LISTEN connection: one creates tasks, the other runs a `Worker` (concurrency 4, batch 4, poll \
             interval {} s) whose handler records `Instant::now()` when it starts. One single-step task at a time; \
             the latency is from `create_task` returning (the step is ready once its transaction committed) to \
             the handler starting, so it covers the NOTIFY, the listener waking the worker, and the durable claim \
             commit. Before each task the bench waits for the previous one's `task.completed` and then {} ms, so \
             the worker is idle in its wait for a wake-up.",
            LOW_LOAD_POLL.as_secs(),
            LOW_LOAD_PAUSE.as_millis()
        ),
        format!(
            "**P4**: the same two engines; one `linear_{LINEAR_STEPS}` task at a time, from calling `create_task` \
             on the first engine to the worker engine publishing the task's `task.completed` event (subscribed in \
             the same process, so no polling delay). The first step's claim is a durable commit of its own; each \
             later one rides in the commit that completes its parent (the worker's next claim carries the \
             outcomes reported before it), and the last completion is one more. The commits are counted from the \
             database afterwards: the distinct transaction ids (`xid`) among each task's transition rows, less \
             `create_task`'s. Worker as in P3; {} ms pause before each task.",
            LOW_LOAD_PAUSE.as_millis()
        ),
        format!(
            "**P6**: one database. It is seeded with {} tasks of `parallel_{P6_GROWTH_BRANCHES}` ({} steps, run to \
             completion), then {} tasks of `linear_{LINEAR_STEPS}` are created and one in-process `Worker` \
             (concurrency {P6_CONCURRENCY}, batch {P6_BATCH}) runs them; the time is from its start until \
             `run_until_idle` returns. Then the database grows: {P6_GROWTH_CREATORS} callers create \
             `parallel_{P6_GROWTH_BRANCHES}` tasks (at most {} steps ahead of the worker) while a `Worker` \
             (concurrency {P6_GROWTH_CONCURRENCY}, batch {P6_GROWTH_BATCH}) runs them, until {} steps are finished \
             or {} have passed, and the backlog is run out. Then the same measurement runs again, at once (so \
             autovacuum may still be busy). Decay is (small − grown) ÷ small. Counts are checked with \
             `health_counts` after every stage.",
            sizes.p6_seed_tasks,
            thousands((sizes.p6_seed_tasks * (P6_GROWTH_BRANCHES + 2)) as f64),
            thousands(sizes.p6_measure_tasks as f64),
            thousands(P6_MAX_BACKLOG as f64),
            thousands(P6_TARGET_FINISHED as f64),
            minutes(sizes.p6_growth_limit)
        ),
        "Percentiles are nearest-rank over all timed runs, in fractional milliseconds.".into(),
    ]
}

fn limits(server: &Server) -> Vec<String> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut v = vec![format!(
        "PostgreSQL, the worker processes and the bench share the same {} of this machine, so every core the \
         server uses is a core the workers do not have. When the machine is near 100 % busy a figure is bound by \
         CPU; when it is well below, by waiting: every claim and every batch of completions is its own \
         transaction, and with fsync={} and synchronous_commit={} each commit waits for its WAL flush.",
        plural(cores, "core"),
        server.setting("fsync"),
        server.setting("synchronous_commit")
    )];
    if !server.probe.sees_server() {
        v.push(
            "The server's processes are not visible in this machine's /proc (another host or PID namespace), so \
             its CPU is unknown and counted in \"everything else\" only if it runs here."
                .into(),
        );
    }
    v.push(
        "\"Everything else\" is whatever else ran on the machine meanwhile (the kernel, other users' work), \
         from /proc/stat."
            .into(),
    );
    v
}

/// `1 process`, `4 processes`.
fn processes(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}es")
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 90.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

// ------------------------------------------------------------------------------------------------ shared

/// A timed throughput run.
struct Run {
    steps: i64,
    /// From the start of the run to the last completion.
    secs: f64,
    /// Seconds from the start to the first claim, and from the first claim to the last completion.
    from_first_claim: Option<(f64, f64)>,
    cpu: CpuUsage,
}

/// Creates `count` tasks of `template` by [`CREATORS`] concurrent callers.
async fn create_tasks(engine: &Engine, template: &Template, count: usize) -> BenchResult<Duration> {
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..CREATORS {
        let n = count / CREATORS + usize::from(i < count % CREATORS);
        let engine = engine.clone();
        let (ns, name) = (template.namespace.clone(), template.name.clone());
        set.spawn(async move {
            for _ in 0..n {
                engine.create_task(CreateTask::new(&ns, &name, json!({}))).await?;
            }
            Ok::<_, tasker_core::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(t.elapsed())
}

async fn register(engine: &Engine, template: &Template) -> BenchResult<()> {
    engine.register_template_value(&serde_json::to_value(template)?).await?;
    Ok(())
}

/// Fails unless the store holds exactly `tasks` tasks and `steps` steps, all complete.
async fn check_all_complete(engine: &Engine, what: &str, tasks: i64, steps: i64) -> BenchResult<()> {
    let h = engine.health_counts().await?;
    let tasks_done = count(&h.tasks, TaskState::Complete.as_str());
    let steps_done = count(&h.steps, StepState::Complete.as_str());
    if h.total_tasks != tasks || tasks_done != tasks || h.total_steps != steps || steps_done != steps {
        return Err(format!(
            "{what}: expected {tasks} tasks and {steps} steps, all complete; the store holds {} tasks ({tasks_done} \
             complete) and {} steps ({steps_done} complete): {}",
            h.total_tasks,
            h.total_steps,
            describe_counts(&h)
        )
        .into());
    }
    Ok(())
}

/// The earliest `started_at` and the latest `finished_at` over every task (newest first, in pages).
async fn task_window(engine: &Engine) -> BenchResult<(Timestamp, Timestamp)> {
    let mut first: Option<Timestamp> = None;
    let mut last: Option<Timestamp> = None;
    let mut before = None;
    loop {
        let page = engine
            .tasks(&TaskFilter {
                limit: Some(1000),
                before,
                ..TaskFilter::default()
            })
            .await?;
        let Some(oldest) = page.last() else { break };
        before = Some(oldest.id);
        for t in &page {
            let (Some(s), Some(f)) = (t.started_at, t.finished_at) else {
                return Err(format!("task {} has no start or finish time after the run", t.id).into());
            };
            first = Some(first.map_or(s, |x| x.min(s)));
            last = Some(last.map_or(f, |x| x.max(f)));
        }
    }
    match (first, last) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err("no tasks found after the run".into()),
    }
}

fn secs_between(a: Timestamp, b: Timestamp) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

fn noop_worker(engine: &Engine, id: &str, concurrency: usize, batch: u32) -> Worker {
    let mut worker = Worker::new(
        engine.clone(),
        WorkerConfig {
            worker_id: id.into(),
            concurrency,
            batch_size: batch,
            ..WorkerConfig::default()
        },
    );
    worker.handle(NOOP_HANDLER, handler_fn(|_| async { Ok(json!({})) }));
    worker
}

fn check_stats(what: &str, stats: &WorkerStats, steps: i64) -> BenchResult<()> {
    if stats.failed != 0 || stats.rejected != 0 || stats.succeeded != steps as u64 {
        return Err(format!("{what}: unexpected worker stats {stats:?} for {steps} no-op steps").into());
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ P1

/// `procs`: `None` for one in-process worker, else that many `tasker worker` processes.
async fn p1(
    url: &str,
    sizes: &Sizes,
    procs: Option<usize>,
    batch: u32,
    probe: &CpuProbe,
    tasker: &Path,
) -> BenchResult<Run> {
    let engine = open(url).await?;
    let result = p1_on(&engine, url, sizes, procs, batch, probe, tasker).await;
    engine.close().await;
    result
}

async fn p1_on(
    engine: &Engine,
    url: &str,
    sizes: &Sizes,
    procs: Option<usize>,
    batch: u32,
    probe: &CpuProbe,
    tasker: &Path,
) -> BenchResult<Run> {
    let what = match procs {
        None => format!("P1 in-process, batch {batch}"),
        Some(n) => format!("P1 {}, batch {batch}", processes(n, "process")),
    };
    let template = Pattern::Linear(LINEAR_STEPS).template();
    register(engine, &template).await?;
    let tasks = sizes.p1_tasks;
    let steps = (tasks * LINEAR_STEPS) as i64;
    eprintln!("tasker-bench: {what}: creating {tasks} tasks of {}", template.name);
    let took = create_tasks(engine, &template, tasks).await?;
    eprintln!(
        "tasker-bench: {what}: created in {:.2} s; running {steps} no-op steps",
        took.as_secs_f64()
    );

    let before = probe.sample();
    let started_at = engine.now();
    let cpu = match procs {
        None => {
            let worker = noop_worker(engine, &format!("bench-p1-b{batch}"), P1_CONCURRENCY, batch);
            let stats = worker.run_until_idle().await?;
            let after = probe.sample();
            check_stats(&what, &stats, steps)?;
            probe.usage(&before, &after, None)
        }
        Some(n) => {
            let t0 = Instant::now();
            let mut workers = Vec::with_capacity(n);
            for i in 0..n {
                workers.push(WorkerProcess::spawn(
                    tasker,
                    url,
                    &format!("bench-p1-b{batch}-{i}"),
                    P1_CONCURRENCY,
                    batch,
                )?);
            }
            let limit = Duration::from_secs(120) + Duration::from_millis(steps as u64 * 10);
            loop {
                tokio::time::sleep(P1_POLL).await;
                let h = engine.health_counts().await?;
                if count(&h.tasks, TaskState::Complete.as_str()) >= tasks as i64 {
                    break;
                }
                for w in &mut workers {
                    if let Some(status) = w.exited()? {
                        return Err(format!(
                            "{what}: worker {} exited early ({status}) with tasks still open; its stderr:\n{}",
                            w.id,
                            w.stderr_tail()
                        )
                        .into());
                    }
                }
                if t0.elapsed() > limit {
                    return Err(format!(
                        "{what}: not every task completed within {} s: {}",
                        limit.as_secs(),
                        describe_counts(&h)
                    )
                    .into());
                }
            }
            let after = probe.sample();
            let pids: Vec<u32> = workers.iter().map(|w| w.child.id()).collect();
            let worker_cpu = probe.processes(&pids);
            for w in &workers {
                w.terminate()?;
            }
            let mut total = WorkerStats::default();
            for w in workers {
                let s = w.wait(Duration::from_secs(60)).await?;
                total.claimed += s.claimed;
                total.succeeded += s.succeeded;
                total.failed += s.failed;
                total.rejected += s.rejected;
            }
            check_stats(&what, &total, steps)?;
            probe.usage(&before, &after, worker_cpu)
        }
    };
    check_all_complete(engine, &what, tasks as i64, steps).await?;
    let (first_claim, last_done) = task_window(engine).await?;
    let secs = secs_between(started_at, last_done);
    if secs <= 0.0 {
        return Err(format!("{what}: the last task finished before the run started; is the clock sane?").into());
    }
    Ok(Run {
        steps,
        secs,
        from_first_claim: Some((
            secs_between(started_at, first_claim),
            secs_between(first_claim, last_done),
        )),
        cpu,
    })
}

/// A `tasker worker --testkit` child process. Killed if dropped while still running.
struct WorkerProcess {
    id: String,
    child: Child,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stdout: Option<std::thread::JoinHandle<String>>,
    reaped: bool,
}

impl WorkerProcess {
    fn spawn(tasker: &Path, url: &str, id: &str, concurrency: usize, batch: u32) -> BenchResult<WorkerProcess> {
        let mut child = Command::new(tasker)
            .args(["--json", "worker", "--testkit"])
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--batch-size", &batch.to_string()])
            .args(["--lease-seconds", "30", "--worker-id", id, "--database-url", url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", tasker.display()))?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(pipe) = child.stderr.take() {
            let tail = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() == 40 {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            });
        }
        let stdout = child.stdout.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = pipe.read_to_string(&mut s);
                s
            })
        });
        Ok(WorkerProcess {
            id: id.into(),
            child,
            stderr,
            stdout,
            reaped: false,
        })
    }

    fn exited(&mut self) -> BenchResult<Option<ExitStatus>> {
        let status = self.child.try_wait()?;
        if status.is_some() {
            self.reaped = true;
        }
        Ok(status)
    }

    fn stderr_tail(&self) -> String {
        let t = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM, through kill(1): the workspace forbids the unsafe code a direct `kill(2)` would need.
    fn terminate(&self) -> BenchResult<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !status.success() {
            return Err(format!("kill -TERM {} failed: {status}", self.child.id()).into());
        }
        Ok(())
    }

    /// Waits for the process to exit 0 and returns the stats it printed.
    async fn wait(mut self, limit: Duration) -> BenchResult<WorkerStats> {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.exited()? {
                break s;
            }
            if t.elapsed() > limit {
                return Err(format!(
                    "worker {} did not exit within {} s of SIGTERM; its stderr:\n{}",
                    self.id,
                    limit.as_secs(),
                    self.stderr_tail()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if !status.success() {
            return Err(format!(
                "worker {} exited with {status} after SIGTERM; its stderr:\n{}",
                self.id,
                self.stderr_tail()
            )
            .into());
        }
        let out = match self.stdout.take() {
            Some(h) => h.join().unwrap_or_default(),
            None => String::new(),
        };
        serde_json::from_str(out.trim()).map_err(|e| {
            format!(
                "worker {} printed no stats JSON ({e}); stdout: {:?}",
                self.id,
                out.trim()
            )
            .into()
        })
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ------------------------------------------------------------------------------------------------ P3, P4

/// A creating engine and, on a second connection to the same database, a worker engine running `worker`.
struct TwoEngines {
    creator: Engine,
    worker_engine: Engine,
    stop: Option<oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<tasker_core::Result<WorkerStats>>>,
}

impl TwoEngines {
    async fn open(url: &str) -> BenchResult<TwoEngines> {
        Ok(TwoEngines {
            creator: open(url).await?,
            worker_engine: open(url).await?,
            stop: None,
            running: None,
        })
    }

    fn low_load_config(&self, id: &str) -> WorkerConfig {
        WorkerConfig {
            worker_id: id.into(),
            concurrency: 4,
            batch_size: 4,
            poll_interval: LOW_LOAD_POLL,
            ..WorkerConfig::default()
        }
    }

    /// Starts the worker and gives it time to settle into its idle wait.
    async fn start(&mut self, worker: Worker) {
        let (tx, rx) = oneshot::channel::<()>();
        self.stop = Some(tx);
        self.running = Some(tokio::spawn(async move {
            worker
                .run(async move {
                    let _ = rx.await;
                })
                .await
        }));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    async fn close(mut self) -> BenchResult<WorkerStats> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let stats = match self.running.take() {
            Some(h) => h.await??,
            None => WorkerStats::default(),
        };
        self.creator.close().await;
        self.worker_engine.close().await;
        Ok(stats)
    }
}

struct P3 {
    samples: Vec<Duration>,
    /// Runs whose handler started before `create_task` returned (measured as zero).
    early: usize,
}

async fn p3(url: &str, sizes: &Sizes) -> BenchResult<P3> {
    let mut engines = TwoEngines::open(url).await?;
    let result = p3_on(&mut engines, sizes).await;
    let stats = engines.close().await;
    let p3 = result?;
    let stats = stats?;
    let total = (sizes.p3_warmups + sizes.p3_runs) as i64;
    check_stats("P3", &stats, total)?;
    Ok(p3)
}

async fn p3_on(engines: &mut TwoEngines, sizes: &Sizes) -> BenchResult<P3> {
    let key = "bench_p3.probe";
    let template = Pattern::Linear(1).template_with("bench_p3", |_| key.into(), json!({"max_attempts": 1}));
    register(&engines.creator, &template).await?;
    let (tx, mut started) = mpsc::unbounded_channel::<(uuid::Uuid, Instant)>();
    let mut worker = Worker::new(engines.worker_engine.clone(), engines.low_load_config("bench-p3"));
    worker.handle(
        key,
        handler_fn(move |ctx| {
            let at = Instant::now();
            let tx = tx.clone();
            async move {
                let _ = tx.send((ctx.task_id, at));
                Ok(json!({}))
            }
        }),
    );
    let mut completed = engines.worker_engine.subscribe(EventFilter {
        names: vec!["task.completed".into()],
        ..EventFilter::default()
    });
    engines.start(worker).await;

    let total = sizes.p3_warmups + sizes.p3_runs;
    eprintln!("tasker-bench: P3: {total} single-step tasks, one at a time");
    let mut samples = Vec::with_capacity(sizes.p3_runs);
    let mut early = 0;
    for i in 0..total {
        tokio::time::sleep(LOW_LOAD_PAUSE).await;
        let task = engines
            .creator
            .create_task(CreateTask::new(&template.namespace, &template.name, json!({})))
            .await?;
        let ready = Instant::now();
        let (task_id, at) = tokio::time::timeout(SAMPLE_TIMEOUT, started.recv())
            .await
            .map_err(|_| {
                format!(
                    "P3: the handler did not start within {} s of creating task {}",
                    SAMPLE_TIMEOUT.as_secs(),
                    task.id
                )
            })?
            .ok_or("P3: the worker stopped")?;
        if task_id != task.id {
            return Err(format!(
                "P3: expected the handler of task {}, got one of task {task_id}",
                task.id
            )
            .into());
        }
        wait_for_completion(&mut completed, task.id, "P3").await?;
        if i >= sizes.p3_warmups {
            if at < ready {
                early += 1;
            }
            samples.push(at.saturating_duration_since(ready));
        }
    }
    check_all_complete(&engines.creator, "P3", total as i64, total as i64).await?;
    Ok(P3 { samples, early })
}

async fn wait_for_completion(
    events: &mut tasker_core::events::Subscription,
    task_id: uuid::Uuid,
    what: &str,
) -> BenchResult<()> {
    let deadline = Instant::now() + SAMPLE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.next(left).await {
            Some(e) if e.task_id == task_id => return Ok(()),
            Some(_) => {}
            None => {
                return Err(format!(
                    "{what}: task {task_id} did not complete within {} s (events dropped: {})",
                    SAMPLE_TIMEOUT.as_secs(),
                    events.dropped()
                )
                .into())
            }
        }
    }
}

/// Transactions that wrote a P4 task's transitions, less its `create_task`: the commits a task waits for.
struct Commits {
    p50: i64,
    max: i64,
}

async fn p4(url: &str, sizes: &Sizes) -> BenchResult<(Vec<Duration>, Commits)> {
    let mut engines = TwoEngines::open(url).await?;
    let result = p4_on(&mut engines, sizes).await;
    let stats = engines.close().await;
    let samples = result?;
    let total = (sizes.p4_warmups + sizes.p4_runs) as i64;
    check_stats("P4", &stats?, total * LINEAR_STEPS as i64)?;
    // Every transition row carries the id of the transaction that wrote it (the event feed's `xid`), so
    // the distinct ids per task are the commits that touched it; one of them is `create_task`.
    let mut conn = PgConnection::connect(url).await?;
    let (p50, max): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY n), max(n) FROM (
             SELECT task_id, count(DISTINCT xid) - 1 AS n FROM (
                 SELECT task_id, xid FROM tasker.step_transitions
                 UNION ALL SELECT task_id, xid FROM tasker.task_transitions) w
             GROUP BY task_id) c",
    )
    .fetch_one(&mut conn)
    .await?;
    let _ = conn.close().await;
    let commits = Commits {
        p50: p50.ok_or("P4: no transitions recorded")?,
        max: max.unwrap_or_default(),
    };
    Ok((samples, commits))
}

async fn p4_on(engines: &mut TwoEngines, sizes: &Sizes) -> BenchResult<Vec<Duration>> {
    let template = Pattern::Linear(LINEAR_STEPS).template();
    register(&engines.creator, &template).await?;
    let mut worker = Worker::new(engines.worker_engine.clone(), engines.low_load_config("bench-p4"));
    worker.handle(NOOP_HANDLER, handler_fn(|_| async { Ok(json!({})) }));
    let mut completed = engines.worker_engine.subscribe(EventFilter {
        names: vec!["task.completed".into()],
        ..EventFilter::default()
    });
    engines.start(worker).await;

    let total = sizes.p4_warmups + sizes.p4_runs;
    eprintln!("tasker-bench: P4: {total} tasks of {}, one at a time", template.name);
    let mut samples = Vec::with_capacity(sizes.p4_runs);
    for i in 0..total {
        tokio::time::sleep(LOW_LOAD_PAUSE).await;
        let t = Instant::now();
        let task = engines
            .creator
            .create_task(CreateTask::new(&template.namespace, &template.name, json!({})))
            .await?;
        wait_for_completion(&mut completed, task.id, "P4").await?;
        if i >= sizes.p4_warmups {
            samples.push(t.elapsed());
        }
    }
    check_all_complete(&engines.creator, "P4", total as i64, (total * LINEAR_STEPS) as i64).await?;
    Ok(samples)
}

// ------------------------------------------------------------------------------------------------ P6

struct P6 {
    small: Run,
    large: Run,
    finished_small: i64,
    finished_large: i64,
    grown_steps: i64,
    growth_time: Duration,
}

async fn p6(url: &str, sizes: &Sizes, probe: &CpuProbe) -> BenchResult<P6> {
    let engine = open(url).await?;
    let result = p6_on(&engine, sizes, probe).await;
    engine.close().await;
    result
}

async fn p6_on(engine: &Engine, sizes: &Sizes, probe: &CpuProbe) -> BenchResult<P6> {
    let measure_t = Pattern::Linear(LINEAR_STEPS).template();
    let grow_t = Pattern::Parallel(P6_GROWTH_BRANCHES).template();
    let grow_steps = grow_t.steps.len() as i64;
    register(engine, &measure_t).await?;
    register(engine, &grow_t).await?;
    let (mut tasks, mut steps) = (0i64, 0i64);

    eprintln!(
        "tasker-bench: P6: seeding {} tasks of {}",
        sizes.p6_seed_tasks, grow_t.name
    );
    create_tasks(engine, &grow_t, sizes.p6_seed_tasks).await?;
    let seed = noop_worker(engine, "bench-p6-seed", P6_GROWTH_CONCURRENCY, P6_GROWTH_BATCH)
        .run_until_idle()
        .await?;
    tasks += sizes.p6_seed_tasks as i64;
    steps += sizes.p6_seed_tasks as i64 * grow_steps;
    check_stats("P6 seed", &seed, steps)?;
    check_all_complete(engine, "P6 seed", tasks, steps).await?;

    let finished_small = steps;
    eprintln!("tasker-bench: P6: measuring with {finished_small} finished steps");
    let small = p6_measure(engine, sizes, probe, "P6 small").await?;
    tasks += sizes.p6_measure_tasks as i64;
    steps += small.steps;
    check_all_complete(engine, "P6 small", tasks, steps).await?;

    let (grown_tasks, growth_time) = p6_grow(engine, &grow_t, sizes, P6_TARGET_FINISHED - steps).await?;
    tasks += grown_tasks;
    steps += grown_tasks * grow_steps;
    check_all_complete(engine, "P6 growth", tasks, steps).await?;

    let finished_large = steps;
    eprintln!("tasker-bench: P6: measuring with {finished_large} finished steps");
    let large = p6_measure(engine, sizes, probe, "P6 grown").await?;
    tasks += sizes.p6_measure_tasks as i64;
    steps += large.steps;
    check_all_complete(engine, "P6 grown", tasks, steps).await?;
    Ok(P6 {
        small,
        large,
        finished_small,
        finished_large,
        grown_steps: grown_tasks * grow_steps,
        growth_time,
    })
}

/// Builds the grown P6 database at `url` (PostgreSQL or SQLite) and keeps it: `parallel_98` tasks grown the way
/// P6 grows its database, until `steps` steps are finished (the whole run may take up to an hour). It is the
/// data set on which reads such as `tasker analytics` are measured (docs/benchmarks.md, "Analytics").
pub async fn build_p6_database(url: &str, steps: i64) -> BenchResult<()> {
    let engine = open(url).await?;
    let result = async {
        let template = Pattern::Parallel(P6_GROWTH_BRANCHES).template();
        register(&engine, &template).await?;
        let before = engine.health_counts().await?.total_steps;
        let sizes = Sizes {
            p6_growth_limit: Duration::from_secs(3600),
            ..Sizes::new(false)
        };
        let (tasks, took) = p6_grow(&engine, &template, &sizes, steps - before).await?;
        let h = engine.health_counts().await?;
        eprintln!(
            "tasker-bench: added {tasks} tasks in {:.1} s; the store holds {} tasks and {} steps: {}",
            took.as_secs_f64(),
            h.total_tasks,
            h.total_steps,
            describe_counts(&h)
        );
        Ok(())
    }
    .await;
    engine.close().await;
    result
}

async fn p6_measure(engine: &Engine, sizes: &Sizes, probe: &CpuProbe, what: &str) -> BenchResult<Run> {
    let template = Pattern::Linear(LINEAR_STEPS).template();
    create_tasks(engine, &template, sizes.p6_measure_tasks).await?;
    let steps = (sizes.p6_measure_tasks * LINEAR_STEPS) as i64;
    let worker = noop_worker(engine, "bench-p6-measure", P6_CONCURRENCY, P6_BATCH);
    let before = probe.sample();
    let t = Instant::now();
    let stats = worker.run_until_idle().await?;
    let secs = t.elapsed().as_secs_f64();
    let after = probe.sample();
    check_stats(what, &stats, steps)?;
    Ok(Run {
        steps,
        secs,
        from_first_claim: None,
        cpu: probe.usage(&before, &after, None),
    })
}

/// Grows the database by about `target_steps` finished steps, or as many as the time limit allows. Returns
/// how many tasks it created (and ran to completion) and how long it took.
async fn p6_grow(
    engine: &Engine,
    template: &Template,
    sizes: &Sizes,
    target_steps: i64,
) -> BenchResult<(i64, Duration)> {
    let per_task = template.steps.len() as u64;
    let target = target_steps.max(0) as u64;
    let created = Arc::new(AtomicU64::new(0));
    let handled = Arc::new(AtomicU64::new(0));
    let mut worker = Worker::new(
        engine.clone(),
        WorkerConfig {
            worker_id: "bench-p6-grow".into(),
            concurrency: P6_GROWTH_CONCURRENCY,
            batch_size: P6_GROWTH_BATCH,
            ..WorkerConfig::default()
        },
    );
    let counter = handled.clone();
    worker.handle(
        NOOP_HANDLER,
        handler_fn(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Ok(json!({})) }
        }),
    );
    eprintln!(
        "tasker-bench: P6: growing by up to {target} steps for at most {}",
        minutes(sizes.p6_growth_limit)
    );
    let t = Instant::now();
    let deadline = t + sizes.p6_growth_limit;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        worker
            .run(async move {
                let _ = stop_rx.await;
            })
            .await
    });

    let mut creators = tokio::task::JoinSet::new();
    for _ in 0..P6_GROWTH_CREATORS {
        let (engine, created, handled) = (engine.clone(), created.clone(), handled.clone());
        let (ns, name) = (template.namespace.clone(), template.name.clone());
        creators.spawn(async move {
            while Instant::now() < deadline {
                if created
                    .load(Ordering::Relaxed)
                    .saturating_sub(handled.load(Ordering::Relaxed))
                    > P6_MAX_BACKLOG
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                // Reserve the task's steps first, so the callers together stop at the target.
                if created.fetch_add(per_task, Ordering::Relaxed) >= target {
                    created.fetch_sub(per_task, Ordering::Relaxed);
                    break;
                }
                engine.create_task(CreateTask::new(&ns, &name, json!({}))).await?;
            }
            Ok::<_, tasker_core::Error>(())
        });
    }
    let mut last_report = Instant::now();
    let mut failed = None;
    while let Some(r) = creators.join_next().await {
        if let Err(e) = r.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
            failed = Some(e);
        }
    }
    // Run out the backlog, reporting progress now and then.
    let drain_limit = Instant::now() + Duration::from_secs(600);
    let total = created.load(Ordering::Relaxed);
    while failed.is_none() && handled.load(Ordering::Relaxed) < total {
        if running.is_finished() || Instant::now() > drain_limit {
            failed = Some(format!(
                "the growth worker ran {} of {total} steps and {}",
                handled.load(Ordering::Relaxed),
                if running.is_finished() {
                    "stopped"
                } else {
                    "ran out of time"
                }
            ));
            break;
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "tasker-bench: P6: {} of {total} grown steps run",
                handled.load(Ordering::Relaxed)
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(());
    let stats = running.await??;
    let took = t.elapsed();
    if let Some(e) = failed {
        return Err(format!("P6 growth: {e}").into());
    }
    check_stats("P6 growth", &stats, total as i64)?;
    eprintln!("tasker-bench: P6: grew by {total} steps in {:.1} s", took.as_secs_f64());
    Ok(((total / per_task) as i64, took))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_database() {
        let f = |u: &str| with_database(u, "tasker_bench_x").unwrap();
        assert_eq!(
            f("postgres://postgres@127.0.0.1:5432/tasker_test"),
            "postgres://postgres@127.0.0.1:5432/tasker_bench_x"
        );
        assert_eq!(
            f("postgresql://u:p@h/db?sslmode=disable"),
            "postgresql://u:p@h/tasker_bench_x?sslmode=disable"
        );
        assert_eq!(f("postgres://h:1"), "postgres://h:1/tasker_bench_x");
        assert_eq!(f("postgres://h?x=1"), "postgres://h/tasker_bench_x?x=1");
    }
}
