//! The ledger on an SQLite file.
//!
//! One connection behind a mutex, always used from `spawn_blocking`, so disk
//! I/O never stalls the async workers. WAL with `synchronous=FULL`: a charge
//! acknowledged to a client survives a power cut. The file is one server's:
//! its clock dates records and leases, and keys a previous run left
//! `in_progress` are forgotten at open (they have no ledger row).

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Begin, BeginPlan, BeginStep, Charge, CompletePlan, Completion, Found, Lease, LedgerError, Look,
    NewCharge, Record, response_body,
};

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

/// An SQLite ledger file.
#[derive(Clone)]
pub(crate) struct SqliteLedger {
    conn: Arc<Mutex<Connection>>,
    /// The next lease token. Tokens need only be unique among the leases of
    /// one run: `open` forgets every key a previous run left in progress.
    next_lease_token: Arc<AtomicI64>,
}

impl SqliteLedger {
    /// Opens (or creates) the file, applies the schema and forgets requests
    /// that were in progress when the server last stopped.
    pub(crate) fn open(path: &Path) -> Result<SqliteLedger, LedgerError> {
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
        Ok(SqliteLedger {
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

    /// See [`Ledger::begin`](super::Ledger::begin).
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
            let found = tx
                .query_row(
                    "SELECT fingerprint, state, status, response_body, created_at, lease_expires_at
                     FROM idempotency_keys WHERE account = ?1 AND key = ?2",
                    params![account, key],
                    |r| {
                        let lease_expires_at: Option<i64> = r.get(5)?;
                        Ok(Found {
                            record: Record {
                                fingerprint: r.get(0)?,
                                completed: r.get::<_, String>(1)? == "completed",
                                status: r.get(2)?,
                                body: r.get(3)?,
                            },
                            expired: is_expired(r.get(4)?, now, retention),
                            leased: lease_expires_at.is_some_and(|at| at > now),
                        })
                    },
                )
                .optional()?;
            let charged: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM charges WHERE account = ?1 AND idempotency_key = ?2)",
                params![account, key],
                |r| r.get(0),
            )?;
            let plan = BeginPlan::decide(Look { found, charged }, &fingerprint);
            if plan.forget {
                tx.execute(
                    "DELETE FROM idempotency_keys WHERE account = ?1 AND key = ?2",
                    params![account, key],
                )?;
            }
            match plan.step {
                BeginStep::Answer(answer) => {
                    tx.commit()?;
                    return Ok(answer);
                }
                BeginStep::TakeOver => {
                    tx.execute(
                        "UPDATE idempotency_keys SET lease_token = ?3, lease_expires_at = ?4
                         WHERE account = ?1 AND key = ?2",
                        params![account, key, token, lease_expires_at],
                    )?;
                }
                BeginStep::Record => {
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
                }
            }
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

    /// See [`Ledger::complete`](super::Ledger::complete).
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
                        Ok(Record {
                            fingerprint: r.get(0)?,
                            completed: r.get::<_, String>(1)? == "completed",
                            status: r.get(2)?,
                            body: r.get(3)?,
                        })
                    },
                )
                .optional()?;
            if let CompletePlan::Answer(answer) = CompletePlan::decide(current, &lease)? {
                return Ok(answer);
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
            tx.execute(
                "UPDATE idempotency_keys
                 SET state = 'completed', status = 201, response_body = ?3,
                     lease_token = NULL, lease_expires_at = NULL
                 WHERE account = ?1 AND key = ?2",
                params![row.account, row.idempotency_key, response_body(&row)?],
            )?;
            tx.commit()?;
            Ok(Completion::Charged(row))
        })
        .await
    }

    /// See [`Ledger::release`](super::Ledger::release).
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

    /// See [`Ledger::charges`](super::Ledger::charges).
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

    /// See [`Ledger::purge_expired`](super::Ledger::purge_expired).
    pub(crate) async fn purge_expired(&self, retention: Duration) -> Result<u64, LedgerError> {
        self.run(move |conn| {
            let cutoff = unix_ms().saturating_sub(duration_ms(retention));
            let purged = conn.execute(
                "DELETE FROM idempotency_keys WHERE state = 'completed' AND created_at <= ?1",
                params![cutoff],
            )?;
            Ok(u64::try_from(purged).unwrap_or(u64::MAX))
        })
        .await
    }
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
    use super::super::Ledger;
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    const LONG_LEASE: Duration = Duration::from_secs(600);
    /// A lease that has run out by the next call.
    const SPENT_LEASE: Duration = Duration::ZERO;

    fn open() -> Result<(tempfile::TempDir, Ledger), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let ledger = Ledger::Sqlite(SqliteLedger::open(&dir.path().join("ledger.db"))?);
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
