//! What happens to each intent, as it happens: through `tracing` and through
//! subscribed handlers.

use core::time::Duration;

use crate::prelude::*;
use crate::runtime::{MaybeSend, MaybeSync};
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

// Subscribing is the Rust client's (the npm package's JavaScript keeps its
// own listeners).
if_client! {
    mod handlers;
    pub(crate) use handlers::{Events, Handler};
    pub use handlers::Subscription;
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
