//! brisk-pattern-matcher benchmarks.
//!
//! Texts: the first 1,000 tweets of `../shared/data/corpus/vader_tweets.tsv`
//! when the file is there, else 1,000 generated tweet-like texts
//! (`brisk_benches::tweet_like_texts`), so the bench always builds and runs.
//!
//! Dictionaries of N terms, the same for the same N: one entity per 20
//! terms with two aliases (a name and a `$CASHTAG`), 50 of the names being
//! words of the texts (frequency ranks 150–199), the rest generated; then
//! keywords: 100 words of the texts (ranks 50–149), the rest generated words
//! and two-word phrases that do not occur. Every size thus sees the same
//! real matches; the generated terms only make the automaton bigger.
//!
//! - `match_1k_tweets`: 1,000 tweets against 1,000 terms.
//!   - `brisk`: `Matcher::analyze` (match, boundaries, score, structure);
//!   - `regexset`: what a user of `RegexSet` must do to get the matches
//!     brisk scores: one `RegexSet` of `(?i)\bTERM\b` patterns (`\b` only
//!     next to a word char: `\b\$ABC` would need a word char before the
//!     `$` and never match a cashtag), `matches()` per text for which terms
//!     occur, then each matched term's own `Regex` (`find_iter`) for where,
//!     since a set reports no positions and the score needs them (token
//!     distances for proximity and negation, spans in the result). The set
//!     holds the same literals as brisk's automaton (terms and negation
//!     words). Still less work than brisk: no score, no structure.
//!   - `regexset_matches_only`: `matches()` alone (which terms, no
//!     positions, no counts), the lower bound of any `RegexSet` solution.
//! - `match_scaling/{brisk,aho_corasick_raw}/{1000,10000,100000}`: the
//!   same 1,000 tweets against 1k, 10k and 100k terms.
//!   - `brisk`: `Matcher::score` (match, boundaries, score; no structure);
//!   - `aho_corasick_raw`: a bare `find_iter(..).count()` over an automaton
//!     with the same literals (terms and negation words), leftmost-longest,
//!     of the same kind brisk's `Automaton::Auto` picks, and
//!     ASCII-case-insensitive over the text as it is, as a user would write
//!     it (brisk instead builds a case-sensitive automaton, half the DFA's
//!     size, and scans an ASCII-lowercased copy), so the ratio is brisk's
//!     overhead over the plain scan.
//!
//! Memory per pattern of each dictionary is printed on stderr at setup.
//!
//! Run: `cargo bench -p brisk-benches --bench pattern_matcher`

use std::collections::HashMap;
use std::hint::black_box;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use brisk_pattern_matcher::{Automaton, DEFAULT_NEGATIONS, Dictionary, Entity, Keyword, Matcher};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use regex::{Regex, RegexBuilder, RegexSetBuilder};

fn tweets() -> Vec<String> {
    brisk_benches::bench_tweets("pattern_matcher", 1000)
}

