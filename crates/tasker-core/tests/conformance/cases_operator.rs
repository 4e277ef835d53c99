//! Operator actions, the audit trail, events, analytics and the worker.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tasker_core::engine::{ExecutionStatus, RecommendedAction};
use tasker_core::events::EventFilter;
use tasker_core::testkit::{self, Pattern};
use tasker_core::worker::{handler_fn, StepHandler, Worker, WorkerConfig};
use tasker_core::*;

use super::harness::{check_invariants, H};

pub async fn cancel_cancels_every_unfinished_step(h: H) {
    h.template(
        "four",
        &[("a", &[]), ("b", &[]), ("c", &[]), ("d", &["a"])],
        json!({"max_attempts": 3, "backoff": "none"}),
    )
    .await;
    let task = h.create("four").await;
    h.run_step("a").await;
    let b = h.claim_step("b").await;
    let c = h.claim_step("c").await;
    h.engine.fail(c.token, StepFailure::retryable("later")).await.unwrap();
    let t = h.engine.cancel_task(task.id, Some("customer asked")).await.unwrap();
    assert_eq!(t.state, TaskState::Cancelled);
    let st = h.step_states(&task).await;
    assert_eq!(st["a"], StepState::Complete);
    assert!(["b", "c", "d"].iter().all(|n| st[*n] == StepState::Cancelled), "{st:?}");
    // The worker of b finishes after the cancel: rejected.
    let err = h.engine.complete(b.token, json!(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTransition, "{err}");
    let (trows, _) = h.engine.transitions(task.id).await.unwrap();
    assert_eq!(trows.last().unwrap().metadata["reason"], "customer asked");
    h.check(&task).await;
}

pub async fn cancelling_a_finished_task_is_invalid(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    let task = h.create("one").await;
    h.run_step("a").await;
    let err = h.engine.cancel_task(task.id, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTransition);
    let other = h.create("one").await;
    h.engine.cancel_task(other.id, None).await.unwrap();
    assert_eq!(
        h.engine.cancel_task(other.id, None).await.unwrap_err().kind(),
        ErrorKind::InvalidTransition
    );
    h.check(&task).await;
}

pub async fn retry_task_gives_failed_steps_a_fresh_budget(h: H) {
    h.template(
        "chain",
        &[("a", &[]), ("b", &["a"])],
        json!({"max_attempts": 2, "backoff": "none"}),
    )
    .await;
    let task = h.create("chain").await;
    for _ in 0..2 {
        let c = h.claim_step("a").await;
        h.engine.fail(c.token, StepFailure::retryable("down")).await.unwrap();
    }
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    let t = h.engine.retry_task(task.id).await.unwrap();
    assert_eq!(t.state, TaskState::InProgress);
    let s = h.step(&task, "a").await;
    assert_eq!((s.state, s.attempts, s.max_attempts), (StepState::Pending, 2, 4));
    let c = h.claim_step("a").await;
    assert_eq!(c.attempt, 3, "attempt numbers keep counting, so old tokens stay stale");
    h.engine
        .fail(c.token, StepFailure::retryable("still down"))
        .await
        .unwrap();
    h.run_step("a").await;
    h.run_step("b").await;
    assert_eq!(h.task_state(&task).await, TaskState::Complete);
    h.check(&task).await;
}

pub async fn retry_task_needs_an_errored_task(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    assert_eq!(
        h.engine.retry_task(task.id).await.unwrap_err().kind(),
        ErrorKind::InvalidTransition
    );
}

pub async fn resolving_a_failed_step_resumes_the_task(h: H) {
    h.template("chain", &[("a", &[]), ("b", &["a"])], json!({"max_attempts": 1}))
        .await;
    let task = h.create("chain").await;
    let a = h.claim_step("a").await;
    h.engine.fail(a.token, StepFailure::permanent("bad")).await.unwrap();
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    let s = h
        .engine
        .resolve_step_manually(a.step_id, json!({"fixed": "by hand"}))
        .await
        .unwrap();
    assert_eq!(s.state, StepState::ResolvedManually);
    assert_eq!(h.task_state(&task).await, TaskState::InProgress);
    let b = h.claim_step("b").await;
    assert_eq!(b.dependency_results["a"], json!({"fixed": "by hand"}));
    h.engine.complete(b.token, json!(1)).await.unwrap();
    assert_eq!(h.task_state(&task).await, TaskState::Complete);
    h.check(&task).await;
}

pub async fn resolving_the_last_failure_completes_the_task(h: H) {
    h.template("pair", &[("a", &[]), ("b", &[])], json!({"max_attempts": 1}))
        .await;
    let task = h.create("pair").await;
    let a = h.claim_step("a").await;
    h.engine.fail(a.token, StepFailure::permanent("bad")).await.unwrap();
    h.run_step("b").await;
    assert_eq!(h.task_state(&task).await, TaskState::Error);
    h.engine.resolve_step_manually(a.step_id, json!(null)).await.unwrap();
    assert_eq!(h.task_state(&task).await, TaskState::Complete);
    h.check(&task).await;
}

pub async fn resolving_a_completed_step_is_invalid(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    let a = h.run_step("a").await;
    let err = h.engine.resolve_step_manually(a.id, json!(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTransition);
    let b = h.claim_step("b").await;
    let err = h.engine.resolve_step_manually(b.step_id, json!(1)).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidTransition,
        "a running step cannot be resolved"
    );
    h.check(&task).await;
}

pub async fn resolving_every_step_completes_a_pending_task(h: H) {
    h.template("chain", &[("a", &[]), ("b", &["a"])], json!({})).await;
    let task = h.create("chain").await;
    for n in ["b", "a"] {
        let s = h.step(&task, n).await;
        h.engine.resolve_step_manually(s.id, json!(n)).await.unwrap();
    }
    assert_eq!(h.task_state(&task).await, TaskState::Complete);
    h.check(&task).await;
}

pub async fn resolve_task_manually_from_error(h: H) {
    h.template("one", &[("a", &[])], json!({"max_attempts": 1})).await;
    let task = h.create("one").await;
    assert_eq!(
        h.engine.resolve_task_manually(task.id, None).await.unwrap_err().kind(),
        ErrorKind::InvalidTransition
    );
    let a = h.claim_step("a").await;
    h.engine.fail(a.token, StepFailure::permanent("bad")).await.unwrap();
    let t = h
        .engine
        .resolve_task_manually(task.id, Some("handled offline"))
        .await
        .unwrap();
    assert_eq!(t.state, TaskState::ResolvedManually);
    h.check(&task).await;
}

pub async fn every_legal_transition_is_reachable_and_recorded(h: H) {
    let fast = json!({"max_attempts": 2, "backoff": "none"});
    h.template("chain", &[("a", &[]), ("b", &["a"])], fast.clone()).await;
    h.template("trio", &[("a", &[]), ("b", &[]), ("c", &[])], fast.clone())
        .await;
    let mut tasks = Vec::new();

    // 1: claim, fail_retryable, claim again from waiting_for_retry, complete; task starts and completes.
    let t = h.create("chain").await;
    let c = h.claim_step("a").await;
    h.engine.fail(c.token, StepFailure::retryable("x")).await.unwrap();
    h.run_step("a").await;
    h.run_step("b").await;
    tasks.push(t);

    // 2: lease_expired, worker_lost, then retry_task (error -> retry), resolve from error, resume.
    let t = h.create("chain").await;
    h.claim_step("a").await;
    h.advance_ms(30_001);
    h.engine.reap_expired_leases(10).await.unwrap();
    h.claim_step("a").await;
    h.advance_ms(30_001);
    h.engine.reap_expired_leases(10).await.unwrap();
    assert_eq!(h.task_state(&t).await, TaskState::Error);
    h.engine.retry_task(t.id).await.unwrap();
    let c = h.claim_step("a").await;
    h.engine.fail(c.token, StepFailure::permanent("x")).await.unwrap();
    let a = h.step(&t, "a").await;
    h.engine.resolve_step_manually(a.id, json!(1)).await.unwrap();
    h.run_step("b").await;
    tasks.push(t);

    // 3: cancel from pending, in_progress and waiting_for_retry; task cancelled from in_progress.
    let t = h.create("trio").await;
    let c = h.claim_step("b").await;
    h.engine.fail(c.token, StepFailure::retryable("x")).await.unwrap();
    h.claim_step("c").await;
    h.engine.cancel_task(t.id, None).await.unwrap();
    tasks.push(t);

    // 4: task cancelled while pending; 5: cancelled from error.
    let t = h.create("trio").await;
    h.engine.cancel_task(t.id, None).await.unwrap();
    tasks.push(t);
    let t = h.create("chain").await;
    let c = h.claim_step("a").await;
    h.engine.fail(c.token, StepFailure::permanent("x")).await.unwrap();
    h.engine.cancel_task(t.id, None).await.unwrap();
    tasks.push(t);

    // 6: every step resolved while pending: the task completes from pending.
    let t = h.create("chain").await;
    for n in ["a", "b"] {
        let s = h.step(&t, n).await;
        h.engine.resolve_step_manually(s.id, json!(n)).await.unwrap();
    }
    tasks.push(t);

    // 7: error -> complete by resolving the last failure; 8: error -> resolved_manually.
    let t = h.create("trio").await;
    let c = h.claim_step("a").await;
    h.engine.fail(c.token, StepFailure::permanent("x")).await.unwrap();
    h.run_step("b").await;
    h.run_step("c").await;
    h.engine.resolve_step_manually(c.step_id, json!(1)).await.unwrap();
    tasks.push(t);
    let t = h.create("trio").await;
    let c = h.claim_step("a").await;
    h.engine.fail(c.token, StepFailure::permanent("x")).await.unwrap();
    h.run_step("b").await;
    h.run_step("c").await;
    h.engine.resolve_task_manually(t.id, None).await.unwrap();
    tasks.push(t);

    let mut step_rows = BTreeSet::new();
    let mut task_rows = BTreeSet::new();
    for t in &tasks {
        h.check(t).await;
        let (tr, sr) = h.engine.transitions(t.id).await.unwrap();
        task_rows.extend(tr.iter().filter_map(|r| Some((r.from_state?, r.event?, r.to_state))));
        step_rows.extend(sr.iter().filter_map(|r| Some((r.from_state?, r.event?, r.to_state))));
    }
    let want_steps: BTreeSet<_> = tasker_core::state::STEP_TRANSITIONS.iter().copied().collect();
    let want_tasks: BTreeSet<_> = tasker_core::state::TASK_TRANSITIONS.iter().copied().collect();
    assert_eq!(step_rows, want_steps, "every step row of the table, and nothing else");
    assert_eq!(task_rows, want_tasks, "every task row of the table, and nothing else");
}

pub async fn illegal_operations_are_invalid_transitions(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    let done = h.create("one").await;
    h.run_step("a").await;
    let a = h.step(&done, "a").await;
    let cases = vec![
        h.engine.cancel_task(done.id, None).await.unwrap_err(),
        h.engine.retry_task(done.id).await.unwrap_err(),
        h.engine.resolve_task_manually(done.id, None).await.unwrap_err(),
        h.engine.resolve_step_manually(a.id, json!(1)).await.unwrap_err(),
    ];
    for e in cases {
        assert_eq!(e.kind(), ErrorKind::InvalidTransition, "{e}");
    }
    h.check(&done).await;
}

pub async fn every_transition_publishes_an_event(h: H) {
    h.diamond().await;
    let mut sub = h.engine.subscribe(EventFilter::default());
    let task = h.create("diamond").await;
    let c = h.claim_step("a").await;
    h.engine.fail(c.token, StepFailure::retryable("x")).await.unwrap();
    h.advance_ms(1000);
    for n in ["a", "b", "c", "d"] {
        h.run_step(n).await;
    }
    let events = sub.drain();
    let (tr, sr) = h.engine.transitions(task.id).await.unwrap();
    assert_eq!(events.len(), tr.len() + sr.len());
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    for want in [
        "task.created",
        "step.created",
        "task.started",
        "step.claimed",
        "step.retry_scheduled",
        "step.completed",
        "task.completed",
    ] {
        assert!(names.contains(&want), "missing {want}: {names:?}");
    }
    let done = events.iter().find(|e| e.name == "step.completed").unwrap();
    assert_eq!(
        (
            done.step_name.as_deref(),
            done.from_state.as_deref(),
            done.to_state.as_str()
        ),
        (Some("a"), Some("in_progress"), "complete")
    );
    assert_eq!(done.attempt, Some(2));
    assert_eq!(sub.dropped(), 0);
}

pub async fn subscriptions_filter_and_count_drops(h: H) {
    h.diamond().await;
    let mut only_tasks = h.engine.subscribe(EventFilter {
        names: vec!["task".into()],
        ..Default::default()
    });
    let t1 = h.create("diamond").await;
    let _t2 = h.create("diamond").await;
    let mut one = h.engine.subscribe(EventFilter {
        task_id: Some(t1.id),
        ..Default::default()
    });
    h.run_step("a").await;
    h.run_step("a").await;
    let evs = only_tasks.drain();
    assert!(evs.iter().all(|e| e.name.starts_with("task.")));
    assert_eq!(evs.iter().filter(|e| e.name == "task.created").count(), 2);
    let evs = one.drain();
    assert!(!evs.is_empty() && evs.iter().all(|e| e.task_id == t1.id));
    assert!(one.next(Duration::from_millis(1)).await.is_none());

    // A tiny buffer overflows: the oldest events are lost and counted.
    let clock = Arc::new(ManualClock::fixed());
    let small = Engine::with_store(
        Arc::new(tasker_core::store::memory::MemoryStore::new()),
        tasker_core::EngineOptions {
            clock,
            event_capacity: 4,
            ..Default::default()
        },
    );
    let mut sub = small.subscribe(EventFilter::default());
    testkit::create_tasks(&small, &Pattern::Linear(5).template(), 2, json!({}))
        .await
        .unwrap();
    let got = sub.drain();
    assert_eq!(got.len(), 4);
    assert_eq!(sub.dropped(), 12 - 4);
}

pub async fn execution_context_and_levels(h: H) {
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
        json!({"max_attempts": 2, "backoff": "exponential", "base_ms": 1000, "jitter": 0.0}),
    )
    .await;
    let task = h.create("branches").await;
    let ec = h.engine.execution_context(task.id).await.unwrap();
    assert_eq!((ec.total_steps, ec.ready_steps, ec.pending_steps), (6, 1, 6));
    assert_eq!(
        (ec.execution_status, ec.recommended_action),
        (ExecutionStatus::HasReadySteps, RecommendedAction::ExecuteReadySteps)
    );
    let a = h.claim_step("a").await;
    let ec = h.engine.execution_context(task.id).await.unwrap();
    assert_eq!(
        (ec.execution_status, ec.in_progress_steps),
        (ExecutionStatus::Processing, 1)
    );
    h.engine.fail(a.token, StepFailure::retryable("x")).await.unwrap();
    let ec = h.engine.execution_context(task.id).await.unwrap();
    assert_eq!(
        (ec.execution_status, ec.recommended_action),
        (ExecutionStatus::WaitingForRetry, RecommendedAction::WaitForRetry)
    );
    h.advance_ms(1000);
    h.run_step("a").await;
    let b = h.claim_step("b").await;
    h.engine.fail(b.token, StepFailure::permanent("x")).await.unwrap();
    h.run_step("c").await;
    h.run_step("e").await;
    let ec = h.engine.execution_context(task.id).await.unwrap();
    assert_eq!(
        (ec.execution_status, ec.recommended_action),
        (ExecutionStatus::BlockedByFailures, RecommendedAction::HandleFailures)
    );
    assert_eq!((ec.failed_steps, ec.blocked_steps, ec.completed_steps), (1, 2, 3));
    assert_eq!(ec.task_state, TaskState::Error);
    let levels: Vec<(String, u32)> = h
        .engine
        .dependency_levels(task.id)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.level))
        .collect();
    let want: Vec<(String, u32)> = [("a", 0), ("b", 1), ("c", 1), ("d", 2), ("e", 2), ("f", 3)]
        .iter()
        .map(|(n, l)| (n.to_string(), *l))
        .collect();
    assert_eq!(levels, want);
}

