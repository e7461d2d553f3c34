//! The durable native store: one SQLite file.
//!
//! One writer thread owns the connection and commits in groups: every
//! operation queued while a commit is on the disk joins the next transaction,
//! so 64 concurrent intents cost a handful of `fsync`s, not 128.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use futures_channel::oneshot;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

mod lease;

use super::columns::{Columns, OutcomeColumns, read_columns, record_columns, time};
use super::{Durability, IntentLock, Store, Update};
use crate::intent::Record;
use crate::runtime::BoxFuture;
use crate::Error;

/// `PRAGMA application_id` of an oncely store ("oncE"): tells our files from
/// other SQLite databases.
const APPLICATION_ID: i64 = 0x6F6E_6345;
/// `PRAGMA user_version`: the schema version this code writes. Version 2
/// added `withheld` and `owner`, version 3 the `leases` table; an older
/// file is migrated when opened.
const SCHEMA_VERSION: i64 = 3;
/// The most operations one transaction groups.
const MAX_BATCH: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS intents (
    name TEXT PRIMARY KEY NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    fingerprint BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    state TEXT NOT NULL,
    failure_kind TEXT,
    failure_message TEXT,
    last_status INTEGER,
    status INTEGER,
    response_headers TEXT,
    response_body BLOB,
    withheld TEXT NOT NULL DEFAULT '',
    owner TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    until INTEGER NOT NULL
) STRICT;
";

/// From schema version 1 to 2, in one transaction (to 3: [`SCHEMA`]
/// creates what is missing).
const MIGRATE_1_TO_2: &str = "
ALTER TABLE intents ADD COLUMN withheld TEXT NOT NULL DEFAULT '';
ALTER TABLE intents ADD COLUMN owner TEXT;
";

/// How to open a [`FileStore`].
///
/// # Defaults
/// - durability: [`Durability::Strict`] (`synchronous=FULL`)
/// - busy timeout: 5 s (how long to wait for another process holding the
///   write lock)
/// - lease: 10 s (see [`lease`](FileStoreOptions::lease))
#[derive(Debug, Clone)]
pub struct FileStoreOptions {
    durability: Durability,
    busy_timeout: Duration,
    lease: Duration,
}

impl Default for FileStoreOptions {
    fn default() -> FileStoreOptions {
        FileStoreOptions {
            durability: Durability::Strict,
            busy_timeout: Duration::from_secs(5),
            lease: Duration::from_secs(10),
        }
    }
}

impl FileStoreOptions {
    /// Sets the durability ([`Durability::Relaxed`] opts out of `fsync` per
    /// commit).
    pub fn durability(mut self, durability: Durability) -> FileStoreOptions {
        self.durability = durability;
        self
    }

    /// Sets how long to wait for another process holding the write lock.
    pub fn busy_timeout(mut self, timeout: Duration) -> FileStoreOptions {
        self.busy_timeout = timeout;
        self
    }

    /// Sets the lease a process takes on an intent while it flies it
    /// (renewed every quarter of it while held): how long other processes
    /// wait for an intent whose process stalled (suspended, stopped) before
    /// they take it over. A process of this machine that is gone (killed)
    /// is taken over at once. At least 100 ms.
    pub fn lease(mut self, lease: Duration) -> FileStoreOptions {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the file cannot be created or opened, is
    /// not a SQLite database, belongs to another application, was written by
    /// a newer oncely, or fails SQLite's integrity check. The file is never
    /// modified or replaced in those cases.
    pub fn open(self, path: impl AsRef<Path>) -> Result<FileStore, Error> {
        let path = path.as_ref();
        let connection =
            open_connection(path, &self).map_err(|e| e.context(&format!("store {}", path.display())))?;
        let (sender, receiver) = mpsc::channel::<Message>();
        let durability = self.durability;
        let leases = lease::Leases::new(self.lease);
        let writer = thread::Builder::new()
            .name("oncely-store".to_owned())
            .spawn(move || run_writer(connection, receiver, durability, leases))
            .map_err(|e| Error::store(format!("cannot start the store's writer thread: {e}")))?;
        Ok(FileStore {
            writer: Arc::new(Writer {
                sender: Some(sender),
                thread: Some(writer),
            }),
            path: path.to_owned(),
        })
    }
}

/// Intent records in a SQLite file: durable across crashes, safe to share
/// between processes (WAL, a busy timeout, and atomic create-or-get, so two
/// processes recording one intent end with the same key). One process at a
/// time flies an intent: it holds a lease on it (see
/// [`FileStoreOptions::lease`]), and another waits for it to land, then
/// replays its outcome.
///
/// Clones share one connection and one writer thread.
///
/// # Examples
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = oncely::FileStore::open(dir.path().join("intents.db"))?;
/// let client = oncely::Client::builder().store(store).build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    writer: Arc<Writer>,
    path: PathBuf,
}

