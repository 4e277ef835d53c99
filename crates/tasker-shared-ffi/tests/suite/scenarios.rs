//! Every scenario of tests/scenarios/ replayed through the FFI client and worker session, on every store.

use tasker_shared_ffi::scenario::{self, Scenario};

use super::support::{scenario_dir, sqlite_url};

fn all() -> Vec<Scenario> {
    let files = scenario::scenario_files(&scenario_dir()).expect("list scenarios");
    assert!(
        files.len() >= 12,
        "expected at least 12 scenarios, found {}",
        files.len()
    );
    files
        .iter()
        .map(|f| Scenario::load(f).unwrap_or_else(|e| panic!("{e}: {:?}", e.causes)))
        .collect()
}

/// Replays every scenario, each on a fresh store from `url_for`, and fails with every failure at once.
pub fn replay_all(mut url_for: impl FnMut(&Scenario) -> (String, Option<tempfile::TempDir>)) {
    let mut failures = Vec::new();
    let scenarios = all();
    for s in &scenarios {
        let (url, _guard) = url_for(s);
        if let Err(f) = scenario::run(s, &url) {
            failures.push(f.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        scenarios.len(),
        failures.join("\n")
    );
}

#[test]
fn every_scenario_passes_on_memory() {
    replay_all(|_| ("memory:".to_string(), None));
}

#[test]
fn every_scenario_passes_on_sqlite() {
    replay_all(|_| {
        let (url, dir) = sqlite_url();
        (url, Some(dir))
    });
}

#[test]
fn every_scenario_passes_on_sqlite_in_memory() {
    replay_all(|_| ("sqlite::memory:".to_string(), None));
}

#[test]
fn scenario_names_match_their_files() {
    for f in scenario::scenario_files(&scenario_dir()).unwrap() {
        let s = Scenario::load(&f).unwrap();
        assert_eq!(
            Some(s.name.as_str()),
            f.file_stem().and_then(|s| s.to_str()),
            "{}",
            f.display()
        );
        assert!(!s.description.is_empty(), "{} has no description", f.display());
    }
}

#[test]
fn every_scenario_fails_loudly_when_its_expectations_are_wrong() {
    for s in all() {
        for (alias, want) in &s.expect.tasks {
            let mut wrong_state = s.clone();
            wrong_state.expect.tasks.get_mut(alias).unwrap().state = Some("bogus".into());
            let f = scenario::run(&wrong_state, "memory:").expect_err(&format!("{}: a wrong state passed", s.name));
            assert!(
                f.problems
                    .iter()
                    .any(|p| p.contains(&format!("expect.tasks.{alias}.state"))),
                "{f}"
            );
            if let Some(events) = &want.events {
                let mut short = s.clone();
                let mut fewer = events.clone();
                fewer.pop();
                short.expect.tasks.get_mut(alias).unwrap().events = Some(fewer);
                let f = scenario::run(&short, "memory:").expect_err(&format!("{}: missing events passed", s.name));
                assert!(
                    f.problems.iter().any(|p| p.contains(".events: sequences differ")),
                    "{f}"
                );
            }
        }
    }
}
