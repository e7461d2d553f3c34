//! Fault injection, per account, switched on over HTTP.
//!
//! `POST /api/faults` merges into the account's settings:
//!
//! ```json
//! {"fail_next": [{"status": 503, "headers": {"Retry-After": "2"}}],
//!  "drop_next": 1,
//!  "slow_ms": 3000,
//!  "slow_record_ms": 1000}
//! ```
//!
//! - `fail_next` entries are appended to a queue. Each later
//!   `POST /api/charges` (with a valid key and body) pops one and answers with
//!   that status, those headers verbatim and `{"error":"injected"}`, storing
//!   nothing, as a proxy or overloaded front end would.
//! - `drop_next` (replaces): that many later charges are committed, then the
//!   TCP connection is closed without any response, as a lost response would.
//! - `slow_ms` (replaces): every charge sleeps this long (at most 60 s) after
//!   its key is recorded `in_progress`, opening the window for 409s and
//!   client disconnects.
//! - `slow_record_ms` (replaces, at most 60 s): writing each charge's
//!   idempotency record takes this much longer to return: the key is already
//!   `in_progress` on disk while the request still waits, as on a slow disk.
//!   It widens the window between recording a key and processing it.
//!
//! `GET /api/faults` returns the settings, `DELETE /api/faults` clears them.
//! Settings live in memory only: a restart clears them, and instances sharing
//! a PostgreSQL database each have their own.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::error::ApiError;

const MAX_SLOW_MS: u64 = 60_000;

/// One queued failure: the status to answer and the headers to send with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InjectedFailure {
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// An account's fault settings, in the JSON shape the endpoints use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct FaultSettings {
    fail_next: VecDeque<InjectedFailure>,
    drop_next: u32,
    slow_ms: u64,
    slow_record_ms: u64,
}

impl FaultSettings {
    fn is_default(&self) -> bool {
        *self == FaultSettings::default()
    }
}

/// A `POST /api/faults` body: every field optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultPatch {
    #[serde(default)]
    fail_next: Vec<InjectedFailure>,
    drop_next: Option<u32>,
    slow_ms: Option<u64>,
    slow_record_ms: Option<u64>,
}

impl InjectedFailure {
    fn validate(&self) -> Result<(), ApiError> {
        // A 1xx is not a final response: hyper could not send it as one.
        if !(200..=999).contains(&self.status) {
            return Err(bad_fault(
                "fail_next status must be a 3-digit status from 200 to 999",
            ));
        }
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| bad_fault(format!("invalid header name {name:?}")))?;
            // Framing is hyper's job; a wrong length would corrupt the connection.
            if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
                return Err(bad_fault(format!("header {name} cannot be injected")));
            }
            HeaderValue::try_from(value.as_str())
                .map_err(|_| bad_fault(format!("invalid value for header {name}")))?;
        }
        Ok(())
    }

    /// The response this failure stands for.
    pub(crate) fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(serde_json::json!({"error": "injected"}))).into_response();
        for (name, value) in self.headers {
            // Validated when queued; anything else is skipped rather than trusted.
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        if !response.headers().contains_key(CONTENT_TYPE) {
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        response
    }
}

fn bad_fault(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_faults", message)
}

/// Every account's fault settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    accounts: Arc<Mutex<HashMap<Account, FaultSettings>>>,
}

impl Faults {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Account, FaultSettings>) -> T) -> T {
        // Nothing panics while holding this lock; a poisoned map is still consistent.
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut accounts)
    }

    fn settings(&self, account: &Account) -> FaultSettings {
        self.with(|a| a.get(account).cloned().unwrap_or_default())
    }

    /// Applies `f` to the account's settings, dropping them once back to default.
    fn update<T>(&self, account: &Account, f: impl FnOnce(&mut FaultSettings) -> T) -> T {
        self.with(|accounts| {
            let settings = accounts.entry(account.clone()).or_default();
            let out = f(settings);
            if settings.is_default() {
                accounts.remove(account);
            }
            out
        })
    }

    /// Pops the next queued failure, if any.
    pub(crate) fn next_failure(&self, account: &Account) -> Option<InjectedFailure> {
        self.update(account, |s| s.fail_next.pop_front())
    }

    /// Consumes one `drop_next`; true if this response must be dropped.
    pub(crate) fn take_drop(&self, account: &Account) -> bool {
        self.update(account, |s| {
            let drop = s.drop_next > 0;
            s.drop_next = s.drop_next.saturating_sub(1);
            drop
        })
    }

    /// How long each charge should stall before committing.
    pub(crate) fn slowness(&self, account: &Account) -> Duration {
        Duration::from_millis(self.settings(account).slow_ms)
    }

    /// How much longer each charge's idempotency record takes to write.
    pub(crate) fn record_slowness(&self, account: &Account) -> Duration {
        Duration::from_millis(self.settings(account).slow_record_ms)
    }
}

/// `GET /api/faults`.
pub(crate) async fn get(State(faults): State<Faults>, account: Account) -> Json<FaultSettings> {
    Json(faults.settings(&account))
}

/// `POST /api/faults`: merge the body into the account's settings.
pub(crate) async fn post(
    State(faults): State<Faults>,
    account: Account,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FaultSettings>, ApiError> {
    let body = body.map_err(|e| bad_fault(e.body_text()))?;
    let patch: FaultPatch =
        serde_json::from_slice(&body).map_err(|e| bad_fault(format!("invalid fault JSON: {e}")))?;
    for failure in &patch.fail_next {
        failure.validate()?;
    }
    if patch.slow_ms.is_some_and(|ms| ms > MAX_SLOW_MS) {
        return Err(bad_fault(format!("slow_ms must be at most {MAX_SLOW_MS}")));
    }
    if patch.slow_record_ms.is_some_and(|ms| ms > MAX_SLOW_MS) {
        return Err(bad_fault(format!(
            "slow_record_ms must be at most {MAX_SLOW_MS}"
        )));
    }
    let settings = faults.update(&account, |s| {
        s.fail_next.extend(patch.fail_next);
        if let Some(n) = patch.drop_next {
            s.drop_next = n;
        }
        if let Some(ms) = patch.slow_ms {
            s.slow_ms = ms;
        }
        if let Some(ms) = patch.slow_record_ms {
            s.slow_record_ms = ms;
        }
        s.clone()
    });
    Ok(Json(settings))
}

/// `DELETE /api/faults`.
pub(crate) async fn delete(State(faults): State<Faults>, account: Account) -> Json<FaultSettings> {
    faults.with(|a| a.remove(&account));
    Json(FaultSettings::default())
}
