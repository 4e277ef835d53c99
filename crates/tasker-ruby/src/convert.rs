//! The conversion file: `lift_*` turns Ruby values into Rust ones, `lower_*` turns Rust values into Ruby
//! ones. A lift error names the field path (`context.items[3].sku: expected string …`) and is a
//! `ValidationError`; positional arguments of the wrong Ruby type are magnus' `TypeError`.
//!
//! Objects are lowered by walking tasker-shared-ffi's object table (`tasker_shared_ffi::objects`): this file
//! says only how Ruby builds each kind, and defines one class per table object (`TaskerCore::Task`,
//! `TaskerCore::Performance::SlowStep`, …) under `TaskerCore::Model` (lib/tasker_core/models.rb).

use std::sync::OnceLock;
use std::time::Duration;

use chrono::DateTime;
use magnus::value::{Opaque, OpaqueId};
use magnus::{
    function, prelude::*, r_hash::ForEach, Error, Float, Integer, RArray, RClass, RHash, RModule, RObject, RString,
    Ruby, Symbol, Value,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value as Json};
use tasker_shared_ffi::objects::{self, Items, Lower, Lowering, Nesting, OBJECTS};
use tasker_shared_ffi::{ClaimToken, FfiError, FfiResult, OutcomeInput, Timestamp};

use crate::errors::IntoHost;

fn invalid(path: &str, message: impl Into<String>) -> FfiError {
    FfiError::validation(path, message)
}

fn class_of(v: Value) -> String {
    // `inspect` of the class says what was found (an anonymous class reads `#<Class:…>`).
    v.class().inspect()
}

/// Ruby → JSON, for contexts, results, configs and option hashes. Symbol keys and values become strings,
/// `Time` becomes an RFC 3339 string.
/// A cycle, or nesting deeper than `MAX_JSON_DEPTH`, is a `validation` error too (the shared layer's
/// `Nesting`), never a stack overflow.
pub fn lift_json(ruby: &Ruby, v: Value, path: &str) -> FfiResult<Json> {
    lift_nested(ruby, v, path, &mut Nesting::default())
}

/// Ruby's identity (`equal?`), the one the cycle check compares containers by.
fn same(a: &Value, b: &Value) -> bool {
    a.funcall("equal?", (*b,)).unwrap_or(false)
}

fn lift_nested(ruby: &Ruby, v: Value, path: &str, nest: &mut Nesting<Value>) -> FfiResult<Json> {
    if v.is_nil() {
        return Ok(Json::Null);
    }
    if v.is_kind_of(ruby.class_true_class()) {
        return Ok(Json::Bool(true));
    }
    if v.is_kind_of(ruby.class_false_class()) {
        return Ok(Json::Bool(false));
    }
    if let Some(i) = Integer::from_value(v) {
        return i
            .to_i64()
            .map(Json::from)
            .or_else(|_| i.to_u64().map(Json::from))
            .map_err(|_| invalid(path, "expected an integer that fits in 64 bits"));
    }
    if let Some(f) = Float::from_value(v) {
        return Number::from_f64(f.to_f64())
            .map(Json::Number)
            .ok_or_else(|| invalid(path, "expected a finite float, found NaN or Infinity"));
    }
    if let Some(s) = RString::from_value(v) {
        return s
            .to_string()
            .map(Json::String)
            .map_err(|_| invalid(path, "expected a UTF-8 string"));
    }
    if let Some(s) = Symbol::from_value(v) {
        return Ok(Json::String(
            s.name().map_err(|_| invalid(path, "expected a symbol"))?.into_owned(),
        ));
    }
    if let Some(a) = RArray::from_value(v) {
        nest.enter(v, path, same)?;
        let mut out = Vec::with_capacity(a.len());
        for (i, item) in a.into_iter().enumerate() {
            out.push(lift_nested(ruby, item, &format!("{path}[{i}]"), nest)?);
        }
        nest.leave();
        return Ok(Json::Array(out));
    }
    if let Some(h) = RHash::from_value(v) {
        nest.enter(v, path, same)?;
        let (mut out, mut failed) = (Map::new(), None);
        h.foreach(
            |k: Value, item: Value| match lift_entry(ruby, &mut out, k, item, path, nest) {
                Ok(()) => Ok(ForEach::Continue),
                Err(e) => {
                    failed = Some(e);
                    Ok(ForEach::Stop)
                }
            },
        )
        .map_err(|e| invalid(path, e.to_string()))?;
        nest.leave();
        return failed.map_or(Ok(Json::Object(out)), Err);
    }
    if v.is_kind_of(ruby.class_time()) {
        return Ok(Json::String(time_of(v, path)?.to_rfc3339()));
    }
    Err(invalid(
        path,
        format!(
            "expected nil, true, false, Integer, Float, String, Symbol, Time, Array or Hash, found {}",
            class_of(v)
        ),
    ))
}

