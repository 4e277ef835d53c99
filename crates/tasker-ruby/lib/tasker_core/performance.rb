# frozen_string_literal: true

module TaskerCore
  # The analytics objects, all computed by the engine from stored data.
  module Performance
    class HealthCounts < Model
      fields :tasks, :steps, :total_tasks, :total_steps, :retrying, :exhausted
    end

    class DurationStats < Model
      fields :count, :mean_ms, :p50_ms, :p95_ms, :max_ms
    end

    class AnalyticsMetrics < Model
      fields :since, :until, :window_seconds, :tasks_completed, :tasks_failed, :task_completion_rate,
             :task_error_rate, :task_throughput_per_second, :steps_completed, :steps_failed, :step_retries,
             :step_throughput_per_second, task_duration: DurationStats, step_duration: DurationStats
    end

    class SlowStep < Model
      fields :step_id, :task_id, :namespace, :task_name, :version, :step_name, :state, :attempts,
             :duration_ms, :started_at, :finished_at
    end

    class SlowTask < Model
      fields :task_id, :namespace, :name, :version, :state, :steps_total, :duration_ms, :created_at,
             :finished_at
    end

    class DependencyLevel < Model
      fields :step_id, :name, :level
    end

    class ExecutionContext < Model
      fields :task_id, :task_state, :total_steps, :pending_steps, :ready_steps, :in_progress_steps,
             :waiting_for_retry_steps, :completed_steps, :failed_steps, :cancelled_steps,
             :resolved_manually_steps, :blocked_steps, :execution_status, :recommended_action,
             :completion_ratio
    end
  end
end
