# frozen_string_literal: true

require "spec_helper"

RSpec.describe TaskerCore::Testing do
  include described_class

  StoreHelpers.urls.each do |store, url|
    context "on #{store}" do
      let(:client) { TaskerCore::Client.connect(url.call, clock: :manual) }
      after { client.close }

      {
        "linear" => [{ n: 4 }, "linear_4", 4],
        "diamond" => [{}, "diamond", 4],
        "parallel" => [{ n: 5 }, "parallel_5", 7],
        "tree" => [{ depth: 2, fanout: 3 }, "tree_2x3", 13],
        "mixed" => [{}, "mixed", 7]
      }.each do |pattern, (spec, template, steps)|
        it "builds and runs the #{pattern} pattern" do
          made = create_pattern_tasks(client, pattern, count: 2, context: { "k" => 1 }, **spec)
          expect(made.template.name).to eq(template)
          expect(made.template.version).to eq("1.0.0")
          expect(made.tasks.size).to eq(2)
          expect(made.tasks.map { |t| client.steps(t.id).size }.uniq).to eq([steps])
          expect(run_until_idle(client).completed).to eq(2 * steps)
          expect(made.tasks.map { |t| client.task(t.id).state }.uniq).to eq(["complete"])
        end
      end

      it "offers one-task shortcuts for every pattern" do
        tasks = [linear_workflow(client), diamond_workflow(client), parallel_workflow(client),
                 tree_workflow(client), mixed_workflow(client)]
        expect(tasks.map(&:name)).to eq(%w[linear_3 diamond parallel_3 tree_2x2 mixed])
        expect(register_pattern(client, "diamond").created).to be(false)
      end

      it "runs given Ruby handlers by key and no-ops for the rest" do
        task = diamond_workflow(client, handler_key: "spec.{step}")
        run_until_idle(client, { "spec.left" => ->(ctx) { { "left" => ctx.attempt } } })
        steps = client.steps(task.id).to_h { |s| [s.name, s.result] }
        expect(steps["left"]).to eq("left" => 1)
        expect(steps["right"]).to eq("ok" => true, "step" => "right")
      end

      it "runs scripted handlers, advancing the manual clock to retries" do
        task = linear_workflow(client, n: 2)
        report = run_scripted(client, { "step_1" => [{ "fail_retryable" => { "retry_after_ms" => 1000 } }, "succeed"] })
        expect(report.calls.map { |c| [c.step_name, c.outcome] })
          .to eq([%w[step_1 fail_retryable], %w[step_1 succeed], %w[step_2 succeed]])
        expect(report.advanced_ms).to be >= 1000
        expect(client.task(task.id).state).to eq("complete")
      end

      it "stops run_until_idle with TimeoutError when it cannot finish in time" do
        linear_workflow(client, n: 2)
        expect { run_until_idle(client, { "testkit.noop" => ->(_) { sleep 0.05; {} } }, timeout: 0.01) }
          .to raise_error(TaskerCore::TimeoutError) { |e| expect(e.code).to eq("timeout") }
      end
    end
  end
end
