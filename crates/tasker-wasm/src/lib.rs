//! The WASM binding of Tasker Core: tasker-shared-ffi's memory engine behind wasm-bindgen, for a browser tab
//! or Node. The files follow the adapter skeleton of docs/bindings.md §10; the JavaScript surface
//! (`Engine`, `Worker`, the errors, `testing`) is js/*.js over the classes exported here.
//!
//! There are no threads: every engine call is the shared layer's `_async` future, awaited in place on the
//! JS event loop (wasm-bindgen-futures), and the worker session's background work runs there as local tasks
//! (tasker-core's `local` feature). On any other target the crate is empty.
#![cfg(target_arch = "wasm32")]

mod analytics;
mod blocking;
mod client;
mod convert;
mod errors;
mod events;
mod testing;
mod worker;

use wasm_bindgen::prelude::*;

/// The package version, which is the workspace's.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
