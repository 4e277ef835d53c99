//! Every conversion between Java and Rust values: `lift_*` (Java → Rust) and `lower*` (Rust → Java),
//! following the type table of docs/bindings.md §3, and the handles Java objects hold.
//!
//! JSON payloads become `LinkedHashMap` / `ArrayList` / `String` / `Long` / `Double` / `Boolean` / null;
//! timestamps `java.time.Instant`; a table object the record of its name, made by the generated
//! `Records.make(index, fields)` from its fields in table order. A Java value JSON cannot hold is a
//! `validation` error naming the field path (`context.items[3].sku: expected a JSON value, found Instant`).
//! Every local reference made while walking a container is deleted once the container holds it.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, RwLock};

use jni::objects::{
    GlobalRef, JClass, JMethodID, JObject, JObjectArray, JStaticMethodID, JString, JValue, JValueOwned,
};
use jni::signature::{Primitive, ReturnType};
use jni::sys::jlong;
use jni::JNIEnv;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use tasker_shared_ffi::objects::{self, Items, Lower, Lowering, Nesting, OBJECTS};
use tasker_shared_ffi::{self as ffi, dto, FfiError, Timestamp};

use crate::blocking::{JResult, Thrown};

// -- handles ---------------------------------------------------------------------------------------------

/// Every live handle: Java never holds a pointer, only a key of this table, so a handle used after it was
/// freed is a `closed` error, never a dangling pointer.
static HANDLES: LazyLock<RwLock<HashMap<jlong, Arc<dyn Any + Send + Sync>>>> = LazyLock::new(Default::default);
static NEXT_HANDLE: AtomicI64 = AtomicI64::new(1);

/// Keeps `value` (a client, worker session, run or subscription) until [`free`]; returns its handle.
pub fn keep(value: impl Any + Send + Sync) -> jlong {
    let id = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    HANDLES
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, Arc::new(value));
    id
}

/// Lets go of a handle (a closed subscription, a finished run, an unreachable Java object's Cleaner).
pub fn free(id: jlong) -> JResult<()> {
    HANDLES.write().unwrap_or_else(|p| p.into_inner()).remove(&id);
    Ok(())
}

/// The value kept as handle `id`: a `closed` error once it is freed, an `internal` one if it is not a `T`.
pub fn get<T: Any + Send + Sync>(id: jlong) -> JResult<Arc<T>> {
    let found = HANDLES.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
    let kept = found.ok_or_else(|| FfiError::closed(format!("this {} is closed", what::<T>())))?;
    let not = |_| FfiError::internal(format!("the handle is not a {}", what::<T>()));
    Ok(kept.downcast().map_err(not)?)
}

/// What the messages call a `T`: a `WorkerSession` is a "worker session".
fn what<T>() -> String {
    let mut what = String::new();
    for c in std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("handle")
        .chars()
    {
        if c.is_uppercase() && !what.is_empty() {
            what.push(' ');
        }
        what.push(c.to_ascii_lowercase());
    }
    what
}

/// A session or a run: whatever takes a handler's outcome.
pub fn reporter(id: jlong) -> JResult<Arc<dyn ffi::Reports>> {
    match get::<ffi::WorkerSession>(id) {
        Ok(session) => Ok(session),
        Err(_) => Ok(get::<ffi::IdleRun>(id)?),
    }
}

// -- classes ---------------------------------------------------------------------------------------------

