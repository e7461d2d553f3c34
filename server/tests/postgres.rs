//! The server on PostgreSQL: the idempotency behaviours of the SQLite
//! ledger, then several instances on one database honouring a key once
//! between them, and start-up on a database that is not fit.
//!
//! Each test makes a database of its own in the throwaway cluster of
//! `tests/postgres/with-cluster.sh` (`make test` runs under it).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BODY, Harness, TestResult, eventually, header, reset, send_raw};
use futures_util::future::try_join_all;
use oncely_server::{Options, Server, scratch_postgres};
use reqwest::Response;
use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls};

const BIN: &str = env!("CARGO_BIN_EXE_oncely-server");
const OTHER_BODY: &str = r#"{"amount":999,"currency":"EUR"}"#;

/// A client of the test's database, to look at its rows directly.
async fn connect(url: &str) -> Result<Client, Box<dyn std::error::Error>> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The state of a key's idempotency record, read from the database.
async fn key_state(
    db: &Client,
    account: &str,
    key: &str,
) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let row = db
        .query_opt(
            "SELECT state FROM oncely_idempotency_keys WHERE account = $1 AND key = $2",
            &[&account, &key],
        )
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

async fn wait_in_progress(db: &Client, key: &str) -> TestResult {
    eventually("the key to be in progress", || async move {
        Ok(key_state(db, "acct", key).await?.as_deref() == Some("in_progress"))
    })
    .await
}

