//! The runtime seam in the browser: the page's (or worker's) event loop.
//!
//! Everything here reaches the browser through the global scope
//! (`globalThis`), never through `window`, so it works in windows, workers
//! and Node alike.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use js_sys::{Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::{BoxFuture, Clock};
use crate::Error;

/// The real clock: `Date.now()` for the time, `setTimeout` for sleeping.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let ms = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
        Box::pin(gloo_timers::future::TimeoutFuture::new(ms))
    }
}

/// Runs `future` to completion in the background, detached from its caller.
///
/// # Errors
/// Never in the browser; the signature matches the native one.
pub fn spawn(future: BoxFuture<'static, ()>) -> Result<(), Error> {
    wasm_bindgen_futures::spawn_local(future);
    Ok(())
}

/// Awaits every future concurrently; their outputs in order. Polls them
/// all on each wake (as `futures_util`'s `join_all` does for a few): the
/// few a page resumes, in a fraction of the WebAssembly.
pub(crate) async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut flying: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = flying.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in flying.iter_mut().zip(done.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(done.iter_mut().filter_map(Option::take).collect())
        }
    })
    .await
}

/// While `navigator.onLine` is false: a future that completes at the global
/// scope's next `online` event. `None` when online, or where there is no
/// `navigator` (Node before 21).
pub fn until_online() -> Option<BoxFuture<'static, ()>> {
    if !is_offline() {
        return None;
    }
    let target: web_sys::EventTarget = js_sys::global().unchecked_into();
    let options = web_sys::AddEventListenerOptions::new();
    options.set_once(true);
    // The listener is the promise's own `resolve`: no Rust closure to keep
    // alive or to leak.
    let wait = Promise::new(&mut |resolve, _reject| {
        let _ = target.add_event_listener_with_callback_and_add_event_listener_options(
            "online", &resolve, &options,
        );
    });
    Some(Box::pin(async move {
        let _ = JsFuture::from(wait).await;
    }))
}

/// Whether the browser says it is offline (`navigator.onLine === false`).
pub(crate) fn is_offline() -> bool {
    global_property("navigator")
        .and_then(|navigator| property(&navigator, "onLine"))
        .is_some_and(|online| online == JsValue::FALSE)
}

/// What a thrown JS value says, for people: an `Error`'s name and message,
/// or the value as a string.
pub(crate) fn describe(value: &JsValue) -> String {
    match value.dyn_ref::<js_sys::Error>() {
        Some(error) => {
            let name = String::from(error.name());
            let message = String::from(error.message());
            if message.is_empty() {
                name
            } else {
                let mut text = name;
                text.push_str(": ");
                text.push_str(&message);
                text
            }
        }
        None => value.as_string().unwrap_or_else(|| "unknown JavaScript error".to_owned()),
    }
}

/// The global scope's `name` property, unless it is missing.
pub fn global_property(name: &str) -> Option<JsValue> {
    property(&js_sys::global(), name)
}

/// `object[name]`, unless it is missing (`undefined` or `null`) or cannot
/// be read.
pub fn property(object: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(object, &name.into())
        .ok()
        .filter(|value| !value.is_undefined() && !value.is_null())
}
