//! Templates and task creation.

use serde_json::json;
use tasker_core::engine::CreateTask;
use tasker_core::*;

use super::harness::H;

const V1: &str = "namespace: t\nname: versions\nversion: 1.9.0\nsteps: [{name: a, handler: h.a}]\n";

pub async fn template_latest_version_is_highest_semver(h: H) {
    h.engine.register_template(V1).await.unwrap();
    h.engine
        .register_template(&V1.replace("1.9.0", "1.10.0"))
        .await
        .unwrap();
    h.engine.register_template(&V1.replace("1.9.0", "1.2.0")).await.unwrap();
    assert_eq!(
        h.engine.template("t", "versions", None).await.unwrap().version,
        "1.10.0"
    );
    assert_eq!(
        h.engine.template("t", "versions", Some("1.2.0")).await.unwrap().version,
        "1.2.0"
    );
    assert_eq!(h.engine.templates().await.unwrap().len(), 3);
}

pub async fn template_same_content_registers_once(h: H) {
    let a = h.engine.register_template(V1).await.unwrap();
    // Same content, different layout: still the same template.
    let b = h.engine.register_template(&format!("# comment\n{V1}")).await.unwrap();
    assert!(a.created && !b.created);
    assert_eq!(a.template.id, b.template.id);
    assert_eq!(h.engine.templates().await.unwrap().len(), 1);
}

