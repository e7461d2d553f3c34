//! Texts for people, without `core::fmt`: the core's messages are built
//! piece by piece ([`Text`]) and their numbers written digit by digit, so
//! no formatting machinery ships in the npm package's WebAssembly.

use crate::prelude::*;

/// A text for people, built in place piece by piece: no array of pieces
/// and no `String` per number, each of which would cost every message
/// code in the npm package's WebAssembly.
pub struct Text(pub String);

impl Text {
    /// A text starting with `start`.
    pub fn new(start: &str) -> Text {
        Text(start.to_owned())
    }

    /// `text` added at the end.
    pub fn add(&mut self, text: &str) -> &mut Text {
        self.0.push_str(text);
        self
    }

    /// `n` in decimal digits added at the end.
    pub fn number(&mut self, n: u64) -> &mut Text {
        // SAFETY: decimal digits are ASCII, so the text stays UTF-8 (and
        // no character encoder ships for them).
        unsafe { self.0.as_mut_vec() }.extend_from_slice(digits(n, &mut [0; 20]));
        self
    }
}

/// The text in `bytes` when they are UTF-8, as `String::from_utf8` judges
/// (no overlong forms, surrogates or code points past U+10FFFF; a test
/// holds them together), checked one sequence at a time: the standard
/// library's validator, built for speed, weighs 0.7 KB in the npm
/// package's WebAssembly.
pub fn utf8(bytes: &[u8]) -> Option<String> {
    let mut at = 0;
    while let Some(&first) = bytes.get(at) {
        // The sequence's length, the least code point it may encode, and
        // the bits its first byte holds.
        let (len, least, mut code) = match first {
            0..=0x7f => (1, 0, u32::from(first)),
            0xc2..=0xdf => (2, 0x80, u32::from(first & 0x1f)),
            0xe0..=0xef => (3, 0x800, u32::from(first & 0x0f)),
            0xf0..=0xf4 => (4, 0x1_0000, u32::from(first & 0x07)),
            _ => return None,
        };
        for next in 1..len {
            let byte = *bytes.get(at + next)?;
            if byte & 0xc0 != 0x80 {
                return None;
            }
            code = code << 6 | u32::from(byte & 0x3f);
        }
        // Refuses surrogates and code points past U+10FFFF.
        if code < least || char::from_u32(code).is_none() {
            return None;
        }
        at += len;
    }
    // SAFETY: every sequence was checked above.
    Some(unsafe { String::from_utf8_unchecked(bytes.to_vec()) })
}

/// `n` in decimal digits.
///
/// # Examples
/// ```
/// assert_eq!(oncely::text::decimal(0), "0");
/// assert_eq!(oncely::text::decimal(u64::MAX), u64::MAX.to_string());
/// ```
pub fn decimal(n: u64) -> String {
    // ASCII digits are UTF-8: never the default.
    utf8(digits(n, &mut [0; 20])).unwrap_or_default()
}

/// `n`'s decimal digits, written at the end of `room` (for callers that
/// copy them on without a `String`).
pub fn digits(mut n: u64, room: &mut [u8; 20]) -> &[u8] {
    let mut at = room.len();
    loop {
        at -= 1;
        room[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &room[at..]
}

#[cfg(test)]
mod tests {
    use super::*;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Millions of inputs: natively only (the browser run would crawl).
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn reads_utf8_as_the_standard_library_does() {
        let edges = [
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xf5, 0xff,
        ];
        let mut judged = 0;
        let mut check = |bytes: &[u8]| {
            let theirs = String::from_utf8(bytes.to_vec()).ok();
            assert_eq!(utf8(bytes), theirs, "{bytes:x?}");
            judged += 1;
        };
        check(b"");
        for first in 0..=255u8 {
            check(&[first]);
            for second in 0..=255u8 {
                check(&[first, second]);
                check(&[b'a', first, second, b'z']);
                for third in edges {
                    check(&[first, second, third]);
                    for fourth in edges {
                        check(&[first, second, third, fourth]);
                    }
                }
            }
        }
        // Every three-byte sequence after a lead byte of three or four.
        for first in [0xe0, 0xed, 0xef, 0xf0, 0xf4] {
            for second in 0..=255u8 {
                for third in 0..=255u8 {
                    check(&[first, second, third]);
                    check(&[first, second, third, 0x80]);
                }
            }
        }
        assert!(judged > 10_000_000);
    }

    #[test]
    fn texts_are_built_as_joined() {
        let mut text = Text::new("after ");
        text.number(0).add(" and ").number(u64::MAX).add(" é");
        assert_eq!(
            text.0,
            ["after 0 and ", &u64::MAX.to_string(), " é"].concat()
        );
    }

    #[test]
    fn writes_what_to_string_writes() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            4200,
            65_535,
            1 << 32,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(decimal(n), n.to_string());
        }
    }
}
