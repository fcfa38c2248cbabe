//! `Matcher`: the compiled dictionary behind a lock-free pointer, with the
//! scoring options, memoization, hot reload, batches and counters.
//
// Hot reload: the current compiled dictionary (with its memo table) lives in
// an `ArcSwap`. A reader `load`s it (no lock, no refcount on the fast path)
// and keeps using that snapshot for the whole text even if a reload swaps in
// a new one meanwhile; `reload` compiles the new dictionary first, outside
// any lock, then swaps the pointer. Readers never wait for a reload. The memo
// table belongs to the snapshot, so a reload also drops stale memoized
// scores.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use brisk_core::{ConfigError, ContentHash, StatsReport, StatsSource};
use serde::Serialize;

use crate::dictionary::Dictionary;
use crate::error::{BuildError, DictionaryError, TextError};
use crate::scan::{Automaton, Compiled, Hit, ScanBuffers, Target, TermCache};
use crate::score::{Placer, Relevance, ScoreOptions, score, score_inline};
use crate::structure::{Structure, analyze_streaming, analyze_structure};
use crate::token::{starts_with_ignore_case, tokens};

/// The full analysis of one text: its relevance and its structure.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Analysis {
    /// The matches, the score and its signals.
    pub relevance: Relevance,
    /// The post's structure.
    pub structure: Structure,
}

#[derive(Clone, Copy, Debug)]
struct Config {
    score: ScoreOptions,
    early_termination: bool,
    memo_capacity: usize,
    automaton: Automaton,
    parallel_min_batch: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            score: ScoreOptions {
                threshold: 50.0,
                window: 5,
                proximity_boost: 20.0,
                negation_window: 3,
                negation_factor: 0.25,
            },
            early_termination: false,
            memo_capacity: 0,
            automaton: Automaton::Auto,
            parallel_min_batch: 64,
        }
    }
}

/// Builds a [`Matcher`]. Every setter states its default; `build()`
/// validates the options and compiles the dictionary.
///
/// ```
/// use brisk_pattern_matcher::{Dictionary, Entity, Matcher};
///
/// let dict = Dictionary::builder().entity(Entity::new("abc").alias("ABC")).build()?;
/// let matcher = Matcher::builder(dict).threshold(25.0).proximity_window(8).build()?;
/// assert!(matcher.score("ABC again").relevant);
///
/// let dict = Dictionary::builder().build()?;
/// let err = Matcher::builder(dict).threshold(120.0).build().unwrap_err();
/// assert!(err.to_string().contains("threshold"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is called"]
pub struct MatcherBuilder {
    dictionary: Dictionary,
    config: Config,
}

