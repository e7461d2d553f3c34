//! Intent leases: one process (one open [`FileStore`](super::FileStore)) at
//! a time flies an intent.
//!
//! A lease is a row of the `leases` table: the intent's name, its holder
//! and when it ends. The writer thread takes, renews and gives back leases
//! in its transactions (`BEGIN IMMEDIATE`: atomic across processes), so a
//! lease needs no clock or runtime of the caller's: the lock future only
//! waits for the writer's answer.
//!
//! A holder is taken over when its lease ends (a stalled or suspended
//! process stops renewing), or at once when it is a process of this
//! machine that no longer exists (a `SIGKILL`ed run, so `oncely resume`
//! right after it does not wait out the lease). A process is known dead
//! only where that is certain: the same boot, the same PID namespace, and
//! no `/proc/<pid>`. Anything else counts as alive, so a mistake only makes
//! a process wait for the lease to end.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_channel::oneshot;
use rusqlite::{Connection, OptionalExtension, params};

use super::{is_busy, sql_error};
use crate::Error;
use crate::runtime::{OsRandom, Random};

/// How often a waiting lock asks again.
const RETRY: Duration = Duration::from_millis(25);

/// A lock asked for, waiting for its lease.
pub(super) struct Waiter {
    pub name: String,
    pub reply: oneshot::Sender<Result<(), Error>>,
}

/// The leases one open store holds, and the locks waiting for one. Owned by
/// the writer thread.
pub(super) struct Leases {
    /// This store's holder name (see [`holder`]).
    me: String,
    /// This machine, as holders name it (`None` where it cannot be told).
    machine: Option<String>,
    duration: Duration,
    held: HashSet<String>,
    waiting: Vec<Waiter>,
    releasing: Vec<String>,
    next_renewal: Instant,
    /// Something to do at once (a lock asked, a lease given back).
    due: bool,
}

impl Leases {
    pub fn new(duration: Duration) -> Leases {
        let machine = machine();
        let mut nonce = [0u8; 8];
        OsRandom.fill(&mut nonce);
        let me = format!(
            "{}/{}/{:016x}",
            machine.as_deref().unwrap_or("?"),
            std::process::id(),
            u64::from_le_bytes(nonce)
        );
        Leases {
            me,
            machine,
            duration,
            held: HashSet::new(),
            waiting: Vec::new(),
            releasing: Vec::new(),
            next_renewal: Instant::now(),
            due: false,
        }
    }

    pub fn want(&mut self, waiter: Waiter) {
        self.waiting.push(waiter);
        self.due = true;
    }

    pub fn give_back(&mut self, name: String) {
        self.releasing.push(name);
        self.due = true;
    }

    /// How long the writer may sleep before [`work`](Self::work) has
    /// something to do; `None`: until a message comes.
    pub fn wake_in(&self, now: Instant) -> Option<Duration> {
        if self.due {
            return Some(Duration::ZERO);
        }
        let renew = (!self.held.is_empty()).then(|| self.next_renewal.saturating_duration_since(now));
        let retry = (!self.waiting.is_empty()).then_some(RETRY);
        match (renew, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether [`work`](Self::work) has anything to do now.
    pub fn has_work(&self, now: Instant) -> bool {
        self.due || !self.waiting.is_empty() || (!self.held.is_empty() && now >= self.next_renewal)
    }

    /// Inside the writer's transaction: gives back, renews and takes
    /// leases. Returns the waiters granted a lease (to answer once the
    /// transaction commits); those that failed are answered now.
    pub fn work(&mut self, c: &Connection, now: Instant) -> Vec<Waiter> {
        self.due = false;
        let wall = wall_ms();
        let until = wall.saturating_add(self.duration.as_millis() as i64);
        for name in std::mem::take(&mut self.releasing) {
            self.held.remove(&name);
            // Failing, the lease ends by itself.
            let _ = c
                .prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")
                .and_then(|mut s| s.execute(params![name, self.me]));
        }
        if !self.held.is_empty() && now >= self.next_renewal {
            let renewed = c
                .prepare_cached("UPDATE leases SET until = ?1 WHERE holder = ?2")
                .and_then(|mut s| s.execute(params![until, self.me]));
            if renewed.is_ok() {
                self.next_renewal = now + self.duration / 4;
            }
        }
        let was_empty = self.held.is_empty();
        let mut granted = Vec::new();
        for waiter in std::mem::take(&mut self.waiting) {
            if waiter.reply.is_canceled() {
                continue;
            }
            if self.held.contains(&waiter.name) {
                self.waiting.push(waiter);
                continue;
            }
            match self.take(c, &waiter.name, wall, until) {
                Ok(true) => {
                    self.held.insert(waiter.name.clone());
                    granted.push(waiter);
                }
                Ok(false) => self.waiting.push(waiter),
                Err(error) if is_busy(&error) => self.waiting.push(waiter),
                Err(error) => {
                    let _ = waiter.reply.send(Err(sql_error(error)));
                }
            }
        }
        if was_empty && !self.held.is_empty() {
            self.next_renewal = now + self.duration / 4;
        }
        granted
    }

    /// After the transaction: answers the granted waiters (a lease whose
    /// waiter left meanwhile is given back), or on a failed commit, tells
    /// them why.
    pub fn answer(&mut self, granted: Vec<Waiter>, commit: &Result<(), Error>) {
        for waiter in granted {
            match commit {
                Ok(()) => {
                    if waiter.reply.send(Ok(())).is_err() {
                        self.give_back(waiter.name);
                    }
                }
                Err(error) => {
                    self.held.remove(&waiter.name);
                    let _ = waiter.reply.send(Err(error.clone()));
                }
            }
        }
    }

    /// Gives back every lease held (the store is closing).
    pub fn close(&mut self, c: &Connection) {
        if !self.held.is_empty() {
            let _ = c.execute("DELETE FROM leases WHERE holder = ?1", [&self.me]);
        }
    }

    /// Takes the lease of `name` when nobody holds it, its lease has ended,
    /// or its holder is a process of this machine that is gone.
    fn take(&self, c: &Connection, name: &str, wall: i64, until: i64) -> rusqlite::Result<bool> {
        let current: Option<(String, i64)> = c
            .prepare_cached("SELECT holder, until FROM leases WHERE name = ?1")?
            .query_row([name], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((holder, ends)) = current {
            if holder != self.me && ends > wall && !self.is_gone(&holder) {
                return Ok(false);
            }
        }
        c.prepare_cached(
            "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until",
        )?
        .execute(params![name, self.me, until])?;
        Ok(true)
    }

    /// Whether `holder` is certainly a process that no longer exists.
    fn is_gone(&self, holder: &str) -> bool {
        let Some(machine) = &self.machine else {
            return false;
        };
        let Some((of, rest)) = holder.rsplit_once('/').and_then(|(rest, _nonce)| rest.rsplit_once('/')) else {
            return false;
        };
        let Ok(pid) = rest.parse::<u32>() else {
            return false;
        };
        of == machine && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }
}

/// This boot of this machine and this PID namespace, where Linux tells
/// them (`None` elsewhere: no holder is then ever known to be gone).
fn machine() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    std::path::Path::new(&format!("/proc/{}", std::process::id()))
        .exists()
        .then(|| format!("{}:{}", boot.trim(), namespace.to_string_lossy()))
}

fn wall_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
