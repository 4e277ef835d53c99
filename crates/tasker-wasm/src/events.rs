//! `Subscription` (native): the event subscription of docs/bindings.md §7. `recv` waits with no timer and no
//! runtime (the shared layer's `recv_async`); js/events.js makes it an async iterable, which ends once the
//! client is closed and the buffer is empty.

use js_sys::Promise;
use tasker_shared_ffi as ffi;
use wasm_bindgen::prelude::*;

use crate::blocking::promise;
use crate::convert::lower;
use crate::errors::IntoHost;

#[wasm_bindgen]
pub struct Subscription {
    inner: ffi::Subscription,
}

impl Subscription {
    pub(crate) fn new(inner: ffi::Subscription) -> Self {
        Subscription { inner }
    }
}

#[wasm_bindgen]
impl Subscription {
    /// A Promise of the next event, however long it takes; `null` once the client is closed and nothing is
    /// buffered.
    pub fn recv(&self) -> Promise {
        let s = self.inner.clone();
        promise(async move { s.recv_async().await })
    }

    /// The next buffered event, never waiting; `null` when none is buffered.
    #[wasm_bindgen(js_name = tryNext)]
    pub fn try_next(&self) -> Result<JsValue, JsValue> {
        lower(&self.inner.try_next().into_host()?)
    }

    /// Every buffered event, never waiting.
    pub fn drain(&self) -> Result<JsValue, JsValue> {
        lower(&self.inner.drain().into_host()?)
    }

    /// Events lost because this subscription fell more than its buffer behind.
    pub fn dropped(&self) -> f64 {
        self.inner.dropped() as f64
    }
}
