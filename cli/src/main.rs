//! `oncely`: curl for requests that must happen once.
//!
//! Run with: `cargo run --bin oncely -- send --intent order-42 -d '{"amount":1000}' https://api.example.com/charges`

mod console;
mod exit;
mod forget;
mod list;
mod progress;
mod prune;
mod report;
mod request;
mod resume;
mod retry;
mod send;
mod store;
mod timestamp;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::EXIT_STATUS_HELP;

/// Make HTTP requests happen once.
///
/// Name an intent ("charge order 42"): oncely mints one Idempotency-Key for
/// it, records the request durably before sending it, retries under the same
/// key, and replays the recorded outcome to every later call with that name.
#[derive(Debug, Parser)]
#[command(name = "oncely", version, after_help = EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a request once: record it, send it with an Idempotency-Key, retry
    /// under that key, and print the response body.
    ///
    /// Sending the same intent again replays the recorded outcome instead of
    /// sending twice; if an earlier run was interrupted, it resumes under the
    /// same key.
    #[command(after_help = EXIT_STATUS_HELP)]
    Send(send::SendArgs),
    /// Finish every intent an earlier run left pending (or gave up on), under
    /// its original key, and print one line per intent.
    ///
    /// Credentials are never stored: pass them again with -H.
    #[command(after_help = EXIT_STATUS_HELP)]
    Resume(resume::ResumeArgs),
    /// Show every recorded intent: its key, state, attempts and status.
    List(list::ListArgs),
    /// Remove an intent from the store: the next send under that name starts a
    /// new intent with a new key.
    ///
    /// An intent whose outcome is unknown (pending, or given up) is kept
    /// unless --force: the server may have acted on it.
    Forget(forget::ForgetArgs),
    /// Remove every intent past its retention whose outcome is known
    /// (settled, expired, or failed for good), so the store stops growing.
    ///
    /// Until then such an intent refuses a send under its name as expired;
    /// once pruned, that name starts a new intent with a new key. Intents
    /// still pending or given up are kept whatever their age.
    Prune(prune::PruneArgs),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => send::run(args).await,
        Command::Resume(args) => resume::run(args).await,
        Command::List(args) => list::run(args).await,
        Command::Forget(args) => forget::run(args).await,
        Command::Prune(args) => prune::run(args).await,
    };
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => {
            console::error(format_args!("{}", failure.message));
            failure.exit.into()
        }
    }
}