pub async fn health_counts_are_exact(h: H) {
    h.template("pair", &[("a", &[]), ("b", &[])], json!({"max_attempts": 1}))
        .await;
    h.template("retry", &[("r", &[])], json!({"max_attempts": 3, "backoff": "none"}))
        .await;
    let t1 = h.create("pair").await;
    h.create("pair").await;
    let t3 = h.create("retry").await;
    h.run_step("a").await;
    let b = h.claim_step("b").await;
    h.engine.fail(b.token, StepFailure::permanent("x")).await.unwrap();
    let r = h.claim_step("r").await;
    h.engine.fail(r.token, StepFailure::retryable("x")).await.unwrap();
    let hc = h.engine.health_counts().await.unwrap();
    assert_eq!(hc.total_tasks, 3);
    assert_eq!(hc.total_steps, 5);
    assert_eq!(hc.tasks["error"], 1, "t1");
    assert_eq!(hc.tasks["pending"], 1);
    assert_eq!(hc.tasks["in_progress"], 1, "t3");
    assert_eq!(hc.tasks["complete"], 0);
    assert_eq!(
        (
            hc.steps["complete"],
            hc.steps["error"],
            hc.steps["pending"],
            hc.steps["waiting_for_retry"]
        ),
        (1, 1, 2, 1)
    );
    assert_eq!((hc.retrying, hc.exhausted), (1, 1));
    h.check(&t1).await;
    h.check(&t3).await;
}

