//! How outcomes and errors are reported: a line for people, a JSON object for
//! scripts.

use oncely::{Error, ErrorKind, Key, Outcome};
use serde_json::{Value, json};

use crate::exit::Failure;

/// The response header a server marks a replay with (the reference
/// server's, as Stripe's).
const SERVER_REPLAYED: &str = "idempotent-replayed";

/// Whether the server answered with a replay (`Idempotent-Replayed: true`):
/// it had already acted on the key, and did not act again.
pub fn server_replayed(outcome: &Outcome) -> bool {
    outcome
        .header(SERVER_REPLAYED)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// Whether the outcome is a replay: from the store (nothing was sent), or
/// by the server.
pub fn replayed(outcome: &Outcome) -> bool {
    outcome.replayed() || server_replayed(outcome)
}

/// `{"intent":..,"key":..,"status":..,"attempts":..,"replayed":..}`
pub fn outcome_json(outcome: &Outcome) -> Value {
    json!({
        "intent": outcome.intent(),
        "key": outcome.key().as_str(),
        "status": outcome.status(),
        "attempts": outcome.attempts(),
        "replayed": replayed(outcome),
    })
}

/// `{"intent":..,"key":..,"error":{"kind":..,"message":..,"last_status":..}}`
pub fn error_json(error: &Error) -> Value {
    of_error(error, error.intent())
}

/// [`error_json`]'s object for a command about `intent` that failed: from
/// the oncely error behind the failure, else from the command's own reason
/// (`kind` "other" where no error kind applies, e.g. stdout closed).
pub fn failure_json(intent: &str, failure: &Failure) -> Value {
    match &failure.error {
        Some(error) => of_error(error, Some(error.intent().unwrap_or(intent))),
        None => {
            let kind = failure.exit.kind().map_or("other", ErrorKind::code);
            error_object(Some(intent), None, kind, &failure.message, None)
        }
    }
}

/// The object of `error`, about `intent`.
fn of_error(error: &Error, intent: Option<&str>) -> Value {
    let kind = error.kind().code();
    error_object(
        intent,
        error.key(),
        kind,
        &reason(error),
        error.last_status(),
    )
}

fn error_object(
    intent: Option<&str>,
    key: Option<&Key>,
    kind: &str,
    message: &str,
    last_status: Option<u16>,
) -> Value {
    json!({
        "intent": intent,
        "key": key.map(Key::as_str),
        "error": {
            "kind": kind,
            "message": message,
            "last_status": last_status,
        },
    })
}

/// `order-42  01J...  settled 201 after 2 attempts`
pub fn outcome_line(outcome: &Outcome) -> String {
    let replayed = if replayed(outcome) { " (replayed)" } else { "" };
    format!(
        "{}  {}  settled {} after {}{replayed}",
        outcome.intent(),
        outcome.key(),
        outcome.status(),
        attempts(outcome.attempts())
    )
}

/// `order-42  01J...  gave_up: gave up after 8 attempt(s); last: status 503`
pub fn error_line(error: &Error) -> String {
    format!(
        "{}  {}  {}: {}",
        error.intent().unwrap_or("-"),
        error.key().map_or("-", |k| k.as_str()),
        error.kind().code(),
        reason(error)
    )
}

/// The reason for a settled non-2xx outcome, for stderr.
pub fn not_success_line(outcome: &Outcome) -> String {
    let replayed = if replayed(outcome) { ", replayed" } else { "" };
    format!(
        "intent {:?} settled with status {} (key {}, {}{replayed})",
        outcome.intent(),
        outcome.status(),
        outcome.key(),
        attempts(outcome.attempts())
    )
}

/// The error as one line, as its `Display` puts it (`intent "x" (key K):
/// reason`) but without repeating a cause the message already quotes.
pub fn error_message(error: &Error) -> String {
    let mut text = String::new();
    if let Some(intent) = error.intent() {
        text.push_str(&format!("intent {intent:?}"));
        if let Some(key) = error.key() {
            text.push_str(&format!(" (key {key})"));
        }
        text.push_str(": ");
    }
    text.push_str(&reason(error));
    text
}

/// The error's message and its causes, without the intent and key. oncely's
/// messages often quote their cause ("last: could not connect: ..."), and
/// `Display` then repeats it: a cause already quoted is left out.
fn reason(error: &Error) -> String {
    let mut text = error.message().to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `1 attempt`, `2 attempts`.
pub fn attempts(count: u32) -> String {
    if count == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{count} attempts")
    }
}
