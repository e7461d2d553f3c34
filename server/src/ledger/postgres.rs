//! The ledger in a PostgreSQL database, shared by every server instance
//! that opens it.
//!
//! The transactions are those of the SQLite ledger, made safe across
//! processes two ways:
//!
//! - Each transaction on a key first takes the key's advisory lock
//!   (`pg_advisory_xact_lock`, held until it commits), so `begin`, `complete`
//!   and `release` of one key run one at a time whichever instance runs them,
//!   each reading what the one before it committed. Different keys never wait
//!   for each other (bar a 64-bit hash collision, which only serializes).
//! - Time is the database's (`clock_timestamp()`): leases and retention are
//!   judged by one clock, whatever the instances' clocks say. Lease tokens
//!   come from a sequence, so they are unique across instances.
//!
//! A key left `in_progress` by an instance that died stays so until its lease
//! runs out; then the next request with it takes it over. Nothing is
//! forgotten at start: other instances may be running those requests.
//!
//! The tables carry an `oncely_` prefix (the database may hold an
//! application's own `charges`), and their version is in the one-row table
//! `oncely_server_schema`. Instances starting at once create them once: the
//! creation holds an advisory lock. A database with a newer version, or with
//! these tables but no version, is refused untouched.

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls, Row, Statement, Transaction};

use super::pool::Pool;
use super::{
    Begin, BeginPlan, BeginStep, Charge, CompletePlan, Completion, Found, Lease, LedgerError, Look,
    NewCharge, Record, response_body,
};

/// The schema this server writes and reads.
const SCHEMA_VERSION: i32 = 1;

const SCHEMA: &str = "
CREATE TABLE oncely_server_schema (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version integer NOT NULL
);
CREATE TABLE oncely_idempotency_keys (
    account          text        NOT NULL,
    key              text        NOT NULL,
    fingerprint      bytea       NOT NULL,
    state            text        NOT NULL CHECK (state IN ('in_progress', 'completed')),
    status           integer,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_token      bigint,
    lease_expires_at timestamptz,
    PRIMARY KEY (account, key)
);
CREATE INDEX oncely_idempotency_keys_by_age ON oncely_idempotency_keys (state, created_at);
CREATE TABLE oncely_charges (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account         text        NOT NULL,
    idempotency_key text        NOT NULL,
    amount          bigint      NOT NULL,
    currency        text        NOT NULL,
    description     text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (account, idempotency_key)
);
CREATE SEQUENCE oncely_lease_tokens;
";

/// The names the schema takes, checked before it is created.
const TABLES: [&str; 4] = [
    "oncely_server_schema",
    "oncely_idempotency_keys",
    "oncely_charges",
    "oncely_lease_tokens",
];

/// The advisory lock held while the schema is checked or created (the
/// two-key form: key locks use the one-key form, so they never collide).
const SCHEMA_LOCK: (i32, i32) = (0x6f6e_6365, 0x6c79); // "oncely"

/// How many connections one instance opens at most.
const CONNECTIONS: usize = 8;

/// How long connecting may take unless the URL says (`connect_timeout`):
/// an unreachable host is an error at start, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Durations past this are cut to it: PostgreSQL's intervals and timestamps
/// would overflow long before `Duration::MAX`, and a century is forever here.
const LONGEST: Duration = Duration::from_secs(100 * 366 * 24 * 60 * 60);

/// A charge's `created_at` as the JSON shows it: Unix milliseconds.
const CREATED_AT_MS: &str = "floor(extract(epoch FROM created_at) * 1000)::bigint";

/// The key's lock, taken first by every transaction on a key. An account has
/// no `/`, so `account/key` names one key.
const LOCK_KEY: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2::text, 0))";

/// What `begin` reads: always one row, the record's columns NULL without one.
const LOOK: &str = "
SELECT EXISTS (SELECT 1 FROM oncely_charges WHERE account = $1 AND idempotency_key = $2),
       k.fingerprint, k.state, k.status, k.response_body,
       k.created_at <= clock_timestamp() - $3::bigint * interval '1 millisecond',
       k.lease_expires_at > clock_timestamp()
