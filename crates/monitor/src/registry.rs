//! The monitor: a registry of metric families, collectors and operations.
//
// Registration takes a write lock on the family map; it happens at start-up
// or the first time a label set is seen, never per record (a handle is kept).
// Scrapes and rule evaluation take the read lock and copy what they need.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use brisk_core::{Clock, ConfigError, SharedClock, StatsReport, StatsSource, SystemClock};

use crate::error::MonitorError;
use crate::histogram::{Layout, Tiers};
use crate::metric::{Counter, Gauge, Histogram, HistogramCore};
use crate::operation::Operation;

/// Label pairs of one series, sorted by label name.
pub(crate) type Labels = Vec<(String, String)>;

/// The Prometheus default buckets, in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The quantiles exposed by default: p50, p90, p95, p99 and p99.9.
pub const DEFAULT_QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

/// Rolling-window slots younger than this are kept one by one.
const FINE_SPAN: Duration = Duration::from_secs(300);
/// Older slots are folded into blocks this long.
const BLOCK_SPAN: Duration = Duration::from_secs(60);

/// Settings every series shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) clock: SharedClock,
    pub(crate) origin: Instant,
    pub(crate) layout: Layout,
    pub(crate) slot_len: Duration,
    pub(crate) tiers: Tiers,
}

impl Shared {
    pub(crate) fn current_slot(&self) -> u64 {
        let since = self.clock.elapsed(self.origin);
        u64::try_from(since.as_nanos() / self.slot_len.as_nanos()).unwrap_or(u64::MAX)
    }

    /// How many slots cover `d` (rounded up).
    pub(crate) fn slots_in(&self, d: Duration) -> u64 {
        u64::try_from(d.as_nanos().div_ceil(self.slot_len.as_nanos())).unwrap_or(u64::MAX)
    }
}

/// What kind of values a family holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) help: String,
    pub(crate) kind: Kind,
    pub(crate) series: BTreeMap<Labels, Series>,
}

#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) buckets: Vec<f64>,
    pub(crate) quantiles: Vec<f64>,
    /// The windows of the exposed percentiles, with their `window` label values.
    pub(crate) windows: Vec<(Duration, String)>,
}

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: Config,
    pub(crate) families: RwLock<BTreeMap<String, Family>>,
    pub(crate) histograms: RwLock<Vec<Arc<HistogramCore>>>,
    pub(crate) collectors: RwLock<Vec<(String, Arc<dyn StatsSource>)>>,
    pub(crate) operations: RwLock<BTreeMap<String, Operation>>,
    /// Help texts described before their family exists (the facade's `describe_*`).
    pub(crate) pending_help: RwLock<BTreeMap<String, String>>,
    /// Collector conflicts already logged: (collector, metric, reason).
    pub(crate) warned_conflicts: Mutex<BTreeSet<(String, String, String)>>,
    /// The length of the last Prometheus text, to size the next.
    pub(crate) render_len: AtomicUsize,
}

