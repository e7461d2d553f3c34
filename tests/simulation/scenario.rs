//! What one seed decides before the run starts: the client's settings, how
//! often each fault strikes, and the schedule of what happens when.
//!
//! Decisions taken during the run (whether this request is lost, how long
//! the server works) come from the world's own [`Rng`], seeded from the same
//! seed: they are drawn in the order events happen, which is itself fixed.

use std::time::Duration;

use oncely::RetryPolicy;
use oncely::runtime::{Random, splitmix64};

// Gates on faults. One that today's core is known to mishandle is off, so
// the suite stays green until the core is fixed; switch it on to search for
// it (`ONCELY_SIM_SEEDS=5000 ONCELY_SIM_ALL=1 cargo test -p oncely --test
// simulation`). The invariants never change with the gates.

/// Wall-clock jumps: forward and backward steps of the machine's clock.
pub const CLOCK_JUMPS: bool = true;
/// Retention short enough for flights to meet its end (else 24 hours, past
/// every flight; the epilogue still asks for every intent after its end).
/// The core checks it before every attempt and against every backoff.
pub const RETENTION_WITHIN_REACH: bool = true;
/// A credentials hook that misbehaves (returns nothing, or a header HTTP
/// refuses) after an attempt of the intent has left: a 401 then decides
/// nothing, and a hook failure is `Credentials`, never `InvalidInput`.
pub const HOOK_FAULTS_AFTER_A_SEND: bool = true;
/// A misbehaving hook while a duplicate process flies the same intent
/// (failed at seed 1973 before `FileStore` took leases: process A's first
/// attempt left without credentials, B's attempt charged with its answer
/// lost, and A settled its own 401, unable to see B's). With a lease per
/// intent, A waits for B's flight and finds its attempt recorded.
pub const HOOK_FAULTS_WITH_DUPLICATES: bool = true;
/// A fleet on one database (`PostgresStore`): duplicate processes are
/// replicas that stall past their leases and are taken over, their writes
/// fenced.
pub const FLEET_STALLS: bool = true;

/// A small, fast, seeded generator (splitmix64): every random decision of a
/// run comes from one.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    /// Uniform in `[low, high)` (`low` when the range is empty).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next() % (high - low)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// One of `items`, uniformly.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.range(0, items.len() as u64) as usize]
    }
}

/// The entropy one client is built with (keys, jitter): seeded, so keys and
/// backoff delays are the same on every replay.
pub struct Entropy(pub std::sync::Mutex<Rng>);

impl Random for Entropy {
    fn fill(&self, dest: &mut [u8]) {
        let mut rng = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in dest.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
        }
    }
}

