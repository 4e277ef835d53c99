//! `cargo xtask bench --bindings`: the Ruby, Python, Node and Java workers running no-op handlers on PostgreSQL, next
//! to the Rust in-process worker on the same workload and the same cluster, written to the `bindings` section of
//! docs/benchmarks.md.
//!
//! The measuring is done by each binding's `bench/worker_bench.*` script (one JSON line each, see [`BINDINGS`])
//! and by `tasker-bench --only p1-inproc`; this module builds, runs them in one cluster and renders the section.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::pg::{Durability, PgCluster};
use crate::{jvm, node, python, ruby, util};

const OUT: &str = "docs/benchmarks.md";
const SECTION: &str = "bindings";
const STEPS_PER_TASK: u64 = 4;
/// Handlers running at once in the Rust worker: its P1 setting.
const CONCURRENCY: u32 = 64;
/// The bindings run at the Rust setting and at a quarter of it: 64 host threads contending for one GVL/GIL
/// may cost more than they bring.
const BINDING_CONCURRENCY: [u32; 2] = [16, 64];
const AIM_SHARE_PERCENT: f64 = 70.0;
const AIM_FFI_US: f64 = 20.0;

/// One host language's worker bench: the `binding` its script's JSON line names, how the section names it and
/// its version, and how the script is launched (in the binding's crate folder).
struct Binding {
    key: &'static str,
    name: &'static str,
    /// The JSON key holding the host's version, and the label put before it.
    version: (&'static str, &'static str),
    command: fn() -> Result<Command>,
}

/// Run in this order, each at every setting of [`BINDING_CONCURRENCY`].
const BINDINGS: [Binding; 4] = [
    Binding {
        key: "ruby",
        name: "Ruby (`TaskerCore::Worker#run`)",
        version: ("ruby", "Ruby: "),
        command: || {
            let mut c = Command::new("ruby");
            c.current_dir("crates/tasker-ruby")
                .args(["-Ilib", "bench/worker_bench.rb"]);
            Ok(c)
        },
    },
    Binding {
        key: "python",
        name: "Python (`tasker_core.Worker.run`)",
        version: ("python", "Python: CPython "),
        command: || {
            let mut c = Command::new(python::venv_python()?);
            c.current_dir("crates/tasker-python").arg("bench/worker_bench.py");
            Ok(c)
        },
    },
    Binding {
        key: "node",
        name: "Node (`Worker#run` of @tasker/core)",
        version: ("node", "Node.js: "),
        command: || {
            let mut c = Command::new("node");
            c.current_dir(node::CRATE_DIR)
                .arg("bench/worker_bench.js")
                .env("TASKER_CORE_NATIVE", node::release_addon()?);
            Ok(c)
        },
    },
    Binding {
        key: "java",
        name: "Java (`Worker.run` of io.tasker:tasker-core)",
        version: ("java", "Java: OpenJDK "),
        command: jvm::bench_command,
    },
];

pub fn run(quick: bool) -> Result<()> {
    let tasks: u64 = if quick { 200 } else { 2_000 };
    // Release everywhere: the Rust figure is a release build, and a debug extension would put its own
    // slowness into the binding's share. Each build runs once per bench.
    util::run(util::cargo().args(["build", "--release", "--locked", "-p", "tasker-core", "--bins"]))?;
    ruby::build_extension_release()?;
    python::develop_release()?;
    node::build_release_addon()?;
    jvm::build_bench()?;

    // Durable, like the PostgreSQL section: fsync off would flatter every commit the workers make.
    let pg = PgCluster::start(Durability::Durable)?;
    let date = util::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))?;
    let load_before = loadavg();

    let rust = rust_worker(pg.url(), tasks)?;
    let mut bindings = Vec::new();
    for binding in &BINDINGS {
        for concurrency in BINDING_CONCURRENCY {
            bindings.push(script(&mut (binding.command)()?, pg.url(), tasks, concurrency)?);
        }
    }
    let load_after = loadavg();
    drop(pg);

    let section = render(&Rendered {
        quick,
        tasks,
        date: date.trim(),
        rust: &rust,
        bindings: &bindings,
        load_before: &load_before,
        load_after: &load_after,
    })?;
    let existing = fs::read_to_string(OUT).with_context(|| format!("could not read {OUT}"))?;
    let doc = splice(&existing, &section)?;
    let tmp = format!("{OUT}.tmp-{}", std::process::id());
    fs::write(&tmp, doc)?;
    fs::rename(&tmp, OUT)?;
    println!("{section}");
    println!("wrote the {SECTION} section of {OUT}");
    Ok(())
}

