//! The invariant of the issue: over any sequence of requests and clock
//! advances, the admitted cost in every window never exceeds its quota.
//!
//! What that means depends on the window's shape (see `Quota`):
//!
//! - a **strict** window of `limit` per `period` admits at most `limit` in
//!   *any* interval `[a, a + period)`: the sliding-window statement, checked
//!   exactly (every interval that starts at an admission, which covers the
//!   worst case);
//! - a **token bucket** (the default, governor's semantics) with burst `b`
//!   admits at most `b + limit × d / period` over any interval of length
//!   `d`, hence at most `limit + b − 1` in an interval `[a, a + period)`.
//!
//! Limiters hold one to three windows of random shapes, costs are weighted
//! (0 to 11), and the manual clock moves by nanoseconds, milliseconds or
//! minutes.

use std::time::Duration;

use brisk_rate_limiter::{Quota, RateLimitError};
use proptest::prelude::*;

use crate::{direct, keyed};

#[derive(Clone, Debug)]
enum Op {
    Check(u64),
    Advance(Duration),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..12).prop_map(Op::Check),
        1 => (0u64..2_000).prop_map(|n| Op::Advance(Duration::from_nanos(n))),
        2 => (0u64..3_000).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
        1 => (0u64..120_000).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
    ]
}

/// One window: a strict window or a token bucket (default or set burst).
fn quota() -> impl Strategy<Value = Quota> {
    (1u64..40, 1u64..300, 0u8..3, any::<u64>()).prop_map(|(limit, secs, shape, b)| {
        let q = Quota::new(limit, Duration::from_secs(secs));
        let burst = 1 + b % limit;
        match shape {
            0 => q.strict(burst),
            1 => q.burst(burst),
            _ => q,
        }
    })
}

/// Strict windows only, for the exact sliding-window statement.
fn strict_quota() -> impl Strategy<Value = Quota> {
    (1u64..40, 1u64..300, any::<u64>())
        .prop_map(|(limit, secs, b)| Quota::new(limit, Duration::from_secs(secs)).strict(1 + b % limit))
}

/// Fails if the admissions (`(time ns, cost)`, in time order) break
/// `quota`'s guarantee.
fn assert_within_quota(admitted: &[(u128, u64)], quota: &Quota) -> Result<(), TestCaseError> {
    let (limit, period) = (u128::from(quota.limit()), quota.period().as_nanos());
    let burst = u128::from(quota.max_burst());
    for (i, &(start, _)) in admitted.iter().enumerate() {
        let mut sum = 0u128;
        for &(t, cost) in &admitted[i..] {
            sum += u128::from(cost);
            let span = t - start;
            if quota.is_strict() {
                // At most `limit` in any interval [start, start + period).
                prop_assert!(
                    span >= period || sum <= limit,
                    "{quota}: {sum} admitted within {:?}",
                    Duration::from_nanos(span as u64)
                );
            } else {
                // sum ≤ burst + limit × span / period, without rounding.
                prop_assert!(
                    sum * period <= burst * period + limit * span,
                    "{quota}: {sum} admitted within {:?}",
                    Duration::from_nanos(span as u64)
                );
                prop_assert!(
                    span >= period || sum < limit + burst,
                    "{quota}: {sum} within a period"
                );
            }
        }
    }
    Ok(())
}

/// Drives a direct limiter with `ops`; returns the admissions.
fn run_direct(quotas: &[Quota], ops: Vec<Op>) -> Result<Vec<(u128, u64)>, TestCaseError> {
    let (l, clock) = direct(quotas.to_vec());
    let mut now = 0u128;
    let mut admitted = Vec::new();
    for op in ops {
        match op {
            Op::Advance(d) => {
                clock.advance(d);
                now += d.as_nanos();
            }
            Op::Check(cost) => {
                let peeked = l.peek(cost);
                let checked = l.check(cost);
                prop_assert_eq!(peeked.is_ok(), checked.is_ok(), "peek and check disagree");
                match checked {
                    Ok(()) => admitted.push((now, cost)),
                    Err(RateLimitError::CostTooLarge { window, .. }) => {
                        prop_assert!(cost > quotas[window].max_burst());
                    }
                    Err(RateLimitError::Limited { retry_after, .. }) => {
                        prop_assert!(retry_after > Duration::ZERO);
                    }
                    Err(other) => prop_assert!(false, "unexpected {other:?}"),
                }
            }
        }
    }
    Ok(admitted)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The statement, exactly: three strict windows, weighted costs,
    /// at most `limit` admitted in any interval of length `period`, for
    /// every window.
    #[test]
    fn strict_windows_never_admit_more_than_their_limit_in_any_period(
        quotas in prop::collection::vec(strict_quota(), 3),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        let admitted = run_direct(&quotas, ops)?;
        for q in &quotas {
            assert_within_quota(&admitted, q)?;
        }
    }

    #[test]
    fn no_window_of_any_shape_admits_more_than_its_bound(
        quotas in prop::collection::vec(quota(), 1..=3),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let admitted = run_direct(&quotas, ops)?;
        for q in &quotas {
            assert_within_quota(&admitted, q)?;
        }
    }

    #[test]
    fn keyed_and_evicted_keys_stay_within_quota(
        quotas in prop::collection::vec(quota(), 1..=3),
        ops in prop::collection::vec((0u8..3, op()), 1..300),
    ) {
        // max_keys 1 per shard at most; keys come and go (idle ones are dropped).
        let (l, clock) = keyed::<u8>(quotas.clone(), 64);
        let mut now = 0u128;
        let mut admitted: [Vec<(u128, u64)>; 3] = Default::default();
        for (key, op) in ops {
            match op {
                Op::Advance(d) => {
                    clock.advance(d);
                    now += d.as_nanos();
                }
                Op::Check(cost) => {
                    if l.check(&key, cost).is_ok() {
                        admitted[usize::from(key)].push((now, cost));
                    }
                }
            }
            l.evict_idle();
        }
        for per_key in &admitted {
            for q in &quotas {
                assert_within_quota(per_key, q)?;
            }
        }
    }
}
