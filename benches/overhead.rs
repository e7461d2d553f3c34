//! What oncely costs, each figure as a ratio against a baseline measured in
//! the same run (these machines are noisy; absolute numbers are not).
//!
//! Run with `make bench` (or `cargo bench -p oncely --bench overhead`).
//!
//! 1. per-call overhead: a `MemoryStore` intent vs a raw reqwest POST to the
//!    same loopback endpoint (target: ratio ≤ 1.02);
//! 2. cost per joining duplicate: a flight with 1000 duplicates joined vs the
//!    flight alone, difference per duplicate (target: ≤ 200 ns);
//! 3. throughput of 64 concurrent distinct intents on the durable
//!    `FileStore` vs 64 concurrent raw reqwest POSTs (target: ≥ 50 %).
//!
//! Criterion reports each benchmark; the summary at the end interleaves the
//! two sides of each comparison round by round and reports the median ratio.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use oncely::{Client, FileStore, MemoryStore};

const BODY: &str = r#"{"amount":4200,"currency":"usd"}"#;
static NEXT: AtomicU64 = AtomicU64::new(0);

fn fresh_name() -> String {
    format!("intent-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A loopback endpoint that answers every POST with 201, on its own thread
/// and runtime so it does not share the client's scheduler.
fn start_endpoint() -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/charge",
                axum::routing::post(|| async { (axum::http::StatusCode::CREATED, r#"{"id":1}"#) }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender
                .send(format!("http://{}/charge", listener.local_addr().unwrap()))
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    receiver.recv().unwrap()
}

struct Bench {
    runtime: tokio::runtime::Runtime,
    url: String,
    raw: reqwest::Client,
    memory: Client,
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
        let (memory, file) = runtime.block_on(async {
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
            (memory, file)
        });
        Bench {
            runtime,
            url,
            raw,
            memory,
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
        b.to_async(rt).iter(|| bench.flight(1000))
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

    summary(&bench);
}

/// Times `round` once.
fn time<F: std::future::Future<Output = ()>>(
    runtime: &tokio::runtime::Runtime,
    round: impl Fn() -> F,
) -> Duration {
    let start = Instant::now();
    runtime.block_on(round());
    start.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Interleaved rounds: baseline, then subject, again and again; the median of
/// the per-round figures is robust to the machine's moods.
fn summary(bench: &Bench) {
    let rt = &bench.runtime;
    let rounds = 31;

    let mut per_call = Vec::new();
    for _ in 0..rounds {
        let raw = time(rt, || async {
            for _ in 0..200 {
                bench.raw_call().await;
            }
        });
        let oncely = time(rt, || async {
            for _ in 0..200 {
                bench.oncely_call(&bench.memory, fresh_name()).await;
            }
        });
        per_call.push(oncely.as_secs_f64() / raw.as_secs_f64());
    }

    let mut join_ns = Vec::new();
    let mut join_ratio = Vec::new();
    for _ in 0..rounds {
        let alone = time(rt, || async {
            for _ in 0..20 {
                bench.flight(0).await;
            }
        });
        let joined = time(rt, || async {
            for _ in 0..20 {
                bench.flight(1000).await;
            }
        });
        let per_duplicate = (joined.as_secs_f64() - alone.as_secs_f64()) / (20.0 * 1000.0);
        join_ns.push(per_duplicate * 1e9);
        join_ratio.push(per_duplicate / (alone.as_secs_f64() / 20.0));
    }

    let mut throughput = Vec::new();
    for _ in 0..rounds {
        let raw = time(rt, || bench.raw_concurrent(64, 4));
        let file = time(rt, || bench.file_concurrent(64, 4));
        throughput.push(raw.as_secs_f64() / file.as_secs_f64());
    }

    println!();
    println!(
        "oncely figures (median of {rounds} interleaved rounds, each against its baseline in the same run)"
    );
    println!(
        "  per-call overhead, MemoryStore / raw reqwest:      {:.3}x   (target <= 1.02)",
        median(per_call)
    );
    println!(
        "  cost per joining duplicate:                        {:.0} ns = {:.5} of one flight   (target <= 200 ns)",
        median(join_ns),
        median(join_ratio)
    );
    println!(
        "  64 concurrent intents, FileStore strict vs raw:    {:.1} % of raw throughput   (target >= 50 %)",
        100.0 * median(throughput)
    );
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
