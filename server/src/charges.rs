//! `POST /api/charges`, the idempotent endpoint, and `GET /api/charges`.
//!
//! The order of checks follows the IETF Idempotency-Key draft and Stripe:
//! requests that are invalid (no key, bad body) are rejected before the key is
//! looked at, so they are never stored against it and a corrected retry with
//! the same key goes through.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::account::Account;
use crate::connection::ConnectionKill;
use crate::error::ApiError;
use crate::key::{self, IdempotencyKey};
use crate::ledger::{Begin, Charge, Completion, Ledger, LedgerError, NewCharge};

/// Marks a response replayed from the idempotency record.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_DESCRIPTION: usize = 1000;

/// The `POST /api/charges` body. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct ChargeRequest {
    amount: i64,
    currency: String,
    #[serde(default)]
    description: Option<String>,
}

impl ChargeRequest {
    fn parse(body: &[u8]) -> Result<NewCharge, ApiError> {
        let request: ChargeRequest = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request("invalid_body", format!("invalid charge JSON: {e}"))
        })?;
        if request.amount <= 0 {
            return Err(ApiError::bad_request(
                "invalid_amount",
                "amount must be a positive integer of minor units",
            ));
        }
        if request.currency.len() != 3 || !request.currency.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(ApiError::bad_request(
                "invalid_currency",
                "currency must be a 3-letter code",
            ));
        }
        if request
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
        {
            return Err(ApiError::bad_request(
                "invalid_description",
                format!("description must be at most {MAX_DESCRIPTION} characters"),
            ));
        }
        Ok(NewCharge {
            amount: request.amount,
            currency: request.currency.to_ascii_uppercase(),
            description: request.description,
        })
    }
}

/// `POST /api/charges`.
pub(crate) async fn create(
    State(app): State<AppState>,
    account: Account,
    kill: Option<Extension<ConnectionKill>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match IdempotencyKey::from_headers(&headers) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let mut response = match process(app, account, kill, &key, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    // Echo the key so a client can match responses to keys (and CORS exposes it).
    if let Some(value) = key.to_header_value() {
        response
            .headers_mut()
            .insert(HeaderName::from_static(key::HEADER), value);
    }
    response
}

async fn process(
    app: AppState,
    account: Account,
    kill: Option<Extension<ConnectionKill>>,
    key: &IdempotencyKey,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), "invalid_body", e.body_text()))?;
    let charge = ChargeRequest::parse(&body)?;

    if let Some(failure) = app.faults.next_failure(&account) {
        return Ok(failure.into_response());
    }

    let job = ChargeJob {
        ledger: app.ledger.clone(),
        account: account.as_str().to_owned(),
        key: key.as_str().to_owned(),
        fingerprint: Sha256::digest(&body).into(),
        charge,
        retention: app.retention,
        lease: app.lease,
        // The faults in force when the request arrived, whenever the job reads them.
        record_slowness: app.faults.record_slowness(&account),
        slowness: app.faults.slowness(&account),
    };
    // A client hanging up drops this future at its next await, and the key may
    // be recorded in_progress by then: so recording the key and finishing it
    // run in a task of their own, which the hang-up cannot cancel.
    let outcome = app
        .processing
        .spawn(job.run())
        .await
        .map_err(|e| ApiError::internal("charge task", &e))?
        .map_err(|e| ledger_failure(&e))?;

    match outcome {
        Outcome::Charged(charge) => {
            if let Some(Extension(kill)) = kill
                && app.faults.take_drop(&account)
            {
                kill.close_connection().await;
            }
            Ok((StatusCode::CREATED, Json(charge)).into_response())
        }
        Outcome::Replay { status, body } => Ok(replay(status, body)),
        Outcome::InProgress => {
            let mut response = ApiError::new(
                StatusCode::CONFLICT,
                "request_in_progress",
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            Ok(response)
        }
        Outcome::Mismatch => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request body",
        )),
        Outcome::Expired => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_expired",
            "this Idempotency-Key made a charge whose record has expired; use a new key",
        )),
    }
}

/// One valid charge request, from looking its key up to its outcome.
struct ChargeJob {
    ledger: Ledger,
    account: String,
    key: String,
    fingerprint: [u8; 32],
    charge: NewCharge,
    retention: Duration,
    lease: Duration,
    record_slowness: Duration,
    slowness: Duration,
}

/// How a [`ChargeJob`] ended.
enum Outcome {
    /// This request made the charge.
    Charged(Charge),
    /// The key completed earlier, or was completed by a request this one
    /// took over or was taken over by: replay this outcome.
    Replay { status: u16, body: Vec<u8> },
    /// Another request with this key is still being processed.
    InProgress,
    /// The key was first used with a different body.
    Mismatch,
    /// The key's record expired, but the ledger still has the charge it made.
    Expired,
}

impl ChargeJob {
    /// Records the key `in_progress` if it is new (or its lease ran out), then
    /// completes it or, if that fails, releases it: a key this job recorded
    /// never stays in progress.
    async fn run(self) -> Result<Outcome, LedgerError> {
        let ChargeJob {
            ledger,
            account,
            key,
            fingerprint,
            charge,
            retention,
            lease,
            record_slowness,
            slowness,
        } = self;
        let begin = ledger
            .begin(account, key, fingerprint, retention, lease)
            .await?;
        let lease = match begin {
            Begin::Started(lease) => lease,
            Begin::InProgress => return Ok(Outcome::InProgress),
            Begin::Mismatch => return Ok(Outcome::Mismatch),
            Begin::Expired => return Ok(Outcome::Expired),
            Begin::Replay { status, body } => return Ok(Outcome::Replay { status, body }),
        };
        if !record_slowness.is_zero() {
            tokio::time::sleep(record_slowness).await;
        }
        if !slowness.is_zero() {
            tokio::time::sleep(slowness).await;
        }
        let done = ledger.complete(&lease, charge).await;
        if done.is_err()
            && let Err(e) = ledger.release(&lease).await
        {
            eprintln!("oncely-server: releasing a failed key: {e}");
        }
        done.map(|completion| match completion {
            Completion::Charged(charge) => Outcome::Charged(charge),
            Completion::CompletedElsewhere { status, body } => Outcome::Replay { status, body },
        })
    }
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

fn ledger_failure(e: &LedgerError) -> ApiError {
    ApiError::internal("ledger", e)
}

/// `GET /api/charges`: the account's ledger, oldest first.
pub(crate) async fn list(
    State(app): State<AppState>,
    account: Account,
) -> Result<Json<Vec<Charge>>, ApiError> {
    app.ledger
        .charges(account.as_str().to_owned())
        .await
        .map(Json)
        .map_err(|e| ledger_failure(&e))
}
