//! brisk-generator benchmarks.
//!
//! Corpus: the first 1,000 tweets of `../shared/data/corpus/vader_tweets.tsv`
//! when the file is there, else 1,000 generated tweet-like texts
//! (`brisk_benches::tweet_like_texts`), so the bench always builds and runs.
//!
//! - `gen_train_1k`: train on the 1,000 posts (target < 20 ms).
//!   - `brisk`: `Generator::train_texts` (tokenize, intern, chain, scorer,
//!     novelty index, structure statistics, held-out scores);
//!   - `naive_markov`: markovify's algorithm written plainly in Rust, the
//!     chain a user would write first: whitespace words as `String`s, a
//!     `HashMap<(String, String), HashMap<String, u32>>` of counts compiled
//!     to cumulative lists, and the joined corpus text for the overlap test.
//! - `gen_one`: one post with the default options, including the novelty
//!   test and its retries (targets p50 ≤ 50 µs, p99 ≤ 500 µs; criterion
//!   reports the mean and median per iteration, `gen-compare` prints p50
//!   and p99 over 1,000 outputs).
//!   - `brisk`: `Generator::generate`;
//!   - `naive_markov`: a walk cloning each word, joined with spaces, then
//!     markovify's overlap test (every window of `min(15, round(0.7 × n)) + 1`
//!     words searched in the joined corpus text), up to 10 attempts.
//!
//! The heap size of brisk's model is printed on stderr at setup.
//!
//! Run: `cargo bench -p brisk-benches --bench generator -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashMap;
use std::hint::black_box;

use brisk_generator::{GenerateOptions, Generator};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn tweets() -> Vec<String> {
    brisk_benches::bench_tweets("generator", 1000)
}

/// markovify's algorithm, written the plain way in Rust.
struct NaiveMarkov {
    chain: HashMap<(String, String), (Vec<String>, Vec<u32>)>,
    corpus_text: String,
}

const BEGIN: &str = "___BEGIN__";
const END: &str = "___END__";

impl NaiveMarkov {
    fn train(texts: &[String]) -> Self {
        let mut counts: HashMap<(String, String), HashMap<String, u32>> = HashMap::new();
        for text in texts {
            let words: Vec<&str> = text.split_whitespace().collect();
            let mut state = (BEGIN.to_owned(), BEGIN.to_owned());
            for w in words.iter().copied().chain(std::iter::once(END)) {
                *counts
                    .entry(state.clone())
                    .or_default()
                    .entry(w.to_owned())
                    .or_default() += 1;
                state = (state.1, w.to_owned());
            }
        }
        let chain = counts
            .into_iter()
            .map(|(k, next)| {
                let mut words = Vec::with_capacity(next.len());
                let mut cum = Vec::with_capacity(next.len());
                let mut total = 0;
                for (w, c) in next {
                    total += c;
                    words.push(w);
                    cum.push(total);
                }
                (k, (words, cum))
            })
            .collect();
        Self {
            chain,
            corpus_text: texts.join(" "),
        }
    }

    fn walk(&self, rng: &mut fastrand::Rng) -> Vec<String> {
        let mut state = (BEGIN.to_owned(), BEGIN.to_owned());
        let mut out = Vec::new();
        while let Some((words, cum)) = self.chain.get(&state) {
            let r = rng.u32(..*cum.last().unwrap_or(&1));
            let i = cum.partition_point(|&c| c <= r);
            let w = words[i].clone();
            if w == END {
                break;
            }
            out.push(w.clone());
            state = (state.1, w);
        }
        out
    }

    fn novel(&self, words: &[String]) -> bool {
        let max = ((words.len() as f64 * 0.7).round() as usize).min(15);
        let over = max + 1;
        let grams = words.len().saturating_sub(max).max(1);
        (0..grams).all(|i| {
            let end = (i + over).min(words.len());
            !self.corpus_text.contains(&words[i..end].join(" "))
        })
    }

    fn make_sentence(&self, rng: &mut fastrand::Rng) -> Option<String> {
        for _ in 0..10 {
            let words = self.walk(rng);
            if !words.is_empty() && self.novel(&words) {
                return Some(words.join(" "));
            }
        }
        None
    }
}

fn train_1k(c: &mut Criterion) {
    let texts = tweets();
    let mut g = Generator::builder().build().expect("valid settings");
    g.train_texts(&texts).expect("corpus");
    eprintln!(
        "generator: brisk model of {} posts, {} tokens: ~{} KB heap",
        g.posts(),
        g.tokens(),
        g.heap_bytes() / 1024
    );
    let mut group = c.benchmark_group("gen_train_1k");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("brisk", |b| {
        b.iter(|| {
            let mut g = Generator::builder().build().expect("valid settings");
            g.train_texts(black_box(&texts)).expect("corpus");
            g
        });
    });
    group.bench_function("naive_markov", |b| {
        b.iter(|| NaiveMarkov::train(black_box(&texts)));
    });
    group.finish();
}

fn one(c: &mut Criterion) {
    let texts = tweets();
    let mut g = Generator::builder().build().expect("valid settings");
    g.train_texts(&texts).expect("corpus");
    let naive = NaiveMarkov::train(&texts);
    let opts = GenerateOptions::new();
    let mut group = c.benchmark_group("gen_one");
    group.throughput(Throughput::Elements(1));
    group.bench_function("brisk", |b| b.iter(|| g.generate(black_box(&opts))));
    let mut rng = fastrand::Rng::with_seed(5);
    group.bench_function("naive_markov", |b| b.iter(|| naive.make_sentence(&mut rng)));
    group.finish();
}

criterion_group!(benches, train_1k, one);
criterion_main!(benches);
