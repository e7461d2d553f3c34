//! The decisions of one flight, apart from doing them.
//!
//! A [`Pilot`] decides, and performs nothing: the caller (its executor) reads
//! the store, sends, sleeps and writes, and tells the pilot what happened;
//! the pilot answers with the next step. There are two executors, one
//! behaviour: the Rust client's async flight (natively and in Rust apps
//! compiled to wasm) and the npm package's JavaScript, which drives the same
//! pilot compiled to WebAssembly over `fetch`, IndexedDB and Web Locks.
//!
//! ```text
//! board(record) ─┬─ Land (replay, conflict, recorded rejection)
//!                ├─ Expire (past retention: write, then fail)
//!                └─ Fly ─► attempt() ─► [write] ─► send ─► land(result)
//!                            ▲                                │
//!                            └──── sleep ◄── Retry ◄──────────┤
//!                                                 Settle/Fail ┘
//! ```
//!
//! Messages are joined from pieces, not formatted (see [`crate::text`]).

use crate::prelude::*;
use alloc::sync::Arc;
use core::time::Duration;

use crate::event::EventKind;
use crate::intent::{Failure, Fingerprint, Record, Request, Response, State};
use crate::retry::{Backoff, Class, RetryBudget, RetryPolicy, retry_after};
use crate::runtime::Random;
use crate::store::Update;
use crate::text::Text;
use crate::transport::TransportError;
use crate::{Error, ErrorKind, Key, Outcome};

/// Why an expired intent is refused.
const EXPIRED: &str = "the intent is past its retention with its outcome unknown: too old to resend safely (the server may have forgotten its key); it is never re-sent (forget it to start anew)";

/// A duration in whole milliseconds, saturating: `Duration::MAX` is
/// "forever", never a wrapped small number.
pub fn millis(duration: Duration) -> u64 {
    // Compared, not multiplied with overflow checks: on wasm32 those (and
    // `as_millis`'s u128) call a 128-bit multiplication helper.
    let secs = duration.as_secs();
    if secs > u64::MAX / 1000 {
        return u64::MAX;
    }
    (secs * 1000).saturating_add(u64::from(duration.subsec_millis()))
}

/// The record a new intent starts with, written before its first attempt
/// (counted with the creation, saving a write). `stored` is the request as
/// it may be stored and `withheld` the names of the headers left out of it
/// (see [`Request::stored`]), with those the credentials hook supplies.
pub fn candidate(
    name: String,
    (stored, withheld): (Arc<Request>, Vec<String>),
    key: Key,
    now_ms: u64,
    retention: Duration,
    owner: Option<String>,
) -> Record {
    Record {
        name,
        key,
        fingerprint: Fingerprint::of_request(&stored),
        request: stored,
        created_at: now_ms,
        expires_at: now_ms.saturating_add(millis(retention)),
        attempts: 1,
        state: State::Pending,
        failure: None,
        response: None,
        withheld,
        owner,
    }
}

/// What a call claims of the intent it names: compared with the record by
/// [`Pilot::board`].
pub struct Claim<'a> {
    /// The fingerprint of the call's request.
    pub fingerprint: Fingerprint,
    /// The caller's own key (its `Idempotency-Key`), or on resume the
    /// record's.
    pub key: Option<Key>,
    /// The user the call is made for.
    pub owner: Option<&'a str>,
}

/// What boarding a recorded intent decides.
pub enum Boarding {
    /// Attempt it: [`Pilot::attempt`].
    Fly(Pilot),
    /// Finished without sending: a replay, or an error (a conflict, a
    /// recorded rejection, a damaged record), with the event to emit.
    Land(Record, Result<Outcome, Error>, Option<EventKind>),
    /// Past the server's retention: record `update` (when there is one),
    /// then fail with the error (emitting [`EventKind::Failed`]).
    Expire(Record, Option<Update>, Error),
}

/// What starting an attempt decides.
pub enum Attempt {
    /// Record `update` (when there is one; wait for it), then send attempt
    /// number `.0`.
    Send(u32, Option<Update>),
    /// Send nothing: record `update` (when there is one), then fail with
    /// the error (emitting [`EventKind::Failed`]). The intent is past its
    /// retention, or this attempt lacks a credential the intent was sent
    /// with (the record stays as it is, unsettled).
    Stop(Option<Update>, Error),
}

