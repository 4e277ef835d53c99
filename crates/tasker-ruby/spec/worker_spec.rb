# frozen_string_literal: true

require "spec_helper"

# Counts the session calls that carry outcomes, from whichever thread makes them (rspec-mocks' any_instance
# stubs are not safe to call from several threads at once). Counting only while `counts` is set.
module SessionCalls
  LOCK = Mutex.new
  class << self
    attr_accessor :counts
  end

  %i[report report_failure report_missing complete fail finish_many].each do |name|
    define_method(name) do |*args|
      LOCK.synchronize { SessionCalls.counts[name] += 1 if SessionCalls.counts }
      super(*args)
    end
  end
end
TaskerCore::Internal::WorkerSession.prepend(SessionCalls)

RSpec.describe TaskerCore::Worker do
  include TaskerCore::Testing

  StoreHelpers.urls.each do |store, url|
    context "on #{store}" do
      let(:client) { TaskerCore::Client.connect(url.call, clock: :manual) }
      after { client.close }

      def single_step(client, key)
        client.register_template(
          "namespace" => "spec", "name" => key.tr(".", "_"), "version" => "1.0.0",
          "defaults" => { "retry" => { "max_attempts" => 3, "backoff" => "none", "max_ms" => 600_000 } },
          "steps" => [{ "name" => "work", "handler" => key }]
        )
        task = client.create_task("spec", key.tr(".", "_"), context: {})
        [task, client.steps(task.id).first]
      end

      it "passes context, config and parents' results, and records the block's result" do
        task = diamond_workflow(client, handler_key: "spec.{step}", context: { "n" => 2 })
        seen = {}
        worker = described_class.new(client, concurrency: 1)
        %w[start left right end].each do |name|
          worker.handle("spec.#{name}") do |ctx|
            seen[ctx.step_name] = ctx
            { "from" => ctx.step_name, "n" => ctx.context["n"] }
          end
        end
        expect(worker.run_until_idle.completed).to eq(4)
        expect(client.task(task.id).state).to eq("complete")
        expect(seen["end"].dependency_results.keys).to contain_exactly("left", "right")
        expect(seen["end"].dependency_results["left"]).to eq("from" => "left", "n" => 2)
        expect(seen["start"].attempt).to eq(1)
        expect(seen["start"].deadline).to be_a(Time)
        expect(seen["start"].token.step_id).to eq(seen["start"].step_id)
      end

      it "runs a StepHandler::Base subclass given as a class" do
        handler = Class.new(TaskerCore::StepHandler::Base) do
          def call(ctx)
            { "handled" => ctx.step_name }
          end
        end
        task, step = single_step(client, "spec.class_handler")
        described_class.new(client).handle("spec.class_handler", handler).run_until_idle
        expect(client.step(step.id).result).to eq("handled" => "work")
        expect(client.task(task.id).state).to eq("complete")
      end

      it "retries a RetryableError after its retry_after" do
        _, step = single_step(client, "spec.retryable")
        calls = 0
        worker = described_class.new(client).handle("spec.retryable") do
          calls += 1
          raise TaskerCore::RetryableError.new("rate limited", retry_after: 5) if calls == 1

          { "ok" => true }
        end
        worker.run_until_idle(auto_advance_clock: false)
        waiting = client.step(step.id)
        expect(waiting.state).to eq("waiting_for_retry")
        expect(waiting.error.message).to eq("rate limited")
        expect(waiting.error.retryable).to be(true)
        expect(waiting.next_attempt_at - client.now).to be_within(0.01).of(5.0)
        client.advance_clock(4.9)
        expect(worker.run_until_idle(auto_advance_clock: false).calls.size).to eq(0)
        client.advance_clock(0.1)
        expect(worker.run_until_idle(auto_advance_clock: false).calls.size).to eq(1)
        done = client.step(step.id)
        expect([done.state, done.attempts, done.result]).to eq(["complete", 2, { "ok" => true }])
      end

      it "does not retry a PermanentError and records its code" do
        task, step = single_step(client, "spec.permanent")
        calls = 0
        described_class.new(client).handle("spec.permanent") do
          calls += 1
          raise TaskerCore::PermanentError.new("card declined", code: "card_declined")
        end.run_until_idle
        failed = client.step(step.id)
        expect(calls).to eq(1)
        expect([failed.state, failed.attempts]).to eq(["error", 1])
        expect(failed.error.code).to eq("card_declined")
        expect(failed.error.retryable).to be(false)
        expect(client.task(task.id).state).to eq("error")
      end

      it "retries any other exception, recording its class, message and backtrace" do
        stub_const("InventoryUnavailable", Class.new(StandardError))
        _, step = single_step(client, "spec.other")
        calls = 0
        described_class.new(client).handle("spec.other") do
          calls += 1
          raise InventoryUnavailable, "warehouse offline" if calls < 3

          { "ok" => calls }
        end.run_until_idle
        expect(calls).to eq(3)
        expect(client.step(step.id).state).to eq("complete")
        trail = client.transitions(client.step(step.id).task_id).steps.select { |t| t.to_state == "waiting_for_retry" }
        expect(trail.size).to eq(2)
        _, exhausted = single_step(client, "spec.always")
        described_class.new(client).handle("spec.always") { raise InventoryUnavailable, "still offline" }.run_until_idle
        err = client.step(exhausted.id).error
        expect(err.error_class).to eq("InventoryUnavailable")
        expect(err.message).to eq("still offline")
        expect(err.retryable).to be(true)
        expect(err.backtrace.first).to include("worker_spec.rb")
        expect(client.step(exhausted.id).attempts).to eq(3)
      end

      it "runs handlers on several threads with #run and stops gracefully with #stop" do
        tasks = create_pattern_tasks(client, "parallel", n: 4, count: 2, handler_key: "spec.par").tasks
        threads = Queue.new
        worker = described_class.new(client, concurrency: 3, claim_wait: 0.05)
        worker.handle("spec.par") do |ctx|
          threads << Thread.current.object_id
          sleep 0.01
          { "step" => ctx.step_name }
        end
        runner = Thread.new { worker.run }
        deadline = Time.now + 20
        sleep 0.02 until tasks.all? { |t| client.task(t.id).state == "complete" } || Time.now > deadline
        worker.stop
        expect(runner.join(10)).to be_truthy
        expect(tasks.map { |t| client.task(t.id).state }.uniq).to eq(["complete"])
        ids = []
        ids << threads.pop until threads.empty?
        expect(ids.uniq.size).to be > 1
      end

      it "hands #run's outcomes to the session's reporter, never writing on a Ruby thread" do
        tasks = create_pattern_tasks(client, "parallel", n: 8, count: 6, handler_key: "spec.batch").tasks
        steps = tasks.sum { |t| client.steps(t.id).size }
        SessionCalls.counts = Hash.new(0)
        worker = described_class.new(client, concurrency: 8, claim_wait: 0.05)
        worker.handle("spec.batch") { |ctx| { "step" => ctx.step_name } }
        runner = Thread.new { worker.run }
        deadline = Time.now + 30
        sleep 0.02 until tasks.all? { |t| client.task(t.id).state == "complete" } || Time.now > deadline
        worker.stop
        expect(runner.join(10)).to be_truthy
        expect(tasks.map { |t| client.task(t.id).state }.uniq).to eq(["complete"])
        expect(SessionCalls.counts).to eq(report: steps)
      ensure
        SessionCalls.counts = nil
      end

      it "flushes the outcomes of running handlers on a graceful stop" do
        tasks = create_pattern_tasks(client, "parallel", n: 4, count: 1, handler_key: "spec.flush").tasks
        started = Queue.new
        go = Queue.new
        worker = described_class.new(client, concurrency: 8, claim_wait: 0.05)
        worker.handle("spec.flush") do |ctx|
          started << ctx.step_id
          go.pop
          { "ok" => true }
        end
        runner = Thread.new { worker.run }
        first = started.pop
        worker.stop
        8.times { go << true }
        expect(runner.join(10)).to be_truthy
        expect(client.step(first).state).to eq("complete")
        claimed = client.steps(tasks.first.id).reject { |s| %w[pending ready waiting_for_retry].include?(s.state) }
        expect(claimed.map(&:state).uniq).to eq(["complete"])
      end

      it "rejects a stale item of finish_many alone" do
        single_step(client, "spec.many")
        session = client.native.worker_session({ handler_keys: ["spec.many"] })
        claimed = session.claim(1, 0.0).first
        stale = Struct.new(:step_id, :attempt).new(claimed.step_id, claimed.attempt + 1)
        results = session.finish_many([[stale, "success", {}], [claimed.token, "success", { "n" => 1 }]])
        expect(results[0]).to be_a(TaskerCore::StaleClaimError)
        expect(results[1].state).to eq("complete")
        expect(client.step(claimed.step_id).result).to eq("n" => 1)
        expect(session.finish_many([])).to eq([])
        expect { session.finish_many([[claimed.token, "maybe", 1]]) }.to raise_error(TaskerCore::ValidationError, /items/)
        expect { session.report(:nope, {}) }.to raise_error(TypeError, /ClaimToken or StepContext/)
      ensure
        session&.shutdown
      end

      # The same three host mistakes give the same step error in Rust, Ruby and Python (docs/bindings.md §6).
      it "fails a result that is not JSON permanently, a missing handler and any exception retryably" do
        tasks = %w[spec.bad spec.missing spec.raises].to_h { |key| [key, single_step(client, key)[1]] }
        worker = described_class.new(client, handler_keys: tasks.keys)
        worker.handle("spec.bad") { { "at" => Object.new } }
        worker.handle("spec.raises") { raise KeyError, "key not found: :sku" }
        report = worker.run_until_idle(auto_advance_clock: false)
        # The invalid result runs once; the other two are retried until their three attempts are spent.
        expect(report.calls.map(&:outcome).tally).to eq("fail_permanent" => 1, "fail_retryable" => 6)
        bad, missing, raises = tasks.values.map { |step| client.step(step.id) }
        expect([bad.state, bad.attempts, bad.error.error_class, bad.error.code, bad.error.retryable])
          .to eq(["error", 1, "InvalidResult", "invalid_result", false])
        expect(bad.error.message).to start_with("result.at: expected nil, true, false")
        expect([missing.attempts, missing.error.error_class, missing.error.retryable]).to eq([3, "HandlerMissing", true])
        expect(missing.error.message).to include('"spec.missing"')
        expect([raises.attempts, raises.error.error_class, raises.error.retryable]).to eq([3, "KeyError", true])
        expect(raises.error.backtrace.first).to include("worker_spec.rb")
      end

      # The JS bindings' host_mistakes.js holds Node and WASM to the same answers (docs/bindings.md §3, §6).
      it "fails a cyclic or too deeply nested result as InvalidResult and refuses such a context" do
        nested = ->(depth) { (1..depth).reduce(1) { |v, _| [v] } }
        cyclic = -> { { "name" => "a" }.tap { |a| a["self"] = a } }
        tasks = %w[spec.cyclic spec.deep spec.limit].to_h { |key| [key, single_step(client, key)[1]] }
        worker = described_class.new(client)
        worker.handle("spec.cyclic") { cyclic.call }
        worker.handle("spec.deep") { nested.call(200) }
        worker.handle("spec.limit") { nested.call(127) }
        worker.run_until_idle
        bad, deep, limit = tasks.values.map { |step| client.step(step.id) }
        expect([bad.state, bad.attempts, bad.error.error_class]).to eq(["error", 1, "InvalidResult"])
        expect(bad.error.message).to eq("result.self: expected a JSON value, found a cycle back to result")
        expect(deep.error.message)
          .to eq("result#{"[0]" * 127}: expected a JSON value nested at most 127 levels deep, found a deeper one")
        expect([limit.state, limit.result]).to eq(["complete", nested.call(127)])
        before = client.tasks.size
        expect { client.create_task("spec", "spec_limit", context: { "items" => nested.call(200) }) }
          .to raise_error(TaskerCore::ValidationError) { |e| expect(e.details["errors"][0]["path"]).to eq("context.items#{"[0]" * 126}") }
        expect { client.create_task("spec", "spec_limit", context: cyclic.call) }
          .to raise_error(TaskerCore::ValidationError) { |e| expect(e.details["errors"][0]["path"]).to eq("context.self") }
        expect(client.tasks.size).to eq(before)
      end
    end
  end

  it "checks its arguments" do
    TaskerCore::Client.connect("memory:") do |client|
      expect { described_class.new(:nope) }.to raise_error(TypeError)
      expect { described_class.new(client, concurrency: 0) }.to raise_error(ArgumentError)
      expect { described_class.new(client).handle("k", Object.new) }.to raise_error(TypeError)
      expect { described_class.new(client).handle("k") }.to raise_error(ArgumentError)
      expect { described_class.new(client).run_until_idle }.to raise_error(TaskerCore::ConfigurationError)
    end
  end

  it "fails a handler that runs past timeout_seconds with timeout, and retries the step" do
    TaskerCore::Client.connect("sqlite::memory:") do |client|
      client.register_template(
        "namespace" => "spec", "name" => "slow", "version" => "1.0.0",
        "defaults" => { "retry" => { "max_attempts" => 2, "backoff" => "none" } },
        "steps" => [{ "name" => "work", "handler" => "spec.slow", "timeout_seconds" => 1 }]
      )
      task = client.create_task("spec", "slow", context: {})
      worker = described_class.new(client, concurrency: 2, claim_wait: 0.05).handle("spec.slow") { sleep 1.5 }
      runner = Thread.new { worker.run }
      deadline = Time.now + 30
      sleep 0.05 until client.task(task.id).state == "error" || Time.now > deadline
      worker.stop
      expect(runner.join(10)).to be_truthy
      step = client.steps(task.id).first
      expect([step.state, step.attempts]).to eq(["error", 2])
      expect([step.error.error_class, step.error.code, step.error.retryable]).to eq(["TimeoutError", "timeout", true])
      retried = client.transitions(task.id).steps.count { |t| t.to_state == "waiting_for_retry" }
      expect(retried).to eq(1)
    end
  end

  it "stops #run on SIGTERM" do
    TaskerCore::Client.connect("memory:") do |client|
      worker = described_class.new(client, claim_wait: 0.05).handle("spec.none") { {} }
      Thread.new { sleep 0.2; Process.kill("TERM", Process.pid) }
      expect(worker.run).to be(worker)
      expect(worker).to be_stopping
    end
  end
end
