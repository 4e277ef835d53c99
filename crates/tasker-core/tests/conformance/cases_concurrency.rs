//! Keyed concurrency limits: at most `limit` steps with one key run at once, on every store.

use serde_json::{json, Value};
use tasker_core::engine::{ClaimRequest, CreateTask};
use tasker_core::model::TaskFilter;
use tasker_core::schedule::RegisterSchedule;
use tasker_core::*;
use uuid::Uuid;

use super::harness::{H, LEASE};

fn retry() -> Value {
    json!({"max_attempts": 3, "backoff": "exponential", "base_ms": 1000, "max_ms": 10000, "jitter": 0.0})
}

/// A template `name` with one step `charge` (handler `h.charge`) limited to `limit` runs at once per
/// `/customer/id`, under the limit name `shared` if given.
fn keyed_doc(name: &str, limit: u32, shared: Option<&str>) -> Value {
    let mut concurrency = json!({"key": "/customer/id", "limit": limit});
    if let Some(n) = shared {
        concurrency["name"] = json!(n);
    }
    json!({
        "namespace": "t", "name": name, "version": "1.0.0",
        "defaults": {"retry": retry(), "timeout_seconds": 60},
        "steps": [{"name": "charge", "handler": "h.charge", "concurrency": concurrency}],
    })
}

async fn keyed(h: &H, name: &str, limit: u32, shared: Option<&str>) {
    h.engine
        .register_template_value(&keyed_doc(name, limit, shared))
        .await
        .expect("register");
}

async fn create_for(h: &H, name: &str, customer: Value) -> Task {
    h.engine
        .create_task(CreateTask::new("t", name, json!({"customer": {"id": customer}})))
        .await
        .expect("create task")
}

/// The tasks of the steps one claim of `h.charge` (and `h.plain`) takes, in claim order.
async fn claim_tasks(h: &H, limit: u32) -> Vec<Uuid> {
    h.claim(&["h.charge", "h.plain"], limit)
        .await
        .into_iter()
        .map(|c| c.task_id)
        .collect()
}

