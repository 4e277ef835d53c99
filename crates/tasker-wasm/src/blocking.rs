//! The one helper between a shared-layer future and JS. Nothing blocks in a browser: every call that touches
//! the store returns a Promise of the `_async` future, which wasm-bindgen-futures polls on the JS event loop,
//! and which settles with the lowered result or the error of its kind (errors.rs).

use std::future::Future;

use js_sys::Promise;
use tasker_shared_ffi::{FfiError, FfiResult, Lower};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::future_to_promise;

use crate::convert::lower;
use crate::errors::IntoHost;

/// A Promise of `fut`'s result, lowered through the object table.
pub fn promise<T: Lower + 'static>(fut: impl Future<Output = FfiResult<T>> + 'static) -> Promise {
    settle_with(fut, |v| lower(&v))
}

/// A Promise of `fut`'s result, lowered by `settle` (for results that are not table objects).
pub fn settle_with<T: 'static>(
    fut: impl Future<Output = FfiResult<T>> + 'static,
    settle: fn(T) -> Result<JsValue, JsValue>,
) -> Promise {
    future_to_promise(async move { settle(fut.await.into_host()?) })
}

/// A Promise rejected with `e`, for an argument that did not lift.
pub fn rejected(e: FfiError) -> Promise {
    Promise::reject(&e.into_host())
}

/// Returns a rejected Promise from the enclosing method when an argument does not lift.
macro_rules! lifted {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $crate::blocking::rejected(e),
        }
    };
}
pub(crate) use lifted;