/// The writer thread and its queue. Dropping the last handle lets the thread
/// finish what is queued and waits for it, so a program that returns right
/// after a call still leaves its outcome recorded.
#[derive(Debug)]
struct Writer {
    sender: Option<mpsc::Sender<Message>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl FileStore {
    /// Opens (or creates) the store at `path` with the default
    /// [`FileStoreOptions`].
    ///
    /// # Errors
    /// See [`FileStoreOptions::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<FileStore, Error> {
        FileStoreOptions::default().open(path)
    }

    /// Options for [`FileStoreOptions::open`].
    pub fn options() -> FileStoreOptions {
        FileStoreOptions::default()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `operation` in the writer's next transaction; resolves once that
    /// transaction has committed. A `durable` operation's commit reaches the
    /// disk before it resolves (under [`Durability::Strict`]).
    ///
    /// Every operation is a single writing statement, atomic by itself, so a
    /// failing one never undoes the rest of its group.
    fn call<T: Send + 'static>(
        &self,
        durable: bool,
        operation: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, Error>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            durable,
            run: Box::new(move |connection| {
                let result = connection.and_then(operation);
                Box::new(move |commit: Result<(), Error>| {
                    // Nobody waiting (an outcome written behind the answer):
                    // a failure is still worth saying.
                    if let Err(Err(error)) = reply.send(commit.and(result)) {
                        tracing::warn!(%error, "a store write nobody awaited failed");
                    }
                })
            }),
        };
        let sent = self.send(Message::Job(job));
        Box::pin(async move {
            sent.map_err(|_| Error::store("the store's writer thread has stopped"))?;
            answer
                .await
                .map_err(|_| Error::store("the store's writer thread stopped mid-operation"))?
        })
    }
}

impl FileStore {
    fn send(&self, message: Message) -> Result<(), ()> {
        match &self.writer.sender {
            Some(sender) => sender.send(message).map_err(|_| ()),
            None => Err(()),
        }
    }
}

/// What the writer thread is asked to do.
enum Message {
    Job(Job),
    /// Take the lease of an intent; answered once held.
    Lock(lease::Waiter),
    /// Give a lease back.
    Unlock(String),
}

/// One queued operation: runs against the open transaction (or learns why
/// there is none) and returns how to deliver its result once the commit's
/// fate is known.
struct Job {
    /// Must be on the disk before its caller goes on: recording an intent
    /// before its first attempt. Progress and outcomes need not: if a power
    /// cut loses one, the intent is re-sent under the same key and the server
    /// replays its answer.
    durable: bool,
    run: Run,
}
type Run = Box<dyn FnOnce(Result<&Connection, Error>) -> Deliver + Send>;
type Deliver = Box<dyn FnOnce(Result<(), Error>) + Send>;

