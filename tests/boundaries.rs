//! The promise at its boundaries, natively: who sends (credentials, the
//! signed-in user), when (retention, clocks), and how a caller stops
//! waiting. Each test fails without the rule it names. (In the browser the
//! same rules are tested through the npm package: pkg-tests/boundaries.)
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use oncely::runtime::{BoxFuture, Clock};
use oncely::{Client, ErrorKind, MemoryStore, RetryPolicy, State};
use support::VirtualClock;

/// What a payments API on loopback saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    key: Option<String>,
    authorization: Option<String>,
}

/// How the API answers the n-th request with a new key: the status it
/// records (and replays to later requests with the key), the status it
/// sends (a 503 sent for a recorded 201 is an answer lost on the way back),
/// and headers. A recorded 2xx is a charge.
struct Reply {
    recorded: u16,
    sent: u16,
    headers: Vec<(&'static str, String)>,
}
type Script = dyn Fn(usize) -> Reply + Send + Sync;

/// A payments API on loopback honouring `Idempotency-Key`: a new key is
/// answered as `script` says; a known key replays its recorded status.
/// With `token`, a request without `Authorization: Bearer
/// <token>` is refused with 401 before anything happens.
struct Api {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The status recorded per key.
    keys: Arc<Mutex<HashMap<String, u16>>>,
}

impl Api {
    async fn start(token: Option<&'static str>, delay: Duration, script: Arc<Script>) -> Api {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keys = Arc::new(Mutex::new(HashMap::new()));
        let app = axum::Router::new().route(
            "/charges",
            axum::routing::post({
                let (seen, keys) = (Arc::clone(&seen), Arc::clone(&keys));
                move |headers: HeaderMap| async move {
                    let text = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let (key, authorization) = (text("idempotency-key"), text("authorization"));
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(Seen {
                            key: key.clone(),
                            authorization: authorization.clone(),
                        });
                        seen.len()
                    };
                    tokio::time::sleep(delay).await;
                    let mut response = axum::http::Response::builder();
                    if token
                        .is_some_and(|t| authorization.as_deref() != Some(&format!("Bearer {t}")))
                    {
                        return response
                            .status(401)
                            .body(axum::body::Body::empty())
                            .unwrap();
                    }
                    let key = key.unwrap_or_default();
                    let recorded = keys.lock().unwrap().get(&key).copied();
                    let (status, headers) = match recorded {
                        Some(status) => (status, Vec::new()),
                        None => {
                            let reply = script(n);
                            keys.lock().unwrap().insert(key, reply.recorded);
                            (reply.sent, reply.headers)
                        }
                    };
                    for (name, value) in headers {
                        response = response.header(name, value);
                    }
                    response
                        .status(status)
                        .body(axum::body::Body::empty())
                        .unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/charges", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Api { url, seen, keys }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The charges (keys recorded with a 2xx): the invariant is one per
    /// intent.
    fn charges(&self) -> usize {
        let keys = self.keys.lock().unwrap();
        keys.values()
            .filter(|status| (200..300).contains(*status))
            .count()
    }
}

/// Records and sends `status` for every new key.
fn always(status: u16) -> Arc<Script> {
    Arc::new(move |_| Reply {
        recorded: status,
        sent: status,
        headers: Vec::new(),
    })
}

/// Charges, and loses the answer on the way back (a proxy's 503).
fn lost() -> Arc<Script> {
    Arc::new(|_| Reply {
        recorded: 201,
        sent: 503,
        headers: Vec::new(),
    })
}

fn one_attempt() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    }
}

fn bearer(
    token: &'static str,
) -> impl Fn(&oncely::Request) -> Vec<(String, String)> + Send + Sync + 'static {
    move |_| vec![("authorization".to_owned(), format!("Bearer {token}"))]
}

#[tokio::test]
async fn a_resume_without_the_intents_credentials_sends_nothing_and_a_401_decides_nothing() {
    // The charge is taken, its answer lost (a proxy's 503 after the commit).
    let api = Api::start(Some("good"), Duration::ZERO, lost()).await;
    let store = MemoryStore::new();
    let first = Client::builder()
        .store(store.clone())
        .credentials(bearer("good"))
        .retry(one_attempt())
        .build()
        .unwrap();
    let error = first
        .intent("order-42")
        .post(&api.url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp);
    assert_eq!(api.charges(), 1);

    // Signed out: no credentials to give. Nothing is sent, nothing settled.
    let signed_out = Client::builder().store(store.clone()).build().unwrap();
    let results = signed_out.resume().await.unwrap();
    let error = results[0].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Credentials, "{error}");
    assert!(error.to_string().contains("authorization"), "{error}");
    assert_eq!(api.seen().len(), 1, "nothing was sent");
    assert_eq!(
        signed_out.pending().await.unwrap().len(),
        1,
        "still owed an answer"
    );

