//! The one helper that releases the host's lock around a wait: here, the GVL.
//!
//! Every call into tasker-shared-ffi that can wait (database work, a claim that waits for work, an event
//! subscription's `next`) goes through [`blocking`], so other Ruby threads run while it waits. The closure
//! must not touch any Ruby object: arguments are lifted into Rust values before, results lowered after.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use magnus::Error;
use tasker_shared_ffi::{FfiError, FfiResult};

use crate::errors::IntoHost;

struct Call<F, T> {
    f: Option<F>,
    out: Option<FfiResult<T>>,
}

extern "C" fn trampoline<F, T>(data: *mut c_void) -> *mut c_void
where
    F: FnOnce() -> FfiResult<T>,
{
    // SAFETY: `data` is the `&mut Call<F, T>` that `blocking` passed in and keeps alive for the whole call.
    #[allow(unsafe_code)]
    let call = unsafe { &mut *data.cast::<Call<F, T>>() };
    if let Some(f) = call.f.take() {
        // A panic must not unwind into Ruby's C frames; it becomes an `internal` error.
        call.out = Some(catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(FfiError::from_panic(&*p))));
    }
    std::ptr::null_mut()
}

/// Runs `f` with the GVL released; its error becomes the Ruby exception of its kind.
///
/// No unblocking function is passed: Ruby interrupts (Thread#kill, signals) are delivered when `f` returns.
/// Every waiting call here is bounded (claims wait at most their `wait`, `next` its timeout, and
/// `WorkerSession::shutdown` wakes a waiting claim), so a stop never waits longer than one wait.
pub fn blocking<T, F>(f: F) -> Result<T, Error>
where
    F: FnOnce() -> FfiResult<T>,
{
    let mut call = Call { f: Some(f), out: None };
    // SAFETY: rb_thread_call_without_gvl is called from a Ruby thread holding the GVL (every method of this
    // crate is); the trampoline touches no Ruby object and `call` outlives the call.
    #[allow(unsafe_code)]
    unsafe {
        rb_sys::rb_thread_call_without_gvl(
            Some(trampoline::<F, T>),
            (&mut call as *mut Call<F, T>).cast::<c_void>(),
            None,
            std::ptr::null_mut(),
        );
    }
    call.out
        .unwrap_or_else(|| Err(FfiError::internal("the call released the GVL but never ran")))
        .into_host()
}
