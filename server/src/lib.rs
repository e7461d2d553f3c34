//! The oncely reference server: a toy payments API that honours the IETF
//! Idempotency-Key draft on an embedded SQLite ledger, or on PostgreSQL
//! shared by several instances, with fault injection.
//!
//! Integration tests start it in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), oncely_server::StartError> {
//! let server = oncely_server::Server::start(oncely_server::Options::new("ledger.db")).await?;
//! println!("POST {}/api/charges", server.url());
//! server.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Endpoints
//!
//! Every request belongs to an account: the `X-Account` header, else the
//! `account` cookie, else `public`. Keys, ledger rows and faults are per account.
//!
//! - `POST /api/charges` with `Idempotency-Key` and
//!   `{"amount": 1000, "currency": "EUR", "description": "optional"}`:
//!   201 and the charge; 400 without a valid key or body; 409 (`Retry-After: 1`)
//!   while the same key is in progress, within its [lease](#leases); 422 when
//!   the key was used with another body; a completed key replays its response
//!   with `Idempotent-Replayed: true`.
//! - `GET /api/charges`: the account's ledger, oldest first.
//! - `GET|POST|DELETE /api/faults`: fault injection, see [Faults](#faults).
//! - `GET /api/health`: `{"ok":true,"retention_seconds":86400}`, see [Retention](#retention).
//!
//! # Faults
//!
//! `POST /api/faults` merges `{"fail_next": [{"status": 503, "headers":
//! {"Retry-After": "2"}}], "drop_next": 1, "slow_ms": 3000, "slow_record_ms":
//! 1000}` (every field optional, unknown fields a 400) into the account's
//! settings and returns them:
//!
//! - `fail_next` is appended to a queue; each later valid charge pops one and
//!   is answered with that status (200..=999), those headers verbatim and
//!   `{"error":"injected"}`, storing nothing.
//! - `drop_next` (replaces) charges are committed, then their connection is
//!   closed without a response.
//! - `slow_ms` (replaces, at most 60000) delays every charge while its key is
//!   in progress.
//! - `slow_record_ms` (replaces, at most 60000) delays the return of every
//!   write that records a key `in_progress`, as a slow disk would.
//!
//! `GET /api/faults` returns the settings, `DELETE /api/faults` clears them.
//!
//! # Leases
//!
//! A charge runs in a task of its own from the moment its key is looked up,
//! so a client hanging up never cancels it: the key is completed (or released,
//! if the ledger fails) and a retry gets the outcome. As a last resort against
//! a request that hangs, a key is in progress only for [`Options::lease`]
//! (10 s by default, [`DEFAULT_LEASE`]); after that the next request with the
//! same key and body takes it over under a new lease and runs the charge. If
//! the request it took over is still running, the two race to commit: the
//! charge and its key's outcome are one transaction, so the first commit is
//! the one charge and the other request answers with it, replayed. A lease
//! shorter than the slowest legitimate charge (`slow_ms` above it, say) costs
//! work, never a second charge.
//!
//! # Retention
//!
//! Completed keys are kept for [`Options::retention`] (24 h by default) from
//! first use, then purged; reusing an expired key is a 422, never a second charge.
//!
//! # PostgreSQL
//!
//! With [`Options::postgres`] (`--db postgres://…`) the keys and the ledger
//! live in a PostgreSQL database, and any number of instances started on it
//! (behind one address, say) honour a key once between them: a retry on
//! another instance while the key is in progress gets 409, after the lease
//! another instance takes it over, and the ledger's `UNIQUE (account,
//! idempotency_key)` holds one charge per key. Leases and retention are
//! judged by the database's clock, so instances with skewed clocks agree.
//! A key whose instance died is free again when its lease ends (nothing is
//! forgotten at start: other instances may be running those requests).
//!
//! The tables (`oncely_idempotency_keys`, `oncely_charges`, and
//! `oncely_server_schema` holding their version) are created at the first
//! start; a database with a newer version, or with these tables not made by
//! this server, is refused without a write. Each instance opens at most 8
//! connections, without TLS, to PostgreSQL 11 or later. Faults stay each
//! instance's own, in memory: `POST /api/faults` on one instance does nothing
//! to the others.
//!
//! Tests make a database of their own with [`scratch_postgres`].

#![deny(missing_docs)]

mod account;
mod charges;
mod connection;
mod error;
mod faults;
mod inflight;
mod key;
mod ledger;
mod retention;
mod scratch;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderName, Method, StatusCode};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

