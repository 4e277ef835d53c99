//! End-to-end tests of the `tasker` binary: each runs the real executable against its own SQLite file.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

/// A scratch directory with a database URL pointing into it.
struct Env {
    dir: TempDir,
    url: String,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        Env { dir, url }
    }

    fn run(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_tasker"))
            .arg("--database-url")
            .arg(&self.url)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run tasker");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(out.code, 0, "tasker {args:?} failed: {out:?}");
        out
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn demo_runs_every_task_to_completion_and_prints_the_summary() {
    let env = Env::new();
    let out = env.ok(&["demo", "--tasks", "20", "--concurrency", "4"]);
    for needle in [
        "All 20 tasks complete.",
        "ecommerce/order_fulfillment@1.0.0",
        "data/etl_pipeline@1.0.0",
        "reports/regional_report@1.0.0",
        "step retries",
        "step duration",
        "p50",
        "p95",
        "step throughput",
        "Explain of task",
    ] {
        assert!(out.stdout.contains(needle), "summary lacks {needle:?}: {out:?}");
    }

    let list = env.ok(&["--json", "task", "list", "--limit", "100"]).json();
    let tasks = list.as_array().expect("a JSON array of tasks");
    assert_eq!(tasks.len(), 20);
    assert!(tasks.iter().all(|t| t["state"] == "complete"), "{list:#}");

    let health = env.ok(&["--json", "health"]).json();
    assert_eq!(health["counts"]["tasks"]["complete"], 20);
}

#[test]
fn demo_json_summary_counts_what_the_engine_recorded() {
    let env = Env::new();
    let summary = env.ok(&["--json", "demo", "--tasks", "6"]).json();
    assert_eq!(summary["tasks_created"], 6);
    assert_eq!(summary["tasks_by_state"]["complete"], 6);
    assert_eq!(summary["metrics"]["tasks_completed"], 6);
    let steps: i64 = summary["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .map(|w| w["steps"].as_i64().unwrap_or(0))
        .sum();
    // Two diamonds (4 steps), two ETLs (4) and two reports (7).
    assert_eq!(steps, 2 * 4 + 2 * 4 + 2 * 7);
    assert_eq!(summary["steps_by_state"]["complete"], steps);
    assert_eq!(summary["explained"]["task"]["state"], "complete");
}

#[test]
fn validating_a_cyclic_template_fails_and_prints_the_cycle() {
    let env = Env::new();
    let file = env.write(
        "cyclic.yaml",
        "namespace: demo\nname: cyclic\nversion: 1.0.0\nsteps:\n\
         \x20 - { name: a, handler: demo.echo, depends_on: [c] }\n\
         \x20 - { name: b, handler: demo.echo, depends_on: [a] }\n\
         \x20 - { name: c, handler: demo.echo, depends_on: [b] }\n",
    );
    let out = env.run(&["template", "validate", s(&file)]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("a -> b -> c -> a"), "{out:?}");
    assert!(out.stderr.starts_with("error: "), "{out:?}");
}

#[test]
fn validating_a_template_reports_every_problem_with_its_field_path() {
    let env = Env::new();
    let file = env.write(
        "bad.yaml",
        "namespace: demo\nname: bad\nversion: \"1.0\"\nsteps:\n\
         \x20 - { name: a, handler: demo.echo, retry: { max_attempts: 0 } }\n\
         \x20 - { name: b, handler: demo.echo, depends_on: [missing] }\n",
    );
    let out = env.run(&["template", "validate", s(&file)]);
    assert_ne!(out.code, 0, "{out:?}");
    for path in ["version", "steps[0].retry.max_attempts", "steps[1].depends_on[0]"] {
        assert!(out.stderr.contains(path), "no error names {path}: {out:?}");
    }
}

#[test]
fn validating_the_example_templates_succeeds() {
    let env = Env::new();
    for name in ["order_fulfillment.yaml", "etl_pipeline.yaml", "regional_report.yaml"] {
        let out = env.ok(&["template", "validate", s(&example(name))]);
        assert!(out.stdout.starts_with("OK "), "{out:?}");
    }
}

#[test]
fn bad_json_in_context_is_an_error_naming_the_flag() {
    let env = Env::new();
    let out = env.run(&[
        "task",
        "create",
        "ecommerce",
        "order_fulfillment",
        "--context",
        "{not json",
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("--context"), "{out:?}");
}

#[test]
fn a_result_that_is_not_json_is_rejected_and_writes_nothing() {
    let env = Env::new();
    env.ok(&["template", "register", s(&example("etl_pipeline.yaml"))]);
    let ctx = r#"{"source":"clickstream","batch_id":8,"record_count":5}"#;
    let task = env
        .ok(&["--json", "task", "create", "data", "etl_pipeline", "--context", ctx])
        .json();
    let task_id = task["id"].as_str().expect("id").to_string();
    let explain = env.ok(&["--json", "task", "explain", &task_id]).json();
    let step_id = explain["explain"]["steps"][0]["step_id"]
        .as_str()
        .expect("step id")
        .to_string();
    let out = env.run(&["step", "resolve", &step_id, "--result", "{\"unclosed\": "]);
    assert_eq!(out.code, 3, "a validation error: {out:?}");
    assert!(out.stderr.contains("--result"), "{out:?}");
    let step = env.ok(&["--json", "step", "show", &step_id]).json();
    assert_eq!(step["state"], "pending", "nothing was written");
}

#[test]
fn a_malformed_task_id_is_a_validation_error() {
    let env = Env::new();
    let out = env.run(&["task", "show", "not-a-uuid"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("task_id") && out.stderr.contains("not-a-uuid"),
        "{out:?}"
    );
}

#[test]
fn operator_actions_on_finished_work_are_invalid_transitions() {
    let env = Env::new();
    env.ok(&["demo", "--tasks", "3"]);
    let tasks = env.ok(&["--json", "task", "list"]).json();
    let task_id = tasks[0]["id"].as_str().expect("task id").to_string();
    let shown = env.ok(&["--json", "task", "show", &task_id]).json();
    assert_eq!(shown["task"]["state"], "complete");
    let step_id = shown["steps"][0]["id"].as_str().expect("step id").to_string();
    assert_eq!(shown["steps"][0]["state"], "complete");

    let out = env.run(&["step", "resolve", &step_id, "--result", "{\"by\":\"hand\"}"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("invalid transition"), "{out:?}");

    let out = env.run(&["task", "cancel", &task_id, "--reason", "too late"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("invalid transition"), "{out:?}");

    // Nothing changed.
    let again = env.ok(&["--json", "task", "show", &task_id]).json();
    assert_eq!(again["task"]["state"], "complete");
    assert_eq!(again["steps"][0]["state"], "complete");
}

#[test]
fn tasks_are_created_idempotently_and_can_be_resolved_and_cancelled() {
    let env = Env::new();
    env.ok(&["template", "register", s(&example("etl_pipeline.yaml"))]);
    let again = env
        .ok(&["--json", "template", "register", s(&example("etl_pipeline.yaml"))])
        .json();
    assert_eq!(
        again[0]["created"], false,
        "registering the same content twice is a no-op"
    );

    let ctx = r#"{"source":"clickstream","batch_id":7,"record_count":5}"#;
    let create = [
        "--json",
        "task",
        "create",
        "data",
        "etl_pipeline",
        "--context",
        ctx,
        "--idempotency-key",
        "b-7",
    ];
    let first = env.ok(&create).json();
    let second = env.ok(&[&create[..], &["--tag", "team=data"]].concat()).json();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["state"], "pending");
    let task_id = first["id"].as_str().expect("id").to_string();

    let explain = env.ok(&["--json", "task", "explain", &task_id]).json();
    assert_eq!(explain["execution_context"]["ready_steps"], 1);
    let extract = explain["explain"]["steps"][0]["step_id"]
        .as_str()
        .expect("step id")
        .to_string();

    let resolved = env
        .ok(&["--json", "step", "resolve", &extract, "--result", r#"{"records":[]}"#])
        .json();
    assert_eq!(resolved["state"], "resolved_manually");
    let explain = env.ok(&["--json", "task", "explain", &task_id]).json();
    assert_eq!(
        explain["explain"]["steps"][1]["ready"], true,
        "transform may run once extract is resolved"
    );

    let cancelled = env
        .ok(&["--json", "task", "cancel", &task_id, "--reason", "test"])
        .json();
    assert_eq!(cancelled["state"], "cancelled");
    let out = env.run(&["task", "retry", &task_id]);
    assert_ne!(out.code, 0, "only a task in error can be retried: {out:?}");
}

#[test]
fn a_context_that_breaks_the_input_schema_is_rejected() {
    let env = Env::new();
    env.ok(&["template", "register", "--examples"]);
    let out = env.run(&[
        "task",
        "create",
        "data",
        "etl_pipeline",
        "--context",
        r#"{"source":"nowhere"}"#,
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("context"), "{out:?}");
    let list = env.ok(&["--json", "task", "list"]).json();
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(0),
        "a rejected task leaves nothing behind"
    );
}

#[test]
fn unknown_ids_are_not_found() {
    let env = Env::new();
    let out = env.run(&["task", "show", "01a21839-cda6-77fa-b74d-86e6b26243ff"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("not found"), "{out:?}");
}

#[test]
fn a_database_password_is_never_printed() {
    let env = Env::new();
    let out = Command::new(env!("CARGO_BIN_EXE_tasker"))
        .args([
            "--database-url",
            "postgres://app:hunter2@db.invalid/tasker",
            "--log-level",
            "debug",
            "health",
        ])
        .current_dir(env.dir.path())
        .output()
        .expect("run tasker");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("app:***@db.invalid"), "{all}");
}

#[test]
fn template_show_renders_every_format() {
    let env = Env::new();
    env.ok(&["template", "register", "--examples"]);
    let yaml = env.ok(&["template", "show", "reports", "regional_report", "--format", "yaml"]);
    // The YAML is a template the engine accepts back.
    let file = env.write("roundtrip.yaml", &yaml.stdout);
    env.ok(&["template", "validate", s(&file)]);
    let json = env
        .ok(&["template", "show", "reports", "regional_report", "--format", "json"])
        .json();
    assert_eq!(json["steps"].as_array().map(Vec::len), Some(7));
    let mermaid = env.ok(&["template", "show", "reports", "regional_report", "--format", "mermaid"]);
    assert!(mermaid.stdout.contains("fetch_regions --> summarize_na"), "{mermaid:?}");
    let dot = env.ok(&["template", "show", "ecommerce", "order_fulfillment", "--format", "dot"]);
    assert!(
        dot.stdout.contains("\"validate_order\" -> \"charge_payment\""),
        "{dot:?}"
    );
    let list = env.ok(&["--json", "template", "list"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(3));
}

#[test]
fn a_task_created_to_start_later_waits_until_run_now() {
    let env = Env::new();
    env.ok(&["template", "register", s(&example("etl_pipeline.yaml"))]);
    let ctx = r#"{"source":"clickstream","batch_id":8,"record_count":5}"#;
    let task = env
        .ok(&[
            "--json",
            "task",
            "create",
            "data",
            "etl_pipeline",
            "--context",
            ctx,
            "--delay",
            "2h",
            "--priority",
            "-7",
        ])
        .json();
    assert_eq!(task["priority"], -7);
    let held = task["held_until"].as_str().expect("held until a time").to_string();
    assert_eq!(task["run_at"], held.as_str());
    let task_id = task["id"].as_str().unwrap().to_string();
    let explain = env.ok(&["--json", "task", "explain", &task_id]).json();
    let reasons = explain["explain"]["steps"][0]["reasons"].to_string();
    assert!(reasons.contains("scheduled for"), "{explain:#}");
    assert!(env.ok(&["task", "show", &task_id]).stdout.contains("scheduled for"));

    let started = env.ok(&["--json", "task", "run-now", &task_id]).json();
    assert!(started["held_until"].is_null(), "{started:#}");
    let explain = env.ok(&["--json", "task", "explain", &task_id]).json();
    assert_eq!(explain["explain"]["steps"][0]["ready"], true, "{explain:#}");

    for bad in [
        vec!["task", "create", "data", "etl_pipeline", "--delay", "soon"],
        vec!["task", "create", "data", "etl_pipeline", "--run-at", "tomorrow"],
        vec!["task", "create", "data", "etl_pipeline", "--priority", "5000"],
        vec![
            "task",
            "create",
            "data",
            "etl_pipeline",
            "--run-at",
            "2030-01-01T00:00:00Z",
            "--delay",
            "1h",
        ],
    ] {
        let out = env.run(&bad);
        assert_eq!(out.code, 2, "{bad:?}: {out:?}");
    }
    let listed = env.ok(&["--json", "task", "list"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "bad arguments create nothing");
}

#[test]
fn schedules_are_added_listed_paused_resumed_and_removed() {
    let env = Env::new();
    env.ok(&["template", "register", s(&example("etl_pipeline.yaml"))]);
    let ctx = r#"{"source":"clickstream","batch_id":8,"record_count":5}"#;
    let added = env
        .ok(&[
            "--json",
            "schedule",
            "add",
            "nightly-etl",
            "data",
            "etl_pipeline",
            "--cron",
            "0 2 * * *",
            "--timezone",
            "Europe/Berlin",
            "--context",
            ctx,
            "--priority",
            "-3",
            "--misfire",
            "run-once",
        ])
        .json();
    assert_eq!(
        (
            &added["name"],
            &added["timezone"],
            &added["misfire"],
            &added["priority"],
            &added["paused"]
        ),
        (
            &Value::from("nightly-etl"),
            &Value::from("Europe/Berlin"),
            &Value::from("run_once"),
            &Value::from(-3),
            &Value::from(false)
        ),
        "{added:#}"
    );
    let next = added["next_fire_at"].as_str().expect("a next fire time").to_string();
    // 02:00 in Berlin is 00:00 or 01:00 UTC, depending on the season.
    assert!(next.contains("T00:00:00") || next.contains("T01:00:00"), "{next}");

    let table = env.ok(&["schedule", "list"]).stdout;
    assert!(table.contains("nightly-etl") && table.contains("0 2 * * *"), "{table}");
    let listed = env.ok(&["--json", "schedule", "list"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed:#}");

    let paused = env.ok(&["--json", "schedule", "pause", "nightly-etl"]).json();
    assert_eq!(
        (&paused["paused"], &paused["next_fire_at"]),
        (&Value::from(true), &Value::Null)
    );
    assert!(env.ok(&["schedule", "list"]).stdout.contains("paused"));
    let resumed = env.ok(&["--json", "schedule", "resume", "nightly-etl"]).json();
    assert_eq!(resumed["paused"], false);
    assert!(resumed["next_fire_at"].is_string(), "{resumed:#}");

    let removed = env.ok(&["schedule", "remove", "nightly-etl"]).stdout;
    assert!(removed.contains("removed schedule nightly-etl"), "{removed}");
    let listed = env.ok(&["--json", "schedule", "list"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(0));
    let gone = env.run(&["schedule", "pause", "nightly-etl"]);
    assert_ne!(gone.code, 0, "{gone:?}");
    assert!(gone.stderr.contains("not found"), "{gone:?}");
}

#[test]
fn bad_schedules_are_rejected_naming_the_problem_and_write_nothing() {
    let env = Env::new();
    env.ok(&["template", "register", s(&example("etl_pipeline.yaml"))]);
    let ctx = r#"{"source":"clickstream","batch_id":8,"record_count":5}"#;
    for (args, says) in [
        (vec!["--cron", "61 * * * *", "--context", ctx], "cron"),
        (
            vec!["--cron", "@daily", "--timezone", "Mars/Olympus", "--context", ctx],
            "timezone",
        ),
        (
            vec!["--cron", "@daily", "--context", r#"{"source":"nowhere"}"#],
            "context",
        ),
        (vec!["--cron", "@daily", "--context", "not json"], "--context"),
    ] {
        let mut full = vec!["schedule", "add", "s", "data", "etl_pipeline"];
        full.extend(args);
        let out = env.run(&full);
        assert_ne!(out.code, 0, "{full:?}: {out:?}");
        assert!(out.stderr.contains(says), "{full:?}: {out:?}");
    }
    let out = env.run(&["schedule", "add", "s", "data", "missing", "--cron", "@daily"]);
    assert!(out.stderr.contains("not found"), "{out:?}");
    let listed = env.ok(&["--json", "schedule", "list"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "bad schedules write nothing");
}
