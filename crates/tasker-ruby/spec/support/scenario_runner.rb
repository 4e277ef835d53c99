# frozen_string_literal: true

require "time"
require "yaml"

# Replays one tests/scenarios/*.yaml file through the Ruby API with Ruby handlers that follow the file's
# handler script, by the replay rules of docs/bindings.md §9, and collects every difference from its
# expectations. The reference is tasker_shared_ffi::scenario::run; this runner must observe the same.
#
# The file is parsed twice: by the reference parser (Internal::Testing.load_scenario), which rejects unknown
# keys exactly as the Rust runner does, and by Psych, which keeps `result: null` apart from an absent key.
class ScenarioRunner
  Claim = Struct.new(:task_id, :step_name, :attempt, :dependency_results)

  attr_reader :problems, :name

  def initialize(path, url)
    TaskerCore::Internal::Testing.load_scenario(path) # validates like the reference runner
    @doc = YAML.safe_load(File.read(path), aliases: false)
    @name = @doc.fetch("name")
    @url = url
    @problems = []
    @tasks = {}
    @saved = {}
    @claims = []
    @events = []
  end

  # Replays the scenario; returns the list of differences (empty when it passed).
  def run
    clock = (@doc["clock"] || "manual").to_sym
    TaskerCore::Client.connect(@url, clock: clock, event_capacity: 1 << 16) do |client|
      @client = client
      @sub = client.subscribe
      begin
        replay
      rescue Stop => e
        @problems << e.message
      end
    end
    @problems
  end

  class Stop < StandardError; end

  private

  def replay
    (@doc["templates"] || []).each_with_index { |t, i| register("templates[#{i}]", t) }
    keys = @client.templates.flat_map { |t| t.steps.map(&:handler_key) }.uniq.sort
    unless keys.empty?
      @session = @client.native.worker_session(
        { worker_id: "scenario", handler_keys: keys, lease_ms: @doc["lease_ms"] || 30_000,
          heartbeat_interval_ms: 0, maintenance_interval_ms: 0, enforce_deadlines: false }
      )
    end
    (@doc["tasks"] || []).each_with_index { |t, i| create("tasks[#{i}]", t) }
    (@doc["script"] || ["run"]).each_with_index do |action, i|
      verb, args = action.is_a?(String) ? [action, {}] : action.first
      act("script[#{i}] #{verb}", verb, args || {})
    end
    collect_events
    expect = @doc["expect"] || {}
    if expect["templates"]
      found = @client.templates.map { |t| "#{t.namespace}/#{t.name}@#{t.version}" }
      @problems << "expect.templates: expected #{expect['templates']}, found #{found}" if found != expect["templates"]
    end
    (expect["tasks"] || {}).each { |alias_, want| check_task("expect.tasks.#{alias_}", alias_, want) }
    @tasks.each_key { |alias_| check_trail(alias_) }
    @problems << "the event subscription dropped #{@sub.dropped} events" if @sub.dropped.positive?
  ensure
    @session&.shutdown
  end

  # Runs `block`; checks its error against `want` (nil: no error expected). Returns the value or nil.
  def expect_outcome(at, want)
    value = yield
    @problems << "#{at}: expected error #{want.is_a?(Hash) ? want['kind'] : want}, but the call succeeded" if want
    want ? nil : value
  rescue TaskerCore::Error => e
    raise Stop, "#{at}: unexpected error (#{e.code}): #{e.message}" unless want

    want = { "kind" => want } if want.is_a?(String)
    if e.code != want["kind"]
      @problems << "#{at}: expected error #{want['kind']}, found #{e.code} (#{e.message})"
    elsif want["message_contains"] && !e.message.include?(want["message_contains"])
      @problems << "#{at}: expected the message to contain #{want['message_contains'].inspect}, found #{e.message.inspect}"
    elsif want["details"] && !TaskerCore::Internal::Testing.json_contains(e.details, want["details"])
      @problems << "#{at}: expected details to include #{want['details']}, found #{e.details}"
    end
    nil
  end

  def register(at, t)
    reg = expect_outcome(at, t["expect_error"]) do
      if t["definition"] then @client.register_template(t["definition"])
      elsif t["text"] then @client.register_template(t["text"])
      elsif t["pattern"]
        spec = t["pattern"].transform_keys(&:to_sym)
        TaskerCore::Testing.register_pattern(@client, spec.delete(:pattern), **spec)
      else raise Stop, "#{at}: expected one of definition, text or pattern"
      end
    end
    return unless reg && t.key?("expect_created") && reg.created != t["expect_created"]

    @problems << "#{at}.created: expected #{t['expect_created']}, found #{reg.created}"
  end

  def create(at, t)
    task = expect_outcome(at, t["expect_error"]) do
      @client.create_task(t["namespace"], t["name"], version: t["version"], context: t["context"] || {},
                                                     idempotency_key: t["idempotency_key"], tags: t["tags"],
                                                     initiator: "scenario", reason: @name, priority: t["priority"],
                                                     delay: t["delay_ms"] && (t["delay_ms"] / 1000.0))
    end
    return unless task

    if (other = t["same_as"])
      o = @tasks[other] or raise Stop, "#{at}.same_as: no task has alias #{other.inspect}"
      @problems << "#{at}: expected the task of #{other.inspect} (#{o.id}), found a new task #{task.id}" if o.id != task.id
    end
    @tasks[t["alias"]] = task if t["alias"] && !t["alias"].empty?
  end

  def task_id(at, alias_)
    (@tasks[alias_] or raise Stop, "#{at}: no task has alias #{alias_.inspect}").id
  end

  def session(at)
    @session or raise Stop, "#{at}: no template is registered, so nothing can be claimed"
  end

  def act(at, verb, a)
    case verb
    when "run" then run_handlers(at, a["max_claims"])
    when "advance_ms" then @client.native.advance_clock_ms(a)
    when "reap"
      r = @client.reap_expired_leases(limit: 1000)
      if (a["expect_retried"] && a["expect_retried"] != r.retried) || (a["expect_failed"] && a["expect_failed"] != r.failed)
        @problems << "#{at}: expected retried #{a['expect_retried'].inspect} and failed #{a['expect_failed'].inspect}, found #{r.retried} and #{r.failed}"
      end
    when "create_task" then create(at, a)
    when "cancel"
      id = task_id(at, a["task"])
      expect_outcome(at, a["expect_error"]) { @client.cancel_task(id, reason: a["reason"]) }
    when "run_now"
      id = task_id(at, a["task"])
      expect_outcome(at, a["expect_error"]) { @client.run_task_now(id) }
    when "retry"
      id = task_id(at, a["task"])
      expect_outcome(at, a["expect_error"]) { @client.retry_task(id) }
    when "resolve_task"
      id = task_id(at, a["task"])
      expect_outcome(at, a["expect_error"]) { @client.resolve_task(id, reason: a["reason"]) }
    when "resolve_step"
      step = @client.steps(task_id(at, a["task"])).find { |s| s.name == a["step"] }
      raise Stop, "#{at}: task #{a['task'].inspect} has no step #{a['step'].inspect}" unless step

      expect_outcome(at, a["expect_error"]) { @client.resolve_step(step.id, a["result"]) }
    when "claim" then claim(at, a)
    when "complete"
      ctx = saved(at, a["claim"])
      result = a.key?("result") && !a["result"].nil? ? a["result"] : { "ok" => true, "step" => ctx.step_name }
      expect_outcome(at, a["expect_error"]) { session(at).complete(ctx.token, result) }
    when "fail"
      ctx = saved(at, a["claim"])
      failure = { kind: a["kind"] || "retryable", message: a["message"] || "scripted failure",
                  error_class: a["error_class"], retry_after_ms: a["retry_after_ms"], code: a["code"] }
      expect_outcome(at, a["expect_error"]) { session(at).fail(ctx.token, failure) }
    when "check"
      collect_events
      a.each { |alias_, want| check_task("#{at}.#{alias_}", alias_, want) }
    when "register_schedule"
      s = expect_outcome(at, a["expect_error"]) do
        @client.register_schedule(a["name"], a["namespace"], a["template"], a["cron"],
                                  context: a["context"], version: a["version"], timezone: a["timezone"],
                                  priority: a["priority"], misfire: a["misfire"])
      end
      check_schedule(at, s, a["expect"]) if s
    when "pause_schedule", "resume_schedule", "remove_schedule"
      s = expect_outcome(at, a["expect_error"]) { @client.public_send(verb, a["schedule"]) }
      check_schedule(at, s, a["expect"]) if s
    when "fire_schedules" then fire_schedules(at, a)
    when "check_schedules"
      a.each do |name, want|
        check_schedule("#{at}.#{name}", reading("#{at}.#{name}") { @client.schedule(name) }, want)
      end
    else raise Stop, "#{at}: unknown action #{verb}"
    end
  end

  # The value of the block; an error of it ends the replay, naming where.
  def reading(at)
    yield
  rescue TaskerCore::Error => e
    raise Stop, "#{at}: #{e.message}"
  end

  # `fire_schedules`: one pass, its counts checked; each entry of `tasks` names the task the pass created for
  # a schedule (its last task, which no alias may name yet).
  def fire_schedules(at, a)
    r = reading(at) { @client.fire_schedules }
    { "fired" => r.fired, "missed" => r.missed, "failed" => r.failed }.each do |k, found|
      want = a["expect_#{k}"]
      @problems << "#{at}: expected #{k} #{want}, found #{found}" if !want.nil? && want != found
    end
    (a["tasks"] || {}).each do |alias_, name|
      id = reading("#{at}.tasks.#{alias_}") { @client.schedule(name) }.last_task_id
      raise Stop, "#{at}.tasks.#{alias_}: schedule #{name.inspect} has created no task" unless id
      if @tasks.each_value.any? { |t| t.id == id }
        raise Stop, "#{at}.tasks.#{alias_}: the last task of schedule #{name.inspect} is not new to this pass"
      end

      @tasks[alias_] = reading("#{at}.tasks.#{alias_}") { @client.task(id) }
    end
  end

  # A ScheduleExpectation: absent keys are not checked; times are RFC 3339, compared as instants with the
  # Time the client returns, and null asserts there is none.
  def check_schedule(at, s, want)
    return unless want

    %w[paused fired missed].each do |k|
      found = s.public_send(k)
      @problems << "#{at}.#{k}: expected #{want[k].inspect}, found #{found.inspect}" if want.key?(k) && want[k] != found
    end
    %w[next_fire_at last_fire_at].each do |k|
      next unless want.key?(k)

      expected = begin
        want[k] && Time.iso8601(want[k])
      rescue ArgumentError, TypeError => e
        next @problems << "#{at}.#{k}: malformed expectation #{want[k].inspect} (#{e.message})"
      end
      found = s.public_send(k)
      next if expected == found

      shown = ->(t) { t ? t.utc.iso8601(3) : "none" }
      @problems << "#{at}.#{k}: expected #{shown.call(expected)}, found #{shown.call(found)}"
    end
  end

  # `run`: the shared run until idle with batch size 1 and no clock advance, with Ruby handlers following
  # the script.
  def run_handlers(at, max_claims)
    return unless @session

    run = @session.until_idle(batch_size: 1, max_claims: max_claims, auto_advance_clock: false)
    while (batch = run.next_batch)
      batch.each do |ctx|
        @claims << Claim.new(ctx.task_id, ctx.step_name, ctx.attempt, ctx.dependency_results)
        run_handler(run, ctx)
      end
    end
    run.finish.calls.select(&:rejected).each do |c|
      @problems << "#{at}: the outcome of #{c.step_name}##{c.attempt} was rejected (#{c.rejected})"
    end
  end

  # The Ruby handler of the script: it returns the scripted result or raises the scripted error, and the
  # worker's own exception mapping (Worker.failure_for) turns that into the report.
  def run_handler(run, ctx)
    outcome = TaskerCore::Internal::Testing.script_outcome(@doc["handlers"] || {}, ctx.step_name, ctx.handler_key,
                                                           ctx.attempt)
    kind, value = outcome.is_a?(String) ? [outcome, nil] : outcome.first
    spec = value || {}
    case kind
    when "overrun_lease" then run.forget(ctx.token)
    when "succeed" then run.report(ctx.token, value)
    else
      begin
        if kind == "fail_retryable"
          retry_after = spec["retry_after_ms"] && spec["retry_after_ms"] / 1000.0
          raise TaskerCore::RetryableError.new(spec["message"] || "scripted failure", retry_after: retry_after)
        end
        raise TaskerCore::PermanentError.new(spec["message"] || "scripted failure", code: spec["code"])
      rescue TaskerCore::RetryableError, TaskerCore::PermanentError => e
        failure = TaskerCore::Worker.failure_for(e)
        failure[:error_class] = spec["error_class"] if spec["error_class"]
        failure[:backtrace] = []
        run.report_failure(ctx.token, failure)
      end
    end
  end

  def claim(at, a)
    got = session(at).claim(1, 0.0).first
    ctx = got
    if a["expect_none"]
      @problems << "#{at}: expected nothing claimable, claimed #{ctx.step_name}##{ctx.attempt}" if ctx
      return
    end
    raise Stop, "#{at}: expected a claimable step, found none" unless ctx

    if a["expect_step"] && a["expect_step"] != ctx.step_name
      @problems << "#{at}: expected to claim #{a['expect_step'].inspect}, claimed #{ctx.step_name.inspect}"
    end
    if a["expect_attempt"] && a["expect_attempt"] != ctx.attempt
      @problems << "#{at}: expected attempt #{a['expect_attempt']}, claimed attempt #{ctx.attempt}"
    end
    @claims << Claim.new(ctx.task_id, ctx.step_name, ctx.attempt, ctx.dependency_results)
    @saved[a["as"]] = ctx if a["as"]
  end

  def saved(at, name)
    @saved[name] or raise Stop, "#{at}: no claim was kept as #{name.inspect}"
  end

  def collect_events
    @events.concat(@sub.drain)
  end

  def event_line(e)
    return e.name unless e.step_name

    e.attempt.to_i.positive? ? "#{e.name} #{e.step_name}##{e.attempt}" : "#{e.name} #{e.step_name}"
  end

  # Events follow commits: every task's events must line up with its transition rows. The names of the rows
  # are the engine's mapping, which this runner does not repeat; counts and attempts are compared instead.
  def check_trail(alias_)
    id = task_id("trail", alias_)
    trail = @client.transitions(id)
    task_events = @events.select { |e| e.task_id == id && e.step_id.nil? }
    if task_events.size != trail.task.size
      @problems << "tasks.#{alias_}: #{task_events.size} task events, but #{trail.task.size} task transition rows"
    end
    trail.steps.group_by(&:step_id).each do |step_id, rows|
      events = @events.select { |e| e.step_id == step_id }.map { |e| e.attempt.to_i }
      next if events == rows.map(&:attempt)

      @problems << "tasks.#{alias_}: events of step #{step_id} (attempts #{events}) do not match its transition rows (#{rows.map(&:attempt)})"
    end
  end

  def check_task(at, alias_, want)
    task = @tasks[alias_]
    return @problems << "#{at}: no task has alias #{alias_.inspect}" unless task

    t = @client.task(task.id)
    ctx = @client.execution_context(task.id)
    observed = { "state" => t.state, "execution_status" => ctx.execution_status,
                 "recommended_action" => ctx.recommended_action }
    observed.each do |k, v|
      @problems << "#{at}.#{k}: expected #{want[k].inspect}, found #{v.inspect}" if want.key?(k) && want[k] != v
    end
    if want["events"]
      found = @events.select { |e| e.task_id == task.id }.map { |e| event_line(e) }
      @problems << "#{at}.events: expected #{want['events']}, found #{found}" if found != want["events"]
    end
    return unless want["steps"] || want["all_steps"]

    listed = want["steps"] || {}
    explain = @client.explain(task.id)
    steps = @client.steps(task.id)
    listed.each_key do |n|
      @problems << "#{at}.steps.#{n}: the task has no such step" unless steps.any? { |s| s.name == n }
    end
    steps.each do |s|
      w = listed[s.name] || want["all_steps"]
      next @problems << "#{at}.steps: step #{s.name} is not listed (list every step, or give all_steps)" unless w

      check_step("#{at}.steps.#{s.name}", task.id, s, explain.steps.find { |r| r.step_id == s.id }, w)
    end
  end

  def check_step(at, task_id, s, r, w)
    found = { "state" => s.state, "attempts" => s.attempts, "ready" => r&.ready,
              "blocked_by_failure" => r&.blocked_by_failure }
    found.each do |k, v|
      @problems << "#{at}.#{k}: expected #{w[k].inspect}, found #{v.inspect}" if w.key?(k) && w[k] != v
    end
    @problems << "#{at}.result: expected #{w['result'].inspect}, found #{s.result.inspect}" if w.key?("result") && w["result"] != s.result
    check_error(at, s.error, w["error"]) if w.key?("error")
    return unless w["claims"]

    seen = @claims.select { |c| c.task_id == task_id && c.step_name == s.name }
    if seen.map(&:attempt) != w["claims"].map { |c| c["attempt"] }
      @problems << "#{at}.claims: expected attempts #{w['claims'].map { |c| c['attempt'] }}, found #{seen.map(&:attempt)}"
      return
    end
    w["claims"].zip(seen).each do |c, f|
      next unless c.key?("dependency_results") && c["dependency_results"] != f.dependency_results

      @problems << "#{at}.claims[attempt #{c['attempt']}].dependency_results: expected #{c['dependency_results']}, found #{f.dependency_results}"
    end
  end

  def check_error(at, error, want)
    return @problems << "#{at}.error: expected none, found #{error.to_h}" if want.nil? && error
    return if want.nil?
    return @problems << "#{at}.error: expected #{want}, found none" unless error

    %w[error_class code retryable].each do |k|
      next unless want.key?(k) && want[k] != error.public_send(k)

      @problems << "#{at}.error.#{k}: expected #{want[k].inspect}, found #{error.public_send(k).inspect}"
    end
    return unless want["message_contains"] && !error.message.include?(want["message_contains"])

    @problems << "#{at}.error.message: expected it to contain #{want['message_contains'].inspect}, found #{error.message.inspect}"
  end
end
