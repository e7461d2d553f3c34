//! The accept loop and per-connection serving, with a kill switch.
//!
//! axum's own `serve` cannot drop a connection mid-request, which the
//! `drop_next` fault needs: a response lost on the wire after the charge was
//! committed. So each connection is served by hyper-util directly, and every
//! request carries a [`ConnectionKill`] extension. Firing it makes the
//! connection task drop the connection future, which closes the socket
//! without writing a byte of the response.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long stopping waits for open connections before cutting them.
const GRACE: Duration = Duration::from_secs(30);

/// Closes the connection a request arrived on, without a response.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionKill {
    fire: Arc<watch::Sender<bool>>,
}

impl ConnectionKill {
    /// Closes the connection and resolves once it is gone. For HTTP/1 the
    /// caller's own future is dropped with the connection, so this never
    /// returns there; for HTTP/2 the request task outlives the connection and
    /// returns into a response nobody can receive.
    pub(crate) async fn close_connection(&self) {
        self.fire.send_replace(true);
        self.fire.closed().await;
    }
}

/// Accepts connections until `shutdown` turns true (or its sender drops),
/// then lets open connections finish their requests.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            // A dropped sender (the `Server` was dropped) stops us too.
            () = turned_true(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve(stream, app.clone(), for_connections.clone()));
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    eprintln!("oncely-server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!("oncely-server: cutting connections still open after {GRACE:?}");
        connections.shutdown().await;
    }
}

async fn serve(stream: TcpStream, app: Router, mut shutdown: watch::Receiver<bool>) {
    // Small JSON responses: don't let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let (fire, mut fired) = watch::channel(false);
    let kill = ConnectionKill {
        fire: Arc::new(fire),
    };
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(kill.clone());
        let app = app.clone();
        async move { app.oneshot(request.map(Body::new)).await }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut connection = Box::pin(builder.serve_connection(TokioIo::new(stream), service));
    let mut draining = false;
    loop {
        tokio::select! {
            // An error here is mostly a client hanging up mid-request: not news.
            _ = connection.as_mut() => break,
            true = was_fired(&mut fired) => break,
            () = turned_true(&mut shutdown), if !draining => {
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
    // Dropping the connection closes the socket; only then may a waiting
    // `close_connection` return.
    drop(connection);
    drop(fired);
}

/// Resolves once the flag is true, or once nobody can set it any more.
async fn turned_true(flag: &mut watch::Receiver<bool>) {
    // Only the value's guard is returned; it must not live across an await.
    let _ = flag.wait_for(|set| *set).await;
}

/// True once the kill switch fires; false if it can no longer fire.
async fn was_fired(switch: &mut watch::Receiver<bool>) -> bool {
    switch.wait_for(|fired| *fired).await.is_ok()
}
