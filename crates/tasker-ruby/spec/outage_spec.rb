# frozen_string_literal: true

require "spec_helper"

# A Ruby worker in #run rides out PostgreSQL going away for five seconds, mid-claim and mid-report: the shared
# session retries claims and reports with backoff, so every task completes and no step is left in_progress.
# xtask hands this suite the commands that stop and start its own throwaway cluster.
RSpec.describe "a Ruby worker during a PostgreSQL outage" do
  include TaskerCore::Testing

  it "carries on after the database is stopped for 5 seconds" do
    pg, stop, start = ENV.values_at("TASKER_TEST_PG_URL", "TASKER_TEST_PG_STOP", "TASKER_TEST_PG_START")
    skip "needs TASKER_TEST_PG_URL, _STOP and _START (cargo xtask test-all --only ruby sets them)" unless pg && stop && start

    TaskerCore::Client.connect(StoreHelpers.fresh_pg_database(pg)) do |client|
      tasks = create_pattern_tasks(client, "linear", n: 2, count: 300, handler_key: "spec.outage").tasks
      worker = TaskerCore::Worker.new(client, concurrency: 8, lease: 3, maintenance_interval: 0.5, claim_wait: 0.2)
      worker.handle("spec.outage") { |ctx| sleep 0.002; { "step" => ctx.step_name } }
      runner = Thread.new { worker.run }
      complete = -> { client.health_counts.tasks["complete"] }
      deadline = Time.now + 60
      sleep 0.02 until complete.call >= 20 || Time.now > deadline
      expect(complete.call).to be >= 20
      expect(system(stop, out: File::NULL)).to be(true)
      sleep 5
      expect(system(start, out: File::NULL)).to be(true)
      deadline = Time.now + 120
      until (done = begin; complete.call; rescue TaskerCore::DatabaseError; 0; end) >= 300 || Time.now > deadline
        expect(runner).to be_alive
        sleep 0.1
      end
      worker.stop
      expect(runner.join(30)).to be_truthy
      expect(done).to eq(300)
      states = tasks.flat_map { |t| client.steps(t.id).map(&:state) }.tally
      expect(states).to eq("complete" => 600)
    end
  end
end
