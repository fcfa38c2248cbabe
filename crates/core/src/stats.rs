//! The small trait through which any component shows its counters to a
//! monitor, read at scrape time.
//
// Design: a component already keeps the atomics it needs (hits, misses,
// in-flight requests). Implementing `StatsSource` costs nothing on its hot
// path; the monitor calls `report_stats` when it is scraped and the component
// copies its atomics into the report. No library depends on brisk-monitor.

use std::borrow::Cow;
use std::sync::Arc;

/// A component whose counters and gauges a monitor can read.
///
/// Names follow Prometheus conventions: `snake_case`, a `brisk_<component>_`
/// prefix, a unit suffix (`_seconds`, `_bytes`), and `_total` on counters.
/// Labels tell instances apart (`cache="sentiment"`).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use brisk_core::{StatsReport, StatsSource};
///
/// #[derive(Debug, Default)]
/// struct Queue { pushed: AtomicU64, depth: AtomicU64 }
///
/// impl StatsSource for Queue {
///     fn report_stats(&self, out: &mut StatsReport) {
///         out.counter("brisk_queue_pushed_total", "Items pushed", self.pushed.load(Ordering::Relaxed))
///             .label("queue", "ingest");
///         out.gauge("brisk_queue_depth", "Items waiting", self.depth.load(Ordering::Relaxed) as f64)
///             .label("queue", "ingest");
///     }
/// }
///
/// let q = Queue::default();
/// q.pushed.fetch_add(3, Ordering::Relaxed);
/// let report = StatsReport::collect(&q);
/// assert_eq!(report.value("brisk_queue_pushed_total"), Some(3.0));
/// assert_eq!(report.metrics()[0].labels[0], ("queue".into(), "ingest".into()));
/// ```
pub trait StatsSource: Send + Sync {
    /// Writes the current values into `out`.
    fn report_stats(&self, out: &mut StatsReport);
}

impl<T: StatsSource + ?Sized> StatsSource for Arc<T> {
    fn report_stats(&self, out: &mut StatsReport) {
        (**self).report_stats(out);
    }
}

impl<T: StatsSource + ?Sized> StatsSource for Box<T> {
    fn report_stats(&self, out: &mut StatsReport) {
        (**self).report_stats(out);
    }
}

impl<T: StatsSource + ?Sized> StatsSource for &T {
    fn report_stats(&self, out: &mut StatsReport) {
        (**self).report_stats(out);
    }
}

/// A list of metric values, filled by [`StatsSource::report_stats`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsReport {
    metrics: Vec<Metric>,
}

impl StatsReport {
    /// An empty report.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A report filled by `source`.
    #[must_use]
    pub fn collect(source: &(impl StatsSource + ?Sized)) -> Self {
        let mut report = Self::new();
        source.report_stats(&mut report);
        report
    }

    /// Adds a counter (a value that only goes up) and returns it for labels.
    ///
    /// # Panics
    ///
    /// In debug builds, if `name` is not a valid Prometheus metric name.
    pub fn counter(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
        value: u64,
    ) -> MetricLabels<'_> {
        self.push(name.into(), help.into(), MetricValue::Counter(value))
    }

    /// Adds a gauge (a value that goes up and down) and returns it for labels.
    ///
    /// # Panics
    ///
    /// In debug builds, if `name` is not a valid Prometheus metric name.
    pub fn gauge(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
        value: f64,
    ) -> MetricLabels<'_> {
        self.push(name.into(), help.into(), MetricValue::Gauge(value))
    }

    fn push(
        &mut self,
        name: Cow<'static, str>,
        help: Cow<'static, str>,
        value: MetricValue,
    ) -> MetricLabels<'_> {
        debug_assert!(is_valid_metric_name(&name), "invalid metric name {name:?}");
        self.metrics.push(Metric {
            name,
            help,
            labels: Vec::new(),
            value,
        });
        let last = self.metrics.len() - 1;
        MetricLabels(&mut self.metrics[last])
    }

    /// The metrics reported, in order.
    #[must_use]
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// The metrics reported, by value.
    #[must_use]
    pub fn into_metrics(self) -> Vec<Metric> {
        self.metrics
    }

    /// The value of the first metric called `name`, whatever its labels.
    #[must_use]
    pub fn value(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value.as_f64())
    }

    /// Appends every metric of `other`.
    pub fn extend(&mut self, other: StatsReport) {
        self.metrics.extend(other.metrics);
    }
}

/// One reported value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Metric {
    /// The metric name, e.g. `brisk_cache_hits_total`.
    pub name: Cow<'static, str>,
    /// One line saying what it counts.
    pub help: Cow<'static, str>,
    /// Label pairs, in the order they were added.
    pub labels: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    /// The value.
    pub value: MetricValue,
}

/// A counter or a gauge value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricValue {
    /// Only ever increases (until the process restarts).
    Counter(u64),
    /// May go up and down.
    Gauge(f64),
}

impl MetricValue {
    /// The value as `f64` (counters above 2^53 lose precision).
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // documented: exposition formats are f64 anyway
    pub fn as_f64(self) -> f64 {
        match self {
            MetricValue::Counter(v) => v as f64,
            MetricValue::Gauge(v) => v,
        }
    }
}

/// Adds labels to the metric just reported.
#[derive(Debug)]
#[must_use = "labels are added with .label(name, value)"]
pub struct MetricLabels<'a>(&'a mut Metric);

impl MetricLabels<'_> {
    /// Adds the label `name="value"`.
    ///
    /// # Panics
    ///
    /// In debug builds, if `name` is not a valid Prometheus label name.
    pub fn label(self, name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        debug_assert!(
            is_valid_label_name(&name),
            "invalid label name {name:?} on {}",
            self.0.name
        );
        self.0.labels.push((name, value.into()));
        self
    }
}

/// Whether `name` is a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
#[must_use]
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Whether `name` is a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`,
/// not starting with `__` (reserved).
#[must_use]
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    !name.starts_with("__")
        && matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_metric_name("brisk_cache_hits_total"));
        assert!(is_valid_metric_name("a:b"));
        assert!(!is_valid_metric_name("9lives"));
        assert!(!is_valid_metric_name(""));
        assert!(!is_valid_metric_name("cache-hits"));
        assert!(is_valid_label_name("cache"));
        assert!(!is_valid_label_name("__name__"));
        assert!(!is_valid_label_name("a:b"));
    }

    #[test]
    #[should_panic(expected = "invalid metric name")]
    #[cfg(debug_assertions)]
    fn bad_names_are_caught_in_debug() {
        let _ = StatsReport::new().counter("bad name", "", 1);
    }
}
