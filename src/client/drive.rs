//! One flight, performed: record the intent (or find it), then attempt under
//! its key as the [`Pilot`] decides, until a definitive answer, a rejection,
//! or the policy runs out.

use std::borrow::Cow;
use std::sync::Arc;

use super::Inner;
use super::intent_request::checked_header;
use crate::event::{EventKind, warn_unrecorded};
use crate::flight::FlightKey;
use futures_util::FutureExt;

use crate::intent::{Fingerprint, Record, Request, State, header, is_stored_header};
use crate::pilot::{Attempt, Boarding, Claim, Pilot, Step, candidate};
use crate::runtime;
use crate::store::{IntentLock, Update};
use crate::transport::Outgoing;
use crate::{Error, Key, Outcome};

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
    known: Option<FlightKey>,
) -> Result<Outcome, Error> {
    // The lock is asked for now and awaited below: the request is checked
    // and hashed while the browser grants it. Dropped unawaited (an invalid
    // request), it is released at once.
    let acquiring = inner.store.lock(&name);
    let Prepared {
        request,
        credentials,
        record,
    } = inner
        .candidate(&name, request, key.as_ref())
        .map_err(|e| e.with_intent(&name, key.clone()))?;
    let refuse = |e: Error| e.with_intent(&name, key.clone());
    let fingerprint = record.fingerprint;
    // Where other contexts (browser tabs) share the store, fly alone: take
    // the intent's lock first, so the record read below is the latest (a
    // tab that flew it before us has settled it, and we replay).
    let lock = inner.bounded(acquiring).await.map_err(refuse)?;
    let (record, created) = inner.store.create_or_get(record).await.map_err(refuse)?;
    if let Some(known) = known {
        known.set(&record.key);
    }
    Flight {
        inner: &inner,
        request,
        _lock: lock,
    }
    .run(record, created, fingerprint, key, credentials)
    .await
}

/// A call's request as it is recorded and sent, the hook's credentials for
/// its first attempt, and its candidate record (see [`Inner::candidate`]).
pub(super) struct Prepared {
    pub request: Arc<Request>,
    pub credentials: Vec<(String, String)>,
    pub record: Record,
}

struct Flight<'a> {
    inner: &'a Arc<Inner>,
    /// The request as the caller gave it (credentials included), or as
    /// stored, on resume.
    request: Arc<Request>,
    /// Held for the whole flight where contexts share the store.
    _lock: Option<IntentLock>,
}

impl Flight<'_> {
    async fn run(
        &self,
        record: Record,
        created: bool,
        fingerprint: Fingerprint,
        key: Option<Key>,
        credentials: Vec<(String, String)>,
    ) -> Result<Outcome, Error> {
        let inner = self.inner;
        let emit = |record: &Record, kind| inner.events.emit(&record.name, Some(&record.key), kind);
        // A store failure, said of the intent as recorded.
        let context = |record: &Record, e: Error| e.with_intent(&record.name, Some(record.key.clone()));
        if created {
            emit(&record, EventKind::Created);
        }
        let now = inner.clock.now_ms();
        let claim = Claim {
            fingerprint,
            key,
            owner: inner.user.as_deref(),
        };
        let boarding = Pilot::board(
            record,
            created,
            claim,
            now,
            &inner.policy,
            Arc::clone(&inner.random),
        );
        let mut pilot = match boarding {
            Boarding::Fly(pilot) => pilot,
            Boarding::Land(record, result, event) => {
                if let Some(event) = event {
                    emit(&record, event);
                }
                return result;
            }
            Boarding::Expire(record, update, error) => return self.fail(&record, update, error).await,
        };
        let mut first_credentials = Some(credentials);
        loop {
            // Offline (the browser says so), the attempt could only fail:
            // wait for the network, without counting the wait against the
            // deadline (the retention is checked after it, below).
            if let Some(online) = runtime::until_online() {
                emit(pilot.record(), EventKind::Offline);
                let since = inner.clock.now_ms();
                online.await;
                pilot.waited_offline(inner.clock.now_ms().saturating_sub(since));
            }
            // The hook's headers, checked before the attempt counts: a bad
            // one sends nothing (an invalid call while nothing has left; a
            // resumable one after).
            let credentials = match first_credentials.take() {
                Some(credentials) => credentials,
                None => inner
                    .credentials_for(&self.request)
                    .map_err(|e| context(pilot.record(), pilot.interrupted(e)))?,
            };
            let supplied = |name: &str| {
                header(&self.request.headers, name).is_some() || header(&credentials, name).is_some()
            };
            let (number, update) = match pilot.attempt(inner.clock.now_ms(), supplied) {
                Attempt::Send(number, update) => (number, update),
                Attempt::Stop(update, error) => return self.fail(pilot.record(), update, error).await,
            };
            if let Some(update) = update {
                inner
                    .store
                    .update(&pilot.record().name, update)
                    .await
                    .map_err(|e| context(pilot.record(), pilot.interrupted(e)))?;
            }
            // Checked again as it leaves: recording the attempt may have
            // taken it to the retention's end.
            let timeout = match pilot.attempt_timeout(inner.clock.now_ms()) {
                Ok(timeout) => timeout,
                Err((update, error)) => return self.fail(pilot.record(), update, error).await,
            };
            emit(pilot.record(), EventKind::Attempt { number });
            let outgoing = Outgoing {
                request: &self.request,
                credentials: &credentials,
                idempotency_key: pilot.key_header(),
            };
            let result = inner.transport.send(outgoing, timeout).await;
            let class = (inner.classifier)(result.as_ref());
            let step = pilot.land(result, class, inner.clock.now_ms(), &inner.budget);
            let event = pilot.event(&step);
            let record = pilot.record();
            match step {
                Step::Settle(update, outcome) if Pilot::confirms(class) => {
                    // Reported once recorded: a fleet's store refuses the
                    // write of a replica that stalled and was taken over.
                    if let Err(error) = inner.store.update(&record.name, update).await {
                        let error = context(record, pilot.interrupted(error));
                        return self.fail(pilot.record(), None, error).await;
                    }
                    emit(record, event);
                    return Ok(outcome);
                }
                Step::Settle(update, outcome) => {
                    // The write takes its place in the store now: every later
                    // operation sees it. Nobody waits for it to land (a store
                    // reports a failure itself); the effect happened and the
                    // response is real, and if the write is lost a later call
                    // re-sends under the same key and the server replays it.
                    let written = inner.store.update(&record.name, update);
                    if let Some(Err(error)) = written.now_or_never() {
                        warn_unrecorded(
                            &record.name,
                            &record.key,
                            "settled, but the outcome could not be recorded",
                            &error,
                        );
                    }
                    emit(record, event);
                    return Ok(outcome);
                }
                Step::Fail(update, error) => return self.fail(record, Some(update), error).await,
                Step::Retry { delay, .. } => {
                    emit(record, event);
                    inner.clock.sleep(delay).await;
                }
            }
        }
    }

    /// Ends the flight with `error` (every way the pilot fails it), after
    /// recording `update`: an expiry is recorded before it is reported (a
    /// failed write is the error, as in the npm package); the lost write of
    /// another failure is only warned of.
    async fn fail(&self, record: &Record, update: Option<Update>, error: Error) -> Result<Outcome, Error> {
        let inner = self.inner;
        if let Some(update) = update {
            let expiry = update.state == State::Expired;
            if let Err(store_error) = inner.store.update(&record.name, update).await {
                if expiry {
                    return Err(store_error.with_intent(&record.name, Some(record.key.clone())));
                }
                warn_unrecorded(&record.name, &record.key, "the failure could not be recorded", &store_error);
            }
        }
        inner
            .events
            .emit(&record.name, Some(&record.key), EventKind::Failed { error: error.clone() });
        Err(error)
    }
}

