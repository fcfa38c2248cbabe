//! Prometheus text exposition (format 0.0.4).
//
// Families are written in name order: registered families first, then the
// families only collectors report. A collector metric whose name is a
// registered family of the same kind is merged into it as extra series; one
// of another kind, one whose name belongs to a histogram's exposition
// (`<h>_count`, `<h>_percentiles`, …) and a repeated series are left out,
// listed by `Monitor::collector_conflicts` and counted in the gauge
// `brisk_monitor_collector_conflicts` (written only when non-zero). So no
// family ever appears twice.
//
// Each histogram is followed by a summary family `<name>_percentiles`: its
// cumulative percentiles (`{quantile="…"}`, every value since start, so p50
// of 0..999 is 499.5 ± 0.4%, not whatever a decaying sample kept), then the
// same quantiles over each exposed rolling window (`{window="1m",
// quantile="…"}`), each with the `_sum` and `_count` it was computed from.
// All are read from one copy of the HDR buckets per series.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use crate::Monitor;
use crate::histogram::HistogramSnapshot;
use crate::registry::{Family, Kind, Labels, Series, WINDOW_LABEL, histogram_owning, read, sorted_labels};

/// The `Content-Type` of [`Monitor::render_prometheus`]'s output.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The gauge counting collector metrics left out of the last scrape.
const CONFLICTS_METRIC: &str = "brisk_monitor_collector_conflicts";

/// A collector metric left out of the exposition (see
/// [`Monitor::collector_conflicts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectorConflict {
    /// The name the collector was registered under.
    pub collector: String,
    /// The metric name it reported.
    pub metric: String,
    /// The labels it reported, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Why it was left out.
    pub reason: ConflictReason,
}

/// Why a collector metric was left out of the exposition.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictReason {
    /// The name is a family of another kind: registered, or reported first
    /// by a collector.
    Kind {
        /// The family's kind: `"counter"`, `"gauge"` or `"histogram"`.
        existing: &'static str,
        /// The kind the collector reported.
        reported: &'static str,
    },
    /// The name belongs to the exposition of a registered histogram
    /// (`<histogram>_bucket`, `_sum`, `_count`, `_percentiles`, …).
    Reserved {
        /// The histogram family.
        histogram: String,
    },
    /// The same name and labels as a series already exposed (a registered
    /// series, or one an earlier collector reported): the first one wins.
    DuplicateSeries,
}

/// Samples of one family: labels and value.
type Rows = Vec<(Labels, f64)>;

/// Collector rows sorted into the exposition.
#[derive(Default)]
struct Collected {
    /// Same-kind rows merged into registered families, by family.
    merged: BTreeMap<String, Rows>,
    /// Families only collectors report: help, kind, rows.
    own: BTreeMap<String, (String, Kind, Rows)>,
    conflicts: Vec<CollectorConflict>,
}

impl Monitor {
    /// Renders every metric in the Prometheus text format.
    ///
    /// Each histogram `x` is written as `x_bucket`/`x_sum`/`x_count`, then a
    /// summary `x_percentiles`: quantiles since start, and the same
    /// quantiles over each exposed window with a `window` label (`"1m"`,
    /// `"5m"`, `"1h"`), each with the `_sum` and `_count` they cover.
    /// Collector metrics join registered families of the same kind; clashes
    /// are left out and listed by [`collector_conflicts`](Self::collector_conflicts).
    ///
    /// ```
    /// let monitor = brisk_monitor::Monitor::new();
    /// monitor.counter("brisk_jobs_total", "Jobs done", &[("queue", "ingest")])?.add(3);
    /// let text = monitor.render_prometheus();
    /// assert!(text.contains("# TYPE brisk_jobs_total counter\n"));
    /// assert!(text.contains("brisk_jobs_total{queue=\"ingest\"} 3\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn render_prometheus(&self) -> String {
        // Reserve what the last scrape wrote: one allocation, no regrowth.
        let hint = self.inner.render_len.load(Ordering::Relaxed);
        let mut out = String::with_capacity((hint + hint / 8).max(16 * 1024));
        self.render_prometheus_into(&mut out);
        self.inner.render_len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// Appends the Prometheus text format to `out`.
    pub fn render_prometheus_into(&self, out: &mut String) {
        // Collectors are read before any lock is taken: a source may use the monitor.
        let reports = self.collect_by_source();
        let conflicts = {
            let families = read(&self.inner.families);
            let mut collected = sort_collected(&families, reports);
            for (name, fam) in families.iter() {
                let merged = collected.merged.remove(name).unwrap_or_default();
                self.render_family(out, name, fam, &merged);
            }
            for (name, (help, kind, rows)) in &collected.own {
                header(out, name, help, kind.as_str());
                for (labels, v) in rows {
                    sample(out, name, "", &label_text(labels), None, *v);
                }
            }
            collected.conflicts
        };
        if !conflicts.is_empty() {
            header(
                out,
                CONFLICTS_METRIC,
                "Collector metrics left out of this scrape: a kind conflict, a name taken by a histogram, or a repeated series",
                "gauge",
            );
            #[allow(clippy::cast_precision_loss)]
            sample(out, CONFLICTS_METRIC, "", "", None, conflicts.len() as f64);
            self.warn_conflicts(&conflicts);
        }
    }

