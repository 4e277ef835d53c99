//! The Ruby binding: `cargo xtask test-all --only ruby` builds crates/tasker-ruby, runs its RSpec suite on
//! SQLite and on a throwaway PostgreSQL, then packages both gems, checks their contents and installs each
//! into a temporary GEM_HOME: the platform gem with no cargo on PATH, the source gem by compiling it.
//! `cargo xtask package ruby` builds the two .gem files with the release extension.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::pg::{Durability, PgCluster};
use crate::util;

const CRATE_DIR: &str = "crates/tasker-ruby";
/// Where packaging stages and writes the gems; under target/ so it is never committed.
const GEM_DIR: &str = "target/ruby-gem";
/// The RubyGems platform of the precompiled gem: the extension is built on (and for) x86_64 Linux with glibc.
const PLATFORM: &str = "x86_64-linux";
/// The crates the gem vendors: the binding and everything of the engine it stands on.
const VENDORED: &[&str] = &["crates/tasker-core", "crates/tasker-shared-ffi", "crates/tasker-ruby"];
const APT_PACKAGES: &[&str] = &["ruby-dev", "ruby-rspec", "libclang-dev", "clang"];

/// A cargo profile of the extension, and where cargo puts the library it builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Dev,
    Release,
}

impl Profile {
    fn extension(self) -> Result<PathBuf> {
        let dir = match self {
            Profile::Dev => "debug",
            Profile::Release => "release",
        };
        Ok(util::target_dir()?.join(dir).join("libtasker_core.so"))
    }
}

/// The two gems `package` writes.
pub struct Gems {
    /// tasker_core-<version>.gem: vendored crates, compiled by cargo at install; any platform.
    pub source: PathBuf,
    /// tasker_core-<version>-x86_64-linux.gem: the compiled extension inside, no extensions entry.
    pub platform: PathBuf,
}

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
    // The platform gem holds the dev extension RSpec just ran: test-all builds nothing in release (a cold
    // release build of the engine costs minutes, see docs/guides/ruby.md), and the staging, the gemspec and
    // the loader it tests are the same for both profiles. `cargo xtask package ruby` ships the release one.
    // It takes the copy in lib/ rather than target/debug, which another checkout sharing the target dir may
    // have rebuilt since.
    let gems = package_with(&Path::new(CRATE_DIR).join("lib/tasker_core/tasker_core.so"))?;
    check_source_gem(&inspect_gem(&gems.source)?)?;
    check_platform_gem(&inspect_gem(&gems.platform)?)?;
    install_platform_gem(&gems.platform)?;
    install_source_gem(&gems.source)
}

/// `cargo xtask package ruby`: the source gem and the platform gem (release extension) in target/ruby-gem.
pub fn package() -> Result<Gems> {
    ensure_toolchain()?;
    // The same command as `bench --bindings`, so the two share one release artifact.
    util::run(util::cargo().args(["build", "--release", "--locked", "-p", "tasker-ruby"]))?;
    let gems = package_with(&Profile::Release.extension()?)?;
    check_source_gem(&inspect_gem(&gems.source)?)?;
    check_platform_gem(&inspect_gem(&gems.platform)?)?;
    Ok(gems)
}

/// Builds both gems, the platform one around the already built `extension`.
fn package_with(extension: &Path) -> Result<Gems> {
    // The platform gem first: it reads the extension, which should be as fresh from cargo as it can be.
    let platform = package_platform(extension)?;
    let source = package_source()?;
    Ok(Gems { source, platform })
}

/// Clears `dir` and copies the gemspec, lib/ (without any built extension) and sig/ into it.
fn stage_ruby_files(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("could not clear {}", dir.display()))?;
    }
    let krate = Path::new(CRATE_DIR);
    for item in ["tasker_core.gemspec", "lib", "sig"] {
        copy(&krate.join(item), &dir.join(item))?;
    }
    let _ = fs::remove_file(dir.join("lib/tasker_core/tasker_core.so"));
    Ok(())
}

/// target/ruby-gem/tasker_core-<version>.gem: the engine's crates vendored under ext/, compiled at install.
fn package_source() -> Result<PathBuf> {
    let stage = Path::new(GEM_DIR).join("stage");
    stage_ruby_files(&stage)?;
    copy(
        &Path::new(CRATE_DIR).join("ext/tasker_core/extconf.rb"),
        &stage.join("ext/tasker_core/extconf.rb"),
    )?;
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
    gem_build(&stage, &format!("tasker_core-{}.gem", version()?), None)
}

