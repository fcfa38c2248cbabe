//! Token interning, tokenization into ids and detokenization.
//
// Design: every distinct token text gets a dense `u32` id. The strings live
// once, back to back, in one arena `String`; a hashbrown `HashTable<u32>`
// finds an id from a string by hashing the string and comparing against the
// arena, so no string is stored twice and no `String` is allocated per
// token. Per-id facts the generator needs on its hot path (kind, length in
// chars, how often the token was glued to its neighbours in the corpus) are
// parallel vectors indexed by id.
//
// Spacing is learned, not hard-coded: for every token we count how often it
// was written with no whitespace before it and after it. The detokenizer
// glues two tokens when the right one is punctuation that usually glues to
// its left (`.`, `,`, `…`), or the left one is punctuation that usually
// glues to its right (`(`, `“`), or both are word-like tokens that usually
// glue (runs of emoji).
// Straight double quotes are the exception, since the same char opens and
// closes: they alternate, opening quotes glue right and closing quotes glue
// left. Newlines are tokens of their own, so thread formats and line breaks
// survive.

use std::hash::BuildHasher;

use brisk_pattern_matcher::{TokenKind, tokens};
use hashbrown::HashTable;

/// The id of the post boundary: start padding and end of post.
pub(crate) const BOUNDARY: u32 = 0;
/// The id of a line break.
pub(crate) const NEWLINE: u32 = 1;
/// The id given to a token the model has never seen (never interned).
pub(crate) const UNKNOWN: u32 = u32::MAX;

/// Token kinds as stored per id (one byte each).
pub(crate) mod kind {
    pub(crate) const WORD: u8 = 0;
    pub(crate) const NUMBER: u8 = 1;
    pub(crate) const PERCENT: u8 = 2;
    pub(crate) const URL: u8 = 3;
    pub(crate) const MENTION: u8 = 4;
    pub(crate) const HASHTAG: u8 = 5;
    pub(crate) const CASHTAG: u8 = 6;
    pub(crate) const EMOJI: u8 = 7;
    pub(crate) const PUNCT: u8 = 8;
    pub(crate) const NEWLINE: u8 = 9;
    pub(crate) const BOUNDARY: u8 = 10;
    /// The largest valid kind byte.
    pub(crate) const MAX: u8 = BOUNDARY;
}

fn kind_byte(k: TokenKind) -> u8 {
    match k {
        TokenKind::Word => kind::WORD,
        TokenKind::Number => kind::NUMBER,
        TokenKind::Percent => kind::PERCENT,
        TokenKind::Url => kind::URL,
        TokenKind::Mention => kind::MENTION,
        TokenKind::Hashtag => kind::HASHTAG,
        TokenKind::Cashtag => kind::CASHTAG,
        TokenKind::Emoji => kind::EMOJI,
        _ => kind::PUNCT,
    }
}

/// Whether a kind counts as a word (as brisk-pattern-matcher's
/// `Structure::words` counts them).
pub(crate) const fn is_word_kind(k: u8) -> bool {
    matches!(
        k,
        kind::WORD | kind::NUMBER | kind::PERCENT | kind::MENTION | kind::HASHTAG | kind::CASHTAG
    )
}

/// The token dictionary of a model.
#[derive(Clone)]
pub(crate) struct Vocab {
    arena: String,
    /// `ends[i]`: one past the last byte of token `i` in `arena`.
    ends: Vec<u32>,
    table: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    kinds: Vec<u8>,
    chars: Vec<u16>,
    /// Occurrences in the corpus.
    seen: Vec<u32>,
    /// Occurrences with no whitespace before (after another token).
    glue_left: Vec<u32>,
    /// Occurrences with no whitespace after (before another token).
    glue_right: Vec<u32>,
}

