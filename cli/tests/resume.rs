//! `oncely resume`: intents that gave up or were interrupted, finished under
//! their keys; one line (or JSON object) per intent; the exit status.

mod common;

use common::{CHARGE, Harness, TestResult, eventually, finish, ledger_keys, run, spawn};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_pending_it_succeeds_quietly() -> TestResult {
    let h = Harness::start("resume-nothing").await?;
    let resumed = run(h.resume(&["--json"])).await?;
    resumed.expect_code(0)?;
    assert_eq!(resumed.stdout, b"");
    assert!(!h.store().exists(), "resume does not create a store");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_that_gave_up_is_retried_under_its_key() -> TestResult {
    let h = Harness::start("resume-gave-up").await?;
    h.faults(json!({"fail_next": [{"status": 503}, {"status": 503}]}))
        .await?;

    let sent = run(h.send("order-down", CHARGE, &["--max-attempts", "2"])).await?;
    sent.expect_code(5)?;
    assert!(sent.stderr.contains("gave up"), "stderr: {}", sent.stderr);
    let record = h.record("order-down").await?.ok_or("no record")?;
    assert_eq!(record["state"], "failed");
    assert_eq!(record["failure"]["kind"], "gave_up");
    assert_eq!(record["failure"]["last_status"], 503);
    let key = record["key"].as_str().ok_or("no key")?.to_owned();
    assert!(h.ledger().await?.is_empty());

    let resumed = run(h.resume(&["--json", "-H", "Authorization: Bearer again"])).await?;
    resumed.expect_code(0)?;
    let line = resumed.json()?;
    assert_eq!(line["intent"], "order-down");
    assert_eq!(line["key"], key.as_str());
    assert_eq!(line["status"], 201);
    assert_eq!(line["attempts"], 3);
    assert_eq!(ledger_keys(&h.ledger().await?), vec![key]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_intent_settling_with_a_400_exits_1() -> TestResult {
    let h = Harness::start("resume-400").await?;
    // The first attempt gets a 503 asking for a long wait; kill the send
    // while it waits, then let the resumed attempt meet a 400.
    h.faults(json!({"fail_next": [{"status": 503, "headers": {"Retry-After": "30"}}]}))
        .await?;
    let mut child = spawn(h.send("order-400", CHARGE, &[]))?;
    eventually("the 503 to be served", || async {
        let faults: Value = reqwest::Client::new()
            .get(format!("{}/api/faults", h.server.url()))
            .header("x-account", &h.account)
            .send()
            .await?
            .json()
            .await?;
        Ok(faults["fail_next"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(()))
    })
    .await?;
    child.kill().await?;
    finish(child).await?;
    let key = h
        .record("order-400")
        .await?
        .and_then(|r| r["key"].as_str().map(str::to_owned))
        .ok_or("no record")?;

    h.faults(json!({"fail_next": [{"status": 400}]})).await?;
    let resumed = run(h.resume(&[])).await?;
    resumed.expect_code(1)?;
    let out = resumed.stdout_text();
    assert_eq!(
        out,
        format!("order-400  {key}  settled 400 after 2 attempts\n")
    );
    assert!(
        resumed.stderr.contains("order-400: attempt 2…"),
        "stderr: {}",
        resumed.stderr
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_without_the_intents_credentials_sends_nothing() -> TestResult {
    let h = Harness::start("resume-no-credentials").await?;
    h.faults(json!({"drop_next": 1})).await?;
    // The charge lands, its answer is lost, and the run gives up.
    let sent = run(h.send(
        "order-c",
        CHARGE,
        &["--max-attempts", "1", "-H", "Authorization: Bearer t0ken"],
    ))
    .await?;
    sent.expect_code(5)?;
    assert_eq!(h.ledger().await?.len(), 1);

    // Without the credentials it was sent with: nothing sent, exit 10.
    let bare = run(h.oncely(&["resume", "--json"])).await?;
    bare.expect_code(10)?;
    let error: Value = bare.json()?;
    assert_eq!(error["error"]["kind"], "credentials", "{error}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("authorization") && message.contains("x-account"),
        "{message}"
    );
    let record = h.record("order-c").await?.ok_or("no record")?;
    assert_eq!(record["attempts"], 1, "nothing was sent");

    // Given them again: the server replays the one charge.
    let resumed = run(h.resume(&["--json", "-H", "Authorization: Bearer t0ken"])).await?;
    resumed.expect_code(0)?;
    assert_eq!(h.ledger().await?.len(), 1);
    Ok(())
}