pub async fn template_versions_are_immutable(h: H) {
    h.engine.register_template(V1).await.unwrap();
    let err = h
        .engine
        .register_template(&V1.replace("h.a", "h.other"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let t = h.engine.template("t", "versions", None).await.unwrap();
    assert_eq!(t.template.steps[0].handler, "h.a", "the original is untouched");
}

pub async fn template_rejected_leaves_nothing(h: H) {
    let cyclic = "namespace: t\nname: c\nversion: 1.0.0\nsteps:\n  - {name: a, handler: h, depends_on: [b]}\n  - {name: b, handler: h, depends_on: [a]}\n";
    let err = h.engine.register_template(cyclic).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CycleDetected);
    let err = h.engine.register_template("just a string").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(h.engine.templates().await.unwrap().is_empty());
}

pub async fn template_unknown_is_not_found(h: H) {
    let err = h.engine.template("t", "nope", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = h
        .engine
        .create_task(CreateTask::new("t", "nope", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

pub async fn create_task_writes_steps_edges_and_trail(h: H) {
    h.diamond().await;
    let task = h.create("diamond").await;
    assert_eq!(task.state, TaskState::Pending);
    assert_eq!(task.steps_total, 4);
    let steps = h.engine.steps(task.id).await.unwrap();
    let names: Vec<_> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b", "c", "d"]);
    assert!(steps.iter().all(|s| s.state == StepState::Pending && s.attempts == 0));
    assert_eq!(
        steps.iter().map(|s| s.unfinished_parents).collect::<Vec<_>>(),
        vec![0, 1, 1, 2]
    );
    assert_eq!(steps[0].config, json!({"step": "a"}));
    let (trows, srows) = h.engine.transitions(task.id).await.unwrap();
    assert_eq!((trows.len(), srows.len()), (1, 4));
    h.check(&task).await;
}

pub async fn create_task_is_idempotent_by_key(h: H) {
    h.diamond().await;
    let req = CreateTask {
        idempotency_key: Some("order-42".into()),
        ..CreateTask::new("t", "diamond", json!({"n": 1}))
    };
    let a = h.engine.create_task(req.clone()).await.unwrap();
    let b = h.engine.create_task(req.clone()).await.unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(h.engine.tasks(&TaskFilter::default()).await.unwrap().len(), 1);
    // The key is scoped to the template: another template may use it.
    h.template("other", &[("x", &[])], json!({})).await;
    let c = h
        .engine
        .create_task(CreateTask {
            name: "other".into(),
            ..req
        })
        .await
        .unwrap();
    assert_ne!(a.id, c.id);
}

pub async fn create_task_records_metadata(h: H) {
    h.diamond().await;
    let req = CreateTask {
        tags: Some(json!({"team": "billing"})),
        initiator: Some("alice".into()),
        source_system: Some("crm".into()),
        reason: Some("nightly".into()),
        ..CreateTask::new("t", "diamond", json!({"n": 2}))
    };
    let t = h.engine.create_task(req).await.unwrap();
    let t = h.engine.task(t.id).await.unwrap();
    assert_eq!(t.tags, json!({"team": "billing"}));
    assert_eq!(
        (t.initiator.as_deref(), t.source_system.as_deref(), t.reason.as_deref()),
        (Some("alice"), Some("crm"), Some("nightly"))
    );
    assert_eq!(t.context, json!({"n": 2}));
    assert_eq!(t.version, "1.0.0");
}

pub async fn create_task_rejects_bad_context_and_writes_nothing(h: H) {
    let doc = json!({
        "namespace": "t", "name": "schema", "version": "1.0.0",
        "input_schema": {"type": "object", "required": ["account_id"], "properties": {"account_id": {"type": "integer"}}},
        "steps": [{"name": "a", "handler": "h.a"}],
    });
    h.engine.register_template_value(&doc).await.unwrap();
    for ctx in [json!({"account_id": "x"}), json!({}), json!([1, 2])] {
        let err = h
            .engine
            .create_task(CreateTask::new("t", "schema", ctx.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{ctx}: {err}");
    }
    let err = h
        .engine
        .create_task(CreateTask::new("t", "schema", json!({"account_id": "x"})))
        .await
        .unwrap_err();
    let Error::Validation { errors, .. } = err else {
        panic!()
    };
    assert_eq!(errors[0].path, "context.account_id");
    let err = h
        .engine
        .create_task(CreateTask {
            tags: Some(json!({"k": 1})),
            ..CreateTask::new("t", "schema", json!({"account_id": 1}))
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tags.k"), "{err}");
    assert!(h.engine.tasks(&TaskFilter::default()).await.unwrap().is_empty());
    h.engine
        .create_task(CreateTask::new("t", "schema", json!({"account_id": 7})))
        .await
        .unwrap();
}

pub async fn create_task_pins_the_requested_version(h: H) {
    h.engine.register_template(V1).await.unwrap();
    h.engine
        .register_template(&V1.replace("1.9.0", "2.0.0").replace("h.a", "h.b"))
        .await
        .unwrap();
    let t = h
        .engine
        .create_task(CreateTask {
            version: Some("1.9.0".into()),
            ..CreateTask::new("t", "versions", json!({}))
        })
        .await
        .unwrap();
    assert_eq!(h.engine.steps(t.id).await.unwrap()[0].handler_key, "h.a");
    let t = h
        .engine
        .create_task(CreateTask::new("t", "versions", json!({})))
        .await
        .unwrap();
    assert_eq!(t.version, "2.0.0");
}

pub async fn unknown_ids_are_not_found(h: H) {
    let id = new_id();
    assert_eq!(h.engine.task(id).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(h.engine.steps(id).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(h.engine.explain(id).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        h.engine.cancel_task(id, None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        h.engine.resolve_step_manually(id, json!(1)).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let err = h
        .engine
        .complete(
            ClaimToken {
                step_id: id,
                attempt: 1,
            },
            json!(1),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        parse_id("task_id", "not-a-uuid").unwrap_err().kind(),
        ErrorKind::Validation
    );
}

pub async fn tasks_filter_and_page(h: H) {
    h.diamond().await;
    h.template("other", &[("x", &[])], json!({})).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(h.create("diamond").await.id);
    }
    let other = h.create("other").await;
    h.engine.cancel_task(other.id, None).await.unwrap();
    let all = h.engine.tasks(&TaskFilter::default()).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0].id, other.id, "newest first");
    let f = TaskFilter {
        name: Some("diamond".into()),
        limit: Some(2),
        ..Default::default()
    };
    let page1 = h.engine.tasks(&f).await.unwrap();
    assert_eq!(page1.iter().map(|t| t.id).collect::<Vec<_>>(), vec![ids[4], ids[3]]);
    let page2 = h
        .engine
        .tasks(&TaskFilter {
            before: Some(page1[1].id),
            ..f.clone()
        })
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|t| t.id).collect::<Vec<_>>(), vec![ids[2], ids[1]]);
    let cancelled = h
        .engine
        .tasks(&TaskFilter {
            state: Some(TaskState::Cancelled),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    let ns = h
        .engine
        .tasks(&TaskFilter {
            namespace: Some("zzz".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(ns.is_empty());
}