impl MatcherBuilder {
    /// The score from which a text is relevant, 0 to 100 (default 50).
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.config.score.threshold = threshold;
        self
    }

    /// The proximity window in tokens, 0 to 64 (default 5): a keyword
    /// `d` tokens from its nearest entity, `1 <= d <= window`, gains
    /// `proximity_boost * (window + 1 - d) / window`. 0 turns proximity off.
    pub fn proximity_window(mut self, tokens: usize) -> Self {
        self.config.score.window = tokens;
        self
    }

    /// The boost of a keyword right next to an entity, 0 to 100 (default 20).
    pub fn proximity_boost(mut self, points: f64) -> Self {
        self.config.score.proximity_boost = points;
        self
    }

    /// How many tokens before a keyword a negation word reaches, 0 to 16
    /// (default 3). 0 turns negation off.
    pub fn negation_window(mut self, tokens: usize) -> Self {
        self.config.score.negation_window = tokens;
        self
    }

    /// The share of a negated keyword's points that is kept, 0 to 1
    /// (default 0.25).
    pub fn negation_factor(mut self, factor: f64) -> Self {
        self.config.score.negation_factor = factor;
        self
    }

    /// Whether to stop scanning a text once its score is 100 and nothing
    /// later in the text could lower it (default off). The score is the
    /// same as without it; the match lists stop where the scan stopped.
    /// With a vetoing exclusion in the dictionary, it never stops early.
    pub fn early_termination(mut self, on: bool) -> Self {
        self.config.early_termination = on;
        self
    }

    /// Memoize scores by [`ContentHash`] for up to `capacity` distinct
    /// texts, 0 to 10,000,000 (default 0: off). When the table is full it
    /// is cleared. A reload starts a new table.
    pub fn memoize(mut self, capacity: usize) -> Self {
        self.config.memo_capacity = capacity;
        self
    }

    /// Which automaton to build (default [`Automaton::Auto`]).
    pub fn automaton(mut self, automaton: Automaton) -> Self {
        self.config.automaton = automaton;
        self
    }

    /// The smallest batch that [`Matcher::analyze_batch`] spreads over
    /// rayon's pool, with the `rayon` feature, at least 1 (default 64).
    pub fn parallel_min_batch(mut self, texts: usize) -> Self {
        self.config.parallel_min_batch = texts;
        self
    }

    /// Validates the options and compiles the dictionary.
    ///
    /// # Errors
    ///
    /// [`BuildError::Config`] naming the option out of range, or
    /// [`BuildError::Dictionary`] if the automaton cannot be built.
    pub fn build(self) -> Result<Matcher, BuildError> {
        let c = &self.config;
        let s = &c.score;
        check(
            s.threshold.is_finite() && (0.0..=100.0).contains(&s.threshold),
            "matcher.threshold",
            || format!("must be from 0 to 100, got {}", s.threshold),
        )?;
        check(s.window <= 64, "matcher.proximity_window", || {
            format!("must be at most 64 tokens, got {}", s.window)
        })?;
        check(
            (0.0..=100.0).contains(&s.proximity_boost),
            "matcher.proximity_boost",
            || format!("must be from 0 to 100, got {}", s.proximity_boost),
        )?;
        check(s.negation_window <= 16, "matcher.negation_window", || {
            format!("must be at most 16 tokens, got {}", s.negation_window)
        })?;
        check(
            (0.0..=1.0).contains(&s.negation_factor),
            "matcher.negation_factor",
            || format!("must be from 0 to 1, got {}", s.negation_factor),
        )?;
        check(c.memo_capacity <= 10_000_000, "matcher.memoize", || {
            format!("must be at most 10000000 texts, got {}", c.memo_capacity)
        })?;
        check(c.parallel_min_batch >= 1, "matcher.parallel_min_batch", || {
            "must be at least 1".into()
        })?;
        let snapshot = Snapshot::new(&self.dictionary, &self.config, 1)?;
        Ok(Matcher {
            current: ArcSwap::from_pointee(snapshot),
            config: self.config,
            versions: AtomicU64::new(1),
            counters: Counters::default(),
        })
    }
}

fn check(ok: bool, field: &'static str, reason: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(field, reason()))
    }
}

struct Snapshot {
    compiled: Compiled,
    memo: Option<Memo>,
    version: u64,
}

impl Snapshot {
    fn new(dict: &Dictionary, config: &Config, version: u64) -> Result<Self, DictionaryError> {
        Ok(Self {
            compiled: Compiled::new(dict, config.automaton)?,
            memo: (config.memo_capacity > 0).then(|| Memo {
                map: Mutex::new(HashMap::new()),
                capacity: config.memo_capacity,
            }),
            version,
        })
    }
}

struct Memo {
    map: Mutex<HashMap<ContentHash, Relevance>>,
    capacity: usize,
}

impl Memo {
    fn get(&self, key: ContentHash) -> Option<Relevance> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned()
    }

    fn put(&self, key: ContentHash, value: &Relevance) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key, value.clone());
    }
}

#[derive(Debug, Default)]
struct Counters {
    texts: AtomicU64,
    relevant: AtomicU64,
    memo_hits: AtomicU64,
    reloads: AtomicU64,
}

/// A snapshot of a matcher's counters, from [`Matcher::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MatcherStats {
    /// Texts scored or analysed.
    pub texts: u64,
    /// Texts found relevant.
    pub relevant: u64,
    /// Scores served from the memo table.
    pub memo_hits: u64,
    /// Successful reloads.
    pub reloads: u64,
    /// The current dictionary's version (1 for the first, +1 per reload).
    pub version: u64,
    /// Patterns in the current dictionary.
    pub patterns: u64,
    /// Approximate heap bytes of the compiled dictionary.
    pub memory_bytes: u64,
}

