//! `Outcome`: what an intent settled with, as JavaScript reads it.

use js_sys::Promise;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

/// The definitive response of an intent: sent now, or replayed from the
/// store (`replayed`). Read the body with `text()`, `json()` or `bytes()`.
#[wasm_bindgen]
pub struct Outcome {
    inner: oncely::Outcome,
}

impl Outcome {
    pub(crate) fn new(inner: oncely::Outcome) -> Outcome {
        Outcome { inner }
    }
}

#[wasm_bindgen]
impl Outcome {
    /// The HTTP status.
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> u16 {
        self.inner.status()
    }

    /// Whether the status is 2xx.
    #[wasm_bindgen(getter)]
    pub fn ok(&self) -> bool {
        self.inner.is_success()
    }

    /// The intent's idempotency key (the same on every attempt).
    #[wasm_bindgen(getter)]
    pub fn key(&self) -> String {
        self.inner.key().as_str().to_owned()
    }

    /// The intent's name.
    #[wasm_bindgen(getter)]
    pub fn intent(&self) -> String {
        self.inner.intent().to_owned()
    }

    /// Attempts it took, across reloads.
    #[wasm_bindgen(getter)]
    pub fn attempts(&self) -> u32 {
        self.inner.attempts()
    }

    /// Whether this is the stored outcome of an intent settled earlier.
    #[wasm_bindgen(getter)]
    pub fn replayed(&self) -> bool {
        self.inner.replayed()
    }

    /// The response headers (a new `Headers` on every read).
    #[wasm_bindgen(getter)]
    pub fn headers(&self) -> web_sys::Headers {
        headers(self.inner.headers())
    }

    // The body readers return settled promises rather than being `async`:
    // the body is at hand, and each async export costs the package a
    // future-to-promise bridge.

    /// The body as text (UTF-8; invalid sequences replaced).
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn text(&self) -> Promise {
        Promise::resolve(&JsValue::from(
            String::from_utf8_lossy(self.inner.body()).as_ref(),
        ))
    }

    /// The body parsed as JSON; rejects with a `SyntaxError` when it is not.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn json(&self) -> Promise {
        match js_sys::JSON::parse(&String::from_utf8_lossy(self.inner.body())) {
            Ok(value) => Promise::resolve(&value),
            Err(error) => Promise::reject(&error),
        }
    }

    /// The body's bytes.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn bytes(&self) -> Promise {
        Promise::resolve(&JsValue::from(js_sys::Uint8Array::from(
            &self.inner.body()[..],
        )))
    }
}

/// `headers` as a `Headers` object; a header the platform refuses is left out.
pub(crate) fn headers(headers: &[(String, String)]) -> web_sys::Headers {
    let object = web_sys::Headers::new().unwrap_or_else(|_| js_sys::Object::new().unchecked_into());
    for (name, value) in headers {
        let _ = object.append(name, value);
    }
    object
}