/// What a landed attempt decides.
pub enum Step {
    /// A definitive response: record `update` (nobody needs to wait for
    /// it: the effect happened and the response is real) and answer.
    Settle(Update, Outcome),
    /// The flight ends without one: record `update`, then fail.
    Fail(Update, Error),
    /// Wait, then [`Pilot::attempt`] again.
    Retry {
        /// How long.
        delay: Duration,
        /// Why, for people (a status or a transport error).
        reason: String,
        /// The failed attempt's status, when a response arrived.
        status: Option<u16>,
    },
}

/// The decisions of one flight over its record (see the module's diagram).
pub struct Pilot {
    record: Record,
    policy: RetryPolicy,
    backoff: Backoff,
    /// The flight's deadline, in ms since the epoch (offline time added).
    deadline: u64,
    /// The latest time the flight has seen: a clock set back never makes
    /// an intent younger than it was.
    latest: u64,
    /// Attempts of this flight counted against `max_attempts`.
    counted: u32,
    /// Whether the next attempt is the first of this flight.
    first: bool,
    /// Whether the record was created by this flight.
    created: bool,
    /// The `Idempotency-Key` header's value, built once for every attempt
    /// (the npm package's JavaScript builds its own).
    #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
    key_header: String,
}

impl Pilot {
    /// Decides what to do with `record`, the intent as stored (`created`:
    /// just now, by this flight) when a call with `claim` names it at
    /// `now_ms`.
    pub fn board(
        record: Record,
        created: bool,
        claim: Claim<'_>,
        now_ms: u64,
        policy: &RetryPolicy,
        random: Arc<dyn Random>,
    ) -> Boarding {
        let fail = |kind, message: &str| Error::of_intent(kind, message, &record, None);
        let conflict = |message: &str| {
            let error = fail(ErrorKind::Conflict, message);
            Some((Err(error), Some(EventKind::Conflict)))
        };
        let now_ms = now_ms.max(record.created_at);
        let expired = now_ms >= record.expires_at;
        // What ends the flight before it flies, decided first so that the
        // record moves out at one place (each return would copy it).
        let landed = if !record.belongs_to(claim.owner) {
            // Neither replayed (another user's answer) nor sent (with this
            // user's credentials).
            conflict("the intent is recorded for another user; nothing was sent")
        } else if record.fingerprint != claim.fingerprint {
            conflict(
                "the intent is recorded with a different request (method, URL or body); nothing was sent",
            )
        } else if let Some(key) = claim.key.filter(|k| *k != record.key) {
            let mut message =
                Text::new("the intent is recorded under another key than the request's ");
            message.add(key.as_str()).add("; nothing was sent");
            conflict(&message.0)
        } else {
            match (&record.state, &record.failure, &record.response) {
                (State::Expired, ..) => Some((Err(fail(ErrorKind::Expired, EXPIRED)), None)),
                (State::Settled, _, Some(response)) if !expired => {
                    let outcome = Outcome::new(&record, response.clone(), true);
                    Some((Ok(outcome), Some(EventKind::Replayed)))
                }
                (State::Failed, Some(failure), _) if failure.kind == ErrorKind::Rejected => {
                    let error = Error::of_intent(
                        ErrorKind::Rejected,
                        &failure.message,
                        &record,
                        failure.last_status,
                    );
                    let event = EventKind::Failed {
                        error: error.clone(),
                    };
                    Some((Err(error), Some(event)))
                }
                // Past the server's retention its key may be forgotten:
                // sending again could repeat the effect. Say so; never send.
                _ if expired => {
                    let update = (record.state != State::Settled).then(|| expiry(&record));
                    let error = fail(ErrorKind::Expired, EXPIRED);
                    return Boarding::Expire(record, update, error);
                }
                (State::Settled, _, None) => {
                    let error = fail(
                        ErrorKind::Store,
                        "a settled record without its response (damaged store)",
                    );
                    Some((Err(error), None))
                }
                _ => None,
            }
        };
        if let Some((result, event)) = landed {
            return Boarding::Land(record, result, event);
        }
        Boarding::Fly(Pilot {
            #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
            key_header: record.key.header_value(),
            policy: policy.clone(),
            backoff: Backoff::new(policy.base_delay, policy.max_delay, random),
            deadline: now_ms.saturating_add(millis(policy.deadline)),
            latest: now_ms,
            counted: 0,
            first: created,
            created,
            record,
        })
    }

