//! Cron schedules: a registered schedule creates one task of a template at each occurrence of a cron
//! expression, read in an IANA time zone.
//!
//! Expressions have five fields (minute hour day-of-month month day-of-week), or six with seconds first, and
//! the nicknames `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`; they are parsed by the `croner`
//! crate, and zones come from `chrono-tz`. Occurrences are found in the zone's wall-clock time, which makes
//! daylight-saving changes behave as follows (pinned by the tests below):
//!
//! - **Gap** (spring forward, 02:00 → 03:00): an occurrence with a fixed time inside the gap (`30 2 * * *`)
//!   fires at the first valid time after it, 03:00, on that day; interval occurrences inside the gap
//!   (`*/30 * * * *` at 02:00 and 02:30) do not exist and are not fired.
//! - **Overlap** (fall back, 02:00 → 01:00): the repeated wall-clock times fire once, at their first
//!   (daylight-time) instance; the hour is not run twice.
//!
//! Which task an occurrence creates is decided once, by its fire time: the task's idempotency key is
//! `schedule:<name>:<fire time in UTC>`, so however many processes fire due schedules at once, each occurrence
//! creates exactly one task.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// How long after its time an occurrence still fires. One that is later than this (because no process
/// ran maintenance meanwhile) counts as missed and is handled by the schedule's [`Misfire`] policy.
pub const MISFIRE_GRACE: TimeDelta = TimeDelta::seconds(60);

/// At most this many occurrences are counted as missed one by one in a pass; beyond it the schedule jumps
/// ahead to the grace window (a per-second schedule left for a year does not make a pass walk 31 million
/// occurrences). [`Schedule::missed`] counts at least the occurrences missed, and at most this many a pass.
pub const MAX_MISSED_COUNTED: i64 = 10_000;

/// Schedule names: 1 to this many characters.
pub const MAX_SCHEDULE_NAME: usize = 200;

/// What becomes of occurrences missed while no process fired schedules (more than [`MISFIRE_GRACE`] late).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// They are skipped; the schedule carries on with its next occurrence.
    #[default]
    Skip,
    /// One task is created for them all, with the latest missed occurrence as its fire time.
    RunOnce,
}

impl Misfire {
    pub fn as_str(self) -> &'static str {
        match self {
            Misfire::Skip => "skip",
            Misfire::RunOnce => "run_once",
        }
    }
}

impl std::str::FromStr for Misfire {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "skip" => Ok(Misfire::Skip),
            "run_once" => Ok(Misfire::RunOnce),
            other => Err(Error::field(
                "schedule",
                "misfire",
                format!("expected skip or run_once, found {other:?}"),
            )),
        }
    }
}

/// What to register: a schedule that creates a task of a template at each occurrence of `cron`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisterSchedule {
    /// Unique among schedules; registering a name again replaces that schedule's definition.
    pub name: String,
    pub namespace: String,
    /// The template's name.
    pub template: String,
    /// The newest registered version at each fire when absent.
    pub version: Option<String>,
    pub cron: String,
    /// An IANA zone name such as `Europe/Berlin`; `UTC` when absent.
    pub timezone: Option<String>,
    /// The context of every task it creates (a JSON object, checked against the template's schema).
    pub context: Value,
    /// The priority of the tasks it creates; the template's when absent.
    pub priority: Option<i32>,
    pub misfire: Misfire,
}

/// A registered schedule and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub namespace: String,
    pub template: String,
    pub version: Option<String>,
    pub cron: String,
    pub timezone: String,
    pub context: Value,
    pub priority: Option<i32>,
    pub misfire: Misfire,
    pub paused: bool,
    /// The next occurrence; `None` while paused.
    pub next_fire_at: Option<Timestamp>,
    /// The occurrence that last created a task.
    pub last_fire_at: Option<Timestamp>,
    pub last_task_id: Option<Uuid>,
    /// Tasks created.
    pub fired: i64,
    /// Occurrences missed (see [`MAX_MISSED_COUNTED`]).
    pub missed: i64,
    /// Why the last occurrence could not create its task (say, the newest template version rejects the
    /// context); cleared by the next that does.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Schedule {
    /// The idempotency key of the task of the occurrence at `fire_at`.
    pub fn task_key(&self, fire_at: Timestamp) -> String {
        format!("schedule:{}:{}", self.name, rfc3339_millis(fire_at))
    }

    /// The initiator recorded on the tasks it creates.
    pub fn initiator(&self) -> String {
        format!("{INITIATOR_PREFIX}{}", self.name)
    }
}

/// Tasks created by a schedule have the initiator `schedule:<name>`.
pub const INITIATOR_PREFIX: &str = "schedule:";

