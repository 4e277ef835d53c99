//! The engine's side of cron schedules ([`crate::schedule`]): registering, pausing, resuming, removing and
//! listing them, and the pass that fires due occurrences.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{check_context_object, check_priority, concurrency_keys, CreateTask, Engine, Log};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind, Result};
use crate::model::TemplateRecord;
use crate::schedule::{check_name, CronSpec, RegisterSchedule, Schedule};

/// Schedules fired by one pass at most; a pass that hits it leaves the rest to the next.
const FIRE_BATCH: u32 = 100;

/// What one pass over due schedules did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleReport {
    /// Tasks created.
    pub fired: u32,
    /// Occurrences missed (more than the misfire grace late).
    pub missed: i64,
    /// Occurrences whose task could not be created (see [`Schedule::last_error`]).
    pub failed: u32,
    /// The earliest next occurrence of any schedule not paused, after the pass.
    pub next_fire_at: Option<Timestamp>,
}

/// Errors of a schedule's definition, which an occurrence records and skips; any other error ends the pass.
fn is_definition_error(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Validation | ErrorKind::NotFound)
}

type TemplateKey = (String, String, Option<String>);

impl Engine {
    /// Registers a schedule that creates a task of `namespace`/`template` at each occurrence of its cron
    /// expression. The expression, zone, priority, template and context are checked now (the context against
    /// the template's schema and its steps' concurrency keys), so a bad schedule fails here rather than at its first occurrence.
    ///
    /// Registering a name again replaces its definition, so every process may register its schedules at
    /// start-up: an unchanged definition is left as it is (the same next occurrence, counters and pause);
    /// a changed expression or zone starts again from the next occurrence after now.
    pub async fn register_schedule(&self, req: RegisterSchedule) -> Result<Schedule> {
        check_name(&req.name)?;
        let spec = CronSpec::parse(&req.cron, req.timezone.as_deref())?;
        check_priority("schedule", req.priority)?;
        let timezone = req.timezone.clone().unwrap_or_else(|| "UTC".into());
        let rec = self
            .template(&req.namespace, &req.template, req.version.as_deref())
            .await?;
        check_context_object("schedule", &req.context)?;
        self.check_context(&rec, &req.context)?;
        concurrency_keys(&rec, &req.context)?;
        let now = self.now();
        let next = spec
            .next_after(now)
            .ok_or_else(|| Error::field("schedule", "cron", format!("{:?} never occurs", req.cron)))?;
        let mut tx = self.begin().await?;
        let result = async {
            let existing = tx.schedule_lock(&req.name).await?;
            let mut s = existing.clone().unwrap_or_else(|| Schedule {
                name: req.name.clone(),
                namespace: String::new(),
                template: String::new(),
                version: None,
                cron: String::new(),
                timezone: String::new(),
                context: serde_json::Value::Null,
                priority: None,
                misfire: req.misfire,
                paused: false,
                next_fire_at: Some(next),
                last_fire_at: None,
                last_task_id: None,
                fired: 0,
                missed: 0,
                last_error: None,
                created_at: now,
                updated_at: now,
            });
            let timing_changed = s.cron != req.cron || s.timezone != timezone;
            s.namespace = req.namespace.clone();
            s.template = req.template.clone();
            s.version = req.version.clone();
            s.cron = req.cron.clone();
            s.timezone = timezone.clone();
            s.context = req.context.clone();
            s.priority = req.priority;
            s.misfire = req.misfire;
            if timing_changed && !s.paused {
                s.next_fire_at = Some(next);
            }
            if existing.as_ref() == Some(&s) {
                return Ok(s);
            }
            s.updated_at = now;
            tx.schedule_put(&s).await?;
            Ok(s)
        }
        .await;
        self.conclude(tx, Log::default(), result).await
    }

    /// Stops a schedule firing until it is resumed; occurrences while paused are not fired later.
    pub async fn pause_schedule(&self, name: &str) -> Result<Schedule> {
        self.change_schedule(name, |s, _| {
            s.paused = true;
            s.next_fire_at = None;
            Ok(())
        })
        .await
    }

    /// Lets a paused schedule fire again, from its next occurrence after now. A schedule that is not
    /// paused is returned unchanged.
    pub async fn resume_schedule(&self, name: &str) -> Result<Schedule> {
        self.change_schedule(name, |s, now| {
            let spec = CronSpec::parse(&s.cron, Some(&s.timezone))?;
            s.paused = false;
            s.next_fire_at = spec.next_after(now);
            Ok(())
        })
        .await
    }

