//! The pipeline's counters and their snapshot, also reported through
//! brisk-core's [`StatsSource`](brisk_core::StatsSource).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use brisk_core::{Priority, StatsReport};

use crate::balance::EndpointStats;
use crate::histogram::{Histogram, Percentiles};

/// The atomics the hot path bumps.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) submitted: [AtomicU64; Priority::COUNT],
    pub(crate) shed: [AtomicU64; Priority::COUNT],
    pub(crate) cost: [AtomicU64; Priority::COUNT],
    wait_nanos: [AtomicU64; Priority::COUNT],
    waited: [AtomicU64; Priority::COUNT],
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
    pub(crate) deadline_misses: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) dedup_hits: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) panics: AtomicU64,
    batches: AtomicU64,
    batch_items: AtomicU64,
    exec_nanos: AtomicU64,
    execs: AtomicU64,
    wait_hist: [Histogram; Priority::COUNT],
    exec_hist: Histogram,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The `quantile` label values with their percentile.
fn quantiles(p: &Percentiles) -> [(&'static str, Duration); 3] {
    [("0.5", p.p50), ("0.95", p.p95), ("0.99", p.p99)]
}

fn load<const N: usize>(a: &[AtomicU64; N]) -> [u64; N] {
    std::array::from_fn(|i| a[i].load(Ordering::Relaxed))
}

impl Counters {
    pub(crate) fn record_wait(&self, priority: Priority, waited: Duration) {
        self.wait_nanos[priority.index()].fetch_add(nanos(waited), Ordering::Relaxed);
        self.waited[priority.index()].fetch_add(1, Ordering::Relaxed);
        self.wait_hist[priority.index()].record(waited);
    }

    pub(crate) fn record_batch(&self, size: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_items.fetch_add(size as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_exec(&self, took: Duration) {
        self.exec_nanos.fetch_add(nanos(took), Ordering::Relaxed);
        self.execs.fetch_add(1, Ordering::Relaxed);
        self.exec_hist.record(took);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn snapshot(
        &self,
        queued: [usize; Priority::COUNT],
        workers: usize,
        busy_workers: usize,
        batch_size: usize,
        batch_wait: Duration,
        in_flight_keys: usize,
        endpoints: Vec<EndpointStats>,
    ) -> PipelineStats {
        PipelineStats {
            queued,
            submitted: load(&self.submitted),
            shed: load(&self.shed),
            cost: load(&self.cost),
            wait_nanos: load(&self.wait_nanos),
            waited: load(&self.waited),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            deadline_misses: self.deadline_misses.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            dedup_hits: self.dedup_hits.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            batch_items: self.batch_items.load(Ordering::Relaxed),
            exec_nanos: self.exec_nanos.load(Ordering::Relaxed),
            execs: self.execs.load(Ordering::Relaxed),
            wait_percentiles: std::array::from_fn(|i| self.wait_hist[i].percentiles()),
            exec_percentiles: self.exec_hist.percentiles(),
            workers,
            busy_workers,
            batch_size,
            batch_wait,
            in_flight_keys,
            endpoints,
        }
    }
}

/// A snapshot of a pipeline's counters, from
/// [`Pipeline::stats`](crate::Pipeline::stats). Arrays are indexed by
/// [`Priority::index`] (0 = urgent … 4 = background).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// Requests queued now, per priority.
    pub queued: [usize; Priority::COUNT],
    /// Requests submitted, per priority (joiners of a flight included).
    pub submitted: [u64; Priority::COUNT],
    /// Requests shed (refused by `try_submit` or evicted), per priority.
    pub shed: [u64; Priority::COUNT],
    /// Cost (`Handler::cost`) of the requests executed, per priority; each
    /// attempt counts.
    pub cost: [u64; Priority::COUNT],
    /// Total time requests waited in the queue, per priority, in nanoseconds.
    pub wait_nanos: [u64; Priority::COUNT],
    /// Requests that left the queue for a batch, per priority.
    pub waited: [u64; Priority::COUNT],
    /// Callers answered with the handler's result.
    pub completed: u64,
    /// Callers answered with an error by a worker (upstream, unavailable,
    /// rate limit, panic, deadline); sheds and shutdowns are not counted.
    pub failed: u64,
    /// Callers answered by the handler's fallback.
    pub fallbacks: u64,
    /// Callers whose deadline passed before their request started.
    pub deadline_misses: u64,
    /// Requests not run because every caller went away.
    pub cancelled: u64,
    /// Callers that joined an identical request in flight.
    pub dedup_hits: u64,
    /// Retries (of a batch or of its retryable items).
    pub retries: u64,
    /// Handler panics caught.
    pub panics: u64,
    /// Batches run.
    pub batches: u64,
    /// Requests in those batches.
    pub batch_items: u64,
    /// Total time in the handler's `call`, in nanoseconds.
    pub exec_nanos: u64,
    /// Calls of the handler.
    pub execs: u64,
    /// Queue wait percentiles (p50, p95, p99), per priority, over every
    /// request that left the queue for a batch.
    pub wait_percentiles: [Percentiles; Priority::COUNT],
    /// Handler call time percentiles (p50, p95, p99), each attempt counted.
    pub exec_percentiles: Percentiles,
    /// Workers running.
    pub workers: usize,
    /// Workers running a batch now.
    pub busy_workers: usize,
    /// The adaptive batch size now.
    pub batch_size: usize,
    /// The adaptive batch wait now.
    pub batch_wait: Duration,
    /// Single-flight keys in flight.
    pub in_flight_keys: usize,
    /// Per endpoint: load, failures, breaker state, health, cost.
    pub endpoints: Vec<EndpointStats>,
}

impl PipelineStats {
    /// Requests queued now, all priorities.
    #[must_use]
    pub fn queue_len(&self) -> usize {
        self.queued.iter().sum()
    }

    /// The mean batch size so far (0 before the first batch).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn mean_batch_size(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.batch_items as f64 / self.batches as f64
        }
    }

    /// The mean queue wait of `priority` so far.
    #[must_use]
    pub fn mean_wait(&self, priority: Priority) -> Duration {
        let i = priority.index();
        Duration::from_nanos(self.wait_nanos[i].checked_div(self.waited[i]).unwrap_or(0))
    }

    /// The mean time of a handler call so far.
    #[must_use]
    pub fn mean_exec(&self) -> Duration {
        Duration::from_nanos(self.exec_nanos.checked_div(self.execs).unwrap_or(0))
    }

    /// Writes the stats as `brisk_pipeline_*` metrics labelled
    /// `pipeline="<name>"`.
    #[allow(clippy::cast_precision_loss)]
    pub fn report(&self, name: &str, out: &mut StatsReport) {
        let pl = || std::borrow::Cow::Owned(name.to_owned());
        for p in Priority::ALL {
            let i = p.index();
            let _ = out
                .gauge("brisk_pipeline_queued", "Requests queued", self.queued[i] as f64)
                .label("pipeline", pl())
                .label("priority", p.as_str());
            let _ = out
                .counter(
                    "brisk_pipeline_submitted_total",
                    "Requests submitted",
                    self.submitted[i],
                )
                .label("pipeline", pl())
                .label("priority", p.as_str());
            let _ = out
                .counter(
                    "brisk_pipeline_shed_total",
                    "Requests shed under overload",
                    self.shed[i],
                )
                .label("pipeline", pl())
                .label("priority", p.as_str());
            let _ = out
                .counter(
                    "brisk_pipeline_cost_total",
                    "Cost of executed requests",
                    self.cost[i],
                )
                .label("pipeline", pl())
                .label("priority", p.as_str());
            let _ = out
                .gauge(
                    "brisk_pipeline_queue_wait_seconds_sum",
                    "Time requests waited in the queue",
                    self.wait_nanos[i] as f64 / 1e9,
                )
                .label("pipeline", pl())
                .label("priority", p.as_str());
            let _ = out
                .counter(
                    "brisk_pipeline_queue_wait_seconds_count",
                    "Requests that left the queue",
                    self.waited[i],
                )
                .label("pipeline", pl())
                .label("priority", p.as_str());
            for (q, d) in quantiles(&self.wait_percentiles[i]) {
                let _ = out
                    .gauge(
                        "brisk_pipeline_queue_wait_seconds",
                        "Queue wait percentile",
                        d.as_secs_f64(),
                    )
                    .label("pipeline", pl())
                    .label("priority", p.as_str())
                    .label("quantile", q);
            }
        }
        for (q, d) in quantiles(&self.exec_percentiles) {
            let _ = out
                .gauge(
                    "brisk_pipeline_exec_seconds",
                    "Handler call time percentile",
                    d.as_secs_f64(),
                )
                .label("pipeline", pl())
                .label("quantile", q);
        }
        let counters = [
            (
                "brisk_pipeline_completed_total",
                "Callers answered with a result",
                self.completed,
            ),
            (
                "brisk_pipeline_failed_total",
                "Callers answered with an error",
                self.failed,
            ),
            (
                "brisk_pipeline_fallbacks_total",
                "Callers answered by the fallback",
                self.fallbacks,
            ),
            (
                "brisk_pipeline_deadline_misses_total",
                "Callers whose deadline passed before the start",
                self.deadline_misses,
            ),
            (
                "brisk_pipeline_cancelled_total",
                "Requests whose callers left",
                self.cancelled,
            ),
            (
                "brisk_pipeline_dedup_hits_total",
                "Callers that joined an identical request",
                self.dedup_hits,
            ),
            ("brisk_pipeline_retries_total", "Retries", self.retries),
            (
                "brisk_pipeline_panics_total",
                "Handler panics caught",
                self.panics,
            ),
            ("brisk_pipeline_batches_total", "Batches run", self.batches),
            (
                "brisk_pipeline_batch_items_total",
                "Requests in batches run",
                self.batch_items,
            ),
            ("brisk_pipeline_calls_total", "Handler calls", self.execs),
        ];
        for (metric, help, value) in counters {
            let _ = out.counter(metric, help, value).label("pipeline", pl());
        }
        let _ = out
            .gauge(
                "brisk_pipeline_exec_seconds_mean",
                "Mean handler call time",
                self.mean_exec().as_secs_f64(),
            )
            .label("pipeline", pl());
        let _ = out
            .gauge("brisk_pipeline_workers", "Workers running", self.workers as f64)
            .label("pipeline", pl());
        let _ = out
            .gauge(
                "brisk_pipeline_busy_workers",
                "Workers running a batch",
                self.busy_workers as f64,
            )
            .label("pipeline", pl());
        let _ = out
            .gauge(
                "brisk_pipeline_batch_size",
                "Adaptive batch size",
                self.batch_size as f64,
            )
            .label("pipeline", pl());
        let _ = out
            .gauge(
                "brisk_pipeline_batch_wait_seconds",
                "Adaptive batch wait",
                self.batch_wait.as_secs_f64(),
            )
            .label("pipeline", pl());
        for ep in &self.endpoints {
            let name = || std::borrow::Cow::Owned(ep.name.clone());
            let _ = out
                .gauge(
                    "brisk_pipeline_endpoint_outstanding",
                    "Calls in flight",
                    ep.outstanding as f64,
                )
                .label("pipeline", pl())
                .label("endpoint", name());
            let _ = out
                .counter("brisk_pipeline_endpoint_calls_total", "Calls made", ep.calls)
                .label("pipeline", pl())
                .label("endpoint", name());
            let _ = out
                .counter(
                    "brisk_pipeline_endpoint_failures_total",
                    "Calls failed",
                    ep.failures,
                )
                .label("pipeline", pl())
                .label("endpoint", name());
            let _ = out
                .counter("brisk_pipeline_endpoint_cost_total", "Cost sent", ep.cost)
                .label("pipeline", pl())
                .label("endpoint", name());
            let _ = out
                .gauge(
                    "brisk_pipeline_endpoint_available",
                    "1 when neither ejected nor unhealthy",
                    if ep.ejected || !ep.healthy { 0.0 } else { 1.0 },
                )
                .label("pipeline", pl())
                .label("endpoint", name());
            for state in [
                crate::BreakerState::Closed,
                crate::BreakerState::Open,
                crate::BreakerState::HalfOpen,
            ] {
                let _ = out
                    .gauge(
                        "brisk_pipeline_breaker_state",
                        "1 for the breaker's current state",
                        if ep.breaker == state { 1.0 } else { 0.0 },
                    )
                    .label("pipeline", pl())
                    .label("endpoint", name())
                    .label("state", state.as_str());
            }
        }
    }
}