impl std::fmt::Debug for Vocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocab")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Vocab {
    pub(crate) fn new() -> Self {
        let mut v = Self {
            arena: String::new(),
            ends: Vec::new(),
            table: HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x6272_6973_6b67_656e),
            kinds: Vec::new(),
            chars: Vec::new(),
            seen: Vec::new(),
            glue_left: Vec::new(),
            glue_right: Vec::new(),
        };
        // The boundary has no text; it is never looked up by text.
        v.push_raw("", kind::BOUNDARY);
        let newline = v.intern("\n", kind::NEWLINE);
        debug_assert_eq!(newline, NEWLINE);
        v
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    fn push_raw(&mut self, text: &str, kind: u8) -> u32 {
        let id = u32::try_from(self.ends.len()).expect("fewer than 2^32 distinct tokens");
        self.arena.push_str(text);
        self.ends
            .push(u32::try_from(self.arena.len()).expect("token arena below 4 GiB"));
        self.kinds.push(kind);
        self.chars
            .push(u16::try_from(text.chars().count()).unwrap_or(u16::MAX));
        self.seen.push(0);
        self.glue_left.push(0);
        self.glue_right.push(0);
        id
    }

    /// The text of token `id`.
    pub(crate) fn text(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    pub(crate) fn kind(&self, id: u32) -> u8 {
        self.kinds[id as usize]
    }

    pub(crate) fn chars(&self, id: u32) -> usize {
        usize::from(self.chars[id as usize])
    }

    /// The id of `text`, if it was interned.
    pub(crate) fn get(&self, text: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(text);
        self.table.find(hash, |&id| self.text(id) == text).copied()
    }

    /// The id of `text`, interning it with `kind` if new.
    pub(crate) fn intern(&mut self, text: &str, kind: u8) -> u32 {
        let hash = self.hasher.hash_one(text);
        if let Some(&id) = self.table.find(hash, |&id| self.text(id) == text) {
            return id;
        }
        let id = self.push_raw(text, kind);
        let Self {
            table,
            hasher,
            arena,
            ends,
            ..
        } = self;
        table.insert_unique(hash, id, |&other| {
            let i = other as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            hasher.hash_one(&arena[start..ends[i] as usize])
        });
        id
    }

    /// Restores the spacing counts of `id` (when loading a model).
    pub(crate) fn set_counts(&mut self, id: u32, seen: u32, left: u32, right: u32) {
        let i = id as usize;
        self.seen[i] = seen;
        self.glue_left[i] = left;
        self.glue_right[i] = right;
    }

    /// `(seen, glue_left, glue_right)` of `id`.
    pub(crate) fn counts(&self, id: u32) -> (u32, u32, u32) {
        let i = id as usize;
        (self.seen[i], self.glue_left[i], self.glue_right[i])
    }

    /// Tokenizes `text` into ids, interning new tokens and counting how each
    /// is spaced. Line breaks between tokens become [`NEWLINE`] tokens (at
    /// most two in a row).
    pub(crate) fn intern_text(&mut self, text: &str, out: &mut Vec<u32>) {
        let mut prev_end: Option<usize> = None;
        let mut prev_id = BOUNDARY;
        for t in tokens(text) {
            let id = self.intern(t.text(text), kind_byte(t.kind));
            if let Some(end) = prev_end {
                let gap = &text.as_bytes()[end..t.span.start];
                let breaks = gap.iter().filter(|&&b| b == b'\n').count().min(2);
                for _ in 0..breaks {
                    out.push(NEWLINE);
                }
                if gap.is_empty() {
                    self.glue_left[id as usize] += 1;
                    self.glue_right[prev_id as usize] += 1;
                }
            }
            self.seen[id as usize] += 1;
            out.push(id);
            prev_end = Some(t.span.end);
            prev_id = id;
        }
    }

    /// Tokenizes `text` into ids without interning: unknown tokens become
    /// [`UNKNOWN`].
    pub(crate) fn lookup_text(&self, text: &str, out: &mut Vec<u32>) {
        let mut prev_end: Option<usize> = None;
        for t in tokens(text) {
            if let Some(end) = prev_end {
                let gap = &text.as_bytes()[end..t.span.start];
                let breaks = gap.iter().filter(|&&b| b == b'\n').count().min(2);
                for _ in 0..breaks {
                    out.push(NEWLINE);
                }
            }
            out.push(self.get(t.text(text)).unwrap_or(UNKNOWN));
            prev_end = Some(t.span.end);
        }
    }

    /// Whether `id` is usually written with no whitespace before it.
    fn glues_left(&self, id: u32) -> bool {
        let i = id as usize;
        self.glue_left[i] * 2 > self.seen[i]
    }

    /// Whether `id` is usually written with no whitespace after it.
    fn glues_right(&self, id: u32) -> bool {
        let i = id as usize;
        self.glue_right[i] * 2 > self.seen[i]
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.ends.capacity() * 4
            + self.table.capacity() * 5
            + self.kinds.capacity()
            + self.chars.capacity() * 2
            + (self.seen.capacity() + self.glue_left.capacity() + self.glue_right.capacity()) * 4
    }
}