fn lift_entry(
    ruby: &Ruby,
    out: &mut Map<String, Json>,
    k: Value,
    item: Value,
    path: &str,
    nest: &mut Nesting<Value>,
) -> FfiResult<()> {
    let key =
        lift_key(k).ok_or_else(|| invalid(path, format!("expected String or Symbol keys, found {}", class_of(k))))?;
    let child = objects::field_path(path, &key);
    out.insert(key, lift_nested(ruby, item, &child, nest)?);
    Ok(())
}

fn lift_key(k: Value) -> Option<String> {
    if let Some(s) = RString::from_value(k) {
        return s.to_string().ok();
    }
    Symbol::from_value(k).and_then(|s| s.name().ok().map(|n| n.into_owned()))
}

/// A Ruby options Hash (or nil) → an input struct of the shared layer; an error names `what.field`.
pub fn lift_options<T: DeserializeOwned>(ruby: &Ruby, v: Value, what: &str) -> Result<T, Error> {
    let json = lift_nested(ruby, v, what, &mut Nesting::for_options()).into_host()?;
    objects::options(json, what).into_host()
}

/// A claim token: a `TaskerCore::ClaimToken`, or a `StepContext` (its token).
pub fn lift_token(ruby: &Ruby, v: Value) -> Result<ClaimToken, Error> {
    let token: Value = if v.respond_to("token", false)? {
        v.funcall("token", ())?
    } else {
        v
    };
    if !(token.respond_to("step_id", false)? && token.respond_to("attempt", false)?) {
        let message = format!("token: expected a ClaimToken or StepContext, found {}", class_of(v));
        return Err(Error::new(ruby.exception_type_error(), message));
    }
    Ok(ClaimToken::new(
        token.funcall::<_, _, String>("step_id", ())?,
        token.funcall::<_, _, i64>("attempt", ())?,
    ))
}

/// One item of `finish_many`: `[token, "success", result]` or `[token, "failure", {…}]`.
pub fn lift_outcome(ruby: &Ruby, item: Value, i: usize) -> Result<(ClaimToken, OutcomeInput), Error> {
    let parts = RArray::from_value(item).filter(|a| a.len() == 3).ok_or_else(|| {
        let message = format!("items[{i}]: expected [token, \"success\" | \"failure\", value]");
        Error::new(ruby.exception_type_error(), message)
    })?;
    let (token, tag, payload): (Value, String, Value) = (parts.entry(0)?, parts.entry(1)?, parts.entry(2)?);
    let outcome = match tag.as_str() {
        "success" => OutcomeInput::Success(lift_json(ruby, payload, &format!("items[{i}].result")).into_host()?),
        "failure" => OutcomeInput::Failure(lift_options(ruby, payload, &format!("items[{i}].failure"))?),
        other => {
            let message = format!("expected \"success\" or \"failure\", found {other:?}");
            return Err(invalid(&format!("items[{i}]"), message).into_host());
        }
    };
    Ok((lift_token(ruby, token)?, outcome))
}

/// A Ruby `Time` → a UTC timestamp.
pub fn lift_time(ruby: &Ruby, v: Value, path: &str) -> Result<Timestamp, Error> {
    if !v.is_kind_of(ruby.class_time()) {
        return Err(invalid(path, format!("expected a Time, found {}", class_of(v))).into_host());
    }
    time_of(v, path).into_host()
}

fn time_of(t: Value, path: &str) -> FfiResult<Timestamp> {
    let secs: i64 = t.funcall("to_i", ()).map_err(|e| invalid(path, e.to_string()))?;
    let nsec: u32 = t.funcall("nsec", ()).map_err(|e| invalid(path, e.to_string()))?;
    DateTime::from_timestamp(secs, nsec).ok_or_else(|| invalid(path, "time out of range"))
}

/// Seconds as a Float or Integer → a duration.
pub fn lift_seconds(v: f64, path: &str) -> Result<Duration, Error> {
    objects::seconds(v, path).into_host()
}

/// JSON → Ruby: objects become Hashes with String keys.
pub fn lower_json(ruby: &Ruby, v: &Json) -> Result<Value, Error> {
    objects::lower_json(&Host(ruby), v)
}

