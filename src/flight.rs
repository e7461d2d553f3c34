//! Coalescing: every call naming an intent that is already in flight in this
//! client joins that flight instead of sending.
//!
//! The first caller flies the flight in its own task (no hop through another
//! task on the way back, which would cost a wake-up per call); the others
//! await a shared result, so all get the same outcome or the same error. If
//! the first caller stops waiting, the rest of the flight moves to a task of
//! its own: dropping any caller's future never cancels the flight for the
//! others. A guard travelling with the flight removes the map entry however
//! it ends (finished, panicked or dropped), so no entry outlives its flight.

use std::borrow::Cow;
use std::collections::hash_map;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use foldhash::HashMap;

use crate::intent::Request;
use crate::runtime::BoxFuture;
use crate::{Error, ErrorKind, Key, Outcome};

/// The result every caller of one flight receives.
pub(crate) type FlightResult = Result<Outcome, Error>;

/// Where a flight's result lands for the callers who joined it: one shared
/// allocation per flight (a oneshot channel behind a shared future costs
/// three, and more work for every duplicate).
struct Slot {
    state: Mutex<SlotState>,
    /// The intent's name, for the error of a flight that never landed.
    name: Arc<str>,
}

#[derive(Default)]
struct SlotState {
    result: Option<FlightResult>,
    /// The intent's key, once the flight has read or recorded it.
    key: Option<Key>,
    /// The flight ended without a result (dropped or panicked).
    abandoned: bool,
    waiting: Vec<Waker>,
}

impl Slot {
    fn state(&self) -> MutexGuard<'_, SlotState> {
        // Every change is a whole assignment; a poisoned lock holds sound data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn result(&self) -> Option<FlightResult> {
        self.state().result.clone()
    }

    /// Hands `result` to every caller waiting, and to any that come later.
    fn land(&self, result: FlightResult) {
        let waiting = {
            let mut state = self.state();
            state.result = Some(result);
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }

    fn abandon(&self) {
        let waiting = {
            let mut state = self.state();
            state.abandoned = true;
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }
}

/// A joined caller's wait for the flight's result.
pub(crate) struct Landing {
    slot: Arc<Slot>,
    /// Where this caller's waker sits in the slot, once registered.
    place: Option<usize>,
}

impl Future for Landing {
    type Output = FlightResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<FlightResult> {
        let this = self.get_mut();
        let mut state = this.slot.state();
        if let Some(result) = &state.result {
            return Poll::Ready(result.clone());
        }
        if state.abandoned {
            // What is known of the intent is what a flight that gave up
            // leaves: recorded (or not yet), unsettled, and a later call or
            // `resume` sends it under its key.
            let error = Error::new(
                ErrorKind::GaveUp,
                "the flight ended without an answer (its task was dropped or panicked)",
            );
            return Poll::Ready(Err(error.with_intent(&this.slot.name, None)));
        }
        match this.place {
            Some(place) if place < state.waiting.len() => {
                state.waiting[place].clone_from(cx.waker())
            }
            _ => {
                this.place = Some(state.waiting.len());
                state.waiting.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

/// The flights in the air, by intent name: looked up by every call, so
/// hashed with foldhash (seeded per process), several times quicker than
/// the standard SipHash on short names.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<Arc<str>, Entry>>,
    next_id: AtomicU64,
}

struct Entry {
    id: u64,
    /// What makes a call "the same request" (method, URL, body): compared
    /// byte for byte, which is cheaper than hashing for every duplicate.
    request: Arc<Request>,
    /// Holds the result once the flight has answered.
    slot: Arc<Slot>,
}

/// A call's headers, borrowed from the caller: the first one held in place,
/// so that a call with one header (the common `content-type`) allocates
/// nothing for them until it flies.
#[derive(Default)]
pub(crate) struct CallHeaders<'a> {
    first: Option<(Cow<'a, str>, Cow<'a, str>)>,
    rest: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> CallHeaders<'a> {
    pub(crate) fn push(&mut self, name: Cow<'a, str>, value: Cow<'a, str>) {
        match self.first {
            None => self.first = Some((name, value)),
            Some(_) => self.rest.push((name, value)),
        }
    }

    fn into_owned(self) -> Vec<(String, String)> {
        let mut owned = Vec::with_capacity(usize::from(self.first.is_some()) + self.rest.len());
        let all = self.first.into_iter().chain(self.rest);
        owned.extend(all.map(|(name, value)| (name.into_owned(), value.into_owned())));
        owned
    }
}

/// The request a call brings to [`Flights::board`]: built into a shared
/// [`Request`] only if the call flies, so a joining duplicate allocates
/// nothing for it.
pub(crate) enum Candidate<'a> {
    /// A call's request, still in parts (borrowed from the caller).
    New {
        method: Cow<'static, str>,
        url: Cow<'a, str>,
        headers: CallHeaders<'a>,
        body: Bytes,
    },
    /// A recorded request, on resume.
    Recorded(Arc<Request>),
}

impl Candidate<'_> {
    fn same_as(&self, flying: &Request) -> bool {
        let (method, url, body) = match self {
            Candidate::New {
                method, url, body, ..
            } => (method.as_ref(), url.as_ref(), body),
            Candidate::Recorded(request) => {
                (request.method.as_str(), request.url.as_str(), &request.body)
            }
        };
        flying.body == *body && flying.method == method && flying.url == url
    }

    pub(crate) fn into_request(self) -> Arc<Request> {
        match self {
            Candidate::New {
                method,
                url,
                headers,
                body,
            } => Arc::new(Request {
                method: method.into_owned(),
                url: url.into_owned(),
                headers: headers.into_owned(),
                body,
            }),
            Candidate::Recorded(request) => request,
        }
    }
}

/// What [`Flights::board`] found.
pub(crate) enum Boarding {
    /// The same request is in flight: await its landing.
    Joined(Landing),
    /// Nothing was in flight: the caller flies it (the request, now built),
    /// with [`Departure::fly`].
    Departing(Departure, Arc<Request>),
    /// A different request is in flight under this name (with its key,
    /// when the flight has answered).
    Conflict(Option<Key>),
}

/// The right (and duty) to run one flight. Dropping it unlaunched removes the
/// entry, and waiters learn the flight never left.
pub(crate) struct Departure {
    guard: Option<EntryGuard>,
    /// `None` once landed.
    slot: Option<Arc<Slot>>,
}

impl Drop for Departure {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.abandon();
        }
    }
}

