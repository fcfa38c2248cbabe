// Per-entry reference counters: how a hit tells the policy about itself.
//
// A hit costs one relaxed load and, unless the counter is already
// saturated, one relaxed store of a byte indexed by the entry's policy
// node — no lock, no read-modify-write, no buffer that can drop records
// when another thread holds the policy (quick_cache records a hit the same
// way, with one bit). A hot entry saturates its counter and then writes
// nothing, so it does not bounce a cache line between cores. The policy
// reads and clears a counter (under its mutex) only when it looks at that
// entry to evict, demote or admit it, and replays the count into its
// frequency sketch then; see policy.rs. Two racing readers may lose one
// increment, and a reader holding a node index that was just reused may
// credit the new entry with one hit: both are noise in an estimate.
//
// The nodes are numbered densely by the policy. The counters of the first
// `expected` nodes (the entry limit of a count-bounded cache) are one flat
// array made up front, so a hit finds its byte with one bounds check. The
// number of nodes is not known up front (a weighted cache has no entry
// limit), so the counters beyond live in chunks that double in size and
// are created on first use and never move: a reader needs no lock to find
// its byte.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// The first chunk's length; chunk `c` holds `BASE << c` counters.
const BASE: usize = 256;
/// Enough chunks for every `u32` node index.
const CHUNKS: usize = 25;

/// A counter saturates here (the sketch's counters hold 0..=15).
pub(crate) const MAX_REFS: u8 = 15;
/// The bits of a cell that count hits not yet replayed into the sketch.
pub(crate) const COUNT: u8 = 0x7f;
/// A cell's flag: hit since the policy last looked, count already replayed.
pub(crate) const HIT: u8 = 0x80;

#[derive(Debug)]
pub(crate) struct Refs {
    /// Counters `0..flat.len()`.
    flat: Box<[AtomicU8]>,
    /// Counters from `flat.len()` on.
    chunks: [OnceLock<Box<[AtomicU8]>>; CHUNKS],
}

/// The most counters made up front (4 MiB).
const MAX_FLAT: u64 = 1 << 22;

/// The chunk and offset of counter `i`.
#[inline]
fn locate(i: u32) -> (usize, usize) {
    let n = i as usize / BASE + 1;
    let chunk = (usize::BITS - 1 - n.leading_zeros()) as usize;
    (chunk, i as usize - BASE * ((1 << chunk) - 1))
}

impl Refs {
    /// Counters, the first `expected` of them made up front.
    pub(crate) fn new(expected: u64) -> Self {
        let flat = usize::try_from(expected.min(MAX_FLAT)).unwrap_or(0);
        Self {
            flat: (0..flat).map(|_| AtomicU8::new(0)).collect(),
            chunks: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    #[inline]
    fn get(&self, i: u32) -> Option<&AtomicU8> {
        match self.flat.get(i as usize) {
            Some(cell) => Some(cell),
            None => self.get_chunked(i),
        }
    }

    #[cold]
    fn get_chunked(&self, i: u32) -> Option<&AtomicU8> {
        #[allow(clippy::cast_possible_truncation)] // flat.len() <= i
        let (chunk, offset) = locate(i - self.flat.len() as u32);
        self.chunks.get(chunk)?.get()?.get(offset)
    }

    /// Records one hit on node `i`.
    #[inline]
    pub(crate) fn touch(&self, i: u32) {
        if let Some(cell) = self.get(i) {
            let r = cell.load(Relaxed);
            if r & COUNT < MAX_REFS {
                cell.store(r + 1, Relaxed);
            }
        }
    }

    /// Marks node `i` as hit without a count to replay (its hits were
    /// counted already; see `Policy::count`).
    pub(crate) fn mark(&self, i: u32) {
        if let Some(cell) = self.get(i) {
            cell.store(HIT, Relaxed);
        }
    }

    /// Resets node `i`'s counter to 0, creating its chunk if needed (the
    /// policy calls this for each new node).
    pub(crate) fn reset(&self, i: u32) {
        if let Some(cell) = self.flat.get(i as usize) {
            cell.store(0, Relaxed);
            return;
        }
        #[allow(clippy::cast_possible_truncation)] // flat.len() <= i
        let (chunk, offset) = locate(i - self.flat.len() as u32);
        let cells = self.chunks[chunk].get_or_init(|| (0..BASE << chunk).map(|_| AtomicU8::new(0)).collect());
        cells[offset].store(0, Relaxed);
    }

    /// Node `i`'s cell (a count of hits not yet replayed, `COUNT`, and the
    /// `HIT` flag), and resets it.
    #[inline]
    pub(crate) fn take(&self, i: u32) -> u8 {
        self.get(i).map_or(0, |cell| cell.swap(0, Relaxed))
    }

    /// Node `i`'s count of hits since the last `take`.
    #[cfg(test)]
    pub(crate) fn peek(&self, i: u32) -> u8 {
        self.get(i).map_or(0, |cell| cell.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_indexes_without_gaps() {
        let mut expected = (0, 0);
        for i in 0..100_000u32 {
            let (c, o) = locate(i);
            assert_eq!((c, o), expected, "index {i}");
            expected = if o + 1 == BASE << c {
                (c + 1, 0)
            } else {
                (c, o + 1)
            };
        }
        assert!(locate(u32::MAX).0 < CHUNKS);
    }

    #[test]
    fn counts_saturate_and_take_resets() {
        let refs = Refs::new(0);
        refs.touch(5); // no chunk yet: ignored
        refs.reset(5);
        assert_eq!(refs.peek(5), 0);
        for _ in 0..40 {
            refs.touch(5);
        }
        assert_eq!(refs.take(5), MAX_REFS);
        assert_eq!(refs.take(5), 0);
        refs.reset(70_000);
        refs.touch(70_000);
        assert_eq!(refs.peek(70_000), 1);
    }

    #[test]
    fn flat_and_chunked_counters_are_distinct() {
        let refs = Refs::new(100);
        refs.touch(99); // flat: counted without a reset
        refs.touch(100); // first chunked counter, not made yet: ignored
        refs.reset(100);
        refs.touch(100);
        refs.touch(100);
        refs.reset(100 + 256); // the second chunk
        refs.touch(100 + 256);
        assert_eq!(refs.take(99), 1);
        assert_eq!(refs.take(100), 2);
        assert_eq!(refs.take(100 + 256), 1);
        assert_eq!(refs.take(99), 0);
    }
}
