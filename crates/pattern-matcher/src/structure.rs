//! Structure analysis of a post: length, tags, emoji, questions, numbers,
//! thread markers, the first-line hook, casing and lines.
//
// Design: one pass over the tokens (shared with the scorer when called from
// `Matcher::analyze`) plus one pass over the bytes for lines; the hook looks
// only at the first non-empty line. Positions are byte spans and token
// indices, the same units the matcher reports.

use serde::Serialize;

use crate::token::{
    CLASS, LOWER, NOT_COUNTED, Span, Token, TokenKind, Tokens, UPPER, starts_with_ignore_case, tokens,
};

/// Something found in a post, with where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    /// Where it is in the text.
    pub span: Span,
    /// The index of its token in [`tokenize`](crate::tokenize)'s output.
    pub token: usize,
}

/// The kind of hook the first line opens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HookKind {
    /// The first line asks something (contains `?`).
    Question,
    /// The first line starts with a number or a list marker (`5 ways…`,
    /// `1.`, `-`, `•`).
    NumberOrList,
    /// The first line ends with `!`, is shouted in capitals, or opens with a
    /// claim word (`breaking`, `unpopular opinion`, `hot take`, `never`,
    /// `always`, `nobody`, `everyone`, `stop`, `the best`, `the only`,
    /// `the biggest`).
    BoldClaim,
    /// The first line opens with a quotation mark or `>`.
    Quote,
    /// None of the above (or no text).
    Other,
}

/// How the letters of a post are cased.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Casing {
    /// No cased letters at all.
    None,
    /// Every cased letter is lowercase.
    Lower,
    /// Every cased letter is uppercase (and there are at least two).
    Upper,
    /// Every word starts with a capital and continues in lowercase.
    Title,
    /// The first word starts with a capital, the rest is mostly lowercase.
    Sentence,
    /// Anything else.
    Mixed,
}

/// A thread marker: `1/`, `2/5`, `(1/3)` or `🧵`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ThreadMarker {
    /// Where it is.
    pub span: Span,
    /// The post's place in the thread, for numbered markers.
    pub index: Option<u32>,
    /// The thread's length, for `n/m` markers.
    pub total: Option<u32>,
}

/// The line structure of a post.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Lines {
    /// Lines, counting empty ones (a text without `\n` has one).
    pub count: usize,
    /// Lines that are empty or only whitespace.
    pub blank: usize,
    /// The longest line, in chars.
    pub longest_chars: usize,
    /// The first non-blank line, trimmed.
    pub first: Span,
}

/// The structure of one post, from [`analyze_structure`] or
/// [`Matcher::analyze`](crate::Matcher::analyze).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Structure {
    /// Length in bytes.
    pub bytes: usize,
    /// Length in chars (Unicode scalar values).
    pub chars: usize,
    /// Words: tokens that are words, numbers, percentages, mentions,
    /// hashtags or cashtags.
    pub words: usize,
    /// All tokens.
    pub tokens: usize,
    /// `#hashtags`.
    pub hashtags: Vec<Occurrence>,
    /// `@mentions`.
    pub mentions: Vec<Occurrence>,
    /// `$cashtags`.
    pub cashtags: Vec<Occurrence>,
    /// URLs.
    pub urls: Vec<Occurrence>,
    /// Emoji (a ZWJ sequence or a flag counts once).
    pub emoji: Vec<Occurrence>,
    /// Numbers (not percentages).
    pub numbers: Vec<Occurrence>,
    /// Percentages.
    pub percentages: Vec<Occurrence>,
    /// `?` marks.
    pub question_marks: usize,
    /// `!` marks.
    pub exclamation_marks: usize,
    /// The thread marker, if any (the first one).
    pub thread: Option<ThreadMarker>,
    /// The kind of hook on the first line.
    pub hook: HookKind,
    /// How the letters are cased.
    pub casing: Casing,
    /// Uppercase letters over cased letters (0 when there are none).
    pub uppercase_ratio: f32,
    /// Lines.
    pub lines: Lines,
}

