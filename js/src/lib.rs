//! The core of the npm package `oncely`, compiled to WebAssembly: the same
//! decisions as the Rust client's ([`Pilot`], records, keys, fingerprints,
//! retry classification and backoff), and no I/O.
//!
//! The package's JavaScript (`pkg-template/client.js`) performs what a
//! flight needs — `fetch`, IndexedDB, Web Locks, timers — and asks this
//! module what to do next, as the Rust client's async flight does natively.
//! Nothing here awaits: a browser downloads no async state machines, promise
//! bridges or `web-sys` bindings, which kept the package above 70 KB.
//!
//! Few exports, each doing a whole step (every export costs glue on both
//! sides): texts cross the boundary as strings of lines — a header list as
//! `name\nvalue\n` lines (neither may hold a line break), a step's results
//! as [`Flight::info`]'s fields — and bytes as `Uint8Array`s.
#![deny(missing_docs)]
// In the browser nothing is `Send`: the core's `Arc`s serve both targets.
#![allow(clippy::arc_with_non_send_sync)]
// Only the browser build has anything to export.
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use oncely::intent::{SECRET_HEADERS, check_name};
use oncely::pilot::{Boarding, Pilot, Step, candidate};
use oncely::retry::{RetryBudget, classify};
use oncely::runtime::{Random, splitmix64};
use oncely::store::encoding::{decode, encode};
use oncely::transport::{TransportError, TransportErrorKind};
use oncely::{
    Error, ErrorKind, EventKind, Fingerprint, Key, Outcome, Record, Request, Response, RetryPolicy,
};
use wasm_bindgen::prelude::wasm_bindgen;

/// The package's allocator: talc, smaller than dlmalloc. The browser build
/// is single-threaded (no `atomics`), the case talc documents this for.
#[cfg(not(target_feature = "atomics"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// What the JavaScript does next, as [`Flight`]'s methods answer.
mod next {
    /// Send the attempt ([`super::Flight::attempt`]).
    pub const FLY: u8 = 0;
    /// Finished: read the outcome or the error.
    pub const DONE: u8 = 1;
    /// Wait [`super::Flight::delay`], then attempt again.
    pub const RETRY: u8 = 2;
}

/// The retry policy and budget one client's flights share.
#[wasm_bindgen]
pub struct Core {
    policy: RetryPolicy,
    budget: RetryBudget,
    retention: Duration,
}

/// The randomness of one flight, drawn by the JavaScript from
/// `crypto.getRandomValues`: the key is minted from the first bytes; backoff
/// jitter takes the rest, then a generator they seed.
struct Drawn {
    bytes: Vec<u8>,
    used: Cell<usize>,
    state: Cell<u64>,
}

impl Random for Drawn {
    fn fill(&self, dest: &mut [u8]) {
        for byte in dest {
            let used = self.used.get();
            *byte = match self.bytes.get(used) {
                Some(drawn) => {
                    self.used.set(used + 1);
                    self.state
                        .set(self.state.get().rotate_left(8) ^ u64::from(*drawn));
                    *drawn
                }
                None => {
                    let mut state = self.state.get();
                    let next = splitmix64(&mut state);
                    self.state.set(state);
                    next as u8
                }
            };
        }
    }
}

#[wasm_bindgen]
impl Core {
    /// A client's core (`0` keeps a default).
    #[wasm_bindgen(constructor)]
    pub fn new(max_attempts: u32, base_delay_ms: f64, max_delay_ms: f64, deadline_ms: f64) -> Core {
        let mut policy = RetryPolicy::default();
        let ms = |n: f64, default: Duration| {
            if n > 0.0 {
                Duration::from_millis(n.min(1e15) as u64)
            } else {
                default
            }
        };
        if max_attempts > 0 {
            policy.max_attempts = max_attempts;
        }
        policy.base_delay = ms(base_delay_ms, policy.base_delay);
        policy.max_delay = ms(max_delay_ms, policy.max_delay);
        policy.deadline = ms(deadline_ms, policy.deadline);
        Core {
            policy,
            budget: RetryBudget::default(),
            retention: Duration::from_secs(24 * 60 * 60),
        }
    }

    /// A flight of the intent `name` for a call with this request (its
    /// headers lower-case, as `Headers` lists them; an `idempotency-key`
    /// among them is the intent's key). Throws a message when the name or
    /// the key is invalid. `random`: fresh bytes from `crypto.getRandomValues`.
    #[allow(clippy::too_many_arguments)]
    pub fn flight(
        &self,
        name: String,
        method: String,
        url: String,
        headers: &str,
        body: Vec<u8>,
        now: f64,
        random: Vec<u8>,
    ) -> Result<Flight, String> {
        check_name(&name).map_err(|e| e.to_string())?;
        let headers = parse_headers(headers);
        let key = match headers.iter().find(|(n, _)| n == "idempotency-key") {
            Some((_, value)) => {
                Some(Key::from_header(value).map_err(|_| "invalid Idempotency-Key header")?)
            }
            None => None,
        };
        let request = Arc::new(Request {
            method,
            url,
            headers,
            body: Bytes::from(body),
        });
        let now = now as u64;
        let random = Arc::new(Drawn {
            bytes: random,
            used: Cell::new(0),
            state: Cell::new(now),
        });
        let minted = key
            .clone()
            .unwrap_or_else(|| Key::mint(now, random.as_ref()));
        let stored = request.stored(|n| SECRET_HEADERS.contains(&n));
        let record = candidate(name, stored, minted, now, self.retention);
        Ok(Flight {
            random,
            fingerprint: record.fingerprint,
            candidate: Some(record),
            key,
            pilot: None,
            outcome: None,
            error: None,
            write: None,
            event: None,
            delay: 0,
            reason: String::new(),
            status: None,
        })
    }
}

