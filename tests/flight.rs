//! Coalescing: duplicates join one flight; a dropped caller never cancels it;
//! a different request under the same name is refused before sending.

// Against the reference server on loopback: native only (the browser runs
// the same behaviours in pkg-tests/).
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::sync::Arc;
use std::time::Duration;

use oncely::{Client, ErrorKind, EventKind, MemoryStore};
use serde_json::json;
use support::{EventLog, TestServer, charge, pay, quick_policy};

fn client(log: &EventLog) -> Client {
    Client::builder()
        .store(MemoryStore::new())
        .retry(quick_policy())
        .on_event(log.handler())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_duplicates_send_one_request() {
    let server = TestServer::start().await;
    // Slow enough that every duplicate arrives while the flight is up.
    server.faults("acct", json!({"slow_ms": 300})).await;
    let log = EventLog::default();
    let client = client(&log);
    let url = server.charges_url();
    let calls = (0..1000).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move { pay(&client, &url, "order-42", charge(4200)).await })
    });
    let outcomes = futures_join(calls).await;
    let first_key = outcomes[0].key().clone();
    for outcome in &outcomes {
        assert_eq!(outcome.status(), 201);
        assert_eq!(outcome.key(), &first_key);
    }
    assert_eq!(log.attempts(), 1, "one request for 1000 calls");
    assert_eq!(log.count(|k| matches!(k, EventKind::Created)), 1);
    assert_eq!(server.ledger("acct").await.len(), 1);
}

async fn futures_join(
    handles: impl Iterator<Item = tokio::task::JoinHandle<Result<oncely::Outcome, oncely::Error>>>,
) -> Vec<oncely::Outcome> {
    let mut outcomes = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        outcomes.push(handle.await.unwrap().unwrap());
    }
    outcomes
}

#[tokio::test]
async fn a_dropped_leading_caller_still_completes_the_flight_for_the_others() {
    let server = TestServer::start().await;
    server.faults("acct", json!({"slow_ms": 400})).await;
    let log = EventLog::default();
    let client = client(&log);
    let url = server.charges_url();

    let leader = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { pay(&client, &url, "order-42", charge(1)).await }
    });
    // Wait until the leader's attempt is on the wire, then join and kill it.
    while log.attempts() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let follower = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { pay(&client, &url, "order-42", charge(1)).await }
    });
    while log.count(|k| matches!(k, EventKind::Joined)) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());

    let outcome = follower.await.unwrap().unwrap();
    assert_eq!(outcome.status(), 201);
    assert!(!outcome.replayed());
    assert_eq!(log.attempts(), 1);
    // No entry outlives its flight: forgetting is refused only while flying.
    assert!(client.forget("order-42").await.unwrap());
    assert_eq!(server.ledger("acct").await.len(), 1);
}

#[tokio::test]
async fn a_flight_nobody_waits_for_still_settles() {
    let server = TestServer::start().await;
    server.faults("acct", json!({"slow_ms": 200})).await;
    let log = EventLog::default();
    let client = client(&log);
    let url = server.charges_url();
    let call = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { pay(&client, &url, "order-42", charge(9)).await }
    });
    while log.attempts() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call.abort();
    while log.count(|k| matches!(k, EventKind::Settled { .. })) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let replay = pay(&client, &url, "order-42", charge(9)).await.unwrap();
    assert!(replay.replayed());
    assert_eq!(log.attempts(), 1);
    assert_eq!(server.ledger("acct").await.len(), 1);
}

#[tokio::test]
async fn every_joined_caller_gets_the_same_error() {
    let server = TestServer::start().await;
    let failures: Vec<_> = (0..10).map(|_| json!({"status": 503})).collect();
    server.faults("acct", json!({"fail_next": failures})).await;
    let log = EventLog::default();
    let client = Client::builder()
        .store(MemoryStore::new())
        .retry(oncely::RetryPolicy {
            max_attempts: 2,
            ..quick_policy()
        })
        .on_event(log.handler())
        .build()
        .unwrap();
    let url = Arc::new(server.charges_url());
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), Arc::clone(&url));
            tokio::spawn(async move { pay(&client, &url, "order-42", charge(3)).await })
        })
        .collect();
    let mut messages = Vec::new();
    for call in calls {
        let error = call.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::GaveUp);
        messages.push(error.to_string());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(log.attempts(), 2);
}

