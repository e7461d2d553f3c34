//! One flight, performed: record the intent (or find it), then attempt under
//! its key as the [`Pilot`] decides, until a definitive answer, a rejection,
//! or the policy runs out.

use std::borrow::Cow;
use std::sync::Arc;

use super::Inner;
use super::intent_request::checked_header;
use crate::event::{EventKind, warn_unrecorded};
use futures_util::FutureExt;

use crate::intent::{Fingerprint, Record, Request, header};
use crate::pilot::{Boarding, Pilot, Step, candidate};
use crate::runtime;
use crate::store::IntentLock;
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
) -> Result<Outcome, Error> {
    // The lock is asked for now and awaited below: the request is checked
    // and hashed while the browser grants it. Dropped unawaited (an invalid
    // request), it is released at once.
    let acquiring = inner.store.lock(&name);
    inner
        .transport
        .check(&request)
        .map_err(|message| Error::invalid_input(message).with_intent(&name, key.clone()))?;
    let now = inner.clock.now_ms();
    let minted = key
        .clone()
        .unwrap_or_else(|| Key::mint(now, inner.random.as_ref()));
    let record = candidate(
        name.clone(),
        request.stored(|name| inner.is_secret(name)),
        minted,
        now,
        inner.retention,
    );
    let fingerprint = record.fingerprint;
    let context = |e: Error| e.with_intent(&name, key.clone());
    // Where other contexts (browser tabs) share the store, fly alone: take
    // the intent's lock first, so the record read below is the latest (a
    // tab that flew it before us has settled it, and we replay).
    let lock = match acquiring {
        Some(acquire) => Some(acquire.await.map_err(context)?),
        None => None,
    };
    let (record, created) = inner.store.create_or_get(record).await.map_err(context)?;
    Flight {
        inner: &inner,
        request,
        _lock: lock,
    }
    .run(record, created, fingerprint, key)
    .await
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
    ) -> Result<Outcome, Error> {
        let inner = self.inner;
        let emit = |record: &Record, kind| inner.events.emit(&record.name, Some(&record.key), kind);
        // A store failure, said of the intent as recorded.
        let context = |record: &Record, e: Error| e.with_intent(&record.name, Some(record.key.clone()));
        if created {
            emit(&record, EventKind::Created);
        }
        let now = inner.clock.now_ms();
        let boarding = Pilot::board(
            record,
            created,
            fingerprint,
            key,
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
            Boarding::Expire(record, update, error) => {
                if let Some(update) = update {
                    inner
                        .store
                        .update(&record.name, update)
                        .await
                        .map_err(|e| context(&record, e))?;
                }
                emit(&record, EventKind::Failed { error: error.clone() });
                return Err(error);
            }
        };
        loop {
            // The hook's headers, checked before the attempt counts: a bad
            // one fails the call with nothing sent and the record as it was
            // (still owed an answer), instead of failing in the transport
            // like a lost request and being retried.
            let credentials = inner
                .credentials_for(&self.request)
                .map_err(|e| context(pilot.record(), e))?;
            let (number, update) = pilot.attempt();
            if let Some(update) = update {
                inner
                    .store
                    .update(&pilot.record().name, update)
                    .await
                    .map_err(|e| context(pilot.record(), e))?;
            }
            emit(pilot.record(), EventKind::Attempt { number });

            // Offline (the browser says so), the attempt could only fail:
            // wait for the network, without counting the wait against the
            // deadline.
            if let Some(online) = runtime::until_online() {
                emit(pilot.record(), EventKind::Offline);
                let since = inner.clock.now_ms();
                online.await;
                pilot.waited_offline(inner.clock.now_ms().saturating_sub(since));
            }
            let timeout = pilot.attempt_timeout(inner.clock.now_ms());
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
                Step::Fail(update, error) => {
                    if let Err(store_error) = inner.store.update(&record.name, update).await {
                        warn_unrecorded(
                            &record.name,
                            &record.key,
                            "the failure could not be recorded",
                            &store_error,
                        );
                    }
                    emit(record, event);
                    return Err(error);
                }
                Step::Retry { delay, .. } => {
                    emit(record, event);
                    inner.clock.sleep(delay).await;
                }
            }
        }
    }
}

impl Inner {
    pub(super) fn is_secret(&self, name: &str) -> bool {
        self.secret_headers
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
    }

    /// The credential headers one attempt adds, from the hook (the
    /// caller's own headers win; none without a hook), each checked as a
    /// caller's header is.
    fn credentials_for(&self, request: &Request) -> Result<Vec<(String, String)>, Error> {
        let Some(supply) = &self.credentials else {
            return Ok(Vec::new());
        };
        let mut credentials = Vec::new();
        for (name, value) in supply(request) {
            let name = checked_header(Cow::Owned(name), &value)
                .map(Cow::into_owned)
                .map_err(|e| Error::invalid_input(format!("the credentials hook: {e}")))?;
            if header(&request.headers, &name).is_none() && name != "idempotency-key" {
                credentials.push((name, value));
            }
        }
        Ok(credentials)
    }
}
