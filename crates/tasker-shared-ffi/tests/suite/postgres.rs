//! The same replays and handle checks on PostgreSQL. Every test here is ignored unless asked for: `cargo xtask
//! test-all --only postgres` starts a throwaway server, sets `TASKER_TEST_PG_URL` (and
//! `TASKER_TEST_PG_RESTART`, a shell command that restarts it) and runs the ignored tests whose path holds
//! `postgres`.

use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard};

use tasker_shared_ffi::runtime;
use tasker_shared_ffi::*;

use super::scenarios::replay_all;

const PASS: &str = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres";

/// The restart test takes this for writing, every other test here for reading: a restart must not pull the
/// server from under a replay.
static SERVER: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    SERVER.read().unwrap_or_else(|p| p.into_inner())
}

/// Creates an empty database on the server `TASKER_TEST_PG_URL` names and returns its URL.
fn fresh_database() -> String {
    use sqlx::Connection;
    let base = std::env::var("TASKER_TEST_PG_URL").unwrap_or_else(|_| panic!("{PASS}"));
    let name = format!("tasker_ffi_{}", uuid::Uuid::now_v7().simple());
    let create = {
        let (base, name) = (base.clone(), name.clone());
        async move {
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .map_err(|e| FfiError::configuration(format!("connecting to the test server: {e}")))?;
            // The name is generated here, never user input; identifiers cannot be bound as parameters.
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .map_err(|e| FfiError::configuration(format!("creating a database: {e}")))?;
            conn.close().await.ok();
            Ok(())
        }
    };
    runtime::block_on(runtime::spawn(create)).expect("fresh database");
    let (head, tail) = base
        .split_once('?')
        .map(|(h, t)| (h.to_string(), format!("?{t}")))
        .unwrap_or((base.clone(), String::new()));
    let root = head.rsplit_once('/').map(|(r, _)| r.to_string()).unwrap_or(head);
    format!("{root}/{name}{tail}")
}

#[test]
#[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
fn every_scenario_passes_on_postgres() {
    let _server = shared();
    replay_all(|_| (fresh_database(), None));
}

#[test]
#[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
fn health_reports_postgres_without_the_password() {
    let _server = shared();
    let url = fresh_database();
    let c = Client::open(&url, ClientOptions::default()).unwrap();
    assert!(!c.validate_or_refresh().unwrap());
    let h = c.health().unwrap();
    assert_eq!(h.store_kind, "postgres");
    assert_eq!(h.url, tasker_core::url::redact(&url));
    assert!(h.idle_connections <= h.pool_size, "{h:?}");
}

#[test]
#[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
fn validate_or_refresh_survives_a_server_restart() {
    let Ok(restart) = std::env::var("TASKER_TEST_PG_RESTART") else {
        panic!("TASKER_TEST_PG_RESTART must name a command that restarts the server; {PASS}");
    };
    let _server = SERVER.write().unwrap_or_else(|p| p.into_inner());
    let url = fresh_database();
    let c = Client::open(&url, ClientOptions::default()).unwrap();
    c.register_template("namespace: pg\nname: one\nversion: 1.0.0\nsteps:\n  - { name: a, handler: pg.a }\n")
        .unwrap();
    let t = c.create_task("pg", "one", CreateTaskOptions::default()).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(&restart)
        .status()
        .expect("run the restart command");
    assert!(status.success(), "restart command failed: {status}");
    // Either the pool healed by itself (the check passes) or it is rebuilt; both leave a working client.
    c.validate_or_refresh().expect("validate_or_refresh after a restart");
    assert_eq!(c.task(&t.id).unwrap().id, t.id);
    assert!(!c.validate_or_refresh().unwrap());
}

/// Runs `sh -c <the command in env var>`, failing loudly when xtask did not provide it.
fn server_command(var: &str) {
    let cmd = std::env::var(var).unwrap_or_else(|_| panic!("{var} must name a server command; {PASS}"));
    let status = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .status()
        .expect("run the server command");
    assert!(status.success(), "{var} failed: {status}");
}

