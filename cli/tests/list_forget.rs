//! `oncely list`, `oncely forget` and `oncely prune`.

mod common;

use common::{CHARGE, Harness, TestResult, run};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_on_a_missing_store_is_empty_and_creates_nothing() -> TestResult {
    let h = Harness::start("list-empty").await?;
    let table = run(h.oncely(&["list"])).await?;
    table.expect_code(0)?;
    assert_eq!(
        table.stdout_text(),
        "INTENT  KEY  STATE  ATTEMPTS  STATUS  CREATED\n"
    );
    assert!(h.list().await?.is_empty());
    assert!(!h.store().exists(), "list does not create a store");

    let forget = run(h.oncely(&["forget", "--intent", "x"])).await?;
    forget.expect_code(1)?;
    assert!(!h.store().exists(), "forget does not create a store");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_every_intent_as_a_table_and_as_json() -> TestResult {
    let h = Harness::start("list-two").await?;
    run(h.send("order-ok", CHARGE, &[])).await?.expect_code(0)?;
    run(h.send("order-bad", r#"{"currency":"usd"}"#, &[]))
        .await?
        .expect_code(1)?;

    let records = h.list().await?;
    assert_eq!(records.len(), 2);
    let ok = &records[0];
    assert_eq!(ok["intent"], "order-ok");
    assert_eq!(ok["state"], "settled");
    assert_eq!(ok["status"], 201);
    assert_eq!(ok["attempts"], 1);
    assert_eq!(ok["method"], "POST");
    assert_eq!(ok["url"], h.charges_url());
    assert!(ok["failure"].is_null());
    let created = ok["created_at_ms"].as_u64().ok_or("no created_at_ms")?;
    let expires = ok["expires_at_ms"].as_u64().ok_or("no expires_at_ms")?;
    assert_eq!(expires - created, 24 * 60 * 60 * 1000);
    assert_eq!(records[1]["status"], 400);

    let table = run(h.oncely(&["list"])).await?;
    table.expect_code(0)?;
    let text = table.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let headings: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        headings,
        ["INTENT", "KEY", "STATE", "ATTEMPTS", "STATUS", "CREATED"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[..5],
        [
            "order-ok",
            ok["key"].as_str().ok_or("no key")?,
            "settled",
            "1",
            "201"
        ]
    );
    let stamp = row[5];
    assert!(
        stamp.len() == 20 && stamp.ends_with('Z') && &stamp[10..11] == "T",
        "RFC 3339: {stamp}"
    );
    // Columns line up: every row's key starts where the heading's does.
    let key_column = lines[0].find("KEY").ok_or("no KEY")?;
    assert!(
        lines[1..].iter().all(|l| l[key_column..].starts_with("01")),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_removes_an_intent_so_its_name_starts_anew() -> TestResult {
    let h = Harness::start("forget").await?;
    let first = run(h.send("order-f", CHARGE, &["--json"])).await?;
    first.expect_code(0)?;
    let old_key = first.json()?["key"].clone();

    let forgot = run(h.oncely(&["forget", "--intent", "order-f"])).await?;
    forgot.expect_code(0)?;
    assert_eq!(forgot.stdout_text(), "forgot \"order-f\"\n");
    assert!(h.list().await?.is_empty());

    let again = run(h.oncely(&["forget", "--intent", "order-f"])).await?;
    again.expect_code(1)?;
    assert!(
        again
            .stderr
            .starts_with("oncely: no intent named \"order-f\""),
        "stderr: {}",
        again.stderr
    );

    let anew = run(h.send("order-f", CHARGE, &["--json"])).await?;
    anew.expect_code(0)?;
    let summary = anew.json()?;
    assert_ne!(summary["key"], old_key, "a new intent, a new key");
    assert_eq!(summary["replayed"], false);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_only_intents_past_retention_whose_outcome_is_known() -> TestResult {
    let h = Harness::start("prune").await?;
    let none = run(h.oncely(&["prune"])).await?;
    none.expect_code(0)?;
    assert_eq!(none.stdout_text(), "pruned 0 intents\n");
    assert!(!h.store().exists(), "prune does not create a store");

    run(h.send("order-old", CHARGE, &[]))
        .await?
        .expect_code(0)?;
    run(h.send("order-new", CHARGE, &[]))
        .await?
        .expect_code(0)?;
    // A pending intent and a settled one, both recorded two days ago.
    run(h.send("order-waiting", CHARGE, &[]))
        .await?
        .expect_code(0)?;
    let two_days_ago = "strftime('%s', 'now') * 1000 - 2 * 86400000";
    rusqlite::Connection::open(h.store())?.execute_batch(&format!(
        "UPDATE intents SET created_at = {two_days_ago}, expires_at = {two_days_ago} + 86400000 \
         WHERE name IN ('order-old', 'order-waiting'); \
         UPDATE intents SET state = 'pending', status = NULL WHERE name = 'order-waiting';"
    ))?;

    let pruned = run(h.oncely(&["prune"])).await?;
    pruned.expect_code(0)?;
    assert_eq!(pruned.stdout_text(), "pruned 1 intent\n");
    let names: Vec<Value> = h
        .list()
        .await?
        .iter()
        .map(|r| r["intent"].clone())
        .collect();
    assert_eq!(names, ["order-waiting", "order-new"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_flag_beats_the_environment() -> TestResult {
    let h = Harness::start("store-flag").await?;
    let elsewhere = h.dir.path().join("elsewhere.db");
    let elsewhere_arg = elsewhere.to_string_lossy().into_owned();
    run(h.send("order-e", CHARGE, &["--store", &elsewhere_arg]))
        .await?
        .expect_code(0)?;
    assert!(elsewhere.exists());
    assert!(!h.store().exists(), "ONCELY_STORE was overridden");
    let listed = run(h.oncely(&["list", "--json", "--store", &elsewhere_arg])).await?;
    assert_eq!(listed.json()?[0]["intent"], "order-e");

    // Neither flag nor environment: the state directory.
    let mut command = h.oncely(&["list", "--json"]);
    command.env_remove("ONCELY_STORE");
    run(command).await?.expect_code(0)?;
    let mut command = h.send("order-d", CHARGE, &[]);
    command.env("ONCELY_STORE", "");
    run(command).await?.expect_code(0)?;
    let default = h.dir.path().join("home/state/oncely/intents.db");
    assert!(
        default.exists(),
        "the default store is under XDG_STATE_HOME"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_keeps_an_intent_whose_outcome_is_unknown_unless_forced() -> TestResult {
    let h = Harness::start("forget-unknown").await?;
    h.faults(json!({"fail_next": [{"status": 503}]})).await?;
    run(h.send("order-gave-up", CHARGE, &["--max-attempts", "1"]))
        .await?
        .expect_code(5)?;
    run(h.send("order-pending", CHARGE, &[]))
        .await?
        .expect_code(0)?;
    // As a run killed mid-request leaves it.
    rusqlite::Connection::open(h.store())?.execute_batch(
        "UPDATE intents SET state = 'pending', status = NULL WHERE name = 'order-pending';",
    )?;

    for (intent, state) in [
        ("order-gave-up", "was given up on"),
        ("order-pending", "is pending"),
    ] {
        let refused = run(h.oncely(&["forget", "--intent", intent])).await?;
        refused.expect_code(1)?;
        assert_eq!(refused.stdout, b"");
        assert!(
            refused
                .stderr
                .contains(&format!("{state}: its outcome is unknown"))
                && refused.stderr.contains("--force"),
            "stderr: {}",
            refused.stderr
        );
        assert!(h.record(intent).await?.is_some(), "{intent} kept");

        let forced = run(h.oncely(&["forget", "--intent", intent, "--force"])).await?;
        forced.expect_code(0)?;
        assert_eq!(forced.stdout_text(), format!("forgot {intent:?}\n"));
        assert!(h.record(intent).await?.is_none(), "{intent} forgotten");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_needs_no_force_for_a_rejected_intent() -> TestResult {
    let h = Harness::start("forget-rejected").await?;
    let key = ["-H", "Idempotency-Key: \"shared-key-1\""];
    run(h.send("order-first", CHARGE, &key))
        .await?
        .expect_code(0)?;
    // The same key with another payload: the server answers 422.
    run(h.send("order-reused", r#"{"amount":2000,"currency":"usd"}"#, &key))
        .await?
        .expect_code(4)?;
    let record = h.record("order-reused").await?.ok_or("no record")?;
    assert_eq!(record["failure"]["kind"], "rejected");

    run(h.oncely(&["forget", "--intent", "order-reused"]))
        .await?
        .expect_code(0)?;
    assert!(h.record("order-reused").await?.is_none());
    Ok(())
}
