//! `oncely forget`: drop an intent, so its name starts anew.

use clap::Args;
use oncely::Store;

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
}

pub async fn run(args: ForgetArgs) -> Result<Exit, Failure> {
    let removed = match args.store.open_existing()? {
        Some(store) => store.remove(&args.intent).await?,
        None => false,
    };
    if removed {
        console::out_line(&format!("forgot {:?}", args.intent))?;
        Ok(Exit::Success)
    } else {
        let path = args.store.path()?;
        console::error(format_args!(
            "no intent named {:?} in {}",
            args.intent,
            path.display()
        ));
        Ok(Exit::NotSuccess)
    }
}