/// target/ruby-gem/tasker_core-<version>-x86_64-linux.gem: lib/ and sig/ plus `extension` (debug info
/// stripped) at lib/tasker_core/<major.minor>/tasker_core.so for the Ruby it was compiled against.
fn package_platform(extension: &Path) -> Result<PathBuf> {
    if !extension.exists() {
        bail!("{} is missing; build the extension first", extension.display());
    }
    let stage = Path::new(GEM_DIR).join("stage-platform");
    stage_ruby_files(&stage)?;
    // rb-sys compiles against the `ruby` on PATH, so its major.minor is the extension's ABI; the extension
    // refuses any other Ruby when it loads, so a wrong guess here fails the install test loudly.
    let abi = ruby_abi()?;
    let so = stage.join("lib/tasker_core").join(&abi).join("tasker_core.so");
    fs::create_dir_all(so.parent().expect("a file path has a parent"))?;
    // Line tables are a development aid; without them the library is a fraction of the size. The symbol
    // table stays, so a Rust backtrace still names its functions.
    util::run(
        Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&so)
            .arg(extension),
    )?;
    gem_build(
        &stage,
        &format!("tasker_core-{}-{PLATFORM}.gem", version()?),
        Some(PLATFORM),
    )
}

/// Runs `gem build` in `stage` (for `platform` when given) and moves `name` into target/ruby-gem.
fn gem_build(stage: &Path, name: &str, platform: Option<&str>) -> Result<PathBuf> {
    let mut cmd = Command::new("gem");
    cmd.current_dir(stage).args(["build", "tasker_core.gemspec"]);
    match platform {
        Some(platform) => cmd.env("TASKER_GEM_PLATFORM", platform),
        None => cmd.env_remove("TASKER_GEM_PLATFORM"),
    };
    util::run(&mut cmd)?;
    let gem = Path::new(GEM_DIR).join(name);
    fs::rename(stage.join(name), &gem).with_context(|| format!("gem build wrote no {name}"))?;
    println!("wrote {}", gem.display());
    Ok(gem)
}

/// TaskerCore::VERSION, from lib/tasker_core/version.rb.
fn version() -> Result<String> {
    fs::read_to_string(Path::new(CRATE_DIR).join("lib/tasker_core/version.rb"))?
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("VERSION = ")
                .map(|v| v.trim_matches('"').to_owned())
        })
        .context("no VERSION in lib/tasker_core/version.rb")
}

/// The `major.minor` of the `ruby` on PATH.
fn ruby_abi() -> Result<String> {
    let abi = util::output(Command::new("ruby").args(["-e", r"print RUBY_VERSION[/\A\d+\.\d+/]"]))?;
    if abi.is_empty() {
        bail!("ruby printed no version");
    }
    Ok(abi)
}

/// What a .gem file says about itself, read by RubyGems (`Gem::Package#spec`, as `gem spec` reads it).
#[derive(Debug)]
struct GemInfo {
    name: String,
    platform: String,
    extensions: Vec<String>,
    required_ruby_version: String,
    files: Vec<String>,
}

fn inspect_gem(gem: &Path) -> Result<GemInfo> {
    let script = r#"
require "json"
require "rubygems/package"
spec = Gem::Package.new(ARGV[0]).spec
puts JSON.generate(name: spec.file_name, platform: spec.platform.to_s, extensions: spec.extensions,
                   required_ruby_version: spec.required_ruby_version.to_s, files: spec.files)
"#;
    let out = util::output(Command::new("ruby").args(["-e", script]).arg(gem))?;
    let json: serde_json::Value = serde_json::from_str(out.trim()).context("the gem's spec as JSON")?;
    let text = |key: &str| {
        json[key]
            .as_str()
            .map(str::to_owned)
            .context(format!("no {key} in the spec"))
    };
    let list = |key: &str| -> Result<Vec<String>> {
        json[key]
            .as_array()
            .context(format!("no {key} in the spec"))?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .context(format!("{key}: expected strings"))
            })
            .collect()
    };
    let info = GemInfo {
        name: text("name")?,
        platform: text("platform")?,
        extensions: list("extensions")?,
        required_ruby_version: text("required_ruby_version")?,
        files: list("files")?,
    };
    println!(
        "{}: platform {}, ruby {}, extensions {:?}, {} files",
        info.name,
        info.platform,
        info.required_ruby_version,
        info.extensions,
        info.files.len()
    );
    Ok(info)
}

