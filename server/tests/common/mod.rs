//! A real server on loopback over a fresh SQLite file (or a PostgreSQL
//! database), and a client for it.

#![allow(dead_code)] // each test file uses its own subset

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oncely_server::{Options, Server};
use reqwest::{Client, Response};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub const BODY: &str = r#"{"amount":1250,"currency":"EUR","description":"tea"}"#;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub struct Harness {
    pub server: Server,
    pub client: Client,
    pub dir: TempDir,
}

impl Harness {
    pub async fn start() -> Result<Harness, Box<dyn std::error::Error>> {
        Harness::start_with(|_| {}).await
    }

    pub async fn start_with(
        configure: impl FnOnce(&mut Options),
    ) -> Result<Harness, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut options = Options::new(dir.path().join("ledger.db"));
        configure(&mut options);
        let server = Server::start(options).await?;
        Ok(Harness {
            server,
            client: Client::new(),
            dir,
        })
    }

    /// A server on the PostgreSQL database at `url` (its `dir` stays empty).
    pub async fn start_postgres(
        url: &str,
        configure: impl FnOnce(&mut Options),
    ) -> Result<Harness, Box<dyn std::error::Error>> {
        let mut options = Options::postgres(url);
        configure(&mut options);
        let server = Server::start(options).await?;
        Ok(Harness {
            server,
            client: Client::new(),
            dir: tempfile::tempdir()?,
        })
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// `POST /api/charges` as `account`, with `key` sent verbatim as the header.
    pub async fn charge(
        &self,
        client: &Client,
        account: &str,
        key: Option<&str>,
        body: &str,
    ) -> reqwest::Result<Response> {
        let mut request = client
            .post(self.url("/api/charges"))
            .header("x-account", account)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await
    }

    pub async fn set_faults(
        &self,
        account: &str,
        faults: Value,
    ) -> Result<Value, Box<dyn std::error::Error>> {
        let response = self
            .client
            .post(self.url("/api/faults"))
            .header("x-account", account)
            .body(faults.to_string())
            .send()
            .await?;
        if response.status() != 200 {
            return Err(format!("setting faults: {}", response.status()).into());
        }
        Ok(response.json().await?)
    }

    pub async fn ledger(&self, account: &str) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
        let response = self
            .client
            .get(self.url("/api/charges"))
            .header("x-account", account)
            .send()
            .await?;
        Ok(response.json().await?)
    }
}

/// The state of a key's idempotency record, read straight from the file.
pub fn key_state(db: &Path, account: &str, key: &str) -> rusqlite::Result<Option<String>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.query_row(
        "SELECT state FROM idempotency_keys WHERE account = ?1 AND key = ?2",
        [account, key],
        |r| r.get(0),
    )
    .optional()
}

/// Polls `check` until it returns true, for at most 10 seconds.
pub async fn eventually<F, Fut>(what: &str, mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, Box<dyn std::error::Error>>>,
{
    for _ in 0..1000 {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("timed out waiting for {what}").into())
}

pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Sends a charge on a raw connection and returns the connection unread.
pub async fn send_raw(addr: SocketAddr, key: &str) -> std::io::Result<TcpStream> {
    let mut raw = TcpStream::connect(addr).await?;
    let request = format!(
        "POST /api/charges HTTP/1.1\r\nHost: test\r\nX-Account: acct\r\n\
         Idempotency-Key: \"{key}\"\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    raw.write_all(request.as_bytes()).await?;
    Ok(raw)
}

/// Closes the connection with a reset (RST) rather than an orderly FIN.
pub fn reset(raw: TcpStream) -> std::io::Result<()> {
    raw.set_zero_linger()?;
    drop(raw);
    Ok(())
}
