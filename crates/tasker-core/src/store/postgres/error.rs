//! PostgreSQL errors as crate errors, by SQLSTATE; what is left goes through the shared mapping.

use super::url::Target;
use crate::error::Error;
use crate::store::sql::error::lowercase_first;
use crate::url::scrub;

/// How the message of a lock wait cut off by `lock_timeout` (SQLSTATE 55P03) starts.
pub(super) const LOCK_WAIT_TIMEOUT: &str = "waiting for a postgres lock";

/// Maps a sqlx error: unique violations are conflicts, a statement or lock wait cut off by the server is a
/// timeout, a closed pool is `closed`, and everything else is a database error that says what happened.
pub(super) fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::PoolClosed => Error::Closed,
        sqlx::Error::PoolTimedOut => Error::Timeout("waiting for a postgres connection from the pool".into()),
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = lowercase_first(d.message());
            match code.as_str() {
                // unique_violation
                "23505" => Error::Conflict(msg),
                // query_canceled: statement_timeout (or an operator's pg_cancel_backend).
                "57014" => Error::Timeout(format!("postgres cancelled the statement: {msg}")),
                // lock_not_available: lock_timeout.
                "55P03" => Error::Timeout(format!("{LOCK_WAIT_TIMEOUT}: {msg}")),
                // admin_shutdown, crash_shutdown, cannot_connect_now: the server ended the session.
                "57P01" | "57P02" | "57P03" => {
                    Error::Database(format!("lost the connection to postgres: {msg} (sqlstate {code})"))
                }
                // deadlock_detected: the server rolled this transaction back to let the other one through.
                "40P01" => Error::Database(format!("{msg} (sqlstate 40P01); the transaction was rolled back")),
                _ => Error::Database(format!("{msg} (sqlstate {code})")),
            }
        }
        sqlx::Error::Io(io) => Error::Database(format!("lost the connection to postgres: {}", io_reason(io))),
        _ => Error::from(e),
    }
}

/// Why a connection could not be opened, naming where it went and never the password.
pub(super) fn connect_err(target: &Target, e: &sqlx::Error, secrets: &[String]) -> Error {
    let why = match e {
        sqlx::Error::Io(io) => io_reason(io),
        sqlx::Error::Database(d) => {
            let msg = d.message();
            match d.code().as_deref() {
                // 28P01 invalid_password; 28000 invalid_authorization_specification (an unknown role, or no
                // pg_hba.conf line lets this user in).
                Some("28P01") | Some("28000") if msg.contains("authentication failed") => msg.to_string(),
                Some("28P01") | Some("28000") => format!("authentication failed: {msg}"),
                Some(code) => format!("{msg} (sqlstate {code})"),
                None => msg.to_string(),
            }
        }
        sqlx::Error::Tls(tls) => format!("tls handshake failed: {tls}"),
        other => other.to_string(),
    };
    Error::Database(scrub(
        &format!("cannot connect to postgres at {target}: {why}"),
        secrets,
    ))
}

fn io_reason(io: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match io.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::TimedOut => "timed out".into(),
        K::NotFound => "no such socket".into(),
        K::PermissionDenied => "permission denied".into(),
        _ => {
            let s = io.to_string();
            // "... (os error 101)" says nothing more to a reader.
            let s = match s.rfind(" (os error ") {
                Some(i) => s[..i].to_string(),
                None => s,
            };
            lowercase_first(&s)
        }
    }
}
