# frozen_string_literal: true

require "spec_helper"

RSpec.describe TaskerCore::Error do
  KINDS = {
    "validation" => "ValidationError", "not_found" => "NotFoundError", "conflict" => "ConflictError",
    "invalid_transition" => "InvalidTransitionError", "stale_claim" => "StaleClaimError",
    "cycle_detected" => "CycleDetectedError", "closed" => "ClosedError", "timeout" => "TimeoutError",
    "database" => "DatabaseError", "configuration" => "ConfigurationError", "handler" => "HandlerError",
    "internal" => "InternalError"
  }.freeze

  it "has one class per kind under TaskerCore::Error < StandardError" do
    expect(described_class.superclass).to eq(StandardError)
    KINDS.each_value do |name|
      expect(TaskerCore.const_get(name).superclass).to eq(described_class)
    end
  end

  it "keeps the handler errors apart from the engine's" do
    expect(TaskerCore::RetryableError.new("x", retry_after: 2).retry_after).to eq(2)
    expect(TaskerCore::PermanentError.new("x", code: "c").code).to eq("c")
    expect(TaskerCore::RetryableError.ancestors).not_to include(described_class)
  end

  describe "raised by the engine, with code and details" do
    let(:client) { TaskerCore::Client.connect("memory:") }
    after { client.close }
    let(:missing) { "01a2185f-c86d-7047-8345-304363e1b4a0" }

    def raised(&block)
      block.call
      nil
    rescue TaskerCore::Error => e
      e
    end

    it "maps every kind the engine can be made to raise here" do
      session = client.native.worker_session({ handler_keys: ["testkit.noop"] })
      task = TaskerCore::Testing.linear_workflow(client, n: 1)
      ctx = session.claim(1, 0.0).first
      seen = {
        "validation" => raised { client.task("x") },
        "not_found" => raised { client.task(missing) },
        "invalid_transition" => raised { client.retry_task(task.id) },
        "stale_claim" => raised { session.complete(Struct.new(:step_id, :attempt).new(ctx.step_id, 9), {}) },
        "cycle_detected" => raised do
          client.register_template("namespace" => "c", "name" => "c", "version" => "1.0.0",
                                   "steps" => [{ "name" => "a", "handler" => "h", "depends_on" => ["b"] },
                                               { "name" => "b", "handler" => "h", "depends_on" => ["a"] }])
        end,
        "configuration" => raised { client.advance_clock(1) },
        "timeout" => raised do
          TaskerCore::Testing.linear_workflow(client, n: 2)
          TaskerCore::Worker.new(client).handle("testkit.noop") { sleep 0.02 }.run_until_idle(timeout: 0.001)
        end
      }
      session.shutdown
      client.close
      seen["closed"] = raised { client.tasks }
      seen.each do |code, error|
        expect(error).to be_a(TaskerCore.const_get(KINDS.fetch(code))), "#{code}: got #{error.inspect}"
        expect(error.code).to eq(code)
        expect(error.details).to be_a(Hash)
        expect(error.causes).to be_a(Array)
      end
      expect(seen["not_found"].details).to include("id" => missing)
      expect(seen["stale_claim"].details).to include("step_id" => ctx.step_id)
      expect(seen["cycle_detected"].details["path"]).to be_a(Array)
    end
  end
end