#[tokio::test]
async fn a_changed_payload_is_refused_before_sending() {
    let server = TestServer::start().await;
    let log = EventLog::default();
    let client = client(&log);
    let url = server.charges_url();
    let first = pay(&client, &url, "order-42", charge(100)).await.unwrap();
    let error = pay(&client, &url, "order-42", charge(200))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert_eq!(error.key(), Some(first.key()));
    assert_eq!(
        log.attempts(),
        1,
        "nothing was sent for the conflicting call"
    );
    assert_eq!(log.count(|k| matches!(k, EventKind::Conflict)), 1);

    // Also while the first request is still in the air.
    server.faults("acct", json!({"slow_ms": 300})).await;
    let flying = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .intent("order-43")
                .post(&url)
                .header("x-account", "acct")
                .body(charge(1))
                .send()
                .await
        }
    });
    while log.attempts() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let error = client
        .intent("order-43")
        .post(&url)
        .header("x-account", "acct")
        .body(charge(2))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_conflict());
    assert_eq!(flying.await.unwrap().unwrap().status(), 201);
    assert_eq!(log.attempts(), 2);
    let amounts: Vec<_> = server
        .ledger("acct")
        .await
        .iter()
        .map(|c| c["amount"].as_u64())
        .collect();
    assert_eq!(amounts, vec![Some(100), Some(1)]);
}

#[tokio::test]
async fn invalid_input_is_a_typed_error_and_records_nothing() {
    let log = EventLog::default();
    let client = client(&log);
    let cases = [
        client.intent("").post("http://127.0.0.1:1/"),
        client.intent("x").post("not a url"),
        client.intent("x").post("ftp://127.0.0.1/"),
        client
            .intent("x")
            .method("BAD METHOD", "http://127.0.0.1:1/"),
        client
            .intent("x")
            .post("http://127.0.0.1:1/")
            .header("bad header", "v"),
        client
            .intent("x")
            .post("http://127.0.0.1:1/")
            .header("x-ok", "line\r\nbreak"),
        // A control character HTTP refuses.
        client
            .intent("x")
            .post("http://127.0.0.1:1/")
            .header("x-ok", "bell\u{7}"),
        client
            .intent("x")
            .post("http://127.0.0.1:1/")
            .header("idempotency-key", "\"unterminated"),
        client.intent("x"),
    ];
    for request in cases {
        let error = request.send().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    }
    assert!(client.records().await.unwrap().is_empty());
    assert_eq!(log.attempts(), 0);
}

#[tokio::test]
async fn the_callers_own_key_is_kept() {
    let server = TestServer::start().await;
    let log = EventLog::default();
    let client = client(&log);
    let outcome = client
        .intent("mine")
        .post(server.charges_url())
        .header("x-account", "acct")
        .header("Idempotency-Key", "\"caller-chosen-key\"")
        .body(charge(5))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome.key().as_str(), "caller-chosen-key");
    assert_eq!(
        server.ledger("acct").await[0]["idempotency_key"],
        "caller-chosen-key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_that_panics_leaves_its_joined_callers_gave_up_and_the_intent_resumable() {
    let server = TestServer::start().await;
    let log = EventLog::default();
    let client = client(&log);
    let url = server.charges_url();
    // A handler with a bug: at the first attempt, once a second caller has
    // joined, it panics in the flight's task.
    let bug = client.subscribe({
        let log = log.clone();
        move |event: &oncely::Event| {
            if matches!(event.kind, EventKind::Attempt { .. }) {
                while log.count(|k| matches!(k, EventKind::Joined)) == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                panic!("a bug in an event handler");
            }
        }
    });
    let call = |client: &Client| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move { pay(&client, &url, "order-42", charge(7)).await })
    };
    let leader = call(&client);
    while log.attempts() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let follower = call(&client);
    assert!(leader.await.unwrap_err().is_panic());
    let error = follower.await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp, "{error}");
    assert_eq!(error.intent(), Some("order-42"));

    // The entry left with its flight; the intent was recorded before its
    // attempt, unsettled, and the next call sends it under that key.
    drop(bug);
    let key = client.record("order-42").await.unwrap().unwrap().key;
    let outcome = pay(&client, &url, "order-42", charge(7)).await.unwrap();
    assert_eq!((outcome.status(), outcome.key()), (201, &key));
    let ledger = server.ledger("acct").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["idempotency_key"], key.as_str());
}
