# frozen_string_literal: true

require "spec_helper"
require "tmpdir"

RSpec.describe TaskerCore::Events do
  include TaskerCore::Testing

  StoreHelpers.urls.each do |store, url|
    context "on #{store}" do
      let(:client) { TaskerCore::Client.connect(url.call, clock: :manual) }
      after { client.close }

      it "sees a task's lifecycle through a subscription" do
        sub = described_class.subscribe(client)
        task = linear_workflow(client, n: 2)
        run_until_idle(client)
        events = sub.each(timeout: 0.2).to_a
        mine = events.select { |e| e.task_id == task.id }
        expect(mine.first).to be_a(described_class::Event)
        expect(mine.first.timestamp).to be_a(Time)
        names = mine.map(&:name)
        expect(names.first(4)).to include("task.created", "step.created")
        expect(names).to include("task.started", "step.claimed", "step.completed")
        expect(names.last).to eq("task.completed")
        claimed = mine.find { |e| e.name == "step.claimed" }
        expect([claimed.attempt, claimed.step_name]).to eq([1, "step_1"])
        expect(sub.dropped).to eq(0)
      end

      it "filters by task and by name prefix, and returns nil when nothing comes" do
        first = linear_workflow(client)
        sub = client.subscribe(task_id: first.id, names: ["task"])
        second = client.create_task("testkit", first.name, context: {})
        client.cancel_task(second.id)
        client.cancel_task(first.id)
        event = sub.next(timeout: 1)
        expect([event.name, event.task_id]).to eq(["task.cancelled", first.id])
        expect(sub.next(timeout: 0.05)).to be_nil
        expect(sub.try_next).to be_nil
        expect(sub.drain).to eq([])
      end
    end
  end

  # A rebuilt pool keeps the old engine's event bus: a subscription made before a refresh delivers what is
  # committed after it, and ends only when the client closes.
  rebuildable = { "sqlite file" => -> { "sqlite://#{Dir.mktmpdir}/events.db" } }
  rebuildable["postgres"] = StoreHelpers.urls["postgres"] if StoreHelpers.urls.key?("postgres")
  rebuildable.each do |store, url|
    it "keeps a subscription through refresh! on #{store}" do
      TaskerCore::Client.connect(url.call, clock: :manual) do |client|
        sub = client.subscribe(names: ["task.cancelled"])
        before = linear_workflow(client)
        client.refresh!
        expect(client.health.refreshes).to eq(1)
        client.cancel_task(before.id)
        event = sub.next(timeout: 10)
        expect([event&.name, event&.task_id]).to eq(["task.cancelled", before.id])
        expect(sub.next(timeout: 0.05)).to be_nil
      end
    end
  end

  it "refuses to refresh! an in-memory store, saying why" do
    TaskerCore::Client.connect("memory:") do |client|
      expect { client.refresh! }.to raise_error(TaskerCore::ConfigurationError, /cannot be rebuilt/)
    end
  end
end
