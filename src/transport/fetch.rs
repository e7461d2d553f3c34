//! The transport in the browser: the global scope's own `fetch` (in a
//! window, a worker, or Node), through web-sys.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{Either, select};
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, RequestInit};

use super::{Outgoing, Transport, TransportError, TransportErrorKind};
use crate::Error;
use crate::intent::{Request, Response};
use crate::runtime::{BoxFuture, describe, is_offline};

#[wasm_bindgen]
extern "C" {
    /// `globalThis.fetch`: the same in windows, workers and Node.
    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(url: &str, init: &RequestInit) -> Result<Promise, JsValue>;
}

/// Sends attempts with the browser's `fetch`. Each attempt is aborted when
/// its timeout passes or its future is dropped.
///
/// Redirects are followed (as `fetch` does by default): unlike natively, a
/// browser cannot read a redirect response it does not follow.
#[derive(Debug, Clone, Default)]
pub struct HttpTransport {
    include_credentials: bool,
}

impl HttpTransport {
    /// A transport sending the page's cookies to its own origin only
    /// (`credentials: "same-origin"`, fetch's default).
    ///
    /// # Errors
    /// Never; the signature matches the native one.
    pub fn new() -> Result<HttpTransport, Error> {
        Ok(HttpTransport::default())
    }

    /// Sends cookies to other origins as well (`credentials: "include"`):
    /// for an API on another origin that authenticates with cookies.
    pub fn include_credentials(mut self, include: bool) -> HttpTransport {
        self.include_credentials = include;
        self
    }

    /// The `init` of `fetch` for `request` (its method, headers, body and
    /// credentials mode).
    fn init(&self, request: &Request, headers: &Headers) -> RequestInit {
        let init = RequestInit::new();
        init.set_method(&request.method);
        init.set_headers(headers);
        if self.include_credentials {
            init.set_credentials(web_sys::RequestCredentials::Include);
        }
        if !request.body.is_empty() {
            init.set_body(&Uint8Array::from(&request.body[..]));
        }
        init
    }
}

/// Aborts the fetch when dropped still armed: on timeout, and when the
/// attempt's future is dropped mid-flight. Disarmed once the exchange is
/// over (aborting a finished fetch would do nothing, at a cost).
struct AbortOnDrop(Option<AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = &self.0 {
            controller.abort();
        }
    }
}

impl Transport for HttpTransport {
    fn resolve(&self, url: &str) -> String {
        // The browser's own resolution (against the page or the worker) and
        // normalisation: what `fetch` sends, and what the npm package records.
        web_sys::Request::new_with_str(url).map_or_else(|_| url.to_owned(), |built| built.url())
    }

    fn check(&self, request: &Request) -> Result<(), String> {
        // The browser's own rules, exactly: build the request fetch would send.
        let headers = Headers::new().map_err(|e| describe(&e))?;
        for (name, value) in &request.headers {
            headers.append(name, value).map_err(|e| {
                let mut message = describe(&e);
                message.push_str(" (header ");
                message.push_str(name);
                message.push(')');
                message
            })?;
        }
        let built =
            web_sys::Request::new_with_str_and_init(&request.url, &self.init(request, &headers))
                .map_err(|e| describe(&e))?;
        let url = built.url();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("unsupported URL \"{url}\": only http and https"));
        }
        Ok(())
    }

    fn send<'a>(
        &'a self,
        outgoing: Outgoing<'a>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Response, TransportError>> {
        Box::pin(async move {
            let headers = Headers::new().map_err(other)?;
            for (name, value) in outgoing.headers() {
                headers.append(name, value).map_err(other)?;
            }
            let init = self.init(outgoing.request, &headers);
            let controller = AbortController::new().map_err(other)?;
            init.set_signal(Some(&controller.signal()));
            let mut abort = AbortOnDrop(Some(controller));
            let exchange = async {
                // `fetch(url, init)`: no Request object of our own to build
                // first (`check` validated one).
                let promise = global_fetch(&outgoing.request.url, &init).map_err(network)?;
                let response: web_sys::Response =
                    JsFuture::from(promise).await.map_err(network)?.unchecked_into();
                let status = response.status();
                // The body is read while the headers are copied.
                let body = response.array_buffer().map_err(network)?;
                let headers = header_pairs(&response.headers());
                let body = JsFuture::from(body).await.map_err(network)?;
                Ok(Response {
                    status,
                    headers,
                    body: Bytes::from(Uint8Array::new(&body).to_vec()),
                })
            };
            let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
            let timer = gloo_timers::future::TimeoutFuture::new(ms);
            match select(Box::pin(exchange), timer).await {
                Either::Left((result, _)) => {
                    abort.0 = None;
                    result
                }
                Either::Right(((), _)) => Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no complete response within {ms} ms"),
                )),
            }
        })
    }
}

fn other(error: JsValue) -> TransportError {
    TransportError::new(TransportErrorKind::Other, describe(&error))
}

/// `fetch` rejects with a `TypeError` for every network failure alike
/// (refused, reset, CORS, offline); the outcome on the server is unknown.
fn network(error: JsValue) -> TransportError {
    let kind = if is_offline() {
        TransportErrorKind::Offline
    } else {
        TransportErrorKind::Interrupted
    };
    TransportError::new(kind, describe(&error))
}

/// The entries of a `Headers` (names lower-cased, as the browser keeps
/// them), as the core records a request's or a response's headers.
pub fn header_pairs(headers: &Headers) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    // One call for all the entries, not one per step of an iterator.
    for entry in js_sys::Array::from(headers) {
        let pair: js_sys::Array = entry.unchecked_into();
        if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            pairs.push((name, value));
        }
    }
    pairs
}