impl Structure {
    /// Whether the post asks a question (has a `?`).
    #[must_use]
    pub fn is_question(&self) -> bool {
        self.question_marks > 0
    }

    /// Whether the post exclaims (has a `!`).
    #[must_use]
    pub fn is_exclamation(&self) -> bool {
        self.exclamation_marks > 0
    }

    /// Whether the post is part of a thread.
    #[must_use]
    pub fn is_thread(&self) -> bool {
        self.thread.is_some()
    }
}

/// The structure of `text`.
///
/// ```
/// use brisk_pattern_matcher::{HookKind, analyze_structure};
///
/// let s = analyze_structure("Why is $ABC up 12%? 🧵\nA thread #markets @desk 1/");
/// assert_eq!(s.hook, HookKind::Question);
/// assert_eq!((s.cashtags.len(), s.hashtags.len(), s.mentions.len()), (1, 1, 1));
/// assert_eq!(s.percentages.len(), 1);
/// assert!(s.is_question() && s.is_thread());
/// assert_eq!(s.lines.count, 2);
/// ```
#[must_use]
pub fn analyze_structure(text: &str) -> Structure {
    let mut s = Structure::empty();
    analyze_streaming(text, &mut s, |_, _| {});
    s
}

impl Structure {
    /// Nothing found yet (no list allocates).
    pub(crate) fn empty() -> Self {
        Self {
            bytes: 0,
            chars: 0,
            words: 0,
            tokens: 0,
            hashtags: Vec::new(),
            mentions: Vec::new(),
            cashtags: Vec::new(),
            urls: Vec::new(),
            emoji: Vec::new(),
            numbers: Vec::new(),
            percentages: Vec::new(),
            question_marks: 0,
            exclamation_marks: 0,
            thread: None,
            hook: HookKind::Other,
            casing: Casing::None,
            uppercase_ratio: 0.0,
            lines: Lines::default(),
        }
    }
}

/// The structure of `text` into `s` (as [`Structure::empty`] left it),
/// in one pass over its tokens, as [`tokens`] yields them (no token list
/// is built); `on_token(index, token)` sees every token, so the scorer can
/// place its hits in the same pass.
// Filled in place and always inlined: the caller's result (a `Structure`
// is about 330 bytes) is not built elsewhere and copied.
#[inline(always)]
pub(crate) fn analyze_streaming(text: &str, s: &mut Structure, mut on_token: impl FnMut(usize, Token)) {
    let scan = ByteScan::of(text.as_bytes());
    let chars = scan.chars;
    let lines = lines(text, chars, scan.newline);
    s.bytes = text.len();
    s.chars = chars;
    s.lines = lines;
    let bytes = text.as_bytes();
    let mut casing = CasingCounter::default();
    // The kind of the first token of the first non-blank line, for the hook.
    let mut first_kind: Option<TokenKind> = None;
    let mut iter = tokens(text);
    let mut i = 0;
    while let Some((t, letters)) = iter.next_counted() {
        on_token(i, t);
        if first_kind.is_none() && t.span.start >= lines.first.start {
            first_kind = Some(t.kind);
        }
        let at = Occurrence {
            span: t.span,
            token: i,
        };
        match t.kind {
            TokenKind::Word => {
                s.words += 1;
                if letters != NOT_COUNTED {
                    // Counted by the tokenizer as it found the word's end.
                    casing.counted(
                        bytes[t.span.start],
                        letters as usize & 0xFFFF,
                        letters as usize >> 16,
                    );
                } else if !casing.ascii_word(&bytes[t.span.start..t.span.end]) {
                    casing.word(t.text(text));
                }
            }
            TokenKind::Number => {
                s.words += 1;
                s.numbers.push(at);
                if s.thread.is_none() {
                    s.thread = numbered_marker(text, t, iter.clone());
                }
            }
            TokenKind::Percent => {
                s.words += 1;
                s.percentages.push(at);
            }
            TokenKind::Hashtag => {
                s.words += 1;
                s.hashtags.push(at);
            }
            TokenKind::Mention => {
                s.words += 1;
                s.mentions.push(at);
            }
            TokenKind::Cashtag => {
                s.words += 1;
                s.cashtags.push(at);
            }
            TokenKind::Url => s.urls.push(at),
            TokenKind::Emoji => {
                if s.thread.is_none() && t.text(text).starts_with('\u{1F9F5}') {
                    s.thread = Some(ThreadMarker {
                        span: t.span,
                        index: None,
                        total: None,
                    });
                }
                s.emoji.push(at);
            }
            TokenKind::Punctuation => match bytes[t.span.start] {
                b'?' => s.question_marks += 1,
                b'!' => s.exclamation_marks += 1,
                _ => {}
            },
        }
        i += 1;
    }
    s.tokens = i;
    (s.casing, s.uppercase_ratio) = casing.finish();
    // Without a newline the first line is the trimmed text: it holds a `?`
    // if the text does.
    let question = (!scan.newline).then_some(scan.question);
    s.hook = hook(text, s.lines.first, first_kind, question);
}

