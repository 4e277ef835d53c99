# frozen_string_literal: true

require "spec_helper"

SCENARIO_DIR = File.expand_path("../../../tests/scenarios", __dir__)

RSpec.describe "tests/scenarios replayed through the Ruby API" do
  files = TaskerCore::Internal::Testing.scenario_files(SCENARIO_DIR)

  it "finds the scenario files" do
    expect(files).not_to be_empty
  end

  it "reports a difference from the expectations, naming where" do
    text = File.read(File.join(SCENARIO_DIR, "linear_success.yaml"))
    Dir.mktmpdir do |dir|
      path = File.join(dir, "linear_success.yaml")
      File.write(path, text.sub(/state: complete/, "state: error"))
      problems = ScenarioRunner.new(path, "sqlite::memory:").run
      expect(problems.join("\n")).to match(/expect\.tasks\.\w+\.(steps\.\w+\.)?state: expected "error"/)
    end
  end

  # Every scenario on the in-memory store too, as the Rust and Python runners replay them.
  { "memory" => -> { "memory:" } }.merge(StoreHelpers.urls).each do |store, url|
    context "on #{store}" do
      files.each do |path|
        it File.basename(path, ".yaml") do
          problems = ScenarioRunner.new(path, url.call).run
          expect(problems).to be_empty, -> { "#{File.basename(path)}:\n  - #{problems.join("\n  - ")}" }
        end
      end
    end
  end
end
