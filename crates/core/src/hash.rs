//! A 128-bit content hash that is the same on every process, platform and
//! release.
//
// Why xxh3-128: it is a published, frozen algorithm (XXH3 was declared stable
// in xxHash 0.8.0), it is among the fastest non-cryptographic hashes for short
// inputs, and 128 bits make accidental collisions negligible for the key
// spaces brisk deals with (2^64 texts before a 50% chance of one collision).
// The hash keys Redis entries and memo tables, so it must never change: the
// tests pin it to vectors produced by the reference C implementation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xxhash_rust::xxh3::{Xxh3Default, xxh3_128};

use crate::ParseError;

/// The xxh3-128 hash of a text's UTF-8 bytes (seed 0).
///
/// **Stability guarantee:** for the same bytes, `ContentHash` is the same on
/// every platform, in every process and in every release of brisk, so it can
/// key persistent or shared stores (Redis, PostgreSQL, files). Its text form
/// is 32 lowercase hex digits, most significant first, as printed by the
/// reference `xxhsum -H2`.
///
/// ```
/// use brisk_core::ContentHash;
///
/// let h = ContentHash::of("hello world");
/// assert_eq!(h.to_string(), "df8d09e93f874900a99b8775cc15b6c7");
/// assert_eq!(h, "df8d09e93f874900a99b8775cc15b6c7".parse()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(u128);

impl ContentHash {
    /// Hashes a text.
    #[must_use]
    pub fn of(text: &str) -> Self {
        Self::of_bytes(text.as_bytes())
    }

    /// Hashes raw bytes.
    #[must_use]
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(xxh3_128(bytes))
    }

    /// Hashes several fields as one key, without ambiguity: each part is
    /// preceded by its length in bytes (a little-endian `u64`), so
    /// `["ab", "c"]` and `["a", "bc"]` differ. Use it for keys made of a
    /// namespace, a model name and a text, for example.
    ///
    /// This is as stable as [`ContentHash::of`]: it is xxh3-128 of the
    /// length-prefixed concatenation.
    ///
    /// ```
    /// use brisk_core::ContentHash;
    ///
    /// let a = ContentHash::of_parts(&["ab", "c"]);
    /// let b = ContentHash::of_parts(&["a", "bc"]);
    /// assert_ne!(a, b);
    /// ```
    #[must_use]
    pub fn of_parts<S: AsRef<[u8]>>(parts: &[S]) -> Self {
        let mut hasher = Xxh3Default::new();
        for part in parts {
            let part = part.as_ref();
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Self(hasher.digest128())
    }

    /// The hash from its 128-bit value.
    #[must_use]
    pub const fn from_u128(value: u128) -> Self {
        Self(value)
    }

    /// The 128-bit value.
    #[must_use]
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The low 64 bits, handy for sharding and hash tables.
    #[must_use]
    pub const fn low64(self) -> u64 {
        self.0 as u64
    }

    /// The 16 bytes, most significant first (the order of the hex form).
    #[must_use]
    pub const fn to_be_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The hash from 16 bytes, most significant first.
    #[must_use]
    pub const fn from_be_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({:032x})", self.0)
    }
}

impl FromStr for ContentHash {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseError::new("content hash", s, "32 hexadecimal digits");
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        u128::from_str_radix(s, 16).map(Self).map_err(|_| err())
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
