//! Two `oncely send` processes for one intent at once: one key, one charge.

mod common;

use common::{CHARGE, Harness, TestResult, finish, ledger_keys, spawn};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sending_one_intent_make_one_charge() -> TestResult {
    let h = Harness::start("two-processes").await?;
    // Slow enough that the second process arrives while the first is in progress.
    h.faults(json!({"slow_ms": 1000})).await?;

    let first = spawn(h.send("order-twice", CHARGE, &["--json"]))?;
    let second = spawn(h.send("order-twice", CHARGE, &["--json"]))?;
    let (first, second) = (finish(first).await?, finish(second).await?);
    first.expect_code(0)?;
    second.expect_code(0)?;

    let (a, b) = (first.json()?, second.json()?);
    assert_eq!(a["key"], b["key"], "one key: {a} {b}");
    assert_eq!(a["status"], 201);
    assert_eq!(b["status"], 201);
    let key = a["key"].as_str().ok_or("no key")?.to_owned();
    assert_eq!(ledger_keys(&h.ledger().await?), vec![key]);
    Ok(())
}
