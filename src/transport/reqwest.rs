//! The transport on native targets: reqwest.

use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::{Outgoing, Transport, TransportError, TransportErrorKind};
use crate::Error;
use crate::intent::{Request, Response, check_url, is_header_value};
use crate::runtime::BoxFuture;
use reqwest::Url;

/// Sends attempts with reqwest (rustls, HTTP/1.1 and HTTP/2, connection
/// pooling).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    /// The URL last sent to, as given and parsed: programs send to few
    /// endpoints, and parsing a URL costs more than the rest of preparing
    /// an attempt. Clones share it.
    last_url: Arc<Mutex<Option<(String, Url)>>>,
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
        Ok(HttpTransport::from_client(client))
    }

    /// A transport over an existing reqwest client (proxies, root
    /// certificates, pool settings: yours).
    pub fn from_client(client: reqwest::Client) -> HttpTransport {
        HttpTransport {
            client,
            last_url: Arc::default(),
        }
    }

    /// `url`, parsed (once per endpoint in a row), if oncely can send to it.
    fn url(&self, url: &str) -> Result<Url, String> {
        let mut last = self.last_url.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, parsed)) = last.as_ref().filter(|(text, _)| text == url) {
            return Ok(parsed.clone());
        }
        let parsed = Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("unsupported URL scheme {:?}", parsed.scheme()));
        }
        // reqwest would send them as `Authorization: Basic`, but the URL is
        // recorded with the intent, and credentials are never stored.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(
                "the URL carries credentials (user:password@), which would be stored with the intent: \
                 send them in a header (Authorization), or from the credentials hook"
                    .to_owned(),
            );
        }
        // The `http` crate refuses a URI past 65,534 bytes once encoded:
        // every attempt would fail alike, so say so now.
        if parsed.as_str().len() > 65_534 {
            return Err(format!(
                "the URL is too long once percent-encoded: {} bytes, at most 65534 (put the data in the body)",
                parsed.as_str().len()
            ));
        }
        *last = Some((url.to_owned(), parsed.clone()));
        Ok(parsed)
    }
}

fn method(request: &Request) -> Result<reqwest::Method, String> {
    reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| format!("invalid method {:?}", request.method))
}

impl Transport for HttpTransport {
    fn resolve(&self, url: &str) -> String {
        self.url(url).map_or_else(|_| url.to_owned(), String::from)
    }

    fn check(&self, request: &Request) -> Result<(), String> {
        method(request)?;
        // Before parsing: a URL too long to send is not worth parsing (nor
        // remembering). The client checked it already; another caller of
        // the transport may not have.
        check_url(&request.url).map_err(|e| e.message().to_owned())?;
        self.url(&request.url)?;
        for (name, value) in &request.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            // What `HeaderValue` accepts, checked without building one.
            if !is_header_value(value) {
                return Err(format!("invalid value for header {name:?}"));
            }
        }
        Ok(())
    }

    fn send<'a>(&'a self, outgoing: Outgoing<'a>, timeout: Duration) -> BoxFuture<'a, Result<Response, TransportError>> {
        let attempt = async move {
            let request = outgoing.request;
            let other = |message| TransportError::new(TransportErrorKind::Other, message);
            let method = method(request).map_err(other)?;
            let mut builder = self.client.request(method, self.url(&request.url).map_err(other)?);
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
            // A copy of its own: the bytes hyper hands over share its read
            // buffer (kilobytes), which a stored body would otherwise pin for
            // the record's life, and which hyper can then reuse.
            let body = Bytes::copy_from_slice(&response.bytes().await.map_err(transport_error)?);
            Ok(Response { status, headers, body })
        };
        // The time limit covers the whole exchange, the body included: a
        // tokio timer in the future itself (reqwest's own `timeout` costs
        // allocations per request).
        Box::pin(async move {
            tokio::time::timeout(timeout, attempt).await.unwrap_or_else(|_| {
                Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("timed out: no complete response within {} ms", timeout.as_millis()),
                ))
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".to_owned(),
            url: url.to_owned(),
            headers: headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
            body: Bytes::new(),
        }
    }

    #[test]
    fn the_remembered_url_is_the_one_asked_for() {
        let transport = HttpTransport::new().expect("a client");
        for url in ["http://a.test/x", "http://b.test/y", "http://a.test/x", "HTTP://A.test/x?q=1"] {
            assert_eq!(transport.url(url), Ok(Url::parse(url).expect("valid")), "{url}");
        }
        // A remembered URL never vouches for another one.
        assert!(transport.check(&request("http://a.test/x", &[])).is_ok());
        assert!(transport.check(&request("http://a.test:99999/x", &[])).is_err());
        assert!(transport.check(&request("ftp://a.test/x", &[])).unwrap_err().contains("scheme"));
        for url in ["http://user:secret@a.test/x", "https://token@a.test/x", "http://:pw@a.test/"] {
            assert!(transport.check(&request(url, &[])).unwrap_err().contains("credentials"), "{url}");
        }
        assert!(transport.check(&request("http://a.test/x", &[])).is_ok());
    }

    #[test]
    fn a_url_longer_than_the_limit_is_refused_before_it_is_parsed() {
        let transport = HttpTransport::new().expect("a client");
        let base = "http://a.test/x?q=";
        let over = [base, &"a".repeat(crate::intent::MAX_URL_LEN + 1 - base.len())].concat();
        let refused = transport.check(&request(&over, &[])).unwrap_err();
        assert!(refused.contains("too long"), "{refused}");
        assert!(transport.last_url.lock().expect("not poisoned").is_none(), "not remembered");
    }

    #[test]
    fn header_values_are_checked_as_http_checks_them() {
        let transport = HttpTransport::new().expect("a client");
        for value in ["plain", "tab\there", "caf\u{e9}", ""] {
            let checked = transport.check(&request("http://a.test/", &[("x-v", value)]));
            assert!(checked.is_ok(), "{value:?}");
            assert!(reqwest::header::HeaderValue::from_str(value).is_ok());
        }
        for value in ["bell\u{7}", "del\u{7f}", "line\nbreak", "nul\0"] {
            let checked = transport.check(&request("http://a.test/", &[("x-v", value)]));
            assert!(checked.is_err(), "{value:?}");
            assert!(reqwest::header::HeaderValue::from_str(value).is_err());
        }
    }
}
