//! The histogram engine: HDR-style log-linear buckets of atomic counters,
//! snapshots with true percentiles, and rolling windows.
//
// Design. A value is recorded as an integer of "raw" units (`value /
// resolution`, nanoseconds for durations) into a log-linear bucket array, the
// layout of HdrHistogram: values below 2·2^bits have a bucket each, and every
// power of two above is split into 2^bits equal sub-buckets. A bucket's width
// is therefore at most 1/2^bits of its lower bound, so reporting its midpoint
// is within 1/2^(bits+1) (0.39% at the default 7 bits) of any value in it: a
// percentile is the exact order statistic up to that precision, unlike a
// decaying sample or a summary that forgets.
//
// Recording is two relaxed atomic adds (the bucket, the sum) and a few bit
// operations: no lock, no clock read, no allocation. Two threads contend only
// on the sum's cache line and on a bucket they both hit.
//
// Rolling windows never touch the hot path. A `tick` (run by the monitor's
// maintenance task every `window_resolution`, and before every windowed read)
// diffs the cumulative buckets against the previous tick and files the
// difference, sparse, under the current slot. A window of length W is the sum
// of the last ceil(W / resolution) slots, the newest being partial. A value
// belongs to the slot of the first tick after it was recorded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// The bucket layout: `bits` sub-bucket bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) bits: u32,
}

impl Layout {
    pub(crate) fn new(bits: u32) -> Self {
        Self { bits }
    }

    pub(crate) fn len(self) -> usize {
        ((65 - self.bits) as usize) << self.bits
    }

    #[inline]
    pub(crate) fn index(self, v: u64) -> usize {
        let m = 1u64 << self.bits;
        if v < 2 * m {
            // usize is at least 32 bits and v < 2^11 here.
            return v as usize;
        }
        let shift = 63 - v.leading_zeros() - self.bits;
        ((u64::from(shift) << self.bits) + (v >> shift)) as usize
    }

    /// The lowest and highest raw value of bucket `i`.
    pub(crate) fn bounds(self, i: usize) -> (u64, u64) {
        let m = 1usize << self.bits;
        if i < 2 * m {
            return (i as u64, i as u64);
        }
        let shift = (i >> self.bits) - 1;
        let sub = i - (shift << self.bits);
        let low = (sub as u64) << shift;
        (low, low + ((1u64 << shift) - 1))
    }

    /// The value reported for bucket `i`: its midpoint.
    pub(crate) fn mid(self, i: usize) -> u64 {
        let (lo, hi) = self.bounds(i);
        lo + (hi - lo) / 2
    }
}

/// Cumulative atomic counts.
#[derive(Debug)]
pub(crate) struct AtomicBuckets {
    layout: Layout,
    counts: Box<[AtomicU64]>,
    /// Bit `k` is set once a value fell in power-of-two group `k` (the
    /// `2^bits` buckets at `k << bits`): scrapes read only those groups.
    groups: AtomicU64,
    /// The sum, striped by thread so that threads recording into one
    /// histogram do not bounce one cache line between cores.
    sums: [Padded; SUM_STRIPES],
}

const SUM_STRIPES: usize = 4;

/// An atomic alone on its cache line (128 bytes: adjacent-line prefetch on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

thread_local! {
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SUM_STRIPES
    };
}

impl AtomicBuckets {
    pub(crate) fn new(layout: Layout) -> Self {
        Self {
            layout,
            counts: (0..layout.len()).map(|_| AtomicU64::new(0)).collect(),
            groups: AtomicU64::new(0),
            sums: Default::default(),
        }
    }

    #[inline]
    pub(crate) fn record(&self, raw: u64) {
        let i = self.layout.index(raw);
        let group = 1u64 << (i >> self.layout.bits);
        // A read of a line that stops changing after warm-up; the write happens once per group.
        if self.groups.load(Ordering::Relaxed) & group == 0 {
            self.groups.fetch_or(group, Ordering::Relaxed);
        }
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let stripe = STRIPE.with(|s| *s);
        self.sums[stripe].0.fetch_add(raw, Ordering::Relaxed);
    }

