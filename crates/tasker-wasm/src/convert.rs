//! Every conversion between JS and Rust values: `lift_*` (JS → Rust) and `lower_*` (Rust → JS), following
//! the type table of docs/bindings.md §3, as in the Node binding. A conversion error is a `validation` error
//! naming the field path, for example `context.items[3].sku: expected a JSON value, found Map`.
//!
//! Objects are lowered by walking tasker-shared-ffi's object table into plain objects whose field names are
//! the table's, camelCased (`stepName`); JSON payloads keep their keys as written. Timestamps become `Date`,
//! optional fields `null` (never `undefined`), ids stay strings.

use std::sync::OnceLock;

use js_sys::{Array, Date, Function, Object, Reflect};
use serde_json::{Map, Number, Value};
use tasker_shared_ffi::objects::{self, Items, Lower, Lowering, Nesting, OBJECTS};
use tasker_shared_ffi::{FfiError, FfiResult, Timestamp};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// `snake_case` → `camelCase`, the JS spelling of a table field (the Node binding's rule).
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

/// Sets a property of an object made here; it cannot fail on a plain extensible object.
pub fn set(target: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &key.into(), value);
}

fn invalid(path: &str, message: impl Into<String>) -> FfiError {
    FfiError::validation(path, message)
}

/// The name of an object's constructor; `None` for a null-prototype object.
fn constructor_name(v: &JsValue) -> Option<String> {
    let ctor = Reflect::get(v, &"constructor".into()).ok()?;
    ctor.dyn_ref::<Function>()?.name().as_string()
}

/// What a JS value is, for an error message: `function`, `symbol`, `bigint`, or an object's constructor.
fn found(v: &JsValue) -> String {
    if v.is_object() {
        return constructor_name(v).unwrap_or_else(|| "object".into());
    }
    v.js_typeof().as_string().unwrap_or_else(|| "an unknown value".into())
}

/// Lifts a JS value that JSON can hold: a plain object (or one with a null prototype), an array, a string,
/// a finite number, a boolean, `null`. `undefined` is `null` at the top and in arrays and is skipped as an
/// object's property, as `JSON.stringify` does; a `Date` becomes its ISO 8601 string. Anything else (a
/// `Map`, a class instance, `NaN`, a function, a symbol, a bigint), a cycle, or nesting deeper than
/// `MAX_JSON_DEPTH` (the shared layer's `Nesting`) is a `validation` error at `path`.
pub fn lift_value(v: &JsValue, path: &str) -> FfiResult<Value> {
    lift_nested(v, path, &mut Nesting::default())
}

fn lift_nested(v: &JsValue, path: &str, nest: &mut Nesting<JsValue>) -> FfiResult<Value> {
    if v.is_undefined() || v.is_null() {
        return Ok(Value::Null);
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Some(n) = v.as_f64() {
        return number(n, path);
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::String(s));
    }
    if Array::is_array(v) {
        nest.enter(v.clone(), path, |a, b| a == b)?;
        let array: &Array = v.unchecked_ref();
        let mut items = Vec::with_capacity(array.length() as usize);
        for (i, item) in array.iter().enumerate() {
            items.push(lift_nested(&item, &format!("{path}[{i}]"), nest)?);
        }
        nest.leave();
        return Ok(Value::Array(items));
    }
    if v.is_instance_of::<Date>() {
        return Ok(Value::String(
            lift_time(v, path)?.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ));
    }
    if !v.is_object() || v.is_function() {
        return Err(invalid(path, format!("expected a JSON value, found {}", found(v))));
    }
    match constructor_name(v) {
        None => {}
        Some(name) if name == "Object" => {}
        Some(name) => return Err(invalid(path, format!("expected a JSON value, found {name}"))),
    }
    nest.enter(v.clone(), path, |a, b| a == b)?;
    let object: &Object = v.unchecked_ref();
    let mut map = Map::new();
    for key in Object::keys(object).iter() {
        let key = key.as_string().unwrap_or_default();
        let item = Reflect::get(object, &key.as_str().into()).map_err(|_| invalid(path, "unreadable property"))?;
        if item.is_undefined() {
            continue;
        }
        let value = lift_nested(&item, &objects::field_path(path, &key), nest)?;
        map.insert(key, value);
    }
    nest.leave();
    Ok(Value::Object(map))
}

/// A JS number: an integer when it is one (and exact in a double), else a float; `NaN` and infinities are
/// not JSON.
fn number(n: f64, path: &str) -> FfiResult<Value> {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| invalid(path, format!("expected a JSON value, found {n}")))
}

/// An options object (`snake_case` keys, as js/*.js builds them; `null`/`undefined` for none) → an input
/// struct of the shared layer; an error names `what.field`.
pub fn lift_options<T: serde::de::DeserializeOwned>(options: &JsValue, what: &str) -> FfiResult<T> {
    objects::options(lift_nested(options, what, &mut Nesting::for_options())?, what)
}

/// Lifts a `Date` (or milliseconds since the epoch) for an argument such as `since`.
pub fn lift_time(v: &JsValue, path: &str) -> FfiResult<Timestamp> {
    let ms = match v.dyn_ref::<Date>() {
        Some(d) => d.get_time(),
        None => v
            .as_f64()
            .ok_or_else(|| invalid(path, format!("expected a Date, found {}", found(v))))?,
    };
    let t = ms
        .is_finite()
        .then(|| Timestamp::from_timestamp_millis(ms as i64))
        .flatten();
    t.ok_or_else(|| invalid(path, "expected a valid Date, found an invalid one"))
}

