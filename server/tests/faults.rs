//! Fault injection: queued failures, lost responses, slow commits.

mod common;

use std::time::Duration;

use common::{BODY, Harness, TestResult, eventually, header, key_state};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn settings_merge_read_and_clear() -> TestResult {
    let h = Harness::start().await?;
    let empty = json!({"fail_next": [], "drop_next": 0, "slow_ms": 0, "slow_record_ms": 0});
    let read = |h: &Harness| {
        let request = h
            .client
            .get(h.url("/api/faults"))
            .header("x-account", "acct");
        async move { request.send().await?.json::<Value>().await }
    };
    assert_eq!(read(&h).await?, empty);

    let first = json!({"status": 503, "headers": {"Retry-After": "2"}});
    let second = json!({"status": 429, "headers": {}});
    h.set_faults("acct", json!({"fail_next": [first], "slow_ms": 10}))
        .await?;
    let merged = h
        .set_faults(
            "acct",
            json!({"fail_next": [second], "drop_next": 2, "slow_record_ms": 20}),
        )
        .await?;
    let expected = json!({
        "fail_next": [first, second], "drop_next": 2, "slow_ms": 10, "slow_record_ms": 20,
    });
    assert_eq!(merged, expected);
    assert_eq!(read(&h).await?, expected);

    // Another account sees none of it.
    let other = h
        .client
        .get(h.url("/api/faults"))
        .header("x-account", "other");
    assert_eq!(other.send().await?.json::<Value>().await?, empty);

    let cleared = h
        .client
        .delete(h.url("/api/faults"))
        .header("x-account", "acct")
        .send()
        .await?;
    assert_eq!(cleared.status(), 200);
    assert_eq!(read(&h).await?, empty);
    Ok(())
}

#[tokio::test]
async fn bad_fault_json_is_400() -> TestResult {
    let h = Harness::start().await?;
    for bad in [
        "nope",
        r#"{"fail_next": 3}"#,
        r#"{"fail_next": [{"status": 42}]}"#,
        r#"{"fail_next": [{"status": 101}]}"#,
        r#"{"fail_next": [{"status": 503, "headers": {"bad name": "x"}}]}"#,
        r#"{"fail_next": [{"status": 503, "headers": {"Content-Length": "9"}}]}"#,
        r#"{"drop_next": -1}"#,
        r#"{"slow_ms": 3600000}"#,
        r#"{"slow_record_ms": 60001}"#,
        r#"{"drop_nxt": 1}"#,
    ] {
        let response = h
            .client
            .post(h.url("/api/faults"))
            .header("x-account", "acct")
            .body(bad)
            .send()
            .await?;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(response.json::<Value>().await?["error"], "invalid_faults");
    }
    Ok(())
}

