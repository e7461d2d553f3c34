//! How long the server remembers idempotency keys, and telling clients so.
//!
//! A completed key is kept for the server's retention (24 hours by default,
//! like Stripe) from the moment it was first seen, then purged: lazily, when a
//! request finds it expired, and by a background sweep. The retention is
//! published at `GET /api/health`:
//!
//! ```json
//! {"ok": true, "retention_seconds": 86400}
//! ```
//!
//! so a client can tell how long a retry with the same key is safe. Reusing a
//! key after its record expired is answered 422 `idempotency_key_expired`
//! rather than charging again: the ledger row the key made is kept forever
//! (`UNIQUE (account, idempotency_key)`), and a second charge under the same
//! key is far more likely a client bug than an intent.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::ledger::Ledger;

/// The `GET /api/health` body.
#[derive(Debug, Serialize)]
pub(crate) struct Health {
    ok: bool,
    retention_seconds: u64,
}

/// `GET /api/health`.
pub(crate) async fn health(State(retention): State<Duration>) -> Json<Health> {
    Json(Health {
        ok: true,
        retention_seconds: retention.as_secs(),
    })
}

/// Spawns the sweep that deletes expired keys; abort the handle to stop it.
pub(crate) fn spawn_sweeper(ledger: Ledger, retention: Duration) -> JoinHandle<()> {
    // Often enough that the table stays near its true size, rarely enough to be free.
    let period = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = ledger.purge_expired(retention).await {
                eprintln!("oncely-server: purging expired keys failed: {e}");
            }
        }
    })
}
