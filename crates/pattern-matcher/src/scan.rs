//! The compiled dictionary and the scan: one aho-corasick automaton for every
//! literal, our own word-boundary checks, case folding, and the regexes.
//
// Design notes:
//
// - Every literal (entity aliases, keywords, context terms, exclusions,
//   negation words) goes into one leftmost-longest automaton, lowercased
//   char by char. Literals that fold to the same string share one automaton
//   pattern with several targets, so "crypto" can be both a keyword and a
//   context term.
// - Case: the automaton is case-sensitive over the lowercased literals,
//   and ASCII text (and any text when every literal is ASCII) is scanned in
//   an ASCII-lowercased copy held in a reused per-thread buffer: the same
//   bytes at the same offsets, so spans need no mapping. (An
//   ASCII-case-insensitive automaton scans the text in place but needs a
//   transition for both cases of every letter: twice the memory of a DFA,
//   1.5x that of a contiguous NFA, and a slower scan.) A non-ASCII char can
//   only take part in a match if some literal is non-ASCII, or if it
//   lowercases to ASCII (only U+212A KELVIN SIGN does); in those cases the
//   text is lowercased char by char into a buffer with a byte map back to
//   the original, and spans are mapped back.
// - Word boundaries are checked here after the automaton, not by a RegexSet
//   (which measured about 50x slower at 10k patterns). A literal whose first
//   (last) char is a word char needs a non-word char or the text's edge
//   before (after) it. Han, kana and Thai have no spaces between words, so
//   they never need a boundary. When the longest match fails only its right
//   boundary ("abc corp" in "abc corporation"), a search bounded to end
//   before it looks for a shorter literal at the same start ("abc"). After a failed match the
//   scan resumes one char later, so no match that could pass is skipped.
// - Regexes run as written on the original text; they are few and each has
//   its own literal prefilter.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use regex::Regex;

use crate::dictionary::{Dictionary, Pattern};
use crate::error::DictionaryError;
use crate::token::Span;

/// Lowercases `s` char by char (not `str::to_lowercase`, whose final-sigma
/// rule depends on context and would make folding of a text and of a
/// literal disagree).
pub(crate) fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// What a literal or regex stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Entity(u32),
    Keyword(u32),
    Context(u32),
    Exclusion(u32),
    Negation(u32),
}

/// One raw match, before token positions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub(crate) span: Span,
    pub(crate) target: Target,
}

#[derive(Clone, Copy, Debug)]
struct PatInfo {
    targets_start: u32,
    targets_end: u32,
    left: bool,
    right: bool,
}

#[derive(Debug)]
pub(crate) struct EntityInfo {
    pub(crate) id: Arc<str>,
    pub(crate) weight: f64,
}

#[derive(Debug)]
pub(crate) struct KeywordInfo {
    pub(crate) term: Arc<str>,
    pub(crate) category: Option<Arc<str>>,
    pub(crate) weight: f64,
}

#[derive(Debug)]
pub(crate) struct TermInfo {
    pub(crate) term: Arc<str>,
    /// The boost of a context term, the penalty of an exclusion.
    pub(crate) points: f64,
    pub(crate) veto: bool,
}

/// Which automaton to build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Automaton {
    /// A DFA up to [`Automaton::AUTO_DFA_MAX_PATTERNS`] literals (fastest,
    /// but its memory grows fast), a contiguous NFA above.
    #[default]
    Auto,
    /// Always a DFA.
    Dfa,
    /// Always a contiguous NFA (compact).
    Nfa,
}

impl Automaton {
    /// Up to how many literals [`Automaton::Auto`] builds a DFA.
    pub const AUTO_DFA_MAX_PATTERNS: usize = 2_000;
}

#[derive(Debug)]
pub(crate) struct Compiled {
    ac: Option<AhoCorasick>,
    pats: Vec<PatInfo>,
    targets: Vec<Target>,
    regexes: Vec<(Regex, Target)>,
    pub(crate) entities: Vec<EntityInfo>,
    pub(crate) keywords: Vec<KeywordInfo>,
    pub(crate) context: Vec<TermInfo>,
    pub(crate) exclusions: Vec<TermInfo>,
    pub(crate) negations: Vec<Arc<str>>,
    /// The subject of a clamp signal.
    pub(crate) empty: Arc<str>,
    non_ascii_literals: bool,
    /// The sum of every exclusion penalty, and whether any exclusion vetoes:
    /// early termination may stop only once nothing later can lower the
    /// score below 100.
    pub(crate) penalty_sum: f64,
    pub(crate) has_veto: bool,
    pattern_count: usize,
}

