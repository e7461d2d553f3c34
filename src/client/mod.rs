//! The client: the one call that makes a side effect happen once, and the
//! calls that look after recorded intents.

mod drive;
mod intent_request;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

pub use intent_request::IntentRequest;

use crate::event::{EventHandler, EventKind, Events, Handler};
use crate::flight::{Boarding, Candidate, Flights, Landing, Pilot};
use crate::intent::{Record, Request};
use crate::retry::{Classifier, ClassifyFn, RetryBudget, RetryPolicy};
use crate::runtime::{Clock, MaybeSend, MaybeSync, OsRandom, Random, SystemClock};
use crate::store::{MemoryStore, Store};
use crate::transport::Transport;
use crate::{Error, Key, Outcome, Subscription};

/// How many intents `resume` flies at once where the store claims them in
/// batches (a fleet's `PostgresStore`).
const RESUME_BATCH: usize = 256;

/// Supplies credential headers at send time, for every attempt, resumed ones
/// included (the store never holds them).
pub type Credentials = Arc<dyn CredentialsFn>;

/// A credentials hook: any `Fn(&Request) -> Vec<(name, value)>` (`Send +
/// Sync` natively).
pub trait CredentialsFn:
    Fn(&Request) -> Vec<(String, String)> + MaybeSend + MaybeSync + 'static
{
}
impl<F: Fn(&Request) -> Vec<(String, String)> + MaybeSend + MaybeSync + 'static> CredentialsFn
    for F
{
}

