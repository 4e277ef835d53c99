//! The native client, `open` … `fire_schedules`, in tasker-shared-ffi's order; TaskerClient.java is
//! the Java surface over it (builders, `java.time`, `AutoCloseable`, `CompletableFuture` variants). Every
//! call runs on the calling Java thread through the shared layer's blocking form.

use std::sync::Arc;

use jni::objects::{JClass, JObject};
use jni::sys::{jboolean, jlong, jobject};
use tasker_shared_ffi::{self as ffi, FfiResult, Lower};

use crate::blocking::{entry, lowered, Env, JResult};
use crate::convert::{self, get, keep, lift_json, lift_options, optional_string, string};

/// The body of most methods: the client of handle `h`, one call, its result lowered.
pub(crate) fn call<'l, T: Lower>(
    env: &mut Env<'l>,
    h: jlong,
    f: impl FnOnce(&mut Env<'l>, Arc<ffi::Client>) -> JResult<FfiResult<T>>,
) -> jobject {
    lowered(env, |env| Ok(f(env, get::<ffi::Client>(h)?)??))
}

extern "system" fn open(mut env: Env, _: JClass, url: JObject, options: JObject) -> jlong {
    entry(&mut env, |env| {
        let url = string(env, &url, "url")?;
        let options = lift_options(env, &options, "options")?;
        Ok(keep(ffi::Client::open(&url, options)?))
    })
}

extern "system" fn free(mut env: Env, _: JClass, h: jlong) {
    entry(&mut env, |_| convert::free(h))
}

extern "system" fn is_closed(mut env: Env, _: JClass, h: jlong) -> jboolean {
    entry(&mut env, |_| {
        Ok(get::<ffi::Client>(h).map_or(true, |c| c.is_closed()) as jboolean)
    })
}

extern "system" fn advance_clock_ms(mut env: Env, _: JClass, h: jlong, ms: jlong) -> jobject {
    call(&mut env, h, |_, c| Ok(c.advance_clock_ms(ms)))
}

extern "system" fn subscribe(mut env: Env, _: JClass, h: jlong, filter: JObject) -> jlong {
    entry(&mut env, |env| {
        let filter = lift_options(env, &filter, "filter")?;
        Ok(keep(get::<ffi::Client>(h)?.subscribe(filter)?))
    })
}

extern "system" fn worker_session(mut env: Env, _: JClass, h: jlong, options: JObject) -> jlong {
    entry(&mut env, |env| {
        let options = lift_options(env, &options, "options")?;
        Ok(keep(get::<ffi::Client>(h)?.worker_session(options)?))
    })
}

/// A template as YAML or JSON text, or as a `Map`.
extern "system" fn register_template(mut env: Env, _: JClass, h: jlong, source: JObject) -> jobject {
    call(&mut env, h, |env, c| {
        if source.is_null() || convert::is_string(env, &source)? {
            return Ok(c.register_template(&string(env, &source, "definition")?));
        }
        Ok(c.register_template_value(&lift_json(env, &source, "definition")?))
    })
}

extern "system" fn template(mut env: Env, _: JClass, h: jlong, ns: JObject, name: JObject, v: JObject) -> jobject {
    call(&mut env, h, |env, c| {
        let (ns, name) = (string(env, &ns, "namespace")?, string(env, &name, "name")?);
        let version = optional_string(env, &v, "version")?;
        Ok(c.template(&ns, &name, version.as_deref()))
    })
}

extern "system" fn create_task(mut env: Env, _: JClass, h: jlong, ns: JObject, name: JObject, o: JObject) -> jobject {
    call(&mut env, h, |env, c| {
        let (ns, name) = (string(env, &ns, "namespace")?, string(env, &name, "name")?);
        // No prefix: a bad context reads `context.items[3].sku: …`, as the caller wrote it.
        let options = lift_options(env, &o, "")?;
        Ok(c.create_task(&ns, &name, options))
    })
}

/// The calls that take nothing but the client and return one lowered value.
macro_rules! plain {
    ($($f:ident),* $(,)?) => {$(
        extern "system" fn $f(mut env: Env, _: JClass, h: jlong) -> jobject {
            call(&mut env, h, |_, c| Ok(c.$f()))
        }
    )*};
}
pub(crate) use plain;

plain!(close, validate_or_refresh, refresh, health, now, templates);

/// The calls that take one id and return one lowered value.
macro_rules! by_id {
    ($($f:ident($arg:literal) => $call:ident),* $(,)?) => {$(
        extern "system" fn $f(mut env: Env, _: JClass, h: jlong, id: JObject) -> jobject {
            call(&mut env, h, |env, c| Ok(c.$call(&string(env, &id, $arg)?)))
        }
    )*};
}
pub(crate) use by_id;

