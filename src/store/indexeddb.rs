//! The durable store in the browser: IndexedDB, one database per namespace,
//! reached through the global scope (windows and workers alike).
//!
//! Each operation is one transaction whose requests are all placed before
//! control returns to the event loop: the only `.await`s inside a
//! transaction are on that transaction's own requests, whose results arrive
//! while it is still active. A record is stored as its bytes
//! ([`encoding`](super::encoding)), bodies byte for byte, under `record`,
//! beside the fields a person reads in DevTools (src/store/BROWSER.md).

use std::rc::Rc;

use futures_channel::oneshot;
use futures_util::future::{Either, select};
use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    IdbCursorWithValue, IdbDatabase, IdbFactory, IdbObjectStore, IdbOpenDbRequest, IdbRequest,
    IdbTransaction, IdbTransactionMode,
};

use super::encoding::{decode, encode};
use super::{Durability, IntentLock, Store, Update};
use crate::Error;
use crate::intent::Record;
use crate::runtime::{BoxFuture, describe, global_property, property};

/// The object store holding the records, by intent name.
const INTENTS: &str = "intents";
/// The database's schema version.
const SCHEMA: u32 = 1;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (the Web Locks API; web-sys marks it unstable).
    type LockManager;
    #[wasm_bindgen(method, catch)]
    fn request(
        this: &LockManager,
        name: &str,
        callback: &js_sys::Function,
    ) -> Result<Promise, JsValue>;

    /// `transaction.commit()`: commit once the requests placed are done,
    /// without a round trip to learn that none follow (web-sys marks it
    /// deprecated; browsers without it commit on their own, a little later).
    type Transaction;
    #[wasm_bindgen(method, catch, js_name = commit)]
    fn commit_now(this: &Transaction) -> Result<(), JsValue>;

    /// An `IDBDatabase`, for the one call web-sys marks unstable.
    type Connection;
    /// `db.transaction(store, "readwrite", { durability })`.
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &Connection,
        store: &str,
        mode: &str,
        options: &JsValue,
    ) -> Result<IdbTransaction, JsValue>;
}

/// Intents kept in the browser's IndexedDB, in the database
/// `oncely:<namespace>`: they survive reloads, closed tabs and restarts.
///
/// Tabs and workers of one origin share the database; a Web Lock per intent
/// (`navigator.locks`) keeps two of them from having one intent in flight at
/// once, so the second replays what the first settled. Where the Web Locks
/// API is missing (old browsers, insecure origins) each context may send
/// under the same key; the server's 409 and replay keep the effect single,
/// at the cost of a second request.
#[derive(Clone)]
pub struct IndexedDbStore {
    shared: Rc<Shared>,
}

struct Shared {
    db: IdbDatabase,
    namespace: String,
    durability: Durability,
    locks: Option<LockManager>,
    /// Closes this connection when another context upgrades the database.
    /// Set once another tab upgraded or deleted the database (this
    /// connection closed itself to let it).
    closed: Rc<std::cell::Cell<bool>>,
    _on_version_change: Closure<dyn FnMut()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.db.set_onversionchange(None);
        self.db.close();
    }
}

impl std::fmt::Debug for IndexedDbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexedDbStore")
            .field("namespace", &self.shared.namespace)
            .field("durability", &self.shared.durability)
            .finish_non_exhaustive()
    }
}

