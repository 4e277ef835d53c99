//! The conversion file: `lift_*` turns Ruby values into Rust ones, `lower_*` turns Rust values into Ruby
//! ones. A lift error names the field path (`context.items[3].sku: expected string …`) and is a
//! `ValidationError`; positional arguments of the wrong Ruby type are magnus' `TypeError`.

use chrono::{DateTime, Utc};
use magnus::{prelude::*, r_hash::ForEach, Error, Float, Integer, RArray, RHash, RString, Ruby, Symbol, Value};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Number, Value as Json};
use tasker_shared_ffi::{FfiError, FfiResult};

use crate::errors::RbResult;

fn invalid(path: &str, message: impl Into<String>) -> FfiError {
    FfiError::validation(path, message)
}

fn class_of(v: Value) -> String {
    // `inspect` of the class says what was found (an anonymous class reads `#<Class:…>`).
    v.class().inspect()
}

/// Ruby → JSON, for contexts, results, configs and option hashes. Symbol keys and values become strings,
/// `Time` becomes an RFC 3339 string.
pub fn lift_value(ruby: &Ruby, v: Value, path: &str) -> FfiResult<Json> {
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
        let mut out = Vec::with_capacity(a.len());
        for (i, item) in a.into_iter().enumerate() {
            out.push(lift_value(ruby, item, &format!("{path}[{i}]"))?);
        }
        return Ok(Json::Array(out));
    }
    if let Some(h) = RHash::from_value(v) {
        let mut out = Map::new();
        let mut err = None;
        h.foreach(|k: Value, item: Value| {
            let key = match lift_key(k) {
                Some(key) => key,
                None => {
                    err = Some(invalid(
                        path,
                        format!("expected String or Symbol keys, found {}", class_of(k)),
                    ));
                    return Ok(ForEach::Stop);
                }
            };
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match lift_value(ruby, item, &child) {
                Ok(j) => {
                    out.insert(key, j);
                    Ok(ForEach::Continue)
                }
                Err(e) => {
                    err = Some(e);
                    Ok(ForEach::Stop)
                }
            }
        })
        .map_err(|e| invalid(path, e.to_string()))?;
        return match err {
            Some(e) => Err(e),
            None => Ok(Json::Object(out)),
        };
    }
    if v.is_kind_of(ruby.class_time()) {
        let secs: i64 = v.funcall("to_i", ()).map_err(|e| invalid(path, e.to_string()))?;
        let nsec: i64 = v.funcall("nsec", ()).map_err(|e| invalid(path, e.to_string()))?;
        let t = DateTime::from_timestamp(secs, nsec as u32).ok_or_else(|| invalid(path, "time out of range"))?;
        return Ok(Json::String(t.to_rfc3339()));
    }
    Err(invalid(
        path,
        format!(
            "expected nil, true, false, Integer, Float, String, Symbol, Time, Array or Hash, found {}",
            class_of(v)
        ),
    ))
}

fn lift_key(k: Value) -> Option<String> {
    if let Some(s) = RString::from_value(k) {
        return s.to_string().ok();
    }
    Symbol::from_value(k).and_then(|s| s.name().ok().map(|n| n.into_owned()))
}

/// Ruby options Hash → an input struct of the shared layer; an error names `what.field`.
pub fn lift_struct<T: DeserializeOwned>(ruby: &Ruby, v: Value, what: &str) -> Result<T, Error> {
    let json = if v.is_nil() {
        Json::Object(Map::new())
    } else {
        lift_value(ruby, v, what).rb()?
    };
    if !json.is_object() {
        return Err(invalid(what, format!("expected a Hash, found {}", class_of(v)))).rb();
    }
    lift_json(json, what).rb()
}

/// JSON → an input struct, naming the field path of a mismatch.
pub fn lift_json<T: DeserializeOwned>(json: Json, what: &str) -> FfiResult<T> {
    serde_path_to_error::deserialize(json).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (what.is_empty(), inner == ".") {
            (_, true) => what.to_string(),
            (true, false) => inner,
            (false, false) => format!("{what}.{inner}"),
        };
        invalid(&path, e.into_inner().to_string())
    })
}

