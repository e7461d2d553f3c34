//! The durable store on real SQLite files: what survives, what never gets
//! written, and what a damaged file does.

// Against the reference server on loopback: native only (the browser runs
// the same behaviours in pkg-tests/).
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::time::Duration;

use bytes::Bytes;
use oncely::runtime::{Clock, OsRandom};
use oncely::{
    Client, ErrorKind, FileStore, Fingerprint, Key, Record, Request, Response, State, Store,
};
use serde_json::json;
use support::{TestServer, VirtualClock, charge, quick_policy};

fn pending_record(name: &str, url: &str, body: &str) -> Record {
    let request = Request {
        method: "POST".to_owned(),
        url: url.to_owned(),
        headers: vec![("x-account".to_owned(), "acct".to_owned())],
        body: Bytes::from(body.to_owned()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    Record {
        name: name.to_owned(),
        key: Key::mint(now, &OsRandom),
        fingerprint: Fingerprint::of_request(&request),
        request: request.into(),
        created_at: now,
        expires_at: now + 86_400_000,
        attempts: 1,
        state: State::Pending,
        failure: None,
        response: None,
        withheld: Vec::new(),
        owner: None,
    }
}

#[tokio::test]
async fn an_intent_pending_at_a_crash_resumes_with_its_key_and_charges_once() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    // The first run recorded the intent and sent it; the server committed;
    // the process died before it heard back.
    let record = pending_record("order-42", &server.charges_url(), &charge(4200));
    let key = record.key.clone();
    {
        let store = FileStore::open(&path).unwrap();
        store.create_or_get(record).await.unwrap();
    }
    reqwest::Client::new()
        .post(server.charges_url())
        .header("x-account", "acct")
        .header("idempotency-key", key.header_value())
        .body(charge(4200))
        .send()
        .await
        .unwrap();

    // The next run.
    let client = Client::builder()
        .store(FileStore::open(&path).unwrap())
        .build()
        .unwrap();
    assert_eq!(client.pending().await.unwrap().len(), 1);
    let results = client.resume().await.unwrap();
    let outcome = results[0].as_ref().unwrap();
    assert_eq!(outcome.key(), &key);
    assert_eq!(outcome.header("idempotent-replayed"), Some("true"));
    assert_eq!(outcome.attempts(), 2);
    assert!(client.pending().await.unwrap().is_empty());
    let ledger = server.ledger("acct").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["idempotency_key"], key.as_str());

    // And a third run replays it from disk without sending.
    drop(client);
    let client = Client::builder()
        .store(FileStore::open(&path).unwrap())
        .build()
        .unwrap();
    let replay = client
        .intent("order-42")
        .post(server.charges_url())
        .header("x-account", "acct")
        .body(charge(4200))
        .send()
        .await
        .unwrap();
    assert!(replay.replayed());
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.body(), outcome.body());
}

#[tokio::test]
async fn two_stores_on_one_file_agree_on_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Two connections, as two processes would have.
    let a = FileStore::open(&path).unwrap();
    let b = FileStore::open(&path).unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let record = pending_record("same", "http://127.0.0.1:1/", "x");
            store.create_or_get(record).await.unwrap()
        }));
    }
    let mut keys = std::collections::HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (record, was_created) = task.await.unwrap();
        keys.insert(record.key);
        created += usize::from(was_created);
    }
    assert_eq!(keys.len(), 1);
    assert_eq!(created, 1);
}

