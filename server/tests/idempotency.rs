//! The Idempotency-Key protocol on `POST /api/charges`.

mod common;

use common::{BODY, Harness, TestResult, header, key_state};
use serde_json::Value;

#[tokio::test]
async fn missing_key_is_400() -> TestResult {
    let h = Harness::start().await?;
    let response = h.charge(&h.client, "acct", None, BODY).await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "missing_idempotency_key");
    assert!(h.ledger("acct").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn malformed_key_is_400() -> TestResult {
    let h = Harness::start().await?;
    for key in ["\"unterminated", "\"\"", "\"a\";x=1", "two words"] {
        let response = h.charge(&h.client, "acct", Some(key), BODY).await?;
        assert_eq!(response.status(), 400, "{key:?}");
        let body: Value = response.json().await?;
        assert_eq!(body["error"], "invalid_idempotency_key");
    }
    Ok(())
}

#[tokio::test]
async fn invalid_bodies_are_not_stored_against_the_key() -> TestResult {
    let h = Harness::start().await?;
    let key = Some("\"k-invalid\"");
    for bad in [
        "not json",
        r#"{"amount":"12","currency":"EUR"}"#,
        r#"{"amount":0,"currency":"EUR"}"#,
        r#"{"amount":12.5,"currency":"EUR"}"#,
        r#"{"amount":12,"currency":"EURO"}"#,
    ] {
        let response = h.charge(&h.client, "acct", key, bad).await?;
        assert_eq!(response.status(), 400, "{bad}");
    }
    assert_eq!(key_state(&h.db(), "acct", "k-invalid")?, None);

    let response = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(response.status(), 201);
    assert_eq!(header(&response, "idempotent-replayed"), None);
    assert_eq!(h.ledger("acct").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn same_key_and_payload_replays_the_first_response() -> TestResult {
    let h = Harness::start().await?;
    let key = Some("\"01J9ZQ3M7V\"");
    let first = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(first.status(), 201);
    assert_eq!(header(&first, "idempotent-replayed"), None);
    assert_eq!(header(&first, "idempotency-key"), Some("\"01J9ZQ3M7V\""));
    let first: Value = first.json().await?;
    assert_eq!(first["account"], "acct");
    assert_eq!(first["idempotency_key"], "01J9ZQ3M7V");
    assert_eq!(first["amount"], 1250);
    assert_eq!(first["currency"], "EUR");
    assert_eq!(first["description"], "tea");
    assert!(first["id"].is_i64() && first["created_at"].is_i64());

    let again = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(again.status(), 201);
    assert_eq!(header(&again, "idempotent-replayed"), Some("true"));
    let again: Value = again.json().await?;
    assert_eq!(again, first);

    let ledger = h.ledger("acct").await?;
    assert_eq!(ledger, vec![first]);
    Ok(())
}

#[tokio::test]
async fn bare_key_is_accepted_as_the_same_key() -> TestResult {
    let h = Harness::start().await?;
    let quoted = h
        .charge(&h.client, "acct", Some("\"abc-123\""), BODY)
        .await?;
    assert_eq!(quoted.status(), 201);
    let bare = h.charge(&h.client, "acct", Some("abc-123"), BODY).await?;
    assert_eq!(bare.status(), 201);
    assert_eq!(header(&bare, "idempotent-replayed"), Some("true"));
    Ok(())
}

#[tokio::test]
async fn same_key_different_payload_is_422() -> TestResult {
    let h = Harness::start().await?;
    let key = Some("\"k-422\"");
    assert_eq!(h.charge(&h.client, "acct", key, BODY).await?.status(), 201);
    let other = r#"{"amount":9999,"currency":"EUR"}"#;
    let response = h.charge(&h.client, "acct", key, other).await?;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "idempotency_key_reused");
    assert_eq!(h.ledger("acct").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn concurrent_request_with_the_key_in_progress_is_409() -> TestResult {
    let h = Harness::start().await?;
    h.set_faults("acct", serde_json::json!({"slow_ms": 1500}))
        .await?;
    let key = Some("\"k-409\"");
    // Whichever arrives first holds the key for 1.5 s; the other must get 409.
    let (a, b) = tokio::join!(
        h.charge(&h.client, "acct", key, BODY),
        h.charge(&h.client, "acct", key, BODY),
    );
    let (a, b) = (a?, b?);
    let (winner, loser) = if a.status() == 201 { (a, b) } else { (b, a) };
    assert_eq!(winner.status(), 201);
    assert_eq!(header(&winner, "idempotent-replayed"), None);
    assert_eq!(loser.status(), 409);
    assert_eq!(header(&loser, "retry-after"), Some("1"));

    h.set_faults("acct", serde_json::json!({"slow_ms": 0}))
        .await?;
    let retry = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(retry.status(), 201);
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(h.ledger("acct").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn keys_are_scoped_per_account() -> TestResult {
    let h = Harness::start().await?;
    let key = Some("\"shared-key\"");
    let alice = h.charge(&h.client, "alice", key, BODY).await?;
    let bob = h.charge(&h.client, "bob", key, BODY).await?;
    assert_eq!(alice.status(), 201);
    assert_eq!(bob.status(), 201);
    assert_eq!(header(&bob, "idempotent-replayed"), None);
    let (alice, bob): (Value, Value) = (alice.json().await?, bob.json().await?);
    assert_ne!(alice["id"], bob["id"]);
    assert_eq!(bob["account"], "bob");
    assert_eq!(h.ledger("alice").await?, vec![alice]);
    assert_eq!(h.ledger("bob").await?, vec![bob]);
    assert!(h.ledger("public").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn account_comes_from_the_cookie_then_defaults_to_public() -> TestResult {
    let h = Harness::start().await?;
    let url = h.url("/api/charges");
    let by_cookie = h
        .client
        .post(&url)
        .header("cookie", "theme=dark; account=carol")
        .header("idempotency-key", "\"c1\"")
        .body(BODY)
        .send()
        .await?;
    assert_eq!(by_cookie.status(), 201);
    let anonymous = h
        .client
        .post(&url)
        .header("idempotency-key", "\"c1\"")
        .body(BODY)
        .send()
        .await?;
    assert_eq!(anonymous.status(), 201);
    assert_eq!(header(&anonymous, "idempotent-replayed"), None);
    assert_eq!(h.ledger("carol").await?.len(), 1);
    assert_eq!(h.ledger("public").await?.len(), 1);

    let bad = h
        .charge(&h.client, "no spaces!", Some("\"c2\""), BODY)
        .await?;
    assert_eq!(bad.status(), 400);
    Ok(())
}

#[tokio::test]
async fn ledger_lists_oldest_first() -> TestResult {
    let h = Harness::start().await?;
    for n in 1..=3 {
        let key = format!("\"order-{n}\"");
        let body = format!(r#"{{"amount":{n},"currency":"usd"}}"#);
        assert_eq!(
            h.charge(&h.client, "acct", Some(&key), &body)
                .await?
                .status(),
            201
        );
    }
    let ledger = h.ledger("acct").await?;
    let amounts: Vec<i64> = ledger.iter().filter_map(|c| c["amount"].as_i64()).collect();
    assert_eq!(amounts, [1, 2, 3]);
    assert!(
        ledger
            .iter()
            .all(|c| c["currency"] == "USD" && c["description"].is_null())
    );
    Ok(())
}