    // An expired token: the 401 says nothing of the charge that landed.
    let expired = Client::builder()
        .store(store.clone())
        .credentials(bearer("expired"))
        .build()
        .unwrap();
    let results = expired.resume().await.unwrap();
    let error = results[0].as_ref().unwrap_err();
    assert_eq!(
        (error.kind(), error.last_status()),
        (ErrorKind::Credentials, Some(401))
    );
    let record = expired.record("order-42").await.unwrap().unwrap();
    assert!(
        record.is_unsettled(),
        "a 401 after a lost answer is not the outcome"
    );

    // Signed in again: the server replays the one charge.
    let again = Client::builder()
        .store(store)
        .credentials(bearer("good"))
        .build()
        .unwrap();
    let results = again.resume().await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().status(), 201);
    assert_eq!(api.charges(), 1, "the last request was a replay");
    let keys: Vec<_> = api.seen().into_iter().map(|s| s.key).collect();
    assert!(
        keys.windows(2).all(|w| w[0] == w[1]),
        "one key per intent: {keys:?}"
    );
    let tokens: Vec<_> = api.seen().into_iter().map(|s| s.authorization).collect();
    assert_eq!(
        tokens,
        [
            Some("Bearer good"),
            Some("Bearer expired"),
            Some("Bearer good")
        ]
        .map(|t| t.map(str::to_owned))
    );
}

#[tokio::test]
async fn another_users_intents_are_never_resumed_listed_or_sent() {
    let api = Api::start(None, Duration::ZERO, always(503)).await;
    let store = MemoryStore::new();
    let alice = Client::builder()
        .store(store.clone())
        .user("alice")
        .retry(one_attempt())
        .build()
        .unwrap();
    alice
        .intent("order-42")
        .post(&api.url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        alice
            .record("order-42")
            .await
            .unwrap()
            .unwrap()
            .owner
            .as_deref(),
        Some("alice")
    );

    for bob in [
        Client::builder()
            .store(store.clone())
            .user("bob")
            .build()
            .unwrap(),
        Client::builder().store(store.clone()).build().unwrap(),
    ] {
        assert!(bob.pending().await.unwrap().is_empty());
        assert!(bob.resume().await.unwrap().is_empty());
        let error = bob
            .intent("order-42")
            .post(&api.url)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Conflict, "{error}");
        assert!(error.to_string().contains("another user"), "{error}");
    }
    assert_eq!(api.seen().len(), 1, "bob sent nothing of alice's");
    assert_eq!(alice.pending().await.unwrap().len(), 1);
}

/// A clock whose every sleep lasts a day: a laptop closed mid-wait.
struct Suspending(VirtualClock);

impl Clock for Suspending {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }

    fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
        self.0.sleep(Duration::from_secs(86_400))
    }
}

