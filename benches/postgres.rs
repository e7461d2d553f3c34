//! `PostgresStore` beside `FileStore` and raw requests, each figure a ratio
//! against baselines measured in the same run, against the throwaway
//! cluster `make bench` starts (tests/postgres/with-cluster.sh):
//!
//! 1. per call: a raw reqwest POST, an intent on `FileStore` (strict), an
//!    intent on `PostgresStore` (strict), one after another;
//! 2. throughput of 64 concurrent intents on each, against 64 concurrent
//!    raw POSTs;
//! 3. a resume of 10,000 pending intents by 1, 2 and 4 replicas at once
//!    (each its own `PostgresStore`): does it scale?

#[path = "measure/mod.rs"]
mod measure;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use measure::{interleave, median, start_endpoint};
use oncely::{Client, FileStore, PostgresStore, Store};

const BODY: &str = r#"{"amount":4200,"currency":"usd"}"#;
static NEXT: AtomicU64 = AtomicU64::new(0);

fn fresh_name() -> String {
    format!("intent-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn client(store: impl Store, http: &reqwest::Client) -> Client {
    Client::builder()
        .store(store)
        .transport(oncely::transport::HttpTransport::from_client(http.clone()))
        .build()
        .unwrap()
}

async fn raw_call(http: &reqwest::Client, url: &str) {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.bytes().await.unwrap();
}

async fn oncely_call(client: &Client, url: &str) {
    let outcome = client
        .intent(fresh_name())
        .post(url)
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(outcome.status(), 201);
}

/// `tasks` at once, each making `each` calls of `call` in turn.
async fn concurrent<F: std::future::Future<Output = ()>>(
    tasks: usize,
    each: usize,
    call: impl Fn() -> F,
) {
    let call = &call;
    futures_util::future::join_all((0..tasks).map(|_| async move {
        for _ in 0..each {
            call().await;
        }
    }))
    .await;
}

/// A fresh database holding `count` pending intents, never sent.
async fn backlog(count: usize, url: &str, http: &reqwest::Client) -> String {
    let database = support::scratch_postgres().await;
    let writer = client(PostgresStore::connect(&database).await.unwrap(), http);
    let (mut db, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tx = db.transaction().await.unwrap();
    for _ in 0..count {
        let record = writer
            .intent(fresh_name())
            .post(url)
            .header("content-type", "application/json")
            .body(BODY)
            .prepare()
            .unwrap();
        PostgresStore::enqueue(&tx, &record).await.unwrap();
    }
    tx.commit().await.unwrap();
    database
}

/// Seconds for `replicas` replicas to resume the backlog at once.
async fn resume_with(
    replicas: usize,
    database: &str,
    http: &reqwest::Client,
    backlog: usize,
) -> f64 {
    let mut clients = Vec::new();
    for _ in 0..replicas {
        clients.push(client(
            PostgresStore::connect(database).await.unwrap(),
            http,
        ));
    }
    let start = Instant::now();
    let resumed = futures_util::future::join_all(clients.iter().map(|c| c.resume())).await;
    let elapsed = start.elapsed().as_secs_f64();
    let settled: usize = resumed
        .into_iter()
        .map(|r| r.unwrap().iter().filter(|o| o.is_ok()).count())
        .sum();
    assert_eq!(settled, backlog, "every intent resumed once");
    elapsed
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this as a
    // smoke test: every path once, small.
    let full = std::env::args().any(|arg| arg == "--bench");
    let (rounds, throughput_rounds, backlog_size) =
        if full { (21, 11, 10_000) } else { (1, 1, 100) };
    let url = start_endpoint();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (file, postgres) = runtime.block_on(async {
        let database = support::scratch_postgres().await;
        (
            client(FileStore::open(dir.path().join("bench.db")).unwrap(), &http),
            client(PostgresStore::connect(&database).await.unwrap(), &http),
        )
    });

    let per_round = 20;
    let sequential = |c: &Client| {
        let (c, url) = (c.clone(), url.clone());
        move || {
            let (c, url) = (c.clone(), url.clone());
            async move {
                for _ in 0..per_round {
                    oncely_call(&c, &url).await;
                }
            }
        }
    };
    let raw_sequential = || async {
        for _ in 0..per_round {
            raw_call(&http, &url).await;
        }
    };
    let file_calls = interleave(&runtime, rounds, raw_sequential, sequential(&file));
    let pg_calls = interleave(&runtime, rounds, raw_sequential, sequential(&postgres));
    let per_call = |rounds: &[(f64, f64)], side: usize| {
        median(
            rounds
                .iter()
                .map(|r| if side == 0 { r.0 } else { r.1 } / per_round as f64 * 1e6)
                .collect(),
        )
    };
    let raw_us = per_call(&file_calls, 0);
    let file_us = per_call(&file_calls, 1);
    let pg_us = per_call(&pg_calls, 1);
    let file_ratio = median(file_calls.iter().map(|(raw, f)| f / raw).collect());
    let pg_ratio = median(pg_calls.iter().map(|(raw, p)| p / raw).collect());

    let raw_64 = || concurrent(64, 4, || raw_call(&http, &url));
    let file_64 = || concurrent(64, 4, || oncely_call(&file, &url));
    let pg_64 = || concurrent(64, 4, || oncely_call(&postgres, &url));
    let file_throughput = interleave(&runtime, throughput_rounds, raw_64, file_64);
    let pg_throughput = interleave(&runtime, throughput_rounds, raw_64, pg_64);
    let file_share = median(file_throughput.iter().map(|(raw, f)| raw / f).collect());
    let pg_share = median(pg_throughput.iter().map(|(raw, p)| raw / p).collect());
    let raw_per_s = 256.0 / median(file_throughput.iter().map(|(raw, _)| *raw).collect());

    let mut resumes = Vec::new();
    for replicas in [1, 2, 4] {
        let seconds = runtime.block_on(async {
            let database = backlog(backlog_size, &url, &http).await;
            resume_with(replicas, &database, &http, backlog_size).await
        });
        resumes.push((replicas, seconds));
    }

    println!();
    println!(
        "PostgresStore figures (medians of interleaved rounds, each against its baseline in the same run)"
    );
    println!("  per call, one after another:");
    println!("    raw reqwest POST on loopback:         {raw_us:.0} µs");
    println!("    FileStore (strict):                   {file_us:.0} µs = {file_ratio:.2}x raw");
    println!(
        "    PostgresStore (strict):               {pg_us:.0} µs = {pg_ratio:.2}x raw = {:.2}x FileStore",
        pg_us / file_us
    );
    println!("  64 concurrent intents (raw: {raw_per_s:.0} requests/s):");
    println!(
        "    FileStore:                            {:.1} % of raw throughput",
        100.0 * file_share
    );
    println!(
        "    PostgresStore:                        {:.1} % of raw throughput = {:.2}x FileStore",
        100.0 * pg_share,
        pg_share / file_share
    );
    println!("  resume of {backlog_size} pending intents:");
    let one = resumes[0].1;
    for (replicas, seconds) in resumes {
        println!(
            "    {replicas} replica(s) at once:                   {seconds:.2} s = {:.0} intents/s ({:.2}x one replica's speed)",
            backlog_size as f64 / seconds,
            one / seconds
        );
    }
}
