//! `TaskerCore::Internal::Client`: the store handle and every engine operation, in tasker-shared-ffi's order.
//! lib/tasker_core/client.rb is the Ruby surface over it (keyword arguments, block form).

use magnus::{function, method, prelude::*, Error, RModule, RString, Ruby, Value};
use tasker_shared_ffi::TaskFilterInput;
use tasker_shared_ffi::{
    Client, ClientOptions, CreateTaskOptions, EventFilterInput, FfiResult, Lower, ScheduleOptions,
};

use crate::blocking::blocking;
use crate::convert::{lift_json, lift_options, lower};
use crate::errors::IntoHost;
use crate::events::RbSubscription;
use crate::worker::RbSession;

#[magnus::wrap(class = "TaskerCore::Internal::Client", free_immediately, size)]
pub struct RbClient {
    pub(crate) inner: Client,
}

impl RbClient {
    /// Calls the shared client with the GVL released and lowers what it returns: the body of most methods.
    pub(crate) fn call<T: Lower>(&self, ruby: &Ruby, f: impl FnOnce(Client) -> FfiResult<T>) -> Result<Value, Error> {
        let c = self.inner.clone();
        lower(ruby, &blocking(move || f(c))?)
    }

    fn open(ruby: &Ruby, url: String, options: Value) -> Result<RbClient, Error> {
        let options: ClientOptions = lift_options(ruby, options, "options")?;
        let inner = blocking(|| Client::open(&url, options))?;
        Ok(RbClient { inner })
    }

    fn close(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.close())
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn validate_or_refresh(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.validate_or_refresh())
    }

    fn refresh(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.refresh())
    }

    fn health(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.health().into_host()?)
    }

    fn now(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.now().into_host()?)
    }

    fn advance_clock_ms(ruby: &Ruby, rb_self: &Self, ms: i64) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.advance_clock_ms(ms).into_host()?)
    }

    fn subscribe(ruby: &Ruby, rb_self: &Self, filter: Value) -> Result<RbSubscription, Error> {
        let filter: EventFilterInput = lift_options(ruby, filter, "filter")?;
        Ok(RbSubscription::new(rb_self.inner.subscribe(filter).into_host()?))
    }

    fn worker_session(ruby: &Ruby, rb_self: &Self, options: Value) -> Result<RbSession, Error> {
        let options = lift_options(ruby, options, "options")?;
        let c = rb_self.inner.clone();
        Ok(RbSession::new(blocking(move || c.worker_session(options))?))
    }

    fn register_template(ruby: &Ruby, rb_self: &Self, source: Value) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        let reg = match RString::from_value(source) {
            Some(text) => {
                let text = text.to_string()?;
                blocking(move || c.register_template(&text))?
            }
            None => {
                let doc = lift_json(ruby, source, "template").into_host()?;
                blocking(move || c.register_template_value(&doc))?
            }
        };
        lower(ruby, &reg)
    }

    fn template(
        ruby: &Ruby,
        rb_self: &Self,
        ns: String,
        name: String,
        version: Option<String>,
    ) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.template(&ns, &name, version.as_deref()))
    }

    fn templates(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.templates())
    }

    fn create_task(ruby: &Ruby, rb_self: &Self, ns: String, name: String, opts: Value) -> Result<Value, Error> {
        // No prefix: a bad context reads `context.items[3].sku: …`, as the caller wrote it.
        let opts: CreateTaskOptions = lift_options(ruby, opts, "")?;
        rb_self.call(ruby, move |c| c.create_task(&ns, &name, opts))
    }

    fn task(ruby: &Ruby, rb_self: &Self, id: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.task(&id))
    }

    fn tasks(ruby: &Ruby, rb_self: &Self, filter: Value) -> Result<Value, Error> {
        let filter: TaskFilterInput = lift_options(ruby, filter, "filter")?;
        rb_self.call(ruby, move |c| c.tasks(filter))
    }

    fn steps(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.steps(&task_id))
    }

    fn step(ruby: &Ruby, rb_self: &Self, step_id: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.step(&step_id))
    }

    fn explain(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.explain(&task_id))
    }

    fn transitions(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.transitions(&task_id))
    }

    fn cancel_task(ruby: &Ruby, rb_self: &Self, task_id: String, reason: Option<String>) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.cancel_task(&task_id, reason.as_deref()))
    }

    fn run_task_now(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.run_task_now(&task_id))
    }

    fn retry_task(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.retry_task(&task_id))
    }

    fn resolve_step(ruby: &Ruby, rb_self: &Self, step_id: String, result: Value) -> Result<Value, Error> {
        let result = lift_json(ruby, result, "result").into_host()?;
        rb_self.call(ruby, move |c| c.resolve_step_manually(&step_id, result))
    }

    fn resolve_task(ruby: &Ruby, rb_self: &Self, task_id: String, reason: Option<String>) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(
            ruby,
            &blocking(move || c.resolve_task_manually(&task_id, reason.as_deref()))?,
        )
    }

    fn reap_expired_leases(ruby: &Ruby, rb_self: &Self, limit: u32) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.reap_expired_leases(limit))
    }

    fn register_schedule(
        ruby: &Ruby,
        rb_self: &Self,
        name: String,
        ns: String,
        template: String,
        cron: String,
        opts: Value,
    ) -> Result<Value, Error> {
        // No prefix, as for create_task: a bad option reads `misfire: …` or `context.items[3]: …`.
        let opts: ScheduleOptions = lift_options(ruby, opts, "")?;
        rb_self.call(ruby, move |c| c.register_schedule(&name, &ns, &template, &cron, opts))
    }

    fn pause_schedule(ruby: &Ruby, rb_self: &Self, name: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.pause_schedule(&name))
    }

    fn resume_schedule(ruby: &Ruby, rb_self: &Self, name: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.resume_schedule(&name))
    }

    fn remove_schedule(ruby: &Ruby, rb_self: &Self, name: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.remove_schedule(&name))
    }

    fn schedules(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.schedules())
    }

    fn schedule(ruby: &Ruby, rb_self: &Self, name: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.schedule(&name))
    }

    fn fire_schedules(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.fire_schedules())
    }
}

