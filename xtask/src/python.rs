//! The Python binding: a private venv with maturin and pytest, the extension built into it, pytest on SQLite
//! and PostgreSQL, and the wheel packaging smoke test. `cargo xtask package python` builds the release wheel.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::pg::{Durability, PgCluster};
use crate::util;

const CRATE_DIR: &str = "crates/tasker-python";
/// Under target/ so it is gitignored and shared by every checkout's build, like the cargo artifacts.
const VENV: &str = "target/py-venv";
const SMOKE_VENV: &str = "target/py-smoke-venv";
const WHEELS: &str = "target/wheels";

fn venv_bin(venv: &str, tool: &str) -> PathBuf {
    Path::new(venv).join("bin").join(tool)
}

/// Creates the venv and installs maturin and pytest into it from PyPI, once.
fn ensure_venv() -> Result<()> {
    if !util::succeeds(Command::new("python3").arg("--version")) {
        bail!("python3 is not on PATH; install Python 3.9 or later (with the venv module)");
    }
    if !venv_bin(VENV, "python").exists() {
        util::run(Command::new("python3").args(["-m", "venv", VENV]))?;
    }
    if !venv_bin(VENV, "maturin").exists() || !venv_bin(VENV, "pytest").exists() {
        util::run(Command::new(venv_bin(VENV, "pip")).args(["install", "--quiet", "maturin>=1.16,<2", "pytest"]))?;
    }
    Ok(())
}

/// A command from the venv, with the venv active (maturin develop installs into `VIRTUAL_ENV`).
fn in_venv(tool: &str) -> Result<Command> {
    let root = std::env::current_dir()?;
    let mut cmd = Command::new(root.join(venv_bin(VENV, tool)));
    cmd.env("VIRTUAL_ENV", root.join(VENV));
    Ok(cmd)
}

/// The newest PostgreSQL bin dir, for `psql` (the pytest PostgreSQL replay creates one database per scenario).
pub fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("psql").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

/// The `python` part of test-all.
pub fn test() -> Result<()> {
    // The stub's object types come from tasker-shared-ffi's table; a stale one fails before anything builds.
    crate::gen::run(true)?;
    ensure_venv()?;
    // Debug build: it shares the workspace's dev artifacts, so only this crate and pyo3 compile here.
    util::run(in_venv("maturin")?.args(["develop", "--quiet"]).current_dir(CRATE_DIR))?;

    // PostgreSQL: the URL given, or a throwaway cluster of our own, stopped when `_pg` drops.
    let mut _pg = None;
    let pg_url = match std::env::var("TASKER_TEST_PG_URL") {
        Ok(url) => Some(url),
        Err(_) => match PgCluster::start(Durability::Fast) {
            Ok(pg) => {
                let url = pg.url().to_string();
                _pg = Some(pg);
                Some(url)
            }
            Err(e) => {
                println!("PostgreSQL is unavailable ({e:#}); the Python suite runs on SQLite and memory only");
                None
            }
        },
    };
    let mut pytest = in_venv("pytest")?;
    pytest
        .args(["-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(CRATE_DIR);
    if let Some(pg) = &_pg {
        pytest.envs(pg.outage_env());
    }
    if let Some(url) = &pg_url {
        pytest.env("TASKER_TEST_PG_URL", url);
        if let Some(bin) = pg_bin_dir() {
            let path = std::env::var("PATH").unwrap_or_default();
            pytest.env("PATH", format!("{}:{path}", bin.display()));
        }
    }
    let shown = util::display(&pytest);
    println!("$ {shown}");
    let status = pytest.status().with_context(|| format!("could not start `{shown}`"))?;
    match status.code() {
        Some(0) => {}
        // pytest's "no tests were collected": the suite exists, so this means it was not found.
        Some(5) => bail!("pytest collected no tests in {CRATE_DIR}/tests"),
        _ => bail!("`{shown}` failed: {status}"),
    }
    drop(_pg);

    // Packaging smoke test. The dev profile keeps it within the test budget: a cold release build of sqlx
    // takes minutes. `cargo xtask package python` builds the release wheel the same way.
    let wheel = build_wheel(&["--profile", "dev"])?;
    smoke(&wheel)
}

/// Builds a wheel into target/wheels with the given maturin profile arguments and returns its path.
fn build_wheel(profile: &[&str]) -> Result<PathBuf> {
    let root = std::env::current_dir()?;
    let out = root.join(WHEELS);
    let _ = std::fs::remove_dir_all(&out);
    util::run(
        in_venv("maturin")?
            .args(["build", "--quiet"])
            .args(profile)
            .args(["--compatibility", "linux", "--out"])
            .arg(&out)
            .current_dir(CRATE_DIR),
    )?;
    let wheel = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("maturin wrote no wheel into {}", out.display()))?;
    println!("built {}", wheel.display());
    Ok(wheel)
}

/// Installs `wheel` into a fresh venv with pip and runs a diamond workflow from plain `python` there.
fn smoke(wheel: &Path) -> Result<()> {
    let root = std::env::current_dir()?;
    let _ = std::fs::remove_dir_all(SMOKE_VENV);
    util::run(Command::new("python3").args(["-m", "venv", SMOKE_VENV]))?;
    // --no-index: the wheel has no dependencies, so nothing may come from anywhere else.
    util::run(
        Command::new(venv_bin(SMOKE_VENV, "pip"))
            .args(["install", "--quiet", "--no-index"])
            .arg(wheel),
    )?;
    let script = root.join(CRATE_DIR).join("tests/smoke_diamond.py");
    // Run from inside the fresh venv so the source tree is not on sys.path.
    util::run(
        Command::new(root.join(venv_bin(SMOKE_VENV, "python")))
            .arg(script)
            .current_dir(SMOKE_VENV),
    )
}

/// Installs the release build of the extension into the venv, for `cargo xtask bench --bindings`; the next
/// `test-all --only python` puts the debug build back.
pub fn develop_release() -> Result<()> {
    ensure_venv()?;
    util::run(
        in_venv("maturin")?
            .args(["develop", "--release", "--quiet"])
            .current_dir(CRATE_DIR),
    )
}

/// The venv's interpreter as an absolute path, so it can run with another working directory.
pub fn venv_python() -> Result<PathBuf> {
    Ok(std::env::current_dir()?.join(venv_bin(VENV, "python")))
}

/// `cargo xtask package python`: the release abi3 wheel (CPython >= 3.9) in target/wheels.
pub fn package() -> Result<()> {
    ensure_venv()?;
    let wheel = build_wheel(&["--release"])?;
    println!("wheel: {}", wheel.display());
    Ok(())
}
