//! The command line: every command, flag and argument.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tasker_core::{TaskState, Timestamp};

use crate::error::EXIT_CODES_HELP;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://tasker.db";

#[derive(Debug, Parser)]
#[command(
    name = "tasker",
    version,
    about = "Tasker Core: define DAG workflows, run them, and inspect every task and step",
    long_about = "Tasker Core: define DAG workflows, run them, and inspect every task and step.\n\n\
        Try `tasker demo` to run the example workflows end to end against a local SQLite database.",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// Database URL [default: $TASKER_DATABASE_URL, else $DATABASE_URL, else sqlite://tasker.db]
    ///
    /// `sqlite://path/to/file.db` (created if missing), `sqlite:///absolute/path.db`, `sqlite::memory:` or
    /// `memory:`. Passwords in URLs are never printed.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "TASKER_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Print machine-readable JSON on stdout instead of tables
    #[arg(long, global = true)]
    pub json: bool,

    /// Log filter for stderr, for example `info` or `tasker_core=debug` [default: $RUST_LOG, else warn]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register the example workflows, create tasks and run them with the built-in handlers
    Demo(DemoArgs),
    /// Validate, register and inspect workflow templates
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Create, list, inspect, cancel and retry tasks
    #[command(subcommand)]
    Task(TaskCommand),
    /// Inspect steps and resolve them by hand
    #[command(subcommand)]
    Step(StepCommand),
    /// Register, list, pause, resume and remove cron schedules that create tasks
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Check the database and count tasks and steps by state
    Health,
    /// Throughput, rates and durations of finished work, and the slowest steps and tasks
    Analytics(AnalyticsArgs),
    /// Run the example handlers until SIGINT or SIGTERM, then finish running steps and stop
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many tasks to create, spread over the example workflows
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub tasks: u32,
    /// Handlers running at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Check a template file without touching the database; prints OK or every problem with its field path
    Validate {
        /// A YAML or JSON template file, or - for stdin
        file: String,
    },
    /// Validate and register template files; registering identical content again is a no-op
    Register {
        /// YAML or JSON template files, or - for stdin
        #[arg(required_unless_present = "examples")]
        files: Vec<String>,
        /// Also register the built-in example templates (the ones `tasker demo` and `tasker worker` run)
        #[arg(long)]
        examples: bool,
    },
    /// List every registered template version
    List,
    /// Show a registered template
    Show {
        /// The template's namespace, for example ecommerce
        namespace: String,
        /// The template's name, for example order_fulfillment
        name: String,
        /// The version to show [default: the newest by semver]
        #[arg(long)]
        version: Option<String>,
        /// Output format [default: a table, or JSON with --json]
        #[arg(long, value_enum)]
        format: Option<TemplateFormat>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TemplateFormat {
    Yaml,
    Json,
    Mermaid,
    Dot,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Register a schedule (or replace the definition of one with the same name); every worker process fires it
    Add {
        /// A unique name, for example nightly-report
        name: String,
        /// The template's namespace
        namespace: String,
        /// The template's name
        template: String,
        /// A cron expression: five fields, or six with seconds first, or @hourly, @daily, @weekly, @monthly
        #[arg(long)]
        cron: String,
        /// An IANA time zone the expression is read in, for example Europe/Berlin
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// The template version [default: the newest by semver at each occurrence]
        #[arg(long)]
        version: Option<String>,
        /// The context of every task it creates: a JSON object
        #[arg(long, value_name = "JSON", default_value = "{}")]
        context: String,
        /// The priority of the tasks it creates [default: the template's]
        #[arg(long, allow_hyphen_values = true, value_parser = clap::value_parser!(i32).range(-1000..=1000))]
        priority: Option<i32>,
        /// What becomes of occurrences missed while nothing ran (more than 60 s late)
        #[arg(long, value_enum, default_value = "skip")]
        misfire: MisfireArg,
    },
    /// List schedules with their next occurrence
    List,
    /// Stop a schedule firing until it is resumed
    Pause { name: String },
    /// Let a paused schedule fire again, from its next occurrence
    Resume { name: String },
    /// Remove a schedule; the tasks it created stay
    Remove { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MisfireArg {
    /// Skip them
    Skip,
    /// Create one task for them all
    RunOnce,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Create a task of a registered template
    Create {
        /// The template's namespace, for example ecommerce
        namespace: String,
        /// The template's name, for example order_fulfillment
        name: String,
        /// The template version [default: the newest by semver]
        #[arg(long)]
        version: Option<String>,
        /// The task context: a JSON object, checked against the template's input_schema
        #[arg(long, value_name = "JSON", default_value = "{}")]
        context: String,
        /// A repeat with the same key returns the existing task instead of creating another
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// A tag; repeat for more
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
        tags: Vec<(String, String)>,
        /// Claims take higher priorities first [default: the template's priority, else 0]
        #[arg(long, allow_hyphen_values = true, value_parser = clap::value_parser!(i32).range(-1000..=1000))]
        priority: Option<i32>,
        /// Start no step before this RFC 3339 time, for example 2027-01-02T03:04:05Z
        #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "delay")]
        run_at: Option<Timestamp>,
        /// Start no step before this long from now, for example 30s, 10m, 2h or 1d
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        delay: Option<Duration>,
    },
    /// Start a task created to start later now
    RunNow {
        /// The task's id (a UUID)
        task_id: String,
    },
    /// List tasks, newest first
    List {
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_parser = parse_task_state)]
        state: Option<TaskState>,
        /// At most this many
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Only tasks older than this task id (for paging)
        #[arg(long, value_name = "TASK_ID")]
        before: Option<String>,
    },
    /// Show a task and its steps
    Show {
        /// The task's id (a UUID)
        task_id: String,
    },
    /// Explain why each step of a task is or is not ready
    Explain {
        /// The task's id (a UUID)
        task_id: String,
    },
    /// Cancel a task: every unfinished step is cancelled
    Cancel {
        /// The task's id (a UUID)
        task_id: String,
        /// Recorded on the cancellation
        #[arg(long)]
        reason: Option<String>,
    },
    /// Retry a task in error: its failed steps get a fresh attempt budget
    Retry {
        /// The task's id (a UUID)
        task_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StepCommand {
    /// Show a step with its result or error
    Show {
        /// The step's id (a UUID), as `tasker task show` lists it
        step_id: String,
    },
    /// Resolve a pending or failed step by hand; its dependants may then run
    Resolve {
        /// The step's id (a UUID), as `tasker task show` lists it
        step_id: String,
        /// The result to record, as JSON; dependants receive it as this step's result
        #[arg(long, value_name = "JSON", default_value = "{}")]
        result: String,
    },
}

#[derive(Debug, Args)]
pub struct AnalyticsArgs {
    /// Window start: a duration ago (30s, 30m, 1h, 2d, 1w) or an RFC 3339 time
    #[arg(long, default_value = "1h", value_parser = parse_since)]
    pub since: Since,
    /// How many slowest steps and tasks to list
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Only list slowest steps and tasks of this namespace (the metrics cover everything)
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only list slowest steps and tasks of this template name
    #[arg(long)]
    pub name: Option<String>,
    /// Only list slowest steps and tasks of this template version
    #[arg(long)]
    pub version: Option<String>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Handlers running at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// This worker's id in the audit trail [default: host-pid-random]
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Register the example templates before starting, so that their tasks can be created
    #[arg(long)]
    pub register_examples: bool,
    /// Also run the test kit's handlers (testkit.noop, testkit.sleep), for load and crash tests
    #[arg(long)]
    pub testkit: bool,
    /// How long a claim holds without a heartbeat; a crashed worker's steps are taken over after this
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub lease_seconds: u32,
    /// Most steps taken by one claim
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub batch_size: u32,
    /// How long an idle worker waits for a wake-up before it polls again, in milliseconds
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub poll_ms: u64,
    /// How often this worker runs the maintenance pass (reaping expired leases, waking due retries), in
    /// milliseconds; one pass runs at a time across all workers [default: a third of the lease]
    #[arg(long, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub maintenance_ms: Option<u64>,
}

/// The start of an analytics window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Since {
    Ago(Duration),
    At(Timestamp),
}

impl Since {
    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            Since::At(t) => t,
            // A window reaching past the start of representable time simply covers everything.
            Since::Ago(d) => chrono::TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
        }
    }
}

