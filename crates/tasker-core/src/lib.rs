//! Tasker Core: a workflow orchestration engine.
//!
//! Users define DAG workflows as [`Template`]s; a [`Task`] is one run of a template with a JSON context.
//! The [`Engine`] persists every state change through a [`store::Store`], decides which steps are ready,
//! hands them to workers through claims with leases, retries failures with backoff, recovers the steps
//! of crashed workers and finalizes tasks. See `docs/ARCHITECTURE.md` for the invariants.
//!
//! Features: `runtime` (on by default) brings a multi-thread Tokio runtime and what needs one: the native
//! [`worker`], the test kit's run-until-idle, timed event waits and the SQL stores (`sqlite`, `postgres`,
//! both on by default). Without them the crate builds for `wasm32-unknown-unknown`, with the in-memory store;
//! `local` adds the worker `session` there, driven by the JS event loop.

pub mod analytics;
pub mod clock;
pub mod engine;
pub mod error;
pub mod events;
#[cfg(feature = "runtime")]
pub mod feed;
pub mod model;
pub mod readiness;
pub mod retry;
#[cfg(any(feature = "runtime", feature = "local"))]
mod rt;
pub mod schedule;
#[cfg(any(feature = "runtime", feature = "local"))]
pub mod session;
pub mod state;
pub mod store;
pub mod template;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod url;
#[cfg(feature = "runtime")]
pub mod worker;

pub use clock::{Clock, ManualClock, SkewedClock, SystemClock, Timestamp};
pub use engine::{Engine, EngineOptions};
pub use error::{Error, ErrorKind, FieldError, Result};
pub use model::*;
pub use schedule::{Misfire, RegisterSchedule, Schedule};
pub use state::{StepEvent, StepState, TaskEvent, TaskState};
pub use template::Template;