/// Makes requests happen once. Cheap to clone: clones share the store, the
/// flights in the air and the retry budget.
///
/// # Examples
/// ```no_run
/// # async fn run(bytes: Vec<u8>) -> Result<(), oncely::Error> {
/// let client = oncely::Client::builder()
///     .store(oncely::FileStore::open("intents.db")?)
///     .build()?;
/// let outcome = client
///     .intent("order-42")
///     .post("https://api.example.com/charges")
///     .header("content-type", "application/json")
///     .body(bytes)
///     .send()
///     .await?;
/// assert!(outcome.is_success());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn Random>,
    pub(crate) policy: RetryPolicy,
    pub(crate) budget: RetryBudget,
    pub(crate) classifier: Classifier,
    pub(crate) retention: Duration,
    pub(crate) secret_headers: Vec<String>,
    pub(crate) stored_headers: Vec<String>,
    pub(crate) user: Option<String>,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) events: Arc<Events>,
    pub(crate) flights: Arc<Flights>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("policy", &self.inner.policy)
            .field("retention", &self.inner.retention)
            .field("secret_headers", &self.inner.secret_headers)
            .field("stored_headers", &self.inner.stored_headers)
            .field("user", &self.inner.user)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with the defaults listed on [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Starts a request for the intent `name`: a stable business identity
    /// (`"order-42"`, `"checkout:cart-7f3"`). Same name, same intent.
    pub fn intent<'a>(&self, name: impl Into<Cow<'a, str>>) -> IntentRequest<'a> {
        IntentRequest::new(self.clone(), name.into())
    }

    /// Settles every intent of this client's user whose outcome is still
    /// unknown (see [`pending`](Self::pending)) with its original key,
    /// concurrently: the ones earlier runs or other processes left behind,
    /// and the ones that gave up or wanted credentials. Intents past their
    /// retention are marked expired and reported, never sent; intents sent
    /// with credentials the hook cannot supply now fail with
    /// [`ErrorKind::Credentials`](crate::ErrorKind::Credentials), nothing
    /// sent, and stay unsettled.
    ///
    /// Returns one result per pending intent, in [`pending`](Self::pending)'s
    /// order: every intent it touched, failures included. A damaged record
    /// is its `Store` error, nothing sent; the others resume.
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when the store cannot be read.
    pub async fn resume(&self) -> Result<Vec<Result<Outcome, Error>>, Error> {
        let user = self.inner.user.as_deref();
        let mut results = Vec::new();
        let mut after = None;
        // Batch by batch where the store claims them for this context (a
        // fleet: each replica its own); at once otherwise.
        loop {
            let batch = self.inner.store.claim(user, after.as_ref(), RESUME_BATCH).await?;
            if batch.records.is_empty() {
                break;
            }
            let flights = batch.records.into_iter().map(|record| match record {
                Ok(record) => self.run(
                    Cow::Owned(record.name),
                    Candidate::Recorded(record.request),
                    Some(record.key),
                ),
                Err(damaged) => Run::refused(damaged),
            });
            results.extend(crate::runtime::join_all(flights).await);
            match batch.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(results)
    }

    /// The records of this client's [user](ClientBuilder::user) whose
    /// outcome is still unknown, oldest first: pending ones, and failed ones
    /// that gave up or wanted credentials (the server may or may not have
    /// acted; a call or `resume` retries them under their key). Another
    /// user's intents are never listed, resumed or sent.
    ///
    /// A record that cannot be read (damaged on disk, written by something
    /// else) and may be unsettled is listed first, whoever's it is, as a
    /// [`Store`](crate::ErrorKind::Store) error naming its intent
    /// ([`Error::intent`]): it blocks nothing else, and
    /// [`forget`](Self::forget) removes it.
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when the store cannot be read.
    pub async fn pending(&self) -> Result<Vec<Result<Record, Error>>, Error> {
        let records = self.inner.store.unsettled().await?;
        Ok(crate::store::of_user(records, self.inner.user.as_deref()))
    }

    /// Every record in the store, whatever its state or user, oldest first.
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when the store cannot be read.
    pub async fn records(&self) -> Result<Vec<Record>, Error> {
        self.inner.store.list().await
    }

    /// The record of the intent `name`, if any.
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when the store cannot be read.
    pub async fn record(&self, name: &str) -> Result<Option<Record>, Error> {
        self.inner.store.get(name).await
    }

    /// Removes the intent `name` from the store: a later call with that name
    /// starts a new intent with a new key. Returns `true` when there was one.
    ///
    /// Where contexts share the store (browser tabs), it waits for another
    /// context's flight of the intent to land first, at most the flight
    /// deadline.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) while the
    /// intent is in flight in this client;
    /// [`ErrorKind::GaveUp`](crate::ErrorKind::GaveUp) when another context
    /// held it past the deadline;
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when the store fails.
    pub async fn forget(&self, name: &str) -> Result<bool, Error> {
        if !self.inner.flights.release(name) {
            return Err(
                Error::invalid_input("cannot forget an intent while it is in flight")
                    .with_intent(name, None),
            );
        }
        // Under the intent's lock where contexts share the store: a flight
        // of it in another tab lands (and writes its outcome) first, and is
        // never undone by this removal.
        let _held = self
            .inner
            .bounded(self.inner.store.lock(name))
            .await
            .map_err(|e| e.with_intent(name, None))?;
        self.inner.store.remove(name).await
    }

    /// Removes the records of intents past their retention whose outcome is
    /// known (settled, expired, or failed for good), and returns how many.
    ///
    /// Records are otherwise kept: a settled one replays its outcome until
    /// the server's retention for its key ends, and past it refuses a call
    /// with that name as [expired](crate::ErrorKind::Expired) instead of
    /// sending it again blindly. Pruning trades that refusal for a store
    /// that stops growing: a later call with a pruned name starts a new
    /// intent with a new key. Intents whose outcome is unknown (pending, or
    /// given up) are kept whatever their age: `resume` still owes them an
    /// answer.
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when the store fails.
    pub async fn prune(&self) -> Result<usize, Error> {
        self.inner.store.prune(self.inner.clock.now_ms()).await
    }

    /// Calls `handler` with every [`Event`](crate::Event) of this client until the returned
    /// [`Subscription`] is dropped.
    pub fn subscribe(&self, handler: impl EventHandler) -> Subscription {
        let id = self.inner.events.add(Arc::new(handler));
        Subscription {
            events: Arc::downgrade(&self.inner.events),
            id,
        }
    }

    /// Joins the flight of `name` or launches it, at the returned future's
    /// first poll; every path through a call and through `resume` ends here.
    pub(crate) fn run<'a>(
        &self,
        name: Cow<'a, str>,
        candidate: Candidate<'a>,
        key: Option<Key>,
    ) -> Run<'a> {
        Run {
            state: RunState::Boarding {
                client: self.clone(),
                name,
                candidate,
                key,
            },
        }
    }
}

/// One call's way through a flight: boards at its first poll (nothing
/// happens until it is awaited), then waits for the flight it joined or
/// flies its own.
///
/// Written by hand rather than as an `async fn`: a generated future keeps
/// its arguments beside every later state (a call's whole request stays
/// in it while it only waits), and a joining duplicate pays for copying it.
/// Here each state holds only what it needs: the request until boarding,
/// then one shared slot to wait on, or the flight.
#[must_use = "nothing happens until it is awaited"]
pub(crate) struct Run<'a> {
    state: RunState<'a>,
}

enum RunState<'a> {
    Boarding {
        client: Client,
        name: Cow<'a, str>,
        candidate: Candidate<'a>,
        key: Option<Key>,
    },
    /// The call was refused before it boarded.
    Refused(Error),
    /// Waiting for the flight it joined; with the caller's own key, if it
    /// brought one.
    Joined(Landing, Option<Key>),
    Flying(Pilot),
    Done,
}

