//! How the CLI fails: a message for stderr and an exit code that tells scripts what went wrong.

use std::fmt;

use tasker_core::{Error, ErrorKind};

/// The exit codes, as shown at the end of `tasker --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    other failure: internal or handler error, unreadable file, or the demo left tasks unfinished
  2    usage error: unknown command, bad or missing flag
  3    validation: invalid template, context, id or JSON argument
  4    not_found
  5    conflict (for example a registered version with different content)
  6    invalid_transition (for example cancelling a completed task)
  7    stale_claim
  8    cycle_detected: the template's dependencies form a cycle
  9    database or closed
  10   timeout
  11   configuration (for example an unsupported database URL)
  130  interrupted by SIGINT or SIGTERM before the work finished";

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit code of an engine error kind.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Validation => 3,
        ErrorKind::NotFound => 4,
        ErrorKind::Conflict => 5,
        ErrorKind::InvalidTransition => 6,
        ErrorKind::StaleClaim => 7,
        ErrorKind::CycleDetected => 8,
        ErrorKind::Database | ErrorKind::Closed => 9,
        ErrorKind::Timeout => 10,
        ErrorKind::Configuration => 11,
        ErrorKind::Handler | ErrorKind::Internal => EXIT_FAILURE,
    }
}

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// A file that could not be read.
    pub fn io(path: &str, e: std::io::Error) -> Self {
        CliError::new(EXIT_FAILURE, format!("cannot read {path}: {e}"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError {
            code: exit_code(e.kind()),
            message: render(&e),
        }
    }
}

/// The message of an engine error; several field errors get a line each, so that long lists stay legible.
pub fn render(e: &Error) -> String {
    match e {
        Error::Validation { what, errors } if errors.len() > 1 => {
            let mut s = format!("invalid {what}: {} problems", errors.len());
            for fe in errors {
                s.push_str("\n  ");
                s.push_str(&fe.to_string());
            }
            s
        }
        _ => e.to_string(),
    }
}

/// A JSON argument that does not parse: a validation error naming the flag.
pub fn bad_json(flag: &str, e: &serde_json::Error) -> CliError {
    Error::field(
        "argument",
        flag,
        format!("expected JSON, found text that does not parse ({e})"),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_documented_code() {
        for k in ErrorKind::ALL {
            let code = exit_code(k);
            assert!(EXIT_CODES_HELP.contains(&format!("\n  {code} ")), "{k} -> {code}");
        }
    }
}