/// Files that must never ship in the platform gem: it is installed where no Rust toolchain is.
fn is_rust_source(file: &str) -> bool {
    file.ends_with(".rs") || file.ends_with("Cargo.toml") || file.ends_with("Cargo.lock") || file.starts_with("ext/")
}

/// Everything wrong with a platform gem's spec, or nothing.
fn platform_gem_problems(info: &GemInfo, abi: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if info.platform != PLATFORM {
        problems.push(format!("platform: expected {PLATFORM}, found {}", info.platform));
    }
    if !info.extensions.is_empty() {
        problems.push(format!("extensions: expected none, found {:?}", info.extensions));
    }
    let so = format!("lib/tasker_core/{abi}/tasker_core.so");
    if !info.files.contains(&so) {
        problems.push(format!("files: expected {so}, found none"));
    }
    if let Some(other) = info.files.iter().find(|f| f.ends_with(".so") && **f != so) {
        problems.push(format!("files: expected only {so} as a library, found {other}"));
    }
    if let Some(rust) = info.files.iter().find(|f| is_rust_source(f)) {
        problems.push(format!("files: expected no Rust sources, found {rust}"));
    }
    if !info.files.iter().any(|f| f == "lib/tasker_core.rb") {
        problems.push("files: expected lib/tasker_core.rb, found none".to_owned());
    }
    let (major, minor) = abi.split_once('.').unwrap_or((abi, ""));
    let next = minor
        .parse::<u32>()
        .map_or_else(|_| "?".to_owned(), |m| format!("{major}.{}", m + 1));
    let expected = format!(">= {abi}, < {next}.dev");
    if info.required_ruby_version != expected {
        problems.push(format!(
            "required_ruby_version: expected {expected}, found {}",
            info.required_ruby_version
        ));
    }
    problems
}

/// Everything wrong with the source gem's spec, or nothing: it must stay buildable anywhere.
fn source_gem_problems(info: &GemInfo) -> Vec<String> {
    let mut problems = Vec::new();
    if info.platform != "ruby" {
        problems.push(format!("platform: expected ruby, found {}", info.platform));
    }
    if info.extensions != ["ext/tasker_core/extconf.rb"] {
        problems.push(format!(
            "extensions: expected [\"ext/tasker_core/extconf.rb\"], found {:?}",
            info.extensions
        ));
    }
    for needed in [
        "ext/tasker_core/Cargo.lock",
        "ext/tasker_core/crates/tasker-ruby/src/lib.rs",
    ] {
        if !info.files.iter().any(|f| f == needed) {
            problems.push(format!("files: expected {needed}, found none"));
        }
    }
    if let Some(so) = info.files.iter().find(|f| f.ends_with(".so")) {
        problems.push(format!("files: expected no compiled library, found {so}"));
    }
    problems
}

fn check_platform_gem(info: &GemInfo) -> Result<()> {
    // Listed in full: it is short, and the log is then the record of what shipped.
    for file in &info.files {
        println!("  {file}");
    }
    fail_on(&info.name, platform_gem_problems(info, &ruby_abi()?))
}

fn check_source_gem(info: &GemInfo) -> Result<()> {
    fail_on(&info.name, source_gem_problems(info))
}

fn fail_on(gem: &str, problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    bail!("{gem}:\n  {}", problems.join("\n  "))
}

/// A fresh, empty directory under target/ruby-gem, as an absolute path.
fn fresh_dir(name: &str) -> Result<PathBuf> {
    let home = std::path::absolute(Path::new(GEM_DIR).join(name))?;
    if home.exists() {
        fs::remove_dir_all(&home)?;
    }
    fs::create_dir_all(&home)?;
    Ok(home)
}

