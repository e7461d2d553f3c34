//! The SQLite file: idempotency records and the charges ledger.
//!
//! One connection behind a mutex, always used from `spawn_blocking`, so disk
//! I/O never stalls the async workers. WAL with `synchronous=FULL`: a charge
//! acknowledged to a client survives a power cut.
//!
//! Completing a request is ONE transaction that inserts the ledger row and
//! marks its key completed. So an `in_progress` key found at start-up has no
//! ledger row and can simply be deleted, and a completed key always has one.
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

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
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
    lease_token      INTEGER,
    lease_expires_at INTEGER,
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

/// A failure of the ledger; logged in full, shown to clients as a bare 500.
#[derive(Debug)]
pub(crate) enum LedgerError {
    Sqlite(rusqlite::Error),
    Encode(serde_json::Error),
    Task(tokio::task::JoinError),
    /// The `in_progress` record was released (by a request that had taken the
    /// key over) before this request completed it.
    Released,
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Sqlite(e) => write!(f, "sqlite: {e}"),
            LedgerError::Encode(e) => write!(f, "encoding a response: {e}"),
            LedgerError::Task(e) => write!(f, "blocking task: {e}"),
            LedgerError::Released => {
                f.write_str("the in_progress record was released before completion")
            }
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
    /// The next lease token. Tokens need only be unique among the leases of
    /// one run: `open` forgets every key a previous run left in progress.
    next_lease_token: Arc<AtomicI64>,
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
        add_lease_columns(&conn)?;
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
            next_lease_token: Arc::new(AtomicI64::new(1)),
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
        let token = self.next_lease_token.fetch_add(1, Ordering::Relaxed);
        self.run(move |conn| {
            let now = unix_ms();
            let lease_expires_at = now.saturating_add(duration_ms(lease));
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing = tx
                .query_row(
                    "SELECT fingerprint, state, status, response_body, created_at, lease_expires_at
                     FROM idempotency_keys WHERE account = ?1 AND key = ?2",
                    params![account, key],
                    |r| {
                        Ok(Record {
                            fingerprint: r.get(0)?,
                            state: r.get(1)?,
                            status: r.get(2)?,
                            body: r.get(3)?,
                            created_at: r.get(4)?,
                            lease_expires_at: r.get(5)?,
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
                } else if record.fingerprint != fingerprint {
                    return Ok(Begin::Mismatch);
                } else if completed {
                    return Ok(Begin::Replay {
                        status: record.status.unwrap_or(500),
                        body: record.body.unwrap_or_default(),
                    });
                } else if record.lease_expires_at.is_some_and(|at| at > now) {
                    return Ok(Begin::InProgress);
                } else {
                    // Its holder hung or is gone: take the key over. A record
                    // without a lease was not written by this server; it too
                    // is fair game.
                    tx.execute(
                        "UPDATE idempotency_keys SET lease_token = ?3, lease_expires_at = ?4
                         WHERE account = ?1 AND key = ?2",
                        params![account, key, token, lease_expires_at],
                    )?;
                    tx.commit()?;
                    return Ok(Begin::Started(Lease {
                        account,
                        key,
                        fingerprint,
                        token,
                    }));
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
                "INSERT INTO idempotency_keys
                     (account, key, fingerprint, state, created_at, lease_token, lease_expires_at)
                 VALUES (?1, ?2, ?3, 'in_progress', ?4, ?5, ?6)",
                params![
                    account,
                    key,
                    fingerprint.as_slice(),
                    now,
                    token,
                    lease_expires_at
                ],
            )?;
            tx.commit()?;
            Ok(Begin::Started(Lease {
                account,
                key,
                fingerprint,
                token,
            }))
        })
        .await
    }

    /// Inserts the charge and completes its key with the 201 response,
    /// atomically — unless a request that took the key over (or was taken
    /// over) completed it first, whose outcome is returned instead.
    pub(crate) async fn complete(
        &self,
        lease: &Lease,
        charge: NewCharge,
    ) -> Result<Completion, LedgerError> {
        let lease = lease.clone();
        self.run(move |conn| {
            let created_at = unix_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = tx
                .query_row(
                    "SELECT fingerprint, state, status, response_body
                     FROM idempotency_keys WHERE account = ?1 AND key = ?2",
                    params![lease.account, lease.key],
                    |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<u16>>(2)?,
                            r.get::<_, Option<Vec<u8>>>(3)?,
                        ))
                    },
                )
                .optional()?;
            match current {
                // Still this body's request, under this lease or a newer one:
                // whoever commits first makes the charge.
                Some((fingerprint, state, _, _))
                    if fingerprint == lease.fingerprint && state == "in_progress" => {}
                Some((fingerprint, state, status, body))
                    if fingerprint == lease.fingerprint && state == "completed" =>
                {
                    return Ok(Completion::CompletedElsewhere {
                        status: status.unwrap_or(500),
                        body: body.unwrap_or_default(),
                    });
                }
                _ => return Err(LedgerError::Released),
            }
            tx.execute(
                "INSERT INTO charges (account, idempotency_key, amount, currency, description, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![lease.account, lease.key, charge.amount, charge.currency, charge.description, created_at],
            )?;
            let row = Charge {
                id: tx.last_insert_rowid(),
                account: lease.account,
                idempotency_key: lease.key,
                amount: charge.amount,
                currency: charge.currency,
                description: charge.description,
                created_at,
            };
            let body = serde_json::to_vec(&row).map_err(LedgerError::Encode)?;
            tx.execute(
                "UPDATE idempotency_keys
                 SET state = 'completed', status = 201, response_body = ?3,
                     lease_token = NULL, lease_expires_at = NULL
                 WHERE account = ?1 AND key = ?2",
                params![row.account, row.idempotency_key, body],
            )?;
            tx.commit()?;
            Ok(Completion::Charged(row))
        })
        .await
    }

    /// Forgets an `in_progress` key whose processing failed, so a retry can
    /// run it again at once. A no-op if the key was taken over since: it is
    /// the new holder's to complete or release.
    pub(crate) async fn release(&self, lease: &Lease) -> Result<(), LedgerError> {
        let lease = lease.clone();
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM idempotency_keys
                 WHERE account = ?1 AND key = ?2 AND state = 'in_progress' AND lease_token = ?3",
                params![lease.account, lease.key, lease.token],
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
    lease_expires_at: Option<i64>,
}

