//! Readiness, claims, leases, retries and finalization.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use tasker_core::engine::ClaimRequest;
use tasker_core::*;

use super::harness::{H, LEASE};

fn ready_names(ex: &tasker_core::readiness::Explain) -> Vec<String> {
    ex.steps.iter().filter(|s| s.ready).map(|s| s.name.clone()).collect()
}

pub async fn roots_are_ready_and_children_wait(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    let ex = h.engine.explain(task.id).await.unwrap();
    assert_eq!(ready_names(&ex), vec!["a"]);
    let d = &ex.steps[3];
    assert_eq!(d.blocked_by, vec!["b", "c"]);
    assert!(
        d.reasons.iter().any(|r| r.contains("waiting for b, c")),
        "{:?}",
        d.reasons
    );
    assert!(h.claim(&["h.b", "h.c", "h.d"], 10).await.is_empty());
}

pub async fn child_is_ready_only_when_all_parents_succeed(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    h.run_step("a").await;
    assert_eq!(ready_names(&h.engine.explain(task.id).await.unwrap()), vec!["b", "c"]);
    h.run_step("b").await;
    assert!(h.claim(&["h.d"], 1).await.is_empty(), "d still waits for c");
    let ex = h.engine.explain(task.id).await.unwrap();
    assert_eq!(ex.steps[3].blocked_by, vec!["c"]);
    h.run_step("c").await;
    h.run_step("d").await;
    assert_eq!(h.task_state(&task).await, TaskState::Complete);
    h.check(&task).await;
}

pub async fn resolved_parent_counts_as_success(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    let a = h.step(&task, "a").await;
    h.engine
        .resolve_step_manually(a.id, json!({"manual": true}))
        .await
        .unwrap();
    assert_eq!(ready_names(&h.engine.explain(task.id).await.unwrap()), vec!["b", "c"]);
    let b = h.claim_step("b").await;
    assert_eq!(b.dependency_results.get("a"), Some(&json!({"manual": true})));
    h.check(&task).await;
}

pub async fn retry_waits_until_next_attempt_at(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    let c = h.claim_step("a").await;
    let s = h.engine.fail(c.token, StepFailure::retryable("flaky")).await.unwrap();
    assert_eq!(s.state, StepState::WaitingForRetry);
    let due = s.next_attempt_at.unwrap();
    assert_eq!(
        (due - h.engine.now()).num_milliseconds(),
        1000,
        "base_ms with no jitter"
    );
    let ex = h.engine.explain(task.id).await.unwrap();
    assert!(!ex.steps[0].ready);
    assert_eq!(ex.steps[0].retry_at, Some(due));
    assert!(h.claim(&["h.a"], 1).await.is_empty(), "not before the retry is due");
    h.advance_ms(999);
    assert!(h.claim(&["h.a"], 1).await.is_empty());
    h.advance_ms(1);
    let again = h.claim_step("a").await;
    assert_eq!(again.attempt, 2);
    h.check(&task).await;
}

pub async fn steps_of_a_cancelled_task_are_not_claimed(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    h.engine.cancel_task(task.id, Some("stop")).await.unwrap();
    assert!(h.claim(&["h.a"], 1).await.is_empty());
    let ex = h.engine.explain(task.id).await.unwrap();
    assert!(ex.steps.iter().all(|s| !s.ready && s.state == StepState::Cancelled));
    h.check(&task).await;
}

pub async fn steps_of_an_errored_task_are_not_claimed(h: H) {
    h.template("pair", &[("a", &[]), ("b", &[])], json!({"max_attempts": 1}))
        .await;
    let task = h.create("pair").await;
    let a = h.claim_step("a").await;
    h.engine.fail(a.token, StepFailure::permanent("no")).await.unwrap();
    // b is independent, so the task keeps running until b finishes.
    assert_eq!(h.task_state(&task).await, TaskState::InProgress);
    h.run_step("b").await;
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    let ex = h.engine.explain(task.id).await.unwrap();
    assert!(ex.steps[0].attempts_exhausted);
    h.check(&task).await;
}