fn rfc3339_millis(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A parsed cron expression in its zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl CronSpec {
    /// Parses `cron` in `timezone` (`UTC` when `None`), with typed errors naming the field at fault.
    pub fn parse(cron: &str, timezone: Option<&str>) -> Result<CronSpec> {
        if cron.trim().is_empty() || cron.len() > 255 {
            return Err(Error::field(
                "schedule",
                "cron",
                "expected a cron expression of 1-255 characters",
            ));
        }
        let parsed = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(cron)
            .map_err(|e| Error::field("schedule", "cron", format!("{cron:?} is not a cron expression: {e}")))?;
        let zone = timezone.unwrap_or("UTC");
        let tz: chrono_tz::Tz = zone.parse().map_err(|_| {
            Error::field(
                "schedule",
                "timezone",
                format!("{zone:?} is not an IANA time zone name (such as UTC or Europe/Berlin)"),
            )
        })?;
        Ok(CronSpec { cron: parsed, tz })
    }

    /// The first occurrence strictly after `t`, or `None` if there is none within the crate's search range
    /// (an expression such as `0 0 31 2 *` never occurs).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        // Occurrences are whole seconds; searching from a time with milliseconds would carry them over.
        let whole = DateTime::<Utc>::from_timestamp(t.timestamp(), 0)?;
        self.cron
            .find_next_occurrence(&whole.with_timezone(&self.tz), false)
            .ok()
            .map(|local| local.with_timezone(&Utc))
    }

    /// What is due at `now` for a schedule whose next occurrence is `next`.
    pub fn due(&self, next: Timestamp, now: Timestamp) -> Due {
        let mut due = Due::default();
        let mut at = Some(next);
        let late = now - MISFIRE_GRACE;
        while let Some(t) = at.filter(|t| *t <= now) {
            if t >= late {
                due.on_time.push(t);
            } else if due.missed >= MAX_MISSED_COUNTED {
                // Jump to the grace window: the first occurrence at or after `late`.
                at = self.next_after(late - TimeDelta::seconds(1));
                continue;
            } else {
                due.missed += 1;
                due.last_missed = Some(t);
            }
            at = self.next_after(t);
        }
        due.next = at;
        due
    }
}

/// The occurrences a pass handles for one schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// Occurrences at most [`MISFIRE_GRACE`] late, oldest first: each creates a task.
    pub on_time: Vec<Timestamp>,
    /// Occurrences later than that.
    pub missed: i64,
    pub last_missed: Option<Timestamp>,
    /// The next occurrence after `now`.
    pub next: Option<Timestamp>,
}

impl Due {
    /// The fire times that create tasks under `policy`, oldest first.
    pub fn fires(&self, policy: Misfire) -> Vec<Timestamp> {
        let mut fires = Vec::with_capacity(self.on_time.len() + 1);
        if policy == Misfire::RunOnce {
            fires.extend(self.last_missed);
        }
        fires.extend(self.on_time.iter().copied());
        fires
    }
}

