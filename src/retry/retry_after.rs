use crate::prelude::*;
use core::time::Duration;

use crate::intent::header;

/// How long the server asked the client to wait, read from `retry-after-ms`
/// (milliseconds, a de-facto header of several APIs) or else `Retry-After`
/// (delay-seconds, or an HTTP-date judged against the response's own `Date`
/// when it has one, else `now_ms`: a client clock that is off does not
/// stretch or cut the wait). A date already past means no wait; a value
/// that parses as neither is ignored.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use oncely::retry::retry_after;
/// let headers = [("retry-after".to_owned(), "3".to_owned())];
/// assert_eq!(retry_after(&headers, 0), Some(Duration::from_secs(3)));
/// let headers = [("retry-after".to_owned(), "Thu, 01 Jan 1970 00:00:10 GMT".to_owned())];
/// assert_eq!(retry_after(&headers, 4_000), Some(Duration::from_secs(6)));
/// // Judged against the server's clock when the response says what it is.
/// let headers = [
///     ("retry-after".to_owned(), "Thu, 01 Jan 1970 00:00:10 GMT".to_owned()),
///     ("date".to_owned(), "Thu, 01 Jan 1970 00:00:07 GMT".to_owned()),
/// ];
/// assert_eq!(retry_after(&headers, 900_000), Some(Duration::from_secs(3)));
/// ```
pub fn retry_after(headers: &[(String, String)], now_ms: u64) -> Option<Duration> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(parse_millis) {
        return Some(ms);
    }
    let value = header(headers, "retry-after")?.trim_ascii();
    if let Some(seconds) = parse_u64(value) {
        return Some(Duration::from_secs(seconds));
    }
    // An HTTP-date is before the year 10000: its ms never overflow.
    let date_ms = http_date_secs(value)? * 1000;
    let sent_ms = header(headers, "date")
        .and_then(|date| http_date_secs(date.trim_ascii()))
        .map_or(now_ms, |secs| secs * 1000);
    Some(Duration::from_millis(date_ms.saturating_sub(sent_ms)))
}

