//! The runtime seam on native targets: tokio.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{BoxFuture, Clock};
use crate::Error;

/// The real clock: `SystemTime` for the time, tokio for sleeping.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Runs `future` to completion in the background, detached from its caller.
///
/// # Errors
/// When called outside a tokio runtime.
pub fn spawn(future: BoxFuture<'static, ()>) -> Result<(), Error> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::invalid_input("oncely needs a tokio runtime: call it from inside one (e.g. #[tokio::main])")
    })?;
    handle.spawn(future);
    Ok(())
}

/// Natively there is no "offline" to wait out: an attempt fails and is
/// retried like any other.
pub fn until_online() -> Option<BoxFuture<'static, ()>> {
    None
}