/// Checks the name of a schedule.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > MAX_SCHEDULE_NAME || name.chars().any(char::is_control) {
        return Err(Error::field(
            "schedule",
            "name",
            format!("expected 1-{MAX_SCHEDULE_NAME} characters without control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn walk(spec: &CronSpec, from: &str, n: usize) -> Vec<String> {
        let mut t = utc(from);
        (0..n)
            .map(|_| {
                t = spec.next_after(t).unwrap();
                rfc3339_millis(t)
            })
            .collect()
    }

    #[test]
    fn five_and_six_field_expressions_and_nicknames_parse() {
        let every_second = CronSpec::parse("* * * * * *", None).unwrap();
        assert_eq!(
            walk(&every_second, "2026-01-01T00:00:00.500Z", 2),
            ["2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z"]
        );
        let hourly = CronSpec::parse("0 * * * *", None).unwrap();
        assert_eq!(walk(&hourly, "2026-01-01T10:00:00Z", 1), ["2026-01-01T11:00:00.000Z"]);
        let daily = CronSpec::parse("@daily", Some("Europe/Berlin")).unwrap();
        assert_eq!(walk(&daily, "2026-01-01T12:00:00Z", 1), ["2026-01-01T23:00:00.000Z"]);
    }

    #[test]
    fn bad_expressions_and_zones_are_field_errors() {
        for (cron, tz, field) in [
            ("", None, "cron"),
            ("bogus", None, "cron"),
            ("61 * * * *", None, "cron"),
            ("* * * * *", Some("Mars/Olympus"), "timezone"),
        ] {
            match CronSpec::parse(cron, tz) {
                Err(Error::Validation { what, errors }) => {
                    assert_eq!(what, "schedule");
                    assert_eq!(errors[0].path, field, "{cron:?} {tz:?}");
                }
                other => panic!("{cron:?} {tz:?}: {other:?}"),
            }
        }
        let never = CronSpec::parse("0 0 31 2 *", None).unwrap();
        assert_eq!(never.next_after(utc("2026-01-01T00:00:00Z")), None);
    }

    #[test]
    fn a_fixed_time_in_the_spring_gap_fires_after_it_and_the_autumn_overlap_fires_once() {
        let ny = Some("America/New_York");
        // 2026-03-08 02:00 EST jumps to 03:00 EDT.
        let fixed = CronSpec::parse("30 2 * * *", ny).unwrap();
        assert_eq!(
            walk(&fixed, "2026-03-07T17:00:00Z", 3),
            [
                "2026-03-08T07:00:00.000Z", // 03:00 EDT, right after the gap
                "2026-03-09T06:30:00.000Z",
                "2026-03-10T06:30:00.000Z"
            ]
        );
        let interval = CronSpec::parse("*/30 * * * *", ny).unwrap();
        assert_eq!(
            walk(&interval, "2026-03-08T06:15:00Z", 3),
            [
                "2026-03-08T06:30:00.000Z",
                "2026-03-08T07:00:00.000Z",
                "2026-03-08T07:30:00.000Z"
            ]
        );
        // 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:00 and 01:30 happen twice, and fire once.
        assert_eq!(
            walk(&interval, "2026-11-01T04:45:00Z", 4),
            [
                "2026-11-01T05:00:00.000Z", // 01:00 EDT
                "2026-11-01T05:30:00.000Z", // 01:30 EDT
                "2026-11-01T07:00:00.000Z", // 02:00 EST
                "2026-11-01T07:30:00.000Z"
            ]
        );
        let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let fixed_overlap = CronSpec::parse("30 1 * * *", ny).unwrap();
        let from = tz.with_ymd_and_hms(2026, 10, 31, 12, 0, 0).unwrap().with_timezone(&Utc);
        assert_eq!(
            walk(&fixed_overlap, &rfc3339_millis(from), 2),
            ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]
        );
    }

    #[test]
    fn due_fires_on_time_occurrences_and_counts_late_ones_by_policy() {
        let spec = CronSpec::parse("* * * * * *", None).unwrap();
        let now = utc("2026-01-01T00:10:00.400Z");
        // Three seconds late: all on time.
        let due = spec.due(utc("2026-01-01T00:09:58Z"), now);
        assert_eq!(due.on_time.len(), 3);
        assert_eq!(due.missed, 0);
        assert_eq!(due.next, Some(utc("2026-01-01T00:10:01Z")));
        // Ten minutes of nothing: 60 s of grace fire, the rest are missed.
        let due = spec.due(utc("2026-01-01T00:00:00Z"), now);
        assert_eq!(due.on_time.len(), 60);
        assert_eq!(due.on_time[0], utc("2026-01-01T00:09:01Z"));
        assert_eq!(due.missed, 541);
        assert_eq!(due.last_missed, Some(utc("2026-01-01T00:09:00Z")));
        assert_eq!(due.fires(Misfire::Skip).len(), 60);
        let once = due.fires(Misfire::RunOnce);
        assert_eq!(once.len(), 61);
        assert_eq!(once[0], utc("2026-01-01T00:09:00Z"));
        // Not yet due.
        let due = spec.due(utc("2026-01-01T00:10:01Z"), now);
        assert!(due.on_time.is_empty() && due.missed == 0);
        assert_eq!(due.next, Some(utc("2026-01-01T00:10:01Z")));
    }

    #[test]
    fn a_long_outage_is_counted_up_to_the_cap_and_jumps_to_the_grace_window() {
        let spec = CronSpec::parse("* * * * * *", None).unwrap();
        let now = utc("2026-01-02T00:00:00Z");
        let due = spec.due(utc("2026-01-01T00:00:00Z"), now);
        assert_eq!(due.missed, MAX_MISSED_COUNTED);
        assert_eq!(due.on_time.len(), 61);
        assert_eq!(due.on_time[0], now - MISFIRE_GRACE);
    }

    #[test]
    fn names_and_policies_are_checked() {
        assert!(check_name("nightly-report").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(MAX_SCHEDULE_NAME + 1)).is_err());
        assert_eq!("run_once".parse::<Misfire>().unwrap(), Misfire::RunOnce);
        assert!("sometimes".parse::<Misfire>().is_err());
    }
}
