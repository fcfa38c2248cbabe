//! What every limiter holds besides its windows: the clock and its epoch,
//! the upstream pause, counters and stats.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use brisk_core::{SharedClock, StatsReport};

use crate::clock::MonotonicCoarseClock;
use crate::{RateLimitError, UpstreamLimits};

/// Where a limiter reads the time: the default clock read directly (no
/// virtual call, no `Instant` arithmetic: a few ns on the hot path), or any
/// clock the builder was given.
#[derive(Debug)]
enum Time {
    /// The default; `epoch` is its reading when the limiter was built.
    Coarse { clock: MonotonicCoarseClock, epoch: u64 },
    /// A clock from the builder.
    Given,
}

/// Clock, epoch, pause and counters of one limiter.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Nanoseconds since `epoch` before which nothing passes (upstream said
    /// so). First, beside `time`: both are read on every decision.
    paused_until: AtomicU64,
    time: Time,
    pub(crate) name: Cow<'static, str>,
    clock: SharedClock,
    epoch: Instant,
    pub(crate) limited: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) deadline_exceeded: AtomicU64,
    pub(crate) waited: AtomicU64,
    upstream_pauses: AtomicU64,
    upstream_malformed: AtomicU64,
}

impl Shared {
    /// With `clock: None`, the default [`MonotonicCoarseClock`].
    pub(crate) fn new(name: Cow<'static, str>, clock: Option<SharedClock>) -> Self {
        let (time, clock, epoch) = match clock {
            Some(clock) => {
                let epoch = clock.now();
                (Time::Given, clock, epoch)
            }
            None => {
                let coarse = MonotonicCoarseClock::global();
                let nanos = coarse.nanos();
                let time = Time::Coarse {
                    clock: coarse,
                    epoch: nanos,
                };
                (time, MonotonicCoarseClock::shared(), coarse.instant_of(nanos))
            }
        };
        Self {
            time,
            name,
            clock,
            epoch,
            paused_until: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
            deadline_exceeded: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            upstream_pauses: AtomicU64::new(0),
            upstream_malformed: AtomicU64::new(0),
        }
    }

    /// Now, in nanoseconds since the epoch.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match &self.time {
            Time::Coarse { clock, epoch } => clock.nanos().saturating_sub(*epoch),
            Time::Given => self.nanos_of(self.clock.now()),
        }
    }

    /// `at`, in nanoseconds since the epoch (0 if before it).
    #[inline]
    pub(crate) fn nanos_of(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX / 4)
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Fails while an upstream pause lasts.
    #[inline]
    pub(crate) fn check_pause(&self, now: u64) -> Result<(), RateLimitError> {
        let until = self.paused_until.load(Relaxed);
        if until > now {
            self.limited.fetch_add(1, Relaxed);
            return Err(RateLimitError::Paused {
                retry_after: Duration::from_nanos(until - now),
            });
        }
        Ok(())
    }

    /// The instant (ns) before which nothing passes.
    pub(crate) fn paused_until(&self) -> u64 {
        self.paused_until.load(Relaxed)
    }

    /// Pauses everything for `d` from now (never shortens a longer pause).
    pub(crate) fn pause_for(&self, d: Duration) {
        let until = self
            .now()
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 4));
        self.paused_until.fetch_max(until, Relaxed);
        self.upstream_pauses.fetch_add(1, Relaxed);
    }

    /// Applies what upstream said; returns the pause, if one was needed.
    pub(crate) fn apply_upstream(&self, limits: &UpstreamLimits) -> Option<Duration> {
        self.upstream_malformed
            .fetch_add(u64::from(limits.malformed()), Relaxed);
        let pause = limits.pause()?;
        self.pause_for(pause);
        Some(pause)
    }

    pub(crate) fn stats(&self, keys: usize, evicted_idle: u64, evicted_active: u64) -> RateLimiterStats {
        RateLimiterStats {
            limited: self.limited.load(Relaxed),
            too_large: self.too_large.load(Relaxed),
            deadline_exceeded: self.deadline_exceeded.load(Relaxed),
            waited: self.waited.load(Relaxed),
            keys,
            evicted_idle,
            evicted_active,
            upstream_pauses: self.upstream_pauses.load(Relaxed),
            upstream_malformed: self.upstream_malformed.load(Relaxed),
        }
    }

    pub(crate) fn note(&self, err: &RateLimitError) {
        let counter = match err {
            RateLimitError::CostTooLarge { .. } => &self.too_large,
            RateLimitError::DeadlineExceeded { .. } => &self.deadline_exceeded,
            _ => &self.limited,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// A snapshot of a limiter's counters, from `stats()`.
///
/// Admissions are not counted: a shared counter bumped on every decision
/// would cost more than the decision (the caller counts what it sends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimiterStats {
    /// Requests refused because a window had no room, or a pause lasted.
    pub limited: u64,
    /// Requests refused because their cost exceeds a window's burst.
    pub too_large: u64,
    /// `acquire_until` calls refused because the wait would pass the deadline.
    pub deadline_exceeded: u64,
    /// `acquire` calls that had to wait.
    pub waited: u64,
    /// Keys with state now (0 for a direct limiter).
    pub keys: usize,
    /// Keys dropped because their windows were full again (no decision changes).
    pub evicted_idle: u64,
    /// Keys dropped while not idle, because `max_keys` was reached.
    pub evicted_active: u64,
    /// Pauses applied from upstream responses.
    pub upstream_pauses: u64,
    /// Upstream header values that could not be parsed (and were ignored).
    pub upstream_malformed: u64,
}

impl RateLimiterStats {
    /// Writes these values as `brisk_rate_limiter_*` metrics labelled
    /// `limiter="<name>"`.
    pub(crate) fn report(&self, name: Cow<'static, str>, out: &mut StatsReport) {
        let counters: [(&'static str, &'static str, u64); 7] = [
            (
                "brisk_rate_limiter_limited_total",
                "Requests refused for lack of room",
                self.limited,
            ),
            (
                "brisk_rate_limiter_too_large_total",
                "Requests whose cost can never pass",
                self.too_large,
            ),
            (
                "brisk_rate_limiter_deadline_exceeded_total",
                "Waits refused because they would pass their deadline",
                self.deadline_exceeded,
            ),
            (
                "brisk_rate_limiter_waited_total",
                "Acquires that waited",
                self.waited,
            ),
            (
                "brisk_rate_limiter_evicted_total",
                "Keys evicted (idle or at max_keys)",
                self.evicted_idle + self.evicted_active,
            ),
            (
                "brisk_rate_limiter_upstream_pauses_total",
                "Pauses applied from upstream limits",
                self.upstream_pauses,
            ),
            (
                "brisk_rate_limiter_upstream_malformed_total",
                "Upstream rate limit header values ignored as malformed",
                self.upstream_malformed,
            ),
        ];
        for (metric, help, value) in counters {
            let _ = out.counter(metric, help, value).label("limiter", name.clone());
        }
        #[allow(clippy::cast_precision_loss)] // a key count fits f64 exactly below 2^53
        let keys = self.keys as f64;
        let _ = out
            .gauge("brisk_rate_limiter_keys", "Keys with rate limit state", keys)
            .label("limiter", name);
    }
}
