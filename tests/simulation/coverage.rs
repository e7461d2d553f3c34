//! What the seeds reached: how many runs met each fault and each path of the
//! client, so that a simulation that quietly stopped exercising something
//! (a fault never drawn, a path never taken) is noticed, not trusted.

use crate::run::Run;
use crate::scenario::{CLOCK_JUMPS, FLEET_STALLS};

/// Each thing to reach: its name, a piece of a trace line that shows it,
/// and whether today's gates let it happen.
const SIGHTS: &[(&str, &str, bool)] = &[
    (
        "request lost (refused)",
        "could not connect: connection refused",
        true,
    ),
    (
        "answer lost (reset)",
        "connection reset before the answer",
        true,
    ),
    ("attempt timed out", "timed out:", true),
    ("gateway 502/504", "(status 50", true),
    ("409 in progress", "server 409", true),
    ("429/503 Retry-After in seconds", "(seconds)", true),
    ("429/503 Retry-After as an HTTP-date", "(HTTP-date)", true),
    (
        "Retry-After too long: gave up",
        "longer than max_retry_after",
        true,
    ),
    ("deadline: gave up", "would pass the", true),
    ("server restart lost work", "lost its work", true),
    ("server down", "(restarting)", true),
    ("server declined (402)", "\": 402", true),
    ("crash at a poll", "crashes at poll", true),
    (
        "crash at an instant",
        "crashes at a scheduled instant",
        true,
    ),
    ("duplicate process", "starts in slot 1", true),
    ("caller dropped early", "drops call", true),
    ("joined a flight", ": Joined", true),
    ("replayed from the store", "replayed true", true),
    ("expired, never sent", "Expired:", true),
    ("wall clock forward", "jumps +", CLOCK_JUMPS),
    ("wall clock backward", "jumps -", CLOCK_JUMPS),
    ("hook returned nothing", "hook returns nothing", true),
    ("hook failed", "hook fails", true),
    ("a fleet replica stalled", "stalls for", FLEET_STALLS),
    (
        "a stalled replica taken over, its write fenced",
        "took the intent over",
        FLEET_STALLS,
    ),
];

/// How many runs showed each sight.
#[derive(Default)]
pub struct Coverage {
    runs: u64,
    seen: Vec<u64>,
}

impl Coverage {
    pub fn add(&mut self, run: &Run) {
        self.runs += 1;
        self.seen.resize(SIGHTS.len(), 0);
        for (count, (_, needle, _)) in self.seen.iter_mut().zip(SIGHTS) {
            if run.trace.iter().any(|line| line.contains(needle)) {
                *count += 1;
            }
        }
    }

    pub fn report(&self) -> String {
        SIGHTS
            .iter()
            .zip(&self.seen)
            .map(|((name, _, on), count)| {
                let gate = if *on { "" } else { " (gated off)" };
                format!("  {count:>7} runs: {name}{gate}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The sights today's gates allow that no run reached.
    pub fn missed(&self) -> Vec<&'static str> {
        SIGHTS
            .iter()
            .zip(&self.seen)
            .filter(|((_, _, on), count)| *on && **count == 0)
            .map(|((name, ..), _)| *name)
            .collect()
    }
}
