//! Intent records in PostgreSQL: one database for a fleet of replicas.
//!
//! The store keeps the contract of [`FileStore`](super::FileStore) and
//! [`MemoryStore`](super::MemoryStore), across machines:
//!
//! - **Create-or-get** is one `INSERT … ON CONFLICT DO NOTHING`, then a read
//!   in a new snapshot: whatever the race, one key per intent.
//! - **One replica at a time flies an intent.** [`Store::lock`] takes a lease
//!   on it (a row of `oncely_leases`, timed by the database's clock, so
//!   replicas with skewed clocks agree) with a fencing token from a
//!   sequence. The lease is renewed while the flight lasts. Every write a
//!   flight makes is fenced by its token: a replica that stalled past its
//!   lease (a GC pause, `SIGSTOP`) and was taken over cannot record over
//!   what the new holder recorded, and since the attempt count is written
//!   before each attempt leaves, it cannot send again either.
//! - **Resume at fleet scale.** [`Store::claim`] leases a batch of unsettled
//!   intents nobody holds in one statement (`FOR UPDATE SKIP LOCKED`), so N
//!   replicas resuming at once each take their own; a crashed replica's
//!   intents are taken over when its leases end.
//! - **Transactional enqueue.** [`PostgresStore::enqueue`] records an intent
//!   inside the application's own transaction (the outbox pattern without
//!   an outbox table); `resume` (or a call of the same intent) sends it.
//!
//! Operations run on a few connections, each owned by a task that performs
//! its queue in order; an intent's operations always go to the same one
//! (by a hash of its name), so each takes its place when it is *called*, as
//! the contract asks. A connection that breaks is opened again for the next
//! operation; the operation that met the break fails as a `Store` error,
//! which after an attempt may have left makes the flight resumable.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_channel::oneshot;
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client as Connection, Config, NoTls, Row, Statement};

use super::columns::{Columns, OutcomeColumns, read_columns, record_columns, time};
use super::{Claimed, Durability, IntentLock, Store, Update};
use crate::Error;
use crate::intent::Record;
use crate::runtime::{BoxFuture, OsRandom, Random};

/// The schema version this code writes (`oncely_schema.version`).
const SCHEMA_VERSION: i32 = 1;
/// `pg_advisory_xact_lock` key held while the schema is checked or made
/// ("oncE"): replicas starting together create it once.
const SCHEMA_LOCK: i64 = 0x6F6E_6345;

const SCHEMA: &str = "
CREATE TABLE oncely_schema (version integer NOT NULL);
CREATE TABLE oncely_intents (
    name text PRIMARY KEY,
    key text NOT NULL,
    method text NOT NULL,
    url text NOT NULL,
    headers text NOT NULL,
    body bytea NOT NULL,
    fingerprint bytea NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    attempts bigint NOT NULL,
    state text NOT NULL,
    failure_kind text,
    failure_message text,
    last_status bigint,
    status bigint,
    response_headers text,
    response_body bytea,
    withheld text NOT NULL DEFAULT '',
    owner text
);
CREATE INDEX oncely_intents_unsettled ON oncely_intents (created_at, name)
    WHERE state IN ('pending', 'failed');
CREATE TABLE oncely_leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    token bigint NOT NULL,
    until timestamptz NOT NULL
);
CREATE SEQUENCE oncely_lease_tokens;
";

/// What `Record::is_unsettled` says, in SQL: pending, or failed with an
/// unknown outcome (gave up, or wanted credentials).
const UNSETTLED: &str = "(state = 'pending' OR (state = 'failed' AND \
     (failure_kind IS NULL OR failure_kind IN ('gave_up', 'credentials'))))";

/// How often a waiting lock asks again.
const RETRY: Duration = Duration::from_millis(25);

/// How to connect a [`PostgresStore`].
///
/// # Defaults
/// - durability: [`Durability::Strict`] (`synchronous_commit = on`)
/// - lease: 10 s (see [`lease`](PostgresStoreOptions::lease))
/// - connections: 4
/// - connect timeout: 5 s, where the URL sets none
#[derive(Debug, Clone)]
pub struct PostgresStoreOptions {
    durability: Durability,
    lease: Duration,
    connections: usize,
}

