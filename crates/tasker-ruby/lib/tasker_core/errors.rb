# frozen_string_literal: true

module TaskerCore
  # The base of every error the engine raises. The native extension defines it and one subclass per kind
  # (ValidationError, NotFoundError, ConflictError, InvalidTransitionError, StaleClaimError,
  # CycleDetectedError, ClosedError, TimeoutError, DatabaseError, ConfigurationError, HandlerError,
  # InternalError); switch on the class or #code, never on the message.
  class Error < StandardError
    # The stable code of the kind, e.g. "not_found".
    def code
      @code || CODES.fetch(self.class.name.to_s.split("::").last, "internal")
    end

    # Structured facts about the error, a Hash with String keys (see docs/bindings.md §5).
    def details
      @details || {}
    end

    # Messages of the underlying errors, outermost first.
    def causes
      @causes || []
    end
  end

  # Codes of the classes, for errors raised from Ruby (the extension sets @code on the ones it raises).
  Error::CODES = {
    "ValidationError" => "validation", "NotFoundError" => "not_found", "ConflictError" => "conflict",
    "InvalidTransitionError" => "invalid_transition", "StaleClaimError" => "stale_claim",
    "CycleDetectedError" => "cycle_detected", "ClosedError" => "closed", "TimeoutError" => "timeout",
    "DatabaseError" => "database", "ConfigurationError" => "configuration", "HandlerError" => "handler",
    "InternalError" => "internal"
  }.freeze

  # Raise from a handler when the step may succeed later; `retry_after:` (seconds) asks for a delay before
  # the next attempt.
  class RetryableError < StandardError
    attr_reader :retry_after

    def initialize(message = "retryable error", retry_after: nil)
      super(message)
      @retry_after = retry_after
    end
  end

  # Raise from a handler when retrying cannot help; the step fails at once. `code:` is recorded on the step.
  class PermanentError < StandardError
    attr_reader :code

    def initialize(message = "permanent error", code: nil)
      super(message)
      @code = code
    end
  end
end
