//! The server's wish to be left alone is honoured, and time-based rules
//! (retention, deadline) follow the injected clock, never the wall.

// Against the reference server on loopback: native only (the browser runs
// the same behaviours in pkg-tests/).
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::time::{Duration, UNIX_EPOCH};

use oncely::runtime::Clock;
use oncely::{Client, ErrorKind, EventKind, MemoryStore, RetryPolicy, State};
use serde_json::json;
use support::{EventLog, SeededRandom, TestServer, VirtualClock, charge};

fn client(clock: &VirtualClock, log: &EventLog) -> Client {
    Client::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .random(SeededRandom::new(7))
        .on_event(log.handler())
        .build()
        .unwrap()
}

/// The virtual times of the attempts, read from the event stream.
fn attempt_times(clock: &VirtualClock, log: &EventLog) -> Vec<u64> {
    let _ = clock;
    log.events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Attempt { .. }))
        .map(|e| e.at_ms)
        .collect()
}

async fn pay_with(
    server: &TestServer,
    clock: &VirtualClock,
    log: &EventLog,
    retry_after: (&str, String),
) -> oncely::Outcome {
    let mut headers = serde_json::Map::new();
    headers.insert(retry_after.0.to_owned(), json!(retry_after.1));
    server
        .faults(
            "acct",
            json!({"fail_next": [{"status": 429, "headers": headers}]}),
        )
        .await;
    client(clock, log)
        .intent("order")
        .post(server.charges_url())
        .header("x-account", "acct")
        .body(charge(10))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn retry_after_seconds_is_never_retried_early() {
    let server = TestServer::start().await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let outcome = pay_with(&server, &clock, &log, ("Retry-After", "7".to_owned())).await;
    assert_eq!((outcome.status(), outcome.attempts()), (201, 2));
    let times = attempt_times(&clock, &log);
    assert!(times[1] - times[0] >= 7_000, "{times:?}");
    assert!(clock.sleeps()[0] >= Duration::from_secs(7));
}

#[tokio::test]
async fn retry_after_http_date_is_never_retried_early() {
    let server = TestServer::start().await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    // A whole second later than now, rounded up, plus 5 s.
    let at = UNIX_EPOCH + Duration::from_secs(clock.now_ms() / 1000 + 6);
    let outcome = pay_with(
        &server,
        &clock,
        &log,
        ("Retry-After", httpdate::fmt_http_date(at)),
    )
    .await;
    assert_eq!(outcome.attempts(), 2);
    let times = attempt_times(&clock, &log);
    let target = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(
        times[1] >= target,
        "retried at {} before the date {target}",
        times[1]
    );
}

#[tokio::test]
async fn retry_after_ms_is_honoured() {
    let server = TestServer::start().await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let outcome = pay_with(&server, &clock, &log, ("retry-after-ms", "2500".to_owned())).await;
    assert_eq!(outcome.attempts(), 2);
    let times = attempt_times(&clock, &log);
    assert!(times[1] - times[0] >= 2_500, "{times:?}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_gives_up_instead_of_retrying_early() {
    let server = TestServer::start().await;
    server
        .faults(
            "acct",
            json!({"fail_next": [{"status": 503, "headers": {"Retry-After": "3600"}}]}),
        )
        .await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let client = client(&clock, &log);
    let error = client
        .intent("order")
        .post(server.charges_url())
        .header("x-account", "acct")
        .body(charge(10))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp);
    assert_eq!(error.last_status(), Some(503));
    assert_eq!(log.attempts(), 1);
    assert!(clock.sleeps().is_empty());
    // Resumable later, under the same key.
    let record = client.record("order").await.unwrap().unwrap();
    assert_eq!(record.state, State::Failed);
    let later = client
        .intent("order")
        .post(server.charges_url())
        .header("x-account", "acct")
        .body(charge(10))
        .send()
        .await
        .unwrap();
    assert_eq!(later.key(), &record.key);
    assert_eq!(later.attempts(), 2);
    assert_eq!(server.ledger("acct").await.len(), 1);
}

#[tokio::test]
async fn backoff_delays_grow_with_full_jitter_under_the_cap() {
    let server = TestServer::start().await;
    let failures: Vec<_> = (0..7).map(|_| json!({"status": 502})).collect();
    server.faults("acct", json!({"fail_next": failures})).await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let outcome = client(&clock, &log)
        .intent("order")
        .post(server.charges_url())
        .header("x-account", "acct")
        .body(charge(10))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome.attempts(), 8);
    let policy = RetryPolicy::default();
    for (n, delay) in clock.sleeps().iter().enumerate() {
        let ceiling = policy
            .base_delay
            .saturating_mul(1 << n)
            .min(policy.max_delay);
        assert!(*delay <= ceiling, "retry {n}: {delay:?} > {ceiling:?}");
    }
    // Jittered: not every delay sits at its ceiling.
    assert!(
        clock
            .sleeps()
            .iter()
            .enumerate()
            .any(|(n, d)| *d < policy.base_delay * (1 << n) / 2)
    );
}

#[tokio::test]
async fn settled_intents_replay_until_retention_ends_and_are_never_resent_after() {
    let server = TestServer::start().await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let client = Client::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .retention(Duration::from_secs(3600))
        .on_event(log.handler())
        .build()
        .unwrap();
    let pay = || {
        client
            .intent("order")
            .post(server.charges_url())
            .header("x-account", "acct")
            .body(charge(10))
            .send()
    };
    assert!(!pay().await.unwrap().replayed());
    clock.advance(Duration::from_secs(3599));
    assert!(pay().await.unwrap().replayed());
    clock.advance(Duration::from_secs(2));
    let error = pay().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Expired);
    assert_eq!(log.attempts(), 1);
    // Forgetting it is the explicit way to start anew.
    assert!(client.forget("order").await.unwrap());
    assert!(!pay().await.unwrap().replayed());
    assert_eq!(server.ledger("acct").await.len(), 2);
}

#[tokio::test]
async fn pending_intents_past_retention_are_marked_expired_on_resume() {
    let server = TestServer::start().await;
    server
        .faults(
            "acct",
            json!({"fail_next": [{"status": 503, "headers": {"Retry-After": "999"}}]}),
        )
        .await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let store = MemoryStore::new();
    let client = Client::builder()
        .store(store.clone())
        .clock(clock.clone())
        .retention(Duration::from_secs(60))
        .on_event(log.handler())
        .build()
        .unwrap();
    // Leave it pending, as a crash would: write the record's state back.
    let _ = client
        .intent("order")
        .post(server.charges_url())
        .header("x-account", "acct")
        .body(charge(10))
        .send()
        .await
        .unwrap_err();
    let mut record = client.record("order").await.unwrap().unwrap();
    record.state = State::Pending;
    record.failure = None;
    oncely::Store::remove(&store, "order").await.unwrap();
    oncely::Store::create_or_get(&store, record).await.unwrap();

    clock.advance(Duration::from_secs(61));
    let results = client.resume().await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].as_ref().unwrap_err().kind(), ErrorKind::Expired);
    assert_eq!(
        client.record("order").await.unwrap().unwrap().state,
        State::Expired
    );
    assert_eq!(log.attempts(), 1);
    assert!(client.pending().await.unwrap().is_empty());
}
