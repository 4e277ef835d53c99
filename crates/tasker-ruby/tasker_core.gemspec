# frozen_string_literal: true

require_relative "lib/tasker_core/version"

# `cargo xtask package ruby` builds two gems from this file:
# - the source gem (tasker_core-<version>.gem): the engine's crates vendored under ext/tasker_core, compiled
#   with cargo when the gem is installed, for any platform and Ruby with a Rust toolchain;
# - with TASKER_GEM_PLATFORM=x86_64-linux, the platform gem (tasker_core-<version>-x86_64-linux.gem): the
#   compiled extension at lib/tasker_core/<major.minor>/tasker_core.so for each Ruby ABI staged, no Rust
#   sources and no extensions entry, so installing it runs no compiler.
platform = ENV.fetch("TASKER_GEM_PLATFORM", "")

Gem::Specification.new do |s|
  s.name = "tasker_core"
  s.version = TaskerCore::VERSION
  s.summary = "Workflow orchestration: DAG templates, retries, leases and Ruby workers over SQLite or PostgreSQL"
  s.authors = ["Tasker Core contributors"]
  s.license = "MIT"
  s.homepage = "https://example.invalid/tasker-core"
  s.require_paths = ["lib"]
  ruby_files = Dir.glob(["lib/**/*.rb", "sig/**/*.rbs"])
  if platform.empty?
    s.description = "The Ruby binding of Tasker Core. The engine is Rust and is compiled with cargo at install time."
    s.required_ruby_version = ">= 3.1"
    s.files = ruby_files + Dir.glob("ext/**/*", File::FNM_DOTMATCH)
                              .reject { |f| File.directory?(f) || f.include?("/target/") || f.end_with?(".so") }
    s.extensions = ["ext/tasker_core/extconf.rb"]
  else
    abis = Dir.glob("lib/tasker_core/*/tasker_core.so").map { |so| File.basename(File.dirname(so)) }
              .grep(/\A\d+\.\d+\z/).sort_by { |abi| abi.split(".").map(&:to_i) }
    abort "tasker_core.gemspec: no lib/tasker_core/<major.minor>/tasker_core.so staged for #{platform}" if abis.empty?
    s.description = "The Ruby binding of Tasker Core, with the Rust engine precompiled for #{platform} and " \
                    "Ruby #{abis.join(', ')}."
    s.platform = Gem::Platform.new(platform)
    # From the oldest ABI shipped up to, not including, the minor version after the newest (its previews too).
    major, minor = abis.last.split(".").map(&:to_i)
    s.required_ruby_version = [">= #{abis.first}", "< #{major}.#{minor + 1}.dev"]
    s.files = ruby_files + abis.map { |abi| "lib/tasker_core/#{abi}/tasker_core.so" }
  end
end
