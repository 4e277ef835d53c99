# frozen_string_literal: true

module TaskerCore
  # The test kit for your own specs: factory workflows built in the store, and run-until-idle with your
  # Ruby handlers (or with scripted no-op ones).
  #
  #   include TaskerCore::Testing
  #   client = TaskerCore::Client.connect("memory:", clock: :manual)
  #   task = diamond_workflow(client)
  #   run_until_idle(client)
  #   client.task(task.id).state # => "complete"
  #
  # Its objects (PatternTasks, RunReport, HandlerCall) are the table's classes, defined by the native
  # extension in this module.
  module Testing
    PATTERNS = %w[linear diamond parallel tree mixed].freeze

    module_function

    # The template document (a Hash) of a pattern, without registering it; options as for register_pattern.
    def pattern_template(pattern, **spec)
      Internal::Testing.pattern_template(spec.merge(pattern: String(pattern)))
    end

    # Registers the template of a pattern (linear, diamond, parallel, tree, mixed). Options: n:, depth:,
    # fanout:, namespace: ("testkit"), handler_key: ("testkit.noop"; "{step}" becomes the step name), retry:.
    def register_pattern(client, pattern, **spec)
      Internal::Testing.register_pattern(client.native, spec.merge(pattern: String(pattern)))
    end

    # Registers a pattern and creates `count` tasks of it.
    def create_pattern_tasks(client, pattern, count: 1, context: {}, **spec)
      Internal::Testing.create_pattern_tasks(client.native, spec.merge(pattern: String(pattern)), count, context)
    end

    def linear_workflow(client, n: 3, **opts)
      create_pattern_tasks(client, "linear", n: n, **opts).tasks.first
    end

    def diamond_workflow(client, **opts)
      create_pattern_tasks(client, "diamond", **opts).tasks.first
    end

    def parallel_workflow(client, n: 3, **opts)
      create_pattern_tasks(client, "parallel", n: n, **opts).tasks.first
    end

    def tree_workflow(client, depth: 2, fanout: 2, **opts)
      create_pattern_tasks(client, "tree", depth: depth, fanout: fanout, **opts).tasks.first
    end

    def mixed_workflow(client, **opts)
      create_pattern_tasks(client, "mixed", **opts).tasks.first
    end

    # Runs Ruby handlers until nothing is ready (see Worker#run_until_idle). `handlers` maps handler keys
    # to blocks or classes; every other key of every registered template gets a no-op handler returning
    # {"ok" => true, "step" => step_name}. Returns the RunReport.
    def run_until_idle(client, handlers = {}, **options)
      worker = Worker.new(client, concurrency: 1)
      client.templates.flat_map { |t| t.steps.map(&:handler_key) }.uniq.each do |key|
        worker.handle(key) { |ctx| { "ok" => true, "step" => ctx.step_name } }
      end
      handlers.each { |key, handler| worker.handle(key, handler) }
      worker.run_until_idle(**options)
    end

    # Runs scripted handlers (in Rust, no Ruby code) until idle: `script` maps a step name or handler key
    # to outcomes per attempt ({succeed: …}, {fail_retryable: {…}}, {fail_permanent: {…}}, "overrun_lease").
    def run_scripted(client, script = {}, **options)
      Internal::Testing.run_scripted(client.native, script, options)
    end
  end
end
