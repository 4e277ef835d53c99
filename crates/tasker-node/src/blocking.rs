//! The one helper around a wait. Node never blocks: [`promise`] runs the future on the shared runtime and
//! returns a Promise that napi's deferred settles on the JS thread, where the value is lowered (or the
//! error built). A panic in the future is an `internal` error, as everywhere.

use std::future::Future;

use napi::bindgen_prelude::*;
use napi::JsValue;
use tasker_shared_ffi::{runtime, FfiError, FfiResult};

use crate::errors::IntoHost;

/// How a settled value becomes a JS value, on the JS thread.
pub type Settle<T> = fn(&Env, T) -> Result<Unknown<'_>>;

/// A Promise of `fut`'s result, lowered by `settle` on the JS thread.
pub fn promise<'env, T, F>(env: &'env Env, fut: F, settle: Settle<T>) -> Result<Object<'env>>
where
    T: Send + 'static,
    F: Future<Output = FfiResult<T>> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<napi::sys::napi_value, _>()?;
    let finish = move |r: FfiResult<T>| {
        deferred.resolve(move |env: Env| match r {
            Ok(v) => Ok(settle(&env, v)?.raw()),
            Err(e) => Err(e.into_host(&env)),
        })
    };
    match runtime::runtime() {
        // The outer task only awaits; `runtime::spawn` turns a panic of `fut` into an `internal` error, so
        // the Promise always settles.
        Ok(rt) => drop(rt.spawn(async move { finish(runtime::spawn(fut).await) })),
        Err(e) => finish(Err::<T, FfiError>(e)),
    }
    Ok(promise)
}

/// A Promise that rejects at once with `e` (an argument that did not lift), so that a call's every error
/// arrives the same way, as a rejection.
pub fn rejected<'env>(env: &'env Env, e: FfiError) -> Result<Object<'env>> {
    promise::<(), _>(env, async move { Err(e) }, |env, ()| ().into_unknown(env))
}