/// The classes the adapter checks and builds values of, and their methods, looked up once (global references,
/// kept for the process).
struct Classes {
    string: GlobalRef,
    integer: GlobalRef,
    short: GlobalRef,
    byte: GlobalRef,
    float: GlobalRef,
    map_type: GlobalRef,
    list_type: GlobalRef,
    long: GlobalRef,
    double: GlobalRef,
    boolean: GlobalRef,
    list: GlobalRef,
    map: GlobalRef,
    instant: GlobalRef,
    records: GlobalRef,
    object: GlobalRef,
    // The methods lifting and lowering call, looked up once with the signatures [`classes`] gives.
    long_of: JStaticMethodID,
    double_of: JStaticMethodID,
    boolean_of: JStaticMethodID,
    instant_of: JStaticMethodID,
    make: JStaticMethodID,
    list_new: JMethodID,
    list_add: JMethodID,
    map_new: JMethodID,
    map_put: JMethodID,
    entry_set: JMethodID,
    to_array: JMethodID,
    get_key: JMethodID,
    get_value: JMethodID,
    long_value: JMethodID,
    double_value: JMethodID,
    boolean_value: JMethodID,
}

static CLASSES: OnceLock<Classes> = OnceLock::new();

fn classes(env: &mut JNIEnv) -> JResult<&'static Classes> {
    if let Some(c) = CLASSES.get() {
        return Ok(c);
    }
    let mut global = |name: &str| -> JResult<GlobalRef> {
        let class = env.find_class(name)?;
        Ok(env.new_global_ref(class)?)
    };
    let c = Classes {
        string: global("java/lang/String")?,
        integer: global("java/lang/Integer")?,
        short: global("java/lang/Short")?,
        byte: global("java/lang/Byte")?,
        float: global("java/lang/Float")?,
        map_type: global("java/util/Map")?,
        list_type: global("java/util/List")?,
        long: global("java/lang/Long")?,
        double: global("java/lang/Double")?,
        boolean: global("java/lang/Boolean")?,
        list: global("java/util/ArrayList")?,
        map: global("java/util/LinkedHashMap")?,
        instant: global("java/time/Instant")?,
        records: global("io/tasker/core/Records")?,
        object: global("java/lang/Object")?,
        long_of: env.get_static_method_id("java/lang/Long", "valueOf", "(J)Ljava/lang/Long;")?,
        double_of: env.get_static_method_id("java/lang/Double", "valueOf", "(D)Ljava/lang/Double;")?,
        boolean_of: env.get_static_method_id("java/lang/Boolean", "valueOf", "(Z)Ljava/lang/Boolean;")?,
        instant_of: env.get_static_method_id("java/time/Instant", "ofEpochMilli", "(J)Ljava/time/Instant;")?,
        make: env.get_static_method_id(
            "io/tasker/core/Records",
            "make",
            "(I[Ljava/lang/Object;)Ljava/lang/Object;",
        )?,
        list_new: env.get_method_id("java/util/ArrayList", "<init>", "()V")?,
        list_add: env.get_method_id("java/util/List", "add", "(Ljava/lang/Object;)Z")?,
        map_new: env.get_method_id("java/util/LinkedHashMap", "<init>", "()V")?,
        map_put: env.get_method_id(
            "java/util/Map",
            "put",
            "(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;",
        )?,
        entry_set: env.get_method_id("java/util/Map", "entrySet", "()Ljava/util/Set;")?,
        to_array: env.get_method_id("java/util/Collection", "toArray", "()[Ljava/lang/Object;")?,
        get_key: env.get_method_id("java/util/Map$Entry", "getKey", "()Ljava/lang/Object;")?,
        get_value: env.get_method_id("java/util/Map$Entry", "getValue", "()Ljava/lang/Object;")?,
        long_value: env.get_method_id("java/lang/Number", "longValue", "()J")?,
        double_value: env.get_method_id("java/lang/Number", "doubleValue", "()D")?,
        boolean_value: env.get_method_id("java/lang/Boolean", "booleanValue", "()Z")?,
    };
    Ok(CLASSES.get_or_init(|| c))
}

fn class(g: &GlobalRef) -> &JClass<'static> {
    <&JClass>::from(g.as_obj())
}

// -- lifting ---------------------------------------------------------------------------------------------

/// A required string argument; Java `null` is a `NullPointerException` naming `name`.
pub fn string(env: &mut JNIEnv, obj: &JObject, name: &'static str) -> JResult<String> {
    optional_string(env, obj, name)?.ok_or(Thrown::Null(name))
}