/// Installs the platform gem into a fresh GEM_HOME with a PATH that holds only `ruby` and `gem` (and an
/// environment with no cargo or rustup variables), proves that no cargo or rustc is reachable there, and runs
/// the diamond workflow from the installed gem in the same environment.
fn install_platform_gem(gem: &Path) -> Result<()> {
    let gem = fs::canonicalize(gem)?;
    let home = fresh_dir("home-platform")?;
    let bin = fresh_dir("no-cargo-bin")?;
    for tool in ["ruby", "gem"] {
        let found = util::output(Command::new("sh").args(["-c", &format!("command -v {tool}")]))?;
        std::os::unix::fs::symlink(fs::canonicalize(found.trim())?, bin.join(tool))?;
    }
    let sealed = |program: &str| {
        let mut cmd = Command::new(bin.join(program));
        cmd.env_clear()
            .env("PATH", &bin)
            .env("HOME", &home)
            .env("GEM_HOME", &home)
            .env("GEM_PATH", &home)
            .env("LANG", "C.UTF-8")
            .current_dir(std::env::temp_dir());
        cmd
    };
    // The proof, in the very environment the install gets: no cargo, rustc or rustup on PATH or in the env.
    util::run(sealed("ruby").args([
        "-e",
        r#"
tools = %w[cargo rustc rustup]
found = ENV.fetch("PATH").split(File::PATH_SEPARATOR).product(tools).map { |d, t| File.join(d, t) }.select { |f| File.exist?(f) }
abort "a Rust toolchain is reachable: #{found.join(', ')}" unless found.empty?
abort "cargo runs: #{`cargo --version`}" if (system("cargo", "--version", out: File::NULL, err: File::NULL) rescue false)
leaked = ENV.keys.grep(/\A(CARGO|RUSTUP|RUSTC)/)
abort "the environment names a Rust toolchain: #{leaked.join(', ')}" unless leaked.empty?
puts "no cargo, rustc or rustup on PATH=#{ENV['PATH']}"
"#,
    ]))?;
    let started = Instant::now();
    util::run(
        sealed("gem")
            .args(["install", "--local", "--no-document", "--install-dir"])
            .arg(&home)
            .arg(&gem),
    )?;
    println!(
        "installed {} in {:.1} s with no Rust toolchain",
        gem.display(),
        started.elapsed().as_secs_f64()
    );
    let expected = format!(
        "{}/gems/tasker_core-{}-{PLATFORM}/lib/tasker_core/{}/tasker_core.so",
        home.display(),
        version()?,
        ruby_abi()?
    );
    util::run(sealed("ruby").args(["-e", &smoke_script(&expected)]))
}

/// Installs the source gem into a fresh GEM_HOME, compiling the extension with cargo, and runs the diamond
/// workflow from it. The gem builds in the dev profile here, in the workspace's own target dir, so it reuses
/// the dependencies the rest of test-all compiled and only the vendored crates build again; a plain
/// `gem install` builds in release in a private dir (see docs/guides/ruby.md for the time it takes).
fn install_source_gem(gem: &Path) -> Result<()> {
    let gem = fs::canonicalize(gem)?;
    let home = fresh_dir("home")?;
    let started = Instant::now();
    util::run(
        Command::new("gem")
            .args(["install", "--local", "--no-document", "--install-dir"])
            .arg(&home)
            .arg(&gem)
            .env("TASKER_CARGO_PROFILE", "dev")
            .env("TASKER_CARGO_TARGET_DIR", util::target_dir()?),
    )?;
    println!(
        "installed {} in {:.1} s (dev profile, shared target dir)",
        gem.display(),
        started.elapsed().as_secs_f64()
    );
    let expected = format!(
        "{}/gems/tasker_core-{}/lib/tasker_core/tasker_core.so",
        home.display(),
        version()?
    );
    util::run(
        Command::new("ruby")
            .current_dir(std::env::temp_dir())
            .args(["-e", &smoke_script(&expected)])
            .env("GEM_HOME", &home)
            .env("GEM_PATH", &home)
            .env_remove("RUBYLIB")
            .env_remove("RUBYOPT"),
    )
}

/// A Ruby script that requires the installed gem, checks that the extension came from `expected_so`, and
/// runs a diamond workflow on SQLite.
fn smoke_script(expected_so: &str) -> String {
    format!(
        r#"
require "tasker_core"
rb = $LOADED_FEATURES.grep(%r{{/tasker_core\.rb\z}}).first
abort "loaded from the checkout: #{{rb}}" unless rb.start_with?(ENV["GEM_HOME"])
so = $LOADED_FEATURES.grep(%r{{/tasker_core\.so\z}})
abort "loaded the extension #{{so.inspect}}, expected {expected_so}" unless so == [{expected_so:?}]
TaskerCore::Client.connect("sqlite::memory:") do |client|
  client.register_template(<<~YAML)
    namespace: smoke
    name: diamond
    version: 1.0.0
    steps:
      - {{ name: a, handler: smoke.step }}
      - {{ name: b, handler: smoke.step, depends_on: [a] }}
      - {{ name: c, handler: smoke.step, depends_on: [a] }}
      - {{ name: d, handler: smoke.step, depends_on: [b, c] }}
  YAML
  task = client.create_task("smoke", "diamond", context: {{ "n" => 1 }})
  worker = TaskerCore::Worker.new(client, concurrency: 2)
  worker.handle("smoke.step") {{ |ctx| {{ "step" => ctx.step_name, "parents" => ctx.dependency_results.keys.sort }} }}
  worker.run_until_idle
  done = client.task(task.id)
  abort "diamond ended #{{done.state}}" unless done.state == "complete"
  d = client.steps(task.id).find {{ |s| s.name == "d" }}
  abort "d saw #{{d.result}}" unless d.result["parents"] == %w[b c]
  puts "installed gem ran a diamond workflow with #{{so.first}}: #{{done.state}}"
end
"#
    )
}

