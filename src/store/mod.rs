//! The store seam: where intents are recorded before the first byte leaves.
//!
//! [`MemoryStore`] serves tests and short-lived programs; natively
//! [`FileStore`] keeps intents in SQLite across crashes and processes; in the
//! browser an IndexedDB store takes its place.

pub mod encoding;

if_client! {
    mod memory;
    pub use memory::MemoryStore;
}

if_native! {
    mod columns;
    mod file;
    pub use file::{FileStore, FileStoreOptions};
}

#[cfg(all(feature = "postgres", not(target_arch = "wasm32")))]
pub mod postgres;
#[cfg(all(feature = "postgres", not(target_arch = "wasm32")))]
pub use postgres::{PostgresStore, PostgresStoreOptions};

if_browser! {
    mod indexeddb;
    pub use indexeddb::IndexedDbStore;
}

use crate::Error;
use crate::intent::{Failure, Record, Response, State};
use crate::prelude::*;
use crate::runtime::{BoxFuture, MaybeSend, MaybeSync};

/// Sorts records oldest first (by creation time, then name: names are
/// unique, so the order is total).
pub(crate) fn oldest_first(records: &mut [Record]) {
    let order = |a: &Record, b: &Record| (a.created_at, &a.name).cmp(&(b.created_at, &b.name));
    #[cfg(not(target_arch = "wasm32"))]
    records.sort_by(order);
    // In the browser, a heapsort: a few hundred bytes of WebAssembly where
    // the standard library's sorts weigh kilobytes; still O(n log n).
    #[cfg(target_arch = "wasm32")]
    heapsort(records, |a, b| order(a, b).is_lt());
}

#[cfg(any(target_arch = "wasm32", test))]
fn heapsort<T>(items: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let sift_down = |items: &mut [T], mut node: usize| {
        loop {
            let mut child = 2 * node + 1;
            if child >= items.len() {
                break;
            }
            if child + 1 < items.len() && less(&items[child], &items[child + 1]) {
                child += 1;
            }
            if !less(&items[node], &items[child]) {
                break;
            }
            items.swap(node, child);
            node = child;
        }
    };
    for node in (0..items.len() / 2).rev() {
        sift_down(items, node);
    }
    for end in (1..items.len()).rev() {
        items.swap(0, end);
        sift_down(&mut items[..end], 0);
    }
}

/// How hard a durable store works to keep a write through a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// A new intent's record reaches the disk before its first attempt is
    /// sent (SQLite `synchronous=FULL` for that commit; IndexedDB
    /// `durability: "strict"`). Attempt counts and outcomes may trail by a
    /// commit: losing one to a power cut only means a re-send under the same
    /// key, which the server replays. The default.
    #[default]
    Strict,
    /// Commits survive a crash of the program but may be lost with the
    /// machine's power (SQLite `synchronous=NORMAL` in WAL mode; IndexedDB
    /// `durability: "relaxed"`).
    Relaxed,
}

/// The changing part of a record, written as an intent progresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Attempts sent so far.
    pub attempts: u32,
    /// The new state.
    pub state: State,
    /// Why it failed, when [`State::Failed`].
    pub failure: Option<Failure>,
    /// The definitive response, when [`State::Settled`].
    pub response: Option<Response>,
}

impl Update {
    /// Whether this update may change a record in `current` state. A
    /// settled or expired record is final, except that a settled one
    /// expires: another client or process that flew the same intent (after
    /// a 409, say) must not turn a recorded outcome back into a pending or
    /// failed one, losing the response the server gave.
    pub fn applies_to(&self, current: State) -> bool {
        match current {
            State::Settled => self.state == State::Expired,
            State::Expired => false,
            State::Pending | State::Failed => true,
        }
    }
}

impl Record {
    /// Applies `update` to this record, unless the record is final (see
    /// [`Update::applies_to`]); `false` when it was left as it was.
    pub fn apply(&mut self, update: Update) -> bool {
        if !update.applies_to(self.state) {
            return false;
        }
        self.attempts = update.attempts;
        self.state = update.state;
        self.failure = update.failure;
        self.response = update.response;
        true
    }
}

