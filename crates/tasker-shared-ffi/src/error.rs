//! The one error type every binding receives.
//!
//! An [`FfiError`] carries its [`ErrorKind`] (re-exported from tasker-core, so the set and the codes are the
//! engine's own), the kind's stable string `code`, a human message, the chain of causes, and structured
//! `details` that a host can expose as attributes without parsing the message. Each binding maps each kind
//! to one exception class (see docs/bindings.md) and never matches on message text.

use std::any::Any;

use serde::Serialize;
use serde_json::{json, Map, Value};
pub use tasker_core::ErrorKind;

/// How every binding names the exception class of each kind, written once. Ruby and Python define exactly
/// these classes (`TaskerCore::ValidationError`, `tasker_core.ValidationError`) under their base class
/// (`TaskerCore::Error`, `tasker_core.TaskerError`) by looping over [`ErrorKind::ALL`].
///
/// The other hosts follow one rule from the same names. JS has one class, `TaskerError`, whose `.code` is
/// [`ErrorKind::code`]; per-kind subclasses, where a binding adds them, take these names. Java replaces the
/// `Error` suffix with `Exception` (`ValidationException`), except that the timeout class is
/// `TaskerTimeoutException`, so that it never shadows `java.util.concurrent.TimeoutException`: see
/// [`ErrorClass::java_class_name`].
pub trait ErrorClass {
    /// The host class name: `ValidationError`, `NotFoundError`, ….
    fn class_name(self) -> &'static str;
    /// The JVM exception class name (in `io.tasker.core`).
    fn java_class_name(self) -> String;
}

impl ErrorClass for ErrorKind {
    fn class_name(self) -> &'static str {
        match self {
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

    fn java_class_name(self) -> String {
        match self {
            ErrorKind::Timeout => "TaskerTimeoutException".to_string(),
            k => format!("{}Exception", k.class_name().trim_end_matches("Error")),
        }
    }
}

/// The result type of every call of this crate.
pub type FfiResult<T> = Result<T, FfiError>;

/// An error as the host sees it.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct FfiError {
    /// The class of the error; bindings map it to an exception class.
    pub kind: ErrorKind,
    /// `kind.code()`: the stable string form of the kind (`"not_found"`, `"stale_claim"`, …).
    pub code: &'static str,
    /// What went wrong; starts lowercase, no trailing period.
    pub message: String,
    /// Messages of the underlying errors, outermost first; empty when there are none.
    pub causes: Vec<String>,
    /// Structured facts about the error; always a JSON object (empty when there are none). The keys per
    /// kind are listed in docs/bindings.md.
    pub details: Value,
}

