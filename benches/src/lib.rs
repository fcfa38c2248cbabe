//! Shared inputs for brisk's criterion benchmarks.
//!
//! The benchmarks themselves live in `benches/*.rs`, one file per component,
//! each measuring brisk beside the library a user would otherwise pick, in
//! the same run. See `docs/benchmarks.md` for the figures and how to
//! reproduce them. Inputs are generated from a seed, so every run measures
//! the same data and no benchmark needs a file to build or run.

const WORDS: &[&str] = &[
    "the",
    "market",
    "is",
    "up",
    "today",
    "and",
    "$ABC",
    "looks",
    "strong",
    "after",
    "earnings",
    "call",
    "@analyst",
    "says",
    "buy",
    "#crypto",
    "rally",
    "continues",
    "🚀",
    "new",
    "model",
    "release",
    "was",
    "announced",
    "https://example.com/news/123",
    "what",
    "do",
    "you",
    "think?",
    "thread",
    "1/",
];

/// `n` tweet-like texts (mentions, hashtags, cashtags, emoji, URLs), 40 to 280
/// bytes long, the same for the same `seed`.
///
/// ```
/// let texts = brisk_benches::tweet_like_texts(1000, 42);
/// assert_eq!(texts.len(), 1000);
/// assert!(texts.iter().all(|t| (40..=280).contains(&t.len())));
/// assert_eq!(texts, brisk_benches::tweet_like_texts(1000, 42));
/// ```
#[must_use]
pub fn tweet_like_texts(n: usize, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| {
            let target = rng.usize(40..=280);
            let mut text = String::with_capacity(target);
            loop {
                let word = WORDS[rng.usize(..WORDS.len())];
                if text.len() + word.len() + 1 > target {
                    break;
                }
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(word);
            }
            while text.len() < target {
                text.push('.');
            }
            text
        })
        .collect()
}
