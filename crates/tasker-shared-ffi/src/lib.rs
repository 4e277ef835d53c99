//! tasker-shared-ffi: everything language-neutral that every Tasker Core binding needs.
//!
//! Ruby (magnus), Python (pyo3), Node (napi), the JVM (jni) and WASM adapters all stand on this crate and
//! on nothing else of the engine, and this crate knows no host language. It holds:
//!
//! - [`runtime`]: the one Tokio runtime of the process (`native`), with the blocking and async call helpers;
//! - [`authoring`]: template checks, drawings and retry previews for editors, with no store;
//! - [`Client`]: the store handle (open, close, fork refusal, `validate_or_refresh`, health) and every
//!   engine operation;
//! - [`FfiError`] and [`ErrorKind`]: the error every binding maps to its exception classes;
//! - [`dto`]: the objects handed out (`Task`, `Step`, `StepContext`, …);
//! - [`objects`]: the one table of those objects and their fields' kinds, and the walk that lowers them into
//!   any host language;
//! - `WorkerSession`: the pull-based worker protocol (claim, complete, fail, heartbeats, shutdown; `native`,
//!   or `local` on wasm32, where the JS event loop drives it);
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

pub mod authoring;
pub mod client;
pub mod dto;
pub mod error;
pub mod events;
pub mod objects;
pub mod runtime;
// Its format names worker failure kinds, so it comes with a worker session (`native` or `local`).
#[cfg(all(feature = "scenario", any(feature = "native", feature = "local")))]
pub mod scenario;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(any(feature = "native", feature = "local"))]
pub mod worker;

pub use client::{
    AnalyticsFilterInput, Client, ClientOptions, ClockKind, CreateTaskOptions, ScheduleOptions, SinceInput,
    TaskFilterInput, DEFAULT_ANALYTICS_WINDOW,
};
pub use dto::*;
pub use error::{ErrorClass, ErrorKind, FfiError, FfiResult};
pub use events::{EventFilterInput, Subscription};
pub use objects::{HostObject, Lower, Lowering};

/// This process's id, recorded by handles to refuse use after a fork. A wasm32 module has no processes (std's
/// `process::id` panics there) and cannot fork, so it is always 0.
pub(crate) fn pid() -> u32 {
    #[cfg(target_arch = "wasm32")]
    return 0;
    #[cfg(not(target_arch = "wasm32"))]
    std::process::id()
}
#[cfg(any(feature = "native", feature = "local"))]
pub use worker::{
    FailureInput, FailureKind, HostOutcome, IdleRun, OutcomeInput, Reports, SessionStats, WorkerOptions, WorkerSession,
};
