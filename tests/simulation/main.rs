//! A deterministic simulation of the native client: the real `Client` and
//! pilot over a simulated server, network, clock and crashing processes,
//! searched seed by seed. Every run comes from one `u64` seed and replays
//! from it alone.
//!
//! - `cargo test -p oncely --test simulation`: the default seeds
//! - `ONCELY_SIM_SEEDS=N` (from `ONCELY_SIM_START`, default 0): N seeds
//! - `ONCELY_SIM_SEED=S`: seed S alone, with its trace
//! - `ONCELY_SIM_ALL=1`: report every failing seed, not only the first
//! - `ONCELY_SIM_LIVE=1`: print the trace as it is written (a run that hangs)
//! - `make sim SEEDS=N` / `make sim SEED=S`: the same, in release mode
//!
//! Modules: `scenario` (what a seed decides, and the gates on faults
//! today's core fails), `time` (virtual time), `server`, `network`, `disk`,
//! `process` (clients that crash and resume), `world` (what they share and
//! the journal), `run` (one seed), `invariants`, `coverage` (what the seeds
//! reached).
#![cfg(not(target_arch = "wasm32"))]

mod coverage;
mod disk;
mod invariants;
mod network;
mod process;
mod run;
mod scenario;
mod server;
mod time;
mod world;

use std::time::Instant;

/// Seeds `cargo test` runs: under 10 s in a debug build on two busy cores.
const DEFAULT_SEEDS: u64 = 5_000;

/// Seeds that once broke the promise, run with the default seeds whatever
/// the scenarios became since (each still a run of its kind only while the
/// generator draws the same way):
/// - 1973: a hook fault while a duplicate process flew the intent (fixed by
///   `FileStore`'s per-intent leases);
/// - 38182: a fleet replica stalled past its lease, taken over, then woke
///   to a 401 for its own first attempt while the other's had charged
///   (fixed: an auth refusal is reported only once recorded, and the
///   fenced store refuses the record).
const REGRESSIONS: &[u64] = &[1973, 38182];

fn env(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: expected an unsigned integer")),
    )
}

fn replay_command(seed: u64) -> String {
    format!(
        "ONCELY_SIM_SEED={seed} cargo test -p oncely --test simulation -- --nocapture (or: make sim SEED={seed})"
    )
}

#[test]
fn every_seed_keeps_the_promise() {
    if let Some(seed) = env("ONCELY_SIM_SEED") {
        let run = run::run(seed);
        for line in &run.trace {
            println!("{line}");
        }
        println!("seed {seed}: digest {:016x}", run.digest());
        assert!(
            run.violations.is_empty(),
            "seed {seed} broke the promise:\n  {}",
            run.violations.join("\n  ")
        );
        return;
    }
    let start = env("ONCELY_SIM_START").unwrap_or(0);
    let count = env("ONCELY_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let all = env("ONCELY_SIM_ALL").is_some_and(|v| v != 0);
    let began = Instant::now();
    let mut failed: Vec<run::Run> = Vec::new();
    let mut coverage = coverage::Coverage::default();
    let mut ran = 0;
    let regressions: &[u64] = if env("ONCELY_SIM_SEEDS").is_none() {
        REGRESSIONS
    } else {
        &[]
    };
    for seed in (start..start.saturating_add(count)).chain(regressions.iter().copied()) {
        let run = run::run(seed);
        ran += 1;
        coverage.add(&run);
        if !run.violations.is_empty() {
            println!("seed {seed} FAILED:\n  {}", run.violations.join("\n  "));
            failed.push(run);
            if !all {
                break;
            }
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    println!("what the runs reached:\n{}", coverage.report());
    println!(
        "simulation: {ran} seeds from {start} in {seconds:.2} s ({:.0} seeds/s), {} failed",
        ran as f64 / seconds,
        failed.len()
    );
    if let Some(first) = failed.first() {
        let seeds: Vec<u64> = failed.iter().map(|r| r.seed).collect();
        panic!(
            "seed {} broke the promise:\n  {}\nfailing seeds: {seeds:?}\nreplay: {}",
            first.seed,
            first.violations.join("\n  "),
            replay_command(first.seed)
        );
    }
    // A few hundred seeds reach every fault the gates allow; fewer may not.
    if ran >= 500 {
        let missed = coverage.missed();
        assert!(missed.is_empty(), "no run reached: {missed:?}");
    }
}

#[test]
fn a_seed_replays_identically() {
    // The second pass runs the seeds in reverse, so whatever a run might
    // leave behind in the process (a thread-local, a counter) meets each
    // twin in another state and would show as a difference.
    let seeds = 0..40;
    let first: Vec<run::Run> = seeds.clone().map(run::run).collect();
    let second: Vec<run::Run> = seeds.rev().map(run::run).collect();
    for (a, b) in first.iter().zip(second.iter().rev()) {
        assert!(
            a.trace.len() > 10,
            "seed {} did too little to prove anything",
            a.seed
        );
        assert_eq!(
            (a.digest(), &a.trace),
            (b.digest(), &b.trace),
            "seed {} ran differently twice",
            a.seed
        );
    }
}
