//! One flight: record the intent (or find it), then attempt under its key
//! until a definitive answer, a rejection, or the policy runs out.

use std::sync::Arc;
use std::time::Duration;

use super::Inner;
use crate::event::{EventKind, warn_unrecorded};
use futures_util::FutureExt;

use crate::intent::{Failure, Fingerprint, Record, Request, Response, State, header};
use crate::retry::{Backoff, Class, retry_after};
use crate::runtime;
use crate::store::{IntentLock, Update};
use crate::transport::{Outgoing, TransportError};
use crate::{Error, ErrorKind, Key, Outcome};

/// Why an expired intent is refused.
const EXPIRED: &str = "the intent is older than the server's retention; it is never re-sent (forget it to start anew)";

/// Runs the flight of intent `name` to its end. `key` is the caller's own
/// key (from its `Idempotency-Key` header) or, on resume, the record's.
///
/// Checking and hashing the request happen here, once per flight, not once
/// per joining duplicate: duplicates carry the same method, URL and body.
pub(super) async fn fly(
    inner: Arc<Inner>,
    name: String,
    request: Arc<Request>,
    key: Option<Key>,
) -> Result<Outcome, Error> {
    // The lock is asked for now and awaited below: the request is checked
    // and hashed while the browser grants it. Dropped unawaited (an invalid
    // request), it is released at once.
    let acquiring = inner.store.lock(&name);
    inner
        .transport
        .check(&request)
        .map_err(|message| Error::invalid_input(message).with_intent(&name, key.clone()))?;
    let fingerprint = Fingerprint::of_request(&request);
    let now = inner.clock.now_ms();
    let candidate = Record {
        name: name.clone(),
        key: key
            .clone()
            .unwrap_or_else(|| Key::mint(now, inner.random.as_ref())),
        request: inner.persistable(&request),
        fingerprint,
        created_at: now,
        expires_at: now.saturating_add(inner.retention.as_millis() as u64),
        // Created just before its first attempt: that attempt is counted
        // with the creation, saving a write.
        attempts: 1,
        state: State::Pending,
        failure: None,
        response: None,
    };
    // Where other contexts (browser tabs) share the store, fly alone: take
    // the intent's lock first, so the record read below is the latest (a
    // tab that flew it before us has settled it, and we replay).
    let lock = match acquiring {
        Some(acquire) => Some(
            acquire
                .await
                .map_err(|e| e.with_intent(&name, key.clone()))?,
        ),
        None => None,
    };
    let (record, created) = inner
        .store
        .create_or_get(candidate)
        .await
        .map_err(|e| e.with_intent(&name, key.clone()))?;
    let flight = Flight {
        inner: &inner,
        record,
        request,
        _lock: lock,
    };
    flight.run(created, key, fingerprint).await
}

struct Flight<'a> {
    inner: &'a Arc<Inner>,
    record: Record,
    /// The request as the caller gave it (credentials included), or as
    /// stored, on resume.
    request: Arc<Request>,
    /// Held for the whole flight where contexts share the store.
    _lock: Option<IntentLock>,
}

