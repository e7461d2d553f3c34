//! Reading what JavaScript passes to `send` and `fetch` into a request the
//! core can record, with the browser's own rules for URLs and headers.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use oncely::runtime::{global_property, property};
use oncely::transport::header_pairs;

use crate::error::invalid;

/// `new <class>(...args)` for a class of the global scope (`Headers`,
/// `Request`): the platform's own parsing and validation.
fn construct(class: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let constructor: js_sys::Function =
        Reflect::get(&js_sys::global(), &class.into())?.dyn_into()?;
    let list: js_sys::Array = args.iter().copied().collect();
    Reflect::construct(&constructor, &list)
}

/// A request as the core records it.
pub(crate) struct Parts {
    pub intent: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// `send({ intent, method?, url, headers?, body? })`; `method` defaults to
/// `"POST"`, a relative `url` resolves against the page (or worker).
pub(crate) fn from_send(request: &JsValue) -> Result<Parts, JsValue> {
    if !request.is_object() {
        return Err(invalid(
            "send() takes { intent, url, method?, headers?, body? }",
        ));
    }
    let intent = intent_of(request, "send()")?;
    let method = match property(request, "method") {
        None => "POST".to_owned(),
        Some(method) => method
            .as_string()
            .ok_or_else(|| invalid("send(): method must be a string"))?,
    };
    let url = property(request, "url")
        .map(|url| js_sys::JsString::from(url).as_string().unwrap_or_default())
        .filter(|url| !url.is_empty())
        .ok_or_else(|| invalid("send(): url is required"))?;
    let headers = match property(request, "headers") {
        None => Vec::new(),
        Some(init) => header_pairs(
            &construct("Headers", &[&init])
                .map_err(|e| invalid_from("send(): headers", &e))?
                .unchecked_into(),
        ),
    };
    let body = match property(request, "body") {
        None => Vec::new(),
        Some(body) => bytes_of(&body)?,
    };
    Ok(Parts {
        intent,
        method,
        url: absolute(&url)?,
        headers,
        body,
    })
}

/// `fetch(input, { ...init, intent })`: everything `fetch` accepts, read
/// through the browser's own `Request` (so the URL is absolute and the
/// headers normalised), body buffered once.
pub(crate) async fn from_fetch(input: &JsValue, init: &JsValue) -> Result<Parts, JsValue> {
    if !init.is_object() {
        return Err(invalid(
            "fetch() needs an init with an intent: fetch(url, { intent, ... })",
        ));
    }
    let intent = intent_of(init, "fetch()")?;
    let request: web_sys::Request = construct("Request", &[input, init])
        .map_err(|e| invalid_from("fetch()", &e))?
        .unchecked_into();
    let buffer = request
        .array_buffer()
        .map_err(|e| invalid_from("fetch(): body", &e))?;
    let buffer = JsFuture::from(buffer)
        .await
        .map_err(|e| invalid_from("fetch(): body", &e))?;
    Ok(Parts {
        intent,
        method: request.method(),
        url: request.url(),
        headers: header_pairs(&request.headers()),
        body: Uint8Array::new(&buffer).to_vec(),
    })
}

fn intent_of(object: &JsValue, call: &str) -> Result<String, JsValue> {
    property(object, "intent")
        .and_then(|intent| intent.as_string())
        .filter(|intent| !intent.is_empty())
        .ok_or_else(|| {
            let mut message = String::from(call);
            message.push_str(": intent must be a non-empty string");
            invalid(&message)
        })
}

/// A body's bytes: a string (as UTF-8), an `ArrayBuffer` or any view on one.
fn bytes_of(body: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(text) = body.as_string() {
        return Ok(text.into_bytes());
    }
    if body.is_instance_of::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(body).to_vec());
    }
    if js_sys::ArrayBuffer::is_view(body) {
        let buffer = Reflect::get(body, &"buffer".into()).unwrap_or_default();
        let offset = Reflect::get(body, &"byteOffset".into())
            .ok()
            .and_then(|v| v.as_f64());
        let length = Reflect::get(body, &"byteLength".into())
            .ok()
            .and_then(|v| v.as_f64());
        if let (Some(offset), Some(length)) = (offset, length) {
            let view =
                Uint8Array::new_with_byte_offset_and_length(&buffer, offset as u32, length as u32);
            return Ok(view.to_vec());
        }
    }
    Err(invalid(
        "body must be a string, a Uint8Array (or other view) or an ArrayBuffer",
    ))
}

/// `url` resolved against the global scope's location (a page or a worker);
/// as given where there is none (Node: it must then be absolute).
fn absolute(url: &str) -> Result<String, JsValue> {
    let base = page_location();
    let parsed = match &base {
        Some(base) => web_sys::Url::new_with_base(url, base),
        None => web_sys::Url::new(url),
    };
    parsed
        .map(|url| url.href())
        .map_err(|e| invalid_from("url", &e))
}

fn page_location() -> Option<String> {
    property(&global_property("location")?, "href")?.as_string()
}

/// An "invalid" error naming what was wrong and what the platform said.
fn invalid_from(what: &str, error: &JsValue) -> JsValue {
    let mut message = String::from(what);
    message.push_str(": ");
    message.push_str(
        &error
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| "not accepted".to_owned()),
    );
    invalid(&message)
}