fn parse_since(s: &str) -> Result<Since, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Since::At(t.with_timezone(&chrono::Utc)));
    }
    duration(s, "expected a duration such as 30m, 1h or 2d, or an RFC 3339 time").map(Since::Ago)
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2027-01-02T03:04:05Z, found {s:?} ({e})"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration(s, "expected a duration such as 30s, 10m, 2h or 1d")
}

/// A whole number of seconds, minutes, hours, days or weeks: `30s`, `10m`, `2h`, `1d`, `1w`.
fn duration(s: &str, expected: &str) -> Result<Duration, String> {
    let expected = || format!("{expected}, found {s:?}");
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(expected)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| expected())?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(expected)?,
        "h" => n.checked_mul(3600).ok_or_else(expected)?,
        "d" => n.checked_mul(86_400).ok_or_else(expected)?,
        "w" => n.checked_mul(604_800).ok_or_else(expected)?,
        _ => return Err(expected()),
    };
    Ok(Duration::from_secs(secs))
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, found {s:?}")),
    }
}

fn parse_task_state(s: &str) -> Result<TaskState, String> {
    TaskState::ALL.iter().copied().find(|t| t.as_str() == s).ok_or_else(|| {
        let all: Vec<&str> = TaskState::ALL.iter().map(|t| t.as_str()).collect();
        format!("expected one of {}, found {s:?}", all.join(", "))
    })
}

/// The database URL: the flag or $TASKER_DATABASE_URL (clap reads both), else $DATABASE_URL, else the default.
pub fn database_url(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn since_accepts_durations_and_times() {
        assert_eq!(parse_since("30m"), Ok(Since::Ago(Duration::from_secs(1800))));
        assert_eq!(parse_since("2d"), Ok(Since::Ago(Duration::from_secs(172_800))));
        assert!(matches!(parse_since("2025-01-02T03:04:05Z"), Ok(Since::At(_))));
        assert!(parse_since("soon").unwrap_err().contains("\"soon\""));
        assert!(parse_since("5y").is_err());
        assert!(parse_since("h").is_err());
    }

    #[test]
    fn tags_need_a_key() {
        assert_eq!(parse_tag("env=prod"), Ok(("env".into(), "prod".into())));
        assert_eq!(parse_tag("empty="), Ok(("empty".into(), String::new())));
        assert!(parse_tag("=x").is_err());
        assert!(parse_tag("novalue").is_err());
    }
}
