//! The Node binding: `npm ci` into crates/tasker-node when its node_modules is missing, the addon built once
//! per profile with cargo (into `CARGO_TARGET_DIR`, sharing the workspace's artifacts), `node --test` on
//! memory, SQLite and PostgreSQL, then the packaging smoke test: `npm pack`, the tarball installed into an
//! empty folder, a diamond workflow from plain `node` as CommonJS and as an ES module, and the strict
//! TypeScript consumer compiled against the installed types.
//! `cargo xtask package node` builds the release addon and packs it.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::pg::{Durability, PgCluster};
use crate::util;

pub(crate) const CRATE_DIR: &str = "crates/tasker-node";
/// The file name the addon is copied to beside the cdylib, in each profile's folder.
const ADDON: &str = "tasker_core.node";

/// Checks that node (18 or later, for node:test) and npm are on PATH, or says what to install.
pub fn ensure_node() -> Result<()> {
    let version = util::output(Command::new("node").arg("--version")).context(
        "node is not on PATH; install Node.js 18 or later (Debian: `apt-get install -y nodejs npm`, or nodejs.org)",
    )?;
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    if major < 18 {
        bail!(
            "node {} is too old: node:test needs Node.js 18 or later",
            version.trim()
        );
    }
    if !util::succeeds(Command::new("npm").arg("--version")) {
        bail!("npm is not on PATH; install it with Node.js (Debian: `apt-get install -y npm`)");
    }
    Ok(())
}

/// `npm ci` when node_modules is missing: the napi CLI (packaging) and TypeScript (the strict consumer test).
fn ensure_node_modules() -> Result<()> {
    if Path::new(CRATE_DIR).join("node_modules/.bin/tsc").exists() {
        return Ok(());
    }
    util::run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(CRATE_DIR),
    )
}

/// Builds the addon with cargo in `profile` (`dev` or `release`) and copies it to `<target>/<dir>/<name>`:
/// one cdylib build per profile, in the same target dir and triple as every other crate, so nothing compiles
/// twice (napi's `--platform` would build into a target-triple folder of its own).
fn build_addon(profile: &str, name: &str) -> Result<PathBuf> {
    util::run(util::cargo().args(["build", "-p", "tasker-node", "--lib", "--profile", profile]))?;
    let dir = util::target_dir()?.join(if profile == "dev" { "debug" } else { profile });
    let built = dir.join(format!("{DLL_PREFIX}tasker_node{DLL_SUFFIX}"));
    let addon = dir.join(name);
    std::fs::copy(&built, &addon)
        .with_context(|| format!("could not copy {} to {}", built.display(), addon.display()))?;
    Ok(std::fs::canonicalize(addon)?)
}

/// The `node` part of test-all.
pub fn test() -> Result<()> {
    // index.d.ts's object interfaces come from tasker-shared-ffi's table; a stale one fails before anything builds.
    crate::gen::run(true)?;
    ensure_node()?;
    ensure_node_modules()?;
    // Debug build: it shares the workspace's dev artifacts, so only this crate and napi compile here.
    let addon = build_addon("dev", ADDON)?;

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
                println!("PostgreSQL is unavailable ({e:#}); the Node suite runs on SQLite and memory only");
                None
            }
        },
    };
    let mut node = Command::new("node");
    // The spec reporter on a terminal, TAP otherwise; both end with the `# pass` / `# fail` summary.
    node.args(["--test", "__test__/"])
        .current_dir(CRATE_DIR)
        .env("TASKER_CORE_NATIVE", &addon);
    if let Some(url) = &pg_url {
        node.env("TASKER_TEST_PG_URL", url);
        if let Some(bin) = crate::python::pg_bin_dir() {
            let path = std::env::var("PATH").unwrap_or_default();
            node.env("PATH", format!("{}:{path}", bin.display()));
        }
    }
    util::run(&mut node)?;
    drop(_pg);

    // Packaging smoke test with the dev addon (a cold release build of sqlx takes minutes); `cargo xtask
    // package node` packs the release one the same way.
    let tarball = pack(&addon)?;
    smoke(&tarball)
}

