//! The tokenizer: words, numbers, URLs, @mentions, #hashtags, $cashtags,
//! emoji (with ZWJ sequences, skin tones, flags and keycaps) and punctuation.
//
// Design: one forward pass over the bytes, no allocation, no regex. ASCII
// bytes are classified by a `match` on the byte; a non-ASCII char is decoded
// only where it starts a token, and classified as whitespace, emoji,
// alphanumeric (a word) or punctuation. Token positions are what the scorer
// measures proximity and negation in, and brisk-generator reuses the same
// tokens, so the rules live here once.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// A byte range `start..end` into a text, always on char boundaries.
///
/// ```
/// use brisk_pattern_matcher::Span;
///
/// let text = "café $ABC";
/// let span = Span::new(6, 10);
/// assert_eq!(span.text(text), "$ABC");
/// assert_eq!(span.len(), 4);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    #[must_use]
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// Its length in bytes.
    #[must_use]
    pub const fn len(self) -> usize {
        self.end - self.start
    }

    /// Whether it is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.end == self.start
    }

    /// As a `Range<usize>`.
    #[must_use]
    pub const fn range(self) -> Range<usize> {
        self.start..self.end
    }

    /// The part of `text` it covers.
    ///
    /// # Panics
    ///
    /// If the span is out of `text`'s bounds or not on char boundaries, which
    /// cannot happen for a span brisk returned for this same text.
    #[must_use]
    pub fn text(self, text: &str) -> &str {
        &text[self.start..self.end]
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl From<Span> for Range<usize> {
    fn from(span: Span) -> Self {
        span.range()
    }
}

/// What a [`Token`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenKind {
    /// Letters and digits, with inner apostrophes and hyphens (`don't`,
    /// `state-of-the-art`, `web3`, `東京`).
    Word,
    /// Digits with inner `.` or `,` groups (`3`, `1,000`, `2.5`).
    Number,
    /// A number followed by `%` (`12%`, `3.5%`); the span includes the `%`.
    Percent,
    /// `http://…`, `https://…` or `www.…`, up to whitespace, without trailing
    /// punctuation.
    Url,
    /// `@` followed by ASCII letters, digits or `_`.
    Mention,
    /// `#` followed by letters, digits or `_`, not only digits.
    Hashtag,
    /// `$` followed by an ASCII letter, then ASCII letters, digits or `_`.
    Cashtag,
    /// One emoji, including skin tones, variation selectors, ZWJ sequences
    /// (`👩‍💻`), flags (`🇫🇷`) and keycaps (`1️⃣`).
    Emoji,
    /// Any other visible char, one per token.
    Punctuation,
}

/// One token: its kind and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is in the text.
    pub span: Span,
}

impl Token {
    /// The token's text.
    ///
    /// # Panics
    ///
    /// If `text` is not the text this token came from.
    #[must_use]
    pub fn text(self, text: &str) -> &str {
        self.span.text(text)
    }
}

/// An iterator over the tokens of a text, from [`tokens`].
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

/// The tokens of `text`, lazily, without allocating.
///
/// ```
/// use brisk_pattern_matcher::{TokenKind, tokens};
///
/// let text = "Hi @ann, $ABC up 12% 🚀 https://x.com/a #win";
/// let kinds: Vec<TokenKind> = tokens(text).map(|t| t.kind).collect();
/// use TokenKind::*;
/// assert_eq!(kinds, [Word, Mention, Punctuation, Cashtag, Word, Percent, Emoji, Url, Hashtag]);
/// ```
#[must_use]
pub fn tokens(text: &str) -> Tokens<'_> {
    Tokens { text, pos: 0 }
}

/// The tokens of `text`, collected.
///
/// ```
/// use brisk_pattern_matcher::tokenize;
///
/// let text = "👩‍💻 don't panic";
/// let words: Vec<&str> = tokenize(text).iter().map(|t| t.text(text)).collect();
/// assert_eq!(words, ["👩‍💻", "don't", "panic"]);
/// ```
#[must_use]
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    out.extend(tokens(text));
    out
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    // Always inlined: a tweet has a token every 6 bytes, and the call
    // (saving and restoring registers) cost as much as the token itself.
    #[inline(always)]
    fn next(&mut self) -> Option<Token> {
        self.advance::<false>().map(|(t, _)| t)
    }
}

/// [`Tokens::next_counted`]'s count for a token whose letters were not
/// counted.
pub(crate) const NOT_COUNTED: u32 = u32::MAX;

