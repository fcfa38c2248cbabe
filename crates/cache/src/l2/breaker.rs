//! The circuit breaker in front of Redis.
//!
//! Closed: every call goes through; `threshold` consecutive failures open
//! it. Open: no call goes through until `backoff.ceiling(trips)` has passed
//! (on the cache's clock); then one call at a time goes through per period
//! (half-open). A success closes it; a failure re-opens it for a longer
//! period.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use brisk_core::{Backoff, SharedClock};

#[derive(Debug)]
struct State {
    failures: u32,
    /// While open: when the next trial call may go through.
    open_until: Option<Instant>,
    /// Consecutive openings without a success in between.
    openings: u32,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    clock: SharedClock,
    threshold: u32,
    backoff: Backoff,
    state: Mutex<State>,
    /// A fast path: closed breakers take no lock.
    open: AtomicBool,
    trips: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(clock: SharedClock, threshold: u32, backoff: Backoff) -> Self {
        Self {
            clock,
            threshold,
            backoff,
            state: Mutex::new(State {
                failures: 0,
                open_until: None,
                openings: 0,
            }),
            open: AtomicBool::new(false),
            trips: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a call may go through now.
    pub(crate) fn allow(&self) -> bool {
        if !self.open.load(Relaxed) {
            return true;
        }
        let mut s = self.lock();
        match s.open_until {
            None => true,
            Some(until) => {
                let now = self.clock.now();
                if now < until {
                    return false;
                }
                // Half-open: this call is the trial; the next one waits
                // another period unless this one succeeds.
                s.open_until = Some(now + self.backoff.ceiling(s.openings.saturating_sub(1)));
                true
            }
        }
    }

    pub(crate) fn success(&self) {
        if !self.open.load(Relaxed) && self.lock().failures == 0 {
            return;
        }
        let mut s = self.lock();
        s.failures = 0;
        s.open_until = None;
        s.openings = 0;
        self.open.store(false, Relaxed);
    }

    pub(crate) fn failure(&self) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        if s.open_until.is_some() || s.failures >= self.threshold {
            s.open_until = Some(self.clock.now() + self.backoff.ceiling(s.openings));
            s.openings = s.openings.saturating_add(1);
            self.open.store(true, Relaxed);
            self.trips.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Relaxed) && self.lock().open_until.is_some_and(|u| self.clock.now() < u)
    }

    pub(crate) fn trips(&self) -> u64 {
        self.trips.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use brisk_core::ManualClock;

    use super::*;

    fn breaker(clock: &ManualClock) -> Breaker {
        let backoff = Backoff::builder()
            .base(Duration::from_secs(1))
            .cap(Duration::from_secs(8))
            .build()
            .unwrap();
        Breaker::new(clock.shared(), 2, backoff)
    }

    #[test]
    fn opens_after_the_threshold_and_recovers_after_the_backoff() {
        let clock = ManualClock::new();
        let b = breaker(&clock);
        b.failure();
        assert!(b.allow(), "one failure is under the threshold");
        b.success();
        b.failure();
        assert!(b.allow(), "a success reset the count");
        b.failure();
        assert!(!b.allow(), "two consecutive failures open it");
        assert!(b.is_open());
        assert_eq!(b.trips(), 1);
        clock.advance(Duration::from_millis(999));
        assert!(!b.allow());
        clock.advance(Duration::from_millis(1));
        assert!(b.allow(), "the trial call");
        assert!(!b.allow(), "only one trial per period");
        b.failure();
        assert_eq!(b.trips(), 2);
        clock.advance(Duration::from_secs(1));
        assert!(!b.allow(), "the second opening lasts 2 s");
        clock.advance(Duration::from_secs(1));
        assert!(b.allow());
        b.success();
        assert!(!b.is_open());
        assert!(b.allow() && b.allow(), "closed again");
    }
}
