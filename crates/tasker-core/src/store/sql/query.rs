//! Filters appended to a query as bound parameters, the same way on both SQL stores: no value a user gives
//! ever becomes SQL text.

use sqlx::{Database, Encode, QueryBuilder, Type};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::{AnalyticsFilter, TaskFilter};

/// A batch update must reach every row it names: `affected` rows of `expected`, else one of the `entity` rows
/// is missing.
pub(crate) fn batch_updated(affected: u64, expected: usize, entity: &'static str) -> Result<()> {
    if affected == expected as u64 {
        Ok(())
    } else {
        Err(Error::not_found(entity, "one of a batch"))
    }
}

/// Appends the namespace and name filters of a template list.
pub(crate) fn push_template_filters<'a, DB: Database>(
    q: &mut QueryBuilder<'a, DB>,
    namespace: Option<&str>,
    name: Option<&str>,
) where
    String: Encode<'a, DB> + Type<DB>,
{
    if let Some(ns) = namespace {
        q.push(" AND namespace = ").push_bind(ns.to_owned());
    }
    if let Some(n) = name {
        q.push(" AND name = ").push_bind(n.to_owned());
    }
}

/// Appends the filters, order and page of a task list, newest first; `push_id` binds an id the way the store
/// keeps ids.
pub(crate) fn push_task_list<'a, DB: Database>(
    q: &mut QueryBuilder<'a, DB>,
    filter: &TaskFilter,
    push_id: fn(&mut QueryBuilder<'a, DB>, Uuid),
) where
    String: Encode<'a, DB> + Type<DB>,
    &'static str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    push_template_filters(q, filter.namespace.as_deref(), filter.name.as_deref());
    if let Some(s) = filter.state {
        q.push(" AND state = ").push_bind(s.as_str());
    }
    if let Some(before) = filter.before {
        q.push(" AND id < ");
        push_id(q, before);
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(filter.page_size()));
}

/// Appends the namespace/name/version filters of analytics on the task alias `alias`.
pub(crate) fn push_task_filters<'a, DB: Database>(
    q: &mut QueryBuilder<'a, DB>,
    alias: &'static str,
    filter: &AnalyticsFilter,
) where
    String: Encode<'a, DB> + Type<DB>,
{
    if let Some(ns) = &filter.namespace {
        q.push(format_args!(" AND {alias}.namespace = ")).push_bind(ns.clone());
    }
    if let Some(n) = &filter.name {
        q.push(format_args!(" AND {alias}.name = ")).push_bind(n.clone());
    }
    if let Some(v) = &filter.version {
        q.push(format_args!(" AND {alias}.version = ")).push_bind(v.clone());
    }
}
