//! The one mapping from [`FfiError`] to JS errors (docs/bindings.md §5): an instance of the class of its
//! kind, which js/errors.js defines (`TaskerError` and one subclass per [`ErrorKind`], named by
//! [`ErrorClass::class_name`]) and hands over once at load, carrying `.code`, `.details` and the causes as a
//! `.cause` chain. Promises reject with that very object.

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Reflect};
use tasker_shared_ffi::{ErrorClass, ErrorKind, FfiError, FfiResult};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::convert::{lower_json, set};

thread_local! {
    /// The classes js/errors.js registered, by class name (a wasm module has one JS thread).
    static CLASSES: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

/// `[{ code, className }]` in [`ErrorKind::ALL`] order, from which js/errors.js makes its classes.
#[wasm_bindgen(js_name = errorKinds)]
pub fn error_kinds() -> Array {
    ErrorKind::ALL
        .into_iter()
        .map(|k| {
            let row = Object::new();
            set(&row, "code", &k.code().into());
            set(&row, "className", &k.class_name().into());
            JsValue::from(row)
        })
        .collect()
}

/// Called once by js/errors.js with `{ ValidationError, NotFoundError, … }`.
#[wasm_bindgen(js_name = defineErrorClasses)]
pub fn define_error_classes(classes: JsValue) {
    CLASSES.with(|c| *c.borrow_mut() = Some(classes));
}

/// The one extension trait: a shared-layer error becomes the JS error, a shared-layer result a JS result.
pub trait IntoHost {
    type Host;
    fn into_host(self) -> Self::Host;
}

impl IntoHost for FfiError {
    type Host = JsValue;

    fn into_host(self) -> JsValue {
        lower_error(&self)
    }
}

impl<T> IntoHost for FfiResult<T> {
    type Host = Result<T, JsValue>;

    fn into_host(self) -> Result<T, JsValue> {
        self.map_err(IntoHost::into_host)
    }
}

/// The JS error for `e` (not thrown): `new Class(message, { code, details, causes })`. Before js/errors.js
/// registered its classes (the module used alone), a plain `Error` that names the code.
pub fn lower_error(e: &FfiError) -> JsValue {
    let init = Object::new();
    set(&init, "code", &e.code.into());
    set(&init, "details", &lower_json(&e.details).unwrap_or(JsValue::NULL));
    let causes: Array = e.causes.iter().map(|c| JsValue::from_str(c)).collect();
    set(&init, "causes", &causes);
    let class = CLASSES.with(|c| {
        let classes = c.borrow();
        let class = Reflect::get(classes.as_ref()?, &e.kind.class_name().into()).ok()?;
        class.dyn_into::<Function>().ok()
    });
    let Some(class) = class else {
        return js_sys::Error::new(&format!("{}: {}", e.code, e.message)).into();
    };
    Reflect::construct(&class, &Array::of2(&e.message.as_str().into(), &init)).unwrap_or_else(|thrown| thrown)
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    fn get(v: &JsValue, key: &str) -> JsValue {
        Reflect::get(v, &key.into()).unwrap()
    }

    /// Every kind becomes an instance of the registered class of its name, with code, details and causes.
    #[wasm_bindgen_test]
    fn every_kind_is_an_instance_of_its_class() {
        let before = lower_error(&FfiError::new(ErrorKind::NotFound, "gone"));
        assert_eq!(get(&before, "message").as_string().unwrap(), "not_found: gone");
        let classes = Object::new();
        let make: Function = js_sys::eval(
            "(function (name) { return ({ [name]: class extends Error { constructor(m, init) { super(m); Object.assign(this, init) } } })[name] })",
        )
        .unwrap()
        .into();
        for kind in ErrorKind::ALL {
            set(
                &classes,
                kind.class_name(),
                &make.call1(&JsValue::NULL, &kind.class_name().into()).unwrap(),
            );
        }
        define_error_classes(classes.clone().into());
        for kind in ErrorKind::ALL {
            let mut e = FfiError::new(kind, "outer").with_detail("k", 1);
            e.causes.push("inner".into());
            let js = e.into_host();
            let class: Function = get(&classes, kind.class_name()).into();
            assert!(
                js.is_instance_of::<js_sys::Error>() && js.unchecked_ref::<js_sys::Object>().is_instance_of::<Object>()
            );
            assert!(
                js_sys::Reflect::get_prototype_of(&js).unwrap() == get(&class, "prototype").into(),
                "{kind:?}"
            );
            assert_eq!(get(&js, "code").as_string().unwrap(), kind.code());
            assert_eq!(get(&get(&js, "details"), "k").as_f64(), Some(1.0));
            assert_eq!(Array::from(&get(&js, "causes")).get(0).as_string().unwrap(), "inner");
        }
    }
}
