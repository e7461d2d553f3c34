//! The runtime seam: time, sleeping, spawning and randomness.
//!
//! The core never names tokio or the browser; it asks this module. Natively
//! futures are `Send` and run on tokio; in the browser they are `?Send` and run
//! on the page's event loop. [`Clock`] and [`Random`] are injectable
//! ([`ClientBuilder::clock`](crate::ClientBuilder::clock),
//! [`ClientBuilder::random`](crate::ClientBuilder::random)) so tests of backoff
//! and expiry never sleep and never depend on luck.

use crate::prelude::*;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;

if_native! {
    mod native;
    pub use native::{SystemClock, spawn, until_online};
    pub(crate) use futures_util::future::join_all;

    /// `Send` natively, where tasks may move between threads; nothing in the browser.
    pub trait MaybeSend: Send {}
    impl<T: Send + ?Sized> MaybeSend for T {}
    /// `Sync` natively; nothing in the browser.
    pub trait MaybeSync: Sync {}
    impl<T: Sync + ?Sized> MaybeSync for T {}
    /// A boxed future: `Send` natively, `?Send` in the browser.
    pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
}

if_browser! {
    mod wasm;
    pub use wasm::{SystemClock, spawn, until_online};
    pub use wasm::{global_property, property};
    pub(crate) use wasm::{describe, is_offline, join_all};
}

if_wasm! {
    /// `Send` natively, where tasks may move between threads; nothing in the browser.
    pub trait MaybeSend {}
    impl<T: ?Sized> MaybeSend for T {}
    /// `Sync` natively; nothing in the browser.
    pub trait MaybeSync {}
    impl<T: ?Sized> MaybeSync for T {}
    /// A boxed future: `Send` natively, `?Send` in the browser.
    pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;
}

/// Wall-clock time and sleeping, as one seam so that a test clock can make a
/// sleep advance time instantly.
pub trait Clock: MaybeSend + MaybeSync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// A source of cryptographically secure random bytes (keys are minted from it,
/// and backoff jitter drawn).
pub trait Random: MaybeSend + MaybeSync + 'static {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]);
}

if_client! {
/// The operating system's CSPRNG (`getrandom`; in the browser
/// `crypto.getRandomValues`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, dest: &mut [u8]) {
        // getrandom fails only where the platform has no entropy source at
        // all; fall back to a time-and-address mix rather than panic, since a
        // key must still be minted (uniqueness matters more than secrecy here).
        if getrandom::fill(dest).is_err() {
            let mut seed = core::ptr::from_ref(dest).addr() as u64 ^ 0x9E37_79B9_7F4A_7C15;
            for byte in dest.iter_mut() {
                seed = splitmix64(&mut seed);
                *byte = seed as u8;
            }
        }
    }
}
}

/// One step of splitmix64: a tiny, well-mixed generator (for fallbacks and
/// test sources; never the only source of a key).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A test source that always draws the largest value just under 1: each
/// jittered delay is its ceiling.
#[cfg(test)]
pub(crate) struct TopRandom;

#[cfg(test)]
impl Random for TopRandom {
    fn fill(&self, dest: &mut [u8]) {
        dest.fill(0xFF);
    }
}

/// A uniform draw in `[0, 1)` from `random`.
pub(crate) fn unit_interval(random: &dyn Random) -> f64 {
    let mut bytes = [0u8; 8];
    random.fill(&mut bytes);
    // 53 random bits: the precision of an f64 mantissa.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}
