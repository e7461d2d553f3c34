//! Where intents are recorded: the `--store` file, `ONCELY_STORE`, or the
//! platform's state directory.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use oncely::FileStore;

use crate::exit::{Exit, Failure};

/// The `--store` option every command shares.
#[derive(Debug, Args)]
pub struct StoreArg {
    /// The intent store, a SQLite file [default: $XDG_STATE_HOME/oncely/intents.db,
    /// else ~/.local/state/oncely/intents.db; on macOS and Windows the local
    /// data directory; an empty value means the default]
    // An `OsString`, not a `PathBuf`: clap refuses an empty path, and an
    // empty ONCELY_STORE is common enough to mean "unset".
    #[arg(long = "store", value_name = "PATH", env = "ONCELY_STORE")]
    path: Option<OsString>,
}

impl StoreArg {
    /// The store's path: the flag, else `ONCELY_STORE`, else the default.
    pub fn path(&self) -> Result<PathBuf, Failure> {
        match &self.path {
            Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            _ => default_path().ok_or_else(|| {
                Failure::new(
                    Exit::Store,
                    "no state directory on this system: pass --store PATH or set ONCELY_STORE",
                )
            }),
        }
    }

    /// Opens the store, creating it if missing.
    pub fn open(&self) -> Result<FileStore, Failure> {
        Ok(FileStore::open(self.path()?)?)
    }

    /// Opens the store if its file exists: reading commands never create one.
    pub fn open_existing(&self) -> Result<Option<FileStore>, Failure> {
        let path = self.path()?;
        match path.try_exists() {
            Ok(true) => Ok(Some(FileStore::open(path)?)),
            Ok(false) => Ok(None),
            Err(e) => Err(Failure::new(
                Exit::Store,
                format!("store {}: cannot be reached: {e}", path.display()),
            )),
        }
    }
}

/// `<state dir>/oncely/intents.db`; the local data directory where the
/// platform has no state directory (macOS, Windows).
fn default_path() -> Option<PathBuf> {
    let base = dirs::state_dir().or_else(dirs::data_local_dir)?;
    Some(base.join("oncely").join("intents.db"))
}