impl Tokens<'_> {
    /// The next token and, for a word made of ASCII word bytes only, its
    /// uppercase letters (low 16 bits) and lowercase letters (high 16
    /// bits), counted in the same pass that finds its end; otherwise
    /// [`NOT_COUNTED`]. Structure analysis needs the counts for casing.
    #[inline(always)]
    pub(crate) fn next_counted(&mut self) -> Option<(Token, u32)> {
        self.advance::<true>()
    }

    #[inline(always)]
    fn advance<const COUNT: bool>(&mut self) -> Option<(Token, u32)> {
        let bytes = self.text.as_bytes();
        let mut start = self.pos;
        // ASCII whitespace inline, and the class of the first other byte.
        let class = loop {
            let Some(&b) = bytes.get(start) else {
                self.pos = start;
                return None;
            };
            let class = CLASS[b as usize];
            if class & SPACE == 0 {
                break class;
            }
            start += 1;
        };
        // The common case first: a word of ASCII letters that is not a URL.
        let (kind, end, counts) = if class & WORD_START != 0 {
            let (end, counts) = word_end_counted::<COUNT>(self.text, start);
            (TokenKind::Word, end, counts)
        } else {
            // Anything non-ASCII may be whitespace still.
            if class & HIGH != 0 {
                start = skip_whitespace(self.text, start);
                if start >= bytes.len() {
                    self.pos = start;
                    return None;
                }
            }
            scan_token::<COUNT>(self.text, start)
        };
        debug_assert!(end > start && self.text.is_char_boundary(end));
        self.pos = end;
        Some((
            Token {
                kind,
                span: Span::new(start, end),
            },
            counts,
        ))
    }
}

fn skip_whitespace(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    while pos < bytes.len() {
        let b = bytes[pos];
        if b.is_ascii_whitespace() {
            pos += 1;
        } else if b < 0x80 {
            break;
        } else {
            let c = char_at(text, pos);
            if c.is_whitespace() || c == '\u{200B}' || c == '\u{FEFF}' {
                pos += c.len_utf8();
            } else {
                break;
            }
        }
    }
    pos
}

/// The char starting at byte `pos` (which must be a char boundary).
#[inline]
pub(crate) fn char_at(text: &str, pos: usize) -> char {
    text[pos..].chars().next().unwrap_or('\0')
}

/// The char ending at byte `pos`, if any.
#[inline]
pub(crate) fn char_before(text: &str, pos: usize) -> Option<char> {
    text[..pos].chars().next_back()
}

/// The kind and end of the token at `start` (not whitespace), and with
/// `COUNT` the letter counts of an ASCII word (see [`Tokens::next_counted`]).
#[inline(always)]
fn scan_token<const COUNT: bool>(text: &str, start: usize) -> (TokenKind, usize, u32) {
    let bytes = text.as_bytes();
    let b = bytes[start];
    // The common case first: a word of ASCII letters that is not a URL.
    if CLASS[b as usize] & WORD_START != 0 {
        let (end, counts) = word_end_counted::<COUNT>(text, start);
        return (TokenKind::Word, end, counts);
    }
    // "ht…" or "ww…" may start a URL; "have", "with" cannot.
    if matches!(b, b'h' | b'H' | b'w' | b'W')
        && !matches!(bytes.get(start + 1), Some(b't' | b'T' | b'w' | b'W'))
    {
        let (end, counts) = word_end_counted::<COUNT>(text, start);
        return (TokenKind::Word, end, counts);
    }
    let (kind, end) = scan_other(text, start, b);
    (kind, end, NOT_COUNTED)
}

