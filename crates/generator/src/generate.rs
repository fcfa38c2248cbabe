//! Generation with constraints, the novelty test and confidence.
//
// Design: one attempt samples ids into a reused vector, tracking the length
// in chars and words as it goes (the detokenizer's spacing rule runs token
// by token), so a too-long attempt stops early and no text is built until
// an attempt has passed the novelty test. The target length is drawn from
// the corpus's length distribution; once reached (or at 90% of max_chars)
// the attempt ends as soon as the chain allows. A topic word seeds the
// attempt: a random occurrence of it, extended backwards to a post start
// through the corpus index (a reverse chain of the same order), then
// forwards through the chain. Other topic words (and `?` for a question
// hook) are taken whenever the chain offers them. A hook kind seeds the
// attempt with the opening of a corpus post of that kind and is checked on
// the result.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use brisk_pattern_matcher::{HookKind, Structure, analyze_structure};

use crate::chain::push_key;
use crate::error::GeneratorError;
use crate::model::Generator;
use crate::style::hook_index;
use crate::vocab::{BOUNDARY, Joiner, UNKNOWN, detokenize, is_word_kind, kind};

/// The longest output in tokens; longer attempts are abandoned.
const MAX_TOKENS: usize = 200;
/// The longest backwards walk from a topic word, in tokens.
const MAX_PREFIX: usize = 60;

/// The longest run of consecutive tokens an output of `tokens` tokens may
/// share with a corpus post: `min(15, round(0.7 × tokens))`, rounding
/// halves up (markovify's rule). An output of one token may share none.
///
/// ```
/// use brisk_generator::overlap_limit;
///
/// assert_eq!(overlap_limit(10), 7);
/// assert_eq!(overlap_limit(5), 4); // 3.5 rounds up
/// assert_eq!(overlap_limit(40), 15);
/// ```
#[must_use]
pub const fn overlap_limit(tokens: usize) -> usize {
    let r = (7 * tokens + 5) / 10;
    if r > 15 { 15 } else { r }
}

/// The run length that fails the test: more than the limit, or the whole
/// output when it is shorter than that.
const fn failing_run(tokens: usize) -> usize {
    let f = overlap_limit(tokens) + 1;
    if f < tokens { f } else { tokens }
}

/// What [`Generator::generate`] must honour. Every setter states its default.
///
/// ```
/// use brisk_generator::GenerateOptions;
/// use brisk_pattern_matcher::HookKind;
///
/// let opts = GenerateOptions::new()
///     .max_chars(140)
///     .min_words(5)
///     .topic("coffee")
///     .hook(HookKind::Question)
///     .temperature(0.8)
///     .seed(7);
/// assert_eq!(opts.get_max_chars(), 140);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    max_chars: usize,
    min_words: usize,
    topics: Vec<String>,
    hook: Option<HookKind>,
    temperature: f32,
    seed: Option<u64>,
    attempts: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_chars: 280,
            min_words: 1,
            topics: Vec::new(),
            hook: None,
            temperature: 1.0,
            seed: None,
            attempts: 10,
        }
    }
}

impl GenerateOptions {
    /// The defaults: at most 280 chars, at least 1 word, no topic, any hook,
    /// temperature 1, a random seed, 10 attempts.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The longest output in chars. Default 280.
    #[must_use]
    pub fn max_chars(mut self, n: usize) -> Self {
        self.max_chars = n;
        self
    }

    /// The fewest words (words, numbers, percentages, mentions, hashtags,
    /// cashtags; not URLs, emoji or punctuation). Default 1.
    #[must_use]
    pub fn min_words(mut self, n: usize) -> Self {
        self.min_words = n;
        self
    }

    /// A word the output must contain; call again for more. It must be one
    /// token of the corpus; it matches as written, lowercased, capitalised
    /// and as a hashtag (`rust` matches `rust`, `Rust`, `RUST`, `#rust`).
    /// Default none.
    #[must_use]
    pub fn topic(mut self, word: impl Into<String>) -> Self {
        self.topics.push(word.into());
        self
    }

    /// The hook kind the first line must open with. Default any.
    #[must_use]
    pub fn hook(mut self, hook: HookKind) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The sampling temperature, above 0: below 1 favours the corpus's
    /// frequent continuations, above 1 flattens them. Default 1.
    #[must_use]
    pub fn temperature(mut self, t: f32) -> Self {
        self.temperature = t;
        self
    }

    /// The seed: the same model, options and seed give the same output.
    /// Default a random seed per call.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How many attempts per output before giving up with
    /// [`GeneratorError::NoNovelOutput`]. Default 10.
    #[must_use]
    pub fn attempts(mut self, n: usize) -> Self {
        self.attempts = n;
        self
    }

