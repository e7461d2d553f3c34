//! The one error type.

use crate::prelude::*;
use alloc::sync::Arc;
use core::fmt;

use crate::Key;

/// What went wrong, for the caller to match on.
///
/// Stable names: the browser package exposes them as `OncelyError.code`
/// ([`ErrorKind::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The intent name is already recorded with a different request (method,
    /// URL or body). Nothing was sent.
    Conflict,
    /// The server refused the key as reused with a different payload (422).
    /// Never retried.
    Rejected,
    /// Attempts, deadline or the server's `Retry-After` ran past the policy
    /// (or the flight a call joined ended without an answer: its task was
    /// dropped or panicked); [`Error::last_status`] and
    /// [`core::error::Error::source`] give the last cause.
    /// The intent stays recorded: a later call or `resume` retries it under the
    /// same key.
    GaveUp,
    /// The intent is older than the server's retention window: its key may be
    /// forgotten by the server, so it is never re-sent blindly.
    Expired,
    /// The store failed (unreadable, corrupt, foreign or full file; a blocked
    /// database). Nothing was sent.
    Store,
    /// Credentials are needed: the intent was sent with credential headers
    /// (names in [`Record::withheld`](crate::Record::withheld)) that this
    /// attempt could not supply again (nothing was sent), or the server
    /// refused who sent it (401, 403, 407) after an earlier attempt may have
    /// reached it, or the credentials hook failed after a request had left.
    /// The outcome is still unknown: the intent stays unsettled, and a later
    /// call or `resume` with credentials sends it under the same key.
    Credentials,
    /// The caller's input is invalid (a bad header, URL or method, no
    /// runtime). Nothing was sent for this call.
    InvalidInput,
}

impl ErrorKind {
    /// The stable code string: `"conflict"`, `"rejected"`, `"gave_up"`,
    /// `"expired"`, `"storage"`, `"credentials"`, `"invalid"`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Conflict => "conflict",
            ErrorKind::Rejected => "rejected",
            ErrorKind::GaveUp => "gave_up",
            ErrorKind::Expired => "expired",
            ErrorKind::Store => "storage",
            ErrorKind::Credentials => "credentials",
            ErrorKind::InvalidInput => "invalid",
        }
    }

    /// The kind for a [`code`](Self::code), as stored in a record.
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        // Each kind asked for its code: one comparison in a loop, not one
        // per kind (and the codes written once).
        ErrorKind::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// Every kind (a test holds the list whole).
    const ALL: [ErrorKind; 7] = [
        ErrorKind::Conflict,
        ErrorKind::Rejected,
        ErrorKind::GaveUp,
        ErrorKind::Expired,
        ErrorKind::Store,
        ErrorKind::Credentials,
        ErrorKind::InvalidInput,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
type Source = Box<dyn core::error::Error + Send + Sync + 'static>;
/// In the npm package's core no error has a cause (its JavaScript gets
/// messages): nothing can be set, so no drop of a boxed cause ships.
#[cfg(all(target_arch = "wasm32", not(feature = "browser")))]
type Source = core::convert::Infallible;

/// The error of every fallible oncely call.
///
/// Cheap to clone: every caller joined on one flight receives the same error.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    intent: Option<String>,
    key: Option<Key>,
    last_status: Option<u16>,
    source: Option<Source>,
}