    /// The collector metrics the exposition leaves out, read now: a name
    /// that is a family of another kind (registered, or reported first by
    /// another collector), a name that belongs to a histogram's exposition,
    /// or a repeated series. A metric with the name of a registered family
    /// of the same kind is not a conflict: it is exposed in that family.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use brisk_core::{StatsReport, StatsSource};
    /// use brisk_monitor::{ConflictReason, Monitor};
    ///
    /// struct Pool;
    /// impl StatsSource for Pool {
    ///     fn report_stats(&self, out: &mut StatsReport) {
    ///         let _ = out.gauge("brisk_pool_size", "Connections", 4.0);
    ///     }
    /// }
    /// let monitor = Monitor::new();
    /// monitor.counter("brisk_pool_size", "Taken as a counter", &[])?;
    /// monitor.register("pool", Arc::new(Pool));
    /// let conflicts = monitor.collector_conflicts();
    /// assert_eq!(conflicts[0].collector, "pool");
    /// assert_eq!(
    ///     conflicts[0].reason,
    ///     ConflictReason::Kind { existing: "counter", reported: "gauge" }
    /// );
    /// assert!(monitor.render_prometheus().contains("brisk_monitor_collector_conflicts 1\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn collector_conflicts(&self) -> Vec<CollectorConflict> {
        let reports = self.collect_by_source();
        let families = read(&self.inner.families);
        sort_collected(&families, reports).conflicts
    }

    /// Each registered source's report, with its name.
    fn collect_by_source(&self) -> Vec<(String, brisk_core::StatsReport)> {
        let sources: Vec<_> = read(&self.inner.collectors).clone();
        sources
            .into_iter()
            .map(|(name, source)| {
                let mut report = brisk_core::StatsReport::new();
                source.report_stats(&mut report);
                (name, report)
            })
            .collect()
    }

    /// Logs each conflict once per (collector, metric, reason).
    fn warn_conflicts(&self, conflicts: &[CollectorConflict]) {
        let mut warned = self
            .inner
            .warned_conflicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for c in conflicts {
            let key = (c.collector.clone(), c.metric.clone(), format!("{:?}", c.reason));
            if warned.insert(key) {
                tracing::warn!(
                    target: "brisk_monitor",
                    collector = %c.collector,
                    metric = %c.metric,
                    reason = ?c.reason,
                    "collector metric left out of the Prometheus exposition"
                );
            }
        }
    }

    fn render_family(&self, out: &mut String, name: &str, fam: &Family, merged: &[(Labels, f64)]) {
        header(out, name, &fam.help, fam.kind.as_str());
        let buckets = self.buckets();
        let windows = &self.inner.config.windows;
        let spans: Vec<_> = windows.iter().map(|(d, _)| *d).collect();
        let mut les: Vec<String> = Vec::new();
        // Only the numbers the summary needs are kept until the family's end,
        // so each series' bucket copies are freed (and reused) at once.
        let quantiles = self.quantiles();
        let mut percentiles: Vec<(String, Vec<Summed>)> = Vec::new();
        for (labels, series) in &fam.series {
            let labels = label_text(labels);
            match series {
                #[allow(clippy::cast_precision_loss)]
                Series::Counter(c) => sample(out, name, "", &labels, None, c.get() as f64),
                Series::Gauge(g) => sample(out, name, "", &labels, None, g.get()),
                Series::Histogram(h) => {
                    let (snap, windowed) = if quantiles.is_empty() {
                        (h.snapshot(), Vec::new())
                    } else {
                        h.0.snapshot_and_windows(&spans)
                    };
                    if les.is_empty() {
                        les = buckets.iter().map(|&b| f64_text(b)).collect();
                        les.push("+Inf".to_owned());
                    }
                    let counts = snap.cumulative_buckets(buckets);
                    for (le, &c) in les.iter().zip(&counts) {
                        #[allow(clippy::cast_precision_loss)]
                        sample(out, name, "_bucket", &labels, Some(("le", le)), c as f64);
                    }
                    sample(out, name, "_sum", &labels, None, snap.sum());
                    #[allow(clippy::cast_precision_loss)]
                    sample(out, name, "_count", &labels, None, snap.count() as f64);
                    if !quantiles.is_empty() {
                        let all = Summed::of(&snap, quantiles, None);
                        let mut rows = Vec::with_capacity(1 + windowed.len());
                        for w in &windowed {
                            rows.push(Summed::of(w, quantiles, Some(&all)));
                        }
                        rows.insert(0, all);
                        percentiles.push((labels, rows));
                    }
                }
            }
        }
        for (labels, v) in merged {
            sample(out, name, "", &label_text(labels), None, *v);
        }
        if percentiles.is_empty() {
            return;
        }
        let qname = format!("{name}_percentiles");
        let mut help = format!("Percentiles of {name} from its HDR buckets, since start");
        if !windows.is_empty() {
            let labels: Vec<&str> = windows.iter().map(|(_, l)| l.as_str()).collect();
            let _ = write!(help, " and over the last {} (label window)", labels.join(", "));
        }
        header(out, &qname, &help, "summary");
        let qs: Vec<String> = quantiles.iter().map(|&q| f64_text(q)).collect();
        for (labels, rows) in percentiles {
            let mut rows = rows.iter();
            if let Some(all) = rows.next() {
                write_quantiles(out, &qname, &labels, &qs, all);
            }
            for ((_, label), w) in windows.iter().zip(rows) {
                let mut with_window = labels.clone();
                if !with_window.is_empty() {
                    with_window.push(',');
                }
                let _ = write!(with_window, "{WINDOW_LABEL}=\"{label}\"");
                write_quantiles(out, &qname, &with_window, &qs, w);
            }
        }
    }
}

