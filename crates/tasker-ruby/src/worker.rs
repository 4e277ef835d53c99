//! `TaskerCore::Internal::WorkerSession`: the pull-based worker protocol (made by `Client#worker_session`).
//! The Ruby loop in
//! lib/tasker_core/worker.rb claims here, runs handlers on Ruby threads and reports back here; nothing in
//! Rust ever calls a Ruby handler.

use magnus::{method, prelude::*, Error, RArray, RModule, Ruby, Value};
use tasker_shared_ffi::{objects, ClaimToken, FailureInput, OutcomeInput, WorkerSession};

use crate::blocking::blocking;
use crate::convert::{lift_json, lift_options, lift_seconds, lower};
use crate::errors::IntoHost;

#[magnus::wrap(class = "TaskerCore::Internal::WorkerSession", free_immediately, size)]
pub struct RbSession {
    inner: WorkerSession,
}

impl RbSession {
    pub(crate) fn new(inner: WorkerSession) -> Self {
        RbSession { inner }
    }

    fn claim(ruby: &Ruby, rb_self: &Self, max: u32, wait: f64) -> Result<Value, Error> {
        let wait = lift_seconds(wait, "wait")?;
        let s = rb_self.inner.clone();
        lower(ruby, &blocking(move || s.claim(max, wait))?)
    }

    fn complete(ruby: &Ruby, rb_self: &Self, step_id: String, attempt: i64, result: Value) -> Result<Value, Error> {
        let result = lift_json(ruby, result, "result").into_host()?;
        let s = rb_self.inner.clone();
        let token = ClaimToken::new(step_id, attempt);
        lower(ruby, &blocking(move || s.complete(&token, result))?)
    }

    fn fail(ruby: &Ruby, rb_self: &Self, step_id: String, attempt: i64, failure: Value) -> Result<Value, Error> {
        let failure: FailureInput = lift_options(ruby, failure, "failure")?;
        let s = rb_self.inner.clone();
        let token = ClaimToken::new(step_id, attempt);
        lower(ruby, &blocking(move || s.fail(&token, failure))?)
    }

    /// Reports many outcomes in one transaction. `items` is an Array of `[token, outcome]`: token
    /// `{"step_id" => …, "attempt" => …}`, outcome `{"success" => result}` or `{"failure" => {kind, message,
    /// error_class, backtrace, retry_after_ms, code}}`. Returns one entry per item, in order: the `Step`,
    /// or the exception (not raised) that rejected that item. Only a store failure raises, and then nothing
    /// was written.
    fn finish_many(ruby: &Ruby, rb_self: &Self, items: RArray) -> Result<RArray, Error> {
        let json = lift_json(ruby, items.as_value(), "items").into_host()?;
        let items: Vec<(ClaimToken, OutcomeInput)> = objects::options(json, "items").into_host()?;
        let s = rb_self.inner.clone();
        let results = blocking(move || s.finish_many(items))?;
        let out = ruby.ary_new_capa(results.len());
        for r in results {
            let v = match r {
                Ok(step) => lower(ruby, &step)?,
                Err(e) => {
                    let e = e.into_host();
                    e.value().ok_or(e)?
                }
            };
            out.push(v)?;
        }
        Ok(out)
    }

    fn forget(&self, step_id: String, attempt: i64) -> Result<(), Error> {
        self.inner.forget(&ClaimToken::new(step_id, attempt)).into_host()
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn is_shutdown(&self) -> bool {
        self.inner.is_shutdown()
    }

    fn stats(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.stats())
    }

    fn outstanding(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.outstanding())
    }

    /// When the next retry of this session's keys falls due, or nil; run_until_idle's idle rule needs it.
    fn next_retry_at(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let inner = rb_self.inner.clone();
        lower(ruby, &blocking(move || inner.next_retry_at())?)
    }
}

pub fn register(ruby: &Ruby, internal: RModule) -> Result<(), Error> {
    let class = internal.define_class("WorkerSession", ruby.class_object())?;
    class.define_method("claim", method!(RbSession::claim, 2))?;
    class.define_method("complete", method!(RbSession::complete, 3))?;
    class.define_method("fail", method!(RbSession::fail, 3))?;
    class.define_method("finish_many", method!(RbSession::finish_many, 1))?;
    class.define_method("forget", method!(RbSession::forget, 2))?;
    class.define_method("shutdown", method!(RbSession::shutdown, 0))?;
    class.define_method("shutdown?", method!(RbSession::is_shutdown, 0))?;
    class.define_method("stats", method!(RbSession::stats, 0))?;
    class.define_method("outstanding", method!(RbSession::outstanding, 0))?;
    class.define_method("next_retry_at", method!(RbSession::next_retry_at, 0))?;
    Ok(())
}
