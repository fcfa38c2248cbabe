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
use std::sync::{Mutex, OnceLock, PoisonError};

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
    /// One lazily allocated run of `2^bits` counters per power-of-two group
    /// (the buckets at `g << bits`): a series pays only for the magnitudes
    /// it has seen (1 KiB each at 7 bits) instead of all 58 groups (58 KiB).
    groups: Box<[OnceLock<Box<[AtomicU64]>>]>,
    /// The sum, striped by thread so that threads recording into one
    /// histogram do not bounce one cache line between cores.
    sums: [Padded; SUM_STRIPES],
    /// How many buckets the last sparse copy had (a capacity hint).
    last_len: AtomicUsize,
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
        let groups = layout.len() >> layout.bits;
        Self {
            layout,
            groups: (0..groups).map(|_| OnceLock::new()).collect(),
            sums: Default::default(),
            last_len: AtomicUsize::new(0),
        }
    }

    #[inline]
    pub(crate) fn record(&self, raw: u64) {
        let i = self.layout.index(raw);
        let slot = &self.groups[i >> self.layout.bits];
        // One acquire load once the group exists; the allocation happens once per group.
        let counts = match slot.get() {
            Some(c) => c,
            None => self.allocate(slot),
        };
        counts[i & ((1 << self.layout.bits) - 1)].fetch_add(1, Ordering::Relaxed);
        let stripe = STRIPE.with(|s| *s);
        self.sums[stripe].0.fetch_add(raw, Ordering::Relaxed);
    }

    #[cold]
    #[inline(never)]
    fn allocate<'a>(&self, slot: &'a OnceLock<Box<[AtomicU64]>>) -> &'a [AtomicU64] {
        slot.get_or_init(|| {
            (0..1usize << self.layout.bits)
                .map(|_| AtomicU64::new(0))
                .collect()
        })
    }

    /// A sparse copy of the counts.
    pub(crate) fn sparse(&self) -> Sparse {
        // Sized like the last copy: one allocation rather than a regrowth per doubling.
        let mut buckets = Vec::with_capacity(self.last_len.load(Ordering::Relaxed) + 16);
        let mut count = 0;
        for (g, slot) in self.groups.iter().enumerate() {
            let Some(counts) = slot.get() else { continue };
            let start = g << self.layout.bits;
            for (i, c) in counts.iter().enumerate() {
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
        self.last_len.store(buckets.len(), Ordering::Relaxed);
        Sparse { buckets, count, sum }
    }

    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// Bytes held: the struct, the group table and the allocated groups.
    pub(crate) fn heap_bytes(&self) -> usize {
        let group = (1usize << self.layout.bits) * size_of::<AtomicU64>();
        size_of::<Self>()
            + self.groups.len() * size_of::<OnceLock<Box<[AtomicU64]>>>()
            + self.groups.iter().filter(|g| g.get().is_some()).count() * group
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
        let mut out = Vec::with_capacity(self.buckets.len());
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
        out.shrink_to_fit();
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
        out.shrink_to_fit();
        self.buckets = out;
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
    }
}

/// How the slots of a rolling window are kept, in slots of
/// `window_resolution`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tiers {
    /// Slots older than this many are dropped (the longest window, plus one).
    pub(crate) keep: u64,
    /// Slots younger than this stay one by one (5 min by default).
    pub(crate) fine: u64,
    /// Older slots are folded into aligned blocks of this many (1 min by
    /// default); 1 means no folding.
    pub(crate) block: u64,
}

/// The deltas of one slot (or block), packed: each entry is
/// `bucket index << 48 | count`, sorted. A bucket index is below 2^16 (at
/// most 55 · 2^10 buckets) and a count per bucket per slot below 2^48
/// (78 hours of a billion records a second), so one `u64` per entry halves
/// the memory of `(u32, u64)` pairs. A larger count is split over several
/// entries of the same index, so nothing is lost.
#[derive(Debug)]
struct Slot {
    /// The slot or block number.
    n: u64,
    count: u64,
    sum: u64,
    entries: Box<[u64]>,
}

const COUNT_BITS: u32 = 48;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