/// One flight of one intent: its candidate record, then the pilot's
/// decisions, and what the last one produced.
#[wasm_bindgen]
pub struct Flight {
    random: Arc<Drawn>,
    fingerprint: Fingerprint,
    /// The record written if none exists (until boarding).
    candidate: Option<Record>,
    /// The caller's own key, if it gave one.
    key: Option<Key>,
    pilot: Option<Pilot>,
    outcome: Option<Outcome>,
    error: Option<Error>,
    /// The record to write before going on.
    write: Option<Vec<u8>>,
    event: Option<&'static str>,
    delay: u64,
    reason: String,
    status: Option<u16>,
}

#[wasm_bindgen]
impl Flight {
    /// The record to add, if the intent has none yet.
    pub fn candidate(&self) -> Vec<u8> {
        self.candidate.as_ref().map(encode).unwrap_or_default()
    }

    /// Decides on the intent as stored: `stored` is the record found, or
    /// `undefined` when the candidate was added. Answers `FLY` or `DONE`
    /// (after writing [`write`](Self::write), when there is one).
    pub fn board(&mut self, stored: Option<Vec<u8>>, now: f64, core: &Core) -> u8 {
        let created = stored.is_none();
        let record = match stored.map(|bytes| decode(&bytes)) {
            Some(Ok(record)) => record,
            Some(Err(error)) => return self.done(Err(error), None),
            None => match self.candidate.take() {
                Some(record) => record,
                None => {
                    return self.done(
                        Err(Error::new(ErrorKind::Store, "the flight has boarded")),
                        None,
                    );
                }
            },
        };
        self.candidate = None;
        if created {
            self.event = Some("created");
        }
        let boarding = Pilot::board(
            record,
            created,
            self.fingerprint,
            self.key.take(),
            now as u64,
            &core.policy,
            Arc::clone(&self.random) as Arc<dyn Random>,
        );
        match boarding {
            Boarding::Fly(pilot) => {
                self.pilot = Some(pilot);
                next::FLY
            }
            Boarding::Land(_, result, event) => self.done(result, event),
            Boarding::Expire(mut record, update, error) => {
                if let Some(update) = update {
                    record.apply(update);
                    self.write = Some(encode(&record));
                }
                self.done(Err(error.clone()), Some(EventKind::Failed { error }))
            }
        }
    }

    fn done(&mut self, result: Result<Outcome, Error>, event: Option<EventKind>) -> u8 {
        self.event = event.as_ref().map(event_type);
        match result {
            Ok(outcome) => self.outcome = Some(outcome),
            Err(error) => self.error = Some(error),
        }
        next::DONE
    }

    /// Starts the next attempt: answers its number (write
    /// [`write`](Self::write) first, when there is one).
    pub fn attempt(&mut self) -> u32 {
        let Some(pilot) = self.pilot.as_mut() else {
            return 0;
        };
        let (number, update) = pilot.attempt();
        self.write = update.map(|update| {
            let mut record = pilot.record().clone();
            record.apply(update);
            encode(&record)
        });
        number
    }

    /// The time limit in ms of the attempt about to be sent at `now`, after
    /// waiting `offline` ms to be online (not counted against the deadline).
    pub fn timeout(&mut self, offline: f64, now: f64) -> f64 {
        let Some(pilot) = self.pilot.as_mut() else {
            return 0.0;
        };
        pilot.waited_offline(offline as u64);
        pilot.attempt_timeout(now as u64).as_millis() as f64
    }

    /// The attempt's answer: a response (`status`, `headers`, `body`), or
    /// none — `status` 0 with why in `headers`, 1 when it timed out.
    /// Answers `DONE` (write first) or `RETRY`.
    pub fn land(&mut self, status: u16, headers: &str, body: Vec<u8>, now: f64, core: &Core) -> u8 {
        let result = match status {
            0 | 1 => {
                let kind = if status == 1 {
                    TransportErrorKind::Timeout
                } else {
                    TransportErrorKind::Interrupted
                };
                Err(TransportError::new(kind, headers))
            }
            _ => Ok(Response {
                status,
                headers: parse_headers(headers),
                body: Bytes::from(body),
            }),
        };
        let class = classify(result.as_ref());
        let Some(pilot) = self.pilot.as_mut() else {
            return self.done(
                Err(Error::new(ErrorKind::Store, "the flight has not boarded")),
                None,
            );
        };
        let step = pilot.land(result, class, now as u64, &core.budget);
        let event = pilot.event(&step);
        let written = |update| {
            let mut record = pilot.record().clone();
            record.apply(update);
            Some(encode(&record))
        };
        match step {
            Step::Retry {
                delay,
                reason,
                status,
            } => {
                self.event = Some(event_type(&event));
                self.delay = delay.as_millis() as u64;
                self.reason = reason;
                self.status = status;
                next::RETRY
            }
            Step::Settle(update, outcome) => {
                self.write = written(update);
                self.done(Ok(outcome), Some(event))
            }
            Step::Fail(update, error) => {
                self.write = written(update);
                self.done(Err(error), Some(event))
            }
        }
    }