fn run_writer(
    connection: Connection,
    messages: mpsc::Receiver<Message>,
    durability: Durability,
    mut leases: lease::Leases,
) {
    // `synchronous` as last set: FULL syncs the WAL at each commit, NORMAL
    // leaves it to the next FULL commit or checkpoint.
    let mut syncing = durability == Durability::Strict;
    loop {
        let first = match leases.wake_in(std::time::Instant::now()) {
            None => match messages.recv() {
                Ok(message) => Some(message),
                Err(_) => break,
            },
            Some(wait) => match messages.recv_timeout(wait) {
                Ok(message) => Some(message),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        let mut batch = Vec::new();
        let mut next = first;
        while let Some(message) = next.take() {
            match message {
                Message::Job(job) => batch.push(job),
                Message::Lock(waiter) => leases.want(waiter),
                Message::Unlock(name) => leases.give_back(name),
            }
            if batch.len() < MAX_BATCH {
                next = messages.try_recv().ok();
            }
        }
        let now = std::time::Instant::now();
        if batch.is_empty() && !leases.has_work(now) {
            continue;
        }
        let sync = durability == Durability::Strict && batch.iter().any(|job| job.durable);
        if sync != syncing {
            let mode = if sync { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = NORMAL" };
            if connection.execute_batch(mode).is_ok() {
                syncing = sync;
            }
        }
        match connection.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                let deliveries: Vec<Deliver> = batch.into_iter().map(|job| (job.run)(Ok(&connection))).collect();
                // After the batch's writes: a lease given back is free only
                // once the outcome written before it is.
                let granted = leases.work(&connection, now);
                let commit = connection.execute_batch("COMMIT").map_err(sql_error);
                if commit.is_err() {
                    let _ = connection.execute_batch("ROLLBACK");
                }
                for deliver in deliveries {
                    deliver(commit.clone());
                }
                leases.answer(granted, &commit);
            }
            Err(e) => {
                // Waiting locks ask again on the next round.
                let error = sql_error(e);
                for job in batch {
                    (job.run)(Err(error.clone()))(Err(error.clone()));
                }
            }
        }
    }
    leases.close(&connection);
}

/// Whether SQLite gave up waiting for another process's write lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn sql_error(error: rusqlite::Error) -> Error {
    let message = match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => "the file is corrupt",
        Some(rusqlite::ErrorCode::NotADatabase) => "the file is not a SQLite database (not an oncely store)",
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            "the file stayed locked by another process past the busy timeout"
        }
        Some(rusqlite::ErrorCode::DiskFull) => "the disk is full",
        Some(rusqlite::ErrorCode::ReadOnly) => "the file is read-only",
        Some(rusqlite::ErrorCode::CannotOpen) => "the file cannot be opened",
        Some(rusqlite::ErrorCode::PermissionDenied) => "permission denied",
        _ => "SQLite failed",
    };
    Error::store(format!("{message} ({error})")).with_source(error)
}

fn open_connection(path: &Path, options: &FileStoreOptions) -> Result<Connection, Error> {
    if path.is_dir() {
        return Err(Error::store("the path is a directory, not a store file"));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::store(format!("cannot create the store's directory: {e}")).with_source(e))?;
    }
    // SQLite answers BUSY at once, without its busy handler, when two
    // processes set up one file together (switching to WAL, creating the
    // schema): retry the whole set-up until the busy timeout is spent.
    let started = std::time::Instant::now();
    loop {
        match set_up(path, options) {
            Ok(connection) => return Ok(connection),
            Err(SetUpError::Busy(error)) if started.elapsed() < options.busy_timeout => {
                drop(error);
                thread::sleep(Duration::from_millis(5 + u64::from(started.elapsed().subsec_nanos() % 20)));
            }
            Err(SetUpError::Busy(error) | SetUpError::Other(error)) => return Err(error),
        }
    }
}

enum SetUpError {
    Busy(Error),
    Other(Error),
}

impl From<rusqlite::Error> for SetUpError {
    fn from(error: rusqlite::Error) -> SetUpError {
        let busy = is_busy(&error);
        let error = sql_error(error);
        if busy { SetUpError::Busy(error) } else { SetUpError::Other(error) }
    }
}

impl From<Error> for SetUpError {
    fn from(error: Error) -> SetUpError {
        SetUpError::Other(error)
    }
}

