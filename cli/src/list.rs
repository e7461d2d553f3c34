//! `oncely list`: every recorded intent, as a table or JSON.

use clap::Args;
use oncely::{Record, Store};
use serde_json::{Value, json};

use crate::exit::{Exit, Failure};
use crate::store::StoreArg;
use crate::{console, timestamp};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Print a JSON array of {intent, key, state, attempts, status, method,
    /// url, created_at_ms, expires_at_ms, failure}
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ListArgs) -> Result<Exit, Failure> {
    let records = match args.store.open_existing().await? {
        Some(store) => store.list().await?,
        None => Vec::new(),
    };
    let text = if args.json {
        let array: Vec<Value> = records.iter().map(record_json).collect();
        Value::Array(array).to_string() + "\n"
    } else {
        table(&records)
    };
    console::out(text.as_bytes())?;
    Ok(Exit::Success)
}

fn record_json(record: &Record) -> Value {
    let failure = record.failure.as_ref().map(|f| {
        json!({
            "kind": f.kind.code(),
            "message": f.message,
            "last_status": f.last_status,
        })
    });
    json!({
        "intent": record.name,
        "key": record.key.as_str(),
        "state": record.state.as_str(),
        "attempts": record.attempts,
        "status": record.response.as_ref().map(|r| r.status),
        "method": record.request.method,
        "url": record.request.url,
        "created_at_ms": record.created_at,
        "expires_at_ms": record.expires_at,
        "failure": failure,
    })
}

const HEADINGS: [&str; 6] = ["INTENT", "KEY", "STATE", "ATTEMPTS", "STATUS", "CREATED"];

/// The records as aligned columns, headings first. STATUS is the settled
/// response's, else the last one a failed intent saw, else `-`.
fn table(records: &[Record]) -> String {
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|r| {
            let status = r
                .response
                .as_ref()
                .map(|response| response.status)
                .or_else(|| r.failure.as_ref().and_then(|f| f.last_status))
                .map_or_else(|| "-".to_owned(), |s| s.to_string());
            [
                r.name.clone(),
                r.key.to_string(),
                r.state.to_string(),
                r.attempts.to_string(),
                status,
                timestamp::rfc3339(r.created_at),
            ]
        })
        .collect();
    let mut widths = HEADINGS.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let headings = HEADINGS.map(str::to_owned);
    for row in std::iter::once(&headings).chain(&rows) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if column + 1 < row.len() {
                let padding = width - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', padding));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}