impl Inner {
    /// What a call of intent `name` with `request` records: the request
    /// checked and resolved as it is recorded, fingerprinted and sent, the
    /// hook's credentials for its first attempt, and the record (under the
    /// caller's `key`, or a new one). A bad request or hook header refuses
    /// the call here, with nothing recorded; the names the hook supplies are
    /// recorded with those left out of the store.
    pub(super) fn candidate(
        &self,
        name: &str,
        request: Arc<Request>,
        key: Option<&Key>,
    ) -> Result<Prepared, Error> {
        request.check()?;
        self.transport.check(&request).map_err(Error::invalid_input)?;
        // Recorded, fingerprinted and sent as the URL standard writes it: the
        // same intent from another executor is the same request.
        let resolved = self.transport.resolve(&request.url);
        let request = match resolved == request.url {
            true => request,
            false => Arc::new(Request {
                url: resolved,
                ..Request::clone(&request)
            }),
        };
        let credentials = self.credentials_for(&request)?;
        let now = self.clock.now_ms();
        let minted = key.cloned().unwrap_or_else(|| Key::mint(now, self.random.as_ref()));
        let record = candidate(
            name.to_owned(),
            request.stored(|name| self.is_stored(name), &credentials),
            minted,
            now,
            self.retention,
            self.user.clone(),
        );
        Ok(Prepared {
            request,
            credentials,
            record,
        })
    }

    /// Waits for the intent's lock at most the flight's deadline (another
    /// context's flight of it ends by then): past it, `GaveUp`, with
    /// nothing sent.
    /// `None` (no lock asked: the store has none) holds nothing.
    pub(super) async fn bounded(
        &self,
        acquiring: Option<crate::runtime::BoxFuture<'static, Result<IntentLock, Error>>>,
    ) -> Result<Option<IntentLock>, Error> {
        let Some(acquire) = acquiring else {
            return Ok(None);
        };
        let deadline = self.clock.sleep(self.policy.deadline);
        match futures_util::future::select(acquire, deadline).await {
            futures_util::future::Either::Left((held, _)) => held.map(Some),
            futures_util::future::Either::Right(_) => Err(Error::new(
                crate::ErrorKind::GaveUp,
                "another context (a tab, a worker) held the intent past the deadline; nothing was sent",
            )),
        }
    }

    /// Whether a store may keep the header `name` (see
    /// [`is_stored_header`]; the client's secret headers never).
    pub(super) fn is_stored(&self, name: &str) -> bool {
        is_stored_header(name, &self.stored_headers)
            && !self.secret_headers.iter().any(|s| s.eq_ignore_ascii_case(name))
    }

    /// The credential headers one attempt adds, from the hook (none
    /// without one), each checked as a caller's header is. They win over
    /// the request's headers of the same name: fresh credentials over
    /// anything stored or given before.
    fn credentials_for(&self, request: &Request) -> Result<Vec<(String, String)>, Error> {
        let Some(supply) = &self.credentials else {
            return Ok(Vec::new());
        };
        let mut credentials = Vec::new();
        for (name, value) in supply(request) {
            let name = checked_header(Cow::Owned(name), &value)
                .map(Cow::into_owned)
                .map_err(|e| Error::invalid_input(format!("the credentials hook: {e}")))?;
            if name != "idempotency-key" {
                credentials.push((name, value));
            }
        }
        Ok(credentials)
    }
}