impl Default for PostgresStoreOptions {
    fn default() -> PostgresStoreOptions {
        PostgresStoreOptions {
            durability: Durability::Strict,
            lease: Duration::from_secs(10),
            connections: 4,
        }
    }
}

impl PostgresStoreOptions {
    /// Sets the durability ([`Durability::Relaxed`]: `synchronous_commit =
    /// off`, so a commit may be lost if the database server crashes; the
    /// intent is then re-sent under the same key).
    pub fn durability(mut self, durability: Durability) -> PostgresStoreOptions {
        self.durability = durability;
        self
    }

    /// Sets the lease a replica takes on an intent while it flies it
    /// (renewed every quarter of it while held): how long other replicas
    /// wait for an intent whose replica stalled or died before they take it
    /// over. At least 100 ms.
    pub fn lease(mut self, lease: Duration) -> PostgresStoreOptions {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// Sets how many connections the store keeps (at least 1): an intent's
    /// operations run in order on one of them; different intents in
    /// parallel.
    pub fn connections(mut self, connections: usize) -> PostgresStoreOptions {
        self.connections = connections.max(1);
        self
    }

    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// or a key-value string), creating the store's schema there if it has
    /// none. Without TLS.
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when the URL cannot be
    /// read, the server cannot be reached, refuses the credentials, has no
    /// such database, or holds a schema this version does not read (a newer
    /// oncely's, or tables of the same names that are not oncely's); nothing
    /// is written then.
    pub async fn connect(self, url: &str) -> Result<PostgresStore, Error> {
        let mut config: Config = url
            .parse()
            .map_err(|e| Error::store(format!("not a PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let config = Arc::new(config);
        // The connections live on a thread of their own, as `FileStore`'s
        // writer does: whatever runtime the caller uses (or none left: a
        // program returning right after a call), dropping the last handle
        // waits for the operations queued, outcomes included.
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..self.connections)
            .map(|_| mpsc::unbounded_channel::<Job>())
            .unzip();
        let held = Arc::new(Mutex::new(Held::default()));
        let lease_ms = self.lease.as_millis().min(i64::MAX as u128) as i64;
        let renewals = (
            Arc::downgrade(&held),
            senders[0].downgrade(),
            lease_ms,
            self.lease / 4,
        );
        let (ready, started) = oneshot::channel();
        let durability = self.durability;
        let thread = std::thread::Builder::new()
            .name("oncely-postgres".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(Error::store(format!(
                            "cannot start the store's runtime: {e}"
                        ))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let first = match open(&config, durability).await {
                        Ok(first) => first,
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    if let Err(error) = set_up(&first).await {
                        let _ = ready.send(Err(error));
                        return;
                    }
                    let _ = ready.send(Ok(()));
                    let mut first = Some(first);
                    let workers: Vec<_> = receivers
                        .into_iter()
                        .map(|jobs| {
                            tokio::spawn(work(Arc::clone(&config), durability, first.take(), jobs))
                        })
                        .collect();
                    let (held, slot, lease_ms, every) = renewals;
                    tokio::spawn(renew(held, slot, lease_ms, every));
                    // Until every handle (and so every queue) is gone and
                    // each queue is done.
                    for worker in workers {
                        let _ = worker.await;
                    }
                });
            })
            .map_err(|e| Error::store(format!("cannot start the store's thread: {e}")))?;
        let thread = Handle(Some(thread));
        started
            .await
            .map_err(|_| Error::store("the store's thread stopped while connecting"))??;
        let mut nonce = [0u8; 8];
        OsRandom.fill(&mut nonce);
        Ok(PostgresStore {
            shared: Arc::new(Shared {
                slots: senders,
                holder: format!("{}/{:016x}", std::process::id(), u64::from_le_bytes(nonce)),
                lease_ms,
                held,
                hasher: foldhash::fast::FixedState::default(),
                _thread: thread,
            }),
        })
    }
}

/// Queues `op` on the connection whose queue is `slot` now; the future
/// answers its result (the operation runs even if the future is dropped).
fn queue<T, F, Fut>(
    slot: &mpsc::UnboundedSender<Job>,
    op: F,
) -> BoxFuture<'static, Result<T, Error>>
where
    T: Send + 'static,
    F: FnOnce(Arc<Session>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, Error>> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move |connection| {
        Box::pin(async move {
            let result = match connection {
                Ok(connection) => op(connection).await,
                Err(error) => Err(error),
            };
            if let Err(Err(error)) = reply.send(result) {
                tracing::warn!(%error, "a store write nobody awaited failed");
            }
        })
    });
    let sent = slot.send(job).is_ok();
    Box::pin(async move {
        if !sent {
            return Err(Error::store("the store's connection task has stopped"));
        }
        answer
            .await
            .map_err(|_| Error::store("the store's connection task stopped mid-operation"))?
    })
}

/// The store's thread: joined when the last handle goes, once its queues
/// are done.
struct Handle(Option<std::thread::JoinHandle<()>>);

/// Intent records in PostgreSQL: many replicas (processes, machines) share
/// one database and behave as one client. See the [module](self) notes.
///
/// Clones share the connections and the leases held.
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), oncely::Error> {
/// let store = oncely::PostgresStore::connect("postgres://app@db.internal/payments").await?;
/// let client = oncely::Client::builder().store(store).build()?;
/// // At start-up, every replica: finish what any replica left, once each.
/// for result in client.resume().await? {
///     let _ = result;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("holder", &self.shared.holder)
            .finish_non_exhaustive()
    }
}

