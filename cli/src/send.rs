//! `oncely send`: one request, once.

use clap::Args;
use oncely::Client;

use crate::exit::{Exit, Failure};
use crate::progress::{self, Naming};
use crate::request::{self, Header};
use crate::retry::RetryArgs;
use crate::store::StoreArg;
use crate::{console, report};

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The intent's name, a stable business identity ("order-42"): same name,
    /// same intent, same key
    #[arg(long, value_name = "NAME")]
    intent: String,
    /// The method; POST by default, since oncely is for effects
    #[arg(
        short = 'X',
        long = "request",
        value_name = "METHOD",
        default_value = "POST"
    )]
    method: String,
    /// A header to send, repeatable. Only headers that describe the request
    /// (Content-Type, Accept, User-Agent...) are stored; every other one
    /// (Authorization, Cookie, X-Api-Key, X-Account...) is sent but never
    /// stored, and `resume` must be given it again with -H. One
    /// Idempotency-Key header sets the intent's key instead of minting one.
    /// No Content-Length: the body is sent as given, with its own length
    #[arg(short = 'H', long = "header", value_name = "'Name: value'", value_parser = request::parse_header)]
    headers: Vec<Header>,
    /// Another header name whose value is a credential: sent, never stored
    /// (repeatable; for one on the stored list, e.g. User-Agent)
    #[arg(long = "secret-header", value_name = "NAME")]
    secret_headers: Vec<String>,
    /// Another header name that may be stored, so that `resume` sends it
    /// without being given it again (repeatable; never Authorization,
    /// Cookie or Proxy-Authorization)
    #[arg(long = "store-header", value_name = "NAME")]
    stored_headers: Vec<String>,
    /// The body: DATA as given, @FILE for a file's bytes, @- for stdin. Sent
    /// byte for byte; no Content-Type is added (pass one with -H)
    #[arg(short = 'd', long = "data", value_name = "DATA|@FILE|@-")]
    data: Option<String>,
    /// Print {"intent","key","status","attempts","replayed"} as one JSON line
    /// instead of the response body ("replayed": from the store, or by the
    /// server: Idempotent-Replayed: true); on failure
    /// {"intent","key","error":{"kind","message","last_status"}}
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    retry: RetryArgs,
    /// The URL (http or https)
    url: String,
}

pub async fn run(args: SendArgs) -> Result<Exit, Failure> {
    let result = send(&args).await;
    if let (Err(failure), true) = (&result, args.json) {
        // The reason still goes to stderr; were stdout what failed, there
        // is nothing more to say there.
        let _ = console::out_line(&report::failure_json(&args.intent, failure).to_string());
    }
    result
}

async fn send(args: &SendArgs) -> Result<Exit, Failure> {
    request::check_headers(&args.headers)?;
    let body = match &args.data {
        Some(data) => request::read_body(data)?,
        None => Vec::new(),
    };
    let mut builder = Client::builder()
        .store(args.store.open().await?)
        .retry(args.retry.policy());
    for name in &args.secret_headers {
        builder = builder.secret_header(name);
    }
    for name in &args.stored_headers {
        builder = builder.stored_header(name);
    }
    if !args.quiet {
        builder = builder.on_event(progress::reporter(Naming::Implicit));
    }
    let client = builder.build()?;

    let mut request = client.intent(&args.intent).method(&args.method, &args.url);
    for header in &args.headers {
        request = request.header(&header.name, &header.value);
    }
    let outcome = request.body(body).send().await?;
    // A replay from the store has said so already (a progress line).
    if !args.quiet && report::server_replayed(&outcome) && !outcome.replayed() {
        console::error(format_args!(
            "the server replayed its answer to an earlier request under this key"
        ));
    }

    if args.json {
        console::out_line(&report::outcome_json(&outcome).to_string())?;
    } else {
        console::out(outcome.body())?;
    }
    if outcome.is_success() {
        Ok(Exit::Success)
    } else {
        console::error(format_args!("{}", report::not_success_line(&outcome)));
        Ok(Exit::NotSuccess)
    }
}
