//! The JavaScript API of oncely, compiled to WebAssembly and shipped as the
//! npm package `oncely` (`make pkg` builds it into `pkg/`).
//!
//! This crate only translates: JavaScript values in, the core's calls, and
//! JavaScript values (an `Outcome`, a `Response`, an `OncelyError`) out.
//! Every behaviour lives in the core (`oncely`), the same as natively.
#![deny(missing_docs)]
// Only the browser build has anything to translate.
#![cfg(target_arch = "wasm32")]

mod error;
mod events;
mod outcome;
mod request;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use js_sys::Promise;
use oncely::{Client, Durability, MemoryStore, RetryPolicy};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The package's allocator: talc, smaller than dlmalloc. The browser build
/// is single-threaded (no `atomics`), the case talc documents this for.
#[cfg(not(target_feature = "atomics"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

pub use error::set_error_class;
use error::{invalid, set, to_js};
use events::Listeners;
use oncely::runtime::{global_property, property};
pub use outcome::Outcome;
use request::Parts;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
export interface OpenOptions {
  /** Separates the intents of one app from another's: database `oncely:<namespace>`. Default "default". */
  namespace?: string;
  /** "indexeddb" (default in browsers: survives reloads) or "memory" (Node, tests). */
  store?: "indexeddb" | "memory";
  /** "strict" (default): a new intent is on disk before it is sent. "relaxed": faster, may be lost with power. */
  durability?: "strict" | "relaxed";
  /** fetch's credentials mode: "same-origin" (default) or "include" (cookies to another origin). */
  credentials?: "same-origin" | "include";
  retry?: RetryOptions;
}
export interface RetryOptions {
  /** Attempts before giving up (default 8). */
  maxAttempts?: number;
  /** First backoff ceiling in ms (default 500). */
  baseDelayMs?: number;
  /** Largest backoff in ms (default 20000). */
  maxDelayMs?: number;
  /** Overall deadline in ms, offline time excluded (default 120000). */
  deadlineMs?: number;
}
export interface SendRequest {
  /** The intent's stable name: same name, same intent. */
  intent: string;
  /** Default "POST". */
  method?: string;
  /** Absolute, or relative to the page (or worker). */
  url: string | URL;
  headers?: HeadersInit;
  body?: string | ArrayBuffer | ArrayBufferView | null;
}
export interface PendingIntent {
  intent: string;
  key: string;
  attempts: number;
  /** ms since the epoch. */
  createdAt: number;
  /** "pending", or "failed" when it gave up (resume() tries it again). */
  state: "pending" | "failed";
}
export type OncelyEventType = "created" | "attempt" | "retry" | "joined" | "replayed" | "conflict" | "settled" | "failed" | "offline";
export interface OncelyEvent {
  type: OncelyEventType;
  intent: string;
  key?: string;
  /** ms since the epoch. */
  at: number;
  /** attempt, retry: the attempt's number (from 1, across reloads). settled: attempts it took. */
  attempt?: number;
  /** retry: the wait before the next attempt. */
  delayMs?: number;
  /** retry: the failed attempt's status, when one arrived. settled: the response status. */
  status?: number;
  /** retry: why the attempt did not settle, for people. */
  reason?: string;
  /** failed: the OncelyError. */
  error?: Error;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// Options of `Oncely.open`.
    #[wasm_bindgen(typescript_type = "OpenOptions")]
    pub type OpenOptions;
    /// The argument of `send`.
    #[wasm_bindgen(typescript_type = "SendRequest")]
    pub type SendRequest;
    /// The `init` of `fetch`: fetch's own, plus the intent.
    #[wasm_bindgen(typescript_type = "RequestInit & { intent: string }")]
    pub type FetchInit;
    /// A request as `fetch` takes it.
    #[wasm_bindgen(typescript_type = "RequestInfo | URL")]
    pub type FetchInput;
    /// An event handler.
    #[wasm_bindgen(typescript_type = "(event: OncelyEvent) => void")]
    pub type Handler;
    /// The pending intents.
    #[wasm_bindgen(typescript_type = "PendingIntent[]")]
    pub type PendingIntents;
    /// What `on` returns.
    #[wasm_bindgen(typescript_type = "() => void")]
    pub type Unsubscribe;
}

/// Makes requests happen once, in the browser: each intent is recorded in
/// IndexedDB before it is sent, sent with one `Idempotency-Key` however
/// often it is retried, reloaded or raced by another tab, and its outcome
/// replayed afterwards.
#[wasm_bindgen]
pub struct Oncely {
    client: Client,
    listeners: Rc<Listeners>,
    namespace: String,
    store: &'static str,
    web_locks: bool,
    persisted: Option<Promise>,
}

