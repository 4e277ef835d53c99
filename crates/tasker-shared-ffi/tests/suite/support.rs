//! Helpers shared by the suite.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `tests/scenarios/` at the workspace root.
pub fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

/// A fresh SQLite file store; the directory lives as long as the returned guard.
pub fn sqlite_url() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/tasker.db", dir.path().display());
    (url, dir)
}

/// Polls `cond` until it holds, failing loudly with `what` once `within` has passed. For conditions that
/// background tasks bring about, where there is nothing to wait on directly.
pub fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(5));
    }
}
