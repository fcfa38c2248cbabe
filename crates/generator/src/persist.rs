//! The saved-model format.
//
// Design: a model is saved as what it was learned from, not as its hash
// tables: the settings, the vocabulary (text, kind and spacing counts per
// token), every post as token ids with its weight and hook kind, and the
// structural statistics. Loading replays the posts through the same code
// that trains, so the chain, scorer and index come back exactly (and in the
// same order, so a seed gives the same output), and the file holds ~1–2
// bytes per token. Integers are LEB128 varints.
//
//   magic    b"BRISKGEN"
//   version  u32 little-endian (FORMAT_VERSION)
//   settings order, holdout_every, engagement_weighting
//   vocab    count, then per token from id 2: kind u8, text (len + UTF-8),
//            and for every id: seen, glue_left, glue_right
//   posts    count, then per post: weight f32 LE, hook u8, length, ids
//   style    the counters of `Style`

use std::io::{Read, Write};

use crate::error::GeneratorError;
use crate::model::Generator;
use crate::style::Style;
use crate::vocab::{NEWLINE, kind};

const MAGIC: &[u8; 8] = b"BRISKGEN";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            #[allow(clippy::cast_possible_truncation)] // the low 7 bits
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        #[allow(clippy::cast_possible_truncation)] // below 0x80
        self.0.push(v as u8);
    }

    fn usize(&mut self, v: usize) {
        self.varint(v as u64);
    }

    fn u32s(&mut self, vs: &[u32]) {
        for &v in vs {
            self.varint(u64::from(v));
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn truncated(&self) -> GeneratorError {
        GeneratorError::InvalidModel(format!("truncated at byte {}", self.pos))
    }

    fn byte(&mut self) -> Result<u8, GeneratorError> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.truncated())?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], GeneratorError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| self.truncated())?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, GeneratorError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(GeneratorError::InvalidModel(format!(
            "varint too long at byte {}",
            self.pos
        )))
    }

    fn usize(&mut self, what: &str, max: usize) -> Result<usize, GeneratorError> {
        let v = self.varint()?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| GeneratorError::InvalidModel(format!("{what} {v} out of range (max {max})")))
    }

    fn u32(&mut self, what: &str) -> Result<u32, GeneratorError> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| GeneratorError::InvalidModel(format!("{what} {v} out of range")))
    }

    fn u32s(&mut self, out: &mut [u32], what: &str) -> Result<(), GeneratorError> {
        for slot in out {
            *slot = self.u32(what)?;
        }
        Ok(())
    }
}

