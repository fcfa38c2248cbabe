//! A synthetic tweet corpus the tests make themselves: templates filled
//! from word lists with a seeded PRNG, so a corpus is the same every run.

use brisk_core::{Engagement, Post, Timestamp};

const OPENERS: &[&str] = &[
    "Just shipped",
    "Finally finished",
    "Still thinking about",
    "Loving",
    "Nobody talks about",
    "Quick thought on",
    "Hot take on",
    "Spent the morning on",
    "Really enjoying",
    "Not sure about",
];
const SUBJECTS: &[&str] = &[
    "the new release",
    "our build pipeline",
    "this coffee",
    "the morning run",
    "a tiny cache",
    "the team retro",
    "my reading list",
    "the garden",
    "rust async code",
    "the weekend plan",
    "a slow test suite",
    "the city at night",
];
const LINKS: &[&str] = &[
    "and it feels great",
    "and I learned a lot",
    "but it took forever",
    "because the docs were clear",
    "while the rain kept falling",
    "so the whole team can relax",
    "after a long week",
    "with a lot of help",
];
const TAILS: &[&str] = &[
    "!",
    ".",
    "...",
    " 🚀",
    " ☕",
    " #rust",
    " #buildinpublic",
    " 🎉",
    ". What do you think?",
    " - more soon.",
];
const QUESTIONS: &[&str] = &[
    "Why is",
    "Does anyone else love",
    "How do you deal with",
    "Who else is excited about",
];

/// `n` tweet-like texts, the same for the same `seed`.
pub(crate) fn texts(n: usize, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pick = |rng: &mut fastrand::Rng, list: &[&'static str]| list[rng.usize(..list.len())];
    (0..n)
        .map(|_| {
            if rng.u8(..10) == 0 {
                let q = pick(&mut rng, QUESTIONS);
                let s = pick(&mut rng, SUBJECTS);
                let l = pick(&mut rng, LINKS);
                return format!("{q} {s} {l}?");
            }
            let mut t = format!(
                "{} {} {}",
                pick(&mut rng, OPENERS),
                pick(&mut rng, SUBJECTS),
                pick(&mut rng, LINKS)
            );
            if rng.bool() {
                t.push_str(", ");
                t.push_str(pick(&mut rng, LINKS));
            }
            t.push_str(pick(&mut rng, TAILS));
            t
        })
        .collect()
}

/// The same texts as posts, with engagement on some of them.
pub(crate) fn posts(n: usize, seed: u64) -> Vec<Post> {
    texts(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let post = Post::new(
                i.to_string(),
                text,
                Timestamp::from_unix_millis(1_700_000_000_000),
            );
            if i % 3 == 0 {
                post.with_engagement(Engagement::new(i as u64 % 50, 2, 1, 100))
            } else {
                post
            }
        })
        .collect()
}

/// The tokens of `text` as strings (brisk-pattern-matcher's tokenizer).
pub(crate) fn token_strings(text: &str) -> Vec<&str> {
    brisk_pattern_matcher::tokens(text)
        .map(|t| t.text(text))
        .collect()
}

/// The longest run of consecutive tokens `text` shares with any of
/// `corpus`, by brute force (independent of the generator's index).
pub(crate) fn brute_force_longest_run(text: &str, corpus: &[String]) -> usize {
    let out = token_strings(text);
    let mut best = 0;
    for post in corpus {
        let p = token_strings(post);
        for i in 0..out.len() {
            for j in 0..p.len() {
                let mut k = 0;
                while i + k < out.len() && j + k < p.len() && out[i + k] == p[j + k] {
                    k += 1;
                }
                best = best.max(k);
            }
        }
    }
    best
}
