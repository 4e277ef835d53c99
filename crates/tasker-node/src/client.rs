//! `Client` (native): the store handle and every engine operation, in tasker-shared-ffi's order. Every call
//! that touches the store returns a Promise (see blocking.rs); lib/client.js is the JS surface over it
//! (option objects, `Symbol.asyncDispose`, milliseconds).

use std::future::Future;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tasker_shared_ffi::{self as ffi, FfiResult, Lower};

use crate::blocking::{promise, rejected};
use crate::convert::{lift_options, lift_value, lower};
use crate::errors::IntoHost;
use crate::events::Subscription;
use crate::worker::WorkerSession;

/// Returns a rejected Promise from the enclosing method when an argument does not lift.
macro_rules! lifted {
    ($env:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return rejected($env, e),
        }
    };
}
pub(crate) use lifted;

/// The settle function of every result that is `Lower`.
pub(crate) fn settle<T: Lower>(env: &Env, value: T) -> Result<Unknown<'_>> {
    lower(env, &value)
}

#[napi]
pub struct Client {
    pub(crate) inner: ffi::Client,
}

impl Client {
    /// Runs `f`'s future on the shared runtime and lowers what it returns: the body of most methods.
    pub(crate) fn call<'env, T, F, Fut>(&self, env: &'env Env, f: F) -> Result<Object<'env>>
    where
        T: Lower + Send + 'static,
        F: FnOnce(ffi::Client) -> Fut,
        Fut: Future<Output = FfiResult<T>> + Send + 'static,
    {
        promise(env, f(self.inner.clone()), settle::<T>)
    }
}

const NOT_A_DEFINITION: &str = "expected a string (YAML or JSON) or an object";

fn settle_client(env: &Env, inner: ffi::Client) -> Result<Unknown<'_>> {
    Client { inner }.into_unknown(env)
}

