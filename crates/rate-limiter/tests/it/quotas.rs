//! Direct limiters: windows, weighted costs, peek, refund, errors.

use std::time::Duration;

use brisk_core::{Clock, StatsReport};
use brisk_rate_limiter::{Quota, RateLimitError, RateLimiter};

use crate::direct;

#[test]
fn one_window_bursts_then_refills_at_its_rate() {
    let (l, clock) = direct([Quota::per_minute(20)]);
    for _ in 0..20 {
        l.check(1).unwrap();
    }
    let err = l.check(1).unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(err.window(), Some(0));
    clock.advance(Duration::from_millis(2_999));
    assert!(l.check(1).is_err());
    clock.advance(Duration::from_millis(1));
    l.check(1).unwrap();
    assert!(l.check(1).is_err());
}

#[test]
fn all_or_nothing_across_windows() {
    // 5 an hour, 1 a second: the second window rejects the extra attempts,
    // and none of them may spend the hour window.
    let (l, clock) = direct([
        Quota::per_hour(5).named("hour"),
        Quota::per_second(1).named("second"),
    ]);
    for round in 0..5 {
        l.check(1).unwrap_or_else(|e| panic!("round {round}: {e}"));
        if round == 4 {
            break;
        }
        for _ in 0..100 {
            match l.check(1).unwrap_err() {
                RateLimitError::Limited {
                    window,
                    quota,
                    retry_after,
                } => {
                    assert_eq!((window, quota.name()), (1, Some("second")));
                    assert_eq!(retry_after, Duration::from_secs(1));
                }
                other => panic!("{other:?}"),
            }
        }
        clock.advance(Duration::from_secs(1));
    }
    // Five passed in four seconds, so the hour window was never spent by
    // the 400 rejected attempts; now it is out (one more comes back 12
    // minutes after the first).
    match l.check(1).unwrap_err() {
        RateLimitError::Limited {
            window, retry_after, ..
        } => {
            assert_eq!(window, 0);
            assert_eq!(retry_after, Duration::from_secs(720 - 4));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rejection_reports_the_longest_wait() {
    let (l, _clock) = direct([Quota::per_second(2), Quota::per_minute(2)]);
    l.check(2).unwrap();
    let err = l.check(1).unwrap_err();
    assert_eq!(err.window(), Some(1), "the minute window needs the longer wait");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
}

#[test]
fn weighted_costs_count_units() {
    // $10 an hour in micro-dollars.
    let (l, clock) = direct([Quota::per_hour(10_000_000).named("usd")]);
    l.check(6_000_000).unwrap();
    l.check(4_000_000).unwrap();
    assert!(matches!(l.check(1), Err(RateLimitError::Limited { .. })));
    clock.advance(Duration::from_secs(360)); // a tenth of the hour: $1 back
    l.check(1_000_000).unwrap();
    assert!(l.check(1).is_err());
    l.check(0).unwrap(); // zero cost always passes
}

#[test]
fn cost_above_a_limit_is_an_immediate_error() {
    let (l, _clock) = direct([Quota::per_minute(100), Quota::per_second(10).named("second")]);
    let err = l.check(11).unwrap_err();
    assert_eq!(
        err,
        RateLimitError::CostTooLarge {
            cost: 11,
            window: 1,
            quota: Quota::per_second(10).named("second")
        }
    );
    assert_eq!(err.retry_after(), None);
    assert_eq!(
        err.to_string(),
        "a cost of 11 can never pass window 1 (second (10 per 1s)): it exceeds the burst"
    );
    l.check(10).unwrap(); // nothing was spent by the refusal
    assert_eq!(l.stats().too_large, 1);
}

#[test]
fn peek_spends_nothing() {
    let (l, _clock) = direct([Quota::per_minute(3)]);
    for _ in 0..10 {
        l.peek(3).unwrap();
    }
    l.check(3).unwrap();
    assert_eq!(
        l.peek(1).unwrap_err().retry_after(),
        Some(Duration::from_secs(20))
    );
    assert!(matches!(l.peek(4), Err(RateLimitError::CostTooLarge { .. })));
}

#[test]
fn refund_gives_back_unused_cost_but_never_above_the_limit() {
    // Estimated 1,000 tokens, used 300: 700 come back.
    let (l, _clock) = direct([Quota::per_minute(1_000)]);
    l.check(1_000).unwrap();
    assert!(l.check(1).is_err());
    l.refund(700);
    l.check(700).unwrap();
    assert!(l.check(1).is_err());
    l.refund(5_000); // more than was spent: the window is full, no more
    l.check(1_000).unwrap();
    assert!(l.check(1).is_err());
}

#[test]
fn builder_errors_name_the_field() {
    let e = RateLimiter::builder().build().unwrap_err();
    assert_eq!(e.field(), "quotas");
    let e = RateLimiter::builder()
        .quota(Quota::per_minute(10))
        .quota(Quota::per_hour(0))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "quotas[1].limit");
    let e = RateLimiter::builder()
        .quota(Quota::new(1, Duration::ZERO))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "quotas[0].period");
    let e = RateLimiter::builder()
        .quota(Quota::per_second(1))
        .max_keys(0)
        .build_keyed::<u64>()
        .unwrap_err();
    assert_eq!(e.field(), "max_keys");
}

#[test]
fn clones_share_state_and_stats_are_reported() {
    let (l, _clock) = direct([Quota::per_second(2)]);
    let l2 = l.clone();
    l.check(1).unwrap();
    l2.check(1).unwrap();
    assert!(l.check(1).is_err());
    assert!(l2.check(1).is_err());
    assert_eq!(l.stats().limited, 2);
    let report = StatsReport::collect(&l);
    assert_eq!(report.value("brisk_rate_limiter_limited_total"), Some(2.0));
    assert_eq!(report.value("brisk_rate_limiter_keys"), Some(0.0));
}

#[test]
fn a_strict_window_never_admits_more_than_its_limit_in_a_period() {
    // 10 a second, strict, burst 10: 10 at once, then nothing for a second
    // (a token bucket would give one back after 100 ms: 11 in 100 ms).
    let (l, clock) = direct([Quota::per_second(10).strict(10).named("s")]);
    l.check(4).unwrap();
    l.check(6).unwrap();
    clock.advance(Duration::from_millis(999));
    match l.check(1) {
        Err(RateLimitError::Limited { retry_after, .. }) => assert_eq!(retry_after, Duration::from_millis(1)),
        other => panic!("{other:?}"),
    }
    clock.advance(Duration::from_millis(1));
    l.check(1).unwrap();
    assert!(l.check(1).is_err());

    // Burst 1: evenly spaced, one every 100 ms; larger costs never pass.
    let (l, clock) = direct([Quota::per_second(10).strict(1)]);
    for _ in 0..10 {
        l.check(1).unwrap();
        assert!(l.check(1).is_err());
        clock.advance(Duration::from_millis(100));
    }
    assert!(matches!(
        l.check(2),
        Err(RateLimitError::CostTooLarge { window: 0, .. })
    ));

    // Burst 4 of 10: 4 at once, then 7 a second, and never 11 in a second.
    let (l, clock) = direct([Quota::per_second(10).strict(4)]);
    l.check(4).unwrap();
    let mut admitted = 4;
    for _ in 0..99 {
        clock.advance(Duration::from_millis(10));
        admitted += u64::from(l.check(1).is_ok());
    }
    assert_eq!(admitted, 10, "4 at once and 6 more within the second");
}

#[test]
fn a_token_bucket_burst_keeps_the_rate() {
    let (l, clock) = direct([Quota::per_second(10).burst(3)]);
    l.check(3).unwrap();
    assert!(l.check(1).is_err());
    assert!(matches!(l.check(4), Err(RateLimitError::CostTooLarge { .. })));
    clock.advance(Duration::from_millis(100));
    l.check(1).unwrap();
    let e = RateLimiter::builder()
        .quota(Quota::per_minute(5).burst(6))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "quotas[0].burst");
}

#[test]
fn default_clock_is_the_coarse_monotonic_clock() {
    let l = RateLimiter::builder()
        .quota(Quota::per_second(1))
        .build()
        .unwrap();
    // The same time base as `Instant` (behind it by less than one tick,
    // never ahead), and never backwards.
    let t = l.clock().now();
    let precise = std::time::Instant::now();
    assert!(t <= precise);
    assert!(l.clock().now() >= t);
    l.check(1).unwrap();
    assert!(matches!(l.check(1), Err(RateLimitError::Limited { .. })));
}
