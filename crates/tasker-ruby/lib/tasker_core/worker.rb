# frozen_string_literal: true

module TaskerCore
  # Runs Ruby handlers for steps. The loop is Ruby's: claim (GVL released) → run each handler on one of
  # `concurrency` Ruby threads → report through the shared worker session. Leases are extended by the
  # engine in the background while handlers run.
  #
  #   worker = TaskerCore::Worker.new(client, concurrency: 4)
  #   worker.handle("billing.fetch") { |ctx| { invoices: fetch(ctx.context["account_id"]) } }
  #   worker.handle("billing.normalize", NormalizeHandler)
  #   worker.run # until #stop, SIGTERM or SIGINT
  class Worker
    attr_reader :client, :concurrency

    # The most outcomes #run reports in one finish_many (one transaction), as the Rust worker does.
    REPORT_BATCH = 64

    # lease: seconds a claim holds without a heartbeat; claim_wait: how long one claim waits for work.
    def initialize(client, concurrency: 4, worker_id: nil, lease: 30, claim_wait: 1.0, poll_interval: 1.0,
                   maintenance_interval: 5.0, heartbeat_interval: nil)
      raise TypeError, "client: expected a TaskerCore::Client, found #{client.class}" unless client.is_a?(Client)
      raise ArgumentError, "concurrency: expected a positive Integer" unless concurrency.is_a?(Integer) && concurrency.positive?

      @client = client
      @concurrency = concurrency
      @claim_wait = Float(claim_wait)
      @options = {
        worker_id: worker_id, lease_ms: ms(lease), poll_interval_ms: ms(poll_interval),
        maintenance_interval_ms: ms(maintenance_interval),
        heartbeat_interval_ms: heartbeat_interval && ms(heartbeat_interval)
      }
      @handlers = {}
      @stopping = false
      @session = nil
    end

    # Registers the handler of `key`: a block, a class with #call(ctx) (instantiated once), or any object
    # with #call(ctx).
    def handle(key, handler = nil, &block)
      raise ArgumentError, "handle(#{key.inspect}): give a handler or a block, not both" if handler && block
      raise ArgumentError, "handle(#{key.inspect}): give a handler or a block" unless handler || block

      callable = block || (handler.is_a?(Class) ? handler.new : handler)
      raise TypeError, "handle(#{key.inspect}): #{handler.inspect} does not respond to #call" unless callable.respond_to?(:call)

      @handlers[String(key)] = callable
      self
    end

    def handler_keys
      @handlers.keys
    end

    # Runs until #stop or SIGTERM/SIGINT, then stops claiming, lets running handlers report and returns.
    #
    # Handler threads push [ctx, outcome] onto a queue; one reporter thread drains whatever has accumulated
    # (up to REPORT_BATCH) and reports it with one finish_many (one transaction), then frees those slots.
    def run
      session = open_session
      previous = trap_signals
      queue = Thread::Queue.new
      done = Thread::Queue.new
      lock = Mutex.new
      freed = ConditionVariable.new
      busy = 0
      # A slot stays taken from claim until its outcome is reported (or its handler thread died).
      release = lambda do |n|
        lock.synchronize do
          busy -= n
          freed.signal
        end
      end
      reporter = Thread.new do
        while (first = done.pop)
          batch = [first]
          batch << done.pop until batch.size >= REPORT_BATCH || done.empty?
          begin
            report(session, batch)
          ensure
            release.call(batch.size)
          end
        end
      end
      threads = Array.new(@concurrency) do
        Thread.new do
          while (ctx = queue.pop)
            pushed = false
            begin
              done << [ctx, outcome_of(ctx)]
              pushed = true
            ensure
              release.call(1) unless pushed
            end
          end
        end
      end
      until @stopping
        # Claim only for free threads, so a claimed step never waits for a thread while its lease runs.
        free = lock.synchronize do
          freed.wait(lock, @claim_wait) while busy >= @concurrency && !@stopping
          @concurrency - busy
        end
        break if @stopping

        contexts = session.claim(free, @claim_wait)
        lock.synchronize { busy += contexts.size }
        contexts.each { |ctx| queue << ctx }
      end
      self
    ensure
      # Also on an error from claim: stop claiming, let the running handlers finish, report their outcomes,
      # then return.
      session&.shutdown
      queue&.close
      threads&.each(&:join)
      done&.close
      reporter&.join
      restore_signals(previous) if previous
      @session = nil
    end

    # Asks #run to stop: no new claims; running handlers finish and report. Safe from a signal handler.
    def stop
      @stopping = true
      @session&.shutdown
      self
    end

    def stopping?
      @stopping
    end

    # Runs handlers on the calling thread until nothing is ready: claims up to `batch_size` without
    # waiting, runs each, reports; when nothing is ready and a retry is scheduled, moves a manual clock to it
    # (unless `auto_advance_clock: false`, then it returns) or waits for it under the system clock.
    # Returns the number of handler runs. Raises TimeoutError after `timeout` seconds.
    def run_until_idle(batch_size: 16, max_claims: nil, auto_advance_clock: true, timeout: 30)
      session = open_session(heartbeat_interval_ms: 0, maintenance_interval_ms: 0)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      runs = 0
      loop do
        break if max_claims && runs >= max_claims
        if Process.clock_gettime(Process::CLOCK_MONOTONIC) >= deadline
          raise TaskerCore::TimeoutError, "run_until_idle did not become idle within #{timeout} s"
        end

        limit = max_claims ? [batch_size, max_claims - runs].min : batch_size
        contexts = session.claim(limit, 0.0)
        if contexts.empty?
          at = session.next_retry_at
          break if at.nil?

          gap = [at - @client.now, 0].max
          if @client.health.clock == "manual"
            break unless auto_advance_clock

            @client.native.advance_clock_ms((gap * 1000).ceil)
            next
          end
          contexts = session.claim(limit, [gap + 0.005, deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)].min)
          next if contexts.empty?
        end
        # The claimed steps were all ready at once, so none waits for another's outcome: run them all, then
        # report them in one transaction (also the ones already run when a handler raises a non-StandardError).
        batch = []
        begin
          contexts.each do |ctx|
            batch << [ctx, outcome_of(ctx)]
            runs += 1
          end
        ensure
          report(session, batch)
        end
      end
      runs
    ensure
      session&.shutdown
      @session = nil
    end

    # How a handler's exception is reported (docs/bindings.md §5): RetryableError → retryable with its
    # retry_after; PermanentError → permanent with its code; anything else → retryable, with the
    # exception's class, message and backtrace recorded on the step.
    def self.failure_for(error)
      base = { message: error.message, backtrace: error.backtrace || [] }
      case error
      when RetryableError
        base.merge(kind: "retryable", error_class: named(error, RetryableError),
                   retry_after_ms: error.retry_after && (Float(error.retry_after) * 1000).round)
      when PermanentError
        base.merge(kind: "permanent", error_class: named(error, PermanentError), code: error.code)
      else
        base.merge(kind: "retryable", error_class: error.class.name || error.class.inspect)
      end
    end

    # A subclass keeps its own name; the base classes use the engine's defaults.
    def self.named(error, base)
      error.instance_of?(base) ? nil : error.class.name
    end
    private_class_method :named

    private

    def ms(seconds)
      (Float(seconds) * 1000).round
    end

    def open_session(**overrides)
      raise ConfigurationError, "worker has no handlers; call #handle first" if @handlers.empty?

      @stopping = false
      options = @options.merge(handler_keys: @handlers.keys).merge(overrides)
      @session = @client.native.worker_session(options)
    end

    # Runs one handler: its outcome as finish_many takes it, `{"success" => result}` or `{"failure" => …}`.
    def outcome_of(ctx)
      { "success" => normalize(@handlers.fetch(ctx.handler_key).call(ctx)) }
    rescue StandardError => e
      { "failure" => self.class.failure_for(e) }
    end

    # Reports [ctx, outcome] pairs in one finish_many (one transaction). Each item gets its own result: a
    # rejected one (stale claim, cancelled task) is warned about alone, as a single report was.
    def report(session, batch)
      return if batch.empty?

      items = batch.map { |ctx, outcome| [{ "step_id" => ctx.step_id, "attempt" => ctx.attempt }, outcome] }
      results = begin
        session.finish_many(items)
      rescue TaskerCore::ValidationError => e
        # An outcome that cannot be converted (a result that is not JSON) fails the whole call before anything
        # is written: report the items one by one, so only that one is rejected.
        raise e if batch.size == 1

        batch.each { |pair| report(session, [pair]) }
        return
      rescue TaskerCore::Error => e
        # Not delivered (store down): nothing was written; each claim is recovered by the reaper when its
        # lease expires.
        Array.new(batch.size, e)
      end
      batch.zip(results).each do |(ctx, _), r|
        report_failed(ctx, r) if r.is_a?(Exception)
      end
    rescue StandardError => e
      # The reporter must outlive anything one batch raises, or the slots of later outcomes are never freed.
      batch.each { |ctx, _| report_failed(ctx, e) }
    end

    # Rejected (stale claim, cancelled task) or not delivered (store down): either way the step's fate is the
    # engine's now; an undelivered outcome is recovered by the reaper when the lease expires.
    def report_failed(ctx, error)
      code = error.respond_to?(:code) ? error.code : nil
      warn "tasker_core: #{ctx.handler_key} #{ctx.step_id}##{ctx.attempt}: report failed (#{code}): #{error.message}"
    end

    def normalize(result)
      result.nil? ? {} : result
    end

    def trap_signals
      %w[TERM INT].to_h do |sig|
        [sig, Signal.trap(sig) { stop }]
      end
    rescue ArgumentError
      # Not on the main thread: signals stay with whoever owns them; #stop still works.
      nil
    end

    def restore_signals(previous)
      previous.each { |sig, handler| Signal.trap(sig, handler || "DEFAULT") }
    end
  end
end