fn pack_into(out: &mut Vec<u64>, i: u32, mut c: u64) {
    while c > COUNT_MASK {
        out.push((u64::from(i) << COUNT_BITS) | COUNT_MASK);
        c -= COUNT_MASK;
    }
    if c > 0 {
        out.push((u64::from(i) << COUNT_BITS) | c);
    }
}

#[allow(clippy::cast_possible_truncation)] // the index is below 2^16
fn unpack(e: u64) -> (u32, u64) {
    ((e >> COUNT_BITS) as u32, e & COUNT_MASK)
}

impl Slot {
    fn new(n: u64, delta: &Sparse) -> Self {
        let mut entries = Vec::with_capacity(delta.buckets.len());
        for &(i, c) in &delta.buckets {
            pack_into(&mut entries, i, c);
        }
        Self {
            n,
            count: delta.count,
            sum: delta.sum,
            entries: entries.into_boxed_slice(),
        }
    }

    /// Adds `other`'s deltas into `self`.
    fn absorb(&mut self, other: &Slot) {
        let mut all = Vec::with_capacity(self.entries.len() + other.entries.len());
        all.extend_from_slice(&self.entries);
        all.extend_from_slice(&other.entries);
        self.entries = coalesce(all).into_boxed_slice();
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
    }
}

/// Sorts packed entries and adds up those of the same bucket.
fn coalesce(mut all: Vec<u64>) -> Vec<u64> {
    all.sort_unstable();
    let mut out: Vec<u64> = Vec::with_capacity(all.len());
    let mut current: Option<(u32, u64)> = None;
    for e in all {
        let (i, c) = unpack(e);
        current = match current {
            Some((j, d)) if j == i => Some((j, d + c)),
            Some((j, d)) => {
                pack_into(&mut out, j, d);
                Some((i, c))
            }
            None => Some((i, c)),
        };
    }
    if let Some((j, d)) = current {
        pack_into(&mut out, j, d);
    }
    out
}

