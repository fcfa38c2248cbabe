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
//   place, each byte ASCII-lowercased by a table as the scan loop reads it
//   (our own loop over aho-corasick's `Automaton` trait, which also saves
//   `AhoCorasick::find`'s setup on each of the several searches per text),
//   so spans need no mapping. (An
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
use std::sync::atomic::{AtomicU64, Ordering};

use aho_corasick::automaton::Automaton as _;
use aho_corasick::{Anchored, MatchKind, StartKind, dfa, nfa};
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
    /// Where it is in the original text.
    pub(crate) span: Span,
    pub(crate) target: Target,
    /// Where it is in the scanned text, [`ScanBuffers::scanned`]: for a
    /// literal, the literal's bytes once ASCII-lowercased. Equal to `span`
    /// for regex hits and when the text was scanned in place.
    pub(crate) lit: (u32, u32),
}

// A pattern's targets and boundary flags, packed in one u32 (the
// per-pattern table is the largest of brisk's own tables at 100k
// patterns): bit 31 asks for a boundary before, bit 30 after, bits 27..30
// are the kind of target (`TAG_MULTI`: several targets, listed in
// `multi_targets`), bits 0..27 the index.
const LEFT: u32 = 1 << 31;
const RIGHT: u32 = 1 << 30;
const TAG_SHIFT: u32 = 27;
const INDEX_MASK: u32 = (1 << TAG_SHIFT) - 1;
const TAG_MULTI: u32 = 7;

impl Target {
    /// Packed into tag and index bits, or `None` if the index needs more
    /// than 27 bits.
    fn pack(self) -> Option<u32> {
        let (tag, index) = match self {
            Target::Entity(i) => (0, i),
            Target::Keyword(i) => (1, i),
            Target::Context(i) => (2, i),
            Target::Exclusion(i) => (3, i),
            Target::Negation(i) => (4, i),
        };
        (index <= INDEX_MASK).then_some((tag << TAG_SHIFT) | index)
    }

    /// The target packed in `bits` (any flag bits are ignored).
    #[inline]
    fn unpack(bits: u32) -> Target {
        let index = bits & INDEX_MASK;
        match (bits >> TAG_SHIFT) & 7 {
            0 => Target::Entity(index),
            1 => Target::Keyword(index),
            2 => Target::Context(index),
            3 => Target::Exclusion(index),
            _ => Target::Negation(index),
        }
    }
}

#[derive(Debug)]
pub(crate) struct EntityInfo {
    pub(crate) id: Arc<str>,
    pub(crate) weight: f64,
}

/// What keywords share: their weight and category. A dictionary has few
/// distinct pairs, so each keyword holds only the index of its pair.
#[derive(Debug)]
struct KeywordClass {
    weight: f64,
    category: Option<Arc<str>>,
}

