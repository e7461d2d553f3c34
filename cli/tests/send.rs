//! `oncely send` against the reference server: bodies, replays, retries,
//! non-2xx answers, conflicts, a damaged store, credentials, bad input.

mod common;

use common::{CHARGE, Harness, TestResult, ledger_keys, run, store_bytes};
use serde_json::json;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_the_body_and_replays_a_settled_intent() -> TestResult {
    let h = Harness::start("send-replay").await?;

    let first = run(h.send("order-1", CHARGE, &["--json"])).await?;
    first.expect_code(0)?;
    let summary = first.json()?;
    let key = summary["key"].as_str().ok_or("no key")?.to_owned();
    assert_eq!(key.len(), 26, "a ULID: {summary}");
    assert_eq!(summary["intent"], "order-1");
    assert_eq!(summary["status"], 201);
    assert_eq!(summary["attempts"], 1);
    assert_eq!(summary["replayed"], false);
    assert_eq!(
        first.stdout.iter().filter(|&&b| b == b'\n').count(),
        1,
        "one line"
    );

    // Without --json: the response body itself, replayed from the store.
    let body = run(h.send("order-1", CHARGE, &[])).await?;
    body.expect_code(0)?;
    let charge = body.json()?;
    assert_eq!(charge["idempotency_key"], key.as_str());
    assert_eq!(charge["amount"], 1000);
    assert!(body.stderr.contains("replaying"), "stderr: {}", body.stderr);

    let again = run(h.send("order-1", CHARGE, &["--json", "--quiet"])).await?;
    again.expect_code(0)?;
    let summary = again.json()?;
    assert_eq!(summary["replayed"], true);
    assert_eq!(summary["key"], key.as_str());
    assert_eq!(again.stderr, "", "--quiet");

    assert_eq!(ledger_keys(&h.ledger().await?), vec![key]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_a_503_under_the_same_key_and_says_so() -> TestResult {
    let h = Harness::start("send-503").await?;
    h.faults(json!({"fail_next": [{"status": 503, "headers": {"Retry-After": "1"}}]}))
        .await?;

    let sent = run(h.send("order-503", CHARGE, &["--json"])).await?;
    sent.expect_code(0)?;
    assert!(
        sent.stderr
            .contains("oncely: attempt 1 failed (status 503); next try in "),
        "stderr: {}",
        sent.stderr
    );
    assert!(
        sent.stderr.contains("oncely: attempt 2…"),
        "stderr: {}",
        sent.stderr
    );
    let summary = sent.json()?;
    assert_eq!(summary["attempts"], 2);
    assert_eq!(summary["status"], 201);
    assert_eq!(
        ledger_keys(&h.ledger().await?),
        vec![summary["key"].as_str().ok_or("no key")?.to_owned()]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_400_prints_the_body_and_exits_1() -> TestResult {
    let h = Harness::start("send-400").await?;
    let sent = run(h.send("no-amount", r#"{"currency":"usd"}"#, &[])).await?;
    sent.expect_code(1)?;
    assert!(sent.json()?["error"].is_string(), "the server's error body");
    let lines: Vec<&str> = sent.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {}", sent.stderr);
    assert!(
        lines[0].starts_with("oncely: intent \"no-amount\" settled with status 400 (key "),
        "stderr: {}",
        sent.stderr
    );
    assert!(h.ledger().await?.is_empty());

    // Settled: the same call replays the 400, and still exits 1.
    let again = run(h.send("no-amount", r#"{"currency":"usd"}"#, &["--json"])).await?;
    again.expect_code(1)?;
    assert_eq!(again.json()?["replayed"], true);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_payload_is_a_conflict_and_sends_nothing() -> TestResult {
    let h = Harness::start("send-conflict").await?;
    run(h.send("order-c", CHARGE, &[])).await?.expect_code(0)?;
    let before = h.ledger().await?;

    let changed = run(h.send("order-c", r#"{"amount":2000,"currency":"usd"}"#, &[])).await?;
    changed.expect_code(3)?;
    assert_eq!(changed.stdout, b"");
    assert_eq!(
        changed.stderr.lines().count(),
        1,
        "stderr: {}",
        changed.stderr
    );
    assert!(
        changed.stderr.starts_with("oncely: intent \"order-c\"")
            && changed.stderr.contains("nothing was sent"),
        "stderr: {}",
        changed.stderr
    );
    let other_url = run(h.oncely(&[
        "send",
        "--intent",
        "order-c",
        "-d",
        CHARGE,
        &format!("{}?x=1", h.charges_url()),
    ]))
    .await?;
    other_url.expect_code(3)?;
    assert_eq!(h.ledger().await?, before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_store_is_refused_and_left_alone() -> TestResult {
    let h = Harness::start("send-garbage").await?;
    let garbage_path = h.dir.path().join("garbage.db");
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let garbage: Vec<u8> = (0..8192)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    std::fs::write(&garbage_path, &garbage)?;

    let store = garbage_path.to_string_lossy().into_owned();
    let sent = run(h.send("order-g", CHARGE, &["--store", &store])).await?;
    sent.expect_code(7)?;
    assert_eq!(sent.stderr.lines().count(), 1, "stderr: {}", sent.stderr);
    assert!(
        sent.stderr.starts_with("oncely: store ") && sent.stderr.contains("not a SQLite database"),
        "stderr: {}",
        sent.stderr
    );
    assert_eq!(
        std::fs::read(&garbage_path)?,
        garbage,
        "the file is untouched"
    );
    assert!(h.ledger().await?.is_empty(), "nothing was sent");

    for command in [["list"], ["resume"]] {
        let refused = run(h.oncely(&[command[0], "--store", &store])).await?;
        refused.expect_code(7)?;
    }
    assert_eq!(
        std::fs::read(&garbage_path)?,
        garbage,
        "the file is untouched"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sent_but_never_stored() -> TestResult {
    let h = Harness::start("send-secret").await?;
    let sent = run(h.send(
        "order-s",
        CHARGE,
        &[
            "-H",
            "Authorization: Bearer s3cret-token",
            "-H",
            "X-Api-Key: k3y-s3cret",
            "-H",
            "X-CSRF-Token: csrf-s3cret",
            "--store-header",
            "x-trace",
            "-H",
            "X-Trace: visible-trace",
        ],
    ))
    .await?;
    sent.expect_code(0)?;
    assert_eq!(h.ledger().await?.len(), 1);

    let bytes = store_bytes(&h.store())?;
    let holds = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(holds("visible-trace"), "the check reads the store's files");
    assert!(!holds("s3cret-token"), "the bearer token was stored");
    assert!(!holds("k3y-s3cret"), "the API key was stored");
    assert!(!holds("csrf-s3cret"), "the CSRF token was stored");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_body_from_a_file_or_stdin() -> TestResult {
    let h = Harness::start("send-body-sources").await?;
    let file = h.dir.path().join("charge.json");
    std::fs::write(&file, CHARGE)?;
    let from_file = format!("@{}", file.display());
    run(h.send("from-file", &from_file, &[]))
        .await?
        .expect_code(0)?;

    let mut command = h.send("from-stdin", "@-", &["--json"]);
    command.stdin(std::process::Stdio::piped());
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin.write_all(CHARGE.as_bytes()).await?;
    drop(stdin);
    let from_stdin = common::finish(child).await?;
    from_stdin.expect_code(0)?;

    let missing = run(h.send("from-nowhere", "@/no/such/file", &[])).await?;
    missing.expect_code(8)?;
    assert!(
        missing.stderr.contains("/no/such/file"),
        "stderr: {}",
        missing.stderr
    );
    assert_eq!(h.ledger().await?.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_own_exit_status() -> TestResult {
    let h = Harness::start("send-bad-input").await?;
    let bad_url = run(h.oncely(&["send", "--intent", "x", "not a url"])).await?;
    bad_url.expect_code(8)?;
    assert!(
        bad_url.stderr.starts_with("oncely: "),
        "stderr: {}",
        bad_url.stderr
    );

    let url = h.charges_url();
    let bad_header = run(h.oncely(&["send", "--intent", "x", "-H", "Bad Name: v", &url])).await?;
    bad_header.expect_code(8)?;
    let bad_method = run(h.oncely(&["send", "--intent", "x", "-X", "PO ST", &url])).await?;
    bad_method.expect_code(8)?;

    // Usage errors are clap's: 2.
    run(h.oncely(&["send", &url])).await?.expect_code(2)?;
    run(h.oncely(&["send", "--intent", "x", "-H", "no colon", &url]))
        .await?
        .expect_code(2)?;
    run(h.oncely(&["send", "--intent", "x", "--max-attempts", "0", &url]))
        .await?
        .expect_code(2)?;
    assert!(h.ledger().await?.is_empty());
    assert!(h.list().await?.is_empty(), "nothing recorded");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_over_64_kib_is_invalid_input_not_a_network_failure() -> TestResult {
    let h = Harness::start("send-long-url").await?;
    let base = format!("{}?pad=", h.charges_url());
    let url = format!(
        "{base}{}",
        "a".repeat(oncely::intent::MAX_URL_LEN + 1 - base.len())
    );
    // One attempt at most: were it sent, it would give up (exit 5) at once.
    let sent = run(h.oncely(&[
        "send",
        "--intent",
        "long-url",
        "-d",
        CHARGE,
        "--max-attempts",
        "1",
        &url,
    ]))
    .await?;
    sent.expect_code(8)?;
    assert!(
        sent.stderr.starts_with("oncely: intent \"long-url\"") && sent.stderr.contains("too long"),
        "stderr: {}",
        sent.stderr
    );
    assert!(h.list().await?.is_empty(), "nothing recorded");
    assert!(h.ledger().await?.is_empty(), "nothing sent");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_name_of_only_spaces_is_invalid_input() -> TestResult {
    let h = Harness::start("send-blank-name").await?;
    let sent = run(h.send("   ", CHARGE, &[])).await?;
    sent.expect_code(8)?;
    assert!(sent.stderr.contains("not blank"), "stderr: {}", sent.stderr);
    assert!(h.list().await?.is_empty(), "nothing recorded");
    assert!(h.ledger().await?.is_empty(), "nothing sent");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_idempotency_keys_are_invalid_input() -> TestResult {
    let h = Harness::start("send-two-keys").await?;
    let sent = run(h.send(
        "order-two-keys",
        CHARGE,
        &[
            "-H",
            "Idempotency-Key: \"first-key-1\"",
            "-H",
            "idempotency-key: \"second-key-2\"",
        ],
    ))
    .await?;
    sent.expect_code(8)?;
    assert!(
        sent.stderr.contains("more than one Idempotency-Key header"),
        "stderr: {}",
        sent.stderr
    );
    assert!(h.list().await?.is_empty(), "nothing recorded");
    assert!(h.ledger().await?.is_empty(), "nothing sent");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_header_is_invalid_input() -> TestResult {
    let h = Harness::start("send-content-length").await?;
    let sent = run(h.send(
        "order-length",
        CHARGE,
        &["-H", &format!("Content-Length: {}", CHARGE.len())],
    ))
    .await?;
    sent.expect_code(8)?;
    assert!(
        sent.stderr.contains("Content-Length") && sent.stderr.contains("sent as given"),
        "stderr: {}",
        sent.stderr
    );
    assert!(h.list().await?.is_empty(), "nothing recorded");
    assert!(h.ledger().await?.is_empty(), "nothing sent");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_by_the_server_is_reported_as_replayed() -> TestResult {
    let h = Harness::start("send-server-replay").await?;
    // Two intents under one key of the caller's: the server acts on the
    // first and replays its answer to the second.
    let key = "Idempotency-Key: \"caller-key-1\"";
    let first = run(h.send("order-a", CHARGE, &["-H", key, "--json"])).await?;
    first.expect_code(0)?;
    assert_eq!(first.json()?["replayed"], false);

    let second = run(h.send("order-b", CHARGE, &["-H", key, "--json"])).await?;
    second.expect_code(0)?;
    let summary = second.json()?;
    assert_eq!(summary["status"], 201);
    assert_eq!(summary["attempts"], 1, "sent, not replayed from the store");
    assert_eq!(summary["replayed"], true);

    let human = run(h.send("order-c", CHARGE, &["-H", key])).await?;
    human.expect_code(0)?;
    assert!(
        human
            .stderr
            .contains("the server replayed its answer to an earlier request under this key"),
        "stderr: {}",
        human.stderr
    );
    assert_eq!(h.ledger().await?.len(), 1, "one charge");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_a_failure_is_a_json_error_as_resume_prints_it() -> TestResult {
    let h = Harness::start("send-json-error").await?;
    h.faults(json!({"fail_next": [{"status": 503}, {"status": 503}]}))
        .await?;
    let sent = run(h.send("order-down", CHARGE, &["--json", "--max-attempts", "1"])).await?;
    sent.expect_code(5)?;
    let error = sent.json()?;
    assert_eq!(error["intent"], "order-down");
    assert_eq!(error["key"].as_str().map(str::len), Some(26), "{error}");
    assert_eq!(error["error"]["kind"], "gave_up");
    assert_eq!(error["error"]["last_status"], 503);
    assert!(sent.stderr.contains("gave up"), "stderr: {}", sent.stderr);

    // resume --json reports the same failure in the same shape.
    let resumed = run(h.resume(&["--json", "--max-attempts", "1"])).await?;
    resumed.expect_code(5)?;
    let again = resumed.json()?;
    assert_eq!(again["key"], error["key"]);
    assert_eq!(again["error"]["kind"], error["error"]["kind"]);
    let fields = |value: &serde_json::Value| -> Vec<String> {
        let top = value.as_object().into_iter().flat_map(|o| o.keys());
        let inner = value["error"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys());
        top.chain(inner).cloned().collect()
    };
    assert_eq!(fields(&error), fields(&again));

    // A failure before anything is recorded: no key yet.
    let unreadable = run(h.send("order-x", "@/no/such/file", &["--json"])).await?;
    unreadable.expect_code(8)?;
    let error = unreadable.json()?;
    assert_eq!(error["intent"], "order-x");
    assert!(error["key"].is_null());
    assert_eq!(error["error"]["kind"], "invalid");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/no/such/file")),
        "{error}"
    );
    Ok(())
}
