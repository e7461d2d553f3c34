//! A few PostgreSQL connections, lent one transaction at a time.
//!
//! A transaction needs a connection of its own, so requests borrow one for
//! each ledger call and give it back when the call ends: a handful serve
//! many concurrent requests, as no request holds one while it sleeps (the
//! `slow_ms` faults) or while its client reads. A connection found closed
//! (the database restarted, the network cut) is dropped and the next
//! borrower opens a new one.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Config;

use super::LedgerError;
use super::postgres::Session;

/// Up to `size` connections, opened on demand and kept.
#[derive(Clone)]
pub(crate) struct Pool {
    config: Arc<Config>,
    idle: Arc<Mutex<Vec<Session>>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    /// A pool of at most `size` connections to `config`, holding `first` already.
    pub(crate) fn new(config: Config, size: usize, first: Session) -> Pool {
        Pool {
            config: Arc::new(config),
            idle: Arc::new(Mutex::new(vec![first])),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// Waits for a free connection, opening one if none is idle.
    pub(crate) async fn get(&self) -> Result<Lent, LedgerError> {
        // The semaphore is never closed.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| LedgerError::Closed)?;
        let idle = loop {
            let popped = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match popped {
                Some(session) if session.client.is_closed() => continue,
                found => break found,
            }
        };
        let session = match idle {
            Some(session) => session,
            None => Session::open(&self.config).await?,
        };
        Ok(Lent {
            session: Some(session),
            idle: Arc::clone(&self.idle),
            _permit: permit,
        })
    }
}

/// A borrowed connection; dropping it gives it back (unless it is closed).
pub(crate) struct Lent {
    session: Option<Session>,
    idle: Arc<Mutex<Vec<Session>>>,
    /// Released after the connection is back, so the next borrower finds it.
    _permit: OwnedSemaphorePermit,
}

impl Deref for Lent {
    type Target = Session;

    fn deref(&self) -> &Session {
        self.session
            .as_ref()
            .expect("only dropping a Lent takes its session")
    }
}

impl DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut Session {
        self.session
            .as_mut()
            .expect("only dropping a Lent takes its session")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        // Nothing panics while holding this lock; a poisoned list is still a list.
        if let Some(session) = self.session.take()
            && !session.client.is_closed()
        {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(session);
        }
    }
}
