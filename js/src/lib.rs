//! The core of the npm package `oncely`, compiled to WebAssembly: the same
//! decisions as the Rust client's (`Pilot`, records, keys, fingerprints,
//! retry classification and backoff), and no I/O.
//!
//! The package's JavaScript (`pkg-template/client.js`) performs what a
//! flight needs — `fetch`, IndexedDB, Web Locks, timers — and asks this
//! module what to do next, as the Rust client's async flight does natively.
//! Nothing here awaits, and nothing here needs an operating system: the
//! crate is `no_std` (its own allocator and panic handler), with plain
//! exports and no bindings generator — `pkg-template/core.js` is the whole
//! of the JavaScript side of the boundary.
//!
//! # The boundary
//!
//! Numbers cross as numbers. Bytes and texts cross through the module's
//! memory: the JavaScript asks `alloc` for room, writes there and hands
//! the pointer over with its length (the callee takes it back); several
//! inputs travel as one run of fields, each a little-endian `u32` length
//! and its bytes. An answer with bytes is left in one buffer, read at
//! `out` (a `u32` length, then the bytes) before the next call replaces
//! it. Texts are UTF-8 lines: a header list as `name\nvalue\n` (neither
//! may hold a line break), a step's results as `info`'s fields.
#![deny(missing_docs)]
// In the browser nothing is `Send`: the core's `Arc`s serve both targets.
#![allow(clippy::arc_with_non_send_sync)]
// Only the browser build has anything to export; natively the crate is empty.
#![cfg(target_arch = "wasm32")]
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::{Cell, UnsafeCell};
use core::time::Duration;

use oncely::intent::{Body, check_name, is_stored_header_or, listed};
use oncely::pilot::{Attempt, Boarding, Claim, Pilot, Step, candidate, millis};
use oncely::retry::{Class, RetryBudget, classify};
use oncely::runtime::{Random, splitmix64};
use oncely::store::Update;
use oncely::store::encoding::{decode, encode_into, encode_updated};
use oncely::text::{digits, utf8};
use oncely::transport::{TransportError, TransportErrorKind};
use oncely::{
    Error, ErrorKind, EventKind, Fingerprint, Key, Outcome, Record, Request, Response, RetryPolicy,
};

mod heap;

/// The package's allocator (see `heap`).
#[global_allocator]
static HEAP: heap::Heap = heap::Heap::new();

/// No input reaches a panic (every length is checked, every failure is an
/// error); should one happen all the same, the call traps and the
/// JavaScript sees a `WebAssembly.RuntimeError`. Nothing is formatted, so
/// no formatting machinery ships.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// What the JavaScript does next, as [`board`] and [`land`] answer.
mod next {
    /// Send the attempt ([`super::attempt`]).
    pub const FLY: u32 = 0;
    /// Finished: read the outcome or the error.
    pub const DONE: u32 = 1;
    /// Wait the delay ([`super::info`]), then attempt again.
    pub const RETRY: u32 = 2;
}

/// The answer of the last call that has bytes to give.
struct Out(UnsafeCell<Vec<u8>>);

// SAFETY: the package's WebAssembly is single-threaded (built without
// `atomics`) and no export calls another: one call at a time touches it.
unsafe impl Sync for Out {}

static OUT: Out = Out(UnsafeCell::new(Vec::new()));