by_id! {
    task("taskId") => task,
    steps("taskId") => steps,
    step("stepId") => step,
    explain("taskId") => explain,
    transitions("taskId") => transitions,
    retry_task("taskId") => retry_task,
    run_task_now("taskId") => run_task_now,
}

extern "system" fn tasks(mut env: Env, _: JClass, h: jlong, filter: JObject) -> jobject {
    call(&mut env, h, |env, c| Ok(c.tasks(lift_options(env, &filter, "filter")?)))
}

extern "system" fn cancel_task(mut env: Env, _: JClass, h: jlong, id: JObject, reason: JObject) -> jobject {
    call(&mut env, h, |env, c| {
        let (id, reason) = (string(env, &id, "taskId")?, optional_string(env, &reason, "reason")?);
        Ok(c.cancel_task(&id, reason.as_deref()))
    })
}

extern "system" fn resolve_step(mut env: Env, _: JClass, h: jlong, id: JObject, result: JObject) -> jobject {
    call(&mut env, h, |env, c| {
        let (id, result) = (string(env, &id, "stepId")?, lift_json(env, &result, "result")?);
        Ok(c.resolve_step_manually(&id, result))
    })
}

extern "system" fn resolve_task(mut env: Env, _: JClass, h: jlong, id: JObject, reason: JObject) -> jobject {
    call(&mut env, h, |env, c| {
        let (id, reason) = (string(env, &id, "taskId")?, optional_string(env, &reason, "reason")?);
        Ok(c.resolve_task_manually(&id, reason.as_deref()))
    })
}

extern "system" fn reap_expired_leases(mut env: Env, _: JClass, h: jlong, limit: jlong) -> jobject {
    call(&mut env, h, |_, c| Ok(c.reap_expired_leases(convert::count(limit))))
}

extern "system" fn register_schedule(
    mut env: Env,
    _: JClass,
    h: jlong,
    name: JObject,
    ns: JObject,
    template: JObject,
    cron: JObject,
    o: JObject,
) -> jobject {
    call(&mut env, h, |env, c| {
        let (name, ns) = (string(env, &name, "name")?, string(env, &ns, "namespace")?);
        let (template, cron) = (string(env, &template, "template")?, string(env, &cron, "cron")?);
        // No prefix, as for createTask: a bad context reads `context.…`.
        let options = lift_options(env, &o, "")?;
        Ok(c.register_schedule(&name, &ns, &template, &cron, options))
    })
}

by_id! {
    pause_schedule("name") => pause_schedule,
    resume_schedule("name") => resume_schedule,
    remove_schedule("name") => remove_schedule,
    schedule("name") => schedule,
}

plain!(schedules, fire_schedules);

crate::natives![
    "open"("OO") -> 'J' = open,
    "free"("J") -> 'V' = free,
    "close"("J") -> 'O' = close,
    "isClosed"("J") -> 'Z' = is_closed,
    "validateOrRefresh"("J") -> 'O' = validate_or_refresh,
    "refresh"("J") -> 'O' = refresh,
    "health"("J") -> 'O' = health,
    "now"("J") -> 'O' = now,
    "advanceClockMs"("JJ") -> 'O' = advance_clock_ms,
    "subscribe"("JO") -> 'J' = subscribe,
    "workerSession"("JO") -> 'J' = worker_session,
    "registerTemplate"("JO") -> 'O' = register_template,
    "template"("JOOO") -> 'O' = template,
    "templates"("J") -> 'O' = templates,
    "createTask"("JOOO") -> 'O' = create_task,
    "task"("JO") -> 'O' = task,
    "tasks"("JO") -> 'O' = tasks,
    "steps"("JO") -> 'O' = steps,
    "step"("JO") -> 'O' = step,
    "explain"("JO") -> 'O' = explain,
    "transitions"("JO") -> 'O' = transitions,
    "cancelTask"("JOO") -> 'O' = cancel_task,
    "retryTask"("JO") -> 'O' = retry_task,
    "runTaskNow"("JO") -> 'O' = run_task_now,
    "resolveStep"("JOO") -> 'O' = resolve_step,
    "resolveTask"("JOO") -> 'O' = resolve_task,
    "reapExpiredLeases"("JJ") -> 'O' = reap_expired_leases,
    "registerSchedule"("JOOOOO") -> 'O' = register_schedule,
    "pauseSchedule"("JO") -> 'O' = pause_schedule,
    "resumeSchedule"("JO") -> 'O' = resume_schedule,
    "removeSchedule"("JO") -> 'O' = remove_schedule,
    "schedule"("JO") -> 'O' = schedule,
    "schedules"("J") -> 'O' = schedules,
    "fireSchedules"("J") -> 'O' = fire_schedules,
];