impl<'a> Run<'a> {
    /// A call that fails with `error`, at its first poll like any other.
    pub(crate) fn refused(error: Error) -> Run<'a> {
        Run {
            state: RunState::Refused(error),
        }
    }
}

impl Client {
    /// Joins the flight of `name` when it carries the same request, or
    /// launches one.
    fn board(self, name: Cow<'_, str>, candidate: Candidate<'_>, key: Option<Key>) -> RunState<'static> {
        let inner = &self.inner;
        match inner.flights.board(&name, candidate) {
            Boarding::Joined(landing) => {
                inner.events.emit(&name, key.as_ref(), EventKind::Joined);
                RunState::Joined(landing, key)
            }
            Boarding::Conflict(flying_key) => {
                let key = flying_key.or(key);
                inner.events.emit(&name, key.as_ref(), EventKind::Conflict);
                RunState::Refused(
                    Error::new(
                        crate::ErrorKind::Conflict,
                        "a different request (method, URL or body) is in flight under this intent; nothing was sent",
                    )
                    .with_intent(&name, key),
                )
            }
            Boarding::Departing(departure, request) => {
                let known = departure.key();
                let flight = drive::fly(Arc::clone(inner), name.into_owned(), request, key, known);
                RunState::Flying(departure.fly(Box::pin(flight)))
            }
        }
    }
}

/// What a caller that brought its own key gets from the flight it joined
/// (joining compares method, URL and body, not keys): the flight's result
/// when it flew under that key, else a conflict, as the record's key would
/// have refused the call after the flight.
fn under_key(result: Result<Outcome, Error>, key: Key) -> Result<Outcome, Error> {
    let (intent, flown) = match &result {
        Ok(outcome) => (outcome.intent(), Some(outcome.key())),
        Err(error) => (error.intent().unwrap_or_default(), error.key()),
    };
    match flown {
        Some(flown) if *flown != key => Err(Error::new(
            crate::ErrorKind::Conflict,
            [
                "the intent flew under another key than the request's ",
                key.as_str(),
                "; nothing was sent",
            ]
            .concat(),
        )
        .with_intent(intent, Some(flown.clone()))),
        _ => result,
    }
}

impl Future for Run<'_> {
    type Output = Result<Outcome, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let state = &mut self.get_mut().state;
        loop {
            let result = match state {
                RunState::Joined(landing, key) => {
                    let result = ready!(Pin::new(landing).poll(cx));
                    match key.take() {
                        Some(key) => under_key(result, key),
                        None => result,
                    }
                }
                RunState::Flying(pilot) => ready!(Pin::new(pilot).poll(cx)),
                RunState::Boarding { .. } | RunState::Refused(_) | RunState::Done => {
                    match std::mem::replace(state, RunState::Done) {
                        RunState::Boarding {
                            client,
                            name,
                            candidate,
                            key,
                        } => {
                            *state = client.board(name, candidate, key);
                            continue;
                        }
                        RunState::Refused(error) => Err(error),
                        _ => Err(Error::invalid_input("a finished call was polled again")),
                    }
                }
            };
            *state = RunState::Done;
            return Poll::Ready(result);
        }
    }
}

/// Builds a [`Client`]. Setters never fail; [`build`](Self::build) reports
/// the first problem.
///
/// # Defaults
/// - store: a [`MemoryStore`] (use [`FileStore`](crate::FileStore) to survive
///   restarts)
/// - transport: [`HttpTransport`](crate::transport::HttpTransport) (reqwest natively)
/// - retry: [`RetryPolicy::default()`]; budget: [`RetryBudget::default()`];
///   classification: [`retry::classify`](crate::retry::classify)
/// - retention: 24 hours (Stripe's minimum): older intents are never re-sent
/// - stored headers: [`STORED_HEADERS`](crate::intent::STORED_HEADERS) (an
///   allow-list: every other header is sent, never stored, and must be
///   supplied again by the credentials hook to resume)
/// - secret headers: `authorization`, `cookie`, `proxy-authorization`, never
///   stored
/// - user: none (intents belong to nobody in particular)
/// - clock: [`SystemClock`]; randomness: [`OsRandom`]
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    store: Option<Arc<dyn Store>>,
    transport: Option<Arc<dyn Transport>>,
    clock: Option<Arc<dyn Clock>>,
    random: Option<Arc<dyn Random>>,
    policy: Option<RetryPolicy>,
    budget: Option<RetryBudget>,
    classifier: Option<Classifier>,
    retention: Option<Duration>,
    secret_headers: Vec<String>,
    stored_headers: Vec<String>,
    user: Option<String>,
    credentials: Option<Credentials>,
    handlers: Vec<Handler>,
    error: Option<Error>,
}

impl ClientBuilder {
    /// Where intents are recorded.
    pub fn store(mut self, store: impl Store) -> ClientBuilder {
        self.store = Some(Arc::new(store));
        self
    }