    /// The record to write now, once.
    pub fn write(&mut self) -> Option<Vec<u8>> {
        self.write.take()
    }

    /// What the last step produced, one field per line: the event's type
    /// (once; empty: none), the key, the attempts, a retry's delay (ms),
    /// status and reason, the outcome's status and whether it is replayed
    /// (`1`), the error's code and last status, the outcome's header count
    /// and headers, and last the error's message (which may span lines).
    pub fn info(&mut self) -> String {
        let mut text = String::new();
        let mut line = |field: &str| {
            text.push_str(field);
            text.push('\n');
        };
        line(self.event.take().unwrap_or(""));
        let record = self
            .pilot
            .as_ref()
            .map(Pilot::record)
            .or(self.candidate.as_ref());
        let key = match (record, &self.outcome, &self.error) {
            (Some(record), ..) => Some(&record.key),
            (None, Some(outcome), _) => Some(outcome.key()),
            (None, None, Some(error)) => error.key(),
            _ => None,
        };
        line(key.map_or("", Key::as_str));
        let attempts = match (&self.outcome, record) {
            (Some(outcome), _) => outcome.attempts(),
            (None, Some(record)) => record.attempts,
            _ => 0,
        };
        line(&attempts.to_string());
        line(&self.delay.to_string());
        line(&self.status.map(|s| s.to_string()).unwrap_or_default());
        line(&self.reason);
        line(
            &self
                .outcome
                .as_ref()
                .map(|o| o.status().to_string())
                .unwrap_or_default(),
        );
        line(if self.outcome.as_ref().is_some_and(Outcome::replayed) {
            "1"
        } else {
            ""
        });
        line(self.error.as_ref().map_or("", |e| e.kind().code()));
        line(
            &self
                .error
                .as_ref()
                .and_then(Error::last_status)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        );
        let headers = self.outcome.as_ref().map_or(&[][..], Outcome::headers);
        line(&headers.len().to_string());
        text.push_str(&join_headers(headers));
        if let Some(error) = &self.error {
            text.push_str(&error.to_string());
        }
        text
    }

    /// The outcome's body.
    pub fn body(&self) -> Vec<u8> {
        self.outcome
            .as_ref()
            .map(|o| o.body().to_vec())
            .unwrap_or_default()
    }
}

/// A stored record as JavaScript reads it (`pending`, `resume`), one field
/// per line: name, key, attempts, creation (ms since the epoch), state,
/// whether it is unsettled (`1`), method, URL, then the request's headers.
/// Throws a message when the record is damaged or foreign.
#[wasm_bindgen]
pub fn stored(bytes: &[u8]) -> Result<String, String> {
    let record = decode(bytes).map_err(|e| e.to_string())?;
    let mut text = String::new();
    for field in [
        record.name.as_str(),
        record.key.as_str(),
        &record.attempts.to_string(),
        &record.created_at.to_string(),
        record.state.as_str(),
        if record.is_unsettled() { "1" } else { "" },
        &record.request.method,
        &record.request.url,
    ] {
        text.push_str(field);
        text.push('\n');
    }
    text.push_str(&join_headers(&record.request.headers));
    Ok(text)
}

/// The request body of a stored record.
#[wasm_bindgen(js_name = storedBody)]
pub fn stored_body(bytes: &[u8]) -> Result<Vec<u8>, String> {
    decode(bytes)
        .map(|record| record.request.body.to_vec())
        .map_err(|e| e.to_string())
}

fn event_type(event: &EventKind) -> &'static str {
    match event {
        EventKind::Created => "created",
        EventKind::Attempt { .. } => "attempt",
        EventKind::RetryScheduled { .. } => "retry",
        EventKind::Joined => "joined",
        EventKind::Offline => "offline",
        EventKind::Replayed => "replayed",
        EventKind::Conflict => "conflict",
        EventKind::Settled { .. } => "settled",
        _ => "failed",
    }
}

fn parse_headers(text: &str) -> Vec<(String, String)> {
    let mut lines = text.split('\n');
    let mut headers = Vec::new();
    while let (Some(name), Some(value)) = (lines.next(), lines.next()) {
        headers.push((name.to_owned(), value.to_owned()));
    }
    headers
}

fn join_headers(headers: &[(String, String)]) -> String {
    let mut text = String::new();
    for (name, value) in headers {
        text.push_str(name);
        text.push('\n');
        text.push_str(value);
        text.push('\n');
    }
    text
}