    /// The record as this flight knows it.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Whether this flight created the record.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The `Idempotency-Key` header's value.
    #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
    pub fn key_header(&self) -> &str {
        &self.key_header
    }

    /// Whether a request of this intent may have reached the server: an
    /// earlier run's attempt, or one of this flight's.
    pub fn may_have_reached(&self) -> bool {
        !self.created || self.counted > 0
    }

    /// The intent reached its retention before an attempt could leave:
    /// expired, with the update to record and the error. (Inlined: out
    /// of line it cost the npm package about 150 bytes gzipped.)
    #[inline(always)]
    fn expired(&mut self) -> (Update, Error) {
        self.record.state = State::Expired;
        let error = Error::of_intent(ErrorKind::Expired, EXPIRED, &self.record, None);
        (expiry(&self.record), error)
    }

    /// The time now, as the flight judges it: never earlier than a time it
    /// has seen.
    fn observe(&mut self, now_ms: u64) -> u64 {
        self.latest = self.latest.max(now_ms);
        self.latest
    }

    /// Starts the next attempt at `now_ms`, which carries the headers
    /// `supplied` names (the request's and the credentials hook's): sends
    /// it, or stops before anything leaves when the intent is past its
    /// retention (checked before every attempt: a wait, a suspended laptop
    /// or a clock set forward may have crossed it) or when a header the
    /// intent was sent with and never stored cannot be supplied. An attempt
    /// after the first is recorded before it is sent; the first of a new
    /// intent was recorded with its creation.
    pub fn attempt(&mut self, now_ms: u64, supplied: impl Fn(&str) -> bool) -> Attempt {
        let now_ms = self.observe(now_ms);
        if now_ms >= self.record.expires_at {
            let (update, error) = self.expired();
            return Attempt::Stop(Some(update), error);
        }
        // The names it lacks, in one pass (`supplied` is inlined at each
        // call), built in place: no `Vec` of names and no slice join ship in
        // the npm package for it.
        let mut message = String::new();
        for name in self.record.withheld.iter().filter(|name| !supplied(name)) {
            message.push_str(if message.is_empty() {
                "credentials are needed: the intent was sent with "
            } else {
                ", "
            });
            message.push_str(name);
        }
        if !message.is_empty() {
            message.push_str(
                ", never stored, and this attempt cannot supply them (give them \
                 to the credentials hook); nothing was sent, the intent stays unsettled",
            );
            let error = Error::of_intent(ErrorKind::Credentials, &message, &self.record, None);
            return Attempt::Stop(None, error);
        }
        let update = if self.first {
            None
        } else {
            self.record.attempts = self.record.attempts.saturating_add(1);
            Some(Update {
                attempts: self.record.attempts,
                state: State::Pending,
                failure: None,
                response: None,
            })
        };
        self.first = false;
        self.counted += 1;
        Attempt::Send(self.record.attempts, update)
    }

    /// An executor's failure before an attempt left (the store, the
    /// credentials hook), said as the intent stands: `error` as it is while
    /// nothing of the intent has been sent; once a request may have reached
    /// the server, a resumable kind instead (`Credentials` for the hook,
    /// `GaveUp` otherwise), never `InvalidInput` or `Store`, which say
    /// nothing was sent.
    pub fn interrupted(&self, error: Error) -> Error {
        if !self.may_have_reached() {
            return error;
        }
        let kind = match error.kind() {
            ErrorKind::InvalidInput | ErrorKind::Credentials => ErrorKind::Credentials,
            _ => ErrorKind::GaveUp,
        };
        let mut message = Text::new(error.message());
        message.add(" (after a request of the intent may have reached the server: it stays unsettled, resumable under its key)");
        let interrupted = Error::of_intent(kind, &message.0, &self.record, None);
        #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
        let interrupted = interrupted.with_source(error);
        interrupted
    }