struct Shared {
    /// Each connection's queue.
    slots: Vec<mpsc::UnboundedSender<Job>>,
    /// This store's name in `oncely_leases.holder`.
    holder: String,
    lease_ms: i64,
    held: Arc<Mutex<Held>>,
    hasher: foldhash::fast::FixedState,
    /// Declared last: dropped after the queues, it waits for them.
    _thread: Handle,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            // Never from the store's own thread (its tasks hold no handle).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The intents this store holds now, with their tokens (renewed, and
/// fencing its writes), and those it is taking.
#[derive(Default)]
struct Held {
    tokens: HashMap<String, i64>,
    taking: HashSet<String>,
}

/// One operation, run on its connection (or told why there is none).
type Job = Box<dyn FnOnce(Result<Arc<Session>, Error>) -> BoxFuture<'static, ()> + Send>;

/// One connection, with the statements prepared on it (a statement is
/// parsed once per connection, not once per call: a round trip less).
struct Session {
    client: Connection,
    prepared: Mutex<HashMap<String, Statement>>,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Session {
    async fn statement(&self, sql: &str) -> Result<Statement, Error> {
        let cached = self
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sql)
            .cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await.map_err(|e| sql_error(&e))?;
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// `sql` in a transaction of its own, committed to the disk (as
    /// `Durability` asks of a new intent).
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        let statement = self.statement(sql).await?;
        self.client
            .execute(&statement, params)
            .await
            .map_err(|e| sql_error(&e))
    }

    async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        let statement = self.statement(sql).await?;
        self.client
            .query(&statement, params)
            .await
            .map_err(|e| sql_error(&e))
    }

    async fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, Error> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// `sql` in a transaction of its own whose commit does not wait for the
    /// disk (`synchronous_commit = off`), in one round trip: progress,
    /// outcomes and leases, which a commit lost to a crash of the database
    /// server only makes redo, under the same key (see [`Durability`]).
    async fn relaxed(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        let statement = self.statement(sql).await?;
        let (begun, rows, committed) = tokio::join!(
            self.client
                .batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
            self.client.query(&statement, params),
            self.client.batch_execute("COMMIT"),
        );
        begun.map_err(|e| sql_error(&e))?;
        let rows = rows.map_err(|e| sql_error(&e))?;
        committed.map_err(|e| sql_error(&e))?;
        Ok(rows)
    }
}

