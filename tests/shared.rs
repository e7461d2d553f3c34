//! The client's semantics and the store contract: one test body, two
//! harnesses. Natively under tokio, on `MemoryStore` and `FileStore`; in
//! headless Chromium under wasm-bindgen-test (`make test` runs both), on
//! `MemoryStore` and `IndexedDbStore`.
//!
//! The network here is a scripted transport that counts what it is asked
//! to send: these tests pin down what the core does, on every target. What
//! the real network and the real server do is tested against the reference
//! server (natively in the other test files, in the browser in pkg-tests/).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use oncely::runtime::{BoxFuture, Clock, SystemClock};
use oncely::transport::{Outgoing, Transport, TransportError, TransportErrorKind};
use oncely::{Client, ErrorKind, MemoryStore, Record, Response, RetryPolicy, Store};

mod contract;
use contract::store_contract;

#[cfg(not(target_arch = "wasm32"))]
use tokio::test as async_test;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as async_test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// A durable store that a "reload" (a new process, a new page) can open again.
#[cfg(not(target_arch = "wasm32"))]
struct Durable {
    dir: tempfile::TempDir,
}

#[cfg(not(target_arch = "wasm32"))]
impl Durable {
    fn new() -> Durable {
        Durable {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn open(&self) -> oncely::FileStore {
        oncely::FileStore::open(self.dir.path().join("intents.db")).unwrap()
    }

    /// Damages the record of intent `name` as a faulty disk or a foreign
    /// writer would: its state no longer reads.
    async fn damage(&self, name: &str) {
        rusqlite::Connection::open(self.dir.path().join("intents.db"))
            .unwrap()
            .execute(
                "UPDATE intents SET state = 'pendng' WHERE name = ?1",
                [name],
            )
            .unwrap();
    }
}

#[cfg(target_arch = "wasm32")]
struct Durable {
    namespace: String,
}

#[cfg(target_arch = "wasm32")]
impl Durable {
    fn new() -> Durable {
        // A fresh database per test, as rexie does.
        Durable {
            namespace: format!(
                "test-{}",
                oncely::Key::mint(SystemClock.now_ms(), &oncely::runtime::OsRandom)
            ),
        }
    }

    async fn open(&self) -> oncely::IndexedDbStore {
        oncely::IndexedDbStore::open(&self.namespace, oncely::Durability::Strict)
            .await
            .unwrap()
    }

    /// Damages the record of intent `name` as a faulty disk or a foreign
    /// writer would: bytes oncely never wrote.
    async fn damage(&self, name: &str) {
        in_page(&format!(
            "new Promise((done, fail) => {{ const open = indexedDB.open('oncely:{}'); open.onsuccess = () => {{ \
             const tx = open.result.transaction('intents', 'readwrite'); \
             tx.objectStore('intents').put(new Uint8Array([7, 7, 7]), '{name}'); \
             tx.oncomplete = () => done(open.result.close()); tx.onerror = () => fail(tx.error); }}; }})",
            self.namespace
        ))
        .await;
    }
}

/// Answers from a script (201 once the script runs out), after `delay`,
/// counting every attempt and keeping the keys it was sent with. Clones
/// share the count: two "tabs" can share one network.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Result<u16, TransportErrorKind>>>>,
    sent: Arc<AtomicUsize>,
    keys: Arc<Mutex<Vec<String>>>,
    delay: Duration,
}

impl Script {
    fn delayed(delay: Duration) -> Script {
        Script {
            delay,
            ..Script::default()
        }
    }

    fn then(self, answer: Result<u16, TransportErrorKind>) -> Script {
        self.answers.lock().unwrap().push_back(answer);
        self
    }

    fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

impl Transport for Script {
    fn send<'a>(
        &'a self,
        outgoing: Outgoing<'a>,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<Response, TransportError>> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.keys
            .lock()
            .unwrap()
            .push(outgoing.idempotency_key.to_owned());
        let answer = self.answers.lock().unwrap().pop_front().unwrap_or(Ok(201));
        let delay = self.delay;
        Box::pin(async move {
            if !delay.is_zero() {
                SystemClock.sleep(delay).await;
            }
            match answer {
                Ok(status) => Ok(Response {
                    status,
                    headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                    body: Bytes::from_static(br#"{"id":1}"#),
                }),
                Err(kind) => Err(TransportError::new(kind, "scripted failure")),
            }
        })
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        deadline: Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

fn client(store: impl Store, script: &Script) -> Client {
    Client::builder()
        .store(store)
        .transport(script.clone())
        .retry(policy())
        .build()
        .unwrap()
}

const URL: &str = "http://127.0.0.1:9/api/charges";

async fn pay(client: &Client, intent: &str, amount: u32) -> Result<oncely::Outcome, oncely::Error> {
    client
        .intent(intent)
        .post(URL)
        .header("content-type", "application/json")
        .body(format!(r#"{{"amount":{amount},"currency":"eur"}}"#))
        .send()
        .await
}

#[async_test]
async fn the_memory_store_keeps_the_contract() {
    store_contract(MemoryStore::new()).await;
}

#[async_test]
async fn the_durable_store_keeps_the_contract() {
    store_contract(Durable::new().open().await).await;
}

#[async_test]
async fn concurrent_duplicates_join_one_flight() {
    let durable = Durable::new();
    let script = Script::delayed(Duration::from_millis(20));
    let client = client(durable.open().await, &script);
    let calls = (0..50).map(|_| pay(&client, "order-42", 4200));
    let outcomes = futures_util::future::join_all(calls).await;
    assert_eq!(script.sent(), 1);
    let key = outcomes[0].as_ref().unwrap().key().clone();
    for outcome in outcomes {
        let outcome = outcome.unwrap();
        assert_eq!(outcome.status(), 201);
        assert_eq!(*outcome.key(), key);
    }
    assert_eq!(script.keys(), [key.header_value()]);
}

#[async_test]
async fn a_call_with_its_own_key_joins_only_a_flight_under_that_key() {
    let script = Script::delayed(Duration::from_millis(20));
    let client = client(MemoryStore::new(), &script);
    let own = |intent: &'static str, key: &'static str| {
        client
            .intent(intent)
            .post(URL)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(r#"{"amount":4200,"currency":"eur"}"#)
            .send()
    };
    // The flight mints its key; a duplicate bringing another key is refused
    // once the flight has answered, instead of getting an outcome under a
    // key that is not its own.
    let (flown, other) =
        futures_util::join!(pay(&client, "order-42", 4200), own("order-42", "k-2"));
    let flown = flown.unwrap();
    let error = other.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert_eq!(error.key(), Some(flown.key()));
    // A duplicate bringing the flight's own key joins it.
    let (first, same) = futures_util::join!(own("order-7", "k-7"), own("order-7", "k-7"));
    assert_eq!(first.unwrap().key().as_str(), "k-7");
    assert_eq!(same.unwrap().key().as_str(), "k-7");
    assert_eq!(script.sent(), 2, "one request per flight");
}

#[async_test]
async fn a_changed_request_is_a_conflict_and_nothing_is_sent() {
    let script = Script::default();
    let client = client(Durable::new().open().await, &script);
    pay(&client, "order-7", 100).await.unwrap();
    let error = pay(&client, "order-7", 999).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert_eq!(error.intent(), Some("order-7"));
    assert_eq!(script.sent(), 1);
}

#[async_test]
async fn a_settled_intent_replays_until_forgotten() {
    let script = Script::default();
    let client = client(Durable::new().open().await, &script);
    let first = pay(&client, "order-8", 100).await.unwrap();
    assert!(!first.replayed());
    let again = pay(&client, "order-8", 100).await.unwrap();
    assert!(again.replayed());
    assert_eq!(again.key(), first.key());
    assert_eq!(again.body(), first.body());
    assert_eq!(script.sent(), 1);

    assert!(client.forget("order-8").await.unwrap());
    let anew = pay(&client, "order-8", 100).await.unwrap();
    assert!(!anew.replayed());
    assert_ne!(anew.key(), first.key());
    assert_eq!(script.sent(), 2);
}

#[async_test]
async fn a_retried_intent_keeps_its_key_and_settles() {
    let script = Script::default()
        .then(Err(TransportErrorKind::Interrupted))
        .then(Ok(503));
    let client = client(Durable::new().open().await, &script);
    let outcome = pay(&client, "order-9", 100).await.unwrap();
    assert_eq!(outcome.status(), 201);
    assert_eq!(outcome.attempts(), 3);
    let keys = script.keys();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| *k == outcome.key().header_value()));
}

#[async_test]
async fn after_a_reload_the_unsettled_intent_resumes_under_its_key() {
    let durable = Durable::new();
    let failing = Script::default()
        .then(Err(TransportErrorKind::Interrupted))
        .then(Err(TransportErrorKind::Interrupted))
        .then(Err(TransportErrorKind::Interrupted));
    let before = client(durable.open().await, &failing);
    let error = pay(&before, "order-10", 100).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp);
    let key = error.key().unwrap().clone();
    drop(before);

    // A new page (or process) on the same database.
    let script = Script::default();
    let after = client(durable.open().await, &script);
    let pending = after.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].as_ref().unwrap().key, key);
    let resumed = after.resume().await.unwrap();
    assert_eq!(resumed.len(), 1);
    let outcome = resumed.into_iter().next().unwrap().unwrap();
    assert_eq!(*outcome.key(), key);
    assert_eq!(outcome.attempts(), 4, "attempts count across reloads");
    assert_eq!(script.keys(), [key.header_value()]);
    assert!(after.pending().await.unwrap().is_empty());
}

/// A damaged record (a faulty disk, a foreign writer) is reported by
/// `pending` and `resume` in its place, first, as a store error naming its
/// intent; it blocks no other intent, and `forget` removes it.
#[async_test]
async fn a_damaged_record_is_reported_and_blocks_no_other_intent() {
    let durable = Durable::new();
    let failing = Script::default()
        .then(Err(TransportErrorKind::Interrupted))
        .then(Err(TransportErrorKind::Interrupted))
        .then(Err(TransportErrorKind::Interrupted));
    let before = client(durable.open().await, &failing);
    pay(&before, "order-11", 100).await.unwrap_err();
    pay(&before, "order-12", 100).await.unwrap();
    drop(before);
    durable.damage("order-12").await;

    let script = Script::default();
    let after = client(durable.open().await, &script);
    let describe = |entry: &Result<Record, oncely::Error>| match entry {
        Ok(record) => format!("{} {}", record.name, record.state.as_str()),
        Err(error) => format!("{:?} {}", error.kind(), error.intent().unwrap_or("?")),
    };
    let pending = after.pending().await.unwrap();
    let pending: Vec<String> = pending.iter().map(describe).collect();
    assert_eq!(pending, ["Store order-12", "order-11 failed"]);
    let resumed = after.resume().await.unwrap();
    assert_eq!(resumed.len(), 2);
    let error = resumed[0].as_ref().unwrap_err();
    assert_eq!(
        (error.kind(), error.intent()),
        (ErrorKind::Store, Some("order-12"))
    );
    assert!(error.to_string().contains("order-12"), "{error}");
    assert_eq!(resumed[1].as_ref().unwrap().status(), 201);
    assert_eq!(script.sent(), 1, "the other intent only");
    // Kept by prune, removed by forget.
    after.prune().await.unwrap();
    assert!(after.forget("order-12").await.unwrap());
    assert!(after.pending().await.unwrap().is_empty());
}

/// Two tabs (two clients, two connections to one database) racing one
/// intent: the Web Lock lets one send; the other replays its outcome.
#[cfg(target_arch = "wasm32")]
#[async_test]
async fn two_tabs_racing_one_intent_send_once() {
    let durable = Durable::new();
    let network = Script::delayed(Duration::from_millis(50));
    let first = client(durable.open().await, &network);
    let second = client(durable.open().await, &network);
    let (a, b) = futures_util::future::join(
        pay(&first, "cart-7f3", 4200),
        pay(&second, "cart-7f3", 4200),
    )
    .await;
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(network.sent(), 1);
    assert_eq!(a.key(), b.key());
    assert_eq!(u8::from(a.replayed()) + u8::from(b.replayed()), 1);
}

/// Forgetting an intent another tab is flying waits for that flight to
/// land (the intent's lock, where contexts share the store): the removal
/// comes after the outcome, never under a flight that then writes it back.
#[async_test]
async fn forget_waits_for_another_tabs_flight_to_land() {
    let durable = Durable::new();
    let network = Script::delayed(Duration::from_millis(80));
    let first = client(durable.open().await, &network);
    let second = client(durable.open().await, &network);
    let order = Arc::new(Mutex::new(Vec::new()));
    let flying = async {
        pay(&first, "order-f", 100).await.unwrap();
        order.lock().unwrap().push("landed");
    };
    let forgetting = async {
        // Once the flight has started (the record exists).
        while second.record("order-f").await.unwrap().is_none() {
            SystemClock.sleep(Duration::from_millis(5)).await;
        }
        assert!(second.forget("order-f").await.unwrap());
        order.lock().unwrap().push("forgot");
    };
    futures_util::join!(flying, forgetting);
    // Where there is no lock (processes sharing a file), the removal may
    // come first: only the browser's stores hold intents for a tab.
    if cfg!(target_arch = "wasm32") {
        assert_eq!(*order.lock().unwrap(), ["landed", "forgot"]);
    }
    assert!(second.record("order-f").await.unwrap().is_none());
}

/// Runs `script` in the page and waits for the promise it gives.
#[cfg(target_arch = "wasm32")]
async fn in_page(script: &str) {
    let promise = js_sys::eval(script).expect("the script runs");
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&promise))
        .await
        .expect("the script's promise resolves");
}