pub async fn analytics_metrics_are_exact(h: H) {
    h.template("one", &[("a", &[])], json!({"max_attempts": 2, "backoff": "none"}))
        .await;
    let since = h.engine.now();
    // Four tasks whose single step takes 100, 200, 300 and 400 ms; the last fails once first (a retry queues
    // behind steps that were ready before it fell due, so only the last one's retry is claimed next).
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(h.create("one").await);
    }
    h.advance_ms(1000);
    for (i, ms) in [100, 200, 300, 400].into_iter().enumerate() {
        let c = h.claim(&["h.a"], 1).await.remove(0);
        assert_eq!(c.task_id, tasks[i].id);
        if i == 3 {
            h.advance_ms(50);
            h.engine.fail(c.token, StepFailure::retryable("once")).await.unwrap();
            let c = h.claim(&["h.a"], 1).await.remove(0);
            h.advance_ms(ms);
            h.engine.complete(c.token, json!(i)).await.unwrap();
        } else {
            h.advance_ms(ms);
            h.engine.complete(c.token, json!(i)).await.unwrap();
        }
    }
    // One more task fails permanently after 1,000 ms.
    h.template("bad", &[("x", &[])], json!({"max_attempts": 1})).await;
    let bad = h.create("bad").await;
    let c = h.claim_step("x").await;
    h.advance_ms(1000);
    h.engine.fail(c.token, StepFailure::permanent("no")).await.unwrap();
    h.advance_ms(950);
    // Now: 1000 + 100 + 200 + 300 + 50 + 400 + 1000 + 950 = 4000 ms after `since`.
    let m = h.engine.analytics_metrics(since).await.unwrap();
    assert_eq!(m.window_seconds, 4.0);
    assert_eq!((m.tasks_completed, m.tasks_failed), (4, 1));
    assert_eq!((m.task_completion_rate, m.task_error_rate), (0.8, 0.2));
    assert_eq!(m.task_throughput_per_second, 1.0);
    assert_eq!((m.steps_completed, m.steps_failed, m.step_retries), (4, 1, 1));
    assert_eq!(m.step_duration.count, 4);
    assert_eq!(
        (m.step_duration.p50_ms, m.step_duration.p95_ms, m.step_duration.max_ms),
        (200, 400, 400)
    );
    assert_eq!(m.step_duration.mean_ms, 250.0);
    // Tasks were created at `since`: durations 1100, 1300, 1600, 2050.
    assert_eq!((m.task_duration.p50_ms, m.task_duration.p95_ms), (1300, 2050));
    assert_eq!(m.task_duration.mean_ms, 1512.5);
    let later = h.engine.analytics_metrics(h.engine.now()).await.unwrap();
    assert_eq!(
        (later.tasks_completed, later.steps_completed, later.step_retries),
        (0, 0, 0)
    );

    let slow = h.engine.slowest_steps(&AnalyticsFilter::default(), 2).await.unwrap();
    assert_eq!(slow.iter().map(|s| s.duration_ms).collect::<Vec<_>>(), vec![1000, 400]);
    assert_eq!(slow[0].task_id, bad.id);
    let f = AnalyticsFilter {
        name: Some("one".into()),
        ..Default::default()
    };
    let slow = h.engine.slowest_steps(&f, 10).await.unwrap();
    assert_eq!(
        slow.iter().map(|s| s.duration_ms).collect::<Vec<_>>(),
        vec![400, 300, 200, 100]
    );
    assert_eq!((slow[0].attempts, slow[1].attempts), (2, 1));
    let slow = h.engine.slowest_tasks(&f, 1).await.unwrap();
    assert_eq!((slow[0].task_id, slow[0].duration_ms), (tasks[3].id, 2050));
    let none = h
        .engine
        .slowest_tasks(
            &AnalyticsFilter {
                version: Some("9.9.9".into()),
                ..Default::default()
            },
            5,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn closed_engine_refuses_every_call(h: H) {
    h.diamond().await;
    h.engine.close().await;
    h.engine.close().await;
    assert_eq!(h.engine.templates().await.unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(
        h.engine.tasks(&TaskFilter::default()).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert_eq!(h.engine.ping().await.unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(h.engine.health_counts().await.unwrap_err().kind(), ErrorKind::Closed);
}

async fn run_worker(engine: &Engine, handlers: Vec<(&str, Arc<dyn StepHandler>)>) -> tasker_core::worker::WorkerStats {
    let mut w = Worker::new(
        engine.clone(),
        WorkerConfig {
            worker_id: "rust".into(),
            concurrency: 4,
            batch_size: 8,
            ..Default::default()
        },
    );
    for (k, hd) in handlers {
        w.handle_arc(k, hd);
    }
    w.run_until_idle().await.unwrap()
}

pub async fn worker_runs_every_pattern_to_completion(mut h: H) {
    let engine = h.wall_clock_engine().await;
    let patterns = [
        Pattern::Linear(5),
        Pattern::Diamond,
        Pattern::Parallel(6),
        Pattern::Tree { depth: 2, fanout: 3 },
        Pattern::Mixed,
    ];
    let mut tasks = Vec::new();
    for p in patterns {
        tasks.extend(
            testkit::create_tasks(&engine, &p.template(), 3, json!({}))
                .await
                .unwrap(),
        );
    }
    let stats = testkit::run_noop_until_idle(&engine, &[testkit::NOOP_HANDLER])
        .await
        .unwrap();
    assert_eq!(stats.succeeded, 3 * (5 + 4 + 8 + 13 + 7));
    for t in &tasks {
        assert_eq!(engine.task(t.id).await.unwrap().state, TaskState::Complete);
        check_invariants(&engine, t.id).await;
    }
}

pub async fn worker_retries_failures_and_records_panics(mut h: H) {
    let engine = h.wall_clock_engine().await;
    let t = Pattern::Diamond.template_with("w", |n| format!("w.{n}"), json!({"max_attempts": 3, "backoff": "none"}));
    let task = testkit::create_tasks(&engine, &t, 1, json!({}))
        .await
        .unwrap()
        .remove(0);
    let calls = Arc::new(AtomicU32::new(0));
    let c2 = calls.clone();
    let flaky: Arc<dyn StepHandler> = Arc::new(handler_fn(move |ctx: StepContext| {
        let calls = c2.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            if ctx.attempt == 1 {
                Err(StepFailure::retryable("first try fails"))
            } else {
                Ok(json!({"attempt": ctx.attempt}))
            }
        }
    }));
    let panicky: Arc<dyn StepHandler> = Arc::new(handler_fn(|ctx: StepContext| async move {
        if ctx.attempt == 1 {
            panic!("handler bug");
        }
        Ok(Value::Null)
    }));
    let ok: Arc<dyn StepHandler> = Arc::new(handler_fn(|ctx: StepContext| async move {
        Ok(json!(ctx.dependency_results.len()))
    }));
    let stats = run_worker(
        &engine,
        vec![
            ("w.start", flaky),
            ("w.left", panicky),
            ("w.right", ok.clone()),
            ("w.end", ok),
        ],
    )
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!((stats.succeeded, stats.failed, stats.rejected), (4, 2, 0));
    assert_eq!(engine.task(task.id).await.unwrap().state, TaskState::Complete);
    let (_, rows) = engine.transitions(task.id).await.unwrap();
    let panic_row = rows
        .iter()
        .find(|r| r.metadata["error_class"] == "Panic")
        .expect("the panic is on the record");
    assert!(panic_row.metadata["message"].as_str().unwrap().contains("panicked"));
    let end = engine
        .steps(task.id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "end")
        .unwrap();
    assert_eq!(end.result, Some(json!(2)));
    check_invariants(&engine, task.id).await;
}

pub async fn worker_shuts_down_gracefully(mut h: H) {
    let engine = h.wall_clock_engine().await;
    let t = Pattern::Parallel(4).template();
    let task = testkit::create_tasks(&engine, &t, 1, json!({}))
        .await
        .unwrap()
        .remove(0);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_tx = std::sync::Mutex::new(Some(stop_tx));
    let started = Arc::new(tokio::sync::Notify::new());
    let s2 = started.clone();
    // Set once the worker has taken the stop. The branches finish only then: a claim already in flight when
    // a stop comes may still hand out what it finds (its steps are run, never dropped), so the join must not
    // become ready before the worker has seen the stop.
    let (seen_tx, seen_rx) = tokio::sync::watch::channel(false);
    // The handler of the branches asks the worker to stop while they are running.
    let h: Arc<dyn StepHandler> = Arc::new(handler_fn(move |ctx: StepContext| {
        let branch = ctx.step_name.starts_with("branch");
        let tx = if branch { stop_tx.lock().unwrap().take() } else { None };
        let s2 = s2.clone();
        let mut seen = seen_rx.clone();
        async move {
            if let Some(tx) = tx {
                let _ = tx.send(());
                s2.notify_one();
            }
            if branch {
                let _ = seen.wait_for(|s| *s).await;
            }
            Ok(json!(ctx.step_name))
        }
    }));
    // As many slots as branches: a claim is issued only while a slot is free, so while some branch is still
    // unclaimed no claim can find the join ready, and once all four are claimed the worker claims nothing
    // more until one finishes, which is after it has seen the stop.
    let mut w = Worker::new(
        engine.clone(),
        WorkerConfig {
            concurrency: 4,
            ..Default::default()
        },
    );
    w.handle_arc(testkit::NOOP_HANDLER, h);
    let stats = w
        .run(async move {
            let _ = stop_rx.await;
            let _ = seen_tx.send(true);
        })
        .await
        .unwrap();
    started.notified().await;
    // Every claimed step was reported before run returned; the join was never started.
    assert_eq!(stats.claimed, stats.succeeded);
    let steps = engine.steps(task.id).await.unwrap();
    assert!(steps.iter().all(|s| s.state != StepState::InProgress));
    assert_eq!(
        steps.iter().find(|s| s.name == "join").unwrap().state,
        StepState::Pending
    );
    check_invariants(&engine, task.id).await;
}
