//! Tasks that start later, and priorities.

use chrono::TimeDelta;
use serde_json::json;
use tasker_core::engine::CreateTask;
use tasker_core::*;

use super::harness::H;

async fn create_at(h: &H, name: &str, run_in_ms: i64) -> Task {
    let req = CreateTask {
        run_at: Some(h.engine.now() + TimeDelta::milliseconds(run_in_ms)),
        ..CreateTask::new("t", name, json!({"n": 1}))
    };
    h.engine.create_task(req).await.expect("create task")
}

async fn create_with_priority(h: &H, name: &str, priority: Option<i32>) -> Task {
    let req = CreateTask {
        priority,
        ..CreateTask::new("t", name, json!({"n": 1}))
    };
    h.engine.create_task(req).await.expect("create task")
}

pub async fn delayed_task_waits_for_its_start_time(h: H) {
    h.template("chain", &[("a", &[]), ("b", &["a"])], json!({})).await;
    let task = create_at(&h, "chain", 10_000).await;
    let start = task.run_at.expect("run_at is kept");
    assert_eq!(task.held_until, Some(start));
    assert_eq!(task.state, TaskState::Pending);
    h.check(&task).await;

    assert!(
        h.claim(&["h.a", "h.b"], 10).await.is_empty(),
        "nothing runs before the start time"
    );
    let ex = h.engine.explain(task.id).await.unwrap();
    assert_eq!(ex.scheduled_for, Some(start));
    assert!(!ex.steps[0].ready);
    assert_eq!(ex.steps[0].scheduled_for, Some(start));
    let reason = format!("scheduled for {}", start.to_rfc3339());
    assert!(ex.steps[0].reasons.contains(&reason), "{:?}", ex.steps[0].reasons);
    assert_eq!(ex.steps[1].scheduled_for, None, "only roots wait for the start time");
    assert_eq!(
        h.engine.next_retry_at(&["h.a".into()]).await.unwrap(),
        Some(start),
        "idle workers wake at the start time"
    );

    h.advance_ms(9_999);
    assert!(h.claim(&["h.a"], 10).await.is_empty(), "one millisecond early");
    h.advance_ms(1);
    let ex = h.engine.explain(task.id).await.unwrap();
    assert!(ex.steps[0].ready, "{:?}", ex.steps[0].reasons);
    assert_eq!(ex.scheduled_for, None);
    h.run_step("a").await;
    let t = h.engine.task(task.id).await.unwrap();
    assert_eq!((t.held_until, t.run_at), (None, Some(start)));
    h.run_step("b").await;
    assert_eq!(h.task_state(&task).await, TaskState::Complete);
    h.check(&task).await;
}

pub async fn a_start_time_already_past_starts_at_once(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    let task = create_at(&h, "one", -5_000).await;
    assert_eq!(task.held_until, None);
    assert!(task.run_at.is_some());
    assert_eq!(h.claim(&["h.a"], 1).await.len(), 1);
    h.check(&task).await;
}

pub async fn run_task_now_starts_a_held_task(h: H) {
    h.template("chain", &[("a", &[]), ("b", &["a"])], json!({})).await;
    let task = create_at(&h, "chain", 3_600_000).await;
    let started = h.engine.run_task_now(task.id).await.unwrap();
    assert_eq!(started.held_until, None);
    assert_eq!(started.run_at, Some(h.engine.now()));
    assert_eq!(started.state, TaskState::Pending);
    h.check(&task).await;
    assert_eq!(
        h.claim(&["h.a", "h.b"], 10).await.len(),
        1,
        "the root runs now, the child still waits"
    );
    // Once started it is left as it is; a task that is not pending cannot be started.
    let again = h.engine.run_task_now(task.id).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::InvalidTransition, "{again}");
    let plain = h.create("chain").await;
    assert_eq!(
        h.engine.run_task_now(plain.id).await.unwrap(),
        h.engine.task(plain.id).await.unwrap()
    );
    let missing = h.engine.run_task_now(uuid::Uuid::now_v7()).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    // The trail has no row for it: starting early is not a state change.
    let (task_rows, _) = h.engine.transitions(task.id).await.unwrap();
    assert_eq!(task_rows.len(), 2, "created, then started by the claim");
}

pub async fn a_cancelled_held_task_never_starts(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    let task = create_at(&h, "one", 1_000).await;
    let cancelled = h.engine.cancel_task(task.id, Some("not needed")).await.unwrap();
    assert_eq!(cancelled.held_until, None);
    h.advance_ms(2_000);
    assert!(h.claim(&["h.a"], 10).await.is_empty());
    assert_eq!(h.engine.next_retry_at(&["h.a".into()]).await.unwrap(), None);
    h.check(&task).await;
}