#[test]
#[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
fn a_host_loop_rides_out_a_five_second_outage_on_postgres() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let _server = SERVER.write().unwrap_or_else(|p| p.into_inner());
    let url = fresh_database();
    let c = Client::open(&url, ClientOptions::default()).unwrap();
    let spec = testkit::PatternSpec::new("linear");
    let made = testkit::create_pattern_tasks(&c, &testkit::PatternSpec { n: Some(2), ..spec }, 300, None).unwrap();
    let session = c
        .worker_session(WorkerOptions {
            handler_keys: vec!["testkit.noop".into()],
            lease_ms: 3000,
            maintenance_interval_ms: 500,
            ..Default::default()
        })
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The host loop every binding runs: claim for free slots, run, report (returns at once), until stopped.
    let host = {
        let (session, stop) = (session.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for ctx in session
                    .next_batch(8, Duration::from_millis(200))
                    .expect("next_batch never fails on a store error")
                {
                    std::thread::sleep(Duration::from_millis(2));
                    session
                        .report(&ctx.token, HostOutcome::Success(serde_json::json!({"ok": true})))
                        .unwrap();
                }
            }
        })
    };
    let done = |c: &Client| {
        c.health_counts()
            .map(|h| h.tasks.get("complete").copied().unwrap_or(0))
            .unwrap_or(0)
    };
    super::support::eventually("progress before the outage", Duration::from_secs(60), || done(&c) >= 20);
    server_command("TASKER_TEST_PG_STOP");
    std::thread::sleep(Duration::from_secs(5));
    server_command("TASKER_TEST_PG_START");
    let deadline = Instant::now() + Duration::from_secs(120);
    while done(&c) < 300 {
        assert!(Instant::now() < deadline, "only {} of 300 tasks completed", done(&c));
        assert!(!host.is_finished(), "the host loop ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    session.shutdown();
    host.join().unwrap();
    session.flush().unwrap();
    let stats = session.stats();
    assert!(stats.store_errors > 0, "the outage was never noticed: {stats:?}");
    let steps: Vec<_> = made.tasks.iter().flat_map(|t| c.steps(&t.id).unwrap()).collect();
    assert!(
        steps.iter().all(|s| s.state == "complete"),
        "a step was left unfinished"
    );
}

/// Every URL form's password, through every path of the shared layer that shows a URL: `Debug` of the
/// client, `health().url`, and the error of a connection that fails (here: a port nothing listens on).
#[test]
#[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
fn postgres_passwords_in_every_form_are_masked_everywhere() {
    const SECRET: &str = "Zq9-Secret-Xy";
    let _server = shared();
    let url = fresh_database();
    let (head, db) = url.rsplit_once('/').unwrap();
    let host = head
        .rsplit_once('@')
        .map_or(head.trim_start_matches("postgres://"), |(_, h)| h);
    let leaks = |s: &str| s.contains(SECRET) || s.contains("Zq9@Secret-Xy") || s.contains("Zq9%40Secret");
    let forms = |host: &str| {
        [
            format!("postgres://postgres:{SECRET}@{host}/{db}"),
            format!("postgres://postgres@{host}/{db}?password={SECRET}"),
            format!("postgresql://postgres@{host}/{db}?sslmode=disable&password={SECRET}&application_name=t"),
            format!("postgres://postgres:Zq9%40Secret-Xy@{host}/{db}"),
        ]
    };
    for form in forms(host) {
        let c = Client::open(&form, ClientOptions::default()).unwrap();
        let shown = format!("{c:?} {:?} {}", c.health().unwrap(), c.health().unwrap().url);
        assert!(!leaks(&shown) && shown.contains("***"), "{shown}");
        c.close().unwrap();
    }
    // Port 1 on loopback: nothing listens, so the connection is refused and the error names the target.
    for form in forms("127.0.0.1:1") {
        let e = Client::open(&form, ClientOptions::default()).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!leaks(&shown), "{shown}");
    }
}