impl Compiled {
    pub(crate) fn new(dict: &Dictionary, automaton: Automaton) -> Result<Self, DictionaryError> {
        let mut literals: Vec<(String, Vec<Target>)> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut regexes = Vec::new();
        let mut add = |pattern: &Pattern, target: Target| -> Result<(), DictionaryError> {
            match pattern {
                Pattern::Literal(s) => {
                    let key = fold(s.trim());
                    if let Some(&i) = index.get(&key) {
                        if !literals[i].1.contains(&target) {
                            literals[i].1.push(target);
                        }
                    } else {
                        index.insert(key.clone(), literals.len());
                        literals.push((key, vec![target]));
                    }
                }
                Pattern::Regex(r) => {
                    let re = Regex::new(r).map_err(|e| DictionaryError::Compile {
                        message: format!("regex {r:?}: {e}"),
                    })?;
                    regexes.push((re, target));
                }
            }
            Ok(())
        };
        let mut entities = Vec::with_capacity(dict.entities().len());
        for (i, e) in dict.entities().iter().enumerate() {
            let t = Target::Entity(to_u32(i));
            for a in &e.aliases {
                add(&Pattern::Literal(a.clone()), t)?;
            }
            for p in &e.patterns {
                add(&Pattern::Regex(p.clone()), t)?;
            }
            entities.push(EntityInfo {
                id: e.id.as_str().into(),
                weight: e.weight,
            });
        }
        let mut keywords = Vec::with_capacity(dict.keywords().len());
        for (i, k) in dict.keywords().iter().enumerate() {
            add(&k.pattern, Target::Keyword(to_u32(i)))?;
            keywords.push(KeywordInfo {
                term: k.pattern.as_str().into(),
                category: k.category.as_deref().map(Into::into),
                weight: k.weight,
            });
        }
        let mut context = Vec::with_capacity(dict.context().len());
        for (i, c) in dict.context().iter().enumerate() {
            add(&c.pattern, Target::Context(to_u32(i)))?;
            context.push(TermInfo {
                term: c.pattern.as_str().into(),
                points: c.boost,
                veto: false,
            });
        }
        let mut exclusions = Vec::with_capacity(dict.exclusions().len());
        for (i, x) in dict.exclusions().iter().enumerate() {
            add(&x.pattern, Target::Exclusion(to_u32(i)))?;
            exclusions.push(TermInfo {
                term: x.pattern.as_str().into(),
                points: x.penalty,
                veto: x.veto,
            });
        }
        let mut negations = Vec::with_capacity(dict.negations().len());
        for (i, n) in dict.negations().iter().enumerate() {
            add(&Pattern::Literal(n.clone()), Target::Negation(to_u32(i)))?;
            negations.push(Arc::from(n.trim()));
        }
        drop(index);

        let mut pats = Vec::with_capacity(literals.len());
        let mut targets = Vec::with_capacity(literals.len());
        let mut non_ascii_literals = false;
        for (lit, ts) in &literals {
            non_ascii_literals |= !lit.is_ascii();
            let start = to_u32(targets.len());
            targets.extend_from_slice(ts);
            pats.push(PatInfo {
                targets_start: start,
                targets_end: to_u32(targets.len()),
                left: lit.chars().next().is_some_and(needs_boundary),
                right: lit.chars().next_back().is_some_and(needs_boundary),
            });
        }
        let ac = if literals.is_empty() {
            None
        } else {
            let kind = match automaton {
                Automaton::Dfa => AhoCorasickKind::DFA,
                Automaton::Auto if literals.len() <= Automaton::AUTO_DFA_MAX_PATTERNS => AhoCorasickKind::DFA,
                Automaton::Nfa | Automaton::Auto => AhoCorasickKind::ContiguousNFA,
            };
            // Case-sensitive: every literal is lowercase and the text is
            // lowercased before the scan. An ASCII-case-insensitive
            // automaton would need a transition for both cases of every
            // letter: 1.5x the memory for a contiguous NFA, 2x for a DFA.
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(kind))
                .build(literals.iter().map(|(l, _)| l.as_bytes()))
                .map_err(|e| DictionaryError::Compile {
                    message: e.to_string(),
                })?;
            Some(ac)
        };
        let penalty_sum = exclusions.iter().filter(|x| !x.veto).map(|x| x.points).sum();
        let has_veto = exclusions.iter().any(|x| x.veto);
        Ok(Self {
            ac,
            pats,
            targets,
            regexes,
            entities,
            keywords,
            context,
            exclusions,
            negations,
            empty: Arc::from(""),
            non_ascii_literals,
            penalty_sum,
            has_veto,
            pattern_count: dict.pattern_count(),
        })
    }

    pub(crate) fn pattern_count(&self) -> usize {
        self.pattern_count
    }

    /// Approximate heap bytes held (automaton plus tables).
    pub(crate) fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        let names: usize = self.entities.iter().map(|e| e.id.len() + 16).sum::<usize>()
            + self.keywords.iter().map(|k| k.term.len() + 16).sum::<usize>()
            + self.context.iter().map(|k| k.term.len() + 16).sum::<usize>()
            + self.exclusions.iter().map(|k| k.term.len() + 16).sum::<usize>();
        self.ac.as_ref().map_or(0, AhoCorasick::memory_usage)
            + self.pats.capacity() * size_of::<PatInfo>()
            + self.targets.capacity() * size_of::<Target>()
            + self.entities.capacity() * size_of::<EntityInfo>()
            + self.keywords.capacity() * size_of::<KeywordInfo>()
            + (self.context.capacity() + self.exclusions.capacity()) * size_of::<TermInfo>()
            + names
    }

    /// Every hit in `text`, sorted by start. `stop` is asked after each
    /// literal hit whether the scan may end early.
    ///
    /// `lower` is a buffer reused from text to text: the automaton is
    /// case-sensitive over lowercase literals, so it scans an
    /// ASCII-lowercased copy of the text (same offsets, same non-ASCII
    /// bytes, so boundaries are checked on the original).
    pub(crate) fn scan(
        &self,
        text: &str,
        hits: &mut Vec<Hit>,
        lower: &mut Vec<u8>,
        stop: &mut dyn FnMut(&str, &[Hit]) -> bool,
    ) -> bool {
        let mut stopped = false;
        if let Some(ac) = &self.ac {
            let folded;
            let needs_fold = !text.is_ascii() && (self.non_ascii_literals || text.contains('\u{212A}'));
            if needs_fold {
                folded = Folded::new(text);
                stopped = self.scan_literals(ac, folded.text.as_bytes(), &folded.text, hits, stop);
                for h in hits.iter_mut() {
                    h.span = folded.original(h.span, text);
                }
            } else {
                lower.clear();
                lower.extend_from_slice(text.as_bytes());
                lower.make_ascii_lowercase();
                stopped = self.scan_literals(ac, lower, text, hits, stop);
            }
        }
        if !stopped && !self.regexes.is_empty() {
            let literal_hits = hits.len();
            for (re, target) in &self.regexes {
                for m in re.find_iter(text) {
                    if !m.is_empty() {
                        hits.push(Hit {
                            span: Span::new(m.start(), m.end()),
                            target: *target,
                        });
                    }
                }
            }
            if hits.len() > literal_hits {
                hits.sort_by_key(|h| h.span.start);
            }
        }
        stopped
    }

    /// The automaton runs over `bytes`, a lowercased `hay`: the same length,
    /// differing at most in ASCII letters, so word boundaries (which do not
    /// depend on case) are checked on `hay`.
    fn scan_literals(
        &self,
        ac: &AhoCorasick,
        bytes: &[u8],
        hay: &str,
        hits: &mut Vec<Hit>,
        stop: &mut dyn FnMut(&str, &[Hit]) -> bool,
    ) -> bool {
        debug_assert_eq!(bytes.len(), hay.len());
        let mut pos = 0;
        while pos < bytes.len() {
            let Some(m) = ac.find(Input::new(bytes).range(pos..)) else {
                break;
            };
            let (start, mut end) = (m.start(), m.end());
            let mut info = self.pats[m.pattern().as_usize()];
            if info.left && !boundary_before(hay, start) {
                pos = resume_after_miss(bytes, start);
                continue;
            }
            if info.right && !boundary_after(hay, end) {
                match self.shorter_at(ac, bytes, hay, start, end) {
                    Some((e, i)) => (end, info) = (e, i),
                    None => {
                        pos = resume_after_miss(bytes, start);
                        continue;
                    }
                }
            }
            for &target in &self.targets[info.targets_start as usize..info.targets_end as usize] {
                hits.push(Hit {
                    span: Span::new(start, end),
                    target,
                });
            }
            if stop(hay, hits) {
                return true;
            }
            pos = end;
        }
        false
    }

    /// The longest literal starting at `start`, shorter than `end`, whose
    /// right boundary holds. An unanchored leftmost-longest search over
    /// `start..end - 1` finds it: the leftmost match starts at `start` if
    /// any literal does (so no anchored automaton, which would double a
    /// DFA's memory, is needed).
    fn shorter_at(
        &self,
        ac: &AhoCorasick,
        bytes: &[u8],
        hay: &str,
        start: usize,
        mut end: usize,
    ) -> Option<(usize, PatInfo)> {
        loop {
            if end <= start + 1 {
                return None;
            }
            let m = ac.find(Input::new(bytes).range(start..end - 1))?;
            if m.start() != start {
                return None;
            }
            let info = self.pats[m.pattern().as_usize()];
            if !info.right || boundary_after(hay, m.end()) {
                return Some((m.end(), info));
            }
            end = m.end();
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Where to resume after no literal could be taken at `start`.
///
/// The next char, except inside a run of ASCII word bytes (letters, digits,
/// `_`): a literal starting at such a byte starts with a word char, so it
/// needs a boundary before it, and a word byte before it denies that. No
/// match that could pass its boundaries starts inside the run, so the scan
/// skips to its end (one find per word instead of one per char of a word
/// like "know", which holds the negation "no").
fn resume_after_miss(bytes: &[u8], start: usize) -> usize {
    if crate::token::is_ascii_word_byte(bytes[start]) {
        crate::token::ascii_word_run(bytes, start + 1)
    } else {
        next_char(bytes, start)
    }
}

fn next_char(bytes: &[u8], pos: usize) -> usize {
    let mut p = pos + 1;
    while p < bytes.len() && (bytes[p] as i8) < -0x40 {
        p += 1;
    }
    p
}

/// Scripts written without spaces between words: no boundary there.
fn is_unspaced_script(c: char) -> bool {
    matches!(
        c,
        '\u{0E00}'..='\u{0E7F}'
            | '\u{3040}'..='\u{30FF}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{2FA1F}'
    )
}

/// Whether a literal edge char asks for a word boundary next to it.
fn needs_boundary(c: char) -> bool {
    is_boundary_word_char(c)
}

fn is_boundary_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        (c.is_alphanumeric() || matches!(c, '\u{0300}'..='\u{036F}')) && !is_unspaced_script(c)
    }
}

