use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};

use foldhash::HashMap;

use super::{Store, Update};
use crate::Error;
use crate::intent::Record;
use crate::runtime::BoxFuture;

/// Records kept in memory: for tests, Node and programs that need no
/// durability. Clones share the same records (by name, hashed with
/// foldhash, as the flights are).
///
/// # Examples
/// ```
/// let client = oncely::Client::builder().store(oncely::MemoryStore::new()).build();
/// assert!(client.is_ok());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    records: Arc<Mutex<HashMap<String, Record>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn records(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        // A panic elsewhere while holding the lock leaves whole records
        // behind (every change is one assignment), so the data is still sound.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies of the records `keep` accepts, oldest first.
    fn oldest_first(&self, keep: impl Fn(&Record) -> bool) -> Vec<Record> {
        let mut records: Vec<Record> = self.records().values().filter(|r| keep(r)).cloned().collect();
        super::oldest_first(&mut records);
        records
    }
}

impl Store for MemoryStore {
    fn create_or_get(&self, record: Record) -> BoxFuture<'_, Result<(Record, bool), Error>> {
        let stored = match self.records().entry(record.name.clone()) {
            Entry::Occupied(entry) => (entry.get().clone(), false),
            Entry::Vacant(entry) => (entry.insert(record).clone(), true),
        };
        Box::pin(async move { Ok(stored) })
    }

    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Record>, Error>> {
        let record = self.records().get(name).cloned();
        Box::pin(async move { Ok(record) })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Record>, Error>> {
        let records = self.oldest_first(|_| true);
        Box::pin(async move { Ok(records) })
    }

    fn unsettled(&self) -> BoxFuture<'_, Result<Vec<Result<Record, Error>>, Error>> {
        let records = self.oldest_first(Record::is_unsettled);
        Box::pin(async move { Ok(records.into_iter().map(Ok).collect()) })
    }

    fn update(&self, name: &str, update: Update) -> BoxFuture<'static, Result<(), Error>> {
        let result = match self.records().get_mut(name) {
            Some(record) => {
                record.apply(update);
                Ok(())
            }
            None => Err(Error::store(format!(
                "no record named \"{name}\": it was forgotten"
            ))),
        };
        Box::pin(async move { result })
    }

    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let removed = self.records().remove(name).is_some();
        Box::pin(async move { Ok(removed) })
    }

    fn prune(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, Error>> {
        let mut records = self.records();
        let before = records.len();
        records.retain(|_, record| !record.is_prunable(now_ms));
        let pruned = before - records.len();
        Box::pin(async move { Ok(pruned) })
    }
}
