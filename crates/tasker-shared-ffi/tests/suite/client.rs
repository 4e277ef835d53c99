//! The client handle and every engine operation through it, blocking and async.

use std::future::Future;
use std::time::Duration;

use serde_json::json;
use tasker_shared_ffi::runtime;
use tasker_shared_ffi::*;

use super::support::sqlite_url;

const TEMPLATE: &str = r#"
namespace: shop
name: order
version: 1.0.0
description: take an order
defaults: { retry: { max_attempts: 2, backoff: none } }
steps:
  - { name: validate, handler: shop.validate, config: { strict: true } }
  - { name: charge, handler: shop.charge, depends_on: [validate] }
  - { name: email, handler: shop.email, depends_on: [validate] }
  - { name: ship, handler: shop.ship, depends_on: [charge, email] }
"#;

fn manual(url: &str) -> Client {
    Client::open(
        url,
        ClientOptions {
            clock: ClockKind::Manual,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Keeps an async call `Send`, as napi and any multi-threaded executor need.
fn send<F: Future + Send>(f: F) -> F {
    f
}

#[test]
fn opens_every_local_store_and_reports_health() {
    let (file_url, _dir) = sqlite_url();
    for (url, kind) in [
        ("memory:", "memory"),
        ("sqlite::memory:", "sqlite"),
        (file_url.as_str(), "sqlite"),
    ] {
        let c = Client::open(url, ClientOptions::default()).unwrap();
        let h = c.health().unwrap();
        assert_eq!(h.store_kind, kind, "{url}");
        assert_eq!(h.url, url);
        assert!(h.pool_size >= 1 && h.idle_connections <= h.pool_size, "{h:?}");
        assert_eq!(h.pid, std::process::id());
        assert_eq!((h.refreshes, h.clock.as_str()), (0, "system"));
        assert!(h.age_ms < 60_000);
        assert!(!c.validate_or_refresh().unwrap(), "a healthy store needs no rebuild");
        c.close().unwrap();
    }
}

#[test]
fn health_redacts_the_password() {
    // Whether this build reaches PostgreSQL or refuses the scheme, the error never shows the password.
    let e = Client::open(
        "postgres://app:s3cret@127.0.0.1:1/db?connect_timeout=1",
        ClientOptions::default(),
    )
    .unwrap_err();
    assert!(!e.message.contains("s3cret"), "{}", e.message);
    assert!(!e.causes.iter().any(|c| c.contains("s3cret")));
}

#[test]
fn every_operation_round_trips_on_sqlite() {
    let (url, _dir) = sqlite_url();
    let c = manual(&url);
    let reg = c.register_template(TEMPLATE).unwrap();
    assert!(reg.created);
    assert_eq!(reg.template.steps.len(), 4);
    assert_eq!(reg.template.steps[0].config, json!({"strict": true}));
    assert_eq!(
        reg.template.steps[3].depends_on,
        vec!["charge".to_string(), "email".to_string()]
    );
    assert_eq!(reg.template.steps[1].retry.max_attempts, 2);
    let again = c
        .register_template_value(&serde_yaml_ng::from_str::<serde_json::Value>(TEMPLATE).unwrap())
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.template.id, reg.template.id);
    assert_eq!(c.template("shop", "order", None).unwrap().version, "1.0.0");
    assert_eq!(
        c.template("shop", "order", Some("1.0.0"))
            .unwrap()
            .description
            .as_deref(),
        Some("take an order")
    );
    assert_eq!(
        c.template("shop", "order", Some("9.9.9")).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(c.templates().unwrap().len(), 1);

    let task = c
        .create_task(
            "shop",
            "order",
            CreateTaskOptions {
                context: Some(json!({"order_id": 7})),
                idempotency_key: Some("ord-7".into()),
                tags: Some(json!({"team": "checkout"})),
                initiator: Some("tester".into()),
                source_system: Some("suite".into()),
                reason: Some("coverage".into()),
                version: Some("1.0.0".into()),
                priority: Some(3),
                run_at: None,
                delay_seconds: None,
            },
        )
        .unwrap();
    assert_eq!((task.state.as_str(), task.steps_total), ("pending", 4));
    assert_eq!(task.tags.get("team").map(String::as_str), Some("checkout"));
    assert_eq!(
        (
            task.initiator.as_deref(),
            task.source_system.as_deref(),
            task.reason.as_deref()
        ),
        (Some("tester"), Some("suite"), Some("coverage"))
    );
    let bad_tags = c
        .create_task(
            "shop",
            "order",
            CreateTaskOptions {
                tags: Some(json!({"n": 1})),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(error::field_errors(&bad_tags)[0].0, "tags.n");
    let other = c.create_task("shop", "order", CreateTaskOptions::default()).unwrap();
    assert_eq!(other.context, json!({}));

    assert_eq!(c.task(&task.id).unwrap(), task);
    let listed = c.tasks(TaskFilterInput::default()).unwrap();
    assert_eq!(
        listed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![other.id.clone(), task.id.clone()]
    );
    let page = c
        .tasks(TaskFilterInput {
            before: Some(other.id.clone()),
            limit: Some(1),
            namespace: Some("shop".into()),
            state: Some("pending".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, task.id);

    let steps = c.steps(&task.id).unwrap();
    assert_eq!(
        steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["validate", "charge", "email", "ship"]
    );
    assert_eq!(c.step(&steps[0].id).unwrap().handler_key, "shop.validate");
    let levels = c.dependency_levels(&task.id).unwrap();
    let level = |n: &str| levels.iter().find(|l| l.name == n).unwrap().level;
    assert_eq!(
        (level("validate"), level("charge"), level("email"), level("ship")),
        (0, 1, 1, 2)
    );
    let ex = c.explain(&task.id).unwrap();
    assert_eq!(ex.steps.iter().filter(|s| s.ready).count(), 1);
    let mut blocked = ex.steps[3].blocked_by.clone();
    blocked.sort();
    assert_eq!(blocked, vec!["charge".to_string(), "email".to_string()]);
    let ctx = c.execution_context(&task.id).unwrap();
    assert_eq!((ctx.execution_status.as_str(), ctx.ready_steps), ("has_ready_steps", 1));

    // Run validate and charge; fail email permanently, so the task errors.
    let w = c
        .worker_session(WorkerOptions {
            handler_keys: vec!["shop.validate".into(), "shop.charge".into(), "shop.email".into()],
            maintenance_interval_ms: 0,
            ..Default::default()
        })
        .unwrap();
    let since = c.now().unwrap();
    let v = w.claim(1, Duration::ZERO).unwrap().remove(0);
    assert_eq!(
        (v.step_name.as_str(), v.config.clone()),
        ("validate", json!({"strict": true}))
    );
    c.advance_clock_ms(250).unwrap();
    w.complete(&v.token, json!({"valid": true})).unwrap();
    let mut both = w.claim(10, Duration::ZERO).unwrap();
    both.sort_by(|a, b| a.step_name.cmp(&b.step_name));
    assert_eq!(
        both[0].dependency_results.get("validate"),
        Some(&json!({"valid": true}))
    );
    w.complete(&both[0].token, json!({"charged": 10})).unwrap();
    let failed = w
        .fail(
            &both[1].token,
            FailureInput {
                code: Some("bounced".into()),
                ..FailureInput::permanent("mailbox full")
            },
        )
        .unwrap();
    assert_eq!(failed.state, "error");
    assert_eq!(c.task(&task.id).unwrap().state, "error");

    let trail = c.transitions(&task.id).unwrap();
    assert_eq!(
        trail.task.iter().map(|t| t.event.clone()).collect::<Vec<_>>(),
        vec![None, Some("start".into()), Some("fail".into())]
    );
    assert_eq!(
        trail
            .steps
            .iter()
            .filter(|s| s.event.as_deref() == Some("claim"))
            .count(),
        3
    );

    let hc = c.health_counts().unwrap();
    assert_eq!(
        (hc.total_tasks, hc.total_steps, hc.tasks["error"], hc.steps["complete"]),
        (2, 8, 1, 2)
    );
    let m = c.analytics_metrics(since).unwrap();
    assert_eq!((m.tasks_failed, m.steps_completed, m.steps_failed), (1, 2, 1));
    assert_eq!(m.step_duration.max_ms, 250);
    let slow = c.slowest_steps(AnalyticsFilterInput::default(), 1).unwrap();
    assert_eq!((slow[0].step_name.as_str(), slow[0].duration_ms), ("validate", 250));
    let slow_tasks = c
        .slowest_tasks(
            AnalyticsFilterInput {
                namespace: Some("shop".into()),
                ..Default::default()
            },
            5,
        )
        .unwrap();
    assert_eq!(slow_tasks.len(), 1);
    assert_eq!(slow_tasks[0].state, "error");
    // A filter without `since` looks at the last DEFAULT_ANALYTICS_WINDOW only; `SinceInput::All` at everything.
    c.advance_clock_ms(DEFAULT_ANALYTICS_WINDOW.as_millis() as i64 + 1_000)
        .unwrap();
    assert!(c.slowest_steps(AnalyticsFilterInput::default(), 1).unwrap().is_empty());
    assert!(c.slowest_tasks(AnalyticsFilterInput::default(), 5).unwrap().is_empty());
    let all = AnalyticsFilterInput {
        since: SinceInput::All,
        ..Default::default()
    };
    assert_eq!(c.slowest_steps(all.clone(), 1).unwrap()[0].duration_ms, 250);
    assert_eq!(c.slowest_tasks(all, 5).unwrap().len(), 1);

    // Operators: resolve the failed step, which lets ship run; resolve the other task after cancelling.
    let email = c.steps(&task.id).unwrap().remove(2);
    let resolved = c.resolve_step_manually(&email.id, json!({"sent": "by hand"})).unwrap();
    assert_eq!(resolved.state, "resolved_manually");
    assert_eq!(c.task(&task.id).unwrap().state, "in_progress");
    assert_eq!(c.retry_task(&task.id).unwrap_err().kind, ErrorKind::InvalidTransition);
    assert_eq!(c.cancel_task(&other.id, Some("duplicate")).unwrap().state, "cancelled");
    assert_eq!(
        c.resolve_task_manually(&other.id, None).unwrap_err().kind,
        ErrorKind::InvalidTransition
    );
    assert_eq!(c.reap_expired_leases(10).unwrap(), ReapReport::default());
    w.shutdown();
}

#[test]
fn tasks_start_later_and_carry_priorities() {
    let c = manual("memory:");
    c.register_template(TEMPLATE).unwrap();
    let now = c.advance_clock_ms(0).unwrap();
    let at = now + chrono::TimeDelta::seconds(60);
    let opts = |o: CreateTaskOptions| CreateTaskOptions { priority: Some(5), ..o };
    let by_time = c
        .create_task(
            "shop",
            "order",
            opts(CreateTaskOptions {
                run_at: Some(at.to_rfc3339()),
                ..Default::default()
            }),
        )
        .unwrap();
    assert_eq!(
        (by_time.priority, by_time.run_at, by_time.held_until),
        (5, Some(at), Some(at))
    );
    let by_delay = c
        .create_task(
            "shop",
            "order",
            CreateTaskOptions {
                delay_seconds: Some(60.0),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((by_delay.priority, by_delay.held_until), (0, Some(at)));
    let ex = c.explain(&by_time.id).unwrap();
    assert_eq!(ex.scheduled_for, Some(at));
    assert_eq!((ex.steps[0].scheduled_for, ex.steps[0].priority), (Some(at), 5));
    assert_eq!(c.steps(&by_time.id).unwrap()[0].priority, 5);

    let started = c.run_task_now(&by_delay.id).unwrap();
    assert_eq!(started.held_until, None);
    assert!(c.explain(&by_delay.id).unwrap().steps[0].ready);

    for (options, path) in [
        (
            CreateTaskOptions {
                run_at: Some("tomorrow".into()),
                ..Default::default()
            },
            "run_at",
        ),
        (
            CreateTaskOptions {
                delay_seconds: Some(-1.0),
                ..Default::default()
            },
            "delay_seconds",
        ),
        (
            CreateTaskOptions {
                delay_seconds: Some(1e12),
                ..Default::default()
            },
            "delay_seconds",
        ),
        (
            CreateTaskOptions {
                run_at: Some(at.to_rfc3339()),
                delay_seconds: Some(1.0),
                ..Default::default()
            },
            "delay_seconds",
        ),
        (
            CreateTaskOptions {
                priority: Some(1 << 40),
                ..Default::default()
            },
            "priority",
        ),
        (
            CreateTaskOptions {
                priority: Some(1001),
                ..Default::default()
            },
            "priority",
        ),
    ] {
        let err = c.create_task("shop", "order", options).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation, "{err}");
        assert_eq!(error::field_errors(&err)[0].0, path, "{err}");
    }
    assert_eq!(
        c.tasks(TaskFilterInput::default()).unwrap().len(),
        2,
        "bad input writes nothing"
    );
    let bad_id = c.run_task_now("nope").unwrap_err();
    assert_eq!(bad_id.kind, ErrorKind::Validation);
}

#[test]
fn schedules_fire_one_task_per_occurrence_and_are_managed_by_name() {
    let c = manual("memory:");
    c.register_template(TEMPLATE).unwrap();
    let now = c.advance_clock_ms(0).unwrap();
    let minute = |n: i64| now + chrono::TimeDelta::minutes(n);
    let options = ScheduleOptions {
        context: Some(json!({"order": 1})),
        priority: Some(3),
        ..Default::default()
    };
    let s = c
        .register_schedule("orders", "shop", "order", "* * * * *", options.clone())
        .unwrap();
    assert_eq!(
        (
            s.name.as_str(),
            s.timezone.as_str(),
            s.misfire.as_str(),
            s.priority,
            s.paused
        ),
        ("orders", "UTC", "skip", Some(3), false)
    );
    assert_eq!(
        (s.next_fire_at, s.fired, s.last_task_id.clone()),
        (Some(minute(1)), 0, None)
    );
    let again = c
        .register_schedule("orders", "shop", "order", "* * * * *", options)
        .unwrap();
    assert_eq!(again, s, "an unchanged definition is left as it is");
    assert_eq!(c.fire_schedules().unwrap().fired, 0);

    c.advance_clock_ms(60_000).unwrap();
    let report = c.fire_schedules().unwrap();
    assert_eq!(
        report,
        ScheduleReport {
            fired: 1,
            missed: 0,
            failed: 0,
            next_fire_at: Some(minute(2)),
        }
    );
    assert_eq!(c.fire_schedules().unwrap().fired, 0, "one task per occurrence");
    let s = c.schedule("orders").unwrap();
    let task_id = s.last_task_id.clone().unwrap();
    let task = c.task(&task_id).unwrap();
    assert_eq!((task.priority, task.context.clone()), (3, json!({"order": 1})));
    assert_eq!(task.initiator.as_deref(), Some("schedule:orders"));
    let ex = c.explain(&task_id).unwrap();
    assert_eq!(
        (ex.schedule.as_deref(), ex.schedule_next_fire_at),
        (Some("orders"), Some(minute(2)))
    );

    let paused = c.pause_schedule("orders").unwrap();
    assert_eq!((paused.paused, paused.next_fire_at), (true, None));
    assert_eq!(c.explain(&task_id).unwrap().schedule_next_fire_at, None);
    c.advance_clock_ms(120_000).unwrap();
    assert_eq!(c.fire_schedules().unwrap().fired, 0);
    let resumed = c.resume_schedule("orders").unwrap();
    assert_eq!((resumed.paused, resumed.next_fire_at), (false, Some(minute(4))));
    assert_eq!(c.schedules().unwrap(), vec![resumed.clone()]);
    assert_eq!(runtime::block_on(send(c.schedules_async())).unwrap(), vec![resumed]);

    let removed = c.remove_schedule("orders").unwrap();
    assert_eq!(removed.fired, 1);
    assert!(c.schedules().unwrap().is_empty());
    assert_eq!(c.schedule("orders").unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(c.remove_schedule("orders").unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(c.explain(&task_id).unwrap().schedule, None);
    assert_eq!(c.task(&task_id).unwrap().state, "pending", "its tasks stay");
}

#[test]
fn explain_says_when_a_step_waits_for_a_concurrency_slot() {
    let c = manual("memory:");
    c.register_template(
        "namespace: bill\nname: charge\nversion: 1.0.0\nsteps:\n  - name: charge\n    handler: bill.charge\n    concurrency: { key: /customer, limit: 1 }\n",
    )
    .unwrap();
    let task = |customer: &str| {
        c.create_task(
            "bill",
            "charge",
            CreateTaskOptions {
                context: Some(json!({ "customer": customer })),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let (first, second) = (task("c-1"), task("c-1"));
    let w = c
        .worker_session(WorkerOptions {
            handler_keys: vec!["bill.charge".into()],
            maintenance_interval_ms: 0,
            ..Default::default()
        })
        .unwrap();
    let claimed = w.claim(10, Duration::ZERO).unwrap();
    assert_eq!(claimed.len(), 1, "one run of the key at a time");
    let waiting = if claimed[0].task_id == first.id {
        &second
    } else {
        &first
    };
    let r = c.explain(&waiting.id).unwrap().steps.remove(0);
    assert!(!r.ready, "{r:?}");
    assert_eq!(
        (r.concurrency_key.as_deref(), r.concurrency_limit, r.concurrency_running),
        (Some("bill/charge/charge:c-1"), Some(1), Some(1))
    );
    assert!(r.reasons.iter().any(|x| x.contains("concurrency slot")), "{r:?}");
    w.shutdown();
}

#[test]
fn bad_schedules_are_typed_errors_naming_the_field_and_write_nothing() {
    let c = manual("memory:");
    c.register_template(TEMPLATE).unwrap();
    for (cron, options, path) in [
        ("61 * * * *", ScheduleOptions::default(), "cron"),
        (
            "* * * * *",
            ScheduleOptions {
                timezone: Some("Mars/Olympus".into()),
                ..Default::default()
            },
            "timezone",
        ),
        (
            "* * * * *",
            ScheduleOptions {
                misfire: Some("never".into()),
                ..Default::default()
            },
            "misfire",
        ),
        (
            "* * * * *",
            ScheduleOptions {
                priority: Some(1 << 40),
                ..Default::default()
            },
            "priority",
        ),
        (
            "* * * * *",
            ScheduleOptions {
                context: Some(json!([1])),
                ..Default::default()
            },
            "context",
        ),
    ] {
        let err = c.register_schedule("s", "shop", "order", cron, options).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation, "{err}");
        assert_eq!(error::field_errors(&err)[0].0, path, "{err}");
    }
    let missing = c
        .register_schedule("s", "shop", "nope", "* * * * *", ScheduleOptions::default())
        .unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound, "{missing}");
    assert!(c.schedules().unwrap().is_empty(), "bad input writes nothing");
    assert_eq!(c.pause_schedule("s").unwrap_err().kind, ErrorKind::NotFound);
}

#[test]
fn retry_and_resolve_task_from_error() {
    let c = manual("memory:");
    c.register_template(TEMPLATE).unwrap();
    let run_to_error = |c: &Client| {
        let t = c.create_task("shop", "order", CreateTaskOptions::default()).unwrap();
        let w = c
            .worker_session(WorkerOptions {
                handler_keys: vec!["shop.validate".into()],
                ..Default::default()
            })
            .unwrap();
        let v = w.claim(1, Duration::ZERO).unwrap().remove(0);
        w.fail(&v.token, FailureInput::permanent("bad")).unwrap();
        assert_eq!(c.task(&t.id).unwrap().state, "error");
        t
    };
    let a = run_to_error(&c);
    let b = run_to_error(&c);
    assert_eq!(c.retry_task(&a.id).unwrap().state, "in_progress");
    assert_eq!(c.steps(&a.id).unwrap()[0].max_attempts, 1 + 2);
    let r = c.resolve_task_manually(&b.id, Some("not needed")).unwrap();
    assert_eq!(r.state, "resolved_manually");
}

#[test]
fn async_calls_work_from_a_foreign_runtime() {
    // napi and other hosts poll our futures on their own executor; the work still runs on the shared runtime.
    let foreign = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    foreign.block_on(async {
        let (url, _dir) = sqlite_url();
        let c = send(Client::open_async(&url, ClientOptions::default())).await.unwrap();
        send(c.register_template_async(TEMPLATE)).await.unwrap();
        let t = send(c.create_task_async("shop", "order", CreateTaskOptions::default()))
            .await
            .unwrap();
        assert_eq!(send(c.task_async(&t.id)).await.unwrap().id, t.id);
        assert_eq!(send(c.tasks_async(TaskFilterInput::default())).await.unwrap().len(), 1);
        assert_eq!(send(c.steps_async(&t.id)).await.unwrap().len(), 4);
        let s0 = send(c.steps_async(&t.id)).await.unwrap().remove(0);
        assert_eq!(send(c.step_async(&s0.id)).await.unwrap().name, "validate");
        assert_eq!(send(c.explain_async(&t.id)).await.unwrap().steps.len(), 4);
        assert_eq!(send(c.execution_context_async(&t.id)).await.unwrap().total_steps, 4);
        assert_eq!(send(c.dependency_levels_async(&t.id)).await.unwrap().len(), 4);
        assert_eq!(send(c.transitions_async(&t.id)).await.unwrap().task.len(), 1);
        assert_eq!(send(c.templates_async()).await.unwrap().len(), 1);
        assert_eq!(
            send(c.template_async("shop", "order", None)).await.unwrap().name,
            "order"
        );
        assert_eq!(send(c.health_counts_async()).await.unwrap().total_tasks, 1);
        let since = chrono::Utc::now() - chrono::TimeDelta::hours(1);
        assert_eq!(send(c.analytics_metrics_async(since)).await.unwrap().tasks_completed, 0);
        assert!(send(c.slowest_steps_async(Default::default(), 3))
            .await
            .unwrap()
            .is_empty());
        assert!(send(c.slowest_tasks_async(Default::default(), 3))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(send(c.reap_expired_leases_async(5)).await.unwrap().retried, 0);
        assert!(!send(c.validate_or_refresh_async()).await.unwrap());
        assert_eq!(send(c.cancel_task_async(&t.id, None)).await.unwrap().state, "cancelled");
        assert_eq!(
            send(c.retry_task_async(&t.id)).await.unwrap_err().kind,
            ErrorKind::InvalidTransition
        );
        let e = send(c.resolve_step_manually_async(&s0.id, json!(1))).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidTransition);
        let e = send(c.resolve_task_manually_async(&t.id, None)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidTransition);
        let reg = send(c.register_template_value_async(&json!({"namespace": "x"})))
            .await
            .unwrap_err();
        assert_eq!(reg.kind, ErrorKind::Validation);
        // Blocking calls are refused here rather than stalling this executor.
        assert_eq!(c.templates().unwrap_err().kind, ErrorKind::Configuration);
        send(c.close_async()).await.unwrap();
        send(c.close_async()).await.unwrap();
        assert_eq!(send(c.task_async(&t.id)).await.unwrap_err().kind, ErrorKind::Closed);
    });
}

#[test]
fn validate_or_refresh_rebuilds_a_broken_pool() {
    let (url, _dir) = sqlite_url();
    let c = Client::open(&url, ClientOptions::default()).unwrap();
    c.register_template(TEMPLATE).unwrap();
    let t = c.create_task("shop", "order", CreateTaskOptions::default()).unwrap();
    let sub = c
        .subscribe(EventFilterInput {
            names: vec!["task.created".into()],
            ..Default::default()
        })
        .unwrap();
    // Break the pool underneath the handle, as a database restart would.
    let engine = c.engine().unwrap();
    runtime::block_on(async move {
        engine.close().await;
        Ok(())
    })
    .unwrap();
    assert_eq!(c.task(&t.id).unwrap_err().kind, ErrorKind::Closed);
    assert!(c.validate_or_refresh().unwrap(), "a broken pool is rebuilt");
    assert_eq!(c.task(&t.id).unwrap().id, t.id, "the data is still there");
    assert_eq!(c.health().unwrap().refreshes, 1);
    assert!(!c.validate_or_refresh().unwrap());
    // A subscription made before the rebuild sees the events of the rebuilt store.
    let after = c.create_task("shop", "order", CreateTaskOptions::default()).unwrap();
    let seen = sub
        .next(Duration::from_secs(10))
        .unwrap()
        .expect("an event after the rebuild");
    assert_eq!(
        (seen.name.as_str(), seen.task_id.as_str()),
        ("task.created", after.id.as_str())
    );
}

#[test]
fn an_in_memory_store_that_broke_cannot_be_rebuilt() {
    let c = Client::open("memory:", ClientOptions::default()).unwrap();
    let engine = c.engine().unwrap();
    runtime::block_on(async move {
        engine.close().await;
        Ok(())
    })
    .unwrap();
    let e = c.validate_or_refresh().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed);
    assert!(e.message.contains("cannot be rebuilt"), "{}", e.message);
    assert_eq!(e.causes, vec!["engine is closed".to_string()]);
}

#[test]
fn a_refresh_that_cannot_reopen_keeps_the_cause_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub");
    std::fs::create_dir(&path).unwrap();
    let url = format!("sqlite://{}/tasker.db", path.display());
    let c = Client::open(&url, ClientOptions::default()).unwrap();
    let engine = c.engine().unwrap();
    runtime::block_on(async move {
        engine.close().await;
        Ok(())
    })
    .unwrap();
    // The database cannot be reopened where its directory was.
    std::fs::remove_dir_all(&path).unwrap();
    std::fs::write(&path, b"not a directory").unwrap();
    let e = c.validate_or_refresh().unwrap_err();
    assert!(e.message.starts_with("reopening sqlite://"), "{}", e.message);
    assert_eq!(e.causes.last().map(String::as_str), Some("engine is closed"));
}

#[test]
fn clones_share_one_handle_across_threads() {
    let (url, _dir) = sqlite_url();
    let c = Client::open(&url, ClientOptions::default()).unwrap();
    c.register_template(TEMPLATE).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                for j in 0..5 {
                    let key = format!("t{i}-{j}");
                    c.create_task(
                        "shop",
                        "order",
                        CreateTaskOptions {
                            idempotency_key: Some(key),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.health_counts().unwrap().total_tasks, 20);
    c.close().unwrap();
    assert_eq!(c.tasks(TaskFilterInput::default()).unwrap_err().kind, ErrorKind::Closed);
}

#[test]
fn errors_carry_stable_codes_and_details() {
    let c = Client::open("memory:", ClientOptions::default()).unwrap();
    let e = c
        .register_template(
            "namespace: a\nname: b\nversion: 1.0.0\nsteps:\n  - {name: x, handler: h, depends_on: [x]}\n",
        )
        .unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::Validation, "validation"));
    assert_eq!(e.details["errors"][0]["path"], "steps[0].depends_on[0]");
    let id = uuid_like();
    let e = c.task(&id).unwrap_err();
    assert_eq!((e.code, e.details["entity"].as_str()), ("not_found", Some("task")));
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["code"], "not_found");
}

fn uuid_like() -> String {
    "0190b6a2-0000-7000-8000-000000000000".to_string()
}