    /// Time spent waiting to be online is not counted against the deadline
    /// (the retention still is: see [`attempt`](Self::attempt)).
    pub fn waited_offline(&mut self, ms: u64) {
        self.deadline = self.deadline.saturating_add(ms);
    }

    /// How long the flight may still take at `now_ms`: until its deadline
    /// or the intent's retention, whichever ends first. Every wait of an
    /// executor (to be online, say) ends by then.
    pub fn remaining(&mut self, now_ms: u64) -> Duration {
        let now_ms = self.observe(now_ms);
        let end = self.deadline.min(self.record.expires_at);
        Duration::from_millis(end.saturating_sub(now_ms))
    }

    /// The time limit of the attempt about to leave at `now_ms`: within the
    /// flight's deadline and the intent's retention. When either has ended
    /// meanwhile (recording the attempt took that long), nothing may leave:
    /// the stop to record (an expiry) and the error.
    pub fn attempt_timeout(&mut self, now_ms: u64) -> Result<Duration, (Option<Update>, Error)> {
        let remaining = self.remaining(now_ms);
        if !remaining.is_zero() {
            return Ok(self.policy.attempt_timeout.min(remaining));
        }
        if self.latest >= self.record.expires_at {
            let (update, error) = self.expired();
            return Err((Some(update), error));
        }
        let message =
            "gave up: the deadline passed before the attempt could leave; nothing was sent";
        Err((
            None,
            Error::of_intent(ErrorKind::GaveUp, message, &self.record, None),
        ))
    }

    /// Whether a [`Step::Settle`] of an attempt classified `class` is
    /// answered only once its update is recorded (a refused write is the
    /// error). The first attempt's refusal of who sent it (401, 403, 407)
    /// answers that attempt, not the key: it is the outcome only if no
    /// other attempt of the intent can have been made, which a store that
    /// fences a stalled holder confirms by accepting the write. (An
    /// executor whose locks never lapse may settle it as any other.)
    pub fn confirms(class: Class) -> bool {
        class == Class::Unauthorized
    }

    /// The event a landed attempt's `step` emits.
    pub fn event(&self, step: &Step) -> EventKind {
        match step {
            Step::Settle(_, outcome) => EventKind::Settled {
                status: outcome.status(),
                attempts: outcome.attempts(),
            },
            Step::Fail(_, error) => EventKind::Failed {
                error: error.clone(),
            },
            Step::Retry {
                delay,
                reason,
                status,
            } => EventKind::RetryScheduled {
                attempt: self.record.attempts,
                delay: *delay,
                reason: reason.clone(),
                status: *status,
            },
        }
    }

