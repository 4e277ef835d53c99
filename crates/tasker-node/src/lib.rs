//! tasker-node: the napi-rs adapter of Tasker Core, built as the native addon `tasker_core.node`, with the
//! skeleton every binding shares (docs/bindings.md, "Adding a binding").
//!
//! The adapter is thin: each method converts its arguments (convert.rs), makes one call into
//! tasker-shared-ffi and maps errors (errors.rs). It holds no SQL and no state, DAG or retry rule; objects are
//! lowered by walking tasker-shared-ffi's object table into plain JS objects with camelCased fields. Every call
//! that touches the store returns a Promise: its future runs on the shared runtime
//! (`tasker_shared_ffi::runtime`) and the Promise settles on the JS thread through napi's deferred (a
//! threadsafe function), so the JS thread never blocks and no Tokio thread ever calls into JS. The worker loop
//! is JavaScript (lib/worker.js) driving a `WorkerSession`.

// napi-derive expands every `#[napi]` item into `unsafe extern "C"` glue, which the workspace's
// `unsafe_code = "deny"` would reject. This crate itself writes no `unsafe` block: everything here goes
// through napi's safe API.
#![allow(unsafe_code)]

use napi::bindgen_prelude::*;
use napi_derive::napi;

pub mod analytics;
pub mod blocking;
pub mod client;
pub mod convert;
pub mod errors;
pub mod events;
pub mod testing;
pub mod worker;

/// The addon's exports besides its classes and functions: the version, the error kinds and the object table.
#[napi(module_exports)]
pub fn module_exports(mut exports: Object, env: Env) -> Result<()> {
    exports.set("version", env!("CARGO_PKG_VERSION"))?;
    errors::register(&env, &mut exports)?;
    convert::register(&env, &mut exports)?;
    Ok(())
}
