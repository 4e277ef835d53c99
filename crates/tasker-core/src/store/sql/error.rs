//! sqlx errors as crate errors: the mapping every SQL store falls back on after its own codes.

use crate::error::Error;
use crate::model::{Task, TemplateRecord};

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut => Error::Timeout("waiting for a database connection".into()),
            // sqlx errors never carry the connection URL, so the message is safe to surface.
            _ => Error::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Database(format!("migration failed: {e}"))
    }
}

/// The conflict of a second row for one template version.
pub(crate) fn template_taken(rec: &TemplateRecord) -> Error {
    Error::Conflict(format!(
        "template {}/{} version {} is already registered",
        rec.namespace, rec.name, rec.version
    ))
}

/// The conflict of a second task with one idempotency key.
pub(crate) fn idempotency_key_taken(task: &Task) -> Error {
    Error::Conflict(format!(
        "a task {}/{} with idempotency key {:?} already exists",
        task.namespace,
        task.name,
        task.idempotency_key.as_deref().unwrap_or_default()
    ))
}

/// Driver messages start uppercase; ours start lowercase.
pub(crate) fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn fallback_mapping_and_messages() {
        assert_eq!(Error::from(sqlx::Error::PoolTimedOut).kind(), ErrorKind::Timeout);
        let e = Error::from(sqlx::Error::RowNotFound);
        assert_eq!(e.kind(), ErrorKind::Database);
        assert_eq!(lowercase_first("UNIQUE constraint failed"), "uNIQUE constraint failed");
        assert_eq!(lowercase_first("Duplicate key"), "duplicate key");
        assert_eq!(lowercase_first(""), "");
    }
}
