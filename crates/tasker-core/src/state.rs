//! Task and step states, and the one table of legal transitions for each.
//!
//! Every state change in the engine goes through [`TaskState::apply`] or [`StepState::apply`]. Anything that
//! is not a row of these tables is an `invalid_transition` error.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable string form, as stored and as shown to users.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                match s {
                    $($s => Ok($name::$variant),)+
                    other => Err(crate::Error::field(
                        stringify!($name),
                        "",
                        format!("expected one of {}, found {other:?}", [$($s),+].join(", ")),
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// The state of a task.
    TaskState {
        Pending => "pending",
        InProgress => "in_progress",
        Complete => "complete",
        Error => "error",
        Cancelled => "cancelled",
        ResolvedManually => "resolved_manually",
    }
);

string_enum!(
    /// The state of a step.
    StepState {
        Pending => "pending",
        InProgress => "in_progress",
        WaitingForRetry => "waiting_for_retry",
        Complete => "complete",
        Error => "error",
        Cancelled => "cancelled",
        ResolvedManually => "resolved_manually",
    }
);

string_enum!(
    /// What happened to a task.
    TaskEvent {
        Start => "start",
        Complete => "complete",
        Fail => "fail",
        Cancel => "cancel",
        Retry => "retry",
        Resume => "resume",
        ResolveManually => "resolve_manually",
    }
);

string_enum!(
    /// What happened to a step.
    StepEvent {
        Claim => "claim",
        Complete => "complete",
        FailRetryable => "fail_retryable",
        FailPermanent => "fail_permanent",
        LeaseExpired => "lease_expired",
        WorkerLost => "worker_lost",
        Cancel => "cancel",
        Retry => "retry",
        ResolveManually => "resolve_manually",
    }
);

/// The legal task transitions: (from, event) → to.
pub const TASK_TRANSITIONS: &[(TaskState, TaskEvent, TaskState)] = {
    use TaskEvent as E;
    use TaskState as S;
    &[
        (S::Pending, E::Start, S::InProgress),
        (S::Pending, E::Complete, S::Complete),
        (S::InProgress, E::Complete, S::Complete),
        (S::InProgress, E::Fail, S::Error),
        (S::Pending, E::Cancel, S::Cancelled),
        (S::InProgress, E::Cancel, S::Cancelled),
        (S::Error, E::Cancel, S::Cancelled),
        (S::Error, E::Retry, S::InProgress),
        (S::Error, E::Resume, S::InProgress),
        (S::Error, E::Complete, S::Complete),
        (S::Error, E::ResolveManually, S::ResolvedManually),
    ]
};

/// The legal step transitions: (from, event) → to.
pub const STEP_TRANSITIONS: &[(StepState, StepEvent, StepState)] = {
    use StepEvent as E;
    use StepState as S;
    &[
        (S::Pending, E::Claim, S::InProgress),
        (S::WaitingForRetry, E::Claim, S::InProgress),
        (S::InProgress, E::Complete, S::Complete),
        (S::InProgress, E::FailRetryable, S::WaitingForRetry),
        (S::InProgress, E::FailPermanent, S::Error),
        (S::InProgress, E::LeaseExpired, S::WaitingForRetry),
        (S::InProgress, E::WorkerLost, S::Error),
        (S::Pending, E::Cancel, S::Cancelled),
        (S::InProgress, E::Cancel, S::Cancelled),
        (S::WaitingForRetry, E::Cancel, S::Cancelled),
        (S::Error, E::Retry, S::Pending),
        (S::Pending, E::ResolveManually, S::ResolvedManually),
        (S::Error, E::ResolveManually, S::ResolvedManually),
    ]
};

impl TaskState {
    /// The state reached from `self` by `event`, or `None` when the table has no such row.
    pub fn next(self, event: TaskEvent) -> Option<TaskState> {
        TASK_TRANSITIONS
            .iter()
            .find(|(f, e, _)| *f == self && *e == event)
            .map(|(_, _, t)| *t)
    }

    /// Like [`TaskState::next`], but an `invalid_transition` error naming the task when illegal.
    pub fn apply(self, event: TaskEvent, id: impl fmt::Display) -> crate::Result<TaskState> {
        self.next(event).ok_or_else(|| crate::Error::InvalidTransition {
            entity: "task",
            id: id.to_string(),
            from: self.to_string(),
            event: event.to_string(),
        })
    }

    /// Terminal states end the task; `error` ends it until an operator acts.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Complete | TaskState::Error | TaskState::Cancelled | TaskState::ResolvedManually
        )
    }

    /// Steps of a task in a runnable state may be claimed.
    pub fn is_runnable(self) -> bool {
        matches!(self, TaskState::Pending | TaskState::InProgress)
    }
}

impl StepState {
    /// The state reached from `self` by `event`, or `None` when the table has no such row.
    pub fn next(self, event: StepEvent) -> Option<StepState> {
        STEP_TRANSITIONS
            .iter()
            .find(|(f, e, _)| *f == self && *e == event)
            .map(|(_, _, t)| *t)
    }

    /// Like [`StepState::next`], but an `invalid_transition` error naming the step when illegal.
    pub fn apply(self, event: StepEvent, id: impl fmt::Display) -> crate::Result<StepState> {
        self.next(event).ok_or_else(|| crate::Error::InvalidTransition {
            entity: "step",
            id: id.to_string(),
            from: self.to_string(),
            event: event.to_string(),
        })
    }

    /// No further work happens in a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepState::Complete | StepState::Error | StepState::Cancelled | StepState::ResolvedManually
        )
    }

    /// Success for the purpose of dependants: `complete` or `resolved_manually`.
    pub fn is_success(self) -> bool {
        matches!(self, StepState::Complete | StepState::ResolvedManually)
    }

    /// The states from which a claim may take a step (the `claim` rows of the table).
    pub fn claimable() -> impl Iterator<Item = StepState> {
        STEP_TRANSITIONS
            .iter()
            .filter(|(_, e, _)| *e == StepEvent::Claim)
            .map(|(f, _, _)| *f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_no_duplicate_rows() {
        for (i, a) in TASK_TRANSITIONS.iter().enumerate() {
            for b in &TASK_TRANSITIONS[i + 1..] {
                assert!(!(a.0 == b.0 && a.1 == b.1), "duplicate task row {a:?}");
            }
        }
        for (i, a) in STEP_TRANSITIONS.iter().enumerate() {
            for b in &STEP_TRANSITIONS[i + 1..] {
                assert!(!(a.0 == b.0 && a.1 == b.1), "duplicate step row {a:?}");
            }
        }
    }

    #[test]
    fn terminal_step_states_only_leave_by_operator_action() {
        for (from, event, _) in STEP_TRANSITIONS {
            if from.is_terminal() {
                assert!(
                    matches!(event, StepEvent::Retry | StepEvent::ResolveManually),
                    "{from} --{event}-->"
                );
                assert_eq!(*from, StepState::Error);
            }
        }
    }

    #[test]
    fn states_round_trip_through_strings() {
        for s in StepState::ALL {
            assert_eq!(s.as_str().parse::<StepState>().unwrap(), *s);
        }
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), *s);
        }
        assert!("bogus".parse::<StepState>().is_err());
    }

    #[test]
    fn claimable_states_are_pending_and_waiting_for_retry() {
        let c: Vec<_> = StepState::claimable().collect();
        assert_eq!(c, vec![StepState::Pending, StepState::WaitingForRetry]);
    }
}