impl Generator {
    /// The model in the versioned binary format (see `docs/generator.md`).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(self.tokens() * 2 + 1024));
        w.0.extend_from_slice(MAGIC);
        w.0.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        w.usize(self.order);
        w.usize(self.holdout_every);
        w.usize(usize::from(self.engagement_weighting));
        let vocab = &self.vocab;
        w.usize(vocab.len());
        // Ids are u32 by construction (interning checks).
        #[allow(clippy::cast_possible_truncation)]
        let n = vocab.len() as u32;
        for id in 2..n {
            w.0.push(vocab.kind(id));
            let text = vocab.text(id);
            w.usize(text.len());
            w.0.extend_from_slice(text.as_bytes());
        }
        for id in 0..n {
            let (seen, left, right) = vocab.counts(id);
            w.u32s(&[seen, left, right]);
        }
        w.usize(self.posts.len());
        for (i, meta) in self.posts.iter().enumerate() {
            w.0.extend_from_slice(&meta.weight.to_le_bytes());
            w.0.push(meta.hook);
            let ids = self.index.post(i);
            w.usize(ids.len());
            w.u32s(ids);
        }
        let s = &self.style;
        w.u32s(&[s.posts]);
        w.u32s(&s.hooks);
        w.u32s(&s.lengths);
        w.usize(s.token_lengths.len());
        w.u32s(&s.token_lengths);
        w.varint(s.chars_total);
        w.varint(s.tokens_total);
        w.u32s(&s.hashtags);
        w.u32s(&[s.hashtag_last]);
        w.u32s(&s.emoji);
        w.u32s(&[s.emoji_last, s.threads]);
        w.u32s(&s.lines);
        w.u32s(&[s.questions]);
        w.0
    }

    /// Writes [`to_bytes`](Self::to_bytes) to `out`.
    ///
    /// # Errors
    ///
    /// [`GeneratorError::Io`] when writing fails.
    pub fn save(&self, mut out: impl Write) -> Result<(), GeneratorError> {
        out.write_all(&self.to_bytes())?;
        out.flush()?;
        Ok(())
    }

    /// Reads a model written by [`save`](Self::save).
    ///
    /// # Errors
    ///
    /// [`GeneratorError::Io`], or as [`from_bytes`](Self::from_bytes).
    pub fn load(mut input: impl Read) -> Result<Self, GeneratorError> {
        let mut data = Vec::new();
        input.read_to_end(&mut data)?;
        Self::from_bytes(&data)
    }

    /// A model from [`to_bytes`](Self::to_bytes).
    ///
    /// ```
    /// use brisk_generator::{Generator, GeneratorError};
    ///
    /// let mut g = Generator::builder().build()?;
    /// g.train_texts(["one small post", "another small post here"])?;
    /// let bytes = g.to_bytes();
    /// assert_eq!(Generator::from_bytes(&bytes)?.to_bytes(), bytes);
    ///
    /// let mut old = bytes.clone();
    /// old[8..12].copy_from_slice(&99u32.to_le_bytes());
    /// assert!(matches!(
    ///     Generator::from_bytes(&old),
    ///     Err(GeneratorError::IncompatibleVersion { found: 99, .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`GeneratorError::IncompatibleVersion`] for another format version;
    /// [`GeneratorError::InvalidModel`] for data that is not a model or is
    /// damaged (truncated, ids out of range, invalid UTF-8).
    pub fn from_bytes(data: &[u8]) -> Result<Self, GeneratorError> {
        if data.len() < 12 || &data[..8] != MAGIC {
            return Err(GeneratorError::InvalidModel(
                "not a brisk-generator model (bad magic)".into(),
            ));
        }
        let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        if version != FORMAT_VERSION {
            return Err(GeneratorError::IncompatibleVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let mut r = Reader { data, pos: 12 };
        let order = r.usize("order", 4)?;
        let holdout_every = r.usize("holdout_every", usize::MAX)?;
        let engagement = r.usize("engagement_weighting", 1)? == 1;
        let mut g = Self::builder()
            .order(order)
            .holdout_every(holdout_every)
            .engagement_weighting(engagement)
            .build()
            .map_err(|e| GeneratorError::InvalidModel(e.to_string()))?;
        let vocab_len = r.usize("vocabulary size", data.len())?;
        if vocab_len < 2 {
            return Err(GeneratorError::InvalidModel(
                "vocabulary lacks its special tokens".into(),
            ));
        }
        for id in 2..vocab_len {
            let k = r.byte()?;
            if k > kind::MAX || k == kind::NEWLINE || k == kind::BOUNDARY {
                return Err(GeneratorError::InvalidModel(format!("token {id}: bad kind {k}")));
            }
            let len = r.usize("token length", data.len())?;
            let text = std::str::from_utf8(r.bytes(len)?)
                .map_err(|_| GeneratorError::InvalidModel(format!("token {id}: invalid UTF-8")))?;
            if g.vocab.intern(text, k) as usize != id {
                return Err(GeneratorError::InvalidModel(format!(
                    "token {id}: duplicate {text:?}"
                )));
            }
        }
        debug_assert_eq!(g.vocab.get("\n"), Some(NEWLINE));
        // Every id below vocab_len was interned above, so it fits a u32.
        #[allow(clippy::cast_possible_truncation)]
        for id in 0..vocab_len as u32 {
            let (seen, left, right) = (r.u32("count")?, r.u32("count")?, r.u32("count")?);
            g.vocab.set_counts(id, seen, left, right);
        }
        let posts = r.usize("post count", data.len())?;
        let mut ids = Vec::new();
        for i in 0..posts {
            let b = r.bytes(4)?;
            let weight = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let hook = r.byte()?;
            if !(weight.is_finite() && weight > 0.0) || hook > 4 {
                return Err(GeneratorError::InvalidModel(format!(
                    "post {i}: bad weight or hook"
                )));
            }
            let len = r.usize("post length", data.len())?;
            ids.clear();
            for _ in 0..len {
                let id = r.u32("token id")?;
                if id < 2 && id != NEWLINE || id as usize >= vocab_len {
                    return Err(GeneratorError::InvalidModel(format!(
                        "post {i}: token id {id} out of range"
                    )));
                }
                ids.push(id);
            }
            g.add_ids(&ids, weight, hook);
        }
        let mut s = Style {
            posts: r.u32("style")?,
            ..Style::default()
        };
        r.u32s(&mut s.hooks, "style")?;
        r.u32s(&mut s.lengths, "style")?;
        let n = r.usize("style lengths", 256)?;
        s.token_lengths = vec![0; n];
        r.u32s(&mut s.token_lengths, "style")?;
        s.chars_total = r.varint()?;
        s.tokens_total = r.varint()?;
        r.u32s(&mut s.hashtags, "style")?;
        s.hashtag_last = r.u32("style")?;
        r.u32s(&mut s.emoji, "style")?;
        s.emoji_last = r.u32("style")?;
        s.threads = r.u32("style")?;
        r.u32s(&mut s.lines, "style")?;
        s.questions = r.u32("style")?;
        g.style = s;
        if r.pos != data.len() {
            return Err(GeneratorError::InvalidModel(format!(
                "{} bytes after the end of the model",
                data.len() - r.pos
            )));
        }
        if g.posts() > 0 {
            g.finish()?;
        }
        Ok(g)
    }
}
