//! The ledger: idempotency records and the charges they made, on SQLite
//! ([`sqlite`]) or PostgreSQL ([`postgres`]).
//!
//! Completing a request is ONE transaction that inserts the ledger row and
//! marks its key completed, so a completed key always has its charge and an
//! `in_progress` key never has one.
//!
//! An `in_progress` key is held under a [`Lease`]: until it runs out, other
//! requests with the key get 409; after it, the next request with the same
//! body takes the key over under a new lease token and runs the charge itself.
//! The request it took over may still be running, so two may race to
//! complete: the first commit makes the one charge (the transaction above, and
//! the ledger's `UNIQUE (account, idempotency_key)`), the later one finds the
//! key completed and answers with that outcome. Only releasing a key is fenced
//! by the token, so a request that was taken over cannot free the key under
//! the request that holds it now.
//!
//! Those decisions are made here, once, by [`BeginPlan::decide`] and
//! [`CompletePlan::decide`] from what a backend read inside its transaction;
//! a backend only reads, writes what it is told and commits. Its clock says
//! whether a record expired or a lease runs: the server's for SQLite (one
//! process owns the file), the database's for PostgreSQL (every instance
//! asks the same clock).

mod pool;
mod postgres;
mod sqlite;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::Database;

/// A row of the ledger, and the JSON body of a created charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Charge {
    pub id: i64,
    pub account: String,
    pub idempotency_key: String,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    /// Unix time in milliseconds.
    pub created_at: i64,
}

/// A validated charge request, before it has an id.
#[derive(Debug, Clone)]
pub(crate) struct NewCharge {
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
}

/// A request's hold on an `in_progress` key, from [`Ledger::begin`].
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    account: String,
    key: String,
    fingerprint: [u8; 32],
    /// Unique among the leases of this ledger; a takeover gets a new one.
    token: i64,
}

/// What the idempotency record says about a request about to be processed.
#[derive(Debug)]
pub(crate) enum Begin {
    /// The key was new, or its lease had run out: it is now `in_progress`
    /// under this lease and the caller must [`Ledger::complete`] or
    /// [`Ledger::release`] it.
    Started(Lease),
    /// Another request with this key is still being processed, within its lease.
    InProgress,
    /// The key was first used with a different body.
    Mismatch,
    /// The key completed earlier: replay this outcome.
    Replay { status: u16, body: Vec<u8> },
    /// The key's record expired, but the ledger still has the charge it made.
    Expired,
}

/// How [`Ledger::complete`] ended.
#[derive(Debug)]
pub(crate) enum Completion {
    /// This request committed the charge.
    Charged(Charge),
    /// A request that held the key under another lease committed first:
    /// this is the key's outcome.
    CompletedElsewhere { status: u16, body: Vec<u8> },
}

/// A key's idempotency record, as a backend read it.
#[derive(Debug)]
struct Record {
    fingerprint: Vec<u8>,
    /// `completed`, else `in_progress`.
    completed: bool,
    status: Option<u16>,
    body: Option<Vec<u8>>,
}

impl Record {
    fn outcome(self) -> (u16, Vec<u8>) {
        (self.status.unwrap_or(500), self.body.unwrap_or_default())
    }
}

/// What [`Ledger::begin`] reads about a key, with its backend clock's verdicts.
#[derive(Debug)]
struct Look {
    found: Option<Found>,
    /// The ledger has a charge under this key.
    charged: bool,
}

#[derive(Debug)]
struct Found {
    record: Record,
    /// First used at least the retention ago.
    expired: bool,
    /// Its lease has not run out. False for a record without one: it was not
    /// written by this server, and is fair game.
    leased: bool,
}

/// What `begin` does about a key, in the transaction that read it.
#[derive(Debug)]
struct BeginPlan {
    /// Delete the key's record first: it completed longer ago than the retention.
    forget: bool,
    step: BeginStep,
}

#[derive(Debug)]
enum BeginStep {
    /// Write nothing more; never [`Begin::Started`].
    Answer(Begin),
    /// Its holder hung or is gone: hold the record under a new lease.
    TakeOver,
    /// Record the key `in_progress` under a new lease.
    Record,
}

