//! The table against the real types, and the walk's rules.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::*;

/// A timestamp in a form serde never writes: a real `Timestamp` field gives it back in UTC (`Z`), a field
/// that is really a string gives it back unchanged, so the round trip tells the two apart.
const OFFSET_TIME: &str = "2030-01-02T04:04:05.123+01:00";
const UTC_TIME: &str = "2030-01-02T03:04:05.123Z";

/// A populated value of `kind` (every optional present), as sent and as a faithful type writes it back.
fn sample(kind: &Kind) -> (Value, Value) {
    match kind {
        Kind::String => (json!("s"), json!("s")),
        Kind::Integer => (json!(7), json!(7)),
        Kind::Float => (json!(1.5), json!(1.5)),
        Kind::Boolean => (json!(true), json!(true)),
        Kind::Timestamp => (json!(OFFSET_TIME), json!(UTC_TIME)),
        Kind::Json => (json!({"k": [1, "x", null]}), json!({"k": [1, "x", null]})),
        Kind::Object(name) => sample_object(&OBJECTS[index_of(name).expect("checked by its own test")]),
        Kind::List(k) => {
            let (i, o) = sample(k);
            (json!([i]), json!([o]))
        }
        Kind::Optional(k) => sample(k),
        Kind::Map(k) => {
            let (i, o) = sample(k);
            (json!({ "key": i }), json!({ "key": o }))
        }
    }
}

fn sample_object(ty: &ObjectType) -> (Value, Value) {
    let (mut sent, mut back) = (Map::new(), Map::new());
    for f in ty.fields {
        let (i, o) = sample(&f.kind);
        sent.insert(f.name.into(), i);
        back.insert(f.name.into(), o);
    }
    (Value::Object(sent), Value::Object(back))
}

#[test]
fn every_table_object_has_a_rust_type_and_every_rust_type_a_row() {
    let table: BTreeSet<&str> = OBJECTS.iter().map(|o| o.name).collect();
    let rust: BTreeSet<&str> = IMPLEMENTED.iter().copied().collect();
    assert_eq!(table.len(), OBJECTS.len(), "object names are unique");
    assert_eq!(table, rust, "the table and the HostObject impls list the same objects");
}

#[test]
fn field_names_are_unique_and_nested_objects_exist() {
    fn objects_in(kind: &Kind) -> Option<&'static str> {
        match kind {
            Kind::Object(n) => Some(n),
            Kind::List(k) | Kind::Optional(k) | Kind::Map(k) => objects_in(k),
            _ => None,
        }
    }
    for o in OBJECTS {
        let names: BTreeSet<&str> = o.fields.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), o.fields.len(), "{}: duplicate field", o.name);
        assert!(!o.fields.is_empty() && !o.doc.is_empty(), "{}", o.name);
        assert!(
            matches!(o.module, None | Some("performance" | "events" | "testing")),
            "{}",
            o.name
        );
        for f in o.fields {
            if let Some(n) = objects_in(&f.kind) {
                assert!(index_of(n).is_some(), "{}.{}: no object {n}", o.name, f.name);
            }
        }
    }
}

/// Every key and every value shape of the table matches what the Rust type accepts and writes: a field
/// the type has and the table lacks (or the reverse), an integer that is really a float, a timestamp that is
/// really a string, a list that is really one value, all change the round trip.
#[test]
fn the_table_matches_the_serialized_shape_of_every_type() {
    for o in OBJECTS {
        let (sent, want) = sample_object(o);
        let back = round_trip(o.name, sent)
            .expect("a Rust type")
            .unwrap_or_else(|e| panic!("{}: the table's sample does not fit the type: {e}", o.name));
        assert_eq!(
            back, want,
            "{}: the type writes a different shape than the table says",
            o.name
        );
    }
}

/// A required field of the table must be required by the type too, and an optional one optional.
#[test]
fn optional_fields_are_exactly_the_options_of_the_types() {
    for o in OBJECTS {
        for f in o.fields {
            let (mut sent, _) = sample_object(o);
            sent[f.name] = Value::Null;
            let result = round_trip(o.name, sent).expect("a Rust type");
            match f.kind {
                Kind::Optional(_) => {
                    let back = result.unwrap_or_else(|e| panic!("{}.{}: null refused: {e}", o.name, f.name));
                    assert_eq!(back[f.name], Value::Null, "{}.{}", o.name, f.name);
                }
                // Any JSON value, null included, is a valid payload.
                Kind::Json => assert!(result.is_ok(), "{}.{}", o.name, f.name),
                _ => assert!(
                    result.is_err(),
                    "{}.{}: the type accepts null; make the row optional",
                    o.name,
                    f.name
                ),
            }
        }
    }
}

/// Lowers into a JSON rendering of what a host would build, with object class names and typed scalars.
struct Render;

