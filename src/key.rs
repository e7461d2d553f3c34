//! Idempotency keys: ULIDs minted from a CSPRNG, or the caller's own.

use crate::prelude::*;
use alloc::sync::Arc;
use core::fmt;
use core::str::FromStr;

use crate::runtime::Random;

/// The longest key accepted (Stripe's limit, and the reference server's).
pub const MAX_KEY_LEN: usize = 255;

/// An intent's idempotency key, fixed for the intent's life.
///
/// oncely mints a ULID (48 bits of milliseconds, 80 random bits) when the
/// intent is first recorded. The random part is drawn fresh from a CSPRNG for
/// every key, never from ULID's monotonic generator: keys minted in the same
/// millisecond must not be guessable from each other. A caller that already
/// has a key (an `Idempotency-Key` header on its request) keeps it: oncely
/// never overwrites a caller's key.
///
/// # Examples
/// ```
/// let key: oncely::Key = "01JD5Z6W3Q7M2V8K4N9P0R1S2T".parse()?;
/// assert_eq!(key.as_str(), "01JD5Z6W3Q7M2V8K4N9P0R1S2T");
/// assert_eq!(key.header_value(), "\"01JD5Z6W3Q7M2V8K4N9P0R1S2T\"");
/// # Ok::<(), oncely::key::InvalidKey>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(Arc<str>);

impl Key {
    /// Mints a ULID key for the millisecond `now_ms` with 80 bits from `random`.
    pub fn mint(now_ms: u64, random: &dyn Random) -> Key {
        // The low 80 bits drawn, read little-endian: on wasm32 a big-endian
        // read swaps the bytes shift by shift.
        let mut bytes = [0u8; 16];
        random.fill(&mut bytes[..10]);
        let ulid = ulid::Ulid::from_parts(now_ms, u128::from_le_bytes(bytes));
        let mut text = [0u8; ulid::ULID_LEN];
        Key(ulid.array_to_str(&mut text).into())
    }

    /// When the key was minted (ms since the epoch), if it is a ULID; a
    /// caller's own key may be any text.
    pub fn minted_at(&self) -> Option<u64> {
        ulid::Ulid::from_string(&self.0)
            .ok()
            .map(|ulid| ulid.timestamp_ms())
    }

    /// A key the caller chose: 1 to 255 printable ASCII characters, without
    /// `"` or `\` (so it is a structured-field String without escapes).
    ///
    /// # Errors
    /// When `text` is not such a string.
    pub fn new(text: &str) -> Result<Key, InvalidKey> {
        let valid = !text.is_empty()
            && text.len() <= MAX_KEY_LEN
            && text
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if valid {
            Ok(Key(text.into()))
        } else {
            Err(InvalidKey)
        }
    }

    /// Reads an `Idempotency-Key` header value: a structured-field String
    /// (quoted), or for leniency a bare token.
    ///
    /// # Errors
    /// When the value is not a valid key.
    pub fn from_header(value: &str) -> Result<Key, InvalidKey> {
        let value = value.trim_ascii();
        // By bytes: `str` patterns would ship their searchers.
        let inner = match value.as_bytes() {
            [b'"', .., b'"'] => value.get(1..value.len() - 1).ok_or(InvalidKey)?,
            [b'"', ..] => return Err(InvalidKey),
            _ => value,
        };
        Key::new(inner)
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value of the `Idempotency-Key` header: an RFC 8941 structured-field
    /// String, so quoted.
    pub fn header_value(&self) -> String {
        let mut value = crate::text::Text::new("\"");
        value.add(&self.0).add("\"");
        value.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.0)
    }
}

/// A string that cannot be an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidKey;

impl fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "an idempotency key is 1 to 255 printable ASCII characters without '\"' or '\\'",
        )
    }
}

impl core::error::Error for InvalidKey {}

impl FromStr for Key {
    type Err = InvalidKey;

    fn from_str(text: &str) -> Result<Key, InvalidKey> {
        Key::new(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The same tests in the browser (wasm-bindgen-test), one body for both.
    use crate::runtime::OsRandom;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn minted_keys_are_ulids_of_their_millisecond() {
        let key = Key::mint(1_700_000_000_123, &OsRandom);
        assert_eq!(key.as_str().len(), 26);
        // Crockford's base32, as ULID writes it.
        let alphabet = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        assert!(key.as_str().bytes().all(|b| alphabet.contains(&b)));
        // The first 10 characters are the timestamp, big-endian base32.
        let time = key.as_str()[..10].bytes().fold(0u64, |t, b| {
            (t << 5) | alphabet.iter().position(|&c| c == b).unwrap_or(0) as u64
        });
        assert_eq!(time, 1_700_000_000_123);
        assert_eq!(key.minted_at(), Some(1_700_000_000_123));
        assert_eq!(Key::new("order-42-key").unwrap().minted_at(), None);
    }

    #[test]
    fn a_key_holds_all_80_drawn_bits() {
        struct Ones;
        impl Random for Ones {
            fn fill(&self, dest: &mut [u8]) {
                dest.fill(0xff);
            }
        }
        assert_eq!(&Key::mint(0, &Ones).as_str()[10..], "ZZZZZZZZZZZZZZZZ");
    }

    #[test]
    fn keys_of_one_millisecond_are_independent_draws() {
        let keys: std::collections::HashSet<Key> =
            (0..1000).map(|_| Key::mint(5, &OsRandom)).collect();
        assert_eq!(keys.len(), 1000);
    }

    #[test]
    fn reads_header_values() {
        assert_eq!(
            Key::from_header("\"abc-1\"").map(|k| k.header_value()),
            Ok("\"abc-1\"".to_owned())
        );
        assert_eq!(
            Key::from_header(" abc ").map(|k| k.to_string()),
            Ok("abc".to_owned())
        );
        assert!(Key::from_header("\"abc").is_err());
        assert!(Key::from_header("\"").is_err());
        assert!(Key::from_header("abc\"").is_err());
        assert_eq!(
            Key::from_header("\t\"a b\" ").map(|k| k.to_string()),
            Ok("a b".to_owned())
        );
        assert!(Key::from_header("\"\"").is_err());
        assert!(Key::new("a\"b").is_err());
        assert!(Key::new("tab\there").is_err());
        assert!(Key::new(&"x".repeat(256)).is_err());
    }
}