impl PostgresStore {
    /// Connects with the default [`PostgresStoreOptions`].
    ///
    /// # Errors
    /// See [`PostgresStoreOptions::connect`].
    pub async fn connect(url: &str) -> Result<PostgresStore, Error> {
        PostgresStoreOptions::default().connect(url).await
    }

    /// Options for [`PostgresStoreOptions::connect`].
    pub fn options() -> PostgresStoreOptions {
        PostgresStoreOptions::default()
    }

    /// Records `record` inside the application's own transaction (or on
    /// any connection `client` stands for): it commits with the
    /// application's rows or not at all. Once committed, `resume` (on any
    /// replica) or a call of the same intent sends it, under its key.
    /// `record` comes from
    /// [`IntentRequest::prepare`](crate::IntentRequest::prepare). Returns
    /// `false` when an intent of that name was recorded already (it is
    /// left as it was).
    ///
    /// The database must hold the store's schema: connect a `PostgresStore`
    /// to it once first.
    ///
    /// # Errors
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) when the statement
    /// fails (the transaction is then aborted, as any failed statement
    /// aborts it).
    pub async fn enqueue(
        client: &impl tokio_postgres::GenericClient,
        record: &Record,
    ) -> Result<bool, Error> {
        let v = Columns::of(record);
        let inserted = client
            .execute(INSERT, &insert_params(&v))
            .await
            .map_err(|e| sql_error(&e).with_intent(&record.name, Some(record.key.clone())))?;
        Ok(inserted == 1)
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.shared.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection an intent's operations run on.
    fn slot(&self, name: &str) -> usize {
        (self.shared.hasher.hash_one(name) % self.shared.slots.len() as u64) as usize
    }

    /// Queues `op` on connection `slot` now; the future answers its result
    /// (the operation runs even if the future is dropped).
    fn call<T, F, Fut>(&self, slot: usize, op: F) -> BoxFuture<'static, Result<T, Error>>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Session>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        queue(&self.shared.slots[slot], op)
    }

    /// Queues `op` after every operation called so far on every connection
    /// (a read of many intents sees every write called before it).
    fn call_after_all<T, F, Fut>(&self, op: F) -> BoxFuture<'static, Result<T, Error>>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Session>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let barriers: Vec<_> = (1..self.shared.slots.len())
            .map(|slot| self.call(slot, |_| async { Ok(()) }))
            .collect();
        self.call(0, move |connection| async move {
            for barrier in barriers {
                barrier.await?;
            }
            op(connection).await
        })
    }

    /// Tries to take the lease of `name` once: its token when taken.
    fn take(&self, name: &str) -> BoxFuture<'static, Result<Option<i64>, Error>> {
        let (name, holder, lease_ms) = (
            name.to_owned(),
            self.shared.holder.clone(),
            self.shared.lease_ms,
        );
        self.call(self.slot(&name), move |c| async move {
            let row = c
                .relaxed(
                    "INSERT INTO oncely_leases (name, holder, token, until) \
                     VALUES ($1, $2, nextval('oncely_lease_tokens'), clock_timestamp() + $3 * interval '1 millisecond') \
                     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = EXCLUDED.token, until = EXCLUDED.until \
                     WHERE oncely_leases.until <= clock_timestamp() OR oncely_leases.holder = EXCLUDED.holder \
                     RETURNING token",
                    &[&name, &holder, &(lease_ms as f64)],
                )
                .await?;
            match row.first() {
                Some(row) => Ok(Some(row.try_get::<_, i64>(0).map_err(|e| sql_error(&e))?)),
                None => Ok(None),
            }
        })
    }
}

