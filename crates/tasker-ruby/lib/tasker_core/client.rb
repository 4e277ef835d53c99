# frozen_string_literal: true

module TaskerCore
  # A handle on one store: `memory:`, `sqlite::memory:`, `sqlite://path` or `postgres://user:pw@host/db`.
  #
  #   TaskerCore::Client.connect("sqlite://tasker.db") do |client|
  #     client.register_template(File.read("invoice_sync.yaml"))
  #     client.create_task("billing", "invoice_sync", context: { account_id: 42 })
  #   end
  #
  # Every method that touches the store releases the GVL while it waits. After #close every call raises
  # ClosedError; in a forked child every call raises ConfigurationError (open a new client after fork).
  class Client
    # Opens a client. Options: clock: (:system or :manual), manual_clock_start: (Time), migrate: (true),
    # max_connections: (8), event_capacity: (4096). With a block, yields the client and closes it after.
    def self.connect(url, **options)
      client = new(Internal::Client.open(url, options))
      return client unless block_given?

      begin
        yield client
      ensure
        client.close
      end
    end

    # The native handle; for the worker and the test helpers.
    attr_reader :native

    def initialize(native)
      @native = native
    end

    # Registers a template from YAML text or a Hash; idempotent for identical content.
    def register_template(yaml_or_hash)
      @native.register_template(yaml_or_hash)
    end

    # One template version; the newest when `version` is nil.
    def template(namespace, name, version: nil)
      @native.template(namespace, name, version)
    end

    # Every registered template version.
    def templates
      @native.templates
    end

    # Creates a task of the newest (or the given) version. A repeat with the same idempotency_key returns
    # the existing task.
    # priority: -1000..=1000, higher is claimed first (the template's, else 0, when nil). run_at: (a Time) or
    # delay: (seconds) starts the task later; nothing of it runs before then.
    def create_task(namespace, name, context:, version: nil, idempotency_key: nil, tags: {}, initiator: nil,
                    source_system: nil, reason: nil, priority: nil, run_at: nil, delay: nil)
      opts = { version: version, context: context, idempotency_key: idempotency_key, tags: tags,
               initiator: initiator, source_system: source_system, reason: reason, priority: priority,
               run_at: run_at, delay_seconds: delay }
      @native.create_task(namespace, name, opts)
    end

    def task(id)
      @native.task(id)
    end

    # Tasks, newest first. Filters: namespace:, name:, state:, limit: (50), before: (an id, for paging).
    def tasks(namespace: nil, name: nil, state: nil, limit: nil, before: nil)
      filter = { namespace: namespace, name: name, state: state, limit: limit, before: before }
      @native.tasks(filter)
    end

    def steps(task_id)
      @native.steps(task_id)
    end

    def step(step_id)
      @native.step(step_id)
    end

    # Why each step of the task is or is not ready.
    def explain(task_id)
      @native.explain(task_id)
    end

    # The durable record of every transition of the task and its steps.
    def transitions(task_id)
      @native.transitions(task_id)
    end

    def cancel_task(task_id, reason: nil)
      @native.cancel_task(task_id, reason)
    end

    # Starts a task created to start later now; one already started is returned as it is.
    def run_task_now(task_id)
      @native.run_task_now(task_id)
    end

    def retry_task(task_id)
      @native.retry_task(task_id)
    end

    # Marks a step as done by hand with `result`, which unblocks its dependants.
    def resolve_step(step_id, result = {})
      @native.resolve_step(step_id, result)
    end

    def resolve_task(task_id, reason: nil)
      @native.resolve_task(task_id, reason)
    end

    # Recovers steps whose lease expired (workers normally do this in their maintenance pass).
    def reap_expired_leases(limit: 1000)
      @native.reap_expired_leases(limit)
    end

    # Registers (or replaces) the cron schedule +name+: a task of +namespace+/+template+ at each occurrence of
    # +cron+ (5 or 6 fields, or @daily and the like), read in +timezone+ (an IANA zone; UTC when nil).
    # context: is the context of every task it creates (checked against the template's schema now; {} when
    # nil), priority: their priority (the template's when nil), version: the template version (the newest at
    # each fire when nil), misfire: what happens to occurrences missed while nothing ran, :skip (the default)
    # or :run_once, as a Symbol or a String. Registering an unchanged definition again changes nothing.
    # Workers fire due schedules in their maintenance pass; #fire_schedules does one pass now.
    def register_schedule(name, namespace, template, cron, context: nil, version: nil, timezone: nil,
                          priority: nil, misfire: nil)
      opts = { version: version, timezone: timezone, context: context, priority: priority, misfire: misfire }
      @native.register_schedule(name, namespace, template, cron, opts)
    end

    # Stops a schedule from firing until #resume_schedule; a paused schedule has no next_fire_at.
    def pause_schedule(name)
      @native.pause_schedule(name)
    end

    # Lets a paused schedule fire again, from its next occurrence after now.
    def resume_schedule(name)
      @native.resume_schedule(name)
    end

    # Removes a schedule and returns it as it was; the tasks it created stay.
    def remove_schedule(name)
      @native.remove_schedule(name)
    end

    # Every registered schedule, by name.
    def schedules
      @native.schedules
    end

    # One schedule by name; NotFoundError when there is none.
    def schedule(name)
      @native.schedule(name)
    end

    # Creates the tasks of the schedules that fell due, one per occurrence however many processes call it;
    # returns a ScheduleReport.
    def fire_schedules
      @native.fire_schedules
    end

    def health
      @native.health
    end

    # Checks the store with a round trip; rebuilds the pool when that fails. True when it rebuilt.
    def validate_or_refresh!
      @native.validate_or_refresh
    end

    # Rebuilds the pool now, even if it answers (after a failover or a credential rotation).
    def refresh!
      @native.refresh
      nil
    end

    # Closes the store for every holder of this client; idempotent.
    def close
      @native.close
      nil
    end

    def closed?
      @native.closed?
    end

    # "system" or "manual".
    def clock
      @native.health.clock
    end

    # The engine's clock (a manual clock under `clock: :manual`).
    def now
      @native.now
    end

    # Moves a manual clock forward by `seconds`.
    def advance_clock(seconds)
      @native.advance_clock_ms((Float(seconds) * 1000).round)
    end

    def subscribe(task_id: nil, names: [])
      Events::Subscription.new(@native.subscribe({ task_id: task_id, names: Array(names) }))
    end

    # The analytics (DESIGN §5), computed by the engine from stored data; the objects are in Performance.
    def execution_context(task_id)
      @native.execution_context(task_id)
    end

    def dependency_levels(task_id)
      @native.dependency_levels(task_id)
    end

    def health_counts
      @native.health_counts
    end

    def analytics_metrics(since:)
      @native.analytics_metrics(since)
    end

    # The +limit+ slowest finished steps, longest first. Filters: +since:+ (left out: the last 24 hours, the
    # window tasker-shared-ffi defines for every binding; a Time: finished at or after it; +nil+: the whole
    # history), +namespace:+, +name:+ and +version:+ of the template. Only the keys given are passed on, so
    # that the native layer can tell a missing +since:+ from +nil+; it refuses unknown keys.
    def slowest_steps(limit: 10, **filter)
      @native.slowest_steps(filter, limit)
    end

    # The +limit+ slowest finished tasks, longest first; the filters of #slowest_steps.
    def slowest_tasks(limit: 10, **filter)
      @native.slowest_tasks(filter, limit)
    end

    def inspect
      "#<TaskerCore::Client#{closed? ? ' closed' : ''}>"
    end
  end
end
