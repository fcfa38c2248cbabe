//! The JSON summary for dashboards: per operation count, rate, p50/p95/p99
//! and error rate; cache hit rates; the slowest operations over a threshold.

use std::collections::BTreeMap;
use std::time::Duration;

use brisk_core::{ConfigError, Timestamp};
use serde::{Serialize, Serializer};

use crate::Monitor;
use crate::registry::{Kind, Series, read};

pub(crate) fn as_millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// What [`Monitor::summary`] covers.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryOptions {
    window: Duration,
    slow_threshold: Duration,
    top: usize,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            slow_threshold: Duration::from_millis(100),
            top: 10,
        }
    }
}

impl SummaryOptions {
    /// The window the counts, rates and percentiles cover. Default 5 min;
    /// must be non-zero.
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Operations whose p95 is above this are listed in `slowest`. Default 100 ms.
    #[must_use]
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow_threshold = threshold;
        self
    }

    /// At most this many `slowest` entries. Default 10.
    #[must_use]
    pub fn top(mut self, top: usize) -> Self {
        self.top = top;
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `summary.window` when it is zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window.is_zero() {
            return Err(ConfigError::new("summary.window", "must be greater than zero"));
        }
        Ok(())
    }
}

/// One operation in a [`Summary`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OperationSummary {
    /// The operation's name.
    pub name: String,
    /// Calls in the window.
    pub count: u64,
    /// Calls per second over the window.
    pub rate_per_sec: f64,
    /// Median duration in the window, in milliseconds (`null` without calls).
    pub p50_ms: Option<f64>,
    /// 95th percentile, in milliseconds.
    pub p95_ms: Option<f64>,
    /// 99th percentile, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Failed calls / calls in the window.
    pub error_rate: f64,
    /// Calls since start.
    pub total_count: u64,
}

/// A cache's hit rate in a [`Summary`]: any pair of counters
/// `<prefix>_hits_total` and `<prefix>_misses_total` with the same labels.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CacheSummary {
    /// `<prefix>` (e.g. `brisk_cache`).
    pub metric: String,
    /// The series' labels (e.g. `namespace`).
    pub labels: BTreeMap<String, String>,
    /// Hits since start.
    pub hits: f64,
    /// Misses since start.
    pub misses: f64,
    /// `hits / (hits + misses)`, `null` before any lookup.
    pub hit_rate: Option<f64>,
}

/// A slow operation in a [`Summary`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SlowOperation {
    /// The operation's name.
    pub name: String,
    /// Its p95 in the window, in milliseconds.
    pub p95_ms: f64,
}

/// The dashboard summary. Serialize it with `serde_json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// When it was made (wall clock).
    pub generated_at: Timestamp,
    /// The window, in seconds.
    pub window_secs: f64,
    /// Every operation, by name.
    pub operations: Vec<OperationSummary>,
    /// Every cache-like hit/miss pair.
    pub caches: Vec<CacheSummary>,
    /// Operations whose p95 is over the threshold, slowest first.
    pub slowest: Vec<SlowOperation>,
}

impl Monitor {
    /// The dashboard summary over `options`' window.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brisk_monitor::{Monitor, SummaryOptions};
    ///
    /// let monitor = Monitor::new();
    /// let op = monitor.operation("analyze")?;
    /// op.record(Duration::from_millis(150), true);
    /// op.record(Duration::from_millis(50), false);
    /// let summary = monitor.summary(&SummaryOptions::default());
    /// assert_eq!(summary.operations[0].count, 2);
    /// assert_eq!(summary.operations[0].error_rate, 0.5);
    /// assert_eq!(summary.slowest[0].name, "analyze");
    /// let json = serde_json::to_value(&summary)?;
    /// assert_eq!(json["operations"][0]["name"], "analyze");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn summary(&self, options: &SummaryOptions) -> Summary {
        let window = options.window.max(Duration::from_nanos(1));
        let mut operations = Vec::new();
        for op in self.operations() {
            let s = op.stats(Some(window));
            let total = op.stats(None).calls;
            let ms = |q: f64| s.durations.quantile(q).map(|v| v * 1e3);
            #[allow(clippy::cast_precision_loss)]
            operations.push(OperationSummary {
                name: op.name().to_owned(),
                count: s.calls,
                rate_per_sec: s.calls as f64 / window.as_secs_f64(),
                p50_ms: ms(0.5),
                p95_ms: ms(0.95),
                p99_ms: ms(0.99),
                error_rate: s.error_ratio(),
                total_count: total,
            });
        }
        let threshold_ms = options.slow_threshold.as_secs_f64() * 1e3;
        let mut slowest: Vec<SlowOperation> = operations
            .iter()
            .filter_map(|o| {
                o.p95_ms
                    .filter(|&p| p > threshold_ms)
                    .map(|p95_ms| SlowOperation {
                        name: o.name.clone(),
                        p95_ms,
                    })
            })
            .collect();
        slowest.sort_by(|a, b| b.p95_ms.total_cmp(&a.p95_ms));
        slowest.truncate(options.top);
        Summary {
            generated_at: Timestamp::now(self.clock().as_ref()),
            window_secs: window.as_secs_f64(),
            operations,
            caches: self.caches(),
            slowest,
        }
    }

    /// Every `<prefix>_hits_total` / `<prefix>_misses_total` pair, from
    /// registered counters and collectors.
    pub(crate) fn caches(&self) -> Vec<CacheSummary> {
        #[allow(clippy::type_complexity)]
        let mut pairs: BTreeMap<(String, Vec<(String, String)>), (f64, f64)> = BTreeMap::new();
        let mut add = |name: &str, labels: Vec<(String, String)>, v: f64| {
            if let Some(prefix) = name.strip_suffix("_hits_total") {
                pairs.entry((prefix.to_owned(), labels)).or_default().0 += v;
            } else if let Some(prefix) = name.strip_suffix("_misses_total") {
                pairs.entry((prefix.to_owned(), labels)).or_default().1 += v;
            }
        };
        for (name, fam) in read(&self.inner.families).iter() {
            if fam.kind != Kind::Counter {
                continue;
            }
            for (labels, s) in &fam.series {
                if let Series::Counter(c) = s {
                    #[allow(clippy::cast_precision_loss)]
                    add(name, labels.clone(), c.get() as f64);
                }
            }
        }
        for m in self.collect().into_metrics() {
            let mut labels: Vec<(String, String)> = m
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            labels.sort();
            add(&m.name, labels, m.value.as_f64());
        }
        pairs
            .into_iter()
            .map(|((metric, labels), (hits, misses))| CacheSummary {
                metric,
                labels: labels.into_iter().collect(),
                hits,
                misses,
                hit_rate: (hits + misses > 0.0).then(|| hits / (hits + misses)),
            })
            .collect()
    }
}
