//! Virtual time: timers that fire only when nothing else can run.
//!
//! The tokio runtime of a run has no timer driver (the crate's tokio lacks
//! `test-util`, so `start_paused` is out of reach). Instead its
//! `on_thread_park` hook calls [`Timeline::advance`]: tokio calls it only when
//! no task is runnable, so time jumps to the next timer exactly when the
//! system is idle, as a paused tokio clock would. Timers at one instant fire in
//! the order they were armed, so a run is the same every time.
//!
//! Time here is the true, monotonic time of the simulated world (ms from the
//! start of the run). A machine's wall clock, which can jump, is
//! [`WallClock`]: what a `Client` reads as `now_ms`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use oncely::runtime::{BoxFuture, Clock};

/// The wall clock's reading at the start of every run (2023-11-14T22:13:20Z):
/// fixed, so HTTP-dates and keys minted from the time are the same each run.
pub const EPOCH_MS: u64 = 1_700_000_000_000;

#[derive(Default)]
struct State {
    now: u64,
    next_seq: u64,
    /// Armed timers by (instant, arming order): the order timers fire in.
    timers: BTreeMap<(u64, u64), Waker>,
    /// What the run's driver awaits: the world idle, or out of time.
    idle: bool,
    idle_waiter: Option<Waker>,
    /// Past this instant the run stops however busy it is (a client that
    /// never stops retrying must not hang the test).
    limit: u64,
    /// The wall clock's distance from true time (clock jumps move it).
    offset: i64,
}

/// The world's time and its timers.
pub struct Timeline {
    state: Mutex<State>,
}

