# frozen_string_literal: true

require "spec_helper"
require "rbconfig"
require "securerandom"
require "tmpdir"

# A subscriber in this process hears every task.completed of tasks that a worker in a child Ruby process works:
# on a SQLite file, and on PostgreSQL while the subscriber's event feed loses its connection again and again.
# The events are read back from the transition tables, so none is lost and none comes twice.
RSpec.describe "events across processes" do
  include TaskerCore::Testing

  # The child: a worker that runs until every task is complete, then stops.
  WORKER = <<~RUBY
    require "tasker_core"
    url, count = ARGV[0], Integer(ARGV[1])
    TaskerCore::Client.connect(url) do |c|
      w = TaskerCore::Worker.new(c, concurrency: 4, claim_wait: 0.1, worker_id: "rb-child")
      w.handle("rb.events") { |ctx| { "step" => ctx.step_name } }
      runner = Thread.new { w.run }
      deadline = Time.now + 90
      sleep 0.05 until c.health_counts.tasks.fetch("complete", 0) >= count || Time.now > deadline
      w.stop
      runner.join(30)
      exit(c.health_counts.tasks.fetch("complete", 0) == count ? 0 : 3)
    end
  RUBY

  def hear_every_completion(url, count, &between)
    TaskerCore::Client.connect(url) do |client|
      sub = client.subscribe(names: ["task.completed"])
      tasks = create_pattern_tasks(client, "linear", n: 2, count: count, handler_key: "rb.events").tasks
      want = tasks.map(&:id)
      lib = File.expand_path("../lib", __dir__)
      child = Process.spawn(RbConfig.ruby, "-I", lib, "-e", WORKER, url, count.to_s)
      heard = Hash.new(0)
      begin
        deadline = Time.now + 90
        until (want - heard.keys).empty? || Time.now > deadline
          e = sub.next(timeout: 1.0) or next
          expect(e.name).to eq("task.completed")
          expect(want).to include(e.task_id)
          expect([e.from_state, e.to_state]).to eq(%w[in_progress complete])
          heard[e.task_id] += 1
          between&.call(heard.size)
        end
        expect(want - heard.keys).to be_empty, "heard #{(want & heard.keys).size} of #{count} task.completed events"
        _, status = Process.wait2(child)
        child = nil
        expect(status.exitstatus).to eq(0), "the worker process did not finish its tasks"
      ensure
        if child
          Process.kill("KILL", child)
          Process.wait(child)
        end
      end
      expect(heard.reject { |_, n| n == 1 }).to be_empty, "a completion was heard more than once"
      expect(sub.dropped).to eq(0)
      rows = tasks.first(3).flat_map { |t| client.transitions(t.id).steps }.select { |r| r.event == "complete" }
      expect(rows).not_to be_empty
      expect(rows.map(&:worker_id).uniq).to eq(["rb-child"])
    end
  end

  it "hears every completion a worker process makes on a SQLite file" do
    Dir.mktmpdir do |dir|
      hear_every_completion("sqlite://#{dir}/events.db", 60)
    end
  end

  it "hears every completion a worker process makes on PostgreSQL across lost connections" do
    pg = ENV["TASKER_TEST_PG_URL"]
    skip "needs TASKER_TEST_PG_URL (cargo xtask test-all --only ruby sets it)" if pg.nil? || pg.empty?

    admin = StoreHelpers.fresh_pg_database(pg)
    app = "rb-sub-#{SecureRandom.hex(4)}"
    url = "#{admin}#{admin.include?("?") ? "&" : "?"}application_name=#{app}"
    psql = lambda do |sql|
      # On stdin, not -c: psql substitutes the variable (a quoted literal) only in what it reads.
      out = IO.popen(["psql", admin, "-Atq", "-v", "app=#{app}-feed"], "r+") do |io|
        io.write(sql)
        io.close_write
        io.read
      end
      raise "psql failed: #{sql}" unless $?.success?

      Integer(out.strip)
    end
    cuts = []
    hear_every_completion(url, 80) do |heard|
      next unless heard % 20 == 10 && cuts.size < 3

      deadline = Time.now + 30
      until psql.call("SELECT count(*) FROM pg_stat_activity WHERE application_name = :'app'").positive?
        raise "the event feed did not reconnect after #{cuts.size} cuts" if Time.now > deadline

        sleep 0.01
      end
      n = psql.call("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity " \
                    "WHERE application_name = :'app') t")
      raise "no feed backend to cut after #{heard} completions" unless n.positive?

      cuts << heard
    end
    expect(cuts.size).to eq(3), "the feed's connection was cut only after #{cuts.inspect} completions"
  end
end
