//! Objects out, declared once: the table of every type handed to hosts ([`OBJECTS`], in `table.rs`) and the
//! one walk that turns a value of it into a host object ([`Lower`]).
//!
//! A binding implements [`Lowering`]: how its language builds a scalar, a time, a list, a map and an object of
//! a table class. [`Lower::lower`] serializes a Rust object with serde and walks the table over it (lists,
//! options and bare timestamps too), so a binding never lists fields, never guesses which keys are
//! timestamps, and a new field reaches every host by a row in `table.rs`. The same walk checks a host value
//! against the table ([`lower_value`]), which is how a host builds an object from a plain map (Ruby's
//! `Task.from_h`), with errors naming the field path. Arguments go the other way as primitives and maps:
//! [`options`] and [`seconds`]. `cargo xtask gen` writes the host type files (.pyi, .rbs) and
//! docs/bindings.md §4 from the table.
//!
//! To add a field to an object (a new `SessionStats` counter, say): add it to the Rust type and a row to its
//! entry in `table.rs`, then run `cargo xtask gen`. The tests here fail until the row matches the type; the
//! hosts pick the field up with no other change.

mod table;

use std::time::Duration;

use chrono::DateTime;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
pub use table::{index_of, Field, Kind, ObjectType, OBJECTS};

use crate::dto::{self, Timestamp};
use crate::error::{FfiError, FfiResult};

/// A Rust type that is lowered as the table's object called [`HostObject::NAME`].
pub trait HostObject: Serialize {
    /// Its row in [`OBJECTS`].
    const NAME: &'static str;
}

/// A Rust value a binding hands to its host: an object of the table, a list of them, an option of one,
/// or a timestamp. Bindings lower every result through this one trait.
pub trait Lower {
    fn lower<L: Lowering>(&self, l: &L) -> Result<L::Value, L::Error>;
}

macro_rules! host_objects {
    ($($name:ident => $ty:ty),* $(,)?) => {
        $(impl HostObject for $ty {
            const NAME: &'static str = stringify!($name);
        }

        impl Lower for $ty {
            fn lower<L: Lowering>(&self, l: &L) -> Result<L::Value, L::Error> {
                lower_object(l, self)
            }
        })*

        /// Deserializes `value` as the Rust type of table object `name` and serializes it back: the tests'
        /// probe of what the real type accepts and writes. `None` when no Rust type claims the name.
        #[cfg(test)]
        fn round_trip(name: &str, value: Value) -> Option<Result<Value, String>> {
            fn via<T: serde::de::DeserializeOwned + Serialize>(value: Value) -> Result<Value, String> {
                let t: T = serde_json::from_value(value).map_err(|e| e.to_string())?;
                serde_json::to_value(&t).map_err(|e| e.to_string())
            }
            match name {
                $(stringify!($name) => Some(via::<$ty>(value)),)*
                _ => None,
            }
        }

        #[cfg(test)]
        const IMPLEMENTED: &[&str] = &[$(stringify!($name)),*];
    };
}

host_objects! {
    Task => dto::Task,
    Step => dto::Step,
    StepError => dto::StepError,
    RetryPolicy => dto::RetryPolicy,
    StepContext => dto::StepContext,
    ClaimToken => dto::ClaimToken,
    TemplateInfo => dto::TemplateInfo,
    TemplateStep => dto::TemplateStep,
    Registration => dto::Registration,
    Transitions => dto::Transitions,
    TaskTransition => dto::TaskTransition,
    StepTransition => dto::StepTransition,
    Explain => dto::Explain,
    StepReadiness => dto::StepReadiness,
    ExecutionContext => dto::ExecutionContext,
    DependencyLevel => dto::DependencyLevel,
    HealthCounts => dto::HealthCounts,
    AnalyticsMetrics => dto::AnalyticsMetrics,
    DurationStats => dto::DurationStats,
    SlowStep => dto::SlowStep,
    SlowTask => dto::SlowTask,
    Event => dto::Event,
    ReapReport => dto::ReapReport,
    Schedule => dto::Schedule,
    ScheduleReport => dto::ScheduleReport,
    ClientHealth => dto::ClientHealth,
    SessionStats => dto::SessionStats,
    PatternTasks => dto::PatternTasks,
    HandlerCall => dto::HandlerCall,
    RunReport => dto::RunReport,
}

