//! The Prometheus text: grammar, round trip, promtool.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use brisk_monitor::Monitor;

/// One parsed sample line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|e| format!("bad value {s:?}: {e}")),
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = chars
        .iter()
        .position(|&c| c == '{' || c == ' ')
        .ok_or("sample without value")?;
    let name: String = chars[..i].iter().collect();
    if !is_metric_name(&name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    if chars[i] == '{' {
        i += 1;
        loop {
            if chars.get(i) == Some(&'}') {
                i += 1;
                break;
            }
            let eq = (i..chars.len())
                .find(|&j| chars[j] == '=')
                .ok_or("label without =")?;
            let lname: String = chars[i..eq].iter().collect();
            if !is_label_name(&lname) {
                return Err(format!("bad label name {lname:?}"));
            }
            if chars.get(eq + 1) != Some(&'"') {
                return Err("label value not quoted".into());
            }
            i = eq + 2;
            let mut value = String::new();
            loop {
                let c = *chars.get(i).ok_or("unterminated label value")?;
                i += 1;
                match c {
                    '\\' => {
                        let e = *chars.get(i).ok_or("dangling escape")?;
                        i += 1;
                        value.push(match e {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            other => return Err(format!("bad escape \\{other}")),
                        });
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
            if labels.insert(lname.clone(), value).is_some() {
                return Err(format!("repeated label {lname}"));
            }
            match chars.get(i) {
                Some(',') => i += 1,
                Some('}') => {}
                _ => return Err(format!("expected , or }} after label {lname}")),
            }
        }
    }
    let rest: String = chars[i..].iter().collect();
    let rest = rest.strip_prefix(' ').ok_or("no space before value")?;
    let mut parts = rest.split(' ');
    let value = parse_value(parts.next().ok_or("no value")?)?;
    if let Some(ts) = parts.next() {
        ts.parse::<i64>().map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if parts.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample { name, labels, value })
}

/// Checks `text` against the text-format grammar and its semantic rules
/// (TYPE before samples and once per family, families contiguous, histogram
/// buckets cumulative and ending in +Inf = _count, no repeated series) and
/// returns the samples.
pub(crate) fn check_grammar(text: &str) -> Result<Vec<Sample>, String> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps = BTreeSet::new();
    let mut done_families = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    let mut seen_series = BTreeSet::new();
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("text must end with a newline".into());
    }
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut it = rest.splitn(3, ' ');
            let (kw, name) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            match kw {
                "HELP" | "TYPE" => {
                    if !is_metric_name(name) {
                        return Err(err(format!("bad name in {kw}")));
                    }
                    if current.as_deref() != Some(name) {
                        if let Some(c) = current.take() {
                            done_families.insert(c);
                        }
                        if done_families.contains(name) {
                            return Err(err("family appears twice".into()));
                        }
                        current = Some(name.to_owned());
                    }
                    if kw == "HELP" && !helps.insert(name.to_owned()) {
                        return Err(err("second HELP".into()));
                    }
                    if kw == "TYPE" {
                        let t = it.next().unwrap_or("");
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                            return Err(err(format!("unknown type {t:?}")));
                        }
                        if samples
                            .iter()
                            .any(|s: &Sample| family_of(&s.name, &types) == name)
                        {
                            return Err(err("TYPE after samples".into()));
                        }
                        if types.insert(name.to_owned(), t.to_owned()).is_some() {
                            return Err(err("second TYPE".into()));
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let s = parse_sample(line).map_err(err)?;
        let fam = family_of(&s.name, &types);
        if current.as_deref() != Some(fam.as_str()) {
            if let Some(c) = current.take() {
                done_families.insert(c);
            }
            if done_families.contains(&fam) {
                return Err(err(format!("samples of {fam} are not contiguous")));
            }
            current = Some(fam.clone());
        }
        if types.get(&fam).map(String::as_str) == Some("counter") && s.value < 0.0 {
            return Err(err("negative counter".into()));
        }
        let key = format!("{}{:?}", s.name, s.labels);
        if !seen_series.insert(key) {
            return Err(err("repeated series".into()));
        }
        samples.push(s);
    }
    // Histogram rules.
    for (fam, t) in &types {
        if t != "histogram" {
            continue;
        }
        let mut by_series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts = BTreeMap::new();
        for s in &samples {
            let mut base = s.labels.clone();
            if s.name == format!("{fam}_bucket") {
                let le = base.remove("le").ok_or(format!("{fam}_bucket without le"))?;
                by_series
                    .entry(format!("{base:?}"))
                    .or_default()
                    .push((parse_value(&le)?, s.value));
            } else if s.name == format!("{fam}_count") {
                counts.insert(format!("{base:?}"), s.value);
            }
        }
        for (series, buckets) in by_series {
            for w in buckets.windows(2) {
                if !(w[0].0 < w[1].0 && w[0].1 <= w[1].1) {
                    return Err(format!("{fam}{series}: buckets not increasing: {w:?}"));
                }
            }
            let last = buckets.last().unwrap();
            if last.0 != f64::INFINITY {
                return Err(format!("{fam}{series}: no +Inf bucket"));
            }
            if counts.get(&series) != Some(&last.1) {
                return Err(format!("{fam}{series}: +Inf bucket != _count"));
            }
        }
    }
    Ok(samples)
}

fn family_of(sample: &str, types: &BTreeMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && (types.get(base).map(String::as_str) == Some("histogram")
                || (suffix != "_bucket" && types.get(base).map(String::as_str) == Some("summary")))
        {
            return base.to_owned();
        }
    }
    sample.to_owned()
}

pub(crate) fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// Runs `promtool check metrics` on `text` when promtool is on PATH; returns
/// whether it ran. Its verdict is asserted.
fn promtool_check(text: &str) -> bool {
    use std::io::Write;
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        return false;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- text ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

fn sample_monitor() -> Monitor {
    let monitor = Monitor::new();
    monitor
        .counter(
            "brisk_http_requests_total",
            "HTTP requests",
            &[("route", "/api"), ("code", "200")],
        )
        .unwrap()
        .add(41);
    monitor
        .counter(
            "brisk_http_requests_total",
            "HTTP requests",
            &[("route", "/api"), ("code", "500")],
        )
        .unwrap()
        .inc();
    monitor
        .gauge(
            "brisk_queue_depth",
            "Items waiting,\nper queue \\ shard",
            &[("queue", "a \"quoted\"\nname \\ x")],
        )
        .unwrap()
        .set(-2.5);
    let h = monitor
        .histogram("brisk_analyze_seconds", "Analyze time", &[("model", "v1")])
        .unwrap();
    // 0.003 (≤ 0.005), 0.02 (≤ 0.025), 0.3 (≤ 0.5) ×2, 20 (> 10)
    for v in [0.003, 0.02, 0.3, 0.3, 20.0] {
        h.record(v);
    }
    let op = monitor.operation("ingest").unwrap();
    op.record(std::time::Duration::from_millis(7), true);
    op.record(std::time::Duration::from_millis(70), false);
    monitor
}

#[test]
fn text_parses_back_into_the_values_recorded() {
    let monitor = sample_monitor();
    let text = monitor.render_prometheus();
    let samples = check_grammar(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        value_of(
            &samples,
            "brisk_http_requests_total",
            &[("route", "/api"), ("code", "200")]
        ),
        Some(41.0)
    );
    assert_eq!(
        value_of(
            &samples,
            "brisk_http_requests_total",
            &[("route", "/api"), ("code", "500")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value_of(
            &samples,
            "brisk_queue_depth",
            &[("queue", "a \"quoted\"\nname \\ x")]
        ),
        Some(-2.5)
    );
    assert!(text.contains("# HELP brisk_queue_depth Items waiting,\\nper queue \\\\ shard\n"));
    let b = |le: &str| {
        value_of(
            &samples,
            "brisk_analyze_seconds_bucket",
            &[("model", "v1"), ("le", le)],
        )
    };
    assert_eq!(b("0.005"), Some(1.0));
    assert_eq!(b("0.01"), Some(1.0));
    assert_eq!(b("0.025"), Some(2.0));
    assert_eq!(b("0.25"), Some(2.0));
    assert_eq!(b("0.5"), Some(4.0));
    assert_eq!(b("10"), Some(4.0));
    assert_eq!(b("+Inf"), Some(5.0));
    assert_eq!(
        value_of(&samples, "brisk_analyze_seconds_count", &[("model", "v1")]),
        Some(5.0)
    );
    let sum = value_of(&samples, "brisk_analyze_seconds_sum", &[("model", "v1")]).unwrap();
    assert!((sum - 20.623).abs() < 1e-9, "{sum}");
    let p50 = value_of(
        &samples,
        "brisk_analyze_seconds_percentiles",
        &[("model", "v1"), ("quantile", "0.5")],
    )
    .unwrap();
    assert!((p50 - 0.3).abs() < 0.3 / 256.0, "{p50}");
    assert_eq!(
        value_of(
            &samples,
            "brisk_operation_errors_total",
            &[("operation", "ingest")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value_of(
            &samples,
            "brisk_operation_duration_seconds_count",
            &[("operation", "ingest")]
        ),
        Some(2.0)
    );
}

#[test]
fn thousand_uniform_values_scrape_as_p50_near_500() {
    // metrics-exporter-prometheus 0.18's default summary reports p50 = 979 here.
    let monitor = Monitor::new();
    let h = monitor
        .histogram("brisk_values", "0..999 before the first scrape", &[])
        .unwrap();
    for v in 0..1000 {
        h.record(f64::from(v));
    }
    let samples = check_grammar(&monitor.render_prometheus()).unwrap();
    let q = |q: &str| value_of(&samples, "brisk_values_percentiles", &[("quantile", q)]).unwrap();
    assert!((q("0.5") - 500.0).abs() <= 3.0, "p50 = {}", q("0.5"));
    assert!((q("0.9") - 900.0).abs() <= 4.0, "p90 = {}", q("0.9"));
    assert!((q("0.99") - 990.0).abs() <= 5.0, "p99 = {}", q("0.99"));
    assert!((q("0.999") - 999.0).abs() <= 5.0, "p99.9 = {}", q("0.999"));
}

#[test]
fn grammar_check_rejects_broken_text() {
    // The checker itself must be able to fail.
    assert!(check_grammar("x 1").is_err(), "missing newline");
    assert!(check_grammar("9x 1\n").is_err());
    assert!(check_grammar("x{a=\"1} 1\n").is_err());
    assert!(check_grammar("# TYPE x counter\nx -1\n").is_err());
    assert!(check_grammar("x 1\ny 1\nx 2\n").is_err());
    assert!(check_grammar("x 1\n# TYPE x counter\n").is_err());
    assert!(
        check_grammar("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n")
            .is_err()
    );
    assert!(check_grammar("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n").is_err());
    assert!(check_grammar("# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n").is_err());
    assert!(check_grammar("# TYPE x gauge\nx{a=\"\\q\"} 1\n").is_err());
    assert!(check_grammar("# TYPE x gauge\n# HELP x y\nx{a=\"1\",b=\"\\n\"} NaN 123\n").is_ok());
}

#[test]
fn output_passes_promtool_or_the_grammar_check() {
    let monitor = sample_monitor();
    let recorder = monitor.recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("facade.events_total", "kind" => "x").increment(3);
        metrics::gauge!("facade_temperature_celsius").set(21.5);
    });
    let text = monitor.render_prometheus();
    // The grammar check always runs; promtool runs too when installed
    // (scripts/test installs Debian's `prometheus` package for it).
    check_grammar(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let ran = promtool_check(&text);
    eprintln!("promtool check metrics ran: {ran}");
}

fn manual_monitor() -> (brisk_core::ManualClock, Monitor) {
    let clock = brisk_core::ManualClock::new();
    let monitor = Monitor::builder().clock(clock.shared()).build().unwrap();
    (clock, monitor)
}

#[test]
fn windowed_percentiles_show_recent_values_not_cumulative() {
    use std::time::Duration;
    let (clock, monitor) = manual_monitor();
    let h = monitor
        .histogram("brisk_call_seconds", "Call time", &[("op", "a")])
        .unwrap();
    for _ in 0..1000 {
        h.record(1.0); // slow, 10 min ago
    }
    monitor.tick();
    clock.advance(Duration::from_secs(600));
    for i in 0..100 {
        h.record(0.010 + f64::from(i) * 1e-5); // fast, now: 10.0–10.99 ms
    }
    monitor.tick();

    let text = monitor.render_prometheus();
    let samples = check_grammar(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    promtool_check(&text);
    assert_eq!(
        text.matches("# TYPE brisk_call_seconds_percentiles summary\n")
            .count(),
        1
    );
    let q = |window: Option<&str>, q: &str| {
        let mut labels = vec![("op", "a"), ("quantile", q)];
        labels.extend(window.map(|w| ("window", w)));
        value_of(&samples, "brisk_call_seconds_percentiles", &labels)
            .unwrap_or_else(|| panic!("no {window:?} {q}\n{text}"))
    };
    let count = |window: Option<&str>| {
        let mut labels = vec![("op", "a")];
        labels.extend(window.map(|w| ("window", w)));
        value_of(&samples, "brisk_call_seconds_percentiles_count", &labels).unwrap()
    };
    // Cumulative: dominated by the 1,000 old values.
    assert!((q(None, "0.5") - 1.0).abs() < 1.0 / 256.0);
    assert_eq!(count(None), 1100.0);
    // The last minute and 5 minutes hold only the recent 100 values.
    for w in ["1m", "5m"] {
        let p50 = q(Some(w), "0.5");
        assert!((p50 - 0.0105).abs() < 0.0105 / 128.0, "{w} p50 = {p50}");
        let p99 = q(Some(w), "0.99");
        assert!((p99 - 0.01099).abs() < 0.011 / 128.0, "{w} p99 = {p99}");
        assert_eq!(count(Some(w)), 100.0, "{w}");
        let sum = value_of(
            &samples,
            "brisk_call_seconds_percentiles_sum",
            &[("op", "a"), ("window", w)],
        )
        .unwrap();
        assert!((sum - 1.0495).abs() < 1e-6, "{w} sum = {sum}");
    }
    // The hour holds both.
    assert_eq!(count(Some("1h")), 1100.0);
    assert!((q(Some("1h"), "0.5") - 1.0).abs() < 1.0 / 256.0);

    // Two minutes later the last minute is empty (NaN), 5 minutes still has them.
    clock.advance(Duration::from_secs(120));
    let samples = check_grammar(&monitor.render_prometheus()).unwrap();
    let p50_1m = value_of(
        &samples,
        "brisk_call_seconds_percentiles",
        &[("op", "a"), ("window", "1m"), ("quantile", "0.5")],
    )
    .unwrap();
    assert!(p50_1m.is_nan(), "{p50_1m}");
    assert_eq!(
        value_of(
            &samples,
            "brisk_call_seconds_percentiles_count",
            &[("op", "a"), ("window", "5m")]
        ),
        Some(100.0)
    );
}

#[test]
fn exposed_windows_are_configurable_and_validated() {
    use std::time::Duration;
    let monitor = Monitor::builder()
        .exposed_windows(vec![Duration::from_secs(90)])
        .build()
        .unwrap();
    monitor
        .histogram("brisk_w_seconds", "w", &[])
        .unwrap()
        .record(0.5);
    let text = monitor.render_prometheus();
    check_grammar(&text).unwrap();
    assert!(
        text.contains("brisk_w_seconds_percentiles{window=\"1m30s\",quantile=\"0.5\"} 0.5"),
        "{text}"
    );
    assert!(!text.contains("window=\"1m\""));

    let none = Monitor::builder().exposed_windows(Vec::new()).build().unwrap();
    none.histogram("brisk_w_seconds", "w", &[]).unwrap().record(0.5);
    assert!(!none.render_prometheus().contains("window="));

    // The defaults beyond a shorter max_window are dropped, not an error.
    let short = Monitor::builder()
        .max_window(Duration::from_secs(300))
        .build()
        .unwrap();
    assert_eq!(
        short.exposed_windows(),
        vec![Duration::from_secs(60), Duration::from_secs(300)]
    );
    let e = Monitor::builder()
        .exposed_windows(vec![Duration::from_secs(7200)])
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "monitor.exposed_windows");
    assert!(matches!(
        Monitor::new().histogram("brisk_h_seconds", "h", &[("window", "x")]),
        Err(brisk_monitor::MonitorError::InvalidLabel { label, .. }) if label == "window"
    ));
}

/// One reported metric: name, kind (`"counter"` or `"gauge"`), labels, value.
type Reported = (&'static str, &'static str, Vec<(&'static str, &'static str)>, f64);

/// A collector reporting a fixed list of metrics.
struct Fixed(Vec<Reported>);

impl brisk_core::StatsSource for Fixed {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn report_stats(&self, out: &mut brisk_core::StatsReport) {
        for (name, kind, labels, value) in &self.0 {
            let mut m = if *kind == "counter" {
                out.counter(*name, "from a collector", *value as u64)
            } else {
                out.gauge(*name, "from a collector", *value)
            };
            for (k, v) in labels {
                m = m.label(*k, *v);
            }
        }
    }
}

#[test]
fn collector_metrics_merge_into_same_kind_families_and_conflicts_are_reported() {
    use brisk_monitor::ConflictReason;
    use std::sync::Arc;
    let monitor = Monitor::new();
    monitor
        .counter("brisk_cache_hits_total", "Cache hits", &[("namespace", "users")])
        .unwrap()
        .add(7);
    monitor.gauge("brisk_queue_depth", "Depth", &[]).unwrap().set(3.0);
    monitor
        .histogram("brisk_lat_seconds", "Latency", &[])
        .unwrap()
        .record(0.1);
    monitor.register(
        "cache",
        Arc::new(Fixed(vec![
            // Same kind: a new series of the registered family.
            (
                "brisk_cache_hits_total",
                "counter",
                vec![("namespace", "posts")],
                5.0,
            ),
            // Same kind, same labels as the registered series: the registered one wins.
            (
                "brisk_cache_hits_total",
                "counter",
                vec![("namespace", "users")],
                99.0,
            ),
            // Another kind than the registered gauge.
            ("brisk_queue_depth", "counter", vec![("queue", "x")], 1.0),
            // A name of the histogram's exposition.
            ("brisk_lat_seconds_count", "counter", vec![], 4.0),
            ("brisk_other_total", "counter", vec![], 2.0),
        ])),
    );
    monitor.register(
        "pool",
        Arc::new(Fixed(vec![
            // Same kind as the first collector's family: merged there.
            ("brisk_other_total", "counter", vec![("pool", "main")], 1.0),
            // Another kind than the first collector reported.
            ("brisk_other_total", "gauge", vec![("pool", "replica")], 8.0),
            // Same kind as the registered gauge: merged.
            ("brisk_queue_depth", "gauge", vec![("queue", "ingest")], 12.0),
        ])),
    );

    let text = monitor.render_prometheus();
    let samples = check_grammar(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    promtool_check(&text);
    for fam in ["brisk_cache_hits_total", "brisk_queue_depth", "brisk_other_total"] {
        assert_eq!(
            text.matches(&format!("# TYPE {fam} ")).count(),
            1,
            "{fam}\n{text}"
        );
    }
    let v = |name: &str, labels: &[(&str, &str)]| value_of(&samples, name, labels);
    assert_eq!(v("brisk_cache_hits_total", &[("namespace", "users")]), Some(7.0));
    assert_eq!(v("brisk_cache_hits_total", &[("namespace", "posts")]), Some(5.0));
    assert_eq!(v("brisk_queue_depth", &[]), Some(3.0));
    assert_eq!(v("brisk_queue_depth", &[("queue", "ingest")]), Some(12.0));
    assert_eq!(v("brisk_queue_depth", &[("queue", "x")]), None);
    assert_eq!(
        v("brisk_lat_seconds_count", &[]),
        Some(1.0),
        "the histogram's own count"
    );
    assert_eq!(v("brisk_other_total", &[]), Some(2.0));
    assert_eq!(v("brisk_other_total", &[("pool", "main")]), Some(1.0));
    assert_eq!(v("brisk_other_total", &[("pool", "replica")]), None);
    assert_eq!(v("brisk_monitor_collector_conflicts", &[]), Some(4.0));

    let conflicts = monitor.collector_conflicts();
    let reasons: Vec<(&str, &str, &ConflictReason)> = conflicts
        .iter()
        .map(|c| (c.collector.as_str(), c.metric.as_str(), &c.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (
                "cache",
                "brisk_cache_hits_total",
                &ConflictReason::DuplicateSeries
            ),
            (
                "cache",
                "brisk_queue_depth",
                &ConflictReason::Kind {
                    existing: "gauge",
                    reported: "counter"
                }
            ),
            (
                "cache",
                "brisk_lat_seconds_count",
                &ConflictReason::Reserved {
                    histogram: "brisk_lat_seconds".into()
                }
            ),
            (
                "pool",
                "brisk_other_total",
                &ConflictReason::Kind {
                    existing: "counter",
                    reported: "gauge"
                }
            ),
        ]
    );
    assert_eq!(conflicts[1].labels, vec![("queue".to_owned(), "x".to_owned())]);

    // Without conflicts the gauge is not written.
    monitor.unregister("pool");
    monitor.unregister("cache");
    assert!(monitor.collector_conflicts().is_empty());
    assert!(
        !monitor
            .render_prometheus()
            .contains("brisk_monitor_collector_conflicts")
    );
}

#[test]
fn names_of_a_histograms_exposition_are_reserved() {
    use brisk_monitor::MonitorError;
    let monitor = Monitor::new();
    monitor.histogram("brisk_lat_seconds", "Latency", &[]).unwrap();
    for name in [
        "brisk_lat_seconds_count",
        "brisk_lat_seconds_percentiles",
        "brisk_lat_seconds_bucket",
    ] {
        assert_eq!(
            monitor.counter(name, "x", &[]).unwrap_err(),
            MonitorError::ReservedName {
                name: name.into(),
                histogram: "brisk_lat_seconds".into()
            }
        );
    }
    monitor.gauge("brisk_size_percentiles", "x", &[]).unwrap();
    assert_eq!(
        monitor.histogram("brisk_size", "x", &[]).unwrap_err(),
        MonitorError::ReservedName {
            name: "brisk_size_percentiles".into(),
            histogram: "brisk_size".into()
        }
    );
    check_grammar(&monitor.render_prometheus()).unwrap();
}
