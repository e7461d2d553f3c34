//! One seed, run: the world built from its scenario, driven on a
//! single-threaded tokio runtime over virtual time, then checked.

use std::sync::Arc;

use futures_util::FutureExt;
use oncely::Store;

use crate::invariants;
use crate::process::Process;
use crate::scenario::{Happening, Scenario};
use crate::time::Timeline;
use crate::world::World;

/// What one seed did.
pub struct Run {
    pub seed: u64,
    pub trace: Vec<String>,
    /// Every way the run broke the promise; empty when it kept it.
    pub violations: Vec<String>,
}

impl Run {
    /// FNV-1a over the trace: a short name for everything that happened.
    pub fn digest(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for line in &self.trace {
            for byte in line.bytes().chain([b'\n']) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        hash
    }
}

/// Runs `seed`; a panic of the simulation itself (not of a client call,
/// which its call reports) is a failure of the seed, not of the whole test.
pub fn run(seed: u64) -> Run {
    std::panic::catch_unwind(|| simulate(seed)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Run {
            seed,
            trace: Vec::new(),
            violations: vec![format!("the simulation panicked: {message}")],
        }
    })
}

fn simulate(seed: u64) -> Run {
    let scenario = Scenario::generate(seed);
    // Well past anything a correct client needs: the last scheduled event,
    // the longest restart, then calls each within their bound.
    let limit = scenario.horizon + 2 * scenario.restart_within + 4 * scenario.call_bound();
    let time = Arc::new(Timeline::new(limit));
    let world = Arc::new(World::new(scenario, Arc::clone(&time)));
    // No timer or I/O driver: the park hook is the clock (see `time`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .on_thread_park({
            let time = Arc::clone(&time);
            move || time.advance()
        })
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(drive(Arc::clone(&world)));
    let overran = time.overran();
    world.release();
    // Drops whatever is still in the air: frozen flights of crashed
    // processes, and, if the run overran, everything else.
    drop(runtime);
    let violations = invariants::check(&world, overran);
    let trace = std::mem::take(&mut world.journal().trace);
    Run {
        seed,
        trace,
        violations,
    }
}

/// Arms every happening at its instant, waits for the world to fall idle,
/// then plays the epilogue.
async fn drive(world: Arc<World>) {
    for (at, happening) in world.scenario.happenings.clone() {
        let world = Arc::clone(&world);
        tokio::spawn(async move {
            world.time.sleep_until(at).await;
            happen(&world, happening);
        });
    }
    world.time.idle().await;
    epilogue(&world).await;
}

/// Once every intent's retention has ended by the machine's clock, the app
/// comes back and asks for all of them: whatever their state, nothing may
/// be sent (the server may have forgotten their keys). Reaches the expiry
/// paths even when no flight of the run meets a retention's end.
async fn epilogue(world: &Arc<World>) {
    let records = world.store.list().now_or_never();
    let Some(Ok(records)) = records else { return };
    let Some(last) = records.iter().map(|r| r.expires_at).max() else {
        return;
    };
    // When the wall clock reads one second past the last retention end.
    let now = world.time.now();
    let wait = i128::from(last) + 1_000 - i128::from(world.time.wall_ms());
    let at = now.saturating_add(u64::try_from(wait).unwrap_or(0));
    world.time.sleep_until(at).await;
    world.note("epilogue: every retention has ended");
    let process = world.slots()[0].clone();
    let Some(process) = process.or_else(|| Process::launch(world, 0, false)) else {
        return;
    };
    process.resume();
    for intent in 0..world.scenario.intents.len() {
        process.call(intent, None, false);
    }
    world.time.idle().await;
}

fn happen(world: &Arc<World>, happening: Happening) {
    let running = |slot: usize| world.slots()[slot].clone();
    match happening {
        Happening::Launch { slot } => {
            if let Some(process) = Process::launch(world, slot, true) {
                process.resume();
            }
        }
        Happening::Call {
            slot,
            intent,
            patience,
            own_auth,
        } => match running(slot) {
            Some(process) => process.call(intent, patience, own_auth),
            None => world.note(format!("slot {slot} is down: no call")),
        },
        Happening::Crash { slot } => {
            if let Some(process) = running(slot) {
                process.crash("at a scheduled instant");
            }
        }
        Happening::Stall { slot, ms } => {
            if let Some(process) = running(slot) {
                process.stall(ms);
            }
        }
        Happening::ServerRestart { downtime } => {
            world.note(format!("server restarts, down for {downtime}"));
            world.server.restart(world.time.now(), downtime);
        }
        Happening::ClockJump { by_ms } => {
            world.note(format!("wall clock jumps {by_ms:+} ms"));
            world.time.jump(by_ms);
        }
        Happening::Final => {
            // The schedule ends: the app (relaunched if it is down, for good
            // this time) resumes and asks for every intent once more.
            let Some(process) = running(0).or_else(|| Process::launch(world, 0, false)) else {
                return;
            };
            process.resume();
            for intent in 0..world.scenario.intents.len() {
                process.call(intent, None, false);
            }
        }
    }
}
