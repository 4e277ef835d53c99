//! How the PostgreSQL store keeps values: uuid, timestamptz (the engine hands whole milliseconds, which
//! round-trip exactly), jsonb, and states and events as their stable strings. The [`SqlRow`] reads the shared
//! decoders use, and the decoders of rows only this store reads.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::store::sql::rows::{Cols, SqlRow};
use crate::store::ClaimInput;

pub(super) fn to_json<T: Serialize + ?Sized>(column: &str, v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(format!("cannot encode {column} as json: {e}")))
}

pub(super) fn opt_to_json<T: Serialize>(column: &str, v: Option<&T>) -> Result<Option<Value>> {
    v.map(|v| to_json(column, v)).transpose()
}

impl SqlRow for PgRow {
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
        c.get(column)
    }

    fn opt_int32(c: &Cols<'_, Self>, column: &str) -> Result<Option<i32>> {
        c.get(column)
    }

    fn uuid(c: &Cols<'_, Self>, column: &str) -> Result<Uuid> {
        c.get(column)
    }

    fn ts(c: &Cols<'_, Self>, column: &str) -> Result<Timestamp> {
        c.get(column)
    }

    fn opt_ts(c: &Cols<'_, Self>, column: &str) -> Result<Option<Timestamp>> {
        c.get(column)
    }

    fn json<T: DeserializeOwned>(c: &Cols<'_, Self>, column: &str) -> Result<T> {
        c.get::<Json<T>>(column).map(|j| j.0)
    }

    fn opt_json<T: DeserializeOwned>(c: &Cols<'_, Self>, column: &str) -> Result<Option<T>> {
        c.get::<Option<Json<T>>>(column).map(|j| j.map(|j| j.0))
    }
}

/// `columns` with every name prefixed by `alias.`, for statements that join.
pub(super) fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn edge_from_row(row: &PgRow) -> Result<Edge> {
    let c = Cols::new(row, "step_edges");
    Ok(Edge {
        task_id: c.uuid("task_id")?,
        parent_id: c.uuid("parent_id")?,
        child_id: c.uuid("child_id")?,
    })
}

pub(super) fn claim_input_from_row(row: &PgRow) -> Result<ClaimInput> {
    let c = Cols::new(row, "tasks");
    Ok(ClaimInput {
        step_id: c.uuid("step_id")?,
        namespace: c.text("namespace")?,
        task_name: c.text("task_name")?,
        context: c.json("context")?,
        dependency_results: c.json("dependency_results")?,
    })
}