use crate::error::ApiError;
use crate::faults::Faults;
use crate::inflight::InFlight;
use crate::ledger::Ledger;

pub use crate::scratch::{ScratchError, TEST_POSTGRES, scratch_postgres};

/// The default [`Options::lease`]: the slowest legitimate charge waits up to
/// the ledger's 5 s busy timeout for the file, then commits; twice that leaves
/// room for a slow disk.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// Where a [`Server`] keeps its idempotency keys and ledger.
///
/// Its `Debug` leaves a URL's password out.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file, created if missing: the server's alone (keys a
    /// previous run left in progress are forgotten at start).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user:password@host:port/db`,
    /// `postgresql://…` too, without TLS), shared by every server started on
    /// it: a key is honoured once across them. Its tables (`oncely_…`) are
    /// created at the first start. See [PostgreSQL](crate#postgresql).
    Postgres(String),
}

impl Database {
    /// How `--db` reads its value: a `postgres://` or `postgresql://` URL
    /// names a PostgreSQL database, anything else an SQLite file.
    pub fn parse(value: &str) -> Database {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            Database::Postgres(value.to_owned())
        } else {
            Database::Sqlite(PathBuf::from(value))
        }
    }

    /// The database for messages: a URL's password and query string left out.
    fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => {
                let url = url.split_once('?').map_or(url.as_str(), |(url, _)| url);
                let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
                match rest.rsplit_once('@') {
                    Some((user, host)) => {
                        let user = user.split_once(':').map_or(user, |(user, _)| user);
                        format!("{scheme}://{user}@{host}")
                    }
                    None => url.to_owned(),
                }
            }
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(_) => f.debug_tuple("Postgres").field(&self.describe()).finish(),
        }
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Database {
        Database::Sqlite(path)
    }
}

impl From<&std::path::Path> for Database {
    fn from(path: &std::path::Path) -> Database {
        Database::Sqlite(path.to_owned())
    }
}

/// How to run a [`Server`].
///
/// # Defaults
///
/// - `addr`: `127.0.0.1:0` (an ephemeral port on loopback)
/// - `www`: `None` (no static files)
/// - `retention`: 24 hours
/// - `lease`: 10 seconds
#[derive(Debug, Clone)]
pub struct Options {
    /// Where keys and the ledger are kept.
    pub db: Database,
    /// Where to listen.
    pub addr: SocketAddr,
    /// A directory served at `/` for paths no API route claims.
    pub www: Option<PathBuf>,
    /// How long completed idempotency keys are remembered.
    pub retention: Duration,
    /// How long a key stays in progress for the request that recorded it:
    /// until then a retry with the key gets 409; after it, a retry with the
    /// same body takes the key over and runs the charge. See [Leases](crate#leases).
    pub lease: Duration,
}

impl Options {
    /// Options for a server on the SQLite file `db` with every other field
    /// at its default.
    pub fn new(db: impl Into<PathBuf>) -> Options {
        Options::on(Database::Sqlite(db.into()))
    }

    /// Options for a server on the PostgreSQL database at `url` (see
    /// [`Database::Postgres`]) with every other field at its default.
    pub fn postgres(url: impl Into<String>) -> Options {
        Options::on(Database::Postgres(url.into()))
    }

    /// Options for a server on `db` with every other field at its default.
    pub fn on(db: Database) -> Options {
        Options {
            db,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            www: None,
            retention: Duration::from_secs(24 * 60 * 60),
            lease: DEFAULT_LEASE,
        }
    }
}

/// Why a [`Server`] could not start.
#[derive(Debug)]
pub struct StartError {
    kind: StartErrorKind,
}

#[derive(Debug)]
enum StartErrorKind {
    Database {
        db: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    Bind {
        addr: SocketAddr,
        source: io::Error,
    },
}

impl StartError {
    fn database(options: &Options, source: Box<dyn std::error::Error + Send + Sync>) -> Self {
        StartError {
            kind: StartErrorKind::Database {
                db: options.db.describe(),
                source,
            },
        }
    }

    /// True if the database could not be opened: an SQLite file that cannot
    /// be opened or is not SQLite; a PostgreSQL URL that does not parse, a
    /// server that cannot be reached or refuses the credentials, or a database
    /// whose `oncely_…` tables this server did not make or is too old for.
    pub fn is_database(&self) -> bool {
        matches!(self.kind, StartErrorKind::Database { .. })
    }