/// What one pass over a text's bytes tells: its chars, and whether it holds
/// a newline or a `?`.
struct ByteScan {
    chars: usize,
    newline: bool,
    question: bool,
}

impl ByteScan {
    /// By blocks of 16 bytes, each byte in its own lane and no early
    /// exit, which the compiler turns into vector compares and adds: for
    /// tweet-sized texts cheaper than `chars().count()` and two `memchr`s.
    /// A last partial block is read as the text's last 16 bytes, counting
    /// chars only in the lanes not read before.
    fn of(bytes: &[u8]) -> Self {
        let mut lanes = Lanes::default();
        let mut chars = 0;
        let mut blocks = bytes.chunks_exact(16);
        let mut in_lanes = 0;
        for block in blocks.by_ref() {
            lanes.add(block.try_into().unwrap_or(&[b' '; 16]));
            in_lanes += 1;
            // A lane counts at most 255 blocks.
            if in_lanes == 255 {
                chars += lanes.take_starts();
                in_lanes = 0;
            }
        }
        let rest = blocks.remainder().len();
        if rest > 0 && bytes.len() >= 16 {
            // The last 16 bytes, counting chars only in the lanes of the
            // `rest` bytes not counted yet.
            let last = &bytes[bytes.len() - 16..];
            let mask = &TAIL_MASK[rest..rest + 16];
            lanes.add_masked(
                last.try_into().unwrap_or(&[b' '; 16]),
                mask.try_into().unwrap_or(&[0; 16]),
            );
        } else if bytes.len() < 16 {
            lanes.add_short(bytes);
        }
        chars += lanes.take_starts();
        Self {
            chars,
            newline: u128::from_ne_bytes(lanes.newline) != 0,
            question: u128::from_ne_bytes(lanes.question) != 0,
        }
    }
}

/// 16 zeros then 16 ones: `TAIL_MASK[n..n + 16]` has ones in its last
/// `n` lanes.
const TAIL_MASK: [u8; 32] = {
    let mut t = [0u8; 32];
    let mut i = 16;
    while i < 32 {
        t[i] = 1;
        i += 1;
    }
    t
};

/// [`ByteScan`]'s per-lane counters.
#[derive(Default)]
struct Lanes {
    /// Chars starting in the lane: bytes that are not continuation bytes
    /// (`0b10xx_xxxx`).
    starts: [u8; 16],
    newline: [u8; 16],
    question: [u8; 16],
}

impl Lanes {
    #[inline(always)]
    fn add(&mut self, block: &[u8; 16]) {
        for (i, &b) in block.iter().enumerate() {
            self.starts[i] += u8::from((b as i8) >= -0x40);
            self.newline[i] |= u8::from(b == b'\n');
            self.question[i] |= u8::from(b == b'?');
        }
    }

    /// [`Lanes::add`], counting chars only in the lanes where `mask` is 1.
    #[inline(always)]
    fn add_masked(&mut self, block: &[u8; 16], mask: &[u8; 16]) {
        for (i, &b) in block.iter().enumerate() {
            self.starts[i] += u8::from((b as i8) >= -0x40) & mask[i];
            self.newline[i] |= u8::from(b == b'\n');
            self.question[i] |= u8::from(b == b'?');
        }
    }

