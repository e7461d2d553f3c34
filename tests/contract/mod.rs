//! What every store promises the client, one body for every store: the
//! memory and durable stores of tests/shared.rs (natively and in
//! Chromium) and `PostgresStore` (tests/postgres.rs).
#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use oncely::store::Update;
use oncely::{ErrorKind, Fingerprint, Key, Record, Request, Response, State, Store};

pub fn record(name: &str, created_at: u64) -> Record {
    let request = Request {
        method: "POST".to_owned(),
        url: "http://127.0.0.1:9/api/charges".to_owned(),
        headers: vec![],
        body: Bytes::from_static(b"{}"),
    };
    Record {
        name: name.to_owned(),
        key: Key::mint(created_at, &oncely::runtime::OsRandom),
        fingerprint: Fingerprint::of_request(&request),
        request: Arc::new(request),
        created_at,
        expires_at: created_at + 86_400_000,
        attempts: 1,
        state: State::Pending,
        failure: None,
        response: None,
        withheld: Vec::new(),
        owner: None,
    }
}

/// What every store promises the client.
pub async fn store_contract(store: impl Store) {
    let first = record("b-intent", 2);
    let (stored, created) = store.create_or_get(first.clone()).await.unwrap();
    assert!(created);
    assert_eq!(stored, first);
    // The first writer's key wins.
    let (stored, created) = store.create_or_get(record("b-intent", 3)).await.unwrap();
    assert!(!created);
    assert_eq!(stored.key, first.key);
    store.create_or_get(record("a-intent", 1)).await.unwrap();

    let names: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a-intent", "b-intent"], "oldest first");

    // An update takes its place when called, even if its future is dropped.
    let settled = Update {
        attempts: 2,
        state: State::Settled,
        failure: None,
        response: Some(Response {
            status: 201,
            headers: vec![("x-a".to_owned(), "1".to_owned())],
            body: Bytes::from_static(b"\x00binary\xff"),
        }),
    };
    drop(store.update("b-intent", settled.clone()).now_or_never());
    let read = store.get("b-intent").await.unwrap().unwrap();
    assert_eq!(read.state, State::Settled);
    assert_eq!(read.attempts, 2);
    assert_eq!(read.response, settled.response, "bodies byte for byte");

    // A settled record is final: a late write of another client's retry
    // (pending, then given up) leaves its outcome; only expiry follows.
    for late in [State::Pending, State::Failed] {
        let failure = (late == State::Failed).then(|| oncely::Failure {
            kind: ErrorKind::GaveUp,
            message: "gave up".to_owned(),
            last_status: Some(409),
        });
        let write = Update {
            attempts: 3,
            state: late,
            failure,
            response: None,
        };
        store.update("b-intent", write).await.unwrap();
        assert_eq!(
            store.get("b-intent").await.unwrap().unwrap(),
            read,
            "{late:?}"
        );
    }

    let names = |records: Vec<Result<Record, oncely::Error>>| {
        records
            .into_iter()
            .map(|r| r.unwrap().name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(store.unsettled().await.unwrap()), ["a-intent"]);
    // Claimed for resume: the user's unsettled ones, oldest first; another
    // user's never.
    let claimed = store.claim(None, None, 10).await.unwrap();
    assert_eq!(names(claimed.records), ["a-intent"]);
    assert!(
        store
            .claim(Some("bob"), None, 10)
            .await
            .unwrap()
            .records
            .is_empty()
    );
    // Pruned: past retention (b's ends at 86,400,002 ms) with a known
    // outcome; the pending one stays whatever its age, and one kept
    // "forever" stays until the end of time.
    let mut forever = record("c-intent", 4);
    forever.expires_at = u64::MAX;
    forever.state = State::Settled;
    store.create_or_get(forever).await.unwrap();
    assert_eq!(store.prune(86_400_001).await.unwrap(), 0);
    assert_eq!(store.prune(4_000_000_000_000).await.unwrap(), 1);
    assert_eq!(
        names(store.list().await.unwrap().into_iter().map(Ok).collect()),
        ["a-intent", "c-intent"]
    );
    assert!(store.remove("c-intent").await.unwrap());

    assert!(store.remove("a-intent").await.unwrap());
    assert!(!store.remove("a-intent").await.unwrap());
    assert_eq!(store.get("a-intent").await.unwrap(), None);
    let error = store.update("a-intent", settled).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
}
