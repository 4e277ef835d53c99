//! `cargo xtask bench`: builds the release binaries and runs tasker-bench, which writes docs/benchmarks.md.

use anyhow::{bail, Result};

use crate::pg::{Durability, PgCluster};
use crate::util;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

impl Store {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "sqlite" => Ok(Store::Sqlite),
            "postgres" => Ok(Store::Postgres),
            other => bail!("--store expects sqlite or postgres, found `{other}`"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgres",
        }
    }
}

pub struct Options {
    pub store: Store,
    pub quick: bool,
}

pub fn run(options: &Options) -> Result<()> {
    // Both binaries: the PostgreSQL bench spawns `tasker worker` processes from the `tasker` binary next to
    // `tasker-bench`, and `cargo run --bin tasker-bench` alone would leave that one stale or missing.
    util::run(util::cargo().args(["build", "--release", "--locked", "-p", "tasker-core", "--bins"]))?;
    // Durable: numbers taken with fsync off would flatter every write path.
    let pg = match options.store {
        Store::Postgres => Some(PgCluster::start(Durability::Durable)?),
        Store::Sqlite => None,
    };
    let mut cmd = util::cargo();
    cmd.args([
        "run",
        "--release",
        "--locked",
        "-p",
        "tasker-core",
        "--bin",
        "tasker-bench",
        "--",
    ]);
    cmd.args(["--store", options.store.name(), "--out", "docs/benchmarks.md"]);
    if options.quick {
        cmd.arg("--quick");
    }
    if let Some(pg) = &pg {
        cmd.args(["--database-url", pg.url()]);
    }
    // The cluster, if any, is stopped when `pg` drops, whether the bench succeeded or not.
    util::run(&mut cmd)
}
