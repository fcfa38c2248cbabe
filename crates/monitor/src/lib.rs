//! brisk-monitor: a service watching itself, as a library.
//!
//! - **Metrics**: [`Counter`], [`Gauge`] and [`Histogram`] handles with
//!   labels, from a [`Monitor`]. A handle is the series' atomics: recording
//!   does no lookup by name. Histograms keep HDR-style log-linear buckets, so
//!   percentiles (p50, p90, p95, p99, p99.9) are true order statistics to
//!   within 0.39%, both since start and over rolling windows (1 min, 5 min,
//!   1 h: [`Histogram::window`]).
//! - **Timing**: [`Histogram::start_timer`] (an RAII guard) and
//!   [`Operation`]s, which count calls and errors and wrap a future with
//!   [`Operation::track`] (a `track_performance` decorator).
//! - **Compatibility**: [`MonitorRecorder`] implements the `metrics` facade's
//!   `Recorder`, so `metrics::counter!` and friends record here.
//! - **Collectors**: [`Monitor::register`] takes any brisk-core
//!   [`StatsSource`](brisk_core::StatsSource) (a cache, a pool, a limiter); it
//!   is read at scrape time, at no cost on its hot path. A collected metric
//!   named like a registered family of the same kind joins it as more
//!   series; a clash is left out and reported ([`Monitor::collector_conflicts`]).
//! - **Exposition**: [`Monitor::render_prometheus`] (passes
//!   `promtool check metrics`; histograms as buckets plus a
//!   `<name>_percentiles` summary computed from every value since start and,
//!   with a `window` label, over the last 1 min, 5 min and 1 h), and
//!   [`Monitor::summary`], a JSON summary for dashboards.
//! - **Health**: [`HealthChecks`], async component checks with timeouts, an
//!   aggregate status and a 0–100 score.
//! - **Alerts**: [`AlertRules`] (threshold, baseline degradation, SLO burn
//!   rate, absence; from code or TOML) evaluated by an [`AlertEngine`] with
//!   pending durations, cooldowns, grouping, escalation and resolved
//!   notifications, through [`LogNotifier`], [`WebhookNotifier`]
//!   (Alertmanager's JSON), `EmailNotifier` (feature `email`) or your own
//!   [`Notifier`].
//! - **Reports**: [`History`] keeps 1-minute aggregates for 24 h (persisted
//!   through a [`HistoryStore`]) and makes SLA [`Report`]s with a health
//!   score, bottlenecks and [`Recommendation`]s.
//! - **System** (feature `system`): `SystemSampler` samples process RSS
//!   and CPU, system memory and disk usage with sysinfo.
//!
//! # Example
//!
//! Time an operation, alert when it is slow, and export it:
//!
//! ```
//! use std::time::Duration;
//! use brisk_core::ManualClock;
//! use brisk_monitor::{AlertEngine, AlertRule, AlertRules, Monitor, Op, Signal, SummaryOptions};
//!
//! let clock = ManualClock::new();
//! let monitor = Monitor::builder().clock(clock.shared()).build()?;
//!
//! // Hot path: handles, no lookups.
//! let analyze = monitor.operation("analyze")?;
//! let cache_hits = monitor.counter("brisk_cache_hits_total", "Cache hits", &[("cache", "sentiment")])?;
//! for ms in 1..=100 {
//!     let timer = analyze.start();
//!     clock.advance(Duration::from_millis(ms)); // the work
//!     timer.finish(ms % 50 != 0);
//!     cache_hits.inc();
//! }
//! monitor.tick(); // file the last values under the current window slot
//!
//! // True percentiles, cumulative or over a window.
//! let last_minute = analyze.histogram().window(Duration::from_secs(60));
//! let p95 = last_minute.quantile(0.95).unwrap();
//! assert!((p95 - 0.095).abs() < 0.095 * 0.004);
//!
//! // Prometheus text.
//! let text = monitor.render_prometheus();
//! assert!(text.contains("brisk_operation_duration_seconds_count{operation=\"analyze\"} 100\n"));
//! assert!(text.contains("brisk_operation_errors_total{operation=\"analyze\"} 2\n"));
//!
//! // Alerts: p95 over 50 ms for a minute.
//! let rule = AlertRule::threshold(
//!     "analyze_slow",
//!     Signal::operation_quantile("analyze", 0.95, Duration::from_secs(300)),
//!     Op::Gt,
//!     0.050,
//! )
//! .pending(Duration::from_secs(60));
//! let engine = AlertEngine::builder(&monitor).rules(AlertRules::new([rule])?).build()?;
//! assert!(engine.evaluate().is_empty()); // pending
//! clock.advance(Duration::from_secs(60));
//! let sent = engine.evaluate();
//! assert_eq!(sent[0].alerts[0].labels["alertname"], "analyze_slow");
//!
//! // The dashboard's JSON.
//! let summary = monitor.summary(&SummaryOptions::default());
//! assert_eq!(summary.operations[0].error_rate, 0.02);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! - `rustls`: HTTPS webhooks (reqwest with rustls; never OpenSSL). Off by
//!   default: plain HTTP works without it.
//! - `system`: `SystemSampler`, process and system resources through
//!   sysinfo. Off by default.
//! - `email`: `EmailNotifier`, alert emails over SMTP through lettre
//!   (STARTTLS with `rustls` too, verifying the server against the Mozilla
//!   roots and any `root_certificate_pem` you add). Off by default.
//!
//! # Implementation notes
//!
//! - **Histograms** are an array of atomic counters in HdrHistogram's
//!   log-linear layout: values are integers of `resolution` units
//!   (nanoseconds for durations); every power of two is split into 2^7
//!   sub-buckets (`MonitorBuilder::precision_bits`), so a bucket's midpoint
//!   is within 0.39% of any value in it. A record is a few bit operations
//!   and two relaxed atomic adds: no lock, no clock read, no allocation
//!   (but the first value of each power of two allocates its 2^7 counters
//!   once); threads contend only on the bucket they hit, the sum is striped.
//! - **Memory**: a series allocates only the power-of-two groups its values
//!   fall in (1 KiB each), not all 58 (58 KiB): ~3 KiB unused, ~10 KiB with
//!   latencies spread over 1–50 ms. Window slots are packed (8 bytes per
//!   non-empty bucket) and, beyond 5 minutes, folded into 1-minute blocks:
//!   an hour of 100 values a second over 1–50 ms holds ~0.47 MB (it was
//!   ~3.1 MB in 361 unpacked slots). [`Histogram::heap_bytes`] measures it.
//! - **Rolling windows** never touch the hot path: [`Monitor::tick`] (run by
//!   [`Monitor::spawn_maintenance`] every `window_resolution`, 10 s by
//!   default, and before every windowed read) files the difference since the
//!   previous tick under the current slot; a window sums its last slots. A
//!   value therefore lands in the slot of the first tick after it. Windows up
//!   to 5 minutes are exact to one slot; older slots are kept as 1-minute
//!   blocks, so longer windows (1 h) are exact to half a minute.
//! - **Percentiles in Prometheus**: the `_percentiles` summary is computed
//!   from all values since start, not a decaying sample, so 1,000 uniform
//!   values 0–999 give p50 = 499 ± 2; its `window="1m"` (`"5m"`, `"1h"`)
//!   series hold the same quantiles over that window, with the window's own
//!   `_sum` and `_count`. Histogram buckets are derived from the
//!   same HDR buckets at scrape time: a value within 0.4% of a bucket bound
//!   may be counted on either side of it.
//! - **Alerts** never wait on delivery: each notifier drains its own bounded
//!   queue; a full queue drops and counts (`brisk_alert_notifications_failed_total`).
//! - **Time** comes from the monitor's [`brisk_core::Clock`]: windows,
//!   pending durations, cooldowns, escalation and burn rates are all tested
//!   on a `ManualClock`.