fn boundary_before(hay: &str, pos: usize) -> bool {
    let bytes = hay.as_bytes();
    if pos == 0 {
        return true;
    }
    let b = bytes[pos - 1];
    if b < 0x80 {
        return !(b.is_ascii_alphanumeric() || b == b'_');
    }
    crate::token::char_before(hay, pos).is_none_or(|c| !is_boundary_word_char(c))
}

fn boundary_after(hay: &str, pos: usize) -> bool {
    let bytes = hay.as_bytes();
    if pos >= bytes.len() {
        return true;
    }
    let b = bytes[pos];
    if b < 0x80 {
        return !(b.is_ascii_alphanumeric() || b == b'_');
    }
    !is_boundary_word_char(crate::token::char_at(hay, pos))
}

/// A lowercased copy of a text with a map back to the original bytes.
struct Folded {
    text: String,
    /// For each byte of `text`, the start of the original char it came from;
    /// one more entry for the end.
    map: Vec<u32>,
}

impl Folded {
    fn new(original: &str) -> Self {
        let mut text = String::with_capacity(original.len() + 8);
        let mut map = Vec::with_capacity(original.len() + 9);
        for (i, c) in original.char_indices() {
            let before = text.len();
            if c.is_ascii() {
                text.push(c.to_ascii_lowercase());
            } else {
                text.extend(c.to_lowercase());
            }
            map.resize(text.len(), to_u32(i));
            debug_assert!(text.len() > before);
        }
        map.push(to_u32(original.len()));
        Self { text, map }
    }

