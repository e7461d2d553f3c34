//! A fleet on PostgreSQL: three reference-server instances on one ledger
//! database behind one address, and the `oncely` CLIs of three "hosts" on
//! one intent store (`--store postgres://…`), with responses lost after
//! the charge, 409s while keys are in progress, CLIs and a server instance
//! SIGKILLed mid-flight, then a resume from yet another host: one charge per
//! intent, under the key the store gave it.
//!
//! Needs the throwaway cluster `make test` starts (ONCELY_TEST_POSTGRES).
#![cfg(unix)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Fallible, TestResult, eventually, finish};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

const ACCOUNT: &str = "fleet";
const INTENTS: usize = 24;
/// The intents whose every sender is killed.
const KILLED: usize = 4;

/// The reference server's binary, built beside the CLI's.
fn server_binary() -> Fallible<PathBuf> {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_oncely")).with_file_name("oncely-server");
    if !path.exists() {
        return Err(format!(
            "{} is not built: cargo build --bin oncely-server",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// One server instance on the ledger database: its child and address.
async fn instance(ledger: &str) -> Fallible<(Child, String)> {
    let mut child = Command::new(server_binary()?)
        .args(["--addr", "127.0.0.1:0", "--lease-secs", "2", "--db", ledger])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await?;
    let url = line
        .trim()
        .strip_prefix("oncely reference server listening on ")
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .to_owned();
    Ok((child, url))
}

/// One address in front of the instances: each connection goes to the next
/// instance that accepts it (a dead one is skipped), as a load balancer
/// does.
async fn balancer(backends: Vec<String>) -> Fallible<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let backends: Vec<String> = backends
        .iter()
        .map(|url| url.trim_start_matches("http://").to_owned())
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let (backends, next) = (backends.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                for _ in 0..backends.len() {
                    let backend = &backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
                    if let Ok(mut outbound) = TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
            });
        }
    });
    Ok(format!("http://{address}"))
}