/// Matches a dictionary against texts and scores their relevance.
///
/// `Matcher` is `Send + Sync`: share it (in an `Arc`) between threads; a
/// [`reload`](Matcher::reload) swaps the dictionary for every reader at once
/// without blocking them.
///
/// ```
/// use brisk_pattern_matcher::{Dictionary, Entity, Keyword, Matcher};
///
/// let dict = Dictionary::builder()
///     .entity(Entity::new("abc").alias("$ABC"))
///     .keyword(Keyword::term("earnings", 30.0))
///     .build()?;
/// let matcher = Matcher::new(dict)?;
/// let r = matcher.score("$ABC earnings beat");
/// // 30 (entity) + 30 (keyword) + 20 (proximity: next token)
/// assert_eq!(r.score, 80.0);
/// assert!(r.relevant);
///
/// matcher.reload(&Dictionary::builder().entity(Entity::new("xyz").alias("$XYZ")).build()?)?;
/// assert_eq!(matcher.score("$ABC earnings beat").score, 0.0);
/// assert_eq!(matcher.stats().version, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Matcher {
    current: ArcSwap<Snapshot>,
    config: Config,
    versions: AtomicU64,
    counters: Counters,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snap = self.current.load();
        f.debug_struct("Matcher")
            .field("version", &snap.version)
            .field("patterns", &snap.compiled.pattern_count())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Matcher {
    /// A builder for a matcher over `dictionary`, with the default options.
    pub fn builder(dictionary: Dictionary) -> MatcherBuilder {
        MatcherBuilder {
            dictionary,
            config: Config::default(),
        }
    }

    /// A matcher with the default options.
    ///
    /// # Errors
    ///
    /// See [`MatcherBuilder::build`].
    pub fn new(dictionary: Dictionary) -> Result<Self, BuildError> {
        Self::builder(dictionary).build()
    }

    /// Swaps in a new dictionary atomically; readers keep matching (each
    /// text against one dictionary, the old or the new) and never wait.
    /// Returns the new version.
    ///
    /// # Errors
    ///
    /// [`DictionaryError::Compile`] if it cannot be compiled; the old
    /// dictionary stays in place.
    pub fn reload(&self, dictionary: &Dictionary) -> Result<u64, DictionaryError> {
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot = Snapshot::new(dictionary, &self.config, version)?;
        self.current.store(Arc::new(snapshot));
        self.counters.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(version)
    }

    /// Loads a dictionary file and [`reload`](Matcher::reload)s it.
    ///
    /// # Errors
    ///
    /// See [`Dictionary::from_path`] and [`Matcher::reload`]; on error the
    /// old dictionary stays in place.
    pub fn reload_from_path(&self, path: impl AsRef<Path>) -> Result<u64, DictionaryError> {
        self.reload(&Dictionary::from_path(path)?)
    }

    /// The matches and relevance of `text`.
    #[must_use]
    pub fn score(&self, text: &str) -> Relevance {
        let snap = self.current.load();
        let mut scratch = take_scratch();
        // Filled in place: no result is built elsewhere and copied.
        let mut r = Relevance::empty();
        self.score_in(&snap, text, &mut scratch, &mut r);
        put_back_scratch(scratch);
        self.count(&r);
        r
    }

    /// The relevance and the structure of `text`.
    ///
    /// ```
    /// use brisk_pattern_matcher::{Dictionary, Entity, HookKind, Matcher};
    ///
    /// let matcher = Matcher::new(Dictionary::builder().entity(Entity::new("abc").alias("#abc")).build()?)?;
    /// let a = matcher.analyze("Is #ABC the next big thing? 🚀");
    /// assert_eq!(a.relevance.entities[0].entity.as_ref(), "abc");
    /// assert_eq!(a.structure.hook, HookKind::Question);
    /// assert_eq!(a.structure.emoji.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn analyze(&self, text: &str) -> Analysis {
        let snap = self.current.load();
        let a = self.analyze_in(&snap, text);
        self.count(&a.relevance);
        a
    }

    /// [`analyze`](Matcher::analyze) for each text, in order. With the
    /// `rayon` feature, batches of at least
    /// [`parallel_min_batch`](MatcherBuilder::parallel_min_batch) texts run
    /// on rayon's global pool. Every text of a batch sees the same
    /// dictionary, even if a reload happens meanwhile.
    #[must_use]
    pub fn analyze_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Analysis> {
        let snap = self.current.load_full();
        let one = |t: &S| self.analyze_in(&snap, t.as_ref());
        #[cfg(feature = "rayon")]
        let out: Vec<Analysis> = if texts.len() >= self.config.parallel_min_batch {
            use rayon::prelude::*;
            texts.par_iter().map(one).collect()
        } else {
            texts.iter().map(one).collect()
        };
        #[cfg(not(feature = "rayon"))]
        let out: Vec<Analysis> = texts.iter().map(one).collect();
        let relevant = out.iter().filter(|a| a.relevance.relevant).count();
        self.counters.texts.fetch_add(out.len() as u64, Ordering::Relaxed);
        self.counters
            .relevant
            .fetch_add(relevant as u64, Ordering::Relaxed);
        out
    }

    /// [`score`](Matcher::score) for text given as bytes, which must be
    /// UTF-8.
    ///
    /// # Errors
    ///
    /// [`TextError::InvalidUtf8`] with the offset of the first bad byte.
    pub fn score_bytes(&self, bytes: &[u8]) -> Result<Relevance, TextError> {
        let text = std::str::from_utf8(bytes).map_err(|e| TextError::InvalidUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        Ok(self.score(text))
    }

    /// [`score`](Matcher::score) for text given as bytes, decoding invalid
    /// UTF-8 lossily (each bad sequence becomes U+FFFD). The spans index
    /// the returned text, which borrows `bytes` when they were valid.
    pub fn score_bytes_lossy<'a>(&self, bytes: &'a [u8]) -> (Cow<'a, str>, Relevance) {
        let text = String::from_utf8_lossy(bytes);
        let r = self.score(&text);
        (text, r)
    }

    /// [`analyze`](Matcher::analyze) for text given as bytes, which must be
    /// UTF-8.
    ///
    /// # Errors
    ///
    /// [`TextError::InvalidUtf8`] with the offset of the first bad byte.
    pub fn analyze_bytes(&self, bytes: &[u8]) -> Result<Analysis, TextError> {
        let text = std::str::from_utf8(bytes).map_err(|e| TextError::InvalidUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        Ok(self.analyze(text))
    }

    /// The counters and the current dictionary's size.
    #[must_use]
    pub fn stats(&self) -> MatcherStats {
        let snap = self.current.load();
        MatcherStats {
            texts: self.counters.texts.load(Ordering::Relaxed),
            relevant: self.counters.relevant.load(Ordering::Relaxed),
            memo_hits: self.counters.memo_hits.load(Ordering::Relaxed),
            reloads: self.counters.reloads.load(Ordering::Relaxed),
            version: snap.version,
            patterns: snap.compiled.pattern_count() as u64,
            memory_bytes: snap.compiled.memory_usage() as u64,
        }
    }

    fn count(&self, r: &Relevance) {
        self.counters.texts.fetch_add(1, Ordering::Relaxed);
        if r.relevant {
            self.counters.relevant.fetch_add(1, Ordering::Relaxed);
        }
    }

    // Inlined so that the result is built in the caller's place, not
    // copied out (an `Analysis` is about 500 bytes, a `Relevance` 170).
    #[inline(always)]
    fn analyze_in(&self, snap: &Snapshot, text: &str) -> Analysis {
        let key = snap.memo.as_ref().map(|memo| (memo, ContentHash::of(text)));
        if let Some((memo, key)) = &key
            && let Some(relevance) = memo.get(*key)
        {
            self.counters.memo_hits.fetch_add(1, Ordering::Relaxed);
            return Analysis {
                relevance,
                structure: analyze_structure(text),
            };
        }
        // The scratch buffers are taken out of the thread-local and put
        // back (see `take_scratch`).
        let mut scratch = take_scratch();
        let stopped = self.scan(&snap.compiled, text, &mut scratch.hits, &mut scratch.bufs);
        // One pass over the tokens gives the structure and places the hits.
        let mut placer = Placer::new(&scratch.hits, &mut scratch.hit_tokens);
        // Filled in place: no 500-byte result is built elsewhere and copied.
        let mut out = Analysis {
            relevance: Relevance::empty(),
            structure: Structure::empty(),
        };
        analyze_streaming(text, &mut out.structure, |i, t| placer.token(i, t));
        placer.finish(out.structure.tokens);
        if !scratch.hits.is_empty() {
            score_inline(
                &mut out.relevance,
                &snap.compiled,
                &self.config.score,
                &scratch.hits,
                &scratch.hit_tokens,
                scratch.bufs.scanned(text),
                &mut scratch.terms,
                stopped,
            );
        }
        put_back_scratch(scratch);
        if let Some((memo, key)) = key {
            memo.put(key, &out.relevance);
        }
        out
    }

    /// Scores `text` into `out`, from the memo table if it is there.
    // Inlined into `score`: the hot path is one function.
    #[inline(always)]
    fn score_in(&self, snap: &Snapshot, text: &str, scratch: &mut Scratch, out: &mut Relevance) {
        let key = snap.memo.as_ref().map(|memo| (memo, ContentHash::of(text)));
        if let Some((memo, key)) = &key
            && let Some(r) = memo.get(*key)
        {
            self.counters.memo_hits.fetch_add(1, Ordering::Relaxed);
            *out = r;
            return;
        }
        self.compute(&snap.compiled, text, scratch, out);
        if let Some((memo, key)) = key {
            memo.put(key, out);
        }
    }

    /// Every hit of `text` into `hits`; whether early termination stopped
    /// the scan.
    fn scan(&self, compiled: &Compiled, text: &str, hits: &mut Vec<Hit>, bufs: &mut ScanBuffers) -> bool {
        hits.clear();
        if self.config.early_termination && !compiled.has_veto {
            let mut bound = EarlyBound::new(100.0 + compiled.penalty_sum);
            compiled.scan(text, hits, bufs, &mut |hay, h| bound.add(compiled, hay, h))
        } else {
            compiled.scan(text, hits, bufs, &mut |_, _| false)
        }
    }

    // Inlined into `score`: the hot path is one function.
    #[inline(always)]
    /// Scores `text` into `out` (as [`Relevance::empty`] left it).
    fn compute(&self, compiled: &Compiled, text: &str, scratch: &mut Scratch, out: &mut Relevance) {
        let stopped = self.scan(compiled, text, &mut scratch.hits, &mut scratch.bufs);
        if scratch.hits.is_empty() {
            return;
        }
        // Token positions are only needed up to the last hit: stop the
        // tokenizer there (the tokens before are the same either way).
        let mut placer = Placer::new(&scratch.hits, &mut scratch.hit_tokens);
        let mut count = 0;
        for t in tokens(text) {
            if placer.done() {
                break;
            }
            placer.token(count, t);
            count += 1;
        }
        placer.finish(count);
        score(
            out,
            compiled,
            &self.config.score,
            &scratch.hits,
            &scratch.hit_tokens,
            scratch.bufs.scanned(text),
            &mut scratch.terms,
            stopped,
        );
    }
}