    /// A sparse copy of the counts.
    pub(crate) fn sparse(&self) -> Sparse {
        let mut buckets = Vec::new();
        let mut count = 0;
        let groups = self.groups.load(Ordering::Acquire);
        let width = 1usize << self.layout.bits;
        for g in 0..64usize {
            if groups & (1u64 << g) == 0 {
                continue;
            }
            let start = g * width;
            let end = (start + width).min(self.counts.len());
            for (i, c) in self.counts[start..end].iter().enumerate() {
                let c = c.load(Ordering::Relaxed);
                if c > 0 {
                    buckets.push((u32::try_from(start + i).unwrap_or(u32::MAX), c));
                    count += c;
                }
            }
        }
        let sum = self
            .sums
            .iter()
            .fold(0u64, |acc, s| acc.wrapping_add(s.0.load(Ordering::Relaxed)));
        Sparse { buckets, count, sum }
    }

    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }
}

/// Sparse bucket counts: `(bucket index, count)` sorted by index.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Sparse {
    pub(crate) buckets: Vec<(u32, u64)>,
    pub(crate) count: u64,
    pub(crate) sum: u64,
}

impl Sparse {
    /// `self - older`, both cumulative.
    fn minus(&self, older: &Sparse) -> Sparse {
        let mut out = Vec::new();
        let mut j = 0;
        for &(i, c) in &self.buckets {
            while j < older.buckets.len() && older.buckets[j].0 < i {
                j += 1;
            }
            let prev = if j < older.buckets.len() && older.buckets[j].0 == i {
                older.buckets[j].1
            } else {
                0
            };
            if c > prev {
                out.push((i, c - prev));
            }
        }
        Sparse {
            count: out.iter().map(|&(_, c)| c).sum(),
            buckets: out,
            sum: self.sum.wrapping_sub(older.sum),
        }
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: &Sparse) {
        if other.buckets.is_empty() {
            self.sum = self.sum.wrapping_add(other.sum);
            return;
        }
        let mut out = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (self.buckets.iter().peekable(), other.buckets.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(i, c)), Some(&&(j, d))) => {
                    if i == j {
                        out.push((i, c + d));
                        a.next();
                        b.next();
                    } else if i < j {
                        out.push((i, c));
                        a.next();
                    } else {
                        out.push((j, d));
                        b.next();
                    }
                }
                (Some(&&x), None) => {
                    out.push(x);
                    a.next();
                }
                (None, Some(&&y)) => {
                    out.push(y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = out;
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
    }
}

/// Slots of deltas for rolling windows.
#[derive(Debug, Default)]
pub(crate) struct Rolling {
    last: Sparse,
    /// `(slot number, delta)`, oldest first.
    slots: VecDeque<(u64, Sparse)>,
}

#[derive(Debug)]
pub(crate) struct RollingState {
    inner: Mutex<Rolling>,
}

impl RollingState {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Rolling::default()),
        }
    }

    /// Files what was recorded since the last tick under slot `slot`, and
    /// forgets slots older than `keep` slots.
    pub(crate) fn tick(&self, buckets: &AtomicBuckets, slot: u64, keep: u64) {
        let now = buckets.sparse();
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if now.count != r.last.count {
            let delta = now.minus(&r.last);
            match r.slots.back_mut() {
                Some((s, d)) if *s == slot => d.merge(&delta),
                _ => r.slots.push_back((slot, delta)),
            }
            r.last = now;
        }
        while r.slots.front().is_some_and(|(s, _)| s + keep <= slot) {
            r.slots.pop_front();
        }
    }

    /// The sum of slots numbered in `(newest - older, newest - newer]`.
    pub(crate) fn range(&self, newest: u64, older: u64, newer: u64) -> Sparse {
        let r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Sparse::default();
        for (s, d) in &r.slots {
            let age = newest.saturating_sub(*s);
            if age < older && age >= newer {
                out.merge(d);
            }
        }
        out
    }
}

/// A point-in-time copy of a histogram: count, sum and true percentiles.
///
/// Values are in the histogram's unit (seconds for durations). Percentiles
/// are exact order statistics up to the bucket precision: with the default
/// 7 precision bits, within 0.39% of the true value.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    layout: Layout,
    resolution: f64,
    data: Sparse,
}

impl HistogramSnapshot {
    pub(crate) fn new(layout: Layout, resolution: f64, data: Sparse) -> Self {
        Self {
            layout,
            resolution,
            data,
        }
    }