impl FfiError {
    /// An error of `kind` with no details.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        FfiError {
            kind,
            code: kind.code(),
            message: message.into(),
            causes: Vec::new(),
            details: Value::Object(Map::new()),
        }
    }

    /// Adds (or replaces) one key of `details`.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if !self.details.is_object() {
            self.details = Value::Object(Map::new());
        }
        if let Value::Object(m) = &mut self.details {
            m.insert(key.to_string(), value.into());
        }
        self
    }

    /// Wraps this error in a new message of the same kind; the old message becomes the first cause.
    pub fn context(mut self, message: impl Into<String>) -> Self {
        let old = std::mem::replace(&mut self.message, message.into());
        self.causes.insert(0, old);
        self
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        tasker_core::Error::field("input", field, message).into()
    }

    pub fn configuration(message: impl Into<String>) -> Self {
        FfiError::new(ErrorKind::Configuration, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        FfiError::new(ErrorKind::Internal, message)
    }

    pub fn closed(message: impl Into<String>) -> Self {
        FfiError::new(ErrorKind::Closed, message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        FfiError::new(ErrorKind::Timeout, message)
    }

    /// The engine error a core caller (the worker session) sees for this one: `closed` stays `closed`, and a
    /// refusal (a fork) stays a configuration error with the same message.
    pub fn into_core(self) -> tasker_core::Error {
        match self.kind {
            ErrorKind::Closed => tasker_core::Error::Closed,
            ErrorKind::Configuration => tasker_core::Error::Configuration(self.message),
            ErrorKind::Timeout => tasker_core::Error::Timeout(self.message),
            ErrorKind::Database => tasker_core::Error::Database(self.message),
            _ => tasker_core::Error::Internal(self.message),
        }
    }

    /// The refusal of a handle used in a process other than the one that opened it.
    pub fn forked(what: &str, opened_in: u32, current: u32) -> Self {
        FfiError::configuration(format!(
            "this {what} was opened in process {opened_in}; open a new client after fork"
        ))
        .with_detail("reason", "forked")
        .with_detail("opened_pid", opened_in)
        .with_detail("current_pid", current)
    }

    /// The error a caught panic becomes.
    pub fn from_panic(payload: &(dyn Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string payload".to_string());
        FfiError::internal(format!("panic inside tasker: {what}")).with_detail("panic", what)
    }
}

impl From<tasker_core::Error> for FfiError {
    fn from(e: tasker_core::Error) -> Self {
        use tasker_core::Error as E;
        let details = match &e {
            E::Validation { what, errors } => json!({
                "what": what,
                "errors": errors.iter().map(|f| json!({"path": f.path, "message": f.message})).collect::<Vec<_>>(),
            }),
            E::CycleDetected { path } => json!({ "path": path }),
            E::NotFound { entity, id } => json!({ "entity": entity, "id": id }),
            E::InvalidTransition {
                entity,
                id,
                from,
                event,
            } => {
                json!({ "entity": entity, "id": id, "from": from, "event": event })
            }
            E::StaleClaim {
                step_id,
                attempt,
                reason,
            } => {
                json!({ "step_id": step_id, "attempt": attempt, "reason": reason })
            }
            E::Conflict(_)
            | E::Closed
            | E::Timeout(_)
            | E::Database(_)
            | E::Configuration(_)
            | E::Handler(_)
            | E::Internal(_) => json!({}),
        };
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            causes.push(s.to_string());
            source = s.source();
        }
        let kind = e.kind();
        FfiError {
            kind,
            code: kind.code(),
            message: e.to_string(),
            causes,
            details,
        }
    }
}

/// The field errors of a validation error as `(path, message)` pairs; empty for other kinds.
pub fn field_errors(e: &FfiError) -> Vec<(String, String)> {
    e.details
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|f| {
                    let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                    (s("path"), s("message"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker_core::{Error as E, FieldError};

    fn conv(e: E) -> FfiError {
        FfiError::from(e)
    }

    #[test]
    fn validation_keeps_every_field_error() {
        let f = conv(E::Validation {
            what: "template",
            errors: vec![
                FieldError {
                    path: "steps[0].name".into(),
                    message: "is required".into(),
                },
                FieldError {
                    path: "version".into(),
                    message: "expected semver".into(),
                },
            ],
        });
        assert_eq!((f.kind, f.code), (ErrorKind::Validation, "validation"));
        assert_eq!(f.details["what"], "template");
        assert_eq!(
            field_errors(&f),
            vec![
                ("steps[0].name".to_string(), "is required".to_string()),
                ("version".to_string(), "expected semver".to_string())
            ]
        );
        assert!(f.message.starts_with("invalid template: steps[0].name: is required"));
    }

    #[test]
    fn cycle_detected_carries_the_path() {
        let f = conv(E::CycleDetected {
            path: vec!["a".into(), "b".into(), "a".into()],
        });
        assert_eq!((f.kind, f.code), (ErrorKind::CycleDetected, "cycle_detected"));
        assert_eq!(f.details, json!({"path": ["a", "b", "a"]}));
    }

    #[test]
    fn not_found_names_entity_and_id() {
        let f = conv(E::NotFound {
            entity: "task",
            id: "x".into(),
        });
        assert_eq!((f.kind, f.code), (ErrorKind::NotFound, "not_found"));
        assert_eq!(f.details, json!({"entity": "task", "id": "x"}));
        assert_eq!(f.message, "task not found: x");
    }

    #[test]
    fn conflict_maps() {
        let f = conv(E::Conflict("template t/x@1.0.0 is already registered".into()));
        assert_eq!((f.kind, f.code), (ErrorKind::Conflict, "conflict"));
        assert_eq!(f.details, json!({}));
    }

    #[test]
    fn invalid_transition_carries_from_and_event() {
        let f = conv(E::InvalidTransition {
            entity: "step",
            id: "s".into(),
            from: "cancelled".into(),
            event: "complete".into(),
        });
        assert_eq!((f.kind, f.code), (ErrorKind::InvalidTransition, "invalid_transition"));
        assert_eq!(
            f.details,
            json!({"entity": "step", "id": "s", "from": "cancelled", "event": "complete"})
        );
    }

    #[test]
    fn stale_claim_carries_step_and_attempt() {
        let f = conv(E::StaleClaim {
            step_id: "s".into(),
            attempt: 2,
            reason: "the step is on attempt 3".into(),
        });
        assert_eq!((f.kind, f.code), (ErrorKind::StaleClaim, "stale_claim"));
        assert_eq!(
            f.details,
            json!({"step_id": "s", "attempt": 2, "reason": "the step is on attempt 3"})
        );
    }

    #[test]
    fn closed_maps() {
        let f = conv(E::Closed);
        assert_eq!(
            (f.kind, f.code, f.message.as_str()),
            (ErrorKind::Closed, "closed", "engine is closed")
        );
    }

    #[test]
    fn timeout_maps() {
        let f = conv(E::Timeout("waiting for a database connection".into()));
        assert_eq!((f.kind, f.code), (ErrorKind::Timeout, "timeout"));
    }

    #[test]
    fn database_maps() {
        let f = conv(E::Database("disk I/O error".into()));
        assert_eq!((f.kind, f.code), (ErrorKind::Database, "database"));
        assert_eq!(f.message, "database error: disk I/O error");
    }

    #[test]
    fn configuration_maps() {
        let f = conv(E::Configuration("bad url".into()));
        assert_eq!((f.kind, f.code), (ErrorKind::Configuration, "configuration"));
    }

    #[test]
    fn handler_maps() {
        let f = conv(E::Handler("boom".into()));
        assert_eq!((f.kind, f.code), (ErrorKind::Handler, "handler"));
    }

    #[test]
    fn internal_maps() {
        let f = conv(E::Internal("bug".into()));
        assert_eq!((f.kind, f.code), (ErrorKind::Internal, "internal"));
    }

    #[test]
    fn every_kind_keeps_its_code_and_details_are_always_an_object() {
        for k in ErrorKind::ALL {
            let f = FfiError::new(k, "x");
            assert_eq!(f.code, k.code());
            assert!(f.details.is_object());
            let v = serde_json::to_value(&f).unwrap();
            assert_eq!(v["kind"], k.code());
            assert_eq!(v["code"], k.code());
        }
    }

    #[test]
    fn context_keeps_the_cause_chain() {
        let f = FfiError::from(E::Database("connection reset".into()))
            .context("reopening the store failed")
            .context("validate_or_refresh failed");
        assert_eq!(f.kind, ErrorKind::Database);
        assert_eq!(f.message, "validate_or_refresh failed");
        assert_eq!(
            f.causes,
            vec![
                "reopening the store failed".to_string(),
                "database error: connection reset".to_string()
            ]
        );
    }

    #[test]
    fn panics_become_internal_with_their_message() {
        let p: Box<dyn Any + Send> = Box::new("boom");
        let f = FfiError::from_panic(p.as_ref());
        assert_eq!(f.kind, ErrorKind::Internal);
        assert_eq!(f.message, "panic inside tasker: boom");
        let p: Box<dyn Any + Send> = Box::new(String::from("owned"));
        assert_eq!(FfiError::from_panic(p.as_ref()).details["panic"], "owned");
        let p: Box<dyn Any + Send> = Box::new(7u8);
        assert!(FfiError::from_panic(p.as_ref()).message.contains("non-string"));
    }

    /// The rows of docs/bindings.md §5: code, Ruby/Python class, Java class.
    #[test]
    fn every_kind_has_one_class_name_per_host() {
        let rows = [
            ("validation", "ValidationError", "ValidationException"),
            ("not_found", "NotFoundError", "NotFoundException"),
            ("conflict", "ConflictError", "ConflictException"),
            (
                "invalid_transition",
                "InvalidTransitionError",
                "InvalidTransitionException",
            ),
            ("stale_claim", "StaleClaimError", "StaleClaimException"),
            ("cycle_detected", "CycleDetectedError", "CycleDetectedException"),
            ("closed", "ClosedError", "ClosedException"),
            ("timeout", "TimeoutError", "TaskerTimeoutException"),
            ("database", "DatabaseError", "DatabaseException"),
            ("configuration", "ConfigurationError", "ConfigurationException"),
            ("handler", "HandlerError", "HandlerException"),
            ("internal", "InternalError", "InternalException"),
        ];
        assert_eq!(rows.len(), ErrorKind::ALL.len());
        for (kind, (code, class, java)) in ErrorKind::ALL.into_iter().zip(rows) {
            assert_eq!(
                (kind.code(), kind.class_name(), kind.java_class_name().as_str()),
                (code, class, java)
            );
        }
    }

    #[test]
    fn forked_says_what_to_do() {
        let f = FfiError::forked("client", 10, 11);
        assert_eq!(f.kind, ErrorKind::Configuration);
        assert_eq!(
            f.message,
            "this client was opened in process 10; open a new client after fork"
        );
        assert_eq!(f.details["reason"], "forked");
    }
}
