//! Component health checks, run on an interval with a timeout each, an
//! aggregate status and a 0–100 score.
//
// Score: each check earns 100 points when healthy, 50 when degraded and 0
// when unhealthy (a timeout or a panic counts as unhealthy); the score is
// the weighted mean, rounded: score = round(Σ wᵢ·pᵢ / Σ wᵢ), 100 with no
// checks. The aggregate status is unhealthy when a critical check is
// unhealthy, degraded when any check is not healthy, else healthy.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use brisk_core::{ConfigError, SharedClock, SystemClock, Timestamp};
use serde::Serialize;

/// How a component is doing. Ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working as intended.
    Healthy,
    /// Working, with reduced capacity or quality.
    Degraded,
    /// Not working.
    Unhealthy,
}

impl HealthStatus {
    /// The points a check earns: 100, 50 or 0.
    #[must_use]
    pub fn points(self) -> u32 {
        match self {
            HealthStatus::Healthy => 100,
            HealthStatus::Degraded => 50,
            HealthStatus::Unhealthy => 0,
        }
    }
}

/// What a check function returns: a status and a detail for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The status.
    pub status: HealthStatus,
    /// What was seen (`"3 of 10 connections in use"`).
    pub detail: String,
}

impl CheckOutcome {
    /// Healthy, with a detail.
    pub fn healthy(detail: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Healthy,
            detail: detail.into(),
        }
    }

    /// Degraded, with a detail.
    pub fn degraded(detail: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Degraded,
            detail: detail.into(),
        }
    }

    /// Unhealthy, with a detail.
    pub fn unhealthy(detail: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Unhealthy,
            detail: detail.into(),
        }
    }
}

/// The result of one check in a [`HealthReport`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Its status.
    pub status: HealthStatus,
    /// Its detail (or why it failed: timeout, panic).
    pub detail: String,
    /// How long it took.
    #[serde(serialize_with = "crate::summary::as_millis")]
    pub latency: Duration,
    /// Whether an unhealthy result makes the whole service unhealthy.
    pub critical: bool,
    /// Its weight in the score.
    pub weight: u32,
}

/// The result of running every check.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// The aggregate status.
    pub status: HealthStatus,
    /// 0–100: the weighted mean of the checks' points (see the crate docs).
    pub score: u8,
    /// Each check, in registration order.
    pub checks: Vec<CheckResult>,
    /// When the checks ran (wall clock).
    pub checked_at: Timestamp,
}

type CheckFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = CheckOutcome> + Send>> + Send + Sync>;

struct Check {
    name: String,
    timeout: Duration,
    weight: u32,
    critical: bool,
    run: CheckFn,
}

/// A set of health checks. Made by [`HealthChecks::builder`].
///
/// ```
/// use std::time::Duration;
/// use brisk_monitor::{CheckOutcome, HealthChecks, HealthStatus};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let checks = HealthChecks::builder()
///     .check("db", Duration::from_secs(1), || async { CheckOutcome::healthy("3/10 connections in use") })
///     .check("cache", Duration::from_secs(1), || async { CheckOutcome::degraded("hit ratio 60%") })
///     .build()?;
/// let report = checks.run().await;
/// assert_eq!(report.status, HealthStatus::Degraded);
/// assert_eq!(report.score, 75);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HealthChecks {
    checks: Vec<Check>,
    clock: SharedClock,
    last: Mutex<Option<HealthReport>>,
}

impl fmt::Debug for HealthChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthChecks")
            .field(
                "checks",
                &self.checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds [`HealthChecks`].
#[must_use]
pub struct HealthChecksBuilder {
    checks: Vec<Check>,
    clock: Option<SharedClock>,
}

impl fmt::Debug for HealthChecksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthChecksBuilder")
            .field("checks", &self.checks.len())
            .finish_non_exhaustive()
    }
}

