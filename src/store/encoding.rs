//! A record as one run of bytes, for stores that keep a value per name (the
//! browser's IndexedDB): exact (bodies byte for byte), compact, and small to
//! decode, with every length checked so damaged bytes give an error, never a
//! panic.
//!
//! Layout: a version byte, then the fields in declaration order; strings and
//! byte runs as a little-endian `u32` length and the bytes; integers little
//! endian; an optional field as a presence byte and the value.

use crate::prelude::*;
use alloc::sync::Arc;

use super::Update;
use crate::intent::{Body, Failure, Fingerprint, Record, Request, Response, State, body_of};
use crate::text::utf8;
use crate::{Error, ErrorKind, Key};

/// The layout's version: a record written by a later layout is refused, not
/// misread. Version 2 added the withheld header names and the owner at the
/// end; a version 1 record reads as having neither.
const VERSION: u8 = 2;

/// `record` as bytes.
pub fn encode(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(record, &mut out);
    out
}

/// `record` as bytes, appended to `out` (an answer being written, say).
pub fn encode_into(record: &Record, out: &mut Vec<u8>) {
    encode_parts(
        out,
        record,
        record.attempts,
        record.state,
        record.failure.as_ref(),
        record.response.as_ref(),
    );
}

/// `record` with `update` applied, as bytes (without copying the record).
pub fn encode_updated(record: &Record, update: &Update) -> Vec<u8> {
    let mut out = Vec::new();
    encode_parts(
        &mut out,
        record,
        update.attempts,
        update.state,
        update.failure.as_ref(),
        update.response.as_ref(),
    );
    out
}

fn encode_parts(
    out: &mut Vec<u8>,
    record: &Record,
    attempts: u32,
    state: State,
    failure: Option<&Failure>,
    response: Option<&Response>,
) {
    let request = &record.request;
    let response_len = response.map_or(0, |r| r.body.len());
    out.reserve(128 + request.body.len() + response_len);
    put(out, &[VERSION]);
    put_str(out, &record.name);
    put_str(out, record.key.as_str());
    put_str(out, &request.method);
    put_str(out, &request.url);
    put_headers(out, &request.headers);
    put_bytes(out, &request.body);
    put(out, &record.fingerprint.0);
    put(out, &record.created_at.to_le_bytes());
    put(out, &record.expires_at.to_le_bytes());
    put(out, &attempts.to_le_bytes());
    put(out, &[state_byte(state)]);
    match failure {
        None => put(out, &[0]),
        Some(failure) => {
            put(out, &[1]);
            put_str(out, failure.kind.code());
            put_str(out, &failure.message);
            put_status(out, failure.last_status);
        }
    }
    match response {
        None => put(out, &[0]),
        Some(response) => {
            put(out, &[1]);
            put(out, &response.status.to_le_bytes());
            put_headers(out, &response.headers);
            put_bytes(out, &response.body);
        }
    }
    put(out, &(record.withheld.len() as u32).to_le_bytes());
    for name in &record.withheld {
        put_str(out, name);
    }
    match &record.owner {
        None => put(out, &[0]),
        Some(owner) => {
            put(out, &[1]);
            put_str(out, owner);
        }
    }
}

/// The record in `bytes`.
///
/// # Errors
/// [`ErrorKind::Store`] when the bytes are not a record of this layout
/// (damaged, or written by a later version of oncely).
pub fn decode(bytes: &[u8]) -> Result<Record, Error> {
    if bytes.first().is_some_and(|version| *version > VERSION) {
        return Err(Error::store(
            "a record was written by a newer version of oncely; update oncely to read it",
        ));
    }
    read(&mut Reader {
        bytes,
        failed: false,
    })
    .ok_or_else(damaged)
}