/// [`scan_token`] for every token but the common word.
#[inline(always)]
fn scan_other(text: &str, start: usize, b: u8) -> (TokenKind, usize) {
    let bytes = text.as_bytes();
    // A keycap continues with U+FE0F (EF B8 8F) or U+20E3 (E2 83 A3).
    if matches!(b, b'0'..=b'9' | b'#' | b'*')
        && matches!(bytes.get(start + 1), Some(0xEF | 0xE2))
        && let Some(end) = keycap_end(text, start)
    {
        return (TokenKind::Emoji, end);
    }
    match b {
        b'h' | b'H' | b'w' | b'W' => {
            // "ht…" or "ww…" may start a URL; "have", "with" cannot.
            if matches!(bytes.get(start + 1), Some(b't' | b'T' | b'w' | b'W'))
                && let Some(end) = url_end(text, start)
            {
                return (TokenKind::Url, end);
            }
            (TokenKind::Word, word_end(text, start))
        }
        b'@' => match bytes.get(start + 1) {
            Some(&n) if is_ascii_word_byte(n) => (TokenKind::Mention, ascii_word_run(bytes, start + 1)),
            _ => (TokenKind::Punctuation, start + 1),
        },
        b'#' => hashtag(text, start),
        b'$' => match bytes.get(start + 1) {
            Some(n) if n.is_ascii_alphabetic() => (TokenKind::Cashtag, ascii_word_run(bytes, start + 2)),
            _ => (TokenKind::Punctuation, start + 1),
        },
        b'0'..=b'9' => number(text, start),
        b if b < 0x80 => (TokenKind::Punctuation, start + 1),
        _ => {
            let c = char_at(text, start);
            if is_emoji_start(c) {
                (TokenKind::Emoji, emoji_end(text, start))
            } else if c.is_alphanumeric() {
                (TokenKind::Word, word_end(text, start))
            } else {
                (TokenKind::Punctuation, start + c.len_utf8())
            }
        }
    }
}