#[tokio::test]
async fn credentials_never_reach_the_file() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    let client = Client::builder()
        .store(FileStore::open(&path).unwrap())
        .retry(quick_policy())
        .build()
        .unwrap();
    server
        .faults("acct", json!({"fail_next": [{"status": 503}]}))
        .await;
    // Where people really put credentials: only the allow-list is stored.
    client
        .intent("order")
        .post(server.charges_url())
        .header("content-type", "application/json")
        .header("x-account", "acct")
        .header("Authorization", "Bearer tok-AUTHSECRET")
        .header("Cookie", "session=COOKIESECRET")
        .header("Proxy-Authorization", "Basic PROXYSECRET")
        .header("X-Api-Key", "APIKEYSECRET")
        .header("Api-Key", "BAREKEYSECRET")
        .header("X-CSRF-Token", "CSRFSECRET")
        .header("X-Auth-Token", "AUTHTOKENSECRET")
        .header("X-Client-Secret", "CLIENTSECRET")
        .body(charge(1))
        .send()
        .await
        .unwrap();
    let record = client.record("order").await.unwrap().unwrap();
    assert_eq!(
        record.request.headers,
        vec![("content-type".to_owned(), "application/json".to_owned())]
    );
    assert_eq!(
        record.withheld,
        [
            "x-account",
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-api-key",
            "api-key",
            "x-csrf-token",
            "x-auth-token",
            "x-client-secret"
        ],
        "names only, to be supplied again"
    );
    // A URL carrying a key in its query is refused: the URL is stored.
    for url in [
        "?api_key=QUERYSECRET",
        "?x=1&access-token=QUERYSECRET",
        "?sig=QUERYSECRET",
    ] {
        let error = client
            .intent("by-query")
            .post(format!("{}{url}", server.charges_url()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{url}: {error}");
        assert!(error.to_string().contains("credential"), "{error}");
    }
    assert!(client.record("by-query").await.unwrap().is_none());
    drop(client);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in [
        "AUTHSECRET",
        "COOKIESECRET",
        "PROXYSECRET",
        "APIKEYSECRET",
        "BAREKEYSECRET",
        "CSRFSECRET",
        "AUTHTOKENSECRET",
        "CLIENTSECRET",
        "QUERYSECRET",
    ] {
        assert!(!text.contains(secret), "{secret} was written to the store");
    }
    assert!(
        text.contains("application/json"),
        "the file was read (sanity)"
    );
}

#[tokio::test]
async fn a_version_1_file_is_migrated_and_keeps_its_intents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    {
        // The schema as version 1 wrote it, with one pending intent.
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE intents (name TEXT PRIMARY KEY NOT NULL, key TEXT NOT NULL, method TEXT NOT NULL, \
             url TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, fingerprint BLOB NOT NULL, \
             created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, attempts INTEGER NOT NULL, \
             state TEXT NOT NULL, failure_kind TEXT, failure_message TEXT, last_status INTEGER, \
             status INTEGER, response_headers TEXT, response_body BLOB) STRICT; \
             PRAGMA application_id = 1869505349; PRAGMA user_version = 1;",
        )
        .unwrap();
        db.execute(
            "INSERT INTO intents VALUES ('old', '01JD5Z6W3Q7M2V8K4N9P0R1S2T', 'POST', 'http://127.0.0.1:9/x', \
             'content-type: text/plain\n', x'', zeroblob(32), 1, 9000000000000, 1, 'pending', \
             NULL, NULL, NULL, NULL, NULL, NULL)",
            [],
        )
        .unwrap();
    }
    let store = FileStore::open(&path).unwrap();
    let records = store.list().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name, "old");
    assert!(records[0].withheld.is_empty() && records[0].owner.is_none());
    drop(store);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 3);
}

fn open_error(path: &std::path::Path) -> oncely::Error {
    FileStore::open(path).unwrap_err()
}

#[test]
fn a_file_that_is_not_sqlite_is_a_clear_error_and_stays_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    let error = open_error(&path);
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(
        error.to_string().contains("not a SQLite database"),
        "{error}"
    );
    assert!(
        std::fs::read(&path).unwrap() == garbage,
        "the file is left untouched"
    );
}

#[test]
fn a_foreign_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x');")
        .unwrap();
    drop(other);
    let error = open_error(&path);
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(error.to_string().contains("another application"), "{error}");
}

