//! The machine's disk as one process sees it: the run's `MemoryStore`
//! (shared by every process, across restarts) behind a few milliseconds of
//! virtual latency per operation, with `FileStore`'s intent leases: one
//! process at a time flies an intent, and a process that crashed holds
//! nothing (as a killed process of the machine is taken over at once).
//!
//! The latency makes every store operation an await point where a process
//! can crash and where other callers and processes interleave. Each
//! operation still takes its place in the store when it is called, as the
//! `Store` contract asks of `update`; only its answer waits. A crashed
//! process's pending operations never answer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use oncely::runtime::BoxFuture;
use oncely::store::{IntentLock, Update};
use oncely::{Error, MemoryStore, Record, Store};

use crate::time::{Alive, mortal};
use crate::world::World;

pub struct Disk {
    pub world: Arc<World>,
    pub store: MemoryStore,
    pub alive: Alive,
}

impl Disk {
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
        self.after(self.store.update(name, update))
    }

    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
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
        Some(Box::pin(async move {
            loop {
                let latency = world.rng().range(1, 6);
                mortal(&alive, world.time.sleep(Duration::from_millis(latency))).await;
                // Taken when nobody holds it, or its holder crashed.
                let taken = {
                    let mut leases = world.leases();
                    let free = leases
                        .get(&name)
                        .is_none_or(|holder| !holder.load(Ordering::SeqCst));
                    if free {
                        leases.insert(name.clone(), Arc::clone(&alive));
                    }
                    free
                };
                if taken {
                    break;
                }
                mortal(&alive, world.time.sleep(Duration::from_millis(25))).await;
            }
            Ok(IntentLock::new(move || {
                let mut leases = world.leases();
                if leases
                    .get(&name)
                    .is_some_and(|holder| Arc::ptr_eq(holder, &alive))
                {
                    leases.remove(&name);
                }
            }))
        }))
    }
}