/// `oncely ARGS` on the shared store, as one host.
fn oncely(store: &str, home: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oncely"));
    command
        .args(args)
        .env("ONCELY_STORE", store)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn send(store: &str, home: &std::path::Path, intent: &str, url: &str) -> Command {
    let account = format!("X-Account: {ACCOUNT}");
    let body = format!(r#"{{"amount":{},"currency":"usd"}}"#, 100 + intent.len());
    oncely(
        store,
        home,
        &[
            "send",
            "--intent",
            intent,
            "-H",
            &account,
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
            "--json",
            url,
        ],
    )
}

async fn post_faults(http: &reqwest::Client, instance: &str, faults: Value) -> TestResult {
    let response = http
        .post(format!("{instance}/api/faults"))
        .header("x-account", ACCOUNT)
        .body(faults.to_string())
        .send()
        .await?;
    assert!(
        response.status().is_success(),
        "faults: {}",
        response.status()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_and_three_server_instances_on_one_database_charge_each_intent_once()
-> TestResult {
    let store = oncely_server::scratch_postgres().await?;
    let ledger = oncely_server::scratch_postgres().await?;
    let dir = tempfile::tempdir()?;
    let http = reqwest::Client::new();

    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(instance(&ledger).await?);
    }
    let front = balancer(instances.iter().map(|(_, url)| url.clone()).collect()).await?;
    let charges = format!("{front}/api/charges");
    // Each instance loses some answers after charging, and holds keys in
    // progress for a while (retries meet 409).
    for (_, url) in &instances {
        post_faults(&http, url, json!({"drop_next": 3, "slow_ms": 150})).await?;
    }

    // Three hosts send every intent; each intent by two hosts at once.
    let hosts: Vec<PathBuf> = (0..4)
        .map(|i| dir.path().join(format!("host-{i}")))
        .collect();
    let mut running = Vec::new();
    for i in 0..INTENTS {
        let intent = format!("payout-{i:02}");
        for host in [i % 3, (i + 1) % 3] {
            running.push((
                intent.clone(),
                send(&store, &hosts[host], &intent, &charges).spawn()?,
            ));
        }
    }
    // Some CLIs are killed mid-flight (both of the first intents' senders,
    // so only a resume finishes those), and one server instance.
    eventually("the first intents recorded", || async {
        let list = finish(oncely(&store, &hosts[3], &["list", "--json"]).spawn()?).await?;
        let records: Value = serde_json::from_slice(&list.stdout)?;
        let recorded = (0..KILLED).all(|i| {
            let intent = format!("payout-{i:02}");
            records
                .as_array()
                .is_some_and(|all| all.iter().any(|r| r["intent"] == intent.as_str()))
        });
        Ok(recorded.then_some(()))
    })
    .await?;
    for (i, (_, child)) in running.iter_mut().enumerate() {
        if i < 2 * KILLED || i % 7 == 0 {
            child.start_kill()?;
        }
    }
    let (mut doomed, _) = instances.remove(1);
    doomed.start_kill()?;
    doomed.wait().await?;
    let mut keys_seen: Vec<(String, String)> = Vec::new();
    for (intent, child) in running {
        let run = finish(child).await?;
        if run.code == Some(0) {
            let outcome: Value = serde_json::from_slice(&run.stdout)?;
            keys_seen.push((
                intent,
                outcome["key"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }

    // A fourth host resumes what is left, once the killed CLIs' leases
    // (10 s) have ended.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let account = format!("X-Account: {ACCOUNT}");
    let resumed =
        finish(oncely(&store, &hosts[3], &["resume", "-H", &account, "--json"]).spawn()?).await?;
    assert!(
        resumed.code == Some(0),
        "resume: {:?}\n{}\n{}",
        resumed.code,
        resumed.stdout_text(),
        resumed.stderr
    );

    let finished: Vec<Value> = resumed
        .stdout_text()
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    // Whatever the killed CLIs left (pending, or given up) settles now.
    for outcome in &finished {
        assert_eq!(outcome["status"], 201, "{outcome}");
    }

    // One charge per intent, under the key the store holds for it.
    let list = finish(oncely(&store, &hosts[3], &["list", "--json"]).spawn()?).await?;
    let records: Value = serde_json::from_slice(&list.stdout)?;
    let records = records.as_array().ok_or("list is not an array")?;
    assert_eq!(records.len(), INTENTS);
    let ledger: Value = http
        .get(&charges)
        .header("x-account", ACCOUNT)
        .send()
        .await?
        .json()
        .await?;
    let ledger = ledger.as_array().ok_or("the ledger is not an array")?;
    assert_eq!(ledger.len(), INTENTS, "one charge per intent: {ledger:#?}");
    for record in records {
        assert_eq!(record["state"], "settled", "{record}");
        let key = record["key"].as_str().ok_or("no key")?;
        let charged = ledger
            .iter()
            .filter(|charge| charge["idempotency_key"] == key)
            .count();
        assert_eq!(
            charged, 1,
            "intent {} charged once under its key",
            record["intent"]
        );
    }
    for (intent, key) in keys_seen {
        let record = records
            .iter()
            .find(|r| r["intent"] == intent.as_str())
            .ok_or("a record missing")?;
        assert_eq!(
            record["key"],
            key.as_str(),
            "every host saw the same key for {intent}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_works_on_a_postgres_store() -> TestResult {
    let store = oncely_server::scratch_postgres().await?;
    let ledger = oncely_server::scratch_postgres().await?;
    let dir = tempfile::tempdir()?;
    let (_server, url) = instance(&ledger).await?;
    let charges = format!("{url}/api/charges");
    let home = dir.path().join("host");

    let sent = finish(send(&store, &home, "order-1", &charges).spawn()?).await?;
    sent.expect_code(0)?;
    let key = sent.json()?["key"].as_str().ok_or("no key")?.to_owned();
    // The same intent again, from another host: replayed under its key.
    let again =
        finish(send(&store, &dir.path().join("other"), "order-1", &charges).spawn()?).await?;
    again.expect_code(0)?;
    assert_eq!(again.json()?["key"], key.as_str());
    assert_eq!(again.json()?["replayed"], true);

    let list = finish(oncely(&store, &home, &["list", "--json"]).spawn()?).await?;
    list.expect_code(0)?;
    assert_eq!(list.json()?[0]["state"], "settled");
    let resume = finish(oncely(&store, &home, &["resume", "--json"]).spawn()?).await?;
    resume.expect_code(0)?;
    assert_eq!(resume.stdout, b"", "nothing to resume");
    let prune = finish(oncely(&store, &home, &["prune"]).spawn()?).await?;
    prune.expect_code(0)?;
    let forget = finish(oncely(&store, &home, &["forget", "--intent", "order-1"]).spawn()?).await?;
    forget.expect_code(0)?;
    let list = finish(oncely(&store, &home, &["list", "--json"]).spawn()?).await?;
    assert_eq!(list.json()?, json!([]));
    // The URL's password never shows.
    let secret = store.replacen("oncely@", "oncely:hunter2@", 1);
    let missing =
        finish(oncely(&secret, &home, &["forget", "--intent", "order-9"]).spawn()?).await?;
    assert!(!missing.stderr.contains("hunter2"), "{}", missing.stderr);
    assert!(missing.stderr.contains("order-9"), "{}", missing.stderr);
    Ok(())
}
