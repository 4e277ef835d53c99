//! The one mapping from [`FfiError`] to Java exceptions: one class per [`ErrorKind`] in `io.tasker.core`,
//! named by [`ErrorClass::java_class_name`], each a `TaskerException` carrying `code()`, `details()` and
//! `causes()` (docs/bindings.md §5). A null argument is a `NullPointerException` naming the parameter.

use jni::objects::{JClass, JObject, JThrowable, JValue};
use jni::sys::jobject;
use jni::JNIEnv;
use serde_json::Value;
use tasker_shared_ffi::{ErrorClass, ErrorKind, FfiError};

use crate::blocking::{object, JResult, Thrown};
use crate::convert::lower_json;

/// Throws `t` unless a Java exception is already pending (which then propagates as it is).
pub fn throw(env: &mut JNIEnv, t: Thrown) {
    if env.exception_check().unwrap_or(true) {
        return;
    }
    let thrown = match t {
        Thrown::Pending => return,
        Thrown::Null(name) => env
            .throw_new("java/lang/NullPointerException", format!("{name} must not be null"))
            .map_err(Thrown::from),
        Thrown::Ffi(e) => exception(env, &e).and_then(|x| Ok(env.throw(JThrowable::from(x))?)),
    };
    if thrown.is_err() && !env.exception_check().unwrap_or(true) {
        let _ = env.throw_new(
            "java/lang/IllegalStateException",
            "tasker could not build its exception",
        );
    }
}

/// The exception of `e`'s kind, built with `(message, code, details, causes)`; [`throw`] throws it, and
/// `finish_many` hands one back, not thrown, per rejected item.
pub fn exception<'l>(env: &mut JNIEnv<'l>, e: &FfiError) -> JResult<JObject<'l>> {
    let class = format!("io/tasker/core/{}", e.kind.java_class_name());
    let message = JObject::from(env.new_string(&e.message)?);
    let code = JObject::from(env.new_string(e.code)?);
    let details = lower_json(env, &e.details)?;
    let causes = lower_json(env, &Value::from(e.causes.clone()))?;
    let sig = "(Ljava/lang/String;Ljava/lang/String;Ljava/lang/Object;Ljava/lang/Object;)V";
    let args = [&message, &code, &details, &causes].map(JValue::Object);
    Ok(env.new_object(class, sig, &args)?)
}

/// Every kind as `[code, Java class name]`, in [`ErrorKind::ALL`] order, for the suite's per-kind test.
extern "system" fn error_kinds(mut env: JNIEnv, _: JClass) -> jobject {
    object(&mut env, |env| {
        let rows = ErrorKind::ALL.map(|k| Value::from(vec![k.code().to_string(), k.java_class_name()]));
        lower_json(env, &Value::from(rows.to_vec()))
    })
}

/// Throws the exception of the kind whose code is `code`, with detail `k: 1`: the suite checks each class.
extern "system" fn raise(mut env: JNIEnv, _: JClass, code: JObject) {
    crate::blocking::entry(&mut env, |env| {
        let code = crate::convert::string(env, &code, "code")?;
        let kind = ErrorKind::ALL.into_iter().find(|k| k.code() == code);
        let kind = kind.ok_or_else(|| FfiError::validation("code", format!("no error kind {code:?}")))?;
        Err(FfiError::new(kind, "it went wrong").with_detail("k", 1).into())
    })
}

/// Panics inside a native method: the suite checks it comes back as `InternalException`.
extern "system" fn panic(mut env: JNIEnv, _: JClass) {
    crate::blocking::entry(&mut env, |_| -> JResult<()> { panic!("a test asked for a panic") })
}

crate::natives![
    "errorKinds"("") -> 'O' = error_kinds,
    "raise"("O") -> 'V' = raise,
    "panic"("") -> 'V' = panic,
];
