//! A clock that follows tokio's timer, for tests under tokio's paused time.

use std::time::{Instant, SystemTime};

use brisk_core::{Clock, SharedClock};

/// [`Clock::now`] is tokio's `Instant::now()`: the real time normally, and
/// under `tokio::time::pause()` the paused time that `advance` (or the
/// runtime's auto-advance) moves. The pipeline sleeps on tokio's timer, so
/// giving it this clock in tests with paused time keeps its deadlines,
/// aging, breakers and rate limits in step with its sleeps: no test waits
/// in real time.
///
/// ```
/// use std::time::Duration;
/// use brisk_core::Clock;
/// use brisk_pipeline::TokioClock;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?.block_on(async {
/// let clock = TokioClock;
/// let t0 = clock.now();
/// tokio::time::sleep(Duration::from_secs(3600)).await; // instant under paused time
/// assert!(clock.elapsed(t0) >= Duration::from_secs(3600));
/// # });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl TokioClock {
    /// This clock as a [`SharedClock`].
    #[must_use]
    pub fn shared() -> SharedClock {
        std::sync::Arc::new(TokioClock)
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}
