//! The SQLite file: idempotency records and the charges ledger.
//!
//! One connection behind a mutex, always used from `spawn_blocking`, so disk
//! I/O never stalls the async workers. WAL with `synchronous=FULL`: a charge
//! acknowledged to a client survives a power cut.
//!
//! Completing a request is ONE transaction that inserts the ledger row and
//! marks its key completed. So an `in_progress` key found at start-up has no
//! ledger row and can simply be deleted, and a completed key always has one.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS idempotency_keys (
    account       TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    fingerprint   BLOB    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('in_progress', 'completed')),
    status        INTEGER,
    response_body BLOB,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (account, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (state, created_at);
CREATE TABLE IF NOT EXISTS charges (
    id              INTEGER PRIMARY KEY,
    account         TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    amount          INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    description     TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (account, idempotency_key)
);
";

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

/// What the idempotency record says about a request about to be processed.
#[derive(Debug)]
pub(crate) enum Begin {
    /// The key was new; it is now recorded `in_progress` and the caller must
    /// [`Ledger::complete`] or [`Ledger::release`] it.
    Started,
    /// Another request with this key is still being processed.
    InProgress,
    /// The key was first used with a different body.
    Mismatch,
    /// The key completed earlier: replay this outcome.
    Replay { status: u16, body: Vec<u8> },
    /// The key's record expired, but the ledger still has the charge it made.
    Expired,
}

/// A failure of the ledger; logged in full, shown to clients as a bare 500.
#[derive(Debug)]
pub(crate) enum LedgerError {
    Sqlite(rusqlite::Error),
    Encode(serde_json::Error),
    Task(tokio::task::JoinError),
    /// The `in_progress` record disappeared before completion.
    Vanished,
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Sqlite(e) => write!(f, "sqlite: {e}"),
            LedgerError::Encode(e) => write!(f, "encoding a response: {e}"),
            LedgerError::Task(e) => write!(f, "blocking task: {e}"),
            LedgerError::Vanished => f.write_str("the in_progress record vanished"),
        }
    }
}

impl std::error::Error for LedgerError {}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        LedgerError::Sqlite(e)
    }
}

/// The ledger database, shared by all requests.
#[derive(Clone)]
pub(crate) struct Ledger {
    conn: Arc<Mutex<Connection>>,
}

