//! The subscription of docs/bindings.md §7 (made by `Client.subscribe`); Subscription.java adds
//! `AutoCloseable`, `Iterable<Event>` and `java.time.Duration` timeouts. Closing it frees its handle, so a
//! later call is a `ClosedException`.

use jni::objects::JClass;
use jni::sys::{jlong, jobject};
use tasker_shared_ffi::Subscription;

use crate::blocking::{entry, lowered, Env};
use crate::convert::{get, lift_ms};

/// The next event, waiting at most `timeoutMs` on the calling thread; null when none came.
extern "system" fn next(mut env: Env, _: JClass, h: jlong, timeout_ms: jlong) -> jobject {
    lowered(&mut env, |_| {
        Ok(get::<Subscription>(h)?.next(lift_ms(timeout_ms, "timeout")?)?)
    })
}

extern "system" fn try_next(mut env: Env, _: JClass, h: jlong) -> jobject {
    lowered(&mut env, |_| Ok(get::<Subscription>(h)?.try_next()?))
}

extern "system" fn drain(mut env: Env, _: JClass, h: jlong) -> jobject {
    lowered(&mut env, |_| Ok(get::<Subscription>(h)?.drain()?))
}

extern "system" fn dropped(mut env: Env, _: JClass, h: jlong) -> jlong {
    entry(&mut env, |_| Ok(get::<Subscription>(h)?.dropped() as jlong))
}

crate::natives![
    "subNext"("JJ") -> 'O' = next,
    "subTryNext"("J") -> 'O' = try_next,
    "subDrain"("J") -> 'O' = drain,
    "subDropped"("J") -> 'J' = dropped,
];
