//! `acquire`: FIFO per key, fair to weights, cancel-safe, deadlines.
//!
//! The limiter's clock is a `ManualClock` and tokio's clock is paused
//! (`start_paused`), so waits are computed, not slept.

use std::time::Duration;

use brisk_core::Clock;
use brisk_rate_limiter::{Quota, RateLimitError, UpstreamLimits};
use tokio::task::JoinHandle;

use crate::{direct, keyed};

const S: Duration = Duration::from_secs(1);

/// Spawns `acquire(cost)` and lets it take its place in the queue.
async fn queue(
    l: &brisk_rate_limiter::RateLimiter,
    cost: u64,
) -> JoinHandle<Result<Duration, RateLimitError>> {
    let l = l.clone();
    let handle = tokio::spawn(async move { l.acquire(cost).await });
    tokio::task::yield_now().await;
    handle
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_order() {
    let (l, _clock) = direct([Quota::per_second(1)]);
    let mut handles = Vec::new();
    for _ in 0..5 {
        handles.push(queue(&l, 1).await);
    }
    // A later `check` does not jump the queue.
    assert!(matches!(l.check(1), Err(RateLimitError::Limited { .. })));
    let mut waits = Vec::new();
    for h in handles {
        waits.push(h.await.unwrap().unwrap());
    }
    assert_eq!(waits, [Duration::ZERO, S, 2 * S, 3 * S, 4 * S]);
    assert_eq!(l.stats().waited, 4);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_waiter_leaves_the_queue() {
    let (l, _clock) = direct([Quota::per_second(1)]);
    l.check(1).unwrap();
    let a = queue(&l, 1).await; // ready at 1 s
    let b = queue(&l, 1).await; // ready at 2 s
    b.abort(); // the tail: its slot is given back
    assert!(b.await.unwrap_err().is_cancelled());
    let c = queue(&l, 1).await;
    a.abort(); // not the tail: c keeps its place, nobody overtakes it
    assert!(a.await.unwrap_err().is_cancelled());
    let d = queue(&l, 1).await;
    assert_eq!(c.await.unwrap().unwrap(), 2 * S);
    assert_eq!(d.await.unwrap().unwrap(), 3 * S);
}

#[tokio::test(start_paused = true)]
async fn deadline_fails_at_once_and_spends_nothing() {
    let (l, clock) = direct([Quota::per_second(2).named("rps")]);
    l.check(2).unwrap();
    let deadline = clock.now() + Duration::from_millis(400);
    match l.acquire_until(1, deadline).await {
        Err(RateLimitError::DeadlineExceeded { window, quota, wait }) => {
            assert_eq!(
                (window, quota.name(), wait),
                (0, Some("rps"), Duration::from_millis(500))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.stats().deadline_exceeded, 1);
    let deadline = clock.now() + Duration::from_millis(500);
    assert_eq!(
        l.acquire_until(1, deadline).await.unwrap(),
        Duration::from_millis(500)
    );
    assert!(matches!(
        l.acquire(3).await,
        Err(RateLimitError::CostTooLarge { cost: 3, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn keyed_acquire_is_per_key() {
    let (l, clock) = keyed::<&'static str>([Quota::per_second(1)], 100);
    assert_eq!(l.acquire(&"a", 1).await.unwrap(), Duration::ZERO);
    assert_eq!(l.acquire(&"b", 1).await.unwrap(), Duration::ZERO);
    let l2 = l.clone();
    let a2 = tokio::spawn(async move { l2.acquire(&"a", 1).await });
    tokio::task::yield_now().await;
    assert_eq!(a2.await.unwrap().unwrap(), S);
    let deadline = clock.now();
    assert!(matches!(
        l.acquire_until(&"a", 1, deadline).await,
        Err(RateLimitError::DeadlineExceeded { .. })
    ));
    l.set_override("vip", [Quota::per_second(10)]).unwrap();
    assert_eq!(l.acquire(&"vip", 10).await.unwrap(), Duration::ZERO);
    assert_eq!(l.acquire(&"vip", 5).await.unwrap(), Duration::from_millis(500));
}

/// A mixed workload of cost-1 and cost-10 waiters arriving faster than the
/// limiter lets them through: nobody waits more than 10 × the median wait
/// of its cost (governor's `until_n_ready` starves the cost-10 ones).
#[tokio::test(start_paused = true)]
async fn weighted_waiters_are_not_starved() {
    let (l, clock) = direct([Quota::per_second(20)]);
    let mut rng = fastrand_like(7);
    let mut handles = Vec::new();
    for _ in 0..400 {
        let cost = if rng().is_multiple_of(4) { 10 } else { 1 };
        // Arrivals every 0–60 ms: about 2× the capacity in cost.
        clock.advance(Duration::from_millis(rng() % 61));
        handles.push((cost, queue(&l, cost).await));
    }
    let (mut ones, mut tens) = (Vec::new(), Vec::new());
    for (cost, h) in handles {
        let wait = h.await.unwrap().unwrap();
        if cost == 1 { &mut ones } else { &mut tens }.push(wait);
    }
    for (cost, mut waits) in [(1, ones), (10, tens)] {
        waits.sort();
        let median = waits[waits.len() / 2];
        let max = *waits.last().unwrap();
        assert!(
            median > Duration::ZERO,
            "cost {cost}: the workload must make waiters wait"
        );
        assert!(
            max <= median * 10,
            "cost {cost}: max {max:?} > 10 × median {median:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn upstream_pause_holds_everything_until_reset() {
    let (l, clock) = direct([Quota::per_minute(60)]);
    let now = clock.wall();
    let limits = UpstreamLimits::from_headers(
        [
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "5s"),
        ],
        now,
    );
    assert_eq!(l.apply_upstream(&limits), Some(Duration::from_secs(5)));
    assert_eq!(
        l.check(1).unwrap_err(),
        RateLimitError::Paused {
            retry_after: Duration::from_secs(5)
        }
    );
    // A waiter goes out no sooner than the reset.
    assert_eq!(l.acquire(1).await.unwrap(), Duration::from_secs(5));
    clock.advance(Duration::from_secs(5));
    l.check(1).unwrap();
    assert_eq!(l.stats().upstream_pauses, 1);
}

/// A tiny deterministic generator (xorshift), so the workload is the same
/// every run.
fn fastrand_like(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.max(1);
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