impl IndexedDbStore {
    /// Opens (creating it if needed) the store of `namespace`.
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when IndexedDB is
    /// unavailable (Node, some private modes), refused, held at a newer
    /// version by a newer oncely, or blocked by another tab holding an older
    /// version open: at once, never a hang.
    pub async fn open(namespace: &str, durability: Durability) -> Result<IndexedDbStore, Error> {
        let name = database_name(namespace);
        let request = factory()?
            .open_with_u32(&name, SCHEMA)
            .map_err(|e| storage("cannot open IndexedDB", &e))?;
        let upgrade = Closure::<dyn FnMut()>::new({
            let request = request.clone();
            move || {
                if let Ok(db) = request.result() {
                    let db: IdbDatabase = db.unchecked_into();
                    if !db.object_store_names().contains(INTENTS) {
                        let _ = db.create_object_store(INTENTS);
                    }
                }
            }
        });
        request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
        let outcome = settled(&request).await;
        request.set_onupgradeneeded(None);
        drop(upgrade);
        let db = match outcome {
            Ok(_) => request.result().map_err(|e| storage("cannot open IndexedDB", &e))?,
            Err(event) => return Err(open_failure(&request, &event)),
        };
        let db: IdbDatabase = db.unchecked_into();
        if !db.object_store_names().contains(INTENTS) {
            db.close();
            return Err(Error::store(format!(
                "the IndexedDB database \"{name}\" is not an oncely store (it has no \"{INTENTS}\" store)"
            )));
        }
        let closed = Rc::new(std::cell::Cell::new(false));
        let on_version_change = Closure::<dyn FnMut()>::new({
            let (db, closed) = (db.clone(), Rc::clone(&closed));
            move || {
                db.close();
                closed.set(true);
            }
        });
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        let locks = global_property("navigator")
            .and_then(|navigator| property(&navigator, "locks"))
            .map(JsCast::unchecked_into);
        Ok(IndexedDbStore {
            shared: Rc::new(Shared {
                db,
                namespace: namespace.to_owned(),
                durability,
                locks,
                closed,
                _on_version_change: on_version_change,
            }),
        })
    }

    /// Deletes the database of `namespace` and every record in it (after
    /// every store open on it is dropped).
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when IndexedDB refuses,
    /// or another context keeps the database open.
    pub async fn delete(namespace: &str) -> Result<(), Error> {
        let request = factory()?
            .delete_database(&database_name(namespace))
            .map_err(|e| storage("cannot delete the IndexedDB database", &e))?;
        match settled(&request).await {
            Ok(_) => Ok(()),
            Err(event) => Err(open_failure(&request, &event)),
        }
    }

    /// The namespace this store was opened with.
    pub fn namespace(&self) -> &str {
        &self.shared.namespace
    }

    /// Whether contexts sharing this database take turns on an intent
    /// through Web Locks (`false` where `navigator.locks` is missing).
    pub fn has_web_locks(&self) -> bool {
        self.shared.locks.is_some()
    }

    /// A transaction on the records, and its object store.
    fn transaction(
        &self,
        mode: IdbTransactionMode,
    ) -> Result<(IdbTransaction, IdbObjectStore), Error> {
        if self.shared.closed.get() {
            return Err(Error::store(
                "the IndexedDB database was closed for another tab (it upgraded or deleted it): open the store again",
            ));
        }
        let db = &self.shared.db;
        let transaction = if mode == IdbTransactionMode::Readwrite {
            let options = js_sys::Object::new();
            let durability = match self.shared.durability {
                Durability::Strict => "strict",
                Durability::Relaxed => "relaxed",
            };
            let _ = js_sys::Reflect::set(&options, &"durability".into(), &durability.into());
            db.unchecked_ref::<Connection>()
                .transaction_with_options(INTENTS, "readwrite", &options)
        } else {
            db.transaction_with_str_and_mode(INTENTS, mode)
        }
        .map_err(|e| storage("cannot start an IndexedDB transaction", &e))?;
        let store = transaction
            .object_store(INTENTS)
            .map_err(|e| storage("cannot start an IndexedDB transaction", &e))?;
        Ok((transaction, store))
    }
}

/// The global scope's IndexedDB (a window's or a worker's).
fn factory() -> Result<IdbFactory, Error> {
    global_property("indexedDB")
        .map(JsCast::unchecked_into)
        .ok_or_else(|| Error::store("IndexedDB is not available here (use the memory store)"))
}

/// How an open (or delete) request ends: success, or its error or `blocked`
/// event, at once (a blocked request would otherwise wait indefinitely).
fn settled(request: &IdbOpenDbRequest) -> JsFuture {
    JsFuture::from(Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
        request.set_onblocked(Some(&reject));
    }))
}

fn database_name(namespace: &str) -> String {
    let mut name = String::from("oncely:");
    name.push_str(namespace);
    name
}

fn storage(what: &str, error: &JsValue) -> Error {
    let mut message = String::from(what);
    message.push_str(": ");
    message.push_str(&describe(error));
    Error::store(message)
}