/// An optional string argument: `None` for Java `null`.
pub fn optional_string(env: &mut JNIEnv, obj: &JObject, name: &str) -> JResult<Option<String>> {
    if obj.is_null() {
        return Ok(None);
    }
    if !is_string(env, obj)? {
        let found = type_name(env, obj)?;
        return Err(FfiError::validation(name, format!("expected a String, found {found}")).into());
    }
    Ok(Some(env.get_string(<&JString>::from(obj))?.into()))
}

/// Whether `obj` is a `java.lang.String`.
pub fn is_string(env: &mut JNIEnv, obj: &JObject) -> JResult<bool> {
    let c = classes(env)?;
    Ok(env.is_instance_of(obj, class(&c.string))?)
}

/// The simple name of `obj`'s class (`null` for null), for messages.
fn type_name(env: &mut JNIEnv, obj: &JObject) -> JResult<String> {
    if obj.is_null() {
        return Ok("null".into());
    }
    let class = env.call_method(obj, "getClass", "()Ljava/lang/Class;", &[])?.l()?;
    let name = env
        .call_method(&class, "getSimpleName", "()Ljava/lang/String;", &[])?
        .l()?;
    Ok(env.get_string(&JString::from(name))?.into())
}

/// Lifts a Java value that JSON can hold: `Map` (String keys), `List`, `String`, `Long` / `Integer` /
/// `Short` / `Byte`, `Double` / `Float` (finite), `Boolean` or null. Anything else is a `validation` error at
/// `path`.
/// A cycle, or nesting deeper than `MAX_JSON_DEPTH`, is a `validation` error too (the shared layer's
/// `Nesting`), never a stack overflow.
pub fn lift_json(env: &mut JNIEnv, obj: &JObject, path: &str) -> JResult<Value> {
    lift_nested(env, obj, path, &mut Nesting::default())
}

/// The containers a lift is inside, each held by a local reference of its own.
type Nest<'local> = Nesting<JObject<'local>>;

/// Enters the container `obj` through a local reference of its own (deleted by [`leave`]); `IsSameObject` is
/// the identity the cycle check compares by.
fn enter<'local>(env: &JNIEnv<'local>, nest: &mut Nest<'local>, obj: &JObject, path: &str) -> JResult<()> {
    let held = env.new_local_ref(obj)?;
    Ok(nest.enter(held, path, |a, b| env.is_same_object(a, b).unwrap_or(false))?)
}

fn leave<'local>(env: &JNIEnv<'local>, nest: &mut Nest<'local>) -> JResult<()> {
    if let Some(held) = nest.leave() {
        env.delete_local_ref(held)?;
    }
    Ok(())
}

/// The recursion of [`lift_json`], kept small: each level's frame is this dispatch and one container's loop
/// (a debug build's frames would otherwise hold every branch's locals, and 128 of them overflow a Java thread's
/// 1 MB stack before the depth check is reached).
fn lift_nested<'local>(env: &mut JNIEnv<'local>, obj: &JObject, path: &str, nest: &mut Nest<'local>) -> JResult<Value> {
    if obj.is_null() {
        return Ok(Value::Null);
    }
    let c = classes(env)?;
    if env.is_instance_of(obj, class(&c.map_type))? {
        return lift_map(env, obj, path, nest);
    }
    if env.is_instance_of(obj, class(&c.list_type))? {
        return lift_list(env, obj, path, nest);
    }
    lift_scalar(env, obj, path)
}