fn hashtag(text: &str, start: usize) -> (TokenKind, usize) {
    let bytes = text.as_bytes();
    let mut end = start + 1;
    let mut letter = false;
    while end < bytes.len() {
        let b = bytes[end];
        if b < 0x80 {
            if is_ascii_word_byte(b) {
                letter |= !b.is_ascii_digit();
                end += 1;
                continue;
            }
            break;
        }
        let c = char_at(text, end);
        if c.is_alphanumeric() || is_combining(c) {
            letter |= !c.is_ascii_digit();
            end += c.len_utf8();
        } else {
            break;
        }
    }
    if letter {
        (TokenKind::Hashtag, end)
    } else {
        (TokenKind::Punctuation, start + 1)
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || is_combining(c)
}

fn is_combining(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{20D0}'..='\u{20DC}')
}

/// Byte classes, one table lookup per byte on the hot paths.
pub(crate) const WORD: u8 = 1;
/// An ASCII uppercase letter.
pub(crate) const UPPER: u8 = 2;
/// An ASCII lowercase letter.
pub(crate) const LOWER: u8 = 4;
/// ASCII whitespace (as `u8::is_ascii_whitespace`).
pub(crate) const SPACE: u8 = 8;
/// A byte that starts a plain word: an ASCII letter but `h`, `H`, `w`, `W`
/// (which may start a URL), or `_`.
const WORD_START: u8 = 16;
/// A non-ASCII byte.
const HIGH: u8 = 32;

/// The class bits of every byte: `WORD` for the ASCII bytes that continue a
/// word (letters, digits, `_`), `UPPER`/`LOWER` for ASCII letters, `SPACE`
/// for ASCII whitespace, `WORD_START` for the bytes that start a plain word,
/// `HIGH` for non-ASCII bytes; 0 for everything else.
pub(crate) const CLASS: [u8; 256] = {
    let mut t = [HIGH; 256];
    let mut i = 0;
    while i < 128 {
        t[i] = 0;
        let b = i as u8;
        if (b.is_ascii_alphabetic() && !matches!(b, b'h' | b'H' | b'w' | b'W')) || b == b'_' {
            t[i] |= WORD_START;
        }
        if b.is_ascii_alphanumeric() || b == b'_' {
            t[i] |= WORD;
        }
        if b.is_ascii_uppercase() {
            t[i] |= UPPER;
        }
        if b.is_ascii_lowercase() {
            t[i] |= LOWER;
        }
        if b.is_ascii_whitespace() {
            t[i] |= SPACE;
        }
        i += 1;
    }
    t
};

/// ASCII bytes that continue a word: letters, digits, `_`.
#[inline]
pub(crate) fn is_ascii_word_byte(b: u8) -> bool {
    CLASS[b as usize] & WORD != 0
}

/// The end of the run of ASCII word bytes starting at `pos`.
#[inline]
pub(crate) fn ascii_word_run(bytes: &[u8], pos: usize) -> usize {
    let mut at = pos;
    while let Some(word) = eight_at(bytes, at) {
        let ends = !word_lanes(word).0 & HIGHS;
        if ends != 0 {
            return at + (ends.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = &bytes[at..];
    at + rest
        .iter()
        .position(|&b| CLASS[b as usize] & WORD == 0)
        .unwrap_or(rest.len())
}

// Word runs eight bytes at a time (SWAR): a word's end is found without a
// branch per byte, whose outcome (the word's length) a CPU cannot predict.
// Each byte is a lane of a little-endian `u64`; a lane's high bit is its
// flag.

/// 0x01 in every lane.
const ONES: u64 = 0x0101_0101_0101_0101;
/// 0x80 in every lane.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `pos` as lanes. Near the end the last eight bytes
/// are read, shifted so that `pos` is lane 0, and the lanes past the end
/// are zero (not a word byte, so a run stops there). `None` if `bytes` is
/// shorter than eight or `pos` is at its end.
#[inline(always)]
fn eight_at(bytes: &[u8], pos: usize) -> Option<u64> {
    if let Some(eight) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
        return Some(u64::from_le_bytes(*eight));
    }
    let len = bytes.len();
    if pos >= len {
        return None;
    }
    let last = bytes.last_chunk::<8>()?;
    Some(u64::from_le_bytes(*last) >> (8 * (pos + 8 - len)))
}

/// The ASCII word bytes of `w` (letters, digits, `_`), and its ASCII
/// letters, as lanes (high bits).
#[inline(always)]
fn word_lanes(w: u64) -> (u64, u64) {
    // Below 0x80 in every lane, adding at most 0x7F carries into no
    // other lane: `v + (0x80 - c)` has its high bit set where `v >= c`.
    let v = w & !HIGHS;
    // Setting 0x20 lowercases the letters and maps no other byte onto one.
    let folded = v | (ONES * 0x20);
    let letters = (folded + ONES * (0x80 - 0x61)) & !(folded + ONES * (0x80 - 0x7B));
    let digits = (v + ONES * (0x80 - 0x30)) & !(v + ONES * (0x80 - 0x3A));
    let x = v ^ (ONES * u64::from(b'_'));
    let not_underscores = (x + ONES * 0x7F) | x;
    let ascii = !w & HIGHS;
    let letters = ascii & letters;
    (letters | (ascii & (digits | !not_underscores)), letters)
}

/// [`ascii_word_run`] from `pos`, with the packed letter counts of the run
/// (see [`Tokens::next_counted`]; they wrap beyond 16 bits).
#[inline(always)]
fn ascii_word_run_counted(bytes: &[u8], pos: usize) -> (usize, u32) {
    let mut at = pos;
    let mut counts = 0u32;
    while let Some(word) = eight_at(bytes, at) {
        let (words, letters) = word_lanes(word);
        let ends = !words & HIGHS;
        // The run's lanes in this word: those before the first end.
        let run = if ends == 0 {
            HIGHS
        } else {
            HIGHS & ((ends & ends.wrapping_neg()) - 1)
        };
        // A letter is lowercase if it has 0x20 (moved up to the high bit).
        let letters = letters & run;
        let lower = letters & (word << 2);
        let upper = letters & !lower;
        // Uppercase lanes count 1, lowercase ones 16: at most 8 * 16 in the
        // top lane of the product.
        #[allow(clippy::cast_possible_truncation)] // the top lane
        let sum = (((upper >> 7) | (lower >> 3)).wrapping_mul(ONES) >> 56) as u32;
        counts = counts.wrapping_add((sum & 0xF) | ((sum >> 4) << 16));
        if ends != 0 {
            return (at + (ends.trailing_zeros() / 8) as usize, counts);
        }
        at += 8;
    }
    // A text shorter than eight bytes.
    let mut end = at;
    for &b in &bytes[at..] {
        let count = LETTER_COUNT[b as usize];
        if count == NOT_WORD {
            break;
        }
        counts = counts.wrapping_add(count);
        end += 1;
    }
    (end, counts)
}

/// Per byte, its ASCII letter count as [`Tokens::next_counted`] packs it:
/// 1 for an uppercase letter, `1 << 16` for a lowercase one, 0 for a digit
/// or `_`, and [`NOT_WORD`] for every byte that does not continue a word.
const LETTER_COUNT: [u32; 256] = {
    let mut t = [NOT_WORD; 256];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        if b.is_ascii_uppercase() {
            t[i] = 1;
        } else if b.is_ascii_lowercase() {
            t[i] = 1 << 16;
        } else if b.is_ascii_digit() || b == b'_' {
            t[i] = 0;
        }
        i += 1;
    }
    t
};

/// [`LETTER_COUNT`] of a byte that does not continue a word.
const NOT_WORD: u32 = u32::MAX;

/// [`word_end`], and with `COUNT` the packed letter counts when the word
/// is a plain run of ASCII word bytes (else [`NOT_COUNTED`]).
#[inline(always)]
fn word_end_counted<const COUNT: bool>(text: &str, start: usize) -> (usize, u32) {
    if !COUNT {
        return (word_end(text, start), NOT_COUNTED);
    }
    let bytes = text.as_bytes();
    let (end, counts) = ascii_word_run_counted(bytes, start);
    let len = end - start;
    // Each count has 16 bits: longer words are counted by the caller.
    let fits = len < 0xFFFF;
    match bytes.get(end) {
        None if fits => (end, counts),
        Some(&b) if fits && b < 0x80 && b != b'\'' && b != b'-' => (end, counts),
        _ => (word_end_from(text, start, end), NOT_COUNTED),
    }
}

/// The end of the word starting at `start`. Inlined for the common case,
/// a run of ASCII word bytes ended by an ASCII byte that cannot join words.
#[inline(always)]
fn word_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let end = ascii_word_run(bytes, start);
    match bytes.get(end) {
        None => end,
        Some(&b) if b < 0x80 && b != b'\'' && b != b'-' => end,
        Some(_) => word_end_from(text, start, end),
    }
}

/// [`word_end`] past the ASCII run `start..end`: joiners and non-ASCII.
#[inline(never)]
fn word_end_from(text: &str, start: usize, mut end: usize) -> usize {
    let bytes = text.as_bytes();
    loop {
        end = ascii_word_run(bytes, end);
        let Some(&b) = bytes.get(end) else {
            return end;
        };
        if b < 0x80 {
            // Inner apostrophes and hyphens join words: "don't", "co-founder".
            if (b == b'\'' || b == b'-') && end > start && starts_word_char(text, end + 1) {
                end += 1;
                continue;
            }
            return end;
        }
        let c = char_at(text, end);
        if (is_word_char(c) && !is_emoji_start(c))
            || (c == '\u{2019}' && end > start && starts_word_char(text, end + 3))
        {
            end += c.len_utf8();
            continue;
        }
        return end;
    }
}

/// Whether a word char starts at byte `pos`.
#[inline]
fn starts_word_char(text: &str, pos: usize) -> bool {
    match text.as_bytes().get(pos) {
        None => false,
        Some(&b) if b < 0x80 => is_ascii_word_byte(b),
        Some(_) => is_word_char(char_at(text, pos)),
    }
}

fn number(text: &str, start: usize) -> (TokenKind, usize) {
    let bytes = text.as_bytes();
    let mut end = start;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    while end + 1 < bytes.len() && matches!(bytes[end], b'.' | b',') && bytes[end + 1].is_ascii_digit() {
        end += 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
    }
    match bytes.get(end) {
        Some(b'%') => (TokenKind::Percent, end + 1),
        Some(_) if is_word_char(char_at(text, end)) => (TokenKind::Word, word_end(text, end)),
        _ => (TokenKind::Number, end),
    }
}

fn url_end(text: &str, start: usize) -> Option<usize> {
    let rest = &text.as_bytes()[start..];
    let prefix = if starts_with_ignore_case(rest, b"https://") {
        8
    } else if starts_with_ignore_case(rest, b"http://") {
        7
    } else if starts_with_ignore_case(rest, b"www.") {
        4
    } else {
        return None;
    };
    let mut end = start + prefix;
    let bytes = text.as_bytes();
    while end < bytes.len() {
        let b = bytes[end];
        if b.is_ascii_whitespace() {
            break;
        }
        if b >= 0x80 {
            let c = char_at(text, end);
            if c.is_whitespace() {
                break;
            }
            end += c.len_utf8();
        } else {
            end += 1;
        }
    }
    while end > start + prefix
        && matches!(
            bytes[end - 1],
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b')' | b']' | b'}' | b'\'' | b'"'
        )
    {
        end -= 1;
    }
    (end > start + prefix).then_some(end)
}

pub(crate) fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Whether `c` starts an emoji (`Extended_Pictographic`, approximated by the
/// blocks that hold emoji, plus regional indicators).
pub(crate) fn is_emoji_start(c: char) -> bool {
    matches!(
        c,
        '\u{1F000}'..='\u{1FAFF}'
            | '\u{2600}'..='\u{27BF}'
            | '\u{2300}'..='\u{23FF}'
            | '\u{2B00}'..='\u{2BFF}'
            | '\u{2194}'..='\u{2199}'
            | '\u{21A9}'..='\u{21AA}'
            | '\u{25AA}'..='\u{25FE}'
            | '\u{2934}'..='\u{2935}'
            | '\u{3030}'
            | '\u{303D}'
            | '\u{3297}'
            | '\u{3299}'
            | '\u{00A9}'
            | '\u{00AE}'
            | '\u{203C}'
            | '\u{2049}'
            | '\u{2122}'
            | '\u{2139}'
            | '\u{24C2}'
    )
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

fn is_emoji_modifier(c: char) -> bool {
    matches!(
        c,
        '\u{FE0E}' | '\u{FE0F}' | '\u{20E3}' | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0020}'..='\u{E007F}'
    )
}

/// A keycap sequence (`1️⃣`, `#⃣`): `[0-9#*]`, an optional VS16, U+20E3.
fn keycap_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if !matches!(bytes[start], b'0'..=b'9' | b'#' | b'*') {
        return None;
    }
    let rest = &text[start + 1..];
    if rest.starts_with("\u{FE0F}\u{20E3}") {
        Some(start + 1 + 6)
    } else if rest.starts_with('\u{20E3}') {
        Some(start + 1 + 3)
    } else {
        None
    }
}

fn emoji_end(text: &str, start: usize) -> usize {
    let first = char_at(text, start);
    let mut end = start + first.len_utf8();
    if is_regional_indicator(first) {
        let next = char_at(text, end);
        if end < text.len() && is_regional_indicator(next) {
            end += next.len_utf8();
        }
        return end;
    }
    while end < text.len() {
        let c = char_at(text, end);
        if is_emoji_modifier(c) {
            end += c.len_utf8();
        } else if c == '\u{200D}' {
            let after = end + c.len_utf8();
            if after < text.len() && is_emoji_start(char_at(text, after)) {
                end = after + char_at(text, after).len_utf8();
            } else {
                break;
            }
        } else {
            break;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(TokenKind, &str)> {
        tokens(text).map(|t| (t.kind, t.text(text))).collect()
    }

    #[test]
    fn kinds() {
        use TokenKind::*;
        assert_eq!(
            pairs("1,000.5 3d 45% co-founder don’t $5 #1 #a1 @ @_x www.a.b/c."),
            [
                (Number, "1,000.5"),
                (Word, "3d"),
                (Percent, "45%"),
                (Word, "co-founder"),
                (Word, "don’t"),
                (Punctuation, "$"),
                (Number, "5"),
                (Punctuation, "#"),
                (Number, "1"),
                (Hashtag, "#a1"),
                (Punctuation, "@"),
                (Mention, "@_x"),
                (Url, "www.a.b/c"),
                (Punctuation, "."),
            ]
        );
    }

    #[test]
    fn emoji_sequences() {
        use TokenKind::*;
        assert_eq!(
            pairs("👍🏽🇫🇷🇩🇪 👨‍👩‍👧 1️⃣ 🏳️‍🌈x"),
            [
                (Emoji, "👍🏽"),
                (Emoji, "🇫🇷"),
                (Emoji, "🇩🇪"),
                (Emoji, "👨‍👩‍👧"),
                (Emoji, "1️⃣"),
                (Emoji, "🏳️‍🌈"),
                (Word, "x")
            ]
        );
    }

    proptest::proptest! {
        /// The eight-bytes-at-a-time word runs agree with a byte-by-byte
        /// walk, letter counts included, from every start.
        #[test]
        fn word_runs_match_a_byte_walk(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"aZ09_ -'.\x00\x7f\x80\xc3\xffHw@".to_vec()),
                0..40,
            ),
        ) {
            for pos in 0..=bytes.len() {
                let mut end = pos;
                let (mut upper, mut lower) = (0u32, 0u32);
                while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                    upper += u32::from(bytes[end].is_ascii_uppercase());
                    lower += u32::from(bytes[end].is_ascii_lowercase());
                    end += 1;
                }
                proptest::prop_assert_eq!(ascii_word_run(&bytes, pos), end);
                proptest::prop_assert_eq!(ascii_word_run_counted(&bytes, pos), (end, upper | (lower << 16)));
            }
        }
    }

    #[test]
    fn unicode_words_and_spaces() {
        use TokenKind::*;
        assert_eq!(
            pairs("Café\u{00A0}東京タワー «ok»"),
            [
                (Word, "Café"),
                (Word, "東京タワー"),
                (Punctuation, "«"),
                (Word, "ok"),
                (Punctuation, "»")
            ]
        );
        assert!(tokens(" \n\t ").next().is_none());
    }
}
