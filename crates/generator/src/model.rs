//! The model: building, training, and what it knows.

use brisk_core::{Engagement, Post};
use brisk_pattern_matcher::analyze_structure;

use crate::chain::{Chain, MAX_ORDER};
use crate::error::GeneratorError;
use crate::index::Index;
use crate::scorer::Scorer;
use crate::style::{Style, hook_index};
use crate::vocab::{Joiner, Vocab};

/// Per-post facts kept beside the flat corpus.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PostMeta {
    pub(crate) weight: f32,
    pub(crate) hook: u8,
}

/// Builds a [`Generator`]; [`build`](Self::build) validates the settings.
///
/// ```
/// use brisk_generator::Generator;
///
/// let g = Generator::builder().order(3).holdout_every(5).build()?;
/// assert_eq!(g.order(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GeneratorBuilder {
    order: usize,
    holdout_every: usize,
    engagement_weighting: bool,
}

impl Default for GeneratorBuilder {
    fn default() -> Self {
        Self {
            order: 2,
            holdout_every: 10,
            engagement_weighting: true,
        }
    }
}

impl GeneratorBuilder {
    /// The chain's order: how many previous tokens choose the next one,
    /// from 1 to 4. Default 2. Higher orders copy longer runs of the corpus
    /// and need a larger corpus.
    #[must_use]
    pub const fn order(mut self, order: usize) -> Self {
        self.order = order;
        self
    }

    /// Every `n`-th post trained is held out of the scorer, so that fluency
    /// can be ranked against posts the scorer has not seen (it still feeds
    /// the chain and the novelty index). Default 10 (10% held out); 0 holds
    /// none out, and fluency is then ranked against the training posts.
    #[must_use]
    pub const fn holdout_every(mut self, n: usize) -> Self {
        self.holdout_every = n;
        self
    }

    /// Whether [`Generator::train`] weighs each post by its engagement:
    /// `1 + ln(1 + likes + reposts + replies)`; posts without engagement
    /// weigh 1. Default `true`.
    #[must_use]
    pub const fn engagement_weighting(mut self, on: bool) -> Self {
        self.engagement_weighting = on;
        self
    }

    /// An empty generator with these settings.
    ///
    /// # Errors
    ///
    /// [`GeneratorError::InvalidInput`] naming `order` when it is not in 1..=4,
    /// or `holdout_every` when it is 1 (that would hold out every post).
    pub fn build(self) -> Result<Generator, GeneratorError> {
        if !(1..=MAX_ORDER).contains(&self.order) {
            return Err(GeneratorError::InvalidInput {
                field: "order",
                reason: format!("{} is not between 1 and {MAX_ORDER}", self.order),
            });
        }
        if self.holdout_every == 1 {
            return Err(GeneratorError::InvalidInput {
                field: "holdout_every",
                reason: "1 would hold out every post; use 0 for none or 2 and above".into(),
            });
        }
        Ok(Generator {
            order: self.order,
            holdout_every: self.holdout_every,
            engagement_weighting: self.engagement_weighting,
            vocab: Vocab::new(),
            chain: Chain::new(self.order),
            scorer: Scorer::new(),
            index: Index::new(),
            style: Style::default(),
            posts: Vec::new(),
            hook_posts: Default::default(),
            reference_scores: Vec::new(),
            min_post_chars: usize::MAX,
        })
    }
}

/// A tweet-style text generator learned from a corpus: an n-gram chain over
/// brisk-pattern-matcher's tokens, a stupid-backoff scorer for confidence,
/// an n-gram index for the novelty test and the corpus's structure.
///
/// Train with [`train`](Self::train) (incremental: call it again to add
/// posts), generate with [`generate`](Self::generate) or
/// [`generate_many`](Self::generate_many), score any text with
/// [`confidence`](Self::confidence), persist with
/// [`to_bytes`](Self::to_bytes) / [`from_bytes`](Self::from_bytes).
/// Generation takes `&self`: share one model between threads.
#[derive(Clone, Debug)]
pub struct Generator {
    pub(crate) order: usize,
    pub(crate) holdout_every: usize,
    pub(crate) engagement_weighting: bool,
    pub(crate) vocab: Vocab,
    pub(crate) chain: Chain,
    pub(crate) scorer: Scorer,
    pub(crate) index: Index,
    pub(crate) style: Style,
    pub(crate) posts: Vec<PostMeta>,
    /// Posts by hook kind, for hook-constrained openings.
    pub(crate) hook_posts: [Vec<u32>; 5],
    /// Sorted fluency (mean ln S) of the held-out posts.
    pub(crate) reference_scores: Vec<f64>,
    pub(crate) min_post_chars: usize,
}

