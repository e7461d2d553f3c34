//! The transport seam: sending one attempt.
//!
//! Natively [`HttpTransport`] is reqwest (rustls); in the browser it is the
//! browser's own `fetch`. Both buffer the whole response, so an outcome can be
//! recorded and replayed byte for byte.

use crate::prelude::*;
use core::fmt;
use core::time::Duration;

use crate::intent::{Request, Response};
use crate::runtime::{BoxFuture, MaybeSend, MaybeSync};
use crate::text::Text;

if_native! {
    mod reqwest;
    pub use self::reqwest::HttpTransport;
}

if_browser! {
    mod fetch;
    pub use self::fetch::{HttpTransport, header_pairs};
}

/// One attempt as a transport sends it: the recorded request, plus what is
/// added at send time (credentials, the `Idempotency-Key`), borrowed so that
/// an attempt copies nothing.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The request as recorded (or as the caller gave it).
    pub request: &'a Request,
    /// Credential headers supplied at send time.
    pub credentials: &'a [(String, String)],
    /// The value of the `Idempotency-Key` header (a quoted structured-field
    /// String).
    pub idempotency_key: &'a str,
}

impl<'a> Outgoing<'a> {
    /// Every header to send: the request's (but those the credentials
    /// name: fresh credentials win), the credentials, the key.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let credentials = self.credentials;
        self.request
            .headers
            .iter()
            .filter(move |(name, _)| {
                !credentials
                    .iter()
                    .any(|(c, _)| c.eq_ignore_ascii_case(name))
            })
            .chain(credentials)
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .chain(core::iter::once(("idempotency-key", self.idempotency_key)))
    }
}

/// Sends one attempt of a request.
pub trait Transport: MaybeSend + MaybeSync + 'static {
    /// Checks, before anything is recorded, that `request` could be sent (a
    /// parseable URL, valid header values). The default accepts everything.
    ///
    /// # Errors
    /// Why the request cannot be sent, for people.
    fn check(&self, request: &Request) -> Result<(), String> {
        let _ = request;
        Ok(())
    }

    /// The URL `url` as this transport sends it, once [`check`](Self::check)
    /// accepted the request: resolved and normalised as the WHATWG URL
    /// standard says (in the browser its own `URL`, natively the `url`
    /// crate), so one intent written two ways (`HTTPS://Api.Example/x`,
    /// `https://api.example/x`) is one request, in every executor. The
    /// default keeps it as given.
    fn resolve(&self, url: &str) -> String {
        url.to_owned()
    }

    /// Sends `outgoing` and reads the whole response, within `timeout`.
    ///
    /// Dropping the returned future abandons the attempt (natively the
    /// connection is dropped; in the browser the fetch is aborted).
    fn send<'a>(
        &'a self,
        outgoing: Outgoing<'a>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Response, TransportError>>;
}

/// Why an attempt got no complete response. In every case the outcome on the
/// server is unknown, so the default classification retries under the same key.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Debug))]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
}

/// The broad reason an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be made.
    Connect,
    /// The attempt ran past its timeout.
    Timeout,
    /// The connection broke before a complete response (reset, closed, a body
    /// cut short).
    Interrupted,
    /// The browser is offline.
    Offline,
    /// Anything else the transport reported.
    Other,
}

impl TransportError {
    /// An error of `kind` with a reason for people.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            message: message.into(),
        }
    }

    /// The broad reason.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The reason, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What went wrong and why, for people (its `Display`, joined: see
    /// [`crate::text`]).
    pub fn describe(&self) -> String {
        let what = match self.kind {
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Interrupted => "connection interrupted",
            TransportErrorKind::Offline => "offline",
            TransportErrorKind::Other => "transport error",
        };
        let mut text = Text::new(what);
        text.add(": ").add(&self.message);
        text.0
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

// In the browser, Debug prints the fields without `str`'s escaping, whose
// Unicode tables would otherwise ship in the package (a `dyn Error` needs it).
if_wasm! {
    impl fmt::Debug for TransportError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("TransportError { kind: ")?;
            fmt::Debug::fmt(&self.kind, f)?;
            f.write_str(", message: ")?;
            f.write_str(&self.message)?;
            f.write_str(" }")
        }
    }
}

impl core::error::Error for TransportError {}