/// The weekdays from Monday, as RFC 850 dates spell them.
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: &[u8; 36] = b"JanFebMarAprMayJunJulAugSepOctNovDec";
/// Days in each month of a common year.
const MONTH_DAYS: &[u8; 12] = &[31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// An HTTP-date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime
/// forms) in seconds since the epoch; `None` unless it names a real moment
/// from 1970 to 9999 on the weekday it says. Parsed by hand, byte for byte
/// as `httpdate` does (a test holds them together): that crate's checks
/// would bring `Debug` formatting of `SystemTime` errors into the browser
/// build, and each form is one template read by one loop.
fn http_date_secs(value: &str) -> Option<u64> {
    let s = value.as_bytes();
    // Day, hour, minute, second, year; and the month's letters.
    let mut numbers = [0; 5];
    let mut month = 0;
    // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`; asctime: `Sun Nov  6
    // 08:49:37 1994`; RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`, the one
    // with the weekday's full name.
    let (weekday, full) =
        if read_date(
            s,
            b"www, 00 nnn 4444 11:22:33 GMT",
            &mut numbers,
            &mut month,
        ) || read_date(s, b"www nnn 50 11:22:33 4444", &mut numbers, &mut month)
        {
            (s.get(..3)?, false)
        } else {
            let comma = s.iter().position(|&byte| byte == b',')?;
            let (weekday, rest) = s.split_at(comma);
            if !read_date(rest, b", 00-nnn-44?11:22:33 GMT", &mut numbers, &mut month) {
                return None;
            }
            numbers[4] += if numbers[4] < 70 { 2000 } else { 1900 };
            (weekday, true)
        };
    let month = MONTHS.chunks_exact(3).position(|name| {
        name.iter()
            .fold(0, |packed, &byte| packed << 8 | u32::from(byte))
            == month
    })?;
    let [day, hour, minute, second, year] = numbers;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = u64::from(MONTH_DAYS[month]) + u64::from(month == 1 && leap);
    if !(1970..=9999).contains(&year)
        || day == 0
        || day > month_days
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days since 1970-01-01 (the civil-from-days algorithm, reversed:
    // years start in March, so February's leap day ends a year).
    let (y, m) = if month < 2 {
        (year - 1, month as u64 + 10)
    } else {
        (year, month as u64 - 2)
    };
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let days = y * 365 + y / 4 - y / 100 + y / 400 + day_of_year - 719_468;
    // 1970-01-01 was a Thursday.
    let named = WEEKDAYS[(days as usize + 3) % 7].as_bytes();
    if weekday != if full { named } else { &named[..3] } {
        return None;
    }
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Reads `s` against `template` into `numbers` (day, hour, minute, second,
/// year) and `month` (its letters, packed): a digit `0` to `4` stands for
/// a digit of the day, hour, minute, second or year (`5`: a day digit or a
/// space), `n` for the month's letters, `w` and `?` for any byte;
/// everything else for itself.
#[inline(never)] // one loop for every template, not one unrolled per template
fn read_date(s: &[u8], template: &[u8], numbers: &mut [u64; 5], month: &mut u32) -> bool {
    *numbers = [0; 5];
    *month = 0;
    if s.len() != template.len() {
        return false;
    }
    for (&part, &byte) in template.iter().zip(s) {
        let number = part.wrapping_sub(b'0');
        if number <= 5 {
            let digit = match byte {
                b' ' if number == 5 => 0,
                _ => byte.wrapping_sub(b'0'),
            };
            if digit > 9 {
                return false;
            }
            let number = &mut numbers[usize::from(number % 5)];
            *number = *number * 10 + u64::from(digit);
        } else if part == b'n' {
            *month = *month << 8 | u32::from(byte);
        } else if part != b'w' && part != b'?' && part != byte {
            return false;
        }
    }
    true
}

/// What `str::parse::<u64>` reads (digits after an optional `+`, `None`
/// past `u64::MAX`), by hand: its overflow-checked multiplications call a
/// 128-bit helper on wasm32.
fn parse_u64(value: &str) -> Option<u64> {
    let digits = match value.as_bytes() {
        [b'+', digits @ ..] => digits,
        digits => digits,
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &byte in digits {
        let digit = u64::from(byte.wrapping_sub(b'0'));
        if digit > 9 || n > (u64::MAX - digit) / 10 {
            return None;
        }
        n = n * 10 + digit;
    }
    Some(n)
}

/// Milliseconds, possibly with a fraction, which rounds up (never early).
/// Parsed by hand: float parsing would add kilobytes to the browser build.
fn parse_millis(value: &str) -> Option<Duration> {
    // One pass over the bytes: a `str` pattern would ship a searcher.
    let value = value.trim_ascii().as_bytes();
    let (mut ms, mut dot, mut round_up) = (0u64, false, false);
    for &byte in value {
        if byte == b'.' && !dot {
            dot = true;
        } else if !byte.is_ascii_digit() {
            return None;
        } else if dot {
            round_up |= byte != b'0';
        } else {
            // Held at a cap above the limit below rather than saturating:
            // the same result, without an overflow-checked multiplication.
            ms = (ms * 10 + u64::from(byte - b'0')).min(1 << 60);
        }
    }
    // Digits on one side of the point at least.
    if value.len() == usize::from(dot) {
        return None;
    }
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
    fn parses_seconds_as_str_parse_does() {
        for value in [
            "",
            "+",
            "-",
            "0",
            "+0",
            "-0",
            "7",
            "+42",
            "++1",
            "1+",
            " 1",
            "1 ",
            "01",
            "1.5",
            "99999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "18446744073709551620",
            "00000000000000000000018446744073709551615",
            "１",
        ] {
            assert_eq!(parse_u64(value), value.parse::<u64>().ok(), "{value:?}");
        }
    }

    #[test]
    fn reads_milliseconds_with_a_fraction() {
        let cases = [
            ("0", Some(0)),
            ("12", Some(12)),
            ("12.", Some(12)),
            (".5", Some(1)),
            ("2.000", Some(2)),
            ("2.001", Some(3)),
            (" 7 ", Some(7)),
            ("", None),
            (".", None),
            ("..", None),
            ("1..2", None),
            ("1.2.3", None),
            ("1e3", None),
            ("+1", None),
            ("-1", None),
            ("1 2", None),
        ];
        for (value, ms) in cases {
            assert_eq!(
                parse_millis(value),
                ms.map(Duration::from_millis),
                "{value:?}"
            );
        }
    }

    #[test]
    fn huge_milliseconds_are_held_at_the_limit() {
        for value in [
            "1000000000000",
            "1000000000001",
            "99999999999999999999999.5",
        ] {
            let expected = 1_000_000_000_000 + u64::from(value.ends_with(".5"));
            assert_eq!(parse_millis(value), Some(Duration::from_millis(expected)));
        }
    }

    #[test]
    fn milliseconds_win_over_seconds() {
        let mut headers = one("retry-after", "10");
        headers.extend(one("retry-after-ms", "250"));
        assert_eq!(retry_after(&headers, 0), Some(Duration::from_millis(250)));
    }
}