    /// The maximum length in chars.
    #[must_use]
    pub fn get_max_chars(&self) -> usize {
        self.max_chars
    }
}

/// How much to trust an output, in `[0, 1]`, and its parts.
///
/// `score = novel ? 0.75 × fluency + 0.25 × structure_fit : 0` where
/// fluency is the percentile of the text's mean log-probability (stupid
/// backoff over 1- to 3-grams) among held-out corpus posts, and
/// structure fit is how typical its hook, length, hashtag count, emoji
/// count and line count are for the corpus. See the crate docs.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Confidence {
    /// The overall confidence in `[0, 1]`; 0 when not novel.
    pub score: f64,
    /// The fluency percentile in `[0, 1]`.
    pub fluency: f64,
    /// `1 − longest shared run / length`, in `[0, 1]`.
    pub novelty: f64,
    /// How typical the structure is, in `[0, 1]`.
    pub structure_fit: f64,
    /// The mean natural-log probability per token under the scorer.
    pub log_prob: f64,
    /// The longest run of consecutive tokens shared with a corpus post.
    pub longest_shared_run: usize,
    /// The longest run allowed ([`overlap_limit`] of the length).
    pub overlap_limit: usize,
    /// Whether the text passes the novelty test.
    pub novel: bool,
    /// The length in tokens.
    pub tokens: usize,
}

/// One generated post.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Generated {
    /// The text.
    pub text: String,
    /// Its confidence.
    pub confidence: Confidence,
    /// Attempts it took (1 when the first one passed).
    pub attempts: usize,
}

/// Constraints resolved against the model once per call.
struct Plan {
    max_chars: usize,
    min_words: usize,
    topics: Vec<Vec<u32>>,
    /// Tokens taken whenever the chain offers them until present: topic
    /// words after the first, and `?` for a question hook.
    steer: Vec<Vec<u32>>,
    hook: Option<usize>,
    inv_temperature: f32,
    attempts: usize,
    /// The longest target length (tokens) that fits `max_chars` on average.
    max_target: usize,
}

enum Reject {
    Overlap,
    Constraint,
}

#[derive(Default)]
struct Tally {
    attempts: usize,
    overlap: usize,
    constraints: usize,
}

impl Tally {
    fn count(&mut self, r: &Reject) {
        self.attempts += 1;
        match r {
            Reject::Overlap => self.overlap += 1,
            Reject::Constraint => self.constraints += 1,
        }
    }

    fn error(&self, produced: usize, requested: usize) -> GeneratorError {
        GeneratorError::NoNovelOutput {
            attempts: self.attempts,
            overlap: self.overlap,
            constraints: self.constraints,
            produced,
            requested,
        }
    }
}

impl Generator {
    /// One new post meeting `opts`, with its confidence.
    ///
    /// # Errors
    ///
    /// [`GeneratorError::EmptyCorpus`], [`GeneratorError::CorpusTooSmall`],
    /// [`GeneratorError::InvalidInput`] (temperature, attempts),
    /// [`GeneratorError::ImpossibleConstraint`] (naming `max_chars`,
    /// `min_words`, `topic` or `hook`), or
    /// [`GeneratorError::NoNovelOutput`] when no attempt passed.
    pub fn generate(&self, opts: &GenerateOptions) -> Result<Generated, GeneratorError> {
        let plan = self.plan(opts)?;
        let mut rng = opts
            .seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        let mut ids = Vec::with_capacity(64);
        let mut scratch = Vec::with_capacity(64);
        let mut tally = Tally::default();
        for _ in 0..plan.attempts {
            match self.attempt(&plan, &mut rng, &mut ids, &mut scratch) {
                Ok(mut g) => {
                    g.attempts = tally.attempts + 1;
                    return Ok(g);
                }
                Err(r) => tally.count(&r),
            }
        }
        Err(tally.error(0, 1))
    }

