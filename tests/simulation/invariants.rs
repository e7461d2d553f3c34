//! What must hold after every run, whatever the faults. Each check returns
//! the ways it was broken, for people.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::FutureExt;
use oncely::{Outcome, Record, Response, State, Store};

use crate::server;
use crate::world::{CallKind, End, World};

/// Every way the run broke the promise; empty when it kept it.
pub fn check(world: &World, overran: bool) -> Vec<String> {
    let records = match world.store.list().now_or_never() {
        Some(Ok(records)) => records,
        other => return vec![format!("the store could not be listed: {other:?}")],
    };
    let mut broken = Vec::new();
    one_effect_per_intent(world, &mut broken);
    one_key_per_intent(world, &records, &mut broken);
    outcomes_the_server_gave(world, &records, &mut broken);
    nothing_sent_past_retention(world, &records, &mut broken);
    every_wait_ends(world, overran, &mut broken);
    no_credentials_stored(world, &records, &mut broken);
    errors_tell_the_truth(world, &mut broken);
    broken
}

/// At most one charge per intent.
fn one_effect_per_intent(world: &World, broken: &mut Vec<String>) {
    let server = world.server.state();
    let mut charges: BTreeMap<&str, Vec<&server::Charge>> = BTreeMap::new();
    for charge in &server.ledger {
        charges.entry(&charge.intent).or_default().push(charge);
    }
    for (intent, charges) in charges {
        if charges.len() > 1 {
            let seen: Vec<String> = charges
                .iter()
                .map(|c| format!("ch_{} at {} under {}", c.id, c.at, c.key))
                .collect();
            broken.push(format!(
                "one effect: {intent} charged {} times ({})",
                charges.len(),
                seen.join(", ")
            ));
        }
    }
}

/// Every attempt for an intent carried the same key, the one recorded, and
/// left only once the intent was recorded under it.
fn one_key_per_intent(world: &World, records: &[Record], broken: &mut Vec<String>) {
    let journal = world.journal();
    let mut keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for sent in &journal.sent {
        keys.entry(&sent.intent).or_default().insert(&sent.key);
        if !sent.recorded {
            broken.push(format!(
                "persist first: p{} sent {} under {} at {} before it was recorded under that key",
                sent.process, sent.intent, sent.key, sent.at
            ));
        }
    }
    for (intent, keys) in keys {
        if keys.len() > 1 {
            broken.push(format!("one key: {intent} was sent under {keys:?}"));
        }
        let recorded = records.iter().find(|r| r.name == intent);
        match recorded {
            Some(record) if !keys.contains(record.key.header_value().as_str()) => {
                broken.push(format!(
                    "one key: {intent} is recorded under {} but sent under {keys:?}",
                    record.key
                ))
            }
            None => broken.push(format!("one key: {intent} was sent but is not recorded")),
            Some(_) => {}
        }
    }
}

/// An outcome recorded or handed to a caller is the server's outcome for
/// its key: the first one it committed when it committed one (whatever
/// else it answered an attempt, such as a 401 to an attempt without
/// credentials), else an answer it gave for that key.
fn outcomes_the_server_gave(world: &World, records: &[Record], broken: &mut Vec<String>) {
    let server = world.server.state();
    let given = |key: &str, response: &Response| -> Result<(), String> {
        let same = |r: &Response| r.status == response.status && r.body == response.body;
        match server.committed.get(key).and_then(|c| c.first()) {
            Some(first) if same(first) => Ok(()),
            Some(first) => Err(format!(
                "the server committed {} {} under {key}",
                first.status,
                String::from_utf8_lossy(&first.body)
            )),
            None if server.answered.get(key).is_some_and(|a| a.iter().any(same)) => Ok(()),
            None => Err(format!("the server never answered that under {key}")),
        }
    };
    let show = |r: &Response| format!("{} {}", r.status, String::from_utf8_lossy(&r.body));
    for record in records {
        let Some(response) = record
            .response
            .as_ref()
            .filter(|_| record.state == State::Settled)
        else {
            continue;
        };
        if let Err(why) = given(&record.key.header_value(), response) {
            broken.push(format!(
                "outcome: {} is recorded settled with {}, but {why}",
                record.name,
                show(response)
            ));
        }
    }
    let journal = world.journal();
    for (index, call) in journal.calls.iter().enumerate() {
        let End::Answered(results) = &call.end else {
            continue;
        };
        for outcome in results.iter().filter_map(|r| r.as_ref().ok()) {
            let outcome: &Outcome = outcome;
            if let Err(why) = given(&outcome.key().header_value(), outcome.response()) {
                broken.push(format!(
                    "outcome: call #{index} of p{} got {} for {}, but {why}",
                    call.process,
                    show(outcome.response()),
                    outcome.intent()
                ));
            }
        }
    }
}