impl Store for PostgresStore {
    fn create_or_get(&self, record: Record) -> BoxFuture<'_, Result<(Record, bool), Error>> {
        self.call(self.slot(&record.name), move |c| async move {
            let v = Columns::of(&record);
            // Twice at most: a record removed between the insert that found
            // it and the read is recorded anew.
            for _ in 0..2 {
                let inserted = c.execute(INSERT, &insert_params(&v)).await?;
                if inserted == 1 {
                    return Ok((record, true));
                }
                // A new statement, a new snapshot: the row the insert met.
                if let Some(stored) = select(&c, &record.name).await? {
                    return Ok((stored?, false));
                }
            }
            Err(Error::store("the record vanished while being created")
                .with_intent(&record.name, None))
        })
    }

    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Record>, Error>> {
        let owned = name.to_owned();
        let got = self.call(
            self.slot(name),
            move |c| async move { select(&c, &owned).await },
        );
        Box::pin(async move { got.await?.transpose() })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Record>, Error>> {
        self.call_after_all(|c| async move {
            let rows = c
                .query(
                    concat!(
                        "SELECT ",
                        record_columns!(),
                        " FROM oncely_intents ORDER BY created_at, name"
                    ),
                    &[],
                )
                .await?;
            rows.iter().map(read_row).collect()
        })
    }

    fn unsettled(&self) -> BoxFuture<'_, Result<Vec<Result<Record, Error>>, Error>> {
        self.call_after_all(|c| async move {
            let sql = format!(
                "SELECT {} FROM oncely_intents WHERE state IN ('pending', 'failed') ORDER BY created_at, name",
                record_columns!()
            );
            let rows = c.query(sql.as_str(), &[]).await?;
            let mut records: Vec<Result<Record, Error>> = rows.iter().map(read_row).collect();
            records.retain(|row| row.as_ref().map_or(true, Record::is_unsettled));
            Ok(records)
        })
    }

    fn claim<'a>(
        &'a self,
        user: Option<&'a str>,
        after: Option<&'a (u64, String)>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Claimed, Error>> {
        let (holder, lease_ms) = (self.shared.holder.clone(), self.shared.lease_ms);
        let user = user.map(str::to_owned);
        let (after_at, after_name) = match after {
            Some((at, name)) => (time(*at), name.clone()),
            None => (-1, String::new()),
        };
        let limit = limit.min(i64::MAX as usize) as i64;
        self.call_after_all(move |c| async move {
            // The oldest unsettled intents of the user past the cursor that
            // no other replica holds, each leased to this store in the same
            // statement; rows another replica is claiming right now are
            // skipped. A lease of this store's own is kept as it is: a
            // flight of it here holds its token (the flight's lock waits for
            // it), or it outlived a release the database missed.
            let sql = format!(
                "WITH picked AS ( \
                   SELECT name FROM oncely_intents i \
                   WHERE {UNSETTLED} AND owner IS NOT DISTINCT FROM $1 AND (created_at, name) > ($2, $3) \
                     AND NOT EXISTS (SELECT 1 FROM oncely_leases l WHERE l.name = i.name AND l.until > clock_timestamp() \
                       AND l.holder <> $5) \
                   ORDER BY created_at, name LIMIT $4 FOR UPDATE SKIP LOCKED \
                 ), leased AS ( \
                   INSERT INTO oncely_leases (name, holder, token, until) \
                   SELECT name, $5, nextval('oncely_lease_tokens'), clock_timestamp() + $6 * interval '1 millisecond' FROM picked \
                   ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until, \
                     token = CASE WHEN oncely_leases.holder = EXCLUDED.holder THEN oncely_leases.token ELSE EXCLUDED.token END \
                   WHERE oncely_leases.until <= clock_timestamp() OR oncely_leases.holder = EXCLUDED.holder \
                   RETURNING name \
                 ) \
                 SELECT {} FROM oncely_intents WHERE name IN (SELECT name FROM leased) ORDER BY created_at, name",
                record_columns!()
            );
            let rows = c
                .relaxed(
                    sql.as_str(),
                    &[&user, &after_at, &after_name, &limit, &holder, &(lease_ms as f64)],
                )
                .await?;
            let next = match rows.last() {
                Some(row) => Some((
                    row.try_get::<_, i64>(7).map_err(|e| sql_error(&e))?.max(0) as u64,
                    row.try_get::<_, String>(0).map_err(|e| sql_error(&e))?,
                )),
                None => None,
            };
            let records = rows.iter().map(read_row).collect();
            Ok(Claimed { records, next })
        })
    }

    fn update(&self, name: &str, update: Update) -> BoxFuture<'static, Result<(), Error>> {
        let token = self.held().tokens.get(name).copied();
        let name = name.to_owned();
        self.call(self.slot(&name), move |c| async move {
            let o = OutcomeColumns::of(&update.failure, &update.response);
            let attempts = i64::from(update.attempts);
            let state = update.state.as_str();
            // `Update::applies_to` in SQL, fenced by this store's lease on
            // the intent when it holds one.
            let changed = c
                .relaxed(
                    "UPDATE oncely_intents SET attempts = $2, state = $3, failure_kind = $4, failure_message = $5, \
                     last_status = $6, status = $7, response_headers = $8, response_body = $9 \
                     WHERE name = $1 AND (state IN ('pending', 'failed') OR (state = 'settled' AND $3 = 'expired')) \
                     AND ($10::bigint IS NULL OR EXISTS (SELECT 1 FROM oncely_leases WHERE name = $1 AND token = $10)) \
                     RETURNING 1",
                    &[
                        &name,
                        &attempts,
                        &state,
                        &o.failure_kind,
                        &o.failure_message,
                        &o.last_status,
                        &o.status,
                        &o.response_headers,
                        &o.response_body,
                        &token,
                    ],
                )
                .await?;
            if !changed.is_empty() {
                return Ok(());
            }
            let row = c
                .query_opt(
                    "SELECT EXISTS (SELECT 1 FROM oncely_intents WHERE name = $1), \
                     $2::bigint IS NULL OR EXISTS (SELECT 1 FROM oncely_leases WHERE name = $1 AND token = $2)",
                    &[&name, &token],
                )
                .await?
                .ok_or_else(|| Error::store("PostgreSQL answered no row"))?;
            let exists: bool = row.try_get(0).map_err(|e| sql_error(&e))?;
            let holding: bool = row.try_get(1).map_err(|e| sql_error(&e))?;
            if !exists {
                return Err(Error::store(format!("no record named {name:?}: it was forgotten")));
            }
            if !holding {
                return Err(Error::store(
                    "another replica took the intent over (this one's lease on it ended): what it records stands",
                )
                .with_intent(&name, None));
            }
            // The record is final (see `Update::applies_to`).
            Ok(())
        })
    }

    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let token = self.held().tokens.get(name).copied();
        let owned = name.to_owned();
        self.call(self.slot(name), move |c| async move {
            let removed = c
                .relaxed(
                    "DELETE FROM oncely_intents WHERE name = $1 \
                     AND ($2::bigint IS NULL OR EXISTS (SELECT 1 FROM oncely_leases WHERE name = $1 AND token = $2)) \
                     RETURNING 1",
                    &[&owned, &token],
                )
                .await?;
            Ok(!removed.is_empty())
        })
    }

    fn prune(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, Error>> {
        // What `Record::is_prunable` says, in SQL (see `FileStore::prune`);
        // intents a replica holds now are left to it.
        self.call_after_all(move |c| async move {
            let pruned = c
                .relaxed(
                    "DELETE FROM oncely_intents i WHERE expires_at BETWEEN 0 AND $1 AND (state IN ('settled', 'expired') \
                     OR (state = 'failed' AND failure_kind IN ('conflict', 'rejected', 'expired', 'storage', 'invalid'))) \
                     AND NOT EXISTS (SELECT 1 FROM oncely_leases l WHERE l.name = i.name AND l.until > clock_timestamp()) \
                     RETURNING 1",
                    &[&time(now_ms)],
                )
                .await?;
            Ok(pruned.len())
        })
    }

    fn lock(&self, name: &str) -> Option<BoxFuture<'static, Result<IntentLock, Error>>> {
        let store = self.clone();
        let name = name.to_owned();
        Some(Box::pin(async move {
            // One flight of an intent per store at a time, then one per
            // fleet: the lease.
            loop {
                if store.held().taking.insert(name.clone()) {
                    break;
                }
                tokio::time::sleep(RETRY).await;
            }
            let mut taking = Taking {
                store: &store,
                name: &name,
                done: false,
            };
            let token = loop {
                if let Some(token) = store.take(&name).await? {
                    break token;
                }
                tokio::time::sleep(RETRY).await;
            };
            taking.done = true;
            drop(taking);
            store.held().tokens.insert(name.clone(), token);
            Ok(IntentLock::new(move || store.release(name, token)))
        }))
    }
}

