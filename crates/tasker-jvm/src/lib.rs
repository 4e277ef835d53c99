//! tasker-jvm: the jni adapter of Tasker Core, loaded by the jar's `io.tasker.core.Native`, with the skeleton
//! every binding shares (docs/bindings.md, "Adding a binding").
//!
//! The adapter is thin: each native method lifts its arguments (convert.rs), makes one call into
//! tasker-shared-ffi on the calling Java thread and lowers the result or throws the exception of its kind
//! (errors.rs). It holds no SQL and no state, DAG or retry rule; the Java records come from tasker-shared-ffi's
//! object table (`cargo xtask gen`). Nothing here calls into Java from a Tokio thread: the worker loop is Java
//! code (Worker.java) driving a `WorkerSession` from its own threads.
//!
//! Every file's `register` lists its native methods; `JNI_OnLoad` binds them to `io.tasker.core.Native` with
//! `RegisterNatives`, so no function but this one needs an exported symbol.

use std::ffi::c_void;

use jni::sys::{jint, JNI_ERR, JNI_VERSION_1_8};
use jni::JavaVM;

pub mod analytics;
pub mod blocking;
pub mod client;
pub mod convert;
pub mod errors;
pub mod events;
pub mod testing;
pub mod worker;

/// Called by the JVM when `System.load` loads the library: registers every file's native methods.
///
/// # Safety
///
/// Only the JVM calls it, with its own valid `JavaVM` pointer.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "system" fn JNI_OnLoad(vm: *mut jni::sys::JavaVM, _reserved: *mut c_void) -> jint {
    let registered = std::panic::catch_unwind(|| -> jni::errors::Result<()> {
        // SAFETY: the JVM passes a valid, non-null JavaVM pointer that outlives the library.
        let vm = unsafe { JavaVM::from_raw(vm) }?;
        let mut env = vm.get_env()?;
        let methods = [
            errors::register(),
            client::register(),
            worker::register(),
            events::register(),
            analytics::register(),
            testing::register(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
        // RegisterNatives checks each row's signature against its declaration in Native.java.
        env.register_native_methods("io/tasker/core/Native", &methods)
    });
    match registered {
        Ok(Ok(())) => JNI_VERSION_1_8,
        _ => JNI_ERR,
    }
}
