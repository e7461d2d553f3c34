//! Every row of DESIGN.md's classification table, against the real reference
//! server on loopback (the clock is virtual, so retries never sleep).

// Against the reference server on loopback: native only (the browser runs
// the same behaviours in pkg-tests/).
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::time::Duration;

use oncely::{Client, ErrorKind, EventKind, MemoryStore, RetryPolicy};
use serde_json::json;
use support::{EventLog, TestServer, VirtualClock, charge, pay};

fn client(clock: &VirtualClock, log: &EventLog, policy: RetryPolicy) -> Client {
    Client::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .retry(policy)
        .on_event(log.handler())
        .build()
        .unwrap()
}

#[tokio::test]
async fn transient_statuses_are_retried_under_the_same_key() {
    for status in [408, 425, 429, 500, 502, 503, 504] {
        let server = TestServer::start().await;
        server
            .faults("acct", json!({"fail_next": [{"status": status}]}))
            .await;
        let (clock, log) = (VirtualClock::new(), EventLog::default());
        let outcome = pay(
            &client(&clock, &log, RetryPolicy::default()),
            &server.charges_url(),
            "order",
            charge(100),
        )
        .await
        .unwrap_or_else(|e| panic!("{status}: {e}"));
        assert_eq!(outcome.status(), 201, "after {status}");
        assert_eq!(outcome.attempts(), 2, "after {status}");
        assert_eq!(
            log.count(|k| matches!(k, EventKind::RetryScheduled { .. })),
            1
        );
        let ledger = server.ledger("acct").await;
        assert_eq!(ledger.len(), 1, "after {status}");
        assert_eq!(ledger[0]["idempotency_key"], outcome.key().as_str());
    }
}

#[tokio::test]
async fn conflict_409_is_retried_without_using_up_attempts() {
    let server = TestServer::start().await;
    let busy = json!({"status": 409, "headers": {"Retry-After": "1"}});
    server
        .faults("acct", json!({"fail_next": [busy, busy, busy]}))
        .await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let policy = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let outcome = pay(
        &client(&clock, &log, policy),
        &server.charges_url(),
        "order",
        charge(100),
    )
    .await
    .unwrap();
    assert_eq!(outcome.status(), 201);
    assert_eq!(outcome.attempts(), 4);
    assert_eq!(server.ledger("acct").await.len(), 1);
}

#[tokio::test]
async fn conflict_409_fails_only_at_the_deadline() {
    let server = TestServer::start().await;
    let busy = json!({"status": 409});
    server
        .faults("acct", json!({"fail_next": vec![busy; 200]}))
        .await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let policy = RetryPolicy {
        max_attempts: 1,
        deadline: Duration::from_secs(30),
        ..RetryPolicy::default()
    };
    let error = pay(
        &client(&clock, &log, policy),
        &server.charges_url(),
        "order",
        charge(100),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp);
    assert_eq!(error.last_status(), Some(409));
    assert!(error.message().contains("deadline"), "{error}");
    let waited: Duration = clock.sleeps().iter().sum();
    assert!(waited <= Duration::from_secs(30));
    assert!(log.attempts() > 3);
}

#[tokio::test]
async fn unprocessable_422_is_rejected_and_never_retried() {
    let server = TestServer::start().await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    // Another client used the key first with another payload.
    let first = client(&clock, &EventLog::default(), RetryPolicy::default());
    let key = "shared-key-1";
    first
        .intent("theirs")
        .post(server.charges_url())
        .header("x-account", "acct")
        .header("idempotency-key", key)
        .body(charge(100))
        .send()
        .await
        .unwrap();
    let ours = client(&clock, &log, RetryPolicy::default());
    let error = ours
        .intent("ours")
        .post(server.charges_url())
        .header("x-account", "acct")
        .header("idempotency-key", key)
        .body(charge(999))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert_eq!(error.last_status(), Some(422));
    assert_eq!(log.attempts(), 1);
    // A later call of the same intent does not send again either.
    let again = ours
        .intent("ours")
        .post(server.charges_url())
        .header("x-account", "acct")
        .header("idempotency-key", key)
        .body(charge(999))
        .send()
        .await
        .unwrap_err();
    assert!(again.is_rejected());
    assert_eq!(log.attempts(), 1);
    assert_eq!(server.ledger("acct").await.len(), 1);
}

