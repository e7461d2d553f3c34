//! What oncely costs, each figure as a ratio against a baseline measured in
//! the same run (these machines are noisy; absolute numbers are not).
//!
//! Run with `make bench` (or `cargo bench -p oncely --bench overhead`).
//!
//! 1. per-call overhead: a `MemoryStore` intent vs a raw reqwest POST to the
//!    same loopback endpoint (target: ratio ≤ 1.02);
//! 2. cost per joining duplicate: a flight with 1000 duplicates joined vs the
//!    flight alone, difference per duplicate (target: ≤ 200 ns), beside what
//!    gathering 1000 do-nothing calls the same way costs (the harness);
//! 3. throughput of 64 concurrent distinct intents on the durable
//!    `FileStore` vs 64 concurrent raw reqwest POSTs (target: ≥ 50 %);
//! 4. what `pending` (and so `resume`) reads in a `FileStore` holding 10,000
//!    settled intents and 10 pending ones, against reading every record.
//!
//! Criterion reports each benchmark; the summary at the end interleaves the
//! two sides of each comparison round by round and reports the median ratio.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod measure;

use criterion::{Criterion, criterion_group};
use measure::{Immediate, interleave, median, start_endpoint};
use oncely::{Client, FileStore, MemoryStore, Store};

const BODY: &str = r#"{"amount":4200,"currency":"usd"}"#;
static NEXT: AtomicU64 = AtomicU64::new(0);