pub async fn claim_respects_handler_keys_and_limit(h: H) {
    h.template("wide", &[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[])], json!({}))
        .await;
    h.create("wide").await;
    h.create("wide").await;
    let got = h.claim(&["h.a", "h.b"], 3).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|c| c.handler_key == "h.a" || c.handler_key == "h.b"));
    let rest = h.claim(&["h.a", "h.b"], 10).await;
    assert_eq!(rest.len(), 1);
    assert!(h.claim(&["h.zzz"], 10).await.is_empty());
}

pub async fn claim_takes_oldest_first(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    let t1 = h.create("one").await;
    let t2 = h.create("one").await;
    let t3 = h.create("one").await;
    let got: Vec<_> = h.claim(&["h.a"], 3).await.into_iter().map(|c| c.task_id).collect();
    assert_eq!(got, vec![t1.id, t2.id, t3.id]);
}

pub async fn claim_rejects_bad_requests(h: H) {
    for (keys, limit, lease) in [
        (vec![], 1, LEASE),
        (vec!["h.a".to_string()], 0, LEASE),
        (vec!["h.a".to_string()], 1, Duration::ZERO),
    ] {
        let err = h
            .engine
            .claim(&ClaimRequest {
                worker_id: "w".into(),
                handler_keys: keys,
                limit,
                lease,
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation);
    }
}

pub async fn claim_starts_task_and_records_the_lease(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    let c = h.claim_step("a").await;
    let t = h.engine.task(task.id).await.unwrap();
    assert_eq!(t.state, TaskState::InProgress);
    assert_eq!(t.started_at, Some(h.engine.now()));
    let s = h.step(&task, "a").await;
    assert_eq!(
        (s.state, s.attempts, s.worker_id.as_deref()),
        (StepState::InProgress, 1, Some("w1"))
    );
    assert_eq!(
        s.lease_expires_at,
        Some(h.engine.now() + chrono::TimeDelta::seconds(30))
    );
    assert_eq!(
        c.token,
        ClaimToken {
            step_id: s.id,
            attempt: 1
        }
    );
    assert_eq!(c.deadline, h.engine.now() + chrono::TimeDelta::seconds(60));
    assert_eq!((c.attempt, c.max_attempts), (1, 3));
    h.check(&task).await;
}

pub async fn claim_hands_out_context_config_and_parent_results(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    h.run_step("a").await;
    h.run_step("b").await;
    h.run_step("c").await;
    let d = h.claim_step("d").await;
    assert_eq!(d.context, json!({"n": 1}));
    assert_eq!(d.config, json!({"step": "d"}));
    assert_eq!(
        (d.namespace.as_str(), d.task_name.as_str(), d.step_name.as_str()),
        ("t", "diamond", "d")
    );
    assert_eq!(d.dependency_results.len(), 2);
    assert_eq!(d.dependency_results["b"], json!({"from": "b"}));
    assert_eq!(d.dependency_results["c"], json!({"from": "c"}));
    assert_eq!(d.task_id, task.id);
}

pub async fn concurrent_claims_never_hand_out_a_step_twice(h: H) {
    let steps: Vec<(String, Vec<&str>)> = (0..60).map(|i| (format!("s{i}"), vec![])).collect();
    let shape: Vec<(&str, &[&str])> = steps.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let rec = h.template("many", &shape, json!({})).await;
    h.create("many").await;
    h.create("many").await;
    let keys: Vec<String> = rec.template.steps.iter().map(|s| s.handler.clone()).collect();
    let mut joins = Vec::new();
    for w in 0..4 {
        let engine = h.engine.clone();
        let keys = keys.clone();
        joins.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let req = ClaimRequest {
                    worker_id: format!("w{w}"),
                    handler_keys: keys.clone(),
                    limit: 7,
                    lease: LEASE,
                };
                let c = engine.claim(&req).await.unwrap();
                if c.is_empty() {
                    return got;
                }
                got.extend(c.into_iter().map(|c| c.step_id));
            }
        }));
    }
    let mut all = Vec::new();
    for j in joins {
        all.extend(j.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 120);
    assert_eq!(unique.len(), 120);
}