async fn all_tasks(h: &H) -> Vec<Task> {
    h.engine
        .tasks(&TaskFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap()
}

pub async fn a_key_at_its_limit_runs_one_step_at_a_time(h: H) {
    keyed(&h, "pay", 1, None).await;
    let first = create_for(&h, "pay", json!("c1")).await;
    let second = create_for(&h, "pay", json!("c1")).await;
    let steps = h.engine.steps(first.id).await.unwrap();
    assert_eq!(steps[0].concurrency_key.as_deref(), Some("t/pay/charge:c1"));
    assert_eq!(steps[0].concurrency_limit, Some(1));

    let got = h.claim(&["h.charge"], 10).await;
    assert_eq!(
        got.iter().map(|c| c.task_id).collect::<Vec<_>>(),
        vec![first.id],
        "one of the key at a time, the oldest first"
    );
    assert!(claim_tasks(&h, 10).await.is_empty(), "the key is at its limit");

    // Completing the running step frees its slot in the same transaction: a claim in that very
    // transaction takes the other step.
    let req = ClaimRequest {
        worker_id: "w1".into(),
        handler_keys: vec!["h.charge".into()],
        limit: 10,
        lease: LEASE,
    };
    let (results, next) = h
        .engine
        .finish_and_claim(vec![(got[0].token, Outcome::Success(json!({"ok": 1})))], &req)
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(next.iter().map(|c| c.task_id).collect::<Vec<_>>(), vec![second.id]);
    assert!(claim_tasks(&h, 10).await.is_empty());
    h.engine.complete(next[0].token, json!({"ok": 2})).await.unwrap();
    assert_eq!(h.task_state(&first).await, TaskState::Complete);
    assert_eq!(h.task_state(&second).await, TaskState::Complete);
    h.check(&first).await;
    h.check(&second).await;
}

pub async fn explain_says_a_step_waits_for_a_concurrency_slot(h: H) {
    keyed(&h, "pay", 1, None).await;
    let running = create_for(&h, "pay", json!(42)).await;
    let waiting = create_for(&h, "pay", json!(42)).await;
    let ex = h.engine.explain(waiting.id).await.unwrap();
    assert!(ex.steps[0].ready, "{:?}", ex.steps[0].reasons);
    assert_eq!(ex.steps[0].concurrency_key.as_deref(), Some("t/pay/charge:42"));
    assert_eq!(
        (ex.steps[0].concurrency_limit, ex.steps[0].concurrency_running),
        (Some(1), Some(0))
    );

    let c = h.claim_step("charge").await;
    assert_eq!(c.task_id, running.id);
    let ex = h.engine.explain(waiting.id).await.unwrap();
    let s = &ex.steps[0];
    assert!(!s.ready);
    assert_eq!(s.concurrency_running, Some(1));
    assert!(
        s.reasons
            .contains(&"waits for a concurrency slot: key t/pay/charge:42 has 1 of 1 running".to_string()),
        "{:?}",
        s.reasons
    );
    let ctx = h.engine.execution_context(waiting.id).await.unwrap();
    assert_eq!(ctx.ready_steps, 0, "a step waiting for a slot is not ready");
    let ex = h.engine.explain(running.id).await.unwrap();
    assert_eq!(ex.steps[0].concurrency_running, Some(1));
    assert!(
        !ex.steps[0]
            .reasons
            .iter()
            .any(|r| r.starts_with("waits for a concurrency slot")),
        "{:?}",
        ex.steps[0].reasons
    );

    // A step without a limit has no concurrency fields.
    h.template("plain", &[("plain", &[])], json!({})).await;
    let plain = h.create("plain").await;
    let ex = h.engine.explain(plain.id).await.unwrap();
    assert_eq!(
        (
            ex.steps[0].concurrency_key.clone(),
            ex.steps[0].concurrency_limit,
            ex.steps[0].concurrency_running
        ),
        (None, None, None)
    );

    h.engine.complete(c.token, json!(1)).await.unwrap();
    let ex = h.engine.explain(waiting.id).await.unwrap();
    assert!(ex.steps[0].ready, "{:?}", ex.steps[0].reasons);
    assert_eq!(ex.steps[0].concurrency_running, Some(0));
}

pub async fn steps_of_different_keys_run_side_by_side(h: H) {
    keyed(&h, "pay", 1, None).await;
    let a1 = create_for(&h, "pay", json!("a")).await;
    let a2 = create_for(&h, "pay", json!("a")).await;
    let b1 = create_for(&h, "pay", json!("b")).await;
    // Numbers and booleans are keys by their JSON text, and differ from strings only by it.
    let n1 = create_for(&h, "pay", json!(7)).await;
    let t1 = create_for(&h, "pay", json!(true)).await;
    let mut got = claim_tasks(&h, 10).await;
    got.sort();
    let mut want = vec![a1.id, b1.id, n1.id, t1.id];
    want.sort();
    assert_eq!(got, want, "one step of each key");
    assert!(claim_tasks(&h, 10).await.is_empty());
    let _ = a2;
}

pub async fn a_limit_above_one_lets_that_many_run(h: H) {
    keyed(&h, "pay", 2, None).await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        tasks.push(create_for(&h, "pay", json!("c")).await.id);
    }
    // In one claim: two, the oldest.
    let first = h.claim(&["h.charge"], 10).await;
    assert_eq!(first.iter().map(|c| c.task_id).collect::<Vec<_>>(), tasks[..2].to_vec());
    assert!(claim_tasks(&h, 10).await.is_empty(), "two of two run");
    h.engine.complete(first[0].token, json!(1)).await.unwrap();
    // One slot is free: a claim of many takes one, and another claim none.
    let next = h.claim(&["h.charge"], 10).await;
    assert_eq!(next.iter().map(|c| c.task_id).collect::<Vec<_>>(), vec![tasks[2]]);
    assert!(claim_tasks(&h, 1).await.is_empty());
    // Claims of one at a time count each other.
    h.engine.complete(first[1].token, json!(1)).await.unwrap();
    h.engine.complete(next[0].token, json!(1)).await.unwrap();
    assert_eq!(claim_tasks(&h, 1).await, vec![tasks[3]]);
    assert_eq!(claim_tasks(&h, 1).await, vec![tasks[4]]);
    assert!(claim_tasks(&h, 1).await.is_empty());
}

