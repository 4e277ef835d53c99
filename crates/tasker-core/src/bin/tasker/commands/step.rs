//! `tasker step …`

use tasker_core::{parse_id, Step};

use super::{parse_json_arg, with_engine, Ctx};
use crate::cli::StepCommand;
use crate::error::CliResult;
use crate::output::{between, kv_table, opt_ts, preview, print_json, ts};

pub async fn run(ctx: &Ctx, cmd: StepCommand) -> CliResult {
    let step = match cmd {
        StepCommand::Show { step_id } => {
            let id = parse_id("step_id", &step_id)?;
            with_engine(ctx, |engine| async move { Ok(engine.step(id).await?) }).await?
        }
        StepCommand::Resolve { step_id, result } => {
            let id = parse_id("step_id", &step_id)?;
            let result = parse_json_arg("--result", &result)?;
            with_engine(ctx, |engine| async move {
                Ok(engine.resolve_step_manually(id, result).await?)
            })
            .await?
        }
    };
    if ctx.json {
        return print_json(&step);
    }
    outln!("{}", step_details(&step));
    Ok(())
}

fn step_details(s: &Step) -> comfy_table::Table {
    let mut rows = vec![
        ("step", s.id.to_string()),
        ("task", s.task_id.to_string()),
        ("name", s.name.clone()),
        ("handler", s.handler_key.clone()),
        ("state", s.state.to_string()),
        ("attempts", format!("{} of {}", s.attempts, s.max_attempts)),
        ("waiting for parents", s.unfinished_parents.to_string()),
        ("next attempt at", opt_ts(s.next_attempt_at)),
        ("worker", s.worker_id.clone().unwrap_or_else(|| "-".into())),
        ("lease expires", opt_ts(s.lease_expires_at)),
        ("created", ts(s.created_at)),
        ("started", opt_ts(s.started_at)),
        ("finished", opt_ts(s.finished_at)),
        ("duration", between(s.started_at, s.finished_at)),
        ("config", preview(&s.config, 200)),
    ];
    if let Some(r) = &s.result {
        rows.push(("result", preview(r, 400)));
    }
    if let Some(e) = &s.error {
        let code = e.code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
        let retry = if e.retryable { "retryable" } else { "permanent" };
        rows.push(("error", format!("{}{code} ({retry}): {}", e.error_class, e.message)));
        if !e.backtrace.is_empty() {
            rows.push(("backtrace", e.backtrace.join("\n")));
        }
    }
    kv_table(rows)
}