FROM (VALUES (1)) AS one
LEFT JOIN oncely_idempotency_keys AS k ON k.account = $1 AND k.key = $2";

/// What `complete` reads.
const CURRENT: &str = "
SELECT fingerprint, state, status, response_body
FROM oncely_idempotency_keys WHERE account = $1 AND key = $2";

const FORGET: &str = "DELETE FROM oncely_idempotency_keys WHERE account = $1 AND key = $2";

const TAKE_OVER: &str = "
UPDATE oncely_idempotency_keys
SET lease_token = nextval('oncely_lease_tokens'),
    lease_expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond'
WHERE account = $1 AND key = $2
RETURNING lease_token";

const RECORD: &str = "
INSERT INTO oncely_idempotency_keys (account, key, fingerprint, state, lease_token, lease_expires_at)
VALUES ($1, $2, $3, 'in_progress', nextval('oncely_lease_tokens'),
        clock_timestamp() + $4::bigint * interval '1 millisecond')
RETURNING lease_token";

/// Used with [`CREATED_AT_MS`] appended.
const CHARGE: &str = "
INSERT INTO oncely_charges (account, idempotency_key, amount, currency, description)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, ";

const COMPLETE: &str = "
UPDATE oncely_idempotency_keys
SET state = 'completed', status = 201, response_body = $3,
    lease_token = NULL, lease_expires_at = NULL
WHERE account = $1 AND key = $2";

const RELEASE: &str = "
DELETE FROM oncely_idempotency_keys
WHERE account = $1 AND key = $2 AND state = 'in_progress' AND lease_token = $3";

/// Used with [`CREATED_AT_MS`] and [`CHARGES_ORDER`] around it.
const CHARGES: &str = "SELECT id, account, idempotency_key, amount, currency, description, ";
const CHARGES_ORDER: &str = " FROM oncely_charges WHERE account = $1 ORDER BY id";

const PURGE: &str = "
DELETE FROM oncely_idempotency_keys
WHERE state = 'completed' AND created_at <= clock_timestamp() - $1::bigint * interval '1 millisecond'";

/// The ledger's statements, prepared on one connection.
struct Statements {
    lock_key: Statement,
    look: Statement,
    current: Statement,
    forget: Statement,
    take_over: Statement,
    record: Statement,
    charge: Statement,
    complete: Statement,
    release: Statement,
    charges: Statement,
    purge: Statement,
}

/// One connection and its prepared statements.
pub(crate) struct Session {
    pub(crate) client: Client,
    statements: Statements,
}

impl Session {
    /// Connects and prepares; the schema must exist.
    pub(crate) async fn open(config: &Config) -> Result<Session, LedgerError> {
        Session::prepare(connect(config).await?).await
    }

    async fn prepare(client: Client) -> Result<Session, LedgerError> {
        let charge = format!("{CHARGE}{CREATED_AT_MS}");
        let charges = format!("{CHARGES}{CREATED_AT_MS}{CHARGES_ORDER}");
        let statements = Statements {
            lock_key: client.prepare(LOCK_KEY).await?,
            look: client.prepare(LOOK).await?,
            current: client.prepare(CURRENT).await?,
            forget: client.prepare(FORGET).await?,
            take_over: client.prepare(TAKE_OVER).await?,
            record: client.prepare(RECORD).await?,
            charge: client.prepare(&charge).await?,
            complete: client.prepare(COMPLETE).await?,
            release: client.prepare(RELEASE).await?,
            charges: client.prepare(&charges).await?,
            purge: client.prepare(PURGE).await?,
        };
        Ok(Session { client, statements })
    }
}

async fn connect(config: &Config) -> Result<Client, LedgerError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // Ends when its client is dropped; an error means the link broke,
        // and the pool replaces the connection.
        if let Err(e) = connection.await {
            eprintln!(
                "oncely-server: a PostgreSQL connection ended: {}",
                LedgerError::Postgres(e)
            );
        }
    });
    Ok(client)
}

