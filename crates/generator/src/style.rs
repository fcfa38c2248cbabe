//! Structural statistics of a corpus, from brisk-pattern-matcher's
//! structure analysis, and how well a new post fits them.

use brisk_pattern_matcher::{HookKind, Structure};

/// Length buckets of 4 tokens, the last one open-ended.
const LENGTH_BUCKETS: usize = 32;
const LENGTH_BUCKET_WIDTH: usize = 4;

/// The index of a hook kind in [`Style::hook_share`]'s table.
pub(crate) fn hook_index(hook: HookKind) -> usize {
    match hook {
        HookKind::Question => 0,
        HookKind::NumberOrList => 1,
        HookKind::BoldClaim => 2,
        HookKind::Quote => 3,
        _ => 4,
    }
}

/// The structure of a corpus: hook kinds, lengths, hashtag and emoji
/// counts and placement, thread markers, lines. Generation follows it (the
/// target length of each output is drawn from the length distribution) and
/// [`Confidence::structure_fit`](crate::Confidence::structure_fit) measures
/// how typical an output is against it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Style {
    pub(crate) posts: u32,
    pub(crate) hooks: [u32; 5],
    /// Posts by length in tokens, in buckets of 4.
    pub(crate) lengths: [u32; LENGTH_BUCKETS],
    /// Posts by exact length in tokens (capped at 255), for target lengths.
    pub(crate) token_lengths: Vec<u32>,
    pub(crate) chars_total: u64,
    pub(crate) tokens_total: u64,
    /// Posts with 0, 1, 2, 3+ hashtags.
    pub(crate) hashtags: [u32; 4],
    /// Posts whose last token is a hashtag.
    pub(crate) hashtag_last: u32,
    /// Posts with 0, 1, 2, 3+ emoji.
    pub(crate) emoji: [u32; 4],
    /// Posts whose last token is an emoji.
    pub(crate) emoji_last: u32,
    /// Posts with a thread marker.
    pub(crate) threads: u32,
    /// Posts with 1, 2, 3+ non-blank lines.
    pub(crate) lines: [u32; 3],
    /// Posts with a question mark.
    pub(crate) questions: u32,
}

fn bucket4(n: usize) -> usize {
    n.min(3)
}

impl Style {
    pub(crate) fn add(&mut self, s: &Structure, tokens: usize) {
        self.posts += 1;
        self.hooks[hook_index(s.hook)] += 1;
        self.lengths[(tokens / LENGTH_BUCKET_WIDTH).min(LENGTH_BUCKETS - 1)] += 1;
        let exact = tokens.min(255);
        if self.token_lengths.len() <= exact {
            self.token_lengths.resize(exact + 1, 0);
        }
        self.token_lengths[exact] += 1;
        self.chars_total += s.chars as u64;
        self.tokens_total += tokens as u64;
        self.hashtags[bucket4(s.hashtags.len())] += 1;
        self.emoji[bucket4(s.emoji.len())] += 1;
        let last = s.tokens.checked_sub(1);
        self.hashtag_last += u32::from(last.is_some() && s.hashtags.last().map(|o| o.token) == last);
        self.emoji_last += u32::from(last.is_some() && s.emoji.last().map(|o| o.token) == last);
        self.threads += u32::from(s.thread.is_some());
        let lines = s.lines.count - s.lines.blank;
        self.lines[lines.saturating_sub(1).min(2)] += 1;
        self.questions += u32::from(s.is_question());
    }

    /// How many posts it was learned from.
    #[must_use]
    pub fn posts(&self) -> usize {
        self.posts as usize
    }

    fn share(&self, n: u32) -> f64 {
        if self.posts == 0 {
            0.0
        } else {
            f64::from(n) / f64::from(self.posts)
        }
    }

    /// The share of posts whose first line opens with `hook`.
    #[must_use]
    pub fn hook_share(&self, hook: HookKind) -> f64 {
        self.share(self.hooks[hook_index(hook)])
    }

    /// The mean length of a post in chars.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // corpus sizes are far below 2^52
    pub fn mean_chars(&self) -> f64 {
        if self.posts == 0 {
            0.0
        } else {
            self.chars_total as f64 / f64::from(self.posts)
        }
    }

    /// The mean length of a post in tokens.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // corpus sizes are far below 2^52
    pub fn mean_tokens(&self) -> f64 {
        if self.posts == 0 {
            0.0
        } else {
            self.tokens_total as f64 / f64::from(self.posts)
        }
    }

    /// The share of posts with at least one hashtag.
    #[must_use]
    pub fn hashtag_share(&self) -> f64 {
        self.share(self.posts - self.hashtags[0])
    }

    /// The share of posts that end with a hashtag.
    #[must_use]
    pub fn hashtag_last_share(&self) -> f64 {
        self.share(self.hashtag_last)
    }

    /// The share of posts with at least one emoji.
    #[must_use]
    pub fn emoji_share(&self) -> f64 {
        self.share(self.posts - self.emoji[0])
    }

    /// The share of posts that end with an emoji.
    #[must_use]
    pub fn emoji_last_share(&self) -> f64 {
        self.share(self.emoji_last)
    }

    /// The share of posts with a thread marker (`1/`, `2/5`, `🧵`).
    #[must_use]
    pub fn thread_share(&self) -> f64 {
        self.share(self.threads)
    }

    /// The share of posts with more than one non-blank line.
    #[must_use]
    pub fn multiline_share(&self) -> f64 {
        self.share(self.lines[1] + self.lines[2])
    }

    /// The share of posts that ask a question.
    #[must_use]
    pub fn question_share(&self) -> f64 {
        self.share(self.questions)
    }

    /// Draws a target length in tokens from the length distribution.
    pub(crate) fn sample_length(&self, rng: &mut fastrand::Rng) -> usize {
        if self.posts == 0 {
            return 20;
        }
        let mut r = rng.u32(..self.posts);
        for (len, &n) in self.token_lengths.iter().enumerate() {
            if r < n {
                return len;
            }
            r -= n;
        }
        self.token_lengths.len()
    }

    /// How typical `s` (with `tokens` tokens) is: the mean over five features
    /// (hook kind, length bucket, hashtag count, emoji count, lines) of the
    /// feature's frequency in the corpus over the most frequent value's.
    pub(crate) fn fit(&self, s: &Structure, tokens: usize) -> f64 {
        fn rel(counts: &[u32], i: usize) -> f64 {
            let max = counts.iter().copied().max().unwrap_or(0);
            if max == 0 {
                0.0
            } else {
                f64::from(counts[i]) / f64::from(max)
            }
        }
        let lines = (s.lines.count - s.lines.blank).saturating_sub(1).min(2);
        let parts = [
            rel(&self.hooks, hook_index(s.hook)),
            rel(
                &self.lengths,
                (tokens / LENGTH_BUCKET_WIDTH).min(LENGTH_BUCKETS - 1),
            ),
            rel(&self.hashtags, bucket4(s.hashtags.len())),
            rel(&self.emoji, bucket4(s.emoji.len())),
            rel(&self.lines, lines),
        ];
        parts.iter().sum::<f64>() / 5.0
    }
}