/// Why opening (or deleting) a database failed: its own error, or blocked.
fn open_failure(request: &IdbOpenDbRequest, event: &JsValue) -> Error {
    let kind = js_sys::Reflect::get(event, &"type".into())
        .ok()
        .and_then(|t| t.as_string());
    if kind.as_deref() == Some("blocked") {
        // If it opens later after all, nobody is there to use it: close it.
        let late = request.clone();
        let close = Closure::once_into_js(move || {
            if let Ok(db) = late.result() {
                db.unchecked_into::<IdbDatabase>().close();
            }
        });
        request.set_onsuccess(Some(close.unchecked_ref()));
        return Error::store(
            "the IndexedDB database is blocked: another tab holds it open at an older version; close that tab",
        );
    }
    match request.error() {
        Ok(Some(error)) => storage("IndexedDB refused", &error),
        _ => Error::store("IndexedDB refused without saying why"),
    }
}

/// The result of `request`: a future set up now, so it cannot miss the event.
fn completion(request: &IdbRequest) -> impl Future<Output = Result<JsValue, Error>> + use<> {
    let request = request.clone();
    let settled = JsFuture::from(Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    }));
    async move {
        match settled.await {
            Ok(_) => request
                .result()
                .map_err(|e| storage("an IndexedDB request failed", &e)),
            Err(_) => Err(match request.error() {
                Ok(Some(error)) => storage("an IndexedDB request failed", &error),
                _ => Error::store("an IndexedDB request failed"),
            }),
        }
    }
}

/// The commit of `transaction` (with `durability: "strict"`, on disk).
fn commit(transaction: &IdbTransaction) -> impl Future<Output = Result<(), Error>> + use<> {
    let transaction = transaction.clone();
    let done = JsFuture::from(Promise::new(&mut |resolve, reject| {
        transaction.set_oncomplete(Some(&resolve));
        transaction.set_onerror(Some(&reject));
        transaction.set_onabort(Some(&reject));
    }));
    async move {
        match done.await {
            Ok(_) => Ok(()),
            Err(_) => Err(match transaction.error() {
                Some(error) => storage("an IndexedDB transaction failed", &error),
                None => Error::store("an IndexedDB transaction was aborted"),
            }),
        }
    }
}

/// The value stored for `record`: what a person reads in DevTools (never
/// read back) and the record's bytes under `record`, as the npm package
/// writes it.
fn to_value(record: &Record) -> JsValue {
    let value = Object::new();
    let status = record.status().map_or(JsValue::NULL, JsValue::from);
    for (name, field) in [
        ("intent", JsValue::from(&record.name)),
        ("key", record.key.as_str().into()),
        ("state", record.state.as_str().into()),
        ("attempts", record.attempts.into()),
        // (Milliseconds since the epoch, exact in a JavaScript number.)
        ("createdAt", (record.created_at as f64).into()),
        ("status", status),
        ("method", JsValue::from(&record.request.method)),
        ("url", JsValue::from(&record.request.url)),
        ("record", Uint8Array::from(&encode(record)[..]).into()),
    ] {
        // Setting a property of a new plain object cannot fail.
        let _ = Reflect::set(&value, &JsValue::from_str(name), &field);
    }
    value.into()
}

/// The record in a stored value: its bytes under `record`, or the bytes
/// alone (as values were first written).
fn from_value(value: &JsValue) -> Result<Record, Error> {
    let bytes = match value.dyn_ref::<Uint8Array>() {
        Some(bytes) => Some(bytes.clone()),
        None => Reflect::get(value, &JsValue::from_str("record"))
            .ok()
            .and_then(|record| record.dyn_into::<Uint8Array>().ok()),
    };
    match bytes {
        Some(bytes) => decode(&bytes.to_vec()),
        None => Err(Error::store(
            "a stored record holds no bytes (the database was written by something else)",
        )),
    }
}

