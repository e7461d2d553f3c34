//! Coalescing: every call naming an intent that is already in flight in this
//! client joins that flight instead of sending.
//!
//! The flight runs as its own task, detached from every caller: dropping any
//! caller's future (the first one's included) never cancels it for the
//! others, and each caller awaits a shared result, so all get the same
//! outcome or the same error. A guard owned by the task removes the map entry
//! however the task ends (finished, panicked or dropped), so no entry outlives
//! its flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::FutureExt;
use futures_util::future::Shared;

use crate::intent::Request;
use crate::runtime::BoxFuture;
use crate::{Error, ErrorKind, Outcome};

/// The result every caller of one flight receives.
pub(crate) type FlightResult = Result<Outcome, Error>;

/// How a flight ends: the result for its callers, and the bookkeeping that
/// may follow once they have it (recording the outcome). The flight keeps
/// its slot until that is done, so a later call finds the outcome recorded.
pub(crate) struct Flown {
    pub(crate) result: FlightResult,
    pub(crate) then: Option<BoxFuture<'static, ()>>,
}
/// A caller's handle on a flight's result.
pub(crate) type Landing = Shared<BoxFuture<'static, FlightResult>>;

/// The flights in the air, by intent name.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Entry>>,
    next_id: AtomicU64,
}

struct Entry {
    id: u64,
    /// What makes a call "the same request": compared byte for byte, which
    /// is cheaper than hashing for every joining duplicate.
    method: String,
    url: String,
    body: Bytes,
    landing: Landing,
}

/// What [`Flights::board`] found.
pub(crate) enum Boarding {
    /// The same request is in flight: await its landing.
    Joined(Landing),
    /// Nothing was in flight: the caller must launch the flight with
    /// [`Departure::launch`].
    Departing(Departure, Landing),
    /// A different request is in flight under this name.
    Conflict,
}

/// The right (and duty) to run one flight. Dropping it unlaunched removes the
/// entry, and waiters learn the flight never left.
pub(crate) struct Departure {
    guard: EntryGuard,
    done: oneshot::Sender<FlightResult>,
}

struct EntryGuard {
    flights: Arc<Flights>,
    name: String,
    id: u64,
}

impl Drop for EntryGuard {
    fn drop(&mut self) {
        let mut map = self.flights.map();
        // Only this flight's entry: a later flight under the same name may
        // already have taken the slot.
        if map.get(&self.name).is_some_and(|entry| entry.id == self.id) {
            map.remove(&self.name);
        }
    }
}

impl Flights {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Entries are inserted and removed whole; a poisoned lock holds sound data.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins the flight of `name` if it carries the same request, or reserves
    /// the slot for a new one.
    pub(crate) fn board(self: &Arc<Flights>, name: &str, request: &Request) -> Boarding {
        let mut map = self.map();
        if let Some(entry) = map.get(name) {
            let same = entry.body == request.body
                && entry.method == request.method
                && entry.url == request.url;
            return if same {
                Boarding::Joined(entry.landing.clone())
            } else {
                Boarding::Conflict
            };
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done, landed) = oneshot::channel::<FlightResult>();
        let landing: BoxFuture<'static, FlightResult> = Box::pin(landed.map(|result| {
            result.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Store,
                    "the flight ended without a result (its task was dropped or panicked)",
                ))
            })
        }));
        let landing = landing.shared();
        map.insert(
            name.to_owned(),
            Entry {
                id,
                method: request.method.clone(),
                url: request.url.clone(),
                body: request.body.clone(),
                landing: landing.clone(),
            },
        );
        let guard = EntryGuard {
            flights: Arc::clone(self),
            name: name.to_owned(),
            id,
        };
        Boarding::Departing(Departure { guard, done }, landing)
    }

    /// `true` when `name` is in flight.
    pub(crate) fn is_flying(&self, name: &str) -> bool {
        self.map().contains_key(name)
    }
}

impl Departure {
    /// Spawns `flight`; its result lands for every caller as soon as it is
    /// known, and the slot is freed once the bookkeeping after it is done.
    pub(crate) fn launch(self, flight: BoxFuture<'static, Flown>) -> Result<(), Error> {
        let Departure { guard, done } = self;
        crate::runtime::spawn(Box::pin(async move {
            let Flown { result, then } = flight.await;
            let _ = done.send(result);
            if let Some(then) = then {
                then.await;
            }
            drop(guard);
        }))
    }
}
