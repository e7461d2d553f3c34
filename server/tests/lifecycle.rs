//! Starting, stopping, retention, CORS and static files.

mod common;

use std::time::Duration;

use common::{BODY, Harness, TestResult, header};
use oncely_server::{Options, Server};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn a_garbage_db_file_is_a_start_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("not-sqlite.db");
    std::fs::write(&db, vec![0x5a; 8192])?;
    match Server::start(Options::new(&db)).await {
        Ok(_) => Err("a non-SQLite file must not start".into()),
        Err(e) => {
            assert!(e.is_database() && !e.is_bind(), "{e}");
            assert!(e.to_string().contains("not-sqlite.db"), "{e}");
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_taken_address_is_a_start_error() -> TestResult {
    let h = Harness::start().await?;
    let mut options = Options::new(h.dir.path().join("second.db"));
    options.addr = h.server.addr();
    match Server::start(options).await {
        Ok(_) => Err("binding a taken port must fail".into()),
        Err(e) => {
            assert!(e.is_bind(), "{e}");
            Ok(())
        }
    }
}

#[tokio::test]
async fn keys_left_in_progress_are_forgotten_at_start() -> TestResult {
    let h = Harness::start().await?;
    let db = h.db();
    let Harness { server, dir, .. } = h;
    server.stop().await;
    {
        let conn = rusqlite::Connection::open(&db)?;
        conn.execute(
            "INSERT INTO idempotency_keys (account, key, fingerprint, state, created_at)
             VALUES ('acct', 'k-stale', x'00', 'in_progress', 0)",
            [],
        )?;
    }
    let server = Server::start(Options::new(&db)).await?;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/charges", server.url()))
        .header("x-account", "acct")
        .header("idempotency-key", "\"k-stale\"")
        .body(BODY)
        .send()
        .await?;
    assert_eq!(response.status(), 201);
    assert_eq!(header(&response, "idempotent-replayed"), None);
    server.stop().await;
    drop(dir);
    Ok(())
}

#[tokio::test]
async fn a_ledger_written_before_leases_opens_and_keeps_its_keys() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("ledger.db");
    {
        // The schema as it was before in-progress keys had leases, with a charge.
        let conn = rusqlite::Connection::open(&db)?;
        conn.execute_batch(
            "CREATE TABLE idempotency_keys (
                 account TEXT NOT NULL, key TEXT NOT NULL, fingerprint BLOB NOT NULL,
                 state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
                 status INTEGER, response_body BLOB, created_at INTEGER NOT NULL,
                 PRIMARY KEY (account, key));
             CREATE INDEX idempotency_keys_by_age ON idempotency_keys (state, created_at);
             CREATE TABLE charges (
                 id INTEGER PRIMARY KEY, account TEXT NOT NULL,
                 idempotency_key TEXT NOT NULL, amount INTEGER NOT NULL,
                 currency TEXT NOT NULL, description TEXT, created_at INTEGER NOT NULL,
                 UNIQUE (account, idempotency_key));
             INSERT INTO charges VALUES (1, 'acct', 'k-old', 1250, 'EUR', 'tea', 0);",
        )?;
        let fingerprint: [u8; 32] = Sha256::digest(BODY).into();
        conn.execute(
            "INSERT INTO idempotency_keys VALUES
                 ('acct', 'k-old', ?1, 'completed', 201, CAST('{\"id\":1}' AS BLOB), ?2)",
            rusqlite::params![fingerprint.as_slice(), unix_ms()?],
        )?;
    }
    // Its completed key still replays, and new keys (which take leases) charge.
    let h = Harness::start_with(|o| o.db = db.clone().into()).await?;
    let old_key = h.charge(&h.client, "acct", Some("\"k-old\""), BODY).await?;
    assert_eq!(header(&old_key, "idempotent-replayed"), Some("true"));
    assert_eq!(old_key.text().await?, r#"{"id":1}"#);
    let new_key = h.charge(&h.client, "acct", Some("\"k-new\""), BODY).await?;
    assert_eq!(new_key.status(), 201);
    let Harness { server, .. } = h;
    server.stop().await;

    // Opening it again finds the columns already there.
    let h = Harness::start_with(|o| o.db = db.clone().into()).await?;
    let replay = h.charge(&h.client, "acct", Some("\"k-new\""), BODY).await?;
    assert_eq!(header(&replay, "idempotent-replayed"), Some("true"));
    assert_eq!(h.ledger("acct").await?.len(), 2);
    drop(dir);
    Ok(())
}

fn unix_ms() -> Result<i64, Box<dyn std::error::Error>> {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    Ok(i64::try_from(since.as_millis())?)
}

#[tokio::test]
async fn health_publishes_the_retention() -> TestResult {
    let h = Harness::start().await?;
    let health: Value = h
        .client
        .get(h.url("/api/health"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health, json!({"ok": true, "retention_seconds": 86400}));

    let h = Harness::start_with(|o| o.retention = Duration::from_secs(3600)).await?;
    let health: Value = h
        .client
        .get(h.url("/api/health"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["retention_seconds"], 3600);
    Ok(())
}

#[tokio::test]
async fn an_expired_key_is_never_a_second_charge() -> TestResult {
    let h = Harness::start_with(|o| o.retention = Duration::ZERO).await?;
    let key = Some("\"k-expired\"");
    assert_eq!(h.charge(&h.client, "acct", key, BODY).await?.status(), 201);
    let reused = h.charge(&h.client, "acct", key, BODY).await?;
    assert_eq!(reused.status(), 422);
    assert_eq!(
        reused.json::<Value>().await?["error"],
        "idempotency_key_expired"
    );
    assert_eq!(h.ledger("acct").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn cors_preflight_allows_the_idempotency_key() -> TestResult {
    let h = Harness::start().await?;
    let preflight = h
        .client
        .request(reqwest::Method::OPTIONS, h.url("/api/charges"))
        .header("origin", "http://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "idempotency-key, content-type, x-account",
        )
        .send()
        .await?;
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some("http://shop.example")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-credentials"),
        Some("true")
    );
    let methods = header(&preflight, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = header(&preflight, "access-control-allow-headers").unwrap_or_default();
    for name in ["idempotency-key", "content-type", "x-account"] {
        assert!(allowed.to_ascii_lowercase().contains(name), "{allowed}");
    }

    let actual = h
        .client
        .post(h.url("/api/charges"))
        .header("origin", "http://shop.example")
        .header("idempotency-key", "\"cors\"")
        .body(BODY)
        .send()
        .await?;
    assert_eq!(actual.status(), 201);
    let exposed = header(&actual, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("idempotent-replayed"), "{exposed}");
    Ok(())
}

#[tokio::test]
async fn www_is_served_after_the_api_routes() -> TestResult {
    let www = tempfile::tempdir()?;
    std::fs::write(www.path().join("index.html"), "<h1>shop</h1>")?;
    let dir = www.path().to_owned();
    let h = Harness::start_with(move |o| o.www = Some(dir)).await?;
    let page = h.client.get(h.url("/")).send().await?;
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await?, "<h1>shop</h1>");
    let health = h.client.get(h.url("/api/health")).send().await?;
    assert_eq!(health.status(), 200);
    assert_eq!(
        h.client.get(h.url("/missing.js")).send().await?.status(),
        404
    );
    Ok(())
}

#[tokio::test]
async fn unknown_api_path_is_a_json_404() -> TestResult {
    let h = Harness::start().await?;
    let response = h.client.get(h.url("/api/nope")).send().await?;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await?["error"], "not_found");
    Ok(())
}