fn set_up(path: &Path, options: &FileStoreOptions) -> Result<Connection, SetUpError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(options.busy_timeout)?;

    // Identify the file before changing anything in it, from one snapshot:
    // another process may be creating the schema meanwhile.
    let (application_id, version, tables): (i64, i64, i64) = connection.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id), \
                (SELECT user_version FROM pragma_user_version), \
                (SELECT count(*) FROM sqlite_schema)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let fresh = application_id == 0 && version == 0 && tables == 0;
    if !fresh && application_id != APPLICATION_ID {
        return Err(SetUpError::Other(Error::store(
            "the file is a SQLite database of another application, not an oncely store",
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(SetUpError::Other(Error::store(format!(
            "the store was written by a newer oncely (schema {version}, this one reads up to {SCHEMA_VERSION})"
        ))));
    }

    if !fresh {
        // Before anything is written: a damaged file is reported and left
        // exactly as it is, for recovery.
        let check: String = connection
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            ?;
        if check != "ok" {
            return Err(SetUpError::Other(Error::store(format!("the file is corrupt (SQLite integrity check: {check})"))));
        }
    }

    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        ?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SetUpError::Other(Error::store(format!("cannot switch the file to WAL mode (it stays in {mode})"))));
    }
    let synchronous = match options.durability {
        Durability::Strict => "FULL",
        Durability::Relaxed => "NORMAL",
    };
    connection
        .execute_batch(&format!("PRAGMA synchronous = {synchronous}"))
        ?;

    if !fresh && version < SCHEMA_VERSION {
        migrate(&connection)?;
    }
    if fresh {
        // IF NOT EXISTS: another process may have created the schema since
        // this one looked.
        let created = connection.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ));
        if let Err(error) = created {
            let _ = connection.execute_batch("ROLLBACK");
            return Err(error.into());
        }
    }
    Ok(connection)
}

/// Brings an older schema up to [`SCHEMA_VERSION`], unless another process
/// did meanwhile (the version is read again under the write lock).
fn migrate(connection: &Connection) -> Result<(), SetUpError> {
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let migrated = (|| {
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version == 1 {
            connection.execute_batch(MIGRATE_1_TO_2)?;
        }
        connection.execute_batch(SCHEMA)?;
        connection.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
    })();
    if let Err(error) = migrated {
        let _ = connection.execute_batch("ROLLBACK");
        return Err(error.into());
    }
    Ok(())
}

impl Store for FileStore {
    fn create_or_get(&self, record: Record) -> BoxFuture<'_, Result<(Record, bool), Error>> {
        self.call(true, move |c| {
            if insert_if_absent(c, &record)? {
                return Ok((record, true));
            }
            let stored = select(c, &record.name)?
                .ok_or_else(|| Error::store("the record vanished while being created"))?;
            Ok((stored, false))
        })
    }

    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Record>, Error>> {
        let name = name.to_owned();
        self.call(false, move |c| select(c, &name))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Record>, Error>> {
        self.call(false, |c| select_all(c, concat!("SELECT ", record_columns!(), " FROM intents ORDER BY created_at, name")))
    }

    fn unsettled(&self) -> BoxFuture<'_, Result<Vec<Result<Record, Error>>, Error>> {
        self.call(false, |c| {
            // Settled and expired rows (they pile up) are not even read. Any
            // other row is, and judged: a damaged one is an `Err` in its
            // place, so a pending intent is never silently left out.
            let mut rows = select_rows(
                c,
                concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM intents WHERE state NOT IN ('settled', 'expired') ORDER BY created_at, name"
                ),
            )?;
            rows.retain(|row| row.as_ref().map_or(true, Record::is_unsettled));
            Ok(rows)
        })
    }

    fn update(&self, name: &str, update: Update) -> BoxFuture<'static, Result<(), Error>> {
        let name = name.to_owned();
        self.call(false, move |c| {
            let outcome = OutcomeColumns::of(&update.failure, &update.response);
            let changed = c
                .prepare_cached(
                    "UPDATE intents SET attempts = ?2, state = ?3, failure_kind = ?4, failure_message = ?5, \
                     last_status = ?6, status = ?7, response_headers = ?8, response_body = ?9 \
                     WHERE name = ?1 AND (state IN ('pending', 'failed') OR (state = 'settled' AND ?3 = 'expired'))",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        name,
                        update.attempts,
                        update.state.as_str(),
                        outcome.failure_kind,
                        outcome.failure_message,
                        outcome.last_status,
                        outcome.status,
                        outcome.response_headers,
                        outcome.response_body
                    ])
                })
                .map_err(sql_error)?;
            // Nothing changed: the record is final (see `Update::applies_to`,
            // the rule the statement above writes in SQL), or gone.
            let exists = changed > 0
                || c.prepare_cached("SELECT 1 FROM intents WHERE name = ?1")
                    .and_then(|mut s| s.exists(params![name]))
                    .map_err(sql_error)?;
            if !exists {
                return Err(Error::store(format!("no record named {name:?}: it was forgotten")));
            }
            Ok(())
        })
    }

    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let name = name.to_owned();
        self.call(false, move |c| {
            c.prepare_cached("DELETE FROM intents WHERE name = ?1")
                .and_then(|mut s| s.execute([&name]))
                .map(|n| n > 0)
                .map_err(sql_error)
        })
    }

    fn prune(&self, now_ms: u64) -> BoxFuture<'_, Result<usize, Error>> {
        // What `Record::is_prunable` says, in SQL: past retention, and
        // settled, expired or failed for good (any failure kind but
        // gave_up, known kinds only: a damaged row is never removed). A
        // negative expiry is "forever" as an earlier version bound it.
        self.call(false, move |c| {
            c.prepare_cached(
                "DELETE FROM intents WHERE expires_at BETWEEN 0 AND ?1 AND (state IN ('settled', 'expired') \
                 OR (state = 'failed' AND failure_kind IN ('conflict', 'rejected', 'expired', 'storage', 'invalid')))",
            )
            .and_then(|mut s| s.execute([time(now_ms)]))
            .map_err(sql_error)
        })
    }

    fn lock(&self, name: &str) -> Option<BoxFuture<'static, Result<IntentLock, Error>>> {
        let (reply, granted) = oneshot::channel();
        let asked = self.send(Message::Lock(lease::Waiter {
            name: name.to_owned(),
            reply,
        }));
        let sender = self.writer.sender.clone();
        let name = name.to_owned();
        Some(Box::pin(async move {
            asked.map_err(|_| Error::store("the store's writer thread has stopped"))?;
            granted
                .await
                .map_err(|_| Error::store("the store's writer thread stopped mid-operation"))??;
            Ok(IntentLock::new(move || {
                if let Some(sender) = sender {
                    // Gone with the writer thread: the lease ends by itself.
                    let _ = sender.send(Message::Unlock(name));
                }
            }))
        }))
    }
}

