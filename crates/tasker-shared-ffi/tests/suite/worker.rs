//! The worker protocol: claims that wait and wake, heartbeats, batches, stale tokens, shutdown and recovery.

use std::time::{Duration, Instant};

use serde_json::json;
use tasker_shared_ffi::testkit::{self, PatternSpec};
use tasker_shared_ffi::*;

use super::support::{eventually, sqlite_url};

const ONE: &str = "namespace: w\nname: one\nversion: 1.0.0\ndefaults: { retry: { max_attempts: 3, backoff: none } }\nsteps:\n  - { name: only, handler: w.only }\n";

fn client(url: &str, clock: ClockKind) -> Client {
    let c = Client::open(
        url,
        ClientOptions {
            clock,
            ..Default::default()
        },
    )
    .unwrap();
    c.register_template(ONE).unwrap();
    c
}

fn options(keys: &[&str]) -> WorkerOptions {
    WorkerOptions {
        worker_id: Some("w-test".into()),
        handler_keys: keys.iter().map(|k| k.to_string()).collect(),
        maintenance_interval_ms: 0,
        ..Default::default()
    }
}

/// Keeps an async call `Send`, as napi and any multi-threaded executor need.
fn send<F: std::future::Future + Send>(f: F) -> F {
    f
}

fn create(c: &Client) -> Task {
    c.create_task("w", "one", CreateTaskOptions::default()).unwrap()
}

#[test]
fn claim_hands_out_step_contexts_and_records_the_worker() {
    let c = client("memory:", ClockKind::Manual);
    let t = c
        .create_task(
            "w",
            "one",
            CreateTaskOptions {
                context: Some(json!({"k": "v"})),
                ..Default::default()
            },
        )
        .unwrap();
    let w = c.worker_session(options(&["w.only"])).unwrap();
    assert_eq!(w.worker_id(), "w-test");
    let ctx = w.claim(5, Duration::ZERO).unwrap().remove(0);
    assert_eq!((ctx.task_id.as_str(), ctx.step_name.as_str()), (t.id.as_str(), "only"));
    assert_eq!(
        (ctx.attempt, ctx.max_attempts, ctx.handler_key.as_str()),
        (1, 3, "w.only")
    );
    assert_eq!((ctx.namespace.as_str(), ctx.task_name.as_str()), ("w", "one"));
    assert_eq!(ctx.context, json!({"k": "v"}));
    assert_eq!(ctx.token, ClaimToken::new(ctx.step_id.clone(), 1));
    assert_eq!((ctx.deadline - c.now().unwrap()).num_seconds(), 300);
    assert_eq!((ctx.lease_expires_at - c.now().unwrap()).num_milliseconds(), 30_000);
    assert_eq!(w.outstanding(), vec![ctx.token.clone()]);
    let step = c.step(&ctx.step_id).unwrap();
    assert_eq!(
        (step.worker_id.as_deref(), step.state.as_str()),
        (Some("w-test"), "in_progress")
    );
    let done = w.complete(&ctx.token, json!({"done": 1})).unwrap();
    assert_eq!(done.result, Some(json!({"done": 1})));
    assert!(w.outstanding().is_empty());
    let s = w.stats();
    assert_eq!(
        (s.claimed, s.completed, s.failed, s.rejected, s.outstanding),
        (1, 1, 0, 0, 0)
    );
}

