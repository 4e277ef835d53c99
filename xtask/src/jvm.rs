//! The JVM binding: the cdylib built once per profile with cargo (into `CARGO_TARGET_DIR`, sharing the
//! workspace's artifacts), `mvn -B test` (JUnit 5 through Surefire: scenarios on memory, SQLite and a
//! throwaway PostgreSQL) with the dev library, then the packaging smoke test: the jar built with the library
//! under `natives/linux-x86_64/`, `mvn install` into a temporary local repository, and a separate Maven project
//! that names only `io.tasker:tasker-core` running a diamond workflow with plain `java`.
//! `cargo xtask package jvm` does the same with the release library.
//!
//! Maven's own files stay under the target dir: its local repository (`<target>/m2`, plugins and JUnit, kept
//! between runs) and its build dirs (`<target>/jvm/<profile>`).

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::pg::{Durability, PgCluster};
use crate::util;

const CRATE_DIR: &str = "crates/tasker-jvm";
/// The artifact's version, as pom.xml declares it.
const VERSION: &str = "0.1.0";
/// The folder of the jar that holds this machine's library (Native.java's `platform()`).
const PLATFORM: &str = "linux-x86_64";

/// The major version `java -version` / `javac -version` print (`"17.0.15"` → 17, `1.8.0` → 8).
fn major(text: &str) -> u32 {
    let version = text
        .split(['"', ' ', '\n'])
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .unwrap_or("0");
    let mut parts = version.split(['.', '-', '+']);
    let first: u32 = parts.next().unwrap_or("0").parse().unwrap_or(0);
    if first == 1 {
        parts.next().unwrap_or("0").parse().unwrap_or(0)
    } else {
        first
    }
}

/// Checks that java and javac 17 or later and Maven are on PATH, or says what to install.
fn ensure_java() -> Result<()> {
    const INSTALL: &str =
        "install a JDK 17 or later and Maven (Debian: `apt-get install -y openjdk-17-jdk-headless maven`)";
    for tool in ["java", "javac"] {
        let out = Command::new(tool)
            .arg("-version")
            .output()
            .with_context(|| format!("{tool} is not on PATH; {INSTALL}"))?;
        let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        if major(&text) < 17 {
            bail!(
                "{tool} is too old ({}); {INSTALL}",
                text.lines().next().unwrap_or("").trim()
            );
        }
    }
    if !util::succeeds(Command::new("mvn").arg("-v")) {
        bail!("mvn is not on PATH; {INSTALL}");
    }
    Ok(())
}

/// Builds the cdylib in `profile` (`dev` or `release`); returns its path.
fn build_library(profile: &str) -> Result<PathBuf> {
    util::run(util::cargo().args(["build", "-p", "tasker-jvm", "--lib", "--profile", profile]))?;
    let dir = util::target_dir()?.join(if profile == "dev" { "debug" } else { profile });
    Ok(std::fs::canonicalize(
        dir.join(format!("{DLL_PREFIX}tasker_jvm{DLL_SUFFIX}")),
    )?)
}

/// `mvn -B` in crates/tasker-jvm with the target dir's local repository and a build dir per profile.
fn maven(repo: &Path, profile: &str) -> Result<Command> {
    let mut mvn = Command::new("mvn");
    mvn.args(["-B", "--no-transfer-progress"])
        .arg(format!("-Dmaven.repo.local={}", repo.display()))
        .arg(format!(
            "-Dtasker.build.dir={}",
            util::target_dir()?.join("jvm").join(profile).display()
        ))
        .current_dir(CRATE_DIR)
        .env_remove("TASKER_JVM_NATIVE");
    Ok(mvn)
}

fn m2() -> Result<PathBuf> {
    Ok(util::target_dir()?.join("m2"))
}

/// The `jvm` part of test-all.
pub fn test() -> Result<()> {
    // The Java records come from tasker-shared-ffi's table; a stale one fails before anything builds.
    crate::gen::run(true)?;
    ensure_java()?;
    let library = build_library("dev")?;

    // PostgreSQL: the URL given, or a throwaway cluster of our own, stopped when `_pg` drops.
    let mut _pg = None;
    let pg_url = match std::env::var("TASKER_TEST_PG_URL") {
        Ok(url) => url,
        Err(_) => {
            let pg =
                PgCluster::start(Durability::Fast).context("the JUnit suite replays the scenarios on PostgreSQL")?;
            let url = pg.url().to_string();
            _pg = Some(pg);
            url
        }
    };
    let mut mvn = maven(&m2()?, "dev")?;
    mvn.arg(format!("-Dtasker.native.library={}", library.display()))
        .arg("test")
        .env("TASKER_TEST_PG_URL", &pg_url);
    if let Some(bin) = crate::python::pg_bin_dir() {
        let path = std::env::var("PATH").unwrap_or_default();
        mvn.env("PATH", format!("{}:{path}", bin.display()));
    }
    util::run(&mut mvn)?;
    drop(_pg);

    // Packaging smoke test with the dev library (a cold release build takes minutes); `cargo xtask package
    // jvm` does the same with the release one.
    let jar = install(&library, "dev")?;
    println!("smoke test passed with {}", jar.display());
    Ok(())
}

