//! What an application sees of each intent (events) and how credentials reach
//! the server without ever being stored (the send-time hook).

// Against the reference server on loopback: native only (the browser runs
// the same behaviours in pkg-tests/).
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use oncely::{Client, EventKind, FileStore, MemoryStore};
use serde_json::json;
use support::{EventLog, TestServer, VirtualClock, charge};

#[tokio::test]
async fn events_tell_the_story_of_each_intent() {
    let server = TestServer::start().await;
    server
        .faults("acct", json!({"fail_next": [{"status": 503}]}))
        .await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let client = Client::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .on_event(log.handler())
        .build()
        .unwrap();
    let subscribed = EventLog::default();
    let subscription = client.subscribe(subscribed.handler());
    let pay = || {
        client
            .intent("order")
            .post(server.charges_url())
            .header("x-account", "acct")
            .body(charge(10))
            .send()
    };
    let outcome = pay().await.unwrap();
    let kinds: Vec<String> = log
        .events()
        .iter()
        .map(|e| {
            assert_eq!(e.intent, "order");
            assert_eq!(e.key.as_ref(), Some(outcome.key()));
            match &e.kind {
                EventKind::Created => "created".to_owned(),
                EventKind::Attempt { number } => format!("attempt {number}"),
                EventKind::RetryScheduled {
                    attempt, reason, ..
                } => format!("retry after {attempt}: {reason}"),
                EventKind::Settled { status, attempts } => {
                    format!("settled {status} in {attempts}")
                }
                other => format!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "attempt 1",
            "retry after 1: status 503",
            "attempt 2",
            "settled 201 in 2"
        ]
    );
    assert_eq!(subscribed.events().len(), 5);

    drop(subscription);
    pay().await.unwrap();
    assert_eq!(log.count(|k| matches!(k, EventKind::Replayed)), 1);
    assert_eq!(
        subscribed.events().len(),
        5,
        "dropping the subscription unsubscribed"
    );
}

/// A plain HTTP endpoint on loopback that answers 201 and keeps the
/// `authorization` header of every request it gets.
async fn header_recorder() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    recorder("authorization", 0).await
}

/// A plain HTTP endpoint on loopback that answers 503 to its first
/// `failures` requests and 201 after, and keeps the `header` of each.
async fn recorder(
    header: &'static str,
    failures: usize,
) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route(
        "/charge",
        axum::routing::post({
            let seen = Arc::clone(&seen);
            move |headers: HeaderMap| async move {
                let value = headers
                    .get(header)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let mut seen = seen.lock().unwrap();
                seen.push(value);
                if seen.len() <= failures {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy")
                } else {
                    (axum::http::StatusCode::CREATED, "ok")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/charge", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn the_credentials_hook_supplies_secrets_on_resume() {
    let (url, seen) = header_recorder().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    // An earlier run recorded the intent (with an Authorization header the
    // store dropped) and died before sending.
    {
        let store = FileStore::open(&path).unwrap();
        let request = oncely::Request {
            method: "POST".to_owned(),
            url: url.clone(),
            headers: vec![],
            body: "{}".into(),
        };
        let record = oncely::Record {
            name: "order".to_owned(),
            key: "resume-key-1".parse().unwrap(),
            fingerprint: oncely::Fingerprint::of_request(&request),
            request: request.into(),
            created_at: u64::MAX / 4,
            expires_at: u64::MAX / 2,
            attempts: 0,
            state: oncely::State::Pending,
            failure: None,
            response: None,
            withheld: vec!["authorization".to_owned()],
            owner: None,
        };
        oncely::Store::create_or_get(&store, record).await.unwrap();
    }
    let calls = Arc::new(Mutex::new(0));
    let client = Client::builder()
        .store(FileStore::open(&path).unwrap())
        .credentials({
            let calls = Arc::clone(&calls);
            move |request: &oncely::Request| {
                *calls.lock().unwrap() += 1;
                assert!(request.url.ends_with("/charge"));
                vec![("Authorization".to_owned(), "Bearer fresh-token".to_owned())]
            }
        })
        .build()
        .unwrap();
    let results = client.resume().await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().status(), 201);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some("Bearer fresh-token".to_owned())]
    );
    assert_eq!(*calls.lock().unwrap(), 1);
}

#[tokio::test]
async fn fresh_credentials_from_the_hook_win_over_the_callers_and_the_stored() {
    let (url, seen) = header_recorder().await;
    let client = Client::builder()
        .credentials(|_: &oncely::Request| {
            vec![("authorization".to_owned(), "Bearer from-hook".to_owned())]
        })
        .build()
        .unwrap();
    client
        .intent("a")
        .post(&url)
        .header("Authorization", "Bearer stale-from-caller")
        .send()
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some("Bearer from-hook".to_owned())]
    );
}

#[tokio::test]
async fn a_stale_stored_csrf_token_loses_to_the_hooks_fresh_one() {
    let (url, seen) = recorder("x-csrf-token", 1).await;
    let store = oncely::MemoryStore::new();
    // An app that chose to store the token (it is off the allow-list by
    // default) gave up after the 503 ...
    let first = Client::builder()
        .store(store.clone())
        .stored_header("x-csrf-token")
        .retry(oncely::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        })
        .build()
        .unwrap();
    let error = first
        .intent("order")
        .post(&url)
        .header("X-CSRF-Token", "stale")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), oncely::ErrorKind::GaveUp);
    // ... and its resume gets a fresh one from the hook: the fresh one goes.
    let resumed = Client::builder()
        .store(store)
        .stored_header("x-csrf-token")
        .credentials(|_: &oncely::Request| vec![("x-csrf-token".to_owned(), "fresh".to_owned())])
        .build()
        .unwrap();
    let results = resumed.resume().await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().status(), 201);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some("stale".to_owned()), Some("fresh".to_owned())]
    );
}

#[tokio::test]
async fn a_bad_header_from_the_hook_fails_at_once_with_nothing_sent() {
    let (url, seen) = header_recorder().await;
    for (name, value) in [("Bad Name", "x"), ("authorization", "Bearer \u{1}")] {
        let client = Client::builder()
            .credentials(move |_: &oncely::Request| vec![(name.to_owned(), value.to_owned())])
            .build()
            .unwrap();
        for _ in 0..2 {
            let error = client.intent("a").post(&url).send().await.unwrap_err();
            assert_eq!(
                error.kind(),
                oncely::ErrorKind::InvalidInput,
                "{name}: {error}"
            );
            assert!(error.to_string().contains("credentials hook"), "{error}");
        }
        // The hook is asked before anything is recorded: nothing was.
        assert!(client.record("a").await.unwrap().is_none());
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the server"
    );
}
