//! The request builder of one intent.

use std::borrow::Cow;
use std::future::Future;

use bytes::Bytes;

use super::{Client, Run};
use crate::flight::{CallHeaders, Candidate};
use crate::intent::{check_name, is_header_value};
use crate::{Error, Key, Outcome};

/// A request for one intent, built from [`Client::intent`] and sent with
/// [`send`](Self::send). Setters never fail; `send` reports the first
/// invalid input, before anything is recorded or sent.
///
/// It borrows what it is given (`&str` names, URLs and headers) until the
/// call flies: a duplicate that joins a flight copies none of it. Give it
/// owned `String`s for a `'static` future (e.g. to spawn it).
#[must_use = "nothing happens until `send` is awaited"]
pub struct IntentRequest<'a> {
    client: Client,
    name: Cow<'a, str>,
    method: Cow<'static, str>,
    url: Cow<'a, str>,
    headers: CallHeaders<'a>,
    key: Option<Key>,
    body: Bytes,
    error: Option<Error>,
}

impl std::fmt::Debug for IntentRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentRequest")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl<'a> IntentRequest<'a> {
    #[inline]
    pub(super) fn new(client: Client, name: Cow<'a, str>) -> IntentRequest<'a> {
        let error = check_name(&name).err();
        IntentRequest {
            client,
            name,
            method: Cow::Borrowed("POST"),
            url: Cow::Borrowed(""),
            headers: CallHeaders::default(),
            key: None,
            body: Bytes::new(),
            error,
        }
    }

    fn keep_first(&mut self, result: Result<(), Error>) {
        if let Err(error) = result {
            self.error.get_or_insert(error);
        }
    }

    /// Sets the method and URL. The method is sent as `fetch` sends it, in
    /// every executor: `DELETE`, `GET`, `HEAD`, `OPTIONS`, `POST` and `PUT`
    /// upper-cased, any other as given (methods are case-sensitive: `.patch()`
    /// sends `PATCH`).
    pub fn method(mut self, method: &str, url: impl Into<Cow<'a, str>>) -> IntentRequest<'a> {
        let valid = !method.is_empty() && method.bytes().all(is_token_byte);
        self.keep_first(if valid {
            Ok(())
        } else {
            Err(Error::invalid_input(format!("invalid method \"{method}\"")))
        });
        self.method = known_method(method).map_or_else(|| Cow::Owned(method.to_owned()), Cow::Borrowed);
        self.url = url.into();
        self
    }

    /// One of the common methods, valid and upper-case already.
    #[inline]
    fn known(mut self, method: &'static str, url: impl Into<Cow<'a, str>>) -> IntentRequest<'a> {
        self.method = Cow::Borrowed(method);
        self.url = url.into();
        self
    }

    /// A `POST` to `url`.
    #[inline]
    pub fn post(self, url: impl Into<Cow<'a, str>>) -> IntentRequest<'a> {
        self.known("POST", url)
    }

    /// A `PUT` to `url`.
    pub fn put(self, url: impl Into<Cow<'a, str>>) -> IntentRequest<'a> {
        self.known("PUT", url)
    }

    /// A `PATCH` to `url`.
    pub fn patch(self, url: impl Into<Cow<'a, str>>) -> IntentRequest<'a> {
        self.known("PATCH", url)
    }

    /// A `DELETE` of `url`.
    pub fn delete(self, url: impl Into<Cow<'a, str>>) -> IntentRequest<'a> {
        self.known("DELETE", url)
    }

    /// Adds a header. `Authorization`, `Cookie`, `Proxy-Authorization` and
    /// the client's [secret headers](crate::ClientBuilder::secret_header) are
    /// sent but never stored. An `Idempotency-Key` header sets the intent's
    /// key (oncely never overwrites a caller's key).
    #[inline]
    pub fn header(
        mut self,
        name: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> IntentRequest<'a> {
        let value = value.into();
        let checked = checked_header(name.into(), &value);
        match checked {
            Ok(name) if name == "idempotency-key" => match Key::from_header(&value) {
                Ok(key) => self.key = Some(key),
                Err(e) => self
                    .keep_first(Err(
                        Error::invalid_input("invalid Idempotency-Key header").with_source(e)
                    )),
            },
            Ok(name) => self.headers.push(name, value),
            Err(error) => self.keep_first(Err(error)),
        }
        self
    }

    /// Sets the body, buffered once so every attempt sends it byte for byte.
    #[inline]
    pub fn body(mut self, body: impl Into<Bytes>) -> IntentRequest<'a> {
        self.body = body.into();
        self
    }

    /// Sends the intent once: records it before the first byte leaves,
    /// retries under the same key, joins a flight already under way for the
    /// same intent, replays the outcome of a settled one.
    ///
    /// Dropping the returned future stops waiting but never stops the flight:
    /// it settles in the background and later calls get its outcome.
    ///
    /// The first call's future flies the flight itself, in the caller's task
    /// (no task is spawned for a call nobody drops), and calls that join it
    /// wait on it. So poll it to the end or drop it: a future kept but no
    /// longer polled (a losing `select!` branch held in a variable) holds
    /// the flight, and every joined call with it, until it is dropped.
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput): a bad
    ///   name, method, URL or header (nothing recorded, nothing sent)
    /// - [`ErrorKind::Conflict`](crate::ErrorKind::Conflict): the intent is
    ///   recorded or in flight with a different request (nothing sent)
    /// - [`ErrorKind::Rejected`](crate::ErrorKind::Rejected): the server
    ///   answered 422 (key reused with another payload)
    /// - [`ErrorKind::GaveUp`](crate::ErrorKind::GaveUp): the retry policy ran
    ///   out, or (for a call that joined) the flight ended without an answer,
    ///   its task dropped or panicked; the intent stays recorded and a later
    ///   call or `resume` retries it
    /// - [`ErrorKind::Expired`](crate::ErrorKind::Expired): the intent is past
    ///   its retention
    /// - [`ErrorKind::Store`](crate::ErrorKind::Store): the store failed
    pub fn send(self) -> impl Future<Output = Result<Outcome, Error>> + 'a {
        match self.checked() {
            Ok((client, name, candidate, key)) => client.run(name, candidate, key),
            Err(error) => Run::refused(error),
        }
    }

    /// The call's parts, once its input checks out: the first invalid input
    /// otherwise, said of the intent.
    #[allow(clippy::type_complexity)]
    fn checked(self) -> Result<(Client, Cow<'a, str>, Candidate<'a>, Option<Key>), Error> {
        let IntentRequest {
            client,
            name,
            method,
            url,
            headers,
            key,
            body,
            error,
        } = self;
        let error = error.or_else(|| {
            url.is_empty()
                .then(|| Error::invalid_input("no URL: call .post(url) or .method(method, url)"))
        });
        if let Some(error) = error {
            return Err(error.with_intent(&name, key));
        }
        let candidate = Candidate::New {
            method,
            url,
            headers,
            body,
        };
        Ok((client, name, candidate, key))
    }

    /// The record a call would write, checked, keyed and fingerprinted as
    /// `send` does it, without writing or sending anything (no attempt
    /// counted): for recording the intent inside the application's own
    /// database transaction (`PostgresStore::enqueue`, with the `postgres`
    /// feature), so it commits with the application's rows or not at all.
    /// Once committed, `resume` (on any replica) or a call of the same
    /// intent sends it, under its key.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) where
    /// `send` would refuse the call.
    pub fn prepare(self) -> Result<crate::Record, Error> {
        let (client, name, candidate, key) = self.checked()?;
        let refuse = |e: Error| e.with_intent(&name, key.clone());
        let request = candidate.into_request();
        let mut record = client.inner.candidate(&name, request, key.as_ref()).map_err(refuse)?.record;
        record.attempts = 0;
        Ok(record)
    }
}

/// The methods `fetch` upper-cases (the Fetch standard's "normalize"):
/// every other method is sent as given, `patch` included, in every
/// executor, so one intent is one request wherever it is sent from.
fn known_method(method: &str) -> Option<&'static str> {
    ["POST", "PUT", "DELETE", "GET", "HEAD", "OPTIONS"]
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(method))
}

