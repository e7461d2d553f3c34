//! A `send` killed mid-request leaves its intent recorded: `resume`, or the
//! same `send` again, finishes it under the same key, with one charge.

mod common;

use common::{CHARGE, Fallible, Harness, TestResult, eventually, finish, ledger_keys, run, spawn};
use serde_json::json;

/// Starts `send` against a slow server and SIGKILLs it while the server holds
/// its request in progress; returns the key `list` showed before the kill.
async fn kill_mid_request(h: &Harness, intent: &str) -> Fallible<String> {
    h.faults(json!({"slow_ms": 2000})).await?;
    let mut child = spawn(h.send(intent, CHARGE, &[]))?;

    let key = eventually("the intent recorded pending", || async {
        let record = h.record(intent).await?;
        Ok(record
            .filter(|r| r["state"] == "pending")
            .and_then(|r| r["key"].as_str().map(str::to_owned)))
    })
    .await?;
    eventually("the server to hold the request in progress", || async {
        Ok((h.server_key_state(&key)?.as_deref() == Some("in_progress")).then_some(()))
    })
    .await?;

    child.kill().await?; // SIGKILL: no chance to clean up
    let killed = finish(child).await?;
    assert_eq!(killed.code, None, "killed by a signal, not exited");
    let record = h.record(intent).await?.ok_or("the record vanished")?;
    assert_eq!(record["state"], "pending");
    assert_eq!(record["key"], key.as_str());
    Ok(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_finishes_a_killed_send_under_its_key() -> TestResult {
    let h = Harness::start("crash-resume").await?;
    let key = kill_mid_request(&h, "order-killed").await?;

    let resumed = run(h.resume(&[])).await?;
    resumed.expect_code(0)?;
    let out = resumed.stdout_text();
    assert!(
        out.starts_with(&format!("order-killed  {key}  settled 201 after ")),
        "stdout: {out}\nstderr: {}",
        resumed.stderr
    );
    assert_eq!(ledger_keys(&h.ledger().await?), vec![key.clone()]);

    let record = h.record("order-killed").await?.ok_or("no record")?;
    assert_eq!(record["state"], "settled");
    assert_eq!(record["status"], 201);
    // Nothing left to resume.
    let again = run(h.resume(&["--json"])).await?;
    again.expect_code(0)?;
    assert_eq!(again.stdout, b"");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_again_finishes_a_killed_send_under_its_key() -> TestResult {
    let h = Harness::start("crash-send-again").await?;
    let key = kill_mid_request(&h, "order-killed").await?;

    let again = run(h.send("order-killed", CHARGE, &["--json"])).await?;
    again.expect_code(0)?;
    let summary = again.json()?;
    assert_eq!(summary["key"], key.as_str());
    assert_eq!(summary["status"], 201);
    assert_eq!(ledger_keys(&h.ledger().await?), vec![key]);
    Ok(())
}
