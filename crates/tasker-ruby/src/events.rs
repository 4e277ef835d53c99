//! `TaskerCore::Internal::Subscription`: a bounded event subscription (made by `Client#subscribe`);
//! lib/tasker_core/events.rb adds `each`.

use magnus::{method, prelude::*, Error, RModule, Ruby, Value};
use tasker_shared_ffi::Subscription;

use crate::blocking::blocking;
use crate::convert::{lift_seconds, lower};
use crate::errors::IntoHost;

#[magnus::wrap(class = "TaskerCore::Internal::Subscription", free_immediately, size)]
pub struct RbSubscription {
    inner: Subscription,
}

impl RbSubscription {
    pub(crate) fn new(inner: Subscription) -> Self {
        RbSubscription { inner }
    }

    fn next(ruby: &Ruby, rb_self: &Self, timeout: f64) -> Result<Value, Error> {
        let timeout = lift_seconds(timeout, "timeout")?;
        let s = rb_self.inner.clone();
        lower(ruby, &blocking(move || s.next(timeout))?)
    }

    fn try_next(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.try_next().into_host()?)
    }

    fn drain(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.drain().into_host()?)
    }

    fn dropped(&self) -> u64 {
        self.inner.dropped()
    }
}

pub fn register(ruby: &Ruby, internal: RModule) -> Result<(), Error> {
    let class = internal.define_class("Subscription", ruby.class_object())?;
    class.define_method("next", method!(RbSubscription::next, 1))?;
    class.define_method("try_next", method!(RbSubscription::try_next, 0))?;
    class.define_method("drain", method!(RbSubscription::drain, 0))?;
    class.define_method("dropped", method!(RbSubscription::dropped, 0))?;
    Ok(())
}
