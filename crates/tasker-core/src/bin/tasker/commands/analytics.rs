//! `tasker analytics`

use serde_json::json;
use tasker_core::analytics::{AnalyticsMetrics, SlowStep, SlowTask};
use tasker_core::AnalyticsFilter;

use super::{with_engine, Ctx};
use crate::cli::AnalyticsArgs;
use crate::error::CliResult;
use crate::output::{kv_table, ms, pct, print_json, rate, table, ts};

pub async fn run(ctx: &Ctx, args: AnalyticsArgs) -> CliResult {
    let limit = args.limit as usize;
    let (metrics, steps, tasks) = with_engine(ctx, |engine| async move {
        let since = args.since.resolve(engine.now());
        let filter = AnalyticsFilter {
            since: Some(since),
            namespace: args.namespace,
            name: args.name,
            version: args.version,
        };
        Ok((
            engine.analytics_metrics(since).await?,
            engine.slowest_steps(&filter, limit).await?,
            engine.slowest_tasks(&filter, limit).await?,
        ))
    })
    .await?;
    if ctx.json {
        return print_json(&json!({"metrics": metrics, "slowest_steps": steps, "slowest_tasks": tasks}));
    }
    outln!("{}", metrics_table(&metrics));
    if steps.is_empty() && tasks.is_empty() {
        outln!("nothing finished in this window");
        return Ok(());
    }
    outln!("Slowest steps");
    outln!("{}", slow_steps_table(&steps));
    outln!("Slowest tasks");
    outln!("{}", slow_tasks_table(&tasks));
    Ok(())
}

pub fn metrics_table(m: &AnalyticsMetrics) -> comfy_table::Table {
    let d = |s: &tasker_core::analytics::DurationStats| {
        if s.count == 0 {
            "-".to_string()
        } else {
            format!(
                "p50 {}, p95 {}, mean {}, max {} (n={})",
                ms(s.p50_ms),
                ms(s.p95_ms),
                ms(s.mean_ms.round() as i64),
                ms(s.max_ms),
                s.count
            )
        }
    };
    kv_table(vec![
        (
            "window",
            format!("{} .. {} ({:.1} s)", ts(m.since), ts(m.until), m.window_seconds),
        ),
        ("tasks completed", m.tasks_completed.to_string()),
        ("tasks failed", m.tasks_failed.to_string()),
        (
            "task completion rate",
            if m.tasks_completed + m.tasks_failed == 0 {
                "-".into()
            } else {
                pct(m.task_completion_rate)
            },
        ),
        ("task throughput", rate(m.task_throughput_per_second)),
        ("steps completed", m.steps_completed.to_string()),
        ("steps failed", m.steps_failed.to_string()),
        ("step retries", m.step_retries.to_string()),
        ("step throughput", rate(m.step_throughput_per_second)),
        ("step duration", d(&m.step_duration)),
        ("task duration", d(&m.task_duration)),
    ])
}

fn slow_steps_table(steps: &[SlowStep]) -> comfy_table::Table {
    let mut t = table(
        &[
            "duration", "step", "template", "state", "attempts", "finished", "step id",
        ],
        &[0, 4],
    );
    for s in steps {
        t.add_row(vec![
            ms(s.duration_ms),
            s.step_name.clone(),
            format!("{}/{}@{}", s.namespace, s.task_name, s.version),
            s.state.to_string(),
            s.attempts.to_string(),
            ts(s.finished_at),
            s.step_id.to_string(),
        ]);
    }
    t
}

fn slow_tasks_table(tasks: &[SlowTask]) -> comfy_table::Table {
    let mut t = table(
        &["duration", "template", "state", "steps", "finished", "task id"],
        &[0, 3],
    );
    for s in tasks {
        t.add_row(vec![
            ms(s.duration_ms),
            format!("{}/{}@{}", s.namespace, s.name, s.version),
            s.state.to_string(),
            s.steps_total.to_string(),
            ts(s.finished_at),
            s.task_id.to_string(),
        ]);
    }
    t
}