impl StatsSource for Matcher {
    #[allow(clippy::cast_precision_loss)] // gauges are f64 in every exposition format
    fn report_stats(&self, out: &mut StatsReport) {
        let s = self.stats();
        let counters = [
            (
                "brisk_pattern_matcher_texts_total",
                "Texts scored or analysed",
                s.texts,
            ),
            (
                "brisk_pattern_matcher_relevant_total",
                "Texts found relevant",
                s.relevant,
            ),
            (
                "brisk_pattern_matcher_memo_hits_total",
                "Scores served from the memo table",
                s.memo_hits,
            ),
            (
                "brisk_pattern_matcher_reloads_total",
                "Dictionary reloads",
                s.reloads,
            ),
        ];
        for (name, help, value) in counters {
            let _ = out.counter(name, help, value);
        }
        let gauges = [
            (
                "brisk_pattern_matcher_dictionary_version",
                "Current dictionary version",
                s.version,
            ),
            (
                "brisk_pattern_matcher_patterns",
                "Patterns in the current dictionary",
                s.patterns,
            ),
            (
                "brisk_pattern_matcher_memory_bytes",
                "Approximate heap bytes of the compiled dictionary",
                s.memory_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = out.gauge(name, help, value as f64);
        }
    }
}

/// Buffers reused from text to text on each thread, so that scoring a
/// text allocates only what its result holds.
#[derive(Default)]
struct Scratch {
    hits: Vec<Hit>,
    /// The token of each hit (`score::IN_URL` inside a URL).
    hit_tokens: Vec<u32>,
    /// The lowercased text the automaton scans.
    bufs: ScanBuffers,
    /// Keyword terms read back from matches.
    terms: TermCache,
}

thread_local! {
    /// Boxed, so that taking it out and putting it back moves a pointer.
    static SCRATCH: Cell<Option<Box<Scratch>>> = const { Cell::new(None) };
}

/// This thread's scratch buffers (new ones the first time, or if they are
/// taken already, which nothing does: scoring never calls back in). Hand
/// them back with [`put_back_scratch`] to keep their capacity for the next
/// text. Taking them out, rather than working inside a `with` closure,
/// lets the result be built where the caller wants it instead of being
/// copied out of the closure (an `Analysis` is about 400 bytes).
fn take_scratch() -> Box<Scratch> {
    SCRATCH.try_with(Cell::take).ok().flatten().unwrap_or_default()
}

fn put_back_scratch(scratch: Box<Scratch>) {
    let _ = SCRATCH.try_with(|cell| cell.set(Some(scratch)));
}

/// A lower bound of the score while scanning, for early termination:
/// distinct entities, plus distinct keywords seen before any negation word,
/// not counting anything at or after the first possible URL (whose hits are
/// dropped later). It only grows, and nothing later in the text can lower
/// the final score below it minus the exclusion penalties.
struct EarlyBound {
    url_from: Option<usize>,
    sum: f64,
    stop_at: f64,
    negation_seen: bool,
    entities: Vec<u32>,
    keywords: Vec<u32>,
    seen: usize,
}

impl EarlyBound {
    fn new(stop_at: f64) -> Self {
        Self {
            url_from: None,
            sum: 0.0,
            stop_at,
            negation_seen: false,
            entities: Vec::new(),
            keywords: Vec::new(),
            seen: 0,
        }
    }