    /// How attempts are sent.
    pub fn transport(mut self, transport: impl Transport) -> ClientBuilder {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// The retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> ClientBuilder {
        if policy.max_attempts == 0 && self.error.is_none() {
            self.error = Some(Error::invalid_input(
                "RetryPolicy::max_attempts must be at least 1",
            ));
        }
        self.policy = Some(policy);
        self
    }

    /// The retry budget shared by all of this client's flights.
    pub fn budget(mut self, budget: RetryBudget) -> ClientBuilder {
        self.budget = Some(budget);
        self
    }

    /// Replaces the default classification of responses and failures.
    pub fn classifier(mut self, classifier: impl ClassifyFn) -> ClientBuilder {
        self.classifier = Some(Arc::new(classifier));
        self
    }

    /// How long the server keeps keys; intents older than this are expired,
    /// never re-sent.
    pub fn retention(mut self, retention: Duration) -> ClientBuilder {
        self.retention = Some(retention);
        self
    }

    /// Lets the store keep one more header (it is on no list of
    /// credentials: `authorization`, `cookie` and `proxy-authorization` are
    /// refused). Headers off the allow-list are sent but never stored, and a
    /// resume must get them from the credentials hook.
    pub fn stored_header(mut self, name: &str) -> ClientBuilder {
        match intent_request::header_name(name) {
            Ok(name) if crate::intent::SECRET_HEADERS.contains(&name.as_str()) => {
                self.error.get_or_insert(Error::invalid_input(format!(
                    "\"{name}\" is a credential: it is never stored"
                )));
            }
            Ok(name) => self.stored_headers.push(name),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Whose intents these are: every intent this client records belongs
    /// to `user`, and `resume`, `pending` and every call touch only that
    /// user's, so one user's intent is never sent with another's
    /// credentials nor replayed to them. Where several users share a store
    /// or a device, open one client per signed-in user.
    pub fn user(mut self, user: impl Into<String>) -> ClientBuilder {
        let user = user.into();
        if user.is_empty() || user.chars().any(char::is_control) {
            self.error.get_or_insert(Error::invalid_input(
                "the user must be a non-empty text without control characters",
            ));
        }
        self.user = Some(user);
        self
    }

    /// Marks one more header as a credential: sent, never stored (even if
    /// it is on the stored allow-list).
    pub fn secret_header(mut self, name: &str) -> ClientBuilder {
        match intent_request::header_name(name) {
            Ok(name) => self.secret_headers.push(name),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Supplies credential headers at send time, for every attempt, resumed
    /// intents included. They win over the request's headers of the same
    /// name, and are never stored; their names are recorded, so a later
    /// attempt without them is not sent.
    pub fn credentials(mut self, supply: impl CredentialsFn) -> ClientBuilder {
        self.credentials = Some(Arc::new(supply));
        self
    }

    /// Calls `handler` with every event, for the client's life.
    pub fn on_event(mut self, handler: impl EventHandler) -> ClientBuilder {
        self.handlers.push(Arc::new(handler));
        self
    }

    /// The clock (tests inject one that never sleeps).
    pub fn clock(mut self, clock: impl Clock) -> ClientBuilder {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The source of randomness for keys and jitter (tests inject a seeded one).
    pub fn random(mut self, random: impl Random) -> ClientBuilder {
        self.random = Some(Arc::new(random));
        self
    }

    /// The client.
    ///
    /// # Errors
    /// The first invalid setting, or a transport that cannot be initialised.
    pub fn build(self) -> Result<Client, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let transport = match self.transport {
            Some(transport) => transport,
            None => default_transport()?,
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let events = Arc::new(Events::new(Arc::clone(&clock)));
        for handler in self.handlers {
            events.add(handler);
        }
        let mut secret_headers: Vec<String> = crate::intent::SECRET_HEADERS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        secret_headers.extend(self.secret_headers);
        Ok(Client {
            inner: Arc::new(Inner {
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                transport,
                clock,
                random: self.random.unwrap_or_else(|| Arc::new(OsRandom)),
                policy: self.policy.unwrap_or_default(),
                budget: self.budget.unwrap_or_default(),
                classifier: self
                    .classifier
                    .unwrap_or_else(|| Arc::new(crate::retry::classify)),
                retention: self.retention.unwrap_or(Duration::from_secs(24 * 60 * 60)),
                secret_headers,
                stored_headers: self.stored_headers,
                user: self.user,
                credentials: self.credentials,
                events,
                flights: Arc::new(Flights::default()),
            }),
        })
    }
}

fn default_transport() -> Result<Arc<dyn Transport>, Error> {
    Ok(Arc::new(crate::transport::HttpTransport::new()?))
}
