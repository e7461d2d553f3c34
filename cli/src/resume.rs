//! `oncely resume`: finish what earlier runs left, under the original keys.

use clap::Args;
use oncely::{Client, Error, Outcome};

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
    /// A header added to every resumed request, repeatable. Headers off the
    /// stored list (Authorization, Cookie, X-Api-Key, X-Account...) are never
    /// stored, so pass them again here: an intent sent with one that is not
    /// given is not sent (exit 10). They go to every resumed intent's URL
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
    let Some(store) = args.store.open_existing().await? else {
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

    // Pending intents and the ones that gave up, each under its own key.
    let results = client.resume().await?;

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