#[tokio::test]
async fn fail_next_is_answered_verbatim_and_nothing_is_stored() -> TestResult {
    let h = Harness::start().await?;
    h.set_faults(
        "acct",
        json!({"fail_next": [
            {"status": 503, "headers": {"Retry-After": "2", "X-Trace": "abc"}},
            {"status": 429},
        ]}),
    )
    .await?;
    let key = Some("\"k-fail\"");

    let first = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(first.status(), 503);
    assert_eq!(header(&first, "retry-after"), Some("2"));
    assert_eq!(header(&first, "x-trace"), Some("abc"));
    assert_eq!(first.json::<Value>().await?, json!({"error": "injected"}));
    assert_eq!(key_state(&h.db(), "acct", "k-fail")?, None);

    let second = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(second.status(), 429);
    assert!(h.ledger("acct").await?.is_empty());

    let retry = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(retry.status(), 201);
    assert_eq!(header(&retry, "idempotent-replayed"), None);
    assert_eq!(h.ledger("acct").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn faults_of_one_account_do_not_touch_another() -> TestResult {
    let h = Harness::start().await?;
    h.set_faults(
        "noisy",
        json!({"fail_next": [{"status": 500}], "drop_next": 1}),
    )
    .await?;
    let quiet = h.charge(&h.client, "quiet", Some("\"q\""), BODY).await?;
    assert_eq!(quiet.status(), 201);
    Ok(())
}

#[tokio::test]
async fn drop_next_commits_then_closes_the_connection() -> TestResult {
    let h = Harness::start().await?;
    h.set_faults("acct", json!({"drop_next": 1})).await?;
    let key = Some("\"k-drop\"");
    // A fresh client so the request cannot ride (or be retried on) a pooled connection.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;

    let lost = h.charge(&fresh, "acct", key, BODY).await;
    let err = match lost {
        Ok(response) => {
            return Err(format!("expected a dropped connection, got {}", response.status()).into());
        }
        Err(err) => err,
    };
    assert!(err.status().is_none(), "{err:?}");

    // The charge committed before the connection was cut...
    let ledger = h.ledger("acct").await?;
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        key_state(&h.db(), "acct", "k-drop")?.as_deref(),
        Some("completed")
    );
    // ...so the retry replays it, and the fault was used up.
    let retry = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(retry.status(), 201);
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(retry.json::<Value>().await?, ledger[0]);
    let fresh_key = h
        .charge(&h.client, "acct", Some("\"k-after\""), BODY)
        .await?;
    assert_eq!(fresh_key.status(), 201);
    Ok(())
}

#[tokio::test]
async fn drop_next_also_cuts_an_http2_connection() -> TestResult {
    let h = Harness::start().await?;
    h.set_faults("acct", json!({"drop_next": 1})).await?;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build()?;
    let lost = h.charge(&h2, "acct", Some("\"k-h2\""), BODY).await;
    assert!(lost.is_err(), "expected a dropped connection, got {lost:?}");
    assert_eq!(
        key_state(&h.db(), "acct", "k-h2")?.as_deref(),
        Some("completed")
    );

    // The request task behind the cut connection has ended, so stop returns.
    let Harness { server, .. } = h;
    tokio::time::timeout(Duration::from_secs(10), server.stop()).await?;
    Ok(())
}

#[tokio::test]
async fn a_client_hanging_up_mid_request_does_not_strand_the_key() -> TestResult {
    let h = Harness::start().await?;
    h.set_faults("acct", json!({"slow_ms": 400})).await?;
    let db = h.db();

    let mut raw = TcpStream::connect(h.server.addr()).await?;
    let request = format!(
        "POST /api/charges HTTP/1.1\r\nHost: test\r\nX-Account: acct\r\n\
         Idempotency-Key: \"k-hangup\"\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    raw.write_all(request.as_bytes()).await?;
    eventually("the key to be in progress", || {
        let db = db.clone();
        async move { Ok(key_state(&db, "acct", "k-hangup")?.as_deref() == Some("in_progress")) }
    })
    .await?;
    drop(raw);

    eventually("the charge to commit", || {
        let db = db.clone();
        async move { Ok(key_state(&db, "acct", "k-hangup")?.as_deref() == Some("completed")) }
    })
    .await?;
    assert_eq!(h.ledger("acct").await?.len(), 1);
    let retry = h
        .charge(&h.client, "acct", Some("\"k-hangup\""), BODY)
        .await?;
    assert_eq!(retry.status(), 201);
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    Ok(())
}

#[tokio::test]
async fn stop_waits_for_charges_in_flight() -> TestResult {
    let h = Harness::start().await?;
    h.set_faults("acct", json!({"slow_ms": 300})).await?;
    let db = h.db();
    let fresh = reqwest::Client::new();
    let url = h.url("/api/charges");
    let pending = tokio::spawn(async move {
        fresh
            .post(url)
            .header("x-account", "acct")
            .header("idempotency-key", "\"k-stop\"")
            .body(BODY)
            .timeout(Duration::from_secs(10))
            .send()
            .await
    });
    eventually("the key to be in progress", || {
        let db = db.clone();
        async move { Ok(key_state(&db, "acct", "k-stop")?.as_deref() == Some("in_progress")) }
    })
    .await?;

    let common::Harness { server, dir, .. } = h;
    server.stop().await;
    assert_eq!(
        key_state(&dir.path().join("ledger.db"), "acct", "k-stop")?.as_deref(),
        Some("completed")
    );
    // The open request was allowed to finish, not cut.
    assert_eq!(pending.await??.status(), 201);
    Ok(())
}