impl Ledger {
    /// Opens (or creates) the file, applies the schema and forgets requests
    /// that were in progress when the server last stopped.
    pub(crate) fn open(path: &Path) -> Result<Ledger, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // The first statement to touch the file: a non-SQLite file fails here.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous = FULL;")?;
        conn.execute_batch(SCHEMA)?;
        let stale = conn.execute(
            "DELETE FROM idempotency_keys WHERE state = 'in_progress'",
            [],
        )?;
        if stale > 0 {
            eprintln!(
                "oncely-server: forgot {stale} request(s) left in progress by a previous run"
            );
        }
        Ok(Ledger {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection in a blocking thread.
    async fn run<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, LedgerError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock rolled its transaction back when
            // the transaction dropped, so the connection is still usable.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(LedgerError::Task)?
    }

    /// Looks the key up and, if it is new, records it `in_progress`.
    ///
    /// A completed record older than `retention` counts as absent.
    pub(crate) async fn begin(
        &self,
        account: String,
        key: String,
        fingerprint: [u8; 32],
        retention: Duration,
    ) -> Result<Begin, LedgerError> {
        self.run(move |conn| {
            let now = unix_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing = tx
                .query_row(
                    "SELECT fingerprint, state, status, response_body, created_at
                     FROM idempotency_keys WHERE account = ?1 AND key = ?2",
                    params![account, key],
                    |r| {
                        Ok(Record {
                            fingerprint: r.get(0)?,
                            state: r.get(1)?,
                            status: r.get(2)?,
                            body: r.get(3)?,
                            created_at: r.get(4)?,
                        })
                    },
                )
                .optional()?;
            if let Some(record) = existing {
                let completed = record.state == "completed";
                if completed && is_expired(record.created_at, now, retention) {
                    tx.execute(
                        "DELETE FROM idempotency_keys WHERE account = ?1 AND key = ?2",
                        params![account, key],
                    )?;
                } else {
                    let outcome = if record.fingerprint != fingerprint {
                        Begin::Mismatch
                    } else if !completed {
                        Begin::InProgress
                    } else {
                        Begin::Replay {
                            status: record.status.unwrap_or(500),
                            body: record.body.unwrap_or_default(),
                        }
                    };
                    return Ok(outcome);
                }
            }
            let used: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM charges WHERE account = ?1 AND idempotency_key = ?2)",
                params![account, key],
                |r| r.get(0),
            )?;
            if used {
                tx.commit()?;
                return Ok(Begin::Expired);
            }
            tx.execute(
                "INSERT INTO idempotency_keys (account, key, fingerprint, state, created_at)
                 VALUES (?1, ?2, ?3, 'in_progress', ?4)",
                params![account, key, fingerprint.as_slice(), now],
            )?;
            tx.commit()?;
            Ok(Begin::Started)
        })
        .await
    }

    /// Inserts the charge and completes its key with the 201 response, atomically.
    pub(crate) async fn complete(
        &self,
        account: String,
        key: String,
        charge: NewCharge,
    ) -> Result<Charge, LedgerError> {
        self.run(move |conn| {
            let created_at = unix_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO charges (account, idempotency_key, amount, currency, description, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![account, key, charge.amount, charge.currency, charge.description, created_at],
            )?;
            let row = Charge {
                id: tx.last_insert_rowid(),
                account,
                idempotency_key: key,
                amount: charge.amount,
                currency: charge.currency,
                description: charge.description,
                created_at,
            };
            let body = serde_json::to_vec(&row).map_err(LedgerError::Encode)?;
            let updated = tx.execute(
                "UPDATE idempotency_keys SET state = 'completed', status = 201, response_body = ?3
                 WHERE account = ?1 AND key = ?2 AND state = 'in_progress'",
                params![row.account, row.idempotency_key, body],
            )?;
            if updated != 1 {
                return Err(LedgerError::Vanished);
            }
            tx.commit()?;
            Ok(row)
        })
        .await
    }

    /// Forgets an `in_progress` key whose processing failed, so a retry can
    /// run it again instead of getting 409 forever.
    pub(crate) async fn release(&self, account: String, key: String) -> Result<(), LedgerError> {
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM idempotency_keys WHERE account = ?1 AND key = ?2 AND state = 'in_progress'",
                params![account, key],
            )?;
            Ok(())
        })
        .await
    }

    /// The account's charges, oldest first.
    pub(crate) async fn charges(&self, account: String) -> Result<Vec<Charge>, LedgerError> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, account, idempotency_key, amount, currency, description, created_at
                 FROM charges WHERE account = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![account], |r| {
                Ok(Charge {
                    id: r.get(0)?,
                    account: r.get(1)?,
                    idempotency_key: r.get(2)?,
                    amount: r.get(3)?,
                    currency: r.get(4)?,
                    description: r.get(5)?,
                    created_at: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Deletes completed keys older than `retention`; returns how many.
    pub(crate) async fn purge_expired(&self, retention: Duration) -> Result<usize, LedgerError> {
        self.run(move |conn| {
            let cutoff = unix_ms().saturating_sub(duration_ms(retention));
            Ok(conn.execute(
                "DELETE FROM idempotency_keys WHERE state = 'completed' AND created_at <= ?1",
                params![cutoff],
            )?)
        })
        .await
    }
}

struct Record {
    fingerprint: Vec<u8>,
    state: String,
    status: Option<u16>,
    body: Option<Vec<u8>>,
    created_at: i64,
}

fn is_expired(created_at: i64, now: i64, retention: Duration) -> bool {
    now.saturating_sub(created_at) >= duration_ms(retention)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Now, in Unix milliseconds (0 if the clock is before 1970).
fn unix_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    duration_ms(since)
}