mod alerts;
#[cfg(feature = "email")]
mod email;
mod error;
mod exposition;
mod health;
mod histogram;
mod metric;
mod notify;
mod operation;
mod recorder;
mod registry;
mod report;
mod rules;
mod summary;
#[cfg(feature = "system")]
mod system;

pub use alerts::{
    ActiveAlert, Alert, AlertEngine, AlertEngineBuilder, AlertEvent, AlertStatus, Notification,
};
#[cfg(feature = "email")]
pub use email::{EmailNotifier, EmailNotifierBuilder};
pub use error::{MonitorError, NotifyError, RuleError};
pub use exposition::{CollectorConflict, ConflictReason, PROMETHEUS_CONTENT_TYPE};
pub use health::{CheckOutcome, CheckResult, HealthChecks, HealthChecksBuilder, HealthReport, HealthStatus};
pub use histogram::HistogramSnapshot;
pub use metric::{Counter, Gauge, Histogram, HistogramTimer};
pub use notify::{LogNotifier, Notifier, NotifyFuture, WebhookNotifier, WebhookNotifierBuilder};
pub use operation::{Operation, OperationStats, OperationTimer};
pub use recorder::MonitorRecorder;
pub use registry::{DEFAULT_BUCKETS, DEFAULT_EXPOSED_WINDOWS, DEFAULT_QUANTILES, Monitor, MonitorBuilder};
pub use report::{
    Bottleneck, History, HistoryBuilder, HistoryStore, MemoryStore, MinuteAggregate, OperationReport,
    Recommendation, RecommendationKind, Report, SlaObjectives, StoreError, StoreFuture,
};
pub use rules::{AlertRule, AlertRules, Op, Severity, Signal};
pub use summary::{CacheSummary, OperationSummary, SlowOperation, Summary, SummaryOptions};
#[cfg(feature = "system")]
pub use system::{SystemSample, SystemSampler};