#[tokio::test]
async fn no_attempt_leaves_at_or_after_the_retention() {
    // A backoff that would cross it ends the flight at once, as expired.
    let api = Api::start(None, Duration::ZERO, always(503)).await;
    let clock = VirtualClock::new();
    let client = Client::builder()
        .clock(clock.clone())
        .retention(Duration::from_secs(10))
        .retry(RetryPolicy {
            base_delay: Duration::from_secs(4),
            max_delay: Duration::from_secs(4),
            ..RetryPolicy::default()
        })
        .random(support::SeededRandom::new(7))
        .build()
        .unwrap();
    let error = client
        .intent("order")
        .post(&api.url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Expired, "{error}");
    assert!(error.to_string().contains("outcome unknown"), "{error}");
    let record = client.record("order").await.unwrap().unwrap();
    assert_eq!(record.state, State::Expired);
    let slept: Duration = clock.sleeps().iter().sum();
    assert!(
        slept < Duration::from_secs(10),
        "every attempt left before the retention: {slept:?}"
    );
    assert_eq!(api.seen().len(), record.attempts as usize);

    // A laptop suspended during the wait: checked again before sending.
    let api = Api::start(None, Duration::ZERO, always(503)).await;
    let client = Client::builder()
        .clock(Suspending(VirtualClock::new()))
        .retention(Duration::from_secs(3600))
        .retry(RetryPolicy {
            deadline: Duration::MAX,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let error = client
        .intent("order")
        .post(&api.url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Expired, "{error}");
    assert_eq!(api.seen().len(), 1, "nothing left after the day asleep");
}

#[tokio::test]
async fn durations_past_any_clock_end_the_flight_instead_of_hanging() {
    let api = Api::start(
        None,
        Duration::ZERO,
        Arc::new(|_| Reply {
            recorded: 503,
            sent: 503,
            headers: vec![("retry-after", "18446744073709552".to_owned())],
        }),
    )
    .await;
    let client = Client::builder()
        .clock(VirtualClock::new())
        .retry(RetryPolicy {
            max_retry_after: Duration::MAX,
            deadline: Duration::MAX,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let sent = client.intent("order").post(&api.url).send();
    let error = tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .expect("no hang")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Expired, "{error}");
    assert_eq!(api.seen().len(), 1);
}

#[tokio::test]
async fn a_panic_beside_the_first_caller_does_not_cancel_the_flight_for_those_who_joined() {
    let api = Api::start(None, Duration::from_millis(200), always(201)).await;
    let client = Client::builder().build().unwrap();
    let leader = tokio::spawn({
        let (client, url) = (client.clone(), api.url.clone());
        async move {
            let call = client.intent("order").post(url).send();
            let sibling = async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                panic!("a sibling future's bug");
            };
            tokio::join!(call, sibling)
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let follower = client.intent("order").post(&api.url).send();
    let outcome = follower.await.expect("the flight went on");
    assert_eq!(outcome.status(), 201);
    assert!(leader.await.unwrap_err().is_panic());
    assert_eq!(api.seen().len(), 1);
    assert_eq!(api.charges(), 1);
}

#[tokio::test]
async fn one_intent_written_two_ways_is_one_request_as_every_executor_sends_it() {
    let api = Api::start(None, Duration::ZERO, always(201)).await;
    let client = Client::builder().build().unwrap();
    // The URL as the URL standard writes it (what fetch sends, and what the
    // npm package records).
    let shouty = api
        .url
        .replace("http://", "HTTP://")
        .replace("/charges", "/./charges");
    let first = client.intent("order").post(&shouty).send().await.unwrap();
    let record = client.record("order").await.unwrap().unwrap();
    assert_eq!(record.request.url, api.url);
    let again = client.intent("order").post(&api.url).send().await.unwrap();
    assert!(again.replayed(), "the same request");
    assert_eq!(again.key(), first.key());
    // The method as fetch normalises it: the six upper-cased, others as given.
    for (given, recorded) in [
        ("post", "POST"),
        ("Delete", "DELETE"),
        ("patch", "patch"),
        ("PATCH", "PATCH"),
    ] {
        let name = format!("method-{given}");
        client
            .intent(&name)
            .method(given, &api.url)
            .send()
            .await
            .unwrap();
        let record = client.record(&name).await.unwrap().unwrap();
        assert_eq!(record.request.method, recorded, "{given}");
    }
    // The two POSTs reached the handler (the others got axum's 405).
    assert_eq!(api.seen().len(), 2);
}