struct EntryGuard {
    flights: Arc<Flights>,
    name: Arc<str>,
    id: u64,
}

impl Drop for EntryGuard {
    fn drop(&mut self) {
        let mut map = self.flights.map();
        // Only this flight's entry: a later flight under the same name may
        // already have taken the slot.
        if let hash_map::Entry::Occupied(entry) = map.entry(Arc::clone(&self.name))
            && entry.get().id == self.id
        {
            entry.remove();
        }
    }
}

impl Flights {
    fn map(&self) -> MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        // Entries are inserted and removed whole; a poisoned lock holds sound data.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins the flight of `name` if it carries the same request, or reserves
    /// the slot for a new one.
    pub(crate) fn board(self: &Arc<Flights>, name: &str, candidate: Candidate<'_>) -> Boarding {
        let mut map = self.map();
        if let Some(entry) = map.get(name) {
            let same = candidate.same_as(&entry.request);
            return if same {
                Boarding::Joined(Landing {
                    slot: Arc::clone(&entry.slot),
                    place: None,
                })
            } else {
                // The flight's key, once it has read or recorded it.
                Boarding::Conflict(entry.slot.state().key.clone())
            };
        }
        let request = candidate.into_request();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let name: Arc<str> = Arc::from(name);
        let slot = Arc::new(Slot {
            state: Mutex::default(),
            name: Arc::clone(&name),
        });
        map.insert(
            Arc::clone(&name),
            Entry {
                id,
                request: Arc::clone(&request),
                slot: Arc::clone(&slot),
            },
        );
        let guard = EntryGuard {
            flights: Arc::clone(self),
            name,
            id,
        };
        let departure = Departure {
            guard: Some(guard),
            slot: Some(slot),
        };
        Boarding::Departing(departure, request)
    }

