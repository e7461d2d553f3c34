use std::time::{Duration, UNIX_EPOCH};

use crate::intent::header;

/// How long the server asked the client to wait, read from `retry-after-ms`
/// (milliseconds, a de-facto header of several APIs) or else `Retry-After`
/// (delay-seconds, or an HTTP-date judged against `now_ms`). A date already
/// past means no wait; a value that parses as neither is ignored.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use oncely::retry::retry_after;
/// let headers = [("retry-after".to_owned(), "3".to_owned())];
/// assert_eq!(retry_after(&headers, 0), Some(Duration::from_secs(3)));
/// let headers = [("retry-after".to_owned(), "Thu, 01 Jan 1970 00:00:10 GMT".to_owned())];
/// assert_eq!(retry_after(&headers, 4_000), Some(Duration::from_secs(6)));
/// ```
pub fn retry_after(headers: &[(String, String)], now_ms: u64) -> Option<Duration> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(parse_millis) {
        return Some(ms);
    }
    let value = header(headers, "retry-after")?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let date_ms = date.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    Some(Duration::from_millis(date_ms.saturating_sub(now_ms)))
}

/// Milliseconds, possibly with a fraction, which rounds up (never early).
/// Parsed by hand: float parsing would add kilobytes to the browser build.
fn parse_millis(value: &str) -> Option<Duration> {
    let (whole, fraction) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let ms = whole.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    let round_up = fraction.bytes().any(|b| b != b'0');
    Some(Duration::from_millis(
        ms.min(1_000_000_000_000) + u64::from(round_up),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn one(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), value.to_owned())]
    }

    #[test]
    fn reads_each_form() {
        assert_eq!(
            retry_after(&one("Retry-After", " 120 "), 0),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&one("retry-after-ms", "1500"), 0),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&one("retry-after-ms", "2.5"), 0),
            Some(Duration::from_millis(3)),
            "a fraction rounds up: never early"
        );
        let date = one("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT");
        let at = 1_445_412_480_000;
        assert_eq!(retry_after(&date, at - 2_000), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&date, at + 9_000), Some(Duration::ZERO));
    }

    #[test]
    fn ignores_nonsense() {
        assert_eq!(retry_after(&one("retry-after", "soon"), 0), None);
        assert_eq!(retry_after(&one("retry-after", "-3"), 0), None);
        assert_eq!(retry_after(&one("retry-after-ms", "NaN"), 0), None);
        assert_eq!(retry_after(&one("retry-after-ms", "-1"), 0), None);
        assert_eq!(retry_after(&[], 0), None);
    }

    #[test]
    fn milliseconds_win_over_seconds() {
        let mut headers = one("retry-after", "10");
        headers.extend(one("retry-after-ms", "250"));
        assert_eq!(retry_after(&headers, 0), Some(Duration::from_millis(250)));
    }
}
