//! Running commands so that a log shows exactly what ran, and the summary table of `test-all`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Plain `cargo` from PATH rather than `$CARGO`, so the printed commands are the ones a developer would type
/// and rustup still picks the toolchain.
pub fn cargo() -> Command {
    Command::new("cargo")
}

/// Cargo's target dir as an absolute path: `CARGO_TARGET_DIR` when set (machines that share one target dir
/// between checkouts set it), else the workspace's `target/`. Artifacts are read from here, never from a
/// hard-coded `target/`.
pub fn target_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from);
    std::path::absolute(&dir).with_context(|| format!("could not resolve the target dir {}", dir.display()))
}

/// Runs `cmd` with the terminal as its stdio, so progress and `test result:` lines stream as they happen.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    println!("$ {shown}");
    let status = cmd.status().with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed: {status}");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout; on failure the error carries everything it printed, which is where
/// tools like initdb explain themselves.
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = display(cmd);
    println!("$ {shown}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{shown}` failed: {}\n{}{}",
            out.status,
            stdout.trim_end(),
            stderr.trim_end()
        );
    }
    Ok(stdout)
}

/// Whether `cmd` runs and exits 0; used to probe for tools, so nothing is printed.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The command as a shell line, with the env vars it sets and passwords in URLs masked, since CI logs are public.
pub fn display(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            // Masked as one `KEY=value` word, so that `PGPASSWORD=…` is caught by its name as well.
            let key = key.to_string_lossy();
            let masked = crate::url::redact(&format!("{key}={}", value.to_string_lossy()));
            let value = masked.strip_prefix(&format!("{key}=")).unwrap_or(crate::url::MASK);
            words.push(format!("{key}={}", quote(OsStr::new(value))));
        }
    }
    words.push(quote(cmd.get_program()));
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = crate::url::redact(&word.to_string_lossy());
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        word
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        }
    }
}

pub struct Row {
    pub name: &'static str,
    pub status: Status,
    /// `None` for parts that never ran.
    pub seconds: Option<f64>,
}

pub fn print_summary(rows: &[Row]) {
    let width = rows
        .iter()
        .map(|row| row.name.len())
        .chain(["total".len()])
        .max()
        .unwrap_or(0);
    println!("\n{:<width$}  {:<7}  {:>8}", "part", "status", "seconds");
    println!("{:-<width$}  {:-<7}  {:->8}", "", "", "");
    for row in rows {
        let seconds = row.seconds.map_or_else(|| "-".to_owned(), |s| format!("{s:.1}"));
        println!("{:<width$}  {:<7}  {:>8}", row.name, row.status.label(), seconds);
    }
    let total: f64 = rows.iter().filter_map(|row| row.seconds).sum();
    println!("{:<width$}  {:<7}  {:>8.1}", "total", "", total);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_shows_env() {
        let mut cmd = Command::new("psql");
        cmd.env("RUST_BACKTRACE", "1").args(["-c", "select 1", "it's"]);
        assert_eq!(display(&cmd), r"RUST_BACKTRACE=1 psql -c 'select 1' 'it'\''s'");
    }

    #[test]
    fn passwords_are_masked() {
        let mut cmd = Command::new("cargo");
        cmd.env("TASKER_TEST_PG_URL", "postgres://u:secret@h:5432/db").args([
            "run",
            "postgres://postgres@127.0.0.1:5/db",
            "host=h password=pw",
            "docs/benchmarks.md",
        ]);
        assert_eq!(
            display(&cmd),
            "TASKER_TEST_PG_URL='postgres://u:***@h:5432/db' cargo run postgres://postgres@127.0.0.1:5/db \
             'host=h password=***' docs/benchmarks.md"
        );
        let mut cmd = Command::new("psql");
        cmd.env("PGPASSWORD", "hunter2");
        assert_eq!(display(&cmd), "PGPASSWORD='***' psql");
    }
}