/// A lock being taken: dropped before it is held (the caller stopped
/// waiting, or the database failed), the intent is free again in this store.
struct Taking<'a> {
    store: &'a PostgresStore,
    name: &'a str,
    done: bool,
}

impl Drop for Taking<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.store.held().taking.remove(self.name);
        }
    }
}

impl PostgresStore {
    /// Gives the lease back, after every operation of the intent called
    /// before (its outcome is recorded first).
    fn release(&self, name: String, token: i64) {
        {
            let mut held = self.held();
            held.tokens.remove(&name);
            held.taking.remove(&name);
        }
        let slot = self.slot(&name);
        let done = self.call(slot, move |c| async move {
            c.relaxed(
                "DELETE FROM oncely_leases WHERE name = $1 AND token = $2",
                &[&name, &token],
            )
            .await
        });
        // Nobody waits; failing, the lease ends by itself.
        drop(done);
    }
}

const INSERT: &str = concat!(
    "INSERT INTO oncely_intents (",
    record_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
     ON CONFLICT (name) DO NOTHING"
);

fn insert_params(v: &Columns) -> [&(dyn ToSql + Sync); 19] {
    let o = &v.outcome;
    [
        &v.name,
        &v.key,
        &v.method,
        &v.url,
        &v.headers,
        &v.body,
        &v.fingerprint,
        &v.created_at,
        &v.expires_at,
        &v.attempts,
        &v.state,
        &o.failure_kind,
        &o.failure_message,
        &o.last_status,
        &o.status,
        &o.response_headers,
        &o.response_body,
        &v.withheld,
        &v.owner,
    ]
}

