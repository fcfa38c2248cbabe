//! Prometheus text exposition (format 0.0.4).
//
// Families are written in name order: registered series first, then what the
// collectors report (grouped by name; a collector metric whose name is taken
// by a registered family of another kind is left out, and so is a repeated
// label set). Each histogram is followed by a summary family
// `<name>_percentiles{quantile="…"}` holding its cumulative percentiles, read
// from the same HDR buckets: every value recorded since start counts, so p50
// of 0..999 is 499.5 ± 0.4%, not whatever a decaying sample kept.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::Monitor;
use crate::registry::{Kind, Labels, Series, read, sorted_labels};

/// The `Content-Type` of [`Monitor::render_prometheus`]'s output.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Monitor {
    /// Renders every metric in the Prometheus text format.
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
        let mut out = String::with_capacity(16 * 1024);
        self.render_prometheus_into(&mut out);
        out
    }

    /// Appends the Prometheus text format to `out`.
    pub fn render_prometheus_into(&self, out: &mut String) {
        let buckets = self.buckets();
        let quantiles = self.quantiles();
        let mut taken: BTreeMap<String, Kind> = BTreeMap::new();
        {
            let families = read(&self.inner.families);
            for (name, fam) in families.iter() {
                taken.insert(name.clone(), fam.kind);
                header(out, name, &fam.help, fam.kind.as_str());
                #[allow(clippy::type_complexity)]
                let mut quantile_rows: Vec<(&Labels, Vec<Option<f64>>, f64, f64)> = Vec::new();
                for (labels, series) in &fam.series {
                    match series {
                        #[allow(clippy::cast_precision_loss)]
                        Series::Counter(c) => sample(out, name, "", labels, None, c.get() as f64),
                        Series::Gauge(g) => sample(out, name, "", labels, None, g.get()),
                        Series::Histogram(h) => {
                            let snap = h.snapshot();
                            let counts = snap.cumulative_buckets(buckets);
                            for (i, &c) in counts.iter().enumerate() {
                                let le = buckets.get(i).copied().unwrap_or(f64::INFINITY);
                                #[allow(clippy::cast_precision_loss)]
                                sample(out, name, "_bucket", labels, Some(("le", le)), c as f64);
                            }
                            sample(out, name, "_sum", labels, None, snap.sum());
                            #[allow(clippy::cast_precision_loss)]
                            sample(out, name, "_count", labels, None, snap.count() as f64);
                            if !quantiles.is_empty() {
                                #[allow(clippy::cast_precision_loss)]
                                quantile_rows.push((
                                    labels,
                                    quantiles.iter().map(|&q| snap.quantile(q)).collect(),
                                    snap.sum(),
                                    snap.count() as f64,
                                ));
                            }
                        }
                    }
                }
                if !quantile_rows.is_empty() {
                    let qname = format!("{name}_percentiles");
                    let help = format!("Percentiles of {name} since start, from its HDR buckets");
                    header(out, &qname, &help, "summary");
                    for (labels, values, sum, count) in quantile_rows {
                        for (&q, v) in quantiles.iter().zip(values) {
                            sample(
                                out,
                                &qname,
                                "",
                                labels,
                                Some(("quantile", q)),
                                v.unwrap_or(f64::NAN),
                            );
                        }
                        sample(out, &qname, "_sum", labels, None, sum);
                        sample(out, &qname, "_count", labels, None, count);
                    }
                }
            }
        }
        // Collector metrics, grouped by name.
        let report = self.collect();
        #[allow(clippy::type_complexity)]
        let mut grouped: BTreeMap<&str, (&str, Kind, Vec<(Labels, f64)>)> = BTreeMap::new();
        for m in report.metrics() {
            let kind = match m.value {
                brisk_core::MetricValue::Counter(_) => Kind::Counter,
                _ => Kind::Gauge,
            };
            if taken.contains_key(m.name.as_ref()) {
                continue;
            }
            let entry = grouped
                .entry(m.name.as_ref())
                .or_insert((m.help.as_ref(), kind, Vec::new()));
            if entry.1 != kind {
                continue;
            }
            let labels = sorted_labels(m);
            entry.2.push((labels, m.value.as_f64()));
        }
        for (name, (help, kind, rows)) in grouped {
            header(out, name, help, kind.as_str());
            let mut seen = BTreeSet::new();
            for (labels, v) in &rows {
                if seen.insert(labels) {
                    sample(out, name, "", labels, None, *v);
                }
            }
        }
    }
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

fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &Labels,
    extra: Option<(&str, f64)>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for (k, v) in labels {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        if let Some((k, v)) = extra {
            if !first {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            push_f64(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_f64(out, value);
    out.push('\n');
}

fn escape_label(out: &mut String, v: &str) {
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
    } else {
        let _ = write!(out, "{v}");
    }
}