impl BeginPlan {
    fn decide(look: Look, fingerprint: &[u8; 32]) -> BeginPlan {
        let step = match look.found {
            // Past its retention: forgotten, as if the key were new.
            Some(found) if found.record.completed && found.expired => {
                return BeginPlan {
                    forget: true,
                    step: BeginPlan::unrecorded(look.charged),
                };
            }
            Some(found) if found.record.fingerprint != fingerprint => {
                BeginStep::Answer(Begin::Mismatch)
            }
            Some(found) if found.record.completed => {
                let (status, body) = found.record.outcome();
                BeginStep::Answer(Begin::Replay { status, body })
            }
            Some(found) if found.leased => BeginStep::Answer(Begin::InProgress),
            Some(_) => BeginStep::TakeOver,
            None => BeginPlan::unrecorded(look.charged),
        };
        BeginPlan {
            forget: false,
            step,
        }
    }

    /// A key without a record: new, unless the ledger has its charge.
    fn unrecorded(charged: bool) -> BeginStep {
        if charged {
            BeginStep::Answer(Begin::Expired)
        } else {
            BeginStep::Record
        }
    }
}

/// What `complete` does, in the transaction that read the key's record.
#[derive(Debug)]
enum CompletePlan {
    /// Insert the charge and complete the key.
    Charge,
    /// The key completed under another lease first.
    Answer(Completion),
}

impl CompletePlan {
    fn decide(current: Option<Record>, lease: &Lease) -> Result<CompletePlan, LedgerError> {
        match current {
            // Still this body's request, under this lease or a newer one:
            // whoever commits first makes the charge.
            Some(record) if record.fingerprint == lease.fingerprint => {
                if record.completed {
                    let (status, body) = record.outcome();
                    Ok(CompletePlan::Answer(Completion::CompletedElsewhere {
                        status,
                        body,
                    }))
                } else {
                    Ok(CompletePlan::Charge)
                }
            }
            _ => Err(LedgerError::Released),
        }
    }
}

/// The 201 body a completed key replays.
fn response_body(charge: &Charge) -> Result<Vec<u8>, LedgerError> {
    serde_json::to_vec(charge).map_err(LedgerError::Encode)
}

/// A failure of the ledger; logged in full, shown to clients as a bare 500.
#[derive(Debug)]
pub(crate) enum LedgerError {
    Sqlite(rusqlite::Error),
    Postgres(tokio_postgres::Error),
    /// The PostgreSQL database holds tables this server did not make, or a
    /// schema version it does not know.
    Schema(String),
    Encode(serde_json::Error),
    Task(tokio::task::JoinError),
    /// The `in_progress` record was released (by a request that had taken the
    /// key over) before this request completed it.
    Released,
    /// The PostgreSQL connections were shut.
    Closed,
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Sqlite(e) => write!(f, "sqlite: {e}"),
            LedgerError::Postgres(e) => {
                // tokio-postgres names only the kind ("db error"); the
                // server's message is in its source.
                write!(f, "postgres: {e}")?;
                let mut source = std::error::Error::source(e);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            LedgerError::Schema(why) => f.write_str(why),
            LedgerError::Encode(e) => write!(f, "encoding a response: {e}"),
            LedgerError::Task(e) => write!(f, "blocking task: {e}"),
            LedgerError::Released => {
                f.write_str("the in_progress record was released before completion")
            }
            LedgerError::Closed => f.write_str("the ledger's connections are shut"),
        }
    }
}

impl std::error::Error for LedgerError {}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        LedgerError::Sqlite(e)
    }
}

impl From<tokio_postgres::Error> for LedgerError {
    fn from(e: tokio_postgres::Error) -> Self {
        LedgerError::Postgres(e)
    }
}

/// The ledger database, shared by all requests.
#[derive(Clone)]
pub(crate) enum Ledger {
    Sqlite(sqlite::SqliteLedger),
    Postgres(postgres::PostgresLedger),
}

impl Ledger {
    /// Opens the database, creating its tables if they are missing.
    ///
    /// SQLite forgets the requests that were in progress when the server last
    /// stopped (the file is this process's alone); PostgreSQL leaves them to
    /// their leases, as other instances may be running them.
    pub(crate) async fn open(db: &Database) -> Result<Ledger, LedgerError> {
        match db {
            Database::Sqlite(path) => {
                let path = path.clone();
                let opened = tokio::task::spawn_blocking(move || sqlite::SqliteLedger::open(&path))
                    .await
                    .map_err(LedgerError::Task)?;
                Ok(Ledger::Sqlite(opened?))
            }
            Database::Postgres(url) => {
                Ok(Ledger::Postgres(postgres::PostgresLedger::open(url).await?))
            }
        }
    }