impl Lowering for Render {
    type Value = Value;
    type Error = FfiError;
    fn error(&self, e: FfiError) -> FfiError {
        e
    }
    fn scalar(&self, v: &Value) -> FfiResult<Value> {
        Ok(match v {
            Value::Number(n) if n.is_f64() => json!({ "float": n }),
            v => v.clone(),
        })
    }
    fn timestamp(&self, t: Timestamp) -> FfiResult<Value> {
        Ok(json!({ "time": t.timestamp_millis() }))
    }
    fn list(&self, items: Items<'_, Value, FfiError>) -> FfiResult<Value> {
        items.collect()
    }
    fn map(&self, entries: Items<'_, (&str, Value), FfiError>) -> FfiResult<Value> {
        entries.map(|e| e.map(|(k, v)| (k.to_string(), v))).collect()
    }
    fn object(&self, index: usize, fields: Items<'_, Value, FfiError>) -> FfiResult<Value> {
        let ty = &OBJECTS[index];
        let names = ty.fields.iter().map(|f| f.name.to_string());
        let fields = names
            .zip(fields)
            .map(|(n, v)| Ok((n, v?)))
            .collect::<FfiResult<Map<_, _>>>()?;
        Ok(json!({ ty.name: fields }))
    }
}

fn context() -> dto::StepContext {
    serde_json::from_value(json!({
        "task_id": "t", "step_id": "s", "step_name": "work", "handler_key": "k", "attempt": 2,
        "max_attempts": 3, "context": {"at": "2030-01-01T00:00:00Z"}, "config": null,
        "dependency_results": {"a": [1]}, "deadline": "2030-01-01T00:00:01Z",
        "lease_expires_at": "2030-01-01T00:00:02Z", "namespace": "n", "task_name": "x",
        "token": {"step_id": "s", "attempt": 2},
    }))
    .unwrap()
}

#[test]
fn lower_walks_kinds_not_names() {
    let out = context().lower(&Render).unwrap();
    let ctx = &out["StepContext"];
    // A string in the JSON payload that looks like a time stays a string; the timestamp fields are times.
    assert_eq!(ctx["context"], json!({"at": "2030-01-01T00:00:00Z"}));
    assert_eq!(ctx["deadline"], json!({"time": 1_893_456_001_000i64}));
    assert_eq!(ctx["token"], json!({"ClaimToken": {"step_id": "s", "attempt": 2}}));
    assert_eq!(ctx["dependency_results"], json!({"a": [1]}));
    let policy = dto::RetryPolicy::from(tasker_core::retry::RetryPolicy::default());
    let policy = policy.lower(&Render).unwrap();
    assert!(policy["RetryPolicy"]["jitter"]["float"].is_number());
    let all = vec![context(), context()].lower(&Render).unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    assert_eq!(None::<dto::ClaimToken>.lower(&Render).unwrap(), Value::Null);
    let t = DateTime::from_timestamp(1, 0).unwrap();
    assert_eq!(Some(t).lower(&Render).unwrap(), json!({"time": 1000}));
}

fn error_of(name: &str, v: Value) -> (String, String) {
    let e = lower_value(&Render, name, &v, "ctx").unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::Validation);
    crate::error::field_errors(&e)
        .into_iter()
        .next()
        .expect("a field error")
}

#[test]
fn a_value_of_the_wrong_shape_is_a_validation_error_naming_the_field_path() {
    let mut v = serde_json::to_value(context()).unwrap();
    v["token"]["attempt"] = json!("two");
    assert_eq!(
        error_of("StepContext", v),
        ("ctx.token.attempt".into(), "expected an integer, found a string".into())
    );
    let mut v = serde_json::to_value(context()).unwrap();
    v["deadline"] = json!("soon");
    let (path, message) = error_of("StepContext", v);
    assert_eq!(path, "ctx.deadline");
    assert!(
        message.starts_with("expected an RFC 3339 timestamp, found \"soon\""),
        "{message}"
    );
    let mut v = serde_json::to_value(context()).unwrap();
    v.as_object_mut().unwrap().remove("step_name");
    assert_eq!(
        error_of("StepContext", v),
        ("ctx.step_name".into(), "expected a string, found nothing".into())
    );
    let mut v = serde_json::to_value(context()).unwrap();
    v["colour"] = json!("red");
    assert_eq!(
        error_of("StepContext", v),
        ("ctx.colour".into(), "StepContext has no field colour".into())
    );
    let v = json!({"template": {}, "tasks": [{"id": 1}]});
    assert_eq!(error_of("PatternTasks", v).0, "ctx.template.id");
    let v = json!({"tasks": {"complete": "1"}, "steps": {}, "total_tasks": 1, "total_steps": 1, "retrying": 0, "exhausted": 0});
    assert_eq!(
        error_of("HealthCounts", v),
        (
            "ctx.tasks.complete".into(),
            "expected an integer, found a string".into()
        )
    );
    assert_eq!(
        error_of("ClaimToken", json!([1])),
        ("ctx".into(), "expected a ClaimToken, found a list".into())
    );
    assert!(lower_value(&Render, "Nope", &json!({}), "x").is_err());
}