#[inline(never)]
fn lift_scalar(env: &mut JNIEnv, obj: &JObject, path: &str) -> JResult<Value> {
    let c = classes(env)?;
    let is = |env: &mut JNIEnv, g: &GlobalRef| env.is_instance_of(obj, class(g));
    if is(env, &c.string)? {
        return Ok(Value::String(env.get_string(<&JString>::from(obj))?.into()));
    }
    if is(env, &c.boolean)? {
        let b = call(env, Call::Method(obj, c.boolean_value), BOOLEAN_RET, &[])?.z()?;
        return Ok(Value::Bool(b));
    }
    for integral in [&c.long, &c.integer, &c.short, &c.byte] {
        if is(env, integral)? {
            let n = call(env, Call::Method(obj, c.long_value), LONG_RET, &[])?.j()?;
            return Ok(Value::from(n));
        }
    }
    if is(env, &c.double)? || is(env, &c.float)? {
        let v = call(env, Call::Method(obj, c.double_value), DOUBLE_RET, &[])?.d()?;
        let finite = Number::from_f64(v).map(Value::Number);
        return finite.ok_or_else(|| FfiError::validation(path, format!("expected a JSON value, found {v}")).into());
    }
    let found = type_name(env, obj)?;
    Err(FfiError::validation(path, format!("expected a JSON value, found {found}")).into())
}

#[inline(never)]
fn lift_map<'local>(env: &mut JNIEnv<'local>, obj: &JObject, path: &str, nest: &mut Nest<'local>) -> JResult<Value> {
    enter(env, nest, obj, path)?;
    let entries = map_entries(env, obj)?;
    let mut map = Map::new();
    for i in 0..env.get_array_length(&entries)? {
        let (key, value) = map_entry(env, &entries, i, path)?;
        let lifted = lift_nested(env, &value, &objects::field_path(path, &key), nest)?;
        map.insert(key, lifted);
        env.delete_local_ref(value)?;
    }
    env.delete_local_ref(entries)?;
    leave(env, nest)?;
    Ok(Value::Object(map))
}

/// A `Map`'s entries as an array.
#[inline(never)]
fn map_entries<'local>(env: &mut JNIEnv<'local>, obj: &JObject) -> JResult<JObjectArray<'local>> {
    let c = classes(env)?;
    let set = call(env, Call::Method(obj, c.entry_set), OBJECT, &[])?.l()?;
    let entries = JObjectArray::from(call(env, Call::Method(&set, c.to_array), OBJECT, &[])?.l()?);
    env.delete_local_ref(set)?;
    Ok(entries)
}

/// The key of entry `i` of `entries`, which must be a `String`, and its value.
#[inline(never)]
fn map_entry<'l>(env: &mut JNIEnv<'l>, entries: &JObjectArray, i: i32, path: &str) -> JResult<(String, JObject<'l>)> {
    let c = classes(env)?;
    let entry = env.get_object_array_element(entries, i)?;
    let key_ref = call(env, Call::Method(&entry, c.get_key), OBJECT, &[])?.l()?;
    if key_ref.is_null() || !is_string(env, &key_ref)? {
        let found = type_name(env, &key_ref)?;
        return Err(FfiError::validation(path, format!("expected String keys, found {found}")).into());
    }
    let key: String = env.get_string(<&JString>::from(&key_ref))?.into();
    env.delete_local_ref(key_ref)?;
    let value = call(env, Call::Method(&entry, c.get_value), OBJECT, &[])?.l()?;
    env.delete_local_ref(entry)?;
    Ok((key, value))
}

#[inline(never)]
fn lift_list<'local>(env: &mut JNIEnv<'local>, obj: &JObject, path: &str, nest: &mut Nest<'local>) -> JResult<Value> {
    let c = classes(env)?;
    enter(env, nest, obj, path)?;
    let items = JObjectArray::from(call(env, Call::Method(obj, c.to_array), OBJECT, &[])?.l()?);
    let mut out = Vec::new();
    for i in 0..env.get_array_length(&items)? {
        let item = env.get_object_array_element(&items, i)?;
        out.push(lift_nested(env, &item, &format!("{path}[{i}]"), nest)?);
        env.delete_local_ref(item)?;
    }
    env.delete_local_ref(items)?;
    leave(env, nest)?;
    Ok(Value::Array(out))
}

