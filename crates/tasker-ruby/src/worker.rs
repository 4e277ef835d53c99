//! `TaskerCore::Internal::WorkerSession` and `TaskerCore::Internal::IdleRun`: the one worker session of
//! docs/bindings.md §6 (made by `Client#worker_session`) and its run until idle. The Ruby loop in
//! lib/tasker_core/worker.rb claims here, runs handlers on Ruby threads and reports back here; nothing in
//! Rust ever calls a Ruby handler.

use magnus::{method, prelude::*, Error, RArray, RModule, Ruby, Value};
use tasker_shared_ffi::{FailureInput, HostOutcome, IdleRun, Reports, WorkerSession};

use crate::blocking::blocking;
use crate::convert::{lift_json, lift_options, lift_outcome, lift_seconds, lift_token, lower};
use crate::errors::IntoHost;

/// The session and the idle run take outcomes the same way; these are their `report*` and `forget` methods.
trait Target {
    fn target(&self) -> &dyn Reports;
}

/// The handler returned `result`: the shared layer makes a lift error an `InvalidResult` failure.
fn report<T: Target>(ruby: &Ruby, rb_self: &T, token: Value, result: Value) -> Result<(), Error> {
    let outcome = HostOutcome::returned(lift_json(ruby, result, "result"));
    rb_self.target().report(&lift_token(ruby, token)?, outcome).into_host()
}

/// The handler raised; `failure` is `Worker.failure_for`'s Hash.
fn report_failure<T: Target>(ruby: &Ruby, rb_self: &T, token: Value, failure: Value) -> Result<(), Error> {
    let outcome = HostOutcome::Failure(lift_options::<FailureInput>(ruby, failure, "failure")?);
    rb_self.target().report(&lift_token(ruby, token)?, outcome).into_host()
}

fn report_missing<T: Target>(ruby: &Ruby, rb_self: &T, token: Value, handler_key: String) -> Result<(), Error> {
    let outcome = HostOutcome::HandlerMissing(handler_key);
    rb_self.target().report(&lift_token(ruby, token)?, outcome).into_host()
}

fn forget<T: Target>(ruby: &Ruby, rb_self: &T, token: Value) -> Result<(), Error> {
    rb_self.target().forget(&lift_token(ruby, token)?).into_host()
}

impl Target for RbSession {
    fn target(&self) -> &dyn Reports {
        &self.inner
    }
}

impl Target for RbIdleRun {
    fn target(&self) -> &dyn Reports {
        &self.inner
    }
}

#[magnus::wrap(class = "TaskerCore::Internal::WorkerSession", free_immediately, size)]
pub struct RbSession {
    inner: WorkerSession,
}

impl RbSession {
    pub(crate) fn new(inner: WorkerSession) -> Self {
        RbSession { inner }
    }

    fn next_batch(ruby: &Ruby, rb_self: &Self, max: u32, wait: f64) -> Result<Value, Error> {
        let wait = lift_seconds(wait, "wait")?;
        let s = rb_self.inner.clone();
        lower(ruby, &blocking(move || s.next_batch(max, wait))?)
    }

    fn claim(ruby: &Ruby, rb_self: &Self, max: u32, wait: f64) -> Result<Value, Error> {
        let wait = lift_seconds(wait, "wait")?;
        let s = rb_self.inner.clone();
        lower(ruby, &blocking(move || s.claim(max, wait))?)
    }

    fn flush(&self) -> Result<(), Error> {
        let s = self.inner.clone();
        blocking(move || s.flush())
    }

    fn complete(ruby: &Ruby, rb_self: &Self, token: Value, result: Value) -> Result<Value, Error> {
        let token = lift_token(ruby, token)?;
        let result = lift_json(ruby, result, "result").into_host()?;
        let s = rb_self.inner.clone();
        lower(ruby, &blocking(move || s.complete(&token, result))?)
    }

    fn fail(ruby: &Ruby, rb_self: &Self, token: Value, failure: Value) -> Result<Value, Error> {
        let token = lift_token(ruby, token)?;
        let failure: FailureInput = lift_options(ruby, failure, "failure")?;
        let s = rb_self.inner.clone();
        lower(ruby, &blocking(move || s.fail(&token, failure))?)
    }

