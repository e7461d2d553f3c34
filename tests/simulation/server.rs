//! The simulated server: the Idempotency-Key protocol over a ledger of
//! charges, with restarts and a retention that forgets keys.
//!
//! Per key: the first request with a new key is worked on (in progress: any
//! other request with that key gets 409), then committed (a charge in the
//! ledger, or a 402 decline, recorded under the key); later requests with
//! that key get the first outcome replayed, or 422 when their payload
//! differs. A restart forgets the keys in progress (their work is lost, no
//! charge) and keeps the completed ones; retention forgets completed keys,
//! after which the same key is new again and charges again.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use oncely::Response;
use oncely::transport::{TransportError, TransportErrorKind};

use crate::time::EPOCH_MS;
use crate::world::World;

/// A request as it reaches the server.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Delivered {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One charge: the effect that must happen once per intent.
#[derive(Debug, Clone)]
pub struct Charge {
    pub id: u64,
    pub at: u64,
    /// The intent the request body names.
    pub intent: String,
    pub key: String,
}

enum Progress {
    /// Being worked on (until done, or a restart loses the work).
    Working,
    Completed(Response),
}

struct Entry {
    /// Method, URL and body: what "the same payload" means.
    payload: (String, String, Bytes),
    /// When the key was first accepted: retention counts from here.
    since: u64,
    progress: Progress,
}

#[derive(Default)]
pub struct State {
    /// Restarts so far: work begun before one is lost.
    epoch: u64,
    /// Connections are refused until then (restarting).
    down_until: u64,
    keys: BTreeMap<String, Entry>,
    pub ledger: Vec<Charge>,
    /// Every outcome ever committed per key, in order (more than one only
    /// once retention forgot the key and it came again).
    pub committed: BTreeMap<String, Vec<Response>>,
    /// Every answer the server itself gave per key (gateways' not included).
    pub answered: BTreeMap<String, Vec<Response>>,
}

#[derive(Default)]
pub struct Server {
    state: Mutex<State>,
}

impl Server {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server process dies and comes back after `downtime`: work in
    /// progress is lost with its keys; completed keys are on disk.
    pub fn restart(&self, now: u64, downtime: u64) {
        let mut state = self.state();
        state.epoch += 1;
        state.down_until = now + downtime;
        state
            .keys
            .retain(|_, entry| matches!(entry.progress, Progress::Completed(_)));
    }
}

fn response(status: u16, headers: Vec<(String, String)>, body: String) -> Response {
    Response {
        status,
        headers,
        body: Bytes::from(body),
    }
}

fn refused(kind: TransportErrorKind, why: &str) -> TransportError {
    TransportError::new(kind, why)
}

/// The intent a request body names (`{"intent":"order-1",…}`).
pub fn intent_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("intent")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Handles one request, as the server would: the answer, or a broken
/// connection (refused while down, reset by a restart mid-work).
pub async fn handle(world: &World, request: Delivered) -> Result<Response, TransportError> {
    let now = world.time.now();
    let faults = &world.scenario.server;
    let (epoch, key) = {
        let mut state = world.server.state();
        if now < state.down_until {
            return Err(refused(
                TransportErrorKind::Connect,
                "connection refused (restarting)",
            ));
        }
        // Overload is shed at the door, before the key is looked at.
        if world.rng().chance(faults.throttle) {
            let status = world.rng().pick(&[429, 503]);
            let wait = world.rng().range(0, 20);
            let (value, form) = if world.rng().chance(0.5) {
                (wait.to_string(), "seconds")
            } else {
                // An HTTP-date by the server's own clock, which never jumps.
                let at = EPOCH_MS + now + wait * 1000;
                let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(at));
                (date, "HTTP-date")
            };
            world.note(format!("server {status} retry-after {value} ({form})"));
            return Ok(response(
                status,
                vec![("retry-after".into(), value)],
                r#"{"error":"busy"}"#.into(),
            ));
        }
        let Some(key) = request.header("idempotency-key").map(str::to_owned) else {
            return Ok(response(400, vec![], r#"{"error":"no key"}"#.into()));
        };
        if !request
            .header("authorization")
            .is_some_and(|v| v.starts_with("Bearer "))
        {
            // Authentication comes before idempotency: nothing is recorded
            // under the key.
            let answer = response(401, vec![], r#"{"error":"unauthenticated"}"#.into());
            state
                .answered
                .entry(key.clone())
                .or_default()
                .push(answer.clone());
            world.note(format!("server 401 {key}"));
            return Ok(answer);
        }
        let payload = (
            request.method.clone(),
            request.url.clone(),
            request.body.clone(),
        );
        let retention = world.scenario.server_retention;
        if state
            .keys
            .get(&key)
            .is_some_and(|entry| now >= entry.since + retention)
        {
            world.note(format!("server forgets {key} (retention)"));
            state.keys.remove(&key);
        }
        let answer = match state.keys.get(&key) {
            Some(entry) if entry.payload != payload => Some(response(
                422,
                vec![],
                r#"{"error":"key reused with another payload"}"#.into(),
            )),
            Some(Entry {
                progress: Progress::Working,
                ..
            }) => Some(response(409, vec![], r#"{"error":"in progress"}"#.into())),
            Some(Entry {
                progress: Progress::Completed(first),
                ..
            }) => Some(first.clone()),
            None => None,
        };
        if let Some(answer) = answer {
            world.note(format!("server {} {key}", answer.status));
            state.answered.entry(key).or_default().push(answer.clone());
            return Ok(answer);
        }
        let epoch = state.epoch;
        state.keys.insert(
            key.clone(),
            Entry {
                payload,
                since: now,
                progress: Progress::Working,
            },
        );
        (epoch, key)
    };

    let work = {
        let mut rng = world.rng();
        if rng.chance(faults.slow) {
            let timeout = world.scenario.policy.attempt_timeout.as_millis() as u64;
            rng.range(timeout, 3 * timeout + 1)
        } else {
            rng.range(faults.work.0, faults.work.1)
        }
    };
    world.note(format!("server works on {key} for {work}"));
    world.time.sleep(Duration::from_millis(work)).await;

    let mut state = world.server.state();
    if state.epoch != epoch {
        world.note(format!("server lost its work on {key} (restart)"));
        return Err(refused(
            TransportErrorKind::Interrupted,
            "connection reset (server restarted)",
        ));
    }
    let intent = intent_of(&request.body);
    let answer = if world.rng().chance(faults.decline) {
        response(
            402,
            vec![],
            format!(r#"{{"error":"declined","intent":"{intent}"}}"#),
        )
    } else {
        let id = state.ledger.len() as u64 + 1;
        state.ledger.push(Charge {
            id,
            at: world.time.now(),
            intent: intent.clone(),
            key: key.clone(),
        });
        response(
            201,
            vec![("content-type".into(), "application/json".into())],
            format!(r#"{{"charge":"ch_{id}","intent":"{intent}"}}"#),
        )
    };
    world.note(format!("server commits {key}: {}", answer.status));
    if let Some(entry) = state.keys.get_mut(&key) {
        entry.progress = Progress::Completed(answer.clone());
    }
    state
        .committed
        .entry(key.clone())
        .or_default()
        .push(answer.clone());
    state.answered.entry(key).or_default().push(answer.clone());
    Ok(answer)
}
