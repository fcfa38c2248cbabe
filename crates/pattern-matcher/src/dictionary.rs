//! The dictionary: entities with aliases, weighted keywords, context terms,
//! exclusions and negation words; from TOML, JSON or code; validated whole.
//
// Design: the file format is parsed into private `Raw*` structs (serde, with
// `deny_unknown_fields` so a misspelt field is an error with a line number),
// then converted into the public types, then validated in one pass that
// collects every problem with its place. A `Dictionary` value is therefore
// always valid: `Matcher` only compiles it.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{DictionaryError, Location, Problem, ProblemKind};
use crate::scan::fold;

/// The largest weight, boost or penalty: scores run from 0 to 100.
pub const MAX_WEIGHT: f64 = 100.0;

/// The negation words used when a dictionary does not list its own.
pub const DEFAULT_NEGATIONS: &[&str] = &[
    "not",
    "no",
    "never",
    "none",
    "nor",
    "neither",
    "without",
    "don't",
    "doesn't",
    "didn't",
    "isn't",
    "wasn't",
    "aren't",
    "won't",
    "can't",
    "cannot",
    "don’t",
    "doesn’t",
    "didn’t",
    "isn’t",
    "wasn’t",
    "aren’t",
    "won’t",
    "can’t",
];

/// A literal term or a regular expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pattern {
    /// Matched case-insensitively, on word boundaries, through the
    /// aho-corasick automaton.
    Literal(String),
    /// A regex (the `regex` crate's syntax), run as written on the original
    /// text: add `(?i)` for case-insensitivity and `\b` for boundaries.
    Regex(String),
}

impl Pattern {
    /// The term or the regex source.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Literal(s) | Self::Regex(s) => s,
        }
    }
}

/// Something a service watches: a company, a project, a ticker.
///
/// ```
/// use brisk_pattern_matcher::Entity;
///
/// let abc = Entity::new("abc").alias("ABC Corp").alias("$ABC").alias("@abc").alias("#abc").weight(40.0);
/// assert_eq!(abc.aliases.len(), 4);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Entity {
    /// Its identifier, reported in matches (not itself matched).
    pub id: String,
    /// Literal names that mean this entity; no two entities may share one.
    pub aliases: Vec<String>,
    /// Regexes that mean this entity.
    pub patterns: Vec<String>,
    /// Points a mention adds to the score, 0 to 100 (default 30).
    pub weight: f64,
}

impl Entity {
    /// The default weight of an entity mention.
    pub const DEFAULT_WEIGHT: f64 = 30.0;

    /// An entity with no aliases yet and the default weight.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            aliases: Vec::new(),
            patterns: Vec::new(),
            weight: Self::DEFAULT_WEIGHT,
        }
    }

    /// Adds a literal alias.
    #[must_use]
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.aliases.push(alias.into());
        self
    }

    /// Adds a regex alias.
    #[must_use]
    pub fn pattern(mut self, regex: impl Into<String>) -> Self {
        self.patterns.push(regex.into());
        self
    }

    /// Sets the weight (default 30).
    #[must_use]
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }
}

/// A weighted keyword, optionally in a category.
///
/// ```
/// use brisk_pattern_matcher::Keyword;
///
/// let k = Keyword::term("earnings", 35.0).category("finance");
/// let tge = Keyword::regex(r"(?i)\bTGE\b\D{0,12}\d{4}-\d{2}-\d{2}", 50.0);
/// assert_eq!(k.category.as_deref(), Some("finance"));
/// assert_eq!(tge.weight, 50.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Keyword {
    /// What to look for.
    pub pattern: Pattern,
    /// Points it adds, 0 to 100 (default 10 in files).
    pub weight: f64,
    /// A free-form category, reported in matches.
    pub category: Option<String>,
}

impl Keyword {
    /// The weight used when a file does not give one.
    pub const DEFAULT_WEIGHT: f64 = 10.0;

    /// A literal keyword.
    pub fn term(term: impl Into<String>, weight: f64) -> Self {
        Self {
            pattern: Pattern::Literal(term.into()),
            weight,
            category: None,
        }
    }

    /// A regex keyword.
    pub fn regex(regex: impl Into<String>, weight: f64) -> Self {
        Self {
            pattern: Pattern::Regex(regex.into()),
            weight,
            category: None,
        }
    }