/// A result of the shared layer (an object of the table, a list or option of them, a timestamp, a boolean)
/// → a plain JS object, an array, `null`, a `Date` or a boolean.
pub fn lower<T: Lower>(value: &T) -> Result<JsValue, JsValue> {
    value.lower(&Host)
}

/// Lowers JSON to object / array / string / number / boolean / null.
pub fn lower_json(v: &Value) -> Result<JsValue, JsValue> {
    objects::lower_json(&Host, v)
}

/// How JS builds each kind of the object table.
struct Host;

impl Lowering for Host {
    type Value = JsValue;
    type Error = JsValue;

    fn error(&self, e: FfiError) -> JsValue {
        crate::errors::lower_error(&e)
    }

    fn scalar(&self, v: &Value) -> Result<JsValue, JsValue> {
        Ok(match v {
            Value::Bool(b) => JsValue::from_bool(*b),
            Value::Number(n) => {
                JsValue::from_f64(n.as_i64().map_or_else(|| n.as_f64().unwrap_or(f64::NAN), |i| i as f64))
            }
            Value::String(s) => JsValue::from_str(s),
            _ => JsValue::NULL,
        })
    }

    fn timestamp(&self, t: Timestamp) -> Result<JsValue, JsValue> {
        Ok(Date::new(&JsValue::from_f64(t.timestamp_millis() as f64)).into())
    }

    fn list(&self, items: Items<'_, JsValue, JsValue>) -> Result<JsValue, JsValue> {
        let array = Array::new();
        for item in items {
            array.push(&item?);
        }
        Ok(array.into())
    }

    fn map(&self, entries: Items<'_, (&str, JsValue), JsValue>) -> Result<JsValue, JsValue> {
        let object = Object::new();
        for entry in entries {
            let (k, v) = entry?;
            set(&object, k, &v);
        }
        Ok(object.into())
    }

    fn object(&self, index: usize, fields: Items<'_, JsValue, JsValue>) -> Result<JsValue, JsValue> {
        let object = Object::new();
        for (name, v) in field_names()[index].iter().zip(fields) {
            set(&object, name, &v?);
        }
        Ok(object.into())
    }
}

/// `{ Task: ["id", "templateId", …], … }`: the camelCased fields of every table object in table order, which
/// the JS tests hold the lowered objects to.
#[wasm_bindgen]
pub fn objects() -> Object {
    let table = Object::new();
    for (o, names) in OBJECTS.iter().zip(field_names()) {
        let names: Array = names.iter().map(|n| JsValue::from_str(n)).collect();
        set(&table, o.name, &names);
    }
    table
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    fn js(source: &str) -> JsValue {
        js_sys::eval(&format!("({source})")).unwrap()
    }

    #[wasm_bindgen_test]
    fn lift_takes_json_and_skips_undefined_properties() {
        let v = lift_value(
            &js("{ a: 1, b: [true, null, undefined, 'x'], c: undefined, d: 1.5 }"),
            "v",
        )
        .unwrap();
        assert_eq!(v, json!({ "a": 1, "b": [true, null, null, "x"], "d": 1.5 }));
        let t = lift_value(&js("new Date(Date.UTC(2030, 0, 1))"), "at").unwrap();
        assert_eq!(t, json!("2030-01-01T00:00:00.000Z"));
        let bare = lift_value(&js("Object.assign(Object.create(null), { k: 'v' })"), "m").unwrap();
        assert_eq!(bare, json!({ "k": "v" }));
    }

    #[wasm_bindgen_test]
    fn lift_errors_name_the_field_path_and_what_was_found() {
        for (source, message) in [
            (
                "{ items: [{ sku: new Map() }] }",
                "context.items[0].sku: expected a JSON value, found Map",
            ),
            ("{ n: NaN }", "context.n: expected a JSON value, found NaN"),
            ("{ f: () => 1 }", "context.f: expected a JSON value, found function"),
            ("{ s: Symbol('x') }", "context.s: expected a JSON value, found symbol"),
            ("{ b: 10n }", "context.b: expected a JSON value, found bigint"),
        ] {
            let e = lift_value(&js(source), "context").unwrap_err();
            let f = &e.details["errors"][0];
            assert_eq!(
                format!("{}: {}", f["path"].as_str().unwrap(), f["message"].as_str().unwrap()),
                message
            );
        }
        assert!(lift_time(&js("new Date(NaN)"), "since").is_err());
        assert!(lift_time(&js("'yesterday'"), "since").is_err());
    }

    #[wasm_bindgen_test]
    fn lower_json_round_trips_and_names_are_camel_cased() {
        let v = json!({ "a": [1, 2.5, "s", null, { "b": false }] });
        assert_eq!(lift_value(&lower_json(&v).unwrap(), "v").unwrap(), v);
        assert_eq!(camel("dependency_results"), "dependencyResults");
        let task = Reflect::get(&objects(), &"Task".into()).unwrap();
        let fields: Vec<String> = Array::from(&task).iter().filter_map(|f| f.as_string()).collect();
        assert!(fields.contains(&"templateId".to_string()) && fields.contains(&"finishedAt".to_string()));
    }

    #[wasm_bindgen_test]
    fn timestamps_lower_to_dates() {
        let t = Timestamp::from_timestamp_millis(1_893_456_000_000).unwrap();
        let d = lower(&t).unwrap();
        assert_eq!(d.dyn_ref::<Date>().unwrap().get_time(), 1_893_456_000_000.0);
        assert!(lower(&Option::<Timestamp>::None).unwrap().is_null());
    }
}