/// Decides the spacing between consecutive tokens, left to right; the
/// generator runs it as it samples so it knows the length in chars without
/// building the text.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Joiner {
    prev: Option<u32>,
    quote_open: bool,
}

impl Joiner {
    /// Whether a space goes before `next`; advances past it.
    #[inline]
    pub(crate) fn space_before(&mut self, vocab: &Vocab, next: u32) -> bool {
        let Some(prev) = self.prev.replace(next) else {
            if vocab.text(next) == "\"" {
                self.quote_open = true;
            }
            return false;
        };
        if next == NEWLINE || prev == NEWLINE {
            return false;
        }
        let next_quote = vocab.text(next) == "\"";
        let prev_quote = vocab.text(prev) == "\"";
        if next_quote {
            self.quote_open = !self.quote_open;
            // Closing quotes glue left; opening quotes are spaced unless
            // the previous token glues right.
            return self.quote_open && (prev_quote || !vocab.glues_right(prev));
        }
        if prev_quote {
            // After an opening quote nothing is spaced; after a closing one,
            // the next token decides.
            return !self.quote_open && !vocab.glues_left(next);
        }
        // Punctuation glues by its own habit ("." left, "(" right); two
        // word-like tokens glue only when both usually do (emoji runs),
        // since a word that is often followed by "!" says nothing about
        // the next word.
        let prev_punct = vocab.kind(prev) == kind::PUNCT;
        let next_punct = vocab.kind(next) == kind::PUNCT;
        let glue = (next_punct && vocab.glues_left(next))
            || (prev_punct && vocab.glues_right(prev))
            || (!prev_punct && !next_punct && vocab.glues_left(next) && vocab.glues_right(prev));
        !glue
    }
}

/// Appends the text of `ids` to `out` with natural spacing.
pub(crate) fn detokenize(vocab: &Vocab, ids: &[u32], out: &mut String) {
    let mut joiner = Joiner::default();
    for &id in ids {
        if joiner.space_before(vocab, id) {
            out.push(' ');
        }
        out.push_str(vocab.text(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(corpus: &[&str], text: &str) -> String {
        let mut v = Vocab::new();
        let mut ids = Vec::new();
        for t in corpus {
            v.intern_text(t, &mut ids);
        }
        ids.clear();
        v.intern_text(text, &mut ids);
        let mut out = String::new();
        detokenize(&v, &ids, &mut out);
        out
    }

    #[test]
    fn interning_is_stable() {
        let mut v = Vocab::new();
        let a = v.intern("hello", kind::WORD);
        let b = v.intern("world", kind::WORD);
        assert_eq!(v.intern("hello", kind::WORD), a);
        assert_ne!(a, b);
        assert_eq!(v.get("world"), Some(b));
        assert_eq!(v.get("nope"), None);
        assert_eq!(v.text(a), "hello");
        assert_eq!(v.text(NEWLINE), "\n");
    }

    #[test]
    fn spacing_restored() {
        let corpus = [
            "Hello, world! It's 12% up (really) today.",
            "What a job! Great job! Fun job with friends 🎉🎉🎉",
            "Read \"this\" now: https://x.com/a 🚀 #win",
            "Thread 1/\nline two… @ann",
        ];
        for text in corpus {
            assert_eq!(round_trip(&corpus, text), text);
        }
        // "job" is usually glued to the "!" after it, not to a next word.
        assert_eq!(round_trip(&corpus, "a job with friends!"), "a job with friends!");
    }
}