/// An answer, written in place in the buffer [`out`] reads: a length
/// (set by [`Answer::end`]), then its bytes.
struct Answer(&'static mut Vec<u8>);

impl Answer {
    fn start() -> Answer {
        // SAFETY: see `Out`; one answer at a time, ended before its call
        // returns.
        let out = unsafe { &mut *OUT.0.get() };
        out.clear();
        out.extend_from_slice(&[0; 4]);
        Answer(out)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A text and a line break.
    fn line(&mut self, text: &str) {
        self.bytes(text.as_bytes());
        self.bytes(b"\n");
    }

    /// A number's digits (none for `None`) and a line break.
    fn number(&mut self, n: Option<u64>) {
        if let Some(n) = n {
            self.bytes(digits(n, &mut [0; 20]));
        }
        self.bytes(b"\n");
    }

    /// `1` for yes, nothing for no, and a line break.
    fn flag(&mut self, yes: bool) {
        self.line(if yes { "1" } else { "" });
    }

    /// `headers` (name, value), one per line.
    fn headers(&mut self, headers: &[(String, String)]) {
        for (name, value) in headers {
            self.line(name);
            self.line(value);
        }
    }

    fn end(self) {
        let len = (self.0.len() - 4) as u32;
        if let Some(head) = self.0.first_chunk_mut() {
            *head = len.to_le_bytes();
        }
    }
}

/// Leaves `bytes` for the JavaScript to read at [`out`].
fn answer(bytes: &[u8]) {
    let mut answer = Answer::start();
    answer.bytes(bytes);
    answer.end();
}

/// Where the last answer is: a little-endian `u32` length, then its bytes.
#[unsafe(no_mangle)]
pub extern "C" fn out() -> *const u8 {
    // SAFETY: see `Out`.
    unsafe { (*OUT.0.get()).as_ptr() }
}

/// Room for `len` bytes the JavaScript writes, then hands to a call that
/// takes it (with its length).
#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    // What `take` gives back as a boxed slice: zeroed room from the global
    // allocator (straight, not through a `Vec` and its shrinking).
    if len == 0 {
        return core::ptr::NonNull::dangling().as_ptr();
    }
    let Ok(layout) = core::alloc::Layout::array::<u8>(len) else {
        // Past what can be allocated: trap, as a failed allocation does.
        core::arch::wasm32::unreachable()
    };
    // SAFETY: `layout` is not zero-sized.
    let room = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if room.is_null() {
        alloc::alloc::handle_alloc_error(layout)
    }
    room
}

/// Takes back the room [`alloc`] gave, with what was written there.
///
/// # Safety
/// `ptr` and `len` come from one call of [`alloc`], not taken before.
unsafe fn take(ptr: *mut u8, len: usize) -> Vec<u8> {
    // SAFETY: as the caller promises, a boxed slice of exactly `len` bytes.
    unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(ptr, len)) }.into_vec()
}

/// Several inputs in one run of bytes: each a `u32` length and its bytes.
/// A damaged run yields empty fields, never a panic.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn bytes(&mut self) -> &'a [u8] {
        let len = match self.0.first_chunk::<4>() {
            Some(len) => u32::from_le_bytes(*len) as usize,
            None => return &[],
        };
        let rest = &self.0[4..];
        let (field, rest) = rest.split_at(len.min(rest.len()));
        self.0 = rest;
        field
    }

    fn text(&mut self) -> Result<String, Error> {
        utf8(self.bytes()).ok_or_else(not_utf8)
    }

    /// Headers from `name\nvalue\n` lines (by hand: `str::split` weighs
    /// more), each line checked as UTF-8 once, as it becomes a `String`.
    fn headers(&mut self) -> Result<Vec<(String, String)>, Error> {
        let bytes = self.bytes();
        let mut headers = Vec::new();
        let mut name = None;
        let mut start = 0;
        for (at, &byte) in bytes.iter().enumerate() {
            if byte == b'\n' {
                let line = utf8(&bytes[start..at]).ok_or_else(not_utf8)?;
                start = at + 1;
                match name.take() {
                    None => name = Some(line),
                    Some(name) => headers.push((name, line)),
                }
            }
        }
        Ok(headers)
    }
}

fn not_utf8() -> Error {
    Error::new(ErrorKind::InvalidInput, "a text is not UTF-8")
}

/// The retry policy and budget one client's flights share.
pub struct Core {
    policy: RetryPolicy,
    budget: RetryBudget,
    retention: Duration,
    /// Whose intents these are (empty: nobody's in particular).
    user: Option<String>,
    /// Headers stored besides the allow-list, each ended by a line break
    /// (one run of bytes, as `intent::listed` reads: no `String` per name).
    stored: Vec<u8>,
    /// Headers never stored, even if allow-listed (as `stored`).
    secret: Vec<u8>,
}

impl Core {
    fn is_stored(&self, name: &str) -> bool {
        is_stored_header_or(name, listed(&self.stored, name)) && !listed(&self.secret, name)
    }
}