    /// How many values were recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.data.count
    }

    /// The sum of the recorded values.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // exposition is f64 anyway
    pub fn sum(&self) -> f64 {
        self.data.sum as f64 * self.resolution
    }

    /// The mean, or `None` when empty.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn mean(&self) -> Option<f64> {
        (self.data.count > 0).then(|| self.sum() / self.data.count as f64)
    }

    /// The smallest recorded value (to bucket precision), or `None` when empty.
    #[must_use]
    pub fn min(&self) -> Option<f64> {
        self.data.buckets.first().map(|&(i, _)| self.value_of(i))
    }

    /// The largest recorded value (to bucket precision), or `None` when empty.
    #[must_use]
    pub fn max(&self) -> Option<f64> {
        self.data.buckets.last().map(|&(i, _)| self.value_of(i))
    }

    /// The value at quantile `q` (0.0–1.0): the smallest recorded value with
    /// at least `ceil(q · count)` values at or below it. `None` when empty.
    #[must_use]
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.data.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.data.count as f64).ceil() as u64).clamp(1, self.data.count);
        let mut seen = 0;
        for &(i, c) in &self.data.buckets {
            seen += c;
            if seen >= rank {
                return Some(self.value_of(i));
            }
        }
        self.max()
    }

    /// How many recorded values are at or below `value` (to bucket
    /// precision: a bucket counts when its midpoint is at or below `value`).
    #[must_use]
    pub fn count_at_or_below(&self, value: f64) -> u64 {
        self.data
            .buckets
            .iter()
            .take_while(|&&(i, _)| self.value_of(i) <= value)
            .map(|&(_, c)| c)
            .sum()
    }

    /// The share of values at or below `value` (1.0 when empty).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn fraction_at_or_below(&self, value: f64) -> f64 {
        if self.data.count == 0 {
            1.0
        } else {
            self.count_at_or_below(value) as f64 / self.data.count as f64
        }
    }

    /// The values recorded after `older` was taken, for two cumulative
    /// snapshots of the same histogram.
    #[must_use]
    pub fn since(&self, older: &HistogramSnapshot) -> HistogramSnapshot {
        Self::new(self.layout, self.resolution, self.data.minus(&older.data))
    }

    /// Adds the values of `other` (recorded with the same settings).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        self.data.merge(&other.data);
    }

    /// Cumulative counts for the bucket upper bounds `les` (sorted), as a
    /// Prometheus histogram needs them; the last entry is `+Inf` (the count).
    pub(crate) fn cumulative_buckets(&self, les: &[f64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(les.len() + 1);
        let mut it = self.data.buckets.iter().peekable();
        let mut acc = 0;
        for &le in les {
            while let Some(&&(i, c)) = it.peek() {
                if self.value_of(i) <= le {
                    acc += c;
                    it.next();
                } else {
                    break;
                }
            }
            out.push(acc);
        }
        out.push(self.data.count);
        out
    }

    #[allow(clippy::cast_precision_loss)]
    fn value_of(&self, i: u32) -> f64 {
        self.layout.mid(i as usize) as f64 * self.resolution
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_contiguous_and_precise() {
        let l = Layout::new(7);
        let mut prev_hi = None;
        for i in 0..l.len() {
            let (lo, hi) = l.bounds(i);
            if let Some(p) = prev_hi {
                assert_eq!(lo, p + 1, "bucket {i}");
            }
            assert_eq!(l.index(lo), i);
            assert_eq!(l.index(hi), i);
            if lo > 0 {
                assert!((hi - lo) as f64 / lo as f64 <= 1.0 / 128.0);
            }
            prev_hi = Some(hi);
        }
        assert_eq!(prev_hi, Some(u64::MAX));
    }

    #[test]
    fn minus_and_merge_round_trip() {
        let l = Layout::new(5);
        let b = AtomicBuckets::new(l);
        b.record(3);
        b.record(1000);
        let first = b.sparse();
        b.record(1000);
        b.record(50_000);
        let second = b.sparse();
        let delta = second.minus(&first);
        assert_eq!(delta.count, 2);
        assert_eq!(delta.sum, 51_000);
        let mut back = first.clone();
        back.merge(&delta);
        assert_eq!(back, second);
    }
}
