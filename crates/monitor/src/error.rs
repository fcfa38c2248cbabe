//! The errors of brisk-monitor.

use brisk_core::ConfigError;

/// A metric could not be registered, or a monitor could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The metric name is not `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {name:?}: expected [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__`, or is
    /// `le` or `quantile` (reserved by the exposition), or `window` on a
    /// histogram (it labels the windowed percentiles).
    #[error("invalid label name {label:?} on metric {metric}")]
    InvalidLabel {
        /// The metric.
        metric: String,
        /// The label name given.
        label: String,
    },
    /// The name is part of the exposition of a registered histogram
    /// (`<histogram>_bucket`, `_sum`, `_count`, `_percentiles`,
    /// `_percentiles_sum`, `_percentiles_count`), or a histogram's exposition
    /// would use a name that is already registered.
    #[error("metric name {name} is taken by the exposition of histogram {histogram}")]
    ReservedName {
        /// The name asked for.
        name: String,
        /// The histogram family whose exposition uses (or would use) it.
        histogram: String,
    },
    /// The name is already registered as another kind of metric.
    #[error("metric {name} is already a {existing}, not a {requested}")]
    KindConflict {
        /// The metric name.
        name: String,
        /// The kind it has.
        existing: &'static str,
        /// The kind asked for.
        requested: &'static str,
    },
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// An alert rule is invalid. Names the rule and the field.
///
/// ```
/// let err = brisk_monitor::AlertRules::from_toml(r#"
/// [[rule]]
/// name = "slow"
/// kind = "threshold"
/// signal = { quantile = 1.5, metric = "brisk_operation_duration_seconds" }
/// op = "gt"
/// value = 0.1
/// "#).unwrap_err();
/// assert_eq!((err.rule(), err.field()), (Some("slow"), Some("signal.quantile")));
/// assert_eq!(err.to_string(), "alert rule \"slow\": `signal.quantile` must be within 0..=1, got 1.5");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A field of a rule is missing or out of range.
    #[error("alert rule {rule:?}: `{field}` {reason}")]
    Invalid {
        /// The rule's name (or `#n` for an unnamed rule, counting from 1).
        rule: String,
        /// The field at fault.
        field: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The TOML text does not parse into rules.
    #[error("alert rules: {0}")]
    Toml(String),
}

impl RuleError {
    pub(crate) fn invalid(rule: &str, field: &str, reason: impl Into<String>) -> Self {
        RuleError::Invalid {
            rule: rule.to_owned(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The rule at fault, if the error is about one rule.
    #[must_use]
    pub fn rule(&self) -> Option<&str> {
        match self {
            RuleError::Invalid { rule, .. } => Some(rule),
            RuleError::Toml(_) => None,
        }
    }

    /// The field at fault, if the error is about one field.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            RuleError::Invalid { field, .. } => Some(field),
            RuleError::Toml(_) => None,
        }
    }
}

/// A notifier could not deliver a notification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The endpoint answered with an error status after all retries.
    #[error("{notifier}: HTTP {status} after {attempts} attempts")]
    Status {
        /// The notifier's name.
        notifier: String,
        /// The last status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The endpoint could not be reached, or did not answer in time.
    #[error("{notifier}: {reason} after {attempts} attempts")]
    Transport {
        /// The notifier's name.
        notifier: String,
        /// What went wrong on the last attempt.
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The notifier's queue was full; the notification was dropped.
    #[error("{notifier}: queue full, notification dropped")]
    QueueFull {
        /// The notifier's name.
        notifier: String,
    },
}
