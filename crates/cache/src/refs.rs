// Per-entry reference counters: how a hit tells the policy about itself.
//
// Each slot carries one `AtomicU8` cell (in what would otherwise be the
// slot's padding, so it costs no memory), on the cache line the hit reads
// anyway. A hit costs one relaxed load and, unless the counter is already
// saturated, one relaxed store: no lock, no read-modify-write, no buffer
// that can drop records when another thread holds the policy, and no
// further cache miss (quick_cache records a hit the same way, in its
// entry). A hot entry saturates its counter and then writes nothing, so it
// does not bounce a cache line between cores. Two racing readers may lose
// one increment: noise in an estimate.
//
// The policy reads and clears a counter (under its mutex) only when it
// looks at that entry to evict, demote or admit it, and replays the count
// into its frequency sketch then; see policy.rs. It reaches the cell
// through [`Cells`]: the cache finds the slot by the node's hash and index
// under the shard's read lock. That costs the policy a probe per look (a
// few per insert) and saves every hit a cache miss: until 2026-12 the
// counters were a separate array indexed by node, and that array's line
// was 11% of a hit's samples in `perf`.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// A counter saturates here (the sketch's counters hold 0..=15).
pub(crate) const MAX_REFS: u8 = 15;
/// The bits of a cell that count hits not yet replayed into the sketch.
pub(crate) const COUNT: u8 = 0x7f;
/// A cell's flag: hit since the policy last looked, count already replayed.
pub(crate) const HIT: u8 = 0x80;

/// Records one hit in `cell`.
#[inline]
pub(crate) fn touch(cell: &AtomicU8) {
    let r = cell.load(Relaxed);
    if r & COUNT < MAX_REFS {
        cell.store(r + 1, Relaxed);
    }
}

/// Where the policy finds its nodes' reference cells (a cell holds a count
/// of hits not yet replayed, `COUNT`, and the `HIT` flag).
pub(crate) trait Cells {
    /// The cell of node `node` (whose hash is `hash`), reset to 0; 0 if the
    /// node has no cell (its slot is not in the map).
    fn take(&self, node: u32, hash: u64) -> u8;

    /// Calls `f(node, cell)` for every cell that is not 0, leaving `HIT`
    /// in it (the hits are replayed, the entry still counts as hit).
    fn drain(&self, f: &mut dyn FnMut(u32, u8));
}

/// Cells indexed by node, for the policy's own tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct NodeCells(pub(crate) Vec<AtomicU8>);

#[cfg(test)]
impl NodeCells {
    pub(crate) fn new(n: usize) -> Self {
        Self((0..n).map(|_| AtomicU8::new(0)).collect())
    }
}

#[cfg(test)]
impl Cells for NodeCells {
    fn take(&self, node: u32, _hash: u64) -> u8 {
        self.0.get(node as usize).map_or(0, |c| c.swap(0, Relaxed))
    }

    fn drain(&self, f: &mut dyn FnMut(u32, u8)) {
        for (i, c) in self.0.iter().enumerate() {
            if c.load(Relaxed) != 0 {
                #[allow(clippy::cast_possible_truncation)]
                f(i as u32, c.swap(HIT, Relaxed));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_and_take_resets() {
        let cells = NodeCells::new(8);
        for _ in 0..40 {
            touch(&cells.0[5]);
        }
        touch(&cells.0[2]);
        assert_eq!(cells.take(5, 0), MAX_REFS);
        assert_eq!(cells.take(5, 0), 0);
        let mut seen = Vec::new();
        cells.drain(&mut |node, cell| seen.push((node, cell)));
        assert_eq!(seen, vec![(2, 1)]);
        assert_eq!(cells.take(2, 0), HIT);
        // A flagged cell counts on from 0.
        cells.0[3].store(HIT, Relaxed);
        touch(&cells.0[3]);
        assert_eq!(cells.take(3, 0), HIT | 1);
    }
}
