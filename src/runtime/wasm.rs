//! The runtime seam in the browser: the page's (or worker's) event loop.

use std::time::Duration;

use super::{BoxFuture, Clock};
use crate::Error;

/// The real clock: `Date.now()` for the time, `setTimeout` for sleeping.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let ms = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
        Box::pin(gloo_timers::future::TimeoutFuture::new(ms))
    }
}

/// Runs `future` to completion in the background, detached from its caller.
///
/// # Errors
/// Never in the browser; the signature matches the native one.
pub fn spawn(future: BoxFuture<'static, ()>) -> Result<(), Error> {
    wasm_bindgen_futures::spawn_local(future);
    Ok(())
}