/// The package's name for this machine's addon, as `napi build --platform` names it.
fn platform() -> Result<&'static str> {
    Ok(match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux-x64-gnu",
        ("linux", "aarch64") => "linux-arm64-gnu",
        ("macos", "x86_64") => "darwin-x64",
        ("macos", "aarch64") => "darwin-arm64",
        (os, arch) => bail!("no Node package target for {os}/{arch}"),
    })
}

/// Puts `addon` into the package as `tasker_core.<platform>.node` (without its debug info when `strip` is
/// there), runs `npm pack` into `<target>/npm`, and takes the copy out again, so a stale platform addon never
/// shadows a development build. Returns the tarball.
fn pack(addon: &Path) -> Result<PathBuf> {
    let packaged = Path::new(CRATE_DIR).join(format!("tasker_core.{}.node", platform()?));
    std::fs::copy(addon, &packaged).with_context(|| format!("could not copy the addon to {}", packaged.display()))?;
    if util::succeeds(Command::new("strip").arg("--version")) {
        util::run(Command::new("strip").arg("--strip-debug").arg(&packaged))?;
    }
    let out = util::target_dir()?.join("npm");
    std::fs::create_dir_all(&out)?;
    let packed = util::output(
        Command::new("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&out)
            .current_dir(CRATE_DIR),
    );
    std::fs::remove_file(&packaged)?;
    let name = packed?.lines().last().unwrap_or_default().trim().to_string();
    let tarball = out.join(&name);
    if name.is_empty() || !tarball.exists() {
        bail!("npm pack wrote no tarball into {}", out.display());
    }
    println!("packed {}", tarball.display());
    Ok(tarball)
}

/// Installs `tarball` into an empty folder with npm (offline: the package has no dependencies) and runs the
/// smoke scripts there with plain `node`, CommonJS and ES module.
fn smoke(tarball: &Path) -> Result<()> {
    let dir = util::target_dir()?.join("node-smoke");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("package.json"), "{ \"private\": true }\n")?;
    util::run(
        Command::new("npm")
            .args(["install", "--offline", "--no-audit", "--no-fund", "--silent"])
            .arg(tarball)
            .current_dir(&dir),
    )?;
    for script in ["diamond.cjs", "diamond.mjs"] {
        std::fs::copy(
            Path::new(CRATE_DIR).join("__test__/smoke").join(script),
            dir.join(script),
        )?;
        util::run(
            Command::new("node")
                .arg(script)
                .current_dir(&dir)
                .env_remove("TASKER_CORE_NATIVE"),
        )?;
    }
    // The strict TypeScript consumer of the suite, now against the installed package's types.
    let consumer = std::fs::read_to_string(Path::new(CRATE_DIR).join("__test__/consumer.ts"))?;
    std::fs::write(
        dir.join("consumer.ts"),
        consumer.replace("'../index'", "'@tasker/core'"),
    )?;
    let tsc = std::fs::canonicalize(Path::new(CRATE_DIR).join("node_modules/.bin/tsc"))?;
    util::run(
        Command::new(tsc)
            .args(["--strict", "--noEmit", "--target", "es2022", "--module", "commonjs"])
            .args(["--lib", "es2022,esnext.disposable,dom", "consumer.ts"])
            .current_dir(&dir),
    )
}

/// The release addon, built (once per change) and copied beside the cdylib; `cargo xtask bench --bindings`
/// loads it through `TASKER_CORE_NATIVE`.
pub fn build_release_addon() -> Result<PathBuf> {
    ensure_node()?;
    build_addon("release", ADDON)
}

/// The release addon [`build_release_addon`] wrote, or an error saying it was not built.
pub fn release_addon() -> Result<PathBuf> {
    let addon = util::target_dir()?.join("release").join(ADDON);
    std::fs::canonicalize(&addon).with_context(|| format!("no release addon at {}", addon.display()))
}

/// `cargo xtask package node`: the release addon packed into `<target>/npm/tasker-core-<version>.tgz`.
pub fn package() -> Result<()> {
    let addon = build_release_addon()?;
    let tarball = pack(&addon)?;
    println!("tarball: {}", tarball.display());
    Ok(())
}