    /// Decides what the attempt's `result` (classified `class`) means at
    /// `now_ms`, reserving a retry from the client's `budget`.
    pub fn land(
        &mut self,
        result: Result<Response, TransportError>,
        class: Class,
        now_ms: u64,
        budget: &RetryBudget,
    ) -> Step {
        let now_ms = self.observe(now_ms);
        let (response, cause) = match result {
            Ok(response) => (Some(response), None),
            Err(error) => (None, Some(error)),
        };
        let last_status = response.as_ref().map(|r| r.status);
        match (class, response) {
            (Class::Settle, Some(response)) => self.settle(response),
            // The first attempt's refusal is the answer to the request as
            // sent; after an earlier attempt that may have been carried
            // out, it says nothing of that one.
            (Class::Unauthorized, Some(response)) if self.record.attempts <= 1 => self.settle(response),
            (Class::Unauthorized, Some(response)) => {
                let mut message = Text::new("the server refused who sent it (");
                message.number(response.status.into()).add(
                    ") after an earlier attempt may have reached it: the intent stays unsettled, \
                     resume it with valid credentials",
                );
                self.fail(ErrorKind::Credentials, message.0, last_status, cause)
            }
            (Class::Reject, _) => self.fail(
                ErrorKind::Rejected,
                "the server refused the key as reused with a different payload (422); never retried".to_owned(),
                last_status,
                cause,
            ),
            // A custom classifier settling a transport failure has no
            // response to settle with: the outcome is still unknown.
            (Class::Settle | Class::Unauthorized | Class::Retry | Class::InProgress, response) => {
                if class == Class::InProgress {
                    self.counted -= 1;
                }
                let reason = match (&response, &cause) {
                    (Some(response), _) => {
                        let mut reason = Text::new("status ");
                        reason.number(response.status.into());
                        reason.0
                    }
                    (None, Some(cause)) => cause.describe(),
                    (None, None) => "no response".to_owned(),
                };
                if self.counted >= self.policy.max_attempts {
                    let mut message = Text::new("gave up after ");
                    message.number(self.counted.into()).add(" attempt(s); last: ").add(&reason);
                    return self.fail(ErrorKind::GaveUp, message.0, last_status, cause);
                }
                let mut delay = self.backoff.next().unwrap_or(self.policy.max_delay);
                if let Some(wait) = response.as_ref().and_then(|r| retry_after(&r.headers, now_ms)) {
                    if wait > self.policy.max_retry_after {
                        let mut message = Text::new("the server asked to wait ");
                        message
                            .number(wait.as_secs())
                            .add(" s, longer than max_retry_after (")
                            .number(self.policy.max_retry_after.as_secs())
                            .add(" s); last: ")
                            .add(&reason);
                        return self.fail(ErrorKind::GaveUp, message.0, last_status, cause);
                    }
                    delay = delay.max(wait);
                }
                delay = delay.max(budget.reserve(now_ms));
                let next = now_ms.saturating_add(millis(delay));
                if next >= self.record.expires_at {
                    // The next attempt would leave past the retention: the
                    // outcome stays unknown, and the intent too old to send.
                    budget.refund();
                    let mut message = Text::new("the next attempt would be past the intent's retention; last: ");
                    message.add(&reason);
                    return self.expire(message.0, last_status, cause);
                }
                if next >= self.deadline {
                    budget.refund();
                    let mut message = Text::new("gave up: the next attempt would pass the ");
                    message
                        .number(self.policy.deadline.as_secs())
                        .add(" s deadline; last: ")
                        .add(&reason);
                    return self.fail(ErrorKind::GaveUp, message.0, last_status, cause);
                }
                Step::Retry {
                    delay,
                    reason,
                    status: last_status,
                }
            }
        }
    }

    fn settle(&mut self, response: Response) -> Step {
        self.record.state = State::Settled;
        let update = Update {
            attempts: self.record.attempts,
            state: State::Settled,
            failure: None,
            response: Some(response.clone()),
        };
        Step::Settle(update, Outcome::new(&self.record, response, false))
    }

    fn expire(
        &mut self,
        reason: String,
        last_status: Option<u16>,
        cause: Option<TransportError>,
    ) -> Step {
        let mut message = Text::new(EXPIRED);
        message.add(" (").add(&reason).add(")");
        let error = self.error(ErrorKind::Expired, &message.0, last_status, cause);
        self.record.state = State::Expired;
        Step::Fail(expiry(&self.record), error)
    }

    fn fail(
        &mut self,
        kind: ErrorKind,
        message: String,
        last_status: Option<u16>,
        cause: Option<TransportError>,
    ) -> Step {
        let error = self.error(kind, &message, last_status, cause);
        self.record.state = State::Failed;
        let update = Update {
            attempts: self.record.attempts,
            state: State::Failed,
            failure: Some(Failure {
                kind,
                message,
                last_status,
            }),
            response: None,
        };
        Step::Fail(update, error)
    }

    fn error(
        &self,
        kind: ErrorKind,
        message: &str,
        last_status: Option<u16>,
        cause: Option<TransportError>,
    ) -> Error {
        let error = Error::of_intent(kind, message, &self.record, last_status);
        // The cause, for Rust callers (`source()`); the npm package's core
        // hands its JavaScript the message alone.
        #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
        let error = match cause {
            Some(cause) => error.with_source(cause),
            None => error,
        };
        #[cfg(all(target_arch = "wasm32", not(feature = "browser")))]
        drop(cause);
        error
    }
}