    /// A text shorter than a block, byte by byte.
    fn add_short(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let lane = i % 16;
            self.starts[lane] += u8::from((b as i8) >= -0x40);
            self.newline[lane] |= u8::from(b == b'\n');
            self.question[lane] |= u8::from(b == b'?');
        }
    }

    /// The sum of the `starts` lanes, which it clears: in two `u64`s,
    /// adding neighbouring lanes into 16-bit lanes (at most 510 each), then
    /// those by a multiplication.
    fn take_starts(&mut self) -> usize {
        const PAIRS: u64 = 0x00FF_00FF_00FF_00FF;
        let all = u128::from_ne_bytes(self.starts);
        self.starts = [0; 16];
        #[allow(clippy::cast_possible_truncation)] // the two halves
        let (a, b) = (all as u64, (all >> 64) as u64);
        let pairs = (a & PAIRS) + ((a >> 8) & PAIRS) + (b & PAIRS) + ((b >> 8) & PAIRS);
        #[allow(clippy::cast_possible_truncation)] // at most 16 * 255
        let sum = (pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48) as usize;
        sum
    }
}

fn char_count(text: &str) -> usize {
    // std's count is word-at-a-time over the bytes.
    text.chars().count()
}

/// Whether `bytes` holds `needle` (an ASCII byte). For tweet-sized texts
/// this is cheaper than `memchr`: blocks of 16 bytes without an early exit
/// inside a block, which the compiler turns into vector compares.
fn contains_byte(bytes: &[u8], needle: u8) -> bool {
    let mut blocks = bytes.chunks_exact(16);
    let found = blocks
        .by_ref()
        .any(|block| block.iter().fold(false, |seen, &b| seen | (b == needle)));
    found || blocks.remainder().contains(&needle)
}

fn lines(text: &str, chars: usize, newline: bool) -> Lines {
    let mut out = Lines::default();
    if !newline {
        // The common case: one line, already counted.
        let trimmed = text.trim();
        let lead = text.len() - text.trim_start().len();
        out.count = 1;
        out.blank = usize::from(trimmed.is_empty());
        out.longest_chars = chars - usize::from(text.ends_with('\r'));
        out.first = Span::new(lead, lead + trimmed.len());
        if trimmed.is_empty() {
            out.first = Span::default();
        }
        return out;
    }
    let mut first: Option<Span> = None;
    let mut start = 0;
    for line in text.split('\n') {
        out.count += 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            out.blank += 1;
        } else if first.is_none() {
            let lead = line.len() - line.trim_start().len();
            first = Some(Span::new(start + lead, start + lead + trimmed.len()));
        }
        out.longest_chars = out.longest_chars.max(char_count(line.trim_end_matches('\r')));
        start += line.len() + 1;
    }
    out.first = first.unwrap_or_default();
    out
}

/// `n/` or `n/m` (optionally in parentheses) at the number token `num`;
/// `rest` yields the tokens after it.
fn numbered_marker(text: &str, num: Token, mut rest: Tokens<'_>) -> Option<ThreadMarker> {
    let slash = rest.next()?;
    if slash.span.start != num.span.end || slash.text(text) != "/" {
        return None;
    }
    let index: u32 = num.text(text).parse().ok()?;
    let mut span = Span::new(num.span.start, slash.span.end);
    let mut total = None;
    if let Some(t) = rest.next()
        && t.kind == TokenKind::Number
        && t.span.start == slash.span.end
    {
        total = t.text(text).parse().ok();
        span.end = t.span.end;
    }
    // A date like 1/2/2024 or a fraction inside a word is not a marker.
    let next = text[span.end..].chars().next();
    let prev = text[..span.start].chars().next_back();
    let joined = |c: char| c.is_alphanumeric() || matches!(c, '/' | '.' | ',');
    if next.is_some_and(joined) || prev.is_some_and(joined) || index == 0 || total.is_some_and(|t| t < index)
    {
        return None;
    }
    Some(ThreadMarker {
        span,
        index: Some(index),
        total,
    })
}

