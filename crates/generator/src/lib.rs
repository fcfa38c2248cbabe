//! brisk-generator: tweet-style text learned from one author's posts, with
//! a confidence score and a novelty test; an OpenAI-compatible backend
//! behind the `openai` feature.
//!
//! - [`Generator`]: trained on brisk-core [`Post`](brisk_core::Post)s
//!   (weighted by engagement) or plain texts, incrementally; tokens come
//!   from brisk-pattern-matcher's tokenizer (URLs, mentions, hashtags,
//!   cashtags, emoji) and are joined back with the spacing the corpus
//!   uses. [`Generator::generate`] and [`Generator::generate_many`] honour
//!   [`GenerateOptions`] (max chars, min words, topic words, hook kind,
//!   temperature, seed) and never return a copy of a corpus post.
//! - [`Confidence`]: a score in `[0, 1]` with its parts (fluency, novelty,
//!   structure fit); [`Generator::confidence`] scores any text.
//! - [`Style`]: the corpus's structure (hooks, lengths, hashtags, emoji,
//!   threads, lines) from brisk-pattern-matcher's structure analysis.
//! - [`Generator::to_bytes`] / [`Generator::from_bytes`]: a versioned,
//!   compact binary format.
//! - [`GeneratorError`]: the one error type of the local model.
//!
//! # Example
//!
//! ```
//! use brisk_generator::{GenerateOptions, Generator};
//!
//! let mut g = Generator::builder().build()?;
//! g.train_texts([
//!     "Shipping the new release today 🚀 #rust",
//!     "Shipping small changes every day beats big rewrites",
//!     "The new release makes small services faster",
//!     "Small teams ship faster when the build is fast",
//!     "Why is the build so slow today?",
//!     "The build is fast again after the release 🚀",
//! ])?;
//!
//! let opts = GenerateOptions::new().max_chars(120).seed(42);
//! let post = g.generate(&opts)?;
//! assert!(post.text.chars().count() <= 120);
//! assert!(post.confidence.novel && (0.0..=1.0).contains(&post.confidence.score));
//! // The same seed gives the same post.
//! assert_eq!(g.generate(&opts)?.text, post.text);
//!
//! // Three distinct posts, each about "build".
//! let many = g.generate_many(3, &GenerateOptions::new().topic("build").seed(1))?;
//! assert_eq!(many.len(), 3);
//! assert!(many.iter().all(|p| p.text.contains("build")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The novelty test
//!
//! An output of `L` tokens is rejected when it shares a run of more than
//! [`overlap_limit`]`(L) = min(15, round(0.7 × L))` consecutive tokens with
//! any one corpus post (markovify's rule, over brisk's tokens). It is
//! checked through an index of the corpus's bigrams, extending each match
//! in a flat token array: no scan of the corpus. After the allowed attempts
//! (10 by default) [`GeneratorError::NoNovelOutput`] is returned; a copy is
//! never returned.
//!
//! # How confidence is computed
//!
//! ```text
//! log_prob      = mean over the tokens and the end of ln S(w | u v)   (stupid backoff, 1- to 3-grams)
//! fluency       = share of held-out corpus posts whose log_prob is lower (ties count half)
//! structure_fit = mean over {hook kind, length bucket, hashtag count, emoji count, line count}
//!                 of count(corpus posts with the output's value) / count(the most common value)
//! novelty       = 1 − longest shared run / L
//! score         = novel ? 0.75 × fluency + 0.25 × structure_fit : 0
//! ```
//!
//! `S` is stupid backoff (α = 0.4): the trigram's relative frequency if
//! seen, else 0.4 × the bigram's, else 0.16 × the unigram's, else
//! 0.064 / (N + V). Every 10th trained post is held out of the scorer (not
//! of the chain) to give the reference scores, so fluency says how the
//! output compares with real posts the scorer has not memorised: 0.5 reads
//! "as fluent as a typical real post".
//!
//! # Feature flags
//!
//! - `openai` (off by default): the `openai` module, an OpenAI-compatible
//!   chat-completions client run through brisk-pipeline, brisk-rate-limiter
//!   and brisk-cache, with a local fallback; [`Generator`] implements its
//!   `LocalFallback` trait (the prompt's rarest known word becomes the
//!   topic).
//!
//! # Implementation notes
//!
//! - Tokens are interned to dense `u32` ids (one string arena, a hashbrown
//!   `HashTable` of ids); the chain maps a state packed in a `u128` (order
//!   ≤ 4) to a short `(id, cumulative weight)` vector, so a step is one
//!   foldhash lookup, one random float and a binary search.
//! - An attempt tracks its length in chars as it samples (the detokenizer's
//!   spacing rule runs per token) and builds no text until it has passed
//!   the novelty test.
//! - Spacing is learned: how often each token is glued to its neighbours
//!   in the corpus decides whether a space goes between two tokens
//!   (punctuation by its own habit, two word-like tokens only when both
//!   usually glue); straight double quotes alternate between opening and
//!   closing.
//! - A saved model is its vocabulary and its posts as token ids; loading
//!   replays them through the training code, so the loaded model generates
//!   exactly what the saved one did for the same seed.

mod chain;
mod error;
mod generate;
mod index;
mod model;
mod persist;
mod scorer;
mod style;
mod vocab;

#[cfg(feature = "openai")]
mod fallback_impl;

pub use error::GeneratorError;
pub use generate::{Confidence, GenerateOptions, Generated, overlap_limit};
pub use model::{Generator, GeneratorBuilder};
pub use persist::FORMAT_VERSION;
pub use style::Style;

#[cfg(feature = "openai")]
pub mod openai;
