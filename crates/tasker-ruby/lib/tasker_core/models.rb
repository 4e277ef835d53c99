# frozen_string_literal: true

module TaskerCore
  # A read-only value object built from what the engine returns. Readers only; JSON payloads are Hashes
  # with String keys, timestamps are Time (UTC), ids are Strings.
  class Model
    class << self
      # Declares the readers; `nested` maps a field to its class ([Class] for a list of them).
      def fields(*names, **nested)
        @field_names = names + nested.keys
        @nested = nested
        attr_reader(*@field_names)
      end

      def field_names
        @field_names || []
      end

      def nested
        @nested || {}
      end

      def from_h(hash)
        return nil if hash.nil?

        obj = allocate
        obj.send(:load, hash)
        obj
      end

      def from_a(list)
        list.map { |h| from_h(h) }
      end
    end

    def to_h
      self.class.field_names.to_h do |f|
        v = public_send(f)
        v = v.map { |x| x.is_a?(Model) ? x.to_h : x } if v.is_a?(Array)
        v = v.to_h if v.is_a?(Model)
        [f, v]
      end
    end

    def ==(other)
      other.class == self.class && other.to_h == to_h
    end
    alias eql? ==

    def hash
      to_h.hash
    end

    def inspect
      attrs = self.class.field_names.first(6).map { |f| "#{f}=#{public_send(f).inspect}" }
      "#<#{self.class.name} #{attrs.join(' ')}#{self.class.field_names.size > 6 ? ' …' : ''}>"
    end

    private

    def load(hash)
      self.class.field_names.each do |f|
        v = hash[f.to_s]
        if (klass = self.class.nested[f])
          v = klass.is_a?(Array) ? v&.map { |x| klass.first.from_h(x) } : klass.from_h(v)
        end
        instance_variable_set(:"@#{f}", v.frozen? ? v : v.freeze)
      end
    end
  end

  class RetryPolicy < Model
    fields :max_attempts, :retryable, :backoff, :base_ms, :max_ms, :jitter
  end

  class StepError < Model
    fields :error_class, :message, :backtrace, :code, :retryable
  end

  class Task < Model
    fields :id, :template_id, :namespace, :name, :version, :state, :context, :tags, :idempotency_key,
           :initiator, :source_system, :reason, :steps_total, :steps_succeeded, :steps_failed,
           :created_at, :updated_at, :started_at, :finished_at
  end

  class Step < Model
    fields :id, :task_id, :name, :handler_key, :position, :state, :attempts, :max_attempts,
           :timeout_seconds, :config, :next_attempt_at, :lease_expires_at, :worker_id, :result,
           :created_at, :updated_at, :started_at, :finished_at, retry: RetryPolicy, error: StepError
  end

  class ClaimToken < Model
    fields :step_id, :attempt
  end

  # What a handler receives: the step, its attempt, the task context, the step config and the results of
  # the step's parents by step name.
  class StepContext < Model
    fields :task_id, :step_id, :step_name, :handler_key, :attempt, :max_attempts, :context, :config,
           :dependency_results, :deadline, :lease_expires_at, :namespace, :task_name, token: ClaimToken
  end

  class TemplateStep < Model
    fields :name, :handler_key, :description, :depends_on, :config, :timeout_seconds, retry: RetryPolicy
  end

  class TemplateInfo < Model
    fields :id, :namespace, :name, :version, :description, :content_hash, :input_schema, :created_at,
           steps: [TemplateStep]
  end

  class Registration < Model
    fields :created, template: TemplateInfo
  end

  class StepReadiness < Model
    fields :step_id, :name, :handler_key, :state, :ready, :attempts, :max_attempts, :blocked_by,
           :blocked_by_failure, :retry_at, :attempts_exhausted, :task_runnable, :lease_expires_at, :reasons
  end

  # Why each step of a task is or is not ready.
  class Explain < Model
    fields :task_id, :task_state, steps: [StepReadiness]

    def step(name)
      steps.find { |s| s.name == name }
    end
  end

  class TaskTransition < Model
    fields :id, :task_id, :from_state, :to_state, :event, :metadata, :sort_key, :created_at
  end

  class StepTransition < Model
    fields :id, :step_id, :task_id, :from_state, :to_state, :event, :attempt, :worker_id, :metadata,
           :sort_key, :created_at
  end

  class Transitions < Model
    fields task: [TaskTransition], steps: [StepTransition]
  end

  class ReapReport < Model
    fields :retried, :failed
  end

  # The state of a client handle: store, pool, age and clock.
  class ClientHealth < Model
    fields :store_kind, :url, :pool_size, :idle_connections, :age_ms, :opened_at, :pid, :refreshes, :clock
  end
end
