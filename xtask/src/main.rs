//! Developer tasks for the Tasker Core workspace, run as `cargo xtask <task>`.
//!
//! This file only parses arguments and dispatches; each task lives in its own module.

mod bench;
mod bindings_bench;
mod gen;
mod jvm;
mod node;
mod pg;
mod python;
mod ruby;
mod test_all;
// The one masking of passwords in URLs, compiled from tasker-core's own file: depending on tasker-core (even
// without default features) would add its whole dependency tree to every fresh `cargo xtask` build.
// xtask only masks; `secrets` and `scrub` serve the stores.
#[allow(dead_code)]
#[path = "../../crates/tasker-core/src/url.rs"]
mod url;
mod util;
mod wasm;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // Every task uses paths relative to the workspace root, whichever directory cargo was started from.
    let root = workspace_root()?;
    std::env::set_current_dir(&root).with_context(|| format!("could not enter {}", root.display()))?;

    let mut args = Args(std::env::args().skip(1).collect());
    if args.flag("--help") || args.flag("-h") {
        print_help();
        return Ok(());
    }
    let Some(task) = args.next() else {
        print_help();
        bail!("no task given");
    };
    match task.as_str() {
        "test-all" => {
            let only = args
                .value("--only")?
                .map(|list| list.split(',').map(|s| s.trim().to_owned()).collect());
            let fail_fast = args.flag("--fail-fast");
            // Continuing is the default; the flag exists so scripts can say so explicitly.
            let keep_going = args.flag("--keep-going");
            if fail_fast && keep_going {
                bail!("--fail-fast and --keep-going exclude each other");
            }
            args.finish()?;
            test_all::run(&test_all::Options { only, fail_fast })
        }
        "bench" => {
            let store = match args.value("--store")? {
                Some(store) => bench::Store::parse(&store)?,
                None if args.0.iter().any(|a| a == "--bindings") => bench::Store::Postgres,
                None => bench::Store::Sqlite,
            };
            let quick = args.flag("--quick");
            let bindings = args.flag("--bindings");
            args.finish()?;
            if bindings {
                // The bindings bench is PostgreSQL only (the aims are for it), and runs on its own so its
                // builds and cluster do not stretch the store benches.
                if store != bench::Store::Postgres {
                    bail!("--bindings runs on PostgreSQL; give --store postgres or no --store");
                }
                return bindings_bench::run(quick);
            }
            bench::run(&bench::Options { store, quick })
        }
        "gen" => {
            let check = args.flag("--check");
            args.finish()?;
            gen::run(check)
        }
        "package" => {
            let Some(binding) = args.next() else {
                bail!("package expects a binding: ruby, python, node, jvm or wasm");
            };
            args.finish()?;
            match binding.as_str() {
                "ruby" => ruby::package().map(|gems| {
                    println!("source gem:   {}", gems.source.display());
                    println!("platform gem: {}", gems.platform.display());
                }),
                "python" => python::package(),
                "node" => node::package(),
                "jvm" => jvm::package(),
                "wasm" => wasm::package(),
                other => bail!("cannot package `{other}`; known: ruby, python, node, jvm, wasm"),
            }
        }
        "serve-example" => {
            let port = match args.value("--port")? {
                Some(p) => p
                    .parse()
                    .with_context(|| format!("--port expects a port number, found {p:?}"))?,
                None => 4173,
            };
            args.finish()?;
            wasm::serve_example(port)
        }
        // Hidden: it exists to prove pg.rs works on a new machine, not for daily use.
        "pg-smoke" => {
            let durability = if args.flag("--durable") {
                pg::Durability::Durable
            } else {
                pg::Durability::Fast
            };
            args.finish()?;
            pg::smoke(durability)
        }
        other => {
            print_help();
            bail!("unknown task `{other}`")
        }
    }
}