#[test]
fn options_come_from_a_map_or_nothing_and_name_the_field() {
    let f: crate::TaskFilterInput = options(Value::Null, "filter").unwrap();
    assert_eq!(f, crate::TaskFilterInput::default());
    let e = options::<crate::TaskFilterInput>(json!({"limit": "x"}), "filter").unwrap_err();
    assert_eq!(crate::error::field_errors(&e)[0].0, "filter.limit");
    let e = options::<crate::TaskFilterInput>(json!([1]), "filter").unwrap_err();
    assert_eq!(crate::error::field_errors(&e)[0].0, "filter[0]");
}

#[test]
fn seconds_are_durations_and_never_negative() {
    assert_eq!(seconds(1.5, "wait").unwrap(), std::time::Duration::from_millis(1500));
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let e = seconds(bad, "wait").unwrap_err();
        assert_eq!(crate::error::field_errors(&e)[0].0, "wait");
    }
}

#[test]
fn a_float_field_takes_any_number_and_an_integer_field_no_fraction() {
    let d = json!({"count": 1, "mean_ms": 2, "p50_ms": 3, "p95_ms": 4, "max_ms": 5});
    let out = lower_value(&Render, "DurationStats", &d, "").unwrap();
    assert_eq!(out["DurationStats"]["mean_ms"], json!({"float": 2.0}));
    let d = json!({"count": 1.5, "mean_ms": 2, "p50_ms": 3, "p95_ms": 4, "max_ms": 5});
    assert_eq!(
        error_of("DurationStats", d),
        ("ctx.count".into(), "expected an integer, found the number 1.5".into())
    );
}

/// A host's lift in miniature: node `i` of `graph` is an object whose field `k<j>` is node `graph[i][j]`.
fn lift_graph(graph: &[Vec<usize>], node: usize, path: &str, nest: &mut Nesting<usize>) -> FfiResult<Value> {
    nest.enter(node, path, |a, b| a == b)?;
    let mut map = Map::new();
    for (j, child) in graph[node].iter().enumerate() {
        let key = format!("k{j}");
        let value = lift_graph(graph, *child, &field_path(path, &key), nest)?;
        map.insert(key, value);
    }
    nest.leave();
    Ok(Value::Object(map))
}

#[test]
fn nesting_refuses_cycles_and_values_deeper_than_the_limit_naming_the_path() {
    let chain =
        |n: usize| -> Vec<Vec<usize>> { (0..n).map(|i| if i + 1 < n { vec![i + 1] } else { vec![] }).collect() };
    // MAX_JSON_DEPTH objects inside each other are fine, and serde_json reads them back.
    let v = lift_graph(&chain(MAX_JSON_DEPTH), 0, "result", &mut Nesting::default()).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&v.to_string()).unwrap(), v);
    let e = lift_graph(&chain(MAX_JSON_DEPTH + 1), 0, "result", &mut Nesting::default()).unwrap_err();
    let (path, message) = crate::error::field_errors(&e).remove(0);
    assert_eq!(
        message,
        "expected a JSON value nested at most 127 levels deep, found a deeper one"
    );
    assert_eq!(path, format!("result{}", ".k0".repeat(MAX_JSON_DEPTH)));
    // a.self = a
    let e = lift_graph(&[vec![0]], 0, "result", &mut Nesting::default()).unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::Validation);
    let found = crate::error::field_errors(&e).remove(0);
    assert_eq!(
        found,
        (
            "result.k0".into(),
            "expected a JSON value, found a cycle back to result".into()
        )
    );
    // A longer cycle below a sibling: the first container that is its own ancestor is named.
    let e = lift_graph(&[vec![1, 2], vec![], vec![3], vec![2]], 0, "", &mut Nesting::default()).unwrap_err();
    let found = crate::error::field_errors(&e).remove(0);
    assert_eq!(
        found,
        (
            "k1.k0.k0".into(),
            "expected a JSON value, found a cycle back to k1".into()
        )
    );
    let e = lift_graph(&[vec![0]], 0, "", &mut Nesting::default()).unwrap_err();
    assert!(crate::error::field_errors(&e)[0].1.ends_with("back to the whole value"));
    // Shared but acyclic (a diamond of references) is fine.
    assert!(lift_graph(&[vec![1, 1], vec![]], 0, "r", &mut Nesting::default()).is_ok());
}

#[test]
fn an_options_map_does_not_count_towards_the_depth_of_its_fields() {
    let chain: Vec<Vec<usize>> = (0..=MAX_JSON_DEPTH)
        .map(|i| if i < MAX_JSON_DEPTH { vec![i + 1] } else { vec![] })
        .collect();
    assert!(lift_graph(&chain, 0, "", &mut Nesting::for_options()).is_ok());
    assert!(lift_graph(&chain, 0, "", &mut Nesting::default()).is_err());
}
