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
# Two clocks per call: wall time (which includes the PostgreSQL round trip and commit, and, with 64 threads
# sharing 8 pooled connections, the wait for a connection), and the calling thread's CPU time, which is what
# crossing the boundary costs the host: argument and result conversion, releasing and retaking the GVL,
# handing the call to the engine's runtime. Blocked time uses no CPU, so the second clock leaves waits out.
module FfiClock
  STATS = Hash.new { |h, k| h[k] = [0, 0.0, 0.0] } # kind => [calls, wall seconds, thread CPU seconds]
  LOCK = Mutex.new
  CLOCK = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
  CPU = -> { Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID) }
  @on_complete = nil
  @completed = 0
  @last_complete_at = nil

  class << self
    attr_accessor :on_complete, :last_complete_at, :completed

    # `completed` is how many steps the call completed: 1 for `complete`, the completed items of a
    # `finish_many` batch.
    def add(kind, seconds, cpu, completed = kind == :complete ? 1 : 0)
      LOCK.synchronize do
        entry = STATS[kind]
        entry[0] += 1
        entry[1] += seconds
        entry[2] += cpu
        next if completed.zero?

        @completed += completed
        @last_complete_at = CLOCK.call
        @on_complete&.call(@completed)
      end
    end
  end

  def claim(max, wait)
    c = CPU.call
    t = CLOCK.call
    out = super
    FfiClock.add(out.empty? ? :claim_empty : :claim, CLOCK.call - t, CPU.call - c)
    out
  end

  def complete(*args)
    c = CPU.call
    t = CLOCK.call
    begin
      super
    ensure
      FfiClock.add(:complete, CLOCK.call - t, CPU.call - c)
    end
  end

  def finish_many(items)
    c = CPU.call
    t = CLOCK.call
    out = nil
    begin
      out = super
    ensure
      done = out ? out.count { |r| r.is_a?(TaskerCore::Step) && r.state == "complete" } : 0
      FfiClock.add(:finish_many, CLOCK.call - t, CPU.call - c, done)
    end
  end

  def fail(*args)
    c = CPU.call
    t = CLOCK.call
    begin
      super
    ensure
      FfiClock.add(:fail, CLOCK.call - t, CPU.call - c)
    end
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
    # The last completion stops the worker, so the run ends when the work does rather than after a timeout.
    FfiClock.on_complete = ->(n) { worker.stop if n >= steps }
    watchdog = Thread.new do
      sleep(120 + (steps / 100))
      warn "worker_bench.rb: gave up waiting for #{steps} completions"
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
    watchdog.kill
    load_after = File.read("/proc/loadavg").split.first(3).join(" ")

    counts = client.health_counts
    tasks_done = counts.tasks.fetch("complete", 0)
    steps_done = counts.steps.fetch("complete", 0)
    ok = counts.total_tasks == tasks && tasks_done == tasks && counts.total_steps == steps &&
         steps_done == steps && FfiClock::STATS[:fail][0].zero?
    to_last = FfiClock.last_complete_at ? FfiClock.last_complete_at - started : ended - started
    stat = lambda do |k|
      calls, wall, cpu = FfiClock::STATS[k]
      { "calls" => calls, "wall_s" => wall.round(6), "thread_cpu_s" => cpu.round(6) }
    end
    working = %i[claim complete finish_many fail]
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
      "calls" => %i[claim claim_empty complete finish_many fail].to_h { |k| [k.to_s, stat.call(k)] },
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
