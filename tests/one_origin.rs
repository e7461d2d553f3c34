//! Both browser executors on one origin: the Rust `Client` compiled to
//! wasm32 (`IndexedDbStore`, its fetch transport) and the npm package
//! (`pkg/`, loaded into the same page from /pkg/index.js, which the test
//! runner serves from the crate's directory: `make pkg` first), sharing one
//! IndexedDB database, one set of Web Locks and one record layout
//! (src/store/BROWSER.md). What one records, the other resumes or replays,
//! under the same key.
//!
//! Both send with the page's real `fetch`, which this page scripts: each
//! request to /api/ is recorded (the wire) and answered as the test says.
#![cfg(target_arch = "wasm32")]

use oncely::runtime::{global_property, property};
use oncely::{Client, Durability, IndexedDbStore, Key, Outcome, RetryPolicy};
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
let network;
// Scripts the page's network: every fetch of /api/... is recorded and
// answered, after `delayMs`, with the next of `answers` ({status, body} or
// {lost: true}), then 201 "ch_1". Other fetches (the package's WebAssembly)
// go out as they are.
export function scriptNetwork(answers, delayMs) {
  const real = (globalThis.realFetch ??= globalThis.fetch);
  network = { answers: JSON.parse(answers), wire: [] };
  globalThis.fetch = async (input, init) => {
    const request = new Request(input, init);
    if (!new URL(request.url).pathname.startsWith('/api/')) return real(input, init);
    const body = await request.text();
    network.wire.push({ method: request.method, url: request.url, key: request.headers.get('idempotency-key'), body });
    const answer = network.answers.shift() ?? { status: 201, body: 'ch_1' };
    await new Promise((wake) => setTimeout(wake, delayMs));
    if (answer.lost) throw new TypeError('the connection broke before the answer came back');
    return new Response(answer.body, { status: answer.status, headers: { 'content-type': 'text/plain' } });
  };
}
export const wire = () => JSON.stringify(network.wire);

// The npm package's clients, by namespace.
const clients = new Map();
export async function packageOpen(namespace, maxAttempts) {
  let oncely;
  try {
    oncely = await import('/pkg/index.js');
  } catch (error) {
    throw new Error(`the npm package did not load from /pkg/index.js (build it with \`make pkg\`): ${error}`);
  }
  clients.set(namespace, await oncely.Oncely.open({ namespace, retry: { maxAttempts } }));
}
const settled = (promise) =>
  promise.then(
    (o) => JSON.stringify({ status: o.status, key: o.key, replayed: o.replayed, attempts: o.attempts }),
    (e) => JSON.stringify({ error: e.code ?? String(e), key: e.key }),
  );
export function packageSend(namespace, intent, url) {
  const request = { intent, url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'amount=4200' };
  return settled(clients.get(namespace).send(request));
}
export async function packagePending(namespace) {
  return JSON.stringify((await clients.get(namespace).pending()).map(({ intent, key }) => ({ intent, key })));
}

// The database's values as DevTools shows them (`record`: whether it holds
// the bytes); with `bare`, the value of that intent rewritten to its bytes
// alone (as the first versions stored it).
export function storedValues(namespace, bare) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(`oncely:${namespace}`, 1);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction('intents', 'readwrite');
      const store = tx.objectStore('intents');
      const all = store.getAll();
      all.onsuccess = () => {
        const value = all.result.find((value) => value.intent === bare);
        if (value) store.put(value.record, bare);
      };
      tx.oncomplete = () => {
        db.close();
        resolve(JSON.stringify(all.result.map(({ record, ...shown }) => ({ ...shown, record: record instanceof Uint8Array }))));
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = scriptNetwork)]
    fn script_network(answers: &str, delay_ms: u32);
    fn wire() -> String;
    #[wasm_bindgen(catch, js_name = packageOpen)]
    async fn package_open(namespace: &str, max_attempts: u32) -> Result<(), JsValue>;
    #[wasm_bindgen(js_name = packageSend)]
    async fn package_send(namespace: &str, intent: &str, url: &str) -> JsValue;
    #[wasm_bindgen(js_name = packagePending)]
    async fn package_pending(namespace: &str) -> JsValue;
    #[wasm_bindgen(js_name = storedValues)]
    async fn stored_values(namespace: &str, bare: &str) -> JsValue;
}

/// Both executors on the database `oncely:<namespace>` of this origin.
struct OneOrigin {
    namespace: String,
    url: String,
}