#[tokio::test]
async fn a_corrupted_or_truncated_store_is_a_clear_error_never_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    {
        let store = FileStore::open(&path).unwrap();
        for i in 0..200 {
            let record = pending_record(
                &format!("order-{i}"),
                "http://127.0.0.1:1/",
                &"x".repeat(500),
            );
            store.create_or_get(record).await.unwrap();
        }
    }
    // Fold the WAL into the main file so the damage below hits real pages.
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;")
        .unwrap();
    drop(connection);
    let intact = std::fs::read(&path).unwrap();
    assert!(intact.len() > 8 * 4096);

    // Scribble over interior pages.
    let mut corrupt = intact.clone();
    for byte in &mut corrupt[2 * 4096..6 * 4096] {
        *byte = 0xA5;
    }
    std::fs::write(&path, &corrupt).unwrap();
    let error = open_error(&path);
    assert_eq!(error.kind(), ErrorKind::Store, "{error}");
    assert!(error.to_string().contains("corrupt"), "{error}");
    assert!(
        std::fs::read(&path).unwrap() == corrupt,
        "the damaged file is left for recovery"
    );

    // Cut it short.
    std::fs::write(&path, &intact[..intact.len() / 2]).unwrap();
    let error = open_error(&path);
    assert_eq!(error.kind(), ErrorKind::Store, "{error}");

    // Restored, every intent is still there.
    std::fs::write(&path, &intact).unwrap();
    let client = Client::builder()
        .store(FileStore::open(&path).unwrap())
        .build()
        .unwrap();
    assert_eq!(client.pending().await.unwrap().len(), 200);
}

#[tokio::test]
async fn a_damaged_record_is_reported_by_pending_and_resume_and_blocks_no_other_intent() {
    // `pending` and `resume` read only what may be unsettled (settled
    // records pile up); a damaged settled one is not even read, and a
    // damaged one that may be pending is reported in its place, first,
    // naming its intent, while the others resume.
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    let url = server.charges_url();
    {
        let store = FileStore::open(&path).unwrap();
        let waiting = pending_record("order-waiting", &url, &charge(100));
        let mut next = pending_record("order-next", &url, &charge(100));
        next.created_at = waiting.created_at + 1;
        store.create_or_get(waiting).await.unwrap();
        store.create_or_get(next).await.unwrap();
        let mut paid = pending_record("order-paid", &url, "{}");
        paid.state = State::Settled;
        paid.response = Some(Response {
            status: 201,
            headers: Vec::new(),
            body: Bytes::from_static(b"{}"),
        });
        store.create_or_get(paid).await.unwrap();
    }
    let damage = |sql: &str| {
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(sql, [])
            .unwrap();
    };
    damage("UPDATE intents SET fingerprint = x'00' WHERE name = 'order-paid'");
    let client = Client::builder()
        .store(FileStore::open(&path).unwrap())
        .build()
        .unwrap();
    let names = |records: &[Result<Record, oncely::Error>]| -> Vec<String> {
        records
            .iter()
            .map(|r| match r {
                Ok(record) => record.name.clone(),
                Err(error) => format!("damaged {}", error.intent().unwrap_or("?")),
            })
            .collect()
    };
    let pending = client.pending().await.unwrap();
    assert_eq!(names(&pending), ["order-waiting", "order-next"]);
    // Reading every record still says which one is damaged.
    let error = client.records().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(error.to_string().contains("order-paid"), "{error}");
    assert_eq!(error.intent(), Some("order-paid"), "named, for `forget`");

    // A record whose state is damaged may be pending: reported first, not
    // left out, and nothing else waits for it.
    damage("UPDATE intents SET state = 'pendng' WHERE name = 'order-waiting'");
    let pending = client.pending().await.unwrap();
    assert_eq!(names(&pending), ["damaged order-waiting", "order-next"]);
    let error = pending[0].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(error.to_string().contains("order-waiting"), "{error}");
    assert!(error.to_string().contains("unknown state"), "{error}");

    let resumed = client.resume().await.unwrap();
    assert_eq!(resumed.len(), 2);
    let error = resumed[0].as_ref().unwrap_err();
    assert_eq!(
        (error.kind(), error.intent()),
        (ErrorKind::Store, Some("order-waiting"))
    );
    let outcome = resumed[1].as_ref().unwrap();
    assert_eq!((outcome.intent(), outcome.status()), ("order-next", 201));
    assert_eq!(
        server.ledger("acct").await.len(),
        1,
        "nothing sent for the damaged record"
    );

    // Forgetting it (which reads nothing of it) clears the list.
    assert!(client.forget("order-waiting").await.unwrap());
    assert!(client.pending().await.unwrap().is_empty());
}

