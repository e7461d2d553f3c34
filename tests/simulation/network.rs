//! The simulated network: the `Transport` every simulated client sends
//! through, and the wire between it and the server, where requests and
//! answers get lost, delayed or replaced by a gateway's error.
//!
//! Each attempt travels in a task of the world's, not of the client's: once
//! a request has left, the server works on it whether or not its client is
//! still alive (or still waiting) when the answer comes back.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::FutureExt;
use oncely::runtime::BoxFuture;
use oncely::transport::{Outgoing, Transport, TransportError, TransportErrorKind};
use oncely::{Response, Store};

use crate::server::{self, Delivered, intent_of};
use crate::time::{Alive, Mortal, Sleep, mortal};
use crate::world::{Sent, World};

/// How a message fares on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Loss {
    Through,
    /// The connection breaks: the sender hears of it.
    Broken,
    /// Silence: only a timeout ends the wait.
    Silent,
}

/// Everything the wire decides for one attempt, drawn when it leaves.
struct Fate {
    out: u64,
    back: u64,
    request: Loss,
    answer: Loss,
    /// A gateway's 502/504 in place of the server's answer.
    gateway: Option<u16>,
}

impl Fate {
    fn draw(world: &World) -> Fate {
        let faults = &world.scenario.network;
        let mut rng = world.rng();
        let loss = |p: f64, rng: &mut crate::scenario::Rng| match rng.chance(p) {
            false => Loss::Through,
            true if rng.chance(0.5) => Loss::Broken,
            true => Loss::Silent,
        };
        Fate {
            out: rng.range(faults.latency.0, faults.latency.1),
            back: rng.range(faults.latency.0, faults.latency.1),
            request: loss(faults.lose_request, &mut rng),
            answer: loss(faults.lose_answer, &mut rng),
            gateway: rng.chance(faults.gateway).then(|| rng.pick(&[502, 504])),
        }
    }
}

/// What an attempt gets: an answer, or a broken connection.
type Answer = Result<Response, TransportError>;

/// Where an attempt's answer lands for the client waiting on it.
#[derive(Default)]
struct Exchange {
    state: Mutex<Landing>,
}

#[derive(Default)]
struct Landing {
    answer: Option<Answer>,
    waiting: Option<Waker>,
}

impl Exchange {
    fn deliver(&self, answer: Answer) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.answer = Some(answer);
            state.waiting.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// One simulated process's transport.
pub struct SimTransport {
    pub world: Arc<World>,
    pub process: u32,
    pub alive: Alive,
}

impl Transport for SimTransport {
    fn send<'a>(&'a self, outgoing: Outgoing<'a>, timeout: Duration) -> BoxFuture<'a, Answer> {
        let world = &self.world;
        let request = Delivered {
            method: outgoing.request.method.clone(),
            url: outgoing.request.url.clone(),
            headers: outgoing
                .headers()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            body: outgoing.request.body.clone(),
        };
        let intent = intent_of(&request.body);
        let key = outgoing.idempotency_key.to_owned();
        // The record must be in the store, under this key, before the
        // first byte leaves.
        let recorded = matches!(
            world.store.get(&intent).now_or_never(),
            Some(Ok(Some(record))) if record.key.header_value() == key
        );
        world.journal().sent.push(Sent {
            at: world.time.now(),
            wall_ms: world.time.wall_ms(),
            process: self.process,
            intent: intent.clone(),
            key: key.clone(),
            recorded,
        });
        let fate = Fate::draw(world);
        world.note(format!(
            "p{} sends {intent} {key} timeout {} auth {}",
            self.process,
            timeout.as_millis(),
            request.header("authorization").is_some(),
        ));
        let exchange = Arc::new(Exchange::default());
        tokio::spawn(carry(
            Arc::clone(world),
            request,
            fate,
            Arc::clone(&exchange),
        ));
        Box::pin(Awaiting {
            exchange,
            timeout: mortal(&self.alive, world.time.sleep(timeout)),
            alive: Arc::clone(&self.alive),
        })
    }
}

/// Carries one attempt to the server and its answer back, as the fate says.
async fn carry(world: Arc<World>, request: Delivered, fate: Fate, exchange: Arc<Exchange>) {
    world.time.sleep(Duration::from_millis(fate.out)).await;
    match fate.request {
        Loss::Through => {}
        Loss::Broken => {
            let error = TransportError::new(TransportErrorKind::Connect, "connection refused");
            return exchange.deliver(Err(error));
        }
        Loss::Silent => return,
    }
    let answer = server::handle(&world, request).await;
    world.time.sleep(Duration::from_millis(fate.back)).await;
    let answer = match (fate.answer, answer, fate.gateway) {
        (Loss::Silent, ..) => return,
        (Loss::Broken, ..) => Err(TransportError::new(
            TransportErrorKind::Interrupted,
            "connection reset before the answer",
        )),
        (Loss::Through, Ok(_), Some(status)) => Ok(Response {
            status,
            headers: Vec::new(),
            body: bytes::Bytes::from_static(b"gateway error"),
        }),
        (Loss::Through, answer, _) => answer,
    };
    exchange.deliver(answer);
}

/// A client's wait for its attempt's answer, up to its timeout. Frozen once
/// its process has died.
struct Awaiting {
    exchange: Arc<Exchange>,
    timeout: Mortal<Sleep>,
    alive: Alive,
}

impl Future for Awaiting {
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.alive.halted(cx) {
            return Poll::Pending;
        }
        {
            let mut state = self
                .exchange
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(answer) = state.answer.take() {
                return Poll::Ready(answer);
            }
            state.waiting = Some(cx.waker().clone());
        }
        match Pin::new(&mut self.timeout).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TransportError::new(
                TransportErrorKind::Timeout,
                "no answer within the attempt's timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}