pub fn register(ruby: &Ruby, internal: RModule) -> Result<(), Error> {
    let class = internal.define_class("Client", ruby.class_object())?;
    class.define_singleton_method("open", function!(RbClient::open, 2))?;
    class.define_method("close", method!(RbClient::close, 0))?;
    class.define_method("closed?", method!(RbClient::is_closed, 0))?;
    class.define_method("validate_or_refresh", method!(RbClient::validate_or_refresh, 0))?;
    class.define_method("refresh", method!(RbClient::refresh, 0))?;
    class.define_method("health", method!(RbClient::health, 0))?;
    class.define_method("now", method!(RbClient::now, 0))?;
    class.define_method("advance_clock_ms", method!(RbClient::advance_clock_ms, 1))?;
    class.define_method("subscribe", method!(RbClient::subscribe, 1))?;
    class.define_method("worker_session", method!(RbClient::worker_session, 1))?;
    class.define_method("register_template", method!(RbClient::register_template, 1))?;
    class.define_method("template", method!(RbClient::template, 3))?;
    class.define_method("templates", method!(RbClient::templates, 0))?;
    class.define_method("create_task", method!(RbClient::create_task, 3))?;
    class.define_method("task", method!(RbClient::task, 1))?;
    class.define_method("tasks", method!(RbClient::tasks, 1))?;
    class.define_method("steps", method!(RbClient::steps, 1))?;
    class.define_method("step", method!(RbClient::step, 1))?;
    class.define_method("explain", method!(RbClient::explain, 1))?;
    class.define_method("transitions", method!(RbClient::transitions, 1))?;
    class.define_method("cancel_task", method!(RbClient::cancel_task, 2))?;
    class.define_method("run_task_now", method!(RbClient::run_task_now, 1))?;
    class.define_method("retry_task", method!(RbClient::retry_task, 1))?;
    class.define_method("resolve_step", method!(RbClient::resolve_step, 2))?;
    class.define_method("resolve_task", method!(RbClient::resolve_task, 2))?;
    class.define_method("reap_expired_leases", method!(RbClient::reap_expired_leases, 1))?;
    class.define_method("register_schedule", method!(RbClient::register_schedule, 5))?;
    class.define_method("pause_schedule", method!(RbClient::pause_schedule, 1))?;
    class.define_method("resume_schedule", method!(RbClient::resume_schedule, 1))?;
    class.define_method("remove_schedule", method!(RbClient::remove_schedule, 1))?;
    class.define_method("schedules", method!(RbClient::schedules, 0))?;
    class.define_method("schedule", method!(RbClient::schedule, 1))?;
    class.define_method("fire_schedules", method!(RbClient::fire_schedules, 0))?;
    Ok(())
}