/// A handler's result: the shared layer makes a lift error an `InvalidResult` failure of the step.
pub fn lift_result(env: &mut JNIEnv, obj: &JObject) -> JResult<ffi::FfiResult<Value>> {
    match lift_json(env, obj, "result") {
        Ok(v) => Ok(Ok(v)),
        Err(Thrown::Ffi(e)) => Ok(Err(e)),
        Err(other) => Err(other),
    }
}

/// An options map (or null) → an input struct of the shared layer; an error names `what.field`.
pub fn lift_options<T: DeserializeOwned>(env: &mut JNIEnv, obj: &JObject, what: &str) -> JResult<T> {
    let json = lift_nested(env, obj, what, &mut Nesting::for_options())?;
    Ok(objects::options(json, what)?)
}

/// A claim token, passed as its two primitives.
pub fn lift_token(env: &mut JNIEnv, step_id: &JObject, attempt: jlong) -> JResult<dto::ClaimToken> {
    Ok(dto::ClaimToken::new(string(env, step_id, "token.stepId")?, attempt))
}

/// A count or limit: a negative one is 0.
pub fn count(n: jlong) -> u32 {
    n.clamp(0, u32::MAX as i64) as u32
}

/// Milliseconds (not negative) as a `Duration`.
pub fn lift_ms(ms: jlong, path: &str) -> JResult<std::time::Duration> {
    Ok(objects::seconds(ms as f64 / 1000.0, path)?)
}

/// Epoch milliseconds (a Java `Instant`'s `toEpochMilli`) as a timestamp.
pub fn lift_time(ms: jlong, path: &str) -> JResult<Timestamp> {
    let t = Timestamp::from_timestamp_millis(ms);
    Ok(t.ok_or_else(|| FfiError::validation(path, "expected a representable time"))?)
}

// -- lowering --------------------------------------------------------------------------------------------

/// A result of the shared layer (a table object, a list or option of them, a timestamp, a boolean) → its
/// Java value.
pub fn lower<'l, T: Lower>(env: &mut JNIEnv<'l>, value: &T) -> JResult<JObject<'l>> {
    value.lower(&Host(RefCell::new(env)))
}

/// JSON → Java maps, lists and boxed scalars.
pub fn lower_json<'l>(env: &mut JNIEnv<'l>, value: &Value) -> JResult<JObject<'l>> {
    objects::lower_json(&Host(RefCell::new(env)), value)
}

/// How Java builds each kind of the object table.
struct Host<'a, 'l>(RefCell<&'a mut JNIEnv<'l>>);

/// One call through a cached method id: a static method of a class, an instance method of an object, or a
/// constructor.
enum Call<'a, 'o> {
    Static(&'a GlobalRef, JStaticMethodID),
    Method(&'a JObject<'o>, JMethodID),
    New(&'a GlobalRef, JMethodID),
}

/// The result types the cached methods declare.
const OBJECT: ReturnType = ReturnType::Object;
const LONG_RET: ReturnType = ReturnType::Primitive(Primitive::Long);
const DOUBLE_RET: ReturnType = ReturnType::Primitive(Primitive::Double);
const BOOLEAN_RET: ReturnType = ReturnType::Primitive(Primitive::Boolean);

#[allow(unsafe_code)]
fn call<'l>(env: &mut JNIEnv<'l>, call: Call, ret: ReturnType, args: &[JValue]) -> JResult<JValueOwned<'l>> {
    let args: Vec<_> = args.iter().map(JValue::as_jni).collect();
    // SAFETY: every id is looked up once in `classes()` on the class (or interface) named beside it, with the
    // signature given there; each call site passes exactly the arguments of that signature, in order and of
    // those types, names the result type it declares, and calls an instance method only on an object of that
    // class or interface (checked with IsInstanceOf, or made by this file).
    unsafe {
        Ok(match call {
            Call::Static(c, id) => env.call_static_method_unchecked(class(c), id, ret, &args)?,
            Call::Method(obj, id) => env.call_method_unchecked(obj, id, ret, &args)?,
            Call::New(c, id) => JValueOwned::Object(env.new_object_unchecked(class(c), id, &args)?),
        })
    }
}