/// A client's core (a negative number keeps a default; a delay of 0 is
/// none): the retry policy, the retention and the attempt timeout; and
/// `input` (from [`alloc`], `len` bytes) holds the fields user (empty:
/// none), the names of headers to store besides the allow-list and of
/// headers never to store (lower-case, each ended by a line break). Free it with
/// [`core_free`]. Leaves at [`out`] the flight deadline of its policy, in
/// whole ms: the longest any wait of a flight (another context's lock,
/// the `authorize` hook) lasts.
///
/// # Safety
/// `input` and `len` come from [`alloc`].
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn core_new(
    max_attempts: f64,
    base_delay_ms: f64,
    max_delay_ms: f64,
    deadline_ms: f64,
    retention_ms: f64,
    attempt_timeout_ms: f64,
    input: *mut u8,
    len: usize,
) -> *mut Core {
    // SAFETY: as the caller promises.
    let input = unsafe { take(input, len) };
    let mut fields = Fields(&input);
    let user = fields.text().unwrap_or_default();
    let stored = fields.bytes().to_vec();
    let secret = fields.bytes().to_vec();
    let mut policy = RetryPolicy::default();
    if max_attempts >= 1.0 {
        // Saturating: past u32::MAX is as many as can be counted.
        policy.max_attempts = max_attempts as u32;
    }
    policy.base_delay = ms(base_delay_ms, policy.base_delay);
    policy.max_delay = ms(max_delay_ms, policy.max_delay);
    policy.deadline = ms(deadline_ms, policy.deadline);
    policy.attempt_timeout = ms(attempt_timeout_ms, policy.attempt_timeout);
    let mut answer = Answer::start();
    answer.number(Some(millis(policy.deadline)));
    answer.end();
    Box::into_raw(Box::new(Core {
        policy,
        budget: RetryBudget::default(),
        retention: ms(retention_ms, Duration::from_secs(24 * 60 * 60)),
        user: (!user.is_empty()).then_some(user),
        stored,
        secret,
    }))
}

/// `n` ms, or `default` for a negative `n`. Out of line: one conversion
/// for the five durations of [`core_new`].
#[inline(never)]
fn ms(n: f64, default: Duration) -> Duration {
    if n >= 0.0 {
        Duration::from_millis(n.min(1e15) as u64)
    } else {
        default
    }
}

/// Frees a core of [`core_new`].
///
/// # Safety
/// `core` comes from [`core_new`] and is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn core_free(core: *mut Core) {
    // SAFETY: as the caller promises.
    drop(unsafe { Box::from_raw(core) });
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

/// One flight of one intent: its candidate record, then the pilot's
/// decisions, and what the last one produced.
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
    /// The record to write before going on (empty: none).
    write: Vec<u8>,
    event: Option<&'static str>,
    delay: u64,
    reason: String,
    status: Option<u16>,
}

/// A flight of an intent for a call: `input` (from [`alloc`], `len` bytes)
/// holds the fields name, method, URL, headers (lower-case, as `Headers`
/// lists them; an `idempotency-key` among them is the intent's key), body,
/// fresh bytes from `crypto.getRandomValues`, and the headers the
/// `authorize` hook gave for the first attempt (their names are recorded,
/// never their values). Answers the flight (free it with [`flight_free`])
/// with the record to add, if the intent has none yet, at [`out`]; or 0
/// with why there.
///
/// # Safety
/// `core` comes from [`core_new`]; `input` and `len` from [`alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flight(core: &Core, input: *mut u8, len: usize, now: f64) -> *mut Flight {
    // SAFETY: as the caller promises.
    let input = unsafe { take(input, len) };
    match new_flight(core, Fields(&input), now as u64) {
        Ok(flight) => Box::into_raw(Box::new(flight)),
        Err(error) => {
            answer(error.message().as_bytes());
            core::ptr::null_mut()
        }
    }
}

fn new_flight(core: &Core, mut input: Fields, now: u64) -> Result<Flight, Error> {
    let name = input.text()?;
    check_name(&name)?;
    let method = input.text()?;
    let url = input.text()?;
    let headers = input.headers()?;
    let key =
        match headers.iter().find(|(n, _)| n == "idempotency-key") {
            Some((_, value)) => Some(Key::from_header(value).map_err(|_| {
                Error::new(ErrorKind::InvalidInput, "invalid Idempotency-Key header")
            })?),
            None => None,
        };
    let request = Arc::new(Request {
        method,
        url,
        headers,
        body: Body::from(input.bytes()),
    });
    request.check()?;
    let random = Arc::new(Drawn {
        bytes: input.bytes().to_vec(),
        used: Cell::new(0),
        state: Cell::new(now),
    });
    let minted = key
        .clone()
        .unwrap_or_else(|| Key::mint(now, random.as_ref()));
    let hooked = input.headers()?;
    let record = candidate(
        name,
        request.stored(|n| core.is_stored(n), &hooked),
        minted,
        now,
        core.retention,
        core.user.clone(),
    );
    let answer = Answer::start();
    encode_into(&record, answer.0);
    answer.end();
    Ok(Flight {
        random,
        fingerprint: record.fingerprint,
        candidate: Some(record),
        key,
        pilot: None,
        outcome: None,
        error: None,
        write: Vec::new(),
        event: None,
        delay: 0,
        reason: String::new(),
        status: None,
    })
}

