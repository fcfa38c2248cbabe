//! `CoarseClock`: a monotonic clock that costs one atomic load to read.
//
// Why: on some machines (VMs without a stable TSC in the vDSO) `Instant::now`
// costs 60–90 ns, three times a whole rate limit decision. governor avoids
// it with quanta's raw TSC reads, which can go backwards across cores. This
// clock stays monotonic: one background thread stores `Instant::now()`
// (monotonic) every `resolution` into an atomic that callers load. Time
// read this way lags by at most `resolution`, which can only make a limiter
// stricter (less time seems to have passed, so less capacity has come back),
// never looser.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use brisk_core::{Clock, SharedClock};

/// A monotonic clock updated by a background thread every `resolution`
/// (default 1 ms); reading it is one atomic load instead of a system call.
///
/// For hot limiters on machines where `Instant::now` is slow (see
/// `docs/benchmarks.md`). It costs one thread that wakes every `resolution`
/// and ends when the last clone is dropped. Times lag real time by at most
/// `resolution`, so a limiter on it is slightly stricter, never looser.
///
/// ```
/// use std::time::Duration;
/// use brisk_core::Clock;
/// use brisk_rate_limiter::{CoarseClock, Quota, RateLimiter};
///
/// let limiter = RateLimiter::builder()
///     .quota(Quota::per_second(1_000))
///     .clock(CoarseClock::shared())
///     .build()?;
/// limiter.check(1)?;
/// let clock = CoarseClock::new(Duration::from_millis(5));
/// let t = clock.now();
/// assert!(clock.now() >= t);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CoarseClock {
    inner: Arc<Inner>,
}

struct Inner {
    origin: Instant,
    offset_nanos: AtomicU64,
    resolution: Duration,
}

impl CoarseClock {
    /// The finest resolution accepted; finer ones are raised to it.
    pub const MIN_RESOLUTION: Duration = Duration::from_micros(100);

    /// A clock updated every `resolution` (at least 100 µs) by a new thread.
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned.
    #[must_use]
    pub fn new(resolution: Duration) -> Self {
        let resolution = resolution.max(Self::MIN_RESOLUTION);
        let inner = Arc::new(Inner {
            origin: Instant::now(),
            offset_nanos: AtomicU64::new(0),
            resolution,
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("brisk-coarse-clock".into())
            .spawn(move || {
                while let Some(inner) = weak.upgrade() {
                    let nanos = u64::try_from(inner.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    inner.offset_nanos.fetch_max(nanos, Ordering::Release);
                    let resolution = inner.resolution;
                    drop(inner);
                    std::thread::sleep(resolution);
                }
            })
            .expect("spawn the coarse clock thread");
        Self { inner }
    }

    /// One process-wide clock of 1 ms resolution, as a [`SharedClock`].
    #[must_use]
    pub fn shared() -> SharedClock {
        static CLOCK: OnceLock<CoarseClock> = OnceLock::new();
        Arc::new(
            CLOCK
                .get_or_init(|| CoarseClock::new(Duration::from_millis(1)))
                .clone(),
        )
    }

    /// How often the clock moves.
    #[must_use]
    pub fn resolution(&self) -> Duration {
        self.inner.resolution
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> Instant {
        self.inner.origin + Duration::from_nanos(self.inner.offset_nanos.load(Ordering::Acquire))
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl fmt::Debug for CoarseClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoarseClock")
            .field("resolution", &self.inner.resolution)
            .finish_non_exhaustive()
    }
}
