//! Tasker Core: a workflow orchestration engine.
//!
//! Users define DAG workflows as [`Template`]s; a [`Task`] is one run of a template with a JSON context.
//! The [`Engine`] persists every state change through a [`store::Store`], decides which steps are ready,
//! hands them to workers through claims with leases, retries failures with backoff, recovers the steps
//! of crashed workers and finalizes tasks. See `docs/ARCHITECTURE.md` for the invariants.

pub mod analytics;
pub mod clock;
pub mod engine;
pub mod error;
pub mod events;
pub mod model;
pub mod readiness;
pub mod retry;
pub mod state;
pub mod store;
pub mod template;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod url;
pub mod worker;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use engine::{Engine, EngineOptions};
pub use error::{Error, ErrorKind, FieldError, Result};
pub use model::*;
pub use state::{StepEvent, StepState, TaskEvent, TaskState};
pub use template::Template;