async fn select(c: &Session, name: &str) -> Result<Option<Result<Record, Error>>, Error> {
    let row = c
        .query_opt(
            concat!(
                "SELECT ",
                record_columns!(),
                " FROM oncely_intents WHERE name = $1"
            ),
            &[&name],
        )
        .await?;
    Ok(row.as_ref().map(read_row))
}

/// Reads one row (see [`Columns::record`]); a column of another type (a
/// schema changed by hand) is a damaged record too, named by its intent.
fn read_row(row: &Row) -> Result<Record, Error> {
    let name: String = row.try_get(0).map_err(|e| sql_error(&e))?;
    Columns::of_row(
        &name,
        read_columns!(row.try_get, name.clone(), tokio_postgres::Error),
    )
}

/// Opens one connection, its driver task spawned.
async fn open(config: &Config, durability: Durability) -> Result<Arc<Session>, Error> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| connect_error(config, e))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "a PostgreSQL connection of the store ended");
        }
    });
    if durability == Durability::Relaxed {
        client
            .batch_execute("SET synchronous_commit = off")
            .await
            .map_err(|e| sql_error(&e))?;
    }
    Ok(Arc::new(Session {
        client,
        prepared: Mutex::default(),
    }))
}

/// Creates the schema, or checks the one there, under an advisory lock so
/// replicas starting together do it once. Nothing is written to a foreign
/// or newer schema.
async fn set_up(c: &Session) -> Result<(), Error> {
    let batch = |sql: &'static str| async move {
        c.client.batch_execute(sql).await.map_err(|e| sql_error(&e))
    };
    batch("BEGIN").await?;
    let result = async {
        c.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        let row = c
            .query_opt(
                "SELECT to_regclass('oncely_schema') IS NOT NULL, to_regclass('oncely_intents') IS NOT NULL \
                 OR to_regclass('oncely_leases') IS NOT NULL",
                &[],
            )
            .await?
            .ok_or_else(|| Error::store("PostgreSQL answered no row"))?;
        let (versioned, tables) = (row.get::<_, bool>(0), row.get::<_, bool>(1));
        if versioned {
            let version: Option<i32> = c
                .query_opt("SELECT max(version) FROM oncely_schema", &[])
                .await?
                .and_then(|row| row.get(0));
            return match version {
                Some(SCHEMA_VERSION) => Ok(()),
                Some(version) if version > SCHEMA_VERSION => Err(Error::store(format!(
                    "the database holds a newer oncely's schema (version {version}, this one reads up to {SCHEMA_VERSION})"
                ))),
                _ => Err(Error::store(
                    "the database's oncely_schema table is not oncely's (no version this one knows)",
                )),
            };
        }
        if tables {
            return Err(Error::store(
                "the database has tables named oncely_intents or oncely_leases that are not oncely's (no oncely_schema)",
            ));
        }
        batch(SCHEMA).await?;
        c.execute("INSERT INTO oncely_schema (version) VALUES ($1)", &[&SCHEMA_VERSION])
            .await?;
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    batch(end).await?;
    result
}

