//! Errors as JavaScript sees them: `OncelyError`, a subclass of `Error`
//! defined by the package's JS layer, with a stable `code`.

use std::cell::RefCell;

use js_sys::{Array, Function, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

thread_local! {
    /// The `OncelyError` class, registered by the JS layer once the module
    /// is loaded.
    static ERROR_CLASS: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Registers the class every error is an instance of (`OncelyError`, whose
/// constructor takes `(message, code)`). Called by the package's JS layer.
#[wasm_bindgen(js_name = setErrorClass)]
pub fn set_error_class(class: Function) {
    ERROR_CLASS.with(|slot| *slot.borrow_mut() = Some(class));
}

/// An `OncelyError` (or, before the class is registered, an `Error` named
/// so) with `code`, and the intent's name, key and last status where known.
pub(crate) fn to_js(error: &oncely::Error) -> JsValue {
    let value = new_error(&error.to_string(), error.kind().code());
    if let Some(intent) = error.intent() {
        set(&value, "intent", &intent.into());
    }
    if let Some(key) = error.key() {
        set(&value, "key", &key.as_str().into());
    }
    if let Some(status) = error.last_status() {
        set(&value, "lastStatus", &status.into());
    }
    value
}

/// An error with code `"invalid"`: the caller's input cannot be used.
pub(crate) fn invalid(message: &str) -> JsValue {
    new_error(message, "invalid")
}

fn new_error(message: &str, code: &str) -> JsValue {
    let args = Array::of2(&message.into(), &code.into());
    let constructed = ERROR_CLASS.with(|slot| {
        slot.borrow()
            .as_ref()
            .and_then(|class| Reflect::construct(class, &args).ok())
    });
    constructed.unwrap_or_else(|| {
        let error = js_sys::Error::new(message);
        error.set_name("OncelyError");
        set(&error, "code", &code.into());
        error.unchecked_into()
    })
}

pub(crate) fn set(target: &JsValue, name: &str, value: &JsValue) {
    // Setting a property on a plain object or an error cannot fail.
    let _ = Reflect::set(target, &name.into(), value);
}
