//! The Ruby binding of Tasker Core: a thin magnus adapter over tasker-shared-ffi, with the skeleton every
//! binding shares (docs/bindings.md, "Adding a binding").
//!
//! This crate converts, calls and maps errors; it holds no SQL and no state, DAG or retry rule. The native
//! classes live under `TaskerCore::Internal`; lib/tasker_core/*.rb is the Ruby surface over them, and the
//! object classes (`TaskerCore::Task`, …) come from tasker-shared-ffi's object table. Every call that can
//! wait releases the GVL through [`blocking::blocking`], and nothing here calls Ruby from a Tokio thread:
//! the worker loop is Ruby's (lib/tasker_core/worker.rb).

use magnus::{prelude::*, Error, Ruby};

mod analytics;
mod blocking;
mod client;
mod convert;
mod errors;
mod events;
mod testing;
mod worker;

// The library file is installed as tasker_core.so, so Ruby looks for Init_tasker_core.
#[magnus::init(name = "tasker_core")]
fn register(ruby: &Ruby) -> Result<(), Error> {
    let top = ruby.define_module("TaskerCore")?;
    errors::register(ruby, top)?;
    convert::register(ruby, top)?;
    let internal = top.define_module("Internal")?;
    client::register(ruby, internal)?;
    worker::register(ruby, internal)?;
    events::register(ruby, internal)?;
    analytics::register(ruby, internal)?;
    testing::register(ruby, internal)?;
    Ok(())
}
