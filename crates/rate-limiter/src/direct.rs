//! The builder, and the direct (unkeyed) limiter.

use std::borrow::Cow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use brisk_core::{ConfigError, SharedClock, StatsReport, StatsSource};

use crate::gcra::{self, Reserved};
use crate::keyed::KeyedRateLimiter;
use crate::quota::{Params, QuotaSet};
use crate::shared::Shared;
use crate::{Quota, RateLimitError, RateLimiterStats, UpstreamLimits};

/// Builds a [`RateLimiter`] ([`build`](Self::build)) or a
/// [`KeyedRateLimiter`] ([`build_keyed`](Self::build_keyed)).
///
/// ```
/// use brisk_rate_limiter::{Quota, RateLimiter};
///
/// let per_client = RateLimiter::builder()
///     .quota(Quota::per_minute(100))
///     .quota(Quota::per_hour(1_000))
///     .quota(Quota::per_day(10_000))
///     .max_keys(100_000)
///     .build_keyed::<String>()?;
/// per_client.check(&"10.0.0.7".to_owned(), 1)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RateLimiterBuilder {
    quotas: Vec<Quota>,
    clock: Option<SharedClock>,
    max_keys: usize,
    name: Cow<'static, str>,
}

impl Default for RateLimiterBuilder {
    fn default() -> Self {
        Self {
            quotas: Vec::new(),
            clock: None,
            max_keys: 1_000_000,
            name: Cow::Borrowed("default"),
        }
    }
}

impl RateLimiterBuilder {
    /// Adds a window. Every request must pass all of them. At least one is
    /// required; none by default.
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quotas.push(quota);
        self
    }

    /// Adds several windows.
    pub fn quotas(mut self, quotas: impl IntoIterator<Item = Quota>) -> Self {
        self.quotas.extend(quotas);
        self
    }

    /// The clock windows are measured with. Default: the monotonic
    /// [`MonotonicCoarseClock`](crate::MonotonicCoarseClock)
    /// (`CLOCK_MONOTONIC_COARSE` on Linux: a few ns a read, kernel-tick
    /// resolution; `Instant` elsewhere), never a raw TSC read. For
    /// `Instant`'s precision pass [`SystemClock::shared()`](brisk_core::SystemClock::shared); tests pass a
    /// [`ManualClock`](brisk_core::ManualClock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Keyed limiters only: the most keys that keep state at once. Default
    /// 1,000,000; must be at least 1. Idle keys (whose windows are full
    /// again) are dropped as new keys arrive, which changes no decision;
    /// past the maximum, the keys closest to idle are dropped.
    pub fn max_keys(mut self, max: usize) -> Self {
        self.max_keys = max;
        self
    }

    /// A name for the stats' `limiter` label. Default `"default"`.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Checks the quotas and builds a direct limiter.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `quotas` (none given) or `quotas[i].limit` /
    /// `quotas[i].period` (zero, or out of range).
    pub fn build(self) -> Result<RateLimiter, ConfigError> {
        let set = QuotaSet::new(self.quotas, "quotas")?;
        let tats = (0..set.len()).map(|_| AtomicU64::new(0)).collect();
        let single = match &*set.params {
            [p] => Some(*p),
            _ => None,
        };
        Ok(RateLimiter {
            inner: Arc::new(Inner {
                single,
                set,
                tats,
                shared: Shared::new(self.name, self.clock),
            }),
        })
    }

    /// Checks the quotas and builds a limiter keyed by `K`.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), and a [`ConfigError`] naming `max_keys`
    /// if it is zero.
    pub fn build_keyed<K: Hash + Eq + Clone>(self) -> Result<KeyedRateLimiter<K>, ConfigError> {
        if self.max_keys == 0 {
            return Err(ConfigError::new("max_keys", "must be at least 1"));
        }
        let set = QuotaSet::new(self.quotas, "quotas")?;
        Ok(KeyedRateLimiter::new(
            set,
            Shared::new(self.name, self.clock),
            self.max_keys,
        ))
    }
}

/// A limiter with one state for all callers: an upstream API's budget, a
/// process-wide cap. Cheap to clone; clones share the state.
///
/// ```
/// use std::time::Duration;
/// use brisk_core::ManualClock;
/// use brisk_rate_limiter::{Quota, RateLimiter};
///
/// let clock = ManualClock::new();
/// let limiter = RateLimiter::builder()
///     .quota(Quota::per_minute(20))
///     .quota(Quota::per_hour(1_000))
///     .clock(clock.shared())
///     .build()?;
/// for _ in 0..20 {
///     limiter.check(1)?;
/// }
/// assert!(limiter.check(1).is_err());
/// clock.advance(Duration::from_secs(3));
/// limiter.check(1)?; // one request comes back every 3 s
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    /// The one window's parameters when there is only one: `check`'s fast
    /// path (one compare, one CAS loop on the TAT, as governor).
    single: Option<Params>,
    set: QuotaSet,
    tats: Box<[AtomicU64]>,
    shared: Shared,
}

impl RateLimiter {
    /// A builder; see [`RateLimiterBuilder`] for the defaults.
    pub fn builder() -> RateLimiterBuilder {
        RateLimiterBuilder::default()
    }