    /// Looks the key up and, if it is new or its lease has run out, records
    /// it `in_progress` under a lease of `lease` from now.
    ///
    /// A completed record older than `retention` counts as absent.
    pub(crate) async fn begin(
        &self,
        account: String,
        key: String,
        fingerprint: [u8; 32],
        retention: Duration,
        lease: Duration,
    ) -> Result<Begin, LedgerError> {
        match self {
            Ledger::Sqlite(db) => db.begin(account, key, fingerprint, retention, lease).await,
            Ledger::Postgres(db) => db.begin(account, key, fingerprint, retention, lease).await,
        }
    }

    /// Inserts the charge and completes its key with the 201 response,
    /// atomically — unless a request that took the key over (or was taken
    /// over) completed it first, whose outcome is returned instead.
    pub(crate) async fn complete(
        &self,
        lease: &Lease,
        charge: NewCharge,
    ) -> Result<Completion, LedgerError> {
        match self {
            Ledger::Sqlite(db) => db.complete(lease, charge).await,
            Ledger::Postgres(db) => db.complete(lease, charge).await,
        }
    }

    /// Forgets an `in_progress` key whose processing failed, so a retry can
    /// run it again at once. A no-op if the key was taken over since: it is
    /// the new holder's to complete or release.
    pub(crate) async fn release(&self, lease: &Lease) -> Result<(), LedgerError> {
        match self {
            Ledger::Sqlite(db) => db.release(lease).await,
            Ledger::Postgres(db) => db.release(lease).await,
        }
    }

    /// The account's charges, oldest first.
    pub(crate) async fn charges(&self, account: String) -> Result<Vec<Charge>, LedgerError> {
        match self {
            Ledger::Sqlite(db) => db.charges(account).await,
            Ledger::Postgres(db) => db.charges(account).await,
        }
    }

    /// Deletes completed keys older than `retention`; returns how many.
    pub(crate) async fn purge_expired(&self, retention: Duration) -> Result<u64, LedgerError> {
        match self {
            Ledger::Sqlite(db) => db.purge_expired(retention).await,
            Ledger::Postgres(db) => db.purge_expired(retention).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fingerprint: u8, completed: bool) -> Record {
        Record {
            fingerprint: vec![fingerprint; 32],
            completed,
            status: completed.then_some(201),
            body: completed.then(|| b"{}".to_vec()),
        }
    }

    fn look(record: Option<Record>, expired: bool, leased: bool, charged: bool) -> Look {
        Look {
            found: record.map(|record| Found {
                record,
                expired,
                leased,
            }),
            charged,
        }
    }

    fn plan(look: Look) -> (bool, &'static str) {
        let plan = BeginPlan::decide(look, &[1; 32]);
        let step = match plan.step {
            BeginStep::Answer(Begin::Started(_)) => "started?!",
            BeginStep::Answer(Begin::InProgress) => "in progress",
            BeginStep::Answer(Begin::Mismatch) => "mismatch",
            BeginStep::Answer(Begin::Replay { .. }) => "replay",
            BeginStep::Answer(Begin::Expired) => "expired",
            BeginStep::TakeOver => "take over",
            BeginStep::Record => "record",
        };
        (plan.forget, step)
    }

    #[test]
    fn begin_decides_from_the_record_and_the_clock() {
        assert_eq!(plan(look(None, false, false, false)), (false, "record"));
        assert_eq!(plan(look(None, false, false, true)), (false, "expired"));
        let done = || Some(record(1, true));
        assert_eq!(plan(look(done(), false, false, true)), (false, "replay"));
        assert_eq!(plan(look(done(), true, false, true)), (true, "expired"));
        // An expired record is forgotten whatever body it had.
        assert_eq!(
            plan(look(Some(record(2, true)), true, false, true)),
            (true, "expired")
        );
        assert_eq!(
            plan(look(Some(record(2, true)), false, false, true)),
            (false, "mismatch")
        );
        let running = || Some(record(1, false));
        assert_eq!(
            plan(look(running(), false, true, false)),
            (false, "in progress")
        );
        assert_eq!(
            plan(look(running(), false, false, false)),
            (false, "take over")
        );
        // In progress is never expired: its lease decides, not its age.
        assert_eq!(
            plan(look(running(), true, true, false)),
            (false, "in progress")
        );
        // Another body never takes a key over, however old its lease.
        assert_eq!(
            plan(look(Some(record(2, false)), false, false, false)),
            (false, "mismatch")
        );
    }
}
