//! Maps every [`FfiError`] to its Ruby exception class (docs/bindings.md §5): one class per kind under
//! `TaskerCore::Error`, each carrying `code`, `details` and `causes`.

use magnus::{exception::ExceptionClass, prelude::*, value::Lazy, Error, Exception, RModule, Ruby, Value};
use tasker_shared_ffi::{ErrorKind, FfiError};

use crate::convert::lower_value;

/// The Ruby class name (under `TaskerCore`) of each kind; the table of docs/bindings.md §5.
pub fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Validation => "ValidationError",
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::Conflict => "ConflictError",
        ErrorKind::InvalidTransition => "InvalidTransitionError",
        ErrorKind::StaleClaim => "StaleClaimError",
        ErrorKind::CycleDetected => "CycleDetectedError",
        ErrorKind::Closed => "ClosedError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::Database => "DatabaseError",
        ErrorKind::Configuration => "ConfigurationError",
        ErrorKind::Handler => "HandlerError",
        ErrorKind::Internal => "InternalError",
    }
}

static BASE: Lazy<ExceptionClass> = Lazy::new(|ruby| {
    let top: RModule = ruby.define_module("TaskerCore").expect("define TaskerCore");
    top.define_error("Error", ruby.exception_standard_error())
        .expect("define TaskerCore::Error")
});

/// Defines `TaskerCore::Error` and its subclasses; lib/tasker_core/errors.rb adds the readers.
pub fn init(ruby: &Ruby, top: RModule) -> Result<(), Error> {
    let base = ruby.get_inner(&BASE);
    for kind in ErrorKind::ALL {
        top.define_error(class_name(kind), base)?;
    }
    Ok(())
}

/// The one extension trait: turn an error of the shared layer into the Ruby exception to raise.
pub trait IntoRb {
    fn into_rb(self) -> Error;
}

impl IntoRb for FfiError {
    fn into_rb(self) -> Error {
        let ruby = Ruby::get().expect("errors are raised on a Ruby thread");
        match build(&ruby, &self) {
            Ok(e) => Error::from(e),
            Err(e) => e,
        }
    }
}

fn build(ruby: &Ruby, e: &FfiError) -> Result<Exception, Error> {
    let top: RModule = ruby.define_module("TaskerCore")?;
    let class: ExceptionClass = top.const_get(class_name(e.kind))?;
    let exc: Exception = class.new_instance((e.message.as_str(),))?;
    let _: Value = exc.funcall("instance_variable_set", ("@code", e.code))?;
    let _: Value = exc.funcall("instance_variable_set", ("@details", lower_value(ruby, &e.details)?))?;
    let causes = ruby.ary_new();
    for c in &e.causes {
        causes.push(c.as_str())?;
    }
    let _: Value = exc.funcall("instance_variable_set", ("@causes", causes))?;
    Ok(exc)
}

/// `Result<T, FfiError>` → `Result<T, magnus::Error>`.
pub trait RbResult<T> {
    fn rb(self) -> Result<T, Error>;
}

impl<T> RbResult<T> for Result<T, FfiError> {
    fn rb(self) -> Result<T, Error> {
        self.map_err(IntoRb::into_rb)
    }
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
        for kind in ErrorKind::ALL {
            let row = table
                .iter()
                .find(|(code, _)| *code == kind.code())
                .expect("a row per kind");
            assert_eq!(class_name(kind), row.1, "{}", kind.code());
        }
    }
}
