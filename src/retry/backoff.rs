use alloc::sync::Arc;
use core::time::Duration;

use crate::runtime::{Random, unit_interval};

/// Exponential backoff with full jitter: the delay before retry `n` (from 0)
/// is drawn uniformly from `[0, min(max, base·2ⁿ)]`.
///
/// Full jitter spreads a crowd of clients that failed together, so they do not
/// come back together.
///
/// # Examples
/// ```
/// use std::{sync::Arc, time::Duration};
/// let delays = oncely::retry::Backoff::new(
///     Duration::from_millis(500),
///     Duration::from_secs(20),
///     Arc::new(oncely::runtime::OsRandom),
/// );
/// for (n, delay) in delays.take(8).enumerate() {
///     assert!(delay <= Duration::from_millis(500 << n).min(Duration::from_secs(20)));
/// }
/// ```
pub struct Backoff {
    base: Duration,
    max: Duration,
    retry: u32,
    random: Arc<dyn Random>,
}

impl Backoff {
    /// Delays starting at `base`, capped at `max`, jittered from `random`.
    pub fn new(base: Duration, max: Duration, random: Arc<dyn Random>) -> Backoff {
        Backoff {
            base,
            max,
            retry: 0,
            random,
        }
    }

    /// The ceiling of the next delay.
    pub fn ceiling(&self) -> Duration {
        // `base` doubled up to 31 times, saturating: the same as multiplying
        // by 2^n, without the overflow-checked multiplication that costs
        // the npm package's WebAssembly a 128-bit helper.
        let mut ceiling = self.base;
        for _ in 0..self.retry.min(31) {
            if ceiling >= self.max {
                break;
            }
            ceiling = ceiling.saturating_add(ceiling);
        }
        ceiling.min(self.max)
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let ceiling = self.ceiling();
        self.retry = self.retry.saturating_add(1);
        // To the nearest nanosecond, without `Duration::mul_f64`'s checks
        // (the draw is in [0, 1): the result never exceeds the ceiling).
        let nanos = ceiling.as_secs_f64() * 1e9 * unit_interval(self.random.as_ref());
        Some(Duration::from_nanos((nanos + 0.5) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::TopRandom;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn ceiling_doubles_then_caps() {
        let mut backoff = Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(4),
            Arc::new(TopRandom),
        );
        let ceilings = [500, 1000, 2000, 4000, 4000, 4000].map(Duration::from_millis);
        for ceiling in ceilings {
            // The top draw lands at the ceiling, never above.
            let delay = backoff.next().unwrap_or_default();
            assert!(
                delay <= ceiling && delay > ceiling.mul_f64(0.999),
                "{delay:?} vs {ceiling:?}"
            );
        }
    }

    #[test]
    fn ceiling_is_base_times_a_power_of_two_saturated_and_capped() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(500),
            Duration::new(3, 999_999_999),
            Duration::from_secs(u64::MAX >> 20),
            Duration::MAX,
        ];
        for base in durations {
            for max in durations {
                let mut backoff = Backoff::new(base, max, Arc::new(TopRandom));
                for retry in [0, 1, 2, 30, 31, 32, 200, u32::MAX] {
                    backoff.retry = retry;
                    let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
                    let expected = base.saturating_mul(factor).min(max);
                    assert_eq!(backoff.ceiling(), expected, "{base:?} {max:?} {retry}");
                }
            }
        }
    }

    #[test]
    fn huge_retry_counts_do_not_overflow() {
        let mut backoff = Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(20),
            Arc::new(TopRandom),
        );
        let last = backoff.nth(200).unwrap_or_default();
        assert!(last <= Duration::from_secs(20));
    }
}