/// A Ruby `Time` → a UTC timestamp.
pub fn lift_time(ruby: &Ruby, v: Value, path: &str) -> Result<DateTime<Utc>, Error> {
    if !v.is_kind_of(ruby.class_time()) {
        return Err(invalid(path, format!("expected a Time, found {}", class_of(v)))).rb();
    }
    match lift_value(ruby, v, path).rb()? {
        Json::String(s) => Ok(DateTime::parse_from_rfc3339(&s)
            .map_err(|e| FfiError::internal(e.to_string()))
            .rb()?
            .to_utc()),
        _ => Err(invalid(path, "expected a Time")).rb(),
    }
}

/// Seconds as a Float or Integer → milliseconds.
pub fn lift_seconds(v: f64, path: &str) -> Result<std::time::Duration, Error> {
    if !v.is_finite() || v < 0.0 {
        return Err(invalid(
            path,
            format!("expected a non-negative number of seconds, found {v}"),
        ))
        .rb();
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

/// JSON → Ruby: objects become Hashes with String keys.
pub fn lower_value(ruby: &Ruby, v: &Json) -> Result<Value, Error> {
    Ok(match v {
        Json::Null => ruby.qnil().as_value(),
        Json::Bool(true) => ruby.qtrue().as_value(),
        Json::Bool(false) => ruby.qfalse().as_value(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                ruby.integer_from_i64(i).as_value()
            } else if let Some(u) = n.as_u64() {
                ruby.integer_from_u64(u).as_value()
            } else {
                ruby.float_from_f64(n.as_f64().unwrap_or(f64::NAN)).as_value()
            }
        }
        Json::String(s) => ruby.str_new(s).as_value(),
        Json::Array(a) => {
            let out = ruby.ary_new_capa(a.len());
            for item in a {
                out.push(lower_value(ruby, item)?)?;
            }
            out.as_value()
        }
        Json::Object(m) => {
            let out = ruby.hash_new();
            for (k, item) in m {
                out.aset(ruby.str_new(k), lower_value(ruby, item)?)?;
            }
            out.as_value()
        }
    })
}

/// Keys of the shared layer's objects that hold user JSON: lowered as is, never read as timestamps.
const OPAQUE: &[&str] = &[
    "context",
    "config",
    "result",
    "metadata",
    "dependency_results",
    "tags",
    "input_schema",
    "details",
];

fn is_time_key(k: &str) -> bool {
    k.ends_with("_at") || matches!(k, "deadline" | "since" | "until" | "timestamp")
}

/// An object of the shared layer (`Task`, `Step`, …) → a Hash with String keys, whose timestamps are `Time`
/// and whose user JSON is left as is. lib/tasker_core/models.rb wraps it in the class with readers.
pub fn lower<T: Serialize>(ruby: &Ruby, dto: &T) -> Result<Value, Error> {
    let json = serde_json::to_value(dto)
        .map_err(|e| FfiError::internal(format!("cannot serialize: {e}")))
        .rb()?;
    lower_object(ruby, &json)
}

fn lower_object(ruby: &Ruby, v: &Json) -> Result<Value, Error> {
    match v {
        Json::Array(a) => {
            let out = ruby.ary_new_capa(a.len());
            for item in a {
                out.push(lower_object(ruby, item)?)?;
            }
            Ok(out.as_value())
        }
        Json::Object(m) => {
            let out = ruby.hash_new();
            for (k, item) in m {
                let value = match item {
                    _ if OPAQUE.contains(&k.as_str()) => lower_value(ruby, item)?,
                    Json::String(s) if is_time_key(k) => lower_time(ruby, s)?,
                    _ => lower_object(ruby, item)?,
                };
                out.aset(ruby.str_new(k), value)?;
            }
            Ok(out.as_value())
        }
        other => lower_value(ruby, other),
    }
}

/// An RFC 3339 timestamp → a UTC `Time`.
pub fn lower_time(ruby: &Ruby, s: &str) -> Result<Value, Error> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| FfiError::internal(format!("timestamp {s:?}: {e}")))
        .rb()?;
    let time = ruby.time_nano_new(t.timestamp(), i64::from(t.timestamp_subsec_nanos()))?;
    time.funcall("utc", ())
}

/// A list of objects → an Array of Hashes.
pub fn lower_all<T: Serialize>(ruby: &Ruby, items: &[T]) -> Result<RArray, Error> {
    let out = ruby.ary_new_capa(items.len());
    for item in items {
        out.push(lower(ruby, item)?)?;
    }
    Ok(out)
}
