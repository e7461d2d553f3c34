//! What the benchmarks share: a loopback endpoint, a transport without a
//! network, and interleaved timing (each figure against a baseline
//! measured in the same run).
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// A loopback endpoint that answers every POST with 201, on its own thread
/// and runtime so it does not share the client's scheduler.
pub fn start_endpoint() -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/charge",
                axum::routing::post(|| async { (axum::http::StatusCode::CREATED, r#"{"id":1}"#) }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender
                .send(format!("http://{}/charge", listener.local_addr().unwrap()))
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    receiver.recv().unwrap()
}

/// A transport that answers 201 at once: isolates what the core itself costs
/// per call (recording, keys, flights, events), without the network.
pub struct Immediate;

impl oncely::transport::Transport for Immediate {
    fn send<'a>(
        &'a self,
        _outgoing: oncely::transport::Outgoing<'a>,
        _timeout: Duration,
    ) -> oncely::runtime::BoxFuture<'a, Result<oncely::Response, oncely::transport::TransportError>>
    {
        Box::pin(async {
            Ok(oncely::Response {
                status: 201,
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body: r#"{"id":1}"#.into(),
            })
        })
    }
}

/// Times `round` once.
pub fn time<F: std::future::Future<Output = ()>>(
    runtime: &tokio::runtime::Runtime,
    round: &impl Fn() -> F,
) -> Duration {
    let start = Instant::now();
    runtime.block_on(round());
    start.elapsed()
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `baseline` and `subject` round after round, alternating which goes
/// first (so neither always inherits the other's warm or cold state), and
/// returns each round's pair of times in seconds.
pub fn interleave<A, B>(
    runtime: &tokio::runtime::Runtime,
    rounds: usize,
    baseline: impl Fn() -> A,
    subject: impl Fn() -> B,
) -> Vec<(f64, f64)>
where
    A: std::future::Future<Output = ()>,
    B: std::future::Future<Output = ()>,
{
    (0..rounds)
        .map(|round| {
            if round % 2 == 0 {
                let base = time(runtime, &baseline);
                (base.as_secs_f64(), time(runtime, &subject).as_secs_f64())
            } else {
                let subj = time(runtime, &subject);
                (time(runtime, &baseline).as_secs_f64(), subj.as_secs_f64())
            }
        })
        .collect()
}
