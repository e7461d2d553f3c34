//! The network of a row, scripted: a `Transport` that answers each request
//! as the row's schedule says and records what went on the wire.
//!
//! Only sending is scripted: what a request *is* (its check, and its URL as
//! the URL standard writes it) is the executor's real transport's, so the
//! relative and the dot-segment URLs resolve as they would for real.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use oncely::runtime::BoxFuture;
use oncely::transport::{HttpTransport, Outgoing, Transport, TransportError, TransportErrorKind};
use oncely::{Request, Response};

use crate::rows::Answer;

/// One request as the network saw it.
pub struct Sent {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Clones share the schedule and the wire: every client of a row (a reload
/// is a new client) talks to one network.
#[derive(Clone)]
pub struct Network {
    real: HttpTransport,
    schedule: Arc<Mutex<VecDeque<Answer>>>,
    otherwise: Answer,
    wire: Arc<Mutex<Vec<Sent>>>,
}

impl Network {
    /// Answers with `schedule`, in order, then with `otherwise`.
    pub fn new(schedule: &[Answer], otherwise: &Answer) -> Network {
        Network {
            real: HttpTransport::new().expect("the executor's transport"),
            schedule: Arc::new(Mutex::new(schedule.iter().cloned().collect())),
            otherwise: otherwise.clone(),
            wire: Arc::default(),
        }
    }

    /// What went on the wire, in order.
    pub fn wire(&self) -> std::sync::MutexGuard<'_, Vec<Sent>> {
        self.wire.lock().unwrap()
    }
}

impl Transport for Network {
    fn check(&self, request: &Request) -> Result<(), String> {
        self.real.check(request)
    }

    fn resolve(&self, url: &str) -> String {
        self.real.resolve(url)
    }

    fn send<'a>(
        &'a self,
        outgoing: Outgoing<'a>,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<Response, TransportError>> {
        let request = outgoing.request;
        self.wire.lock().unwrap().push(Sent {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: outgoing
                .headers()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
                .collect(),
            body: request.body.clone(),
        });
        let answer = self
            .schedule
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.otherwise.clone());
        Box::pin(async move {
            // The answer comes back in a later poll, as a real one would:
            // calls made while the attempt is out find it in flight.
            ComeBackLater(false).await;
            if answer.lost {
                return Err(TransportError::new(
                    TransportErrorKind::Interrupted,
                    "the connection broke before the answer came back",
                ));
            }
            if answer.unreachable {
                return Err(TransportError::new(
                    TransportErrorKind::Connect,
                    "the server could not be reached",
                ));
            }
            Ok(Response {
                status: answer
                    .status
                    .expect("an answer has a status, or is lost or unreachable"),
                headers: answer.headers.into_iter().collect(),
                body: Bytes::from(answer.body),
            })
        })
    }
}

/// Pending once (waking its task at once), then ready.
struct ComeBackLater(bool);

impl Future for ComeBackLater {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
