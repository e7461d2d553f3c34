//! Simulated client processes: each a real `Client` (and its pilot) over
//! the world's store, network and clock, whose app calls intents and
//! resumes at start-up, and which can crash at any await point.
//!
//! A crash drops the client and every call future at once. Flights the
//! client had moved to tasks of their own (a dropped leading caller hands
//! its flight to one) cannot be dropped from outside, so a crashed process's
//! clock and transport freeze instead: nothing it had in the air makes
//! another step, exactly as if the process were gone.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use oncely::runtime::BoxFuture;
use oncely::{Client, Event, EventKind, Request};
use tokio::task::AbortHandle;

use crate::disk::Disk;
use crate::network::SimTransport;
use crate::scenario::{Entropy, HOOK_FAULTS_AFTER_A_SEND, Rng};
use crate::server::intent_of;
use crate::time::{Alive, Life, WallClock};
use crate::world::{Call, CallKind, End, World};

/// Where every intent is sent.
pub const URL: &str = "https://pay.example/charges";

pub struct Process {
    pub id: u32,
    slot: usize,
    world: Arc<World>,
    alive: Alive,
    client: Mutex<Option<Client>>,
    /// Its call tasks (journal index, task), aborted when it crashes.
    calls: Mutex<Vec<(usize, AbortHandle)>>,
    polls: AtomicU64,
    /// Crashes at this poll of its calls, counted across them all.
    crash_at_poll: Option<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Process {
    /// Starts a process in `slot` unless one runs there; it may be given a
    /// poll at which to crash.
    pub fn launch(world: &Arc<World>, slot: usize, may_crash: bool) -> Option<Arc<Process>> {
        if world.slots()[slot].is_some() {
            return None;
        }
        let id = world.next_process.fetch_add(1, Ordering::Relaxed);
        let (entropy, crash_at_poll) = {
            let mut rng = world.rng();
            let entropy = Rng::new(rng.next());
            let crash =
                (may_crash && rng.chance(world.scenario.poll_crash)).then(|| rng.range(1, 60));
            (entropy, crash)
        };
        let alive: Alive = Life::new(&world.time);
        let scenario = &world.scenario;
        let client = Client::builder()
            .store(Disk {
                world: Arc::clone(world),
                store: world.store.clone(),
                alive: Arc::clone(&alive),
                tokens: Arc::default(),
            })
            .transport(SimTransport {
                world: Arc::clone(world),
                process: id,
                alive: Arc::clone(&alive),
            })
            .clock(WallClock {
                timeline: Arc::clone(&world.time),
                alive: Arc::clone(&alive),
            })
            .random(Entropy(Mutex::new(entropy)))
            .retry(scenario.policy.clone())
            .retention(scenario.retention)
            .secret_header("x-api-secret")
            .credentials(hook(Arc::clone(world)))
            .on_event(narrate(Arc::clone(world), id))
            .build()
            .expect("the simulated client builds");
        let process = Arc::new(Process {
            id,
            slot,
            world: Arc::clone(world),
            alive,
            client: Mutex::new(Some(client)),
            calls: Mutex::default(),
            polls: AtomicU64::new(0),
            crash_at_poll,
        });
        world.slots()[slot] = Some(Arc::clone(&process));
        world.note(format!(
            "p{id} starts in slot {slot} (crash at poll {crash_at_poll:?})"
        ));
        Some(process)
    }

    fn client(&self) -> Option<Client> {
        lock(&self.client).clone()
    }

    /// The app calls intent `intent`; an impatient caller drops its future
    /// after `patience` ms.
    pub fn call(self: &Arc<Self>, intent: usize, patience: Option<u64>, own_auth: bool) {
        let Some(client) = self.client() else { return };
        let intent = self.world.scenario.intents[intent].clone();
        let auth = own_auth.then(|| {
            let token = format!("own_sim_{:016x}", self.world.rng().next());
            self.world.journal().secrets.push(token.clone());
            format!("Bearer {token}")
        });
        let name = intent.name.clone();
        let future = async move {
            let mut request = client
                .intent(intent.name)
                .post(URL)
                .header("content-type", "application/json");
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            End::Answered(vec![request.body(intent.body).send().await])
        };
        let call = self.track(CallKind::Send(name), Box::pin(future));
        if let Some(patience) = patience {
            let world = Arc::clone(&self.world);
            let process = Arc::clone(self);
            tokio::spawn(async move {
                world.time.sleep(Duration::from_millis(patience)).await;
                process.drop_call(call);
            });
        }
    }

    /// The app resumes what earlier runs left pending.
    pub fn resume(self: &Arc<Self>) {
        let Some(client) = self.client() else { return };
        let future = async move {
            match client.resume().await {
                Ok(results) => End::Answered(results),
                Err(error) => End::Broken(format!("resume: {error}")),
            }
        };
        self.track(CallKind::Resume, Box::pin(future));
    }

    /// Runs one call in a task of its own, journalled; returns its index.
    fn track(self: &Arc<Self>, kind: CallKind, future: BoxFuture<'static, End>) -> usize {
        let world = &self.world;
        let index = {
            let mut journal = world.journal();
            journal.calls.push(Call {
                process: self.id,
                kind: kind.clone(),
                started: world.time.now(),
                ended: 0,
                end: End::Running,
            });
            journal.calls.len() - 1
        };
        world.note(format!("p{} call #{index} {kind}", self.id));
        let tracked = Tracked {
            process: Arc::clone(self),
            index,
            future: Box::pin(AssertUnwindSafe(future).catch_unwind()),
        };
        let task = tokio::spawn(tracked);
        lock(&self.calls).push((index, task.abort_handle()));
        index
    }

    fn end_call(&self, index: usize, end: End) {
        let now = self.world.time.now();
        let mut journal = self.world.journal();
        let call = &mut journal.calls[index];
        if matches!(call.end, End::Running) {
            call.end = end;
            call.ended = now;
        }
    }

    /// An impatient caller stops waiting: its future is dropped.
    fn drop_call(&self, index: usize) {
        let running = matches!(self.world.journal().calls[index].end, End::Running);
        if !running {
            return;
        }
        self.world.note(format!("p{} drops call #{index}", self.id));
        self.end_call(index, End::Dropped);
        let calls = lock(&self.calls);
        if let Some((_, task)) = calls.iter().find(|(i, _)| *i == index) {
            task.abort();
        }
    }

    /// The process dies: its client and every call future are dropped, and
    /// whatever it had in the air freezes. It restarts after a while.
    pub fn crash(self: &Arc<Self>, why: &str) {
        if !self.alive.end() {
            return;
        }
        let world = &self.world;
        world.note(format!("p{} crashes {why}", self.id));
        drop(lock(&self.client).take());
        let calls = std::mem::take(&mut *lock(&self.calls));
        for (index, task) in calls {
            self.end_call(index, End::Crashed);
            task.abort();
        }
        {
            let mut slots = world.slots();
            if slots[self.slot].as_ref().is_some_and(|p| p.id == self.id) {
                slots[self.slot] = None;
            }
        }
        let delay = world.rng().range(0, world.scenario.restart_within + 1);
        let (world, slot) = (Arc::clone(world), self.slot);
        tokio::spawn(async move {
            world.time.sleep(Duration::from_millis(delay)).await;
            // Past the schedule's end no process crashes at a poll again, so
            // the run ends.
            let may_crash = world.time.now() < world.scenario.horizon;
            if let Some(process) = Process::launch(&world, slot, may_crash) {
                process.resume();
                // The app, back up, asks again for some of what it wanted.
                for intent in 0..world.scenario.intents.len() {
                    if world.rng().chance(0.5) {
                        process.call(intent, None, false);
                    }
                }
            }
        });
    }

    /// The process stalls for `ms` (a pause, `SIGSTOP`): nothing of it
    /// steps meanwhile, then it goes on where it was.
    pub fn stall(&self, ms: u64) {
        self.world.note(format!("p{} stalls for {ms} ms", self.id));
        self.alive.stall(ms);
    }

    /// Drops the client: the end of the run.
    pub fn release(&self) {
        drop(lock(&self.client).take());
        lock(&self.calls).clear();
    }
}

/// A call's future, counted poll by poll so that its process can crash at
/// any await point, and journalled when it ends.
struct Tracked {
    process: Arc<Process>,
    index: usize,
    future: BoxFuture<'static, std::thread::Result<End>>,
}

impl Future for Tracked {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let process = Arc::clone(&self.process);
        if process.alive.halted(cx) {
            return Poll::Pending;
        }
        let polls = process.polls.fetch_add(1, Ordering::Relaxed) + 1;
        if process.crash_at_poll == Some(polls) {
            process.crash(&format!("at poll {polls}"));
            return Poll::Pending;
        }
        let end = match self.future.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(end)) => end,
            Poll::Ready(Err(panic)) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                End::Broken(format!("panicked: {message}"))
            }
        };
        process.world.note(format!(
            "p{} call #{} ends: {}",
            process.id,
            self.index,
            describe(&end)
        ));
        process.end_call(self.index, end);
        Poll::Ready(())
    }
}