#[tokio::test]
async fn client_errors_settle_and_are_never_retried() {
    let server = TestServer::start().await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let client = client(&clock, &log, RetryPolicy::default());
    // A real 400: the body lacks an amount.
    let bad = pay(
        &client,
        &server.charges_url(),
        "bad",
        r#"{"currency":"usd"}"#.to_owned(),
    )
    .await
    .unwrap();
    assert_eq!((bad.status(), bad.attempts()), (400, 1));
    // Any other 4xx, injected.
    server
        .faults(
            "acct",
            json!({"fail_next": [{"status": 403}, {"status": 404}]}),
        )
        .await;
    let forbidden = pay(&client, &server.charges_url(), "forbidden", charge(1))
        .await
        .unwrap();
    assert_eq!((forbidden.status(), forbidden.attempts()), (403, 1));
    let missing = pay(&client, &server.charges_url(), "missing", charge(2))
        .await
        .unwrap();
    assert_eq!((missing.status(), missing.attempts()), (404, 1));
    assert_eq!(log.attempts(), 3);
    // Settled: the same call replays, nothing is sent.
    let replay = pay(&client, &server.charges_url(), "forbidden", charge(1))
        .await
        .unwrap();
    assert!(replay.replayed());
    assert_eq!(replay.status(), 403);
    assert_eq!(log.attempts(), 3);
    assert!(server.ledger("acct").await.is_empty());
}

#[tokio::test]
async fn success_and_redirects_settle() {
    let server = TestServer::start().await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let client = client(&clock, &log, RetryPolicy::default());
    let created = pay(&client, &server.charges_url(), "ok", charge(5))
        .await
        .unwrap();
    assert_eq!(
        (created.status(), created.attempts(), created.replayed()),
        (201, 1, false)
    );
    server
        .faults(
            "acct",
            json!({"fail_next": [{"status": 303, "headers": {"Location": "/elsewhere"}}]}),
        )
        .await;
    let moved = pay(&client, &server.charges_url(), "moved", charge(6))
        .await
        .unwrap();
    // Recorded as answered; never followed (a 303 would turn the POST into a GET).
    assert_eq!((moved.status(), moved.attempts()), (303, 1));
    assert_eq!(moved.header("location"), Some("/elsewhere"));
}

#[tokio::test]
async fn connect_errors_are_retried_until_the_policy_gives_up() {
    // A port nothing listens on: bind one, learn its number, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let client = client(&clock, &log, policy);
    let error = client
        .intent("nowhere")
        .post(format!("http://127.0.0.1:{port}/api/charges"))
        .body(charge(1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp);
    assert_eq!(log.attempts(), 3);
    assert!(
        std::error::Error::source(&error).is_some(),
        "the last cause is kept"
    );
    // The intent stays recorded, failed, for the application to see and retry.
    let record = client.record("nowhere").await.unwrap().unwrap();
    assert_eq!(record.state, oncely::State::Failed);
    assert_eq!(record.attempts, 3);
}

#[tokio::test]
async fn a_response_lost_after_commit_ends_in_one_charge_under_one_key() {
    let server = TestServer::start().await;
    server.faults("acct", json!({"drop_next": 1})).await;
    let (clock, log) = (VirtualClock::new(), EventLog::default());
    let outcome = pay(
        &client(&clock, &log, RetryPolicy::default()),
        &server.charges_url(),
        "order",
        charge(4200),
    )
    .await
    .unwrap();
    assert_eq!(outcome.status(), 201);
    assert_eq!(outcome.attempts(), 2);
    // The server replayed its first answer to the second attempt.
    assert_eq!(outcome.header("idempotent-replayed"), Some("true"));
    let ledger = server.ledger("acct").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["idempotency_key"], outcome.key().as_str());
    // Every attempt carried the same key.
    let keys: std::collections::HashSet<_> =
        log.events().into_iter().filter_map(|e| e.key).collect();
    assert_eq!(keys.len(), 1);
}

#[tokio::test]
async fn a_timeout_is_retried_and_the_slow_commit_is_replayed() {
    let server = TestServer::start().await;
    server.faults("acct", json!({"slow_ms": 600})).await;
    let log = EventLog::default();
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_millis(150),
        ..support::quick_policy()
    };
    // Real clock: the server's commit takes real time.
    let client = Client::builder()
        .store(MemoryStore::new())
        .retry(policy)
        .on_event(log.handler())
        .build()
        .unwrap();
    let outcome = pay(&client, &server.charges_url(), "order", charge(7))
        .await
        .unwrap();
    assert_eq!(outcome.status(), 201);
    assert!(outcome.attempts() >= 2);
    let reasons: Vec<String> = log
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::RetryScheduled { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(reasons[0].contains("timed out"), "{reasons:?}");
    assert_eq!(server.ledger("acct").await.len(), 1);
}
