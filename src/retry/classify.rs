use alloc::sync::Arc;

use crate::intent::Response;
use crate::runtime::{MaybeSend, MaybeSync};
use crate::transport::TransportError;

/// The result of one attempt, as a classifier sees it.
pub type Attempt<'a> = Result<&'a Response, &'a TransportError>;

/// What an attempt's result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A definitive answer: settle the intent with it, never retry.
    Settle,
    /// Transient, or the outcome is unknown: retry under the same key, after
    /// the backoff delay and any `Retry-After`.
    Retry,
    /// The server is still working on this key (409): retry with backoff; it
    /// does not use up attempts, only the deadline bounds it.
    InProgress,
    /// The server refused the key as reused with another payload (422): fail
    /// with [`ErrorKind::Rejected`](crate::ErrorKind::Rejected), never retry.
    Reject,
    /// The server refused who sent it (401, 403, 407): definitive, and
    /// settled, for an intent's first attempt; after an earlier attempt that
    /// may have reached the server it decides nothing (the effect may have
    /// happened): fail with
    /// [`ErrorKind::Credentials`](crate::ErrorKind::Credentials), the intent
    /// unsettled and resumable.
    Unauthorized,
}

/// A custom classification, set with
/// [`ClientBuilder::classifier`](crate::ClientBuilder::classifier).
pub type Classifier = Arc<dyn ClassifyFn>;

/// A classification function: any `Fn(Attempt) -> Class` (`Send + Sync`
/// natively).
pub trait ClassifyFn: Fn(Attempt<'_>) -> Class + MaybeSend + MaybeSync + 'static {}
impl<F: Fn(Attempt<'_>) -> Class + MaybeSend + MaybeSync + 'static> ClassifyFn for F {}

/// The default classification.
///
/// | result | class |
/// | --- | --- |
/// | connect error, timeout, reset, a body cut short | [`Class::Retry`] (outcome unknown) |
/// | 408, 425, 429, and 5xx except 501 and 505 | [`Class::Retry`] |
/// | 409 | [`Class::InProgress`] |
/// | 422 | [`Class::Reject`] |
/// | 401, 403, 407 | [`Class::Unauthorized`] |
/// | 400 and other 4xx, 501, 505 | [`Class::Settle`] (definitive) |
/// | 1xx, 2xx, 3xx | [`Class::Settle`] |
///
/// 5xx beyond the listed 500/502/503/504 are retried too: a proxy's 520–524
/// or a 507 says nothing definitive about the request, and retrying under the
/// same key is safe by construction. 501 and 505 will never change.
pub fn classify(attempt: Attempt<'_>) -> Class {
    let status = match attempt {
        Err(_) => return Class::Retry,
        Ok(response) => response.status,
    };
    match status {
        409 => Class::InProgress,
        422 => Class::Reject,
        401 | 403 | 407 => Class::Unauthorized,
        408 | 425 | 429 => Class::Retry,
        501 | 505 => Class::Settle,
        500..=599 => Class::Retry,
        _ => Class::Settle,
    }
}