/// Frees a flight of [`flight`].
///
/// # Safety
/// `flight` comes from [`flight`] and is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flight_free(flight: *mut Flight) {
    // SAFETY: as the caller promises.
    drop(unsafe { Box::from_raw(flight) });
}

/// Decides on the intent as stored: `stored` (`len` bytes from [`alloc`])
/// is the record found, or null when the candidate was added. Answers `FLY`
/// or `DONE` (after writing [`write`], when there is one).
///
/// # Safety
/// `stored` is null or comes from [`alloc`] with `len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn board(
    flight: &mut Flight,
    core: &Core,
    stored: *mut u8,
    len: usize,
    now: f64,
) -> u32 {
    // SAFETY: as the caller promises.
    let stored = (!stored.is_null()).then(|| unsafe { take(stored, len) });
    flight.board(stored, now as u64, core)
}

/// Starts the next attempt at `now`, with the headers it will carry (the
/// one field of `input`, from [`alloc`], `len` bytes: their names, each
/// ended by a line break): answers
/// its number (write [`write`] first, when there is one), or 0 when nothing
/// may be sent (write first, then read the error at [`info`]).
///
/// # Safety
/// `input` and `len` come from [`alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn attempt(flight: &mut Flight, input: *mut u8, len: usize, now: f64) -> u32 {
    // SAFETY: as the caller promises.
    let input = unsafe { take(input, len) };
    let names = Fields(&input).bytes();
    let Some(pilot) = flight.pilot.as_mut() else {
        return 0;
    };
    let (number, update, error) = match pilot.attempt(now as u64, |name| listed(names, name)) {
        Attempt::Send(number, update) => (number, update, None),
        Attempt::Stop(update, error) => (0, update, Some(error)),
    };
    flight.write = written(pilot.record(), update);
    if let Some(error) = error {
        flight.done(Err(error), Some("failed"));
    }
    number
}

/// The time limit in whole ms (`AbortSignal.timeout` takes no fraction)
/// of the attempt about to leave at `now`, after waiting `offline` ms to
/// be online (not counted against the deadline); or -1 when nothing may
/// leave (the retention or the deadline ended meanwhile): write [`write`],
/// then read the error at [`info`].
#[unsafe(no_mangle)]
pub extern "C" fn timeout(flight: &mut Flight, offline: f64, now: f64) -> f64 {
    let Some(pilot) = flight.pilot.as_mut() else {
        return 0.0;
    };
    // `offline` -1: how long the flight may still take (every wait, to be
    // online, ends by then).
    if offline < 0.0 {
        return millis(pilot.remaining(now as u64)) as f64;
    }
    pilot.waited_offline(offline as u64);
    match pilot.attempt_timeout(now as u64) {
        // Through u64 (`millis`): u128 arithmetic costs the package a helper.
        Ok(timeout) => millis(timeout) as f64,
        Err((update, error)) => {
            flight.write = written(pilot.record(), update);
            flight.done(Err(error), Some("failed"));
            -1.0
        }
    }
}

/// The attempt's answer: a response (`status`; `input`, from [`alloc`],
/// holds the fields headers and body), or none — `status` 0 with why as
/// the headers field, 1 when it timed out — and the `classify` hook's
/// class for it (0: the default classification; 1 settle, 2 retry, 3 in
/// progress, 4 reject, 5 unauthorized). Answers `DONE` (write first) or
/// `RETRY`.
///
/// # Safety
/// `input` and `len` come from [`alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn land(
    flight: &mut Flight,
    core: &Core,
    status: u32,
    input: *mut u8,
    len: usize,
    now: f64,
    class: u32,
) -> u32 {
    // SAFETY: as the caller promises.
    let input = unsafe { take(input, len) };
    let mut fields = Fields(&input);
    let result = match status {
        0 | 1 => {
            let kind = if status == 1 {
                TransportErrorKind::Timeout
            } else {
                TransportErrorKind::Interrupted
            };
            Err(TransportError::new(kind, fields.text().unwrap_or_default()))
        }
        _ => Ok(Response {
            status: status as u16,
            headers: fields.headers().unwrap_or_default(),
            body: Body::from(fields.bytes()),
        }),
    };
    let class = match class {
        1 => Class::Settle,
        2 => Class::Retry,
        3 => Class::InProgress,
        4 => Class::Reject,
        5 => Class::Unauthorized,
        _ => classify(result.as_ref()),
    };
    flight.land(result, class, now as u64, core)
}