/// A PostgreSQL ledger.
#[derive(Clone)]
pub(crate) struct PostgresLedger {
    pool: Pool,
}

impl PostgresLedger {
    /// Connects to `url`, creates the schema if the database has none (or
    /// checks the one it has) and keeps the connection for the pool.
    pub(crate) async fn open(url: &str) -> Result<PostgresLedger, LedgerError> {
        let mut config: Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("oncely-server");
        }
        let mut client = connect(&config).await?;
        ensure_schema(&mut client).await?;
        let first = Session::prepare(client).await?;
        Ok(PostgresLedger {
            pool: Pool::new(config, CONNECTIONS, first),
        })
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
        let mut session = self.pool.get().await?;
        let Session { client, statements } = &mut *session;
        let tx = client.transaction().await?;
        lock_key(&tx, statements, &account, &key).await?;
        let row = tx
            .query_one(&statements.look, &[&account, &key, &millis(retention)])
            .await?;
        let look = Look {
            charged: row.try_get(0)?,
            found: match row.try_get::<_, Option<Vec<u8>>>(1)? {
                None => None,
                Some(fingerprint) => Some(Found {
                    record: Record {
                        fingerprint,
                        completed: row.try_get::<_, &str>(2)? == "completed",
                        status: status(&row, 3)?,
                        body: row.try_get(4)?,
                    },
                    expired: row.try_get(5)?,
                    // NULL without a lease: fair game.
                    leased: row.try_get::<_, Option<bool>>(6)?.unwrap_or(false),
                }),
            },
        };
        let plan = BeginPlan::decide(look, &fingerprint);
        if plan.forget {
            tx.execute(&statements.forget, &[&account, &key]).await?;
        }
        let token: i64 = match plan.step {
            BeginStep::Answer(answer) => {
                tx.commit().await?;
                return Ok(answer);
            }
            BeginStep::TakeOver => tx
                .query_one(&statements.take_over, &[&account, &key, &millis(lease)])
                .await?
                .try_get(0)?,
            BeginStep::Record => tx
                .query_one(
                    &statements.record,
                    &[&account, &key, &fingerprint.as_slice(), &millis(lease)],
                )
                .await?
                .try_get(0)?,
        };
        tx.commit().await?;
        Ok(Begin::Started(Lease {
            account,
            key,
            fingerprint,
            token,
        }))
    }

    /// See [`Ledger::complete`](super::Ledger::complete).
    pub(crate) async fn complete(
        &self,
        lease: &Lease,
        charge: NewCharge,
    ) -> Result<Completion, LedgerError> {
        let mut session = self.pool.get().await?;
        let Session { client, statements } = &mut *session;
        let tx = client.transaction().await?;
        lock_key(&tx, statements, &lease.account, &lease.key).await?;
        let current = match tx
            .query_opt(&statements.current, &[&lease.account, &lease.key])
            .await?
        {
            None => None,
            Some(row) => Some(Record {
                fingerprint: row.try_get(0)?,
                completed: row.try_get::<_, &str>(1)? == "completed",
                status: status(&row, 2)?,
                body: row.try_get(3)?,
            }),
        };
        if let CompletePlan::Answer(answer) = CompletePlan::decide(current, lease)? {
            // Nothing written: dropping the transaction rolls it back.
            return Ok(answer);
        }
        let inserted = tx
            .query_one(
                &statements.charge,
                &[
                    &lease.account,
                    &lease.key,
                    &charge.amount,
                    &charge.currency,
                    &charge.description,
                ],
            )
            .await?;
        let row = Charge {
            id: inserted.try_get(0)?,
            account: lease.account.clone(),
            idempotency_key: lease.key.clone(),
            amount: charge.amount,
            currency: charge.currency,
            description: charge.description,
            created_at: inserted.try_get(1)?,
        };
        tx.execute(
            &statements.complete,
            &[&lease.account, &lease.key, &response_body(&row)?],
        )
        .await?;
        tx.commit().await?;
        Ok(Completion::Charged(row))
    }

    /// See [`Ledger::release`](super::Ledger::release).
    pub(crate) async fn release(&self, lease: &Lease) -> Result<(), LedgerError> {
        let mut session = self.pool.get().await?;
        let Session { client, statements } = &mut *session;
        let tx = client.transaction().await?;
        lock_key(&tx, statements, &lease.account, &lease.key).await?;
        tx.execute(
            &statements.release,
            &[&lease.account, &lease.key, &lease.token],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// See [`Ledger::charges`](super::Ledger::charges).
    pub(crate) async fn charges(&self, account: String) -> Result<Vec<Charge>, LedgerError> {
        let session = self.pool.get().await?;
        let rows = session
            .client
            .query(&session.statements.charges, &[&account])
            .await?;
        let mut charges = Vec::with_capacity(rows.len());
        for row in rows {
            charges.push(Charge {
                id: row.try_get(0)?,
                account: row.try_get(1)?,
                idempotency_key: row.try_get(2)?,
                amount: row.try_get(3)?,
                currency: row.try_get(4)?,
                description: row.try_get(5)?,
                created_at: row.try_get(6)?,
            });
        }
        Ok(charges)
    }

    /// See [`Ledger::purge_expired`](super::Ledger::purge_expired).
    pub(crate) async fn purge_expired(&self, retention: Duration) -> Result<u64, LedgerError> {
        let session = self.pool.get().await?;
        Ok(session
            .client
            .execute(&session.statements.purge, &[&millis(retention)])
            .await?)
    }
}

async fn lock_key(
    tx: &Transaction<'_>,
    statements: &Statements,
    account: &str,
    key: &str,
) -> Result<(), LedgerError> {
    tx.execute(&statements.lock_key, &[&account, &key]).await?;
    Ok(())
}

/// A status column: NULL, or a value that is no status, reads as none.
fn status(row: &Row, column: usize) -> Result<Option<u16>, LedgerError> {
    let status: Option<i32> = row.try_get(column)?;
    Ok(status.and_then(|s| u16::try_from(s).ok()))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.min(LONGEST).as_millis()).unwrap_or(i64::MAX)
}