/// Builds the extension in the dev profile and puts it where `rspec -Ilib` loads it.
fn build_extension() -> Result<()> {
    util::run(util::cargo().args(["build", "-p", "tasker-ruby"]))?;
    install_extension(&Profile::Dev.extension()?)
}

/// The release extension, for `cargo xtask bench --bindings`; it replaces the dev one in lib/ until the next
/// `test-all --only ruby` puts that back.
pub fn build_extension_release() -> Result<()> {
    ensure_toolchain()?;
    util::run(util::cargo().args(["build", "--release", "--locked", "-p", "tasker-ruby"]))?;
    install_extension(&Profile::Release.extension()?)
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
    use super::*;

    fn platform_gem(files: &[&str]) -> GemInfo {
        GemInfo {
            name: "tasker_core-0.1.0-x86_64-linux.gem".into(),
            platform: "x86_64-linux".into(),
            extensions: vec![],
            required_ruby_version: ">= 3.1, < 3.2.dev".into(),
            files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    const GOOD: &[&str] = &[
        "lib/tasker_core.rb",
        "lib/tasker_core/native.rb",
        "lib/tasker_core/3.1/tasker_core.so",
    ];

    #[test]
    fn a_platform_gem_with_the_library_and_no_sources_passes() {
        assert_eq!(platform_gem_problems(&platform_gem(GOOD), "3.1"), Vec::<String>::new());
    }

    #[test]
    fn a_platform_gem_is_refused_for_each_thing_it_gets_wrong() {
        let mut gem = platform_gem(&["lib/tasker_core.rb", "ext/tasker_core/crates/tasker-ruby/src/lib.rs"]);
        gem.platform = "ruby".into();
        gem.extensions = vec!["ext/tasker_core/extconf.rb".into()];
        gem.required_ruby_version = ">= 3.1".into();
        let problems = platform_gem_problems(&gem, "3.1").join("\n");
        for expected in [
            "platform: expected x86_64-linux, found ruby",
            "extensions: expected none",
            "files: expected lib/tasker_core/3.1/tasker_core.so, found none",
            "files: expected no Rust sources, found ext/tasker_core/crates/tasker-ruby/src/lib.rs",
            "required_ruby_version: expected >= 3.1, < 3.2.dev, found >= 3.1",
        ] {
            assert!(problems.contains(expected), "{expected} missing from:\n{problems}");
        }
        let flat = platform_gem(&[
            "lib/tasker_core.rb",
            "lib/tasker_core/3.1/tasker_core.so",
            "lib/tasker_core/tasker_core.so",
        ]);
        assert_eq!(
            platform_gem_problems(&flat, "3.1"),
            ["files: expected only lib/tasker_core/3.1/tasker_core.so as a library, found lib/tasker_core/tasker_core.so"]
        );
        // The library of another Ruby is not this Ruby's.
        assert!(!platform_gem_problems(&platform_gem(GOOD), "3.2").is_empty());
    }

    #[test]
    fn the_source_gem_keeps_its_extension_and_ships_no_library() {
        let good = GemInfo {
            name: "tasker_core-0.1.0.gem".into(),
            platform: "ruby".into(),
            extensions: vec!["ext/tasker_core/extconf.rb".into()],
            required_ruby_version: ">= 3.1".into(),
            files: [
                "ext/tasker_core/Cargo.lock",
                "ext/tasker_core/crates/tasker-ruby/src/lib.rs",
            ]
            .map(String::from)
            .to_vec(),
        };
        assert_eq!(source_gem_problems(&good), Vec::<String>::new());
        let mut bad = good;
        bad.extensions.clear();
        bad.files.push("lib/tasker_core/tasker_core.so".into());
        assert_eq!(source_gem_problems(&bad).len(), 2, "{:?}", source_gem_problems(&bad));
    }

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