/// The monitor: metrics, collectors, operations, exposition. Cheap to clone;
/// clones share everything.
///
/// See the [crate docs](crate) for an overview.
#[derive(Clone)]
pub struct Monitor {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let families = self.inner.families.read().map_or(0, |f| f.len());
        f.debug_struct("Monitor")
            .field("families", &families)
            .field("window_resolution", &self.inner.shared.slot_len)
            .finish_non_exhaustive()
    }
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitor {
    /// A monitor with the default settings (see [`MonitorBuilder`]) on the
    /// system clock.
    #[must_use]
    pub fn new() -> Self {
        MonitorBuilder::default().assemble()
    }

    /// A builder with the defaults.
    pub fn builder() -> MonitorBuilder {
        MonitorBuilder::default()
    }

    /// The clock every timer, window and rule of this monitor reads.
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        &self.inner.shared.clock
    }

    /// The counter `name{labels}`, created on first use.
    ///
    /// # Errors
    ///
    /// [`MonitorError::InvalidName`] or [`MonitorError::InvalidLabel`] for a
    /// name that Prometheus would reject, [`MonitorError::KindConflict`]
    /// when `name` is already another kind of metric, and
    /// [`MonitorError::ReservedName`] when a histogram's exposition uses it
    /// (`<histogram>_count`, `<histogram>_percentiles`, …).
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Result<Counter, MonitorError> {
        match self.series(name, help, labels, Kind::Counter, 1e-9)? {
            Series::Counter(c) => Ok(c),
            _ => unreachable!("kind checked by series()"),
        }
    }

    /// The gauge `name{labels}`, created on first use.
    ///
    /// # Errors
    ///
    /// As for [`counter`](Self::counter).
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Result<Gauge, MonitorError> {
        match self.series(name, help, labels, Kind::Gauge, 1e-9)? {
            Series::Gauge(g) => Ok(g),
            _ => unreachable!("kind checked by series()"),
        }
    }

    /// The histogram `name{labels}`, created on first use. It resolves
    /// values to 1e-9 (nanoseconds for durations in seconds).
    ///
    /// # Errors
    ///
    /// As for [`counter`](Self::counter).
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<Histogram, MonitorError> {
        self.histogram_with_resolution(name, help, labels, 1e-9)
    }

    /// Like [`histogram`](Self::histogram), resolving values to `resolution`
    /// (the smallest difference kept, e.g. `1.0` for byte counts). The sum
    /// wraps after 2^64 resolution units, so a coarser resolution suits large
    /// values.
    ///
    /// # Errors
    ///
    /// As for [`counter`](Self::counter), and [`MonitorError::Config`] when
    /// `resolution` is not finite and positive.
    pub fn histogram_with_resolution(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        resolution: f64,
    ) -> Result<Histogram, MonitorError> {
        if !(resolution.is_finite() && resolution > 0.0) {
            return Err(ConfigError::new(
                "histogram.resolution",
                format!("must be positive, got {resolution}"),
            )
            .into());
        }
        match self.series(name, help, labels, Kind::Histogram, resolution)? {
            Series::Histogram(h) => Ok(h),
            _ => unreachable!("kind checked by series()"),
        }
    }

    /// The operation `name`: its duration histogram
    /// `brisk_operation_duration_seconds{operation="name"}` and error counter
    /// `brisk_operation_errors_total{operation="name"}`, created on first use.
    ///
    /// # Errors
    ///
    /// [`MonitorError::KindConflict`] if those names were registered as
    /// other kinds, [`MonitorError::ReservedName`] if a histogram's
    /// exposition uses them.
    pub fn operation(&self, name: &str) -> Result<Operation, MonitorError> {
        if let Some(op) = read(&self.inner.operations).get(name) {
            return Ok(op.clone());
        }
        let labels = [("operation", name)];
        let duration = self.histogram(
            crate::operation::DURATION_METRIC,
            "Time taken by each operation, successful or not",
            &labels,
        )?;
        let errors = self.counter(
            crate::operation::ERRORS_METRIC,
            "Operations that returned an error",
            &labels,
        )?;
        let error_durations = Arc::new(HistogramCore::new(self.inner.shared.clone(), 1e-9));
        write(&self.inner.histograms).push(error_durations.clone());
        let op = Operation::new(name, duration, errors, error_durations);
        let mut ops = write(&self.inner.operations);
        Ok(ops.entry(name.to_owned()).or_insert(op).clone())
    }

    /// The operations created so far, by name.
    #[must_use]
    pub fn operations(&self) -> Vec<Operation> {
        read(&self.inner.operations).values().cloned().collect()
    }

    /// Registers a stats source (a cache, a pool, a limiter) under `name`. It
    /// is read at every scrape and rule evaluation, never on its hot path. A
    /// second registration under the same name replaces the first.
    pub fn register(&self, name: &str, source: Arc<dyn StatsSource>) {
        let mut collectors = write(&self.inner.collectors);
        if let Some(slot) = collectors.iter_mut().find(|(n, _)| n == name) {
            slot.1 = source;
        } else {
            collectors.push((name.to_owned(), source));
        }
    }

    /// Removes the stats source registered under `name`; returns whether there was one.
    #[allow(clippy::must_use_candidate)] // the result is optional information
    pub fn unregister(&self, name: &str) -> bool {
        let mut collectors = write(&self.inner.collectors);
        let before = collectors.len();
        collectors.retain(|(n, _)| n != name);
        collectors.len() != before
    }

    /// Reads every registered stats source now.
    #[must_use]
    pub fn collect(&self) -> StatsReport {
        let mut report = StatsReport::new();
        for (_, source) in read(&self.inner.collectors).iter() {
            source.report_stats(&mut report);
        }
        report
    }

    /// Files what every histogram recorded since the last tick under the
    /// current window slot. [`spawn_maintenance`](Self::spawn_maintenance)
    /// calls it every `window_resolution`; windowed reads call it first.
    /// Tests on a manual clock call it after recording and before advancing.
    pub fn tick(&self) {
        let slot = self.inner.shared.current_slot();
        let all: Vec<_> = read(&self.inner.histograms).clone();
        for h in all {
            h.tick(slot);
        }
    }

    /// Spawns a task on the current tokio runtime that calls
    /// [`tick`](Self::tick) every `window_resolution` (real time).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[allow(clippy::must_use_candidate)] // dropping the handle detaches the task, the usual use
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let monitor = self.clone();
        let every = self.inner.shared.slot_len;
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                monitor.tick();
            }
        })
    }

    /// The histogram bucket bounds used in the Prometheus exposition.
    #[must_use]
    pub fn buckets(&self) -> &[f64] {
        &self.inner.config.buckets
    }

    /// The quantiles exposed in each histogram's `<name>_percentiles` summary.
    #[must_use]
    pub fn quantiles(&self) -> &[f64] {
        &self.inner.config.quantiles
    }

    /// The rolling windows whose percentiles are exposed beside the
    /// cumulative ones (`window="1m"`, …).
    #[must_use]
    pub fn exposed_windows(&self) -> Vec<Duration> {
        self.inner.config.windows.iter().map(|(d, _)| *d).collect()
    }

    /// How long one window slot lasts.
    #[must_use]
    pub fn window_resolution(&self) -> Duration {
        self.inner.shared.slot_len
    }

    fn series(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        kind: Kind,
        resolution: f64,
    ) -> Result<Series, MonitorError> {
        let labels = normalize(name, labels, kind)?;
        if let Some(fam) = read(&self.inner.families).get(name) {
            if fam.kind != kind {
                return Err(conflict(name, fam.kind, kind));
            }
            if let Some(s) = fam.series.get(&labels) {
                return Ok(s.clone());
            }
        }
        let mut families = write(&self.inner.families);
        if !families.contains_key(name) {
            check_reserved(&families, name, kind)?;
        }
        let fam = families.entry(name.to_owned()).or_insert_with(|| Family {
            help: write(&self.inner.pending_help)
                .remove(name)
                .unwrap_or_else(|| help.to_owned()),
            kind,
            series: BTreeMap::new(),
        });
        if fam.kind != kind {
            return Err(conflict(name, fam.kind, kind));
        }
        if fam.help.is_empty() {
            help.clone_into(&mut fam.help);
        }
        if let Some(s) = fam.series.get(&labels) {
            return Ok(s.clone());
        }
        let series = match kind {
            Kind::Counter => Series::Counter(Counter(Arc::new(AtomicU64::new(0)))),
            Kind::Gauge => Series::Gauge(Gauge(Arc::new(AtomicU64::new(0f64.to_bits())))),
            Kind::Histogram => {
                let core = Arc::new(HistogramCore::new(self.inner.shared.clone(), resolution));
                write(&self.inner.histograms).push(core.clone());
                Series::Histogram(Histogram(core))
            }
        };
        fam.series.insert(labels, series.clone());
        Ok(series)
    }

    /// Sets the help text of `name` if it has none (for the `metrics` facade's `describe_*`).
    pub(crate) fn describe(&self, name: &str, help: &str) {
        match write(&self.inner.families).get_mut(name) {
            Some(fam) if fam.help.is_empty() => help.clone_into(&mut fam.help),
            Some(_) => {}
            None => {
                write(&self.inner.pending_help).insert(name.to_owned(), help.to_owned());
            }
        }
    }

    /// Histogram series of family `name` whose labels include every `matchers` pair.
    pub(crate) fn histograms_matching(
        &self,
        name: &str,
        matchers: &[(String, String)],
    ) -> Vec<(Labels, Histogram)> {
        let families = read(&self.inner.families);
        let Some(fam) = families.get(name) else {
            return Vec::new();
        };
        fam.series
            .iter()
            .filter(|(labels, _)| matches(labels, matchers))
            .filter_map(|(labels, s)| match s {
                Series::Histogram(h) => Some((labels.clone(), h.clone())),
                _ => None,
            })
            .collect()
    }

    /// Counter and gauge values of `name` matching `matchers`, from registered
    /// series and from collectors.
    pub(crate) fn scalars_matching(&self, name: &str, matchers: &[(String, String)]) -> Vec<(Labels, f64)> {
        let mut out = Vec::new();
        if let Some(fam) = read(&self.inner.families).get(name) {
            for (labels, s) in &fam.series {
                if !matches(labels, matchers) {
                    continue;
                }
                #[allow(clippy::cast_precision_loss)]
                match s {
                    Series::Counter(c) => out.push((labels.clone(), c.get() as f64)),
                    Series::Gauge(g) => out.push((labels.clone(), g.get())),
                    Series::Histogram(_) => {}
                }
            }
        }
        for m in self.collect().into_metrics() {
            if m.name != name {
                continue;
            }
            let labels = sorted_labels(&m);
            if matches(&labels, matchers) {
                out.push((labels, m.value.as_f64()));
            }
        }
        out
    }
}

