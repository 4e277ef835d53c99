//! `tasker task …`

use serde_json::{json, Map, Value};
use tasker_core::engine::CreateTask;
use tasker_core::{parse_id, Step, Task, TaskFilter};

use super::{parse_json_arg, with_engine, Ctx};
use crate::cli::TaskCommand;
use crate::error::CliResult;
use crate::output::{between, explain_table, kv_table, opt_ts, pct, preview, print_json, snake, table, ts};

pub async fn run(ctx: &Ctx, cmd: TaskCommand) -> CliResult {
    match cmd {
        TaskCommand::Create {
            namespace,
            name,
            version,
            context,
            idempotency_key,
            tags,
            priority,
            run_at,
            delay,
        } => {
            // Arguments are checked before the database is opened, so a typo costs nothing.
            let context = parse_json_arg("--context", &context)?;
            let tags = (!tags.is_empty()).then(|| {
                Value::Object(
                    tags.into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect::<Map<_, _>>(),
                )
            });
            let req = CreateTask {
                namespace,
                name,
                version,
                context,
                idempotency_key,
                tags,
                priority,
                run_at,
                source_system: Some("tasker-cli".into()),
                ..Default::default()
            };
            let task = with_engine(ctx, |engine| async move {
                let mut req = req;
                if let Some(d) = delay {
                    // The engine's clock, so that the time is the one its claims compare with.
                    let d = chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
                    req.run_at = Some(
                        engine
                            .now()
                            .checked_add_signed(d)
                            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
                    );
                }
                Ok(engine.create_task(req).await?)
            })
            .await?;
            print_task(ctx, &task)
        }
        TaskCommand::List {
            namespace,
            name,
            state,
            limit,
            before,
        } => {
            let before = before.map(|b| parse_id("--before", &b)).transpose()?;
            let filter = TaskFilter {
                namespace,
                name,
                state,
                limit: Some(limit),
                before,
            };
            let tasks = with_engine(ctx, |engine| async move { Ok(engine.tasks(&filter).await?) }).await?;
            if ctx.json {
                return print_json(&tasks);
            }
            print_task_list(&tasks);
            Ok(())
        }
        TaskCommand::Show { task_id } => {
            let id = parse_id("task_id", &task_id)?;
            let (task, steps) = with_engine(ctx, |engine| async move {
                let task = engine.task(id).await?;
                let steps = engine.steps(id).await?;
                Ok((task, steps))
            })
            .await?;
            if ctx.json {
                return print_json(&json!({"task": task, "steps": steps}));
            }
            outln!("{}", task_details(&task));
            outln!("{}", steps_table(&steps));
            Ok(())
        }
        TaskCommand::Explain { task_id } => {
            let id = parse_id("task_id", &task_id)?;
            let (ex, exec, levels) = with_engine(ctx, |engine| async move {
                Ok((
                    engine.explain(id).await?,
                    engine.execution_context(id).await?,
                    engine.dependency_levels(id).await?,
                ))
            })
            .await?;
            if ctx.json {
                return print_json(&json!({"explain": ex, "execution_context": exec, "dependency_levels": levels}));
            }
            outln!(
                "task {}: {}, {} ({} of {} steps succeeded, {} ready, {} blocked by failures); next: {}",
                ex.task_id,
                ex.task_state,
                snake(&exec.execution_status),
                exec.completed_steps + exec.resolved_manually_steps,
                exec.total_steps,
                exec.ready_steps,
                exec.blocked_steps,
                snake(&exec.recommended_action),
            );
            if let Some(name) = &ex.schedule {
                match ex.schedule_next_fire_at {
                    Some(next) => outln!("created by schedule {name}; it fires next at {}", next.to_rfc3339()),
                    None => outln!("created by schedule {name}, which is paused"),
                }
            }
            outln!("{}", explain_table(&ex, &levels));
            Ok(())
        }
        TaskCommand::Cancel { task_id, reason } => {
            let id = parse_id("task_id", &task_id)?;
            let task = with_engine(ctx, |engine| async move {
                Ok(engine.cancel_task(id, reason.as_deref()).await?)
            })
            .await?;
            print_task(ctx, &task)
        }
        TaskCommand::RunNow { task_id } => {
            let id = parse_id("task_id", &task_id)?;
            let task = with_engine(ctx, |engine| async move { Ok(engine.run_task_now(id).await?) }).await?;
            print_task(ctx, &task)
        }
        TaskCommand::Retry { task_id } => {
            let id = parse_id("task_id", &task_id)?;
            let task = with_engine(ctx, |engine| async move { Ok(engine.retry_task(id).await?) }).await?;
            print_task(ctx, &task)
        }
    }
}