#[napi]
impl Client {
    /// A Promise of a client on the store `url` names.
    #[napi]
    pub fn open<'env>(env: &'env Env, url: String, options: Option<Unknown>) -> Result<Object<'env>> {
        let options = lifted!(env, lift_options(options, "options"));
        promise(
            env,
            async move { ffi::Client::open_async(&url, options).await },
            settle_client,
        )
    }

    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.call(env, |c| async move { c.close_async().await })
    }

    #[napi]
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    #[napi]
    pub fn validate_or_refresh<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.call(env, |c| async move { c.validate_or_refresh_async().await })
    }

    #[napi]
    pub fn refresh<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.call(env, |c| async move { c.refresh_async().await })
    }

    #[napi]
    pub fn health<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        lower(env, &self.inner.health().into_host(env)?)
    }

    #[napi]
    pub fn now<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        lower(env, &self.inner.now().into_host(env)?)
    }

    #[napi]
    pub fn advance_clock_ms<'env>(&self, env: &'env Env, ms: i64) -> Result<Unknown<'env>> {
        lower(env, &self.inner.advance_clock_ms(ms).into_host(env)?)
    }

    #[napi]
    pub fn subscribe(&self, env: &Env, filter: Option<Unknown>) -> Result<Subscription> {
        let filter = lift_options(filter, "filter").into_host(env)?;
        Ok(Subscription::new(self.inner.subscribe(filter).into_host(env)?))
    }

    /// Starts a worker session; it does not wait (its background tasks start on the shared runtime).
    #[napi]
    pub fn worker_session(&self, env: &Env, options: Option<Unknown>) -> Result<WorkerSession> {
        let options = lift_options(options, "options").into_host(env)?;
        Ok(WorkerSession::new(self.inner.worker_session(options).into_host(env)?))
    }

    /// Registers a template given as YAML or JSON text, or as an object.
    #[napi]
    pub fn register_template<'env>(&self, env: &'env Env, source: Unknown) -> Result<Object<'env>> {
        match lifted!(env, lift_value(&source, "definition")) {
            serde_json::Value::String(text) => {
                self.call(env, move |c| async move { c.register_template_async(&text).await })
            }
            doc if doc.is_object() => {
                self.call(env, move |c| async move { c.register_template_value_async(&doc).await })
            }
            _ => rejected(env, ffi::FfiError::validation("definition", NOT_A_DEFINITION)),
        }
    }

    #[napi]
    pub fn template<'env>(
        &self,
        env: &'env Env,
        namespace: String,
        name: String,
        version: Option<String>,
    ) -> Result<Object<'env>> {
        self.call(env, move |c| async move {
            c.template_async(&namespace, &name, version.as_deref()).await
        })
    }

    #[napi]
    pub fn templates<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.call(env, |c| async move { c.templates_async().await })
    }

    #[napi]
    pub fn create_task<'env>(
        &self,
        env: &'env Env,
        namespace: String,
        name: String,
        options: Option<Unknown>,
    ) -> Result<Object<'env>> {
        // No prefix: a bad context reads `context.items[3].sku: …`, as the caller wrote it.
        let options = lifted!(env, lift_options(options, ""));
        self.call(env, move |c| async move {
            c.create_task_async(&namespace, &name, options).await
        })
    }

    #[napi]
    pub fn task<'env>(&self, env: &'env Env, task_id: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.task_async(&task_id).await })
    }

    #[napi]
    pub fn tasks<'env>(&self, env: &'env Env, filter: Option<Unknown>) -> Result<Object<'env>> {
        let filter = lifted!(env, lift_options(filter, "filter"));
        self.call(env, move |c| async move { c.tasks_async(filter).await })
    }

    #[napi]
    pub fn steps<'env>(&self, env: &'env Env, task_id: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.steps_async(&task_id).await })
    }

    #[napi]
    pub fn step<'env>(&self, env: &'env Env, step_id: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.step_async(&step_id).await })
    }

    #[napi]
    pub fn explain<'env>(&self, env: &'env Env, task_id: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.explain_async(&task_id).await })
    }

    #[napi]
    pub fn transitions<'env>(&self, env: &'env Env, task_id: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.transitions_async(&task_id).await })
    }

    #[napi]
    pub fn cancel_task<'env>(&self, env: &'env Env, task_id: String, reason: Option<String>) -> Result<Object<'env>> {
        self.call(env, move |c| async move {
            c.cancel_task_async(&task_id, reason.as_deref()).await
        })
    }

    #[napi]
    pub fn run_task_now<'env>(&self, env: &'env Env, task_id: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.run_task_now_async(&task_id).await })
    }

    #[napi]
    pub fn retry_task<'env>(&self, env: &'env Env, task_id: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.retry_task_async(&task_id).await })
    }

    #[napi]
    pub fn resolve_step<'env>(&self, env: &'env Env, step_id: String, result: Unknown) -> Result<Object<'env>> {
        let result = lifted!(env, lift_value(&result, "result"));
        self.call(env, move |c| async move {
            c.resolve_step_manually_async(&step_id, result).await
        })
    }

    #[napi]
    pub fn resolve_task<'env>(&self, env: &'env Env, task_id: String, reason: Option<String>) -> Result<Object<'env>> {
        self.call(env, move |c| async move {
            c.resolve_task_manually_async(&task_id, reason.as_deref()).await
        })
    }

    #[napi]
    pub fn reap_expired_leases<'env>(&self, env: &'env Env, limit: u32) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.reap_expired_leases_async(limit).await })
    }

    #[napi]
    pub fn register_schedule<'env>(
        &self,
        env: &'env Env,
        name: String,
        namespace: String,
        template: String,
        cron: String,
        options: Option<Unknown>,
    ) -> Result<Object<'env>> {
        // No prefix, as in `create_task`: a bad context reads `context.region: …`.
        let options = lifted!(env, lift_options(options, ""));
        self.call(env, move |c| async move {
            c.register_schedule_async(&name, &namespace, &template, &cron, options)
                .await
        })
    }

    #[napi]
    pub fn pause_schedule<'env>(&self, env: &'env Env, name: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.pause_schedule_async(&name).await })
    }

    #[napi]
    pub fn resume_schedule<'env>(&self, env: &'env Env, name: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.resume_schedule_async(&name).await })
    }

    #[napi]
    pub fn remove_schedule<'env>(&self, env: &'env Env, name: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.remove_schedule_async(&name).await })
    }

    #[napi]
    pub fn schedules<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.call(env, |c| async move { c.schedules_async().await })
    }

    #[napi]
    pub fn schedule<'env>(&self, env: &'env Env, name: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.schedule_async(&name).await })
    }

    #[napi]
    pub fn fire_schedules<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.call(env, |c| async move { c.fire_schedules_async().await })
    }
}