impl Store for IndexedDbStore {
    fn create_or_get(&self, record: Record) -> BoxFuture<'_, Result<(Record, bool), Error>> {
        Box::pin(async move {
            let (transaction, store) = self.transaction(IdbTransactionMode::Readwrite)?;
            let committed = commit(&transaction);
            let name = JsValue::from_str(&record.name);
            let request = store
                .get(&name)
                .map_err(|e| storage("cannot read IndexedDB", &e))?;
            let existing = completion(&request);
            // Placed at once behind the read, not after its answer: one round
            // trip less. Where the record exists the add fails and the
            // transaction aborts, having written nothing.
            store
                .add_with_key(&to_value(&record), &name)
                .map_err(|e| storage("cannot write IndexedDB", &e))?;
            let _ = transaction.unchecked_ref::<Transaction>().commit_now();
            let existing = existing.await?;
            if !existing.is_undefined() {
                return Ok((from_value(&existing)?, false));
            }
            committed.await?;
            Ok((record, true))
        })
    }

    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Record>, Error>> {
        Box::pin(async move {
            let (_transaction, store) = self.transaction(IdbTransactionMode::Readonly)?;
            let request = store
                .get(&JsValue::from_str(name))
                .map_err(|e| storage("cannot read IndexedDB", &e))?;
            let value = completion(&request).await?;
            if value.is_undefined() {
                return Ok(None);
            }
            from_value(&value).map(Some)
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Record>, Error>> {
        Box::pin(async move {
            let (_transaction, store) = self.transaction(IdbTransactionMode::Readonly)?;
            let request = store
                .get_all()
                .map_err(|e| storage("cannot read IndexedDB", &e))?;
            let values: js_sys::Array = completion(&request).await?.unchecked_into();
            let mut records = values
                .iter()
                .map(|value| from_value(&value))
                .collect::<Result<Vec<_>, _>>()?;
            super::oldest_first(&mut records);
            Ok(records)
        })
    }

    fn unsettled(&self) -> BoxFuture<'_, Result<Vec<Result<Record, Error>>, Error>> {
        Box::pin(async move {
            let (_transaction, store) = self.transaction(IdbTransactionMode::Readonly)?;
            let read = |request: Result<IdbRequest, JsValue>| {
                request
                    .map(|request| completion(&request))
                    .map_err(|e| storage("cannot read IndexedDB", &e))
            };
            // Both placed before either is awaited: one snapshot.
            let names = read(store.get_all_keys())?;
            let values = read(store.get_all())?;
            let names: js_sys::Array = names.await?.unchecked_into();
            let values: js_sys::Array = values.await?.unchecked_into();
            let mut records = Vec::new();
            let mut damaged = Vec::new();
            for (name, value) in names.iter().zip(values.iter()) {
                match from_value(&value) {
                    Ok(record) if record.is_unsettled() => records.push(record),
                    Ok(_) => {}
                    // Its state cannot be read: reported, never left out.
                    Err(error) => {
                        let name = name.as_string().unwrap_or_default();
                        damaged.push(Err(error.with_intent(&name, None)));
                    }
                }
            }
            super::oldest_first(&mut records);
            damaged.extend(records.into_iter().map(Ok));
            Ok(damaged)
        })
    }

    fn prune(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, Error>> {
        // Judged and removed in one transaction, walking a cursor (as the
        // npm package does): an intent forgotten and recorded anew meanwhile
        // is never taken for the old one, and a damaged record is kept
        // (`pending` names it).
        Box::pin(async move {
            let (transaction, store) = self.transaction(IdbTransactionMode::Readwrite)?;
            let committed = commit(&transaction);
            let request = store
                .open_cursor()
                .map_err(|e| storage("cannot read IndexedDB", &e))?;
            let pruned = Rc::new(core::cell::Cell::new(0usize));
            let walk = Closure::<dyn FnMut()>::new({
                let (request, pruned) = (request.clone(), Rc::clone(&pruned));
                move || {
                    let Some(cursor) = request
                        .result()
                        .ok()
                        .and_then(|c| c.dyn_into::<IdbCursorWithValue>().ok())
                    else {
                        return;
                    };
                    let prunable = cursor
                        .value()
                        .ok()
                        .and_then(|value| from_value(&value).ok())
                        .is_some_and(|record| record.is_prunable(now_ms));
                    if prunable && cursor.delete().is_ok() {
                        pruned.set(pruned.get() + 1);
                    }
                    let _ = cursor.continue_();
                }
            });
            request.set_onsuccess(Some(walk.as_ref().unchecked_ref()));
            committed.await?;
            Ok(pruned.get())
        })
    }

    fn update(&self, name: &str, update: Update) -> BoxFuture<'static, Result<(), Error>> {
        // The transaction and its first request are placed now, so every
        // later operation sees this write; the rest runs in a task of its
        // own, so it completes even if the returned future is dropped.
        let started = self
            .transaction(IdbTransactionMode::Readwrite)
            .and_then(|(transaction, store)| {
                let request = store
                    .get(&JsValue::from_str(name))
                    .map_err(|e| storage("cannot read IndexedDB", &e))?;
                Ok((commit(&transaction), store, completion(&request)))
            });
        let name = name.to_owned();
        let (sender, receiver) = oneshot::channel();
        wasm_bindgen_futures::spawn_local(async move {
            let result = async {
                let (committed, store, existing) = started?;
                let existing = existing.await?;
                if existing.is_undefined() {
                    return Err(Error::store(format!(
                        "no record named \"{name}\": it was forgotten"
                    )));
                }
                let mut record = from_value(&existing)?;
                record.apply(update);
                store
                    .put_with_key(&to_value(&record), &JsValue::from_str(&name))
                    .map_err(|e| storage("cannot write IndexedDB", &e))?;
                committed.await
            }
            .await;
            if let Err(Err(error)) = sender.send(result) {
                // Nobody is waiting to hear it: say it where developers look.
                web_sys::console::warn_1(&JsValue::from_str(&error.to_string()));
            }
        });
        Box::pin(async move {
            receiver
                .await
                .unwrap_or_else(|_| Err(Error::store("an IndexedDB write was abandoned")))
        })
    }

    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let (transaction, store) = self.transaction(IdbTransactionMode::Readwrite)?;
            let committed = commit(&transaction);
            let key = JsValue::from_str(name);
            let counted = store
                .count_with_key(&key)
                .map_err(|e| storage("cannot read IndexedDB", &e))?;
            store
                .delete(&key)
                .map_err(|e| storage("cannot write IndexedDB", &e))?;
            let count = completion(&counted).await?;
            committed.await?;
            Ok(count.as_f64().is_some_and(|n| n > 0.0))
        })
    }

    fn lock(&self, name: &str) -> Option<BoxFuture<'static, Result<IntentLock, Error>>> {
        let locks = self.shared.locks.as_ref()?;
        let mut lock_name = database_name(&self.shared.namespace);
        lock_name.push('/');
        lock_name.push_str(name);
        // Granted: hand over a function that ends the lock (it resolves the
        // promise the lock's callback returns). If nobody waits any more,
        // end it at once.
        let (sender, receiver) = oneshot::channel::<js_sys::Function>();
        let granted = Closure::once_into_js(move |_lock: JsValue| -> Promise {
            let mut release = None;
            let held = Promise::new(&mut |resolve, _reject| release = Some(resolve));
            if let Some(release) = release {
                if let Err(release) = sender.send(release) {
                    let _ = release.call0(&JsValue::UNDEFINED);
                }
            }
            held
        });
        let requested = locks.request(&lock_name, granted.unchecked_ref());
        Some(Box::pin(async move {
            let refused = match requested {
                Ok(request) => {
                    match select(receiver, JsFuture::from(request)).await {
                        Either::Left((Ok(release), _)) => {
                            return Ok(IntentLock::new(move || {
                                let _ = release.call0(&JsValue::UNDEFINED);
                            }));
                        }
                        Either::Left((Err(_), _)) => JsValue::from_str("the lock was dropped"),
                        Either::Right((Ok(_), _)) => JsValue::from_str("the lock ended early"),
                        Either::Right((Err(error), _)) => error,
                    }
                }
                Err(error) => error,
            };
            // A context that may not take Web Locks still has the server's
            // 409 and replay: go on without the lock, and say so.
            let mut message = String::from("oncely: no Web Lock for this intent; going on without: ");
            message.push_str(&describe(&refused));
            web_sys::console::warn_1(&JsValue::from_str(&message));
            Ok(IntentLock::new(|| {}))
        }))
    }
}