/// The Rust in-process `Worker` on the same workload, as `tasker-bench` measures P1 (both batch sizes).
struct RustRun {
    /// (batch, steps/s, the row's result text, the bench process's CPU in cores over the run)
    rows: Vec<(u32, f64, String, Option<f64>)>,
    /// tasker-bench's "where the CPU went" lines for these runs, as printed.
    cpu_lines: Vec<String>,
}

impl RustRun {
    /// The comparison figure: the faster of the two batch sizes, so a binding's share is not flattered.
    fn best(&self) -> (u32, f64) {
        self.rows
            .iter()
            .map(|(b, r, _, _)| (*b, *r))
            .fold((0, 0.0), |acc, x| if x.1 > acc.1 { x } else { acc })
    }
}

fn rust_worker(url: &str, tasks: u64) -> Result<RustRun> {
    let out = util::output(
        Command::new(util::target_dir()?.join("release/tasker-bench"))
            .args(["--store", "postgres", "--out", OUT, "--only", "p1-inproc"])
            .args(["--p1-tasks", &tasks.to_string(), "--database-url", url]),
    )?;
    // With --only, tasker-bench prints its table and writes nothing; the rows are read back from it.
    let mut rows = Vec::new();
    for line in out.lines().filter(|l| l.starts_with("| P1 ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (setting, result) = (cells.get(2).copied().unwrap_or(""), cells.get(3).copied().unwrap_or(""));
        let batch = setting
            .rsplit_once("batch ")
            .and_then(|(_, b)| b.parse::<u32>().ok())
            .with_context(|| format!("no batch size in the tasker-bench row `{line}`"))?;
        let rate = result
            .split_once(" steps/s")
            .and_then(|(n, _)| n.replace(',', "").parse::<f64>().ok())
            .with_context(|| format!("no steps/s in the tasker-bench row `{line}`"))?;
        // "- P1 in-process, batch 64: PostgreSQL server 0.57 · bench process 0.20 · …": the worker's process.
        let cores = out
            .lines()
            .find(|l| l.starts_with(&format!("- P1 in-process, batch {batch}:")))
            .and_then(|l| l.split_once("bench process "))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|c| c.parse::<f64>().ok());
        rows.push((batch, rate, result.to_owned(), cores));
    }
    if rows.is_empty() {
        bail!("tasker-bench --only p1-inproc printed no P1 rows:\n{out}");
    }
    let cpu_lines = out
        .lines()
        .filter_map(|l| l.strip_prefix("- P1 in-process"))
        .map(|l| format!("Rust in-process{l}"))
        .collect();
    Ok(RustRun { rows, cpu_lines })
}

/// Runs one binding's script and returns its JSON line; the script exits non-zero when a task did not complete.
fn script(cmd: &mut Command, url: &str, tasks: u64, concurrency: u32) -> Result<Value> {
    cmd.args([
        "--url",
        url,
        "--tasks",
        &tasks.to_string(),
        "--concurrency",
        &concurrency.to_string(),
    ]);
    let out = util::output(cmd)?;
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("the bench script printed no JSON line:\n{out}"))?;
    let value: Value = serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
    println!("{line}");
    if value["ok"] != Value::Bool(true) {
        bail!("the bench script reported incomplete work: {line}");
    }
    Ok(value)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

struct Rendered<'a> {
    quick: bool,
    tasks: u64,
    date: &'a str,
    rust: &'a RustRun,
    bindings: &'a [Value],
    load_before: &'a str,
    load_after: &'a str,
}

fn num(v: &Value, key: &str) -> Result<f64> {
    v[key]
        .as_f64()
        .with_context(|| format!("the bench JSON has no number `{key}`: {v}"))
}