/// No attempt left at or after its intent's retention end, by the client's
/// own clock.
fn nothing_sent_past_retention(world: &World, records: &[Record], broken: &mut Vec<String>) {
    let journal = world.journal();
    for sent in &journal.sent {
        let Some(record) = records.iter().find(|r| r.name == sent.intent) else {
            continue;
        };
        if sent.wall_ms >= record.expires_at {
            broken.push(format!(
                "retention: p{} sent {} at {} (true), {} ms past its retention end by its clock",
                sent.process,
                sent.intent,
                sent.at,
                sent.wall_ms - record.expires_at
            ));
        }
    }
}

/// Every call ended, within the bound; none panicked; the run did not need
/// to be stopped.
fn every_wait_ends(world: &World, overran: bool, broken: &mut Vec<String>) {
    let bound = world.scenario.call_bound();
    if overran {
        broken.push(format!(
            "every wait ends: the world was still busy at {} (true), its limit",
            world.time.now()
        ));
    }
    let journal = world.journal();
    for (index, call) in journal.calls.iter().enumerate() {
        let what = format!(
            "call #{index} of p{} ({}, from {})",
            call.process, call.kind, call.started
        );
        match &call.end {
            End::Running => broken.push(format!("every wait ends: {what} never ended")),
            End::Broken(why) => broken.push(format!("every wait ends: {what} broke: {why}")),
            End::Answered(_) if call.ended - call.started > bound => broken.push(format!(
                "every wait ends: {what} took {} ms, over the bound of {bound}",
                call.ended - call.started
            )),
            _ => {}
        }
    }
}

/// No credential value, the app's or the hook's, anywhere in the store.
fn no_credentials_stored(world: &World, records: &[Record], broken: &mut Vec<String>) {
    let journal = world.journal();
    for record in records {
        let mut text = format!("{} {} {} ", record.name, record.key, record.request.url);
        for (name, value) in &record.request.headers {
            text.push_str(&format!("{name}: {value}\n"));
        }
        text.push_str(&String::from_utf8_lossy(&record.request.body));
        if let Some(response) = &record.response {
            for (name, value) in &response.headers {
                text.push_str(&format!("{name}: {value}\n"));
            }
            text.push_str(&String::from_utf8_lossy(&response.body));
        }
        if let Some(failure) = &record.failure {
            text.push_str(&failure.message);
        }
        if let Some(secret) = journal.secrets.iter().find(|s| text.contains(s.as_str())) {
            broken.push(format!(
                "credentials: {secret} is stored in {}",
                record.name
            ));
        }
    }
}

/// A call is told `InvalidInput` (documented as "nothing recorded, nothing
/// sent") only when no attempt for its intent left its process while it
/// waited: after one has, the outcome is unknown and the error must say the
/// intent is still owed an answer (resumable), not that nothing happened.
fn errors_tell_the_truth(world: &World, broken: &mut Vec<String>) {
    let journal = world.journal();
    for (index, call) in journal.calls.iter().enumerate() {
        // A `resume` waits for all its intents, so when each one's flight
        // ended is not known: only single calls are judged.
        let (End::Answered(results), CallKind::Send(_)) = (&call.end, &call.kind) else {
            continue;
        };
        for error in results.iter().filter_map(|r| r.as_ref().err()) {
            if error.kind() != oncely::ErrorKind::InvalidInput {
                continue;
            }
            let intent = error.intent().unwrap_or_default();
            let left = journal
                .sent
                .iter()
                .filter(|s| s.process == call.process && s.intent == intent)
                .filter(|s| (call.started..=call.ended).contains(&s.at))
                .count();
            if left > 0 {
                broken.push(format!(
                    "errors: call #{index} of p{} was told {intent} is invalid input ({}) after {left} attempt(s) of it left",
                    call.process,
                    error.message()
                ));
            }
        }
    }
}