/// `1 + ln(1 + interactions)`.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)] // a weight, not a count
fn engagement_weight(e: Option<&Engagement>) -> f32 {
    e.map_or(1.0, |e| (1.0 + (e.interactions() as f64).ln_1p()) as f32)
}

impl Generator {
    /// A builder with the defaults (order 2, every 10th post held out,
    /// engagement weighting on).
    #[must_use]
    pub fn builder() -> GeneratorBuilder {
        GeneratorBuilder::default()
    }

    /// A generator of the default settings trained on `posts`, checked
    /// ready to generate.
    ///
    /// # Errors
    ///
    /// [`GeneratorError::EmptyCorpus`] when no post has text;
    /// [`GeneratorError::CorpusTooSmall`] when the corpus cannot produce
    /// anything but copies at order 2.
    pub fn from_posts<'a>(posts: impl IntoIterator<Item = &'a Post>) -> Result<Self, GeneratorError> {
        let mut g = Self::builder().build()?;
        g.train(posts)?;
        g.check_ready()?;
        Ok(g)
    }

    /// The chain's order.
    #[must_use]
    pub fn order(&self) -> usize {
        self.order
    }

    /// Posts trained on (empty texts are skipped and not counted).
    #[must_use]
    pub fn posts(&self) -> usize {
        self.index.posts()
    }

    /// Tokens trained on.
    #[must_use]
    pub fn tokens(&self) -> usize {
        self.index.tokens()
    }

    /// Distinct tokens (including the two special ones: post boundary and
    /// line break).
    #[must_use]
    pub fn vocabulary_len(&self) -> usize {
        self.vocab.len()
    }

    /// The corpus's structure.
    #[must_use]
    pub fn style(&self) -> &Style {
        &self.style
    }

    /// Approximate heap memory of the model in bytes, from the capacities
    /// of its vectors and hash tables.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.vocab.heap_bytes()
            + self.chain.heap_bytes()
            + self.scorer.heap_bytes()
            + self.index.heap_bytes()
            + self.posts.capacity() * 8
            + self.hook_posts.iter().map(|v| v.capacity() * 4).sum::<usize>()
            + self.reference_scores.capacity() * 8
            + self.style.token_lengths.capacity() * 4
    }

    /// Adds `posts`, each weighted by its engagement when
    /// [`engagement_weighting`](GeneratorBuilder::engagement_weighting) is
    /// on. Training is incremental: earlier posts are kept. Returns how many
    /// posts were added (posts with no tokens are skipped).
    ///
    /// # Errors
    ///
    /// [`GeneratorError::EmptyCorpus`] when the model still has no post.
    pub fn train<'a>(&mut self, posts: impl IntoIterator<Item = &'a Post>) -> Result<usize, GeneratorError> {
        let mut ids = Vec::new();
        let mut added = 0;
        for post in posts {
            let weight = if self.engagement_weighting {
                engagement_weight(post.engagement.as_ref())
            } else {
                1.0
            };
            added += usize::from(self.add_text(&post.text, weight, &mut ids));
        }
        self.finish()?;
        Ok(added)
    }

    /// Adds plain texts, each of weight 1. Returns how many were added.
    ///
    /// # Errors
    ///
    /// [`GeneratorError::EmptyCorpus`] when the model still has no post.
    pub fn train_texts<S: AsRef<str>>(
        &mut self,
        texts: impl IntoIterator<Item = S>,
    ) -> Result<usize, GeneratorError> {
        let mut ids = Vec::new();
        let mut added = 0;
        for text in texts {
            added += usize::from(self.add_text(text.as_ref(), 1.0, &mut ids));
        }
        self.finish()?;
        Ok(added)
    }

    /// Adds texts with explicit weights (a post of weight 2 counts as two).
    /// Returns how many were added.
    ///
    /// # Errors
    ///
    /// [`GeneratorError::InvalidInput`] naming `weight` for a weight that is
    /// not finite and positive (the texts before it are kept);
    /// [`GeneratorError::EmptyCorpus`] when the model still has no post.
    #[allow(clippy::cast_possible_truncation)] // weights are relative
    pub fn train_weighted<S: AsRef<str>>(
        &mut self,
        texts: impl IntoIterator<Item = (S, f64)>,
    ) -> Result<usize, GeneratorError> {
        let mut ids = Vec::new();
        let mut added = 0;
        for (text, weight) in texts {
            if !(weight.is_finite() && weight > 0.0) {
                // Keep what was added usable; the weight is the error to report.
                self.finish().ok();
                return Err(GeneratorError::InvalidInput {
                    field: "weight",
                    reason: format!("{weight} is not a finite positive number"),
                });
            }
            added += usize::from(self.add_text(text.as_ref(), weight as f32, &mut ids));
        }
        self.finish()?;
        Ok(added)
    }

    fn add_text(&mut self, text: &str, weight: f32, ids: &mut Vec<u32>) -> bool {
        ids.clear();
        self.vocab.intern_text(text, ids);
        if ids.is_empty() {
            return false;
        }
        let structure = analyze_structure(text);
        self.style.add(&structure, ids.len());
        #[allow(clippy::cast_possible_truncation)] // an index below 5
        let hook = hook_index(structure.hook) as u8;
        self.add_ids(ids, weight, hook);
        true
    }

    /// Adds one tokenized post to the chain, the index and (unless held
    /// out) the scorer. The style is updated by the caller.
    pub(crate) fn add_ids(&mut self, ids: &[u32], weight: f32, hook: u8) {
        let i = self.posts.len();
        let held_out = self.holdout_every > 1 && i % self.holdout_every == self.holdout_every - 1;
        self.index.add(ids);
        self.chain.add(ids, weight);
        if !held_out {
            self.scorer.add(ids, weight);
        }
        self.posts.push(PostMeta { weight, hook });
        self.hook_posts[usize::from(hook)].push(u32::try_from(i).expect("fewer than 2^32 posts"));
        self.min_post_chars = self.min_post_chars.min(self.chars_of(ids));
    }

    fn is_held_out(&self, i: usize) -> bool {
        self.holdout_every > 1 && i % self.holdout_every == self.holdout_every - 1
    }

    /// Recomputes what depends on the whole corpus: the reference fluency
    /// scores of the held-out posts.
    pub(crate) fn finish(&mut self) -> Result<(), GeneratorError> {
        if self.index.posts() == 0 {
            return Err(GeneratorError::EmptyCorpus);
        }
        let vocab_len = self.vocab.len();
        let held: Vec<usize> = (0..self.index.posts()).filter(|&i| self.is_held_out(i)).collect();
        let pick: Box<dyn Iterator<Item = usize>> = if held.is_empty() {
            Box::new(0..self.index.posts())
        } else {
            Box::new(held.into_iter())
        };
        let mut scores: Vec<f64> = pick
            .map(|i| self.scorer.mean_log_prob(self.index.post(i), vocab_len))
            .collect();
        scores.sort_by(f64::total_cmp);
        self.reference_scores = scores;
        Ok(())
    }

    /// Checks that the model can generate: it has posts, and some state of
    /// the chain past the start has two continuations (otherwise every
    /// output would copy a post).
    ///
    /// # Errors
    ///
    /// [`GeneratorError::EmptyCorpus`] or [`GeneratorError::CorpusTooSmall`]
    /// (with a lower order to try).
    pub fn check_ready(&self) -> Result<(), GeneratorError> {
        if self.index.posts() == 0 {
            return Err(GeneratorError::EmptyCorpus);
        }
        if self.chain.branching_states() == 0 {
            return Err(GeneratorError::CorpusTooSmall {
                order: self.order,
                posts: self.index.posts(),
                tokens: self.index.tokens(),
                suggested_order: (self.order > 1).then(|| self.order - 1),
            });
        }
        Ok(())
    }

    /// The length in chars of `ids` once detokenized.
    pub(crate) fn chars_of(&self, ids: &[u32]) -> usize {
        let mut joiner = Joiner::default();
        ids.iter()
            .map(|&id| usize::from(joiner.space_before(&self.vocab, id)) + self.vocab.chars(id))
            .sum()
    }

    /// The fluency percentile of a mean log-probability among the
    /// reference (held-out) posts: the share scoring lower, counting ties
    /// as half.
    #[allow(clippy::cast_precision_loss)] // corpus sizes are far below 2^52
    pub(crate) fn percentile(&self, score: f64) -> f64 {
        let r = &self.reference_scores;
        if r.is_empty() {
            return 0.0;
        }
        let below = r.partition_point(|&s| s < score);
        let not_above = r.partition_point(|&s| s <= score);
        (below as f64 + (not_above - below) as f64 / 2.0) / r.len() as f64
    }
}