#[derive(Default)]
struct CasingCounter {
    upper: usize,
    lower: usize,
    words: usize,
    capitalised_words: usize,
    first_capitalised: Option<bool>,
    inner_upper: usize,
}

impl CasingCounter {
    fn word(&mut self, word: &str) {
        let mut cased = 0;
        for (n, c) in word.chars().enumerate() {
            if c.is_uppercase() {
                self.upper += 1;
                cased += 1;
                if n == 0 {
                    self.capitalised_words += 1;
                } else {
                    self.inner_upper += 1;
                }
            } else if c.is_lowercase() {
                self.lower += 1;
                cased += 1;
            }
        }
        if cased > 0 {
            self.words += 1;
            self.first_capitalised
                .get_or_insert_with(|| word.chars().next().is_some_and(char::is_uppercase));
        }
    }

    /// Counts an ASCII word in one pass over its bytes (a table lookup
    /// each); returns false, having counted nothing, if it is not ASCII.
    fn ascii_word(&mut self, word: &[u8]) -> bool {
        let (mut upper, mut lower, mut high) = (0, 0, 0u8);
        for &b in word {
            let class = CLASS[b as usize];
            upper += usize::from(class & UPPER != 0);
            lower += usize::from(class & LOWER != 0);
            high |= b;
        }
        if high >= 0x80 {
            return false;
        }
        self.counted(word[0], upper, lower);
        true
    }

    /// Counts an ASCII word whose first byte is `first` and which has
    /// `upper` uppercase and `lower` lowercase letters.
    #[inline]
    fn counted(&mut self, first: u8, upper: usize, lower: usize) {
        if upper + lower == 0 {
            return;
        }
        let first_upper = first.is_ascii_uppercase();
        self.upper += upper;
        self.lower += lower;
        self.words += 1;
        self.capitalised_words += usize::from(first_upper);
        self.inner_upper += upper - usize::from(first_upper);
        self.first_capitalised.get_or_insert(first_upper);
    }

    #[allow(clippy::cast_precision_loss)] // letter counts in a post are far below 2^24
    fn finish(&self) -> (Casing, f32) {
        let total = self.upper + self.lower;
        if total == 0 {
            return (Casing::None, 0.0);
        }
        let ratio = self.upper as f32 / total as f32;
        let casing = if self.upper == 0 {
            Casing::Lower
        } else if self.lower == 0 && self.upper >= 2 {
            Casing::Upper
        } else if self.capitalised_words == self.words && self.inner_upper == 0 && self.words > 1 {
            Casing::Title
        } else if self.first_capitalised == Some(true) && self.inner_upper == 0 {
            Casing::Sentence
        } else {
            Casing::Mixed
        };
        (casing, ratio)
    }
}

const CLAIM_OPENERS: &[&str] = &[
    "breaking",
    "unpopular opinion",
    "hot take",
    "never",
    "always",
    "nobody",
    "everyone",
    "stop",
    "the best",
    "the only",
    "the biggest",
];

/// The hook of the first line, `first`; `question` says whether it holds a
/// `?` when the caller knows.
fn hook(text: &str, first: Span, first_kind: Option<TokenKind>, question: Option<bool>) -> HookKind {
    if first.is_empty() {
        return HookKind::Other;
    }
    let line = first.text(text);
    if line.starts_with(['"', '\'', '“', '‘', '«', '„', '>']) {
        return HookKind::Quote;
    }
    if question.unwrap_or_else(|| contains_byte(line.as_bytes(), b'?')) {
        return HookKind::Question;
    }
    let numbered = matches!(first_kind, Some(TokenKind::Number | TokenKind::Percent));
    if numbered || line.starts_with(['-', '•', '*', '–']) {
        return HookKind::NumberOrList;
    }
    // Cheapest test first; each is a pure function of the line.
    let shouted =
        || !line.chars().any(char::is_lowercase) && line.chars().filter(|c| c.is_alphabetic()).count() >= 4;
    if line.trim_end().ends_with('!') || shouted() || claim(line) {
        return HookKind::BoldClaim;
    }
    HookKind::Other
}