#[wasm_bindgen]
impl Oncely {
    /// Opens the client of `options.namespace`. Rejects with an
    /// `OncelyError` (`code` "storage") when IndexedDB cannot be used, or
    /// "invalid" for bad options.
    pub async fn open(options: Option<OpenOptions>) -> Result<Oncely, JsValue> {
        let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
        let namespace =
            string_option(&options, "namespace")?.unwrap_or_else(|| "default".to_owned());
        let durability = match string_option(&options, "durability")?.as_deref() {
            None | Some("strict") => Durability::Strict,
            Some("relaxed") => Durability::Relaxed,
            Some(_) => return Err(invalid("durability must be \"strict\" or \"relaxed\"")),
        };
        let include_credentials = match string_option(&options, "credentials")?.as_deref() {
            None | Some("same-origin") => false,
            Some("include") => true,
            Some(_) => {
                return Err(invalid(
                    "credentials must be \"same-origin\" or \"include\"",
                ));
            }
        };
        let listeners = Rc::new(Listeners::default());
        let events = Rc::clone(&listeners);
        let transport =
            oncely::transport::HttpTransport::default().include_credentials(include_credentials);
        let mut builder = Client::builder()
            .transport(transport)
            .retry(retry_policy(&options)?)
            .on_event(move |event| events.dispatch(event));
        let store_option = string_option(&options, "store")?;
        let (store, web_locks, persisted) = match store_option.as_deref() {
            Some("memory") => {
                builder = builder.store(MemoryStore::new());
                ("memory", false, None)
            }
            None | Some("indexeddb") => {
                let store = oncely::IndexedDbStore::open(&namespace, durability)
                    .await
                    .map_err(|e| to_js(&e))?;
                let web_locks = store.has_web_locks();
                builder = builder.store(store);
                ("indexeddb", web_locks, request_persistence())
            }
            Some(_) => return Err(invalid("store must be \"indexeddb\" or \"memory\"")),
        };
        let client = builder.build().map_err(|e| to_js(&e))?;
        Ok(Oncely {
            client,
            listeners,
            namespace,
            store,
            web_locks,
            persisted,
        })
    }

    /// Sends `request` once: records it, sends it with its intent's key,
    /// retries under that key, and resolves with the definitive outcome (or
    /// the stored one, `replayed`). The same intent with the same request
    /// joins the flight in progress; with a different one it rejects with
    /// code "conflict" and sends nothing.
    pub async fn send(&self, request: SendRequest) -> Result<Outcome, JsValue> {
        let parts = request::from_send(&request)?;
        self.run(parts).await.map(Outcome::new)
    }

    /// `fetch`, made to happen once: `init.intent` names the intent;
    /// resolves with a standard `Response` of the definitive outcome.
    pub async fn fetch(
        &self,
        input: FetchInput,
        init: FetchInit,
    ) -> Result<web_sys::Response, JsValue> {
        let parts = request::from_fetch(&input, &init).await?;
        let outcome = self.run(parts).await?;
        response(&outcome)
    }

    /// Settles every intent an earlier page (or a failed attempt) left
    /// unsettled, under its original key. Resolves with the outcome of each
    /// it settled; the others emit "failed" events.
    pub async fn resume(&self) -> Result<Vec<Outcome>, JsValue> {
        let results = self.client.resume().await.map_err(|e| to_js(&e))?;
        Ok(results.into_iter().flatten().map(Outcome::new).collect())
    }

    /// The intents whose outcome is not yet known, oldest first.
    pub async fn pending(&self) -> Result<PendingIntents, JsValue> {
        let records = self.client.pending().await.map_err(|e| to_js(&e))?;
        let list = js_sys::Array::new();
        for record in records {
            let item = js_sys::Object::new();
            set(&item, "intent", &record.name.as_str().into());
            set(&item, "key", &record.key.as_str().into());
            set(&item, "attempts", &record.attempts.into());
            set(&item, "createdAt", &(record.created_at as f64).into());
            set(&item, "state", &record.state.as_str().into());
            list.push(&item);
        }
        Ok(list.unchecked_into())
    }

    /// Removes the intent `intent`: the next call with that name is a new
    /// intent with a new key. Resolves `true` when there was one.
    pub async fn forget(&self, intent: String) -> Result<bool, JsValue> {
        self.client.forget(&intent).await.map_err(|e| to_js(&e))
    }

