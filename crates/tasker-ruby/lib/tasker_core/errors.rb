# frozen_string_literal: true

module TaskerCore
  # The base of every error the engine raises. The native extension defines it, one subclass per error
  # kind of tasker-shared-ffi (ValidationError, NotFoundError, …; docs/bindings.md §5) and CODES (class
  # name → code). Switch on the class or #code, never on the message.
  class Error < StandardError
    # The stable code of the kind, e.g. "not_found"; for an error raised from Ruby, the code of its class.
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
