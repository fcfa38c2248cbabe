//! History of 1-minute aggregates, SLA reports with a health score and
//! bottlenecks, and recommendations from simple rules over the stats.
//
// Every minute `History::roll` takes, per operation, what was recorded since
// the previous roll (the difference of two cumulative snapshots: exact, no
// double counting however late the roll runs) and keeps it as one
// `MinuteAggregate`: count, errors, calls within the latency target,
// p50/p95/p99/max. 24 hours of them are kept in memory (1,440 rows per
// operation) and, through the small `HistoryStore` trait, in whatever store
// the binary provides (brisk-server implements it with brisk-db-pool), so a
// report over the last N hours survives a restart. brisk-monitor itself has
// no database dependency.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use brisk_core::{ConfigError, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Monitor;
use crate::histogram::HistogramSnapshot;
use crate::metric::Counter;
use crate::registry::{Labels, sorted_labels};

/// One operation's calls in one minute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MinuteAggregate {
    /// The end of the minute (wall clock, when it was rolled).
    pub minute: Timestamp,
    /// The operation.
    pub operation: String,
    /// Calls.
    pub count: u64,
    /// Failed calls.
    pub errors: u64,
    /// Calls at or under the operation's latency target.
    pub within_target: u64,
    /// Total time spent, in seconds.
    pub sum_secs: f64,
    /// Median, in seconds.
    pub p50: f64,
    /// 95th percentile, in seconds.
    pub p95: f64,
    /// 99th percentile, in seconds.
    pub p99: f64,
    /// The slowest call, in seconds.
    pub max: f64,
}

impl MinuteAggregate {
    /// A row, for stores that rebuild rows from their columns.
    #[allow(clippy::too_many_arguments)]
    #[must_use]
    pub fn new(
        minute: Timestamp,
        operation: impl Into<String>,
        count: u64,
        errors: u64,
        within_target: u64,
        sum_secs: f64,
        [p50, p95, p99, max]: [f64; 4],
    ) -> Self {
        Self {
            minute,
            operation: operation.into(),
            count,
            errors,
            within_target,
            sum_secs,
            p50,
            p95,
            p99,
            max,
        }
    }
}

/// A history store failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("history store: {0}")]
pub struct StoreError(pub String);

/// The future a [`HistoryStore`] returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where minute aggregates persist. A binary implements it over its database
/// (one table: the [`MinuteAggregate`] fields); [`MemoryStore`] is the
/// in-process one.
pub trait HistoryStore: Send + Sync + fmt::Debug + 'static {
    /// Appends rows.
    fn save<'a>(&'a self, rows: &'a [MinuteAggregate]) -> StoreFuture<'a, ()>;

    /// Rows whose minute is at or after `since`, oldest first.
    fn load_since(&self, since: Timestamp) -> StoreFuture<'_, Vec<MinuteAggregate>>;
}

/// A [`HistoryStore`] in memory; clones share the rows.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    rows: Arc<Mutex<Vec<MinuteAggregate>>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many rows it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl HistoryStore for MemoryStore {
    fn save<'a>(&'a self, rows: &'a [MinuteAggregate]) -> StoreFuture<'a, ()> {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(rows);
        Box::pin(async { Ok(()) })
    }

    fn load_since(&self, since: Timestamp) -> StoreFuture<'_, Vec<MinuteAggregate>> {
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|r| r.minute >= since)
            .cloned()
            .collect();
        Box::pin(async { Ok(rows) })
    }
}

/// What an SLA report holds operations to.
#[derive(Clone, Debug, PartialEq)]
pub struct SlaObjectives {
    latency: f64,
    availability: f64,
}

impl Default for SlaObjectives {
    fn default() -> Self {
        Self {
            latency: 0.99,
            availability: 0.999,
        }
    }
}

impl SlaObjectives {
    /// The share of calls that must be within the latency target. Default 0.99.
    #[must_use]
    pub fn latency(mut self, share: f64) -> Self {
        self.latency = share;
        self
    }

    /// The share of calls that must succeed. Default 0.999.
    #[must_use]
    pub fn availability(mut self, share: f64) -> Self {
        self.availability = share;
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `sla.latency` (must be in (0.5, 1]) or
    /// `sla.availability` (in (0.9, 1]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.latency > 0.5 && self.latency <= 1.0) {
            return Err(ConfigError::new(
                "sla.latency",
                format!("must be in (0.5, 1], got {}", self.latency),
            ));
        }
        if !(self.availability > 0.9 && self.availability <= 1.0) {
            return Err(ConfigError::new(
                "sla.availability",
                format!("must be in (0.9, 1], got {}", self.availability),
            ));
        }
        Ok(())
    }
}

