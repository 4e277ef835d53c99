//! Rendering: tables for people, JSON for machines, and the formatting both share.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use serde::Serialize;
use serde_json::Value;
use tasker_core::analytics::HealthCounts;
use tasker_core::engine::DependencyLevel;
use tasker_core::readiness::Explain;
use tasker_core::{StepState, TaskState, Timestamp};

use crate::error::{CliError, CliResult, EXIT_FAILURE};

/// Set once stdout is gone (`tasker task list | head -1`): later output is dropped instead of
/// panicking, so that the command still finishes and cleans up.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// `println!` for command output; see [`write_out`].
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for command output; see [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

/// Writes to stdout. A closed pipe ends the output quietly, as in other Unix tools; any other write error
/// is reported once on stderr.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to stdout: {e}");
        }
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> CliResult {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(EXIT_FAILURE, format!("cannot encode the output as JSON: {e}")))?;
    outln!("{text}");
    Ok(())
}

/// A table with a header row; columns listed in `right` are right-aligned (numbers).
pub fn table(header: &[&str], right: &[usize]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// A two-column table of labelled values.
pub fn kv_table(rows: Vec<(&str, String)>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    t
}

/// The snake_case name a serde enum serializes to, for enums without `Display`.
pub fn snake<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

pub fn ts(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

pub fn opt_ts(t: Option<Timestamp>) -> String {
    t.map(ts).unwrap_or_else(|| "-".into())
}

/// Milliseconds, in the unit that reads best.
pub fn ms(ms: i64) -> String {
    match ms {
        m if m.abs() < 1_000 => format!("{m} ms"),
        m if m.abs() < 60_000 => format!("{:.2} s", m as f64 / 1000.0),
        m => format!("{}m {:02}s", m / 60_000, (m % 60_000) / 1000),
    }
}

/// The time between two timestamps, when both are known.
pub fn between(start: Option<Timestamp>, end: Option<Timestamp>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => ms((e - s).num_milliseconds()),
        _ => "-".into(),
    }
}

/// Compact JSON cut to `max` characters.
pub fn preview(v: &Value, max: usize) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A rate in the unit that keeps it readable: a day-long window with a few tasks is not "0.0/s".
pub fn rate(per_second: f64) -> String {
    match per_second {
        r if r <= 0.0 => "0/s".into(),
        r if r >= 1.0 => format!("{r:.1}/s"),
        r if r * 60.0 >= 1.0 => format!("{:.1}/min", r * 60.0),
        r => format!("{:.2}/h", r * 3600.0),
    }
}

pub fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// One row per state: how many tasks and how many steps are in it (`-` where the state does not apply).
pub fn states_table(tasks: &dyn Fn(TaskState) -> i64, steps: &dyn Fn(StepState) -> i64) -> Table {
    let mut t = table(&["state", "tasks", "steps"], &[1, 2]);
    let mut names: Vec<&str> = StepState::ALL.iter().map(|s| s.as_str()).collect();
    for s in TaskState::ALL {
        if !names.contains(&s.as_str()) {
            names.push(s.as_str());
        }
    }
    for name in names {
        let task = TaskState::ALL
            .iter()
            .find(|s| s.as_str() == name)
            .map(|s| tasks(*s).to_string());
        let step = StepState::ALL
            .iter()
            .find(|s| s.as_str() == name)
            .map(|s| steps(*s).to_string());
        t.add_row(vec![
            name.to_string(),
            task.unwrap_or_else(|| "-".into()),
            step.unwrap_or_else(|| "-".into()),
        ]);
    }
    t
}

/// The states table of the engine's health counts.
pub fn health_table(h: &HealthCounts) -> Table {
    states_table(&|s| h.tasks.get(s.as_str()).copied().unwrap_or(0), &|s| {
        h.steps.get(s.as_str()).copied().unwrap_or(0)
    })
}

/// Why each step is or is not ready, with its DAG level.
pub fn explain_table(ex: &Explain, levels: &[DependencyLevel]) -> Table {
    let mut t = table(
        &["level", "step", "state", "ready", "attempts", "waits for", "reasons"],
        &[0, 4],
    );
    let mut rows: Vec<_> = ex
        .steps
        .iter()
        .map(|s| (levels.iter().find(|l| l.step_id == s.step_id).map(|l| l.level), s))
        .collect();
    // Level first, then the template's order (explain lists steps in that order), so that the table reads
    // top-down like the DAG.
    rows.sort_by_key(|(level, _)| *level);
    for (level, s) in rows {
        let mut waits = s.blocked_by.join(", ");
        if let Some(at) = s.retry_at {
            if !waits.is_empty() {
                waits.push_str("; ");
            }
            waits.push_str(&format!("retry at {}", ts(at)));
        }
        t.add_row(vec![
            level.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            s.name.clone(),
            s.state.to_string(),
            if s.ready { "yes".into() } else { "no".into() },
            format!("{}/{}", s.attempts, s.max_attempts),
            if waits.is_empty() { "-".into() } else { waits },
            s.reasons.join("; "),
        ]);
    }
    t
}
