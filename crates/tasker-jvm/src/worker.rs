//! The worker session of docs/bindings.md §6 (made by `Client.worker_session`) and its run until idle (§8).
//! Worker.java drives it from its own threads: claim on the loop thread, run handlers on a pool, report
//! (which returns at once). Tokens are passed as their two primitives, the step id and the attempt. The
//! `report*` and `forget` methods take a session's or a run's handle alike.

use jni::objects::{JClass, JObject, JValue};
use jni::sys::{jboolean, jlong, jobject};
use serde_json::Value;
use tasker_shared_ffi::{FailureInput, HostOutcome, IdleRun, OutcomeInput, WorkerSession};

use crate::blocking::{entry, lowered, object, Env};
use crate::convert::{
    self, count, get, keep, lift_json, lift_ms, lift_options, lift_result, lift_token, lower, lower_json, reporter,
    string,
};

extern "system" fn worker_id(mut env: Env, _: JClass, h: jlong) -> jobject {
    object(&mut env, |env| {
        Ok(env.new_string(get::<WorkerSession>(h)?.worker_id())?.into())
    })
}

extern "system" fn is_shutdown(mut env: Env, _: JClass, h: jlong) -> jboolean {
    entry(&mut env, |_| Ok(get::<WorkerSession>(h)?.is_shutdown() as jboolean))
}

/// Claims up to `max` steps for free threads, waiting up to `waitMs` when none is ready; a store error is
/// retried with backoff, and the call then returns an empty list once the wait has passed.
extern "system" fn next_batch(mut env: Env, _: JClass, h: jlong, n: jlong, wait_ms: jlong) -> jobject {
    lowered(&mut env, |_| {
        Ok(get::<WorkerSession>(h)?.next_batch(count(n), lift_ms(wait_ms, "waitMs")?)?)
    })
}

/// The same claim without retries, for tests and scenario replays.
extern "system" fn claim(mut env: Env, _: JClass, h: jlong, n: jlong, wait_ms: jlong) -> jobject {
    lowered(&mut env, |_| {
        Ok(get::<WorkerSession>(h)?.claim(count(n), lift_ms(wait_ms, "waitMs")?)?)
    })
}

/// The handler returned `result`: a value JSON cannot hold becomes the step's `InvalidResult` failure.
extern "system" fn report(mut env: Env, _: JClass, h: jlong, id: JObject, attempt: jlong, result: JObject) {
    entry(&mut env, |env| {
        let token = lift_token(env, &id, attempt)?;
        let outcome = HostOutcome::returned(lift_result(env, &result)?);
        Ok(reporter(h)?.report(&token, outcome)?)
    })
}

/// The handler threw; `failure` is `{kind, message, error_class, backtrace, retry_after_ms, code}`.
extern "system" fn report_failure(mut env: Env, _: JClass, h: jlong, id: JObject, attempt: jlong, failure: JObject) {
    entry(&mut env, |env| {
        let token = lift_token(env, &id, attempt)?;
        let failure: FailureInput = lift_options(env, &failure, "failure")?;
        Ok(reporter(h)?.report(&token, HostOutcome::Failure(failure))?)
    })
}

extern "system" fn report_missing(mut env: Env, _: JClass, h: jlong, id: JObject, attempt: jlong, key: JObject) {
    entry(&mut env, |env| {
        let token = lift_token(env, &id, attempt)?;
        let key = string(env, &key, "handlerKey")?;
        Ok(reporter(h)?.report(&token, HostOutcome::HandlerMissing(key))?)
    })
}

extern "system" fn forget(mut env: Env, _: JClass, h: jlong, id: JObject, attempt: jlong) {
    entry(&mut env, |env| {
        let token = lift_token(env, &id, attempt)?;
        Ok(reporter(h)?.forget(&token)?)
    })
}

/// Waits until everything reported so far has been written.
extern "system" fn flush(mut env: Env, _: JClass, h: jlong) {
    entry(&mut env, |_| Ok(get::<WorkerSession>(h)?.flush()?))
}

/// Reports a success now and returns the `Step`.
extern "system" fn complete(mut env: Env, _: JClass, h: jlong, id: JObject, attempt: jlong, r: JObject) -> jobject {
    lowered(&mut env, |env| {
        let token = lift_token(env, &id, attempt)?;
        let result = lift_json(env, &r, "result")?;
        Ok(get::<WorkerSession>(h)?.complete(&token, result)?)
    })
}