    /// Spends `cost` on every window if all have room; otherwise spends
    /// nothing and says which window rejected and when to retry.
    ///
    /// A cost of 0 always passes.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`], [`RateLimitError::Paused`], or
    /// [`RateLimitError::CostTooLarge`] when `cost` exceeds a window's burst.
    #[inline]
    pub fn check(&self, cost: u64) -> Result<(), RateLimitError> {
        let inner = &*self.inner;
        let now = inner.shared.now();
        inner.shared.check_pause(now)?;
        if let (Some(p), [tat]) = (&inner.single, &*inner.tats) {
            // One window: no all-or-nothing bookkeeping, no loop over windows.
            return match gcra::spend_one(p, tat, now, cost) {
                Ok(()) => Ok(()),
                Err(deny) => Err(inner.fail(deny, cost)),
            };
        }
        gcra::check_cost(&inner.set.params, cost)
            .and_then(|()| gcra::check(&inner.set.params, &inner.tats, now, cost))
            .map_err(|deny| inner.fail(deny, cost))
    }

    /// Whether [`check`](Self::check) would pass now, without spending.
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    pub fn peek(&self, cost: u64) -> Result<(), RateLimitError> {
        let inner = &*self.inner;
        let now = inner.shared.now();
        inner.shared.check_pause(now)?;
        gcra::check_cost(&inner.set.params, cost)
            .and_then(|()| gcra::peek(&inner.set.params, &inner.tats, now, cost))
            .map_err(|deny| RateLimitError::from_deny(deny, &inner.set.quotas, cost))
    }

    /// Gives back `cost` on every window: cost spent but not used, such as
    /// the difference between estimated and actual tokens. A window never
    /// holds more than its burst.
    pub fn refund(&self, cost: u64) {
        gcra::refund(&self.inner.set.params, &self.inner.tats, cost);
    }

    /// Waits until `cost` can pass every window, then spends it; returns how
    /// long it waited.
    ///
    /// Callers are served first come, first served: the cost is reserved
    /// when the future is first polled, so a later caller (of `acquire` or
    /// [`check`](Self::check)) never goes first, and a heavy request waits in
    /// proportion to its cost instead of starving. Cancel-safe: dropping the
    /// future gives the reservation back where nobody has queued behind it;
    /// otherwise its slot stays spent, so nobody queued is overtaken. It
    /// sleeps on tokio's timer, for the time the limiter's clock says.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::CostTooLarge`] at once when `cost` exceeds a
    /// window's burst.
    pub async fn acquire(&self, cost: u64) -> Result<Duration, RateLimitError> {
        self.acquire_inner(cost, None).await
    }

    /// Like [`acquire`](Self::acquire), but fails at once, spending
    /// nothing, when the wait would end after `deadline` (an instant of the
    /// limiter's clock).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::DeadlineExceeded`], with the window and the wait it
    /// would need, or [`RateLimitError::CostTooLarge`].
    pub async fn acquire_until(&self, cost: u64, deadline: Instant) -> Result<Duration, RateLimitError> {
        self.acquire_inner(cost, Some(deadline)).await
    }

    async fn acquire_inner(&self, cost: u64, deadline: Option<Instant>) -> Result<Duration, RateLimitError> {
        let inner = &*self.inner;
        let now = inner.shared.now();
        let deadline = deadline.map(|d| inner.shared.nanos_of(d));
        let params = &inner.set.params;
        let reserved = gcra::check_cost(params, cost)
            .and_then(|()| {
                gcra::reserve(
                    params,
                    &inner.tats,
                    now,
                    cost,
                    inner.shared.paused_until(),
                    deadline,
                )
            })
            .map_err(|deny| inner.fail(deny, cost))?;
        let wait = reserved.ready.saturating_sub(now);
        if wait == 0 {
            return Ok(Duration::ZERO);
        }
        inner
            .shared
            .waited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut guard = CancelOnDrop {
            params,
            tats: &inner.tats,
            reserved: Some(reserved),
            cost,
        };
        tokio::time::sleep(Duration::from_nanos(wait)).await;
        guard.reserved = None;
        Ok(Duration::from_nanos(wait))
    }

    /// Pauses the limiter for `d`: nothing passes before then, and waiters
    /// queue behind it. A shorter pause never cuts a longer one short.
    pub fn pause_for(&self, d: Duration) {
        self.inner.shared.pause_for(d);
    }

    /// Slows the limiter to what an upstream API said in its response
    /// headers: when `remaining` reached 0, nothing passes before `reset`;
    /// a `Retry-After` pauses for that long. Returns the pause applied, if
    /// any. Malformed values were ignored by the parser and are counted in
    /// [`RateLimiterStats::upstream_malformed`].
    #[allow(clippy::must_use_candidate)] // the pause is applied either way; its length is for logs
    pub fn apply_upstream(&self, limits: &UpstreamLimits) -> Option<Duration> {
        self.inner.shared.apply_upstream(limits)
    }

    /// The windows, in order.
    #[must_use]
    pub fn quotas(&self) -> &[Quota] {
        &self.inner.set.quotas
    }

    /// The limiter's clock.
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        self.inner.shared.clock()
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> RateLimiterStats {
        self.inner.shared.stats(0, 0, 0)
    }
}

impl Inner {
    #[cold]
    fn fail(&self, deny: gcra::Deny, cost: u64) -> RateLimitError {
        let err = RateLimitError::from_deny(deny, &self.set.quotas, cost);
        self.shared.note(&err);
        err
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.inner.shared.name)
            .field("quotas", &self.inner.set.quotas)
            .finish_non_exhaustive()
    }
}

impl StatsSource for RateLimiter {
    fn report_stats(&self, out: &mut StatsReport) {
        self.stats().report(self.inner.shared.name.clone(), out);
    }
}

/// Cancels a reservation if the waiting future is dropped before its time.
pub(crate) struct CancelOnDrop<'a> {
    pub(crate) params: &'a [Params],
    pub(crate) tats: &'a [AtomicU64],
    pub(crate) reserved: Option<Reserved>,
    pub(crate) cost: u64,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(reserved) = &self.reserved {
            gcra::cancel(self.params, self.tats, reserved, self.cost);
        }
    }
}
