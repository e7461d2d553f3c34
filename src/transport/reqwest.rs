//! The transport on native targets: reqwest.

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;

use super::{Outgoing, Transport, TransportError, TransportErrorKind};
use crate::Error;
use crate::intent::{Request, Response};
use crate::runtime::BoxFuture;

/// Sends attempts with reqwest (rustls, HTTP/1.1 and HTTP/2, connection
/// pooling).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A transport with reqwest's default client, except that redirects are
    /// not followed: a 3xx is a definitive answer to record (following a 303
    /// would turn the POST into a GET the intent never asked for).
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new() -> Result<HttpTransport, Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::invalid_input(format!("cannot build the HTTP client: {e}")).with_source(e))?;
        Ok(HttpTransport { client })
    }

    /// A transport over an existing reqwest client (proxies, root
    /// certificates, pool settings: yours).
    pub fn from_client(client: reqwest::Client) -> HttpTransport {
        HttpTransport { client }
    }
}

fn method(request: &Request) -> Result<reqwest::Method, String> {
    reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| format!("invalid method {:?}", request.method))
}

impl Transport for HttpTransport {
    fn check(&self, request: &Request) -> Result<(), String> {
        method(request)?;
        let url = reqwest::Url::parse(&request.url).map_err(|e| format!("invalid URL {:?}: {e}", request.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("unsupported URL scheme {:?}", url.scheme()));
        }
        for (name, value) in &request.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            reqwest::header::HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name:?}"))?;
        }
        Ok(())
    }

    fn send<'a>(&'a self, outgoing: Outgoing<'a>, timeout: Duration) -> BoxFuture<'a, Result<Response, TransportError>> {
        Box::pin(async move {
            let request = outgoing.request;
            let method = method(request).map_err(|m| TransportError::new(TransportErrorKind::Other, m))?;
            let mut builder = self.client.request(method, &request.url).timeout(timeout);
            for (name, value) in outgoing.headers() {
                builder = builder.header(name, value);
            }
            let response = builder.body(request.body.clone()).send().await.map_err(transport_error)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter(|(name, _)| *name != reqwest::header::SET_COOKIE)
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect();
            let body: Bytes = response.bytes().await.map_err(transport_error)?;
            Ok(Response { status, headers, body })
        })
    }
}

fn transport_error(error: reqwest::Error) -> TransportError {
    let kind = if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_request() || error.is_body() || error.is_decode() {
        TransportErrorKind::Interrupted
    } else {
        TransportErrorKind::Other
    };
    // reqwest's own message is terse ("error sending request"); the root cause
    // says what happened ("connection reset by peer").
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    TransportError::new(kind, message)
}
