//! A record as the SQL stores keep it (`FileStore` in SQLite,
//! `PostgresStore` in PostgreSQL): one row, one column per field, in the
//! order [`NAMES`] gives. Written once here, so both stores read a damaged
//! row the same way.

use std::sync::Arc;

use bytes::Bytes;

use crate::intent::{Failure, Fingerprint, Record, Request, Response, State};
use crate::{Error, ErrorKind, Key};

/// The columns of a record, in the order every statement names them (a
/// macro, so the statements are whole constants).
macro_rules! record_columns {
    () => {
        "name, key, method, url, headers, body, fingerprint, created_at, expires_at, attempts, state, \
         failure_kind, failure_message, last_status, status, response_headers, response_body, withheld, owner"
    };
}
pub(crate) use record_columns;

/// Reads the columns of `$row` in [`record_columns!`]'s order with the
/// store's getter (`row.get` in SQLite, `row.try_get` in PostgreSQL):
/// `Ok(Columns)`, or the first column's error (of type `$error`).
macro_rules! read_columns {
    ($row:ident . $get:ident, $name:expr, $error:ty) => {
        (|| -> Result<Columns, $error> {
            Ok(Columns {
                key: $row.$get(1)?,
                method: $row.$get(2)?,
                url: $row.$get(3)?,
                headers: $row.$get(4)?,
                body: $row.$get(5)?,
                fingerprint: $row.$get(6)?,
                created_at: $row.$get(7)?,
                expires_at: $row.$get(8)?,
                attempts: $row.$get(9)?,
                state: $row.$get(10)?,
                outcome: OutcomeColumns {
                    failure_kind: $row.$get(11)?,
                    failure_message: $row.$get(12)?,
                    last_status: $row.$get(13)?,
                    status: $row.$get(14)?,
                    response_headers: $row.$get(15)?,
                    response_body: $row.$get(16)?,
                },
                withheld: $row.$get(17)?,
                owner: $row.$get(18)?,
                name: $name,
            })
        })()
    };
}
pub(crate) use read_columns;

/// A record's values, as stored.
pub(crate) struct Columns {
    pub name: String,
    pub key: String,
    pub method: String,
    pub url: String,
    pub headers: String,
    pub body: Vec<u8>,
    pub fingerprint: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
    pub attempts: i64,
    pub state: String,
    pub outcome: OutcomeColumns,
    pub withheld: String,
    pub owner: Option<String>,
}

/// The columns an update writes: the failure and the response.
pub(crate) struct OutcomeColumns {
    pub failure_kind: Option<String>,
    pub failure_message: Option<String>,
    pub last_status: Option<i64>,
    pub status: Option<i64>,
    pub response_headers: Option<String>,
    pub response_body: Option<Vec<u8>>,
}

impl OutcomeColumns {
    pub fn of(failure: &Option<Failure>, response: &Option<Response>) -> OutcomeColumns {
        OutcomeColumns {
            failure_kind: failure.as_ref().map(|f| f.kind.code().to_owned()),
            failure_message: failure.as_ref().map(|f| f.message.clone()),
            last_status: failure.as_ref().and_then(|f| f.last_status).map(i64::from),
            status: response.as_ref().map(|r| i64::from(r.status)),
            response_headers: response.as_ref().map(|r| encode_headers(&r.headers)),
            response_body: response.as_ref().map(|r| r.body.to_vec()),
        }
    }
}

impl Columns {
    pub fn of(record: &Record) -> Columns {
        let request = &record.request;
        Columns {
            name: record.name.clone(),
            key: record.key.as_str().to_owned(),
            method: request.method.clone(),
            url: request.url.clone(),
            headers: encode_headers(&request.headers),
            body: request.body.to_vec(),
            fingerprint: record.fingerprint.0.to_vec(),
            created_at: time(record.created_at),
            expires_at: time(record.expires_at),
            attempts: i64::from(record.attempts),
            state: record.state.as_str().to_owned(),
            outcome: OutcomeColumns::of(&record.failure, &record.response),
            withheld: record.withheld.join("\n"),
            owner: record.owner.clone(),
        }
    }

    /// The record of a row the store read (see [`read_columns!`]): a column
    /// it could not read is a damaged record too, named by its intent.
    pub fn of_row(name: &str, read: Result<Columns, impl core::fmt::Display>) -> Result<Record, Error> {
        match read {
            Ok(columns) => columns.record(),
            Err(e) => Err(Error::store(format!("its record is damaged: a column cannot be read ({e})")).with_intent(name, None)),
        }
    }

    /// The record these values hold; a value that makes no sense is a
    /// damaged record, said so plainly and naming its intent (which
    /// `forget` removes).
    pub fn record(self) -> Result<Record, Error> {
        let name = self.name;
        let damaged = |what: &str| Error::store(format!("its record is damaged: {what}")).with_intent(&name, None);
        let key: Key = self.key.parse().map_err(|_| damaged("its key is not a ULID"))?;
        let fingerprint = Fingerprint(
            self.fingerprint
                .try_into()
                .map_err(|_| damaged("its fingerprint is not 32 bytes"))?,
        );
        let state = State::parse(&self.state).ok_or_else(|| damaged("unknown state"))?;
        let status = |value: Option<i64>| match value {
            None => Ok(None),
            Some(status) => u16::try_from(status).map(Some).map_err(|_| damaged("a status out of range")),
        };
        let outcome = self.outcome;
        let failure = match outcome.failure_kind {
            Some(kind) => Some(Failure {
                kind: ErrorKind::from_code(&kind).ok_or_else(|| damaged("unknown failure kind"))?,
                message: outcome.failure_message.unwrap_or_default(),
                last_status: status(outcome.last_status)?,
            }),
            None => None,
        };
        let response = match status(outcome.status)? {
            Some(status) => Some(Response {
                status,
                headers: decode_headers(&outcome.response_headers.unwrap_or_default()),
                body: Bytes::from(outcome.response_body.unwrap_or_default()),
            }),
            None => None,
        };
        let attempts = u32::try_from(self.attempts).map_err(|_| damaged("an attempt count out of range"))?;
        Ok(Record {
            key,
            request: Arc::new(Request {
                method: self.method,
                url: self.url,
                headers: decode_headers(&self.headers),
                body: Bytes::from(self.body),
            }),
            fingerprint,
            created_at: self.created_at.max(0) as u64,
            // Negative: "forever", as an earlier version bound it.
            expires_at: u64::try_from(self.expires_at).unwrap_or(u64::MAX),
            attempts,
            state,
            failure,
            response,
            withheld: self.withheld.lines().map(str::to_owned).collect(),
            owner: self.owner,
            name,
        })
    }
}

/// A time (ms since the epoch) as SQL compares it: its integers are `i64`,
/// so "forever" (`u64::MAX`) stays the latest time, not -1.
pub(crate) fn time(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Headers as lines of `name: value`: values cannot hold line breaks (the
/// client refuses them), so the encoding is unambiguous.
fn encode_headers(headers: &[(String, String)]) -> String {
    let mut text = String::new();
    for (name, value) in headers {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push('\n');
    }
    text
}

fn decode_headers(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}