fn render(r: &Rendered) -> Result<String> {
    let steps = r.tasks * STEPS_PER_TASK;
    let workload = format!("{} × linear_4 ({} no-op steps)", thousands(r.tasks), thousands(steps));
    let (best_batch, best_rate) = r.rust.best();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<!-- bench:{SECTION}:start -->\n## Ruby, Python, Node and Java workers (PostgreSQL)\n"
    );
    if r.quick {
        let _ = writeln!(
            s,
            "> Quick run: smaller counts, meant to check that the bench works. Do not compare.\n"
        );
    }
    let quick = if r.quick { " --quick" } else { "" };
    let _ = writeln!(s, "- Command: `cargo xtask bench --bindings{quick}`");
    let _ = writeln!(s, "- Date: {}", r.date);
    let _ = writeln!(s, "- Machine: {}", machine());
    // Both concurrency settings of a binding print the same version; show it once.
    for binding in &BINDINGS {
        let (key, label) = binding.version;
        if let Some(v) = r
            .bindings
            .iter()
            .find(|b| b["binding"] == binding.key)
            .and_then(|b| b[key].as_str())
        {
            let _ = writeln!(s, "- {label}{v}");
        }
    }
    let _ = writeln!(
        s,
        "- Store: a throwaway durable PostgreSQL cluster (server defaults: fsync=on, synchronous_commit=on) \
         started by the command, a fresh database per run; release builds of tasker-bench, the Ruby extension, \
         the Python module, the Node addon and the Java library"
    );
    let _ = writeln!(
        s,
        "- Load average (1, 5, 15 min) before the runs: {}; after: {}. Other work may share the 2 cores.",
        r.load_before, r.load_after
    );
    let _ = writeln!(
        s,
        "\n| Binding | Setting | Steps/s | % of Rust | FFI µs/step (host CPU) | Process CPU µs/step | Aims | Met? \
         |\n|---|---|---|---|---|---|---|---|"
    );
    for (batch, rate, result, cores) in &r.rust.rows {
        let cpu = cores.map_or_else(|| "unknown".into(), |c| format!("≈ {:.0}", c / rate * 1e6));
        let _ = writeln!(
            s,
            "| Rust (in-process `Worker`) | {workload}; concurrency {CONCURRENCY}, batch {batch} | {result} | — | — \
             | {cpu} | — | — |"
        );
    }
    for b in r.bindings {
        let rate = num(b, "steps_per_s")?;
        let share = rate / best_rate * 100.0;
        let ffi = num(b, "ffi_cpu_us_per_step")?;
        let (share_ok, ffi_ok) = (share >= AIM_SHARE_PERCENT, ffi <= AIM_FFI_US);
        let met = match (share_ok, ffi_ok) {
            (true, true) => "yes",
            (true, false) => "steps/s yes; FFI no",
            (false, true) => "steps/s no; FFI yes",
            (false, false) => "no",
        };
        let name = BINDINGS.iter().find(|x| b["binding"] == x.key).map_or("?", |x| x.name);
        let _ = writeln!(
            s,
            "| {name} | {workload}; concurrency {} (claims up to the free threads) | {} steps/s ({:.2} s) \
             | {share:.0} % | {ffi:.1} µs (wall in native calls: {:.0} µs) | {:.0} | ≥ {AIM_SHARE_PERCENT:.0} % of \
             Rust; ≤ {AIM_FFI_US:.0} µs | {met} |",
            num(b, "concurrency")?,
            thousands_f(rate),
            num(b, "to_last_complete_s")?,
            num(b, "ffi_wall_us_per_step")?,
            num(b, "process_cpu_us_per_step")?,
        );
    }
    let _ = writeln!(s, "\nHow each figure is taken:\n");
    let notes = [
        format!(
            "**Workload**: {workload} of the test-kit pattern `linear(4)` (handler `testkit.noop`), created first \
             and not timed, in a fresh database on the same cluster for each run, one after another: \
             Rust (both batch sizes), then Ruby, Python, Node and Java (each at concurrency 16, then 64)."
        ),
        format!(
            "**Rust**: `tasker-bench --only p1-inproc --p1-tasks {}`, the in-process part of P1 in the PostgreSQL \
             section: one `Worker` in the bench process, from its start to the latest `finished_at` among the \
             tasks. The comparison figure for “% of Rust” is the faster of its two batch sizes (this run: batch \
             {best_batch}, {} steps/s).",
            r.tasks,
            thousands_f(best_rate)
        ),
        "**Ruby / Python / Node / Java**: crates/tasker-ruby/bench/worker_bench.rb, crates/tasker-python/\
             bench/worker_bench.py, crates/tasker-node/bench/worker_bench.js and crates/tasker-jvm/bench/\
             WorkerBench.java run the binding's own `Worker#run` / `Worker.run` loop (Ruby, Python and Java: \
             16 or 64 host threads; Node: up to 16 or 64 handler Promises on its one JS thread; each \
             `next_batch` asks for as many steps as there are free slots and carries the outcomes queued since \
             the last one into its transaction; the session's reporter writes those no claim carried, in \
             batches of up to 64) with a handler returning an empty map. A watcher polls `health_counts` every 20 ms and stops the worker once every \
             task is complete. Steps/s is steps ÷ the time from calling `run` to that poll (so up to 20 ms \
             long). Afterwards `health_counts` must show every task and step complete and no `report_failure` \
             call may have been made, or the run fails."
            .to_string(),
        "**FFI µs/step**: the scripts wrap the native session's `next_batch`, `report`, `report_failure` and `flush` (the calls the \
         worker loop makes into the extension) from outside the library (Ruby: a module prepended to \
         `TaskerCore::Internal::WorkerSession`; Python: a proxy in front of the native `WorkerSession`; Java: \
         a wrapper around the worker's session, `ThreadMXBean` thread CPU time). The \
         figure judged against the aim is the calling thread's CPU time inside those calls \
         (`CLOCK_THREAD_CPUTIME_ID` / `time.thread_time()`), summed over all threads, ÷ steps. Time blocked \
         waiting uses no CPU, so waits for work, for a pooled connection and for PostgreSQL are left out. It is \
         an upper bound on the boundary's cost, not the cost itself: tasker-shared-ffi's blocking calls drive \
         the engine's future on the calling thread (`block_on`), so besides conversions and releasing and \
         retaking the GVL/GIL it holds the engine's own per-step work (building and sending the queries, \
         reading the rows), which the Rust worker spends too. Timing only the boundary would need timers inside \
         the extension, which this bench does not add. The wall time in the same calls, summed over all \
         threads, ÷ steps, is shown beside it: mostly PostgreSQL commits and the wait for one of 8 pooled \
         connections among the host threads, so not an FFI cost. Claims that returned no step (the loop waiting for \
         work) are excluded from both and reported in the JSON line as `empty_claim_wall_us_per_step`."
            .to_string(),
        "**FFI µs/step, Node**: Node runs every handler and every native call on its one JS thread, and a \
         claimed batch is lowered into JS objects when its Promise settles, which no wrapper outside the addon \
         can time. So the figure judged against the aim is that thread's whole CPU time over the run \
         (`/proc/self/task/<pid>/schedstat`) ÷ steps: the native calls, and also the worker loop, the handler \
         calls, Promise bookkeeping and garbage collection. It is an upper bound on the native calls' share. \
         The JSON line also gives the wall time in the synchronous native calls alone (`sync_native_us_per_step`: \
         a claim's arguments and spawn, each outcome's queueing), and its wall column is the time from calling \
         a claim to its settled batch plus the report and flush calls."
            .to_string(),
        "**Process CPU µs/step**: all the CPU the worker's process used (every thread: host threads, the \
         engine's runtime threads) over the run, ÷ steps; for the bindings `CLOCK_PROCESS_CPUTIME_ID` / \
         `time.process_time()` around `run`, for Rust the bench process's share in tasker-bench's CPU line \
         (cores busy ÷ steps/s, from two decimals, hence ≈). The difference between a binding and Rust is \
         what the host language adds per step in total: the handler call, its threads, the FFI."
            .to_string(),
    ];
    for n in notes {
        let _ = writeln!(s, "- {n}");
    }
    let _ = writeln!(
        s,
        "\nWhere the CPU went during the Rust runs, in cores busy, as tasker-bench reports it:\n"
    );
    for l in &r.rust.cpu_lines {
        let _ = writeln!(s, "- {l}");
    }
    let _ = writeln!(s, "\nThe JSON lines of the scripts, as printed:\n");
    for b in r.bindings {
        let _ = writeln!(s, "- `{b}`");
    }
    let _ = writeln!(s, "<!-- bench:{SECTION}:end -->");
    Ok(s)
}