/// Slots of deltas for rolling windows: recent slots one by one, older ones
/// folded into blocks, so an hour of 10 s slots is ~30 slots + 55 blocks
/// rather than 360 slots.
#[derive(Debug, Default)]
pub(crate) struct Rolling {
    last: Sparse,
    /// Slots numbered by slot, oldest first.
    slots: VecDeque<Slot>,
    /// Blocks numbered by block, oldest first; block `b` holds slots
    /// `b·block .. (b+1)·block`.
    blocks: VecDeque<Slot>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Rolling> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Files what was recorded since the last tick (`now` is the current
    /// cumulative copy) under slot `slot`, folds slots older than
    /// `tiers.fine` into blocks and forgets what is older than `tiers.keep`.
    pub(crate) fn tick(&self, now: &Sparse, slot: u64, tiers: Tiers) {
        let mut r = self.lock();
        if now.count != r.last.count {
            let delta = Slot::new(slot, &now.minus(&r.last));
            match r.slots.back_mut() {
                Some(last) if last.n == slot => last.absorb(&delta),
                _ => r.slots.push_back(delta),
            }
            r.last = now.clone();
        }
        if tiers.block > 1 {
            // Fold a slot once its whole block is older than `fine`.
            while let Some(s) = r.slots.front().map(|s| s.n) {
                let b = s / tiers.block;
                let block_newest = b * tiers.block + tiers.block - 1;
                if slot.saturating_sub(block_newest) < tiers.fine {
                    break;
                }
                let Some(mut d) = r.slots.pop_front() else { break };
                match r.blocks.back_mut() {
                    Some(acc) if acc.n == b => acc.absorb(&d),
                    _ => {
                        d.n = b;
                        r.blocks.push_back(d);
                    }
                }
            }
        }
        while r.slots.front().is_some_and(|s| s.n + tiers.keep <= slot) {
            r.slots.pop_front();
        }
        while r
            .blocks
            .front()
            .is_some_and(|b| b.n * tiers.block + tiers.block - 1 + tiers.keep <= slot)
        {
            r.blocks.pop_front();
        }
    }

    /// For each `(older, newer)`: the sum of slots aged (in slots before
    /// `newest`) `newer <= age < older`. A block counts by the age of its
    /// middle slot.
    ///
    /// `whole`, the cumulative copy, is returned as is for a span holding
    /// every value recorded (the common case of a window longer than the
    /// series' life), and a span with the same slots as the one before it
    /// reuses its sum.
    pub(crate) fn ranges(
        &self,
        newest: u64,
        block: u64,
        spans: &[(u64, u64)],
        whole: Option<&Sparse>,
    ) -> Vec<Sparse> {
        let r = self.lock();
        let mut out: Vec<Sparse> = Vec::with_capacity(spans.len());
        let mut previous: Vec<*const Slot> = Vec::new();
        for &(older, newer) in spans {
            let within = |age: u64| age < older && age >= newer;
            let parts: Vec<&Slot> = r
                .blocks
                .iter()
                .filter(|b| within(newest.saturating_sub(b.n * block + (block - 1) / 2)))
                .chain(r.slots.iter().filter(|s| within(newest.saturating_sub(s.n))))
                .collect();
            let ids: Vec<*const Slot> = parts.iter().map(|p| std::ptr::from_ref(*p)).collect();
            let count: u64 = parts.iter().map(|p| p.count).sum();
            let sum = match (out.last(), whole) {
                (Some(last), _) if ids == previous => last.clone(),
                (_, Some(w)) if w.count == count && w.count == r.last.count => w.clone(),
                _ => sum_slots(&parts),
            };
            previous = ids;
            out.push(sum);
        }
        out
    }

    /// Bytes held by the slots and blocks, and the copy the next tick diffs against.
    pub(crate) fn heap_bytes(&self) -> usize {
        let r = self.lock();
        r.last.buckets.capacity() * size_of::<(u32, u64)>()
            + (r.slots.capacity() + r.blocks.capacity()) * size_of::<Slot>()
            + r.slots
                .iter()
                .chain(r.blocks.iter())
                .map(|s| s.entries.len() * size_of::<u64>())
                .sum::<usize>()
    }
}

/// The sum of `parts` whose bucket indexes all lie in `lo..=hi`, through a
/// dense array over that range (faster than sorting when the range is
/// small next to the number of entries).
#[allow(clippy::cast_possible_truncation)] // indexes are below 2^16
fn sum_dense(parts: &[&Slot], lo: u64, hi: u64) -> Sparse {
    thread_local! {
        // Reused between calls: a scrape sums windows of every series.
        static SCRATCH: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let entries: usize = parts.iter().map(|p| p.entries.len()).sum();
    let buckets = SCRATCH.with_borrow_mut(|dense| {
        dense.clear();
        dense.resize((hi - lo + 1) as usize, 0);
        for p in parts {
            for &e in &p.entries {
                let (i, c) = unpack(e);
                dense[(u64::from(i) - lo) as usize] += c;
            }
        }
        let mut buckets = Vec::with_capacity(entries.min(dense.len()));
        buckets.extend(
            dense
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c > 0)
                .map(|(k, &c)| ((lo + k as u64) as u32, c)),
        );
        buckets
    });
    Sparse {
        buckets,
        count: parts.iter().map(|p| p.count).sum(),
        sum: parts.iter().fold(0u64, |acc, p| acc.wrapping_add(p.sum)),
    }
}

/// The sum of `parts`, unpacked.
fn sum_slots(parts: &[&Slot]) -> Sparse {
    let merged;
    let entries: &[u64] = match parts {
        [] => return Sparse::default(),
        [one] => &one.entries,
        _ => {
            let (lo, hi, n) = parts.iter().fold((u64::MAX, 0, 0), |(lo, hi, n), p| {
                let first = p.entries.first().map_or(lo, |&e| e >> COUNT_BITS);
                let last = p.entries.last().map_or(hi, |&e| e >> COUNT_BITS);
                (lo.min(first), hi.max(last), n + p.entries.len())
            });
            if n > 0 && hi - lo < 8 * n as u64 {
                return sum_dense(parts, lo, hi);
            }
            merged = coalesce(parts.iter().flat_map(|p| p.entries.iter().copied()).collect());
            &merged
        }
    };
    let mut buckets: Vec<(u32, u64)> = Vec::with_capacity(entries.len());
    for &e in entries {
        let (i, c) = unpack(e);
        match buckets.last_mut() {
            Some((j, d)) if *j == i => *d += c,
            _ => buckets.push((i, c)),
        }
    }
    Sparse {
        buckets,
        count: parts.iter().map(|p| p.count).sum(),
        sum: parts.iter().fold(0u64, |acc, p| acc.wrapping_add(p.sum)),
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

    /// The values at each quantile of `qs` (NaN when empty), in one pass
    /// over the buckets.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    pub(crate) fn quantiles(&self, qs: &[f64]) -> Vec<f64> {
        let mut out = vec![f64::NAN; qs.len()];
        if self.data.count == 0 {
            return out;
        }
        let mut order: Vec<(u64, usize)> = qs
            .iter()
            .enumerate()
            .map(|(k, q)| {
                let rank =
                    ((q.clamp(0.0, 1.0) * self.data.count as f64).ceil() as u64).clamp(1, self.data.count);
                (rank, k)
            })
            .collect();
        order.sort_unstable();
        let mut next = order.iter().peekable();
        let mut seen = 0;
        for &(i, c) in &self.data.buckets {
            seen += c;
            while let Some(&&(rank, k)) = next.peek() {
                if rank > seen {
                    break;
                }
                out[k] = self.value_of(i);
                next.next();
            }
            if next.peek().is_none() {
                break;
            }
        }
        out
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
    fn one_pass_quantiles_equal_one_by_one() {
        let l = Layout::new(7);
        let b = AtomicBuckets::new(l);
        for v in 0..5000u64 {
            b.record(v * v % 100_003);
        }
        let snap = HistogramSnapshot::new(l, 1.0, b.sparse());
        let qs = [0.999, 0.0, 0.5, 0.9, 1.0, 0.95, 0.99, 0.5];
        let one_by_one: Vec<f64> = qs.iter().map(|&q| snap.quantile(q).unwrap()).collect();
        assert_eq!(snap.quantiles(&qs), one_by_one);
        let empty = HistogramSnapshot::new(l, 1.0, Sparse::default());
        assert!(empty.quantiles(&[0.5]).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn dense_and_sorted_sums_agree() {
        let l = Layout::new(7);
        let b = AtomicBuckets::new(l);
        let mut slots = Vec::new();
        let mut last = Sparse::default();
        for k in 0..20u64 {
            for v in 0..50u64 {
                b.record(1000 + (v * 37 + k * 101) % 4000);
            }
            let now = b.sparse();
            slots.push(Slot::new(k, &now.minus(&last)));
            last = now;
        }
        let parts: Vec<&Slot> = slots.iter().collect();
        let sorted = {
            let merged = coalesce(parts.iter().flat_map(|p| p.entries.iter().copied()).collect());
            let one = Slot {
                n: 0,
                count: parts.iter().map(|p| p.count).sum(),
                sum: parts.iter().fold(0u64, |acc, p| acc.wrapping_add(p.sum)),
                entries: merged.into_boxed_slice(),
            };
            sum_slots(&[&one])
        };
        assert_eq!(sum_slots(&parts), sorted);
        assert_eq!(sorted, last);
    }

    #[test]
    fn packed_slots_keep_huge_counts_exact() {
        let delta = Sparse {
            buckets: vec![(3, 5), (7000, COUNT_MASK * 2 + 9)],
            count: 5 + COUNT_MASK * 2 + 9,
            sum: 42,
        };
        let mut a = Slot::new(1, &delta);
        assert_eq!(a.entries.len(), 4, "the huge count is split");
        let b = Slot::new(1, &delta);
        a.absorb(&b);
        let total = sum_slots(&[&a, &b]);
        assert_eq!(total.buckets, vec![(3, 15), (7000, 3 * (COUNT_MASK * 2 + 9))]);
        assert_eq!(total.count, 3 * delta.count);
        assert_eq!(total.sum, 126);
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
