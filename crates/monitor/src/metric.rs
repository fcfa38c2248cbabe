//! Counter, gauge and histogram handles, and the timer guard.
//
// A handle is an `Arc` of the series' atomics: recording through it does no
// lookup by name. Cloning a handle is cheap and every clone records into the
// same series.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brisk_core::Clock;

use crate::histogram::{AtomicBuckets, HistogramSnapshot, RollingState};
use crate::registry::Shared;

/// A value that only goes up. Cheap to clone; clones share the series.
///
/// ```
/// let monitor = brisk_monitor::Monitor::new();
/// let served = monitor.counter("brisk_requests_total", "Requests served", &[("route", "/")])?;
/// served.inc();
/// served.add(2);
/// assert_eq!(served.get(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Counter(pub(crate) Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (an `f64`). Cheap to clone.
///
/// ```
/// let monitor = brisk_monitor::Monitor::new();
/// let depth = monitor.gauge("brisk_queue_depth", "Items waiting", &[])?;
/// depth.set(10.0);
/// depth.add(-3.0);
/// assert_eq!(depth.get(), 7.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Gauge(pub(crate) Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// Adds `delta` (negative to subtract).
    #[inline]
    pub fn add(&self, delta: f64) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            Some((f64::from_bits(bits) + delta).to_bits())
        });
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// The atomics and windows of one histogram series.
#[derive(Debug)]
pub(crate) struct HistogramCore {
    pub(crate) buckets: AtomicBuckets,
    pub(crate) rolling: RollingState,
    pub(crate) resolution: f64,
    inv_resolution: f64,
    nanos_exact: bool,
    pub(crate) shared: Arc<Shared>,
}

impl HistogramCore {
    pub(crate) fn new(shared: Arc<Shared>, resolution: f64) -> Self {
        Self {
            buckets: AtomicBuckets::new(shared.layout),
            rolling: RollingState::new(),
            resolution,
            inv_resolution: 1.0 / resolution,
            #[allow(clippy::float_cmp)] // exact: the default is this literal
            nanos_exact: resolution == 1e-9,
            shared,
        }
    }

    #[inline]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(crate) fn record(&self, value: f64) {
        // `as` saturates: negative and NaN values become 0, huge ones u64::MAX.
        self.buckets.record((value * self.inv_resolution).round() as u64);
    }

    #[inline]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(crate) fn record_duration(&self, d: Duration) {
        let raw = if self.nanos_exact {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
        } else {
            (d.as_secs_f64() * self.inv_resolution).round() as u64
        };
        self.buckets.record(raw);
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot::new(self.buckets.layout(), self.resolution, self.buckets.sparse())
    }

    pub(crate) fn tick(&self, slot: u64) {
        self.rolling.tick(&self.buckets.sparse(), slot, self.shared.tiers);
    }

    /// Values recorded between `older` and `newer` ago (`newer` < `older`).
    pub(crate) fn between(&self, older: Duration, newer: Duration) -> HistogramSnapshot {
        let slot = self.shared.current_slot();
        self.tick(slot);
        let spans = [(self.shared.slots_in(older), self.shared.slots_in(newer))];
        let data = self
            .rolling
            .ranges(slot, self.shared.tiers.block, &spans, None)
            .remove(0);
        HistogramSnapshot::new(self.buckets.layout(), self.resolution, data)
    }

    /// The cumulative snapshot and one snapshot per window in `windows`,
    /// from one read of the buckets (the exposition's path).
    pub(crate) fn snapshot_and_windows(
        &self,
        windows: &[Duration],
    ) -> (HistogramSnapshot, Vec<HistogramSnapshot>) {
        let now = self.buckets.sparse();
        if windows.is_empty() {
            let cumulative = HistogramSnapshot::new(self.buckets.layout(), self.resolution, now);
            return (cumulative, Vec::new());
        }
        let slot = self.shared.current_slot();
        self.rolling.tick(&now, slot, self.shared.tiers);
        let spans: Vec<(u64, u64)> = windows.iter().map(|&w| (self.shared.slots_in(w), 0)).collect();
        let windowed = self
            .rolling
            .ranges(slot, self.shared.tiers.block, &spans, Some(&now));
        let cumulative = HistogramSnapshot::new(self.buckets.layout(), self.resolution, now);
        let windowed = windowed
            .into_iter()
            .map(|d| HistogramSnapshot::new(self.buckets.layout(), self.resolution, d))
            .collect();
        (cumulative, windowed)
    }

    /// Bytes this series holds (buckets, window slots, the struct).
    pub(crate) fn heap_bytes(&self) -> usize {
        size_of::<Self>() + self.buckets.heap_bytes() + self.rolling.heap_bytes()
    }
}