/// The document with the bindings section replaced, or appended when it has none; the rest is kept.
fn splice(doc: &str, section: &str) -> Result<String> {
    let (start, end) = (
        format!("<!-- bench:{SECTION}:start -->"),
        format!("<!-- bench:{SECTION}:end -->"),
    );
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
        _ => bail!("the {SECTION} markers in {OUT} are unbalanced; fix them by hand"),
    }
}

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim())
        })
        .unwrap_or("unknown CPU");
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown memory".into(),
            |kb| format!("{:.1} GiB memory", kb / 1024.0 / 1024.0),
        );
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cpus} logical CPUs online, {memory}, Linux {}", kernel.trim())
}

fn thousands(n: u64) -> String {
    thousands_f(n as f64)
}

/// `12345.6` as `12,346`.
fn thousands_f(x: f64) -> String {
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
    use super::splice;

    #[test]
    fn splice_appends_then_replaces_only_its_section() {
        let doc = "# Benchmarks\n\n<!-- bench:postgres:start -->\nP\n<!-- bench:postgres:end -->\n";
        let one = splice(doc, "<!-- bench:bindings:start -->\nA\n<!-- bench:bindings:end -->\n").unwrap();
        assert!(one.starts_with(doc) && one.ends_with("\nA\n<!-- bench:bindings:end -->\n"));
        let two = splice(&one, "<!-- bench:bindings:start -->\nB\n<!-- bench:bindings:end -->\n").unwrap();
        assert_eq!(two, one.replace("\nA\n", "\nB\n"));
        assert!(splice("<!-- bench:bindings:start -->\n", "x").is_err());
    }
}
