//! The one entry helper every native method runs through, and the adapter's error type.
//!
//! The JVM has no interpreter lock, so a blocking call (`client.task(id)`, `session.next_batch(..)`) simply
//! runs on the calling Java thread: tasker-shared-ffi's blocking form drives it there with the shared
//! runtime's reactor and timers, and Rust never calls into Java from a Tokio thread. What [`entry`] adds is
//! JNI safety: a panic becomes an `InternalException` (never an abort across the boundary), and an error
//! becomes the Java exception of its kind, thrown before the dummy result is returned.

use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::objects::JObject;
use jni::sys::{jboolean, jlong, jobject};
use jni::{JNIEnv, NativeMethod};
use tasker_shared_ffi::FfiError;

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

/// What a native method returns when it throws (the JVM ignores it).
pub trait Ret {
    fn dummy() -> Self;
}

impl Ret for jobject {
    fn dummy() -> Self {
        std::ptr::null_mut()
    }
}

impl Ret for jlong {
    fn dummy() -> Self {
        0
    }
}

impl Ret for jboolean {
    fn dummy() -> Self {
        0
    }
}

impl Ret for () {
    fn dummy() -> Self {}
}

/// Runs the body of a native method: its value, or its error thrown as a Java exception. A panic is caught
/// and thrown as `InternalException`.
pub fn entry<'l, R: Ret>(env: &mut JNIEnv<'l>, f: impl FnOnce(&mut JNIEnv<'l>) -> JResult<R>) -> R {
    let result = catch_unwind(AssertUnwindSafe(|| f(&mut *env)))
        .unwrap_or_else(|payload| Err(Thrown::Ffi(FfiError::from_panic(payload.as_ref()))));
    result.unwrap_or_else(|t| {
        crate::errors::throw(env, t);
        R::dummy()
    })
}

/// [`entry`] for a method that returns an object.
pub fn object<'l>(env: &mut JNIEnv<'l>, f: impl FnOnce(&mut JNIEnv<'l>) -> JResult<JObject<'l>>) -> jobject {
    entry(env, |env| Ok(f(env)?.into_raw()))
}

/// A row of `RegisterNatives`: `args` and `ret` spell the JNI signature one letter per value, `J` for
/// `long` (handles, counts, milliseconds), `O` for `java.lang.Object` (everything else), `Z` for `boolean`
/// and `V` for `void`; the native function takes `(JNIEnv, JClass, …)` in the same order.
pub fn method(name: &str, args: &str, ret: char, f: *mut std::ffi::c_void) -> NativeMethod {
    let letter = |c: char| match c {
        'O' => "Ljava/lang/Object;".to_string(),
        c => c.to_string(),
    };
    let sig = format!("({}){}", args.chars().map(letter).collect::<String>(), letter(ret));
    NativeMethod {
        name: name.into(),
        sig: sig.into(),
        fn_ptr: f,
    }
}

/// One `RegisterNatives` row per native function: `natives![name("OJ") -> 'O' = function, …]`.
#[macro_export]
macro_rules! natives {
    ($($name:literal ($args:literal) -> $ret:literal = $f:path),* $(,)?) => {
        vec![$($crate::blocking::method($name, $args, $ret, $f as *mut std::ffi::c_void)),*]
    };
}
