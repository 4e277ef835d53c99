//! How the SQLite store keeps values: ids as lowercase hyphenated TEXT (UUIDv7, so text order is creation
//! order), timestamps as INTEGER unix milliseconds, JSON as TEXT, and states and events as their stable
//! strings. Encoding for binds, and the [`SqlRow`] reads the shared decoders use.

use chrono::DateTime;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::store::sql::rows::{Cols, SqlRow};

pub(super) fn id(u: Uuid) -> String {
    u.hyphenated().to_string()
}

pub(super) fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(super) fn opt_ms(t: Option<Timestamp>) -> Option<i64> {
    t.map(ms)
}

pub(super) fn json<T: Serialize + ?Sized>(column: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("cannot encode {column} as json: {e}")))
}

pub(super) fn opt_json<T: Serialize>(column: &str, v: Option<&T>) -> Result<Option<String>> {
    v.map(|v| json(column, v)).transpose()
}

/// A JSON array of id strings, for `IN (SELECT value FROM json_each(?))`: one bound parameter however many
/// ids there are.
pub(super) fn id_array(ids: &[Uuid]) -> String {
    Value::Array(ids.iter().map(|u| Value::String(id(*u))).collect()).to_string()
}

pub(super) fn string_array(items: &[String]) -> String {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect()).to_string()
}

impl SqlRow for SqliteRow {
    fn text(c: &Cols<'_, Self>, column: &str) -> Result<String> {
        c.get(column)
    }

    fn opt_text(c: &Cols<'_, Self>, column: &str) -> Result<Option<String>> {
        c.get(column)
    }

    fn int(c: &Cols<'_, Self>, column: &str) -> Result<i64> {
        c.get(column)
    }

    fn int32(c: &Cols<'_, Self>, column: &str) -> Result<i32> {
        let v = c.int(column)?;
        i32::try_from(v).map_err(|_| c.corrupt(column, format!("{v} out of range")))
    }

    fn opt_int32(c: &Cols<'_, Self>, column: &str) -> Result<Option<i32>> {
        c.get::<Option<i64>>(column)?
            .map(|v| i32::try_from(v).map_err(|_| c.corrupt(column, format!("{v} out of range"))))
            .transpose()
    }

    fn uuid(c: &Cols<'_, Self>, column: &str) -> Result<Uuid> {
        let s = c.text(column)?;
        Uuid::parse_str(&s).map_err(|e| c.corrupt(column, format!("expected a uuid, found {s:?} ({e})")))
    }

    fn ts(c: &Cols<'_, Self>, column: &str) -> Result<Timestamp> {
        let v = c.int(column)?;
        DateTime::from_timestamp_millis(v).ok_or_else(|| c.corrupt(column, format!("timestamp {v} out of range")))
    }

    fn opt_ts(c: &Cols<'_, Self>, column: &str) -> Result<Option<Timestamp>> {
        match c.get::<Option<i64>>(column)? {
            None => Ok(None),
            Some(v) => DateTime::from_timestamp_millis(v)
                .map(Some)
                .ok_or_else(|| c.corrupt(column, format!("timestamp {v} out of range"))),
        }
    }

    fn json<T: DeserializeOwned>(c: &Cols<'_, Self>, column: &str) -> Result<T> {
        let s = c.text(column)?;
        serde_json::from_str(&s).map_err(|e| c.corrupt(column, e))
    }

    fn opt_json<T: DeserializeOwned>(c: &Cols<'_, Self>, column: &str) -> Result<Option<T>> {
        match c.opt_text(column)? {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| c.corrupt(column, e)),
        }
    }
}

/// One step as `fetch_steps_of_task` packs it: the columns in order, as a JSON array.
#[derive(Deserialize)]
pub(super) struct PackedStep(
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    crate::retry::RetryPolicy,
    i64,
    Value,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<crate::model::StepErrorInfo>,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    i32,
    i64,
    Option<String>,
    Option<i64>,
);

impl PackedStep {
    pub(super) fn into_step(self) -> Result<Step> {
        let corrupt =
            |column: &str, detail: String| Error::Internal(format!("corrupt value in steps.{column}: {detail}"));
        let uuid = |column: &str, s: &str| Uuid::parse_str(s).map_err(|e| corrupt(column, format!("{s:?}: {e}")));
        let ts = |column: &str, v: i64| {
            DateTime::from_timestamp_millis(v).ok_or_else(|| corrupt(column, format!("timestamp {v} out of range")))
        };
        let opt_ts = |column: &str, v: Option<i64>| v.map(|v| ts(column, v)).transpose();
        Ok(Step {
            id: uuid("id", &self.0)?,
            task_id: uuid("task_id", &self.1)?,
            name: self.2,
            handler_key: self.3,
            position: i32::try_from(self.4).map_err(|_| corrupt("position", format!("{} out of range", self.4)))?,
            state: self.5.parse().map_err(|_| corrupt("state", self.5.clone()))?,
            attempts: self.6,
            max_attempts: self.7,
            retry: self.8,
            timeout_seconds: self.9,
            config: self.10,
            unfinished_parents: self.11,
            next_attempt_at: opt_ts("next_attempt_at", self.12)?,
            lease_expires_at: opt_ts("lease_expires_at", self.13)?,
            worker_id: self.14,
            result: self
                .15
                .map(|r| serde_json::from_str(&r).map_err(|e| corrupt("result", e.to_string())))
                .transpose()?,
            error: self.16,
            transition_count: self.17,
            created_at: ts("created_at", self.18)?,
            updated_at: ts("updated_at", self.19)?,
            started_at: opt_ts("started_at", self.20)?,
            finished_at: opt_ts("finished_at", self.21)?,
            priority: self.22,
            ready_at: ts("ready_at", self.23)?,
            concurrency_key: self.24,
            concurrency_limit: self
                .25
                .map(|v| i32::try_from(v).map_err(|_| corrupt("concurrency_limit", format!("{v} out of range"))))
                .transpose()?,
        })
    }
}