#[test]
fn failures_are_classified_and_recorded() {
    let c = client("memory:", ClockKind::Manual);
    create(&c);
    let w = c.worker_session(options(&["w.only"])).unwrap();
    let first = w.claim(1, Duration::ZERO).unwrap().remove(0);
    let retried = w
        .fail(
            &first.token,
            FailureInput {
                error_class: Some("Net::ReadTimeout".into()),
                backtrace: vec!["lib/a.rb:1".into(), "lib/b.rb:2".into()],
                ..FailureInput::retryable("read timed out")
            },
        )
        .unwrap();
    assert_eq!(retried.state, "waiting_for_retry");
    let err = retried.error.unwrap();
    assert_eq!((err.error_class.as_str(), err.retryable), ("Net::ReadTimeout", true));
    assert_eq!(err.backtrace.len(), 2);
    let second = w.claim(1, Duration::ZERO).unwrap().remove(0);
    assert_eq!(second.attempt, 2);
    let failed = w
        .fail(
            &second.token,
            FailureInput {
                code: Some("invalid".into()),
                ..FailureInput::permanent("will never work")
            },
        )
        .unwrap();
    assert_eq!(failed.state, "error");
    assert_eq!(failed.error.unwrap().code.as_deref(), Some("invalid"));
    assert_eq!(w.stats().failed, 2);
}

#[test]
fn batches_report_each_item_on_its_own() {
    let c = client("memory:", ClockKind::Manual);
    for _ in 0..4 {
        create(&c);
    }
    let w = c.worker_session(options(&["w.only"])).unwrap();
    let claimed = w.claim(10, Duration::ZERO).unwrap();
    assert_eq!(claimed.len(), 4);
    let stale = ClaimToken::new(claimed[0].step_id.clone(), 99);
    let malformed = ClaimToken::new("not-an-id", 1);
    let results = w
        .finish_many(vec![
            (claimed[0].token.clone(), OutcomeInput::Success(json!(0))),
            (stale.clone(), OutcomeInput::Success(json!("stale"))),
            (malformed, OutcomeInput::Success(json!("bad"))),
        ])
        .unwrap();
    assert!(results[0].is_ok());
    assert_eq!(results[1].as_ref().unwrap_err().kind, ErrorKind::StaleClaim);
    assert_eq!(results[2].as_ref().unwrap_err().kind, ErrorKind::Validation);
    let failed = w
        .finish_many(vec![(
            claimed[1].token.clone(),
            OutcomeInput::Failure(FailureInput::permanent("no")),
        )])
        .unwrap();
    assert_eq!(failed[0].as_ref().unwrap().state, "error");
    let mixed = w
        .finish_many(vec![
            (claimed[2].token.clone(), OutcomeInput::Success(json!({"n": 2}))),
            (
                claimed[3].token.clone(),
                OutcomeInput::Failure(FailureInput::retryable("again")),
            ),
        ])
        .unwrap();
    assert_eq!(mixed[0].as_ref().unwrap().state, "complete");
    assert_eq!(mixed[1].as_ref().unwrap().state, "waiting_for_retry");
    assert!(w.finish_many(vec![]).unwrap().is_empty());
    assert!(w.outstanding().is_empty());
    let s = w.stats();
    assert_eq!((s.completed, s.failed, s.rejected), (2, 2, 2));
}

#[test]
fn a_waiting_claim_wakes_when_work_arrives() {
    let c = client("memory:", ClockKind::System);
    let w = c
        .worker_session(WorkerOptions {
            // So long that only the work signal can end the wait within the test's deadline.
            poll_interval_ms: 600_000,
            ..options(&["w.only"])
        })
        .unwrap();
    let waiter = {
        let w = w.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            (w.claim(1, Duration::from_secs(120)).unwrap(), start.elapsed())
        })
    };
    create(&c);
    let (got, took) = waiter.join().unwrap();
    assert_eq!(got.len(), 1);
    assert!(took < Duration::from_secs(60), "the claim waited {took:?}");
}