/// The record, or `None` where the bytes do not hold one (each failed read
/// only says so: one error is made, by [`decode`]). Reads go on past a
/// failure (yielding empty values) and the record is judged once at the
/// end: no early return with each field's cleanup, which the npm package
/// would download.
fn read(input: &mut Reader) -> Option<Record> {
    let version = input.u8();
    if version == 0 || version > VERSION {
        return None;
    }
    let name = input.string();
    let key = input.string();
    let request = Request {
        method: input.string(),
        url: input.string(),
        headers: input.headers(),
        body: input.body(),
    };
    let fingerprint = Fingerprint(input.take(32).try_into().unwrap_or([0; 32]));
    let created_at = input.number(8);
    let expires_at = input.number(8);
    let attempts = input.number(4) as u32;
    let state = input.u8();
    let failure = (input.u8() != 0).then(|| (input.string(), input.string(), input.status()));
    let response = (input.u8() != 0).then(|| Response {
        status: input.number(2) as u16,
        headers: input.headers(),
        body: input.body(),
    });
    let mut withheld = Vec::new();
    let mut owner = None;
    if version >= 2 {
        for _ in 0..input.number(4) {
            if input.failed {
                break;
            }
            withheld.push(input.string());
        }
        if input.u8() != 0 {
            owner = Some(input.string());
        }
    }
    let failure = match failure {
        None => Some(None),
        Some((code, message, last_status)) => ErrorKind::from_code(&code).map(|kind| {
            Some(Failure {
                kind,
                message,
                last_status,
            })
        }),
    };
    // One judgment, one way out: each `?` would ship its own cleanup.
    let (false, true, Ok(key), Some(state), Some(failure)) = (
        input.failed,
        input.bytes.is_empty(),
        Key::new(&key),
        state_from_byte(state),
        failure,
    ) else {
        return None;
    };
    Some(Record {
        withheld,
        owner,
        name,
        key,
        request: Arc::new(request),
        fingerprint,
        created_at,
        expires_at,
        attempts,
        state,
        failure,
        response,
    })
}

fn damaged() -> Error {
    Error::store("a stored record is damaged (its bytes do not decode)")
}

fn state_byte(state: State) -> u8 {
    match state {
        State::Pending => 0,
        State::Settled => 1,
        State::Failed => 2,
        State::Expired => 3,
    }
}

fn state_from_byte(byte: u8) -> Option<State> {
    Some(match byte {
        0 => State::Pending,
        1 => State::Settled,
        2 => State::Failed,
        3 => State::Expired,
        _ => return None,
    })
}

/// Appends `bytes`: one call per field, not an append inlined in each.
#[inline(never)]
fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Records are far below 4 GiB (browsers refuse such values anyway).
    put(out, &(bytes.len() as u32).to_le_bytes());
    put(out, bytes);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_bytes(out, text.as_bytes());
}

fn put_headers(out: &mut Vec<u8>, headers: &[(String, String)]) {
    put(out, &(headers.len() as u32).to_le_bytes());
    for (name, value) in headers {
        put_str(out, name);
        put_str(out, value);
    }
}

fn put_status(out: &mut Vec<u8>, status: Option<u16>) {
    match status {
        None => put(out, &[0]),
        Some(status) => {
            put(out, &[1]);
            put(out, &status.to_le_bytes());
        }
    }
}

