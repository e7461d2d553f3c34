//! The real `oncely` binary against a real reference server on loopback, with
//! a real SQLite store in a temporary directory.

#![allow(dead_code)] // each test file uses its own subset

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use oncely_server::{Options, Server};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use tempfile::TempDir;
use tokio::process::{Child, Command};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// A charge the reference server accepts.
pub const CHARGE: &str = r#"{"amount":1000,"currency":"usd"}"#;

/// How long one `oncely` run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

pub struct Harness {
    pub server: Server,
    pub dir: TempDir,
    /// The server account of this test: keys, ledger and faults are per account.
    pub account: String,
    http: reqwest::Client,
}

/// What one run of `oncely` left.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stdout as one JSON value.
    pub fn json(&self) -> Fallible<Value> {
        serde_json::from_slice(&self.stdout).map_err(|e| {
            format!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout_text(),
                self.stderr
            )
            .into()
        })
    }

    /// Fails with everything the run printed unless it exited with `code`.
    pub fn expect_code(&self, code: i32) -> TestResult {
        if self.code == Some(code) {
            return Ok(());
        }
        Err(format!(
            "expected exit {code}, got {:?}\nstdout: {}\nstderr: {}",
            self.code,
            self.stdout_text(),
            self.stderr
        )
        .into())
    }
}

impl Harness {
    pub async fn start(account: &str) -> Fallible<Harness> {
        let dir = tempfile::tempdir()?;
        let server = Server::start(Options::new(dir.path().join("ledger.db"))).await?;
        Ok(Harness {
            server,
            dir,
            account: account.to_owned(),
            http: reqwest::Client::new(),
        })
    }

    /// The store every command of this harness uses.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("state").join("intents.db")
    }

    pub fn ledger_db(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }

    pub fn charges_url(&self) -> String {
        format!("{}/api/charges", self.server.url())
    }

    /// `oncely ARGS` with the harness store in `ONCELY_STORE` and a home of
    /// its own (so nothing touches the real state directory).
    pub fn oncely(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oncely"));
        command
            .args(args)
            .env("ONCELY_STORE", self.store())
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_STATE_HOME", self.dir.path().join("home").join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// `oncely send --intent INTENT -H 'X-Account: ..' -H 'Content-Type: ..'
    /// -d BODY EXTRA.. URL`
    /// `oncely resume` with `extra`, as the account again (the account
    /// header is never stored: a resume is given it as a credential).
    pub fn resume(&self, extra: &[&str]) -> Command {
        let account = format!("X-Account: {}", self.account);
        let mut args = vec!["resume", "-H", &account];
        args.extend_from_slice(extra);
        self.oncely(&args)
    }

    pub fn send(&self, intent: &str, body: &str, extra: &[&str]) -> Command {
        let account = format!("X-Account: {}", self.account);
        let url = self.charges_url();
        let mut args = vec![
            "send",
            "--intent",
            intent,
            "-H",
            &account,
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ];
        args.extend_from_slice(extra);
        args.push(&url);
        self.oncely(&args)
    }

    /// `oncely list --json`, parsed.
    pub async fn list(&self) -> Fallible<Vec<Value>> {
        let run = run(self.oncely(&["list", "--json"])).await?;
        run.expect_code(0)?;
        match run.json()? {
            Value::Array(records) => Ok(records),
            other => Err(format!("list --json printed {other}").into()),
        }
    }

    /// The record of `intent`, as `oncely list --json` shows it.
    pub async fn record(&self, intent: &str) -> Fallible<Option<Value>> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|r| r["intent"] == intent))
    }

    /// The account's charges, oldest first.
    pub async fn ledger(&self) -> Fallible<Vec<Value>> {
        let response = self
            .http
            .get(self.charges_url())
            .header("x-account", &self.account)
            .send()
            .await?;
        Ok(response.json().await?)
    }

    /// Sets the account's faults (`fail_next`, `drop_next`, `slow_ms`).
    pub async fn faults(&self, faults: Value) -> TestResult {
        let response = self
            .http
            .post(format!("{}/api/faults", self.server.url()))
            .header("x-account", &self.account)
            .body(faults.to_string())
            .send()
            .await?;
        if response.status() != 200 {
            return Err(format!("setting faults: {}", response.status()).into());
        }
        Ok(())
    }

    /// The server's state of `key` for this account (`in_progress`,
    /// `completed`), read straight from its ledger file.
    pub fn server_key_state(&self, key: &str) -> Fallible<Option<String>> {
        let conn = Connection::open_with_flags(self.ledger_db(), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(conn
            .query_row(
                "SELECT state FROM idempotency_keys WHERE account = ?1 AND key = ?2",
                [self.account.as_str(), key],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// Runs `command` to its end (at most a minute).
pub async fn run(mut command: Command) -> Fallible<Run> {
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .map_err(|_| "oncely ran for more than a minute")??;
    Ok(Run::from_output(output))
}

/// Starts `command` without waiting for it.
pub fn spawn(mut command: Command) -> Fallible<Child> {
    Ok(command.spawn()?)
}

/// Waits for a spawned `oncely` to end (at most a minute).
pub async fn finish(child: Child) -> Fallible<Run> {
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .map_err(|_| "oncely ran for more than a minute")??;
    Ok(Run::from_output(output))
}

/// Polls `check` until it returns `Some`, for at most 20 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Fallible<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Fallible<Option<T>>>,
{
    for _ in 0..400 {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("timed out waiting for {what}").into())
}

/// The bytes of the store and its WAL and shared-memory files.
pub fn store_bytes(store: &Path) -> Fallible<Vec<u8>> {
    let mut bytes = std::fs::read(store)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = store.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(more) = std::fs::read(PathBuf::from(name)) {
            bytes.extend(more);
        }
    }
    Ok(bytes)
}

/// The keys of the ledger's rows.
pub fn ledger_keys(ledger: &[Value]) -> Vec<String> {
    ledger
        .iter()
        .map(|row| row["idempotency_key"].as_str().unwrap_or("?").to_owned())
        .collect()
}