/// RFC 9110 `tchar`, as a table: checked for every byte of every header name.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// A valid header name, lower-cased (copied only if it was not already).
fn lower_header_name(name: Cow<'_, str>) -> Result<Cow<'_, str>, Error> {
    // One pass: every byte a token byte, and whether any is upper-case.
    let (valid, upper) = name.bytes().fold((!name.is_empty(), false), |(valid, upper), b| {
        (valid & is_token_byte(b), upper | b.is_ascii_uppercase())
    });
    if !valid {
        return Err(Error::invalid_input(format!(
            "invalid header name \"{name}\""
        )));
    }
    if upper {
        return Ok(Cow::Owned(name.to_ascii_lowercase()));
    }
    Ok(name)
}

/// A header as a caller gives it (its own, or the credentials hook's): the
/// name valid and lower-cased (copied only if it was not already), the
/// value one HTTP accepts ([`is_header_value`]); or why not.
pub(super) fn checked_header<'h>(name: Cow<'h, str>, value: &str) -> Result<Cow<'h, str>, Error> {
    let name = lower_header_name(name)?;
    if is_header_value(value) {
        return Ok(name);
    }
    Err(Error::invalid_input(format!(
        "the value of header \"{name}\" holds a control character (a line break, a NUL)"
    )))
}

/// A valid header name, lower-cased.
pub(super) fn header_name(name: &str) -> Result<String, Error> {
    lower_header_name(Cow::Borrowed(name)).map(Cow::into_owned)
}