/// Durable storage of intent records.
///
/// Implementations keep plain data only and must make
/// [`create_or_get`](Store::create_or_get) atomic: two callers (or two
/// processes sharing the store) creating one name end with the same record.
pub trait Store: MaybeSend + MaybeSync + 'static {
    /// Records `record` unless a record with its name exists; returns the
    /// stored record either way (so the first writer's key wins), and `true`
    /// when it was created now.
    fn create_or_get(&self, record: Record) -> BoxFuture<'_, Result<(Record, bool), Error>>;

    /// The record named `name`.
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Record>, Error>>;

    /// Every record, oldest first.
    fn list(&self) -> BoxFuture<'_, Result<Vec<Record>, Error>>;

    /// The records whose outcome is still unknown
    /// ([`Record::is_unsettled`]), oldest first: what `pending` and `resume`
    /// read. A record that cannot be read (damaged on disk, written by
    /// something else) whose state may be unsettled is an `Err` in its place,
    /// a [`Store`](crate::ErrorKind::Store) error naming its intent: it is
    /// reported, never silently left out, and never blocks the others. The
    /// outer error is a store that cannot be read at all.
    ///
    /// The default reads every record and keeps those; a store that can ask
    /// for them alone should, since settled records pile up for as long as
    /// they are kept.
    fn unsettled(&self) -> BoxFuture<'_, Result<Vec<Result<Record, Error>>, Error>> {
        let all = self.list();
        Box::pin(async move {
            let mut records = all.await?;
            records.retain(Record::is_unsettled);
            Ok(records.into_iter().map(Ok).collect())
        })
    }

    /// Up to `limit` records of `user`'s ([`Record::belongs_to`]) whose
    /// outcome is unknown, oldest first from past `after` (the creation
    /// time and name of the previous batch's last record, from
    /// [`Claimed::next`]): what `resume` flies, batch by batch. Where
    /// contexts share the store across machines (`PostgresStore`), an
    /// intent another context holds is left to it, and each record returned
    /// is leased to this context for a lease's time, so replicas resuming
    /// together each take their own.
    ///
    /// The default: every such record of [`unsettled`](Self::unsettled) at
    /// once (damaged ones first, whoever's), with no next batch.
    // (Not in the npm package's core, which has no store: every byte is
    // downloaded.)
    #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
    fn claim<'a>(
        &'a self,
        user: Option<&'a str>,
        after: Option<&'a (u64, String)>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Claimed, Error>> {
        let _ = (after, limit);
        let unsettled = self.unsettled();
        Box::pin(async move {
            Ok(Claimed {
                records: of_user(unsettled.await?, user),
                next: None,
            })
        })
    }

    /// Writes the changing part of the record named `name`.
    ///
    /// The write takes its place among the store's operations when `update`
    /// is *called*, not when its future is first polled, and it is carried
    /// out even if the future is dropped: every operation called afterwards
    /// (a read included) sees it. The future only reports how the write
    /// ended. The client relies on this to answer its callers without
    /// waiting for an outcome's write; a store should report a failure that
    /// nobody awaits itself (`FileStore` logs it through `tracing`).
    ///
    /// An update that does not [apply](Update::applies_to) to the stored
    /// record (it settled meanwhile) leaves it as it is, and is no error.
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when the record does not
    /// exist (it was forgotten meanwhile) or the write fails.
    fn update(&self, name: &str, update: Update) -> BoxFuture<'static, Result<(), Error>>;

    /// Removes the record named `name`; `true` when there was one.
    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>>;

    /// Removes every record [prunable](Record::is_prunable) at `now_ms`
    /// and returns how many. The default lists every record and removes
    /// those one by one, which is not atomic: an intent forgotten and
    /// recorded anew in between would be removed too. A store that can
    /// judge and remove in one transaction should (`FileStore` and
    /// `MemoryStore` do).
    fn prune(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, Error>> {
        let all = self.list();
        Box::pin(async move {
            let mut pruned = 0;
            for record in all.await? {
                if record.is_prunable(now_ms) && self.remove(&record.name).await? {
                    pruned += 1;
                }
            }
            Ok(pruned)
        })
    }

    /// For a store shared by contexts that cannot see each other's flights
    /// (browser tabs and workers, processes): a future that completes when
    /// this context holds the intent `name` alone (in the browser a Web
    /// Lock; in a `FileStore` a lease in the file). The client takes it
    /// before it reads or records the intent, so a second tab or process
    /// finds what the first settled and replays it instead of sending; it
    /// bounds the wait by the flight's deadline.
    ///
    /// `None`, the default, where there is no such lock (`MemoryStore`:
    /// one process, whose client already joins duplicate flights).
    fn lock(&self, name: &str) -> Option<BoxFuture<'static, Result<IntentLock, Error>>> {
        let _ = name;
        None
    }
}