/// An executor's failure before an attempt left, `input` (from [`alloc`],
/// `len` bytes) its message: the `authorize` hook's (`store` 0) or the
/// store's (1). The core says what it means as the intent stands (see
/// `Pilot::interrupted`); answers `DONE`: read the error at [`info`].
///
/// # Safety
/// `input` and `len` come from [`alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn interrupted(
    flight: &mut Flight,
    store: u32,
    input: *mut u8,
    len: usize,
) -> u32 {
    // SAFETY: as the caller promises.
    let input = unsafe { take(input, len) };
    let message = Fields(&input).text().unwrap_or_default();
    let kind = if store == 1 {
        ErrorKind::Store
    } else {
        ErrorKind::InvalidInput
    };
    let error = Error::new(kind, message);
    let error = match &flight.pilot {
        Some(pilot) => pilot.interrupted(error),
        None => error,
    };
    flight.done(Err(error), Some("failed"))
}

/// The record to write now, once, at [`out`] (empty: none).
#[unsafe(no_mangle)]
pub extern "C" fn write(flight: &mut Flight) {
    answer(&core::mem::take(&mut flight.write));
}

/// What the last step produced, at [`out`], one field per line: the
/// event's type (once; empty: none), the key, the attempts, a retry's delay
/// (ms), status and reason, the outcome's status and whether it is
/// replayed (`1`), the error's code and last status, the outcome's header
/// count and headers, and last the error's message (which may span lines).
#[unsafe(no_mangle)]
pub extern "C" fn info(flight: &mut Flight) {
    flight.info();
}

/// The outcome's body, at [`out`].
#[unsafe(no_mangle)]
pub extern "C" fn body(flight: &Flight) {
    answer(flight.outcome.as_ref().map_or(&[][..], |o| o.body()));
}

/// Whether a flight's write `next` may replace the stored record `current`
/// (both from [`alloc`], the fields of one run): the store's rule
/// (`Update::applies_to`: a settled record is final but for its expiry, an
/// expired one final), and never a record that is gone or damaged. Where
/// contexts take no Web Locks, two may write one intent; this keeps a
/// recorded outcome from being overwritten.
///
/// # Safety
/// `input` and `len` come from [`alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn applies(input: *mut u8, len: usize) -> u32 {
    // SAFETY: as the caller promises.
    let input = unsafe { take(input, len) };
    let mut fields = Fields(&input);
    let (current, next) = (decode(fields.bytes()), decode(fields.bytes()));
    let applies = match (current, next) {
        (Ok(current), Ok(next)) => oncely::store::Update {
            attempts: next.attempts,
            state: next.state,
            failure: None,
            response: None,
        }
        .applies_to(current.state),
        _ => false,
    };
    u32::from(applies)
}

/// A stored record (`len` bytes from [`alloc`]) as JavaScript reads it
/// (`pending`, `resume`, `prune`), at [`out`], one field per line: name,
/// key, attempts, creation (ms since the epoch), whether it may be pruned
/// at `now` (`1`: `Record::is_prunable`), state, whether it is unsettled
/// (`1`), whether it is the core's user's (`1`), its last status
/// (`Record::status`; empty: none), method, URL, then the request's headers; or with `body` 1, its request body (read by `resume`
/// only). Answers 0 with why at [`out`] when the record is damaged or
/// foreign.
///
/// # Safety
/// `core` comes from [`core_new`]; `bytes` and `len` from [`alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stored(
    core: &Core,
    bytes: *mut u8,
    len: usize,
    now: f64,
    body: u32,
) -> u32 {
    // SAFETY: as the caller promises.
    let record = match decode(&unsafe { take(bytes, len) }) {
        Ok(record) => record,
        Err(error) => {
            answer(error.message().as_bytes());
            return 0;
        }
    };
    if body == 1 {
        answer(&record.request.body);
        return 1;
    }
    let mut answer = Answer::start();
    answer.line(&record.name);
    answer.line(record.key.as_str());
    answer.number(Some(record.attempts.into()));
    answer.number(Some(record.created_at));
    answer.flag(record.is_prunable(now as u64));
    answer.line(record.state.as_str());
    answer.flag(record.is_unsettled());
    answer.flag(record.belongs_to(core.user.as_deref()));
    answer.number(record.status().map(u64::from));
    answer.line(&record.request.method);
    answer.line(&record.request.url);
    answer.headers(&record.request.headers);
    answer.end();
    1
}

