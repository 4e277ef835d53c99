//! The one mapping from [`FfiError`] to JS errors (docs/bindings.md §5): an instance of the class of its
//! kind (lib/errors.js defines `TaskerError` and one subclass per [`ErrorKind`], named by
//! [`ErrorClass::class_name`], and hands them to the addon once at load), carrying `.code`, `.details` and the
//! causes as a `.cause` chain. napi throws (or rejects with) that very object.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tasker_shared_ffi::{ErrorClass, ErrorKind, FfiError, FfiResult};

use crate::convert::lower_json;

thread_local! {
    /// The error classes lib/errors.js registered, by class name; per JS thread (each worker thread has its
    /// own environment, and loads lib/errors.js itself).
    static CLASSES: RefCell<Option<ObjectRef<false>>> = const { RefCell::new(None) };
}

/// Exports `errorKinds`: `[{ code, className }]` in [`ErrorKind::ALL`] order, from which lib/errors.js makes
/// its classes.
pub fn register(env: &Env, exports: &mut Object) -> Result<()> {
    let mut kinds = env.create_array(0)?;
    for kind in ErrorKind::ALL {
        let mut row = Object::new(env)?;
        row.set("code", kind.code())?;
        row.set("className", kind.class_name())?;
        kinds.insert(row)?;
    }
    exports.set("errorKinds", kinds)
}

/// Called once by lib/errors.js with `{ ValidationError, NotFoundError, … }`.
#[napi]
pub fn define_error_classes(classes: Object) -> Result<()> {
    let reference = classes.create_ref::<false>()?;
    CLASSES.with(|c| *c.borrow_mut() = Some(reference));
    Ok(())
}

/// The one extension trait: an error of the shared layer becomes the JS error napi throws or rejects with,
/// and a result of the shared layer a napi result.
pub trait IntoHost {
    type Host;
    fn into_host(self, env: &Env) -> Self::Host;
}

impl IntoHost for FfiError {
    type Host = Error;

    fn into_host(self, env: &Env) -> Error {
        match lower_error(env, &self) {
            Ok(value) => Error::from(value),
            // Building the error itself failed (the environment is going away): throw that instead.
            Err(e) => e,
        }
    }
}

impl<T> IntoHost for FfiResult<T> {
    type Host = Result<T>;

    fn into_host(self, env: &Env) -> Result<T> {
        self.map_err(|e| e.into_host(env))
    }
}

/// A class lib/errors.js registered: `new Class(message, { code, details, causes })`.
type Class<'env> = Function<'env, FnArgs<(String, Object<'env>)>, Unknown<'env>>;

/// The JS error for `e` (not thrown): an instance of the class of its kind, with `code`, `details` and `causes`.
/// lib/errors.js registers the classes when the package loads; the addon is not meant to be loaded alone.
pub fn lower_error<'env>(env: &'env Env, e: &FfiError) -> Result<Unknown<'env>> {
    let mut init = Object::new(env)?;
    init.set("code", e.code)?;
    init.set("details", lower_json(env, &e.details)?)?;
    init.set("causes", e.causes.clone())?;
    let class = CLASSES.with(|c| -> Result<Class<'env>> {
        let classes = c.borrow();
        let classes = classes
            .as_ref()
            .ok_or_else(|| Error::from_reason(format!("{}: {}", e.code, e.message)))?;
        classes.get_value(env)?.get_named_property(e.kind.class_name())
    })?;
    class.new_instance(FnArgs::from((e.message.clone(), init)))
}
