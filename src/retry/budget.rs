use core::time::Duration;

/// A token bucket shared by every flight of one client: each retry reserves a
/// token; tokens come back at a steady rate. When the bucket is empty a retry
/// waits for its token, so an outage does not become a retry storm: however
/// many flights are failing, retries leave at the refill rate.
///
/// Kept apart from the backoff policy (as tower keeps its budget apart from
/// its policy): the policy says how long *this* flight waits, the budget how
/// much retrying the *client* does in all.
///
/// # Defaults
/// 100 tokens, refilled at 10 per second.
#[derive(Debug)]
pub struct RetryBudget {
    capacity: f64,
    per_ms: f64,
    bucket: Shared,
}

/// The bucket behind a mutex natively; in the browser, where one thread runs
/// everything (and the npm package's core has no `std`), in a cell.
#[derive(Debug)]
struct Shared(
    #[cfg(not(target_arch = "wasm32"))] std::sync::Mutex<Bucket>,
    #[cfg(target_arch = "wasm32")] core::cell::Cell<Bucket>,
);

impl Shared {
    #[cfg(not(target_arch = "wasm32"))]
    fn with<R>(&self, change: impl FnOnce(&mut Bucket) -> R) -> R {
        change(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A copy of the bucket, changed and put back: a `Cell` ships no
    /// borrow flag and no panic path.
    #[cfg(target_arch = "wasm32")]
    fn with<R>(&self, change: impl FnOnce(&mut Bucket) -> R) -> R {
        let mut bucket = self.0.get();
        let changed = change(&mut bucket);
        self.0.set(bucket);
        changed
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Negative when retries have reserved tokens not yet refilled.
    tokens: f64,
    at_ms: Option<u64>,
}

impl Default for RetryBudget {
    fn default() -> RetryBudget {
        RetryBudget::new(100, 10.0)
    }
}

impl RetryBudget {
    /// A full bucket of `capacity` tokens refilled at `per_second`.
    pub fn new(capacity: u32, per_second: f64) -> RetryBudget {
        let capacity = f64::from(capacity.max(1));
        let per_second = if per_second.is_finite() {
            per_second.max(1e-6)
        } else {
            1e-6
        };
        RetryBudget {
            capacity,
            per_ms: per_second / 1000.0,
            bucket: Shared(
                Bucket {
                    tokens: capacity,
                    at_ms: None,
                }
                .into(),
            ),
        }
    }

    /// Reserves a token at `now_ms`; returns how long until it is really
    /// available (zero when the bucket had one).
    pub fn reserve(&self, now_ms: u64) -> Duration {
        let tokens = self.bucket.with(|bucket| {
            let elapsed = bucket.at_ms.map_or(0, |at| now_ms.saturating_sub(at));
            bucket.tokens = (bucket.tokens + elapsed as f64 * self.per_ms).min(self.capacity);
            bucket.at_ms = Some(now_ms.max(bucket.at_ms.unwrap_or(0)));
            bucket.tokens -= 1.0;
            bucket.tokens
        });
        if tokens >= 0.0 {
            return Duration::ZERO;
        }
        // The ceiling, by hand: `f64::ceil` needs `std`.
        let wait = -tokens / self.per_ms;
        let whole = wait as u64;
        Duration::from_millis(if (whole as f64) < wait {
            whole + 1
        } else {
            whole
        })
    }

    /// Gives back a reserved token that was not used (the flight gave up
    /// instead of retrying).
    pub fn refund(&self) {
        self.bucket
            .with(|bucket| bucket.tokens = (bucket.tokens + 1.0).min(self.capacity));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn empties_then_spaces_retries_at_the_refill_rate() {
        let budget = RetryBudget::new(2, 1.0);
        assert_eq!(budget.reserve(0), Duration::ZERO);
        assert_eq!(budget.reserve(0), Duration::ZERO);
        assert_eq!(budget.reserve(0), Duration::from_secs(1));
        assert_eq!(budget.reserve(0), Duration::from_secs(2));
        budget.refund();
        assert_eq!(budget.reserve(500), Duration::from_millis(1500));
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let budget = RetryBudget::new(2, 1.0);
        assert_eq!(budget.reserve(1_000_000), Duration::ZERO);
        assert_eq!(budget.reserve(1_000_000), Duration::ZERO);
        assert_eq!(budget.reserve(1_000_000), Duration::from_secs(1));
    }
}
