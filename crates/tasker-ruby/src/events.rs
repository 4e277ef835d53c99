//! `TaskerCore::Internal::Subscription`: a bounded event subscription; lib/tasker_core/events.rb adds
//! `each` and the `Event` class.

use magnus::{function, method, prelude::*, Error, RArray, RModule, Ruby, Value};
use tasker_shared_ffi::{EventFilterInput, Subscription};

use crate::client::RbClient;
use crate::convert::{lift_seconds, lift_struct, lower, lower_all};
use crate::errors::RbResult;
use crate::gvl::without_gvl;

#[magnus::wrap(class = "TaskerCore::Internal::Subscription", free_immediately, size)]
pub struct RbSubscription {
    inner: Subscription,
}

impl RbSubscription {
    fn open(ruby: &Ruby, client: &RbClient, filter: Value) -> Result<RbSubscription, Error> {
        let filter: EventFilterInput = lift_struct(ruby, filter, "filter")?;
        let inner = client.inner.subscribe(filter).rb()?;
        Ok(RbSubscription { inner })
    }

    fn next(ruby: &Ruby, rb_self: &Self, timeout: f64) -> Result<Value, Error> {
        let timeout = lift_seconds(timeout, "timeout")?;
        let s = rb_self.inner.clone();
        match without_gvl(move || s.next(timeout)).rb()? {
            Some(e) => lower(ruby, &e),
            None => Ok(ruby.qnil().as_value()),
        }
    }

    fn try_next(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        match rb_self.inner.try_next().rb()? {
            Some(e) => lower(ruby, &e),
            None => Ok(ruby.qnil().as_value()),
        }
    }

    fn drain(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        lower_all(ruby, &rb_self.inner.drain().rb()?)
    }

    fn dropped(&self) -> u64 {
        self.inner.dropped()
    }
}

pub fn init(ruby: &Ruby, internal: RModule) -> Result<(), Error> {
    let class = internal.define_class("Subscription", ruby.class_object())?;
    class.define_singleton_method("open", function!(RbSubscription::open, 2))?;
    class.define_method("next", method!(RbSubscription::next, 1))?;
    class.define_method("try_next", method!(RbSubscription::try_next, 0))?;
    class.define_method("drain", method!(RbSubscription::drain, 0))?;
    class.define_method("dropped", method!(RbSubscription::dropped, 0))?;
    Ok(())
}