/// Every wait is bounded: another context (a tab, a worker) holding an
/// intent's Web Lock past the deadline gets `GaveUp`, with nothing sent,
/// from a call and from `forget` alike.
#[cfg(target_arch = "wasm32")]
#[async_test]
async fn another_contexts_lock_held_past_the_deadline_ends_the_wait() {
    let durable = Durable::new();
    let network = Script::default();
    let client = Client::builder()
        .store(durable.open().await)
        .transport(network.clone())
        .retry(RetryPolicy {
            deadline: Duration::from_millis(200),
            ..policy()
        })
        .build()
        .unwrap();
    // Held, and never let go (resolves once granted).
    let name = format!("oncely:{}/order-l", durable.namespace);
    in_page(&format!(
        "new Promise((granted) => navigator.locks.request('{name}', () => (granted(), new Promise(() => {{}}))))"
    ))
    .await;
    let error = pay(&client, "order-l", 100).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp, "{error}");
    assert_eq!(
        client.forget("order-l").await.unwrap_err().kind(),
        ErrorKind::GaveUp
    );
    assert_eq!(network.sent(), 0);
}

/// A database another tab upgrades (a newer oncely) closes under the store:
/// every later operation says so plainly, never a bare InvalidStateError.
#[cfg(target_arch = "wasm32")]
#[async_test]
async fn a_database_upgraded_by_another_tab_is_a_plain_store_error() {
    let durable = Durable::new();
    let network = Script::default();
    let client = client(durable.open().await, &network);
    pay(&client, "order-u", 100).await.unwrap();
    let name = format!("oncely:{}", durable.namespace);
    in_page(&format!(
        "new Promise((done) => {{ const open = indexedDB.open('{name}', 2); open.onsuccess = () => done(open.result.close()); }})"
    ))
    .await;
    let error = client.records().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(error.to_string().contains("another tab"), "{error}");
}