pub async fn heartbeat_extends_live_claims_only(h: H) {
    h.template("pair", &[("a", &[]), ("b", &[])], json!({})).await;
    let task = h.create("pair").await;
    let a = h.claim_step("a").await;
    let b = h.claim_step("b").await;
    h.engine.complete(b.token, json!(1)).await.unwrap();
    h.advance_ms(20_000);
    let ext = h.engine.heartbeat(&[a.token, b.token], LEASE).await.unwrap();
    assert_eq!(ext, vec![a.token], "b is finished, so its claim is gone");
    let s = h.step(&task, "a").await;
    assert_eq!(
        s.lease_expires_at,
        Some(h.engine.now() + chrono::TimeDelta::seconds(30))
    );
    h.advance_ms(30_000);
    assert_eq!(
        h.engine.reap_expired_leases(100).await.unwrap(),
        Default::default(),
        "the extended lease holds"
    );
    h.advance_ms(1);
    assert_eq!(h.engine.reap_expired_leases(100).await.unwrap().retried, 1);
    h.check(&task).await;
}

pub async fn reaper_retries_expired_leases_with_attempts_left(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    let first = h.claim_step("a").await;
    h.advance_ms(30_000);
    assert_eq!(
        h.engine.reap_expired_leases(100).await.unwrap(),
        Default::default(),
        "a lease ending now has not expired"
    );
    h.advance_ms(1);
    let r = h.engine.reap_expired_leases(100).await.unwrap();
    assert_eq!((r.retried, r.failed), (1, 0));
    let s = h.step(&task, "a").await;
    assert_eq!(s.state, StepState::WaitingForRetry);
    assert_eq!(s.error.as_ref().unwrap().error_class, "worker_lost");
    h.advance_ms(1000);
    let second = h.claim_as("w2", &["h.a"], 1, LEASE).await.remove(0);
    assert_eq!(second.attempt, 2);
    // The crashed worker comes back and reports: its claim is stale.
    let err = h.engine.complete(first.token, json!(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleClaim);
    h.engine.complete(second.token, json!(2)).await.unwrap();
    assert_eq!(h.step(&task, "a").await.result, Some(json!(2)));
    h.check(&task).await;
}

pub async fn reaper_fails_exhausted_steps_as_worker_lost(h: H) {
    h.template("solo", &[("a", &[]), ("b", &["a"])], json!({"max_attempts": 1}))
        .await;
    let task = h.create("solo").await;
    h.claim_step("a").await;
    h.advance_ms(30_001);
    let r = h.engine.reap_expired_leases(100).await.unwrap();
    assert_eq!((r.retried, r.failed), (0, 1));
    let s = h.step(&task, "a").await;
    assert_eq!(s.state, StepState::Error);
    assert_eq!(s.error.unwrap().code.as_deref(), Some("worker_lost"));
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    let (_, rows) = h.engine.transitions(task.id).await.unwrap();
    assert!(rows.iter().any(|r| r.event == Some(StepEvent::WorkerLost)));
    h.check(&task).await;
}

pub async fn late_completion_before_reaping_is_accepted(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    let a = h.claim_step("a").await;
    h.advance_ms(45_000);
    // The lease lapsed but nobody took the step over, so the result is still the only one.
    h.engine.complete(a.token, json!("late")).await.unwrap();
    assert_eq!(h.engine.reap_expired_leases(100).await.unwrap(), Default::default());
    h.check(&task).await;
}

pub async fn stale_tokens_are_rejected(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    let a = h.claim_step("a").await;
    let wrong = ClaimToken {
        step_id: a.step_id,
        attempt: 2,
    };
    assert_eq!(
        h.engine.complete(wrong, json!(1)).await.unwrap_err().kind(),
        ErrorKind::StaleClaim
    );
    h.engine.complete(a.token, json!(1)).await.unwrap();
    let err = h.engine.complete(a.token, json!(2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleClaim, "a completion is recorded once");
    let err = h.engine.fail(a.token, StepFailure::retryable("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleClaim);
    assert_eq!(h.step(&task, "a").await.result, Some(json!(1)));
    h.check(&task).await;
}

pub async fn batch_outcomes_are_judged_one_by_one(h: H) {
    h.template(
        "trio",
        &[("a", &[]), ("b", &[]), ("c", &[])],
        json!({"max_attempts": 2, "backoff": "none"}),
    )
    .await;
    let task = h.create("trio").await;
    let got = h.claim(&["h.a", "h.b", "h.c"], 3).await;
    let stale = ClaimToken {
        step_id: got[2].step_id,
        attempt: 9,
    };
    let res = h
        .engine
        .finish_many(vec![
            (got[0].token, Outcome::Success(json!("a"))),
            (got[1].token, Outcome::Failure(StepFailure::retryable("b failed"))),
            (stale, Outcome::Success(json!("c"))),
        ])
        .await
        .unwrap();
    assert_eq!(res[0].as_ref().unwrap().state, StepState::Complete);
    assert_eq!(res[1].as_ref().unwrap().state, StepState::WaitingForRetry);
    assert_eq!(res[2].as_ref().unwrap_err().kind(), ErrorKind::StaleClaim);
    assert_eq!(
        h.step(&task, "c").await.state,
        StepState::InProgress,
        "the stale item wrote nothing"
    );
    h.check(&task).await;
}

pub async fn retryable_failure_backs_off_exponentially(h: H) {
    h.template(
        "flaky",
        &[("a", &[])],
        json!({"max_attempts": 4, "backoff": "exponential", "base_ms": 100, "max_ms": 250, "jitter": 0.0}),
    )
    .await;
    let task = h.create("flaky").await;
    let mut delays = Vec::new();
    for _ in 0..3 {
        let c = h.claim_step("a").await;
        let s = h.engine.fail(c.token, StepFailure::retryable("again")).await.unwrap();
        let d = (s.next_attempt_at.unwrap() - h.engine.now()).num_milliseconds();
        delays.push(d);
        h.advance_ms(d);
    }
    assert_eq!(delays, vec![100, 200, 250], "doubling, capped at max_ms");
    let c = h.claim_step("a").await;
    assert_eq!(c.attempt, 4);
    let s = h.engine.fail(c.token, StepFailure::retryable("last")).await.unwrap();
    assert_eq!(s.state, StepState::Error, "max_attempts counts the first attempt");
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    h.check(&task).await;
}

pub async fn retry_after_overrides_backoff_and_is_capped(h: H) {
    h.template(
        "after",
        &[("a", &[])],
        json!({"max_attempts": 5, "base_ms": 1000, "max_ms": 5000, "jitter": 0.0}),
    )
    .await;
    let task = h.create("after").await;
    let c = h.claim_step("a").await;
    let s = h
        .engine
        .fail(
            c.token,
            StepFailure::retryable("slow down").with_retry_after(Duration::from_millis(42)),
        )
        .await
        .unwrap();
    assert_eq!((s.next_attempt_at.unwrap() - h.engine.now()).num_milliseconds(), 42);
    h.advance_ms(42);
    let c = h.claim_step("a").await;
    let s = h
        .engine
        .fail(
            c.token,
            StepFailure::retryable("later").with_retry_after(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert_eq!((s.next_attempt_at.unwrap() - h.engine.now()).num_milliseconds(), 5000);
    h.check(&task).await;
}

pub async fn permanent_failure_is_never_retried(h: H) {
    h.template("perm", &[("a", &[])], json!({"max_attempts": 5})).await;
    let task = h.create("perm").await;
    let c = h.claim_step("a").await;
    let s = h
        .engine
        .fail(c.token, StepFailure::permanent("bad input").with_code("E42"))
        .await
        .unwrap();
    assert_eq!(s.state, StepState::Error);
    let e = s.error.unwrap();
    assert_eq!(
        (e.error_class.as_str(), e.code.as_deref(), e.retryable),
        ("PermanentError", Some("E42"), false)
    );
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    h.check(&task).await;
}

pub async fn non_retryable_step_runs_once(h: H) {
    h.template("once", &[("a", &[])], json!({"max_attempts": 5, "retryable": false}))
        .await;
    let task = h.create("once").await;
    let c = h.claim_step("a").await;
    assert_eq!(c.max_attempts, 1);
    let s = h
        .engine
        .fail(c.token, StepFailure::retryable("transient"))
        .await
        .unwrap();
    assert_eq!(s.state, StepState::Error);
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    h.check(&task).await;
}

pub async fn failure_details_are_recorded(h: H) {
    h.template("details", &[("a", &[])], json!({"max_attempts": 2, "backoff": "none"}))
        .await;
    let task = h.create("details").await;
    let c = h.claim_step("a").await;
    let mut f = StepFailure::retryable("boom").with_class("KeyError");
    f.backtrace = vec!["handler.rb:10".into(), "worker.rb:3".into()];
    h.engine.fail(c.token, f).await.unwrap();
    let e = h.step(&task, "a").await.error.unwrap();
    assert_eq!((e.error_class.as_str(), e.message.as_str()), ("KeyError", "boom"));
    assert_eq!(e.backtrace, vec!["handler.rb:10", "worker.rb:3"]);
    let (_, rows) = h.engine.transitions(task.id).await.unwrap();
    let row = rows.iter().find(|r| r.event == Some(StepEvent::FailRetryable)).unwrap();
    assert_eq!(row.metadata["error_class"], "KeyError");
    assert_eq!(row.attempt, 1);
}

pub async fn all_steps_complete_then_task_completes(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    for s in ["a", "b", "c"] {
        h.run_step(s).await;
        assert_eq!(h.task_state(&task).await, TaskState::InProgress);
    }
    h.run_step("d").await;
    let t = h.engine.task(task.id).await.unwrap();
    assert_eq!(t.state, TaskState::Complete);
    assert_eq!(t.finished_at, Some(h.engine.now()));
    h.check(&task).await;
}

pub async fn permanent_failure_lets_independent_branches_finish(h: H) {
    // a -> (b, c); b -> d; c -> e; (d, e) -> f. b fails: c and e still run, d and f stay pending.
    h.template(
        "branches",
        &[
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["a"]),
            ("d", &["b"]),
            ("e", &["c"]),
            ("f", &["d", "e"]),
        ],
        json!({"max_attempts": 1}),
    )
    .await;
    let task = h.create("branches").await;
    h.run_step("a").await;
    let b = h.claim_step("b").await;
    h.engine.fail(b.token, StepFailure::permanent("broken")).await.unwrap();
    assert_eq!(h.task_state(&task).await, TaskState::InProgress, "c can still run");
    h.run_step("c").await;
    assert_eq!(h.task_state(&task).await, TaskState::InProgress, "e can still run");
    h.run_step("e").await;
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    let st = h.step_states(&task).await;
    assert_eq!((st["d"], st["f"]), (StepState::Pending, StepState::Pending));
    let ex = h.engine.explain(task.id).await.unwrap();
    let d = ex.steps.iter().find(|s| s.name == "d").unwrap();
    assert_eq!(d.blocked_by_failure, vec!["b"]);
    assert!(d.reasons.iter().any(|r| r.contains("blocked by failed b")));
    h.check(&task).await;
}

pub async fn task_errors_only_when_nothing_can_run(h: H) {
    h.template(
        "pair",
        &[("a", &[]), ("b", &[])],
        json!({"max_attempts": 2, "backoff": "none"}),
    )
    .await;
    let task = h.create("pair").await;
    let a = h.claim_step("a").await;
    let b = h.claim_step("b").await;
    h.engine.fail(a.token, StepFailure::permanent("x")).await.unwrap();
    assert_eq!(h.task_state(&task).await, TaskState::InProgress, "b is running");
    h.engine.fail(b.token, StepFailure::retryable("y")).await.unwrap();
    assert_eq!(h.task_state(&task).await, TaskState::InProgress, "b will retry");
    let b = h.claim_step("b").await;
    h.engine.complete(b.token, json!(1)).await.unwrap();
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    h.check(&task).await;
}

pub async fn maintenance_reaps_and_announces_due_retries(h: H) {
    h.template(
        "pair",
        &[("a", &[]), ("b", &[])],
        json!({"max_attempts": 3, "base_ms": 1000, "jitter": 0.0}),
    )
    .await;
    let task = h.create("pair").await;
    h.claim_step("a").await;
    let b = h.claim_step("b").await;
    h.engine.fail(b.token, StepFailure::retryable("later")).await.unwrap();
    let first = h.engine.run_maintenance(None, 100).await.unwrap();
    assert!(first.ran);
    assert_eq!((first.reaped.retried, first.retries_due), (0, 0));
    h.advance_ms(1000);
    let second = h.engine.run_maintenance(first.at, 100).await.unwrap();
    assert_eq!(second.retries_due, 1, "b fell due since the first pass");
    h.advance_ms(29_001);
    let third = h.engine.run_maintenance(second.at, 100).await.unwrap();
    assert_eq!(
        (third.reaped.retried, third.retries_due),
        (1, 0),
        "a's lease expired; b was already announced"
    );
    h.check(&task).await;
}

pub async fn explain_gives_every_reason(h: H) {
    h.template(
        "reasons",
        &[("a", &[]), ("b", &["a"]), ("c", &[]), ("d", &[])],
        json!({"max_attempts": 2, "base_ms": 500, "jitter": 0.0}),
    )
    .await;
    let task = h.create("reasons").await;
    let c = h.claim_step("c").await;
    h.engine.fail(c.token, StepFailure::retryable("later")).await.unwrap();
    let d = h.claim_step("d").await;
    let ex = h.engine.explain(task.id).await.unwrap();
    let by = |n: &str| ex.steps.iter().find(|s| s.name == n).unwrap().clone();
    assert!(by("a").ready && by("a").reasons == vec!["ready"]);
    assert_eq!(by("b").blocked_by, vec!["a"]);
    assert_eq!(
        by("c").retry_at.map(|t| (t - h.engine.now()).num_milliseconds()),
        Some(500)
    );
    assert!(
        by("c").reasons.iter().any(|r| r.starts_with("retry due at")),
        "{:?}",
        by("c").reasons
    );
    assert_eq!(by("d").lease_expires_at, Some(d.lease_expires_at));
    assert!(
        by("d").reasons[0].starts_with("running on worker w1"),
        "{:?}",
        by("d").reasons
    );
    h.engine.cancel_task(task.id, None).await.unwrap();
    let other = h.create("reasons").await;
    h.engine.cancel_task(other.id, None).await.unwrap();
    let ex = h.engine.explain(task.id).await.unwrap();
    assert!(ex.steps.iter().all(|s| !s.ready && !s.task_runnable));
    assert!(ex
        .steps
        .iter()
        .all(|s| s.reasons.contains(&"step is cancelled".to_string())));
}

pub async fn templates_are_listed_in_name_and_version_order(h: H) {
    for (name, version) in [("b", "2.0.0"), ("a", "1.10.0"), ("b", "1.0.0"), ("a", "1.9.0")] {
        let text = format!("namespace: t\nname: {name}\nversion: {version}\nsteps: [{{name: s, handler: h.s}}]\n");
        h.engine.register_template(&text).await.unwrap();
    }
    let got: Vec<(String, String)> = h
        .engine
        .templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.version))
        .collect();
    let want = [("a", "1.9.0"), ("a", "1.10.0"), ("b", "1.0.0"), ("b", "2.0.0")];
    assert_eq!(got, want.map(|(n, v)| (n.to_string(), v.to_string())));
}
