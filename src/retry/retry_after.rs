use crate::prelude::*;
use core::time::Duration;

use crate::intent::header;

/// How long the server asked the client to wait, read from `retry-after-ms`
/// (milliseconds, a de-facto header of several APIs) or else `Retry-After`
/// (delay-seconds, or an HTTP-date judged against `now_ms`). A date already
/// past means no wait; a value that parses as neither is ignored.
///
/// # Examples
/// ```
/// use core::time::Duration;
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
    let date_ms = http_date_secs(value)?.saturating_mul(1000);
    Some(Duration::from_millis(date_ms.saturating_sub(now_ms)))
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// An HTTP-date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime
/// forms) in seconds since the epoch; `None` unless it names a real moment
/// from 1970 to 9999 on the weekday it says. Parsed by hand, as `httpdate`
/// does, byte for byte: that crate's checks would bring `Debug` formatting
/// of `SystemTime` errors into the browser build.
fn http_date_secs(value: &str) -> Option<u64> {
    let s = value.as_bytes();
    if !value.is_ascii() {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u64, |n, &b| {
            let digit = b.wrapping_sub(b'0');
            (digit < 10).then(|| n * 10 + u64::from(digit))
        })
    };
    // (weekday, day, month, year, "hh:mm:ss")
    let (weekday, day, month, year, time) = if s.len() == 29 {
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
        if &s[3..5] != b", "
            || s[7] != b' '
            || s[11] != b' '
            || s[16] != b' '
            || &s[25..] != b" GMT"
        {
            return None;
        }
        (
            &s[..3],
            number(&s[5..7])?,
            &s[8..11],
            number(&s[12..16])?,
            &s[17..25],
        )
    } else if s.len() == 24 {
        // asctime: `Sun Nov  6 08:49:37 1994`
        if s[3] != b' ' || s[7] != b' ' || s[10] != b' ' || s[19] != b' ' {
            return None;
        }
        let day = if s[8] == b' ' { &s[9..10] } else { &s[8..10] };
        (
            &s[..3],
            number(day)?,
            &s[4..7],
            number(&s[20..24])?,
            &s[11..19],
        )
    } else {
        // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
        let name = WEEKDAYS
            .iter()
            .find(|name| s.starts_with(name.as_bytes()) && s[name.len()..].starts_with(b", "))?;
        let rest = &s[name.len() + 2..];
        if rest.len() != 22 || rest[2] != b'-' || rest[6] != b'-' || &rest[18..] != b" GMT" {
            return None;
        }
        let yy = number(&rest[7..9])?;
        let year = yy + if yy < 70 { 2000 } else { 1900 };
        (
            &name.as_bytes()[..3],
            number(&rest[..2])?,
            &rest[3..6],
            year,
            &rest[10..18],
        )
    };
    if time[2] != b':' || time[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (
        number(&time[..2])?,
        number(&time[3..5])?,
        number(&time[6..])?,
    );
    let month = MONTHS.iter().position(|m| *m == month)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in = |month: usize| match month {
        1 if leap => 29,
        1 => 28,
        3 | 5 | 8 | 10 => 30,
        _ => 31,
    };
    if !(1970..=9999).contains(&year)
        || day == 0
        || day > days_in(month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days_before_month: u64 = (0..month).map(days_in).sum();
    let y = year - 1;
    let leap_days = (y - 1968) / 4 - (y - 1900) / 100 + (y - 1600) / 400;
    let days = (year - 1970) * 365 + leap_days + days_before_month + day - 1;
    // 1970-01-01 was a Thursday.
    if WEEKDAYS[((days + 3) % 7) as usize].as_bytes()[..3] != *weekday {
        return None;
    }
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
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
    fn reads_the_three_forms_of_an_http_date() {
        let at = |value: &str| retry_after(&one("retry-after", value), 0);
        let expected = Some(Duration::from_secs(784_111_777));
        assert_eq!(at("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(at("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
        assert_eq!(at("Sun Nov  6 08:49:37 1994"), expected);
        assert_eq!(
            at("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(Duration::from_secs(1_709_164_800))
        );
        assert_eq!(
            at("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(Duration::from_secs(253_402_300_799))
        );
        for nonsense in [
            "Mon, 06 Nov 1994 08:49:37 GMT", // the wrong weekday
            "Thu, 29 Feb 2023 00:00:00 GMT", // no such day
            "Sun, 31 Apr 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:37 GMT",
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Xyz 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 UTC",
            "Sun Nov 32 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT\u{e9}",
        ] {
            assert_eq!(at(nonsense), None, "{nonsense}");
        }
    }

    /// Byte for byte what `httpdate` accepts, natively where it is at hand.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn agrees_with_httpdate() {
        use std::time::UNIX_EPOCH;
        let theirs = |value: &str| {
            httpdate::parse_http_date(value)
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        };
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let secs = next() % 253_402_300_800;
            let fixdate = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
            let b = fixdate.as_bytes();
            let weekday = WEEKDAYS
                .iter()
                .find(|d| d.as_bytes()[..3] == b[..3])
                .unwrap();
            let day = &fixdate[5..7];
            let asctime_day = if b[5] == b'0' {
                format!(" {}", &fixdate[6..7])
            } else {
                day.to_owned()
            };
            let rfc850 = format!(
                "{weekday}, {day}-{}-{} {} GMT",
                &fixdate[8..11],
                &fixdate[14..16],
                &fixdate[17..25]
            );
            let asctime = format!(
                "{} {} {asctime_day} {} {}",
                &fixdate[..3],
                &fixdate[8..11],
                &fixdate[17..25],
                &fixdate[12..16]
            );
            // And damaged copies: one byte changed.
            let mut damaged = fixdate.clone().into_bytes();
            let at = (next() % 29) as usize;
            damaged[at] = b" ,:-0123459ADFJMNOSTWaeglnoruy"[(next() % 30) as usize];
            let damaged = String::from_utf8(damaged).unwrap();
            for value in [&fixdate, &rfc850, &asctime, &damaged] {
                assert_eq!(http_date_secs(value), theirs(value), "{value}");
            }
            assert_eq!(http_date_secs(&fixdate), Some(secs));
        }
    }

    #[test]
    fn milliseconds_win_over_seconds() {
        let mut headers = one("retry-after", "10");
        headers.extend(one("retry-after-ms", "250"));
        assert_eq!(retry_after(&headers, 0), Some(Duration::from_millis(250)));
    }
}