pub async fn keyed_and_unkeyed_steps_share_one_claim(h: H) {
    keyed(&h, "pay", 2, None).await;
    h.template("plain", &[("plain", &[])], json!({})).await;
    let mut keyed_tasks = Vec::new();
    let mut plain_tasks = Vec::new();
    for i in 0..4 {
        keyed_tasks.push(create_for(&h, "pay", json!("c")).await.id);
        if i < 3 {
            plain_tasks.push(h.create("plain").await.id);
        }
    }
    let other = create_for(&h, "pay", json!("d")).await.id;
    // Every unkeyed step, two of key c (the oldest) and the one of key d, in one claim of ten.
    let mut got = claim_tasks(&h, 10).await;
    got.sort();
    let mut want: Vec<Uuid> = plain_tasks.clone();
    want.extend([keyed_tasks[0], keyed_tasks[1], other]);
    want.sort();
    assert_eq!(got, want);
    assert!(claim_tasks(&h, 10).await.is_empty());

    // A keyed step deep in a DAG waits for its parents first and then for its slot.
    let doc = json!({
        "namespace": "t", "name": "flow", "version": "1.0.0",
        "steps": [
            {"name": "prepare", "handler": "h.plain"},
            {"name": "settle", "handler": "h.charge", "depends_on": ["prepare"],
             "concurrency": {"key": "/customer/id", "limit": 1, "name": "settlements"}},
        ],
    });
    h.engine.register_template_value(&doc).await.unwrap();
    let flow = create_for(&h, "flow", json!("c")).await;
    let prep = h.claim(&["h.plain"], 1).await.remove(0);
    assert_eq!(prep.task_id, flow.id);
    h.engine.complete(prep.token, json!(1)).await.unwrap();
    let settle = h.claim(&["h.charge"], 10).await;
    assert_eq!(
        settle.iter().map(|c| c.task_id).collect::<Vec<_>>(),
        vec![flow.id],
        "its key (settlements:c) is another than pay's"
    );
    h.engine.complete(settle[0].token, json!(1)).await.unwrap();
    assert_eq!(h.task_state(&flow).await, TaskState::Complete);
    h.check(&flow).await;
}

pub async fn a_retried_failure_frees_its_slot(h: H) {
    keyed(&h, "pay", 1, None).await;
    let a = create_for(&h, "pay", json!("c")).await;
    let b = create_for(&h, "pay", json!("c")).await;
    let first = h.claim_step("charge").await;
    assert_eq!(first.task_id, a.id);
    let s = h
        .engine
        .fail(first.token, StepFailure::retryable("card declined"))
        .await
        .unwrap();
    assert_eq!(s.state, StepState::WaitingForRetry);
    // The failure freed the slot: the other task's step runs while the first waits for its retry.
    let second = h.claim_step("charge").await;
    assert_eq!(second.task_id, b.id);
    h.advance_ms(1000);
    assert!(
        claim_tasks(&h, 10).await.is_empty(),
        "the retry is due but the key is full"
    );
    let ex = h.engine.explain(a.id).await.unwrap();
    assert!(!ex.steps[0].ready);
    assert!(
        ex.steps[0]
            .reasons
            .iter()
            .any(|r| r == "waits for a concurrency slot: key t/pay/charge:c has 1 of 1 running"),
        "{:?}",
        ex.steps[0].reasons
    );
    h.engine.complete(second.token, json!(1)).await.unwrap();
    let retry = h.claim_step("charge").await;
    assert_eq!((retry.task_id, retry.attempt), (a.id, 2));
    // A permanent failure frees the slot too.
    let c = create_for(&h, "pay", json!("c")).await;
    h.engine
        .fail(retry.token, StepFailure::permanent("stolen card"))
        .await
        .unwrap();
    assert_eq!(h.task_state(&a).await, TaskState::Error);
    assert_eq!(claim_tasks(&h, 10).await, vec![c.id]);
    h.check(&a).await;
    h.check(&b).await;
}

pub async fn a_reaped_lease_frees_its_slot(h: H) {
    keyed(&h, "pay", 1, None).await;
    let a = create_for(&h, "pay", json!("c")).await;
    let b = create_for(&h, "pay", json!("c")).await;
    let lost = h.claim_as("w1", &["h.charge"], 10, LEASE).await;
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].task_id, a.id);
    h.advance_ms(LEASE.as_millis() as i64 + 1);
    assert!(
        claim_tasks(&h, 10).await.is_empty(),
        "an expired lease holds its slot until it is reaped"
    );
    let r = h.engine.reap_expired_leases(100).await.unwrap();
    assert_eq!((r.retried, r.failed), (1, 0));
    let next = h.claim_as("w2", &["h.charge"], 10, LEASE).await;
    assert_eq!(next.iter().map(|c| c.task_id).collect::<Vec<_>>(), vec![b.id]);
    // The crashed worker's late report is stale and frees nothing: the key stays full.
    let err = h.engine.complete(lost[0].token, json!(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleClaim);
    h.advance_ms(1000);
    assert!(claim_tasks(&h, 10).await.is_empty());
    h.engine.complete(next[0].token, json!(1)).await.unwrap();
    let again = h.claim_step("charge").await;
    assert_eq!((again.task_id, again.attempt), (a.id, 2));
    h.check(&a).await;
    h.check(&b).await;
}