    /// Sets the category.
    #[must_use]
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }
}

/// A context term (e.g. `blockchain` for a crypto context): its boost is
/// added once when the text also mentions an entity or a keyword.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ContextTerm {
    /// What to look for.
    pub pattern: Pattern,
    /// Points it adds, 0 to 100 (default 10).
    pub boost: f64,
}

impl ContextTerm {
    /// The default boost.
    pub const DEFAULT_BOOST: f64 = 10.0;

    /// A literal context term with the default boost.
    pub fn term(term: impl Into<String>) -> Self {
        Self {
            pattern: Pattern::Literal(term.into()),
            boost: Self::DEFAULT_BOOST,
        }
    }

    /// A regex context term with the default boost.
    pub fn regex(regex: impl Into<String>) -> Self {
        Self {
            pattern: Pattern::Regex(regex.into()),
            boost: Self::DEFAULT_BOOST,
        }
    }

    /// Sets the boost (default 10).
    #[must_use]
    pub fn boost(mut self, boost: f64) -> Self {
        self.boost = boost;
        self
    }
}

/// An exclusion term: it subtracts a penalty, or vetoes the text outright.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Exclusion {
    /// What to look for.
    pub pattern: Pattern,
    /// Points it removes, 0 to 100 (default 30); ignored for a veto.
    pub penalty: f64,
    /// Whether a match makes the score 0 and the text irrelevant.
    pub veto: bool,
}

impl Exclusion {
    /// The default penalty.
    pub const DEFAULT_PENALTY: f64 = 30.0;

    /// A literal exclusion with the default penalty.
    pub fn term(term: impl Into<String>) -> Self {
        Self {
            pattern: Pattern::Literal(term.into()),
            penalty: Self::DEFAULT_PENALTY,
            veto: false,
        }
    }

    /// A regex exclusion with the default penalty.
    pub fn regex(regex: impl Into<String>) -> Self {
        Self {
            pattern: Pattern::Regex(regex.into()),
            penalty: Self::DEFAULT_PENALTY,
            veto: false,
        }
    }

    /// Sets the penalty (default 30).
    #[must_use]
    pub fn penalty(mut self, penalty: f64) -> Self {
        self.penalty = penalty;
        self
    }

    /// Makes it a veto.
    #[must_use]
    pub fn veto(mut self) -> Self {
        self.veto = true;
        self
    }
}

/// A validated dictionary, ready for [`Matcher`](crate::Matcher).
///
/// Build one in code with [`Dictionary::builder`], or load one with
/// [`Dictionary::from_toml_str`], [`Dictionary::from_json_str`] or
/// [`Dictionary::from_path`]. See `docs/pattern-matcher.md` for the format.
///
/// ```
/// use brisk_pattern_matcher::{Dictionary, Entity, Exclusion, Keyword};
///
/// let dict = Dictionary::builder()
///     .entity(Entity::new("abc").alias("ABC Corp").alias("$ABC"))
///     .keyword(Keyword::term("earnings", 30.0))
///     .exclusion(Exclusion::term("giveaway").veto())
///     .build()?;
/// assert_eq!(dict.pattern_count(), 4 + dict.negations().len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dictionary {
    entities: Vec<Entity>,
    keywords: Vec<Keyword>,
    context: Vec<ContextTerm>,
    exclusions: Vec<Exclusion>,
    negations: Vec<String>,
    source: Option<String>,
}

impl Dictionary {
    /// A builder with nothing in it and the [`DEFAULT_NEGATIONS`].
    #[must_use]
    pub fn builder() -> DictionaryBuilder {
        DictionaryBuilder::default()
    }

    /// Parses and validates a TOML dictionary.
    ///
    /// # Errors
    ///
    /// [`DictionaryError::Parse`] with the line and column, or
    /// [`DictionaryError::Invalid`] with every problem.
    pub fn from_toml_str(text: &str) -> Result<Self, DictionaryError> {
        Self::parse_toml(text, None)
    }

    /// Parses and validates a JSON dictionary (same shape as TOML).
    ///
    /// # Errors
    ///
    /// [`DictionaryError::Parse`] with the line and column, or
    /// [`DictionaryError::Invalid`] with every problem.
    pub fn from_json_str(text: &str) -> Result<Self, DictionaryError> {
        Self::parse_json(text, None)
    }

