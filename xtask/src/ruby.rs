//! The Ruby binding: `cargo xtask test-all --only ruby` builds crates/tasker-ruby, runs its RSpec suite on
//! SQLite and on a throwaway PostgreSQL, then packages the gem and installs it into a temporary GEM_HOME as
//! a smoke test; `cargo xtask package ruby` builds the .gem.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::pg::{Durability, PgCluster};
use crate::util;

const CRATE_DIR: &str = "crates/tasker-ruby";
/// Where packaging stages and writes the gem; under target/ so it is never committed.
const GEM_DIR: &str = "target/ruby-gem";
/// The crates the gem vendors: the binding and everything of the engine it stands on.
const VENDORED: &[&str] = &["crates/tasker-core", "crates/tasker-shared-ffi", "crates/tasker-ruby"];
const APT_PACKAGES: &[&str] = &["ruby-dev", "ruby-rspec", "libclang-dev", "clang"];

/// The `ruby` part of test-all.
pub fn test() -> Result<()> {
    // The signature's object types come from tasker-shared-ffi's table; a stale one fails before anything builds.
    crate::gen::run(true)?;
    ensure_toolchain()?;
    build_extension()?;
    let mut rspec = Command::new("rspec");
    rspec
        .current_dir(CRATE_DIR)
        .args(["-Ilib", "spec"])
        .env("RUST_BACKTRACE", "1");
    // Specs run on SQLite always, and on PostgreSQL too when they are given a server: the caller's, or a
    // throwaway cluster of our own, stopped when `_pg` drops (even when a spec fails).
    let _pg = match std::env::var("TASKER_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => None,
        _ => {
            let pg = PgCluster::start(Durability::Fast)?;
            rspec.env("TASKER_TEST_PG_URL", pg.url()).envs(pg.outage_env());
            Some(pg)
        }
    };
    util::run(&mut rspec)?;
    drop(_pg);
    install_smoke_test()
}

/// `cargo xtask package ruby`: writes target/ruby-gem/tasker_core-<version>.gem and returns its path.
pub fn package() -> Result<PathBuf> {
    ensure_toolchain()?;
    let out = Path::new(GEM_DIR);
    let stage = out.join("stage");
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("could not clear {}", stage.display()))?;
    }
    let krate = Path::new(CRATE_DIR);
    for item in ["tasker_core.gemspec", "lib", "sig", "ext/tasker_core/extconf.rb"] {
        copy(&krate.join(item), &stage.join(item))?;
    }
    let _ = fs::remove_file(stage.join("lib/tasker_core/tasker_core.so"));
    // The vendored crates keep the workspace layout under ext/tasker_core, so path dependencies and
    // `workspace = true` inheritance resolve unchanged against a copy of the root manifest.
    let vendor = stage.join("ext/tasker_core");
    for krate in VENDORED {
        for item in ["Cargo.toml", "src", "migrations"] {
            let from = Path::new(krate).join(item);
            if from.exists() {
                copy(&from, &vendor.join(krate).join(item))?;
            }
        }
    }
    fs::write(
        vendor.join("Cargo.toml"),
        vendored_manifest(&fs::read_to_string("Cargo.toml")?)?,
    )?;
    fs::copy("Cargo.lock", vendor.join("Cargo.lock"))?;
    // Prune the copied lock to what the vendored workspace uses (keeping every version), so the gem's
    // `cargo build --locked` accepts it.
    util::output(
        util::cargo()
            .args(["metadata", "--format-version", "1", "--offline", "--manifest-path"])
            .arg(vendor.join("Cargo.toml")),
    )?;
    util::run(
        Command::new("gem")
            .current_dir(&stage)
            .args(["build", "tasker_core.gemspec"]),
    )?;
    let version = fs::read_to_string(krate.join("lib/tasker_core/version.rb"))?
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("VERSION = ")
                .map(|v| v.trim_matches('"').to_owned())
        })
        .context("no VERSION in lib/tasker_core/version.rb")?;
    let name = format!("tasker_core-{version}.gem");
    let gem = out.join(&name);
    fs::rename(stage.join(&name), &gem)?;
    println!("wrote {}", gem.display());
    Ok(gem)
}

