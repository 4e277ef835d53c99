//! `Subscription` (native): a bounded event subscription (made by `Client.subscribe`); lib/events.js makes
//! it an async iterable.

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tasker_shared_ffi as ffi;

use crate::blocking::{promise, rejected};
use crate::client::{lifted, settle};
use crate::convert::lower;
use crate::errors::IntoHost;

#[napi]
pub struct Subscription {
    inner: ffi::Subscription,
}

impl Subscription {
    pub(crate) fn new(inner: ffi::Subscription) -> Self {
        Subscription { inner }
    }
}

#[napi]
impl Subscription {
    /// The next event, waiting at most `timeoutMs` on the shared runtime; `null` when none came, or when the
    /// client was closed and the buffer is empty.
    #[napi]
    pub fn next<'env>(&self, env: &'env Env, timeout_ms: f64) -> Result<Object<'env>> {
        let timeout: Duration = lifted!(env, ffi::objects::seconds(timeout_ms / 1000.0, "timeoutMs"));
        let s = self.inner.clone();
        promise(env, async move { s.next_async(timeout).await }, settle)
    }

    #[napi]
    pub fn try_next<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        lower(env, &self.inner.try_next().into_host(env)?)
    }

    #[napi]
    pub fn drain<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        lower(env, &self.inner.drain().into_host(env)?)
    }

    #[napi]
    pub fn dropped(&self) -> f64 {
        self.inner.dropped() as f64
    }
}
