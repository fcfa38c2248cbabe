//! Injectable time: a monotonic clock for durations and a wall clock for
//! timestamps, with a manual clock that tests advance instead of sleeping.
//
// Design: components hold a `SharedClock` (an `Arc<dyn Clock>`). Reading the
// system clock through one virtual call costs a few nanoseconds beside the
// ~20 ns of `Instant::now()` itself, and buys tests of TTLs, windows,
// cooldowns and breakers that run in microseconds and never flake.
//
// `ManualClock::now()` is `origin + offset`, with the offset in an atomic, so
// it can be read from many threads while a test advances it. It only moves
// forward: `advance` takes an unsigned `Duration`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// A source of time.
///
/// `now` is monotonic (it never goes backwards) and is what durations,
/// deadlines and TTLs are measured with; `wall` is the calendar time, for
/// timestamps that leave the process.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current monotonic instant.
    fn now(&self) -> Instant;

    /// The current wall-clock time.
    fn wall(&self) -> SystemTime;

    /// Time passed since `earlier`, or zero if `earlier` is in the future.
    fn elapsed(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }
}

/// A clock shared between components: `Arc<dyn Clock>`.
pub type SharedClock = Arc<dyn Clock>;

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn wall(&self) -> SystemTime {
        (**self).wall()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn wall(&self) -> SystemTime {
        (**self).wall()
    }
}

/// The real clocks: [`Instant::now`] and [`SystemTime::now`].
///
/// `Instant` is monotonic on every platform Rust supports (the standard
/// library clamps it), unlike a raw TSC read, so it is safe across cores.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    #[must_use]
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to. Clones share the same time.
///
/// Both its monotonic and its wall time advance together with
/// [`advance`](Self::advance); [`set_wall`](Self::set_wall) moves the wall
/// clock alone (as an NTP step would), leaving the monotonic clock untouched.
/// The wall clock starts at 2025-01-01T00:00:00Z unless given another start.
///
/// ```
/// use std::time::Duration;
/// use brisk_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.elapsed(start), Duration::from_secs(90));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    origin: Instant,
    offset_nanos: AtomicU64,
    wall_origin: Mutex<SystemTime>,
}

impl ManualClock {
    /// 2025-01-01T00:00:00Z, the default start of a manual clock's wall time.
    pub const DEFAULT_WALL_START: Duration = Duration::from_secs(1_735_689_600);

    /// A manual clock whose wall time starts at 2025-01-01T00:00:00Z.
    #[must_use]
    pub fn new() -> Self {
        Self::with_wall_start(SystemTime::UNIX_EPOCH + Self::DEFAULT_WALL_START)
    }

    /// A manual clock whose wall time starts at `wall`.
    #[must_use]
    pub fn with_wall_start(wall: SystemTime) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                origin: Instant::now(),
                offset_nanos: AtomicU64::new(0),
                wall_origin: Mutex::new(wall),
            }),
        }
    }

    /// Moves both clocks forward by `by`.
    ///
    /// # Panics
    ///
    /// Panics if the total advance exceeds 584 years.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).expect("ManualClock advance overflows u64 nanoseconds");
        self.inner
            .offset_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| old.checked_add(nanos))
            .expect("ManualClock advanced past 584 years");
    }

    /// Sets the wall clock to `wall` without moving the monotonic clock.
    pub fn set_wall(&self, wall: SystemTime) {
        let mut origin = self
            .inner
            .wall_origin
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *origin = wall.checked_sub(self.offset()).unwrap_or(SystemTime::UNIX_EPOCH);
    }

    /// How far the clock has been advanced since it was made.
    #[must_use]
    pub fn offset(&self) -> Duration {
        Duration::from_nanos(self.inner.offset_nanos.load(Ordering::Acquire))
    }

    /// This clock as a [`SharedClock`] (sharing its time with `self`).
    #[must_use]
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("offset", &self.offset())
            .field("wall", &self.wall())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.origin + self.offset()
    }

    fn wall(&self) -> SystemTime {
        let origin = *self
            .inner
            .wall_origin
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        origin + self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_time() {
        let a = ManualClock::new();
        let b = a.clone();
        let t0 = b.now();
        let w0 = b.wall();
        a.advance(Duration::from_millis(1500));
        assert_eq!(b.now() - t0, Duration::from_millis(1500));
        assert_eq!(b.wall().duration_since(w0).unwrap(), Duration::from_millis(1500));
    }

    #[test]
    fn set_wall_leaves_monotonic_alone() {
        let c = ManualClock::new();
        c.advance(Duration::from_secs(5));
        let t = c.now();
        let target = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        c.set_wall(target);
        assert_eq!(c.wall(), target);
        assert_eq!(c.now(), t);
        c.advance(Duration::from_secs(1));
        assert_eq!(c.wall(), target + Duration::from_secs(1));
    }

    #[test]
    fn shared_clock_is_dyn() {
        let manual = ManualClock::new();
        let shared: SharedClock = manual.shared();
        let t = shared.now();
        manual.advance(Duration::from_secs(3));
        assert_eq!(shared.elapsed(t), Duration::from_secs(3));
        assert!(SystemClock::shared().elapsed(Instant::now()) < Duration::from_secs(60));
    }
}
