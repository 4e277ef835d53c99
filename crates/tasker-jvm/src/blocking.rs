//! The one entry helper every native method runs through, and the adapter's error type.
//!
//! The JVM has no interpreter lock, so a blocking call (`client.task(id)`, `session.next_batch(..)`) simply
//! runs on the calling Java thread: tasker-shared-ffi's blocking form drives it there with the shared
//! runtime's reactor and timers, and Rust never calls into Java from a Tokio thread. What [`entry`] adds is
//! JNI safety: a panic becomes an `InternalException` (never an abort across the boundary), and an error
//! becomes the Java exception of its kind, thrown before the dummy result is returned.

use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::objects::JObject;
use jni::sys::jobject;
use jni::{JNIEnv, NativeMethod};
use tasker_shared_ffi::{FfiError, Lower};

/// Why a native method did not return normally.
pub enum Thrown {
    /// An error of the shared layer: thrown as the `TaskerException` of its kind.
    Ffi(FfiError),
    /// A required argument was Java `null`: thrown as a `NullPointerException` naming it.
    Null(&'static str),
    /// A Java exception is already pending (thrown by a Java method the adapter called).
    Pending,
}

pub type JResult<T> = Result<T, Thrown>;

/// The environment every native method is called with.
pub type Env<'l> = JNIEnv<'l>;

impl From<FfiError> for Thrown {
    fn from(e: FfiError) -> Self {
        Thrown::Ffi(e)
    }
}

impl From<jni::errors::Error> for Thrown {
    fn from(e: jni::errors::Error) -> Self {
        match e {
            jni::errors::Error::JavaException => Thrown::Pending,
            other => Thrown::Ffi(FfiError::internal(format!("jni call failed: {other}"))),
        }
    }
}

/// Runs the body of a native method: its value, or its error thrown as a Java exception and the default
/// value (null, 0, false) returned, which the JVM ignores. A panic is caught and thrown as `InternalException`.
pub fn entry<'l, R: Default>(env: &mut JNIEnv<'l>, f: impl FnOnce(&mut JNIEnv<'l>) -> JResult<R>) -> R {
    let result = catch_unwind(AssertUnwindSafe(|| f(&mut *env)))
        .unwrap_or_else(|payload| Err(Thrown::Ffi(FfiError::from_panic(payload.as_ref()))));
    result.unwrap_or_else(|t| {
        crate::errors::throw(env, t);
        R::default()
    })
}

/// [`entry`] for a method that returns an object.
pub fn object<'l>(env: &mut JNIEnv<'l>, f: impl FnOnce(&mut JNIEnv<'l>) -> JResult<JObject<'l>>) -> jobject {
    entry(env, f).into_raw()
}

/// [`object`] for a method whose result is a value of the shared layer, lowered by [`crate::convert::lower`].
pub fn lowered<'l, T: Lower>(env: &mut JNIEnv<'l>, f: impl FnOnce(&mut JNIEnv<'l>) -> JResult<T>) -> jobject {
    object(env, |env| {
        let v = f(env)?;
        crate::convert::lower(env, &v)
    })
}

/// A row of `RegisterNatives`: `args` and `ret` spell the JNI signature one letter per value, `J` for
/// `long` (handles, counts, milliseconds), `O` for `java.lang.Object` (everything else), `Z` for `boolean`
/// and `V` for `void`; the native function takes `(JNIEnv, JClass, …)` in the same order.
pub fn method(name: &str, args: &str, ret: char, f: *mut std::ffi::c_void) -> NativeMethod {
    let sig = format!("({args}){ret}").replace('O', "Ljava/lang/Object;");
    NativeMethod {
        name: name.into(),
        sig: sig.into(),
        fn_ptr: f,
    }
}

/// A file's `register()`, one `RegisterNatives` row per native function: `natives![name("OJ") -> 'O' = f, …]`.
#[macro_export]
macro_rules! natives {
    ($($name:literal ($args:literal) -> $ret:literal = $f:path),* $(,)?) => {
        pub fn register() -> Vec<jni::NativeMethod> {
            vec![$($crate::blocking::method($name, $args, $ret, $f as *mut std::ffi::c_void)),*]
        }
    };
}