/// A call's end, briefly, for the trace.
pub fn describe(end: &End) -> String {
    match end {
        End::Answered(results) => results
            .iter()
            .map(|result| match result {
                Ok(outcome) => format!(
                    "{} {} {} replayed {}",
                    outcome.intent(),
                    outcome.status(),
                    String::from_utf8_lossy(outcome.body()),
                    outcome.replayed()
                ),
                Err(error) => format!(
                    "{} {:?}: {}",
                    error.intent().unwrap_or("?"),
                    error.kind(),
                    error.message()
                ),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => format!("{other:?}"),
    }
}

/// The credentials hook: fresh secrets per attempt, and, as the scenario
/// says, sometimes nothing or a header HTTP refuses.
fn hook(world: Arc<World>) -> impl Fn(&Request) -> Vec<(String, String)> + Send + Sync + 'static {
    move |request: &Request| {
        let faults = world.scenario.credentials;
        let intent = intent_of(&request.body);
        let may_fail =
            HOOK_FAULTS_AFTER_A_SEND || !world.journal().sent.iter().any(|s| s.intent == intent);
        let (invalid, missing, token, api) = {
            let mut rng = world.rng();
            (
                rng.chance(faults.invalid) && may_fail,
                rng.chance(faults.missing) && may_fail,
                format!("sk_sim_{:016x}", rng.next()),
                format!("ak_sim_{:016x}", rng.next()),
            )
        };
        if invalid {
            world.note("credentials hook fails");
            world.journal().secrets.push(token.clone());
            return vec![("authorization".into(), format!("Bearer {token}\n"))];
        }
        if missing {
            world.note("credentials hook returns nothing");
            return Vec::new();
        }
        world.journal().secrets.extend([token.clone(), api.clone()]);
        vec![
            ("authorization".into(), format!("Bearer {token}")),
            ("x-api-secret".into(), api),
        ]
    }
}

/// Every client event into the trace.
fn narrate(world: Arc<World>, process: u32) -> impl Fn(&Event) + Send + Sync + 'static {
    move |event: &Event| {
        let what = match &event.kind {
            EventKind::Attempt { number } => format!("attempt {number}"),
            EventKind::RetryScheduled { delay, reason, .. } => {
                format!("retry in {} ({reason})", delay.as_millis())
            }
            EventKind::Settled { status, attempts } => format!("settled {status} after {attempts}"),
            EventKind::Failed { error } => {
                format!("failed {:?}: {}", error.kind(), error.message())
            }
            other => format!("{other:?}"),
        };
        world.note(format!(
            "p{process} {} @{}: {what}",
            event.intent, event.at_ms
        ));
    }
}