/// Lowered values as a host adds them to a container: one at a time, each as soon as it is made.
pub type Items<'a, V, E> = &'a mut dyn Iterator<Item = Result<V, E>>;

/// How one host language builds what [`Lower::lower`] hands it: six constructors, whatever the object.
///
/// Containers receive their elements as an iterator that lowers each one when asked. A host creates the
/// container first and adds every element as it comes, so no lowered value ever waits in a Rust collection:
/// Ruby's GC scans the stack but not Rust's heap, and would free a value held only there.
pub trait Lowering {
    /// A host value (`magnus::Value`, `Py<PyAny>`, …).
    type Value;
    /// The host's error (`magnus::Error`, `PyErr`, …).
    type Error;

    /// The host error for an error of this crate (through the binding's errors.rs).
    fn error(&self, e: FfiError) -> Self::Error;
    /// A JSON null, boolean, number or string. A number is an integer when `as_i64`/`as_u64` says so and a
    /// float otherwise (the walk hands float fields over as floats, `2.0` included).
    fn scalar(&self, v: &Value) -> Result<Self::Value, Self::Error>;
    /// A native time: Ruby `Time` (UTC), Python tz-aware `datetime`, JS `Date`, `java.time.Instant`.
    fn timestamp(&self, t: Timestamp) -> Result<Self::Value, Self::Error>;
    fn list(&self, items: Items<'_, Self::Value, Self::Error>) -> Result<Self::Value, Self::Error>;
    fn map(&self, entries: Items<'_, (&str, Self::Value), Self::Error>) -> Result<Self::Value, Self::Error>;
    /// An instance of the host class of `OBJECTS[index]`, with `fields` in the table's order.
    fn object(&self, index: usize, fields: Items<'_, Self::Value, Self::Error>) -> Result<Self::Value, Self::Error>;
}

impl<T: HostObject + Lower> Lower for Vec<T> {
    fn lower<L: Lowering>(&self, l: &L) -> Result<L::Value, L::Error> {
        l.list(&mut self.iter().map(|v| v.lower(l)))
    }
}

impl<T: Lower> Lower for Option<T> {
    fn lower<L: Lowering>(&self, l: &L) -> Result<L::Value, L::Error> {
        match self {
            Some(v) => v.lower(l),
            None => l.scalar(&Value::Null),
        }
    }
}

impl Lower for bool {
    fn lower<L: Lowering>(&self, l: &L) -> Result<L::Value, L::Error> {
        l.scalar(&Value::Bool(*self))
    }
}

/// Nothing (a call that returns no value): the host's nil or None.
impl Lower for () {
    fn lower<L: Lowering>(&self, l: &L) -> Result<L::Value, L::Error> {
        l.scalar(&Value::Null)
    }
}

impl Lower for Timestamp {
    fn lower<L: Lowering>(&self, l: &L) -> Result<L::Value, L::Error> {
        l.timestamp(*self)
    }
}

fn lower_object<L: Lowering, T: HostObject>(l: &L, value: &T) -> Result<L::Value, L::Error> {
    let v = serde_json::to_value(value)
        .map_err(|e| l.error(FfiError::internal(format!("cannot serialize {}: {e}", T::NAME))))?;
    // Checked for every implementor by `every_table_object_has_a_rust_type_and_every_rust_type_a_row`.
    let index = index_of(T::NAME).unwrap_or_else(|| panic!("{} has no row in the object table", T::NAME));
    walk_object(l, index, &v, Path::Root(T::NAME))
}

/// Lowers a JSON value that should be the table object `name`, checking it against the table on the way: a
/// missing or unknown field, or a value of the wrong kind, is a `validation` error naming the field path
/// under `path` (`token.attempt: expected an integer, found a string`).
pub fn lower_value<L: Lowering>(l: &L, name: &str, v: &Value, path: &str) -> Result<L::Value, L::Error> {
    let index = index_of(name).ok_or_else(|| {
        l.error(FfiError::validation(
            path,
            format!("{name} is not an object of the table"),
        ))
    })?;
    walk_object(l, index, v, Path::Root(path))
}

/// A JSON payload (context, result, details) as native maps, lists and scalars.
pub fn lower_json<L: Lowering>(l: &L, v: &Value) -> Result<L::Value, L::Error> {
    match v {
        Value::Array(items) => l.list(&mut items.iter().map(|v| lower_json(l, v))),
        Value::Object(m) => l.map(&mut m.iter().map(|(k, v)| Ok((k.as_str(), lower_json(l, v)?)))),
        scalar => l.scalar(scalar),
    }
}

/// Where the walk is, rendered only when an error names it.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root(root) => root.to_string(),
            Path::Field(parent, name) => field_path(&parent.render(), name),
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

fn mismatch(path: Path<'_>, kind: &Kind, found: &Value) -> FfiError {
    let found = match found {
        Value::Null => "nothing".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".to_string(),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    };
    let kind = kind.describe();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    FfiError::validation(&path.render(), format!("expected {article} {kind}, found {found}"))
}

fn walk_object<L: Lowering>(l: &L, index: usize, v: &Value, path: Path<'_>) -> Result<L::Value, L::Error> {
    let ty = &OBJECTS[index];
    let Value::Object(map) = v else {
        return Err(l.error(mismatch(path, &Kind::Object(ty.name), v)));
    };
    if let Some(unknown) = map.keys().find(|k| !ty.fields.iter().any(|f| f.name == k.as_str())) {
        let at = Path::Field(&path, unknown).render();
        return Err(l.error(FfiError::validation(&at, format!("{} has no field {unknown}", ty.name))));
    }
    l.object(
        index,
        &mut ty.fields.iter().map(|f| {
            let value = map.get(f.name).unwrap_or(&Value::Null);
            walk(l, &f.kind, value, Path::Field(&path, f.name))
        }),
    )
}

fn walk<L: Lowering>(l: &L, kind: &Kind, v: &Value, path: Path<'_>) -> Result<L::Value, L::Error> {
    match (kind, v) {
        (Kind::Optional(_), Value::Null) => l.scalar(v),
        (Kind::Json, _) => lower_json(l, v),
        (Kind::Optional(inner), _) => walk(l, inner, v, path),
        (Kind::String, Value::String(_)) | (Kind::Boolean, Value::Bool(_)) => l.scalar(v),
        (Kind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => l.scalar(v),
        (Kind::Float, Value::Number(n)) => {
            let f = n.as_f64().and_then(serde_json::Number::from_f64);
            l.scalar(&f.map_or(Value::Null, Value::Number))
        }
        (Kind::Timestamp, Value::String(s)) => match time(&path.render(), s) {
            Ok(t) => l.timestamp(t),
            Err(e) => Err(l.error(e)),
        },
        (Kind::Object(name), _) => match index_of(name) {
            Some(index) => walk_object(l, index, v, path),
            None => Err(l.error(FfiError::internal(format!("{name} has no row in the object table")))),
        },
        (Kind::List(inner), Value::Array(items)) => l.list(
            &mut items
                .iter()
                .enumerate()
                .map(|(i, item)| walk(l, inner, item, Path::Index(&path, i))),
        ),
        (Kind::Map(inner), Value::Object(m)) => l.map(
            &mut m
                .iter()
                .map(|(k, item)| Ok((k.as_str(), walk(l, inner, item, Path::Field(&path, k))?))),
        ),
        _ => Err(l.error(mismatch(path, kind, v))),
    }
}

/// The other direction, for arguments: JSON a host lifted from its keyword arguments or options hash (null
/// for none) becomes an input struct of this crate (`CreateTaskOptions`, `PatternSpec`, a list of outcomes).
/// A mismatch is a `validation` error naming the field path under `what` (`filter.limit: invalid type: …`).
pub fn options<T: DeserializeOwned>(value: Value, what: &str) -> FfiResult<T> {
    let value = match value {
        Value::Null => Value::Object(Default::default()),
        other => other,
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (what.is_empty(), inner.as_str()) {
            (_, ".") => what.to_string(),
            (true, _) => inner,
            (false, i) if i.starts_with('[') => format!("{what}{inner}"),
            (false, _) => format!("{what}.{inner}"),
        };
        FfiError::validation(&path, e.into_inner().to_string())
    })
}

/// A time a host gave as RFC 3339 text (how every binding hands over its native time type); anything else is
/// a `validation` error naming `path`.
pub fn time(path: &str, s: &str) -> FfiResult<DateTime<chrono::Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| FfiError::validation(path, format!("expected an RFC 3339 timestamp, found {s:?} ({e})")))
}

/// The path of field `name` under `path`, as every error names it: `context.items[3].sku`, or just `name`
/// at the top.
pub fn field_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// How deeply a JSON value lifted from a host may nest: 127 arrays or objects one inside another, the most
/// serde_json reads back (its recursion limit is 128), so every value a binding accepts can be written to a
/// SQL store and read again. Every binding's lift enforces it through [`Nesting`].
pub const MAX_JSON_DEPTH: usize = 127;

/// The arrays and objects a binding's lift is inside, outermost first: the one rule that makes a cyclic host
/// value, or one nested deeper than [`MAX_JSON_DEPTH`], a `validation` error naming its field path instead
/// of a stack overflow. A lift calls [`Nesting::enter`] before it walks a container's items and
/// [`Nesting::leave`] after. Each level keeps the host value, for the cycle check, and the length of its
/// path: every path extends its parent's, so each ancestor's path is a prefix of the current one.
pub struct Nesting<T> {
    levels: Vec<(T, usize)>,
    limit: usize,
}

impl<T> Default for Nesting<T> {
    fn default() -> Self {
        Nesting {
            levels: Vec::new(),
            limit: MAX_JSON_DEPTH,
        }
    }
}

impl<T> Nesting<T> {
    /// For an options map (the argument [`options`] takes), whose fields are the values: the map itself does
    /// not count, so a task's context may nest as deeply as a handler's result.
    pub fn for_options() -> Self {
        Nesting {
            levels: Vec::new(),
            limit: MAX_JSON_DEPTH + 1,
        }
    }

    /// Enters the container `value` at `path`; `same` is the host's identity test (JS `===`, Python `is`).
    /// Checks nothing until the limit is reached, so a lift pays for the cycle check only when it fails.
    pub fn enter(&mut self, value: T, path: &str, same: impl Fn(&T, &T) -> bool) -> FfiResult<()> {
        if self.levels.len() < self.limit {
            self.levels.push((value, path.len()));
            return Ok(());
        }
        // The lift walks depth first, so a cycle shorter than the limit repeats within these levels: name
        // the first container that is one of its own ancestors, and that ancestor.
        let levels: Vec<(&T, &str)> = self
            .levels
            .iter()
            .map(|(v, len)| (v, &path[..*len]))
            .chain([(&value, path)])
            .collect();
        for (j, (b, at)) in levels.iter().enumerate() {
            if let Some((_, back)) = levels[..j].iter().find(|(a, _)| same(a, b)) {
                let back = if back.is_empty() { "the whole value" } else { back };
                return Err(FfiError::validation(
                    at,
                    format!("expected a JSON value, found a cycle back to {back}"),
                ));
            }
        }
        let message = format!("expected a JSON value nested at most {MAX_JSON_DEPTH} levels deep, found a deeper one");
        Err(FfiError::validation(path, message))
    }

    /// Leaves the container entered last and hands its host value back (the JVM deletes its local reference).
    pub fn leave(&mut self) -> Option<T> {
        self.levels.pop().map(|(value, _)| value)
    }
}

/// A duration a host gave in seconds (a float, the way Ruby and Python take durations); a negative or
/// non-finite one is a `validation` error naming `path`.
pub fn seconds(seconds: f64, path: &str) -> FfiResult<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        let message = format!("expected a number of seconds >= 0, found {seconds}");
        return Err(FfiError::validation(path, message));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests;
