//! `tasker`: the command-line tool of Tasker Core.
//!
//! Every command opens the engine on the database URL it is given, does one thing, and prints a table
//! (or JSON with `--json`). Errors go to stderr as `error: <message>` with an exit code per error kind;
//! see `tasker --help`.

#[macro_use]
mod output;
mod cli;
mod commands;
mod error;
mod examples;
mod handlers;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::Cli;
use crate::error::{CliError, EXIT_FAILURE};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(cli.log_level.as_deref()) {
        return fail(&e);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return fail(&CliError::new(
                EXIT_FAILURE,
                format!("cannot start the async runtime: {e}"),
            ))
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &CliError) -> ExitCode {
    eprintln!("error: {}", e.message);
    ExitCode::from(e.code)
}

/// Logs go to stderr so that stdout stays clean for tables and JSON. `--log-level` wins over `RUST_LOG`
/// because it is the more specific request.
fn init_logging(flag: Option<&str>) -> Result<(), CliError> {
    let filter = match flag {
        Some(f) => EnvFilter::try_new(f).map_err(|e| {
            CliError::new(
                2,
                format!("invalid value {f:?} for --log-level: {e} (expected for example warn or tasker_core=debug)"),
            )
        })?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    Ok(())
}