    /// Frees the slot of `name` for a new intent: `false` while a flight is
    /// still waiting for its answer.
    pub(crate) fn release(&self, name: &str) -> bool {
        let mut map = self.map();
        match map.get(name) {
            None => true,
            Some(entry) if entry.slot.result().is_some() => {
                map.remove(name);
                true
            }
            Some(_) => false,
        }
    }
}

/// Where a flight says its intent's key, once it has read or recorded it:
/// a call refused for conflicting with the flight names it.
pub(crate) struct FlightKey(Arc<Slot>);

impl FlightKey {
    pub(crate) fn set(&self, key: &Key) {
        self.0.state().key = Some(key.clone());
    }
}

impl Departure {
    /// Where the flight says its key.
    pub(crate) fn key(&self) -> Option<FlightKey> {
        self.slot.as_ref().map(|slot| FlightKey(Arc::clone(slot)))
    }

    /// Flies `flight` in the caller's task; its result lands for every
    /// joined caller as soon as it is known.
    pub(crate) fn fly(self, flight: BoxFuture<'static, FlightResult>) -> Pilot {
        Pilot {
            flight: Some(flight),
            departure: Some(self),
            polling: false,
        }
    }

    /// Spawns what is left of `flight`, to land for every caller.
    fn launch(self, flight: BoxFuture<'static, FlightResult>) -> Result<(), Error> {
        crate::runtime::spawn(Box::pin(async move {
            let result = flight.await;
            self.land(result);
        }))
    }

    /// Hands `result` to every waiting caller and frees the slot: the
    /// outcome's write already has its place in the store, so a later call
    /// finds it there.
    fn land(mut self, result: FlightResult) {
        if let Some(slot) = self.slot.take() {
            slot.land(result);
        }
        drop(self.guard.take());
    }
}

/// The first caller's hold on its flight: a future of the flight's result.
/// Dropped before the flight ends, it hands the rest to a task of its own.
pub(crate) struct Pilot {
    flight: Option<BoxFuture<'static, FlightResult>>,
    departure: Option<Departure>,
    /// Set while the flight is being polled: still set when it is dropped,
    /// the flight itself panicked (a panic elsewhere in the caller's task,
    /// a sibling future in a `join!`, is not the flight's).
    polling: bool,
}

impl Future for Pilot {
    type Output = FlightResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<FlightResult> {
        let this = self.get_mut();
        let Some(flight) = this.flight.as_mut() else {
            return Poll::Ready(Err(Error::invalid_input(
                "a finished flight was polled again",
            )));
        };
        this.polling = true;
        let polled = flight.as_mut().poll(cx);
        this.polling = false;
        let result = ready!(polled);
        this.flight = None;
        if let Some(departure) = this.departure.take() {
            departure.land(result.clone());
        }
        Poll::Ready(result)
    }
}

impl Drop for Pilot {
    fn drop(&mut self) {
        if let (Some(flight), Some(departure)) = (self.flight.take(), self.departure.take()) {
            // A flight that panicked is not resumed (its state is unknown):
            // dropped, it frees its slot and its waiters learn it ended.
            // Without a runtime it ends here too, the same way. A panic
            // elsewhere in the caller's task only drops the caller: the
            // flight goes on for those who joined it.
            if !self.polling {
                let _ = departure.launch(flight);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_call_keeps_every_header_in_the_order_given() {
        assert!(CallHeaders::default().into_owned().is_empty());
        let mut headers = CallHeaders::default();
        for (name, value) in [("a", "1"), ("b", "2"), ("a", "3")] {
            headers.push(Cow::Borrowed(name), Cow::Owned(value.to_owned()));
        }
        let owned = headers.into_owned();
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("a", "1"), ("b", "2"), ("a", "3")]);
    }
}
