# frozen_string_literal: true

module TaskerCore
  # Runs Ruby handlers for steps. The loop is Ruby's: claim (GVL released) → run each handler on one of
  # `concurrency` Ruby threads → report through the shared worker session, which heartbeats leases, enforces
  # deadlines, batches outcomes and rides out database outages in Rust.
  #
  #   worker = TaskerCore::Worker.new(client, concurrency: 4)
  #   worker.handle("billing.fetch") { |ctx| { invoices: fetch(ctx.context["account_id"]) } }
  #   worker.handle("billing.normalize", NormalizeHandler)
  #   worker.run # until #stop, SIGTERM or SIGINT
  class Worker
    attr_reader :client, :concurrency

    # Raise it from a handler in tests to act like a crashed worker: the claim is never reported and its lease
    # expires. An Exception, not a StandardError, so `rescue => e` in handler code does not swallow it.
    class OverrunLease < Exception; end # rubocop:disable Lint/InheritException

    # lease: seconds a claim holds without a heartbeat; claim_wait: how long one claim waits for work;
    # handler_keys: the keys to claim steps for (default: the keys with a handler).
    def initialize(client, concurrency: 4, worker_id: nil, lease: 30, claim_wait: 1.0, poll_interval: 1.0,
                   maintenance_interval: 5.0, heartbeat_interval: nil, handler_keys: nil)
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
      @handler_keys = handler_keys&.map { |k| String(k) }
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
    # The loop is the shared one (docs/bindings.md §6): claim for free threads, run each handler on one of
    # `concurrency` threads, hand its outcome to the session (which batches, retries and never drops it).
    def run
      session = open_session
      previous = trap_signals
      work = Thread::Queue.new
      lock = Mutex.new
      freed = ConditionVariable.new
      busy = 0
      threads = Array.new(@concurrency) do
        Thread.new do
          while (ctx = work.pop)
            begin
              deliver(session, ctx)
            ensure
              lock.synchronize { busy -= 1; freed.signal }
            end
          end
        end
      end
      until @stopping
        free = lock.synchronize do
          freed.wait(lock, @claim_wait) while busy >= @concurrency && !@stopping
          @concurrency - busy
        end
        break if @stopping

        contexts = session.next_batch(free, @claim_wait)
        lock.synchronize { busy += contexts.size }
        contexts.each { |ctx| work << ctx }
      end
      self
    ensure
      session&.shutdown
      work&.close
      threads&.each(&:join)
      session&.flush
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

    # Runs handlers on the calling thread until nothing is ready, with the one idle rule
    # (docs/bindings.md §8): claims up to `batch_size` without waiting, runs each, reports; when nothing is
    # ready and a retry is scheduled, moves a manual clock to it (unless `auto_advance_clock: false`, then it
    # returns) or waits for it under the system clock. Returns a TaskerCore::Testing::RunReport. Raises
    # TaskerCore::TimeoutError after `timeout` seconds.
    def run_until_idle(batch_size: 16, max_claims: nil, auto_advance_clock: true, timeout: 30)
      session = open_session(heartbeat_interval_ms: 0, maintenance_interval_ms: 0)
      run = session.until_idle(batch_size: batch_size, max_claims: max_claims,
                               auto_advance_clock: auto_advance_clock, timeout_ms: ms(timeout))
      while (batch = run.next_batch)
        batch.each { |ctx| deliver(run, ctx) }
      end
      run.finish
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
      options = @options.merge(handler_keys: @handler_keys || @handlers.keys).merge(overrides)
      @session = @client.native.worker_session(options)
    end

    # Runs the handler of ctx and hands what happened to `target` (the session, or an idle run): its
    # result, its exception (see ::failure_for), or the missing handler. What becomes of each is the shared
    # layer's rule, the same in every language.
    def deliver(target, ctx)
      handler = @handlers[ctx.handler_key]
      return target.report_missing(ctx.token, ctx.handler_key) unless handler

      result = begin
        handler.call(ctx)
      rescue OverrunLease
        return target.forget(ctx.token)
      rescue StandardError => e
        return target.report_failure(ctx.token, self.class.failure_for(e))
      end
      target.report(ctx.token, result)
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
