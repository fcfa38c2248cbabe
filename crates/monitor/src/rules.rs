//! Alert rules: what to watch, when to fire, how to escalate; built in code
//! or loaded from TOML, validated with errors naming the rule and the field.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::RuleError;

/// How bad an alert is. Ordered: `Info < Warning < Error < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look (the default).
    #[default]
    Warning,
    /// Something is failing.
    Error,
    /// Wake someone up.
    Critical,
}

impl Severity {
    /// `"info"`, `"warning"`, `"error"` or `"critical"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity {s:?}: expected info, warning, error or critical"
            )),
        }
    }
}

/// A comparison of a threshold rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Fires when the value is greater than the threshold.
    Gt,
    /// Fires when the value is less than the threshold.
    Lt,
}

/// What a rule reads, per matching series.
///
/// Label pairs given with [`label`](Self::label) select series: every pair
/// must be present; each matching series is its own alert instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub(crate) metric: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) kind: SignalKind,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SignalKind {
    /// The current value of a counter or gauge (registered or collected).
    Value,
    /// A quantile of a histogram, cumulative or over a window.
    Quantile { q: f64, window: Option<Duration> },
    /// `metric / (metric + other)`: a hit ratio from hit and miss counters.
    Ratio { other: String },
}

impl Signal {
    /// The current value of the counter or gauge `metric`, registered or
    /// reported by a collector.
    #[must_use]
    pub fn value(metric: impl Into<String>) -> Self {
        Self {
            metric: metric.into(),
            labels: Vec::new(),
            kind: SignalKind::Value,
        }
    }

    /// Quantile `q` of the histogram `metric` over `window` (`None`:
    /// since start).
    #[must_use]
    pub fn quantile(metric: impl Into<String>, q: f64, window: Option<Duration>) -> Self {
        Self {
            metric: metric.into(),
            labels: Vec::new(),
            kind: SignalKind::Quantile { q, window },
        }
    }

    /// Quantile `q` of operation `operation`'s durations, in seconds, over `window`.
    #[must_use]
    pub fn operation_quantile(operation: &str, q: f64, window: Duration) -> Self {
        Self::quantile(crate::operation::DURATION_METRIC, q, Some(window)).label("operation", operation)
    }

    /// `hits / (hits + misses)` of two counters with the same labels, e.g.
    /// `brisk_cache_hits_total` and `brisk_cache_misses_total`.
    #[must_use]
    pub fn ratio(hits: impl Into<String>, misses: impl Into<String>) -> Self {
        Self {
            metric: hits.into(),
            labels: Vec::new(),
            kind: SignalKind::Ratio { other: misses.into() },
        }
    }

    /// Selects only series with the label `name="value"`.
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((name.into(), value.into()));
        self
    }
}

/// The condition of a rule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Condition {
    Threshold {
        signal: Signal,
        op: Op,
        value: f64,
    },
    Baseline {
        metric: String,
        labels: Vec<(String, String)>,
        quantile: f64,
        factor: f64,
        window: Duration,
        baseline: Duration,
        min_samples: u64,
    },
    BurnRate {
        operation: String,
        objective: f64,
        latency_target: Option<Duration>,
        long_window: Duration,
        short_window: Duration,
        factor: f64,
    },
    Absence {
        signal: Signal,
    },
}

