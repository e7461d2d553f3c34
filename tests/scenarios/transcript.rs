//! What an executor did with a row, in the row's own terms (see the
//! `about` of tests/scenarios.json): results, events and the wire, keys
//! labelled A, B, … in order of first appearance. pkg-tests/scenarios.test.mjs
//! writes the npm package's transcript the same way.

use oncely::{Error, Event, EventKind, Key, Outcome, Record};
use serde_json::{Value, json};

use crate::network::Sent;

#[derive(Default)]
pub struct Transcript {
    pub results: Vec<Value>,
    pub events: Vec<String>,
    pub wire: Vec<Value>,
}

impl Transcript {
    /// The transcript as a row writes it: every key by its label.
    pub fn labelled(self) -> Value {
        let mut keys: Vec<String> = Vec::new();
        let mut transcript =
            json!({ "results": self.results, "events": self.events, "wire": self.wire });
        label(&mut transcript["results"], &mut keys);
        label(&mut transcript["wire"], &mut keys);
        transcript
    }
}

/// Replaces every `key` field under `value` by its label, in document order.
fn label(value: &mut Value, keys: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|item| label(item, keys)),
        Value::Object(fields) => {
            if let Some(Value::String(key)) = fields.get_mut("key")
                && key != "none"
                && !key.starts_with("malformed ")
            {
                let index = keys.iter().position(|k| k == key).unwrap_or_else(|| {
                    keys.push(key.clone());
                    keys.len() - 1
                });
                *key = char::from(b'A' + index as u8).to_string();
            }
        }
        _ => {}
    }
}

/// A call's result: its outcome, or its error.
pub fn result(result: &Result<Outcome, Error>) -> Value {
    match result {
        Ok(outcome) => json!({
            "status": outcome.status(),
            "replayed": outcome.replayed(),
            "attempts": outcome.attempts(),
            "key": outcome.key().as_str(),
            "body": String::from_utf8_lossy(outcome.body()),
        }),
        Err(error) => error_result(error),
    }
}

pub fn error_result(error: &Error) -> Value {
    let mut result = json!({ "error": error.kind().code() });
    if let Some(key) = error.key() {
        result["key"] = key.as_str().into();
    }
    if let Some(status) = error.last_status() {
        result["last_status"] = status.into();
    }
    result
}

pub fn pending(records: &[Result<Record, Error>]) -> Value {
    records
        .iter()
        .map(|record| match record {
            Ok(record) => json!({
                "intent": record.name,
                "key": record.key.as_str(),
                "attempts": record.attempts,
                "state": record.state.as_str(),
            }),
            Err(damaged) => error_result(damaged),
        })
        .collect()
}

pub fn event(event: &Event) -> String {
    match &event.kind {
        EventKind::Created => "created".to_owned(),
        EventKind::Attempt { number } => format!("attempt {number}"),
        EventKind::RetryScheduled {
            attempt,
            delay,
            status,
            ..
        } => {
            let after = status.map_or("no response".to_owned(), |s| s.to_string());
            format!("retry {attempt} {after} in {}ms", delay.as_millis())
        }
        EventKind::Joined => "joined".to_owned(),
        EventKind::Offline => "offline".to_owned(),
        EventKind::Replayed => "replayed".to_owned(),
        EventKind::Conflict => "conflict".to_owned(),
        EventKind::Settled { status, .. } => format!("settled {status}"),
        EventKind::Failed { error } => format!("failed {}", error.kind().code()),
        other => format!("{other:?}"),
    }
}

/// A request on the wire: the headers of `wire_headers` it carried, and its
/// key as its `Idempotency-Key` header says.
pub fn sent(sent: &Sent, origin: &str, wire_headers: &[String]) -> Value {
    let header = |name: &str| sent.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    // A structured-field string: the key, quoted.
    let key = match header("idempotency-key") {
        None => "none".to_owned(),
        Some(value) => value
            .strip_prefix('"')
            .and_then(|quoted| quoted.strip_suffix('"'))
            .and_then(|inner| Key::new(inner).ok())
            .map_or_else(
                || format!("malformed {value}"),
                |key| key.as_str().to_owned(),
            ),
    };
    let headers: serde_json::Map<String, Value> = wire_headers
        .iter()
        .filter_map(|name| header(name).map(|value| (name.clone(), value.as_str().into())))
        .collect();
    json!({
        "method": sent.method,
        "url": match sent.url.strip_prefix(origin) {
            Some(path) => format!("{{origin}}{path}"),
            None => sent.url.clone(),
        },
        "key": key,
        "headers": headers,
        "body": String::from_utf8_lossy(&sent.body),
    })
}
