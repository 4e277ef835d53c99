//! tasker-python: the pyo3 adapter of Tasker Core, built as the native module `tasker_core._native`, with the
//! skeleton every binding shares (docs/bindings.md, "Adding a binding").
//!
//! The adapter is thin: each function converts its arguments (convert.rs), makes one call into
//! tasker-shared-ffi and maps errors (errors.rs). It holds no SQL and no state, DAG or retry rule; the object
//! classes (`Task`, …) come from tasker-shared-ffi's object table. Every call that can wait runs with the GIL
//! released through [`blocking::blocking`], and nothing here calls Python from a Tokio thread: the worker loop
//! is Python code (python/tasker_core/worker.py) driving a `WorkerSession`.

use pyo3::prelude::*;

pub mod analytics;
pub mod blocking;
pub mod client;
pub mod convert;
pub mod errors;
pub mod events;
pub mod testing;
pub mod worker;

/// The native module. The public surface is re-exported by python/tasker_core/__init__.py.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    convert::register(m)?;
    client::register(m)?;
    worker::register(m)?;
    events::register(m)?;
    testing::register(m)?;
    Ok(())
}
