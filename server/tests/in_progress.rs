//! A key in progress always ends: clients hanging up at any moment never leave
//! it in progress, and however it ends the ledger holds one charge.

mod common;

use std::time::Duration;

use common::{BODY, Harness, TestResult, eventually, header, key_state, reset, send_raw};
use reqwest::Response;
use serde_json::{Value, json};

/// Retries the charge under `key` until it is no longer 409, for at most 10 s.
async fn retry_until_settled(
    h: &Harness,
    key: &str,
) -> Result<Response, Box<dyn std::error::Error>> {
    let header_value = format!("\"{key}\"");
    for _ in 0..1000 {
        let response = h
            .charge(&h.client, "acct", Some(&header_value), BODY)
            .await?;
        if response.status() != 409 {
            return Ok(response);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("key {key} was still in progress after 10 s").into())
}

#[tokio::test]
async fn a_client_resetting_while_its_key_is_recorded_does_not_strand_it() -> TestResult {
    // A lease far longer than the test: only finishing the request frees the key.
    let h = Harness::start_with(|o| o.lease = Duration::from_secs(600)).await?;
    // The key is in_progress on disk while its request still waits on the write.
    h.set_faults("acct", json!({"slow_record_ms": 1500}))
        .await?;
    let db = h.db();

    let raw = send_raw(h.server.addr(), "k-reset").await?;
    eventually("the key to be in progress", || {
        let db = db.clone();
        async move { Ok(key_state(&db, "acct", "k-reset")?.as_deref() == Some("in_progress")) }
    })
    .await?;
    reset(raw)?;

    let retry = retry_until_settled(&h, "k-reset").await?;
    assert_eq!(retry.status(), 201);
    // The abandoned request itself was finished: the retry replays its charge.
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    let ledger = h.ledger("acct").await?;
    assert_eq!(ledger.len(), 1);
    assert_eq!(retry.json::<Value>().await?, ledger[0]);
    Ok(())
}

#[tokio::test]
async fn many_clients_resetting_right_after_sending_strand_no_key() -> TestResult {
    let h = Harness::start().await?;
    let keys: Vec<String> = (0..100).map(|i| format!("k-abandoned-{i}")).collect();
    for key in &keys {
        reset(send_raw(h.server.addr(), key).await?)?;
    }

    // Each reset landed before, during or after its key was recorded; either
    // way a retry gets one outcome, never 409 for good.
    for key in &keys {
        let retry = retry_until_settled(&h, key).await?;
        assert_eq!(retry.status(), 201, "{key}");
    }
    let ledger = h.ledger("acct").await?;
    let mut charged: Vec<&str> = ledger
        .iter()
        .filter_map(|charge| charge["idempotency_key"].as_str())
        .collect();
    charged.sort_unstable();
    let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(charged, expected, "one charge per key");
    Ok(())
}

#[tokio::test]
async fn a_retry_takes_over_a_key_past_its_lease_and_the_ledger_charges_once() -> TestResult {
    // Every lease has run out by the next request.
    let h = Harness::start_with(|o| o.lease = Duration::ZERO).await?;
    h.set_faults("acct", json!({"slow_ms": 3000})).await?;
    let db = h.db();
    let (client, url) = (reqwest::Client::new(), h.url("/api/charges"));
    let hung = tokio::spawn(async move {
        client
            .post(url)
            .header("x-account", "acct")
            .header("idempotency-key", "\"k-lease\"")
            .body(BODY)
            .send()
            .await
    });
    eventually("the key to be in progress", || {
        let db = db.clone();
        async move { Ok(key_state(&db, "acct", "k-lease")?.as_deref() == Some("in_progress")) }
    })
    .await?;
    // The slow request read its faults on arrival; the retry runs at full speed.
    h.set_faults("acct", json!({"slow_ms": 0})).await?;

    let retry = h
        .charge(&h.client, "acct", Some("\"k-lease\""), BODY)
        .await?;
    assert_eq!(retry.status(), 201);
    assert_eq!(
        header(&retry, "idempotent-replayed"),
        None,
        "the retry made the charge"
    );
    let charge: Value = retry.json().await?;

    // The request it took over was still running; its commit finds the key
    // completed and answers with that charge instead of making a second.
    let hung = hung.await??;
    assert_eq!(hung.status(), 201);
    assert_eq!(header(&hung, "idempotent-replayed"), Some("true"));
    assert_eq!(hung.json::<Value>().await?, charge);
    assert_eq!(h.ledger("acct").await?, vec![charge]);
    Ok(())
}
