//! The subscription of docs/bindings.md §7 (made by `Client.subscribe`); Subscription.java adds
//! `AutoCloseable`, `Iterable<Event>` and `java.time.Duration` timeouts. Closing it frees its handle, so a
//! later call is a `ClosedException`.

use jni::objects::JClass;
use jni::sys::{jlong, jobject};
use jni::{JNIEnv, NativeMethod};
use tasker_shared_ffi::Lower;

use crate::blocking::{entry, object, JResult};
use crate::convert::{lift_ms, lower, subscription};

type Env<'l> = JNIEnv<'l>;

fn lowered<'l, T: Lower>(env: &mut Env<'l>, f: impl FnOnce() -> JResult<T>) -> jobject {
    object(env, |env| {
        let v = f()?;
        lower(env, &v)
    })
}

/// The next event, waiting at most `timeoutMs` on the calling thread; null when none came.
extern "system" fn next(mut env: Env, _: JClass, h: jlong, timeout_ms: jlong) -> jobject {
    lowered(&mut env, || Ok(subscription(h)?.next(lift_ms(timeout_ms, "timeout")?)?))
}

extern "system" fn try_next(mut env: Env, _: JClass, h: jlong) -> jobject {
    lowered(&mut env, || Ok(subscription(h)?.try_next()?))
}

extern "system" fn drain(mut env: Env, _: JClass, h: jlong) -> jobject {
    lowered(&mut env, || Ok(subscription(h)?.drain()?))
}

extern "system" fn dropped(mut env: Env, _: JClass, h: jlong) -> jlong {
    entry(&mut env, |_| Ok(subscription(h)?.dropped() as jlong))
}

pub fn register() -> Vec<NativeMethod> {
    crate::natives![
        "subNext"("JJ") -> 'O' = next,
        "subTryNext"("J") -> 'O' = try_next,
        "subDrain"("J") -> 'O' = drain,
        "subDropped"("J") -> 'J' = dropped,
    ]
}
