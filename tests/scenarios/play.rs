//! Playing one row with the Rust `Client` on one executor's store: the
//! same code natively and in the browser.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures_util::future::{LocalBoxFuture, maybe_done};
use oncely::runtime::{BoxFuture, Clock, SystemClock};
use oncely::{Client, Error, Outcome, RetryPolicy, Store};
use serde_json::Value;

use crate::network::Network;
use crate::rows::{ClientOptions, RequestSpec, Row, Step, Suite};
use crate::transcript::{self, Transcript};

/// Where an executor keeps a row's intents; a reload opens it again.
pub trait Stores {
    type Store: Store;
    fn open(&self) -> impl Future<Output = Self::Store>;
}

/// Plays `row` on a store of `stores`, with `origin` for `{origin}`: the
/// transcript, as the row writes it.
pub async fn play(suite: &Suite, row: &Row, stores: &impl Stores, origin: &str) -> Value {
    let player = Player {
        suite,
        origin,
        network: Network::new(&row.network, &suite.defaults.answer),
        clock: ShiftedClock::default(),
        events: EventLog::default(),
    };
    let mut client = player.client(stores.open().await, &row.client);
    let mut results = Vec::new();
    for step in &row.steps {
        match step {
            Step::Reload { client: options } => {
                // The old client goes first: a file store's last handle
                // waits for its queued writes.
                drop(client);
                client = player.client(stores.open().await, options);
            }
            Step::Advance { ms } => player.clock.advance(*ms),
            Step::Send { during, .. } if !during.is_empty() => {
                results.extend(player.send_while_in_flight(&client, step, during).await);
            }
            call => results.push(player.call(&client, call).await),
        }
    }
    drop(client);
    let wire = player.network.wire();
    Transcript {
        results,
        events: player.events.0.lock().unwrap().clone(),
        wire: wire
            .iter()
            .map(|sent| transcript::sent(sent, origin, &suite.wire_headers))
            .collect(),
    }
    .labelled()
}

struct Player<'a> {
    suite: &'a Suite,
    origin: &'a str,
    network: Network,
    clock: ShiftedClock,
    events: EventLog,
}

impl Player<'_> {
    /// A client with `options` over the defaults, on `store`; every client
    /// of the row shares its network, clock and event log.
    fn client(&self, store: impl Store, options: &ClientOptions) -> Client {
        let options = options.over(&self.suite.defaults.client);
        let defaults = RetryPolicy::default();
        let ms = |ms: Option<u64>, default: Duration| ms.map_or(default, Duration::from_millis);
        let retry = RetryPolicy {
            max_attempts: options.retry.max_attempts.unwrap_or(defaults.max_attempts),
            base_delay: ms(options.retry.base_delay_ms, defaults.base_delay),
            max_delay: ms(options.retry.max_delay_ms, defaults.max_delay),
            deadline: ms(options.retry.deadline_ms, defaults.deadline),
            ..defaults
        };
        let mut builder = Client::builder()
            .store(store)
            .transport(self.network.clone())
            .clock(self.clock.clone())
            .retry(retry)
            .on_event(self.events.handler());
        if let Some(user) = options.user {
            builder = builder.user(user);
        }
        if let Some(credentials) = options.credentials {
            let headers: Vec<(String, String)> = credentials.into_iter().collect();
            builder = builder.credentials(move |_| headers.clone());
        }
        if let Some(ms) = options.retention_ms {
            builder = builder.retention(Duration::from_millis(ms));
        }
        builder.build().expect("the row's client options are valid")
    }

    /// One call, and its result as the row writes it.
    fn call<'s>(&'s self, client: &'s Client, step: &'s Step) -> LocalBoxFuture<'s, Value> {
        Box::pin(async move {
            match step {
                Step::Send {
                    intent, request, ..
                } => transcript::result(&self.send(client, intent, request).await),
                Step::Resume { .. } => match client.resume().await {
                    Ok(results) => results.iter().map(transcript::result).collect(),
                    Err(error) => transcript::error_result(&error),
                },
                Step::Pending { .. } => match client.pending().await {
                    Ok(records) => transcript::pending(&records),
                    Err(error) => transcript::error_result(&error),
                },
                Step::Prune { .. } => match client.prune().await {
                    Ok(pruned) => pruned.into(),
                    Err(error) => transcript::error_result(&error),
                },
                Step::Forget { intent, .. } => match client.forget(intent).await {
                    Ok(forgot) => forgot.into(),
                    Err(error) => transcript::error_result(&error),
                },
                Step::Reload { .. } | Step::Advance { .. } => {
                    panic!("a reload or a clock jump is no call: it cannot run during a flight")
                }
            }
        })
    }

    async fn send(
        &self,
        client: &Client,
        intent: &str,
        spec: &RequestSpec,
    ) -> Result<Outcome, Error> {
        let request = spec.over(&self.suite.defaults.request, self.origin);
        let mut call = client
            .intent(intent)
            .method(&request.method, request.url.as_str());
        for (name, value) in &request.headers {
            call = call.header(name.as_str(), value.as_str());
        }
        call.body(request.body.clone()).send().await
    }

    /// The send `step`, with the `during` calls made once its first attempt
    /// has left and before its answer is in: their results follow its own.
    async fn send_while_in_flight(
        &self,
        client: &Client,
        step: &Step,
        during: &[Step],
    ) -> Vec<Value> {
        let seen = self.events.len();
        let mut first = pin!(self.call(client, step));
        let ended_early = poll_fn(|cx| match first.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(Some(result)),
            Poll::Pending if self.events.attempted_since(seen) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        let mut others: Vec<_> = during
            .iter()
            .map(|call| maybe_done(self.call(client, call)))
            .collect();
        // Each call boards now, while the attempt is out.
        poll_fn(|cx| {
            for other in &mut others {
                let _ = Pin::new(other).poll(cx);
            }
            Poll::Ready(())
        })
        .await;
        let mut results = vec![match ended_early {
            Some(result) => result,
            None => first.await,
        }];
        for mut other in others {
            (&mut other).await;
            results.push(Pin::new(&mut other).take_output().expect("done"));
        }
        results
    }
}

/// Every event of every client of the row, as the row writes them.
#[derive(Clone, Default)]
struct EventLog(Arc<Mutex<Vec<String>>>);

impl EventLog {
    fn handler(&self) -> impl Fn(&oncely::Event) + Send + Sync + 'static {
        let log = Arc::clone(&self.0);
        move |event| log.lock().unwrap().push(transcript::event(event))
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn attempted_since(&self, seen: usize) -> bool {
        self.0.lock().unwrap()[seen..]
            .iter()
            .any(|event| event.starts_with("attempt "))
    }
}

/// The real clock, moved ahead by the row's `advance` steps (a laptop
/// closed for a day): sleeps are real, and the rows' are short.
#[derive(Clone, Default)]
struct ShiftedClock(Arc<AtomicU64>);

impl ShiftedClock {
    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms() + self.0.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        SystemClock.sleep(duration)
    }
}
