//! `tasker-bench`: measures one store and writes the figures into that store's section of a markdown file.
//!
//! - `--store sqlite` (B1–B3, [`sqlite`]): end-to-end no-op throughput of the in-process Rust worker,
//!   `explain` and `create_task` on 1,000-step DAGs.
//! - `--store postgres` (P1, P3, P4, P6, [`postgres`]): no-op throughput with `tasker worker` processes and
//!   in process, ready→handler-start latency through LISTEN/NOTIFY, create→complete latency, and throughput
//!   decay as the database grows; each in a fresh database on the server `--database-url` names.
//!
//! Run it through `cargo xtask bench --store <sqlite|postgres>`, which builds it in release mode.

mod cpu;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tasker_core::analytics::HealthCounts;

type BenchResult<T> = Result<T, Box<dyn StdError + Send + Sync>>;

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
    /// A PostgreSQL server URL (required with `--store postgres`). Each benchmark creates a fresh database
    /// `tasker_bench_…` on that server through this URL's database, and drops it afterwards.
    #[arg(long)]
    database_url: Option<String>,
    /// Only these PostgreSQL benchmarks (p1, p1-inproc, p3, p4, p6, comma-separated); prints the table and
    /// writes nothing, since a partial section would hide the missing figures.
    #[arg(long, value_delimiter = ',', hide = true)]
    only: Vec<String>,
    /// The number of P1 tasks instead of the default (5,000; 200 with --quick); only with --only.
    #[arg(long, hide = true)]
    p1_tasks: Option<usize>,
    /// Only build P6's grown database (1,000,000 finished steps) at this URL, sqlite:// or postgres://, and
    /// keep it, to measure reads on it; `--store` and `--out` are then ignored.
    #[arg(long, hide = true)]
    build_p6_database: Option<String>,
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

/// What one store's benchmarks produced, for its section of the markdown file.
struct Report {
    /// Bullets after Command, Date, Machine and Toolchain: the store and its settings.
    details: Vec<String>,
    rows: Vec<Row>,
    /// The bullets of "How each figure is taken".
    notes: Vec<String>,
    /// Further paragraphs, each a heading line and its bullets, after the notes.
    after: Vec<(String, Vec<String>)>,
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

    fn with_aim(self, aim: impl Into<String>, met: bool) -> Row {
        self.with_aim_text(aim, if met { "yes" } else { "no" })
    }

    fn with_aim_text(mut self, aim: impl Into<String>, met: impl Into<String>) -> Row {
        self.aim = aim.into();
        self.met = met.into();
        self
    }
}

/// Latencies in milliseconds, summarised with nearest-rank percentiles as `tasker_core::analytics` does,
/// but kept fractional: whole milliseconds would hide the difference that matters against a 5 ms aim.
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
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
            p99: rank(99.0),
            max: ms.last().copied().unwrap_or(0.0),
            mean: ms.iter().sum::<f64>() / n as f64,
        }
    }

    fn show(&self) -> String {
        format!(
            "p50 {:.2} ms · p95 {:.2} ms · mean {:.2} ms",
            self.p50, self.p95, self.mean
        )
    }

    /// The tail: p50, p99 and the worst run.
    fn show_tail(&self) -> String {
        format!(
            "p50 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
            self.p50, self.p99, self.max
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
    if let Some(url) = &args.build_p6_database {
        return postgres::build_p6_database(url, 1_000_000).await;
    }
    let url = match (args.store, &args.database_url) {
        (StoreArg::Sqlite, None) => None,
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
                return Err(format!(
                    "--database-url must be a postgres:// URL, found {}",
                    tasker_core::url::redact(url)
                )
                .into());
            }
            Some(url.clone())
        }
    };
    if let Some(bad) = args.only.iter().find(|o| !postgres::NAMES.contains(&o.as_str())) {
        return Err(format!("--only takes {}, found {bad:?}", postgres::NAMES.join(", ")).into());
    }
    if !args.only.is_empty() && args.store != StoreArg::Postgres {
        return Err("--only is for --store postgres".into());
    }
    // A section written with another P1 size would not say so; --only writes nothing.
    if args.p1_tasks.is_some() && args.only.is_empty() {
        return Err("--p1-tasks is only for runs with --only".into());
    }
    // Fail on a bad output path before spending minutes measuring.
    let existing = read_existing(&args.out)?;
    let started = chrono::Utc::now();
    let report = match url {
        None => sqlite::run(args.quick).await?,
        Some(url) => postgres::run(&url, args.quick, &args.only, args.p1_tasks).await?,
    };

    let table = render_table(&report.rows);
    if !args.only.is_empty() {
        println!("{table}");
        for (heading, bullets) in &report.after {
            println!("{heading}");
            for b in bullets {
                println!("- {b}");
            }
        }
        eprintln!("tasker-bench: --only given: nothing written to {}", args.out.display());
        return Ok(());
    }
    let section = render_section(args, started, &report, &table);
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

fn count(map: &BTreeMap<String, i64>, state: &str) -> i64 {
    map.get(state).copied().unwrap_or(0)
}

fn describe_counts(h: &HealthCounts) -> String {
    let nonzero = |m: &BTreeMap<String, i64>| {
        m.iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("tasks [{}], steps [{}]", nonzero(&h.tasks), nonzero(&h.steps))
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

fn render_section(args: &Args, started: chrono::DateTime<chrono::Utc>, report: &Report, table: &str) -> String {
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
    for d in &report.details {
        let _ = writeln!(s, "- {d}");
    }
    let _ = writeln!(s, "\n{table}");
    let _ = writeln!(s, "How each figure is taken:\n");
    for n in &report.notes {
        let _ = writeln!(s, "- {n}");
    }
    for (heading, bullets) in &report.after {
        let _ = writeln!(s, "\n{heading}\n");
        for b in bullets {
            let _ = writeln!(s, "- {b}");
        }
    }
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
