//! A fresh PostgreSQL database for a test, in the throwaway cluster that
//! `make test` and `tests/postgres/with-cluster.sh` start.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;

/// The variable holding the test cluster's URL.
pub const TEST_POSTGRES: &str = "ONCELY_TEST_POSTGRES";

/// Why [`scratch_postgres`] could not make a database.
#[derive(Debug)]
pub struct ScratchError {
    message: String,
}

impl fmt::Display for ScratchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScratchError {}

/// For tests: creates an empty database with a random name in the cluster
/// that `ONCELY_TEST_POSTGRES` points at (a superuser's URL) and returns its
/// URL, for [`Options::postgres`](crate::Options::postgres) or any other
/// PostgreSQL client. Each call makes a new one, so tests never see each
/// other's rows; the databases go when the throwaway cluster does.
///
/// # Errors
///
/// `ONCELY_TEST_POSTGRES` is not set (run the tests through `make test` or
/// `tests/postgres/with-cluster.sh`, which start a cluster and set it), is
/// not a `postgres://` URL, or the cluster refuses to make the database.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let url = oncely_server::scratch_postgres().await?;
/// let server = oncely_server::Server::start(oncely_server::Options::postgres(url)).await?;
/// # Ok(())
/// # }
/// ```
pub async fn scratch_postgres() -> Result<String, ScratchError> {
    let cluster = std::env::var(TEST_POSTGRES).map_err(|_| ScratchError {
        message: format!(
            "{TEST_POSTGRES} is not set: these tests need PostgreSQL. Run them through \
             `make test`, or as `tests/postgres/with-cluster.sh cargo test …` from the \
             repository's root: both start a throwaway cluster and set it"
        ),
    })?;
    let failed = |what: &str, e: &dyn fmt::Display| ScratchError {
        message: format!("{TEST_POSTGRES}={cluster}: {what}: {e}"),
    };
    if !(cluster.starts_with("postgres://") || cluster.starts_with("postgresql://")) {
        return Err(failed("not a postgres:// URL", &"expected postgres://…"));
    }
    let name = format!("oncely_scratch_{}", random_suffix());
    let (client, connection) = tokio_postgres::connect(&cluster, NoTls)
        .await
        .map_err(|e| failed("connecting", &with_cause(&e)))?;
    let connection = tokio::spawn(connection);
    let created = client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| failed("creating a database", &with_cause(&e)));
    drop(client);
    // The connection ends with its client; how does not matter any more.
    let _ = connection.await;
    created?;
    Ok(with_database(&cluster, &name))
}

/// `url` naming the database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// 16 hex digits no other call in any process is likely to draw.
fn random_suffix() -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut seed = Sha256::new();
    seed.update(std::process::id().to_le_bytes());
    seed.update(nanos.to_le_bytes());
    seed.update(CALLS.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    // Randomly keyed per process by the standard library.
    seed.update(RandomState::new().hash_one(nanos).to_le_bytes());
    seed.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// tokio-postgres names only an error's kind; the server's words are its source.
fn with_cause(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_swapped_in_the_url() {
        assert_eq!(
            with_database("postgres://oncely@127.0.0.1:5432/postgres", "x"),
            "postgres://oncely@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }

    #[test]
    fn suffixes_differ() {
        assert_ne!(random_suffix(), random_suffix());
        assert_eq!(random_suffix().len(), 16);
    }
}