/// A connection's task: performs its queue in order, opening the
/// connection again when it broke.
async fn work(
    config: Arc<Config>,
    durability: Durability,
    mut connection: Option<Arc<Session>>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    while let Some(job) = jobs.recv().await {
        if connection.as_ref().is_some_and(|c| c.client.is_closed()) {
            connection = None;
        }
        let ready = match &connection {
            Some(c) => Ok(Arc::clone(c)),
            None => match open(&config, durability).await {
                Ok(c) => {
                    connection = Some(Arc::clone(&c));
                    Ok(c)
                }
                Err(error) => Err(error),
            },
        };
        job(ready).await;
    }
}

/// Renews the leases the store holds, every quarter of a lease, until the
/// store is dropped (it holds neither the store nor its queue).
async fn renew(
    held: Weak<Mutex<Held>>,
    slot: mpsc::WeakUnboundedSender<Job>,
    lease_ms: i64,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let (Some(held), Some(slot)) = (held.upgrade(), slot.upgrade()) else {
            return;
        };
        let tokens: Vec<i64> = held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tokens
            .values()
            .copied()
            .collect();
        drop(held);
        if tokens.is_empty() {
            continue;
        }
        let lease_ms = lease_ms as f64;
        let renewed = queue(&slot, move |c| async move {
            c.relaxed(
                "UPDATE oncely_leases SET until = clock_timestamp() + $2 * interval '1 millisecond' WHERE token = ANY($1)",
                &[&tokens, &lease_ms],
            )
            .await
        });
        drop(slot);
        if let Err(error) = renewed.await {
            tracing::warn!(%error, "the store could not renew its leases");
        }
    }
}

fn connect_error(config: &Config, error: tokio_postgres::Error) -> Error {
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let reason = match error.as_db_error().map(|e| e.code().clone()) {
        Some(SqlState::INVALID_PASSWORD | SqlState::INVALID_AUTHORIZATION_SPECIFICATION) => {
            "the server refused the credentials".to_owned()
        }
        Some(SqlState::INVALID_CATALOG_NAME) => "the server has no such database".to_owned(),
        Some(_) => error.to_string(),
        None => format!("the server cannot be reached ({error})"),
    };
    Error::store(format!("PostgreSQL at {host}: {reason}")).with_source(error)
}

fn sql_error(error: &tokio_postgres::Error) -> Error {
    let message = match error.as_db_error() {
        Some(db) => format!("PostgreSQL: {}", db.message()),
        None if error.is_closed() => {
            "PostgreSQL: the connection to the database was lost".to_owned()
        }
        None => format!("PostgreSQL: {error}"),
    };
    Error::store(message)
}
