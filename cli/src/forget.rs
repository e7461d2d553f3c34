//! `oncely forget`: drop an intent, so its name starts anew.

use clap::Args;
use oncely::{Client, Record, State};

use crate::console;
use crate::exit::{Exit, Failure};
use crate::store::StoreArg;

#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The intent to remove
    #[arg(long, value_name = "NAME")]
    intent: String,
    /// Also forget an intent whose outcome is unknown (pending, or given
    /// up): the server may have acted on it, and sending it again under a
    /// new key could do it twice
    #[arg(long)]
    force: bool,
}

pub async fn run(args: ForgetArgs) -> Result<Exit, Failure> {
    let Some(store) = args.store.open_existing().await? else {
        return no_such_intent(&args);
    };
    // Through a client: it forgets under the intent's lease, so another
    // process flying it lands (and records its outcome) first.
    let client = Client::builder().store(store).build()?;
    let Some(record) = client.record(&args.intent).await? else {
        return no_such_intent(&args);
    };
    if record.is_unsettled() && !args.force {
        return Err(Failure::new(Exit::NotSuccess, unknown_outcome(&record)));
    }
    if !client.forget(&args.intent).await? {
        // Removed by someone else since it was read.
        return no_such_intent(&args);
    }
    console::out_line(&format!("forgot {:?}", args.intent))?;
    Ok(Exit::Success)
}

fn no_such_intent(args: &ForgetArgs) -> Result<Exit, Failure> {
    let location = args.store.location()?;
    console::error(format_args!(
        "no intent named {:?} in {location}",
        args.intent
    ));
    Ok(Exit::NotSuccess)
}

/// Why an unsettled intent is not forgotten without `--force`.
fn unknown_outcome(record: &Record) -> String {
    let state = match record.state {
        State::Pending => "is pending",
        _ => "was given up on",
    };
    format!(
        "intent {:?} (key {}) {state}: its outcome is unknown, the server may have acted on it, \
         and forgetting it then sending it again (under a new key) could do it twice. \
         `oncely resume` finishes it under its key; --force forgets it anyway",
        record.name, record.key
    )
}