    /// Writes many outcomes now, in one transaction. Each item is `[token, "success", result]` or
    /// `[token, "failure", {kind, message, error_class, backtrace, retry_after_ms, code}]`. Returns one entry
    /// per item, in order: the `Step`, or the exception (not raised) that rejected that item. Only a store
    /// failure raises, and then nothing was written.
    fn finish_many(ruby: &Ruby, rb_self: &Self, items: RArray) -> Result<RArray, Error> {
        let items = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| lift_outcome(ruby, item, i))
            .collect::<Result<Vec<_>, Error>>()?;
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

    fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn is_shutdown(&self) -> bool {
        self.inner.is_shutdown()
    }

    fn outstanding(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.outstanding())
    }

    /// When the next retry of this session's keys falls due, or nil.
    fn next_retry_at(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let inner = rb_self.inner.clone();
        lower(ruby, &blocking(move || inner.next_retry_at())?)
    }

    fn stats(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        lower(ruby, &rb_self.inner.stats())
    }

    fn until_idle(ruby: &Ruby, rb_self: &Self, options: Value) -> Result<RbIdleRun, Error> {
        let options = lift_options(ruby, options, "options")?;
        Ok(RbIdleRun {
            inner: rb_self.inner.until_idle(&options),
        })
    }
}

#[magnus::wrap(class = "TaskerCore::Internal::IdleRun", free_immediately, size)]
pub struct RbIdleRun {
    inner: IdleRun,
}

impl RbIdleRun {
    /// The next batch, or nil when the run is idle.
    fn next_batch(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        // Borrowed, not cloned: the call touches no Ruby object, and `rb_self` outlives it.
        let run: &IdleRun = &rb_self.inner;
        lower(ruby, &blocking(|| run.next_batch())?)
    }

    fn finish(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let run: &IdleRun = &rb_self.inner;
        lower(ruby, &blocking(|| run.finish())?)
    }
}

pub fn register(ruby: &Ruby, internal: RModule) -> Result<(), Error> {
    let class = internal.define_class("WorkerSession", ruby.class_object())?;
    class.define_method("next_batch", method!(RbSession::next_batch, 2))?;
    class.define_method("claim", method!(RbSession::claim, 2))?;
    class.define_method("report", method!(report::<RbSession>, 2))?;
    class.define_method("report_failure", method!(report_failure::<RbSession>, 2))?;
    class.define_method("report_missing", method!(report_missing::<RbSession>, 2))?;
    class.define_method("flush", method!(RbSession::flush, 0))?;
    class.define_method("complete", method!(RbSession::complete, 2))?;
    class.define_method("fail", method!(RbSession::fail, 2))?;
    class.define_method("finish_many", method!(RbSession::finish_many, 1))?;
    class.define_method("forget", method!(forget::<RbSession>, 1))?;
    class.define_method("shutdown", method!(RbSession::shutdown, 0))?;
    class.define_method("shutdown?", method!(RbSession::is_shutdown, 0))?;
    class.define_method("outstanding", method!(RbSession::outstanding, 0))?;
    class.define_method("next_retry_at", method!(RbSession::next_retry_at, 0))?;
    class.define_method("stats", method!(RbSession::stats, 0))?;
    class.define_method("until_idle", method!(RbSession::until_idle, 1))?;
    let run = internal.define_class("IdleRun", ruby.class_object())?;
    run.define_method("next_batch", method!(RbIdleRun::next_batch, 0))?;
    run.define_method("report", method!(report::<RbIdleRun>, 2))?;
    run.define_method("report_failure", method!(report_failure::<RbIdleRun>, 2))?;
    run.define_method("report_missing", method!(report_missing::<RbIdleRun>, 2))?;
    run.define_method("forget", method!(forget::<RbIdleRun>, 1))?;
    run.define_method("finish", method!(RbIdleRun::finish, 0))?;
    Ok(())
}
