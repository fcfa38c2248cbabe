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

/// The default clock of brisk's limiters: the kernel's coarse monotonic
/// clock (`CLOCK_MONOTONIC_COARSE` on Linux), read through the vDSO in a few
/// nanoseconds, with no thread. Elsewhere it is `Instant::now`.
///
/// It is the same time base as `Instant` (`CLOCK_MONOTONIC`), advanced once
/// per kernel tick: its resolution ([`resolution`](Self::resolution)) is
/// the tick, 1–4 ms on common kernels (4 ms on the development VM). So its
/// time lags `Instant::now()` by less than one tick. It never goes
/// backwards, unlike a raw TSC read. For a limiter the lag means a little
/// less capacity seems to have come back, never more, over the time since
/// the limiter started; across one interval, a reading may lag less at the
/// end than at the start, so an interval can look up to one tick longer
/// than it was (see `docs/rate-limiter.md`). Where that tick matters (a
/// window of a few milliseconds), pass [`SystemClock`](brisk_core::SystemClock)
/// for `Instant`'s precision.
///
/// ```
/// use brisk_core::Clock;
/// use brisk_rate_limiter::MonotonicCoarseClock;
///
/// let clock = MonotonicCoarseClock::new();
/// let t = clock.now();
/// assert!(clock.now() >= t);
/// assert!(MonotonicCoarseClock::resolution() <= std::time::Duration::from_millis(100));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MonotonicCoarseClock {
    /// An `Instant` and the coarse clock's reading (ns) at that instant.
    origin: Instant,
    #[cfg(target_os = "linux")]
    origin_nanos: u64,
}

impl MonotonicCoarseClock {
    /// A clock whose [`nanos`](Self::nanos) count from now.
    #[must_use]
    pub fn new() -> Self {
        let origin = Instant::now();
        Self {
            origin,
            // CLOCK_MONOTONIC, read right after `Instant::now` (which is
            // CLOCK_MONOTONIC too): coarse readings map onto `Instant`s.
            #[cfg(target_os = "linux")]
            origin_nanos: timespec_nanos(rustix::time::clock_gettime(rustix::time::ClockId::Monotonic)),
        }
    }

    /// The process-wide clock, as a [`SharedClock`].
    #[must_use]
    pub fn shared() -> SharedClock {
        Arc::new(Self::global())
    }

    /// The process-wide clock.
    pub(crate) fn global() -> Self {
        static CLOCK: OnceLock<MonotonicCoarseClock> = OnceLock::new();
        *CLOCK.get_or_init(Self::new)
    }

    /// How far the clock moves at a time (`clock_getres`): the kernel tick
    /// on Linux, 1 ns elsewhere.
    #[must_use]
    pub fn resolution() -> Duration {
        #[cfg(target_os = "linux")]
        {
            Duration::from_nanos(timespec_nanos(rustix::time::clock_getres(
                rustix::time::ClockId::MonotonicCoarse,
            )))
        }
        #[cfg(not(target_os = "linux"))]
        {
            Duration::from_nanos(1)
        }
    }

    /// Nanoseconds since the clock was made (0 until the coarse clock has
    /// passed that instant).
    #[inline]
    #[must_use]
    pub fn nanos(&self) -> u64 {
        #[cfg(target_os = "linux")]
        {
            timespec_nanos(rustix::time::clock_gettime(
                rustix::time::ClockId::MonotonicCoarse,
            ))
            .saturating_sub(self.origin_nanos)
        }
        #[cfg(not(target_os = "linux"))]
        {
            u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
        }
    }

    /// The instant of a [`nanos`](Self::nanos) reading.
    pub(crate) fn instant_of(&self, nanos: u64) -> Instant {
        self.origin + Duration::from_nanos(nanos)
    }
}

impl Default for MonotonicCoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicCoarseClock {
    #[inline]
    fn now(&self) -> Instant {
        self.instant_of(self.nanos())
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(target_os = "linux")]
#[inline]
fn timespec_nanos(t: rustix::time::Timespec) -> u64 {
    // Monotonic clocks start at boot: never negative, and far below 584 years.
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_monotonic_clock_follows_instant_within_its_resolution() {
        let clock = MonotonicCoarseClock::new();
        let res = MonotonicCoarseClock::resolution();
        assert!(
            res > Duration::ZERO && res <= Duration::from_millis(100),
            "{res:?}"
        );
        let mut last = clock.nanos();
        for _ in 0..1000 {
            let now = clock.nanos();
            assert!(now >= last);
            last = now;
        }
        // Never ahead of Instant (same time base, read later).
        let coarse = clock.now();
        let precise = Instant::now();
        assert!(coarse <= precise, "{coarse:?} > {precise:?}");
    }
}