/// One operation in a [`Report`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OperationReport {
    /// The operation.
    pub name: String,
    /// Calls in the period.
    pub requests: u64,
    /// Failed calls.
    pub errors: u64,
    /// `1 - errors / requests` (1 without calls).
    pub availability: f64,
    /// The latency target, in milliseconds.
    pub latency_target_ms: f64,
    /// The share of calls within the target (1 without calls).
    pub latency_compliance: f64,
    /// Whether both objectives were met.
    pub sla_met: bool,
    /// Mean duration, in milliseconds.
    pub mean_ms: f64,
    /// The highest 1-minute p95, in milliseconds.
    pub worst_p95_ms: f64,
    /// 0–100 (see [`Report::health_score`]).
    pub score: u8,
}

/// An operation that takes a large share of the time.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Bottleneck {
    /// The operation.
    pub name: String,
    /// Its share of the time spent in all operations.
    pub share_of_time: f64,
    /// Its mean duration, in milliseconds.
    pub mean_ms: f64,
    /// Its highest 1-minute p95, in milliseconds.
    pub worst_p95_ms: f64,
}

/// What a recommendation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecommendationKind {
    /// Tasks wait for pool connections: raise the pool size.
    RaisePoolSize,
    /// A cache misses often and evicts a lot: raise its capacity.
    RaiseCacheCapacity,
    /// A queue keeps growing: add workers.
    AddWorkers,
    /// An operation fails often: look at its errors.
    InvestigateErrors,
}

/// A suggestion from the stats.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Recommendation {
    /// What it is about.
    pub kind: RecommendationKind,
    /// The metric or operation, with its labels.
    pub subject: String,
    /// What was seen and what to do.
    pub message: String,
}

/// An SLA report over the last N hours.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The start of the period.
    pub from: Timestamp,
    /// The end of the period.
    pub to: Timestamp,
    /// Each operation with calls, by name.
    pub operations: Vec<OperationReport>,
    /// 0–100: the request-weighted mean of the operations' scores, 100
    /// without calls. An operation scores `50·L + 50·A`, where
    /// `L = clamp((compliance − 0.5) / (latency objective − 0.5), 0, 1)` and
    /// `A = clamp((availability − 0.9) / (availability objective − 0.9), 0, 1)`:
    /// full marks at the objectives, nothing at half the calls slow or a
    /// tenth of them failing.
    pub health_score: u8,
    /// Operations by share of total time, largest first (at most 5).
    pub bottlenecks: Vec<Bottleneck>,
    /// Suggestions from the current stats.
    pub recommendations: Vec<Recommendation>,
}

#[derive(Debug, Default)]
struct HistState {
    rows: VecDeque<MinuteAggregate>,
    last: HashMap<String, (HistogramSnapshot, u64)>,
    /// Recent values of queue-like gauges (name, labels) → values, one per roll.
    depths: BTreeMap<(String, Labels), VecDeque<f64>>,
}

/// 1-minute history, SLA reports and recommendations. Made by [`History::builder`].
///
/// ```
/// use std::time::Duration;
/// use brisk_monitor::{History, Monitor, SlaObjectives};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let monitor = Monitor::new();
/// let history = History::builder(&monitor).latency_target(Duration::from_millis(100)).build()?;
/// let op = monitor.operation("analyze")?;
/// for ms in [20, 40, 250] {
///     op.record(Duration::from_millis(ms), true);
/// }
/// history.roll().await?; // every minute, or `spawn` does it
/// let report = history.report(Duration::from_secs(3600), &SlaObjectives::default());
/// assert_eq!(report.operations[0].requests, 3);
/// assert!((report.operations[0].latency_compliance - 2.0 / 3.0).abs() < 1e-9);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct History {
    monitor: Monitor,
    retention: Duration,
    latency_target: Duration,
    targets: BTreeMap<String, Duration>,
    store: Option<Arc<dyn HistoryStore>>,
    store_failures: Counter,
    state: Mutex<HistState>,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("retention", &self.retention)
            .field("latency_target", &self.latency_target)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Builds a [`History`].
#[must_use]
pub struct HistoryBuilder {
    monitor: Monitor,
    retention: Duration,
    latency_target: Duration,
    targets: BTreeMap<String, Duration>,
    store: Option<Arc<dyn HistoryStore>>,
}

