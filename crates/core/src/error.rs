//! The two error types every brisk crate shares: invalid configuration and
//! unparsable text.

use std::borrow::Cow;

/// A builder was given a value it cannot accept.
///
/// Every brisk builder's `build()` returns this (or wraps it), naming the
/// field that is wrong, so that a bad configuration fails at start-up with a
/// message a person can act on:
///
/// ```
/// use brisk_core::ConfigError;
///
/// let err = ConfigError::new("backoff.cap", "must be at least `base` (100ms), got 10ms");
/// assert_eq!(err.field(), "backoff.cap");
/// assert_eq!(
///     err.to_string(),
///     "invalid configuration: `backoff.cap` must be at least `base` (100ms), got 10ms"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: `{field}` {reason}")]
pub struct ConfigError {
    field: Cow<'static, str>,
    reason: String,
}

impl ConfigError {
    /// An error about `field` (dotted path such as `"cache.max_capacity"`),
    /// with `reason` saying what is wrong and what is accepted.
    pub fn new(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The field that holds the bad value.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A string could not be parsed into one of brisk-core's types.
///
/// ```
/// use brisk_core::Priority;
///
/// let err = "soon".parse::<Priority>().unwrap_err();
/// assert_eq!(err.what(), "priority");
/// assert!(err.to_string().contains("urgent, high, normal, low, background"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: expected {expected}")]
pub struct ParseError {
    what: &'static str,
    input: String,
    expected: &'static str,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, input: &str, expected: &'static str) -> Self {
        // Keep error messages short even when the input is huge.
        let input: String = input.chars().take(64).collect();
        Self {
            what,
            input,
            expected,
        }
    }

    /// The kind of value that was being parsed (`"priority"`, `"content hash"`, ...).
    #[must_use]
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The input that failed (at most its first 64 characters).
    #[must_use]
    pub fn input(&self) -> &str {
        &self.input
    }

    /// A description of the accepted forms.
    #[must_use]
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}
