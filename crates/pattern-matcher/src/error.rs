//! Errors: one type per operation family (loading a dictionary, building a
//! matcher, reading text from bytes).

use std::fmt;
use std::path::PathBuf;

use brisk_core::ConfigError;

/// Where a dictionary problem is: the file (if any), the entry and the field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The file or source name, when the dictionary came from one.
    pub source: Option<String>,
    /// The entry, e.g. `entities[2] "abc"` or `negations`.
    pub entry: String,
    /// The field inside the entry, e.g. `aliases[1]` or `weight`.
    pub field: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.source {
            write!(f, "{source}: ")?;
        }
        write!(f, "{}, field `{}`", self.entry, self.field)
    }
}

/// What is wrong with one dictionary entry.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A term, alias or pattern that is empty (or only whitespace).
    EmptyPattern,
    /// An alias (compared case-insensitively) that another entity already
    /// claims.
    DuplicateAlias {
        /// The alias.
        alias: String,
        /// The id of the entity that claimed it first.
        claimed_by: String,
    },
    /// Two entities with the same id.
    DuplicateId {
        /// The id.
        id: String,
    },
    /// A regular expression that does not compile.
    InvalidRegex {
        /// The pattern.
        pattern: String,
        /// The regex crate's message.
        message: String,
    },
    /// A weight, boost or penalty outside its range (or not a number).
    WeightOutOfRange {
        /// The value given.
        value: f64,
        /// The smallest accepted value.
        min: f64,
        /// The largest accepted value.
        max: f64,
    },
    /// An entry with neither `term` nor `pattern`, or with both.
    TermOrPattern,
    /// An entity with no alias and no pattern: it could never match.
    NoAliases,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyPattern => f.write_str("is empty"),
            Self::DuplicateAlias { alias, claimed_by } => {
                write!(f, "alias {alias:?} is already claimed by entity {claimed_by:?}")
            }
            Self::DuplicateId { id } => write!(f, "entity id {id:?} is used twice"),
            Self::InvalidRegex { pattern, message } => {
                write!(f, "regex {pattern:?} does not compile: {message}")
            }
            Self::WeightOutOfRange { value, min, max } => {
                write!(f, "{value} is out of range: expected {min} to {max}")
            }
            Self::TermOrPattern => f.write_str("needs exactly one of `term` and `pattern`"),
            Self::NoAliases => f.write_str("has no alias and no pattern"),
        }
    }
}

/// One problem found while validating a dictionary.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Problem {
    /// Where it is.
    pub location: Location,
    /// What it is.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.kind)
    }
}

/// Loading, validating or compiling a dictionary failed.
///
/// Validation collects every problem before failing, so one run shows them
/// all:
///
/// ```
/// use brisk_pattern_matcher::{Dictionary, DictionaryError, ProblemKind};
///
/// let toml = r#"
/// [[entities]]
/// id = "abc"
/// aliases = ["ABC", ""]
///
/// [[keywords]]
/// term = "earnings"
/// weight = 250
/// "#;
/// let Err(DictionaryError::Invalid { problems }) = Dictionary::from_toml_str(toml) else { panic!() };
/// assert_eq!(problems.len(), 2);
/// assert_eq!(problems[0].kind, ProblemKind::EmptyPattern);
/// assert_eq!(problems[0].to_string(), r#"entities[0] "abc", field `aliases[1]`: is empty"#);
/// assert_eq!(problems[1].location.field, "weight");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DictionaryError {
    /// The file could not be read.
    #[error("cannot read dictionary {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension is neither `.toml` nor `.json`.
    #[error("dictionary {}: unknown format, expected a .toml or .json file", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The text is not valid TOML or JSON, or does not have the dictionary's
    /// shape (an unknown field, a string where a number belongs...).
    #[error("{source_name}:{line}:{column}: {message}")]
    Parse {
        /// The file or source name (`<toml>` or `<json>` for strings).
        source_name: String,
        /// The line of the error, from 1 (0 when unknown).
        line: usize,
        /// The column of the error, from 1 (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The dictionary parsed, but some entries are invalid.
    #[error("{} invalid dictionary entr{}: {}", problems.len(), if problems.len() == 1 { "y" } else { "ies" }, join(problems))]
    Invalid {
        /// Every problem found, in entry order.
        problems: Vec<Problem>,
    },
    /// The automaton could not be built (for example, too many patterns).
    #[error("cannot compile the dictionary: {message}")]
    Compile {
        /// Why.
        message: String,
    },
}

fn join(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&p.to_string());
    }
    out
}

impl DictionaryError {
    /// The validation problems, if this is [`DictionaryError::Invalid`].
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

/// Building a [`Matcher`](crate::Matcher) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An option is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The dictionary could not be compiled.
    #[error(transparent)]
    Dictionary(#[from] DictionaryError),
}

/// Text given as bytes could not be read.
///
/// ```
/// use brisk_pattern_matcher::{Dictionary, Matcher, TextError};
///
/// let matcher = Matcher::new(Dictionary::builder().build()?)?;
/// let err = matcher.score_bytes(b"ok \xff").unwrap_err();
/// assert_eq!(err, TextError::InvalidUtf8 { valid_up_to: 3 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// The bytes are not UTF-8; the first `valid_up_to` bytes are.
    #[error("text is not valid UTF-8 after byte {valid_up_to}")]
    InvalidUtf8 {
        /// The byte offset of the first invalid sequence.
        valid_up_to: usize,
    },
}
