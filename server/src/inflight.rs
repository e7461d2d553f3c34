//! Work that must finish before the server stops.
//!
//! Charge processing runs in its own task so that a client hanging up cannot
//! cancel it halfway; `Server::stop` waits for those tasks to drain.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Counts spawned tasks that are still running.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

/// Decrements the count when the task ends, even by panic or abort.
struct Guard(Arc<Inner>);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// Spawns `work` on the current runtime and counts it until it ends.
    pub(crate) fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        let guard = Guard(Arc::clone(&self.inner));
        tokio::spawn(async move {
            let _guard = guard;
            work.await
        })
    }

    /// Resolves once no counted task is running.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            // Register before checking, so a task ending in between still wakes us.
            idle.as_mut().enable();
            if self.inner.running.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}