/// Reports a failure now and returns the `Step`.
extern "system" fn fail(mut env: Env, _: JClass, h: jlong, id: JObject, attempt: jlong, failure: JObject) -> jobject {
    lowered(&mut env, |env| {
        let token = lift_token(env, &id, attempt)?;
        let failure: FailureInput = lift_options(env, &failure, "failure")?;
        Ok(get::<WorkerSession>(h)?.fail(&token, failure)?)
    })
}

/// Reports many outcomes now, in one transaction. Each item is `{step_id, attempt, success | failure}`; each
/// answer is the `Step`, or the exception (not thrown) for that item.
extern "system" fn finish_many(mut env: Env, _: JClass, h: jlong, items: JObject) -> jobject {
    object(&mut env, |env| {
        let outcomes = OutcomeInput::items(lift_json(env, &items, "outcomes")?)?;
        let results = get::<WorkerSession>(h)?.finish_many(outcomes)?;
        let list = lower_json(env, &Value::Array(Vec::new()))?;
        for r in results {
            let v = match r {
                Ok(step) => lower(env, &step)?,
                Err(e) => crate::errors::exception(env, &e)?,
            };
            env.call_method(&list, "add", "(Ljava/lang/Object;)Z", &[JValue::Object(&v)])?;
            env.delete_local_ref(v)?;
        }
        Ok(list)
    })
}

/// Stops claiming and wakes a waiting claim; outstanding claims keep their lease until reported.
extern "system" fn shutdown(mut env: Env, _: JClass, h: jlong) {
    entry(&mut env, |_| {
        get::<WorkerSession>(h)?.shutdown();
        Ok(())
    })
}

extern "system" fn outstanding(mut env: Env, _: JClass, h: jlong) -> jobject {
    lowered(&mut env, |_| Ok(get::<WorkerSession>(h)?.outstanding()))
}

extern "system" fn stats(mut env: Env, _: JClass, h: jlong) -> jobject {
    lowered(&mut env, |_| Ok(get::<WorkerSession>(h)?.stats()))
}

extern "system" fn next_retry_at(mut env: Env, _: JClass, h: jlong) -> jobject {
    lowered(&mut env, |_| Ok(get::<WorkerSession>(h)?.next_retry_at()?))
}

/// A run until idle over the session: `batch_size`, `max_claims`, `timeout_ms`, `auto_advance_clock`.
extern "system" fn until_idle(mut env: Env, _: JClass, h: jlong, options: JObject) -> jlong {
    entry(&mut env, |env| {
        let options = lift_options(env, &options, "options")?;
        Ok(keep(get::<WorkerSession>(h)?.until_idle(&options)))
    })
}

/// Writes the previous batch's outcomes, then claims the next batch; null when the run is idle.
extern "system" fn run_next_batch(mut env: Env, _: JClass, h: jlong) -> jobject {
    lowered(&mut env, |_| Ok(get::<IdleRun>(h)?.next_batch()?))
}

/// Writes what is left and returns the `RunReport`; the run's handle is let go.
extern "system" fn run_finish(mut env: Env, _: JClass, h: jlong) -> jobject {
    lowered(&mut env, |_| {
        let report = get::<IdleRun>(h)?.finish()?;
        convert::free(h)?;
        Ok(report)
    })
}

crate::natives![
    "workerId"("J") -> 'O' = worker_id,
    "isShutdown"("J") -> 'Z' = is_shutdown,
    "nextBatch"("JJJ") -> 'O' = next_batch,
    "claim"("JJJ") -> 'O' = claim,
    "report"("JOJO") -> 'V' = report,
    "reportFailure"("JOJO") -> 'V' = report_failure,
    "reportMissing"("JOJO") -> 'V' = report_missing,
    "forget"("JOJ") -> 'V' = forget,
    "flush"("J") -> 'V' = flush,
    "complete"("JOJO") -> 'O' = complete,
    "fail"("JOJO") -> 'O' = fail,
    "finishMany"("JO") -> 'O' = finish_many,
    "shutdown"("J") -> 'V' = shutdown,
    "outstanding"("J") -> 'O' = outstanding,
    "stats"("J") -> 'O' = stats,
    "nextRetryAt"("J") -> 'O' = next_retry_at,
    "untilIdle"("JO") -> 'J' = until_idle,
    "runNextBatch"("J") -> 'O' = run_next_batch,
    "runFinish"("J") -> 'O' = run_finish,
];