/// The update that marks `record` expired: its outcome unknown, too old to
/// resend.
fn expiry(record: &Record) -> Update {
    Update {
        attempts: record.attempts,
        state: State::Expired,
        failure: None,
        response: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::TopRandom;
    use bytes::Bytes;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: u64 = 1_000_000;

    fn record() -> Record {
        let request = Arc::new(Request {
            method: "POST".to_owned(),
            url: "https://api.example/charges".to_owned(),
            headers: Vec::new(),
            body: Bytes::from_static(b"{\"amount\":42}"),
        });
        let key = Key::new("key-1").expect("a valid key");
        candidate(
            "order-1".to_owned(),
            (request, Vec::new()),
            key,
            NOW,
            Duration::from_secs(3600),
            None,
        )
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            deadline: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(30),
        }
    }

    fn board(record: Record, created: bool, fingerprint: Fingerprint) -> Boarding {
        let claim = Claim {
            fingerprint,
            key: None,
            owner: None,
        };
        Pilot::board(record, created, claim, NOW, &policy(), Arc::new(TopRandom))
    }

    fn fly(record: Record) -> Pilot {
        let fingerprint = record.fingerprint;
        match board(record, true, fingerprint) {
            Boarding::Fly(pilot) => pilot,
            _ => panic!("a new intent flies"),
        }
    }

    fn response(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: Bytes::from_static(b"{}"),
        }
    }

    /// Starts an attempt at `NOW` with every header supplied.
    fn attempt(pilot: &mut Pilot) -> (u32, Option<Update>) {
        match pilot.attempt(NOW, |_| true) {
            Attempt::Send(number, update) => (number, update),
            Attempt::Stop(_, error) => panic!("the attempt stopped: {error}"),
        }
    }

    fn land(pilot: &mut Pilot, response: Response, budget: &RetryBudget) -> Step {
        let class = crate::retry::classify(Ok(&response));
        pilot.land(Ok(response), class, NOW, budget)
    }

    fn kind(step: &Step) -> Option<ErrorKind> {
        match step {
            Step::Fail(_, error) => Some(error.kind()),
            _ => None,
        }
    }

    #[test]
    fn another_request_under_the_name_lands_as_a_conflict_without_flying() {
        let boarding = board(
            record(),
            false,
            Fingerprint::of("POST", "https://api.example/charges", b"{\"amount\":43}"),
        );
        match boarding {
            Boarding::Land(_, Err(error), Some(EventKind::Conflict)) => {
                assert_eq!(error.kind(), ErrorKind::Conflict);
            }
            _ => panic!("a changed body is a conflict"),
        }
    }

    #[test]
    fn a_settled_intent_replays_and_an_expired_one_is_never_sent() {
        let mut settled = record();
        settled.state = State::Settled;
        settled.response = Some(response(201, &[]));
        let fingerprint = settled.fingerprint;
        match board(settled.clone(), false, fingerprint) {
            Boarding::Land(_, Ok(outcome), Some(EventKind::Replayed)) => {
                assert!(outcome.replayed());
                assert_eq!(outcome.status(), 201);
            }
            _ => panic!("a settled intent replays"),
        }
        let mut pending = record();
        pending.expires_at = NOW;
        match board(pending, false, fingerprint) {
            Boarding::Expire(_, Some(update), error) => {
                assert_eq!(update.state, State::Expired);
                assert_eq!(error.kind(), ErrorKind::Expired);
            }
            _ => panic!("past retention, a pending intent expires"),
        }
    }

    #[test]
    fn attempts_after_the_first_are_recorded_before_they_are_sent() {
        let mut pilot = fly(record());
        assert!(pilot.created());
        #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
        assert_eq!(pilot.key_header(), "\"key-1\"");
        let (number, update) = attempt(&mut pilot);
        assert_eq!(
            (number, update.is_none()),
            (1, true),
            "the first was recorded with the creation"
        );
        let step = land(&mut pilot, response(503, &[]), &RetryBudget::default());
        assert!(
            matches!(step, Step::Retry { delay, status: Some(503), .. } if delay == Duration::from_millis(100))
        );
        let (number, update) = attempt(&mut pilot);
        assert_eq!(number, 2);
        assert_eq!(
            update.map(|u| (u.attempts, u.state)),
            Some((2, State::Pending))
        );
        match land(&mut pilot, response(201, &[]), &RetryBudget::default()) {
            Step::Settle(update, outcome) => {
                assert_eq!((update.state, update.attempts), (State::Settled, 2));
                assert_eq!(
                    (outcome.status(), outcome.attempts(), outcome.replayed()),
                    (201, 2, false)
                );
            }
            _ => panic!("a 201 settles"),
        }
    }

    #[test]
    fn a_422_fails_at_once_and_attempts_run_out_as_gave_up() {
        let mut pilot = fly(record());
        attempt(&mut pilot);
        let step = land(&mut pilot, response(422, &[]), &RetryBudget::default());
        assert_eq!(kind(&step), Some(ErrorKind::Rejected));

        let mut pilot = fly(record());
        let budget = RetryBudget::default();
        for _ in 0..2 {
            attempt(&mut pilot);
            assert!(matches!(
                land(&mut pilot, response(500, &[]), &budget),
                Step::Retry { .. }
            ));
        }
        attempt(&mut pilot);
        let step = land(&mut pilot, response(500, &[]), &budget);
        assert_eq!(kind(&step), Some(ErrorKind::GaveUp));
        assert!(
            matches!(step, Step::Fail(ref update, _) if update.state == State::Failed && update.attempts == 3)
        );
    }

    #[test]
    fn retry_after_is_waited_for_unless_it_is_too_long() {
        let mut pilot = fly(record());
        attempt(&mut pilot);
        let step = land(
            &mut pilot,
            response(429, &[("retry-after", "5")]),
            &RetryBudget::default(),
        );
        assert!(matches!(step, Step::Retry { delay, .. } if delay == Duration::from_secs(5)));
        attempt(&mut pilot);
        let step = land(
            &mut pilot,
            response(429, &[("retry-after", "11")]),
            &RetryBudget::default(),
        );
        assert_eq!(kind(&step), Some(ErrorKind::GaveUp));
    }

    #[test]
    fn time_offline_does_not_count_against_the_deadline() {
        let mut pilot = fly(record());
        assert_eq!(
            pilot.attempt_timeout(NOW + 50_000).ok(),
            Some(Duration::from_secs(10))
        );
        pilot.waited_offline(40_000);
        assert_eq!(
            pilot.attempt_timeout(NOW + 50_000).ok(),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn no_attempt_leaves_at_or_after_the_retention() {
        let mut record = record();
        // Within the flight's deadline (60 s).
        record.expires_at = NOW + 30_000;
        let expires_at = record.expires_at;
        // Before every attempt: a wait or a suspended laptop crossed it.
        let mut pilot = fly(record.clone());
        match pilot.attempt(expires_at, |_| true) {
            Attempt::Stop(Some(update), error) => {
                assert_eq!(update.state, State::Expired);
                assert_eq!(error.kind(), ErrorKind::Expired);
                assert!(error.message().contains("outcome unknown"), "{error}");
            }
            _ => panic!("an attempt at the retention's end is not sent"),
        }
        // A backoff that would cross it ends the flight as expired, now.
        let mut pilot = fly(record.clone());
        attempt(&mut pilot);
        let class = crate::retry::classify(Ok(&response(503, &[])));
        let step = pilot.land(
            Ok(response(503, &[])),
            class,
            expires_at - 50,
            &RetryBudget::default(),
        );
        assert!(
            matches!(&step, Step::Fail(update, e) if update.state == State::Expired && e.kind() == ErrorKind::Expired)
        );
        // A clock set back afterwards does not make it young again.
        let mut pilot = fly(record);
        attempt(&mut pilot);
        assert_eq!(
            pilot.attempt_timeout(expires_at - 5).ok(),
            Some(Duration::from_millis(5))
        );
        // Reached while the attempt was being recorded: it does not leave.
        match pilot.attempt_timeout(expires_at) {
            Err((Some(update), error)) => {
                assert_eq!(
                    (update.state, error.kind()),
                    (State::Expired, ErrorKind::Expired)
                );
            }
            _ => panic!("nothing leaves at the retention's end"),
        }
        assert!(matches!(
            pilot.attempt(NOW, |_| true),
            Attempt::Stop(Some(_), _)
        ));
    }

    #[test]
    fn huge_durations_saturate_instead_of_wrapping() {
        let mut policy = policy();
        policy.max_retry_after = Duration::MAX;
        policy.deadline = Duration::MAX;
        let record = record();
        let fingerprint = record.fingerprint;
        let claim = Claim {
            fingerprint,
            key: None,
            owner: None,
        };
        let Boarding::Fly(mut pilot) =
            Pilot::board(record, true, claim, NOW, &policy, Arc::new(TopRandom))
        else {
            panic!("a new intent flies");
        };
        attempt(&mut pilot);
        let answer = response(503, &[("retry-after", "18446744073709552")]);
        let class = crate::retry::classify(Ok(&answer));
        match pilot.land(Ok(answer), class, NOW, &RetryBudget::default()) {
            Step::Fail(update, error) => {
                assert_eq!(
                    (update.state, error.kind()),
                    (State::Expired, ErrorKind::Expired)
                );
            }
            _ => panic!("a wait past the retention ends the flight"),
        }
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn millis_is_as_millis_saturated() {
        let top = u64::MAX / 1000;
        for duration in [
            Duration::ZERO,
            Duration::from_nanos(999_999),
            Duration::new(1, 999_999_999),
            Duration::new(top, 614_000_000),
            Duration::new(top, 615_999_999),
            Duration::new(top, 616_000_000),
            Duration::new(top + 1, 0),
            Duration::MAX,
        ] {
            let expected = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
            assert_eq!(millis(duration), expected, "{duration:?}");
        }
    }

    #[test]
    fn an_attempt_without_a_withheld_credential_is_not_sent() {
        let mut record = record();
        record.withheld = vec!["authorization".to_owned(), "x-api-key".to_owned()];
        let mut pilot = fly(record);
        match pilot.attempt(NOW, |name| name == "authorization") {
            Attempt::Stop(None, error) => {
                assert_eq!(error.kind(), ErrorKind::Credentials);
                assert!(error.message().contains("x-api-key"), "{error}");
                assert!(!error.message().contains("authorization,"), "{error}");
            }
            _ => panic!("nothing is sent without x-api-key"),
        }
        assert!(matches!(
            pilot.attempt(NOW, |_| true),
            Attempt::Send(1, None)
        ));
    }

    #[test]
    fn an_auth_failure_settles_only_a_first_attempt() {
        // ...answered once recorded; any other settlement at once.
        assert!(Pilot::confirms(Class::Unauthorized));
        assert!(!Pilot::confirms(Class::Settle));
        let budget = RetryBudget::default();
        let mut pilot = fly(record());
        attempt(&mut pilot);
        assert!(matches!(
            land(&mut pilot, response(401, &[]), &budget),
            Step::Settle(..)
        ));

        let mut pilot = fly(record());
        attempt(&mut pilot);
        assert!(matches!(
            land(&mut pilot, response(503, &[]), &budget),
            Step::Retry { .. }
        ));
        attempt(&mut pilot);
        match land(&mut pilot, response(403, &[]), &budget) {
            Step::Fail(update, error) => {
                assert_eq!(error.kind(), ErrorKind::Credentials);
                assert_eq!(error.last_status(), Some(403));
                let mut record = record();
                record.apply(update);
                assert!(record.is_unsettled(), "it stays resumable");
            }
            _ => panic!("a 403 after a 503 decides nothing"),
        }
    }

    #[test]
    fn another_users_intent_is_neither_replayed_nor_sent() {
        let mut settled = record();
        settled.owner = Some("alice".to_owned());
        settled.state = State::Settled;
        settled.response = Some(response(201, &[]));
        let claim = Claim {
            fingerprint: settled.fingerprint,
            key: None,
            owner: Some("bob"),
        };
        match Pilot::board(settled, false, claim, NOW, &policy(), Arc::new(TopRandom)) {
            Boarding::Land(_, Err(error), Some(EventKind::Conflict)) => {
                assert!(error.message().contains("another user"), "{error}");
            }
            _ => panic!("bob gets nothing of alice's intent"),
        }
    }

    #[test]
    fn an_executor_failure_after_a_send_is_resumable() {
        let mut pilot = fly(record());
        let invalid = Error::invalid_input("the credentials hook: bad header");
        assert_eq!(
            pilot.interrupted(invalid.clone()).kind(),
            ErrorKind::InvalidInput
        );
        attempt(&mut pilot);
        assert_eq!(pilot.interrupted(invalid).kind(), ErrorKind::Credentials);
        let store = Error::store("disk full");
        assert_eq!(pilot.interrupted(store).kind(), ErrorKind::GaveUp);
    }
}