/// Files written before leases existed lack their columns. Every row that
/// would use them is `in_progress` and is deleted at open, so no value is owed.
fn add_lease_columns(conn: &Connection) -> rusqlite::Result<()> {
    let present: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('idempotency_keys')
                        WHERE name = 'lease_expires_at')",
        [],
        |r| r.get(0),
    )?;
    if present {
        return Ok(());
    }
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         ALTER TABLE idempotency_keys ADD COLUMN lease_token INTEGER;
         ALTER TABLE idempotency_keys ADD COLUMN lease_expires_at INTEGER;
         COMMIT;",
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    const LONG_LEASE: Duration = Duration::from_secs(600);
    /// A lease that has run out by the next call.
    const SPENT_LEASE: Duration = Duration::ZERO;

    fn open() -> Result<(tempfile::TempDir, Ledger), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let ledger = Ledger::open(&dir.path().join("ledger.db"))?;
        Ok((dir, ledger))
    }

    async fn begin(
        ledger: &Ledger,
        fingerprint: u8,
        lease: Duration,
    ) -> Result<Begin, LedgerError> {
        ledger
            .begin("acct".into(), "k".into(), [fingerprint; 32], DAY, lease)
            .await
    }

    async fn started(
        ledger: &Ledger,
        fingerprint: u8,
        lease: Duration,
    ) -> Result<Lease, Box<dyn std::error::Error>> {
        match begin(ledger, fingerprint, lease).await? {
            Begin::Started(lease) => Ok(lease),
            other => Err(format!("expected a lease, got {other:?}").into()),
        }
    }

    fn tea() -> NewCharge {
        NewCharge {
            amount: 1250,
            currency: "EUR".into(),
            description: None,
        }
    }

    #[tokio::test]
    async fn a_key_is_in_progress_within_its_lease_and_taken_over_after_it() -> TestResult {
        let (_dir, ledger) = open()?;
        let first = started(&ledger, 1, SPENT_LEASE).await?;
        let second = started(&ledger, 1, LONG_LEASE).await?;
        assert_ne!(first.token, second.token);
        assert!(matches!(
            begin(&ledger, 1, LONG_LEASE).await?,
            Begin::InProgress
        ));
        // Another body never takes a key over, however old its lease.
        let (_dir, ledger) = open()?;
        started(&ledger, 1, SPENT_LEASE).await?;
        assert!(matches!(
            begin(&ledger, 2, LONG_LEASE).await?,
            Begin::Mismatch
        ));
        Ok(())
    }

    #[tokio::test]
    async fn a_request_taken_over_cannot_release_the_key() -> TestResult {
        let (_dir, ledger) = open()?;
        let taken_over = started(&ledger, 1, SPENT_LEASE).await?;
        let holder = started(&ledger, 1, LONG_LEASE).await?;
        ledger.release(&taken_over).await?;
        assert!(matches!(
            begin(&ledger, 1, LONG_LEASE).await?,
            Begin::InProgress
        ));
        ledger.release(&holder).await?;
        started(&ledger, 1, LONG_LEASE).await?;
        Ok(())
    }

    #[tokio::test]
    async fn whichever_holder_commits_first_makes_the_one_charge() -> TestResult {
        let (_dir, ledger) = open()?;
        let taken_over = started(&ledger, 1, SPENT_LEASE).await?;
        let holder = started(&ledger, 1, LONG_LEASE).await?;
        let Completion::Charged(charge) = ledger.complete(&taken_over, tea()).await? else {
            return Err("the first commit must charge".into());
        };
        match ledger.complete(&holder, tea()).await? {
            Completion::CompletedElsewhere { status, body } => {
                assert_eq!(status, 201);
                assert_eq!(body, serde_json::to_vec(&charge)?);
            }
            Completion::Charged(second) => return Err(format!("charged twice: {second:?}").into()),
        }
        assert_eq!(ledger.charges("acct".into()).await?, vec![charge]);
        Ok(())
    }

    #[tokio::test]
    async fn a_key_released_and_reused_with_another_body_refuses_the_old_request() -> TestResult {
        let (_dir, ledger) = open()?;
        let taken_over = started(&ledger, 1, SPENT_LEASE).await?;
        let holder = started(&ledger, 1, LONG_LEASE).await?;
        ledger.release(&holder).await?;
        started(&ledger, 2, LONG_LEASE).await?;
        assert!(matches!(
            ledger.complete(&taken_over, tea()).await,
            Err(LedgerError::Released)
        ));
        assert!(ledger.charges("acct".into()).await?.is_empty());
        Ok(())
    }
}