/// Creates the schema in a database without one, or checks the one there.
/// Runs under [`SCHEMA_LOCK`], so instances starting at once take turns: the
/// first creates, the others find it made.
async fn ensure_schema(client: &mut Client) -> Result<(), LedgerError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&SCHEMA_LOCK.0, &SCHEMA_LOCK.1],
    )
    .await?;
    let mut present = Vec::new();
    for table in TABLES {
        let found: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await?
            .try_get(0)?;
        if found {
            present.push(table);
        }
    }
    if present.is_empty() {
        tx.batch_execute(SCHEMA).await?;
        tx.execute(
            "INSERT INTO oncely_server_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    // From here on nothing is written: the transaction is rolled back.
    if !present.contains(&"oncely_server_schema") {
        return Err(LedgerError::Schema(format!(
            "the database has {} but no oncely_server_schema table: not made by \
             oncely-server, so it is left alone; use another database",
            present.join(", ")
        )));
    }
    let version = match tx
        .query("SELECT version FROM oncely_server_schema", &[])
        .await
    {
        Ok(rows) if rows.len() == 1 => rows[0].try_get::<_, i32>(0).ok(),
        _ => None,
    };
    match version {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(version) if version > SCHEMA_VERSION => Err(LedgerError::Schema(format!(
            "the database holds oncely-server schema version {version}, newer than this \
             server's {SCHEMA_VERSION}: run a newer oncely-server"
        ))),
        _ => Err(LedgerError::Schema(
            "the database's oncely_server_schema table does not hold one schema version \
             this server knows: not made by it, so it is left alone; use another database"
                .to_owned(),
        )),
    }
}
