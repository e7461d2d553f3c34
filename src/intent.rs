//! Intents: what is recorded per intent (the request, its fingerprint, its
//! state) and the outcome a caller gets back.

use crate::prelude::*;
use alloc::sync::Arc;
use core::fmt;

use crate::text::Text;
use crate::{ErrorKind, Key};

/// A request's or a response's body: [`bytes::Bytes`] in the Rust client
/// (reqwest hands bodies over as such, without a copy).
#[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
pub type Body = bytes::Bytes;
/// A request's or a response's body: in the npm package's `no_std` core, a
/// shared slice (the `bytes` crate's machinery would ship for nothing).
#[cfg(all(target_arch = "wasm32", not(feature = "browser")))]
pub type Body = Arc<[u8]>;

/// A copy of `bytes` as a body.
#[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
pub(crate) fn body_of(bytes: &[u8]) -> Body {
    Body::copy_from_slice(bytes)
}
/// A copy of `bytes` as a body (straight from the slice: one conversion
/// into `Arc<[u8]>` ships in the npm package, not one per source type).
#[cfg(all(target_arch = "wasm32", not(feature = "browser")))]
pub(crate) fn body_of(bytes: &[u8]) -> Body {
    Body::from(bytes)
}

/// An HTTP request as oncely records and sends it: the body is buffered once,
/// so every attempt (and a resume after a restart) sends it byte for byte.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, upper-case (`POST`).
    pub method: String,
    /// The URL (absolute natively; the browser also accepts a relative one).
    pub url: String,
    /// Header names (lower-case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

/// Headers that are credentials whatever an application says: sent, never
/// written to a store, supplied anew on resume (by the credentials hook).
pub const SECRET_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// The headers a store keeps by default: what describes a request, never
/// who sends it. Every other header is sent but never stored (an allow-list:
/// credentials hide in `X-Api-Key`, `X-CSRF-Token`, `*-Token`, `*-Secret`
/// and names nobody can list); its name is recorded in
/// [`Record::withheld`], and an attempt that cannot supply it again (a
/// resume, through the credentials hook) is not sent. An application adds
/// names with `ClientBuilder::stored_header` (`storedHeaders` in the npm
/// package).
pub const STORED_HEADERS: [&str; 12] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-encoding",
    "content-language",
    "content-type",
    "prefer",
    "traceparent",
    "tracestate",
    "user-agent",
    "x-request-id",
];

/// Whether a store may keep the header `name` (lower-case): on
/// [`STORED_HEADERS`] or `also` (an application's additions), and never
/// one of [`SECRET_HEADERS`] or the `Idempotency-Key` (kept as the key).
pub fn is_stored_header(name: &str, also: &[String]) -> bool {
    is_stored_header_or(name, also.iter().any(|a| a == name))
}

/// [`is_stored_header`] for an application that adds `name` when `added`
/// (the npm package's core holds its additions as [`listed`] names).
pub fn is_stored_header_or(name: &str, added: bool) -> bool {
    !listed(SECRET_NAMES, name) && (added || listed(STORED_NAMES, name))
}

/// [`SECRET_HEADERS`] and [`STORED_HEADERS`] as [`is_stored_header`] reads
/// them: one run of bytes each, every name ended by a line break, so no
/// table of pointers ships in the npm package's core (a test holds them to
/// the arrays).
const SECRET_NAMES: &[u8] = b"authorization\ncookie\nproxy-authorization\n";
const STORED_NAMES: &[u8] = b"accept\naccept-encoding\naccept-language\ncache-control\n\
    content-encoding\ncontent-language\ncontent-type\nprefer\ntraceparent\ntracestate\n\
    user-agent\nx-request-id\n";

/// Whether `names` (each ended by a line break) holds `name`.
pub fn listed(names: &[u8], name: &str) -> bool {
    let mut start = 0;
    for (at, &byte) in names.iter().enumerate() {
        if byte == b'\n' {
            if names[start..at] == *name.as_bytes() {
                return true;
            }
            start = at + 1;
        }
    }
    false
}