/// Reads fields off the front of `bytes`. A read past the end yields an
/// empty value and marks the input `failed`.
struct Reader<'a> {
    bytes: &'a [u8],
    failed: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> &'a [u8] {
        match self.bytes.split_at_checked(len) {
            Some((head, rest)) => {
                self.bytes = rest;
                head
            }
            None => {
                self.failed = true;
                &[]
            }
        }
    }

    /// A little-endian integer of `width` bytes (one loop for every
    /// width, not a conversion per array size).
    fn number(&mut self, width: usize) -> u64 {
        (self.take(width).iter().rev()).fold(0, |n, &byte| n << 8 | u64::from(byte))
    }

    fn u8(&mut self) -> u8 {
        self.number(1) as u8
    }

    fn bytes(&mut self) -> &'a [u8] {
        let len = self.number(4) as usize;
        self.take(len)
    }

    fn body(&mut self) -> Body {
        body_of(self.bytes())
    }

    fn string(&mut self) -> String {
        let text = utf8(self.bytes());
        self.failed |= text.is_none();
        text.unwrap_or_default()
    }

    fn status(&mut self) -> Option<u16> {
        (self.u8() != 0).then(|| self.number(2) as u16)
    }

    fn headers(&mut self) -> Vec<(String, String)> {
        let count = self.number(4) as usize;
        // Each header takes at least 8 bytes: a damaged count cannot make
        // this allocate more than the input could hold.
        let mut headers = Vec::with_capacity(count.min(self.bytes.len() / 8));
        for _ in 0..count {
            if self.failed {
                break;
            }
            headers.push((self.string(), self.string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn record() -> Record {
        Record {
            name: "order-42 ✓".to_owned(),
            key: Key::new("01JD5Z6W3Q7M2V8K4N9P0R1S2T").unwrap(),
            request: Arc::new(Request {
                method: "POST".to_owned(),
                url: "http://127.0.0.1:8080/api/charges".to_owned(),
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body: bytes::Bytes::from_static(b"{\"amount\":4200}\0\xff"),
            }),
            fingerprint: Fingerprint([7; 32]),
            created_at: 1_700_000_000_123,
            expires_at: u64::MAX,
            attempts: 3,
            state: State::Failed,
            failure: Some(Failure {
                kind: ErrorKind::GaveUp,
                message: "gave up after 3 attempt(s)".to_owned(),
                last_status: Some(503),
            }),
            response: Some(Response {
                status: 201,
                headers: vec![("x-a".to_owned(), "1".to_owned())],
                body: bytes::Bytes::from_static(b"\x00\x01binary"),
            }),
            withheld: vec!["authorization".to_owned(), "x-api-key".to_owned()],
            owner: Some("alice ✓".to_owned()),
        }
    }

    #[test]
    fn a_record_survives_the_round_trip_byte_for_byte() {
        let record = record();
        assert_eq!(decode(&encode(&record)).unwrap(), record);
        let bare = Record {
            failure: None,
            response: None,
            state: State::Pending,
            withheld: Vec::new(),
            owner: None,
            ..record
        };
        assert_eq!(decode(&encode(&bare)).unwrap(), bare);
    }

    #[test]
    fn a_version_1_record_reads_with_nothing_withheld_and_no_owner() {
        let bare = Record {
            withheld: Vec::new(),
            owner: None,
            ..record()
        };
        let mut bytes = encode(&bare);
        // Version 1 ended after the response: no count, no owner byte.
        bytes.truncate(bytes.len() - 5);
        bytes[0] = 1;
        assert_eq!(decode(&bytes).unwrap(), bare);
    }

    #[test]
    fn every_truncation_and_a_later_version_are_typed_errors() {
        let bytes = encode(&record());
        for len in 0..bytes.len() {
            let error = decode(&bytes[..len]).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Store, "truncated at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer).unwrap_err().kind(), ErrorKind::Store);
        let mut later = bytes;
        later[0] = VERSION + 1;
        assert!(
            decode(&later)
                .unwrap_err()
                .to_string()
                .contains("newer version")
        );
    }

    #[test]
    fn every_changed_byte_decodes_or_is_a_typed_error() {
        let bytes = encode(&record());
        for at in 0..bytes.len() {
            for value in [0, 1, 2, 0x7f, 0x80, 0xc3, 0xff] {
                let mut changed = bytes.clone();
                changed[at] = value;
                if let Err(error) = decode(&changed) {
                    assert_eq!(error.kind(), ErrorKind::Store, "byte {at} as {value}");
                }
            }
        }
    }

    #[test]
    fn a_huge_header_count_does_not_allocate_it() {
        let mut bytes = vec![VERSION];
        for text in ["n", "01JD5Z6W3Q7M2V8K4N9P0R1S2T", "POST", "u"] {
            put_str(&mut bytes, text);
        }
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&bytes).unwrap_err().kind(), ErrorKind::Store);
    }
}
