# frozen_string_literal: true

# The Ruby half of `cargo xtask bench --bindings`: one TaskerCore::Worker running no-op handlers on a fresh
# PostgreSQL database, measured from outside the library. Prints one JSON line; exits non-zero unless every
# task and step completed.
#
#   ruby -Ilib bench/worker_bench.rb --url postgres://postgres@127.0.0.1:5432/postgres [--tasks 2000]
#        [--concurrency 64] [--quick]
#
# The URL names a server; the script creates its own database there (`CREATE DATABASE` through psql), so
# every run starts from empty tables, and drops it afterwards.

require "json"
require "optparse"
require "securerandom"
require "tasker_core"

options = { tasks: 2000, concurrency: 64, url: nil }
OptionParser.new do |o|
  o.on("--url URL") { |v| options[:url] = v }
  o.on("--tasks N", Integer) { |v| options[:tasks] = v }
  o.on("--concurrency N", Integer) { |v| options[:concurrency] = v }
  o.on("--quick") { options[:tasks] = 200 }
end.parse!
abort "worker_bench.rb: --url postgres://… is required" unless options[:url]

STEPS_PER_TASK = 4
clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }

# Timing lives here, not in the library: the native session's methods are wrapped by a prepended module, so
# every call the worker loop makes into the extension passes through it. Sums are per kind; a claim that
# returns nothing is the loop waiting for work, so it is kept apart from the claims that hand out steps.
# Two clocks per call: wall time (for a claim, the PostgreSQL round trip and commit; `report` only queues the
# outcome for the session's reporter, which writes it on the engine's runtime), and the calling thread's CPU
# time, which is what crossing the boundary costs the host: argument and result conversion, releasing and
# retaking the GVL, handing the call to the engine's runtime. Blocked time uses no CPU, so the second clock
# leaves waits out.
module FfiClock
  STATS = Hash.new { |h, k| h[k] = [0, 0.0, 0.0] } # kind => [calls, wall seconds, thread CPU seconds]
  LOCK = Mutex.new
  CLOCK = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
  CPU = -> { Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID) }
  KINDS = %i[claim claim_empty report report_failure flush].freeze

  def self.add(kind, seconds, cpu)
    LOCK.synchronize do
      entry = STATS[kind]
      entry[0] += 1
      entry[1] += seconds
      entry[2] += cpu
    end
  end

  def self.timed(kind)
    c = CPU.call
    t = CLOCK.call
    out = yield
    FfiClock.add(kind.respond_to?(:call) ? kind.call(out) : kind, CLOCK.call - t, CPU.call - c)
    out
  end

  def next_batch(max, wait)
    FfiClock.timed(->(out) { out.empty? ? :claim_empty : :claim }) { super }
  end

  def report(token, result)
    FfiClock.timed(:report) { super }
  end

  def report_failure(token, failure)
    FfiClock.timed(:report_failure) { super }
  end

  def flush
    FfiClock.timed(:flush) { super }
  end
end
TaskerCore::Internal::WorkerSession.prepend(FfiClock)

def psql(url, sql)
  system("psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql, out: File::NULL) ||
    abort("worker_bench.rb: psql failed: #{sql}")
end

admin_url = options[:url]
db = "tasker_bench_ruby_#{SecureRandom.hex(4)}"
db_url = admin_url.sub(%r{\A(\w+://[^/?]*)(/[^?]*)?}) { "#{Regexp.last_match(1)}/#{db}" }
psql(admin_url, "CREATE DATABASE #{db}")

result = nil
begin
  TaskerCore::Client.connect(db_url) do |client|
    tasks = options[:tasks]
    steps = tasks * STEPS_PER_TASK
    t = clock.call
    TaskerCore::Testing.create_pattern_tasks(client, "linear", n: STEPS_PER_TASK, count: tasks)
    created_s = clock.call - t

    worker = TaskerCore::Worker.new(client, concurrency: options[:concurrency])
    worker.handle("testkit.noop") { |_ctx| {} }
    # Outcomes are written by the session's reporter, not by a call of the loop, so a watcher sees the last
    # completion (polling every 20 ms) and stops the worker, so the run ends when the work does.
    completed_at = nil
    watcher = Thread.new do
      give_up = clock.call + 120 + (steps / 100)
      until clock.call > give_up
        sleep 0.02
        next unless client.health_counts.tasks.fetch("complete", 0) == tasks

        completed_at = clock.call
        break
      end
      warn "worker_bench.rb: gave up waiting for #{steps} completions" unless completed_at
      worker.stop
    end

    load_before = File.read("/proc/loadavg").split.first(3).join(" ")
    # The whole process's CPU over the run (every Ruby thread, the engine's runtime threads), to set beside
    # the Rust worker process's CPU per step.
    cpu_started = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
    started = clock.call
    worker.run
    ended = clock.call
    process_cpu = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu_started
    watcher.join
    load_after = File.read("/proc/loadavg").split.first(3).join(" ")

    counts = client.health_counts
    tasks_done = counts.tasks.fetch("complete", 0)
    steps_done = counts.steps.fetch("complete", 0)
    ok = counts.total_tasks == tasks && tasks_done == tasks && counts.total_steps == steps &&
         steps_done == steps && FfiClock::STATS[:report_failure][0].zero?
    to_last = completed_at ? completed_at - started : ended - started
    stat = lambda do |k|
      calls, wall, cpu = FfiClock::STATS[k]
      { "calls" => calls, "wall_s" => wall.round(6), "thread_cpu_s" => cpu.round(6) }
    end
    working = %i[claim report report_failure flush]
    native_wall = working.sum { |k| FfiClock::STATS[k][1] }
    native_cpu = working.sum { |k| FfiClock::STATS[k][2] }
    result = {
      "binding" => "ruby",
      "ruby" => RUBY_DESCRIPTION,
      "tasks" => tasks,
      "steps" => steps,
      "concurrency" => options[:concurrency],
      "created_s" => created_s.round(3),
      "run_s" => (ended - started).round(3),
      "to_last_complete_s" => to_last.round(3),
      "steps_per_s" => (steps / to_last).round(1),
      "ffi_cpu_us_per_step" => (native_cpu / steps * 1e6).round(2),
      "ffi_wall_us_per_step" => (native_wall / steps * 1e6).round(1),
      "process_cpu_us_per_step" => (process_cpu / steps * 1e6).round(1),
      "empty_claim_wall_us_per_step" => (FfiClock::STATS[:claim_empty][1] / steps * 1e6).round(1),
      "calls" => FfiClock::KINDS.to_h { |k| [k.to_s, stat.call(k)] },
      "loadavg_before" => load_before,
      "loadavg_after" => load_after,
      "tasks_complete" => tasks_done,
      "steps_complete" => steps_done,
      "ok" => ok
    }
  end
ensure
  psql(admin_url, "DROP DATABASE IF EXISTS #{db} WITH (FORCE)")
end

puts JSON.generate(result)
exit(result && result["ok"] ? 0 : 1)