impl fmt::Debug for HistoryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryBuilder")
            .field("retention", &self.retention)
            .field("latency_target", &self.latency_target)
            .finish_non_exhaustive()
    }
}

impl HistoryBuilder {
    /// How long rows are kept in memory and loaded back. Default 24 h; at
    /// least 1 min.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The latency target of every operation without its own. Default 100 ms.
    pub fn latency_target(mut self, target: Duration) -> Self {
        self.latency_target = target;
        self
    }

    /// The latency target of one operation.
    pub fn operation_target(mut self, operation: impl Into<String>, target: Duration) -> Self {
        self.targets.insert(operation.into(), target);
        self
    }

    /// Persists rows to `store`. Default: memory only.
    pub fn store(mut self, store: impl HistoryStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Checks the values and builds the history.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `history.retention` or `history.latency_target`.
    pub fn build(self) -> Result<History, ConfigError> {
        if self.retention < Duration::from_secs(60) {
            return Err(ConfigError::new(
                "history.retention",
                format!("must be at least 1 minute, got {:?}", self.retention),
            ));
        }
        if self.latency_target.is_zero() || self.targets.values().any(Duration::is_zero) {
            return Err(ConfigError::new(
                "history.latency_target",
                "must be greater than zero",
            ));
        }
        let store_failures = self
            .monitor
            .counter(
                "brisk_monitor_history_store_failures_total",
                "History rows the store failed to save",
                &[],
            )
            .map_err(|e| ConfigError::new("history", e.to_string()))?;
        Ok(History {
            monitor: self.monitor,
            retention: self.retention,
            latency_target: self.latency_target,
            targets: self.targets,
            store: self.store,
            store_failures,
            state: Mutex::new(HistState::default()),
        })
    }
}

impl History {
    /// A builder over `monitor`'s operations.
    pub fn builder(monitor: &Monitor) -> HistoryBuilder {
        HistoryBuilder {
            monitor: monitor.clone(),
            retention: Duration::from_secs(24 * 3600),
            latency_target: Duration::from_millis(100),
            targets: BTreeMap::new(),
            store: None,
        }
    }

    fn target(&self, op: &str) -> Duration {
        self.targets.get(op).copied().unwrap_or(self.latency_target)
    }

    fn now(&self) -> Timestamp {
        Timestamp::now(self.monitor.clock().as_ref())
    }

    /// Loads the rows of the retention period from the store (after a
    /// restart); returns how many. Without a store, 0.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn restore(&self) -> Result<usize, StoreError> {
        let Some(store) = &self.store else { return Ok(0) };
        let since = self.since(self.retention);
        let rows = store.load_since(since).await?;
        let n = rows.len();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<MinuteAggregate> = rows.into_iter().chain(st.rows.drain(..)).collect();
        all.sort_by_key(|r| r.minute);
        st.rows = all.into();
        Ok(n)
    }

