//! tasker-shared-ffi: everything language-neutral that every Tasker Core binding needs.
//!
//! Ruby (magnus), Python (pyo3), Node (napi), the JVM (jni) and WASM adapters all stand on this crate and
//! on nothing else of the engine, and this crate knows no host language. It holds:
//!
//! - [`runtime`]: the one Tokio runtime of the process (`native`), with the blocking and async call helpers;
//! - [`Client`]: the store handle (open, close, fork refusal, `validate_or_refresh`, health) and every
//!   engine operation;
//! - [`FfiError`] and [`ErrorKind`]: the error every binding maps to its exception classes;
//! - [`dto`]: the objects handed out (`Task`, `Step`, `StepContext`, …);
//! - [`objects`]: the one table of those objects and their fields' kinds, and the walk that lowers them into
//!   any host language;
//! - `WorkerSession`: the pull-based worker protocol (claim, complete, fail, heartbeats, shutdown; `native`);
//! - [`Subscription`]: bounded event subscriptions;
//! - `testkit`: factory workflows and run-until-idle with scripted handlers (feature `testkit`);
//! - `scenario`: the reference runner of the language-neutral scenarios in `tests/scenarios/` (`scenario`).
//!
//! Call convention: `x(…)` blocks the calling thread and `x_async(…)` is its `async` form, whose work runs
//! on the shared runtime (see [`client`]). docs/bindings.md maps every type and error kind to each host.
//!
//! Features (all on by default): `native` (the runtime, the blocking forms and the worker session), `sqlite`,
//! `postgres`, `testkit` and `scenario`. With none of them the memory engine and the `_async` forms remain,
//! awaited in place on the caller's executor: the base a WASM adapter stands on.

pub mod client;
pub mod dto;
pub mod error;
pub mod events;
pub mod objects;
pub mod runtime;
#[cfg(feature = "scenario")]
pub mod scenario;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(feature = "native")]
pub mod worker;

pub use client::{
    AnalyticsFilterInput, Client, ClientOptions, ClockKind, CreateTaskOptions, SinceInput, TaskFilterInput,
    DEFAULT_ANALYTICS_WINDOW,
};
pub use dto::*;
pub use error::{ErrorClass, ErrorKind, FfiError, FfiResult};
pub use events::{EventFilterInput, Subscription};
pub use objects::{HostObject, Lower, Lowering};
#[cfg(feature = "native")]
pub use worker::{
    FailureInput, FailureKind, HostOutcome, IdleRun, OutcomeInput, Reports, SessionStats, WorkerOptions, WorkerSession,
};
