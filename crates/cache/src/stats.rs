//! Counters kept on the hot path, and the snapshots built from them.
//
// Hits, misses and cost saved change on every read, so they are striped: each
// thread adds to its own cache-line-padded stripe (with plain stores when it
// owns the stripe, see cache.rs) and a snapshot sums the stripes. Everything
// else changes on writes, loads or evictions and is a plain atomic per
// namespace. No snapshot iterates over entries.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Hot counters, per namespace, in one stripe.
#[derive(Debug)]
pub(crate) struct HotCounters {
    // [hits, misses, cost_saved, stale_hits] per namespace, padded to whole
    // cache lines.
    cells: Box<[AtomicU64]>,
}

const HOT: usize = 4;

impl HotCounters {
    pub(crate) fn new(namespaces: usize) -> Self {
        let len = (namespaces * HOT).next_multiple_of(16);
        Self {
            cells: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds `n` to cell `i`: with plain loads and stores when the calling
    /// thread owns the stripe (its only writer), else with `fetch_add`.
    #[inline]
    fn add(&self, i: usize, n: u64, owned: bool) {
        let cell = &self.cells[i];
        if owned {
            cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
        } else {
            cell.fetch_add(n, Relaxed);
        }
    }

    #[inline]
    pub(crate) fn hit(&self, ns: usize, cost: u32, owned: bool) {
        self.add(ns * HOT, 1, owned);
        if cost != 0 {
            self.add(ns * HOT + 2, u64::from(cost), owned);
        }
    }

    #[inline]
    pub(crate) fn miss(&self, ns: usize, owned: bool) {
        self.add(ns * HOT + 1, 1, owned);
    }

    #[inline]
    pub(crate) fn stale(&self, ns: usize, owned: bool) {
        self.add(ns * HOT + 3, 1, owned);
    }

    /// Hits in every namespace of this stripe.
    pub(crate) fn hits(&self) -> u64 {
        self.cells.iter().step_by(HOT).map(|c| c.load(Relaxed)).sum()
    }

    fn add_to(&self, ns: usize, s: &mut CacheStats) {
        s.hits += self.cells[ns * HOT].load(Relaxed);
        s.misses += self.cells[ns * HOT + 1].load(Relaxed);
        s.cost_saved += self.cells[ns * HOT + 2].load(Relaxed);
        s.stale_hits += self.cells[ns * HOT + 3].load(Relaxed);
    }
}

/// Colder counters of one namespace.
#[derive(Debug, Default)]
pub(crate) struct NsCounters {
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) load_nanos: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) inserts: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) evicted_size: AtomicU64,
    pub(crate) evicted_expired: AtomicU64,
    pub(crate) evicted_invalidated: AtomicU64,
    pub(crate) removed: AtomicU64,
    pub(crate) entries: AtomicU64,
    pub(crate) refreshes: AtomicU64,
}

/// Why an entry left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    Size,
    Expired,
    Invalidated,
    Removed,
}

impl NsCounters {
    pub(crate) fn count_removal(&self, cause: Cause) {
        self.entries.fetch_sub(1, Relaxed);
        let c = match cause {
            Cause::Size => &self.evicted_size,
            Cause::Expired => &self.evicted_expired,
            Cause::Invalidated => &self.evicted_invalidated,
            Cause::Removed => &self.removed,
        };
        c.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, hot: &[crate::cache::Stripe], ns: usize) -> CacheStats {
        let mut s = CacheStats {
            loads: self.loads.load(Relaxed),
            load_errors: self.load_errors.load(Relaxed),
            load_time: Duration::from_nanos(self.load_nanos.load(Relaxed)),
            coalesced: self.coalesced.load(Relaxed),
            inserts: self.inserts.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            evicted_size: self.evicted_size.load(Relaxed),
            evicted_expired: self.evicted_expired.load(Relaxed),
            evicted_invalidated: self.evicted_invalidated.load(Relaxed),
            removed: self.removed.load(Relaxed),
            entries: self.entries.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
            ..CacheStats::default()
        };
        for stripe in hot {
            stripe.counters.add_to(ns, &mut s);
        }
        s
    }
}

/// A snapshot of a cache's counters, for one namespace or for all of them.
///
/// Every lookup is a hit or a miss; `get_or_load` adds one load (or load
/// error) per miss it resolves, except for callers that waited for another
/// caller's load of the same key (`coalesced`). Entries leave the cache by
/// eviction (`evicted_*`) or explicit removal (`removed`), so
/// `inserts - evicted_* - removed == entries` when no value was replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing, or an expired or invalidated entry.
    pub misses: u64,
    /// Loader calls that returned a value.
    pub loads: u64,
    /// Loader calls that returned an error (nothing was cached).
    pub load_errors: u64,
    /// Time spent in loaders, successful or not.
    pub load_time: Duration,
    /// Callers that missed while another caller loaded the same key, and
    /// were given that caller's result instead of loading again.
    pub coalesced: u64,
    /// Background refreshes started by refresh-ahead (their outcomes are
    /// counted in `loads` and `load_errors`).
    pub refreshes: u64,
    /// Hits that served a value past its TTL, within the namespace's stale
    /// limit, because its refresh was under way or had failed (counted in
    /// `hits` too).
    pub stale_hits: u64,
    /// New entries added (replacing a live entry's value is not counted).
    pub inserts: u64,
    /// Values not cached because they weighed more than the maximum entry weight.
    pub rejected: u64,
    /// Entries evicted to stay within capacity (including new entries the
    /// admission policy turned away).
    pub evicted_size: u64,
    /// Entries removed because their time-to-live or time-to-idle passed.
    pub evicted_expired: u64,
    /// Entries removed by `clear`, or by namespace invalidation once reclaimed.
    pub evicted_invalidated: u64,
    /// Entries removed by `remove`.
    pub removed: u64,
    /// Entries resident now (invalidated or expired entries count until they
    /// are reclaimed, lazily or by `purge`).
    pub entries: u64,
    /// The sum of the costs of the entries served by hits (and by coalesced
    /// loads): what the cache saved, in the unit the loads' costs were given in.
    pub cost_saved: u64,
}

impl CacheStats {
    /// Lookups: hits plus misses.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.hits + self.misses
    }

    /// Hits over lookups, or 0 with no lookups.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn hit_ratio(&self) -> f64 {
        let requests = self.requests();
        if requests == 0 {
            0.0
        } else {
            self.hits as f64 / requests as f64
        }
    }

    pub(crate) fn add(&mut self, o: &CacheStats) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.loads += o.loads;
        self.load_errors += o.load_errors;
        self.load_time += o.load_time;
        self.coalesced += o.coalesced;
        self.refreshes += o.refreshes;
        self.stale_hits += o.stale_hits;
        self.inserts += o.inserts;
        self.rejected += o.rejected;
        self.evicted_size += o.evicted_size;
        self.evicted_expired += o.evicted_expired;
        self.evicted_invalidated += o.evicted_invalidated;
        self.removed += o.removed;
        self.entries += o.entries;
        self.cost_saved += o.cost_saved;
    }
}
