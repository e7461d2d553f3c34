//! What happens to each intent, as it happens: through `tracing` and through
//! subscribed handlers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::runtime::{Clock, MaybeSend, MaybeSync};
use crate::{Error, Key};

/// One thing that happened to one intent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event {
    /// The intent's name.
    pub intent: String,
    /// The intent's key; `None` only where the call never reached the
    /// record (a call joining or conflicting with a flight that has not yet
    /// read it).
    pub key: Option<Key>,
    /// What happened.
    pub kind: EventKind,
    /// When, in ms since the epoch, by the client's clock.
    pub at_ms: u64,
}

/// What happened to an intent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventKind {
    /// The intent was recorded (before its first attempt).
    Created,
    /// An attempt is being sent.
    Attempt {
        /// The attempt's number, across runs (from 1).
        number: u32,
    },
    /// An attempt did not settle the intent; the next one waits `delay`.
    RetryScheduled {
        /// The number of the attempt that failed.
        attempt: u32,
        /// How long until the next attempt.
        delay: Duration,
        /// Why (a status or a transport error), for people.
        reason: String,
        /// The status of the failed attempt, when a response arrived.
        status: Option<u16>,
    },
    /// A call joined the flight already under way for this intent.
    Joined,
    /// The browser is offline: the next attempt waits for it to be online.
    Offline,
    /// A call got the stored outcome of a settled intent.
    Replayed,
    /// A call named this intent with a different request; nothing was sent.
    Conflict,
    /// The intent settled with a definitive response.
    Settled {
        /// The response status.
        status: u16,
        /// Attempts it took, across runs.
        attempts: u32,
    },
    /// The flight ended without a definitive response.
    Failed {
        /// Why.
        error: Error,
    },
}

/// A subscribed handler: any `Fn(&Event)` (`Send + Sync` natively).
pub trait EventHandler: Fn(&Event) + MaybeSend + MaybeSync + 'static {}
impl<F: Fn(&Event) + MaybeSend + MaybeSync + 'static> EventHandler for F {}

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

if_native! {
    /// Natively every event also goes to `tracing`.
    fn log(intent: &str, key: Option<&Key>, kind: &EventKind) {
        let key_text = key.map_or("", Key::as_str);
        match kind {
            EventKind::Created => tracing::debug!(intent, key = key_text, "intent recorded"),
            EventKind::Attempt { number } => {
                tracing::debug!(intent, key = key_text, number, "attempt")
            }
            EventKind::RetryScheduled {
                attempt,
                delay,
                reason,
                ..
            } => {
                tracing::info!(intent, key = key_text, attempt, delay_ms = delay.as_millis() as u64, reason = %reason, "retry scheduled")
            }
            EventKind::Joined => tracing::trace!(intent, key = key_text, "joined the flight"),
            EventKind::Offline => {
                tracing::info!(intent, key = key_text, "offline: waiting for the network")
            }
            EventKind::Replayed => {
                tracing::debug!(intent, key = key_text, "replayed the stored outcome")
            }
            EventKind::Conflict => tracing::warn!(
                intent,
                key = key_text,
                "conflict: same intent, different request"
            ),
            EventKind::Settled { status, attempts } => {
                tracing::debug!(intent, key = key_text, status, attempts, "settled")
            }
            EventKind::Failed { error } => {
                tracing::warn!(intent, key = key_text, error = %error, "failed")
            }
        }
    }

    /// A write nobody awaits failed: say so where operators look.
    pub(crate) fn warn_unrecorded(intent: &str, key: &Key, what: &str, error: &Error) {
        tracing::warn!(intent, key = key.as_str(), %error, "{what}");
    }
}

if_wasm! {
    /// In the browser, apps hear events through `on(type, handler)`; the
    /// package carries no logging framework.
    fn log(_intent: &str, _key: Option<&Key>, _kind: &EventKind) {}
}

if_browser! {
    /// A write nobody awaits failed: say so where developers look.
    pub(crate) fn warn_unrecorded(intent: &str, _key: &Key, what: &str, error: &Error) {
        let mut message = String::from("oncely: ");
        message.push_str(what);
        message.push_str(" (intent ");
        message.push_str(intent);
        message.push_str("): ");
        message.push_str(&error.to_string());
        web_sys::console::warn_1(&message.into());
    }
}