/// The labels of a collected metric as owned pairs, sorted by name, the form
/// series are keyed by.
pub(crate) fn sorted_labels(metric: &brisk_core::Metric) -> Labels {
    let mut labels: Labels = metric
        .labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    labels
}

fn matches(labels: &Labels, matchers: &[(String, String)]) -> bool {
    matchers
        .iter()
        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
}

/// The label of the windowed percentile series.
pub(crate) const WINDOW_LABEL: &str = "window";

/// Suffixes of the sample and family names a histogram `h` is exposed with.
pub(crate) const HISTOGRAM_SUFFIXES: [&str; 6] = [
    "_bucket",
    "_sum",
    "_count",
    "_percentiles",
    "_percentiles_sum",
    "_percentiles_count",
];

/// The histogram family whose exposition uses `name`, if any.
pub(crate) fn histogram_owning<'a>(families: &'a BTreeMap<String, Family>, name: &str) -> Option<&'a str> {
    HISTOGRAM_SUFFIXES.iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        let (key, fam) = families.get_key_value(base)?;
        (fam.kind == Kind::Histogram).then_some(key.as_str())
    })
}

/// A new family `name` of `kind` must not collide with a histogram's exposition.
fn check_reserved(families: &BTreeMap<String, Family>, name: &str, kind: Kind) -> Result<(), MonitorError> {
    if let Some(h) = histogram_owning(families, name) {
        return Err(MonitorError::ReservedName {
            name: name.to_owned(),
            histogram: h.to_owned(),
        });
    }
    if kind == Kind::Histogram
        && let Some(taken) = HISTOGRAM_SUFFIXES
            .iter()
            .map(|suffix| format!("{name}{suffix}"))
            .find(|n| families.contains_key(n))
    {
        return Err(MonitorError::ReservedName {
            name: taken,
            histogram: name.to_owned(),
        });
    }
    Ok(())
}

