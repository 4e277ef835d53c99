# frozen_string_literal: true

require_relative "lib/tasker_core/version"

Gem::Specification.new do |s|
  s.name = "tasker_core"
  s.version = TaskerCore::VERSION
  s.summary = "Workflow orchestration: DAG templates, retries, leases and Ruby workers over SQLite or PostgreSQL"
  s.description = "The Ruby binding of Tasker Core. The engine is Rust and is compiled with cargo at install time."
  s.authors = ["Tasker Core contributors"]
  s.license = "MIT"
  s.homepage = "https://example.invalid/tasker-core"
  s.required_ruby_version = ">= 3.1"
  s.require_paths = ["lib"]
  # `cargo xtask package ruby` stages the gem with the engine's crates vendored under ext/tasker_core.
  s.files = Dir.glob(["lib/**/*.rb", "sig/**/*.rbs", "ext/**/*"], File::FNM_DOTMATCH)
               .reject { |f| File.directory?(f) || f.include?("/target/") || f.end_with?(".so") }
  s.extensions = ["ext/tasker_core/extconf.rb"]
end
