# frozen_string_literal: true

require "spec_helper"

RSpec.describe TaskerCore::Client do
  include TaskerCore::Testing

  StoreHelpers.urls.each do |store, url|
    context "on #{store}" do
      let(:client) { described_class.connect(url.call, clock: :manual) }
      after { client.close }

      it "returns objects with readers: String ids, Time timestamps, Hashes with String keys" do
        task = client.create_task("testkit", diamond_workflow(client).name, context: { account: { id: 42 } },
                                                                            tags: { team: "shop" })
        expect(task).to be_a(TaskerCore::Task)
        expect(task.id).to be_a(String).and match(/\A\h{8}-\h{4}-7\h{3}-/)
        expect(task.created_at).to be_a(Time)
        expect(task.created_at).to be_utc
        expect(task.context).to eq("account" => { "id" => 42 })
        expect(task.tags).to eq("team" => "shop")
        expect(client.task(task.id)).to eq(task)
        expect(client.tasks(namespace: "testkit").map(&:id)).to include(task.id)
        explain = client.explain(task.id)
        expect(explain.steps.map(&:name)).to eq(client.steps(task.id).map(&:name))
        expect(explain.step("start").ready).to be(true)
      end

      it "registers templates from YAML text and from a Hash, idempotently" do
        yaml = <<~YAML
          namespace: billing
          name: invoice_sync
          version: 1.0.0
          steps:
            - { name: fetch, handler: billing.fetch }
            - { name: store, handler: billing.store, depends_on: [fetch] }
        YAML
        reg = client.register_template(yaml)
        expect(reg.created).to be(true)
        expect(reg.template.steps.map(&:name)).to eq(%w[fetch store])
        again = client.register_template(YAML.safe_load(yaml))
        expect(again.created).to be(false)
        expect(client.templates.map { |t| "#{t.namespace}/#{t.name}@#{t.version}" }).to eq(["billing/invoice_sync@1.0.0"])
      end

      it "returns the same task for a repeated idempotency key" do
        name = linear_workflow(client).name
        a = client.create_task("testkit", name, context: {}, idempotency_key: "inv-42")
        b = client.create_task("testkit", name, context: {}, idempotency_key: "inv-42")
        expect(b.id).to eq(a.id)
      end

      it "cancels, retries and resolves through operator actions" do
        task = linear_workflow(client)
        expect(client.cancel_task(task.id, reason: "changed my mind").state).to eq("cancelled")
        expect { client.cancel_task(task.id) }.to raise_error(TaskerCore::InvalidTransitionError) { |e|
          expect(e.code).to eq("invalid_transition")
          expect(e.details).to include("entity" => "task", "id" => task.id)
        }
        other = linear_workflow(client)
        step = client.steps(other.id).first
        expect(client.resolve_step(step.id, { "by" => "hand" }).state).to eq("resolved_manually")
      end

      it "reports health and validates the store" do
        h = client.health
        expect(h.clock).to eq("manual")
        expect(h.opened_at).to be_a(Time)
        expect(h.pid).to eq(Process.pid)
        expect(client.validate_or_refresh!).to be(false)
      end
    end
  end

  describe "lifecycle" do
    it "closes the client at the end of the block form" do
      kept = nil
      described_class.connect("memory:") { |c| kept = c }
      expect(kept).to be_closed
      expect { kept.tasks }.to raise_error(TaskerCore::ClosedError) { |e| expect(e.code).to eq("closed") }
    end

    it "closes the client when the block raises" do
      kept = nil
      expect { described_class.connect("memory:") { |c| kept = c; raise "boom" } }.to raise_error("boom")
      expect(kept).to be_closed
    end

    it "raises ClosedError on every use after close, and close is idempotent" do
      client = described_class.connect("memory:")
      client.close
      client.close
      expect { client.task("01a2185f-c86d-7047-8345-304363e1b4a0") }.to raise_error(TaskerCore::ClosedError)
      expect { client.register_template("namespace: x") }.to raise_error(TaskerCore::ClosedError)
      expect { client.health_counts }.to raise_error(TaskerCore::ClosedError)
      expect { TaskerCore::Worker.new(client).handle("k") { 1 }.run_until_idle }.to raise_error(TaskerCore::ClosedError)
    end

    it "refuses an inherited client in a forked child, which opens its own and runs a task" do
      client = described_class.connect("memory:")
      reader, writer = IO.pipe
      pid = Process.fork do
        reader.close
        seen = begin
          client.tasks
          ["no error", {}]
        rescue TaskerCore::ConfigurationError => e
          [e.message, e.details]
        end
        state = described_class.connect("memory:") do |own|
          task = TaskerCore::Testing.diamond_workflow(own)
          TaskerCore::Testing.run_until_idle(own)
          own.task(task.id).state
        end
        writer.write(Marshal.dump(seen + [state]))
        writer.close
        exit!(0)
      end
      writer.close
      Process.wait(pid)
      message, details, state = Marshal.load(reader.read) # rubocop:disable Security/MarshalLoad
      expect(message).to include("open a new client after fork")
      expect(details).to include("reason" => "forked", "opened_pid" => Process.pid, "current_pid" => pid)
      expect(state).to eq("complete")
      expect(client.tasks).to eq([]) # the parent's handle is untouched
      client.close
    end
  end

  describe "start times and priorities" do
    let(:client) { described_class.connect("memory:", clock: :manual) }
    after { client.close }

    it "starts a task at run_at (a Time) or after delay (seconds), by priority, and run_task_now starts it early" do
      name = TaskerCore::Testing.linear_workflow(client).name
      existing = client.tasks.size
      start = client.now + 300
      later = client.create_task("testkit", name, context: {}, run_at: start, priority: 7)
      expect([later.priority, later.run_at, later.held_until]).to eq([7, start, start])
      explain = client.explain(later.id)
      expect(explain.scheduled_for).to eq(start)
      expect(explain.steps.first.ready).to be(false)
      expect(explain.steps.first.reasons).to eq(["scheduled for #{start.utc.strftime('%Y-%m-%dT%H:%M:%S+00:00')}"])
      delayed = client.create_task("testkit", name, context: {}, delay: 90)
      expect(delayed.held_until).to eq(client.now + 90)
      expect(client.run_task_now(delayed.id).held_until).to be_nil
      expect(client.explain(delayed.id).steps.first.ready).to be(true)
      [[{ run_at: "tomorrow" }, "run_at"], [{ priority: 5000 }, "priority"],
       [{ run_at: start, delay: 1 }, "delay_seconds"]].each do |opts, path|
        expect { client.create_task("testkit", name, context: {}, **opts) }
          .to raise_error(TaskerCore::ValidationError) { |e| expect(e.details["errors"].first["path"]).to eq(path) }
      end
      expect(client.tasks.size).to eq(existing + 2)
      client.cancel_task(later.id)
      expect { client.run_task_now(later.id) }.to raise_error(TaskerCore::InvalidTransitionError)
    end
  end

  describe "cron schedules" do
    template = <<~YAML
      namespace: shop
      name: order
      version: 1.0.0
      steps:
        - { name: charge, handler: shop.charge }
        - { name: ship, handler: shop.ship, depends_on: [charge] }
    YAML

    # Schedules are stored by each store in its own way, so the specs run on every one of them.
    { "memory" => -> { "memory:" } }.merge(StoreHelpers.urls).each do |store, url|
      context "on #{store}" do
        let(:client) { described_class.connect(url.call, clock: :manual).tap { |c| c.register_template(template) } }
        after { client.close }

        it "fires one task per occurrence and is managed by name, with Time in and out" do
          now = client.now
          minute = ->(n) { now + (60 * n) }
          s = client.register_schedule("orders", "shop", "order", "* * * * *", context: { order: 1 }, priority: 3)
          expect(s).to be_a(TaskerCore::Schedule)
          expect([s.name, s.namespace, s.template, s.version, s.cron, s.timezone, s.misfire, s.priority, s.paused])
            .to eq(["orders", "shop", "order", nil, "* * * * *", "UTC", "skip", 3, false])
          expect(s.context).to eq("order" => 1)
          expect(s.next_fire_at).to be_a(Time).and be_utc
          expect([s.next_fire_at, s.last_fire_at, s.last_task_id, s.fired, s.missed])
            .to eq([minute.call(1), nil, nil, 0, 0])
          again = client.register_schedule("orders", "shop", "order", "* * * * *", context: { "order" => 1 },
                                                                                  priority: 3)
          expect(again).to eq(s) # an unchanged definition is left as it is
          expect(client.fire_schedules.fired).to eq(0)

          client.advance_clock(60)
          report = client.fire_schedules
          expect(report).to be_a(TaskerCore::ScheduleReport)
          expect([report.fired, report.missed, report.failed, report.next_fire_at]).to eq([1, 0, 0, minute.call(2)])
          expect(client.fire_schedules.fired).to eq(0) # one task per occurrence
          s = client.schedule("orders")
          expect([s.fired, s.last_fire_at]).to eq([1, minute.call(1)])
          task = client.task(s.last_task_id)
          expect([task.priority, task.context, task.initiator]).to eq([3, { "order" => 1 }, "schedule:orders"])
          explain = client.explain(task.id)
          expect([explain.schedule, explain.schedule_next_fire_at]).to eq(["orders", minute.call(2)])

          paused = client.pause_schedule("orders")
          expect([paused.paused, paused.next_fire_at]).to eq([true, nil])
          expect(client.explain(task.id).schedule_next_fire_at).to be_nil
          client.advance_clock(120)
          expect(client.fire_schedules.fired).to eq(0)
          resumed = client.resume_schedule("orders")
          expect([resumed.paused, resumed.next_fire_at]).to eq([false, minute.call(4)])
          expect(client.schedules).to eq([resumed])

          removed = client.remove_schedule("orders")
          expect([removed.name, removed.fired]).to eq(["orders", 1])
          expect(client.schedules).to eq([])
          expect { client.schedule("orders") }.to raise_error(TaskerCore::NotFoundError)
          expect { client.remove_schedule("orders") }.to raise_error(TaskerCore::NotFoundError)
          expect(client.explain(task.id).schedule).to be_nil
          expect(client.task(task.id).state).to eq("pending") # its tasks stay
        end

        it "reads the expression in a time zone, and takes misfire as a Symbol or a String" do
          s = client.register_schedule("nightly", "shop", "order", "0 2 * * *", timezone: "Europe/Berlin",
                                                                                version: "1.0.0", misfire: :run_once)
          # 02:00 in Berlin in winter is 01:00 UTC.
          expect([s.timezone, s.version, s.misfire, s.next_fire_at])
            .to eq(["Europe/Berlin", "1.0.0", "run_once", Time.utc(2030, 1, 1, 1)])
          expect(client.register_schedule("nightly", "shop", "order", "0 2 * * *", timezone: "Europe/Berlin",
                                                                                   version: "1.0.0", misfire: "run_once"))
            .to eq(s)
          expect(client.register_schedule("nightly", "shop", "order", "0 2 * * *", misfire: "skip").misfire).to eq("skip")
        end

        it "refuses a bad schedule with a ValidationError naming the field, and writes nothing" do
          [["61 * * * *", {}, "cron"],
           ["* * * * *", { timezone: "Mars/Olympus" }, "timezone"],
           ["* * * * *", { misfire: :never }, "misfire"],
           ["* * * * *", { priority: 1 << 40 }, "priority"],
           ["* * * * *", { context: [1] }, "context"],
           ["* * * * *", { context: { at: Object.new } }, "context.at"]].each do |cron, opts, path|
            expect { client.register_schedule("s", "shop", "order", cron, **opts) }
              .to raise_error(TaskerCore::ValidationError) { |e| expect(e.details["errors"].first["path"]).to eq(path) }
          end
          expect { client.register_schedule("s", "shop", "nope", "* * * * *") }.to raise_error(TaskerCore::NotFoundError)
          # An unknown option is refused: by Ruby as a keyword, and by the native layer as a key.
          expect { client.register_schedule("s", "shop", "order", "* * * * *", misfires: :skip) }
            .to raise_error(ArgumentError, /misfires/)
          expect { client.native.register_schedule("s", "shop", "order", "* * * * *", { misfires: "skip" }) }
            .to raise_error(TaskerCore::ValidationError, /unknown field `misfires`/)
          expect(client.schedules).to eq([])
          expect { client.pause_schedule("s") }.to raise_error(TaskerCore::NotFoundError) { |e|
            expect(e.code).to eq("not_found")
          }
        end
      end
    end
  end

  describe "argument checking" do
    let(:client) { described_class.connect("memory:") }
    after { client.close }

    it "raises TypeError for positional arguments of the wrong type" do
      expect { client.task(42) }.to raise_error(TypeError)
      expect { client.create_task(:billing, "x", context: {}) }.to raise_error(TypeError)
      expect { client.register_template(42) }.to raise_error(TaskerCore::ValidationError)
    end

    it "raises ValidationError naming the field path for bad JSON values" do
      name = TaskerCore::Testing.linear_workflow(client).name
      expect { client.create_task("testkit", name, context: { items: [1, 2, 3, { sku: Object.new }] }) }
        .to raise_error(TaskerCore::ValidationError, /context\.items\[3\]\.sku: expected/) { |e|
          expect(e.details["errors"].first["path"]).to eq("context.items[3].sku")
        }
      expect { client.create_task("testkit", name, context: { 1 => 2 }) }
        .to raise_error(TaskerCore::ValidationError, /context: expected String or Symbol keys/)
      expect { client.create_task("testkit", name, context: {}, version: 1) }
        .to raise_error(TaskerCore::ValidationError, /version/)
      expect { client.task("not-a-uuid") }
        .to raise_error(TaskerCore::ValidationError) { |e| expect(e.details["errors"].first["path"]).to eq("task_id") }
    end
  end

  describe "the GVL" do
    it "is released while a claim waits, so other Ruby threads make progress" do
      described_class.connect("memory:") do |client|
        session = client.native.worker_session({ handler_keys: ["nothing.here"] })
        ticks = 0
        ticker = Thread.new { loop { ticks += 1; Thread.pass } }
        Thread.pass until ticks.positive?
        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        before = ticks
        expect(session.claim(1, 0.3)).to eq([])
        during = ticks - before
        waited = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
        ticker.kill
        expect(waited).to be >= 0.25
        # Had the claim held the GVL for its 0.3 s, the ticker could not have ticked during it.
        expect(during).to be > 1000
        session.shutdown
      end
    end
  end

  if (pg = ENV["TASKER_TEST_PG_URL"]) && !pg.empty?
    it "never shows a password of any URL form in inspect, health or errors" do
      secret = "Zq9-Secret-Xy"
      db_url = StoreHelpers.fresh_pg_database(pg)
      head, db = db_url.split(%r{/(?=[^/]*\z)})
      host = head.split("@").last.delete_prefix("postgres://")
      forms = lambda do |h|
        ["postgres://postgres:#{secret}@#{h}/#{db}",
         "postgres://postgres@#{h}/#{db}?password=#{secret}",
         "postgresql://postgres@#{h}/#{db}?sslmode=disable&password=#{secret}&application_name=t",
         "postgres://postgres:Zq9%40Secret-Xy@#{h}/#{db}"]
      end
      leaks = ->(text) { text.include?(secret) || text.include?("Zq9@Secret-Xy") || text.include?("Zq9%40Secret") }
      forms.call(host).each do |url|
        described_class.connect(url) do |c|
          shown = "#{c.inspect} #{c.health.inspect} #{c.health.url} #{c.health.to_h}"
          expect(leaks.call(shown)).to be(false), shown
          expect(c.health.url).to include("***")
        end
      end
      # Nothing listens on port 1: the connection error names the target without the password.
      forms.call("127.0.0.1:1").each do |url|
        expect { described_class.connect(url) }.to raise_error(TaskerCore::DatabaseError) { |e|
          shown = "#{e.message} #{e.inspect} #{e.details}"
          expect(leaks.call(shown)).to be(false), shown
        }
      end
    end
  end
end
