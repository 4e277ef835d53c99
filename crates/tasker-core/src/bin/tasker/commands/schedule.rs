//! `tasker schedule …`

use tasker_core::schedule::{Misfire, RegisterSchedule, Schedule};

use super::{parse_json_arg, with_engine, Ctx};
use crate::cli::{MisfireArg, ScheduleCommand};
use crate::error::CliResult;
use crate::output::{kv_table, print_json, table, ts};

pub async fn run(ctx: &Ctx, cmd: ScheduleCommand) -> CliResult {
    match cmd {
        ScheduleCommand::Add {
            name,
            namespace,
            template,
            cron,
            timezone,
            version,
            context,
            priority,
            misfire,
        } => {
            let req = RegisterSchedule {
                name,
                namespace,
                template,
                version,
                cron,
                timezone: Some(timezone),
                context: parse_json_arg("--context", &context)?,
                priority,
                misfire: match misfire {
                    MisfireArg::Skip => Misfire::Skip,
                    MisfireArg::RunOnce => Misfire::RunOnce,
                },
            };
            let s = with_engine(ctx, |engine| async move { Ok(engine.register_schedule(req).await?) }).await?;
            print_schedule(ctx, &s)
        }
        ScheduleCommand::List => {
            let all = with_engine(ctx, |engine| async move { Ok(engine.schedules().await?) }).await?;
            if ctx.json {
                return print_json(&all);
            }
            if all.is_empty() {
                outln!("no schedules; add one with `tasker schedule add`");
                return Ok(());
            }
            let mut t = table(
                &[
                    "name",
                    "template",
                    "cron",
                    "timezone",
                    "next fire",
                    "last fire",
                    "fired",
                    "missed",
                ],
                &[6, 7],
            );
            for s in &all {
                t.add_row(vec![
                    s.name.clone(),
                    format!("{}/{}", s.namespace, s.template),
                    s.cron.clone(),
                    s.timezone.clone(),
                    next_fire(s),
                    s.last_fire_at.map(ts).unwrap_or_else(|| "-".into()),
                    s.fired.to_string(),
                    s.missed.to_string(),
                ]);
            }
            outln!("{t}");
            Ok(())
        }
        ScheduleCommand::Pause { name } => {
            let s = with_engine(ctx, |engine| async move { Ok(engine.pause_schedule(&name).await?) }).await?;
            print_schedule(ctx, &s)
        }
        ScheduleCommand::Resume { name } => {
            let s = with_engine(ctx, |engine| async move { Ok(engine.resume_schedule(&name).await?) }).await?;
            print_schedule(ctx, &s)
        }
        ScheduleCommand::Remove { name } => {
            let s = with_engine(ctx, |engine| async move { Ok(engine.remove_schedule(&name).await?) }).await?;
            if ctx.json {
                return print_json(&s);
            }
            outln!("removed schedule {} ({} tasks created)", s.name, s.fired);
            Ok(())
        }
    }
}

fn next_fire(s: &Schedule) -> String {
    match (s.paused, s.next_fire_at) {
        (true, _) => "paused".into(),
        (false, Some(t)) => ts(t),
        (false, None) => "never".into(),
    }
}

fn print_schedule(ctx: &Ctx, s: &Schedule) -> CliResult {
    if ctx.json {
        return print_json(s);
    }
    let mut rows = vec![
        ("name", s.name.clone()),
        (
            "template",
            format!(
                "{}/{}@{}",
                s.namespace,
                s.template,
                s.version.as_deref().unwrap_or("newest")
            ),
        ),
        ("cron", s.cron.clone()),
        ("timezone", s.timezone.clone()),
        ("misfire", s.misfire.as_str().to_string()),
        ("next fire", next_fire(s)),
        ("fired", s.fired.to_string()),
        ("missed", s.missed.to_string()),
    ];
    if let Some(p) = s.priority {
        rows.push(("priority", p.to_string()));
    }
    if let Some(e) = &s.last_error {
        rows.push(("last error", e.clone()));
    }
    outln!("{}", kv_table(rows));
    Ok(())
}
