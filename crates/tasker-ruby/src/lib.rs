//! The Ruby binding of Tasker Core: a thin magnus adapter over tasker-shared-ffi.
//!
//! This crate converts, calls and maps errors; it holds no SQL and no state, DAG or retry rule. The native
//! classes live under `TaskerCore::Internal`; lib/tasker_core/*.rb is the Ruby surface over them. Every
//! call that can wait releases the GVL through [`gvl::without_gvl`], and nothing here calls Ruby from a
//! Tokio thread: the worker loop is Ruby's (lib/tasker_core/worker.rb).

use magnus::{prelude::*, Error, Ruby};

mod analytics;
mod client;
mod convert;
mod errors;
mod events;
mod gvl;
mod testing;
mod worker;

// The library file is installed as tasker_core.so, so Ruby looks for Init_tasker_core.
#[magnus::init(name = "tasker_core")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let top = ruby.define_module("TaskerCore")?;
    errors::init(ruby, top)?;
    let internal = top.define_module("Internal")?;
    client::init(ruby, internal)?;
    worker::init(ruby, internal)?;
    events::init(ruby, internal)?;
    testing::init(ruby, internal)?;
    Ok(())
}
