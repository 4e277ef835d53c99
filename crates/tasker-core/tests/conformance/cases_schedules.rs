//! Cron schedules: one task per occurrence, misfire policies, pause, resume, remove, bad definitions.

use serde_json::json;
use tasker_core::model::TaskFilter;
use tasker_core::schedule::{Misfire, RegisterSchedule};
use tasker_core::*;

use super::harness::H;

fn every(name: &str, cron: &str) -> RegisterSchedule {
    RegisterSchedule {
        name: name.into(),
        namespace: "t".into(),
        template: "one".into(),
        cron: cron.into(),
        context: json!({"n": 1}),
        ..Default::default()
    }
}

async fn tasks_of(h: &H) -> Vec<Task> {
    let filter = TaskFilter {
        namespace: Some("t".into()),
        name: Some("one".into()),
        limit: Some(1000),
        ..Default::default()
    };
    h.engine.tasks(&filter).await.unwrap()
}

fn secs(s: i64) -> i64 {
    s * 1000
}

pub async fn a_schedule_creates_one_task_per_occurrence(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    // The harness clock starts on a whole minute.
    let t0 = h.engine.now();
    let s = h
        .engine
        .register_schedule(every("tick", "*/10 * * * * *"))
        .await
        .unwrap();
    assert_eq!(s.next_fire_at, Some(t0 + chrono::TimeDelta::seconds(10)));
    assert_eq!((s.timezone.as_str(), s.paused, s.fired), ("UTC", false, 0));

    assert_eq!(h.engine.fire_schedules().await.unwrap().fired, 0, "nothing is due yet");
    h.advance_ms(secs(10));
    let r = h.engine.fire_schedules().await.unwrap();
    assert_eq!((r.fired, r.missed), (1, 0));
    assert_eq!(r.next_fire_at, Some(t0 + chrono::TimeDelta::seconds(20)));
    assert_eq!(
        h.engine.fire_schedules().await.unwrap().fired,
        0,
        "an occurrence fires once"
    );

    let tasks = tasks_of(&h).await;
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!(
        task.idempotency_key.as_deref(),
        Some("schedule:tick:2030-01-01T00:00:10.000Z")
    );
    assert_eq!(task.initiator.as_deref(), Some("schedule:tick"));
    assert_eq!(task.context, json!({"n": 1}));
    h.check(task).await;
    let ex = h.engine.explain(task.id).await.unwrap();
    assert_eq!(ex.schedule.as_deref(), Some("tick"));
    assert_eq!(ex.schedule_next_fire_at, Some(t0 + chrono::TimeDelta::seconds(20)));

    // Two occurrences pass before the next pass: both are within the grace, both fire.
    h.advance_ms(secs(25));
    let r = h.engine.run_maintenance(None, 100).await.unwrap();
    assert_eq!((r.schedules.fired, r.schedules.missed), (2, 0));
    assert_eq!(tasks_of(&h).await.len(), 3);
    let s = h.engine.schedule("tick").await.unwrap();
    assert_eq!((s.fired, s.missed), (3, 0));
    assert_eq!(s.last_fire_at, Some(t0 + chrono::TimeDelta::seconds(30)));
    assert_eq!(s.next_fire_at, Some(t0 + chrono::TimeDelta::seconds(40)));
    assert_eq!(h.claim(&["h.a"], 10).await.len(), 3, "the tasks run like any other");
}

pub async fn missed_occurrences_are_skipped_or_run_once(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    let t0 = h.engine.now();
    h.engine
        .register_schedule(every("skipper", "0 * * * * *"))
        .await
        .unwrap();
    h.engine
        .register_schedule(RegisterSchedule {
            misfire: Misfire::RunOnce,
            ..every("catcher", "0 * * * * *")
        })
        .await
        .unwrap();
    // Nothing fires for ten and a half minutes: the occurrence at 10:00 is on time, 1:00 to 9:00 are missed.
    h.advance_ms(secs(630));
    let r = h.engine.fire_schedules().await.unwrap();
    assert_eq!((r.fired, r.missed), (3, 18));
    let skipper = h.engine.schedule("skipper").await.unwrap();
    assert_eq!((skipper.fired, skipper.missed), (1, 9));
    let catcher = h.engine.schedule("catcher").await.unwrap();
    assert_eq!((catcher.fired, catcher.missed), (2, 9));
    let keys: Vec<String> = tasks_of(&h)
        .await
        .into_iter()
        .filter_map(|t| t.idempotency_key)
        .filter(|k| k.starts_with("schedule:catcher:"))
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.contains(&"schedule:catcher:2030-01-01T00:09:00.000Z".to_string()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"schedule:catcher:2030-01-01T00:10:00.000Z".to_string()),
        "{keys:?}"
    );
    assert_eq!(skipper.next_fire_at, Some(t0 + chrono::TimeDelta::seconds(660)));
}