    fn since(&self, ago: Duration) -> Timestamp {
        let now = self.now().as_unix_millis();
        Timestamp::from_unix_millis(now.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Closes the current minute: one row per operation that had calls since
    /// the last roll, kept in memory and saved to the store. Call it every
    /// minute ([`spawn`](Self::spawn) does).
    ///
    /// # Errors
    ///
    /// The store's error (the rows are kept in memory all the same, and the
    /// failure is counted in `brisk_monitor_history_store_failures_total`).
    pub async fn roll(&self) -> Result<Vec<MinuteAggregate>, StoreError> {
        let rows = self.roll_in_memory();
        if let Some(store) = &self.store
            && !rows.is_empty()
            && let Err(e) = store.save(&rows).await
        {
            self.store_failures.inc();
            tracing::warn!(error = %e, "brisk-monitor: history rows not saved");
            return Err(e);
        }
        Ok(rows)
    }

    fn roll_in_memory(&self) -> Vec<MinuteAggregate> {
        let now = self.now();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rows = Vec::new();
        for op in self.monitor.operations() {
            let s = op.stats(None);
            let (delta, errors) = match st.last.get(op.name()) {
                Some((prev, prev_errors)) => (s.durations.since(prev), s.errors.saturating_sub(*prev_errors)),
                None => (s.durations.clone(), s.errors),
            };
            st.last.insert(op.name().to_owned(), (s.durations, s.errors));
            if delta.count() == 0 {
                continue;
            }
            let q = |q| delta.quantile(q).unwrap_or(0.0);
            rows.push(MinuteAggregate {
                minute: now,
                operation: op.name().to_owned(),
                count: delta.count(),
                errors,
                within_target: delta.count_at_or_below(self.target(op.name()).as_secs_f64()),
                sum_secs: delta.sum(),
                p50: q(0.5),
                p95: q(0.95),
                p99: q(0.99),
                max: delta.max().unwrap_or(0.0),
            });
        }
        st.rows.extend(rows.iter().cloned());
        let cutoff = self.since(self.retention);
        while st.rows.front().is_some_and(|r| r.minute < cutoff) {
            st.rows.pop_front();
        }
        // Queue-like gauges, for the "queue growing" rule.
        for m in self.monitor.collect().into_metrics() {
            if is_queue_like(&m.name) {
                let labels = sorted_labels(&m);
                let q = st.depths.entry((m.name.to_string(), labels)).or_default();
                q.push_back(m.value.as_f64());
                if q.len() > QUEUE_SAMPLES {
                    q.pop_front();
                }
            }
        }
        rows
    }

    /// The rows kept in memory, oldest first.
    #[must_use]
    pub fn rows(&self) -> Vec<MinuteAggregate> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rows
            .iter()
            .cloned()
            .collect()
    }

    /// Spawns a task on the current tokio runtime that calls
    /// [`roll`](Self::roll) every minute.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[allow(clippy::must_use_candidate)] // dropping the handle detaches the task, the usual use
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let history = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(60));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                let _ = history.roll().await;
            }
        })
    }

    /// The SLA report over the last `period` (e.g. 24 h).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn report(&self, period: Duration, objectives: &SlaObjectives) -> Report {
        let to = self.now();
        let from = self.since(period);
        let mut per_op: BTreeMap<String, Vec<MinuteAggregate>> = BTreeMap::new();
        for r in self.rows() {
            if r.minute > from {
                per_op.entry(r.operation.clone()).or_default().push(r);
            }
        }
        let mut operations = Vec::new();
        let mut total_time = 0.0;
        for (name, rows) in &per_op {
            let requests: u64 = rows.iter().map(|r| r.count).sum();
            let errors: u64 = rows.iter().map(|r| r.errors).sum();
            let within: u64 = rows.iter().map(|r| r.within_target).sum();
            let time: f64 = rows.iter().map(|r| r.sum_secs).sum();
            total_time += time;
            let share = |n: u64| {
                if requests == 0 {
                    1.0
                } else {
                    n as f64 / requests as f64
                }
            };
            let availability = 1.0 - share(errors);
            let compliance = share(within);
            let l = ((compliance - 0.5) / (objectives.latency - 0.5)).clamp(0.0, 1.0);
            let a = ((availability - 0.9) / (objectives.availability - 0.9)).clamp(0.0, 1.0);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let score = (50.0 * l + 50.0 * a).round() as u8;
            operations.push(OperationReport {
                name: name.clone(),
                requests,
                errors,
                availability,
                latency_target_ms: self.target(name).as_secs_f64() * 1e3,
                latency_compliance: compliance,
                sla_met: compliance >= objectives.latency && availability >= objectives.availability,
                mean_ms: if requests == 0 {
                    0.0
                } else {
                    time / requests as f64 * 1e3
                },
                worst_p95_ms: rows.iter().map(|r| r.p95).fold(0.0, f64::max) * 1e3,
                score,
            });
        }
        let total_requests: u64 = operations.iter().map(|o| o.requests).sum();
        let health_score = if total_requests == 0 {
            100
        } else {
            let weighted: f64 = operations
                .iter()
                .map(|o| f64::from(o.score) * o.requests as f64)
                .sum();
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let s = (weighted / total_requests as f64).round() as u8;
            s
        };
        let mut bottlenecks: Vec<Bottleneck> = operations
            .iter()
            .map(|o| Bottleneck {
                name: o.name.clone(),
                share_of_time: if total_time > 0.0 {
                    o.mean_ms / 1e3 * o.requests as f64 / total_time
                } else {
                    0.0
                },
                mean_ms: o.mean_ms,
                worst_p95_ms: o.worst_p95_ms,
            })
            .collect();
        bottlenecks.sort_by(|a, b| b.share_of_time.total_cmp(&a.share_of_time));
        bottlenecks.truncate(5);
        let mut recommendations = self.recommendations();
        for o in &operations {
            if o.requests >= 100 && o.availability < 0.95 {
                recommendations.push(Recommendation {
                    kind: RecommendationKind::InvestigateErrors,
                    subject: o.name.clone(),
                    message: format!(
                        "{} of {} calls failed ({:.1}%): look at the errors before scaling",
                        o.errors,
                        o.requests,
                        (1.0 - o.availability) * 100.0
                    ),
                });
            }
        }
        Report {
            from,
            to,
            operations,
            health_score,
            bottlenecks,
            recommendations,
        }
    }

    /// Recommendations from the current stats of the monitor and its
    /// collectors (rules in `docs/monitor.md`):
    /// - pool: `brisk_db_pool_waiting` above 0 with `brisk_db_pool_in_use`
    ///   at `brisk_db_pool_max_size`, or the p95 of `brisk_db_pool_wait_seconds`
    ///   above 10 ms → raise the pool size;
    /// - cache: hit ratio under 85% (from `<prefix>_hits_total` and
    ///   `_misses_total`) while `<prefix>_evictions_total` exceeds 5% of the
    ///   lookups → raise its capacity;
    /// - queue: a `*_queue_depth`, `*_queued_rows` or `*_waiting` gauge that
    ///   rose at each of the last 5 rolls → add workers.
    #[must_use]
    pub fn recommendations(&self) -> Vec<Recommendation> {
        let mut out = Vec::new();
        let scalars = |name: &str| self.monitor.scalars_matching(name, &[]);
        // Pool.
        let waiting = scalars("brisk_db_pool_waiting");
        let in_use = scalars("brisk_db_pool_in_use");
        let max = scalars("brisk_db_pool_max_size");
        let wait_p95: Vec<(Labels, f64)> = self.monitor.scalars_matching(
            "brisk_db_pool_wait_seconds",
            &[("quantile".into(), "0.95".into())],
        );
        for (labels, w) in &waiting {
            let full = in_use
                .iter()
                .zip(&max)
                .any(|((l1, u), (l2, m))| l1 == labels && l2 == labels && u >= m);
            let slow = wait_p95
                .iter()
                .find(|(l, _)| l.iter().filter(|(k, _)| k != "quantile").eq(labels.iter()))
                .map(|(_, v)| *v);
            if (*w > 0.0 && full) || slow.is_some_and(|s| s > 0.010) {
                out.push(Recommendation {
                    kind: RecommendationKind::RaisePoolSize,
                    subject: format!("brisk_db_pool{}", fmt_labels(labels)),
                    message: format!(
                        "{w} tasks waiting for a connection{}: raise the pool size",
                        slow.map_or_else(String::new, |s| format!(", p95 wait {:.1} ms", s * 1e3))
                    ),
                });
            }
        }
        // Caches.
        for c in self.monitor.caches() {
            let Some(ratio) = c.hit_rate else { continue };
            let evictions: f64 = self
                .monitor
                .scalars_matching(&format!("{}_evictions_total", c.metric), &to_matchers(&c.labels))
                .iter()
                .map(|(_, v)| v)
                .sum();
            let lookups = c.hits + c.misses;
            if ratio < 0.85 && evictions > 0.05 * lookups {
                out.push(Recommendation {
                    kind: RecommendationKind::RaiseCacheCapacity,
                    subject: format!("{}{}", c.metric, fmt_map(&c.labels)),
                    message: format!(
                        "hit ratio {:.0}% with {evictions} evictions over {lookups} lookups: raise the capacity",
                        ratio * 100.0
                    ),
                });
            }
        }
        // Queues.
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for ((name, labels), values) in &st.depths {
            if values.len() >= QUEUE_SAMPLES && values.iter().zip(values.iter().skip(1)).all(|(a, b)| b > a) {
                out.push(Recommendation {
                    kind: RecommendationKind::AddWorkers,
                    subject: format!("{name}{}", fmt_labels(labels)),
                    message: format!(
                        "grew at each of the last {QUEUE_SAMPLES} minutes ({} → {}): add workers",
                        values.front().copied().unwrap_or_default(),
                        values.back().copied().unwrap_or_default()
                    ),
                });
            }
        }
        out
    }
}

const QUEUE_SAMPLES: usize = 6;

fn is_queue_like(name: &str) -> bool {
    name.ends_with("_queue_depth") || name.ends_with("_queued_rows") || name.ends_with("_waiting")
}

fn to_matchers(labels: &BTreeMap<String, String>) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn fmt_labels(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

fn fmt_map(labels: &BTreeMap<String, String>) -> String {
    fmt_labels(&to_matchers(labels))
}
