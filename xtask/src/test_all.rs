//! `cargo xtask test-all`: every check the project has, one part at a time, then a summary table.

use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use crate::pg::{Durability, PgCluster};
use crate::util::{self, Row, Status};

pub struct Part {
    pub name: &'static str,
    pub description: &'static str,
    run: fn() -> Result<()>,
}

/// The parts in the order they run: cheap checks first, so a formatting slip shows up in seconds.
pub const PARTS: &[Part] = &[
    Part {
        name: "fmt",
        description: "rustfmt check of every crate",
        run: fmt,
    },
    Part {
        name: "clippy",
        description: "clippy on all targets, warnings denied",
        run: clippy,
    },
    Part {
        name: "wasm",
        description: "the WASM package: tasker-core checked for wasm32, shared-ffi's tests without its runtime, the adapter's \
                      clippy and wasm-bindgen-test tests, node --test (API, every scenario) on the wasm build, tarball smoke test",
        run: wasm,
    },
    Part {
        name: "rust",
        description: "cargo test of the whole workspace",
        run: rust,
    },
    Part {
        name: "postgres",
        description: "the conformance suite, store tests and multi-process tests on a throwaway PostgreSQL",
        run: postgres,
    },
    Part {
        name: "python",
        description:
            "the Python binding: stub freshness, maturin build, pytest (scenarios on memory/SQLite/PostgreSQL), wheel smoke test",
        run: crate::python::test,
    },
    Part {
        name: "ruby",
        description: "the Ruby gem: signature freshness, RSpec (scenarios and specs) on SQLite and PostgreSQL, then both \
                      gems checked and installed (platform gem without cargo, source gem compiled)",
        run: crate::ruby::test,
    },
    Part {
        name: "node",
        description: "the Node package: type freshness, one debug addon build, node --test (scenarios on memory/SQLite/PostgreSQL)",
        run: crate::node::test,
    },
    Part {
        name: "jvm",
        description: "the Java binding: record freshness, one debug cdylib build, mvn test (JUnit 5: scenarios on \
                      memory/SQLite/PostgreSQL), then the jar installed into a temporary repository and run by a \
                      separate Maven project",
        run: crate::jvm::test,
    },
];

pub struct Options {
    pub only: Option<Vec<String>>,
    pub fail_fast: bool,
}

pub fn run(options: &Options) -> Result<()> {
    let parts = select(options.only.as_deref())?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for part in parts {
        if options.fail_fast && !failures.is_empty() {
            rows.push(Row {
                name: part.name,
                status: Status::Skipped,
                seconds: None,
            });
            continue;
        }
        println!("\n==> {}: {}", part.name, part.description);
        let started = Instant::now();
        // A panicking part must not take the summary of the others down with it.
        let result = panic::catch_unwind(AssertUnwindSafe(part.run))
            .unwrap_or_else(|_| Err(anyhow!("panicked; see the message above")));
        let seconds = Some(started.elapsed().as_secs_f64());
        let status = match result {
            Ok(()) => Status::Ok,
            Err(err) => {
                eprintln!("{} FAILED: {err:#}", part.name);
                failures.push(format!("{}: {err:#}", part.name));
                Status::Failed
            }
        };
        rows.push(Row {
            name: part.name,
            status,
            seconds,
        });
    }
    util::print_summary(&rows);
    if failures.is_empty() {
        return Ok(());
    }
    eprintln!();
    for failure in &failures {
        eprintln!("{failure}");
    }
    bail!("{} of {} parts failed", failures.len(), rows.len())
}

/// The parts named by `--only`, in table order; all parts without it.
fn select(only: Option<&[String]>) -> Result<Vec<&'static Part>> {
    let Some(names) = only else {
        return Ok(PARTS.iter().collect());
    };
    let names: Vec<&str> = names
        .iter()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .collect();
    let valid = || PARTS.iter().map(|part| part.name).collect::<Vec<_>>().join(", ");
    if names.is_empty() {
        bail!("--only expects part names, found none; valid parts: {}", valid());
    }
    if let Some(unknown) = names.iter().find(|name| !PARTS.iter().any(|part| part.name == **name)) {
        bail!("unknown part `{unknown}`; valid parts: {}", valid());
    }
    Ok(PARTS.iter().filter(|part| names.contains(&part.name)).collect())
}

fn fmt() -> Result<()> {
    ensure_cargo_subcommand("fmt", "rustfmt")?;
    util::run(util::cargo().args(["fmt", "--all", "--", "--check"]))
}

fn clippy() -> Result<()> {
    ensure_cargo_subcommand("clippy", "clippy")?;
    // The workspace includes tasker-ruby, whose build needs Ruby's headers and libclang.
    crate::ruby::ensure_toolchain()?;
    util::run(util::cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))
}

fn rust() -> Result<()> {
    crate::ruby::ensure_toolchain()?;
    // CARGO_TERM_COLOR is left alone so CI settings and terminal detection both keep working.
    util::run(util::cargo().args(["test", "--workspace"]).env("RUST_BACKTRACE", "1"))
}