/// What one summary series shows: quantile values, sum and count.
struct Summed {
    values: Vec<f64>,
    sum: f64,
    count: u64,
}

impl Summed {
    /// From `snap`; a window holding every value of `all` reuses its quantiles.
    fn of(snap: &HistogramSnapshot, quantiles: &[f64], all: Option<&Summed>) -> Self {
        let values = match all {
            Some(a) if a.count == snap.count() => a.values.clone(),
            _ => snap.quantiles(quantiles),
        };
        Self {
            values,
            sum: snap.sum(),
            count: snap.count(),
        }
    }
}

/// The quantile samples of one summary series, then its `_sum` and `_count`.
fn write_quantiles(out: &mut String, qname: &str, labels: &str, quantiles: &[String], s: &Summed) {
    for (q, &v) in quantiles.iter().zip(&s.values) {
        sample(out, qname, "", labels, Some(("quantile", q)), v);
    }
    sample(out, qname, "_sum", labels, None, s.sum);
    #[allow(clippy::cast_precision_loss)]
    sample(out, qname, "_count", labels, None, s.count as f64);
}

/// Sorts collector rows into merged rows, own families and conflicts.
fn sort_collected(
    families: &BTreeMap<String, Family>,
    reports: Vec<(String, brisk_core::StatsReport)>,
) -> Collected {
    let mut c = Collected::default();
    let mut seen: BTreeSet<(String, Labels)> = BTreeSet::new();
    for (collector, report) in reports {
        for m in report.into_metrics() {
            let kind = match m.value {
                brisk_core::MetricValue::Counter(_) => Kind::Counter,
                brisk_core::MetricValue::Gauge(_) => Kind::Gauge,
            };
            let labels = sorted_labels(&m);
            let name = m.name.as_ref();
            let conflict = |reason| CollectorConflict {
                collector: collector.clone(),
                metric: name.to_owned(),
                labels: labels.clone(),
                reason,
            };
            if let Some(h) = histogram_owning(families, name) {
                c.conflicts.push(conflict(ConflictReason::Reserved {
                    histogram: h.to_owned(),
                }));
                continue;
            }
            let existing = families
                .get(name)
                .map(|f| f.kind)
                .or_else(|| c.own.get(name).map(|(_, k, _)| *k));
            if let Some(existing) = existing
                && existing != kind
            {
                c.conflicts.push(conflict(ConflictReason::Kind {
                    existing: existing.as_str(),
                    reported: kind.as_str(),
                }));
                continue;
            }
            let registered = families.get(name);
            if registered.is_some_and(|f| f.series.contains_key(&labels))
                || !seen.insert((name.to_owned(), labels.clone()))
            {
                c.conflicts.push(conflict(ConflictReason::DuplicateSeries));
                continue;
            }
            let value = m.value.as_f64();
            if registered.is_some() {
                c.merged.entry(name.to_owned()).or_default().push((labels, value));
            } else {
                c.own
                    .entry(name.to_owned())
                    .or_insert_with(|| (m.help.to_string(), kind, Vec::new()))
                    .2
                    .push((labels, value));
            }
        }
    }
    c
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    // promtool wants help text; facade metrics without `describe_*` have none.
    let help = if help.is_empty() { "Not described" } else { help };
    for ch in help.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// `labels` rendered as `a="x",b="y"` (escaped), without braces.
fn label_text(labels: &Labels) -> String {
    let mut out = String::new();
    for (k, v) in labels {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label(&mut out, v);
        out.push('"');
    }
    out
}

/// One sample line; `labels` from [`label_text`], `extra` a label whose
/// value needs no escaping (`le`, `quantile`).
fn sample(out: &mut String, name: &str, suffix: &str, labels: &str, extra: Option<(&str, &str)>, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((k, v)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_f64(out, value);
    out.push('\n');
}

fn f64_text(v: f64) -> String {
    let mut s = String::new();
    push_f64(&mut s, v);
    s
}

fn escape_label(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub(crate) fn push_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Integers (counts, most counters) print faster as integers; same text.
        #[allow(clippy::cast_possible_truncation)]
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}