impl<'l> Host<'_, 'l> {
    /// Runs `f` with the environment and the cached classes; the borrow ends before the next item is lowered.
    fn with<T>(&self, f: impl FnOnce(&mut JNIEnv<'l>, &'static Classes) -> JResult<T>) -> JResult<T> {
        let env = &mut **self.0.borrow_mut();
        let c = classes(env)?;
        f(env, c)
    }

    fn boxed(&self, pick: fn(&Classes) -> (&GlobalRef, JStaticMethodID), v: JValue) -> JResult<JObject<'l>> {
        let env = &mut **self.0.borrow_mut();
        let (c, id) = pick(classes(env)?);
        Ok(call(env, Call::Static(c, id), OBJECT, &[v])?.l()?)
    }
}

impl<'l> Lowering for Host<'_, 'l> {
    type Value = JObject<'l>;
    type Error = Thrown;

    fn error(&self, e: FfiError) -> Thrown {
        e.into()
    }

    fn scalar(&self, v: &Value) -> JResult<JObject<'l>> {
        match v {
            Value::Bool(b) => self.boxed(|c| (&c.boolean, c.boolean_of), JValue::Bool(*b as u8)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => self.boxed(|c| (&c.long, c.long_of), JValue::Long(i)),
                None => {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    self.boxed(|c| (&c.double, c.double_of), JValue::Double(f))
                }
            },
            Value::String(s) => Ok(self.0.borrow_mut().new_string(s)?.into()),
            _ => Ok(JObject::null()),
        }
    }

    fn timestamp(&self, t: Timestamp) -> JResult<JObject<'l>> {
        self.boxed(|c| (&c.instant, c.instant_of), JValue::Long(t.timestamp_millis()))
    }

    fn list(&self, items: Items<'_, JObject<'l>, Thrown>) -> JResult<JObject<'l>> {
        let list = self.with(|env, c| Ok(call(env, Call::New(&c.list, c.list_new), OBJECT, &[])?.l()?))?;
        for item in items {
            let item = item?;
            self.with(|env, c| {
                call(
                    env,
                    Call::Method(&list, c.list_add),
                    BOOLEAN_RET,
                    &[JValue::Object(&item)],
                )?;
                Ok(env.delete_local_ref(item)?)
            })?;
        }
        Ok(list)
    }

    fn map(&self, entries: Items<'_, (&str, JObject<'l>), Thrown>) -> JResult<JObject<'l>> {
        let map = self.with(|env, c| Ok(call(env, Call::New(&c.map, c.map_new), OBJECT, &[])?.l()?))?;
        for entry in entries {
            let (key, value) = entry?;
            self.with(|env, c| {
                let key = env.new_string(key)?;
                let kv = [JValue::Object(&key), JValue::Object(&value)];
                let old = call(env, Call::Method(&map, c.map_put), OBJECT, &kv)?.l()?;
                env.delete_local_ref(old)?;
                env.delete_local_ref(key)?;
                Ok(env.delete_local_ref(value)?)
            })?;
        }
        Ok(map)
    }

    fn object(&self, index: usize, fields: Items<'_, JObject<'l>, Thrown>) -> JResult<JObject<'l>> {
        let n = OBJECTS[index].fields.len() as i32;
        let array = self.with(|env, c| Ok(env.new_object_array(n, class(&c.object), JObject::null())?))?;
        for (i, field) in fields.enumerate() {
            let field = field?;
            self.with(|env, _| {
                env.set_object_array_element(&array, i as i32, &field)?;
                Ok(env.delete_local_ref(field)?)
            })?;
        }
        self.with(|env, c| {
            let args = [JValue::Int(index as i32), JValue::Object(&array)];
            let record = call(env, Call::Static(&c.records, c.make), OBJECT, &args)?.l()?;
            env.delete_local_ref(array)?;
            Ok(record)
        })
    }
}
