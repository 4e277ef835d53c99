# frozen_string_literal: true

module TaskerCore
  module StepHandler
    # A handler class: `worker.handle("billing.charge", ChargeHandler)`. One instance serves every step of
    # its key, possibly on several threads at once, so keep per-call state in locals.
    class Base
      # Does the step's work and returns its result (a Hash, or anything JSON-like; nil is {}). Raise
      # TaskerCore::RetryableError or TaskerCore::PermanentError to fail; any other exception is retried.
      def call(_ctx)
        raise NotImplementedError, "#{self.class.name} must implement #call(ctx)"
      end
    end
  end
end
