//! A lock-free log-linear histogram of durations for the wait and
//! execution percentiles.
//
// Design: HdrHistogram's bucketing with 4 sub-bucket bits and one
// `AtomicU64` per bucket, so recording is two shifts and one relaxed
// `fetch_add` (no lock on the hot path; hdrhistogram's own type needs
// `&mut` and so a mutex shared by every worker). Values below 16 ns are
// exact; above, a bucket spans 1/16 of its lower bound, so a reported
// percentile is the bucket's highest value: never below the true one, and
// above it by less than 6.25 %. 976 buckets cover all of `u64` nanoseconds
// (7.8 KiB per histogram).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// Per-bucket counts of durations in nanoseconds.
#[derive(Debug)]
pub(crate) struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Bucket of `v`.
fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return usize::try_from(v).unwrap_or(0);
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    let top = usize::try_from(v >> shift).unwrap_or(SUB) - SUB;
    (shift as usize + 1) * SUB + top
}

/// The highest value in bucket `i`.
fn highest(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = u32::try_from(i / SUB - 1).unwrap_or(0);
    let low = ((SUB + i % SUB) as u64) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let v = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[index(v)].fetch_add(1, Ordering::Relaxed);
    }

    /// p50, p95 and p99 of what was recorded (zeros before any value).
    pub(crate) fn percentiles(&self) -> Percentiles {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let at = |q: f64| -> Duration {
            if total == 0 {
                return Duration::ZERO;
            }
            // The smallest value with at least ceil(q * total) values at or
            // below it.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (i, &c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_nanos(highest(i));
                }
            }
            Duration::from_nanos(u64::MAX)
        };
        Percentiles {
            count: total,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

/// Percentiles of a duration, from a log-linear histogram: each is the
/// highest value of its bucket, so never below the true percentile and
/// above it by less than 6.25 % (exact below 16 ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Percentiles {
    /// How many values were recorded.
    pub count: u64,
    /// The median.
    pub p50: Duration,
    /// The 95th percentile.
    pub p95: Duration,
    /// The 99th percentile.
    pub p99: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut last = None;
        for i in 0..BUCKETS {
            let hi = highest(i);
            assert_eq!(index(hi), i, "bucket {i}");
            if let Some(prev) = last {
                assert_eq!(index(prev + 1), i, "bucket {i} starts after {prev}");
            }
            last = Some(hi);
        }
        assert_eq!(last, Some(u64::MAX));
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn small_values_are_exact() {
        let h = Histogram::default();
        for v in 1..=10 {
            h.record(Duration::from_nanos(v));
        }
        let p = h.percentiles();
        assert_eq!(p.count, 10);
        assert_eq!(p.p50, Duration::from_nanos(5));
        assert_eq!(p.p95, Duration::from_nanos(10));
        assert_eq!(p.p99, Duration::from_nanos(10));
    }

    #[test]
    fn known_values_within_the_resolution() {
        let h = Histogram::default();
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        let p = h.percentiles();
        for (got, want) in [(p.p50, 500u64), (p.p95, 950), (p.p99, 990)] {
            let want = Duration::from_millis(want);
            assert!(got >= want && got < want + want / 16, "{got:?} vs {want:?}");
        }
        // A value at its bucket's low edge reports the bucket's highest
        // value: 2^30 ns lies in [2^30, 2^30 + 2^26).
        let h = Histogram::default();
        h.record(Duration::from_nanos(1 << 30));
        assert_eq!(
            h.percentiles().p99,
            Duration::from_nanos((1 << 30) + (1 << 26) - 1)
        );
        assert_eq!(Histogram::default().percentiles(), Percentiles::default());
    }
}