const WASM_TARGET: &str = crate::wasm::TARGET;

/// The layers a WASM adapter stands on: tasker-core with no default features must build for wasm32 (the
/// engine and the memory store, with no sqlx and no Tokio runtime), and tasker-shared-ffi without its runtime
/// (`native`) must build and run its async forms in place, on the host for now.
fn wasm() -> Result<()> {
    ensure_wasm_target()?;
    util::run(util::cargo().args([
        "check",
        "-p",
        "tasker-core",
        "--no-default-features",
        "--target",
        WASM_TARGET,
    ]))?;
    util::run(util::cargo().args(["test", "-p", "tasker-shared-ffi", "--no-default-features", "--lib"]))?;
    crate::wasm::test()
}

/// Adds the wasm32 target with rustup when it is missing, or says exactly how to get it.
pub fn ensure_wasm_target() -> Result<()> {
    let installed = || {
        util::output(Command::new("rustup").args(["target", "list", "--installed"]))
            .is_ok_and(|out| lists_target(&out, WASM_TARGET))
    };
    if installed() {
        return Ok(());
    }
    println!("the {WASM_TARGET} target is missing; installing it with rustup");
    let added = util::run(Command::new("rustup").args(["target", "add", WASM_TARGET]));
    if added.is_ok() && installed() {
        return Ok(());
    }
    bail!(
        "the {WASM_TARGET} target is not installed and `rustup target add {WASM_TARGET}` did not install it; \
         run that command where static.rust-lang.org is reachable (no rustup? get it from https://rustup.rs). \
         Without rustup, Debian's toolchain builds wasm32 too: `apt-get install -y --no-install-recommends \
         rustc-web cargo-web rust-web-src rust-web-llvm lld-22`, then `RUSTC=/usr/bin/rustc \
         RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 /usr/bin/cargo check -p tasker-core --no-default-features \
         --target {WASM_TARGET} -Zbuild-std=std,panic_abort`"
    )
}

/// Whether `rustup target list --installed` output names `target`.
fn lists_target(installed: &str, target: &str) -> bool {
    installed.lines().any(|line| line.trim() == target)
}

/// Every test that needs PostgreSQL is `#[ignore]`d with a reason and has `postgres` in its path, so this
/// part runs exactly those, against a cluster it starts and stops (even when a test fails).
fn postgres() -> Result<()> {
    let pg = PgCluster::start(Durability::Fast)?;
    let mut cmd = util::cargo();
    cmd.args([
        "test",
        "-p",
        "tasker-core",
        "-p",
        "tasker-shared-ffi",
        "--lib",
        "--tests",
        "--",
        "--include-ignored",
        "postgres",
    ])
    .env("TASKER_TEST_PG_URL", pg.url())
    .env("RUST_BACKTRACE", "1");
    cmd.envs(pg.outage_env());
    if pg.restart_command().is_none() {
        // A server named by DATABASE_URL is not ours to stop or restart.
        println!("SKIPPED: the server restart and outage tests (the server named by DATABASE_URL is not ours)");
        cmd.args(["--skip", "restart", "--skip", "outage"]);
    }
    util::run(&mut cmd)
}

/// Installs a missing rustup component, or says exactly how to get it when that is impossible.
fn ensure_cargo_subcommand(subcommand: &str, component: &str) -> Result<()> {
    let available = || util::succeeds(util::cargo().args([subcommand, "--version"]));
    if available() {
        return Ok(());
    }
    println!("`cargo {subcommand}` is missing; installing the {component} component");
    let installed = util::run(Command::new("rustup").args(["component", "add", component]));
    if installed.is_ok() && available() {
        return Ok(());
    }
    bail!(
        "`cargo {subcommand}` is not available; install it with `rustup component add {component}` \
         (no rustup? get it from https://rustup.rs)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(only: &[&str]) -> Result<Vec<&'static str>> {
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        Ok(select(Some(&only))?.iter().map(|part| part.name).collect())
    }

    #[test]
    fn the_wasm_target_is_found_in_rustup_output() {
        let out = "x86_64-unknown-linux-gnu\nwasm32-unknown-unknown\n";
        assert!(lists_target(out, WASM_TARGET));
        assert!(!lists_target("x86_64-unknown-linux-gnu\nwasm32-wasip1\n", WASM_TARGET));
        assert!(!lists_target("", WASM_TARGET));
    }

    #[test]
    fn only_keeps_table_order() {
        assert_eq!(names(&["rust", "fmt"]).unwrap(), ["fmt", "rust"]);
    }

    #[test]
    fn only_rejects_unknown_parts_and_lists_valid_ones() {
        let err = names(&["fmt", "cobol"]).unwrap_err().to_string();
        assert!(
            err.contains("`cobol`") && PARTS.iter().all(|part| err.contains(part.name)),
            "{err}"
        );
        assert!(names(&[""]).is_err());
    }
}
