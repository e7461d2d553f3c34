//! The `Idempotency-Key` request header.
//!
//! The IETF draft defines the field as an RFC 8941 structured-field String
//! (`Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"`). Clients that
//! send the key bare (`Idempotency-Key: 8e03978e-...`) are accepted too, since
//! many do. Parameters after the String are rejected rather than ignored: a
//! client that sends them is confused about the format and should find out.

use axum::http::{HeaderMap, HeaderValue};

use crate::error::ApiError;

/// The header's name.
pub(crate) const HEADER: &str = "idempotency-key";
const MAX_LEN: usize = 255;

/// A decoded idempotency key: 1..=255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Reads the key from the request headers; a missing or malformed key is a 400.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Err(ApiError::bad_request(
                "missing_idempotency_key",
                "this endpoint requires an Idempotency-Key header",
            ));
        };
        // Several field lines combine into a list, which is not a String.
        if values.next().is_some() {
            return Err(malformed("send exactly one Idempotency-Key header"));
        }
        IdempotencyKey::parse(value.as_bytes())
    }

    fn parse(raw: &[u8]) -> Result<IdempotencyKey, ApiError> {
        let raw = raw.trim_ascii();
        let key = match raw.strip_prefix(b"\"") {
            Some(quoted) => parse_sf_string(quoted)?,
            None => {
                if !raw.iter().all(|b| b.is_ascii_graphic()) {
                    return Err(malformed("a bare key must be visible ASCII without spaces"));
                }
                String::from_utf8_lossy(raw).into_owned()
            }
        };
        if key.is_empty() || key.len() > MAX_LEN {
            return Err(malformed("the key must be 1 to 255 characters"));
        }
        Ok(IdempotencyKey(key))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The key serialized back as a structured-field String, for echoing it.
    pub(crate) fn to_header_value(&self) -> Option<HeaderValue> {
        let mut out = String::with_capacity(self.0.len() + 2);
        out.push('"');
        for c in self.0.chars() {
            if matches!(c, '"' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        HeaderValue::from_str(&out).ok()
    }
}

/// Parses the rest of an sf-string after its opening quote (RFC 8941 §4.2.5).
fn parse_sf_string(rest: &[u8]) -> Result<String, ApiError> {
    let mut out = String::new();
    let mut bytes = rest.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(&e @ (b'"' | b'\\')) => out.push(char::from(e)),
                _ => return Err(malformed("only \\\" and \\\\ may be escaped")),
            },
            b'"' => {
                return if bytes.as_slice().is_empty() {
                    Ok(out)
                } else {
                    Err(malformed("nothing may follow the closing quote"))
                };
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => return Err(malformed("the key must be printable ASCII")),
        }
    }
    Err(malformed("the quoted key has no closing quote"))
}

fn malformed(why: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_idempotency_key",
        format!("malformed Idempotency-Key (a structured-field String such as \"abc\"): {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Option<String> {
        IdempotencyKey::parse(raw.as_bytes()).ok().map(|k| k.0)
    }

    #[test]
    fn quoted_and_bare() {
        assert_eq!(parse("\"01J9ABC\"").as_deref(), Some("01J9ABC"));
        assert_eq!(parse("  \"a b\" ").as_deref(), Some("a b"));
        assert_eq!(
            parse(r#""say \"hi\" \\o/""#).as_deref(),
            Some(r#"say "hi" \o/"#)
        );
        assert_eq!(parse("8e03978e-40d5").as_deref(), Some("8e03978e-40d5"));
    }

    #[test]
    fn malformed_keys() {
        for raw in [
            "",
            "\"\"",
            "\"open",
            "\"a\";p=1",
            "\"bad\\n\"",
            "a b",
            "\"a\"x",
        ] {
            assert_eq!(parse(raw), None, "{raw:?}");
        }
        assert_eq!(parse(&"k".repeat(256)), None);
        assert!(parse(&"k".repeat(255)).is_some());
    }

    #[test]
    fn echo_round_trips() {
        let key = IdempotencyKey(r#"a"b\c"#.to_owned());
        let value = key.to_header_value();
        let back = value.and_then(|v| IdempotencyKey::parse(v.as_bytes()).ok());
        assert_eq!(back, Some(key));
    }
}