#[test]
fn a_waiting_claim_gives_up_at_its_deadline() {
    let c = client("memory:", ClockKind::System);
    let w = c
        .worker_session(WorkerOptions {
            poll_interval_ms: 10,
            ..options(&["w.only"])
        })
        .unwrap();
    let start = Instant::now();
    assert!(w.claim(1, Duration::from_millis(50)).unwrap().is_empty());
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[test]
fn shutdown_interrupts_a_waiting_claim_and_stops_claiming() {
    let c = client("memory:", ClockKind::System);
    let w = c
        .worker_session(WorkerOptions {
            poll_interval_ms: 600_000,
            ..options(&["w.only"])
        })
        .unwrap();
    let waiter = {
        let w = w.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            (w.claim(1, Duration::from_secs(600)).unwrap(), start.elapsed())
        })
    };
    w.shutdown();
    w.shutdown();
    let (got, took) = waiter.join().unwrap();
    assert!(got.is_empty());
    assert!(took < Duration::from_secs(60), "shutdown took {took:?}");
    assert!(w.is_shutdown());
    create(&c);
    assert!(
        w.claim(1, Duration::ZERO).unwrap().is_empty(),
        "no claims after shutdown"
    );
}

#[test]
fn heartbeats_extend_outstanding_leases_even_after_shutdown_until_reported() {
    let c = client("memory:", ClockKind::System);
    create(&c);
    let w = c
        .worker_session(WorkerOptions {
            lease_ms: 300,
            ..options(&["w.only"])
        })
        .unwrap();
    let ctx = w.claim(1, Duration::ZERO).unwrap().remove(0);
    let first = ctx.lease_expires_at;
    eventually("a heartbeat to extend the lease", Duration::from_secs(30), || {
        c.step(&ctx.step_id)
            .unwrap()
            .lease_expires_at
            .is_some_and(|l| l > first)
    });
    // A graceful shutdown keeps running handlers' leases alive until they report.
    w.shutdown();
    let after = c.step(&ctx.step_id).unwrap().lease_expires_at.unwrap();
    eventually("a heartbeat after shutdown", Duration::from_secs(30), || {
        c.step(&ctx.step_id)
            .unwrap()
            .lease_expires_at
            .is_some_and(|l| l > after)
    });
    w.complete(&ctx.token, json!("late but fine")).unwrap();
    assert_eq!(c.step(&ctx.step_id).unwrap().state, "complete");
}

