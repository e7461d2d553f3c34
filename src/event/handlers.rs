//! The handlers subscribed to one client's events.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::{Event, EventHandler, EventKind, log};
use crate::Key;
use crate::runtime::Clock;

pub(crate) type Handler = Arc<dyn EventHandler>;

/// The handlers of one client.
pub(crate) struct Events {
    handlers: Mutex<Arc<Vec<(u64, Handler)>>>,
    next_id: AtomicU64,
    /// How many handlers there are: emitting to none takes no lock.
    count: AtomicUsize,
    clock: Arc<dyn Clock>,
}

impl Events {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Events {
        Events {
            handlers: Mutex::default(),
            next_id: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            clock,
        }
    }

    pub(crate) fn add(&self, handler: Handler) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut handlers = self.handlers.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Vec::clone(&handlers);
        next.push((id, handler));
        self.count.store(next.len(), Ordering::Relaxed);
        *handlers = Arc::new(next);
        id
    }

    fn remove(&self, id: u64) {
        let mut handlers = self.handlers.lock().unwrap_or_else(|e| e.into_inner());
        let next: Vec<_> = handlers.iter().filter(|(i, _)| *i != id).cloned().collect();
        self.count.store(next.len(), Ordering::Relaxed);
        *handlers = Arc::new(next);
    }

    /// Logs `kind` and hands it to every handler. Handlers run outside the
    /// lock, so one may subscribe or unsubscribe others.
    pub(crate) fn emit(&self, intent: &str, key: Option<&Key>, kind: EventKind) {
        log(intent, key, &kind);
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let handlers = Arc::clone(&self.handlers.lock().unwrap_or_else(|e| e.into_inner()));
        let event = Event {
            intent: intent.to_owned(),
            key: key.cloned(),
            kind,
            at_ms: self.clock.now_ms(),
        };
        for (_, handler) in handlers.iter() {
            handler(&event);
        }
    }
}

/// A handler subscribed with [`Client::subscribe`](crate::Client::subscribe);
/// dropping it unsubscribes.
#[must_use = "dropping a Subscription unsubscribes its handler"]
pub struct Subscription {
    pub(crate) events: Weak<Events>,
    pub(crate) id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(events) = self.events.upgrade() {
            events.remove(self.id);
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

