//! What `send` sends, from its arguments: `-H` headers and the `-d` body.

use std::io::Read;

use crate::exit::{Exit, Failure};

/// One `-H 'Name: value'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Parses `Name: value` (the value trimmed, as curl does). The name is
/// checked by the library, which says exactly what is wrong with it.
pub fn parse_header(text: &str) -> Result<Header, String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not a header: expected 'Name: value'"))?;
    if name.is_empty() {
        return Err(format!(
            "{text:?} has no header name: expected 'Name: value'"
        ));
    }
    Ok(Header {
        name: name.to_owned(),
        value: value.trim_matches([' ', '\t']).to_owned(),
    })
}

/// Refuses `-H` headers that `send` cannot honour: a second
/// `Idempotency-Key` (an intent has one key), and a `Content-Length` (the
/// body is sent as given, and its length with it).
pub fn check_headers(headers: &[Header]) -> Result<(), Failure> {
    let count = |wanted: &str| {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(wanted))
            .count()
    };
    if count("idempotency-key") > 1 {
        return Err(Failure::new(
            Exit::InvalidInput,
            "more than one Idempotency-Key header: an intent has one key; \
             pass one, or none and oncely mints it",
        ));
    }
    if count("content-length") > 0 {
        return Err(Failure::new(
            Exit::InvalidInput,
            "a Content-Length header cannot be given: the body is sent as given \
             (-d), and its length with it",
        ));
    }
    Ok(())
}

/// The body named by `-d`: the text itself, `@FILE` for a file's bytes, `@-`
/// for standard input. Bytes are sent as they are (no newline stripping).
pub fn read_body(data: &str) -> Result<Vec<u8>, Failure> {
    match data.strip_prefix('@') {
        None => Ok(data.as_bytes().to_vec()),
        Some("-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut body)
                .map_err(|e| {
                    Failure::new(
                        Exit::InvalidInput,
                        format!("cannot read the body from stdin: {e}"),
                    )
                })?;
            Ok(body)
        }
        Some(path) => std::fs::read(path).map_err(|e| {
            Failure::new(
                Exit::InvalidInput,
                format!("cannot read the body from {path:?}: {e}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_headers_at_the_first_colon() {
        assert_eq!(
            parse_header("Authorization: Bearer a:b "),
            Ok(Header {
                name: "Authorization".to_owned(),
                value: "Bearer a:b".to_owned()
            })
        );
        assert_eq!(parse_header("X-Empty:").map(|h| h.value), Ok(String::new()));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": value").is_err());
    }

    #[test]
    fn reads_literal_data_and_files() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(read_body("{\"a\":1}").map_err(|f| f.message)?, b"{\"a\":1}");
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("body.bin");
        std::fs::write(&file, b"\x00\xffbytes\n")?;
        let arg = format!("@{}", file.display());
        assert_eq!(read_body(&arg).map_err(|f| f.message)?, b"\x00\xffbytes\n");
        let missing = read_body("@/no/such/file").err().map(|f| f.exit);
        assert_eq!(missing, Some(Exit::InvalidInput));
        Ok(())
    }
}
