//! Texts for people, without `core::fmt`: the core's messages are joined
//! from pieces ([`join`]) and its numbers written by [`decimal`], so
//! no formatting machinery ships in the npm package's WebAssembly.

use crate::prelude::*;

/// `parts` joined, as `[..].concat()` joins them, by a plain loop: the
/// standard library's generic join weighs half a kilobyte in the npm
/// package's WebAssembly.
pub fn join(parts: &[&str]) -> String {
    let mut text = String::new();
    for part in parts {
        text.push_str(part);
    }
    text
}

/// `n` in decimal digits.
///
/// # Examples
/// ```
/// assert_eq!(oncely::text::decimal(0), "0");
/// assert_eq!(oncely::text::decimal(u64::MAX), u64::MAX.to_string());
/// ```
pub fn decimal(mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits are UTF-8: the check never fails (and its code ships
    // anyway, where collecting `char`s would add an encoder).
    String::from_utf8(digits[at..].to_vec()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

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
