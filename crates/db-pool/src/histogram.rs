//! A lock-free latency histogram with log-linear buckets.
//
// Each power of two of nanoseconds is split into 8 linear sub-buckets, so a
// reported quantile is the upper bound of its bucket and at most 12.5% above
// the true value, over the whole range from 1 ns to hours, in 512 atomic
// counters (4 KiB). Recording is two relaxed atomic adds: cheap enough for
// every pool checkout and every query.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = 64 * SUB as usize;

pub(crate) struct Histogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    sum_nanos: AtomicU64,
    max_nanos: AtomicU64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            max_nanos: AtomicU64::new(0),
        }
    }
}

fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB {
        return usize::try_from(nanos).unwrap_or(0);
    }
    let msb = 63 - nanos.leading_zeros();
    let sub = (nanos >> (msb - SUB_BITS)) & (SUB - 1);
    usize::try_from(u64::from(msb - SUB_BITS + 1) * SUB + sub).unwrap_or(BUCKETS - 1)
}

/// The largest value that falls in `bucket`.
fn upper_bound(bucket: usize) -> u64 {
    let b = bucket as u64;
    if b < SUB {
        return b;
    }
    let group = b / SUB; // msb - SUB_BITS + 1
    let sub = b % SUB;
    let shift = group - 1;
    let low = (SUB + sub) << shift;
    low.saturating_add((1u64 << shift) - 1)
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    pub(crate) fn count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> LatencySummary {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let count: u64 = counts.iter().sum();
        let max = Duration::from_nanos(self.max_nanos.load(Ordering::Relaxed));
        let quantile = |q: f64| {
            if count == 0 {
                return Duration::ZERO;
            }
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_nanos(upper_bound(i)).min(max);
                }
            }
            max
        };
        let sum = Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed));
        LatencySummary {
            count,
            mean: if count == 0 {
                Duration::ZERO
            } else {
                sum / u32::try_from(count).unwrap_or(u32::MAX)
            },
            p50: quantile(0.50),
            p95: quantile(0.95),
            p99: quantile(0.99),
            max,
        }
    }
}

/// Latency percentiles from a histogram (each within 12.5% above the true
/// value, never above the maximum).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// The mean.
    pub mean: Duration,
    /// The median.
    pub p50: Duration,
    /// The 95th percentile.
    pub p95: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest sample.
    pub max: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 40, u64::MAX / 2]) {
            let b = bucket_of(v);
            assert!(b >= last || v >= 1 << 40, "bucket order at {v}");
            last = last.max(b);
            let ub = upper_bound(b);
            assert!(ub >= v, "{v} above its bucket's bound {ub}");
            assert!(ub - v <= v / 8 + 1, "bucket of {v} too wide: {ub}");
        }
    }

    #[test]
    fn percentiles() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 100);
        assert_eq!(s.max, Duration::from_millis(100));
        let close = |d: Duration, ms: u64| {
            let want = Duration::from_millis(ms);
            d >= want && d <= want + want / 8
        };
        assert!(close(s.p50, 50), "{:?}", s.p50);
        assert!(close(s.p95, 95), "{:?}", s.p95);
        assert!(close(s.p99, 99), "{:?}", s.p99);
        assert_eq!(Histogram::default().snapshot().p99, Duration::ZERO);
    }
}