/// A timestamp → a UTC `Time`.
pub fn lower_time(ruby: &Ruby, t: Timestamp) -> Result<Value, Error> {
    let time = ruby.time_nano_new(t.timestamp(), i64::from(t.timestamp_subsec_nanos()))?;
    time.funcall("utc", ())
}

/// A result of the shared layer (an object of the table such as `Task`, a list or option of them, a
/// timestamp) → an instance of its Ruby class, an Array, nil or a `Time`.
pub fn lower<T: Lower>(ruby: &Ruby, value: &T) -> Result<Value, Error> {
    value.lower(&Host(ruby))
}

/// One Ruby class per table object, with the ivar of each field, in table order.
struct Class {
    class: Opaque<RClass>,
    ivars: Vec<OpaqueId>,
}

static CLASSES: OnceLock<Vec<Class>> = OnceLock::new();

/// How Ruby builds each kind of the object table.
struct Host<'a>(&'a Ruby);

impl Lowering for Host<'_> {
    type Value = Value;
    type Error = Error;

    fn error(&self, e: FfiError) -> Error {
        e.into_host()
    }

    fn scalar(&self, v: &Json) -> Result<Value, Error> {
        let ruby = self.0;
        Ok(match v {
            Json::Bool(true) => ruby.qtrue().as_value(),
            Json::Bool(false) => ruby.qfalse().as_value(),
            Json::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => ruby.integer_from_i64(i).as_value(),
                (None, Some(u)) => ruby.integer_from_u64(u).as_value(),
                _ => ruby.float_from_f64(n.as_f64().unwrap_or(f64::NAN)).as_value(),
            },
            Json::String(s) => ruby.str_new(s).as_value(),
            _ => ruby.qnil().as_value(),
        })
    }

    fn timestamp(&self, t: Timestamp) -> Result<Value, Error> {
        lower_time(self.0, t)
    }

    fn list(&self, items: Items<'_, Value, Error>) -> Result<Value, Error> {
        let out = self.0.ary_new();
        for item in items {
            out.push(item?)?;
        }
        Ok(out.as_value())
    }

    fn map(&self, entries: Items<'_, (&str, Value), Error>) -> Result<Value, Error> {
        let out = self.0.hash_new();
        for entry in entries {
            let (k, v) = entry?;
            out.aset(self.0.str_new(k), v)?;
        }
        Ok(out.as_value())
    }

    /// Allocates the instance without `initialize` and sets one frozen ivar per field.
    fn object(&self, index: usize, fields: Items<'_, Value, Error>) -> Result<Value, Error> {
        let class = &CLASSES.get().expect("classes are defined when the extension loads")[index];
        let obj = RObject::from_value(self.0.get_inner(class.class).obj_alloc()?)
            .ok_or_else(|| FfiError::internal("a model class allocated a non-object").into_host())?;
        for (ivar, value) in class.ivars.iter().zip(fields) {
            let value = value?;
            value.freeze();
            obj.ivar_set(*ivar, value)?;
        }
        Ok(obj.as_value())
    }
}

/// `TaskerCore::Internal.object(name, hash)`, behind `Model.from_h`: a Hash checked against the table and
/// built into an instance, with errors naming the field path.
fn object_from_h(ruby: &Ruby, name: String, hash: Value) -> Result<Value, Error> {
    let json = lift_json(ruby, hash, "").into_host()?;
    objects::lower_value(&Host(ruby), &name, &json, "")
}

/// Defines the class of every table object under `TaskerCore` (or its module, `Performance`, `Events`,
/// `Testing`) as a subclass of `TaskerCore::Model`, and hands each its fields (`Model.define_fields`).
pub fn register(ruby: &Ruby, top: RModule) -> Result<(), Error> {
    let model: RClass = top.const_get("Model")?;
    let mut classes = Vec::with_capacity(OBJECTS.len());
    for o in OBJECTS {
        let parent = match o.module {
            None => top,
            Some(m) => top.define_module((m[..1].to_uppercase() + &m[1..]).as_str())?,
        };
        let class = parent.define_class(o.name, model)?;
        let names: Vec<&str> = o.fields.iter().map(|f| f.name).collect();
        let _: Value = class.funcall("define_fields", (o.name, ruby.ary_from_vec(names)))?;
        let ivars = o
            .fields
            .iter()
            .map(|f| ruby.intern(&format!("@{}", f.name)).into())
            .collect();
        classes.push(Class {
            class: class.into(),
            ivars,
        });
    }
    // A second load of the extension in one process defines the same classes; keep the first table.
    let _ = CLASSES.set(classes);
    top.define_module("Internal")?
        .define_module_function("object", function!(object_from_h, 2))
}
