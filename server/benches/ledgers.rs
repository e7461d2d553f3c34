//! The reference server on PostgreSQL against SQLite: charges per second
//! with unique keys from 64 concurrent connections, both measured in one run
//! on this machine, and their ratio.
//!
//! Run with `tests/postgres/with-cluster.sh cargo bench -p oncely-server --bench ledgers`
//! (`make bench` does). `ONCELY_BENCH_SECS` sets each measurement's length
//! (default 5 s); without `--bench` (`cargo test --all-targets`) it runs a
//! fraction of a second each, to prove it still works.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oncely_server::{Options, Server, scratch_postgres};

const CONNECTIONS: usize = 64;
const BODY: &str = r#"{"amount":1250,"currency":"EUR","description":"bench"}"#;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> std::process::ExitCode {
    let full = std::env::args().any(|arg| arg == "--bench");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ledgers bench: no runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(full)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledgers bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(full: bool) -> Result<(), Error> {
    let (warmup, measure) = if full {
        let secs = match std::env::var("ONCELY_BENCH_SECS") {
            Ok(secs) => secs
                .parse::<f64>()
                .map_err(|_| format!("ONCELY_BENCH_SECS must be seconds, got {secs:?}"))?,
            Err(_) => 5.0,
        };
        (Duration::from_secs(1), Duration::from_secs_f64(secs))
    } else {
        (Duration::from_millis(100), Duration::from_millis(300))
    };
    let postgres = scratch_postgres().await?;
    let dir = tempfile::tempdir()?;
    let sqlite = Options::new(dir.path().join("ledger.db"));

    println!(
        "oncely-server, POST /api/charges with unique keys, {CONNECTIONS} concurrent connections, \
         {:.1} s per measurement",
        measure.as_secs_f64()
    );
    // Two rounds each, alternating, so neither backend has the machine's
    // quieter moment to itself.
    let mut rates = [Vec::new(), Vec::new()];
    for round in 1..=2 {
        for (slot, (name, options)) in [
            ("SQLite", sqlite.clone()),
            ("PostgreSQL", Options::postgres(&postgres)),
        ]
        .into_iter()
        .enumerate()
        {
            let rate = measure_server(options, warmup, measure, round).await?;
            println!("  round {round}  {name:<10} {rate:>8.0} requests/s");
            rates[slot].push(rate);
        }
    }
    let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
    let (sqlite, postgres) = (mean(&rates[0]), mean(&rates[1]));
    println!("  mean      SQLite     {sqlite:>8.0} requests/s");
    println!("  mean      PostgreSQL {postgres:>8.0} requests/s");
    println!("  PostgreSQL / SQLite: {:.2}", postgres / sqlite);
    Ok(())
}

/// Starts a server on `options`, loads it, and returns its charges per second.
async fn measure_server(
    options: Options,
    warmup: Duration,
    measure: Duration,
    round: usize,
) -> Result<f64, Error> {
    let server = Server::start(options).await?;
    let url = format!("{}/api/charges", server.url());
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let charged = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(CONNECTIONS);
    for worker in 0..CONNECTIONS {
        let (url, counting, stop, charged) = (
            url.clone(),
            Arc::clone(&counting),
            Arc::clone(&stop),
            Arc::clone(&charged),
        );
        workers.push(tokio::spawn(async move {
            // A client each: one keep-alive connection per worker.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let response = client
                    .post(&url)
                    .header("x-account", "bench")
                    .header("content-type", "application/json")
                    .header("idempotency-key", format!("\"r{round}-w{worker}-{n}\""))
                    .body(BODY)
                    .send()
                    .await?;
                if response.status() != 201 {
                    return Err(format!("answered {}", response.status()).into());
                }
                response.bytes().await?;
                if counting.load(Ordering::Relaxed) {
                    charged.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), Error>(())
        }));
    }
    tokio::time::sleep(warmup).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    counting.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let count = charged.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await??;
    }
    server.stop().await;
    Ok(count as f64 / elapsed.as_secs_f64())
}