    /// `n` distinct posts meeting `opts`, drawn from one random stream (so a
    /// seed makes the whole list reproducible). Duplicates count as failed
    /// attempts; the budget is `n × attempts`.
    ///
    /// # Errors
    ///
    /// As [`generate`](Self::generate); [`GeneratorError::NoNovelOutput`]
    /// says how many were produced before the budget ran out.
    pub fn generate_many(&self, n: usize, opts: &GenerateOptions) -> Result<Vec<Generated>, GeneratorError> {
        let plan = self.plan(opts)?;
        let mut rng = opts
            .seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        let mut ids = Vec::with_capacity(64);
        let mut scratch = Vec::with_capacity(64);
        let mut out = Vec::with_capacity(n);
        let mut seen = HashSet::with_capacity(n);
        let mut tally = Tally::default();
        let budget = n.saturating_mul(plan.attempts);
        let mut tries_for_this = 0;
        while out.len() < n {
            if tally.attempts >= budget {
                return Err(tally.error(out.len(), n));
            }
            tries_for_this += 1;
            match self.attempt(&plan, &mut rng, &mut ids, &mut scratch) {
                Ok(mut g) if seen.insert(g.text.clone()) => {
                    tally.attempts += 1;
                    g.attempts = tries_for_this;
                    tries_for_this = 0;
                    out.push(g);
                }
                Ok(_) => tally.count(&Reject::Constraint),
                Err(r) => tally.count(&r),
            }
        }
        Ok(out)
    }

