//! The conformance suite: engine behaviour, written once, run against every store.

mod cases_concurrency;
mod cases_execution;
mod cases_operator;
mod cases_schedules;
mod cases_scheduling;
mod cases_templates;
pub mod harness;

macro_rules! conformance {
    ($($case:ident),+ $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $case() { super::cases::$case(super::harness::H::memory().await).await })+
        }
        #[cfg(feature = "sqlite")]
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::cases::$case(super::harness::H::sqlite().await).await })+
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL (TASKER_TEST_PG_URL); run by cargo xtask test-all --only postgres"]
                async fn $case() { super::cases::$case(super::harness::H::postgres().await).await }
            )+
        }
    };
}

mod cases {
    pub use super::cases_concurrency::*;
    pub use super::cases_execution::*;
    pub use super::cases_operator::*;
    pub use super::cases_schedules::*;
    pub use super::cases_scheduling::*;
    pub use super::cases_templates::*;
}

conformance!(
    // scheduling and priorities
    delayed_task_waits_for_its_start_time,
    a_start_time_already_past_starts_at_once,
    run_task_now_starts_a_held_task,
    a_cancelled_held_task_never_starts,
    higher_priorities_are_claimed_first_and_equal_ones_stay_fifo,
    template_and_step_priorities_apply,
    priorities_out_of_range_are_rejected_and_write_nothing,
    a_retry_queues_by_the_time_it_falls_due,
    // keyed concurrency limits
    a_key_at_its_limit_runs_one_step_at_a_time,
    explain_says_a_step_waits_for_a_concurrency_slot,
    steps_of_different_keys_run_side_by_side,
    a_limit_above_one_lets_that_many_run,
    keyed_and_unkeyed_steps_share_one_claim,
    a_retried_failure_frees_its_slot,
    a_reaped_lease_frees_its_slot,
    a_named_limit_is_shared_across_templates,
    bad_concurrency_limits_and_keys_are_typed_errors_and_write_nothing,
    scheduled_tasks_get_their_concurrency_keys,
    // cron schedules
    a_schedule_creates_one_task_per_occurrence,
    missed_occurrences_are_skipped_or_run_once,
    schedules_pause_resume_and_remove,
    registering_again_keeps_an_unchanged_schedule_and_restarts_a_changed_one,
    bad_schedules_are_typed_errors_and_write_nothing,
    // templates and creation
    template_latest_version_is_highest_semver,
    template_same_content_registers_once,
    template_versions_are_immutable,
    template_rejected_leaves_nothing,
    template_unknown_is_not_found,
    create_task_writes_steps_edges_and_trail,
    create_task_is_idempotent_by_key,
    create_task_records_metadata,
    create_task_rejects_bad_context_and_writes_nothing,
    create_task_pins_the_requested_version,
    unknown_ids_are_not_found,
    tasks_filter_and_page,
    // readiness and claims
    roots_are_ready_and_children_wait,
    explain_gives_every_reason,
    templates_are_listed_in_name_and_version_order,
    child_is_ready_only_when_all_parents_succeed,
    resolved_parent_counts_as_success,
    retry_waits_until_next_attempt_at,
    steps_of_a_cancelled_task_are_not_claimed,
    steps_of_an_errored_task_are_not_claimed,
    claim_respects_handler_keys_and_limit,
    claim_takes_oldest_first,
    claim_rejects_bad_requests,
    claim_starts_task_and_records_the_lease,
    claim_hands_out_context_config_and_parent_results,
    concurrent_claims_never_hand_out_a_step_twice,
    // leases
    heartbeat_extends_live_claims_only,
    reaper_retries_expired_leases_with_attempts_left,
    reaper_fails_exhausted_steps_as_worker_lost,
    late_completion_before_reaping_is_accepted,
    stale_tokens_are_rejected,
    batch_outcomes_are_judged_one_by_one,
    maintenance_reaps_and_announces_due_retries,
    // retries
    retryable_failure_backs_off_exponentially,
    retry_after_overrides_backoff_and_is_capped,
    permanent_failure_is_never_retried,
    non_retryable_step_runs_once,
    failure_details_are_recorded,
    // finalization
    all_steps_complete_then_task_completes,
    permanent_failure_lets_independent_branches_finish,
    task_errors_only_when_nothing_can_run,
    // operator actions and transitions
    cancel_cancels_every_unfinished_step,
    cancelling_a_finished_task_is_invalid,
    retry_task_gives_failed_steps_a_fresh_budget,
    retry_task_needs_an_errored_task,
    resolving_a_failed_step_resumes_the_task,
    resolving_the_last_failure_completes_the_task,
    resolving_a_completed_step_is_invalid,
    resolving_every_step_completes_a_pending_task,
    resolve_task_manually_from_error,
    every_legal_transition_is_reachable_and_recorded,
    illegal_operations_are_invalid_transitions,
    // events, introspection, analytics
    every_transition_publishes_an_event,
    subscriptions_filter_and_count_drops,
    execution_context_and_levels,
    health_counts_are_exact,
    analytics_metrics_are_exact,
    closed_engine_refuses_every_call,
    // the worker
    worker_runs_every_pattern_to_completion,
    worker_retries_failures_and_records_panics,
    worker_shuts_down_gracefully,
);
