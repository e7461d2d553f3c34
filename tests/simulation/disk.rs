//! The store as one process sees it: the run's `MemoryStore` (shared by
//! every process, across restarts) behind a few milliseconds of virtual
//! latency per operation, with per-intent leases: one process at a time
//! flies an intent. Two models of them:
//!
//! - one machine's `FileStore`: a process that crashed holds nothing (a
//!   killed process of the machine is taken over at once);
//! - a fleet's `PostgresStore` (the scenario's `fleet`): replicas may also
//!   stall (a pause, `SIGSTOP`), and a stalled replica's lease lapses after
//!   [`LEASE`] ms; every write of a replica is fenced by its token, so one
//!   that was taken over cannot record over the new holder.
//!
//! The latency makes every store operation an await point where a process
//! can crash and where other callers and processes interleave. Each
//! operation still takes its place in the store when it is called, as the
//! `Store` contract asks of `update`; only its answer waits. A crashed
//! process's pending operations never answer.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use oncely::runtime::BoxFuture;
use oncely::store::{IntentLock, Update};
use oncely::{Error, MemoryStore, Record, Store};

use crate::time::{Alive, mortal};
use crate::world::{Lease, World};

/// A fleet replica's lease, in ms: how long a stalled replica holds an
/// intent before another takes it over.
pub const LEASE: u64 = 2_000;

pub struct Disk {
    pub world: Arc<World>,
    pub store: MemoryStore,
    pub alive: Alive,
    /// The fencing tokens of the leases this process holds.
    pub tokens: Arc<Mutex<HashMap<String, u64>>>,
}

impl Disk {
    /// In a fleet, whether this process's lease on `name` (if it took one)
    /// was taken over: its writes are then refused, as `PostgresStore`
    /// fences them.
    fn fenced(&self, name: &str) -> Option<Error> {
        if !self.world.scenario.fleet {
            return None;
        }
        let mine = *lock_tokens(&self.tokens).get(name)?;
        let current = self.world.leases().get(name).map(|lease| lease.token);
        (current != Some(mine)).then(|| {
            Error::new(
                oncely::ErrorKind::Store,
                "another replica took the intent over (this one's lease on it ended)",
            )
        })
    }

    /// `answer` (the operation, already done) after the disk's latency.
    fn after<'a, T: Send + 'a>(&self, answer: BoxFuture<'a, T>) -> BoxFuture<'a, T> {
        let latency = self.world.rng().range(1, 6);
        let wait = mortal(
            &self.alive,
            self.world.time.sleep(Duration::from_millis(latency)),
        );
        Box::pin(async move {
            wait.await;
            answer.await
        })
    }
}

impl Store for Disk {
    fn create_or_get(&self, record: Record) -> BoxFuture<'_, Result<(Record, bool), Error>> {
        self.after(self.store.create_or_get(record))
    }

    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Record>, Error>> {
        self.after(self.store.get(name))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Record>, Error>> {
        self.after(self.store.list())
    }

    fn unsettled(&self) -> BoxFuture<'_, Result<Vec<Result<Record, Error>>, Error>> {
        self.after(self.store.unsettled())
    }

    fn update(&self, name: &str, update: Update) -> BoxFuture<'static, Result<(), Error>> {
        if let Some(error) = self.fenced(name) {
            return self.after(Box::pin(async move { Err(error) }));
        }
        self.after(self.store.update(name, update))
    }

    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        if let Some(error) = self.fenced(name) {
            return self.after(Box::pin(async move { Err(error) }));
        }
        self.after(self.store.remove(name))
    }

    fn prune(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, Error>> {
        self.after(self.store.prune(now_ms))
    }

    fn lock(&self, name: &str) -> Option<BoxFuture<'static, Result<IntentLock, Error>>> {
        let (world, alive, name) = (
            Arc::clone(&self.world),
            Arc::clone(&self.alive),
            name.to_owned(),
        );
        let tokens = Arc::clone(&self.tokens);
        let fleet = world.scenario.fleet;
        Some(Box::pin(async move {
            let token = loop {
                let latency = world.rng().range(1, 6);
                mortal(&alive, world.time.sleep(Duration::from_millis(latency))).await;
                // Taken when nobody holds it, its holder crashed, or (in a
                // fleet) its holder stalled past the lease.
                let taken = {
                    let now = world.time.now();
                    let mut leases = world.leases();
                    let free = leases.get(&name).is_none_or(|lease| {
                        !lease.holder.is_running()
                            || (fleet && lease.holder.lease_lapsed(now, LEASE))
                    });
                    free.then(|| {
                        let token = world.next_token.fetch_add(1, Ordering::Relaxed);
                        let holder = Arc::clone(&alive);
                        leases.insert(name.clone(), Lease { holder, token });
                        token
                    })
                };
                if let Some(token) = taken {
                    break token;
                }
                mortal(&alive, world.time.sleep(Duration::from_millis(25))).await;
            };
            lock_tokens(&tokens).insert(name.clone(), token);
            Ok(IntentLock::new(move || {
                lock_tokens(&tokens).remove(&name);
                let mut leases = world.leases();
                if leases.get(&name).is_some_and(|lease| lease.token == token) {
                    leases.remove(&name);
                }
            }))
        }))
    }
}

fn lock_tokens(tokens: &Mutex<HashMap<String, u64>>) -> MutexGuard<'_, HashMap<String, u64>> {
    tokens.lock().unwrap_or_else(|e| e.into_inner())
}