pub async fn schedules_pause_resume_and_remove(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    let t0 = h.engine.now();
    h.engine
        .register_schedule(every("tick", "*/10 * * * * *"))
        .await
        .unwrap();
    let paused = h.engine.pause_schedule("tick").await.unwrap();
    assert!(paused.paused);
    assert_eq!(paused.next_fire_at, None);
    h.advance_ms(secs(35));
    assert_eq!(
        h.engine.fire_schedules().await.unwrap().fired,
        0,
        "a paused schedule does not fire"
    );
    let resumed = h.engine.resume_schedule("tick").await.unwrap();
    assert!(!resumed.paused);
    assert_eq!(
        resumed.next_fire_at,
        Some(t0 + chrono::TimeDelta::seconds(40)),
        "resuming does not fire what passed while paused"
    );
    assert_eq!(
        h.engine.resume_schedule("tick").await.unwrap(),
        resumed,
        "resuming twice changes nothing"
    );
    h.advance_ms(secs(5));
    assert_eq!(h.engine.fire_schedules().await.unwrap().fired, 1);
    let listed = h.engine.schedules().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].next_fire_at, Some(t0 + chrono::TimeDelta::seconds(50)));

    let removed = h.engine.remove_schedule("tick").await.unwrap();
    assert_eq!(removed.fired, 1);
    assert!(h.engine.schedules().await.unwrap().is_empty());
    assert_eq!(tasks_of(&h).await.len(), 1, "its tasks stay");
    for r in [
        h.engine.remove_schedule("tick").await,
        h.engine.pause_schedule("tick").await,
        h.engine.resume_schedule("tick").await,
        h.engine.schedule("tick").await,
    ] {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound);
    }
}

pub async fn registering_again_keeps_an_unchanged_schedule_and_restarts_a_changed_one(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    let t0 = h.engine.now();
    let first = h
        .engine
        .register_schedule(every("tick", "*/10 * * * * *"))
        .await
        .unwrap();
    h.advance_ms(secs(12));
    h.engine.fire_schedules().await.unwrap();
    let fired = h.engine.schedule("tick").await.unwrap();
    let again = h
        .engine
        .register_schedule(every("tick", "*/10 * * * * *"))
        .await
        .unwrap();
    assert_eq!(again, fired, "every process may register its schedules at start-up");
    assert_eq!(again.created_at, first.created_at);
    let changed = h
        .engine
        .register_schedule(RegisterSchedule {
            timezone: Some("Europe/Berlin".into()),
            ..every("tick", "0 0 * * * *")
        })
        .await
        .unwrap();
    assert_eq!(changed.fired, 1, "counters stay");
    // The next whole hour in Berlin is 01:00 local, 00:00 UTC + 1 h.
    assert_eq!(changed.next_fire_at, Some(t0 + chrono::TimeDelta::hours(1)));
    assert_eq!(changed.timezone, "Europe/Berlin");
}

pub async fn bad_schedules_are_typed_errors_and_write_nothing(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    let cases: Vec<(RegisterSchedule, ErrorKind, &str)> = vec![
        (every("bad", "not a cron"), ErrorKind::Validation, "cron"),
        (every("bad", "0 0 31 2 *"), ErrorKind::Validation, "cron"),
        (
            RegisterSchedule {
                timezone: Some("Mars/Olympus".into()),
                ..every("bad", "* * * * *")
            },
            ErrorKind::Validation,
            "timezone",
        ),
        (every("", "* * * * *"), ErrorKind::Validation, "name"),
        (
            RegisterSchedule {
                priority: Some(100_000),
                ..every("bad", "* * * * *")
            },
            ErrorKind::Validation,
            "priority",
        ),
        (
            RegisterSchedule {
                context: json!([1]),
                ..every("bad", "* * * * *")
            },
            ErrorKind::Validation,
            "context",
        ),
        (
            RegisterSchedule {
                template: "missing".into(),
                ..every("bad", "* * * * *")
            },
            ErrorKind::NotFound,
            "",
        ),
    ];
    for (req, kind, field) in cases {
        let err = h.engine.register_schedule(req.clone()).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{req:?}: {err}");
        if let Error::Validation { errors, .. } = &err {
            assert_eq!(errors[0].path, field, "{req:?}: {err}");
        }
    }
    assert!(h.engine.schedules().await.unwrap().is_empty());
}
