//! Shared inputs for brisk's criterion benchmarks.
//!
//! The benchmarks themselves live in `benches/*.rs`, one file per component,
//! each measuring brisk beside the library a user would otherwise pick, in
//! the same run. See `docs/benchmarks.md` for the figures and how to
//! reproduce them. Inputs are generated from a seed, so every run measures
//! the same data and no benchmark needs a file to build or run.

pub mod cache_workload;

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

/// The shared VADER tweet corpus (`../shared/data/corpus/vader_tweets.tsv`,
/// text in column 3), development data that nothing needs to build or test.
pub const VADER_TWEETS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/corpus/vader_tweets.tsv"
);

/// The first `n` tweets of [`VADER_TWEETS`] when the file is there and
/// holds that many, otherwise `n` generated tweet-like texts (seed 11). It
/// says on stderr, prefixed by `bench`, which it used.
#[must_use]
pub fn bench_tweets(bench: &str, n: usize) -> Vec<String> {
    let from_file: Vec<String> = std::fs::read_to_string(VADER_TWEETS)
        .map(|s| {
            s.lines()
                .filter_map(|l| l.splitn(3, '\t').nth(2))
                .map(str::to_owned)
                .take(n)
                .collect()
        })
        .unwrap_or_default();
    if from_file.len() == n {
        eprintln!("{bench}: {n} tweets from {VADER_TWEETS}");
        from_file
    } else {
        eprintln!("{bench}: {VADER_TWEETS} not found, using generated tweet-like texts");
        tweet_like_texts(n, 11)
    }
}
