//! The simulated world one seed runs in, and its journal: what every part
//! saw, kept for the invariants and folded into the trace that proves a
//! replay identical.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use oncely::{Error, MemoryStore, Outcome};

use crate::process::Process;
use crate::scenario::{Rng, Scenario};
use crate::server::Server;
use crate::time::{Alive, Timeline};

/// Everything one run shares: the scenario, time, the store (the "disk"
/// every process of the machine opens), the server, the journal and the
/// processes running now.
pub struct World {
    pub scenario: Scenario,
    pub time: Arc<Timeline>,
    pub store: MemoryStore,
    /// The intents' leases on the disk (as `FileStore` keeps them, or in a
    /// fleet `PostgresStore`): who flies each intent now, under which
    /// fencing token.
    pub leases: Mutex<HashMap<String, Lease>>,
    pub next_token: AtomicU64,
    pub server: Server,
    journal: Mutex<Journal>,
    /// Decisions taken as the run goes (network fates, server work).
    rng: Mutex<Rng>,
    /// The process running in each slot, if any.
    pub slots: Mutex<Vec<Option<Arc<Process>>>>,
    pub next_process: AtomicU32,
    /// Print the trace as it is written (`ONCELY_SIM_LIVE=1`): for a run
    /// that never ends, whose trace would otherwise never be seen.
    live: bool,
}

impl World {
    pub fn new(scenario: Scenario, time: Arc<Timeline>) -> World {
        let rng = Rng::new(scenario.seed ^ 0x5EED_5EED_5EED_5EED);
        World {
            scenario,
            time,
            store: MemoryStore::new(),
            leases: Mutex::default(),
            next_token: AtomicU64::new(1),
            server: Server::default(),
            journal: Mutex::default(),
            rng: Mutex::new(rng),
            slots: Mutex::new(vec![None, None]),
            next_process: AtomicU32::new(0),
            live: std::env::var_os("ONCELY_SIM_LIVE").is_some(),
        }
    }

    pub fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn leases(&self) -> MutexGuard<'_, HashMap<String, Lease>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn rng(&self) -> MutexGuard<'_, Rng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a line to the trace, stamped with true time.
    pub fn note(&self, line: impl AsRef<str>) {
        let now = self.time.now();
        if self.live {
            eprintln!("{now:>9} {}", line.as_ref());
        }
        self.journal()
            .trace
            .push(format!("{now:>9} {}", line.as_ref()));
    }

    /// Ends the run's reference cycles (processes hold clients that hold the
    /// world) so nothing of it outlives the run.
    pub fn release(&self) {
        let processes: Vec<_> = self.slots().iter_mut().filter_map(Option::take).collect();
        for process in processes {
            process.release();
        }
    }

    pub fn slots(&self) -> MutexGuard<'_, Vec<Option<Arc<Process>>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A process's lease on an intent.
pub struct Lease {
    pub holder: Alive,
    pub token: u64,
}

/// One attempt as it left a client.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: u64,
    /// The client's wall clock when it sent.
    pub wall_ms: u64,
    pub process: u32,
    pub intent: String,
    /// The `Idempotency-Key` header, as sent.
    pub key: String,
    /// Whether the intent was recorded (under this key) when it left.
    pub recorded: bool,
}

/// What a call is for.
#[derive(Debug, Clone)]
pub enum CallKind {
    Send(String),
    Resume,
}

impl std::fmt::Display for CallKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallKind::Send(intent) => write!(f, "send {intent}"),
            CallKind::Resume => f.write_str("resume"),
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone)]
pub enum End {
    Running,
    /// Its caller dropped it (impatience).
    Dropped,
    /// Its process crashed under it.
    Crashed,
    /// Per intent, what the caller got.
    Answered(Vec<Result<Outcome, Error>>),
    /// The store could not be read (`resume`), or the call panicked.
    Broken(String),
}

#[derive(Debug, Clone)]
pub struct Call {
    pub process: u32,
    pub kind: CallKind,
    pub started: u64,
    pub ended: u64,
    pub end: End,
}

#[derive(Default)]
pub struct Journal {
    pub trace: Vec<String>,
    pub sent: Vec<Sent>,
    pub calls: Vec<Call>,
    /// Every credential value the app or its hook ever handed the client.
    pub secrets: Vec<String>,
}