#[test]
fn a_heartbeat_drops_claims_it_finds_lost() {
    let c = client("memory:", ClockKind::System);
    let t = create(&c);
    let w = c
        .worker_session(WorkerOptions {
            heartbeat_interval_ms: Some(10),
            ..options(&["w.only"])
        })
        .unwrap();
    let ctx = w.claim(1, Duration::ZERO).unwrap().remove(0);
    c.cancel_task(&t.id, None).unwrap();
    eventually(
        "the heartbeat to notice the lost claim",
        Duration::from_secs(30),
        || w.stats().lost == 1,
    );
    assert!(w.outstanding().is_empty());
    let e = w.complete(&ctx.token, json!(1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidTransition);
}

#[test]
fn background_maintenance_recovers_a_crashed_workers_step() {
    let (url, _dir) = sqlite_url();
    let c = client(&url, ClockKind::System);
    let t = create(&c);
    let crashed = c
        .worker_session(WorkerOptions {
            lease_ms: 100,
            heartbeat_interval_ms: Some(0),
            ..options(&["w.only"])
        })
        .unwrap();
    let lost = crashed.claim(1, Duration::ZERO).unwrap().remove(0);
    drop(crashed);
    let rescuer = c
        .worker_session(WorkerOptions {
            worker_id: Some("rescuer".into()),
            maintenance_interval_ms: 20,
            poll_interval_ms: 20,
            ..options(&["w.only"])
        })
        .unwrap();
    let again = rescuer.claim(1, Duration::from_secs(30)).unwrap();
    assert_eq!(again.len(), 1, "the reaped step was claimed again");
    assert_eq!(
        (again[0].step_id.as_str(), again[0].attempt),
        (lost.step_id.as_str(), 2)
    );
    rescuer.complete(&again[0].token, json!("rescued")).unwrap();
    assert_eq!(c.task(&t.id).unwrap().state, "complete");
    let trail = c.transitions(&t.id).unwrap();
    assert!(trail.steps.iter().any(|s| s.event.as_deref() == Some("lease_expired")));
}

#[test]
fn forget_leaves_a_claim_to_the_reaper() {
    let c = client("memory:", ClockKind::Manual);
    let t = create(&c);
    let w = c.worker_session(options(&["w.only"])).unwrap();
    let ctx = w.claim(1, Duration::ZERO).unwrap().remove(0);
    w.forget(&ctx.token).unwrap();
    assert!(w.outstanding().is_empty());
    assert_eq!(
        w.forget(&ClaimToken::new("x", 1)).unwrap_err().kind,
        ErrorKind::Validation
    );
    c.advance_clock_ms(30_001).unwrap();
    assert_eq!(c.reap_expired_leases(10).unwrap().retried, 1);
    assert_eq!(c.steps(&t.id).unwrap()[0].state, "waiting_for_retry");
}

#[test]
fn sessions_validate_their_options_and_die_with_the_client() {
    let c = client("memory:", ClockKind::Manual);
    assert_eq!(c.worker_session(options(&[])).unwrap_err().kind, ErrorKind::Validation);
    let e = c
        .worker_session(WorkerOptions {
            lease_ms: 0,
            ..options(&["w.only"])
        })
        .unwrap_err();
    assert!(e.message.contains("options.lease_ms"), "{}", e.message);
    let e = c
        .worker_session(WorkerOptions {
            worker_id: Some(String::new()),
            ..options(&["w.only"])
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Validation);
    let w = c.worker_session(options(&["w.only"])).unwrap();
    assert_eq!(w.claim(0, Duration::ZERO).unwrap_err().kind, ErrorKind::Validation);
    c.close().unwrap();
    assert_eq!(w.claim(1, Duration::ZERO).unwrap_err().kind, ErrorKind::Closed);
    assert_eq!(
        w.complete(&ClaimToken::new("x", 1), json!(1)).unwrap_err().kind,
        ErrorKind::Closed
    );
    assert_eq!(
        c.worker_session(options(&["w.only"])).unwrap_err().kind,
        ErrorKind::Closed
    );
}

#[test]
fn async_worker_calls_work_from_a_foreign_runtime() {
    let c = client("memory:", ClockKind::Manual);
    create(&c);
    create(&c);
    let w = c.worker_session(options(&["w.only"])).unwrap();
    let foreign = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    foreign.block_on(async {
        let a = send(w.claim_async(1, Duration::ZERO)).await.unwrap().remove(0);
        send(w.complete_async(&a.token, json!(1))).await.unwrap();
        let b = send(w.claim_async(1, Duration::ZERO)).await.unwrap().remove(0);
        send(w.fail_async(&b.token, FailureInput::permanent("x")))
            .await
            .unwrap();
        let b2 = send(w.claim_async(1, Duration::from_millis(1))).await.unwrap();
        assert!(b2.is_empty());
        assert!(send(w.finish_many_async(vec![])).await.unwrap().is_empty());
    });
    assert_eq!(w.stats().claimed, 2);
}

#[test]
fn run_until_idle_drives_factory_tasks_on_sqlite() {
    let (url, _dir) = sqlite_url();
    let c = Client::open(&url, ClientOptions::default()).unwrap();
    let made = testkit::create_pattern_tasks(&c, &PatternSpec::new("mixed"), 3, None).unwrap();
    let r = testkit::run_until_idle(&c, &testkit::HandlerScript::default(), &testkit::RunOptions::default()).unwrap();
    assert_eq!(r.completed, 21);
    for t in made.tasks {
        assert_eq!(c.task(&t.id).unwrap().state, "complete");
    }
}

#[test]
fn each_host_mistake_has_one_rule() {
    let c = client("memory:", ClockKind::Manual);
    let (bad, missing, raised) = (create(&c), create(&c), create(&c));
    let w = c.worker_session(options(&["w.only"])).unwrap();
    let run = w.until_idle(&testkit::RunOptions {
        batch_size: 3,
        max_claims: Some(3),
        ..Default::default()
    });
    let batch = run.next_batch().unwrap().expect("three steps");
    let by_task = |t: &Task| batch.iter().find(|c| c.task_id == t.id).unwrap().token.clone();
    // A result the adapter could not lift: the lift error names the field path.
    let lift = FfiError::validation("result.when", "expected a JSON value, found a Time");
    run.report(&by_task(&bad), HostOutcome::returned(Err(lift))).unwrap();
    run.report(&by_task(&missing), HostOutcome::HandlerMissing("w.only".into()))
        .unwrap();
    run.report(
        &by_task(&raised),
        HostOutcome::Failure(FailureInput {
            error_class: Some("KeyError".into()),
            backtrace: vec!["handler.rb:3".into()],
            ..FailureInput::retryable("key not found: :x")
        }),
    )
    .unwrap();
    // A token is reported once, and only by the run that handed it out.
    assert_eq!(
        run.report(&by_task(&bad), HostOutcome::Success(json!(1)))
            .unwrap_err()
            .kind,
        ErrorKind::Validation
    );
    assert!(run.next_batch().unwrap().is_none());
    let report = run.finish().unwrap();
    assert_eq!((report.completed, report.failed, report.rejected), (0, 3, 0));
    let outcomes: Vec<&str> = report.calls.iter().map(|c| c.outcome.as_str()).collect();
    assert_eq!(outcomes, ["fail_permanent", "fail_retryable", "fail_retryable"]);
    let step = |t: &Task| c.steps(&t.id).unwrap().remove(0);
    let e = step(&bad).error.unwrap();
    assert_eq!(step(&bad).state, "error");
    assert_eq!(
        (e.error_class.as_str(), e.code.as_deref(), e.retryable),
        ("InvalidResult", Some("invalid_result"), false)
    );
    assert_eq!(e.message, "result.when: expected a JSON value, found a Time");
    let e = step(&missing).error.unwrap();
    assert_eq!(
        (step(&missing).state.as_str(), e.error_class.as_str(), e.retryable),
        ("waiting_for_retry", "HandlerMissing", true)
    );
    let e = step(&raised).error.unwrap();
    assert_eq!(
        (e.error_class.as_str(), e.backtrace.len(), e.retryable),
        ("KeyError", 1, true)
    );
}

#[test]
fn a_handler_past_its_deadline_is_failed_with_timeout_for_every_host() {
    const SHORT: &str =
        "namespace: w\nname: short\nversion: 1.0.0\nsteps:\n  - { name: slow, handler: w.slow, timeout_seconds: 1 }\n";
    let c = client("memory:", ClockKind::System);
    c.register_template(SHORT).unwrap();
    let t = c.create_task("w", "short", CreateTaskOptions::default()).unwrap();
    let w = c.worker_session(options(&["w.slow"])).unwrap();
    let ctx = w.next_batch(1, Duration::from_secs(5)).unwrap().remove(0);
    // The host's handler hangs; the session gives up on it at the deadline, alone.
    eventually("the timeout", Duration::from_secs(20), || {
        c.steps(&t.id).unwrap()[0].state == "waiting_for_retry"
    });
    let e = c.steps(&t.id).unwrap()[0].error.clone().unwrap();
    assert_eq!(
        (e.error_class.as_str(), e.code.as_deref()),
        ("TimeoutError", Some("timeout"))
    );
    w.report(&ctx.token, HostOutcome::Success(json!("late"))).unwrap();
    w.flush().unwrap();
    let s = w.stats();
    assert_eq!((s.timed_out, s.late, s.rejected, s.outstanding), (1, 1, 1, 0), "{s:?}");
}