impl Flight<'_> {
    fn emit(&self, kind: EventKind) {
        self.inner
            .events
            .emit(&self.record.name, Some(&self.record.key), kind);
    }

    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message).with_intent(&self.record.name, Some(self.record.key.clone()))
    }

    async fn run(
        mut self,
        created: bool,
        key: Option<Key>,
        fingerprint: Fingerprint,
    ) -> Result<Outcome, Error> {
        let inner = self.inner;
        if created {
            self.emit(EventKind::Created);
        }
        if self.record.fingerprint != fingerprint {
            self.emit(EventKind::Conflict);
            return Err(self.error(
                ErrorKind::Conflict,
                "the intent is recorded with a different request (method, URL or body); nothing was sent",
            ));
        }
        if let Some(key) = key.filter(|k| *k != self.record.key) {
            self.emit(EventKind::Conflict);
            return Err(self.error(
                ErrorKind::Conflict,
                format!("the intent is recorded under another key than the request's {key}; nothing was sent"),
            ));
        }
        let now = inner.clock.now_ms();
        let expired = now >= self.record.expires_at;
        match (
            &self.record.state,
            &self.record.failure,
            &self.record.response,
        ) {
            (State::Expired, ..) => return Err(self.expired_error()),
            (State::Settled, _, Some(response)) if !expired => {
                self.emit(EventKind::Replayed);
                return Ok(Outcome::new(&self.record, response.clone(), true));
            }
            (State::Failed, Some(failure), _) if failure.kind == ErrorKind::Rejected => {
                let error = self
                    .error(ErrorKind::Rejected, failure.message.clone())
                    .with_last_status(failure.last_status);
                self.emit(EventKind::Failed {
                    error: error.clone(),
                });
                return Err(error);
            }
            _ if expired => {
                // Past the server's retention its key may be forgotten: sending
                // again could repeat the effect. Say so; never send.
                if self.record.state != State::Settled {
                    self.write_state(State::Expired).await?;
                }
                let error = self.expired_error();
                self.emit(EventKind::Failed {
                    error: error.clone(),
                });
                return Err(error);
            }
            (State::Settled, _, None) => {
                return Err(self.error(
                    ErrorKind::Store,
                    "the record is settled but holds no response (damaged store)",
                ));
            }
            _ => {}
        }
        self.attempt_until_done(created).await
    }

    /// Records `state` and the attempt count, clearing any failure.
    async fn write_state(&self, state: State) -> Result<(), Error> {
        let update = Update {
            attempts: self.record.attempts,
            state,
            failure: None,
            response: None,
        };
        self.inner
            .store
            .update(&self.record.name, update)
            .await
            .map_err(|e| self.context(e))
    }

    fn context(&self, error: Error) -> Error {
        error.with_intent(&self.record.name, Some(self.record.key.clone()))
    }

    fn expired_error(&self) -> Error {
        self.error(ErrorKind::Expired, EXPIRED)
    }

    async fn attempt_until_done(&mut self, created: bool) -> Result<Outcome, Error> {
        let inner = self.inner;
        let policy = &inner.policy;
        let started = inner.clock.now_ms();
        let mut deadline = started.saturating_add(policy.deadline.as_millis() as u64);
        let mut backoff = Backoff::new(
            policy.base_delay,
            policy.max_delay,
            Arc::clone(&inner.random),
        );
        let mut counted: u32 = 0;
        let mut first = created;
        let key_header = self.record.key.header_value();
        loop {
            if !first {
                self.record.attempts = self.record.attempts.saturating_add(1);
                self.write_state(State::Pending).await?;
            }
            first = false;
            counted += 1;
            self.emit(EventKind::Attempt {
                number: self.record.attempts,
            });

            // Offline (the browser says so), the attempt could only fail:
            // wait for the network, without counting the wait against the
            // deadline.
            if let Some(online) = runtime::until_online() {
                self.emit(EventKind::Offline);
                let since = inner.clock.now_ms();
                online.await;
                deadline = deadline.saturating_add(inner.clock.now_ms().saturating_sub(since));
            }
            let now = inner.clock.now_ms();
            let remaining = Duration::from_millis(deadline.saturating_sub(now));
            let credentials = inner.credentials_for(&self.request);
            let outgoing = Outgoing {
                request: &self.request,
                credentials: &credentials,
                idempotency_key: &key_header,
            };
            let result = inner
                .transport
                .send(outgoing, policy.attempt_timeout.min(remaining))
                .await;
            let class = (inner.classifier)(result.as_ref());
            let (response, cause) = match result {
                Ok(response) => (Some(response), None),
                Err(error) => (None, Some(error)),
            };
            let last_status = response.as_ref().map(|r| r.status);
            match (class, response) {
                (Class::Settle, Some(response)) => return Ok(self.settle(response)),
                (Class::Reject, _) => {
                    let message = "the server refused the key as reused with a different payload (422); never retried";
                    return Err(self
                        .fail(ErrorKind::Rejected, message.to_owned(), last_status, cause)
                        .await);
                }
                // A custom classifier settling a transport failure has no
                // response to settle with: the outcome is still unknown.
                (Class::Settle | Class::Retry | Class::InProgress, response) => {
                    if class == Class::InProgress {
                        counted -= 1;
                    }
                    let reason = match (&response, &cause) {
                        (Some(response), _) => format!("status {}", response.status),
                        (None, Some(cause)) => cause.to_string(),
                        (None, None) => "no response".to_owned(),
                    };
                    if counted >= policy.max_attempts {
                        let message = format!("gave up after {counted} attempt(s); last: {reason}");
                        return Err(self
                            .fail(ErrorKind::GaveUp, message, last_status, cause)
                            .await);
                    }
                    let now = inner.clock.now_ms();
                    let mut delay = backoff.next().unwrap_or(policy.max_delay);
                    if let Some(wait) = response.as_ref().and_then(|r| retry_after(&r.headers, now))
                    {
                        if wait > policy.max_retry_after {
                            let message = format!(
                                "the server asked to wait {} s, longer than max_retry_after ({} s); last: {reason}",
                                wait.as_secs(),
                                policy.max_retry_after.as_secs()
                            );
                            return Err(self
                                .fail(ErrorKind::GaveUp, message, last_status, cause)
                                .await);
                        }
                        delay = delay.max(wait);
                    }
                    delay = delay.max(inner.budget.reserve(now));
                    if now.saturating_add(delay.as_millis() as u64) >= deadline {
                        inner.budget.refund();
                        let message = format!(
                            "gave up: the next attempt would pass the {} s deadline; last: {reason}",
                            policy.deadline.as_secs()
                        );
                        return Err(self
                            .fail(ErrorKind::GaveUp, message, last_status, cause)
                            .await);
                    }
                    self.emit(EventKind::RetryScheduled {
                        attempt: self.record.attempts,
                        delay,
                        reason,
                        status: last_status,
                    });
                    inner.clock.sleep(delay).await;
                }
            }
        }
    }

    fn settle(&mut self, response: Response) -> Outcome {
        let update = Update {
            attempts: self.record.attempts,
            state: State::Settled,
            failure: None,
            response: Some(response.clone()),
        };
        // The write takes its place in the store now (later reads see it);
        // its completion is awaited after the callers have their answer. The
        // effect happened and the response is real: if recording fails, a
        // later call re-sends under the same key and the server replays it.
        // The write takes its place in the store now: every later operation
        // sees it. Nobody waits for it to land (a store reports a failure
        // itself); the effect happened and the response is real, and if the
        // write is lost a later call re-sends under the same key and the
        // server replays its answer.
        let written = self.inner.store.update(&self.record.name, update);
        if let Some(Err(error)) = written.now_or_never() {
            warn_unrecorded(
                &self.record.name,
                &self.record.key,
                "settled, but the outcome could not be recorded",
                &error,
            );
        }
        self.record.state = State::Settled;
        self.emit(EventKind::Settled {
            status: response.status,
            attempts: self.record.attempts,
        });
        Outcome::new(&self.record, response, false)
    }

    async fn fail(
        &mut self,
        kind: ErrorKind,
        message: String,
        last_status: Option<u16>,
        cause: Option<TransportError>,
    ) -> Error {
        let mut error = self
            .error(kind, message.clone())
            .with_last_status(last_status);
        if let Some(cause) = cause {
            error = error.with_source(cause);
        }
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
        if let Err(store_error) = self.inner.store.update(&self.record.name, update).await {
            warn_unrecorded(
                &self.record.name,
                &self.record.key,
                "the failure could not be recorded",
                &store_error,
            );
        }
        self.emit(EventKind::Failed {
            error: error.clone(),
        });
        error
    }
}

impl Inner {
    /// The request as it may be stored: without credentials (shared as is
    /// when it carries none).
    fn persistable(&self, request: &Arc<Request>) -> Arc<Request> {
        if !request
            .headers
            .iter()
            .any(|(name, _)| self.is_secret(name) || name == "idempotency-key")
        {
            return Arc::clone(request);
        }
        Arc::new(Request {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request
                .headers
                .iter()
                .filter(|(name, _)| !self.is_secret(name) && name != "idempotency-key")
                .cloned()
                .collect(),
            body: request.body.clone(),
        })
    }

    pub(super) fn is_secret(&self, name: &str) -> bool {
        self.secret_headers
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
    }

    /// The credential headers one attempt adds, from the hook (the
    /// caller's own headers win; none without a hook).
    fn credentials_for(&self, request: &Request) -> Vec<(String, String)> {
        let Some(supply) = &self.credentials else {
            return Vec::new();
        };
        supply(request)
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .filter(|(name, _)| {
                header(&request.headers, name).is_none() && name != "idempotency-key"
            })
            .collect()
    }
}
