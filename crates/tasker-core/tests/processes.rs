//! Real worker processes on one PostgreSQL database: many workers, a worker killed with SIGKILL, a server
//! restart, and a subscriber that hears the workers' commits across a lost connection. Run by
//! `cargo xtask test-all --only postgres`, which provides the server. The `sqlite` module runs worker
//! processes on one SQLite file (no server needed).

#![cfg(feature = "cli")]

#[cfg(feature = "postgres")]
#[path = "conformance/harness.rs"]
#[allow(dead_code)]
mod harness;

/// What both stores' subscriber tests share: worker processes and the check of what a subscriber heard.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod shared {
    use std::collections::{HashMap, HashSet};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use tasker_core::events::{Event, Subscription};
    use tasker_core::Engine;
    use uuid::Uuid;

    /// `tasker worker --testkit` processes on `url`, killed when dropped.
    pub struct Workers(pub Vec<(String, Child)>);

    impl Workers {
        pub fn start(url: &str, n: usize, lease_seconds: u32, prefix: &str) -> Workers {
            Workers(
                (0..n)
                    .map(|i| {
                        let id = format!("{prefix}-{i}");
                        let child = Command::new(env!("CARGO_BIN_EXE_tasker"))
                            .args(["--database-url", url, "worker", "--testkit", "--concurrency", "8"])
                            .args(["--lease-seconds", &lease_seconds.to_string(), "--worker-id", &id])
                            .env("RUST_LOG", "warn")
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .spawn()
                            .expect("start tasker worker");
                        (id, child)
                    })
                    .collect(),
            )
        }

        /// SIGTERM every worker and wait for each to exit cleanly.
        pub fn stop(mut self) {
            for (id, child) in &mut self.0 {
                let pid = child.id().to_string();
                assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
                let status = child.wait().unwrap();
                assert!(status.success(), "worker {id} exited with {status}");
            }
            self.0.clear();
        }
    }

    impl Drop for Workers {
        fn drop(&mut self) {
            for (_, c) in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Takes events from `sub` until it has a `task.completed` of every task in `want`, failing loudly at the
    /// deadline with what it got; calls `between` after each event (to cut connections while events flow).
    /// Returns how many times each task's completion arrived.
    pub async fn completions(
        sub: &mut Subscription,
        want: &HashSet<Uuid>,
        deadline: Duration,
        mut between: impl AsyncFnMut(usize),
    ) -> HashMap<Uuid, usize> {
        let until = Instant::now() + deadline;
        let mut got: HashMap<Uuid, usize> = HashMap::new();
        while want.iter().any(|t| !got.contains_key(t)) {
            let left = until.saturating_duration_since(Instant::now());
            let Some(e) = sub.next(left.min(Duration::from_secs(1))).await else {
                assert!(
                    Instant::now() < until,
                    "after {deadline:?} the subscriber had heard {} of {} task.completed events (dropped {})",
                    got.len(),
                    want.len(),
                    sub.dropped()
                );
                continue;
            };
            assert_eq!(e.name, "task.completed", "the filter lets only task.completed through");
            assert!(want.contains(&e.task_id), "a completion of a task nobody made: {e:?}");
            assert_eq!(
                (e.from_state.as_deref(), e.to_state.as_str()),
                (Some("in_progress"), "complete")
            );
            *got.entry(e.task_id).or_default() += 1;
            between(got.len()).await;
        }
        got
    }

    /// Every event of one task, as heard, matches its transition rows one for one, with the same fields, and
    /// each task's and each step's events come in sort-key order.
    pub async fn assert_events_match_rows(engine: &Engine, task_id: Uuid, heard: &[Event]) {
        let (task_rows, step_rows) = engine.transitions(task_id).await.unwrap();
        assert_eq!(
            heard.len(),
            task_rows.len() + step_rows.len(),
            "one event per transition row of task {task_id}: {:?}",
            heard.iter().map(|e| &e.name).collect::<Vec<_>>()
        );
        let steps = engine.steps(task_id).await.unwrap();
        let name_of: HashMap<Uuid, String> = steps.iter().map(|s| (s.id, s.name.clone())).collect();
        let task_events: Vec<&Event> = heard.iter().filter(|e| e.step_id.is_none()).collect();
        assert_eq!(task_events.len(), task_rows.len());
        for (e, row) in task_events.iter().zip(&task_rows) {
            assert_eq!(e.to_state, row.to_state.to_string(), "task events in sort-key order");
            assert_eq!(e.from_state, row.from_state.map(|s| s.to_string()));
            assert_eq!(e.timestamp, row.created_at);
            assert_eq!(e.metadata, row.metadata);
        }
        for step in &steps {
            let rows: Vec<_> = step_rows.iter().filter(|r| r.step_id == step.id).collect();
            let events: Vec<&Event> = heard.iter().filter(|e| e.step_id == Some(step.id)).collect();
            assert_eq!(events.len(), rows.len(), "events of step {}", step.name);
            for (e, row) in events.iter().zip(rows) {
                assert_eq!(e.to_state, row.to_state.to_string(), "step events in sort-key order");
                assert_eq!(e.attempt, Some(row.attempt));
                assert_eq!(e.worker_id, row.worker_id);
                assert_eq!(e.timestamp, row.created_at);
                assert_eq!(e.step_name.as_deref(), Some(name_of[&step.id].as_str()));
            }
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::collections::HashSet;
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use serde_json::json;
    use sqlx::Row;
    use tasker_core::engine::EngineOptions;
    use tasker_core::testkit::{self, Pattern};
    use tasker_core::{Engine, ErrorKind, SystemClock};

    use tasker_core::events::EventFilter;

    use super::harness::fresh_pg_database;
    use super::shared::{assert_events_match_rows, completions, Workers};

    /// These tests share one server and one of them restarts it, so they run one at a time.
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    async fn engine(url: &str) -> Engine {
        Engine::connect(
            url,
            EngineOptions {
                clock: Arc::new(SystemClock),
                ..Default::default()
            },
        )
        .await
        .unwrap()
    }

    async fn pool(url: &str) -> sqlx::PgPool {
        sqlx::PgPool::connect(url).await.unwrap()
    }

    /// Waits until no task is pending or in progress, failing loudly at the deadline.
    async fn wait_all_terminal(engine: &Engine, deadline: Duration) {
        let until = Instant::now() + deadline;
        loop {
            match engine.health_counts().await {
                Ok(h) if h.tasks["pending"] + h.tasks["in_progress"] == 0 => return,
                Ok(h) => assert!(
                    Instant::now() < until,
                    "tasks still running after {deadline:?}: {:?}",
                    h.tasks
                ),
                // A lost connection (the server restarting) is retried, as any poller would.
                Err(e) if matches!(e.kind(), ErrorKind::Database | ErrorKind::Timeout) => {
                    assert!(Instant::now() < until, "store unreachable at the deadline: {e}");
                }
                Err(e) => panic!("health_counts failed: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every step completed exactly once, every transition chain is whole, nothing is left behind.
    async fn assert_audit(pool: &sqlx::PgPool, tasks: i64, steps: i64) {
        let q = |sql: &'static str| sqlx::query(sql);
        let n: i64 = q("SELECT count(*) FROM tasker.tasks WHERE state = 'complete'")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, tasks, "every task complete");
        let n: i64 = q("SELECT count(*) FROM tasker.steps WHERE state = 'complete'")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, steps, "every step complete");
        let n: i64 = q("SELECT count(*) FROM tasker.step_transitions WHERE event = 'complete'")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, steps, "one completion row per step");
        let dup: i64 = q("SELECT count(*) FROM (SELECT step_id FROM tasker.step_transitions WHERE event = 'complete' GROUP BY step_id HAVING count(*) > 1) d")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(dup, 0, "no step completed twice");
        // The trail of each step has exactly transition_count rows with sort keys 1..n.
        let broken: i64 = q("SELECT count(*) FROM tasker.steps s WHERE s.transition_count <> (SELECT count(*) FROM tasker.step_transitions t WHERE t.step_id = s.id) OR s.transition_count <> (SELECT max(sort_key) FROM tasker.step_transitions t WHERE t.step_id = s.id)")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(broken, 0, "no transition lost");
        let broken: i64 = q("SELECT count(*) FROM tasker.tasks s WHERE s.transition_count <> (SELECT count(*) FROM tasker.task_transitions t WHERE t.task_id = s.id)")
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(broken, 0, "no task transition lost");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn four_worker_processes_finish_two_thousand_tasks() {
        let _serial = SERIAL.lock().await;
        let url = fresh_pg_database().await;
        let engine = engine(&url).await;
        let diamond = Pattern::Diamond.template();
        let tree = Pattern::Tree { depth: 2, fanout: 2 }.template();
        testkit::create_tasks(&engine, &diamond, 1000, json!({})).await.unwrap();
        testkit::create_tasks(&engine, &tree, 1000, json!({})).await.unwrap();
        let workers = Workers::start(&url, 4, 30, "many");
        wait_all_terminal(&engine, Duration::from_secs(600)).await;
        workers.stop();
        let pool = pool(&url).await;
        assert_audit(&pool, 2000, 1000 * 4 + 1000 * 7).await;
        // Work really was shared between the processes.
        let rows = sqlx::query(
            "SELECT worker_id, count(*) FROM tasker.step_transitions WHERE event = 'complete' GROUP BY worker_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), 4, "every worker completed steps");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn four_worker_processes_fire_a_schedule_once_per_second_for_a_minute() {
        use chrono::{Datelike, DurationRound, Timelike};
        let _serial = SERIAL.lock().await;
        let url = fresh_pg_database().await;
        let engine = engine(&url).await;
        let template = Pattern::Linear(2).template();
        engine
            .register_template_value(&serde_json::to_value(&template).unwrap())
            .await
            .unwrap();
        // Every second of the first whole UTC minute at least 5 s away, so that the workers are up before it.
        let now = chrono::Utc::now();
        let mut minute = now.duration_trunc(chrono::TimeDelta::minutes(1)).unwrap() + chrono::TimeDelta::minutes(1);
        if minute - now < chrono::TimeDelta::seconds(5) {
            minute += chrono::TimeDelta::minutes(1);
        }
        let cron = format!(
            "* {} {} {} {} *",
            minute.minute(),
            minute.hour(),
            minute.day(),
            minute.month()
        );
        let schedule = engine
            .register_schedule(tasker_core::schedule::RegisterSchedule {
                name: "every_second".into(),
                namespace: template.namespace.clone(),
                template: template.name.clone(),
                cron,
                context: json!({}),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(schedule.next_fire_at, Some(minute));
        let workers = Workers::start(&url, 4, 10, "sched");
        let after = minute + chrono::TimeDelta::seconds(65);
        tokio::time::sleep((after - chrono::Utc::now()).to_std().unwrap_or_default()).await;
        wait_all_terminal(&engine, Duration::from_secs(120)).await;
        workers.stop();

        let pool = pool(&url).await;
        let rows = sqlx::query("SELECT idempotency_key FROM tasker.tasks WHERE initiator = $1")
            .bind(schedule.initiator())
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(rows.len(), 60, "exactly 60 tasks");
        let keys: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        let expected: HashSet<String> = (0..60)
            .map(|s| schedule.task_key(minute + chrono::TimeDelta::seconds(s)))
            .collect();
        assert_eq!(keys, expected, "one task for each second of the minute, and no other");
        assert_audit(&pool, 60, 60 * 2).await;
        let after = engine.schedule("every_second").await.unwrap();
        assert_eq!((after.fired, after.missed, after.last_error), (60, 0, None));
        assert_eq!(after.last_fire_at, Some(minute + chrono::TimeDelta::seconds(59)));
        // Next year's minute, as the expression names a day and month.
        assert!(after.next_fire_at.unwrap() > minute + chrono::TimeDelta::days(300));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn a_killed_worker_s_steps_are_taken_over() {
        let _serial = SERIAL.lock().await;
        let url = fresh_pg_database().await;
        let engine = engine(&url).await;
        // Slow steps, so the victim is sure to hold leases when it dies.
        let t = Pattern::Parallel(6).template_with(
            "slow",
            |_| "testkit.sleep".into(),
            json!({"max_attempts": 3, "backoff": "none"}),
        );
        testkit::create_tasks(&engine, &t, 40, json!({"sleep_ms": 300}))
            .await
            .unwrap();
        let pool = pool(&url).await;
        let lease = 3u32;
        let mut victim = Workers::start(&url, 1, lease, "victim");
        // Wait until the victim holds leases.
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let held: i64 =
                sqlx::query("SELECT count(*) FROM tasker.steps WHERE state = 'in_progress' AND worker_id = 'victim-0'")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .get(0);
            if held > 0 {
                break;
            }
            assert!(Instant::now() < until, "victim never claimed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (_, mut child) = victim.0.remove(0);
        child.kill().unwrap(); // SIGKILL: no shutdown, no outcome reported
        child.wait().unwrap();
        let killed_at = chrono::Utc::now();
        let orphans: Vec<uuid::Uuid> =
            sqlx::query("SELECT id FROM tasker.steps WHERE state = 'in_progress' AND worker_id = 'victim-0'")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
        assert!(!orphans.is_empty());
        let survivors = Workers::start(&url, 2, lease, "survivor");
        wait_all_terminal(&engine, Duration::from_secs(300)).await;
        survivors.stop();
        assert_audit(&pool, 40, 40 * 8).await;
        // Each orphan was claimed again by a survivor within the lease time plus 5 s of the kill.
        for id in orphans {
            let first_reclaim: chrono::DateTime<chrono::Utc> = sqlx::query(
                "SELECT min(created_at) FROM tasker.step_transitions WHERE step_id = $1 AND event = 'claim' AND worker_id LIKE 'survivor-%'",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
            let took = (first_reclaim - killed_at).num_milliseconds();
            assert!(
                took <= i64::from(lease) * 1000 + 5000,
                "step {id} taken over after {took} ms"
            );
            let lost: i64 = sqlx::query(
                "SELECT count(*) FROM tasker.step_transitions WHERE step_id = $1 AND event = 'lease_expired'",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
            assert_eq!(lost, 1, "the expiry is on the record");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn workers_ride_out_a_server_restart() {
        let _serial = SERIAL.lock().await;
        // xtask sets it for its own cluster, and skips this test by name (saying so) for a server named by
        // DATABASE_URL, which is not ours to restart; so a missing command here is an error, not a pass.
        let restart = std::env::var("TASKER_TEST_PG_RESTART")
            .expect("TASKER_TEST_PG_RESTART must name a command that restarts the test server");
        let url = fresh_pg_database().await;
        let engine = engine(&url).await;
        let t = Pattern::Linear(4).template_with(
            "restart",
            |_| "testkit.sleep".into(),
            json!({"max_attempts": 10, "backoff": "none"}),
        );
        testkit::create_tasks(&engine, &t, 300, json!({"sleep_ms": 5}))
            .await
            .unwrap();
        let workers = Workers::start(&url, 2, 10, "restart");
        let pool = pool(&url).await;
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let done: i64 = sqlx::query("SELECT count(*) FROM tasker.steps WHERE state = 'complete'")
                .fetch_one(&pool)
                .await
                .unwrap()
                .get(0);
            if done >= 100 {
                break;
            }
            assert!(Instant::now() < until, "no progress before the restart");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pool.close().await;
        let status = Command::new("sh").args(["-c", &restart]).status().unwrap();
        assert!(status.success(), "restart failed");
        // Every connection of this process died too; the engine's pool reconnects on its own.
        wait_all_terminal(&engine, Duration::from_secs(300)).await;
        workers.stop();
        let pool = self::pool(&url).await;
        assert_audit(&pool, 300, 1200).await;
    }

    /// The password of every URL form, through every CLI command that prints a URL (health, demo, worker,
    /// and the error of a form the store refuses), at debug log level. The throwaway cluster trusts local
    /// connections, so every password here is accepted and the commands really run.
    #[test]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    fn postgres_passwords_in_every_form_never_reach_the_output() {
        const SECRET: &str = "Zq9-Secret-Xy";
        let _serial = SERIAL.blocking_lock();
        let base = tokio::runtime::Runtime::new().unwrap().block_on(fresh_pg_database());
        let (head, db) = base.rsplit_once('/').expect("a database in the URL");
        let authority = head.strip_prefix("postgres://").expect("a postgres:// URL");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (hostname, port) = host.split_once(':').expect("host:port");
        let forms = [
            format!("postgres://postgres:{SECRET}@{host}/{db}"),
            format!("postgres://postgres@{host}/{db}?password={SECRET}"),
            format!("postgresql://postgres@{host}/{db}?sslmode=disable&password={SECRET}&application_name=t"),
            // Percent-encoded: the decoded form (with '@') must not leak either.
            format!("postgres://postgres:Zq9%40Secret-Xy@{host}/{db}"),
        ];
        let leaks = |out: &str| out.contains(SECRET) || out.contains("Zq9@Secret-Xy") || out.contains("Zq9%40Secret");
        let tasker = |url: &str, args: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_tasker"))
                .args(["--database-url", url, "--log-level", "debug"])
                .args(args)
                .env_remove("RUST_LOG")
                .output()
                .expect("run tasker");
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        };
        for url in &forms {
            for args in [&["health"][..], &["health", "--json"], &["demo", "--tasks", "2"]] {
                let (ok, out) = tasker(url, args);
                assert!(ok, "tasker {args:?} failed on a trusted server:\n{out}");
                assert!(!leaks(&out), "tasker {args:?} printed the password:\n{out}");
                assert!(out.contains("***"), "tasker {args:?} shows no masked URL:\n{out}");
            }
            // The worker prints its URL when it starts; stop it once it has.
            let mut worker = Command::new(env!("CARGO_BIN_EXE_tasker"))
                .args(["--database-url", url, "--log-level", "debug", "worker", "--testkit"])
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start tasker worker");
            let mut stderr = std::io::BufReader::new(worker.stderr.take().unwrap());
            let mut seen = String::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !seen.contains("stop with Ctrl-C") {
                let mut line = String::new();
                let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
                assert!(
                    n > 0 && Instant::now() < deadline,
                    "the worker never said it runs:\n{seen}"
                );
                seen.push_str(&line);
            }
            let pid = worker.id().to_string();
            assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
            let out = worker.wait_with_output().unwrap();
            // How it ends does not matter here (the TERM may come before its signal handler is installed).
            let all = format!("{seen}{rest}{}", String::from_utf8_lossy(&out.stdout));
            assert!(!leaks(&all), "the worker printed the password:\n{all}");
            assert!(all.contains("***"), "the worker shows no masked URL:\n{all}");
        }
        // A key/value connection string is not a URL the store takes: its error masks the password too.
        let kv = format!("host={hostname} port={port} user=postgres password={SECRET} dbname={db}");
        let (ok, out) = tasker(&kv, &["health"]);
        assert!(!ok, "a key/value string was accepted:\n{out}");
        assert!(!leaks(&out) && out.contains("password=***"), "{out}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn a_subscriber_hears_every_completion_of_other_processes_across_lost_connections() {
        let _serial = SERIAL.lock().await;
        let url = fresh_pg_database().await;
        let app = "events-subscriber";
        let sep = if url.contains('?') { '&' } else { '?' };
        let engine = Engine::connect(
            &format!("{url}{sep}application_name={app}"),
            EngineOptions {
                clock: Arc::new(SystemClock),
                event_capacity: 100_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut completed = engine.subscribe(EventFilter {
            names: vec!["task.completed".into()],
            ..Default::default()
        });
        let mut all = engine.subscribe(EventFilter::default());
        let diamond = Pattern::Diamond.template();
        let tasks = testkit::create_tasks(&engine, &diamond, 300, json!({})).await.unwrap();
        let want: HashSet<uuid::Uuid> = tasks.iter().map(|t| t.id).collect();
        let pool = pool(&url).await;
        // The feed reads on a connection of its own; wait until it is there to be cut.
        let until = Instant::now() + Duration::from_secs(30);
        while cut_feed_count(&pool, app).await == 0 {
            assert!(Instant::now() < until, "the event feed never connected as {app}-feed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let workers = Workers::start(&url, 2, 30, "events");
        // Cut the feed's connection four times while completions flow: at 30, 90, 150 and 210 heard.
        let mut cut: Vec<i32> = Vec::new();
        let got = completions(&mut completed, &want, Duration::from_secs(90), async |heard| {
            if heard % 60 == 30 && cut.len() < 4 {
                // The feed reconnects by itself after each cut; wait for the new connection, then cut it. A
                // terminated backend stays in pg_stat_activity until it has exited, so only a pid not cut
                // before counts as the reconnection.
                let until = Instant::now() + Duration::from_secs(30);
                loop {
                    if let Some(pid) = new_feed_backend(&pool, app, &cut).await {
                        terminate(&pool, pid).await;
                        cut.push(pid);
                        break;
                    }
                    let n = cut.len();
                    assert!(
                        Instant::now() < until,
                        "the event feed did not reconnect after {n} cuts ({heard} heard)"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
        .await;
        let cuts = cut.len();
        workers.stop();
        assert_eq!(cuts, 4, "the feed's connection was cut while events flowed");
        let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "completions heard more than once: {twice:?}");
        assert_eq!(completed.dropped(), 0);
        // The full stream of one task, worked by the other processes, has every field of its rows.
        let heard: Vec<_> = all.drain().into_iter().filter(|e| e.task_id == tasks[7].id).collect();
        assert_eq!(all.dropped(), 0);
        assert_events_match_rows(&engine, tasks[7].id, &heard).await;
        assert!(
            heard.iter().any(|e| e.name == "step.completed" && e.worker_id.as_deref().is_some_and(|w| w.starts_with("events-"))),
            "the steps were completed by the worker processes"
        );
    }

    /// A backend of the feed of `application_name` whose pid is not among `cut`.
    async fn new_feed_backend(pool: &sqlx::PgPool, application_name: &str, cut: &[i32]) -> Option<i32> {
        sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> ALL($2) ORDER BY pid LIMIT 1",
        )
        .bind(format!("{application_name}-feed"))
        .bind(cut)
        .fetch_optional(pool)
        .await
        .unwrap()
    }

    async fn terminate(pool: &sqlx::PgPool, pid: i32) {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(pool)
            .await
            .unwrap();
    }

    async fn cut_feed_count(pool: &sqlx::PgPool, application_name: &str) -> i64 {
        sqlx::query("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
            .bind(format!("{application_name}-feed"))
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
    async fn worker_processes_never_run_more_steps_of_a_key_than_its_limit() {
        use std::collections::HashMap;

        let _serial = SERIAL.lock().await;
        let url = fresh_pg_database().await;
        let engine = engine(&url).await;
        // Charges: one at a time per customer (limit 1, named), between two unkeyed steps. Exports: two at
        // a time for the one account (limit 2). Diamonds: unkeyed work that floods the claims meanwhile.
        let charges = json!({
            "namespace": "conc", "name": "charge", "version": "1.0.0",
            "steps": [
                {"name": "prepare", "handler": "testkit.noop"},
                {"name": "charge", "handler": "testkit.sleep", "depends_on": ["prepare"], "config": {"sleep_ms": 50},
                 "concurrency": {"key": "/customer", "limit": 1, "name": "charges"}},
                {"name": "notify", "handler": "testkit.noop", "depends_on": ["charge"]},
            ],
        });
        let exports = json!({
            "namespace": "conc", "name": "export", "version": "1.0.0",
            "steps": [{"name": "export", "handler": "testkit.sleep", "config": {"sleep_ms": 50},
                       "concurrency": {"key": "/account", "limit": 2}}],
        });
        engine.register_template_value(&charges).await.unwrap();
        engine.register_template_value(&exports).await.unwrap();
        // Ten customers and the account give twelve slots, more than one process runs at once (8), so the
        // keyed work is bound to spread over processes, whose claims then meet on the same keys.
        let customers: Vec<String> = (0..10).map(|c| format!("c{c}")).collect();
        for i in 0..16 {
            for c in &customers {
                engine
                    .create_task(tasker_core::engine::CreateTask::new(
                        "conc",
                        "charge",
                        json!({"customer": c, "i": i}),
                    ))
                    .await
                    .unwrap();
            }
        }
        for i in 0..40 {
            engine
                .create_task(tasker_core::engine::CreateTask::new(
                    "conc",
                    "export",
                    json!({"account": "big", "i": i}),
                ))
                .await
                .unwrap();
        }
        let diamond = Pattern::Diamond.template();
        testkit::create_tasks(&engine, &diamond, 200, json!({})).await.unwrap();

        let workers = Workers::start(&url, 3, 30, "keyed");
        wait_all_terminal(&engine, Duration::from_secs(300)).await;
        workers.stop();
        let pool = pool(&url).await;
        assert_audit(&pool, 160 + 40 + 200, 160 * 3 + 40 + 200 * 4).await;

        // The most steps of each key in progress at once, from the trail: +1 at each move into in_progress,
        // -1 at each move out of it, summed per key in the order of the writing transactions' ids. Timestamps
        // would not do: a claim stamps the time it began, which may come before a finish that committed
        // before the claim counted. Ids do: a claim that counted a finish was given its id after that
        // finish committed (a claim's first write is the claim itself), and the transitions of one
        // transaction share its id (a move out, before a move in, at the same id).
        let rows = sqlx::query(
            "WITH moves AS (
                 SELECT s.concurrency_key AS key, t.xid,
                        CASE WHEN t.to_state = 'in_progress' THEN 1 ELSE -1 END AS delta
                 FROM tasker.step_transitions t JOIN tasker.steps s ON s.id = t.step_id
                 WHERE s.concurrency_key IS NOT NULL
                   AND (t.to_state = 'in_progress' OR t.from_state = 'in_progress')
             ),
             running AS (
                 SELECT key, sum(delta) OVER (PARTITION BY key ORDER BY xid, delta ROWS UNBOUNDED PRECEDING) AS n
                 FROM moves
             )
             SELECT key, max(n)::bigint AS most, count(*) FILTER (WHERE n < 0) AS negative
             FROM running GROUP BY key ORDER BY key",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let most: HashMap<String, i64> = rows
            .iter()
            .map(|r| {
                assert_eq!(
                    r.get::<i64, _>("negative"),
                    0,
                    "a move out of in_progress before its move in"
                );
                (r.get("key"), r.get("most"))
            })
            .collect();
        let mut want: HashMap<String, i64> = customers.iter().map(|c| (format!("charges:{c}"), 1)).collect();
        want.insert("conc/export/export:big".into(), 2);
        assert_eq!(
            most, want,
            "each key ran at most its limit at once, and reached it (limit 2 included)"
        );
        // The limits held across processes, not because one process did all the keyed work.
        let keyed_workers: i64 = sqlx::query(
            "SELECT count(DISTINCT t.worker_id) FROM tasker.step_transitions t
             JOIN tasker.steps s ON s.id = t.step_id
             WHERE s.concurrency_key IS NOT NULL AND t.event = 'complete'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
        assert!(
            keyed_workers >= 2,
            "keyed steps ran on {keyed_workers} worker process(es)"
        );
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use tasker_core::engine::EngineOptions;
    use tasker_core::events::EventFilter;
    use tasker_core::testkit::{self, Pattern};
    use tasker_core::{Engine, SystemClock};

    use super::shared::{assert_events_match_rows, completions, Workers};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscriber_hears_every_completion_of_other_processes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/events.db", dir.path().display());
        let engine = Engine::connect(
            &url,
            EngineOptions {
                clock: Arc::new(SystemClock),
                event_capacity: 100_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut completed = engine.subscribe(EventFilter {
            names: vec!["task.completed".into()],
            ..Default::default()
        });
        let mut all = engine.subscribe(EventFilter::default());
        let tasks = testkit::create_tasks(&engine, &Pattern::Diamond.template(), 100, json!({}))
            .await
            .unwrap();
        let want: HashSet<uuid::Uuid> = tasks.iter().map(|t| t.id).collect();
        let workers = Workers::start(&url, 2, 30, "events");
        let got = completions(&mut completed, &want, Duration::from_secs(90), async |_| {}).await;
        workers.stop();
        let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "completions heard more than once: {twice:?}");
        assert_eq!(completed.dropped(), 0);
        let heard: Vec<_> = all.drain().into_iter().filter(|e| e.task_id == tasks[3].id).collect();
        assert_eq!(all.dropped(), 0);
        assert_events_match_rows(&engine, tasks[3].id, &heard).await;
        assert!(
            heard.iter().any(|e| e.name == "step.completed" && e.worker_id.as_deref().is_some_and(|w| w.starts_with("events-"))),
            "the steps were completed by the worker processes"
        );
    }

    /// `Engine::reopen` (what `validate_or_refresh` does after a database restart) carries the feed's cursor
    /// over: what another process committed while this engine's store was closed still reaches the
    /// subscription. A second engine on the same file stands for the other process.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscription_hears_what_was_committed_while_its_engine_was_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/reopen.db", dir.path().display());
        let options = || EngineOptions {
            clock: Arc::new(SystemClock),
            ..Default::default()
        };
        let engine = Engine::connect(&url, options()).await.unwrap();
        let other = Engine::connect(&url, options()).await.unwrap();
        let template = Pattern::Diamond.template();
        testkit::create_tasks(&other, &template, 1, json!({})).await.unwrap();
        let mut sub = engine.subscribe(EventFilter {
            names: vec!["task.created".into()],
            ..Default::default()
        });
        let first = testkit::create_tasks(&other, &template, 1, json!({})).await.unwrap();
        let e = sub.next(Duration::from_secs(10)).await.expect("the feed runs");
        assert_eq!(e.task_id, first[0].id);
        // The store breaks (closed underneath), the other process carries on, then the engine is reopened.
        engine.close().await;
        let meanwhile = testkit::create_tasks(&other, &template, 1, json!({})).await.unwrap();
        let reopened = engine.reopen(&url, options()).await.unwrap();
        let e = sub
            .next(Duration::from_secs(10))
            .await
            .expect("the task created while the engine was closed reaches the subscription after reopen");
        assert_eq!(e.task_id, meanwhile[0].id);
        reopened.close().await;
        other.close().await;
    }
}