fn print_help() {
    println!(
        "Usage: cargo xtask <task> [options]

Tasks:
  test-all [--only PART,...] [--keep-going | --fail-fast]
      Run every check and print a summary table. By default a failing part does not
      stop the run; --fail-fast skips the parts after the first failure.
  bench [--store sqlite|postgres] [--quick]
      Run tasker-bench in release mode and write docs/benchmarks.md. With
      --store postgres a throwaway durable PostgreSQL cluster is started unless
      DATABASE_URL points at a PostgreSQL server.
  bench --bindings [--quick]
      Build the Ruby extension and the Python module in release, run their workers
      with no-op handlers on a durable PostgreSQL next to the Rust in-process worker,
      and write the bindings section of docs/benchmarks.md.
  gen [--check]
      Write the object types of the host type files (.pyi, .rbs, .d.ts) and of docs/bindings.md
      and the Java records
      from tasker-shared-ffi's object table; --check only fails when one is stale.
  package ruby
      Build the tasker_core gems into target/ruby-gem/: the source gem (crates vendored;
      cargo runs at install) and the x86_64-linux platform gem (release extension inside).
  package python
      Build the release abi3 wheel of the Python binding into target/wheels.
  package node
      Build the release Node addon and `npm pack` @tasker/core into <target>/npm.
  package jvm
      Build the release JVM library into the io.tasker:tasker-core jar, `mvn install` it into a
      temporary local repository and run a separate Maven project that names only its coordinate.
  package wasm
      Build the release wasm module, `npm pack` @tasker/wasm into <target>/npm, install the
      tarball into an empty folder and run a workflow there; prints the .wasm size.
  serve-example [--port 4173]
      Build the wasm module and the page in examples/browser/ (validate, draw and run a
      workflow in the browser), and serve it on http://127.0.0.1:PORT/ until interrupted.

Parts of test-all, in order:"
    );
    for part in test_all::PARTS {
        println!("  {:<10} {}", part.name, part.description);
    }
}

/// The arguments not yet consumed; a tiny parser, because two tasks do not justify a dependency.
struct Args(Vec<String>);

impl Args {
    fn next(&mut self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|arg| arg != name);
        self.0.len() != before
    }

    /// Takes `--name value` or `--name=value`.
    fn value(&mut self, name: &str) -> Result<Option<String>> {
        let prefix = format!("{name}=");
        if let Some(i) = self.0.iter().position(|arg| arg.starts_with(&prefix)) {
            return Ok(Some(self.0.remove(i)[prefix.len()..].to_owned()));
        }
        let Some(i) = self.0.iter().position(|arg| arg == name) else {
            return Ok(None);
        };
        if i + 1 >= self.0.len() || self.0[i + 1].starts_with("--") {
            bail!("{name} expects a value, found none");
        }
        self.0.remove(i);
        Ok(Some(self.0.remove(i)))
    }

    fn finish(self) -> Result<()> {
        match self.0.first() {
            None => Ok(()),
            Some(arg) => bail!("unexpected argument `{arg}`; see `cargo xtask --help`"),
        }
    }
}

/// The checkout `cargo xtask` was started in: the nearest directory at or above the current one that holds
/// `xtask/Cargo.toml` and a `Cargo.toml`, else the checkout this binary was built from. Checkouts that share
/// one target dir (git worktrees with `CARGO_TARGET_DIR` set) share one `xtask` binary too, which cargo may
/// reuse as built from another checkout; the compile-time path alone would then test that other checkout.
fn workspace_root() -> Result<std::path::PathBuf> {
    let here = std::env::current_dir().context("could not read the current directory")?;
    if let Some(root) = here
        .ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join("xtask/Cargo.toml").is_file())
    {
        return Ok(root.to_path_buf());
    }
    Ok(Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::Args;

    fn args(list: &[&str]) -> Args {
        Args(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn value_accepts_both_spellings() {
        assert_eq!(
            args(&["--only", "fmt"]).value("--only").unwrap().as_deref(),
            Some("fmt")
        );
        assert_eq!(
            args(&["--only=fmt,rust"]).value("--only").unwrap().as_deref(),
            Some("fmt,rust")
        );
        assert!(args(&["--only"]).value("--only").is_err());
        assert!(args(&["--only", "--quick"]).value("--only").is_err());
    }

    #[test]
    fn leftovers_are_an_error() {
        let mut a = args(&["--quick", "--bogus"]);
        assert!(a.flag("--quick"));
        assert!(a.finish().is_err());
    }
}