pub async fn higher_priorities_are_claimed_first_and_equal_ones_stay_fifo(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    // A flood of low-priority work, then a little high-priority work.
    let mut low = Vec::new();
    for _ in 0..20 {
        low.push(create_with_priority(&h, "one", Some(-1)).await.id);
    }
    let plain = create_with_priority(&h, "one", None).await;
    assert_eq!(plain.priority, 0);
    let high1 = create_with_priority(&h, "one", Some(10)).await;
    let high2 = create_with_priority(&h, "one", Some(10)).await;
    let got: Vec<_> = h.claim(&["h.a"], 3).await.into_iter().map(|c| c.task_id).collect();
    assert_eq!(got, vec![high1.id, high2.id, plain.id]);
    let rest: Vec<_> = h.claim(&["h.a"], 100).await.into_iter().map(|c| c.task_id).collect();
    assert_eq!(rest, low, "equal priorities in the order they became ready");
    let ex = h.engine.explain(high1.id).await.unwrap();
    assert_eq!(ex.steps[0].priority, 10);
}

pub async fn template_and_step_priorities_apply(h: H) {
    let doc = json!({
        "namespace": "t", "name": "prio", "version": "1.0.0", "priority": 5,
        "steps": [
            {"name": "a", "handler": "h.x"},
            {"name": "b", "handler": "h.x", "priority": -3},
            {"name": "c", "handler": "h.x", "priority": 50},
        ],
    });
    let rec = h.engine.register_template_value(&doc).await.unwrap().template;
    assert_eq!(rec.template.priority, Some(5));
    let task = h.create("prio").await;
    assert_eq!(task.priority, 5, "the template's default");
    let overridden = create_with_priority(&h, "prio", Some(7)).await;
    assert_eq!(overridden.priority, 7);
    let steps = h.engine.steps(task.id).await.unwrap();
    assert_eq!(steps.iter().map(|s| s.priority).collect::<Vec<_>>(), vec![5, -3, 50]);
    let steps = h.engine.steps(overridden.id).await.unwrap();
    assert_eq!(steps.iter().map(|s| s.priority).collect::<Vec<_>>(), vec![7, -3, 50]);
    let order: Vec<_> = h
        .claim(&["h.x"], 10)
        .await
        .into_iter()
        .map(|c| (c.task_id, c.step_name))
        .collect();
    assert_eq!(
        order,
        vec![
            (task.id, "c".to_string()),
            (overridden.id, "c".to_string()),
            (overridden.id, "a".to_string()),
            (task.id, "a".to_string()),
            (task.id, "b".to_string()),
            (overridden.id, "b".to_string()),
        ]
    );
}

pub async fn priorities_out_of_range_are_rejected_and_write_nothing(h: H) {
    h.template("one", &[("a", &[])], json!({})).await;
    for p in [1001, -1001, i32::MAX] {
        let err = h
            .engine
            .create_task(CreateTask {
                priority: Some(p),
                ..CreateTask::new("t", "one", json!({}))
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
        assert!(err.to_string().contains("priority"), "{err}");
    }
    assert!(h.engine.tasks(&TaskFilter::default()).await.unwrap().is_empty());
    let doc = json!({
        "namespace": "t", "name": "bad", "version": "1.0.0", "priority": "high",
        "steps": [{"name": "a", "handler": "h.a", "priority": 2000}],
    });
    let err = h.engine.register_template_value(&doc).await.unwrap_err();
    let Error::Validation { errors, .. } = &err else {
        panic!("{err}")
    };
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["priority", "steps[0].priority"], "{err}");
    assert!(h.engine.templates().await.unwrap().iter().all(|t| t.name != "bad"));
}

pub async fn a_retry_queues_by_the_time_it_falls_due(h: H) {
    h.template(
        "one",
        &[("a", &[])],
        json!({"max_attempts": 3, "backoff": "linear", "base_ms": 1000, "jitter": 0.0}),
    )
    .await;
    let first = h.create("one").await;
    let c = h.claim_step("a").await;
    h.engine.fail(c.token, StepFailure::retryable("flaky")).await.unwrap();
    // Due at +1 s; a step that became ready at +0.5 s has waited longer by +2 s, so it goes first.
    h.advance_ms(500);
    let second = h.create("one").await;
    h.advance_ms(1_500);
    let got: Vec<_> = h.claim(&["h.a"], 2).await.into_iter().map(|c| c.task_id).collect();
    assert_eq!(got, vec![second.id, first.id]);
    h.check(&first).await;
}
