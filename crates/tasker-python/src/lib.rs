//! tasker-python: the pyo3 adapter of Tasker Core, built as the native module `tasker_core._native`.
//!
//! The adapter is thin: each function converts its arguments (convert.rs), makes one call into
//! tasker-shared-ffi and maps errors (errors.rs). It holds no SQL and no state, DAG or retry rule. Every call
//! that can wait runs with the GIL released through [`blocking`], and nothing here calls Python from a Tokio
//! thread: the worker loop is Python code (python/tasker_core/worker.py) driving a `WorkerSession`.

use pyo3::prelude::*;
use tasker_shared_ffi::FfiResult;

pub mod analytics;
pub mod client;
pub mod convert;
pub mod errors;
pub mod events;
pub mod testing;
pub mod worker;

use errors::IntoPy;

/// The one way this crate makes a call that can wait: with the GIL released, so other Python threads run
/// meanwhile (holding it while waiting on a Rust lock can deadlock against a thread that needs the GIL).
pub(crate) fn blocking<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> FfiResult<T> + Send,
{
    py.detach(f).map_err(|e| e.into_py(py))
}

/// The native module. The public surface is re-exported by python/tasker_core/__init__.py.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    convert::register(m)?;
    m.add_class::<client::Client>()?;
    m.add_class::<worker::WorkerSession>()?;
    m.add_class::<events::Subscription>()?;
    testing::register(m)?;
    analytics::register(m)?;
    Ok(())
}
