//! brisk-rate-limiter's integration tests, through the public API. Every
//! window is driven by a `ManualClock`; nothing sleeps.

mod adaptive;
#[cfg(feature = "redis")]
mod distributed;
mod keyed;
#[cfg(feature = "tower")]
mod layer;
mod props;
mod quotas;
mod waiting;

use brisk_core::ManualClock;
use brisk_rate_limiter::{KeyedRateLimiter, Quota, RateLimiter};

/// A direct limiter with `quotas` on a fresh manual clock.
fn direct(quotas: impl IntoIterator<Item = Quota>) -> (RateLimiter, ManualClock) {
    let clock = ManualClock::new();
    let limiter = RateLimiter::builder()
        .quotas(quotas)
        .clock(clock.shared())
        .build()
        .expect("valid quotas");
    (limiter, clock)
}

/// A keyed limiter with `quotas` on a fresh manual clock.
fn keyed<K: std::hash::Hash + Eq + Clone>(
    quotas: impl IntoIterator<Item = Quota>,
    max_keys: usize,
) -> (KeyedRateLimiter<K>, ManualClock) {
    let clock = ManualClock::new();
    let limiter = RateLimiter::builder()
        .quotas(quotas)
        .clock(clock.shared())
        .max_keys(max_keys)
        .build_keyed()
        .expect("valid quotas");
    (limiter, clock)
}