/// Retries the charge on `h` until it is no longer 409, for at most 20 s;
/// returns it and how many 409s came before it.
async fn retry_until_settled(
    h: &Harness,
    key: &str,
) -> Result<(Response, usize), Box<dyn std::error::Error>> {
    for conflicts in 0..2000 {
        let response = h.charge(&h.client, "acct", Some(key), BODY).await?;
        if response.status() != 409 {
            return Ok((response, conflicts));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("key {key} was still in progress after 20 s").into())
}

async fn table_exists(db: &Client, table: &str) -> Result<bool, Box<dyn std::error::Error>> {
    Ok(db
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .try_get(0)?)
}

// The behaviours of one instance.

#[tokio::test]
async fn a_key_charges_once_replays_and_refuses_another_body() -> TestResult {
    let url = scratch_postgres().await?;
    let h = Harness::start_postgres(&url, |_| {}).await?;
    let key = Some("\"k-once\"");

    let first = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(first.status(), 201);
    assert_eq!(header(&first, "idempotent-replayed"), None);
    let charge: Value = first.json().await?;
    assert_eq!(charge["amount"], 1250);
    assert_eq!(charge["idempotency_key"], "k-once");

    let replay = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(replay.status(), 201);
    assert_eq!(header(&replay, "idempotent-replayed"), Some("true"));
    assert_eq!(replay.json::<Value>().await?, charge);

    let reused = h.charge(&h.client, "acct", key, OTHER_BODY).await?;
    assert_eq!(reused.status(), 422);
    assert_eq!(
        reused.json::<Value>().await?["error"],
        "idempotency_key_reused"
    );

    // Keys are per account.
    let elsewhere = h.charge(&h.client, "other", key, OTHER_BODY).await?;
    assert_eq!(elsewhere.status(), 201);

    assert_eq!(h.ledger("acct").await?, vec![charge.clone()]);
    let db = connect(&url).await?;
    let rows: i64 = db
        .query_one(
            "SELECT count(*) FROM oncely_charges WHERE account = 'acct'",
            &[],
        )
        .await?
        .try_get(0)?;
    assert_eq!(rows, 1);
    assert_eq!(
        key_state(&db, "acct", "k-once").await?.as_deref(),
        Some("completed")
    );
    Ok(())
}

#[tokio::test]
async fn a_retry_while_the_key_is_in_progress_gets_409_then_the_outcome() -> TestResult {
    let url = scratch_postgres().await?;
    let h = Harness::start_postgres(&url, |o| o.lease = Duration::from_secs(600)).await?;
    h.set_faults("acct", json!({"slow_ms": 1500})).await?;
    let db = connect(&url).await?;
    let (client, charges) = (reqwest::Client::new(), h.url("/api/charges"));
    let slow = tokio::spawn(async move {
        client
            .post(charges)
            .header("x-account", "acct")
            .header("idempotency-key", "\"k-busy\"")
            .body(BODY)
            .send()
            .await
    });
    wait_in_progress(&db, "k-busy").await?;

    let busy = h
        .charge(&h.client, "acct", Some("\"k-busy\""), BODY)
        .await?;
    assert_eq!(busy.status(), 409);
    assert_eq!(header(&busy, "retry-after"), Some("1"));
    assert_eq!(busy.json::<Value>().await?["error"], "request_in_progress");

    let slow = slow.await??;
    assert_eq!(slow.status(), 201);
    let charge: Value = slow.json().await?;
    let replay = h
        .charge(&h.client, "acct", Some("\"k-busy\""), BODY)
        .await?;
    assert_eq!(header(&replay, "idempotent-replayed"), Some("true"));
    assert_eq!(replay.json::<Value>().await?, charge);
    assert_eq!(h.ledger("acct").await?, vec![charge]);
    Ok(())
}

#[tokio::test]
async fn a_retry_takes_over_a_key_past_its_lease_and_the_ledger_charges_once() -> TestResult {
    let url = scratch_postgres().await?;
    // Every lease has run out by the next request.
    let h = Harness::start_postgres(&url, |o| o.lease = Duration::ZERO).await?;
    h.set_faults("acct", json!({"slow_ms": 3000})).await?;
    let db = connect(&url).await?;
    let (client, charges) = (reqwest::Client::new(), h.url("/api/charges"));
    let hung = tokio::spawn(async move {
        client
            .post(charges)
            .header("x-account", "acct")
            .header("idempotency-key", "\"k-lease\"")
            .body(BODY)
            .send()
            .await
    });
    wait_in_progress(&db, "k-lease").await?;
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

    // The request it took over commits second and answers with that charge.
    let hung = hung.await??;
    assert_eq!(hung.status(), 201);
    assert_eq!(header(&hung, "idempotent-replayed"), Some("true"));
    assert_eq!(hung.json::<Value>().await?, charge);
    assert_eq!(h.ledger("acct").await?, vec![charge]);
    Ok(())
}

#[tokio::test]
async fn expired_keys_are_purged_and_never_charge_again() -> TestResult {
    let url = scratch_postgres().await?;
    let db = connect(&url).await?;
    // Expired at once: the next request finds the record past retention.
    let h = Harness::start_postgres(&url, |o| o.retention = Duration::ZERO).await?;
    let key = Some("\"k-expired\"");
    assert_eq!(h.charge(&h.client, "acct", key, BODY).await?.status(), 201);
    let reused = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(reused.status(), 422);
    assert_eq!(
        reused.json::<Value>().await?["error"],
        "idempotency_key_expired"
    );
    assert_eq!(h.ledger("acct").await?.len(), 1);
    let Harness { server, .. } = h;
    server.stop().await;

    // The sweep (every second for a short retention) deletes the record,
    // never the charge.
    let h = Harness::start_postgres(&url, |o| o.retention = Duration::from_secs(1)).await?;
    assert_eq!(
        h.charge(&h.client, "acct", Some("\"k-swept\""), BODY)
            .await?
            .status(),
        201
    );
    assert!(key_state(&db, "acct", "k-swept").await?.is_some());
    eventually("the sweep to purge the key", || {
        let db = &db;
        async move { Ok(key_state(db, "acct", "k-swept").await?.is_none()) }
    })
    .await?;
    let reused = h
        .charge(&h.client, "acct", Some("\"k-swept\""), BODY)
        .await?;
    assert_eq!(reused.status(), 422);
    assert_eq!(h.ledger("acct").await?.len(), 2);
    Ok(())
}

// Several instances on one database.

#[tokio::test]
async fn one_key_sent_to_three_instances_at_once_charges_once() -> TestResult {
    let url = scratch_postgres().await?;
    let mut instances = Vec::new();
    for _ in 0..3 {
        let h = Harness::start_postgres(&url, |_| {}).await?;
        // Faults are each instance's own: slow every one down, so the
        // requests overlap while the key is in progress.
        h.set_faults("acct", json!({"slow_ms": 300})).await?;
        instances.push(h);
    }
    let sends = (0..30).map(|i| {
        let h = &instances[i % instances.len()];
        async move {
            let response = h
                .charge(&h.client, "acct", Some("\"k-shared\""), BODY)
                .await?;
            let status = response.status().as_u16();
            let replayed = header(&response, "idempotent-replayed") == Some("true");
            let body: Value = response.json().await?;
            Ok::<_, reqwest::Error>((status, replayed, body))
        }
    });
    let answers = try_join_all(sends).await?;

    let ledger = instances[0].ledger("acct").await?;
    assert_eq!(ledger.len(), 1, "one charge for one key: {ledger:?}");
    for h in &instances[1..] {
        assert_eq!(
            h.ledger("acct").await?,
            ledger,
            "every instance reads one ledger"
        );
    }
    let mut charged = 0;
    for (status, replayed, body) in &answers {
        match (status, replayed) {
            (201, false) => {
                charged += 1;
                assert_eq!(*body, ledger[0]);
            }
            (201, true) => assert_eq!(*body, ledger[0]),
            (409, _) => assert_eq!(body["error"], "request_in_progress"),
            other => return Err(format!("unexpected answer {other:?}: {body}").into()),
        }
    }
    assert_eq!(
        charged, 1,
        "exactly one request made the charge: {answers:?}"
    );
    let conflicts = answers.iter().filter(|(status, ..)| *status == 409).count();
    assert!(conflicts > 0, "the requests overlapped: {answers:?}");
    Ok(())
}

#[tokio::test]
async fn a_request_abandoned_mid_recording_on_one_instance_is_retried_on_another() -> TestResult {
    let url = scratch_postgres().await?;
    let db = connect(&url).await?;
    let lease = Duration::from_secs(1);
    let a = Harness::start_postgres(&url, |o| o.lease = lease).await?;
    let b = Harness::start_postgres(&url, |o| o.lease = lease).await?;
    // On A, the key is in progress in the database while its request still
    // waits on the write, for longer than the lease.
    a.set_faults("acct", json!({"slow_record_ms": 4000}))
        .await?;

    let raw = send_raw(a.server.addr(), "k-abandoned").await?;
    wait_in_progress(&db, "k-abandoned").await?;
    reset(raw)?;
    let hung_up = Instant::now();

    // Within A's lease, B answers 409; after it, B takes the key over.
    let busy = b
        .charge(&b.client, "acct", Some("\"k-abandoned\""), BODY)
        .await?;
    assert_eq!(busy.status(), 409);
    let (retry, _) = retry_until_settled(&b, "\"k-abandoned\"").await?;
    assert_eq!(retry.status(), 201);
    assert_eq!(header(&retry, "idempotent-replayed"), None, "B charged");
    assert!(
        hung_up.elapsed() < Duration::from_secs(4),
        "B took over when the lease ended, not when A finished"
    );
    let charge: Value = retry.json().await?;

    // A's request goes on (a hang-up never cancels it) and, committing
    // second, answers with B's charge instead of making another.
    let Harness { server, .. } = a;
    server.stop().await;
    assert_eq!(b.ledger("acct").await?, vec![charge]);
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn a_killed_instance_blocks_a_retry_elsewhere_no_longer_than_its_lease() -> TestResult {
    let url = scratch_postgres().await?;
    let db = connect(&url).await?;
    let lease = Duration::from_secs(2);
    let mut child = Command::new(BIN)
        .args(["--addr", "127.0.0.1:0", "--lease-secs", "2", "--db", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let doomed = line
        .trim()
        .strip_prefix("oncely reference server listening on ")
        .ok_or_else(|| format!("unexpected ready line {line:?}"))?
        .to_owned();
    let client = reqwest::Client::new();
    let faults = client
        .post(format!("{doomed}/api/faults"))
        .header("x-account", "acct")
        .body(json!({"slow_record_ms": 30000}).to_string())
        .send()
        .await?;
    assert_eq!(faults.status(), 200);
    let request = tokio::spawn(
        client
            .post(format!("{doomed}/api/charges"))
            .header("x-account", "acct")
            .header("idempotency-key", "\"k-killed\"")
            .body(BODY)
            .send(),
    );
    wait_in_progress(&db, "k-killed").await?;
    child.kill()?; // SIGKILL: no clean-up of any kind
    let killed = Instant::now();
    child.wait()?;
    assert!(
        request.await?.is_err(),
        "the killed instance never answered"
    );

    let survivor = Harness::start_postgres(&url, |o| o.lease = lease).await?;
    let (retry, conflicts) = retry_until_settled(&survivor, "\"k-killed\"").await?;
    let waited = killed.elapsed();
    assert_eq!(retry.status(), 201);
    assert_eq!(header(&retry, "idempotent-replayed"), None);
    assert!(conflicts > 0, "the dead instance's lease was honoured");
    assert!(
        waited < lease + Duration::from_secs(3),
        "free once the lease ended, waited {waited:?}"
    );
    let charge: Value = retry.json().await?;
    assert_eq!(survivor.ledger("acct").await?, vec![charge]);
    Ok(())
}

// Starting on a database.

#[tokio::test]
async fn instances_starting_at_once_create_the_schema_once() -> TestResult {
    let url = scratch_postgres().await?;
    let starts = (0..4).map(|_| async { Server::start(Options::postgres(&url)).await });
    let servers = try_join_all(starts).await?;
    let db = connect(&url).await?;
    let version: i32 = db
        .query_one("SELECT version FROM oncely_server_schema", &[])
        .await?
        .try_get(0)?;
    assert_eq!(version, 1);
    for server in servers {
        server.stop().await;
    }
    // And a later start finds it made.
    Server::start(Options::postgres(&url)).await?.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_newer_schema_is_refused_untouched() -> TestResult {
    let url = scratch_postgres().await?;
    let db = connect(&url).await?;
    db.batch_execute(
        "CREATE TABLE oncely_server_schema (one boolean PRIMARY KEY, version integer NOT NULL);
         INSERT INTO oncely_server_schema VALUES (true, 2);",
    )
    .await?;
    let Err(e) = Server::start(Options::postgres(&url)).await else {
        return Err("a newer schema must not start".into());
    };
    assert!(e.is_database(), "{e}");
    assert!(e.to_string().contains("version 2"), "{e}");
    assert!(
        !table_exists(&db, "oncely_charges").await?,
        "nothing written"
    );
    Ok(())
}

#[tokio::test]
async fn tables_the_server_did_not_make_are_refused_untouched() -> TestResult {
    let url = scratch_postgres().await?;
    let db = connect(&url).await?;
    db.batch_execute("CREATE TABLE oncely_charges (id integer)")
        .await?;
    let Err(e) = Server::start(Options::postgres(&url)).await else {
        return Err("a foreign oncely_charges must not start".into());
    };
    assert!(e.is_database(), "{e}");
    assert!(e.to_string().contains("oncely_charges"), "{e}");
    assert!(!table_exists(&db, "oncely_server_schema").await?);
    assert!(!table_exists(&db, "oncely_idempotency_keys").await?);
    Ok(())
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_or_refuses_is_a_start_error() -> TestResult {
    let url = scratch_postgres().await?;
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let cases = [
        format!("postgres://oncely:hunter2@{closed}/x"),
        url.replacen("://oncely", "://nobody:hunter2", 1),
        format!("{url}_missing"),
        "postgres://oncely:hunter2@127.0.0.1:port/x".to_owned(),
    ];
    for case in cases {
        match Server::start(Options::postgres(&case)).await {
            Ok(_) => return Err(format!("{case} must not start").into()),
            Err(e) => {
                assert!(e.is_database() && !e.is_bind(), "{case}: {e}");
                let message = e.to_string();
                assert!(message.starts_with("cannot open the ledger database postgres://"));
                assert!(
                    !message.contains("hunter2"),
                    "the password shows: {message}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn the_program_says_in_one_line_why_postgres_refused_it() -> TestResult {
    let url = tokio::runtime::Runtime::new()?.block_on(scratch_postgres())?;
    let refused = url.replacen("://oncely", "://nobody", 1);
    let out = Command::new(BIN)
        .args(["--addr", "127.0.0.1:0", "--db", &refused])
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("oncely-server: cannot open the ledger database postgres://nobody@"),
        "{stderr}"
    );
    assert!(
        stderr.contains("role \"nobody\" does not exist"),
        "{stderr}"
    );
    Ok(())
}