fn print_task(ctx: &Ctx, task: &Task) -> CliResult {
    if ctx.json {
        return print_json(task);
    }
    outln!("{}", task_details(task));
    Ok(())
}

fn print_task_list(tasks: &[Task]) {
    if tasks.is_empty() {
        outln!("no tasks match");
        return;
    }
    let mut t = table(
        &["id", "template", "state", "steps ok", "failed", "created", "duration"],
        &[3, 4, 6],
    );
    for task in tasks {
        t.add_row(vec![
            task.id.to_string(),
            format!("{}/{}@{}", task.namespace, task.name, task.version),
            task.state.to_string(),
            format!("{}/{}", task.steps_succeeded, task.steps_total),
            task.steps_failed.to_string(),
            ts(task.created_at),
            between(Some(task.created_at), task.finished_at),
        ]);
    }
    outln!("{t}");
}

pub fn task_details(task: &Task) -> comfy_table::Table {
    let ratio = if task.steps_total == 0 {
        0.0
    } else {
        task.steps_succeeded as f64 / task.steps_total as f64
    };
    let mut rows = vec![
        ("task", task.id.to_string()),
        ("template", format!("{}/{}@{}", task.namespace, task.name, task.version)),
        ("state", task.state.to_string()),
        (
            "steps",
            format!(
                "{} of {} succeeded ({}), {} failed",
                task.steps_succeeded,
                task.steps_total,
                pct(ratio),
                task.steps_failed
            ),
        ),
        ("context", preview(&task.context, 200)),
    ];
    if task.tags.as_object().is_some_and(|m| !m.is_empty()) {
        rows.push(("tags", preview(&task.tags, 200)));
    }
    if let Some(k) = &task.idempotency_key {
        rows.push(("idempotency key", k.clone()));
    }
    if task.priority != 0 {
        rows.push(("priority", task.priority.to_string()));
    }
    if let Some(at) = task.held_until {
        rows.push(("scheduled for", at.to_rfc3339()));
    } else if let Some(at) = task.run_at {
        rows.push(("asked to start", at.to_rfc3339()));
    }
    for (label, v) in [
        ("initiator", &task.initiator),
        ("source", &task.source_system),
        ("reason", &task.reason),
    ] {
        if let Some(v) = v {
            rows.push((label, v.clone()));
        }
    }
    rows.extend([
        ("created", ts(task.created_at)),
        ("started", opt_ts(task.started_at)),
        ("finished", opt_ts(task.finished_at)),
        ("duration", between(Some(task.created_at), task.finished_at)),
    ]);
    kv_table(rows)
}

pub fn steps_table(steps: &[Step]) -> comfy_table::Table {
    let mut t = table(
        &[
            "step",
            "state",
            "attempts",
            "handler",
            "started",
            "duration",
            "result / error",
            "id",
        ],
        &[2],
    );
    for s in steps {
        let outcome = match (&s.error, &s.result) {
            (Some(e), _) if !s.state.is_success() => format!("{}: {}", e.error_class, e.message),
            (_, Some(r)) => preview(r, 60),
            (Some(e), None) => format!("{}: {}", e.error_class, e.message),
            (None, None) => "-".into(),
        };
        t.add_row(vec![
            s.name.clone(),
            s.state.to_string(),
            format!("{}/{}", s.attempts, s.max_attempts),
            s.handler_key.clone(),
            opt_ts(s.started_at),
            between(s.started_at, s.finished_at),
            outcome,
            s.id.to_string(),
        ]);
    }
    t
}
