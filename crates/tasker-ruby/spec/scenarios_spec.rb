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

  it "reports a schedule that differs from its expectation, times compared as instants" do
    text = File.read(File.join(SCENARIO_DIR, "cron_schedule.yaml"))
    wrong = text.sub('next_fire_at: "2030-01-01T00:02:00Z"', 'next_fire_at: "2030-01-01T01:03:00+01:00"') # 00:03Z
                .sub("paused: true, next_fire_at: null", 'paused: true, next_fire_at: "2030-01-01T00:03:00Z"')
                .sub("expect_fired: 2, expect_missed: 8", "expect_fired: 2, expect_missed: 9")
    expect(wrong).not_to eq(text)
    Dir.mktmpdir do |dir|
      path = File.join(dir, "cron_schedule.yaml")
      File.write(path, wrong)
      problems = ScenarioRunner.new(path, "memory:").run.join("\n")
      expect(problems).to include("check_schedules.every_minute.next_fire_at: " \
                                  "expected 2030-01-01T00:03:00.000Z, found 2030-01-01T00:02:00.000Z")
      expect(problems).to include("pause_schedule.next_fire_at: expected 2030-01-01T00:03:00.000Z, found none")
      expect(problems).to include("fire_schedules: expected missed 9, found 8")
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