fn fresh_name() -> String {
    format!("intent-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

struct Bench {
    runtime: tokio::runtime::Runtime,
    url: String,
    raw: reqwest::Client,
    memory: Client,
    core_only: Client,
    file: Client,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let url = start_endpoint();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The same reqwest configuration on both sides.
        let raw = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (memory, core_only, file) = runtime.block_on(async {
            let transport = oncely::transport::HttpTransport::from_client(raw.clone());
            let memory = Client::builder()
                .store(MemoryStore::new())
                .transport(transport.clone())
                .build()
                .unwrap();
            let file = Client::builder()
                .store(FileStore::open(dir.path().join("bench.db")).unwrap())
                .transport(transport)
                .build()
                .unwrap();
            let core_only = Client::builder()
                .store(MemoryStore::new())
                .transport(Immediate)
                .build()
                .unwrap();
            (memory, core_only, file)
        });
        Bench {
            runtime,
            url,
            raw,
            memory,
            core_only,
            file,
            _dir: dir,
        }
    }

    async fn raw_call(&self) {
        let response = self
            .raw
            .post(&self.url)
            .header("content-type", "application/json")
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.bytes().await.unwrap();
    }

    async fn oncely_call(&self, client: &Client, name: String) {
        let outcome = client
            .intent(name)
            .post(&self.url)
            .header("content-type", "application/json")
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(outcome.status(), 201);
    }

    /// One flight alone (`duplicates == 0`) or with duplicates joined.
    async fn flight(&self, duplicates: usize) {
        let name = fresh_name();
        let calls = (0..=duplicates).map(|_| self.oncely_call(&self.memory, name.clone()));
        futures_util::future::join_all(calls).await;
    }

    /// The same gathering of calls (`join_all`, a name each) with calls that
    /// do nothing: what the benchmark itself costs per duplicate.
    async fn gathering(&self, duplicates: usize) {
        let name = fresh_name();
        let calls = (0..=duplicates).map(|_| {
            let name = name.clone();
            async move {
                std::hint::black_box(name);
            }
        });
        futures_util::future::join_all(calls).await;
    }

    async fn raw_concurrent(&self, tasks: usize, each: usize) {
        let calls = (0..tasks).map(|_| async {
            for _ in 0..each {
                self.raw_call().await;
            }
        });
        futures_util::future::join_all(calls).await;
    }

    async fn file_concurrent(&self, tasks: usize, each: usize) {
        let calls = (0..tasks).map(|_| async {
            for _ in 0..each {
                self.oncely_call(&self.file, fresh_name()).await;
            }
        });
        futures_util::future::join_all(calls).await;
    }
}

fn criterion_benches(c: &mut Criterion) {
    let bench = Bench::new();
    let rt = &bench.runtime;

    let mut group = c.benchmark_group("per-call");
    group.bench_function("raw reqwest", |b| b.to_async(rt).iter(|| bench.raw_call()));
    group.bench_function("oncely MemoryStore", |b| {
        b.to_async(rt)
            .iter(|| bench.oncely_call(&bench.memory, fresh_name()))
    });
    group.finish();

    let mut group = c.benchmark_group("join");
    group.bench_function("flight alone", |b| b.to_async(rt).iter(|| bench.flight(0)));
    group.bench_function("flight + 1000 duplicates", |b| {
        b.to_async(rt).iter(|| bench.flight(DUPLICATES))
    });
    group.finish();

    let mut group = c.benchmark_group("64 concurrent");
    group.throughput(criterion::Throughput::Elements(64 * 4));
    group.bench_function("raw reqwest", |b| {
        b.to_async(rt).iter(|| bench.raw_concurrent(64, 4))
    });
    group.bench_function("oncely FileStore (strict)", |b| {
        b.to_async(rt).iter(|| bench.file_concurrent(64, 4))
    });
    group.finish();

    // `cargo test --all-targets` runs each benchmark once as a smoke test,
    // without `--bench`; the interleaved summary is for real runs only.
    if std::env::args().any(|arg| arg == "--bench") {
        summary(&bench);
    }
}

/// Duplicates joining each flight in the join figures.
const DUPLICATES: usize = 1000;
/// Flights per timed round of the join figures.
const FLIGHTS: usize = 10;

/// Rounds of `FLIGHTS` runs of `run(0)` against as many of
/// `run(DUPLICATES)`.
fn with_duplicates<F>(
    runtime: &tokio::runtime::Runtime,
    rounds: usize,
    run: impl Fn(usize) -> F,
) -> Vec<(f64, f64)>
where
    F: std::future::Future<Output = ()>,
{
    let flights = |duplicates| {
        let run = &run;
        async move {
            for _ in 0..FLIGHTS {
                run(duplicates).await;
            }
        }
    };
    interleave(runtime, rounds, || flights(0), || flights(DUPLICATES))
}

/// The median extra time per duplicate, in ns, of [`with_duplicates`]' rounds.
fn per_duplicate_ns(rounds: &[(f64, f64)]) -> f64 {
    let duplicates = (FLIGHTS * DUPLICATES) as f64;
    median(
        rounds
            .iter()
            .map(|(alone, with)| (with - alone) / duplicates * 1e9)
            .collect(),
    )
}

/// Rounds of 50 raw calls against rounds of 50 calls through `client`.
fn against_raw(bench: &Bench, rounds: usize, client: &Client) -> Vec<(f64, f64)> {
    interleave(
        &bench.runtime,
        rounds,
        || async {
            for _ in 0..50 {
                bench.raw_call().await;
            }
        },
        || async {
            for _ in 0..50 {
                bench.oncely_call(client, fresh_name()).await;
            }
        },
    )
}

/// The median of the per-round figures is robust to the machine's moods.
fn summary(bench: &Bench) {
    let rt = &bench.runtime;
    let rounds = 101;

    let per_call = against_raw(bench, rounds, &bench.memory);
    let raw_us = median(per_call.iter().map(|(raw, _)| raw / 50.0 * 1e6).collect());
    let core = against_raw(bench, rounds, &bench.core_only);
    let core_us = median(core.iter().map(|(_, core)| core / 50.0 * 1e6).collect());
    let core_ratio = median(core.iter().map(|(raw, core)| core / raw).collect());
    let per_call = median(per_call.iter().map(|(raw, oncely)| oncely / raw).collect());

    let join = with_duplicates(rt, rounds, |duplicates| bench.flight(duplicates));
    let join_ns = per_duplicate_ns(&join);
    let join_ratio = median(
        join.iter()
            .map(|(alone, joined)| (joined - alone) / DUPLICATES as f64 / alone)
            .collect(),
    );
    let gathering = with_duplicates(rt, rounds, |duplicates| bench.gathering(duplicates));
    let gathering_ns = per_duplicate_ns(&gathering);

    let throughput = interleave(
        rt,
        31,
        || bench.raw_concurrent(64, 4),
        || bench.file_concurrent(64, 4),
    );
    let throughput = median(throughput.iter().map(|(raw, file)| raw / file).collect());

    let (pending_ms, all_ms) = reading_pending(rt);

    println!();
    println!(
        "oncely figures (medians of interleaved rounds, each against its baseline in the same run)"
    );
    println!("  raw reqwest POST on loopback:                     {raw_us:.1} µs per call");
    println!(
        "  per-call overhead, MemoryStore / raw reqwest:      {per_call:.3}x = {:.1} µs added per call   (target <= 1.02)",
        (per_call - 1.0) * raw_us
    );
    println!(
        "  the core alone (no network):                       {core_us:.1} µs per call = {core_ratio:.3} of a raw call"
    );
    println!(
        "  cost per joining duplicate:                        {join_ns:.0} ns = {join_ratio:.5} of a flight alone   (target <= 200 ns)"
    );
    println!(
        "    of which the benchmark's own gathering:          {gathering_ns:.0} ns (join_all of do-nothing calls, same run)"
    );
    println!(
        "    so oncely's own, per joining duplicate:          {:.0} ns",
        join_ns - gathering_ns
    );
    println!(
        "  64 concurrent intents, FileStore strict vs raw:    {:.1} % of raw throughput   (target >= 50 %)",
        100.0 * throughput
    );
    println!(
        "  pending() among 10,000 settled intents, FileStore: {pending_ms:.2} ms = {:.3} of reading every record ({all_ms:.2} ms)",
        pending_ms / all_ms
    );
}

/// A `FileStore` with 10,000 settled intents and 10 pending ones: the median
/// time of `pending()` and of reading every record, interleaved, in ms.
fn reading_pending(runtime: &tokio::runtime::Runtime) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::options()
        .durability(oncely::Durability::Relaxed)
        .open(dir.path().join("many.db"))
        .unwrap();
    let client = runtime.block_on(async {
        let client = Client::builder()
            .store(store)
            .transport(Immediate)
            .build()
            .unwrap();
        let calls = (0..10_000).map(|_| {
            let client = client.clone();
            async move {
                client
                    .intent(fresh_name())
                    .post("http://127.0.0.1:1/charge")
                    .body(BODY)
                    .send()
                    .await
                    .unwrap();
            }
        });
        futures_util::future::join_all(calls).await;
        client
    });
    let store = FileStore::open(dir.path().join("many.db")).unwrap();
    runtime.block_on(async {
        let settled = client.records().await.unwrap();
        for (i, mut record) in settled.into_iter().take(10).enumerate() {
            record.name = format!("waiting-{i}");
            record.state = oncely::State::Pending;
            record.response = None;
            store.create_or_get(record).await.unwrap();
        }
    });
    let rounds = interleave(
        runtime,
        21,
        || async {
            assert!(client.records().await.unwrap().len() > 10_000);
        },
        || async {
            assert_eq!(client.pending().await.unwrap().len(), 10);
        },
    );
    let all = median(rounds.iter().map(|(all, _)| all * 1e3).collect());
    let pending = median(rounds.iter().map(|(_, pending)| pending * 1e3).collect());
    (pending, all)
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = criterion_benches
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