    /// Adds the new hits; `hay` is the text the spans index (the original,
    /// or its lowercased copy when the scan folds).
    fn add(&mut self, compiled: &Compiled, hay: &str, hits: &[Hit]) -> bool {
        let url_from = *self.url_from.get_or_insert_with(|| first_url_start(hay));
        for h in &hits[self.seen..] {
            if h.span.end > url_from {
                continue;
            }
            match h.target {
                Target::Entity(i) if !self.entities.contains(&i) => {
                    self.entities.push(i);
                    self.sum += compiled.entities[i as usize].weight;
                }
                Target::Keyword(i) if !self.negation_seen && !self.keywords.contains(&i) => {
                    self.keywords.push(i);
                    self.sum += compiled.keyword_weight(i);
                }
                Target::Negation(_) => self.negation_seen = true,
                _ => {}
            }
        }
        self.seen = hits.len();
        self.sum >= self.stop_at
    }
}

/// The first byte where a URL could start (`http://`, `https://`, `www.`,
/// any case), or `usize::MAX`.
fn first_url_start(text: &str) -> usize {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b | 0x20, b'h' | b'w') {
            let rest = &bytes[i..];
            if starts_with_ignore_case(rest, b"http://")
                || starts_with_ignore_case(rest, b"https://")
                || starts_with_ignore_case(rest, b"www.")
            {
                return i;
            }
        }
    }
    usize::MAX
}