/// Builds the jar around `library` (its debug info stripped when `strip` is there), installs it into a new
/// temporary local repository, and runs the consumer project of `smoke/` against it. Returns the jar.
fn install(library: &Path, profile: &str) -> Result<PathBuf> {
    let target = util::target_dir()?;
    let staging = target.join("jvm").join(format!("natives-{profile}"));
    let dir = staging.join("natives").join(PLATFORM);
    std::fs::create_dir_all(&dir)?;
    let staged = dir.join("libtasker_jvm.so");
    std::fs::copy(library, &staged).with_context(|| format!("could not stage {}", library.display()))?;
    if util::succeeds(Command::new("strip").arg("--version")) {
        util::run(Command::new("strip").arg("--strip-debug").arg(&staged))?;
    }
    // Every plugin and dependency `install` and the consumer need, fetched into the kept repository (once; a
    // clean clone's first run downloads them), so that the temporary one works offline.
    util::run(maven(&m2()?, profile)?.args(["-DskipTests", "package", "install:help"]))?;
    let repo = target.join("jvm").join(format!("repo-{profile}"));
    let _ = std::fs::remove_dir_all(&repo);
    util::run(Command::new("cp").arg("-al").arg(m2()?).arg(&repo))?;
    let _ = std::fs::remove_dir_all(repo.join("io/tasker"));
    util::run(
        maven(&repo, profile)?
            .args(["-o", "-DskipTests", "install"])
            .arg(format!("-Dtasker.natives.dir={}", staging.display())),
    )?;
    let jar = repo.join(format!("io/tasker/tasker-core/{VERSION}/tasker-core-{VERSION}.jar"));
    if !jar.exists() {
        bail!("mvn install left no {}", jar.display());
    }
    smoke(&repo, &jar, profile)?;
    Ok(jar)
}

/// The consumer project (crates/tasker-jvm/smoke): built offline against the temporary repository, where
/// its one dependency, `io.tasker:tasker-core`, resolves; then its diamond workflow runs on plain `java` with
/// the library loaded from the jar.
fn smoke(repo: &Path, jar: &Path, profile: &str) -> Result<()> {
    let dir = util::target_dir()?.join("jvm").join(format!("smoke-{profile}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src/main/java/example"))?;
    let source = Path::new(CRATE_DIR).join("smoke");
    std::fs::copy(source.join("pom.xml"), dir.join("pom.xml"))?;
    std::fs::copy(
        source.join("Diamond.java"),
        dir.join("src/main/java/example/Diamond.java"),
    )?;
    util::run(
        Command::new("mvn")
            .args(["-B", "--no-transfer-progress", "-o", "package"])
            .arg(format!("-Dmaven.repo.local={}", repo.display()))
            .current_dir(&dir),
    )?;
    let classpath = format!("{}:{}", dir.join("target/classes").display(), jar.display());
    util::run(
        Command::new("java")
            .args(["-cp", &classpath, "example.Diamond"])
            .env_remove("TASKER_JVM_NATIVE"),
    )
}

/// `cargo xtask package jvm`: the release library in the jar, installed into a temporary local repository
/// and run by the consumer project.
pub fn package() -> Result<()> {
    ensure_java()?;
    let library = build_library("release")?;
    let jar = install(&library, "release")?;
    println!("jar: {}", jar.display());
    Ok(())
}

/// Builds what `cargo xtask bench --bindings` runs for Java: the release library, the classes compiled by
/// Maven, and crates/tasker-jvm/bench/WorkerBench.java compiled beside them.
pub fn build_bench() -> Result<()> {
    ensure_java()?;
    build_library("release")?;
    util::run(maven(&m2()?, "release")?.args(["-DskipTests", "compile"]))?;
    let classes = util::target_dir()?.join("jvm/release/classes");
    let out = bench_classes()?;
    std::fs::create_dir_all(&out)?;
    util::run(
        Command::new("javac")
            .args(["--release", "17", "-cp"])
            .arg(&classes)
            .arg("-d")
            .arg(&out)
            .arg(Path::new(CRATE_DIR).join("bench/WorkerBench.java")),
    )
}

fn bench_classes() -> Result<PathBuf> {
    Ok(util::target_dir()?.join("jvm/bench-classes"))
}

/// `java … WorkerBench` over what [`build_bench`] built, for the caller to add `--url`, `--tasks`,
/// `--concurrency` and `--quick` to. It prints one JSON line.
pub fn bench_command() -> Result<Command> {
    let target = util::target_dir()?;
    let library = target
        .join("release")
        .join(format!("{DLL_PREFIX}tasker_jvm{DLL_SUFFIX}"));
    let classes = target.join("jvm/release/classes");
    let mut java = Command::new("java");
    java.arg(format!(
        "-Dtasker.native.library={}",
        std::fs::canonicalize(&library)?.display()
    ))
    .arg("-cp")
    .arg(format!(
        "{}:{}",
        std::fs::canonicalize(classes)?.display(),
        std::fs::canonicalize(bench_classes()?)?.display()
    ))
    .arg("io.tasker.core.WorkerBench");
    Ok(java)
}

#[cfg(test)]
mod tests {
    use super::major;

    #[test]
    fn reads_the_major_java_version() {
        assert_eq!(major("openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime"), 17);
        assert_eq!(major("javac 21.0.2"), 21);
        assert_eq!(major("java version \"1.8.0_292\""), 8);
    }
}
