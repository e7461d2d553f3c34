//! Processes sharing one `FileStore` fly an intent one at a time: each
//! open store (a process) takes a lease on the intent in the file, another
//! waits for it to land and replays its outcome. A holder that is gone (a
//! killed run) is taken over at once; a live one is waited for until its
//! lease ends, at most the caller's deadline.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::path::Path;
use std::time::Duration;

use oncely::{Client, ErrorKind, FileStore, RetryPolicy};
use serde_json::json;
use support::{Counted, TestServer, charge};

/// A client on its own open store of `path`: another process, as far as
/// the file can tell.
fn process(path: &Path, network: &Counted, deadline: Duration) -> Client {
    Client::builder()
        .store(FileStore::open(path).unwrap())
        .transport(network.clone())
        .retry(RetryPolicy {
            deadline,
            ..support::quick_policy()
        })
        .build()
        .unwrap()
}

async fn pay(client: &Client, url: &str, intent: &str) -> Result<oncely::Outcome, oncely::Error> {
    client
        .intent(intent)
        .post(url)
        .header("x-account", "acct-lease")
        .body(charge(500))
        .send()
        .await
}

#[tokio::test]
async fn two_processes_paying_one_intent_send_it_once_and_the_second_replays() {
    let server = TestServer::start().await;
    // Each charge is recorded slowly: without leases the second process
    // sends too, is answered 409 (in progress), and retries.
    server
        .faults("acct-lease", json!({ "slow_record_ms": 300 }))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    let network = Counted::new();
    let (a, b) = (
        process(&path, &network, Duration::from_secs(10)),
        process(&path, &network, Duration::from_secs(10)),
    );
    let url = server.charges_url();
    let (first, second) = tokio::join!(pay(&a, &url, "order-1"), pay(&b, &url, "order-1"));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.key(), second.key());
    assert_eq!(network.sent(), 1, "one attempt on the wire");
    assert_eq!(
        [first.replayed(), second.replayed()]
            .iter()
            .filter(|r| **r)
            .count(),
        1,
        "the second replays the first's outcome"
    );
    assert_eq!(server.ledger("acct-lease").await.len(), 1);
}

/// This machine as the store names lease holders (see
/// `src/store/file/lease.rs`): its boot and PID namespace.
fn machine() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let namespace = std::fs::read_link("/proc/self/ns/pid").unwrap();
    format!("{}:{}", boot.trim(), namespace.to_string_lossy())
}

/// Writes a lease on `intent` held by `holder` until `until_ms`.
fn hold(path: &Path, intent: &str, holder: &str, until_ms: i64) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute(
            "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until",
            rusqlite::params![intent, holder, until_ms],
        )
        .unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_killed_holder_is_taken_over_at_once_a_live_one_only_when_its_lease_ends() {
    if !Path::new("/proc/self/ns/pid").exists() {
        return; // Not Linux: a holder is never known to be gone.
    }
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    let network = Counted::new();
    let client = process(&path, &network, Duration::from_millis(400));
    let url = server.charges_url();
    let machine = machine();
    let hour = 3_600_000;

    // A process of this machine that has exited (a SIGKILLed run), its
    // lease an hour from its end: taken over at once.
    let mut exited = std::process::Command::new("true").spawn().unwrap();
    let gone = exited.id();
    exited.wait().unwrap();
    hold(
        &path,
        "order-killed",
        &format!("{machine}/{gone}/00000000000000aa"),
        now_ms() + hour,
    );
    assert_eq!(
        pay(&client, &url, "order-killed").await.unwrap().status(),
        201
    );
    assert_eq!(network.sent(), 1);

    // A live process (this one, through another open store): waited for,
    // at most the deadline; nothing sent.
    let live = format!("{machine}/{}/00000000000000bb", std::process::id());
    hold(&path, "order-held", &live, now_ms() + hour);
    let error = pay(&client, &url, "order-held").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp, "{error}");
    assert!(error.to_string().contains("held the intent"), "{error}");
    assert_eq!(network.sent(), 1, "nothing sent while another holds it");
    let error = client.forget("order-held").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp, "forget waits too: {error}");

    // Its lease ended (it stalled, stopped renewing): taken over.
    hold(&path, "order-held", &live, now_ms() - 1);
    assert_eq!(
        pay(&client, &url, "order-held").await.unwrap().status(),
        201
    );
    // Another machine's holder (or one that cannot be told) counts as
    // alive until its lease ends.
    hold(
        &path,
        "order-far",
        "another-boot:pid:[1]/1/00000000000000cc",
        now_ms() + hour,
    );
    let error = pay(&client, &url, "order-far").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::GaveUp, "{error}");
    assert_eq!(network.sent(), 2);

    // A lease given back is gone from the file; the store holds none.
    let held: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM leases WHERE holder NOT IN (?1, ?2)",
            rusqlite::params![live, "another-boot:pid:[1]/1/00000000000000cc"],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(held, 0, "every lease this store took is given back");
}

#[tokio::test]
async fn a_lease_is_renewed_while_its_flight_lasts() {
    // A flight longer than the lease (a slow answer): the holder renews it,
    // so another process waits instead of sending too.
    let server = TestServer::start().await;
    server
        .faults("acct-lease", json!({ "slow_record_ms": 900 }))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    let network = Counted::new();
    let open = |lease| {
        Client::builder()
            .store(FileStore::options().lease(lease).open(&path).unwrap())
            .transport(network.clone())
            .retry(RetryPolicy {
                deadline: Duration::from_secs(10),
                ..support::quick_policy()
            })
            .build()
            .unwrap()
    };
    let (a, b) = (
        open(Duration::from_millis(200)),
        open(Duration::from_millis(200)),
    );
    let url = server.charges_url();
    let first = pay(&a, &url, "order-slow");
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        pay(&b, &url, "order-slow").await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.unwrap().key(), second.unwrap().key());
    assert_eq!(network.sent(), 1, "the lease outlived its 200 ms, renewed");
}