/// A keyword's class index; with `TERM_STORED`, its term is in
/// `Compiled::keyword_terms` (a regex, or a literal not written in
/// lowercase); without it, the term is the literal itself, which is the
/// matched bytes of the scanned text.
const TERM_STORED: u32 = 1 << 31;

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
    /// Unique in the process: the key of [`TermCache`] entries.
    id: u64,
    ac: Option<Engine>,
    /// Per automaton pattern: its packed targets and boundary flags.
    pats: Vec<u32>,
    /// For patterns with several targets: `multi_starts[i]..multi_starts[i + 1]`
    /// of `multi_targets` (packed targets).
    multi_starts: Vec<u32>,
    multi_targets: Vec<u32>,
    regexes: Vec<(Regex, Target)>,
    pub(crate) entities: Vec<EntityInfo>,
    /// Per keyword: its class index, and `TERM_STORED`.
    keywords: Vec<u32>,
    keyword_classes: Vec<KeywordClass>,
    /// The stored terms, by keyword index (sorted).
    keyword_terms: Vec<(u32, Arc<str>)>,
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
                    if key.is_empty() {
                        // Rejected by validation; never an automaton pattern
                        // (the scan loop assumes none is empty).
                        return Ok(());
                    }
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
        let mut keyword_classes = Vec::new();
        let mut keyword_terms = Vec::new();
        let mut classes: std::collections::HashMap<(u64, Option<&str>), u32> =
            std::collections::HashMap::new();
        for (i, k) in dict.keywords().iter().enumerate() {
            add(&k.pattern, Target::Keyword(to_u32(i)))?;
            let class = *classes
                .entry((k.weight.to_bits(), k.category.as_deref()))
                .or_insert_with(|| {
                    keyword_classes.push(KeywordClass {
                        weight: k.weight,
                        category: k.category.as_deref().map(Into::into),
                    });
                    to_u32(keyword_classes.len() - 1)
                });
            // A literal written as its automaton pattern (trimmed, in
            // lowercase) is read back from the match; anything else is kept.
            let derived = matches!(&k.pattern, Pattern::Literal(s) if *s == fold(s.trim()));
            if derived {
                keywords.push(class);
            } else {
                keywords.push(class | TERM_STORED);
                keyword_terms.push((to_u32(i), Arc::from(k.pattern.as_str())));
            }
        }
        drop(classes);
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

        let too_many = || DictionaryError::Compile {
            message: format!("more than {INDEX_MASK} entries of one kind"),
        };
        let mut pats = Vec::with_capacity(literals.len());
        let mut multi_starts = Vec::new();
        let mut multi_targets = Vec::new();
        let mut non_ascii_literals = false;
        for (lit, ts) in &literals {
            non_ascii_literals |= !lit.is_ascii();
            let mut bits = if let [one] = ts.as_slice() {
                one.pack().ok_or_else(too_many)?
            } else {
                let i = u32::try_from(multi_starts.len())
                    .ok()
                    .filter(|&i| i <= INDEX_MASK)
                    .ok_or_else(too_many)?;
                multi_starts.push(to_u32(multi_targets.len()));
                for t in ts {
                    multi_targets.push(t.pack().ok_or_else(too_many)?);
                }
                (TAG_MULTI << TAG_SHIFT) | i
            };
            if lit.chars().next().is_some_and(needs_boundary) {
                bits |= LEFT;
            }
            if lit.chars().next_back().is_some_and(needs_boundary) {
                bits |= RIGHT;
            }
            pats.push(bits);
        }
        if !multi_starts.is_empty() {
            multi_starts.push(to_u32(multi_targets.len()));
        }
        multi_starts.shrink_to_fit();
        multi_targets.shrink_to_fit();
        keyword_classes.shrink_to_fit();
        keyword_terms.shrink_to_fit();
        let ac = if literals.is_empty() {
            None
        } else {
            let dfa = match automaton {
                Automaton::Dfa => true,
                Automaton::Auto => literals.len() <= Automaton::AUTO_DFA_MAX_PATTERNS,
                Automaton::Nfa => false,
            };
            // Case-sensitive: every literal is lowercase and the scan
            // lowercases ASCII bytes as it reads them. An
            // ASCII-case-insensitive automaton would need a transition for
            // both cases of every letter: 1.5x the memory for a contiguous
            // NFA, 2x for a DFA. No prefilter: with this many literals none
            // applies, and without one the start state is not special,
            // which the scan loop relies on.
            let lits = literals.iter().map(|(l, _)| l.as_bytes());
            let compile = |e: aho_corasick::BuildError| DictionaryError::Compile {
                message: e.to_string(),
            };
            let engine = if dfa {
                Engine::Dfa(
                    dfa::DFA::builder()
                        .match_kind(MatchKind::LeftmostLongest)
                        .start_kind(StartKind::Unanchored)
                        .prefilter(false)
                        .build(lits)
                        .map_err(compile)?,
                )
            } else {
                Engine::Nfa(
                    nfa::contiguous::NFA::builder()
                        .match_kind(MatchKind::LeftmostLongest)
                        .prefilter(false)
                        .build(lits)
                        .map_err(compile)?,
                )
            };
            Some(engine)
        };
        let penalty_sum = exclusions.iter().filter(|x| !x.veto).map(|x| x.points).sum();
        let has_veto = exclusions.iter().any(|x| x.veto);
        static IDS: AtomicU64 = AtomicU64::new(0);
        Ok(Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            ac,
            pats,
            multi_starts,
            multi_targets,
            regexes,
            entities,
            keywords,
            keyword_classes,
            keyword_terms,
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

    /// Approximate heap bytes held (automaton plus tables; every shared
    /// string counted once per holder, as an `Arc<str>`'s 16-byte header
    /// plus its bytes; the regexes are not counted).
    pub(crate) fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        let arc = |s: &Arc<str>| s.len() + 16;
        let names: usize = self.entities.iter().map(|e| arc(&e.id)).sum::<usize>()
            + self.keyword_terms.iter().map(|(_, t)| arc(t)).sum::<usize>()
            + self
                .keyword_classes
                .iter()
                .filter_map(|c| c.category.as_ref().map(arc))
                .sum::<usize>()
            + self.context.iter().map(|k| arc(&k.term)).sum::<usize>()
            + self.exclusions.iter().map(|k| arc(&k.term)).sum::<usize>()
            + self.negations.iter().map(arc).sum::<usize>();
        self.ac.as_ref().map_or(0, Engine::memory_usage)
            + (self.pats.capacity() + self.multi_starts.capacity() + self.multi_targets.capacity())
                * size_of::<u32>()
            + self.entities.capacity() * size_of::<EntityInfo>()
            + self.keywords.capacity() * size_of::<u32>()
            + self.keyword_classes.capacity() * size_of::<KeywordClass>()
            + self.keyword_terms.capacity() * size_of::<(u32, Arc<str>)>()
            + (self.context.capacity() + self.exclusions.capacity()) * size_of::<TermInfo>()
            + self.negations.capacity() * size_of::<Arc<str>>()
            + names
    }

    /// Keyword `i`'s weight.
    #[inline]
    pub(crate) fn keyword_weight(&self, i: u32) -> f64 {
        self.keyword_classes[(self.keywords[i as usize] & !TERM_STORED) as usize].weight
    }

    /// Keyword `i`'s category.
    #[inline]
    pub(crate) fn keyword_category(&self, i: u32) -> Option<&Arc<str>> {
        self.keyword_classes[(self.keywords[i as usize] & !TERM_STORED) as usize]
            .category
            .as_ref()
    }

    /// Keyword `i`'s term, for a hit whose bytes in the scanned text are
    /// `matched` (which, ASCII-lowercased, are the term itself for a
    /// literal keyword whose term is not stored). Such a term is built once per thread and
    /// kept in `cache`, a small table that does not grow with the
    /// dictionary.
    pub(crate) fn keyword_term(&self, i: u32, matched: &[u8], cache: &mut TermCache) -> Arc<str> {
        if self.keywords[i as usize] & TERM_STORED != 0 {
            if let Ok(at) = self.keyword_terms.binary_search_by_key(&i, |&(k, _)| k) {
                return self.keyword_terms[at].1.clone();
            }
            return Arc::from("");
        }
        cache.get(self.id, i, matched)
    }

    /// Every hit in `text`, sorted by start. `stop` is asked after each
    /// literal hit whether the scan may end early.
    ///
    /// The automaton is case-sensitive over lowercase literals, so the scan
    /// reads the text ASCII-lowercasing each byte (same offsets, so
    /// boundaries are checked on the original), or, when a non-ASCII char
    /// may take part in a match, a copy lowercased char by char with a map
    /// back to the original bytes, both in `bufs` (reused from text to
    /// text).
    pub(crate) fn scan(
        &self,
        text: &str,
        hits: &mut Vec<Hit>,
        bufs: &mut ScanBuffers,
        stop: &mut impl FnMut(&str, &[Hit]) -> bool,
    ) -> bool {
        let mut stopped = false;
        bufs.used_folded = false;
        if let Some(engine) = &self.ac {
            let needs_fold = !text.is_ascii() && (self.non_ascii_literals || text.contains('\u{212A}'));
            let hay = if needs_fold {
                bufs.fold(text);
                &bufs.folded
            } else {
                text
            };
            stopped = match engine {
                Engine::Dfa(a) => self.scan_literals(a, hay, hits, stop),
                Engine::Nfa(a) => self.scan_literals(a, hay, hits, stop),
            };
            if needs_fold {
                for h in hits.iter_mut() {
                    h.span = bufs.original(h.span, text);
                }
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
                            lit: (to_u32(m.start()), to_u32(m.end())),
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

    /// The automaton runs over `hay` (the text, or its folded copy),
    /// reading each byte ASCII-lowercased; word boundaries (which do not
    /// depend on case) are checked on `hay`.
    fn scan_literals<A: aho_corasick::automaton::Automaton>(
        &self,
        aut: &A,
        hay: &str,
        hits: &mut Vec<Hit>,
        stop: &mut impl FnMut(&str, &[Hit]) -> bool,
    ) -> bool {
        let bytes = hay.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            let Some((pid, start, mut end)) = find(aut, bytes, pos, bytes.len()) else {
                break;
            };
            let mut info = self.pats[pid];
            if info & LEFT != 0 && !boundary_before(hay, start) {
                pos = resume_after_miss(bytes, start);
                continue;
            }
            if info & RIGHT != 0 && !boundary_after(hay, end) {
                match self.shorter_at(aut, hay, start, end) {
                    Some((e, i)) => (end, info) = (e, i),
                    None => {
                        pos = resume_after_miss(bytes, start);
                        continue;
                    }
                }
            }
            let span = Span::new(start, end);
            let lit = (to_u32(start), to_u32(end));
            if (info >> TAG_SHIFT) & 7 == TAG_MULTI {
                let i = (info & INDEX_MASK) as usize;
                let list =
                    &self.multi_targets[self.multi_starts[i] as usize..self.multi_starts[i + 1] as usize];
                for &t in list {
                    hits.push(Hit {
                        span,
                        target: Target::unpack(t),
                        lit,
                    });
                }
            } else {
                hits.push(Hit {
                    span,
                    target: Target::unpack(info),
                    lit,
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
    fn shorter_at<A: aho_corasick::automaton::Automaton>(
        &self,
        aut: &A,
        hay: &str,
        start: usize,
        mut end: usize,
    ) -> Option<(usize, u32)> {
        loop {
            if end <= start + 1 {
                return None;
            }
            let (pid, s, e) = find(aut, hay.as_bytes(), start, end - 1)?;
            if s != start {
                return None;
            }
            let info = self.pats[pid];
            if info & RIGHT == 0 || boundary_after(hay, e) {
                return Some((e, info));
            }
            end = e;
        }
    }
}

/// The automaton, used through aho-corasick's `Automaton` trait so that the
/// scan loop can lowercase each byte as it reads it (no lowercased copy of
/// the text) and skip the per-call setup of `AhoCorasick::find`.
#[derive(Debug)]
enum Engine {
    Dfa(dfa::DFA),
    Nfa(nfa::contiguous::NFA),
}

impl Engine {
    fn memory_usage(&self) -> usize {
        match self {
            Engine::Dfa(a) => a.memory_usage(),
            Engine::Nfa(a) => a.memory_usage(),
        }
    }
}

/// ASCII letters to lowercase, every other byte to itself.
static ASCII_LOWER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let b = i as u8;
        t[i] = b.to_ascii_lowercase();
        i += 1;
    }
    t
};

/// The leftmost-longest match of `aut` in `bytes[from..to]`, each byte
/// read ASCII-lowercased: `(pattern, start, end)`. The automaton is built
/// unanchored, without a prefilter and without empty literals, so its start
/// state is neither special nor a match (`Compiled::new` checks it), and
/// the only special states are the dead state and match states: this is
/// aho-corasick's own search loop for that case.
#[inline(always)]
fn find<A: aho_corasick::automaton::Automaton>(
    aut: &A,
    bytes: &[u8],
    from: usize,
    to: usize,
) -> Option<(usize, usize, usize)> {
    let mut sid = aut.start_state(Anchored::No).ok()?;
    let mut found = None;
    let bytes = &bytes[..to];
    let mut at = from;
    loop {
        // The hot loop: step until a special state (rare) or the end.
        let mut special = false;
        while at < bytes.len() {
            sid = aut.next_state(Anchored::No, sid, ASCII_LOWER[bytes[at] as usize]);
            at += 1;
            if aut.is_special(sid) {
                special = true;
                break;
            }
        }
        if !special || aut.is_dead(sid) {
            return found;
        }
        if aut.is_match(sid) {
            let pid = aut.match_pattern(sid, 0);
            found = Some((pid.as_usize(), at - aut.pattern_len(pid), at));
        }
    }
}

/// The terms of keywords read back from their matches, per thread: a
/// direct-mapped table of [`TermCache::SLOTS`] entries keyed by the
/// compiled dictionary and the keyword, so a keyword found again gets the
/// same `Arc<str>` instead of a new allocation.
#[derive(Debug, Default)]
pub(crate) struct TermCache {
    slots: Vec<Option<(u64, u32, Arc<str>)>>,
}

impl TermCache {
    /// Entries per thread.
    const SLOTS: usize = 256;

    fn get(&mut self, compiled: u64, keyword: u32, matched: &[u8]) -> Arc<str> {
        if self.slots.is_empty() {
            self.slots.resize(Self::SLOTS, None);
        }
        let slot = &mut self.slots[keyword as usize % Self::SLOTS];
        if let Some((c, k, term)) = slot
            && *c == compiled
            && *k == keyword
        {
            return term.clone();
        }
        let term: Arc<str> = Arc::from(String::from_utf8_lossy(matched).to_ascii_lowercase());
        *slot = Some((compiled, keyword, term.clone()));
        term
    }
}

/// Buffers the scan reuses from text to text (one set per thread).
#[derive(Debug, Default)]
pub(crate) struct ScanBuffers {
    /// The text lowercased char by char, when a non-ASCII char may match.
    folded: String,
    /// For each byte of `folded`, the start of the original char it came
    /// from; one more entry for the end.
    map: Vec<u32>,
    /// Whether the last scan ran over `folded` (else over the text).
    used_folded: bool,
}

impl ScanBuffers {
    /// The text the last scan of `text` ran over, which [`Hit::lit`]
    /// indexes: a literal's bytes there, ASCII-lowercased, are the literal.
    pub(crate) fn scanned<'a>(&'a self, text: &'a str) -> &'a [u8] {
        if self.used_folded {
            self.folded.as_bytes()
        } else {
            text.as_bytes()
        }
    }

    /// Lowercases `original` char by char into `folded`, with the map.
    fn fold(&mut self, original: &str) {
        self.used_folded = true;
        let (text, map) = (&mut self.folded, &mut self.map);
        text.clear();
        map.clear();
        for (i, c) in original.char_indices() {
            if c.is_ascii() {
                text.push(c.to_ascii_lowercase());
            } else {
                text.extend(c.to_lowercase());
            }
            map.resize(text.len(), to_u32(i));
        }
        map.push(to_u32(original.len()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_maps_back_to_char_boundaries() {
        let text = "İSTANBUL Ünïcode";
        let mut f = ScanBuffers::default();
        f.fold(text);
        assert_eq!(f.folded, "i\u{307}stanbul ünïcode");
        assert_eq!(f.scanned(text), f.folded.as_bytes());
        // "i" alone covers half of the folded "İ": it maps to the whole char.
        assert_eq!(f.original(Span::new(0, 1), text), Span::new(0, 2));
        let at = f.folded.find("ünïcode").unwrap();
        let span = f.original(Span::new(at, f.folded.len()), text);
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
