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
use crate::text::decimal;
use crate::transport::TransportError;
use crate::{Error, ErrorKind, Key, Outcome};

/// Why an expired intent is refused.
const EXPIRED: &str = "the intent is older than the server's retention; it is never re-sent (forget it to start anew)";

/// The record a new intent starts with, written before its first attempt
/// (counted with the creation, saving a write). `stored` is the request
/// without credentials.
pub fn candidate(
    name: String,
    stored: Arc<Request>,
    key: Key,
    now_ms: u64,
    retention: Duration,
) -> Record {
    Record {
        name,
        key,
        fingerprint: Fingerprint::of_request(&stored),
        request: stored,
        created_at: now_ms,
        expires_at: now_ms.saturating_add(retention.as_millis() as u64),
        attempts: 1,
        state: State::Pending,
        failure: None,
        response: None,
    }
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
    /// Attempts of this flight counted against `max_attempts`.
    counted: u32,
    /// Whether the next attempt is the first of this flight.
    first: bool,
    /// Whether the record was created by this flight.
    created: bool,
    key_header: String,
}

impl Pilot {
    /// Decides what to do with `record`, the intent as stored (`created`:
    /// just now, by this flight) when a call with `fingerprint` and the
    /// caller's own `key` (if it gave one) names it at `now_ms`.
    pub fn board(
        record: Record,
        created: bool,
        fingerprint: Fingerprint,
        key: Option<Key>,
        now_ms: u64,
        policy: &RetryPolicy,
        random: Arc<dyn Random>,
    ) -> Boarding {
        let fail = |kind, message: &str| Error::of_intent(kind, message, &record, None);
        if record.fingerprint != fingerprint {
            let error = fail(
                ErrorKind::Conflict,
                "the intent is recorded with a different request (method, URL or body); nothing was sent",
            );
            return Boarding::Land(record, Err(error), Some(EventKind::Conflict));
        }
        if let Some(key) = key.filter(|k| *k != record.key) {
            let error = fail(
                ErrorKind::Conflict,
                &[
                    "the intent is recorded under another key than the request's ",
                    key.as_str(),
                    "; nothing was sent",
                ]
                .concat(),
            );
            return Boarding::Land(record, Err(error), Some(EventKind::Conflict));
        }
        let expired = now_ms >= record.expires_at;
        match (&record.state, &record.failure, &record.response) {
            (State::Expired, ..) => {
                let error = fail(ErrorKind::Expired, EXPIRED);
                return Boarding::Land(record, Err(error), None);
            }
            (State::Settled, _, Some(response)) if !expired => {
                let outcome = Outcome::new(&record, response.clone(), true);
                return Boarding::Land(record, Ok(outcome), Some(EventKind::Replayed));
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
                return Boarding::Land(record, Err(error), Some(event));
            }
            // Past the server's retention its key may be forgotten: sending
            // again could repeat the effect. Say so; never send.
            _ if expired => {
                let update = (record.state != State::Settled).then_some(Update {
                    attempts: record.attempts,
                    state: State::Expired,
                    failure: None,
                    response: None,
                });
                let error = fail(ErrorKind::Expired, EXPIRED);
                return Boarding::Expire(record, update, error);
            }
            (State::Settled, _, None) => {
                let error = fail(
                    ErrorKind::Store,
                    "the record is settled but holds no response (damaged store)",
                );
                return Boarding::Land(record, Err(error), None);
            }
            _ => {}
        }
        Boarding::Fly(Pilot {
            key_header: record.key.header_value(),
            policy: policy.clone(),
            backoff: Backoff::new(policy.base_delay, policy.max_delay, random),
            deadline: now_ms.saturating_add(policy.deadline.as_millis() as u64),
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
    pub fn key_header(&self) -> &str {
        &self.key_header
    }

    /// Starts the next attempt: its number, and the update to record (and
    /// wait for) before sending it. The first attempt of a new intent was
    /// recorded with its creation.
    pub fn attempt(&mut self) -> (u32, Option<Update>) {
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
        (self.record.attempts, update)
    }

    /// Time spent waiting to be online is not counted against the deadline.
    pub fn waited_offline(&mut self, ms: u64) {
        self.deadline = self.deadline.saturating_add(ms);
    }

    /// The time limit of the attempt about to be sent at `now_ms`.
    pub fn attempt_timeout(&self, now_ms: u64) -> Duration {
        let remaining = Duration::from_millis(self.deadline.saturating_sub(now_ms));
        self.policy.attempt_timeout.min(remaining)
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
        let (response, cause) = match result {
            Ok(response) => (Some(response), None),
            Err(error) => (None, Some(error)),
        };
        let last_status = response.as_ref().map(|r| r.status);
        match (class, response) {
            (Class::Settle, Some(response)) => self.settle(response),
            (Class::Reject, _) => self.fail(
                ErrorKind::Rejected,
                "the server refused the key as reused with a different payload (422); never retried".to_owned(),
                last_status,
                cause,
            ),
            // A custom classifier settling a transport failure has no
            // response to settle with: the outcome is still unknown.
            (Class::Settle | Class::Retry | Class::InProgress, response) => {
                if class == Class::InProgress {
                    self.counted -= 1;
                }
                let reason = match (&response, &cause) {
                    (Some(response), _) => ["status ", &decimal(response.status.into())].concat(),
                    (None, Some(cause)) => cause.describe(),
                    (None, None) => "no response".to_owned(),
                };
                if self.counted >= self.policy.max_attempts {
                    let counted = decimal(self.counted.into());
                    let message = ["gave up after ", &counted, " attempt(s); last: ", &reason];
                    return self.fail(ErrorKind::GaveUp, message.concat(), last_status, cause);
                }
                let mut delay = self.backoff.next().unwrap_or(self.policy.max_delay);
                if let Some(wait) = response.as_ref().and_then(|r| retry_after(&r.headers, now_ms)) {
                    if wait > self.policy.max_retry_after {
                        let message = [
                            "the server asked to wait ",
                            &decimal(wait.as_secs()),
                            " s, longer than max_retry_after (",
                            &decimal(self.policy.max_retry_after.as_secs()),
                            " s); last: ",
                            &reason,
                        ];
                        return self.fail(ErrorKind::GaveUp, message.concat(), last_status, cause);
                    }
                    delay = delay.max(wait);
                }
                delay = delay.max(budget.reserve(now_ms));
                if now_ms.saturating_add(delay.as_millis() as u64) >= self.deadline {
                    budget.refund();
                    let message = [
                        "gave up: the next attempt would pass the ",
                        &decimal(self.policy.deadline.as_secs()),
                        " s deadline; last: ",
                        &reason,
                    ];
                    return self.fail(ErrorKind::GaveUp, message.concat(), last_status, cause);
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

    fn fail(
        &mut self,
        kind: ErrorKind,
        message: String,
        last_status: Option<u16>,
        cause: Option<TransportError>,
    ) -> Step {
        let error = Error::of_intent(kind, &message, &self.record, last_status);
        // The cause, for Rust callers (`source()`); the npm package's core
        // hands its JavaScript the message alone.
        #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
        let error = match cause {
            Some(cause) => error.with_source(cause),
            None => error,
        };
        #[cfg(all(target_arch = "wasm32", not(feature = "browser")))]
        drop(cause);
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
            request,
            key,
            NOW,
            Duration::from_secs(3600),
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
        Pilot::board(
            record,
            created,
            fingerprint,
            None,
            NOW,
            &policy(),
            Arc::new(TopRandom),
        )
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
        assert_eq!(pilot.key_header(), "\"key-1\"");
        let (number, update) = pilot.attempt();
        assert_eq!(
            (number, update.is_none()),
            (1, true),
            "the first was recorded with the creation"
        );
        let step = land(&mut pilot, response(503, &[]), &RetryBudget::default());
        assert!(
            matches!(step, Step::Retry { delay, status: Some(503), .. } if delay == Duration::from_millis(100))
        );
        let (number, update) = pilot.attempt();
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
        pilot.attempt();
        let step = land(&mut pilot, response(422, &[]), &RetryBudget::default());
        assert_eq!(kind(&step), Some(ErrorKind::Rejected));

        let mut pilot = fly(record());
        let budget = RetryBudget::default();
        for _ in 0..2 {
            pilot.attempt();
            assert!(matches!(
                land(&mut pilot, response(500, &[]), &budget),
                Step::Retry { .. }
            ));
        }
        pilot.attempt();
        let step = land(&mut pilot, response(500, &[]), &budget);
        assert_eq!(kind(&step), Some(ErrorKind::GaveUp));
        assert!(
            matches!(step, Step::Fail(ref update, _) if update.state == State::Failed && update.attempts == 3)
        );
    }

    #[test]
    fn retry_after_is_waited_for_unless_it_is_too_long() {
        let mut pilot = fly(record());
        pilot.attempt();
        let step = land(
            &mut pilot,
            response(429, &[("retry-after", "5")]),
            &RetryBudget::default(),
        );
        assert!(matches!(step, Step::Retry { delay, .. } if delay == Duration::from_secs(5)));
        pilot.attempt();
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
        assert_eq!(pilot.attempt_timeout(NOW + 50_000), Duration::from_secs(10));
        pilot.waited_offline(40_000);
        assert_eq!(pilot.attempt_timeout(NOW + 50_000), Duration::from_secs(30));
    }
}