/// One alert rule. Build with [`threshold`](Self::threshold),
/// [`baseline`](Self::baseline), [`burn_rate`](Self::burn_rate) or
/// [`absence`](Self::absence), then adjust with the setters; or load a set
/// from TOML with [`AlertRules::from_toml`].
///
/// ```
/// use std::time::Duration;
/// use brisk_monitor::{AlertRule, Op, Severity, Signal};
///
/// let slow = AlertRule::threshold(
///     "analyze_slow",
///     Signal::operation_quantile("analyze", 0.95, Duration::from_secs(300)),
///     Op::Gt,
///     0.100,
/// )
/// .pending(Duration::from_secs(60))
/// .escalate_after(Duration::from_secs(600))
/// .summary("analyze p95 over 100 ms");
/// slow.validate()?;
/// assert_eq!(slow.severity(), Severity::Warning);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRule {
    pub(crate) name: String,
    pub(crate) severity: Severity,
    pub(crate) condition: Condition,
    pub(crate) pending: Duration,
    pub(crate) escalate_after: Option<Duration>,
    pub(crate) escalate_to: Severity,
    pub(crate) repeat_interval: Option<Duration>,
    pub(crate) summary: String,
    pub(crate) labels: BTreeMap<String, String>,
}

impl AlertRule {
    fn new(name: impl Into<String>, condition: Condition) -> Self {
        Self {
            name: name.into(),
            severity: Severity::Warning,
            condition,
            pending: Duration::ZERO,
            escalate_after: None,
            escalate_to: Severity::Critical,
            repeat_interval: None,
            summary: String::new(),
            labels: BTreeMap::new(),
        }
    }

    /// Fires when `signal` is `op` (`Gt` / `Lt`) `value` for the
    /// [`pending`](Self::pending) duration.
    #[must_use]
    pub fn threshold(name: impl Into<String>, signal: Signal, op: Op, value: f64) -> Self {
        Self::new(name, Condition::Threshold { signal, op, value })
    }

    /// Fires when an operation's p95 over the last 5 min is above 1.5 × its
    /// own p95 over the hour before (defaults; see
    /// [`baseline_settings`](Self::baseline_settings)). Needs 20 samples in
    /// each window.
    #[must_use]
    pub fn baseline(name: impl Into<String>, operation: &str) -> Self {
        Self::new(
            name,
            Condition::Baseline {
                metric: crate::operation::DURATION_METRIC.to_owned(),
                labels: vec![("operation".to_owned(), operation.to_owned())],
                quantile: 0.95,
                factor: 1.5,
                window: Duration::from_secs(300),
                baseline: Duration::from_secs(3600),
                min_samples: 20,
            },
        )
    }

    /// Multi-window SLO burn rate (Google SRE workbook, ch. 5): fires when
    /// the error budget of `operation` (`1 - objective`) burns faster than
    /// 14.4× over both the last hour and the last 5 minutes (defaults; see
    /// [`burn_settings`](Self::burn_settings)). A bad call is a failed one,
    /// or with [`latency_target`](Self::latency_target) a slower one.
    #[must_use]
    pub fn burn_rate(name: impl Into<String>, operation: &str, objective: f64) -> Self {
        Self::new(
            name,
            Condition::BurnRate {
                operation: operation.to_owned(),
                objective,
                latency_target: None,
                long_window: Duration::from_secs(3600),
                short_window: Duration::from_secs(300),
                factor: 14.4,
            },
        )
    }

    /// Fires when `signal` has had no new data for `for_`: a counter or gauge
    /// whose value has not changed, a histogram with no new values, or no
    /// matching series at all.
    #[must_use]
    pub fn absence(name: impl Into<String>, signal: Signal, for_: Duration) -> Self {
        Self::new(name, Condition::Absence { signal }).pending(for_)
    }