/// The intents of a run: "order-0", "order-1", … each with its own body,
/// which names the intent (the server's ledger attributes charges by it).
#[derive(Debug, Clone)]
pub struct Intent {
    pub name: String,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct NetworkFaults {
    /// A request lost before the server (refused, or into a black hole).
    pub lose_request: f64,
    /// An answer lost after the server committed (reset, or a black hole).
    pub lose_answer: f64,
    /// A gateway answering 502/504 in the server's place, after it committed.
    pub gateway: f64,
    /// One-way latency bounds, ms.
    pub latency: (u64, u64),
}

#[derive(Debug, Clone)]
pub struct ServerFaults {
    /// 429/503 with `Retry-After` (seconds or an HTTP-date), before any work.
    pub throttle: f64,
    /// Work that outlasts the client's attempt timeout.
    pub slow: f64,
    /// A definitive refusal (402) recorded under the key: no charge.
    pub decline: f64,
    /// Ordinary work time bounds, ms.
    pub work: (u64, u64),
}

/// What the credentials hook does on each attempt.
#[derive(Debug, Clone, Copy)]
pub struct CredentialFaults {
    /// Returns nothing (the attempt goes out unauthenticated).
    pub missing: f64,
    /// Returns a header HTTP refuses (the hook "fails").
    pub invalid: f64,
}

#[derive(Debug, Clone)]
pub enum Happening {
    /// A process starts in `slot` (if none runs there): it resumes.
    Launch { slot: usize },
    /// The app in `slot` calls an intent; an impatient caller drops its
    /// future after `patience` ms. `own_auth`: the call carries its own
    /// `authorization` header (never to be stored).
    Call {
        slot: usize,
        intent: usize,
        patience: Option<u64>,
        own_auth: bool,
    },
    /// The process in `slot` dies: the client and every call future dropped.
    Crash { slot: usize },
    /// The process in `slot` stalls for `ms` (a pause, `SIGSTOP`).
    Stall { slot: usize, ms: u64 },
    /// The server restarts: in-progress keys forgotten, down for a while.
    ServerRestart { downtime: u64 },
    /// The machine's wall clock steps by `by_ms`.
    ClockJump { by_ms: i64 },
    /// The end of the schedule: a process resumes and calls every intent.
    Final,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub intents: Vec<Intent>,
    pub policy: RetryPolicy,
    /// The client's retention.
    pub retention: Duration,
    /// How long the server keeps a key: the client's retention plus every
    /// backward clock jump of the run plus the network's latency, so a
    /// client that keeps to its own retention (by its own clock) never
    /// reaches a key the server forgot, and one that does not may charge
    /// twice.
    pub server_retention: u64,
    pub network: NetworkFaults,
    pub server: ServerFaults,
    pub credentials: CredentialFaults,
    /// The chance that a process crashes at a poll of one of its calls
    /// (at any await point), rather than only at scheduled instants.
    pub poll_crash: f64,
    /// The longest a crashed process stays down.
    pub restart_within: u64,
    /// When the schedule ends with [`Happening::Final`].
    pub horizon: u64,
    /// What happens when (true time, ms), in order.
    pub happenings: Vec<(u64, Happening)>,
    /// The sum of the backward clock jumps.
    pub backward: u64,
    /// The store is a fleet's shared database (`PostgresStore`): its
    /// replicas (the processes) may stall past their leases, and their
    /// writes are fenced.
    pub fleet: bool,
    /// The sum of the stalls.
    pub stalled: u64,
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl Scenario {
    pub fn generate(seed: u64) -> Scenario {
        let mut rng = Rng::new(seed);
        let horizon = rng.range(30_000, 900_000);
        // Within the run's reach, late resumes and long retries meet the
        // retention's end; out of it, 24 hours (the default).
        let retention = if RETENTION_WITHIN_REACH {
            rng.range(horizon / 3, 2 * horizon)
        } else {
            24 * 3_600_000
        };
        let deadline = rng.range(5_000, 120_000);
        let policy = RetryPolicy {
            max_attempts: rng.range(1, 9) as u32,
            base_delay: ms(rng.range(10, 2_000)),
            max_delay: ms(rng.range(500, 30_000)),
            deadline: ms(deadline),
            max_retry_after: Duration::from_secs(rng.range(1, 90)),
            attempt_timeout: ms(rng.range(200, 20_000)),
        };
        let intents = (0..rng.range(1, 5))
            .map(|i| Intent {
                name: format!("order-{i}"),
                body: format!(
                    r#"{{"intent":"order-{i}","amount":{}}}"#,
                    rng.range(100, 100_000)
                ),
            })
            .collect::<Vec<_>>();
        // Some runs calm, some stormy.
        let storm = rng.unit();
        let network = NetworkFaults {
            lose_request: rng.unit() * 0.4 * storm,
            lose_answer: rng.unit() * 0.4 * storm,
            gateway: rng.unit() * 0.2 * storm,
            latency: (rng.range(0, 50), rng.range(50, 1_500)),
        };
        let server = ServerFaults {
            throttle: rng.unit() * 0.3 * storm,
            slow: rng.unit() * 0.3 * storm,
            decline: rng.unit() * 0.2,
            work: (rng.range(0, 100), rng.range(100, 3_000)),
        };
        let duplicates = rng.chance(0.35);
        let mut hook_fault = |most: f64| {
            if (HOOK_FAULTS_WITH_DUPLICATES || !duplicates) && rng.chance(0.3) {
                rng.unit() * most
            } else {
                0.0
            }
        };
        let credentials = CredentialFaults {
            missing: hook_fault(0.3),
            invalid: hook_fault(0.2),
        };
        let slots = if duplicates { 2 } else { 1 };
        let fleet = FLEET_STALLS && duplicates && rng.chance(0.5);

        let mut happenings = vec![(0, Happening::Launch { slot: 0 })];
        if duplicates {
            let at = rng.range(0, horizon / 2);
            happenings.push((at, Happening::Launch { slot: 1 }));
        }
        // Calls cluster: several close together (double clicks, concurrent
        // callers of one intent), the rest spread over the run.
        let calls = rng.range(1, 16);
        let mut at = 0;
        for _ in 0..calls {
            at = if rng.chance(0.5) {
                at + rng.range(0, 2_000)
            } else {
                rng.range(0, horizon)
            };
            let patience = rng.chance(0.3).then(|| rng.range(0, 10_000));
            happenings.push((
                at,
                Happening::Call {
                    slot: rng.range(0, slots) as usize,
                    intent: rng.range(0, intents.len() as u64) as usize,
                    patience,
                    own_auth: rng.chance(0.3),
                },
            ));
        }
        for _ in 0..rng.range(0, 4) {
            let at = rng.range(0, horizon);
            let slot = rng.range(0, slots) as usize;
            happenings.push((at, Happening::Crash { slot }));
        }
        for _ in 0..rng.range(0, 3) {
            let at = rng.range(0, horizon);
            let downtime = rng.range(0, 30_000);
            happenings.push((at, Happening::ServerRestart { downtime }));
        }
        let mut stalled = 0;
        if fleet {
            for _ in 0..rng.range(1, 4) {
                let at = rng.range(0, horizon);
                let slot = rng.range(0, slots) as usize;
                let ms = rng.range(crate::disk::LEASE / 2, 4 * crate::disk::LEASE);
                stalled += ms;
                happenings.push((at, Happening::Stall { slot, ms }));
            }
        }
        let mut backward = 0;
        if CLOCK_JUMPS {
            for _ in 0..rng.range(0, 3) {
                let at = rng.range(0, horizon);
                let by_ms = if rng.chance(0.5) {
                    // Mostly an NTP step of seconds, sometimes far ahead.
                    let most = if rng.chance(0.7) { 20_000 } else { horizon };
                    rng.range(1_000, most) as i64
                } else {
                    let by = rng.range(1_000, 120_000);
                    backward += by;
                    -(by as i64)
                };
                happenings.push((at, Happening::ClockJump { by_ms }));
            }
        }
        happenings.push((horizon, Happening::Final));
        // Stable: happenings at one instant keep the order drawn.
        happenings.sort_by_key(|(at, _)| *at);

        let poll_crash = if rng.chance(0.5) {
            rng.unit() * 0.5
        } else {
            0.0
        };
        let restart_within = rng.pick(&[1_000, 30_000, horizon / 2, horizon]);
        Scenario {
            seed,
            intents,
            policy,
            retention: ms(retention),
            server_retention: retention + backward + 2 * network.latency.1 + 1_000,
            network,
            server,
            credentials,
            poll_crash,
            restart_within,
            horizon,
            happenings,
            backward,
            fleet,
            stalled,
        }
    }

    /// How long any one call may take: a flight's deadline (stretched by
    /// backward clock jumps, since the deadline is read on the wall clock),
    /// plus the retention, plus slack for the last attempt and latency.
    pub fn call_bound(&self) -> u64 {
        let policy = &self.policy;
        policy.deadline.as_millis() as u64
            + self.retention.as_millis() as u64
            + self.backward
            + policy.attempt_timeout.as_millis() as u64
            + self.stalled
            + 60_000
    }
}