/// Words of the texts by falling frequency (lowercase, letters only, 4+).
fn vocabulary(texts: &[String]) -> Vec<String> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in texts {
        for w in t.split(|c: char| !c.is_ascii_alphabetic()) {
            if w.len() >= 4 {
                *counts.entry(w.to_ascii_lowercase()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(String, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words.into_iter().map(|(w, _)| w).collect()
}

fn generated_word(rng: &mut fastrand::Rng) -> String {
    const SYLLABLES: &[&str] = &[
        "ka", "zo", "ri", "ven", "tor", "lu", "mex", "qua", "dri", "pol", "sen", "vy", "xan", "bre", "thu",
    ];
    let n = rng.usize(2..=4);
    (0..n).map(|_| SYLLABLES[rng.usize(..SYLLABLES.len())]).collect()
}

/// Keywords taken from the texts' vocabulary (ranks 50 to 149), at every
/// dictionary size, so that every size sees the same matches and the
/// scaling group measures the dictionary's size alone.
const REAL_KEYWORDS: usize = 100;
/// Entity names taken from the texts' vocabulary (ranks 150 to 199).
const REAL_ENTITIES: usize = 50;

/// A dictionary of exactly `n` terms (plus the default negation words), and
/// the terms themselves.
fn dictionary(n: usize, vocab: &[String]) -> (Dictionary, Vec<String>) {
    let mut rng = fastrand::Rng::with_seed(n as u64);
    let mut seen = std::collections::HashSet::new();
    let mut terms = Vec::with_capacity(n);
    let mut builder = Dictionary::builder();
    let entities = n / 20;
    let mut i = 0;
    while i < entities {
        // Names from the texts' vocabulary first (so some texts mention
        // an entity), then generated; tickers are unique by construction.
        let name = match vocab.get(150 + i) {
            Some(w) if i < REAL_ENTITIES => w.clone(),
            _ => generated_word(&mut rng),
        };
        if !seen.insert(name.clone()) {
            continue;
        }
        let ticker: String = std::iter::once('$')
            .chain((0..4).scan(i, |n, _| {
                let c = char::from(b'A' + (*n % 26) as u8);
                *n /= 26;
                Some(c)
            }))
            .collect();
        seen.insert(ticker.to_ascii_lowercase());
        let mut cap = name.clone();
        cap[..1].make_ascii_uppercase();
        builder = builder.entity(Entity::new(name).alias(cap.clone()).alias(ticker.clone()));
        terms.push(cap);
        terms.push(ticker);
        i += 1;
    }
    let real = vocab.iter().skip(50).take(REAL_KEYWORDS);
    for w in real {
        if terms.len() >= n {
            break;
        }
        if seen.insert(w.clone()) {
            terms.push(w.clone());
        }
    }
    while terms.len() < n {
        let w = if rng.bool() {
            generated_word(&mut rng)
        } else {
            format!("{} {}", generated_word(&mut rng), generated_word(&mut rng))
        };
        if seen.insert(w.clone()) {
            terms.push(w);
        }
    }
    for (k, t) in terms.iter().enumerate().skip(2 * entities) {
        builder = builder.keyword(Keyword::term(t.clone(), 5.0 + (k % 8) as f64 * 5.0));
    }
    (builder.build().expect("bench dictionary is valid"), terms)
}

fn match_1k_tweets(c: &mut Criterion) {
    let texts = tweets();
    let vocab = vocabulary(&texts);
    let (dict, terms) = dictionary(1000, &vocab);
    let matcher = Matcher::new(dict).unwrap();
    let relevant = texts.iter().filter(|t| matcher.score(t).relevant).count();
    let matched = texts
        .iter()
        .filter(|t| !matcher.score(t).keywords.is_empty())
        .count();
    eprintln!("match_1k_tweets: {matched} of 1,000 texts match a keyword, {relevant} are relevant");
    // The same literals as brisk's automaton: the terms and the negation
    // words (the score needs where those are too).
    let sources: Vec<String> = terms
        .iter()
        .map(String::as_str)
        .chain(DEFAULT_NEGATIONS.iter().copied())
        .map(bounded_regex)
        .collect();
    let set = RegexSetBuilder::new(&sources)
        .size_limit(1 << 30)
        .dfa_size_limit(1 << 30)
        .build()
        .unwrap();
    let singles: Vec<Regex> = sources
        .iter()
        .map(|s| RegexBuilder::new(s).build().unwrap())
        .collect();
    let found: usize = texts.iter().map(|t| set.matches(t).iter().count()).sum();
    let hits: usize = texts
        .iter()
        .map(|t| {
            let r = matcher.score(t);
            r.entities.len() + r.keywords.len() + r.negations.len()
        })
        .sum();
    let positions: usize = texts
        .iter()
        .map(|t| {
            set.matches(t)
                .iter()
                .map(|i| singles[i].find_iter(t).count())
                .sum::<usize>()
        })
        .sum();
    eprintln!(
        "match_1k_tweets: brisk finds {hits} matches; regexset {found} (text, term) pairs, {positions} matches"
    );

    let mut group = c.benchmark_group("match_1k_tweets");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("brisk", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for t in &texts {
                let a = matcher.analyze(black_box(t));
                acc += a.relevance.score + a.structure.words as f64;
            }
            acc
        });
    });
    group.bench_function("regexset", |b| {
        b.iter(|| {
            let mut acc = 0;
            for t in &texts {
                let t = black_box(t.as_str());
                for i in &set.matches(t) {
                    for m in singles[i].find_iter(t) {
                        acc += m.start() + i;
                    }
                }
            }
            acc
        });
    });
    group.bench_function("regexset_matches_only", |b| {
        b.iter(|| {
            let mut acc = 0;
            for t in &texts {
                acc += set.matches(black_box(t)).iter().count();
            }
            acc
        });
    });
    group.finish();
}

/// `(?i)TERM` with `\b` on each side where the term's edge is a word char
/// (a `\b` next to `$` or `#` would ask for a word char outside the term).
fn bounded_regex(term: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let left = if word(term.chars().next()) { r"\b" } else { "" };
    let right = if word(term.chars().next_back()) { r"\b" } else { "" };
    format!("(?i){left}{}{right}", regex::escape(term))
}

fn match_scaling(c: &mut Criterion) {
    let texts = tweets();
    let vocab = vocabulary(&texts);
    let mut group = c.benchmark_group("match_scaling");
    group.throughput(Throughput::Elements(texts.len() as u64));
    for n in [1_000usize, 10_000, 100_000] {
        let (dict, terms) = dictionary(n, &vocab);
        let matcher = Matcher::new(dict).unwrap();
        let stats = matcher.stats();
        eprintln!(
            "match_scaling/{n}: {} patterns, {} bytes, {:.1} bytes per pattern",
            stats.patterns,
            stats.memory_bytes,
            stats.memory_bytes as f64 / stats.patterns as f64
        );
        // The same literals (terms and negation words), match kind and
        // automaton kind as brisk's automaton; case handled the way a user
        // would (ASCII-case-insensitive, text scanned in place).
        let literals: Vec<String> = terms
            .iter()
            .map(|t| t.to_lowercase())
            .chain(DEFAULT_NEGATIONS.iter().map(|&w| w.to_owned()))
            .collect();
        let kind = if literals.len() <= Automaton::AUTO_DFA_MAX_PATTERNS {
            AhoCorasickKind::DFA
        } else {
            AhoCorasickKind::ContiguousNFA
        };
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .kind(Some(kind))
            .build(&literals)
            .unwrap();
        eprintln!(
            "match_scaling/{n}: the bare automaton alone holds {} bytes, {:.1} bytes per pattern",
            ac.memory_usage(),
            ac.memory_usage() as f64 / literals.len() as f64
        );
        group.bench_with_input(BenchmarkId::new("brisk", n), &n, |b, _| {
            b.iter(|| {
                let mut acc = 0.0;
                for t in &texts {
                    acc += matcher.score(black_box(t)).score;
                }
                acc
            });
        });
        group.bench_with_input(BenchmarkId::new("aho_corasick_raw", n), &n, |b, _| {
            b.iter(|| {
                let mut acc = 0;
                for t in &texts {
                    acc += ac.find_iter(black_box(t.as_str())).count();
                }
                acc
            });
        });
    }
    group.finish();
}

criterion_group!(benches, match_1k_tweets, match_scaling);
criterion_main!(benches);
