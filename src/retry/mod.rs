//! When to retry and how long to wait: three small pieces, each testable
//! alone.
//!
//! - [`classify`]: what a response (or a transport failure) means;
//! - [`Backoff`]: full-jitter exponential delays, an iterator;
//! - [`RetryBudget`]: a token bucket per client, so an outage does not become a
//!   retry storm;
//!
//! plus [`retry_after`], which reads the server's own wish
//! (`Retry-After`, `retry-after-ms`).

mod backoff;
mod budget;
mod classify;
mod retry_after;

use core::time::Duration;

pub use backoff::Backoff;
pub use budget::RetryBudget;
pub use classify::{Attempt, Class, Classifier, ClassifyFn, classify};
pub use retry_after::retry_after;

/// How hard one flight tries.
///
/// # Defaults
/// - `max_attempts`: 8 (attempts answered `409 Conflict` — the server still
///   working on this key — do not count: only the deadline bounds them)
/// - `base_delay`: 500 ms; `max_delay`: 20 s (delay before retry *n* is drawn
///   uniformly from `[0, min(max_delay, base_delay·2ⁿ)]`)
/// - `deadline`: 2 minutes for the whole flight, from its first attempt
/// - `max_retry_after`: 60 s: a server asking to wait longer makes the flight
///   give up (the intent stays recorded) rather than retry early
/// - `attempt_timeout`: 30 s per attempt
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per flight, the first included.
    pub max_attempts: u32,
    /// The first backoff ceiling.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// The time limit for one flight, all attempts and waits included.
    pub deadline: Duration,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// The time limit for one attempt.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            deadline: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}