    /// Calls `handler` with every event of `type` ("created", "attempt",
    /// "retry", "joined", "replayed", "conflict", "settled", "failed",
    /// "offline", or "*" for all); returns a function that unsubscribes it.
    pub fn on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "OncelyEventType | \"*\"")] r#type: String,
        handler: Handler,
    ) -> Result<Unsubscribe, JsValue> {
        let handler: js_sys::Function = handler
            .dyn_into()
            .map_err(|_| invalid("on(): the handler must be a function"))?;
        self.listeners
            .add(&r#type, handler)
            .map(JsCast::unchecked_into)
    }

    /// The namespace this client was opened with.
    #[wasm_bindgen(getter)]
    pub fn namespace(&self) -> String {
        self.namespace.clone()
    }

    /// "indexeddb" or "memory".
    #[wasm_bindgen(getter)]
    pub fn store(&self) -> String {
        self.store.to_owned()
    }

    /// Whether tabs take turns on an intent through Web Locks (`false`
    /// where `navigator.locks` is missing: then each tab may send, under the
    /// same key, and the server replays).
    #[wasm_bindgen(getter, js_name = webLocks)]
    pub fn web_locks(&self) -> bool {
        self.web_locks
    }

    /// Whether the browser granted persistent storage
    /// (`navigator.storage.persist()`, asked at open): without it, a browser
    /// may evict the intents under storage pressure (Safari after 7 days
    /// without a visit). `false` where it cannot be asked (workers, Node,
    /// the memory store).
    pub async fn persisted(&self) -> bool {
        match &self.persisted {
            Some(promise) => JsFuture::from(promise.clone())
                .await
                .is_ok_and(|granted| granted == JsValue::TRUE),
            None => false,
        }
    }
}

impl Oncely {
    /// The call, boxed: `send` and `fetch` share one copy of the flight's
    /// code instead of each inlining it (a browser downloads every copy).
    fn run(&self, parts: Parts) -> Pin<Box<dyn Future<Output = Result<oncely::Outcome, JsValue>>>> {
        let mut call = self
            .client
            .intent(parts.intent)
            .method(&parts.method, parts.url);
        for (name, value) in parts.headers {
            call = call.header(name, value);
        }
        let sent = call.body(parts.body).send();
        Box::pin(async move { sent.await.map_err(|e| to_js(&e)) })
    }
}

/// `options[name]` as a string, if present.
fn string_option(options: &JsValue, name: &str) -> Result<Option<String>, JsValue> {
    match property(options, name) {
        None => Ok(None),
        Some(value) => value.as_string().map(Some).ok_or_else(|| {
            let mut message = String::from(name);
            message.push_str(" must be a string");
            invalid(&message)
        }),
    }
}

/// `options.retry` over the defaults.
fn retry_policy(options: &JsValue) -> Result<RetryPolicy, JsValue> {
    let mut policy = RetryPolicy::default();
    let Some(retry) = property(options, "retry") else {
        return Ok(policy);
    };
    let number = |name: &str| -> Result<Option<f64>, JsValue> {
        match property(&retry, name) {
            None => Ok(None),
            Some(value) => match value.as_f64() {
                Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
                _ => {
                    let mut message = String::from("retry.");
                    message.push_str(name);
                    message.push_str(" must be a non-negative number");
                    Err(invalid(&message))
                }
            },
        }
    };
    if let Some(n) = number("maxAttempts")? {
        if n < 1.0 {
            return Err(invalid("retry.maxAttempts must be at least 1"));
        }
        policy.max_attempts = n.min(f64::from(u32::MAX)) as u32;
    }
    let ms = |n: f64| Duration::from_millis(n.min(1e15) as u64);
    if let Some(n) = number("baseDelayMs")? {
        policy.base_delay = ms(n);
    }
    if let Some(n) = number("maxDelayMs")? {
        policy.max_delay = ms(n);
    }
    if let Some(n) = number("deadlineMs")? {
        policy.deadline = ms(n);
    }
    Ok(policy)
}

/// Asks for persistent storage where a page may (`navigator.storage.persist`
/// exists in windows, not in workers); the answer arrives later.
fn request_persistence() -> Option<Promise> {
    let navigator = global_property("navigator")?;
    let storage = property(&navigator, "storage")?;
    let persist: js_sys::Function = property(&storage, "persist")?.dyn_into().ok()?;
    persist.call0(&storage).ok()?.dyn_into().ok()
}

/// The outcome as a standard `Response`.
fn response(core: &oncely::Outcome) -> Result<web_sys::Response, JsValue> {
    let init = web_sys::ResponseInit::new();
    init.set_status(core.status());
    init.set_headers(&outcome::headers(core.headers()));
    // Null-body statuses must have no body at all.
    let body = if matches!(core.status(), 101 | 103 | 204 | 205 | 304) {
        None
    } else {
        Some(js_sys::Uint8Array::from(&core.body()[..]))
    };
    web_sys::Response::new_with_opt_buffer_source_and_init(body.as_ref().map(AsRef::as_ref), &init)
        .map_err(|_| invalid("the outcome cannot be expressed as a Response"))
}
