//! `oncely forget`: drop an intent, so its name starts anew.

use clap::Args;
use oncely::{Record, State, Store};

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
    let Some(store) = args.store.open_existing()? else {
        return no_such_intent(&args);
    };
    let Some(record) = store.get(&args.intent).await? else {
        return no_such_intent(&args);
    };
    if record.is_unsettled() && !args.force {
        return Err(Failure::new(Exit::NotSuccess, unknown_outcome(&record)));
    }
    if !store.remove(&args.intent).await? {
        // Removed by someone else since it was read.
        return no_such_intent(&args);
    }
    console::out_line(&format!("forgot {:?}", args.intent))?;
    Ok(Exit::Success)
}

fn no_such_intent(args: &ForgetArgs) -> Result<Exit, Failure> {
    let path = args.store.path()?;
    console::error(format_args!(
        "no intent named {:?} in {}",
        args.intent,
        path.display()
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