/// Whether `line` opens with a claim word. Every opener starts with an
/// ASCII letter: only those that share the line's first letter (a table
/// lookup) are compared.
fn claim(line: &str) -> bool {
    let mut candidates = OPENERS_BY_FIRST[usize::from(line.as_bytes()[0].to_ascii_lowercase())];
    while candidates != 0 {
        let w = CLAIM_OPENERS[candidates.trailing_zeros() as usize];
        candidates &= candidates - 1;
        if starts_with_ignore_case(line.as_bytes(), w.as_bytes())
            && line[w.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric())
        {
            return true;
        }
    }
    false
}

/// For each (lowercase) first byte, the [`CLAIM_OPENERS`] that start with
/// it, as bits.
const OPENERS_BY_FIRST: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < CLAIM_OPENERS.len() {
        t[CLAIM_OPENERS[i].as_bytes()[0] as usize] |= 1 << i;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks() {
        assert_eq!(analyze_structure("\n  Is this it?\nyes").hook, HookKind::Question);
        assert_eq!(analyze_structure("5 ways to win").hook, HookKind::NumberOrList);
        assert_eq!(
            analyze_structure("- first\n- second").hook,
            HookKind::NumberOrList
        );
        assert_eq!(analyze_structure("“Ship it,” she said").hook, HookKind::Quote);
        assert_eq!(
            analyze_structure("This changes everything!").hook,
            HookKind::BoldClaim
        );
        assert_eq!(analyze_structure("BIG NEWS TODAY").hook, HookKind::BoldClaim);
        assert_eq!(
            analyze_structure("Unpopular opinion: tabs").hook,
            HookKind::BoldClaim
        );
        assert_eq!(analyze_structure("Stopwatch on the desk").hook, HookKind::Other);
        assert_eq!(analyze_structure("").hook, HookKind::Other);
    }

    #[test]
    fn casing() {
        assert_eq!(analyze_structure("all lower here").casing, Casing::Lower);
        assert_eq!(analyze_structure("ALL UPPER").casing, Casing::Upper);
        assert_eq!(analyze_structure("Title Case Here").casing, Casing::Title);
        assert_eq!(analyze_structure("Sentence case here.").casing, Casing::Sentence);
        assert_eq!(analyze_structure("miXed CaSe").casing, Casing::Mixed);
        assert_eq!(analyze_structure("123 !!").casing, Casing::None);
    }

    proptest::proptest! {
        /// The blockwise byte scan agrees with `chars().count()` and
        /// `contains`, at every length (blocks, tails, short texts).
        #[test]
        fn byte_scan_matches_std(text in "[a ?\n\té東🧵]{0,80}") {
            let scan = ByteScan::of(text.as_bytes());
            proptest::prop_assert_eq!(scan.chars, text.chars().count());
            proptest::prop_assert_eq!(scan.newline, text.contains('\n'));
            proptest::prop_assert_eq!(scan.question, text.contains('?'));
        }
    }

    #[test]
    fn byte_scan_of_long_texts() {
        // Past 255 blocks a lane's count is flushed before it overflows.
        for text in [
            "é".repeat(9000) + "?",
            "a\n".repeat(5001),
            "東".repeat(3000) + "x",
        ] {
            let scan = ByteScan::of(text.as_bytes());
            assert_eq!(scan.chars, text.chars().count());
            assert_eq!(
                (scan.newline, scan.question),
                (text.contains('\n'), text.contains('?'))
            );
        }
    }

    #[test]
    fn threads_and_lines() {
        let s = analyze_structure("(2/5) more\r\n\n  last line that is longer  ");
        let t = s.thread.unwrap();
        assert_eq!((t.index, t.total), (Some(2), Some(5)));
        assert_eq!((s.lines.count, s.lines.blank), (3, 1));
        assert_eq!(s.lines.longest_chars, 28);
        assert!(analyze_structure("on 1/2/2024 we met").thread.is_none());
        assert!(analyze_structure("score 3/2").thread.is_none());
        assert_eq!(analyze_structure("🧵 here").thread.unwrap().index, None);
        assert_eq!(analyze_structure("héllo wörld").chars, 11);
    }
}