pub async fn a_named_limit_is_shared_across_templates(h: H) {
    keyed(&h, "card", 1, Some("charges")).await;
    keyed(&h, "wire", 1, Some("charges")).await;
    let card = create_for(&h, "card", json!("c")).await;
    let wire = create_for(&h, "wire", json!("c")).await;
    let other = create_for(&h, "wire", json!("d")).await;
    assert_eq!(
        h.engine.steps(wire.id).await.unwrap()[0].concurrency_key.as_deref(),
        Some("charges:c")
    );
    let got = claim_tasks(&h, 10).await;
    assert_eq!(
        got,
        vec![card.id, other.id],
        "charges:c runs one step, of either template"
    );
    assert!(claim_tasks(&h, 10).await.is_empty());

    // Without a name, a limit belongs to its template step: the same customer in two templates runs twice.
    keyed(&h, "solo_a", 1, None).await;
    keyed(&h, "solo_b", 1, None).await;
    let sa = create_for(&h, "solo_a", json!("c")).await;
    let sb = create_for(&h, "solo_b", json!("c")).await;
    assert_eq!(claim_tasks(&h, 10).await, vec![sa.id, sb.id]);
    let _ = wire;
}

pub async fn bad_concurrency_limits_and_keys_are_typed_errors_and_write_nothing(h: H) {
    let before = h.engine.templates().await.unwrap().len();
    for (concurrency, path) in [
        (json!({"key": "customer", "limit": 1}), "steps[0].concurrency.key"),
        (json!({"key": "/c", "limit": 0}), "steps[0].concurrency.limit"),
        (json!({"key": "/c", "limit": 10_001}), "steps[0].concurrency.limit"),
        (json!({"key": "/c"}), "steps[0].concurrency.limit"),
        (
            json!({"key": "/c", "limit": 1, "name": "Not A Name"}),
            "steps[0].concurrency.name",
        ),
        (
            json!({"key": "/c", "limit": 1, "per": "minute"}),
            "steps[0].concurrency.per",
        ),
        (json!("one"), "steps[0].concurrency"),
    ] {
        let doc = json!({
            "namespace": "t", "name": "bad", "version": "1.0.0",
            "steps": [{"name": "charge", "handler": "h.charge", "concurrency": concurrency}],
        });
        let err = h.engine.register_template_value(&doc).await.unwrap_err();
        let Error::Validation { errors, .. } = &err else {
            panic!("{concurrency}: expected a validation error, got {err:?}")
        };
        assert_eq!(errors[0].path, path, "{concurrency}: {err}");
    }
    assert_eq!(
        h.engine.templates().await.unwrap().len(),
        before,
        "no template was written"
    );

    keyed(&h, "pay", 1, None).await;
    for ctx in [
        json!({}),
        json!({"customer": {}}),
        json!({"customer": {"id": null}}),
        json!({"customer": {"id": [1]}}),
        json!({"customer": {"id": {"x": 1}}}),
        json!({"customer": "c"}),
    ] {
        let err = h
            .engine
            .create_task(CreateTask::new("t", "pay", ctx.clone()))
            .await
            .unwrap_err();
        let Error::Validation { errors, .. } = &err else {
            panic!("{ctx}: expected a validation error, got {err:?}")
        };
        assert_eq!(errors[0].path, "context.customer.id", "{ctx}: {err}");
        assert!(errors[0].message.contains("\"charge\""), "{}", errors[0].message);
    }
    assert!(all_tasks(&h).await.is_empty(), "no task was written");

    // A schedule whose context gives no key is refused when it is registered, not at its first occurrence.
    let err = h
        .engine
        .register_schedule(RegisterSchedule {
            name: "nightly".into(),
            namespace: "t".into(),
            template: "pay".into(),
            cron: "0 0 * * * *".into(),
            context: json!({"customer": {}}),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    assert!(h.engine.schedules().await.unwrap().is_empty());
}

pub async fn scheduled_tasks_get_their_concurrency_keys(h: H) {
    keyed(&h, "pay", 1, Some("charges")).await;
    h.engine
        .register_schedule(RegisterSchedule {
            name: "minutely".into(),
            namespace: "t".into(),
            template: "pay".into(),
            cron: "0 * * * * *".into(),
            context: json!({"customer": {"id": "c"}}),
            ..Default::default()
        })
        .await
        .unwrap();
    let manual = create_for(&h, "pay", json!("c")).await;
    h.advance_ms(60_000);
    assert_eq!(h.engine.fire_schedules().await.unwrap().fired, 1);
    let tasks = all_tasks(&h).await;
    let fired = tasks.iter().find(|t| t.id != manual.id).expect("the schedule's task");
    let steps = h.engine.steps(fired.id).await.unwrap();
    assert_eq!(
        (steps[0].concurrency_key.as_deref(), steps[0].concurrency_limit),
        (Some("charges:c"), Some(1))
    );
    assert_eq!(
        claim_tasks(&h, 10).await,
        vec![manual.id],
        "the scheduled task shares the key"
    );
    assert!(claim_tasks(&h, 10).await.is_empty());
}
