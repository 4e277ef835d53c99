//! Every conversion between JS and Rust values: `lift_*` (JS → Rust) and `lower_*` (Rust → JS), following
//! the type table of docs/bindings.md §3. A conversion error is a `validation` error naming the field path,
//! for example `context.items[3].sku: expected a JSON value, found Map`.
//!
//! Objects are lowered by walking tasker-shared-ffi's object table (`tasker_shared_ffi::objects`) into plain
//! objects whose field names are the table's, camelCased (`stepName`); JSON payloads keep their keys as
//! written. Timestamps become `Date`, optional fields `null` (never `undefined`), ids stay strings.

use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat};
use napi::bindgen_prelude::*;
use napi::{JsValue, ValueType};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use tasker_shared_ffi::objects::{self, Items, Lower, Lowering, Nesting, OBJECTS};
use tasker_shared_ffi::{FfiError, FfiResult, Timestamp};

use crate::errors::IntoHost;

/// `snake_case` → `camelCase`, the JS spelling of a table field (xtask's .d.ts renderer has the same rule).
pub fn camel(name: &str) -> String {
    let mut parts = name.split('_');
    let first = parts.next().unwrap_or_default().to_string();
    parts.fold(first, |acc, p| acc + &p[..1].to_uppercase() + &p[1..])
}

/// The camelCased field names of every table object, in table order; computed once.
fn field_names() -> &'static [Vec<String>] {
    static NAMES: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    NAMES.get_or_init(|| {
        OBJECTS
            .iter()
            .map(|o| o.fields.iter().map(|f| camel(f.name)).collect())
            .collect()
    })
}

fn invalid(path: &str, message: impl Into<String>) -> FfiError {
    FfiError::validation(path, message)
}

fn napi_invalid(path: &str) -> impl Fn(Error) -> FfiError + '_ {
    move |e| invalid(path, e.reason.clone())
}

/// What a JS value is, for an error message: `function`, `symbol`, `bigint`, or an object's constructor.
fn found(v: &Unknown<'_>) -> String {
    match v.get_type() {
        Ok(ValueType::Object) => constructor_name(v).unwrap_or_else(|| "object".into()),
        Ok(t) => format!("{t}").to_lowercase(),
        Err(_) => "an unknown value".into(),
    }
}

/// The name of an object's constructor; `None` for a null-prototype object.
fn constructor_name(v: &Unknown<'_>) -> Option<String> {
    let object = v.coerce_to_object().ok()?;
    let ctor: Unknown = object.get_named_property("constructor").ok()?;
    if ctor.get_type().ok()? != ValueType::Function {
        return None;
    }
    let name: Unknown = ctor.coerce_to_object().ok()?.get_named_property("name").ok()?;
    name.coerce_to_string().ok()?.into_utf8().ok()?.into_owned().ok()
}

/// Lifts a JS value that JSON can hold: a plain object (or one with a null prototype), an array, a string,
/// a finite number, a boolean, `null`. `undefined` is `null` at the top and in arrays and is skipped as an
/// object's property, as `JSON.stringify` does; a `Date` becomes its ISO 8601 string (its `toJSON`).
/// Anything else (a `Map`, a class instance, `NaN`, a function, a symbol, a bigint), a cycle, or nesting
/// deeper than `MAX_JSON_DEPTH` (the shared layer's `Nesting`) is a `validation` error at `path`.
pub fn lift_value(v: &Unknown<'_>, path: &str) -> FfiResult<Value> {
    lift_nested(v, path, &mut Nesting::default())
}

/// JS `===`, the identity the cycle check compares containers by.
fn same(a: &Unknown<'_>, b: &Unknown<'_>) -> bool {
    Env::from_raw(a.value().env).strict_equals(*a, *b).unwrap_or(false)
}

fn lift_nested<'env>(v: &Unknown<'env>, path: &str, nest: &mut Nesting<Unknown<'env>>) -> FfiResult<Value> {
    let err = napi_invalid(path);
    match v.get_type().map_err(&err)? {
        ValueType::Undefined | ValueType::Null => Ok(Value::Null),
        ValueType::Boolean => Ok(Value::Bool(v.coerce_to_bool().map_err(&err)?)),
        ValueType::Number => number(v.coerce_to_number().map_err(&err)?.get_double().map_err(&err)?, path),
        ValueType::String => Ok(Value::String(
            v.coerce_to_string()
                .and_then(|s| s.into_utf8()?.into_owned())
                .map_err(&err)?,
        )),
        ValueType::Object => {
            let object = v.coerce_to_object().map_err(&err)?;
            if object.is_array().map_err(&err)? {
                nest.enter(*v, path, same)?;
                let len = object.get_array_length().map_err(&err)?;
                let mut out = Vec::with_capacity(len as usize);
                for i in 0..len {
                    let item: Unknown = object.get_element(i).map_err(&err)?;
                    out.push(lift_nested(&item, &format!("{path}[{i}]"), nest)?);
                }
                nest.leave();
                return Ok(Value::Array(out));
            }
            if object.is_date().map_err(&err)? {
                let t = lift_time(v, path)?;
                return Ok(Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)));
            }
            match constructor_name(v) {
                None => {}
                Some(name) if name == "Object" => {}
                Some(name) => return Err(invalid(path, format!("expected a JSON value, found {name}"))),
            }
            nest.enter(*v, path, same)?;
            let mut map = Map::new();
            for key in Object::keys(&object).map_err(&err)? {
                let item: Unknown = object.get_named_property(&key).map_err(&err)?;
                if item.get_type().map_err(&err)? == ValueType::Undefined {
                    continue;
                }
                let value = lift_nested(&item, &objects::field_path(path, &key), nest)?;
                map.insert(key, value);
            }
            nest.leave();
            Ok(Value::Object(map))
        }
        _ => Err(invalid(path, format!("expected a JSON value, found {}", found(v)))),
    }
}