/// A distribution of values with true percentiles, cumulative and over
/// rolling windows. Cheap to clone; clones share the series.
///
/// Durations are recorded in seconds (to the nanosecond); other values with
/// [`record`](Self::record). See the crate docs for the precision.
///
/// ```
/// use std::time::Duration;
/// let monitor = brisk_monitor::Monitor::new();
/// let latency = monitor.histogram("brisk_parse_seconds", "Parse time", &[])?;
/// latency.record_duration(Duration::from_millis(12));
/// {
///     let _timer = latency.start_timer(); // records when dropped
/// }
/// assert_eq!(latency.snapshot().count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Histogram(pub(crate) Arc<HistogramCore>);

impl Histogram {
    /// Records `value` (negative values and NaN count as 0).
    #[inline]
    pub fn record(&self, value: f64) {
        self.0.record(value);
    }

    /// Records a duration, in seconds.
    #[inline]
    pub fn record_duration(&self, d: Duration) {
        self.0.record_duration(d);
    }

    /// Starts a timer that records the time until it is dropped.
    #[must_use = "the timer records when dropped; dropping it at once records ~0"]
    pub fn start_timer(&self) -> HistogramTimer {
        HistogramTimer {
            histogram: self.clone(),
            start: self.0.shared.clock.now(),
            armed: true,
        }
    }

    /// Everything recorded since the series was created.
    #[must_use]
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.0.snapshot()
    }

    /// What was recorded in the last `window` (rounded up to whole
    /// window-resolution slots; at most the monitor's `max_window`).
    #[must_use]
    pub fn window(&self, window: Duration) -> HistogramSnapshot {
        self.0.between(window, Duration::ZERO)
    }

    /// What was recorded from `older` ago until `newer` ago: a trailing
    /// baseline that leaves out the most recent `newer`.
    #[must_use]
    pub fn between(&self, older: Duration, newer: Duration) -> HistogramSnapshot {
        self.0.between(older, newer)
    }

    /// The memory this series holds, in bytes: its bucket counters (one run
    /// of 2^`precision_bits` counters per power of two it has seen), the
    /// rolling-window slots and its fixed part. An estimate from allocated
    /// capacities, for sizing: see `docs/monitor.md` for typical figures.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

/// Records the time since it started into a histogram when dropped
/// (unless [`cancel`](Self::cancel)ed). Created by [`Histogram::start_timer`].
#[derive(Debug)]
#[must_use = "the timer records when dropped"]
pub struct HistogramTimer {
    histogram: Histogram,
    start: Instant,
    armed: bool,
}

impl HistogramTimer {
    /// Time since the timer started.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.histogram.0.shared.clock.elapsed(self.start)
    }

    /// Records now and returns the duration recorded.
    #[allow(clippy::must_use_candidate)] // the result is optional information
    pub fn stop(mut self) -> Duration {
        let d = self.elapsed();
        self.histogram.record_duration(d);
        self.armed = false;
        d
    }

    /// Drops the timer without recording.
    pub fn cancel(mut self) {
        self.armed = false;
    }
}

impl Drop for HistogramTimer {
    fn drop(&mut self) {
        if self.armed {
            let d = self.elapsed();
            self.histogram.record_duration(d);
        }
    }
}