    /// Reads a `.toml` or `.json` file; problems name the file.
    ///
    /// # Errors
    ///
    /// [`DictionaryError::Io`], [`DictionaryError::UnknownFormat`], or the
    /// errors of [`Dictionary::from_toml_str`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, DictionaryError> {
        let path = path.as_ref();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let json = match ext.as_deref() {
            Some("toml") => false,
            Some("json") => true,
            _ => {
                return Err(DictionaryError::UnknownFormat {
                    path: path.to_path_buf(),
                });
            }
        };
        let text = std::fs::read_to_string(path).map_err(|source| DictionaryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = Some(path.display().to_string());
        if json {
            Self::parse_json(&text, name.as_ref())
        } else {
            Self::parse_toml(&text, name.as_ref())
        }
    }

    fn parse_toml(text: &str, source: Option<&String>) -> Result<Self, DictionaryError> {
        let raw: RawDictionary = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_column(text, s.start));
            DictionaryError::Parse {
                source_name: source.cloned().unwrap_or_else(|| "<toml>".into()),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        raw.into_dictionary(source)
    }

    fn parse_json(text: &str, source: Option<&String>) -> Result<Self, DictionaryError> {
        let raw: RawDictionary = serde_json::from_str(text).map_err(|e| DictionaryError::Parse {
            source_name: source.cloned().unwrap_or_else(|| "<json>".into()),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        raw.into_dictionary(source)
    }

    /// The entities.
    #[must_use]
    pub fn entities(&self) -> &[Entity] {
        &self.entities
    }

    /// The keywords.
    #[must_use]
    pub fn keywords(&self) -> &[Keyword] {
        &self.keywords
    }

    /// The context terms.
    #[must_use]
    pub fn context(&self) -> &[ContextTerm] {
        &self.context
    }

    /// The exclusions.
    #[must_use]
    pub fn exclusions(&self) -> &[Exclusion] {
        &self.exclusions
    }

    /// The negation words.
    #[must_use]
    pub fn negations(&self) -> &[String] {
        &self.negations
    }

    /// The file it came from, if any.
    #[must_use]
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// How many patterns (aliases, terms, regexes, negation words) it holds.
    #[must_use]
    pub fn pattern_count(&self) -> usize {
        self.entities
            .iter()
            .map(|e| e.aliases.len() + e.patterns.len())
            .sum::<usize>()
            + self.keywords.len()
            + self.context.len()
            + self.exclusions.len()
            + self.negations.len()
    }
}

/// Builds a [`Dictionary`] in code.
///
/// Defaults: no entities, keywords, context terms or exclusions; the
/// [`DEFAULT_NEGATIONS`]; no source name.
#[derive(Clone, Debug)]
pub struct DictionaryBuilder {
    dict: Dictionary,
    problems: Vec<Problem>,
}

impl Default for DictionaryBuilder {
    fn default() -> Self {
        Self {
            dict: Dictionary {
                entities: Vec::new(),
                keywords: Vec::new(),
                context: Vec::new(),
                exclusions: Vec::new(),
                negations: DEFAULT_NEGATIONS.iter().map(|&s| s.to_owned()).collect(),
                source: None,
            },
            problems: Vec::new(),
        }
    }
}

impl DictionaryBuilder {
    /// Adds an entity.
    #[must_use]
    pub fn entity(mut self, entity: Entity) -> Self {
        self.dict.entities.push(entity);
        self
    }

    /// Adds a keyword.
    #[must_use]
    pub fn keyword(mut self, keyword: Keyword) -> Self {
        self.dict.keywords.push(keyword);
        self
    }

    /// Adds a context term.
    #[must_use]
    pub fn context(mut self, term: ContextTerm) -> Self {
        self.dict.context.push(term);
        self
    }

    /// Adds an exclusion.
    #[must_use]
    pub fn exclusion(mut self, exclusion: Exclusion) -> Self {
        self.dict.exclusions.push(exclusion);
        self
    }

    /// Replaces the negation words (default [`DEFAULT_NEGATIONS`]); an
    /// empty list turns negation off.
    #[must_use]
    pub fn negations<I, S>(mut self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.dict.negations = words.into_iter().map(Into::into).collect();
        self
    }

    /// Names the source (a file name) in problems (default none).
    #[must_use]
    pub fn source_name(mut self, name: impl Into<String>) -> Self {
        self.dict.source = Some(name.into());
        self
    }

    /// Validates everything and returns the dictionary.
    ///
    /// # Errors
    ///
    /// [`DictionaryError::Invalid`] listing every problem: empty patterns,
    /// aliases claimed by two entities, duplicate entity ids, invalid
    /// regexes, weights outside 0–100.
    pub fn build(self) -> Result<Dictionary, DictionaryError> {
        let mut problems = self.problems;
        validate(&self.dict, &mut problems);
        if problems.is_empty() {
            Ok(self.dict)
        } else {
            sort_problems(&mut problems);
            Err(DictionaryError::Invalid { problems })
        }
    }
}

fn sort_problems(problems: &mut [Problem]) {
    fn rank(entry: &str) -> (u8, usize) {
        let family = ["entities", "keywords", "context", "exclusions", "negations"]
            .iter()
            .position(|f| entry.starts_with(f))
            .unwrap_or(5);
        let index = entry
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or(0);
        (u8::try_from(family).unwrap_or(u8::MAX), index)
    }
    problems.sort_by_key(|p| rank(&p.location.entry));
}

fn validate(dict: &Dictionary, problems: &mut Vec<Problem>) {
    let source = dict.source.clone();
    let mut push = |entry: &str, field: String, kind: ProblemKind| {
        problems.push(Problem {
            location: Location {
                source: source.clone(),
                entry: entry.to_owned(),
                field,
            },
            kind,
        });
    };
    let mut ids: HashMap<&str, ()> = HashMap::new();
    let mut aliases: HashMap<String, &str> = HashMap::new();
    for (i, e) in dict.entities.iter().enumerate() {
        let entry = format!("entities[{i}] {:?}", e.id);
        if e.id.trim().is_empty() {
            push(&entry, "id".into(), ProblemKind::EmptyPattern);
        } else if ids.insert(&e.id, ()).is_some() {
            push(&entry, "id".into(), ProblemKind::DuplicateId { id: e.id.clone() });
        }
        if e.aliases.is_empty() && e.patterns.is_empty() {
            push(&entry, "aliases".into(), ProblemKind::NoAliases);
        }
        for (j, alias) in e.aliases.iter().enumerate() {
            let key = fold(alias.trim());
            if key.is_empty() {
                push(&entry, format!("aliases[{j}]"), ProblemKind::EmptyPattern);
                continue;
            }
            match aliases.get(&key) {
                Some(&owner) if owner != e.id => push(
                    &entry,
                    format!("aliases[{j}]"),
                    ProblemKind::DuplicateAlias {
                        alias: alias.clone(),
                        claimed_by: owner.to_owned(),
                    },
                ),
                Some(_) => {}
                None => {
                    aliases.insert(key, &e.id);
                }
            }
        }
        for (j, p) in e.patterns.iter().enumerate() {
            check_regex(p, &mut |kind| push(&entry, format!("patterns[{j}]"), kind));
        }
        check_weight(e.weight, &mut |kind| push(&entry, "weight".into(), kind));
    }
    let pattern_field = |p: &Pattern| match p {
        Pattern::Literal(_) => "term",
        Pattern::Regex(_) => "pattern",
    };
    let mut check_pattern = |entry: &str, p: &Pattern, weight: f64, weight_field: &str| {
        match p {
            Pattern::Literal(s) if s.trim().is_empty() => {
                push(entry, pattern_field(p).into(), ProblemKind::EmptyPattern);
            }
            Pattern::Regex(s) => check_regex(s, &mut |kind| push(entry, pattern_field(p).into(), kind)),
            Pattern::Literal(_) => {}
        }
        check_weight(weight, &mut |kind| push(entry, weight_field.into(), kind));
    };
    for (i, k) in dict.keywords.iter().enumerate() {
        let entry = format!("keywords[{i}] {:?}", k.pattern.as_str());
        check_pattern(&entry, &k.pattern, k.weight, "weight");
    }
    for (i, c) in dict.context.iter().enumerate() {
        let entry = format!("context[{i}] {:?}", c.pattern.as_str());
        check_pattern(&entry, &c.pattern, c.boost, "boost");
    }
    for (i, x) in dict.exclusions.iter().enumerate() {
        let entry = format!("exclusions[{i}] {:?}", x.pattern.as_str());
        check_pattern(&entry, &x.pattern, x.penalty, "penalty");
    }
    for (i, n) in dict.negations.iter().enumerate() {
        if n.trim().is_empty() {
            push("negations", format!("[{i}]"), ProblemKind::EmptyPattern);
        }
    }
}

fn check_regex(pattern: &str, push: &mut dyn FnMut(ProblemKind)) {
    if pattern.is_empty() {
        push(ProblemKind::EmptyPattern);
    } else if let Err(e) = regex::Regex::new(pattern) {
        push(ProblemKind::InvalidRegex {
            pattern: pattern.to_owned(),
            message: e.to_string(),
        });
    }
}

fn check_weight(value: f64, push: &mut dyn FnMut(ProblemKind)) {
    if !(0.0..=MAX_WEIGHT).contains(&value) {
        push(ProblemKind::WeightOutOfRange {
            value,
            min: 0.0,
            max: MAX_WEIGHT,
        });
    }
}

/// The 1-based line and column of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

// ---- the file format ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDictionary {
    #[serde(default)]
    entities: Vec<RawEntity>,
    #[serde(default)]
    keywords: Vec<RawKeyword>,
    #[serde(default)]
    context: Vec<RawContext>,
    #[serde(default)]
    exclusions: Vec<RawExclusion>,
    #[serde(default)]
    negations: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
    weight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyword {
    term: Option<String>,
    pattern: Option<String>,
    weight: Option<f64>,
    category: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    term: Option<String>,
    pattern: Option<String>,
    boost: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclusion {
    term: Option<String>,
    pattern: Option<String>,
    penalty: Option<f64>,
    #[serde(default)]
    veto: bool,
}

/// The pattern of an entry with `term` and `pattern` fields, or a problem.
fn term_or_pattern(
    term: Option<String>,
    pattern: Option<String>,
    entry: String,
    source: Option<&String>,
    problems: &mut Vec<Problem>,
) -> Pattern {
    match (term, pattern) {
        (Some(t), None) => Pattern::Literal(t),
        (None, Some(p)) => Pattern::Regex(p),
        (t, p) => {
            problems.push(Problem {
                location: Location {
                    source: source.cloned(),
                    entry,
                    field: "term".into(),
                },
                kind: ProblemKind::TermOrPattern,
            });
            // A placeholder that passes the other checks: the entry is
            // already reported.
            Pattern::Literal(
                t.or(p)
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| "?".into()),
            )
        }
    }
}

impl RawDictionary {
    fn into_dictionary(self, source: Option<&String>) -> Result<Dictionary, DictionaryError> {
        let mut builder = Dictionary::builder();
        if let Some(name) = source {
            builder = builder.source_name(name.clone());
        }
        if let Some(negations) = self.negations {
            builder = builder.negations(negations);
        }
        let mut problems = Vec::new();
        for e in self.entities {
            builder.dict.entities.push(Entity {
                id: e.id,
                aliases: e.aliases,
                patterns: e.patterns,
                weight: e.weight.unwrap_or(Entity::DEFAULT_WEIGHT),
            });
        }
        for (i, k) in self.keywords.into_iter().enumerate() {
            let entry = format!("keywords[{i}]");
            builder.dict.keywords.push(Keyword {
                pattern: term_or_pattern(k.term, k.pattern, entry, source, &mut problems),
                weight: k.weight.unwrap_or(Keyword::DEFAULT_WEIGHT),
                category: k.category,
            });
        }
        for (i, c) in self.context.into_iter().enumerate() {
            let entry = format!("context[{i}]");
            builder.dict.context.push(ContextTerm {
                pattern: term_or_pattern(c.term, c.pattern, entry, source, &mut problems),
                boost: c.boost.unwrap_or(ContextTerm::DEFAULT_BOOST),
            });
        }
        for (i, x) in self.exclusions.into_iter().enumerate() {
            let entry = format!("exclusions[{i}]");
            builder.dict.exclusions.push(Exclusion {
                pattern: term_or_pattern(x.term, x.pattern, entry, source, &mut problems),
                penalty: x.penalty.unwrap_or(Exclusion::DEFAULT_PENALTY),
                veto: x.veto,
            });
        }
        builder.problems = problems;
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_columns() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
