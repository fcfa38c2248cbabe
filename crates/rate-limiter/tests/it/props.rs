//! The invariant: over any sequence of requests and clock advances, the
//! cost admitted in every window never exceeds its quota.
//!
//! A window of `limit` per `period` (GCRA, as governor) admits at most
//! `limit` at once and `limit` more per `period` after that: over any
//! interval `[a, b]`, admitted cost ≤ `limit + limit × (b − a) / period`.

use std::time::Duration;

use brisk_rate_limiter::{Quota, RateLimitError};
use proptest::prelude::*;

use crate::{direct, keyed};

#[derive(Clone, Debug)]
enum Op {
    Check(u64),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..12).prop_map(Op::Check),
        2 => (0u64..3_000).prop_map(Op::Advance),
        1 => (0u64..120_000).prop_map(Op::Advance),
    ]
}

fn quotas() -> impl Strategy<Value = Vec<Quota>> {
    prop::collection::vec(
        (1u64..40, 1u64..300).prop_map(|(limit, secs)| Quota::new(limit, Duration::from_secs(secs))),
        1..=3,
    )
}

/// Fails if any interval between two admissions admitted more than its bound.
fn assert_within_quota(admitted: &[(u128, u64)], quota: &Quota) -> Result<(), TestCaseError> {
    let (limit, period) = (u128::from(quota.limit()), quota.period().as_nanos());
    for i in 0..admitted.len() {
        let mut sum = 0u128;
        for &(t, cost) in &admitted[i..] {
            sum += u128::from(cost);
            let span = t - admitted[i].0;
            // sum ≤ limit + limit × span / period, without rounding.
            prop_assert!(
                sum * period <= limit * period + limit * span,
                "{quota}: {sum} admitted within {:?}",
                Duration::from_nanos(span as u64)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_window_admits_more_than_its_quota(quotas in quotas(), ops in prop::collection::vec(op(), 1..300)) {
        let (l, clock) = direct(quotas.clone());
        let mut now = 0u128;
        let mut admitted = Vec::new();
        for op in ops {
            match op {
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                    now += u128::from(ms) * 1_000_000;
                }
                Op::Check(cost) => {
                    let peeked = l.peek(cost);
                    let checked = l.check(cost);
                    prop_assert_eq!(peeked.is_ok(), checked.is_ok(), "peek and check disagree");
                    match checked {
                        Ok(()) => admitted.push((now, cost)),
                        Err(RateLimitError::CostTooLarge { window, .. }) => {
                            prop_assert!(cost > quotas[window].limit());
                        }
                        Err(RateLimitError::Limited { retry_after, .. }) => {
                            prop_assert!(retry_after > Duration::ZERO);
                        }
                        Err(other) => prop_assert!(false, "unexpected {other:?}"),
                    }
                }
            }
        }
        for q in &quotas {
            assert_within_quota(&admitted, q)?;
        }
    }

    #[test]
    fn keyed_and_evicted_keys_stay_within_quota(
        quotas in quotas(),
        ops in prop::collection::vec((0u8..3, op()), 1..300),
    ) {
        // max_keys 1 per shard at most; keys come and go (idle ones are dropped).
        let (l, clock) = keyed::<u8>(quotas.clone(), 64);
        let mut now = 0u128;
        let mut admitted: [Vec<(u128, u64)>; 3] = Default::default();
        for (key, op) in ops {
            match op {
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                    now += u128::from(ms) * 1_000_000;
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