    /// The severity while firing. Default [`Severity::Warning`].
    #[must_use]
    pub fn severity_is(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// How long the condition must hold before the alert fires (Prometheus'
    /// `for`); for an absence rule, how long the data must be missing.
    /// Default zero (fires at the first evaluation that sees it).
    #[must_use]
    pub fn pending(mut self, pending: Duration) -> Self {
        self.pending = pending;
        self
    }

    /// A firing alert that lasts this long is escalated to `critical` (see
    /// [`escalate_to`](Self::escalate_to)) and notified again at once.
    /// Default: never.
    #[must_use]
    pub fn escalate_after(mut self, after: Duration) -> Self {
        self.escalate_after = Some(after);
        self
    }

    /// The severity an escalation raises to. Default [`Severity::Critical`];
    /// must be above the rule's severity.
    #[must_use]
    pub fn escalate_to(mut self, severity: Severity) -> Self {
        self.escalate_to = severity;
        self
    }

    /// The cooldown: a firing alert is notified again only after this long.
    /// Default: the engine's (4 h).
    #[must_use]
    pub fn repeat_interval(mut self, every: Duration) -> Self {
        self.repeat_interval = Some(every);
        self
    }

    /// One line for people; sent as the `summary` annotation.
    #[must_use]
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// Adds a label to every alert of this rule (e.g. `team="ingest"`).
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// For a baseline rule: the quantile (default 0.95), the factor `k`
    /// (default 1.5), the recent window (default 5 min), the trailing
    /// baseline window before it (default 1 h) and the samples each needs
    /// (default 20). No effect on other rules.
    #[must_use]
    pub fn baseline_settings(
        mut self,
        quantile: f64,
        factor: f64,
        window: Duration,
        baseline: Duration,
        min_samples: u64,
    ) -> Self {
        if let Condition::Baseline {
            quantile: q,
            factor: k,
            window: w,
            baseline: b,
            min_samples: m,
            ..
        } = &mut self.condition
        {
            (*q, *k, *w, *b, *m) = (quantile, factor, window, baseline, min_samples);
        }
        self
    }

    /// For a burn-rate rule: the long and short windows (default 1 h and
    /// 5 min) and the burn factor both must exceed (default 14.4: 2% of a
    /// 30-day budget in one hour). No effect on other rules.
    #[must_use]
    pub fn burn_settings(mut self, long_window: Duration, short_window: Duration, factor: f64) -> Self {
        if let Condition::BurnRate {
            long_window: l,
            short_window: s,
            factor: f,
            ..
        } = &mut self.condition
        {
            (*l, *s, *f) = (long_window, short_window, factor);
        }
        self
    }

    /// For a burn-rate rule: a call slower than `target` is bad (a latency
    /// SLO) instead of a failed call (availability). No effect on other rules.
    #[must_use]
    pub fn latency_target(mut self, target: Duration) -> Self {
        if let Condition::BurnRate { latency_target, .. } = &mut self.condition {
            *latency_target = Some(target);
        }
        self
    }

    /// The rule's name (the `alertname` label).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The severity while firing, before any escalation.
    #[must_use]
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// Checks the rule.
    ///
    /// # Errors
    ///
    /// A [`RuleError::Invalid`] naming the rule and the field: an empty
    /// name, a threshold that is not finite, a quantile outside 0–1, a zero
    /// window, a baseline factor not above 1, an objective outside (0, 1),
    /// a short window not shorter than the long one, an escalation that does
    /// not raise the severity, a metric or label name Prometheus rejects.
    pub fn validate(&self) -> Result<(), RuleError> {
        let rule = if self.name.is_empty() {
            "<unnamed>"
        } else {
            &self.name
        };
        let bad = |field: &str, reason: String| Err(RuleError::invalid(rule, field, reason));
        if self.name.is_empty() {
            return bad("name", "must not be empty".into());
        }
        if self.escalate_after.is_some() && self.escalate_to <= self.severity {
            return bad(
                "escalate_to",
                format!(
                    "must be above the severity ({}), got {}",
                    self.severity, self.escalate_to
                ),
            );
        }
        if self.repeat_interval.is_some_and(|d| d.is_zero()) {
            return bad("repeat_interval", "must be greater than zero".into());
        }
        for k in self.labels.keys() {
            if !brisk_core::is_valid_label_name(k) {
                return bad("labels", format!("{k:?} is not a valid label name"));
            }
        }
        match &self.condition {
            Condition::Threshold { signal, value, .. } => {
                check_signal(rule, signal)?;
                if !value.is_finite() {
                    return bad("value", format!("must be finite, got {value}"));
                }
            }
            Condition::Baseline {
                metric,
                quantile,
                factor,
                window,
                baseline,
                ..
            } => {
                if !brisk_core::is_valid_metric_name(metric) {
                    return bad("metric", format!("{metric:?} is not a valid metric name"));
                }
                if !(0.0..=1.0).contains(quantile) {
                    return bad("quantile", format!("must be within 0..=1, got {quantile}"));
                }
                if !(factor.is_finite() && *factor > 1.0) {
                    return bad("factor", format!("must be above 1, got {factor}"));
                }
                if window.is_zero() {
                    return bad("window", "must be greater than zero".into());
                }
                if baseline <= window {
                    return bad(
                        "baseline",
                        format!("must be longer than `window` ({window:?}), got {baseline:?}"),
                    );
                }
            }
            Condition::BurnRate {
                operation,
                objective,
                long_window,
                short_window,
                factor,
                ..
            } => {
                if operation.is_empty() {
                    return bad("operation", "must not be empty".into());
                }
                if !(*objective > 0.0 && *objective < 1.0) {
                    return bad(
                        "objective",
                        format!("must be within (0, 1), e.g. 0.999, got {objective}"),
                    );
                }
                if short_window.is_zero() {
                    return bad("short_window", "must be greater than zero".into());
                }
                if short_window >= long_window {
                    return bad(
                        "short_window",
                        format!("must be shorter than `long_window` ({long_window:?}), got {short_window:?}"),
                    );
                }
                if !(factor.is_finite() && *factor > 0.0) {
                    return bad("factor", format!("must be positive, got {factor}"));
                }
            }
            Condition::Absence { signal } => {
                check_signal(rule, signal)?;
                if self.pending.is_zero() {
                    return bad("for", "must be greater than zero for an absence rule".into());
                }
            }
        }
        Ok(())
    }
}

fn check_signal(rule: &str, s: &Signal) -> Result<(), RuleError> {
    if !brisk_core::is_valid_metric_name(&s.metric) {
        return Err(RuleError::invalid(
            rule,
            "signal.metric",
            format!("{:?} is not a valid metric name", s.metric),
        ));
    }
    for (k, _) in &s.labels {
        if !brisk_core::is_valid_label_name(k) {
            return Err(RuleError::invalid(
                rule,
                "signal.labels",
                format!("{k:?} is not a valid label name"),
            ));
        }
    }
    match &s.kind {
        SignalKind::Quantile { q, window } => {
            if !(0.0..=1.0).contains(q) {
                return Err(RuleError::invalid(
                    rule,
                    "signal.quantile",
                    format!("must be within 0..=1, got {q}"),
                ));
            }
            if window.is_some_and(|w| w.is_zero()) {
                return Err(RuleError::invalid(
                    rule,
                    "signal.window",
                    "must be greater than zero",
                ));
            }
        }
        SignalKind::Ratio { other } if !brisk_core::is_valid_metric_name(other) => {
            return Err(RuleError::invalid(
                rule,
                "signal.ratio",
                format!("{other:?} is not a valid metric name"),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// A validated set of rules.
///
/// ```
/// let rules = brisk_monitor::AlertRules::from_toml(r#"
/// [[rule]]
/// name = "memory_high"
/// kind = "threshold"
/// severity = "error"
/// signal = { metric = "brisk_process_resident_memory_bytes" }
/// op = "gt"
/// value = 500e6
/// for = "2m"
///
/// [[rule]]
/// name = "cache_cold"
/// kind = "threshold"
/// signal = { ratio = ["brisk_cache_hits_total", "brisk_cache_misses_total"], labels = { namespace = "users" } }
/// op = "lt"
/// value = 0.85
/// "#)?;
/// assert_eq!(rules.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertRules {
    rules: Vec<AlertRule>,
}

impl AlertRules {
    /// Validates `rules` and keeps them.
    ///
    /// # Errors
    ///
    /// The first rule that fails [`AlertRule::validate`], or a name used twice.
    pub fn new(rules: impl IntoIterator<Item = AlertRule>) -> Result<Self, RuleError> {
        let rules: Vec<AlertRule> = rules.into_iter().collect();
        for (i, r) in rules.iter().enumerate() {
            r.validate()?;
            if rules[..i].iter().any(|o| o.name == r.name) {
                return Err(RuleError::invalid(&r.name, "name", "is used by another rule"));
            }
        }
        Ok(Self { rules })
    }

    /// Parses and validates rules written in TOML (see `docs/monitor.md`).
    ///
    /// # Errors
    ///
    /// [`RuleError::Toml`] for text that is not TOML or has unknown keys,
    /// [`RuleError::Invalid`] naming the rule and the field otherwise.
    pub fn from_toml(text: &str) -> Result<Self, RuleError> {
        let file: RuleFile = toml::from_str(text).map_err(|e| RuleError::Toml(e.to_string()))?;
        let mut rules = Vec::with_capacity(file.rule.len());
        for (i, spec) in file.rule.into_iter().enumerate() {
            rules.push(spec.into_rule(i)?);
        }
        Self::new(rules)
    }

    /// The rules.
    #[must_use]
    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// How many rules there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SignalSpec {
    metric: Option<String>,
    ratio: Option<[String; 2]>,
    quantile: Option<f64>,
    window: Option<String>,
    operation: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Option<String>,
    kind: Option<String>,
    severity: Option<String>,
    summary: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(rename = "for")]
    for_: Option<String>,
    escalate_after: Option<String>,
    escalate_to: Option<String>,
    repeat_interval: Option<String>,
    // threshold / absence
    signal: Option<SignalSpec>,
    op: Option<Op>,
    value: Option<f64>,
    // baseline / burn_rate
    operation: Option<String>,
    metric: Option<String>,
    quantile: Option<f64>,
    factor: Option<f64>,
    window: Option<String>,
    baseline: Option<String>,
    min_samples: Option<u64>,
    objective: Option<f64>,
    latency_target: Option<String>,
    long_window: Option<String>,
    short_window: Option<String>,
}

fn dur(rule: &str, field: &str, v: Option<&String>) -> Result<Option<Duration>, RuleError> {
    v.map(|s| {
        humantime::parse_duration(s)
            .map_err(|e| RuleError::invalid(rule, field, format!("{s:?} is not a duration like \"5m\": {e}")))
    })
    .transpose()
}

impl SignalSpec {
    fn into_signal(self, rule: &str) -> Result<Signal, RuleError> {
        let window = dur(rule, "signal.window", self.window.as_ref())?;
        let mut s = match (self.metric, self.ratio, self.operation) {
            (Some(metric), None, None) => match self.quantile {
                Some(q) => Signal::quantile(metric, q, window),
                None => Signal::value(metric),
            },
            (None, None, Some(op)) => Signal::operation_quantile(
                &op,
                self.quantile.unwrap_or(0.95),
                window.unwrap_or(Duration::from_secs(300)),
            ),
            (None, Some([hits, misses]), None) => Signal::ratio(hits, misses),
            _ => {
                return Err(RuleError::invalid(
                    rule,
                    "signal",
                    "needs exactly one of `metric`, `operation` or `ratio`",
                ));
            }
        };
        for (k, v) in self.labels {
            s = s.label(k, v);
        }
        Ok(s)
    }
}

impl RuleSpec {
    fn into_rule(self, index: usize) -> Result<AlertRule, RuleError> {
        let name = self.name.clone().unwrap_or_default();
        let rule = if name.is_empty() {
            format!("#{}", index + 1)
        } else {
            name.clone()
        };
        let rule = rule.as_str();
        let missing = |field: &str| RuleError::invalid(rule, field, "is required");
        let kind = self.kind.as_deref().ok_or_else(|| missing("kind"))?;
        let mut r = match kind {
            "threshold" => AlertRule::threshold(
                name,
                self.signal.ok_or_else(|| missing("signal"))?.into_signal(rule)?,
                self.op.ok_or_else(|| missing("op"))?,
                self.value.ok_or_else(|| missing("value"))?,
            ),
            "absence" => AlertRule::absence(
                name,
                self.signal.ok_or_else(|| missing("signal"))?.into_signal(rule)?,
                dur(rule, "for", self.for_.as_ref())?.ok_or_else(|| missing("for"))?,
            ),
            "baseline" => {
                let d = AlertRule::baseline(name, self.operation.as_deref().unwrap_or_default());
                let Condition::Baseline {
                    quantile,
                    factor,
                    window,
                    baseline,
                    min_samples,
                    ..
                } = d.condition.clone()
                else {
                    unreachable!("baseline() builds a baseline condition")
                };
                let mut d = d.baseline_settings(
                    self.quantile.unwrap_or(quantile),
                    self.factor.unwrap_or(factor),
                    dur(rule, "window", self.window.as_ref())?.unwrap_or(window),
                    dur(rule, "baseline", self.baseline.as_ref())?.unwrap_or(baseline),
                    self.min_samples.unwrap_or(min_samples),
                );
                match (self.operation, self.metric) {
                    (Some(_), None) => {}
                    (None, Some(metric)) => {
                        if let Condition::Baseline {
                            metric: m, labels, ..
                        } = &mut d.condition
                        {
                            *m = metric;
                            labels.clear();
                        }
                    }
                    _ => {
                        return Err(RuleError::invalid(
                            rule,
                            "operation",
                            "needs exactly one of `operation` or `metric`",
                        ));
                    }
                }
                d
            }
            "burn_rate" => {
                let op = self.operation.ok_or_else(|| missing("operation"))?;
                let mut d =
                    AlertRule::burn_rate(name, &op, self.objective.ok_or_else(|| missing("objective"))?);
                d = d.burn_settings(
                    dur(rule, "long_window", self.long_window.as_ref())?.unwrap_or(Duration::from_secs(3600)),
                    dur(rule, "short_window", self.short_window.as_ref())?
                        .unwrap_or(Duration::from_secs(300)),
                    self.factor.unwrap_or(14.4),
                );
                if let Some(t) = dur(rule, "latency_target", self.latency_target.as_ref())? {
                    d = d.latency_target(t);
                }
                d
            }
            other => {
                return Err(RuleError::invalid(
                    rule,
                    "kind",
                    format!("unknown kind {other:?}: expected threshold, baseline, burn_rate or absence"),
                ));
            }
        };
        for (k, v) in &self.labels {
            r = r.label(k.clone(), v.clone());
        }
        if kind != "absence"
            && let Some(p) = dur(rule, "for", self.for_.as_ref())?
        {
            r = r.pending(p);
        }
        if let Some(s) = &self.severity {
            r = r.severity_is(
                s.parse()
                    .map_err(|e: String| RuleError::invalid(rule, "severity", e))?,
            );
        }
        if let Some(s) = &self.escalate_to {
            r = r.escalate_to(
                s.parse()
                    .map_err(|e: String| RuleError::invalid(rule, "escalate_to", e))?,
            );
        }
        if let Some(d) = dur(rule, "escalate_after", self.escalate_after.as_ref())? {
            r = r.escalate_after(d);
        }
        if let Some(d) = dur(rule, "repeat_interval", self.repeat_interval.as_ref())? {
            r = r.repeat_interval(d);
        }
        if let Some(s) = self.summary {
            r = r.summary(s);
        }
        r.validate().map_err(|e| match e {
            RuleError::Invalid { field, reason, .. } => RuleError::invalid(rule, &field, reason),
            other => other,
        })?;
        Ok(r)
    }
}
