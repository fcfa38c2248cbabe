use std::time::{Duration, SystemTime};

use brisk_core::{Backoff, parse_retry_after};
use proptest::prelude::*;

fn policy(base_ms: u64, cap_ms: u64, attempts: u32, seed: u64) -> Backoff {
    Backoff::builder()
        .base(Duration::from_millis(base_ms))
        .cap(Duration::from_millis(cap_ms))
        .max_attempts(attempts)
        .seed(seed)
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn delays_stay_within_ceiling_and_cap(
        base_ms in 1u64..1_000,
        extra_ms in 0u64..100_000,
        attempts in 1u32..40,
        seed: u64,
    ) {
        let b = policy(base_ms, base_ms + extra_ms, attempts, seed);
        let mut r = b.retries();
        let mut n = 0u32;
        while let Some(d) = r.next_delay() {
            prop_assert!(d <= b.ceiling(n), "retry {n}: {d:?} > {:?}", b.ceiling(n));
            prop_assert!(d <= b.cap());
            n += 1;
        }
        // Exactly max_attempts - 1 retries, then it stays exhausted.
        prop_assert_eq!(n, attempts - 1);
        prop_assert_eq!(r.next_delay(), None);
        prop_assert_eq!(r.attempts(), attempts);
    }

    #[test]
    fn ceiling_is_monotonic_and_capped(base_ms in 1u64..10_000, extra_ms in 0u64..1_000_000, retry in 0u32..200) {
        let b = policy(base_ms, base_ms + extra_ms, 3, 0);
        prop_assert!(b.ceiling(retry) <= b.ceiling(retry + 1));
        prop_assert!(b.ceiling(retry) <= b.cap());
        prop_assert!(b.ceiling(0) == b.base());
    }

    #[test]
    fn same_seed_same_delays(seed: u64) {
        let b = policy(10, 10_000, 10, seed);
        let a: Vec<_> = std::iter::from_fn({ let mut r = b.retries(); move || r.next_delay() }).collect();
        let c: Vec<_> = std::iter::from_fn({ let mut r = b.retries(); move || r.next_delay() }).collect();
        prop_assert_eq!(a, c);
    }

    #[test]
    fn retry_after_is_never_shortened(hint_ms in 0u64..60_000, seed: u64) {
        let b = policy(10, 1_000, 5, seed);
        let mut r = b.retries();
        let hint = Duration::from_millis(hint_ms);
        let d = r.next_delay_after(Some(hint)).unwrap();
        prop_assert!(d >= hint && d <= hint + hint / 10);
    }
}

#[test]
fn jitter_spreads_delays() {
    // Full jitter: over many sequences the first delay covers its range.
    let b = Backoff::builder()
        .base(Duration::from_millis(1000))
        .build()
        .unwrap();
    let firsts: Vec<Duration> = (0..200).map(|_| b.retries().next_delay().unwrap()).collect();
    let low = firsts.iter().filter(|d| **d < Duration::from_millis(250)).count();
    let high = firsts.iter().filter(|d| **d > Duration::from_millis(750)).count();
    assert!(low > 10 && high > 10, "low {low}, high {high}");
}

#[test]
fn retry_after_parsing() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    assert_eq!(parse_retry_after(" 5 ", now), Some(Duration::from_secs(5)));
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("-1", now), None);
    assert_eq!(parse_retry_after("", now), None);
}