    async fn change_schedule(
        &self,
        name: &str,
        change: impl FnOnce(&mut Schedule, Timestamp) -> Result<()> + Send,
    ) -> Result<Schedule> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let result = async {
            let old = tx
                .schedule_lock(name)
                .await?
                .ok_or_else(|| Error::not_found("schedule", name))?;
            let mut s = old.clone();
            change(&mut s, now)?;
            if s != old {
                s.updated_at = now;
                tx.schedule_put(&s).await?;
            }
            Ok(s)
        }
        .await;
        self.conclude(tx, Log::default(), result).await
    }

    /// Removes a schedule and answers it as it was; the tasks it created stay.
    pub async fn remove_schedule(&self, name: &str) -> Result<Schedule> {
        let mut tx = self.begin().await?;
        let result = async {
            let s = tx
                .schedule_lock(name)
                .await?
                .ok_or_else(|| Error::not_found("schedule", name))?;
            tx.schedule_delete(name).await?;
            Ok(s)
        }
        .await;
        self.conclude(tx, Log::default(), result).await
    }

    /// Every registered schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<Schedule>> {
        self.store()?.schedule_list().await
    }

    pub async fn schedule(&self, name: &str) -> Result<Schedule> {
        self.store()?
            .schedule_get(name)
            .await?
            .ok_or_else(|| Error::not_found("schedule", name))
    }

    /// Fires the schedules whose next occurrence has come: each occurrence at most
    /// [`MISFIRE_GRACE`](crate::schedule::MISFIRE_GRACE) late creates one task (idempotency key
    /// `schedule:<name>:<fire time>`), later ones are missed and handled by the schedule's misfire policy,
    /// and the schedule moves on to its next occurrence, all in one transaction. Every maintenance pass runs
    /// it; processes may run it at once (a schedule another is firing is skipped, and the key keeps each
    /// occurrence to one task).
    pub async fn fire_schedules(&self) -> Result<ScheduleReport> {
        let store = self.store()?.clone();
        let now = self.now();
        let mut report = ScheduleReport::default();
        let first = store.schedule_next_fire_at().await?;
        if first.is_none_or(|t| t > now) {
            report.next_fire_at = first;
            return Ok(report);
        }
        // Templates are looked up before the transaction: the memory store's transaction holds the store.
        let mut templates: HashMap<TemplateKey, std::result::Result<TemplateRecord, String>> = HashMap::new();
        for s in store.schedule_list().await? {
            if s.next_fire_at.is_none_or(|t| t > now) {
                continue;
            }
            let key = (s.namespace.clone(), s.template.clone(), s.version.clone());
            if templates.contains_key(&key) {
                continue;
            }
            let found = match self.template(&s.namespace, &s.template, s.version.as_deref()).await {
                Ok(rec) => Ok(rec),
                Err(e) if is_definition_error(&e) => Err(e.to_string()),
                Err(e) => return Err(e),
            };
            templates.insert(key, found);
        }
        let mut tx = self.begin().await?;
        let mut log = Log::default();
        let result = async {
            for mut s in tx.schedules_lock_due(now, FIRE_BATCH).await? {
                let key = (s.namespace.clone(), s.template.clone(), s.version.clone());
                let (Some(next), Some(found)) = (s.next_fire_at, templates.get(&key)) else {
                    // Registered since the lookup: the next pass fires it.
                    continue;
                };
                let due = match CronSpec::parse(&s.cron, Some(&s.timezone)) {
                    Ok(spec) => spec.due(next, now),
                    Err(e) => {
                        // Cannot happen to a schedule registered through the engine; stop it rather than spin.
                        s.last_error = Some(e.to_string());
                        s.paused = true;
                        s.next_fire_at = None;
                        s.updated_at = now;
                        tx.schedule_put(&s).await?;
                        continue;
                    }
                };
                for at in due.fires(s.misfire) {
                    let req = CreateTask {
                        namespace: s.namespace.clone(),
                        name: s.template.clone(),
                        version: s.version.clone(),
                        context: s.context.clone(),
                        idempotency_key: Some(s.task_key(at)),
                        initiator: Some(s.initiator()),
                        source_system: Some("tasker".into()),
                        reason: Some(format!(
                            "schedule {} at {}",
                            s.name,
                            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                        )),
                        priority: s.priority,
                        ..Default::default()
                    };
                    let prepared = match found {
                        Ok(rec) => self.prepare_task_of(rec, &req, now),
                        Err(message) => {
                            s.last_error = Some(message.clone());
                            report.failed += 1;
                            continue;
                        }
                    };
                    match prepared {
                        Ok(p) => {
                            let task = self.insert_task(&mut tx, &mut log, p).await?;
                            s.fired += 1;
                            s.last_task_id = Some(task.id);
                            s.last_fire_at = Some(at);
                            s.last_error = None;
                            report.fired += 1;
                        }
                        Err(e) if is_definition_error(&e) => {
                            warn!(schedule = %s.name, error = %e, "a schedule's occurrence could not create its task");
                            s.last_error = Some(e.to_string());
                            report.failed += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
                s.missed += due.missed;
                report.missed += due.missed;
                s.next_fire_at = due.next;
                s.updated_at = now;
                tx.schedule_put(&s).await?;
            }
            Ok(())
        }
        .await;
        self.conclude(tx, log, result).await?;
        report.next_fire_at = store.schedule_next_fire_at().await?;
        Ok(report)
    }
}