impl OneOrigin {
    /// A fresh namespace; the package opened on it with `max_attempts`.
    async fn open(max_attempts: u32) -> OneOrigin {
        let namespace = format!("one-origin-{}", js_sys::Math::random());
        package_open(&namespace, max_attempts)
            .await
            .unwrap_or_else(|error| panic!("{}", oncely_describe(&error)));
        let origin = global_property("location")
            .and_then(|location| property(&location, "origin"))
            .and_then(|origin| origin.as_string())
            .expect("a page has an origin");
        OneOrigin {
            namespace,
            url: format!("{origin}/api/charges"),
        }
    }

    /// The Rust client, with its real transport (the page's `fetch`).
    async fn rust_client(&self, max_attempts: u32) -> Client {
        let store = IndexedDbStore::open(&self.namespace, Durability::Strict)
            .await
            .expect("the database opens");
        Client::builder()
            .store(store)
            .retry(RetryPolicy {
                max_attempts,
                ..RetryPolicy::default()
            })
            .build()
            .expect("a client")
    }

    async fn rust_pay(&self, client: &Client, intent: &str) -> Value {
        let result = client
            .intent(intent)
            .post(self.url.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("amount=4200")
            .send()
            .await;
        described(result)
    }

    async fn package_pay(&self, intent: &str) -> Value {
        parsed(package_send(&self.namespace, intent, &self.url).await)
    }

    async fn package_pending(&self) -> Value {
        parsed(package_pending(&self.namespace).await)
    }

    /// The stored values as DevTools shows them, after rewriting the value
    /// of the intent `bare` (if any) to the record's bytes alone.
    async fn stored_values(&self, bare: &str) -> Vec<Value> {
        serde_json::from_value(parsed(stored_values(&self.namespace, bare).await)).expect("a list")
    }
}

/// A result as both sides describe theirs (the package's are described by
/// the page script above).
fn described(result: Result<Outcome, oncely::Error>) -> Value {
    match result {
        Ok(outcome) => json!({
            "status": outcome.status(),
            "key": outcome.key().as_str(),
            "replayed": outcome.replayed(),
            "attempts": outcome.attempts(),
        }),
        Err(error) => json!({ "error": error.kind().code(), "key": error.key().map(Key::as_str) }),
    }
}

fn parsed(json: JsValue) -> Value {
    serde_json::from_str(&json.as_string().expect("the page answers JSON")).expect("JSON")
}

fn oncely_describe(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map_or_else(|| format!("{error:?}"), |e| String::from(e.message()))
}

/// The requests the page sent to /api/: (method, URL, key, body).
fn sent() -> Vec<(String, String, String, String)> {
    let wire: Vec<Value> = serde_json::from_str(&wire()).expect("JSON");
    wire.iter()
        .map(|sent| {
            let text = |field: &str| sent[field].as_str().unwrap_or_default().to_owned();
            (text("method"), text("url"), text("key"), text("body"))
        })
        .collect()
}

/// The key `result` names, as its `Idempotency-Key` header carries it.
fn quoted_key(result: &Value) -> String {
    format!("\"{}\"", result["key"].as_str().expect("a key"))
}

#[wasm_bindgen_test]
async fn a_payment_the_rust_client_settled_is_replayed_by_the_package_under_its_key() {
    script_network("[]", 0);
    let origin = OneOrigin::open(3).await;
    let rust = origin.rust_client(3).await;
    let paid = origin.rust_pay(&rust, "order-1").await;
    assert_eq!(
        (&paid["status"], &paid["replayed"]),
        (&json!(201), &json!(false)),
        "{paid}"
    );

    let replayed = origin.package_pay("order-1").await;
    assert_eq!(
        replayed,
        json!({ "status": 201, "key": paid["key"], "replayed": true, "attempts": 1 })
    );
    let key = quoted_key(&paid);
    assert_eq!(
        sent(),
        [(
            "POST".to_owned(),
            origin.url.clone(),
            key,
            "amount=4200".to_owned()
        )],
        "one request on the wire"
    );
}

#[wasm_bindgen_test]
async fn a_payment_the_package_left_unsettled_is_resumed_by_the_rust_client_under_its_key() {
    script_network(r#"[{ "lost": true }]"#, 0);
    let origin = OneOrigin::open(1).await;
    let lost = origin.package_pay("order-2").await;
    assert_eq!(lost["error"], "gave_up", "{lost}");

    let rust = origin.rust_client(3).await;
    let pending = rust.pending().await.expect("the records read");
    assert_eq!(pending.len(), 1);
    let record = pending[0].as_ref().expect("a readable record");
    assert_eq!(Some(record.key.as_str()), lost["key"].as_str());
    let resumed: Vec<Value> = rust
        .resume()
        .await
        .expect("the records read")
        .into_iter()
        .map(described)
        .collect();
    assert_eq!(
        resumed,
        [json!({ "status": 201, "key": lost["key"], "replayed": false, "attempts": 2 })]
    );
    // The Rust client's outcome, read by the package.
    assert_eq!(origin.package_pending().await, json!([]));
    let replayed = origin.package_pay("order-2").await;
    assert_eq!(
        replayed,
        json!({ "status": 201, "key": lost["key"], "replayed": true, "attempts": 2 })
    );
    let key = quoted_key(&lost);
    let request = (
        "POST".to_owned(),
        origin.url.clone(),
        key,
        "amount=4200".to_owned(),
    );
    assert_eq!(
        sent(),
        [request.clone(), request],
        "the lost attempt and the resumed one"
    );
}

#[wasm_bindgen_test]
async fn both_clients_racing_one_intent_send_it_once() {
    // The answer takes a while: both calls are made while it is out.
    script_network("[]", 100);
    let origin = OneOrigin::open(3).await;
    let rust = origin.rust_client(3).await;
    let (from_rust, from_package) = futures_util::join!(
        origin.rust_pay(&rust, "order-3"),
        origin.package_pay("order-3")
    );
    assert_eq!(from_rust["status"], 201, "{from_rust}");
    assert_eq!(from_package["status"], 201, "{from_package}");
    assert_eq!(from_rust["key"], from_package["key"]);
    let replays = [&from_rust, &from_package]
        .iter()
        .filter(|result| result["replayed"] == true)
        .count();
    assert_eq!(
        replays, 1,
        "one flew it, the other replayed: {from_rust} {from_package}"
    );
    assert_eq!(sent().len(), 1, "one request on the wire");
}

#[wasm_bindgen_test]
async fn both_write_the_record_readable_for_devtools_and_read_bytes_alone() {
    script_network(r#"[{ "status": 503 }, { "status": 503 }]"#, 0);
    let origin = OneOrigin::open(1).await;
    let rust = origin.rust_client(1).await;
    // One failed and one settled intent each.
    assert_eq!(
        origin.rust_pay(&rust, "rust-failed").await["error"],
        "gave_up"
    );
    assert_eq!(
        origin.package_pay("package-failed").await["error"],
        "gave_up"
    );
    let paid = origin.rust_pay(&rust, "rust-paid").await;
    let package_paid = origin.package_pay("package-paid").await;
    let values = origin.stored_values("").await;
    // Every field but the name, key and time is the same whoever wrote it.
    let shown = |value: &Value| {
        let mut value = value.clone();
        for field in ["intent", "key", "createdAt"] {
            value.as_object_mut().expect("an object").remove(field);
        }
        value
    };
    let [package_failed, package_paid_value, rust_failed, rust_paid] = &values[..] else {
        panic!("four values: {values:?}");
    };
    let url = origin.url.as_str();
    for (value, intent, key) in [
        (rust_paid, "rust-paid", &paid["key"]),
        (package_paid_value, "package-paid", &package_paid["key"]),
    ] {
        assert_eq!((&value["intent"], &value["key"]), (&json!(intent), key));
        assert_eq!(
            shown(value),
            json!({ "state": "settled", "attempts": 1, "status": 201, "method": "POST", "url": url, "record": true })
        );
    }
    for value in [rust_failed, package_failed] {
        assert_eq!(
            shown(value),
            json!({ "state": "failed", "attempts": 1, "status": 503, "method": "POST", "url": url, "record": true })
        );
    }
    let created = rust_paid["createdAt"].as_f64().expect("ms since the epoch");
    assert!(
        (js_sys::Date::now() - created).abs() < 60_000.0,
        "{created}"
    );

    // A value of bytes alone is read by both: each replays the other's.
    origin.stored_values("package-paid").await;
    origin.stored_values("rust-paid").await;
    let replayed = origin.rust_pay(&rust, "package-paid").await;
    assert_eq!(
        (&replayed["replayed"], &replayed["key"]),
        (&json!(true), &package_paid["key"])
    );
    let replayed = origin.package_pay("rust-paid").await;
    assert_eq!(
        (&replayed["replayed"], &replayed["key"]),
        (&json!(true), &paid["key"])
    );
    assert_eq!(sent().len(), 4, "nothing sent again");
}