/// Installs the packaged gem into a temporary GEM_HOME and runs a diamond workflow from a fresh `ruby`
/// process outside the checkout. The gem builds in the dev profile here, in the workspace's own target
/// dir, so it reuses the dependencies the rest of test-all compiled and only the vendored crates build
/// again; a plain `gem install` builds in release in a private dir (70–85 s more).
fn install_smoke_test() -> Result<()> {
    let gem = fs::canonicalize(package()?)?;
    let home = fs::canonicalize(".")?.join(GEM_DIR).join("home");
    if home.exists() {
        fs::remove_dir_all(&home)?;
    }
    let cargo_target = fs::canonicalize(util::cargo_target())?;
    util::run(
        Command::new("gem")
            .args(["install", "--local", "--no-document", "--install-dir"])
            .arg(&home)
            .arg(&gem)
            .env("TASKER_CARGO_PROFILE", "dev")
            .env("TASKER_CARGO_TARGET_DIR", &cargo_target),
    )?;
    let script = r#"
require "tasker_core"
abort "loaded from the checkout: #{$LOADED_FEATURES.grep(/tasker_core/).first}" unless $LOADED_FEATURES.grep(/tasker_core\.rb/).first.include?(ENV["GEM_HOME"])
TaskerCore::Client.connect("sqlite::memory:") do |client|
  client.register_template(<<~YAML)
    namespace: smoke
    name: diamond
    version: 1.0.0
    steps:
      - { name: a, handler: smoke.step }
      - { name: b, handler: smoke.step, depends_on: [a] }
      - { name: c, handler: smoke.step, depends_on: [a] }
      - { name: d, handler: smoke.step, depends_on: [b, c] }
  YAML
  task = client.create_task("smoke", "diamond", context: { "n" => 1 })
  worker = TaskerCore::Worker.new(client, concurrency: 2)
  worker.handle("smoke.step") { |ctx| { "step" => ctx.step_name, "parents" => ctx.dependency_results.keys.sort } }
  worker.run_until_idle
  done = client.task(task.id)
  abort "diamond ended #{done.state}" unless done.state == "complete"
  d = client.steps(task.id).find { |s| s.name == "d" }
  abort "d saw #{d.result}" unless d.result["parents"] == %w[b c]
  puts "installed gem ran a diamond workflow: #{done.state}"
end
"#;
    util::run(
        Command::new("ruby")
            .current_dir(std::env::temp_dir())
            .args(["-e", script])
            .env("GEM_HOME", &home)
            .env("GEM_PATH", &home)
            .env_remove("RUBYLIB")
            .env_remove("RUBYOPT"),
    )
}

/// Builds the extension in the dev profile and puts it where `rspec -Ilib` loads it.
fn build_extension() -> Result<()> {
    util::run(util::cargo().args(["build", "-p", "tasker-ruby"]))?;
    install_extension(&util::cargo_target().join("debug/libtasker_core.so"))
}

/// The release extension, for `cargo xtask bench --bindings`; it replaces the dev one in lib/ until the next
/// `test-all --only ruby` puts that back.
pub fn build_extension_release() -> Result<()> {
    ensure_toolchain()?;
    util::run(util::cargo().args(["build", "--release", "--locked", "-p", "tasker-ruby"]))?;
    install_extension(&util::cargo_target().join("release/libtasker_core.so"))
}

fn install_extension(from: &Path) -> Result<()> {
    let to = Path::new(CRATE_DIR).join("lib/tasker_core/tasker_core.so");
    // Copy through a new file: replacing an open .so in place would crash a Ruby process that has it loaded.
    let tmp = to.with_extension("so.tmp");
    fs::copy(from, &tmp).with_context(|| format!("could not copy {}", from.display()))?;
    fs::rename(&tmp, &to)?;
    Ok(())
}

/// Ruby, RSpec, Ruby's headers and libclang (for bindgen); installed with apt when missing and possible.
/// Every part that compiles the whole workspace needs it, because tasker-ruby is a workspace member.
pub fn ensure_toolchain() -> Result<()> {
    let ready = || {
        util::succeeds(Command::new("ruby").args([
            "-e",
            "exit File.exist?(File.join(RbConfig::CONFIG['rubyhdrdir'], 'ruby.h'))",
        ])) && util::succeeds(Command::new("rspec").arg("--version"))
            && util::succeeds(Command::new("gem").arg("--version"))
            && util::succeeds(Command::new("clang").arg("--version"))
    };
    if ready() {
        return Ok(());
    }
    let install = format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {}",
        APT_PACKAGES.join(" ")
    );
    let is_root = util::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0");
    if is_root && util::succeeds(Command::new("apt-get").arg("--version")) {
        println!("Ruby toolchain incomplete; installing it with apt");
        util::run(Command::new("sh").args(["-c", &install]))?;
        if ready() {
            return Ok(());
        }
    }
    bail!("the Ruby binding needs ruby, its headers, rspec, gem and clang; install them with `{install}` (as root)")
}

/// The root manifest with the members the gem vendors, and no default-members.
fn vendored_manifest(root: &str) -> Result<String> {
    let members = VENDORED
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut found = false;
    let out: Vec<String> = root
        .lines()
        .filter(|l| !l.trim_start().starts_with("default-members"))
        .map(|l| {
            if l.trim_start().starts_with("members") {
                found = true;
                format!("members = [{members}]")
            } else {
                l.to_owned()
            }
        })
        .collect();
    if !found {
        bail!("the root Cargo.toml has no `members` line to rewrite");
    }
    Ok(out.join("\n") + "\n")
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        for entry in fs::read_dir(from).with_context(|| format!("could not read {}", from.display()))? {
            let entry = entry?;
            copy(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to).with_context(|| format!("could not copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::vendored_manifest;

    #[test]
    fn vendored_manifest_lists_only_the_vendored_crates() {
        let root = "[workspace]\nmembers = [\"crates/a\", \"xtask\"]\ndefault-members = [\"crates/a\"]\n[x]\n";
        let out = vendored_manifest(root).unwrap();
        assert!(
            out.contains("members = [\"crates/tasker-core\", \"crates/tasker-shared-ffi\", \"crates/tasker-ruby\"]")
        );
        assert!(!out.contains("default-members") && !out.contains("xtask") && out.contains("[x]"));
    }
}