    /// The confidence of any text under this model, with the novelty test
    /// applied (a corpus post scores 0: it is not novel).
    ///
    /// ```
    /// # use brisk_generator::Generator;
    /// let mut g = Generator::builder().build()?;
    /// g.train_texts(["the cat sat on the mat", "the dog sat on the rug", "a cat ran to the dog"])?;
    /// let copy = g.confidence("the cat sat on the mat");
    /// assert!(!copy.novel && copy.score == 0.0);
    /// let new = g.confidence("a cat sat on the rug");
    /// assert!(new.novel && (0.0..=1.0).contains(&new.score));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn confidence(&self, text: &str) -> Confidence {
        let mut ids = Vec::with_capacity(text.len() / 4 + 1);
        self.vocab.lookup_text(text, &mut ids);
        let run = self.index.longest_shared_run(&ids, ids.len());
        let structure = analyze_structure(text);
        self.confidence_of(&ids, run, &structure)
    }

    fn confidence_of(&self, ids: &[u32], run: usize, structure: &Structure) -> Confidence {
        let log_prob = self.scorer.mean_log_prob(ids, self.vocab.len());
        let fluency = self.percentile(log_prob);
        let structure_fit = self.style.fit(structure, ids.len());
        #[allow(clippy::cast_precision_loss)] // post lengths are tiny
        let novelty = if ids.is_empty() {
            0.0
        } else {
            1.0 - run as f64 / ids.len() as f64
        };
        let novel = !ids.is_empty() && run < failing_run(ids.len());
        let score = if novel {
            (0.75 * fluency + 0.25 * structure_fit).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Confidence {
            score,
            fluency,
            novelty,
            structure_fit,
            log_prob,
            longest_shared_run: run,
            overlap_limit: overlap_limit(ids.len()),
            novel,
            tokens: ids.len(),
        }
    }

    fn plan(&self, opts: &GenerateOptions) -> Result<Plan, GeneratorError> {
        self.check_ready()?;
        if !(opts.temperature.is_finite() && opts.temperature > 0.0) {
            return Err(GeneratorError::InvalidInput {
                field: "temperature",
                reason: format!("{} is not a finite number above 0", opts.temperature),
            });
        }
        if opts.attempts == 0 {
            return Err(GeneratorError::InvalidInput {
                field: "attempts",
                reason: "at least one attempt is needed".into(),
            });
        }
        if opts.max_chars < self.min_post_chars {
            let shortest = self.shortest_output_chars();
            if opts.max_chars < shortest {
                return Err(GeneratorError::ImpossibleConstraint {
                    constraint: "max_chars",
                    reason: format!(
                        "{} is below the shortest output this model can produce ({shortest} chars)",
                        opts.max_chars
                    ),
                });
            }
        }
        if opts.min_words > 0 && opts.min_words.saturating_mul(2) - 1 > opts.max_chars {
            return Err(GeneratorError::ImpossibleConstraint {
                constraint: "min_words",
                reason: format!(
                    "{} words cannot fit in max_chars {} (a word and a space take at least 2)",
                    opts.min_words, opts.max_chars
                ),
            });
        }
        let topics = opts
            .topics
            .iter()
            .map(|t| self.topic_ids(t))
            .collect::<Result<Vec<_>, _>>()?;
        let hook = opts.hook.map(hook_index);
        if let (Some(h), Some(kind)) = (hook, opts.hook)
            && self.hook_posts[h].is_empty()
        {
            return Err(GeneratorError::ImpossibleConstraint {
                constraint: "hook",
                reason: format!("no post in the corpus opens with a {kind:?} hook"),
            });
        }
        let mean_token = (self.style.mean_chars() / self.style.mean_tokens().max(1.0)).max(1.0);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let max_target = ((opts.max_chars as f64 / mean_token) as usize).max(1);
        let mut steer = topics.get(1..).unwrap_or(&[]).to_vec();
        if opts.hook == Some(HookKind::Question)
            && let Some(q) = self.vocab.get("?")
        {
            steer.push(vec![q]);
        }
        Ok(Plan {
            max_chars: opts.max_chars,
            min_words: opts.min_words,
            topics,
            steer,
            hook,
            inv_temperature: 1.0 / opts.temperature,
            attempts: opts.attempts,
            max_target,
        })
    }

    /// The ids a topic word matches: as written, lowercased, capitalised,
    /// as a hashtag.
    pub(crate) fn topic_ids(&self, topic: &str) -> Result<Vec<u32>, GeneratorError> {
        let word = topic.trim();
        let mut probe = Vec::new();
        self.vocab.lookup_text(word, &mut probe);
        if probe.len() != 1 {
            return Err(GeneratorError::ImpossibleConstraint {
                constraint: "topic",
                reason: format!("{topic:?} is not one word"),
            });
        }
        let bare = word.trim_start_matches('#');
        let lower = bare.to_lowercase();
        let mut capital = String::with_capacity(lower.len());
        let mut chars = lower.chars();
        if let Some(c) = chars.next() {
            capital.extend(c.to_uppercase());
            capital.push_str(chars.as_str());
        }
        let upper = bare.to_uppercase();
        let variants = [
            word.to_owned(),
            bare.to_owned(),
            lower.clone(),
            capital.clone(),
            upper,
            format!("#{bare}"),
            format!("#{lower}"),
            format!("#{capital}"),
        ];
        let mut ids: Vec<u32> = variants
            .iter()
            .filter_map(|v| self.vocab.get(v))
            .filter(|&id| self.index.count(id) > 0)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Err(GeneratorError::ImpossibleConstraint {
                constraint: "topic",
                reason: format!("the word {topic:?} never appears in the corpus"),
            });
        }
        Ok(ids)
    }

    /// The fewest chars of any path from the start to the end of the chain
    /// (Dijkstra over the chain's states; run only when `max_chars` is below
    /// the shortest corpus post).
    fn shortest_output_chars(&self) -> usize {
        let mask = self.chain.mask();
        let mut best = crate::chain::fast_map::<u128, usize>();
        let mut heap = BinaryHeap::new();
        heap.push(Reverse((0usize, 0u128)));
        best.insert(0, 0);
        while let Some(Reverse((cost, key))) = heap.pop() {
            if best.get(&key).is_some_and(|&c| c < cost) {
                continue;
            }
            let Some(list) = self.chain.successors(key) else {
                continue;
            };
            for &(next, _) in list {
                if next == BOUNDARY {
                    if cost > 0 {
                        return cost;
                    }
                    continue;
                }
                let step = self.vocab.chars(next) + usize::from(cost > 0);
                let k = push_key(key, next, mask);
                let c = cost + step;
                if best.get(&k).is_none_or(|&old| c < old) {
                    best.insert(k, c);
                    heap.push(Reverse((c, k)));
                }
            }
        }
        self.min_post_chars
    }

    /// Seeds `ids` for an attempt: a topic word walked back to a post start,
    /// or the opening of a post with the requested hook.
    fn seed(&self, plan: &Plan, rng: &mut fastrand::Rng, ids: &mut Vec<u32>) -> Option<()> {
        if let Some(first) = plan.topics.first() {
            let word = self.index.sample_occurrence(first, rng)?;
            ids.push(word);
            while ids.len() < MAX_PREFIX {
                let ctx = &ids[..ids.len().min(self.order)];
                match self.index.sample_predecessor(ctx, rng) {
                    Some(BOUNDARY) => break,
                    Some(prev) => ids.insert(0, prev),
                    None => return None,
                }
            }
        } else if let Some(h) = plan.hook {
            let posts = &self.hook_posts[h];
            let post = self.index.post(posts[rng.usize(..posts.len())] as usize);
            ids.extend_from_slice(&post[..post.len().min(self.order)]);
        }
        Some(())
    }

    fn attempt(
        &self,
        plan: &Plan,
        rng: &mut fastrand::Rng,
        ids: &mut Vec<u32>,
        scratch: &mut Vec<u32>,
    ) -> Result<Generated, Reject> {
        ids.clear();
        self.seed(plan, rng, ids).ok_or(Reject::Constraint)?;
        let mask = self.chain.mask();
        let mut key = 0u128;
        let mut joiner = Joiner::default();
        let (mut chars, mut words) = (0usize, 0usize);
        for &id in ids.iter() {
            key = push_key(key, id, mask);
            chars += usize::from(joiner.space_before(&self.vocab, id)) + self.vocab.chars(id);
            words += usize::from(is_word_kind(self.vocab.kind(id)));
        }
        if chars > plan.max_chars {
            return Err(Reject::Constraint);
        }
        let target = self
            .style
            .sample_length(rng)
            .min(plan.max_target)
            .max(ids.len() + 1);
        let extra_topics = plan.steer.as_slice();
        loop {
            if ids.len() >= MAX_TOKENS {
                return Err(Reject::Constraint);
            }
            let short = words < plan.min_words;
            let want_end = !short && (ids.len() >= target || chars * 10 >= plan.max_chars * 9);
            let next = if want_end && self.chain.can_follow(key, BOUNDARY) {
                BOUNDARY
            } else if want_end
                && let Some(t) = self.step_towards_end(key, rng, plan.max_chars - chars, &joiner)
            {
                t
            } else if let Some(t) = self.missing_topic(extra_topics, ids, key) {
                t
            } else {
                let avoid = if short { BOUNDARY } else { UNKNOWN };
                self.chain
                    .sample(key, rng, plan.inv_temperature, avoid)
                    .ok_or(Reject::Constraint)?
            };
            if next == BOUNDARY {
                break;
            }
            chars += usize::from(joiner.space_before(&self.vocab, next)) + self.vocab.chars(next);
            if chars > plan.max_chars {
                return Err(Reject::Constraint);
            }
            let k = self.vocab.kind(next);
            words += usize::from(is_word_kind(k));
            ids.push(next);
            key = push_key(key, next, mask);
        }
        // A post never ends on a line break.
        while ids.last().is_some_and(|&id| self.vocab.kind(id) == kind::NEWLINE) {
            ids.pop();
        }
        if words < plan.min_words
            || extra_topics
                .iter()
                .any(|cands| !ids.iter().any(|id| cands.contains(id)))
        {
            return Err(Reject::Constraint);
        }
        if ids.is_empty() {
            return Err(Reject::Constraint);
        }
        // The sampled ids first (cheap, and most rejections happen here),
        // then the text's own tokens: joined tokens can tokenize
        // differently ("3" "%" becomes "3%"), and the test must hold for
        // the text a caller gets.
        let fail = failing_run(ids.len());
        if self.index.longest_shared_run(ids, fail) >= fail {
            return Err(Reject::Overlap);
        }
        let mut text = String::with_capacity(chars);
        detokenize(&self.vocab, ids, &mut text);
        scratch.clear();
        self.vocab.lookup_text(&text, scratch);
        let fail = failing_run(scratch.len());
        let run = self.index.longest_shared_run(scratch, fail);
        if scratch.is_empty() || run >= fail {
            return Err(Reject::Overlap);
        }
        let structure = analyze_structure(&text);
        if plan.hook.is_some_and(|h| hook_index(structure.hook) != h) {
            return Err(Reject::Constraint);
        }
        Ok(Generated {
            confidence: self.confidence_of(scratch, run, &structure),
            text,
            attempts: 1,
        })
    }

    /// A successor of `key` after which the post can end and that fits in
    /// `room` chars, if any (a random one among them).
    fn step_towards_end(
        &self,
        key: u128,
        rng: &mut fastrand::Rng,
        room: usize,
        joiner: &Joiner,
    ) -> Option<u32> {
        let mask = self.chain.mask();
        let mut seen = 0u32;
        let mut pick = None;
        for &(t, _) in self.chain.successors(key)? {
            if t == BOUNDARY || !self.chain.can_follow(push_key(key, t, mask), BOUNDARY) {
                continue;
            }
            let mut j = *joiner;
            if usize::from(j.space_before(&self.vocab, t)) + self.vocab.chars(t) > room {
                continue;
            }
            seen += 1;
            if rng.u32(..seen) == 0 {
                pick = Some(t);
            }
        }
        pick
    }

    /// A topic word (beyond the first) not yet in `ids` that can follow
    /// `key`.
    #[inline]
    fn missing_topic(&self, topics: &[Vec<u32>], ids: &[u32], key: u128) -> Option<u32> {
        for cands in topics {
            if ids.iter().any(|id| cands.contains(id)) {
                continue;
            }
            if let Some(&t) = cands.iter().find(|&&t| self.chain.can_follow(key, t)) {
                return Some(t);
            }
        }
        None
    }
}
