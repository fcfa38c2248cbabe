//! The `metrics` facade's `Recorder`, so `metrics::counter!` and friends
//! record into a [`Monitor`].
//
// Each facade key maps to one series: the name has characters Prometheus
// rejects replaced by `_` (`http.requests` becomes `http_requests`), and so
// have label names. The handles the facade gets are the monitor's own atomics
// (`AtomicU64` already implements `CounterFn` and `GaugeFn`, the latter as f64
// bits like our gauges), so a facade handle costs what a brisk handle costs.
// A key that clashes with a metric of another kind gets a no-op handle and is
// counted in `brisk_monitor_recorder_conflicts_total`.

use metrics::{Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::Monitor;
use crate::metric::HistogramCore;

/// Records the `metrics` facade into a [`Monitor`].
///
/// ```
/// let monitor = brisk_monitor::Monitor::new();
/// let recorder = monitor.recorder();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("requests_total", "route" => "/").increment(2);
///     metrics::histogram!("parse_seconds").record(0.25);
/// });
/// assert!(monitor.render_prometheus().contains("requests_total{route=\"/\"} 2\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Install it for the whole process with [`MonitorRecorder::install`].
#[derive(Clone, Debug)]
pub struct MonitorRecorder {
    monitor: Monitor,
}

impl Monitor {
    /// A `metrics` facade recorder that records into this monitor.
    #[must_use]
    pub fn recorder(&self) -> MonitorRecorder {
        MonitorRecorder {
            monitor: self.clone(),
        }
    }
}

impl MonitorRecorder {
    /// Installs this recorder as the process-wide `metrics` recorder.
    ///
    /// # Errors
    ///
    /// When a global recorder is already installed.
    pub fn install(self) -> Result<(), metrics::SetRecorderError<Self>> {
        metrics::set_global_recorder(self)
    }

    fn conflict(&self) {
        if let Ok(c) = self.monitor.counter(
            "brisk_monitor_recorder_conflicts_total",
            "metrics facade keys refused because the name holds another kind or is invalid",
            &[],
        ) {
            c.inc();
        }
    }
}

/// `name` with every character Prometheus rejects replaced by `_`.
pub(crate) fn sanitize(name: &str, allow_colon: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn parts(key: &Key) -> (String, Vec<(String, String)>) {
    let name = sanitize(key.name(), true);
    let labels = key
        .labels()
        .map(|l| {
            let mut k = sanitize(l.key(), false);
            if k.starts_with("__") {
                k.insert(0, 'x');
            }
            (k, l.value().to_owned())
        })
        .collect();
    (name, labels)
}

fn borrowed(labels: &[(String, String)]) -> Vec<(&str, &str)> {
    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Recorder for MonitorRecorder {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.monitor.describe(&sanitize(key.as_str(), true), &description);
    }

    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.monitor.describe(&sanitize(key.as_str(), true), &description);
    }

    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.monitor.describe(&sanitize(key.as_str(), true), &description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Counter {
        let (name, labels) = parts(key);
        match self.monitor.counter(&name, "", &borrowed(&labels)) {
            Ok(c) => metrics::Counter::from_arc(c.0),
            Err(_) => {
                self.conflict();
                metrics::Counter::noop()
            }
        }
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Gauge {
        let (name, labels) = parts(key);
        match self.monitor.gauge(&name, "", &borrowed(&labels)) {
            Ok(g) => metrics::Gauge::from_arc(g.0),
            Err(_) => {
                self.conflict();
                metrics::Gauge::noop()
            }
        }
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Histogram {
        let (name, labels) = parts(key);
        match self.monitor.histogram(&name, "", &borrowed(&labels)) {
            Ok(h) => metrics::Histogram::from_arc(h.0),
            Err(_) => {
                self.conflict();
                metrics::Histogram::noop()
            }
        }
    }
}

impl metrics::HistogramFn for HistogramCore {
    fn record(&self, value: f64) {
        HistogramCore::record(self, value);
    }
}
