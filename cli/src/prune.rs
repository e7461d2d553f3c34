//! `oncely prune`: remove the intents past their retention whose outcome is
//! known, so the store stops growing.

use clap::Args;
use oncely::Store;
use oncely::runtime::{Clock, SystemClock};

use crate::console;
use crate::exit::{Exit, Failure};
use crate::store::StoreArg;

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    store: StoreArg,
}

pub async fn run(args: PruneArgs) -> Result<Exit, Failure> {
    let now_ms = SystemClock.now_ms();
    let pruned = match args.store.open_existing().await? {
        Some(store) => store.prune(now_ms).await?,
        None => 0,
    };
    let noun = if pruned == 1 { "intent" } else { "intents" };
    console::out_line(&format!("pruned {pruned} {noun}"))?;
    Ok(Exit::Success)
}
