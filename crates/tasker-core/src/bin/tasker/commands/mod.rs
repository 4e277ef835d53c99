//! The commands, one module per noun.

mod analytics;
mod demo;
mod health;
mod schedule;
mod step;
mod task;
mod template;
mod worker;

use serde_json::Value;
use tasker_core::{Engine, EngineOptions};
use tracing::debug;

use crate::cli::{self, Cli, Command};
use crate::error::{bad_json, CliError, CliResult};

/// What every command needs besides its own arguments.
pub struct Ctx {
    pub json: bool,
    pub database_url: String,
}

impl Ctx {
    /// Opens the engine; only commands that need the database call this.
    pub async fn engine(&self) -> CliResult<Engine> {
        debug!(database_url = %self.redacted_url(), "connecting");
        Ok(Engine::connect(&self.database_url, EngineOptions::default()).await?)
    }

    /// The database URL with any password masked: the only form of it ever shown.
    pub fn redacted_url(&self) -> String {
        tasker_core::url::redact(&self.database_url)
    }
}

pub async fn run(cli: Cli) -> CliResult {
    let ctx = Ctx {
        json: cli.json,
        database_url: cli::database_url(cli.database_url.as_deref()),
    };
    match cli.command {
        Command::Demo(args) => demo::run(&ctx, args).await,
        Command::Template(cmd) => template::run(&ctx, cmd).await,
        Command::Task(cmd) => task::run(&ctx, cmd).await,
        Command::Step(cmd) => step::run(&ctx, cmd).await,
        Command::Schedule(cmd) => schedule::run(&ctx, cmd).await,
        Command::Health => health::run(&ctx).await,
        Command::Analytics(args) => analytics::run(&ctx, args).await,
        Command::Worker(args) => worker::run(&ctx, args).await,
    }
}

/// Runs `f` with an engine and closes it afterwards, whatever `f` returned, so that the pool shuts
/// down cleanly (and SQLite checkpoints its WAL).
pub async fn with_engine<T, F, Fut>(ctx: &Ctx, f: F) -> CliResult<T>
where
    F: FnOnce(Engine) -> Fut,
    Fut: std::future::Future<Output = CliResult<T>>,
{
    let engine = ctx.engine().await?;
    let out = f(engine.clone()).await;
    engine.close().await;
    out
}

/// Parses a JSON argument; a parse error names the flag.
pub fn parse_json_arg(flag: &str, text: &str) -> CliResult<Value> {
    serde_json::from_str(text).map_err(|e| bad_json(flag, &e))
}

/// Reads a file, or stdin for `-`.
pub fn read_input(path: &str) -> CliResult<String> {
    if path == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| CliError::io("stdin", e))
    } else {
        std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))
    }
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