    /// True if the listening address could not be bound.
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, StartErrorKind::Bind { .. })
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            StartErrorKind::Database { db, source } => {
                write!(f, "cannot open the ledger database {db}: {source}")
            }
            StartErrorKind::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            StartErrorKind::Database { source, .. } => Some(source.as_ref()),
            StartErrorKind::Bind { source, .. } => Some(source),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    ledger: Ledger,
    faults: Faults,
    processing: InFlight,
    retention: Duration,
    lease: Duration,
}

impl FromRef<AppState> for Faults {
    fn from_ref(app: &AppState) -> Faults {
        app.faults.clone()
    }
}

impl FromRef<AppState> for Duration {
    fn from_ref(app: &AppState) -> Duration {
        app.retention
    }
}

/// A running server. Dropping it stops accepting connections; [`Server::stop`]
/// also waits for work in flight.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// Taken by `stop`, which awaits it.
    accept_loop: Option<JoinHandle<()>>,
    sweeper: JoinHandle<()>,
    processing: InFlight,
}

impl Server {
    /// Opens the database, binds `options.addr` and starts serving on the
    /// current tokio runtime. Returns once the socket is listening.
    ///
    /// On SQLite, requests left `in_progress` by a previous run are
    /// forgotten: their charge never committed, because completing a key is
    /// atomic with it. On PostgreSQL they are left to their leases, as other
    /// instances may be running them; its tables are created if missing.
    ///
    /// # Errors
    ///
    /// The database cannot be opened ([`StartError::is_database`]), or the
    /// address cannot be bound ([`StartError::is_bind`]).
    pub async fn start(options: Options) -> Result<Server, StartError> {
        let ledger = Ledger::open(&options.db)
            .await
            .map_err(|e| StartError::database(&options, e.into()))?;
        let listener = TcpListener::bind(options.addr)
            .await
            .map_err(|source| StartError {
                kind: StartErrorKind::Bind {
                    addr: options.addr,
                    source,
                },
            })?;
        let addr = listener.local_addr().map_err(|source| StartError {
            kind: StartErrorKind::Bind {
                addr: options.addr,
                source,
            },
        })?;

        let processing = InFlight::default();
        let app = AppState {
            ledger: ledger.clone(),
            faults: Faults::default(),
            processing: processing.clone(),
            retention: options.retention,
            lease: options.lease,
        };
        let sweeper = retention::spawn_sweeper(ledger, options.retention);
        let (shutdown, stopping) = watch::channel(false);
        let accept_loop = tokio::spawn(connection::accept_loop(
            listener,
            router(app, options.www.as_deref()),
            stopping,
        ));
        Ok(Server {
            addr,
            shutdown,
            accept_loop: Some(accept_loop),
            sweeper,
            processing,
        })
    }

    /// The address the server listens on (with the real port if 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets open requests finish and waits for
    /// every charge being processed to commit.
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        if let Some(accept_loop) = self.accept_loop.take()
            && let Err(e) = accept_loop.await
        {
            eprintln!("oncely-server: accept loop ended abnormally: {e}");
        }
        self.processing.wait_idle().await;
        self.sweeper.abort();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Also reached after `stop`, where it is a no-op.
        self.shutdown.send_replace(true);
        self.sweeper.abort();
    }
}

fn router(app: AppState, www: Option<&std::path::Path>) -> Router {
    let api = Router::new()
        .route("/api/charges", get(charges::list).post(charges::create))
        .route(
            "/api/faults",
            get(faults::get).post(faults::post).delete(faults::delete),
        )
        .route("/api/health", get(retention::health))
        .with_state(app);
    let routed = match www {
        Some(dir) => api.fallback_service(ServeDir::new(dir)),
        None => api.fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        }),
    };
    routed.layer(cors())
}

/// Browsers preflight `Idempotency-Key`; it must be an allowed header, and the
/// replay marker must be exposed for scripts to see it.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("content-type"),
            HeaderName::from_static("x-account"),
        ])
        .expose_headers([
            HeaderName::from_static("idempotent-replayed"),
            HeaderName::from_static("retry-after"),
            HeaderName::from_static("idempotency-key"),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_described_without_its_password() {
        let db = Database::parse("postgres://app:s3cret@db.internal:5433/ledger?password=x");
        assert_eq!(db.describe(), "postgres://app@db.internal:5433/ledger");
        assert!(!format!("{db:?}").contains("s3cret"));
        let db = Database::parse("postgresql://db.internal/ledger");
        assert_eq!(db.describe(), "postgresql://db.internal/ledger");
        let db = Database::parse("ledger.db");
        assert_eq!(db, Database::Sqlite(PathBuf::from("ledger.db")));
    }
}
