//! The one helper that releases the host's lock around a wait: here, the GIL.

use pyo3::prelude::*;
use tasker_shared_ffi::FfiResult;

use crate::errors::IntoHost;

/// Runs `f` with the GIL released, so other Python threads run meanwhile (holding it while waiting on a Rust
/// lock can deadlock against a thread that needs the GIL); its error becomes the exception of its kind.
pub fn blocking<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> FfiResult<T> + Send,
{
    py.detach(f).into_host()
}