impl Error {
    /// An error of `kind` (for stores and transports of your own).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::of(kind, message.into())
    }

    /// [`Error::new`] once, whatever the message's type: not one body per
    /// caller's type in the npm package.
    fn of(kind: ErrorKind, message: String) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind,
                message,
                intent: None,
                key: None,
                last_status: None,
                source: None,
            }),
        }
    }

    /// An error of `kind` about the intent `record` (one allocation, where
    /// [`Error::new`] and `with_*` make several).
    pub(crate) fn of_intent(
        kind: ErrorKind,
        message: &str,
        record: &crate::Record,
        last_status: Option<u16>,
    ) -> Error {
        Error {
            inner: Arc::new(Inner {
                kind,
                message: message.to_owned(),
                intent: Some(record.name.clone()),
                key: Some(record.key.clone()),
                last_status,
                source: None,
            }),
        }
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn store(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Store, message)
    }

    fn with(mut self, change: impl FnOnce(&mut Inner)) -> Error {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => change(inner),
            None => {
                let mut inner = Inner {
                    kind: self.inner.kind,
                    message: self.inner.message.clone(),
                    intent: self.inner.intent.clone(),
                    key: self.inner.key.clone(),
                    last_status: self.inner.last_status,
                    source: None,
                };
                change(&mut inner);
                self.inner = Arc::new(inner);
            }
        }
        self
    }

    #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
    pub(crate) fn with_source(self, source: impl Into<Source>) -> Error {
        let source = source.into();
        self.with(|inner| inner.source = Some(source))
    }

    /// Prefixes the message with where the error happened.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn context(self, prefix: &str) -> Error {
        self.with(|inner| inner.message = format!("{prefix}: {}", inner.message))
    }

    pub(crate) fn with_intent(self, intent: &str, key: Option<Key>) -> Error {
        self.with(|inner| {
            inner.intent = Some(intent.to_owned());
            inner.key = key.or(inner.key.take());
        })
    }

    /// The error as its `Display` writes it (`intent "…" (key …): message`),
    /// built without `core::fmt`'s machinery (see [`crate::text`]): the npm
    /// package's core hands this text to its JavaScript.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        // Writing to a `String` cannot fail.
        let _ = self.write_to(&mut text);
        text
    }

    fn write_to(&self, out: &mut impl fmt::Write) -> fmt::Result {
        let inner = &self.inner;
        if let Some(intent) = &inner.intent {
            out.write_str("intent \"")?;
            out.write_str(intent)?;
            out.write_str("\"")?;
            if let Some(key) = &inner.key {
                out.write_str(" (key ")?;
                out.write_str(key.as_str())?;
                out.write_str(")")?;
            }
            out.write_str(": ")?;
        }
        // The cause is reachable through `source()`, not repeated here (the
        // convention reqwest and std follow, so reporters do not print it twice).
        out.write_str(&inner.message)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The human-readable reason, without the intent and key.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The intent this error concerns, if any.
    pub fn intent(&self) -> Option<&str> {
        self.inner.intent.as_deref()
    }

    /// The intent's idempotency key, if one was minted.
    pub fn key(&self) -> Option<&Key> {
        self.inner.key.as_ref()
    }

    /// The status of the last response received before giving up or being
    /// rejected, if any response was received.
    pub fn last_status(&self) -> Option<u16> {
        self.inner.last_status
    }

    /// `true` for [`ErrorKind::Conflict`].
    pub fn is_conflict(&self) -> bool {
        self.kind() == ErrorKind::Conflict
    }

    /// `true` for [`ErrorKind::Rejected`].
    pub fn is_rejected(&self) -> bool {
        self.kind() == ErrorKind::Rejected
    }

    /// `true` for [`ErrorKind::GaveUp`].
    pub fn is_gave_up(&self) -> bool {
        self.kind() == ErrorKind::GaveUp
    }

    /// `true` for [`ErrorKind::Expired`].
    pub fn is_expired(&self) -> bool {
        self.kind() == ErrorKind::Expired
    }

    /// `true` for [`ErrorKind::Store`].
    pub fn is_store(&self) -> bool {
        self.kind() == ErrorKind::Store
    }

    /// `true` for [`ErrorKind::Credentials`].
    pub fn is_credentials(&self) -> bool {
        self.kind() == ErrorKind::Credentials
    }

    /// `true` for [`ErrorKind::InvalidInput`].
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == ErrorKind::InvalidInput
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Error")
            .field("kind", &inner.kind)
            .field("message", &inner.message)
            .field("intent", &inner.intent)
            .field("key", &inner.key)
            .field("last_status", &inner.last_status)
            .field("source", &inner.source)
            .finish()
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
        return self
            .inner
            .source
            .as_deref()
            .map(|s| s as &(dyn core::error::Error + 'static));
        #[cfg(all(target_arch = "wasm32", not(feature = "browser")))]
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn every_kind_reads_back_from_its_code() {
        use ErrorKind::*;
        for kind in ErrorKind::ALL {
            // Exhaustive: a new kind fails to compile until it is listed
            // here, a reminder to list it in `ALL` too.
            match kind {
                Conflict | Rejected | GaveUp | Expired | Store | Credentials | InvalidInput => {}
            }
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(ErrorKind::from_code("gave up"), None);
    }
}