/// Inserts `record` unless its name is taken; `true` when inserted.
fn insert_if_absent(c: &Connection, record: &Record) -> Result<bool, Error> {
    let v = Columns::of(record);
    let o = &v.outcome;
    c.prepare_cached(concat!(
        "INSERT INTO intents (",
        record_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) \
         ON CONFLICT (name) DO NOTHING"
    ))
    .and_then(|mut s| {
        s.execute(params![
            v.name,
            v.key,
            v.method,
            v.url,
            v.headers,
            v.body,
            v.fingerprint,
            v.created_at,
            v.expires_at,
            v.attempts,
            v.state,
            o.failure_kind,
            o.failure_message,
            o.last_status,
            o.status,
            o.response_headers,
            o.response_body,
            v.withheld,
            v.owner
        ])
    })
    .map(|inserted| inserted == 1)
    .map_err(sql_error)
}

/// Every row `sql` selects (the record's columns), in its order.
fn select_all(c: &Connection, sql: &str) -> Result<Vec<Record>, Error> {
    select_rows(c, sql)?.into_iter().collect()
}

/// Every row `sql` selects, each read on its own: a damaged row is an
/// `Err` in its place (the outer error: the statement itself failed).
fn select_rows(c: &Connection, sql: &str) -> Result<Vec<Result<Record, Error>>, Error> {
    let mut statement = c.prepare_cached(sql).map_err(sql_error)?;
    let rows = statement.query_map([], read_row).map_err(sql_error)?;
    Ok(rows.map(|row| row.map_err(sql_error).and_then(|r| r)).collect())
}

fn select(c: &Connection, name: &str) -> Result<Option<Record>, Error> {
    c.prepare_cached(concat!("SELECT ", record_columns!(), " FROM intents WHERE name = ?1"))
        .and_then(|mut s| s.query_row([name], read_row).optional())
        .map_err(sql_error)?
        .transpose()
}

/// Reads one row (see [`Columns::record`]); a column SQLite cannot read as
/// its type is a damaged record too, named by its intent.
fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<Record, Error>> {
    let name: String = row.get(0)?;
    Ok(Columns::of_row(&name, read_columns!(row.get, name.clone(), rusqlite::Error)))
}