/// A store chosen at run time (a command line's `--store`): every call
/// goes to the boxed one.
#[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
impl<S: Store + ?Sized> Store for Box<S> {
    fn create_or_get(&self, record: Record) -> BoxFuture<'_, Result<(Record, bool), Error>> {
        (**self).create_or_get(record)
    }

    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Record>, Error>> {
        (**self).get(name)
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Record>, Error>> {
        (**self).list()
    }

    fn unsettled(&self) -> BoxFuture<'_, Result<Vec<Result<Record, Error>>, Error>> {
        (**self).unsettled()
    }

    fn claim<'a>(
        &'a self,
        user: Option<&'a str>,
        after: Option<&'a (u64, String)>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Claimed, Error>> {
        (**self).claim(user, after, limit)
    }

    fn update(&self, name: &str, update: Update) -> BoxFuture<'static, Result<(), Error>> {
        (**self).update(name, update)
    }

    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        (**self).remove(name)
    }

    fn prune(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, Error>> {
        (**self).prune(now_ms)
    }

    fn lock(&self, name: &str) -> Option<BoxFuture<'static, Result<IntentLock, Error>>> {
        (**self).lock(name)
    }
}

/// The records of `user`'s, after the damaged ones (whose user cannot be
/// read: every user sees them), each group in its order.
#[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
pub(crate) fn of_user(
    records: Vec<Result<Record, Error>>,
    user: Option<&str>,
) -> Vec<Result<Record, Error>> {
    let (mut listed, rest): (Vec<_>, Vec<_>) = records.into_iter().partition(Result::is_err);
    listed.extend(
        rest.into_iter()
            .filter(|record| record.as_ref().is_ok_and(|r| r.belongs_to(user))),
    );
    listed
}

/// A batch of [`Store::claim`].
#[derive(Debug)]
pub struct Claimed {
    /// The records, oldest first; a damaged one is an `Err` naming its intent.
    pub records: Vec<Result<Record, Error>>,
    /// Where the next batch starts (the creation time and name of the last
    /// record); `None`: there is none.
    pub next: Option<(u64, String)>,
}

/// An intent held by this context alone (see [`Store::lock`]); released
/// when dropped.
#[must_use = "the lock is released when this is dropped"]
pub struct IntentLock {
    release: Option<Box<dyn Release>>,
}

/// What releases an [`IntentLock`]: any `FnOnce()` (`Send + Sync` natively).
pub trait Release: FnOnce() + MaybeSend + MaybeSync + 'static {}
impl<F: FnOnce() + MaybeSend + MaybeSync + 'static> Release for F {}

impl IntentLock {
    /// A lock that calls `release` when dropped.
    pub fn new(release: impl Release) -> IntentLock {
        IntentLock {
            release: Some(Box::new(release)),
        }
    }
}

impl Drop for IntentLock {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

impl core::fmt::Debug for IntentLock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IntentLock").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod sort_tests {
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn heapsort_sorts() {
        let mut seed = 7u64;
        for len in 0..40 {
            let mut items: Vec<u64> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    seed >> 60
                })
                .collect();
            let mut expected = items.clone();
            expected.sort();
            super::heapsort(&mut items, |a, b| a < b);
            assert_eq!(items, expected);
        }
    }
}