impl Timeline {
    /// A timeline at 0 that [`advance`](Self::advance)s no further than `limit`.
    pub fn new(limit: u64) -> Timeline {
        Timeline {
            state: Mutex::new(State {
                limit,
                ..State::default()
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change is made whole under the lock; a panic elsewhere
        // (reported as a violation) leaves sound data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True time, in ms since the run started.
    pub fn now(&self) -> u64 {
        self.state().now
    }

    /// The wall clock, in ms since the Unix epoch.
    pub fn wall_ms(&self) -> u64 {
        let state = self.state();
        (EPOCH_MS + state.now).saturating_add_signed(state.offset)
    }

    /// Moves the wall clock by `by_ms` (an NTP step, a user changing the
    /// time); true time and armed timers are untouched, as with a monotonic
    /// timer.
    pub fn jump(&self, by_ms: i64) {
        self.state().offset += by_ms;
    }

    pub fn sleep(self: &Arc<Self>, duration: Duration) -> Sleep {
        let at = self.now().saturating_add(duration.as_millis() as u64);
        self.sleep_until(at)
    }

    pub fn sleep_until(self: &Arc<Self>, at: u64) -> Sleep {
        Sleep {
            timeline: Arc::clone(self),
            at,
            armed: None,
        }
    }

    /// Completes when the world has nothing left to do (no task runnable, no
    /// timer armed), or has run past its limit.
    pub fn idle(self: &Arc<Self>) -> Idle {
        Idle(Arc::clone(self))
    }

    /// Whether the run was stopped at its limit with work still armed,
    /// rather than ending idle.
    pub fn overran(&self) -> bool {
        !self.state().timers.is_empty()
    }

    /// The runtime's park hook: nothing can run, so move to the next timer
    /// and fire every timer armed for that instant. With no timer left the
    /// world is idle, and the driver is woken to end the run.
    pub fn advance(&self) {
        let mut state = self.state();
        let next = state.timers.first_key_value().map(|(&(at, _), _)| at);
        let due = match next {
            Some(at) if at <= state.limit => {
                state.now = state.now.max(at);
                let later = state.timers.split_off(&(at + 1, 0));
                std::mem::replace(&mut state.timers, later)
            }
            _ => {
                state.idle = true;
                let Some(waiter) = state.idle_waiter.take() else {
                    // Nothing can ever wake anything again: tokio would park
                    // this thread forever. Only a driver that stopped
                    // awaiting `idle` gets here.
                    panic!("the simulation deadlocked: no timer, no task, no driver");
                };
                drop(state);
                waiter.wake();
                return;
            }
        };
        // The driver too: a timer may wake only a task that cannot move (a
        // crashed process's), and tokio, finding nothing to run, would park
        // for good without calling this hook again.
        let driver = state.idle_waiter.take();
        drop(state);
        due.into_values().chain(driver).for_each(Waker::wake);
    }
}

/// A virtual sleep, armed at its first poll and disarmed when dropped.
pub struct Sleep {
    timeline: Arc<Timeline>,
    at: u64,
    armed: Option<(u64, u64)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = this.timeline.state();
        if state.now >= this.at {
            if let Some(slot) = this.armed.take() {
                state.timers.remove(&slot);
            }
            return Poll::Ready(());
        }
        let slot = *this.armed.get_or_insert_with(|| {
            state.next_seq += 1;
            (this.at, state.next_seq)
        });
        state.timers.insert(slot, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(slot) = self.armed.take() {
            self.timeline.state().timers.remove(&slot);
        }
    }
}

pub struct Idle(Arc<Timeline>);

impl Future for Idle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.state();
        if std::mem::take(&mut state.idle) {
            return Poll::Ready(());
        }
        state.idle_waiter = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Whether a simulated process is still running. A crashed process's futures
/// stop where they are: nothing it had in the air makes another step. A
/// stalled one (a pause, `SIGSTOP`) makes no step until its stall ends.
pub type Alive = Arc<Life>;

pub struct Life {
    running: AtomicBool,
    /// True time from which the process is stalled, and until when.
    stalled_from: AtomicU64,
    stalled_until: AtomicU64,
    /// Who waits for the stall to end.
    waiting: Mutex<Vec<Waker>>,
    time: Arc<Timeline>,
}

impl Life {
    pub fn new(time: &Arc<Timeline>) -> Alive {
        Arc::new(Life {
            running: AtomicBool::new(true),
            stalled_from: AtomicU64::new(0),
            stalled_until: AtomicU64::new(0),
            waiting: Mutex::default(),
            time: Arc::clone(time),
        })
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Ends the process; `false` if it had ended already.
    pub fn end(&self) -> bool {
        self.running.swap(false, Ordering::SeqCst)
    }

    /// Whether a lease of `lease` ms this process holds has lapsed at
    /// `now`: it ended, or it has been stalled that long (renewing nothing).
    pub fn lease_lapsed(&self, now: u64, lease: u64) -> bool {
        let (from, until) = (
            self.stalled_from.load(Ordering::SeqCst),
            self.stalled_until.load(Ordering::SeqCst),
        );
        !self.is_running() || (now < until && now >= from + lease)
    }

    /// Stalls the process for `ms` from now: its futures make no step until
    /// then (the world goes on).
    pub fn stall(self: &Arc<Self>, ms: u64) {
        let now = self.time.now();
        let until = now + ms;
        self.stalled_from.store(now, Ordering::SeqCst);
        self.stalled_until.store(until, Ordering::SeqCst);
        let life = Arc::clone(self);
        tokio::spawn(async move {
            life.time.sleep_until(until).await;
            let waiting =
                std::mem::take(&mut *life.waiting.lock().unwrap_or_else(|e| e.into_inner()));
            for waker in waiting {
                waker.wake();
            }
        });
    }

    /// Whether a future of this process must not step now: it has ended
    /// (for good), or it is stalled (woken when the stall ends).
    pub fn halted(&self, cx: &Context<'_>) -> bool {
        if !self.is_running() {
            return true;
        }
        if self.time.now() < self.stalled_until.load(Ordering::SeqCst) {
            self.waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(cx.waker().clone());
            return true;
        }
        false
    }
}

/// Wraps `future` so that it never completes once `alive` is false: a
/// crashed process's sleeps and sends stay pending for good (its tasks,
/// including flights the client moved to tasks of their own, freeze), while
/// the rest of the world goes on.
pub fn mortal<F: Future>(alive: &Alive, future: F) -> Mortal<F> {
    Mortal {
        alive: Arc::clone(alive),
        future,
    }
}

pub struct Mortal<F> {
    alive: Alive,
    future: F,
}

impl<F: Future + Unpin> Future for Mortal<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if self.alive.halted(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.future).poll(cx)
    }
}

/// The wall clock as one process's `Client` sees it: the machine's clock
/// (jumps included), and sleeps on the monotonic timeline that stop if the
/// process dies.
pub struct WallClock {
    pub timeline: Arc<Timeline>,
    pub alive: Alive,
}

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        self.timeline.wall_ms()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(mortal(&self.alive, self.timeline.sleep(duration)))
    }
}