    /// The span of the original text that `span` of the folded text covers,
    /// widened to whole original chars.
    fn original(&self, span: Span, original: &str) -> Span {
        let start = self.map[span.start] as usize;
        let last = self.map[span.end - 1] as usize;
        let end = last + crate::token::char_at(original, last).len_utf8();
        Span::new(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_maps_back_to_char_boundaries() {
        let text = "İSTANBUL Ünïcode";
        let f = Folded::new(text);
        assert_eq!(f.text, "i\u{307}stanbul ünïcode");
        // "i" alone covers half of the folded "İ": it maps to the whole char.
        assert_eq!(f.original(Span::new(0, 1), text), Span::new(0, 2));
        let at = f.text.find("ünïcode").unwrap();
        let span = f.original(Span::new(at, f.text.len()), text);
        assert_eq!(span.text(text), "Ünïcode");
    }

    #[test]
    fn boundaries() {
        assert!(boundary_before("a b", 2));
        assert!(!boundary_before("ab", 1));
        assert!(!boundary_before("éb", 2));
        assert!(boundary_before("東b", 3));
        assert!(boundary_after("a!", 1));
        assert!(!boundary_after("aé", 1));
        assert!(needs_boundary('a') && !needs_boundary('$') && !needs_boundary('東'));
    }
}
