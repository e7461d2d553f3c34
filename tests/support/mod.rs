//! What the integration tests share: a clock that never sleeps, a seeded
//! random source, and the real reference server on loopback.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oncely::runtime::{BoxFuture, Clock, Random};
use oncely::{Event, EventKind};
use serde_json::Value;

/// Virtual time: `sleep` advances it at once and records the wait, so tests
/// of backoff, `Retry-After` and expiry run without sleeping.
#[derive(Clone, Default)]
pub struct VirtualClock {
    now_ms: Arc<AtomicU64>,
    sleeps: Arc<Mutex<Vec<Duration>>>,
    real_sleeps: bool,
}

impl VirtualClock {
    /// Starts at the real current time (so HTTP-dates from the server make sense).
    pub fn new() -> VirtualClock {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let clock = VirtualClock::default();
        clock.now_ms.store(now, Ordering::SeqCst);
        clock
    }

    /// A clock whose time moves only by [`advance`](Self::advance), and
    /// whose sleeps are real: for a store with per-intent locks
    /// (`FileStore`'s leases), whose bounded wait races a real thread.
    pub fn with_real_sleeps() -> VirtualClock {
        VirtualClock {
            real_sleeps: true,
            ..VirtualClock::new()
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        if self.real_sleeps {
            return Box::pin(tokio::time::sleep(duration));
        }
        self.sleeps.lock().unwrap().push(duration);
        self.advance(duration);
        Box::pin(tokio::task::yield_now())
    }
}

/// A deterministic random source (splitmix64).
pub struct SeededRandom(Mutex<u64>);

impl SeededRandom {
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom(Mutex::new(seed))
    }
}

impl Random for SeededRandom {
    fn fill(&self, dest: &mut [u8]) {
        let mut state = self.0.lock().unwrap();
        for chunk in dest.chunks_mut(8) {
            *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// The reference server on loopback with its own SQLite file.
pub struct TestServer {
    pub server: oncely_server::Server,
    pub dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let server =
            oncely_server::Server::start(oncely_server::Options::new(dir.path().join("ledger.db")))
                .await
                .unwrap();
        TestServer {
            server,
            dir,
            http: reqwest::Client::new(),
        }
    }

    pub fn charges_url(&self) -> String {
        format!("{}/api/charges", self.server.url())
    }

    /// The ledger of `account`, read through `GET /api/charges`.
    pub async fn ledger(&self, account: &str) -> Vec<Value> {
        let response = self
            .http
            .get(self.charges_url())
            .header("x-account", account)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        body.as_array().unwrap().clone()
    }

    /// Switches faults on for `account` (`POST /api/faults`).
    pub async fn faults(&self, account: &str, faults: Value) {
        let response = self
            .http
            .post(format!("{}/api/faults", self.server.url()))
            .header("x-account", account)
            .header("content-type", "application/json")
            .body(faults.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "faults refused: {}",
            response.status()
        );
    }
}

/// Pays through `client`: a POST of `body` to `url` for the intent, as
/// account `acct`.
pub async fn pay(
    client: &oncely::Client,
    url: &str,
    intent: &str,
    body: String,
) -> Result<oncely::Outcome, oncely::Error> {
    client
        .intent(intent)
        .post(url)
        .header("content-type", "application/json")
        .header("x-account", "acct")
        .body(body)
        .send()
        .await
}

/// A charge body.
pub fn charge(amount: u64) -> String {
    format!(r#"{{"amount":{amount},"currency":"usd"}}"#)
}

/// Every event of a client, in order.
#[derive(Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<Event>>>);

impl EventLog {
    pub fn handler(&self) -> impl Fn(&Event) + Send + Sync + 'static {
        let log = self.0.clone();
        move |event: &Event| log.lock().unwrap().push(event.clone())
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Attempt { .. }))
            .count()
    }

    pub fn count(&self, matches: impl Fn(&EventKind) -> bool) -> usize {
        self.events().iter().filter(|e| matches(&e.kind)).count()
    }
}

/// Fast retries on the real clock, for tests where the server's real time
/// matters (a slow commit).
pub fn quick_policy() -> oncely::RetryPolicy {
    oncely::RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        ..oncely::RetryPolicy::default()
    }
}

/// A fresh, empty database in the test cluster (`ONCELY_TEST_POSTGRES`,
/// which `make test` sets: tests/postgres/with-cluster.sh): its URL.
pub async fn scratch_postgres() -> String {
    oncely_server::scratch_postgres()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The real HTTP transport, counting the attempts that leave.
#[derive(Clone)]
pub struct Counted {
    http: Arc<oncely::transport::HttpTransport>,
    sent: Arc<std::sync::atomic::AtomicUsize>,
}

impl Counted {
    pub fn new() -> Counted {
        Counted {
            http: Arc::new(oncely::transport::HttpTransport::new().unwrap()),
            sent: Arc::default(),
        }
    }

    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

impl oncely::transport::Transport for Counted {
    fn check(&self, request: &oncely::Request) -> Result<(), String> {
        self.http.check(request)
    }

    fn resolve(&self, url: &str) -> String {
        self.http.resolve(url)
    }

    fn send<'a>(
        &'a self,
        outgoing: oncely::transport::Outgoing<'a>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<oncely::Response, oncely::transport::TransportError>> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.http.send(outgoing, timeout)
    }
}