/// A JS number: an integer when it is one (and fits in 64 bits), else a float; `NaN` and infinities are not
/// JSON.
fn number(n: f64, path: &str) -> FfiResult<Value> {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| invalid(path, format!("expected a JSON value, found {n}")))
}

/// An options object (`snake_case` keys, as lib/*.js builds them; `null`/`undefined` for none) → an input
/// struct of the shared layer; an error names `what.field`.
pub fn lift_options<T: DeserializeOwned>(options: Option<Unknown<'_>>, what: &str) -> FfiResult<T> {
    let json = match options {
        Some(v) => lift_nested(&v, what, &mut Nesting::for_options())?,
        None => Value::Null,
    };
    objects::options(json, what)
}

/// Lifts a `Date` (or milliseconds since the epoch) for an argument such as `since`.
pub fn lift_time(v: &Unknown<'_>, path: &str) -> FfiResult<Timestamp> {
    let err = napi_invalid(path);
    let ty = v.get_type().map_err(&err)?;
    let is_date = ty == ValueType::Object && v.coerce_to_object().map_err(&err)?.is_date().map_err(&err)?;
    if !is_date && ty != ValueType::Number {
        return Err(invalid(path, format!("expected a Date, found {}", found(v))));
    }
    let ms = v.coerce_to_number().map_err(&err)?.get_double().map_err(&err)?;
    let t = ms
        .is_finite()
        .then(|| DateTime::from_timestamp_millis(ms as i64))
        .flatten();
    t.ok_or_else(|| invalid(path, "expected a valid Date, found an invalid one"))
}

/// A result of the shared layer (an object of the table such as `Task`, a list or option of them, a
/// timestamp, a boolean) → a plain JS object, an array, `null`, a `Date` or a boolean.
pub fn lower<'env, T: Lower>(env: &'env Env, value: &T) -> Result<Unknown<'env>> {
    value.lower(&Host(env))
}

/// Lowers JSON to object / array / string / number / boolean / null.
pub fn lower_json<'env>(env: &'env Env, v: &Value) -> Result<Unknown<'env>> {
    objects::lower_json(&Host(env), v)
}

/// How JS builds each kind of the object table.
struct Host<'env>(&'env Env);

impl<'env> Lowering for Host<'env> {
    type Value = Unknown<'env>;
    type Error = Error;

    fn error(&self, e: FfiError) -> Error {
        e.into_host(self.0)
    }

    fn scalar(&self, v: &Value) -> Result<Unknown<'env>> {
        let env = self.0;
        match v {
            Value::Bool(b) => b.into_unknown(env),
            Value::Number(n) => match n.as_i64() {
                Some(i) => (i as f64).into_unknown(env),
                None => n.as_f64().unwrap_or(f64::NAN).into_unknown(env),
            },
            Value::String(s) => s.as_str().into_unknown(env),
            _ => Null.into_unknown(env),
        }
    }

    fn timestamp(&self, t: Timestamp) -> Result<Unknown<'env>> {
        Ok(self.0.create_date(t.timestamp_millis() as f64)?.to_unknown())
    }

    fn list(&self, items: Items<'_, Unknown<'env>, Error>) -> Result<Unknown<'env>> {
        let mut array = self.0.create_array(0)?;
        for item in items {
            array.insert(item?)?;
        }
        Ok(array.to_unknown())
    }

    fn map(&self, entries: Items<'_, (&str, Unknown<'env>), Error>) -> Result<Unknown<'env>> {
        let mut object = Object::new(self.0)?;
        for entry in entries {
            let (k, v) = entry?;
            object.set(k, v)?;
        }
        Ok(object.to_unknown())
    }

    fn object(&self, index: usize, fields: Items<'_, Unknown<'env>, Error>) -> Result<Unknown<'env>> {
        let mut object = Object::new(self.0)?;
        for (name, v) in field_names()[index].iter().zip(fields) {
            object.set(name, v?)?;
        }
        Ok(object.to_unknown())
    }
}

/// Exports `objects`: `{ Task: ["id", "templateId", …], … }`, the camelCased fields of every table object in
/// table order, which the JS tests hold the lowered objects to.
pub fn register(env: &Env, exports: &mut Object) -> Result<()> {
    let mut table = Object::new(env)?;
    for (o, names) in OBJECTS.iter().zip(field_names()) {
        table.set(o.name, names.clone())?;
    }
    exports.set("objects", table)
}
