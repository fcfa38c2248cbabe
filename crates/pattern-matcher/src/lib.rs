//! brisk-pattern-matcher: decide, per short text, whether it is relevant to
//! the entities you watch, how confident that is and why; and describe the
//! structure of a post.
//!
//! - [`Dictionary`]: [`Entity`]s with aliases (`ABC Corp`, `$ABC`, `@abc`,
//!   `#abc`), weighted [`Keyword`]s with categories, [`ContextTerm`]s,
//!   [`Exclusion`]s (penalty or veto) and negation words; from TOML, JSON or
//!   [`DictionaryBuilder`]; validated whole, every [`Problem`] with its place.
//! - [`Matcher`]: literals through one aho-corasick automaton
//!   (leftmost-longest, case-insensitive, Unicode-lowercased when needed),
//!   word boundaries checked in our own code, regexes where literals are not
//!   enough. [`Matcher::score`] gives a [`Relevance`]: the matches with byte
//!   spans and token positions, a 0–100 score, the `relevant` flag and the
//!   [`Signal`]s that explain the score. [`Matcher::analyze`] adds the
//!   [`Structure`]; [`Matcher::analyze_batch`] runs many texts;
//!   [`Matcher::reload`] swaps the dictionary without blocking readers.
//! - [`tokens`] / [`tokenize`]: the tokenizer (URLs, @mentions, #hashtags,
//!   $cashtags, emoji with ZWJ sequences, numbers, punctuation), public for
//!   other crates.
//! - [`analyze_structure`]: length, tags, emoji, questions, numbers,
//!   thread markers, the first-line [`HookKind`], [`Casing`], [`Lines`].
//!
//! # Example
//!
//! ```
//! use brisk_pattern_matcher::{Dictionary, Matcher, Rule};
//!
//! let dict = Dictionary::from_toml_str(r##"
//!     [[entities]]
//!     id = "abc"
//!     aliases = ["ABC Corp", "$ABC", "@abc", "#abc"]
//!
//!     [[keywords]]
//!     term = "earnings"
//!     weight = 30
//!     category = "finance"
//!
//!     [[context]]
//!     term = "nasdaq"
//!
//!     [[exclusions]]
//!     term = "giveaway"
//!     veto = true
//! "##)?;
//! let matcher = Matcher::builder(dict).threshold(50.0).build()?;
//!
//! let text = "$ABC earnings beat on the Nasdaq 🚀";
//! let a = matcher.analyze(text);
//! let r = &a.relevance;
//! assert_eq!(r.entities[0].span.text(text), "$ABC");
//! assert_eq!(r.keywords[0].token, 1);
//! // entity 30 + keyword 30 + proximity 20 + context 10
//! assert_eq!(r.score, 90.0);
//! assert!(r.relevant);
//! assert_eq!(r.signals.iter().map(|s| s.points).sum::<f64>(), r.score);
//! assert_eq!(a.structure.emoji.len(), 1);
//!
//! // Negation dampens a keyword; a veto wins over everything.
//! let negated = matcher.score("$ABC did not report earnings");
//! assert!(negated.signals.iter().any(|s| s.rule == Rule::Negation));
//! assert!(negated.score < r.score);
//! let vetoed = matcher.score("$ABC earnings giveaway!!");
//! assert!(vetoed.vetoed && vetoed.score == 0.0 && !vetoed.relevant);
//!
//! // Entity names inside URLs do not count.
//! assert!(matcher.score("see https://abc.example/abc").entities.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How the score is built
//!
//! The score is the sum of these signals, clamped to 0..=100:
//!
//! 1. each distinct entity mentioned adds its weight (default 30);
//! 2. each distinct keyword adds, for its best occurrence, its weight plus a
//!    proximity boost from the nearest entity `d` tokens away:
//!    `boost * (window + 1 - d) / window` for `1 <= d <= window` (defaults
//!    20 and 5 tokens); if a negation word stands at most 3 tokens before
//!    it, both are multiplied by the negation factor (default 0.25);
//! 3. each distinct context term adds its boost (default 10), if an entity
//!    or a keyword matched;
//! 4. each distinct exclusion subtracts its penalty (default 30);
//! 5. a vetoing exclusion sets the score to 0.
//!
//! A text is relevant when its score reaches the threshold (default 50)
//! and it was not vetoed. `docs/pattern-matcher.md` has the full format and
//! worked examples.
//!
//! # Feature flags
//!
//! - `rayon` (off by default): [`Matcher::analyze_batch`] runs batches of at
//!   least [`MatcherBuilder::parallel_min_batch`] texts on rayon's pool.
//!
//! # Implementation notes
//!
//! - One automaton for every literal, built leftmost-longest and
//!   case-sensitive over char-by-char lowercased literals (half the memory
//!   of an ASCII-case-insensitive DFA). ASCII text is scanned in place by
//!   brisk's own loop over aho-corasick's `Automaton` trait, which
//!   lowercases each byte through a table as it reads it (same offsets);
//!   non-ASCII text is fully lowercased into a buffer only when a literal
//!   is non-ASCII (or the text holds U+212A KELVIN SIGN, the one non-ASCII
//!   char that lowercases to ASCII), and spans are mapped back to whole
//!   chars of the original.
//! - Word boundaries are checked after the automaton, not with a `RegexSet`
//!   (about 50× slower at 10k patterns); a longest match that fails its
//!   right boundary falls back to a shorter literal at the same start
//!   through a search bounded to end before it. Han, kana and Thai need no boundary.
//! - A DFA is built for up to [`Automaton::AUTO_DFA_MAX_PATTERNS`]
//!   literals, a contiguous NFA above, to keep memory per pattern small.
//! - Hot reload goes through `arc-swap`: readers load the current snapshot
//!   without locking; a reload compiles first and then swaps one pointer.

mod dictionary;
mod error;
mod matcher;
mod scan;
mod score;
mod structure;
mod token;

pub use dictionary::{
    ContextTerm, DEFAULT_NEGATIONS, Dictionary, DictionaryBuilder, Entity, Exclusion, Keyword, MAX_WEIGHT,
    Pattern,
};
pub use error::{BuildError, DictionaryError, Location, Problem, ProblemKind, TextError};
pub use matcher::{Analysis, Matcher, MatcherBuilder, MatcherStats};
pub use scan::Automaton;
pub use score::{EntityMatch, KeywordMatch, Relevance, Rule, Signal, TermMatch};
pub use structure::{Casing, HookKind, Lines, Occurrence, Structure, ThreadMarker, analyze_structure};
pub use token::{Span, Token, TokenKind, Tokens, tokenize, tokens};
