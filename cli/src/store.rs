//! Where intents are recorded: the `--store` file or PostgreSQL URL,
//! `ONCELY_STORE`, or the platform's state directory.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::Args;
use oncely::{FileStore, PostgresStore, Store};

use crate::exit::{Exit, Failure};

/// The `--store` option every command shares.
#[derive(Debug, Args)]
pub struct StoreArg {
    /// The intent store: a SQLite file, or a PostgreSQL URL
    /// (postgres://user@host/db) that several hosts share [default:
    /// $XDG_STATE_HOME/oncely/intents.db, else ~/.local/state/oncely/intents.db;
    /// on macOS and Windows the local data directory; an empty value means
    /// the default]
    // An `OsString`, not a `PathBuf`: clap refuses an empty path, and an
    // empty ONCELY_STORE is common enough to mean "unset".
    #[arg(long = "store", value_name = "PATH|URL", env = "ONCELY_STORE")]
    path: Option<OsString>,
}

/// Where the store is.
pub enum Location {
    File(PathBuf),
    Postgres(String),
}

impl fmt::Display for Location {
    /// The path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                match rest.split_once('@') {
                    Some((user, host)) => {
                        let user = user.split_once(':').map_or(user, |(user, _)| user);
                        write!(f, "{scheme}://{user}@{host}")
                    }
                    None => write!(f, "{scheme}://{rest}"),
                }
            }
        }
    }
}

impl StoreArg {
    /// The store's location: the flag, else `ONCELY_STORE`, else the default.
    pub fn location(&self) -> Result<Location, Failure> {
        match &self.path {
            Some(path) if !path.is_empty() => {
                let text = path.to_string_lossy();
                Ok(
                    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
                        Location::Postgres(text.into_owned())
                    } else {
                        Location::File(PathBuf::from(path))
                    },
                )
            }
            _ => default_path().map(Location::File).ok_or_else(|| {
                Failure::new(
                    Exit::Store,
                    "no state directory on this system: pass --store PATH or set ONCELY_STORE",
                )
            }),
        }
    }

    /// Opens the store, creating it if missing.
    pub async fn open(&self) -> Result<Box<dyn Store>, Failure> {
        Ok(match self.location()? {
            Location::File(path) => Box::new(FileStore::open(path)?),
            Location::Postgres(url) => Box::new(PostgresStore::connect(&url).await?),
        })
    }

    /// Opens the store if its file exists: reading commands never create
    /// one (a PostgreSQL database is always there: its tables are made
    /// when missing).
    pub async fn open_existing(&self) -> Result<Option<Box<dyn Store>>, Failure> {
        match self.location()? {
            Location::File(path) => match path.try_exists() {
                Ok(true) => Ok(Some(Box::new(FileStore::open(path)?))),
                Ok(false) => Ok(None),
                Err(e) => Err(Failure::new(
                    Exit::Store,
                    format!("store {}: cannot be reached: {e}", path.display()),
                )),
            },
            Location::Postgres(url) => Ok(Some(Box::new(PostgresStore::connect(&url).await?))),
        }
    }
}

/// `<state dir>/oncely/intents.db`; the local data directory where the
/// platform has no state directory (macOS, Windows).
fn default_path() -> Option<PathBuf> {
    let base = dirs::state_dir().or_else(dirs::data_local_dir)?;
    Some(base.join("oncely").join("intents.db"))
}
