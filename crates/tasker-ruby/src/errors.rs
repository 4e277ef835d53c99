//! Maps every [`FfiError`] to its Ruby exception class (docs/bindings.md §5): one class per kind under
//! `TaskerCore::Error`, named by [`ErrorClass::class_name`], each carrying `code`, `details` and `causes`.

use magnus::{exception::ExceptionClass, prelude::*, value::Lazy, Error, Exception, RModule, Ruby, Value};
use tasker_shared_ffi::{ErrorClass, ErrorKind, FfiError, FfiResult};

use crate::convert::lower_json;

static BASE: Lazy<ExceptionClass> = Lazy::new(|ruby| {
    let top: RModule = ruby.define_module("TaskerCore").expect("define TaskerCore");
    top.define_error("Error", ruby.exception_standard_error())
        .expect("define TaskerCore::Error")
});

/// Defines `TaskerCore::Error`, one subclass per kind, and `TaskerCore::Error::CODES` (class name → code,
/// for errors raised from Ruby); lib/tasker_core/errors.rb adds the readers.
pub fn register(ruby: &Ruby, top: RModule) -> Result<(), Error> {
    let base = ruby.get_inner(&BASE);
    let codes = ruby.hash_new();
    for kind in ErrorKind::ALL {
        top.define_error(kind.class_name(), base)?;
        codes.aset(kind.class_name(), kind.code())?;
    }
    codes.freeze();
    base.const_set("CODES", codes)
}

/// The one extension trait: an error of the shared layer becomes the Ruby exception to raise, and a result
/// of the shared layer a result of magnus.
pub trait IntoHost {
    type Host;
    fn into_host(self) -> Self::Host;
}

impl IntoHost for FfiError {
    type Host = Error;

    fn into_host(self) -> Error {
        let ruby = Ruby::get().expect("errors are raised on a Ruby thread");
        match build(&ruby, &self) {
            Ok(e) => Error::from(e),
            Err(e) => e,
        }
    }
}

impl<T> IntoHost for FfiResult<T> {
    type Host = Result<T, Error>;

    fn into_host(self) -> Result<T, Error> {
        self.map_err(IntoHost::into_host)
    }
}

fn build(ruby: &Ruby, e: &FfiError) -> Result<Exception, Error> {
    let top: RModule = ruby.define_module("TaskerCore")?;
    let class: ExceptionClass = top.const_get(e.kind.class_name())?;
    let exc: Exception = class.new_instance((e.message.as_str(),))?;
    let _: Value = exc.funcall("instance_variable_set", ("@code", e.code))?;
    let _: Value = exc.funcall("instance_variable_set", ("@details", lower_json(ruby, &e.details)?))?;
    let _: Value = exc.funcall(
        "instance_variable_set",
        ("@causes", ruby.ary_from_vec(e.causes.clone())),
    )?;
    Ok(exc)
}

#[cfg(test)]
mod tests {
    use super::*;

    // One row per kind: the Ruby class each code raises (docs/bindings.md §5). The Ruby side of every row is
    // checked in spec/errors_spec.rb, which raises each class through the extension.
    #[test]
    fn every_kind_maps_to_its_class() {
        let table = [
            ("validation", "ValidationError"),
            ("not_found", "NotFoundError"),
            ("conflict", "ConflictError"),
            ("invalid_transition", "InvalidTransitionError"),
            ("stale_claim", "StaleClaimError"),
            ("cycle_detected", "CycleDetectedError"),
            ("closed", "ClosedError"),
            ("timeout", "TimeoutError"),
            ("database", "DatabaseError"),
            ("configuration", "ConfigurationError"),
            ("handler", "HandlerError"),
            ("internal", "InternalError"),
        ];
        assert_eq!(table.len(), ErrorKind::ALL.len());
        for (kind, (code, class)) in ErrorKind::ALL.into_iter().zip(table) {
            assert_eq!((kind.code(), kind.class_name()), (code, class));
        }
    }
}
