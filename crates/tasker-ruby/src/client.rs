//! `TaskerCore::Internal::Client`: the store handle and every engine operation. lib/tasker_core/client.rb
//! is the Ruby surface over it (keyword arguments, block form, result classes).

use magnus::{function, method, prelude::*, Error, RArray, RModule, Ruby, Value};
use tasker_shared_ffi::{Client, ClientOptions, CreateTaskOptions, TaskFilterInput};

use crate::convert::{lift_struct, lift_value, lower, lower_all, lower_time};
use crate::errors::RbResult;
use crate::gvl::without_gvl;

#[magnus::wrap(class = "TaskerCore::Internal::Client", free_immediately, size)]
pub struct RbClient {
    pub(crate) inner: Client,
}

impl RbClient {
    fn open(ruby: &Ruby, url: String, options: Value) -> Result<RbClient, Error> {
        let options: ClientOptions = lift_struct(ruby, options, "options")?;
        let inner = without_gvl(|| Client::open(&url, options)).rb()?;
        Ok(RbClient { inner })
    }

    fn close(&self) -> Result<(), Error> {
        let c = self.inner.clone();
        without_gvl(move || c.close()).rb()
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn validate_or_refresh(&self) -> Result<bool, Error> {
        let c = self.inner.clone();
        without_gvl(move || c.validate_or_refresh()).rb()
    }

    fn health(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.health().rb()?)
    }

    fn now(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower_time(ruby, &rb_self.inner.now().rb()?.to_rfc3339())
    }

    fn advance_clock_ms(ruby: &Ruby, rb_self: &Self, ms: i64) -> Result<Value, Error> {
        lower_time(ruby, &rb_self.inner.advance_clock_ms(ms).rb()?.to_rfc3339())
    }

    fn register_template(ruby: &Ruby, rb_self: &Self, source: Value) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        let reg = match magnus::RString::from_value(source) {
            Some(text) => {
                let text = text.to_string()?;
                without_gvl(move || c.register_template(&text)).rb()?
            }
            None => {
                let doc = lift_value(ruby, source, "template").rb()?;
                without_gvl(move || c.register_template_value(&doc)).rb()?
            }
        };
        lower(ruby, &reg)
    }

    fn templates(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        let c = rb_self.inner.clone();
        lower_all(ruby, &without_gvl(move || c.templates()).rb()?)
    }

    fn create_task(ruby: &Ruby, rb_self: &Self, ns: String, name: String, opts: Value) -> Result<Value, Error> {
        // No prefix: a bad context reads `context.items[3].sku: …`, as the caller wrote it.
        let opts: CreateTaskOptions = lift_struct(ruby, opts, "")?;
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.create_task(&ns, &name, opts)).rb()?)
    }

    fn task(ruby: &Ruby, rb_self: &Self, id: String) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.task(&id)).rb()?)
    }

    fn tasks(ruby: &Ruby, rb_self: &Self, filter: Value) -> Result<RArray, Error> {
        let filter: TaskFilterInput = lift_struct(ruby, filter, "filter")?;
        let c = rb_self.inner.clone();
        lower_all(ruby, &without_gvl(move || c.tasks(filter)).rb()?)
    }

    fn steps(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<RArray, Error> {
        let c = rb_self.inner.clone();
        lower_all(ruby, &without_gvl(move || c.steps(&task_id)).rb()?)
    }

    fn step(ruby: &Ruby, rb_self: &Self, step_id: String) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.step(&step_id)).rb()?)
    }

    fn explain(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.explain(&task_id)).rb()?)
    }

    fn transitions(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.transitions(&task_id)).rb()?)
    }

    fn cancel_task(ruby: &Ruby, rb_self: &Self, task_id: String, reason: Option<String>) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(
            ruby,
            &without_gvl(move || c.cancel_task(&task_id, reason.as_deref())).rb()?,
        )
    }

    fn retry_task(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.retry_task(&task_id)).rb()?)
    }

    fn resolve_step(ruby: &Ruby, rb_self: &Self, step_id: String, result: Value) -> Result<Value, Error> {
        let result = lift_value(ruby, result, "result").rb()?;
        let c = rb_self.inner.clone();
        lower(
            ruby,
            &without_gvl(move || c.resolve_step_manually(&step_id, result)).rb()?,
        )
    }

    fn resolve_task(ruby: &Ruby, rb_self: &Self, task_id: String, reason: Option<String>) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(
            ruby,
            &without_gvl(move || c.resolve_task_manually(&task_id, reason.as_deref())).rb()?,
        )
    }

    fn reap_expired_leases(ruby: &Ruby, rb_self: &Self, limit: u32) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.reap_expired_leases(limit)).rb()?)
    }
}

pub fn init(ruby: &Ruby, internal: RModule) -> Result<(), Error> {
    let class = internal.define_class("Client", ruby.class_object())?;
    class.define_singleton_method("open", function!(RbClient::open, 2))?;
    class.define_method("close", method!(RbClient::close, 0))?;
    class.define_method("closed?", method!(RbClient::is_closed, 0))?;
    class.define_method("validate_or_refresh", method!(RbClient::validate_or_refresh, 0))?;
    class.define_method("health", method!(RbClient::health, 0))?;
    class.define_method("now", method!(RbClient::now, 0))?;
    class.define_method("advance_clock_ms", method!(RbClient::advance_clock_ms, 1))?;
    class.define_method("register_template", method!(RbClient::register_template, 1))?;
    class.define_method("templates", method!(RbClient::templates, 0))?;
    class.define_method("create_task", method!(RbClient::create_task, 3))?;
    class.define_method("task", method!(RbClient::task, 1))?;
    class.define_method("tasks", method!(RbClient::tasks, 1))?;
    class.define_method("steps", method!(RbClient::steps, 1))?;
    class.define_method("step", method!(RbClient::step, 1))?;
    class.define_method("explain", method!(RbClient::explain, 1))?;
    class.define_method("transitions", method!(RbClient::transitions, 1))?;
    class.define_method("cancel_task", method!(RbClient::cancel_task, 2))?;
    class.define_method("retry_task", method!(RbClient::retry_task, 1))?;
    class.define_method("resolve_step", method!(RbClient::resolve_step, 2))?;
    class.define_method("resolve_task", method!(RbClient::resolve_task, 2))?;
    class.define_method("reap_expired_leases", method!(RbClient::reap_expired_leases, 1))?;
    crate::analytics::init(class)?;
    Ok(())
}