impl HealthChecksBuilder {
    /// Adds a check with weight 1 that is not critical. `timeout` bounds
    /// each run; a check that overruns it is unhealthy.
    pub fn check<F, Fut>(self, name: impl Into<String>, timeout: Duration, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckOutcome> + Send + 'static,
    {
        self.check_with(name, timeout, 1, false, f)
    }

    /// Adds a check with a `weight` in the score and whether it is
    /// `critical` (unhealthy makes the whole service unhealthy).
    pub fn check_with<F, Fut>(
        mut self,
        name: impl Into<String>,
        timeout: Duration,
        weight: u32,
        critical: bool,
        f: F,
    ) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckOutcome> + Send + 'static,
    {
        self.checks.push(Check {
            name: name.into(),
            timeout,
            weight,
            critical,
            run: Arc::new(move || Box::pin(f())),
        });
        self
    }

    /// The clock for the reports' timestamps (latencies and timeouts use
    /// tokio's clock). Default: the system clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the values and builds the set.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `health.checks.<name>.timeout` (zero),
    /// `.weight` (zero) or `health.checks.<name>` (a name used twice).
    pub fn build(self) -> Result<HealthChecks, ConfigError> {
        for (i, c) in self.checks.iter().enumerate() {
            if c.timeout.is_zero() {
                return Err(ConfigError::new(
                    format!("health.checks.{}.timeout", c.name),
                    "must be greater than zero",
                ));
            }
            if c.weight == 0 {
                return Err(ConfigError::new(
                    format!("health.checks.{}.weight", c.name),
                    "must be at least 1",
                ));
            }
            if self.checks[..i].iter().any(|o| o.name == c.name) {
                return Err(ConfigError::new(
                    format!("health.checks.{}", c.name),
                    "is registered twice",
                ));
            }
        }
        Ok(HealthChecks {
            checks: self.checks,
            clock: self.clock.unwrap_or_else(SystemClock::shared),
            last: Mutex::new(None),
        })
    }
}

impl HealthChecks {
    /// A builder with no checks.
    pub fn builder() -> HealthChecksBuilder {
        HealthChecksBuilder {
            checks: Vec::new(),
            clock: None,
        }
    }

    /// Runs every check concurrently, each under its timeout, and keeps the
    /// report for [`last`](Self::last).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with its time driver enabled.
    pub async fn run(&self) -> HealthReport {
        let mut set = tokio::task::JoinSet::new();
        for (i, c) in self.checks.iter().enumerate() {
            let (run, timeout) = (c.run.clone(), c.timeout);
            set.spawn(async move {
                // tokio's clock, like the timeout (and paused with it in tests).
                let start = tokio::time::Instant::now();
                let out = match tokio::time::timeout(timeout, run()).await {
                    Ok(o) => o,
                    Err(_) => CheckOutcome::unhealthy(format!("timed out after {timeout:?}")),
                };
                (i, out, start.elapsed())
            });
        }
        let mut outcomes: Vec<Option<(CheckOutcome, Duration)>> = vec![None; self.checks.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((i, out, latency)) = joined {
                outcomes[i] = Some((out, latency));
            }
        }
        let checks: Vec<CheckResult> = self
            .checks
            .iter()
            .zip(outcomes)
            .map(|(c, o)| {
                let (out, latency) =
                    o.unwrap_or_else(|| (CheckOutcome::unhealthy("the check panicked"), Duration::ZERO));
                CheckResult {
                    name: c.name.clone(),
                    status: out.status,
                    detail: out.detail,
                    latency,
                    critical: c.critical,
                    weight: c.weight,
                }
            })
            .collect();
        let report = HealthReport {
            status: aggregate(&checks),
            score: score(&checks),
            checks,
            checked_at: Timestamp::now(self.clock.as_ref()),
        };
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(report.clone());
        report
    }

    /// The report of the last run, if any.
    #[must_use]
    pub fn last(&self) -> Option<HealthReport> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Spawns a task on the current tokio runtime that runs the checks every `every`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[allow(clippy::must_use_candidate)] // dropping the handle detaches the task, the usual use
    pub fn spawn(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let checks = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                checks.run().await;
            }
        })
    }
}

fn aggregate(checks: &[CheckResult]) -> HealthStatus {
    if checks
        .iter()
        .any(|c| c.critical && c.status == HealthStatus::Unhealthy)
    {
        HealthStatus::Unhealthy
    } else if checks.iter().any(|c| c.status != HealthStatus::Healthy) {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    }
}

/// `round(Σ wᵢ·pᵢ / Σ wᵢ)`, 100 for no checks.
pub(crate) fn score(checks: &[CheckResult]) -> u8 {
    let total: u64 = checks.iter().map(|c| u64::from(c.weight)).sum();
    if total == 0 {
        return 100;
    }
    let points: u64 = checks
        .iter()
        .map(|c| u64::from(c.weight) * u64::from(c.status.points()))
        .sum();
    u8::try_from((points + total / 2) / total).unwrap_or(100)
}