impl Flight {
    fn board(&mut self, stored: Option<Vec<u8>>, now: u64, core: &Core) -> u32 {
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
        let claim = Claim {
            fingerprint: self.fingerprint,
            key: self.key.take(),
            owner: core.user.as_deref(),
        };
        let boarding = Pilot::board(
            record,
            created,
            claim,
            now,
            &core.policy,
            Arc::clone(&self.random) as Arc<dyn Random>,
        );
        match boarding {
            Boarding::Fly(pilot) => {
                self.pilot = Some(pilot);
                next::FLY
            }
            Boarding::Land(_, result, event) => self.done(result, event.as_ref().map(event_type)),
            Boarding::Expire(record, update, error) => {
                self.write = written(&record, update);
                self.done(Err(error), Some("failed"))
            }
        }
    }

    fn land(
        &mut self,
        result: Result<Response, TransportError>,
        class: Class,
        now: u64,
        core: &Core,
    ) -> u32 {
        let Some(pilot) = self.pilot.as_mut() else {
            return self.done(
                Err(Error::new(ErrorKind::Store, "the flight has not boarded")),
                None,
            );
        };
        let step = pilot.land(result, class, now, &core.budget);
        let written = |update| written(pilot.record(), Some(update));
        match step {
            Step::Retry {
                delay,
                reason,
                status,
            } => {
                self.event = Some("retry");
                self.delay = millis(delay);
                self.reason = reason;
                self.status = status;
                next::RETRY
            }
            Step::Settle(update, outcome) => {
                self.write = written(update);
                self.done(Ok(outcome), Some("settled"))
            }
            Step::Fail(update, error) => {
                self.write = written(update);
                self.done(Err(error), Some("failed"))
            }
        }
    }

    // Out of line: called from every way a flight ends.
    #[inline(never)]
    fn done(&mut self, result: Result<Outcome, Error>, event: Option<&'static str>) -> u32 {
        self.event = event;
        match result {
            Ok(outcome) => self.outcome = Some(outcome),
            Err(error) => self.error = Some(error),
        }
        next::DONE
    }

    fn info(&mut self) {
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
        let attempts = match (&self.outcome, record) {
            (Some(outcome), _) => outcome.attempts(),
            (None, Some(record)) => record.attempts,
            _ => 0,
        };
        let outcome = self.outcome.as_ref();
        let error = self.error.as_ref();
        let headers = outcome.map_or(&[][..], Outcome::headers);
        let mut answer = Answer::start();
        answer.line(self.event.take().unwrap_or(""));
        answer.line(key.map_or("", Key::as_str));
        answer.number(Some(attempts.into()));
        answer.number(Some(self.delay));
        answer.number(self.status.map(u64::from));
        answer.line(&self.reason);
        answer.number(outcome.map(|o| u64::from(o.status())));
        answer.flag(outcome.is_some_and(Outcome::replayed));
        answer.line(error.map_or("", |e| e.kind().code()));
        answer.number(error.and_then(Error::last_status).map(u64::from));
        answer.number(Some(headers.len() as u64));
        answer.headers(headers);
        if let Some(error) = error {
            answer.bytes(error.describe().as_bytes());
        }
        answer.end();
    }
}

/// `record` with `update` applied, as the bytes to write (empty: no
/// update). Out of line: every step that writes calls it.
#[inline(never)]
fn written(record: &Record, update: Option<Update>) -> Vec<u8> {
    update.map_or_else(Vec::new, |update| encode_updated(record, &update))
}

fn event_type(event: &EventKind) -> &'static str {
    // Boarding lands with these (`Pilot::board`): a conflict, a replay, or
    // a recorded rejection.
    match event {
        EventKind::Conflict => "conflict",
        EventKind::Replayed => "replayed",
        _ => "failed",
    }
}
