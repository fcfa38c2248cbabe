//! The L2 value encoding: a 4-byte header, then a postcard payload that may
//! be zstd-compressed.
//!
//! ```text
//! byte 0  MAGIC (0xB5)
//! byte 1  format: 1 = postcard
//! byte 2  compression: 0 = none, 1 = zstd
//! byte 3  reserved, 0
//! ```
//!
//! A release that changes the payload format adds a format number and keeps
//! decoding the old ones, so entries written by an older release still
//! decode. Anything else (another magic, an unknown format or compression, a
//! payload that does not decode completely, a zstd frame over the size
//! limit) is a [`DecodeError`], which the cache counts as a miss.

use std::io::Read;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) const MAGIC: u8 = 0xB5;
pub(crate) const FORMAT_POSTCARD: u8 = 1;
pub(crate) const COMPRESSION_NONE: u8 = 0;
pub(crate) const COMPRESSION_ZSTD: u8 = 1;
const HEADER_LEN: usize = 4;

/// Why bytes read from Redis are not a value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("entry shorter than its header")]
    Short,
    #[error("unknown magic byte {0:#04x}")]
    Magic(u8),
    #[error("unknown format {0}")]
    Format(u8),
    #[error("unknown compression {0}")]
    Compression(u8),
    #[error("decompressed entry over {0} bytes")]
    TooLarge(usize),
    #[error("zstd: {0}")]
    Zstd(std::io::Error),
    #[error("payload: {0}")]
    Payload(postcard::Error),
    #[error("{0} trailing bytes after the payload")]
    Trailing(usize),
}

/// Encoding settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Codec {
    /// Payloads of at least this many bytes are compressed.
    pub(crate) threshold: usize,
    /// zstd level.
    pub(crate) level: i32,
    /// The largest decompressed payload accepted.
    pub(crate) max_decoded: usize,
}

impl Codec {
    /// Encodes `value`; `bool` tells whether it was compressed.
    pub(crate) fn encode<V: Serialize>(&self, value: &V) -> Result<(Vec<u8>, bool), postcard::Error> {
        let payload = postcard::to_allocvec(value)?;
        if payload.len() >= self.threshold {
            let mut out = vec![MAGIC, FORMAT_POSTCARD, COMPRESSION_ZSTD, 0];
            // Writing into a Vec cannot fail for I/O reasons.
            if zstd::stream::copy_encode(payload.as_slice(), &mut out, self.level).is_ok() {
                return Ok((out, true));
            }
        }
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(&[MAGIC, FORMAT_POSTCARD, COMPRESSION_NONE, 0]);
        out.extend_from_slice(&payload);
        Ok((out, false))
    }

    /// Decodes bytes written by [`encode`](Self::encode) (this release or an
    /// older one).
    pub(crate) fn decode<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V, DecodeError> {
        let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::Short);
        };
        let [magic, format, compression, _reserved] = *header;
        if magic != MAGIC {
            return Err(DecodeError::Magic(magic));
        }
        if format != FORMAT_POSTCARD {
            return Err(DecodeError::Format(format));
        }
        let inflated;
        let payload = match compression {
            COMPRESSION_NONE => body,
            COMPRESSION_ZSTD => {
                let limit = self.max_decoded;
                let mut out = Vec::new();
                zstd::stream::read::Decoder::new(body)
                    .map_err(DecodeError::Zstd)?
                    .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
                    .read_to_end(&mut out)
                    .map_err(DecodeError::Zstd)?;
                if out.len() > limit {
                    return Err(DecodeError::TooLarge(limit));
                }
                inflated = out;
                &inflated
            }
            other => return Err(DecodeError::Compression(other)),
        };
        let (value, rest) = postcard::take_from_bytes(payload).map_err(DecodeError::Payload)?;
        if !rest.is_empty() {
            return Err(DecodeError::Trailing(rest.len()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> Codec {
        Codec {
            threshold: 1024,
            level: 3,
            max_decoded: 1 << 20,
        }
    }

    #[test]
    fn small_values_are_stored_plain_and_round_trip() {
        let (bytes, compressed) = codec().encode(&("hello".to_owned(), 0.5f64)).unwrap();
        assert!(!compressed);
        assert_eq!(&bytes[..4], &[MAGIC, FORMAT_POSTCARD, COMPRESSION_NONE, 0]);
        let back: (String, f64) = codec().decode(&bytes).unwrap();
        assert_eq!(back, ("hello".to_owned(), 0.5));
    }

    #[test]
    fn large_values_are_compressed_and_round_trip() {
        let text = "the same words again and again ".repeat(200);
        let (bytes, compressed) = codec().encode(&text).unwrap();
        assert!(compressed);
        assert_eq!(bytes[2], COMPRESSION_ZSTD);
        assert!(bytes.len() < text.len() / 4, "{} bytes", bytes.len());
        let back: String = codec().decode(&bytes).unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn a_fixed_encoding_from_this_format_still_decodes() {
        // Written by format 1: "hi" as postcard (length 2, then the bytes).
        let stored = [MAGIC, 1, 0, 0, 2, b'h', b'i'];
        let back: String = codec().decode(&stored).unwrap();
        assert_eq!(back, "hi");
    }

    #[test]
    fn foreign_and_corrupted_bytes_are_errors_not_panics() {
        let c = codec();
        assert!(matches!(c.decode::<String>(b""), Err(DecodeError::Short)));
        assert!(matches!(
            c.decode::<String>(b"hello world"),
            Err(DecodeError::Magic(b'h'))
        ));
        assert!(matches!(
            c.decode::<String>(&[MAGIC, 9, 0, 0]),
            Err(DecodeError::Format(9))
        ));
        assert!(matches!(
            c.decode::<String>(&[MAGIC, 1, 7, 0]),
            Err(DecodeError::Compression(7))
        ));
        assert!(matches!(
            c.decode::<String>(&[MAGIC, 1, 1, 0, 1, 2, 3]),
            Err(DecodeError::Zstd(_))
        ));
        assert!(matches!(
            c.decode::<String>(&[MAGIC, 1, 0, 0, 9, b'a']),
            Err(DecodeError::Payload(_))
        ));
        assert!(matches!(
            c.decode::<String>(&[MAGIC, 1, 0, 0, 1, b'a', b'b']),
            Err(DecodeError::Trailing(1))
        ));
        let (mut bytes, _) = c.encode(&"x".repeat(5000)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        bytes.truncate(last - 3);
        assert!(c.decode::<String>(&bytes).is_err());
    }

    #[test]
    fn decompression_is_bounded() {
        let small = Codec {
            max_decoded: 100,
            ..codec()
        };
        let (bytes, compressed) = codec().encode(&"y".repeat(4000)).unwrap();
        assert!(compressed);
        assert!(matches!(
            small.decode::<String>(&bytes),
            Err(DecodeError::TooLarge(100))
        ));
    }
}