fn conflict(name: &str, existing: Kind, requested: Kind) -> MonitorError {
    MonitorError::KindConflict {
        name: name.to_owned(),
        existing: existing.as_str(),
        requested: requested.as_str(),
    }
}

pub(crate) fn normalize(name: &str, labels: &[(&str, &str)], kind: Kind) -> Result<Labels, MonitorError> {
    if !brisk_core::is_valid_metric_name(name) {
        return Err(MonitorError::InvalidName {
            name: name.to_owned(),
        });
    }
    let mut out: Labels = Vec::with_capacity(labels.len());
    for &(k, v) in labels {
        if !brisk_core::is_valid_label_name(k)
            || k == "le"
            || k == "quantile"
            || (kind == Kind::Histogram && k == WINDOW_LABEL)
        {
            return Err(MonitorError::InvalidLabel {
                metric: name.to_owned(),
                label: k.to_owned(),
            });
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Builds a [`Monitor`]; [`build`](Self::build) checks the values.
#[derive(Debug)]
#[must_use]
pub struct MonitorBuilder {
    clock: Option<SharedClock>,
    buckets: Vec<f64>,
    quantiles: Vec<f64>,
    precision_bits: u32,
    window_resolution: Duration,
    max_window: Duration,
    exposed_windows: Option<Vec<Duration>>,
}

/// The windows exposed by default: 1 min, 5 min and 1 h.
pub const DEFAULT_EXPOSED_WINDOWS: [Duration; 3] = [
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(3600),
];

impl Default for MonitorBuilder {
    fn default() -> Self {
        Self {
            clock: None,
            buckets: DEFAULT_BUCKETS.to_vec(),
            quantiles: DEFAULT_QUANTILES.to_vec(),
            precision_bits: 7,
            window_resolution: Duration::from_secs(10),
            max_window: Duration::from_secs(3600),
            exposed_windows: None,
        }
    }
}

impl MonitorBuilder {
    /// The clock for timers, windows and rules. Default: the system clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Upper bounds of the Prometheus histogram buckets (`+Inf` is added).
    /// Default [`DEFAULT_BUCKETS`]; must be finite and strictly increasing.
    pub fn buckets(mut self, buckets: impl Into<Vec<f64>>) -> Self {
        self.buckets = buckets.into();
        self
    }

    /// Quantiles exposed in each histogram's `<name>_percentiles` summary
    /// (`{quantile="…"}`). Default [`DEFAULT_QUANTILES`]; each in `0.0..=1.0`.
    pub fn quantiles(mut self, quantiles: impl Into<Vec<f64>>) -> Self {
        self.quantiles = quantiles.into();
        self
    }

    /// Sub-bucket bits of the histograms: each power of two is split into
    /// 2^bits buckets, so percentiles are within 1/2^(bits+1) of the true
    /// value. Default 7 (0.39%; each power of two a series sees costs
    /// 2^bits counters, 1 KiB at 7 bits, allocated on first use); 1 to 10.
    pub fn precision_bits(mut self, bits: u32) -> Self {
        self.precision_bits = bits;
        self
    }

    /// The length of one rolling-window slot, and the maintenance tick
    /// interval. Default 10 s; must be non-zero and at most `max_window`.
    pub fn window_resolution(mut self, resolution: Duration) -> Self {
        self.window_resolution = resolution;
        self
    }

    /// The longest rolling window kept. Default 1 h.
    pub fn max_window(mut self, max: Duration) -> Self {
        self.max_window = max;
        self
    }

    /// The rolling windows whose percentiles the Prometheus exposition
    /// shows beside the cumulative ones, as `<name>_percentiles` series with
    /// a `window` label (`"1m"`, `"5m"`, `"1h"`). Default
    /// [`DEFAULT_EXPOSED_WINDOWS`] (those within `max_window`); each must be
    /// non-zero and at most `max_window`; empty exposes none.
    pub fn exposed_windows(mut self, windows: impl Into<Vec<Duration>>) -> Self {
        self.exposed_windows = Some(windows.into());
        self
    }

    /// Checks the values and builds the monitor.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `monitor.buckets`, `monitor.quantiles`,
    /// `monitor.precision_bits`, `monitor.window_resolution` or
    /// `monitor.exposed_windows`.
    pub fn build(self) -> Result<Monitor, ConfigError> {
        if self.buckets.iter().any(|b| !b.is_finite()) || self.buckets.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ConfigError::new(
                "monitor.buckets",
                format!("must be finite and strictly increasing, got {:?}", self.buckets),
            ));
        }
        if self.quantiles.iter().any(|q| !(0.0..=1.0).contains(q)) {
            return Err(ConfigError::new(
                "monitor.quantiles",
                format!("each must be within 0.0..=1.0, got {:?}", self.quantiles),
            ));
        }
        if !(1..=10).contains(&self.precision_bits) {
            return Err(ConfigError::new(
                "monitor.precision_bits",
                format!("must be 1 to 10, got {}", self.precision_bits),
            ));
        }
        if self.window_resolution.is_zero() || self.window_resolution > self.max_window {
            return Err(ConfigError::new(
                "monitor.window_resolution",
                format!(
                    "must be non-zero and at most `max_window` ({:?}), got {:?}",
                    self.max_window, self.window_resolution
                ),
            ));
        }
        if let Some(windows) = &self.exposed_windows
            && let Some(bad) = windows.iter().find(|w| w.is_zero() || **w > self.max_window)
        {
            return Err(ConfigError::new(
                "monitor.exposed_windows",
                format!(
                    "each must be non-zero and at most `max_window` ({:?}), got {bad:?}",
                    self.max_window
                ),
            ));
        }
        Ok(self.assemble())
    }

    fn assemble(self) -> Monitor {
        let clock = self.clock.unwrap_or_else(SystemClock::shared);
        let max_window = self.max_window;
        let mut windows = self.exposed_windows.unwrap_or_else(|| {
            DEFAULT_EXPOSED_WINDOWS
                .into_iter()
                .filter(|w| *w <= max_window)
                .collect()
        });
        windows.sort();
        windows.dedup();
        let windows = windows
            .into_iter()
            .map(|w| (w, humantime::format_duration(w).to_string().replace(' ', "")))
            .collect();
        let slot_len = self.window_resolution.max(Duration::from_nanos(1));
        let slots_in =
            |d: Duration| u64::try_from(d.as_nanos().div_ceil(slot_len.as_nanos())).unwrap_or(u64::MAX);
        // Windows up to FINE_SPAN stay exact to one slot; older slots fold
        // into blocks of BLOCK_SPAN (see histogram.rs).
        let tiers = Tiers {
            keep: slots_in(self.max_window).saturating_add(1),
            fine: slots_in(FINE_SPAN).max(1),
            block: slots_in(BLOCK_SPAN).max(1),
        };
        let shared = Arc::new(Shared {
            origin: clock.now(),
            clock,
            layout: Layout::new(self.precision_bits.clamp(1, 10)),
            slot_len,
            tiers,
        });
        Monitor {
            inner: Arc::new(Inner {
                shared,
                config: Config {
                    buckets: self.buckets,
                    quantiles: self.quantiles,
                    windows,
                },
                families: RwLock::new(BTreeMap::new()),
                histograms: RwLock::new(Vec::new()),
                collectors: RwLock::new(Vec::new()),
                operations: RwLock::new(BTreeMap::new()),
                pending_help: RwLock::new(BTreeMap::new()),
                warned_conflicts: Mutex::new(BTreeSet::new()),
                render_len: AtomicUsize::new(0),
            }),
        }
    }
}
