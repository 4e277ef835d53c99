//! Running commands so that a log shows exactly what ran, and the summary table of `test-all`.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Plain `cargo` from PATH rather than `$CARGO`, so the printed commands are the ones a developer would type
/// and rustup still picks the toolchain.
pub fn cargo() -> Command {
    Command::new("cargo")
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
            words.push(format!("{}={}", key.to_string_lossy(), quote(value)));
        }
    }
    words.push(quote(cmd.get_program()));
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = mask_password(&word.to_string_lossy());
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

/// Masks the password of a `scheme://user:password@host` URL.
pub fn mask_password(word: &str) -> String {
    let Some(scheme_end) = word.find("://") else {
        return word.to_owned();
    };
    let rest = &word[scheme_end + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return word.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return word.to_owned();
    };
    let start = scheme_end + 3 + colon + 1;
    let end = scheme_end + 3 + at;
    format!("{}***{}", &word[..start], &word[end..])
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
        assert_eq!(
            mask_password("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            mask_password("postgres://postgres@127.0.0.1:5/db"),
            "postgres://postgres@127.0.0.1:5/db"
        );
        assert_eq!(mask_password("docs/benchmarks.md"), "docs/benchmarks.md");
    }
}
