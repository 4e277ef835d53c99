//! Errors of the engine.
//!
//! Every variant maps to exactly one [`ErrorKind`], whose string code is stable and shared by every
//! binding. Messages start lowercase and say what was expected and what was found.

use std::fmt;

/// The language-neutral class of an error. Bindings map each kind to one host exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Validation,
    NotFound,
    Conflict,
    InvalidTransition,
    StaleClaim,
    CycleDetected,
    Closed,
    Timeout,
    Database,
    Configuration,
    Handler,
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Validation,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::InvalidTransition,
        ErrorKind::StaleClaim,
        ErrorKind::CycleDetected,
        ErrorKind::Closed,
        ErrorKind::Timeout,
        ErrorKind::Database,
        ErrorKind::Configuration,
        ErrorKind::Handler,
        ErrorKind::Internal,
    ];

    /// The stable string code of this kind.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidTransition => "invalid_transition",
            ErrorKind::StaleClaim => "stale_claim",
            ErrorKind::CycleDetected => "cycle_detected",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Database => "database",
            ErrorKind::Configuration => "configuration",
            ErrorKind::Handler => "handler",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem found in a template or an input, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Dotted path of the offending field, for example `steps[2].retry.max_attempts`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn join_fields(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The error type of every engine operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input failed validation; each entry names the field at fault.
    #[error("invalid {what}: {}", join_fields(.errors))]
    Validation {
        what: &'static str,
        errors: Vec<FieldError>,
    },

    /// The dependency graph has a cycle; `path` walks it and ends where it started.
    #[error("steps: dependency cycle {}", .path.join(" -> "))]
    CycleDetected { path: Vec<String> },

    #[error("{entity} not found: {id}")]
    NotFound { entity: &'static str, id: String },

    #[error("conflict: {0}")]
    Conflict(String),

    #[error("invalid transition of {entity} {id}: cannot {event} from {from}")]
    InvalidTransition {
        entity: &'static str,
        id: String,
        from: String,
        event: String,
    },

    #[error("stale claim for step {step_id} attempt {attempt}: {reason}")]
    StaleClaim {
        step_id: String,
        attempt: i64,
        reason: String,
    },

    #[error("engine is closed")]
    Closed,

    #[error("timed out: {0}")]
    Timeout(String),

    #[error("database error: {0}")]
    Database(String),

    #[error("configuration error: {0}")]
    Configuration(String),

    #[error("handler error: {0}")]
    Handler(String),

    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The kind of this error; each variant has exactly one.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Validation { .. } => ErrorKind::Validation,
            Error::CycleDetected { .. } => ErrorKind::CycleDetected,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::InvalidTransition { .. } => ErrorKind::InvalidTransition,
            Error::StaleClaim { .. } => ErrorKind::StaleClaim,
            Error::Closed => ErrorKind::Closed,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Database(_) => ErrorKind::Database,
            Error::Configuration(_) => ErrorKind::Configuration,
            Error::Handler(_) => ErrorKind::Handler,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// A validation error with a single field.
    pub fn field(what: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            what,
            errors: vec![FieldError {
                path: path.into(),
                message: message.into(),
            }],
        }
    }

    pub(crate) fn not_found(entity: &'static str, id: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

// The conversions from sqlx errors live with the SQL stores, in `store/sql/error.rs`.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_snake_case_code() {
        let codes: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for k in ErrorKind::ALL {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::String(k.code().into())
            );
        }
    }

    #[test]
    fn each_variant_maps_to_its_kind() {
        let cases: Vec<(Error, ErrorKind)> = vec![
            (Error::field("template", "name", "is required"), ErrorKind::Validation),
            (
                Error::CycleDetected {
                    path: vec!["a".into(), "b".into(), "a".into()],
                },
                ErrorKind::CycleDetected,
            ),
            (Error::not_found("task", "x"), ErrorKind::NotFound),
            (Error::Conflict("x".into()), ErrorKind::Conflict),
            (
                Error::InvalidTransition {
                    entity: "step",
                    id: "x".into(),
                    from: "complete".into(),
                    event: "cancel".into(),
                },
                ErrorKind::InvalidTransition,
            ),
            (
                Error::StaleClaim {
                    step_id: "x".into(),
                    attempt: 1,
                    reason: "r".into(),
                },
                ErrorKind::StaleClaim,
            ),
            (Error::Closed, ErrorKind::Closed),
            (Error::Timeout("x".into()), ErrorKind::Timeout),
            (Error::Database("x".into()), ErrorKind::Database),
            (Error::Configuration("x".into()), ErrorKind::Configuration),
            (Error::Handler("x".into()), ErrorKind::Handler),
            (Error::Internal("x".into()), ErrorKind::Internal),
        ];
        for (e, k) in cases {
            assert_eq!(e.kind(), k, "{e}");
        }
    }

    #[test]
    fn cycle_message_names_the_path() {
        let e = Error::CycleDetected {
            path: vec!["a".into(), "b".into(), "a".into()],
        };
        assert_eq!(e.to_string(), "steps: dependency cycle a -> b -> a");
    }
}