/// The query parameter of `url` that holds a credential (`api_key=…`,
/// `access_token=…`, `sig=…`), if one does: such a URL would be written to
/// the store as it is, so it is refused (send the credential in a header
/// the credentials hook supplies). A parameter counts when its name,
/// lower-cased without `-` and `_`, is one of `key`, `apikey`, `token`,
/// `accesstoken`, `auth`, `sig`, `signature`, `secret`, `password`,
/// `passwd`, `pwd`, `session`, `sessionid`, `sid`, `jwt`, `credential`,
/// `credentials`, or ends with `key`, `token`, `secret`, `password` or
/// `signature`.
pub fn credential_parameter(url: &str) -> Option<&str> {
    // One table and plain loops over bytes: this runs in the npm package's
    // core too, where `str` searchers and slice comparisons cost download.
    // Each folded name is followed by `*` (any name ending so counts) or
    // `.` (only that name).
    const NAMES: &[u8] = b"key*token*secret*password*signature*auth.sig.passwd.pwd.session.\
        sessionid.sid.jwt.credential.credentials.";
    let bytes = url.as_bytes();
    let end = bytes.iter().position(|b| *b == b'#').unwrap_or(bytes.len());
    let mut at = bytes[..end].iter().position(|b| *b == b'?')? + 1;
    while at < end {
        let mut pair_end = at;
        while pair_end < end && bytes[pair_end] != b'&' {
            pair_end += 1;
        }
        let mut name_end = at;
        while name_end < pair_end && bytes[name_end] != b'=' {
            name_end += 1;
        }
        let name = &bytes[at..name_end];
        let mut word = 0;
        for (i, &mark) in NAMES.iter().enumerate() {
            if mark == b'*' || mark == b'.' {
                if folded_ends_with(name, &NAMES[word..i], mark == b'.') {
                    // SAFETY: the name starts after `?` or `&` and ends
                    // before `=`, `&`, `#` or the URL's end: ASCII bytes,
                    // or the ends, so both are character boundaries (no
                    // boundary checks ship for it).
                    return Some(unsafe { core::str::from_utf8_unchecked(name) });
                }
                word = i + 1;
            }
        }
        at = pair_end + 1;
    }
    None
}

/// Whether `name`, lower-cased without `-` and `_`, ends with `word`
/// (`whole`: is `word`), compared from the end without folding a copy.
fn folded_ends_with(name: &[u8], word: &[u8], whole: bool) -> bool {
    let mut rest = word.len();
    for &byte in name.iter().rev() {
        if byte == b'-' || byte == b'_' {
            continue;
        }
        if rest == 0 {
            return !whole;
        }
        rest -= 1;
        if byte.to_ascii_lowercase() != word[rest] {
            return false;
        }
    }
    rest == 0
}

/// The longest intent name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 512;

/// Checks an intent's name: 1 to [`MAX_NAME_LEN`] bytes, not blank (only
/// spaces), no control characters.
///
/// # Errors
/// Why the name is refused ([`ErrorKind::InvalidInput`]).
pub fn check_name(name: &str) -> Result<(), crate::Error> {
    // Control characters (`char::is_control`) found in the bytes, without
    // decoding: C0 and DEL are single bytes, C1 (U+0080 to U+009F) is 0xC2
    // then 0x80 to 0x9F. Blank (nothing, or only spaces: ASCII's other
    // whitespace is control) is refused too; Unicode's other spaces are not
    // looked for: their table would cost the browser core more than the rule.
    let bytes = name.as_bytes();
    let blank = bytes.iter().all(|&byte| byte == b' ');
    let control = bytes.iter().enumerate().any(|(at, &byte)| {
        byte < 0x20
            || byte == 0x7f
            || byte == 0xc2 && bytes.get(at + 1).is_some_and(|&next| next < 0xa0)
    });
    if blank || name.len() > MAX_NAME_LEN || control {
        // Joined, not formatted (see `crate::text`).
        const _: () = assert!(MAX_NAME_LEN == 512, "the message below says 512");
        let mut message = Text::new("invalid intent name \"");
        message
            .add(name)
            .add("\": 1 to 512 bytes, not blank, no control characters");
        return Err(crate::Error::invalid_input(message.0));
    }
    Ok(())
}

/// The longest URL accepted, in bytes (64 KiB). Longer is invalid input,
/// refused before anything is recorded: HTTP stacks refuse a URL this long
/// (natively, before sending), and every attempt would fail alike.
pub const MAX_URL_LEN: usize = 65_536;

/// Checks a request's URL against the rules every executor shares: at most
/// [`MAX_URL_LEN`] bytes. (Whether it parses is the transport's check: the
/// browser also accepts a relative URL.)
///
/// # Errors
/// Why the URL is refused ([`ErrorKind::InvalidInput`]).
pub fn check_url(url: &str) -> Result<(), crate::Error> {
    if url.len() > MAX_URL_LEN {
        // The limit written out: no number formatting ships for it.
        const _: () = assert!(MAX_URL_LEN == 65_536, "the message below says 65536");
        return Err(crate::Error::invalid_input(
            "the URL is too long: over 65536 bytes (put the data in the body); nothing was recorded or sent",
        ));
    }
    Ok(())
}

