//! `oncely resume`: finish what earlier runs left, under the original keys.

use std::collections::HashSet;

use clap::Args;
use oncely::{Client, Error, ErrorKind, Outcome, Record, State};

use crate::exit::{Exit, Failure};
use crate::progress::{self, Naming};
use crate::request::{self, Header};
use crate::retry::RetryArgs;
use crate::store::StoreArg;
use crate::{console, report};

#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    store: StoreArg,
    /// A header added to every resumed request, repeatable. Credentials
    /// (Authorization, Cookie...) are never stored, so pass them again here;
    /// they go to every resumed intent's URL
    #[arg(short = 'H', long = "header", value_name = "'Name: value'", value_parser = request::parse_header)]
    headers: Vec<Header>,
    /// Print one JSON object per intent: {"intent","key","status","attempts",
    /// "replayed"} or {"intent","key","error":{"kind","message","last_status"}}
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    retry: RetryArgs,
}

pub async fn run(args: ResumeArgs) -> Result<Exit, Failure> {
    let Some(store) = args.store.open_existing()? else {
        return Ok(nothing_to_resume(&args));
    };
    let headers: Vec<(String, String)> = args
        .headers
        .iter()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    let mut builder = Client::builder()
        .store(store)
        .retry(args.retry.policy())
        .credentials(move |_| headers.clone());
    if !args.quiet {
        builder = builder.on_event(progress::reporter(Naming::PerLine));
    }
    let client = builder.build()?;

    // `Client::resume` takes only pending intents, but an intent that gave
    // up stays retryable under its key: retry those alongside.
    let gave_up: Vec<Record> = client
        .records()
        .await?
        .into_iter()
        .filter(is_gave_up)
        .collect();
    let retried: HashSet<String> = gave_up.iter().map(|r| r.name.clone()).collect();
    let retries: Vec<_> = gave_up
        .into_iter()
        .map(|record| tokio::spawn(send_again(client.clone(), record)))
        .collect();
    let mut results = client.resume().await?;
    // An intent picked up by both joined one flight: report it once.
    results.retain(|result| !intent_of(result).is_some_and(|name| retried.contains(name)));
    for retry in retries {
        let result = retry
            .await
            .map_err(|e| Failure::new(Exit::Other, format!("a retry stopped: {e}")))?;
        results.push(result);
    }

    if results.is_empty() {
        return Ok(nothing_to_resume(&args));
    }
    for result in &results {
        let line = match (result, args.json) {
            (Ok(outcome), true) => report::outcome_json(outcome).to_string(),
            (Ok(outcome), false) => report::outcome_line(outcome),
            (Err(error), true) => report::error_json(error).to_string(),
            (Err(error), false) => report::error_line(error),
        };
        console::out_line(&line)?;
    }
    Ok(exit_of(&results))
}

fn nothing_to_resume(args: &ResumeArgs) -> Exit {
    if !args.quiet && !args.json {
        console::error(format_args!("nothing to resume"));
    }
    Exit::Success
}

fn is_gave_up(record: &Record) -> bool {
    record.state == State::Failed
        && record
            .failure
            .as_ref()
            .is_some_and(|f| f.kind == ErrorKind::GaveUp)
}

fn intent_of(result: &Result<Outcome, Error>) -> Option<&str> {
    match result {
        Ok(outcome) => Some(outcome.intent()),
        Err(error) => error.intent(),
    }
}

/// Sends a recorded request again under its recorded key.
async fn send_again(client: Client, record: Record) -> Result<Outcome, Error> {
    let Record { name, request, .. } = record;
    let mut again = client.intent(name).method(&request.method, request.url);
    for (header, value) in request.headers {
        again = again.header(&header, value);
    }
    again.body(request.body).send().await
}

/// The first error's status if any intent failed (it is still not done),
/// else 1 if any settled with a non-2xx status, else 0.
fn exit_of(results: &[Result<Outcome, Error>]) -> Exit {
    if let Some(error) = results.iter().find_map(|r| r.as_ref().err()) {
        return Exit::of(error.kind());
    }
    if results
        .iter()
        .flatten()
        .any(|outcome| !outcome.is_success())
    {
        return Exit::NotSuccess;
    }
    Exit::Success
}
