//! Operations: a duration histogram and an error count per named operation,
//! with a timer guard and a future wrapper (a `track_performance` decorator).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brisk_core::Clock;

use crate::histogram::HistogramSnapshot;
use crate::metric::{Counter, Histogram, HistogramCore};

/// The histogram family of operation durations (label `operation`).
pub(crate) const DURATION_METRIC: &str = "brisk_operation_duration_seconds";
/// The counter family of failed operations (label `operation`).
pub(crate) const ERRORS_METRIC: &str = "brisk_operation_errors_total";

/// A named operation (`"analyze"`, `"db.insert"`): every call's duration and
/// whether it failed. Cheap to clone. Made by [`Monitor::operation`](crate::Monitor::operation).
///
/// ```
/// use std::time::Duration;
/// let monitor = brisk_monitor::Monitor::new();
/// let analyze = monitor.operation("analyze")?;
/// analyze.record(Duration::from_millis(40), true);
/// let timer = analyze.start();
/// timer.fail(); // a failed call
/// let stats = analyze.stats(None);
/// assert_eq!((stats.calls, stats.errors), (2, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Operation {
    name: Arc<str>,
    duration: Histogram,
    errors: Counter,
    error_durations: Arc<HistogramCore>,
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Calls and errors of an operation, over a window or since it was created.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OperationStats {
    /// Calls, failed or not.
    pub calls: u64,
    /// Failed calls.
    pub errors: u64,
    /// Durations of all calls, in seconds.
    pub durations: HistogramSnapshot,
}

impl OperationStats {
    /// `errors / calls` (0 when there were no calls).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn error_ratio(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.errors as f64 / self.calls as f64
        }
    }
}

impl Operation {
    pub(crate) fn new(
        name: &str,
        duration: Histogram,
        errors: Counter,
        error_durations: Arc<HistogramCore>,
    ) -> Self {
        Self {
            name: name.into(),
            duration,
            errors,
            error_durations,
        }
    }

    /// The operation's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The duration histogram (all calls).
    #[must_use]
    pub fn histogram(&self) -> &Histogram {
        &self.duration
    }

    /// Records one call that took `took`; `ok` is false for a failure.
    #[inline]
    pub fn record(&self, took: Duration, ok: bool) {
        self.duration.record_duration(took);
        if !ok {
            self.errors.inc();
            self.error_durations.record_duration(took);
        }
    }

    /// Starts timing one call. The guard records a success when dropped,
    /// unless [`OperationTimer::fail`] or [`OperationTimer::finish`] says otherwise.
    pub fn start(&self) -> OperationTimer {
        OperationTimer {
            op: self.clone(),
            start: self.duration.0.shared.clock.now(),
            done: false,
        }
    }

    /// Awaits `fut`, recording its duration and whether it returned `Err`:
    /// a `track_performance` decorator for async code.
    ///
    /// # Errors
    ///
    /// `fut`'s own error, unchanged.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let monitor = brisk_monitor::Monitor::new();
    /// let fetch = monitor.operation("fetch")?;
    /// let got: Result<u32, &str> = fetch.track(async { Ok(7) }).await;
    /// assert_eq!(got, Ok(7));
    /// let _ = fetch.track(async { Err::<u32, _>("boom") }).await;
    /// assert_eq!(fetch.stats(None).errors, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn track<T, E, F>(&self, fut: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let timer = self.start();
        let out = fut.await;
        timer.finish(out.is_ok());
        out
    }

    /// Calls and errors over the last `window`, or since creation for `None`.
    #[must_use]
    pub fn stats(&self, window: Option<Duration>) -> OperationStats {
        let (durations, errors) = match window {
            Some(w) => (
                self.duration.window(w),
                self.error_durations.between(w, Duration::ZERO).count(),
            ),
            None => (self.duration.snapshot(), self.errors.get()),
        };
        OperationStats {
            calls: durations.count(),
            errors,
            durations,
        }
    }

    /// Calls and errors recorded from `older` ago until `newer` ago.
    #[must_use]
    pub fn stats_between(&self, older: Duration, newer: Duration) -> OperationStats {
        let durations = self.duration.between(older, newer);
        OperationStats {
            calls: durations.count(),
            errors: self.error_durations.between(older, newer).count(),
            durations,
        }
    }
}

/// Times one call of an [`Operation`]; records a success when dropped.
#[derive(Debug)]
#[must_use = "the timer records when dropped"]
pub struct OperationTimer {
    op: Operation,
    start: Instant,
    done: bool,
}

impl OperationTimer {
    /// Records the call as successful (`ok`) or failed, now.
    #[allow(clippy::must_use_candidate)] // the result is optional information
    pub fn finish(mut self, ok: bool) -> Duration {
        self.done = true;
        let took = self.op.duration.0.shared.clock.elapsed(self.start);
        self.op.record(took, ok);
        took
    }

    /// Records the call as failed, now.
    #[allow(clippy::must_use_candidate)] // the result is optional information
    pub fn fail(self) -> Duration {
        self.finish(false)
    }
}

impl Drop for OperationTimer {
    fn drop(&mut self) {
        if !self.done {
            let took = self.op.duration.0.shared.clock.elapsed(self.start);
            self.op.record(took, true);
        }
    }
}
