# frozen_string_literal: true

require "spec_helper"

RSpec.describe TaskerCore::Performance do
  include TaskerCore::Testing

  StoreHelpers.urls.each do |store, url|
    context "on #{store}" do
      let(:client) { TaskerCore::Client.connect(url.call, clock: :manual) }
      after { client.close }

      before do
        since = client.now
        @since = since
        @task = diamond_workflow(client)
        @failing = linear_workflow(client, n: 1, namespace: "spec_fail", handler_key: "spec.fail")
        worker = TaskerCore::Worker.new(client, concurrency: 1)
        worker.handle("testkit.noop") do |_ctx|
          client.advance_clock(0.25)
          {}
        end
        worker.handle("spec.fail") { raise TaskerCore::PermanentError, "no" }
        worker.run_until_idle
      end

      it "counts tasks and steps by state" do
        counts = client.health_counts
        expect(counts).to be_a(described_class::HealthCounts)
        expect(counts.tasks).to include("complete" => 1, "error" => 1)
        expect(counts.steps["complete"]).to eq(4)
        expect(counts.total_tasks).to eq(2)
        expect(counts.exhausted).to be >= 0
      end

      it "computes metrics since a time" do
        m = client.analytics_metrics(since: @since)
        expect(m).to be_a(described_class::AnalyticsMetrics)
        expect(m.since).to be_a(Time)
        expect([m.tasks_completed, m.tasks_failed]).to eq([1, 1])
        expect(m.task_completion_rate).to be_within(1e-9).of(0.5)
        expect(m.step_duration).to be_a(described_class::DurationStats)
        # Durations are of completed steps; the failed one has none.
        expect(m.step_duration.count).to eq(4)
        expect(m.step_duration.p50_ms).to eq(250)
        expect { client.analytics_metrics(since: "yesterday") }.to raise_error(TaskerCore::ValidationError, /since/)
      end

      it "lists the slowest steps and tasks, filtered" do
        steps = client.slowest_steps(limit: 2, namespace: "testkit")
        expect(steps.size).to eq(2)
        expect(steps.first).to be_a(described_class::SlowStep)
        # left and right are claimed together and run one after the other: right waits for left.
        expect(steps.first.duration_ms).to eq(500)
        expect(steps.map(&:namespace).uniq).to eq(["testkit"])
        tasks = client.slowest_tasks(limit: 5, since: @since)
        expect(tasks.first).to be_a(described_class::SlowTask)
        expect(tasks.first.task_id).to eq(@task.id)
        expect(tasks.first.finished_at).to be_a(Time)
      end

      it "narrows the slowest lists by namespace, name and version" do
        expect(client.slowest_steps(namespace: "spec_fail").map(&:namespace)).to eq(["spec_fail"])
        expect(client.slowest_steps(name: "diamond").map(&:task_name).uniq).to eq(["diamond"])
        expect(client.slowest_tasks(version: "9.9.9")).to eq([])
        expect(client.slowest_tasks(namespace: "testkit", name: "diamond").map(&:task_id)).to eq([@task.id])
        expect { client.slowest_steps(namespce: "testkit") }.to raise_error(TaskerCore::ValidationError, /namespce/)
      end

      it "looks at the last 24 hours unless since is given, and at everything with since: nil" do
        expect(client.slowest_steps.size).to eq(5)
        client.advance_clock(24 * 3600 + 60)
        expect(client.slowest_steps).to eq([])
        expect(client.slowest_tasks).to eq([])
        expect(client.slowest_steps(since: nil).size).to eq(5)
        expect(client.slowest_tasks(since: nil).size).to eq(2)
        expect(client.slowest_steps(since: @since).size).to eq(5)
      end

      it "gives dependency levels and the execution context of a task" do
        levels = client.dependency_levels(@task.id)
        expect(levels.map { |l| [l.name, l.level] }).to eq([["start", 0], ["left", 1], ["right", 1], ["end", 2]])
        ctx = client.execution_context(@task.id)
        expect(ctx).to be_a(described_class::ExecutionContext)
        expect([ctx.total_steps, ctx.completed_steps, ctx.execution_status]).to eq([4, 4, "all_complete"])
        expect(ctx.completion_ratio).to eq(1.0)
      end
    end
  end
end