/// Prunes through `store`: what goes (past retention, outcome known) and
/// what stays (within retention; pending whatever its age).
async fn prune_through(store: impl Store + Clone, server: &TestServer, account: &str) {
    let clock = VirtualClock::with_real_sleeps();
    let client = Client::builder()
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let pay = |name: &'static str| {
        client
            .intent(name)
            .post(server.charges_url())
            .header("x-account", account)
            .body(charge(700))
            .send()
    };
    let old_key = pay("order-old").await.unwrap().key().clone();
    // Recorded as long ago, never answered: resume still owes it one.
    let mut waiting = pending_record("order-waiting", "http://127.0.0.1:1/", "{}");
    waiting.created_at = clock.now_ms();
    waiting.expires_at = clock.now_ms() + 24 * 3_600_000;
    store.create_or_get(waiting).await.unwrap();
    clock.advance(Duration::from_secs(25 * 3600));
    pay("order-new").await.unwrap();
    // Until pruned, the old intent refuses to be sent again blindly.
    assert_eq!(
        pay("order-old").await.unwrap_err().kind(),
        ErrorKind::Expired
    );

    assert_eq!(client.prune().await.unwrap(), 1);
    let names: Vec<String> = client
        .records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["order-waiting", "order-new"]);
    assert_eq!(client.prune().await.unwrap(), 0);
    // Its name now starts a new intent: a new key, a new charge.
    let anew = pay("order-old").await.unwrap();
    assert_ne!(anew.key(), &old_key);
    assert!(!anew.replayed());
    assert_eq!(server.ledger(account).await.len(), 3);
}

#[tokio::test]
async fn prune_removes_intents_past_retention_whose_outcome_is_known_and_keeps_the_rest() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    prune_through(
        FileStore::open(dir.path().join("prune.db")).unwrap(),
        &server,
        "acct-file",
    )
    .await;
    prune_through(oncely::MemoryStore::new(), &server, "acct-memory").await;
}

#[test]
fn a_directory_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(open_error(dir.path()).kind(), ErrorKind::Store);
}

#[tokio::test]
async fn relaxed_durability_still_records_and_replays() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relaxed.db");
    let store = FileStore::options()
        .durability(oncely::Durability::Relaxed)
        .busy_timeout(Duration::from_secs(1))
        .open(&path)
        .unwrap();
    let client = Client::builder().store(store).build().unwrap();
    let send = || {
        client
            .intent("order")
            .post(server.charges_url())
            .header("x-account", "acct")
            .body(charge(3))
            .send()
    };
    assert!(!send().await.unwrap().replayed());
    assert!(send().await.unwrap().replayed());
    let synchronous: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |_| Ok(0))
        .unwrap();
    assert_eq!(synchronous, 0);
}

#[test]
fn processes_opening_a_fresh_store_together_all_succeed() {
    // SQLite refuses a second connection's WAL switch at once, without its
    // busy handler; the store must wait its turn instead of failing.
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("fresh-{round}.db"));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || FileStore::open(&path).map(|_| ()))
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().unwrap();
        }
    }
}

#[tokio::test]
async fn a_program_that_returns_right_after_a_call_leaves_its_outcome_recorded() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intents.db");
    {
        // Callers get their answer before the outcome's write completes;
        // dropping the last handle must still wait for that write.
        let client = Client::builder()
            .store(FileStore::open(&path).unwrap())
            .build()
            .unwrap();
        let outcome = client
            .intent("order")
            .post(server.charges_url())
            .header("x-account", "acct")
            .body(charge(8))
            .send()
            .await
            .unwrap();
        assert_eq!(outcome.status(), 201);
    }
    let connection = rusqlite::Connection::open(&path).unwrap();
    let state: String = connection
        .query_row(
            "SELECT state FROM intents WHERE name = 'order'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(state, "settled");
}