impl Request {
    /// The request as it may be stored: only the headers `is_stored`
    /// accepts, never an `Idempotency-Key` (shared as is when every header
    /// is kept); and the names of the headers left out, with those the
    /// credentials hook gives (`hooked`), once each: what a later attempt
    /// must supply again ([`Record::withheld`]).
    pub fn stored(
        self: &Arc<Request>,
        is_stored: impl Fn(&str) -> bool,
        hooked: &[(String, String)],
    ) -> (Arc<Request>, Vec<String>) {
        // One pass (the npm package's core inlines `is_stored` once).
        let mut withheld: Vec<String> = Vec::new();
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            let key = name == "idempotency-key";
            if !key && is_stored(name) {
                headers.push((name.clone(), value.clone()));
            } else if !key && !withheld.contains(name) {
                withheld.push(name.clone());
            }
        }
        for (name, _) in hooked {
            if !withheld.contains(name) {
                withheld.push(name.clone());
            }
        }
        if headers.len() == self.headers.len() {
            return (Arc::clone(self), withheld);
        }
        let stored = Arc::new(Request {
            method: self.method.clone(),
            url: self.url.clone(),
            headers,
            body: self.body.clone(),
        });
        (stored, withheld)
    }

    /// Checks what every executor checks of a request before recording it:
    /// a URL of at most [`MAX_URL_LEN`] bytes, with no credential in its
    /// query ([`credential_parameter`]).
    ///
    /// # Errors
    /// Why the request is refused ([`ErrorKind::InvalidInput`]): nothing is
    /// recorded, nothing sent.
    pub fn check(&self) -> Result<(), crate::Error> {
        check_url(&self.url)?;
        if let Some(name) = credential_parameter(&self.url) {
            let mut message = Text::new("the URL's query parameter \"");
            message.add(name).add(
                "\" looks like a credential, and the URL is stored: send it in a header \
                 supplied by the credentials hook (never stored); nothing was recorded or sent",
            );
            return Err(crate::Error::invalid_input(message.0));
        }
        Ok(())
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be credentials: show only the names.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A response as oncely records it: status, headers (never `set-cookie`), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Response {
    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Whether HTTP accepts `value` as a header value (what `HeaderValue`
/// does): visible ASCII, spaces, tabs and bytes past ASCII; no other
/// control character (a line break, a NUL).
pub(crate) fn is_header_value(value: &str) -> bool {
    // Every byte, without stopping early: the compiler checks many at once.
    value.bytes().fold(true, |ok, b| {
        ok & ((b == b'\t') | ((b >= 0x20) & (b != 0x7f)))
    })
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// SHA-256 over the method, URL and body: what makes two calls "the same
/// request" for one intent. Headers are not part of it (credentials and
/// tracing headers change between runs without changing the request).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of `method`, `url` and `body`.
    pub fn of(method: &str, url: &str, body: &[u8]) -> Fingerprint {
        let mut hash = Sha256 {
            state: SHA256_INITIAL,
            block: [0; 64],
            filled: 0,
            len: 0,
        };
        // Length prefixes keep ("a", "bc") and ("ab", "c") apart.
        for part in [method.as_bytes(), url.as_bytes(), body] {
            hash.update(&(part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        Fingerprint(hash.finish())
    }

    /// The fingerprint of a request.
    pub fn of_request(request: &Request) -> Fingerprint {
        Fingerprint::of(&request.method, &request.url, &request.body)
    }
}

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const SHA256_INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// SHA-256: sha2's compression function, with the message's blocks and
/// padding (FIPS 180-4, 5.1.1) done here. The `digest` crate's buffering
/// and finalization would add about a kilobyte to the npm package.
struct Sha256 {
    state: [u32; 8],
    block: [u8; 64],
    /// Bytes of `block` filled.
    filled: usize,
    /// Bytes hashed so far.
    len: u64,
}

impl Sha256 {
    fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let (head, rest) = data.split_at(data.len().min(64 - self.filled));
            self.block[self.filled..][..head.len()].copy_from_slice(head);
            self.filled += head.len();
            data = rest;
            if self.filled == 64 {
                sha2::compress256(&mut self.state, &[self.block.into()]);
                self.filled = 0;
            }
        }
    }

    fn finish(mut self) -> [u8; 32] {
        // Big-endian numbers written a byte at a time: on wasm32 a byte
        // swap is a shift per byte, inlined per use.
        let bits = self.len.wrapping_mul(8);
        self.update(&[0x80]);
        while self.filled != 56 {
            self.update(&[0]);
        }
        for at in (0..8).rev() {
            self.update(&[(bits >> (8 * at)) as u8]);
        }
        let mut digest = [0; 32];
        for (at, byte) in digest.iter_mut().enumerate() {
            *byte = (self.state[at / 4] >> (24 - 8 * (at % 4))) as u8;
        }
        digest
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprint(")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…)")
    }
}

/// Where an intent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Recorded, not yet answered definitively: resumed by `resume()`.
    Pending,
    /// A definitive response arrived (2xx, 3xx, or a non-retryable 4xx): it is
    /// replayed to every later call.
    Settled,
    /// oncely stopped trying (gave up, or the server rejected the key); kept
    /// for the application to see. A later call retries a gave-up intent under
    /// the same key.
    Failed,
    /// Past the server's retention window before its outcome was known:
    /// the outcome is unknown, and the intent is too old to resend safely
    /// (the server may have forgotten its key). Never sent again; `forget`
    /// it (after checking with the server) to start anew.
    Expired,
}

impl State {
    /// The name stored on disk and shown by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Settled => "settled",
            State::Failed => "failed",
            State::Expired => "expired",
        }
    }

    /// The state named `name`, as stored.
    pub fn parse(name: &str) -> Option<State> {
        Some(match name {
            "pending" => State::Pending,
            "settled" => State::Settled,
            "failed" => State::Failed,
            "expired" => State::Expired,
            _ => return None,
        })
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a failed intent failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind of error the intent failed with.
    pub kind: ErrorKind,
    /// The reason, for people.
    pub message: String,
    /// The last response status, if a response arrived.
    pub last_status: Option<u16>,
}

/// What the store keeps per intent: plain data only (never closures, never
/// credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The intent's name, chosen by the application.
    pub name: String,
    /// The idempotency key, fixed for the intent's life.
    pub key: Key,
    /// The request, without credential headers (shared: records are cloned
    /// more often than requests change).
    pub request: Arc<Request>,
    /// The fingerprint of the request.
    pub fingerprint: Fingerprint,
    /// When the intent was recorded (ms since the epoch).
    pub created_at: u64,
    /// When the server's retention for the key ends (ms since the epoch).
    pub expires_at: u64,
    /// Attempts sent so far, across runs.
    pub attempts: u32,
    /// Where the intent is in its life.
    pub state: State,
    /// Why it failed, when [`State::Failed`].
    pub failure: Option<Failure>,
    /// The definitive response, when [`State::Settled`].
    pub response: Option<Response>,
    /// The names of the headers the intent was sent with that are never
    /// stored (credentials, and any header off the stored allow-list:
    /// [`STORED_HEADERS`]). Names only, never values: an attempt that
    /// cannot supply every one of them again is not sent.
    pub withheld: Vec<String>,
    /// The user the intent was recorded for, when the application said
    /// (`ClientBuilder::user`): it is resumed, replayed and sent only for
    /// that user.
    pub owner: Option<String>,
}

impl Record {
    /// `true` while the intent's effect is unknown: pending, or failed after
    /// giving up or for want of credentials (not after a rejection, which is
    /// definitive).
    pub fn is_unsettled(&self) -> bool {
        match self.state {
            State::Pending => true,
            State::Failed => self
                .failure
                .as_ref()
                .is_none_or(|f| matches!(f.kind, ErrorKind::GaveUp | ErrorKind::Credentials)),
            State::Settled | State::Expired => false,
        }
    }

    /// Whether the intent belongs to `user` (`None`: an application that
    /// names no users): what `resume` and `pending` touch.
    pub fn belongs_to(&self, user: Option<&str>) -> bool {
        self.owner.as_deref() == user
    }

    /// The last response status the intent heard: the definitive one once
    /// settled, the last one a failure saw; none while pending (what a
    /// person reading the store is shown).
    pub fn status(&self) -> Option<u16> {
        match (&self.response, &self.failure) {
            (Some(response), _) => Some(response.status),
            (None, Some(failure)) => failure.last_status,
            (None, None) => None,
        }
    }

    /// `true` once the record serves no call any more: its outcome is known
    /// (not [unsettled](Self::is_unsettled)) and the server's retention for
    /// its key has ended at `now_ms`.
    pub fn is_prunable(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at && !self.is_unsettled()
    }
}

/// The answer to a call: the definitive response of the intent, with how it
/// was reached.
///
/// Cheap to clone: every caller joined on one flight receives the same outcome.
#[derive(Clone)]
pub struct Outcome {
    inner: Arc<OutcomeInner>,
}

struct OutcomeInner {
    intent: String,
    key: Key,
    attempts: u32,
    replayed: bool,
    response: Response,
}

impl Outcome {
    pub(crate) fn new(record: &Record, response: Response, replayed: bool) -> Outcome {
        Outcome {
            inner: Arc::new(OutcomeInner {
                intent: record.name.clone(),
                key: record.key.clone(),
                attempts: record.attempts,
                replayed,
                response,
            }),
        }
    }

    /// The response status code.
    pub fn status(&self) -> u16 {
        self.inner.response.status
    }

    /// `true` for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status())
    }

    /// The intent's idempotency key.
    pub fn key(&self) -> &Key {
        &self.inner.key
    }

    /// The intent's name.
    pub fn intent(&self) -> &str {
        &self.inner.intent
    }

    /// How many attempts the intent took, across runs.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// `true` when this outcome was replayed from the store: the intent had
    /// already settled, and nothing was sent for this call.
    pub fn replayed(&self) -> bool {
        self.inner.replayed
    }

    /// The response headers (names lower-case; `set-cookie` is never kept).
    pub fn headers(&self) -> &[(String, String)] {
        &self.inner.response.headers
    }

    /// The first value of the response header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.response.header(name)
    }

    /// The response body.
    pub fn body(&self) -> &Body {
        &self.inner.response.body
    }

    /// The response, as recorded.
    pub fn response(&self) -> &Response {
        &self.inner.response
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcome")
            .field("intent", &self.inner.intent)
            .field("key", &self.inner.key)
            .field("status", &self.status())
            .field("attempts", &self.inner.attempts)
            .field("replayed", &self.inner.replayed)
            .field("body_len", &self.inner.response.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn names_of_only_whitespace_are_refused() {
        for name in ["", " ", "   ", " \t ", "\r\n"] {
            let refused = check_name(name).err().map(|e| e.kind());
            assert_eq!(refused, Some(ErrorKind::InvalidInput), "{name:?}");
        }
        for name in ["order-42", " order 42 ", "caf\u{e9}", "x"] {
            assert!(check_name(name).is_ok(), "{name:?}");
        }
    }

    /// The rule as the documentation lists it, the plain way.
    fn credential_parameter_as_listed(url: &str) -> Option<&str> {
        // Bytes, not `str` patterns: this runs in the npm package's core too,
        // where every searcher costs download.
        const EXACT: [&[u8]; 17] = [
            b"key",
            b"apikey",
            b"token",
            b"accesstoken",
            b"auth",
            b"sig",
            b"signature",
            b"secret",
            b"password",
            b"passwd",
            b"pwd",
            b"session",
            b"sessionid",
            b"sid",
            b"jwt",
            b"credential",
            b"credentials",
        ];
        const ENDINGS: [&[u8]; 5] = [b"key", b"token", b"secret", b"password", b"signature"];
        let bytes = url.as_bytes();
        let end = bytes.iter().position(|b| *b == b'#').unwrap_or(bytes.len());
        let mut at = bytes[..end].iter().position(|b| *b == b'?')? + 1;
        while at < end {
            let pair_end = bytes[at..end]
                .iter()
                .position(|b| *b == b'&')
                .map_or(end, |i| at + i);
            let name_end = bytes[at..pair_end]
                .iter()
                .position(|b| *b == b'=')
                .map_or(pair_end, |i| at + i);
            let folded: Vec<u8> = bytes[at..name_end]
                .iter()
                .filter(|b| **b != b'-' && **b != b'_')
                .map(u8::to_ascii_lowercase)
                .collect();
            if EXACT.contains(&folded.as_slice()) || ENDINGS.iter().any(|e| folded.ends_with(e)) {
                return url.get(at..name_end);
            }
            at = pair_end + 1;
        }
        None
    }

    #[test]
    fn finds_credential_parameters_as_listed() {
        let names = [
            "key",
            "apikey",
            "api_key",
            "API-Key",
            "token",
            "access_token",
            "accesstoken",
            "auth",
            "sig",
            "signature",
            "secret",
            "password",
            "passwd",
            "pwd",
            "session",
            "sessionid",
            "session_id",
            "sid",
            "jwt",
            "credential",
            "credentials",
            "x_signature",
            "my-password",
            "clientsecret",
            "k",
            "ey",
            "keys",
            "tokens",
            "author",
            "auth2",
            "sigs",
            "psid",
            "jwts",
            "credentialss",
            "xcredentials",
            "xxxxxxxxxxxxxxxxxxxxxxxxsignature",
            "page",
            "q",
            "",
            "-",
            "_k_e_y_",
            "é",
            "ké",
            "KEY",
            "a=key",
            "keyé",
        ];
        let mut urls = vec![
            "https://a.example/".to_owned(),
            "https://a.example/?".to_owned(),
            "https://a.example/?#key=1".to_owned(),
            "https://a.example/#?key=1".to_owned(),
            "https://a.example/?&&=&".to_owned(),
        ];
        for name in names {
            for other in ["page", "key", ""] {
                urls.push(["https://a.example/p?", name, "=1"].concat());
                urls.push(["https://a.example/p?", name].concat());
                urls.push(["https://a.example/p?", other, "=2&", name, "=3#x"].concat());
                urls.push(["https://a.example/p?", name, "&", other, "=2#", name].concat());
                urls.push(["https://a.example/p?", other, "&", name, "=x=y&z"].concat());
            }
        }
        for url in &urls {
            assert_eq!(
                credential_parameter(url),
                credential_parameter_as_listed(url),
                "{url}"
            );
        }
    }

    #[test]
    fn urls_longer_than_the_limit_are_refused() {
        let base = "https://api.example.com/charges?q=";
        let at_limit = [base, &"a".repeat(MAX_URL_LEN - base.len())].concat();
        assert_eq!(at_limit.len(), MAX_URL_LEN);
        assert!(check_url(&at_limit).is_ok());
        let over = [at_limit.as_str(), "a"].concat();
        let refused = check_url(&over).err();
        assert_eq!(
            refused.as_ref().map(crate::Error::kind),
            Some(ErrorKind::InvalidInput)
        );
        let message = refused.as_ref().map_or("", crate::Error::message);
        assert!(message.contains("over 65536 bytes"), "{message}");
    }

    #[test]
    fn the_header_lists_read_as_their_arrays() {
        let joined = |names: &[&str]| names.iter().map(|n| [n, "\n"].concat()).collect::<String>();
        assert_eq!(SECRET_NAMES, joined(&SECRET_HEADERS).as_bytes());
        assert_eq!(STORED_NAMES, joined(&STORED_HEADERS).as_bytes());
        for name in [
            "accept",
            "x-request-id",
            "cookie",
            "authorization",
            "x-api-key",
            "",
            "accep",
        ] {
            let stored = STORED_HEADERS.contains(&name) && !SECRET_HEADERS.contains(&name);
            assert_eq!(is_stored_header(name, &[]), stored, "{name}");
        }
        assert!(is_stored_header("x-mine", &["x-mine".to_owned()]));
        assert!(!is_stored_header("cookie", &["cookie".to_owned()]));
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        for code in (0..0x800).chain([0x2028, 0xfeff, 0x1_0000, 0x10_ffff]) {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            for name in [String::from(c), ['a', c, 'b'].iter().collect()] {
                let blank = name.bytes().all(|b| b == b' ');
                assert_eq!(
                    check_name(&name).is_err(),
                    c.is_control() || blank,
                    "{code:x}"
                );
            }
        }
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(512)).is_ok());
        let message = check_name(&"x".repeat(513)).unwrap_err().to_string();
        assert!(message.ends_with("\": 1 to 512 bytes, not blank, no control characters"));
    }

    #[test]
    fn fingerprints_are_sha256_of_the_length_prefixed_parts() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + i / 5) as u8).collect();
        // Every split of the padding: messages around one and two blocks.
        for len in (0..200).chain([255, 256, 300]) {
            for (method, url) in [("", ""), ("POST", "https://a.example/x?y=1")] {
                let body = &data[..len];
                let mut theirs = sha2::Sha256::new();
                for part in [method.as_bytes(), url.as_bytes(), body] {
                    theirs.update((part.len() as u64).to_le_bytes());
                    theirs.update(part);
                }
                let expected: [u8; 32] = theirs.finalize().into();
                assert_eq!(Fingerprint::of(method, url, body).0, expected, "{len}");
            }
        }
    }
}
