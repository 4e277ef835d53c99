# frozen_string_literal: true

require "spec_helper"

# The objects handed out: classes the extension defines from tasker-shared-ffi's object table.
RSpec.describe TaskerCore::Model do
  include TaskerCore::Testing

  let(:client) { TaskerCore::Client.connect("memory:", clock: :manual) }
  after { client.close }

  it "defines one class per table object, grouped as the table says, each with its fields" do
    expect(TaskerCore::Task.object_name).to eq("Task")
    expect(TaskerCore::Performance::SlowStep.field_names).to include(:duration_ms, :finished_at)
    expect(TaskerCore::Events::Event.superclass).to eq(described_class)
    expect(TaskerCore::Testing::RunReport.field_names).to include(:calls, :advanced_ms)
  end

  it "lowers by kind: times are Time, nested objects their classes, JSON stays as it is" do
    made = create_pattern_tasks(client, "linear", n: 2, context: { "at" => "2030-01-01T00:00:00Z" })
    expect(made).to be_a(TaskerCore::Testing::PatternTasks)
    task = made.tasks.first
    expect(task.created_at).to be_a(Time)
    expect(task.created_at.utc?).to be(true)
    expect(task.context).to eq("at" => "2030-01-01T00:00:00Z")
    step = client.steps(task.id).first
    expect(step.retry).to be_a(TaskerCore::RetryPolicy)
    expect(step.retry.jitter).to be_a(Float)
    expect([step.error, step.started_at]).to eq([nil, nil])
    expect(step.name).to be_frozen
  end

  it "has to_h of plain data, equality by value and an inspect of every field" do
    made = create_pattern_tasks(client, "diamond")
    plain = made.to_h
    expect(plain[:template]).to be_a(Hash)
    expect(plain[:tasks].first[:id]).to eq(made.tasks.first.id)
    expect(client.task(made.tasks.first.id)).to eq(made.tasks.first)
    expect(made.tasks.first.inspect).to include("finished_at=nil").and start_with("#<TaskerCore::Task id=")
  end

  it "builds an object from a Hash with from_h, checked against the table" do
    token = TaskerCore::ClaimToken.from_h(step_id: "s", attempt: 2)
    expect([token.step_id, token.attempt]).to eq(["s", 2])
    expect(TaskerCore::ClaimToken.from_h(token.to_h)).to eq(token)
    expect { TaskerCore::ClaimToken.from_h("step_id" => "s", "attempt" => "two") }
      .to raise_error(TaskerCore::ValidationError, /attempt: expected an integer, found a string/)
    expect { TaskerCore::ClaimToken.from_h("step_id" => "s") }
      .to raise_error(TaskerCore::ValidationError, /attempt: expected an integer, found nothing/)
    expect { TaskerCore::ClaimToken.from_h("step_id" => "s", "attempt" => 1, "colour" => "red") }
      .to raise_error(TaskerCore::ValidationError, /colour: ClaimToken has no field colour/)
    now = Time.now.utc
    event = TaskerCore::Events::Event.from_h(name: "task.created", task_id: "t", to_state: "pending", metadata: {},
                                             timestamp: now)
    expect(event.timestamp).to be_within(0.001).of(now)
    expect(TaskerCore::Task.from_h(nil)).to be_nil
  end
end
