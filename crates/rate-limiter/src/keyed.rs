//! The keyed limiter, its bounded sharded store and per-key overrides.
//
// Store design. Keys live in shards (a power of two, at least 64, each on
// its own cache line): a hashbrown `HashTable<(K, u32)>` mapping a key to a
// slot, and a slab `Vec<AtomicU64>` holding `windows` TATs per slot. The
// hash is computed once (foldhash) and picks both the shard (bits 40..) and
// the bucket. A decision takes the shard's read lock and does the GCRA CAS
// on the slot's atomics; only a new key takes the write lock. Keeping the
// TATs out of the table keeps a table entry at 16 bytes for a `u64` key, and
// a key with one window costs about 30–50 bytes in all (measured by
// `KeyedRateLimiter::memory_bytes`).
//
// Memory stays bounded without a caller-run `retain_recent`: when a shard
// has doubled since its last sweep, a new key first sweeps it, dropping keys
// whose windows are all full again (TAT ≤ now). Such a key carries no
// information, so dropping it changes no decision. At `max_keys` (split
// evenly between shards) the keys closest to idle are dropped as well, a
// sixteenth of the shard at a time, and counted as `evicted_active`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use brisk_core::{ConfigError, SharedClock, StatsReport, StatsSource};
use hashbrown::HashTable;

use crate::direct::CancelOnDrop;
use crate::gcra::{self, Deny, Reserved};
use crate::quota::QuotaSet;
use crate::shared::Shared;
use crate::{Quota, RateLimitError, RateLimiterStats, UpstreamLimits};

/// A limiter with separate state per key (client, IP, API key, endpoint
/// class), the same windows for every key unless overridden.
///
/// Built by [`RateLimiterBuilder::build_keyed`](crate::RateLimiterBuilder::build_keyed).
/// Cheap to clone; clones share the state.
///
/// ```
/// use brisk_rate_limiter::{Quota, RateLimitError, RateLimiter};
///
/// let limiter = RateLimiter::builder().quota(Quota::per_minute(10)).build_keyed::<&str>()?;
/// limiter.set_override("admin", [Quota::per_minute(100)])?;
/// for _ in 0..10 {
///     limiter.check(&"alice", 1)?;
/// }
/// assert!(matches!(limiter.check(&"alice", 1), Err(RateLimitError::Limited { .. })));
/// limiter.check(&"bob", 1)?; // every key has its own windows
/// limiter.check(&"admin", 50)?; // and overrides have theirs
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KeyedRateLimiter<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for KeyedRateLimiter<K> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<K> {
    set: QuotaSet,
    store: Store<K>,
    shared: Shared,
    has_overrides: AtomicBool,
    overrides: RwLock<HashMap<K, Arc<Override>, foldhash::fast::RandomState>>,
}

/// A key's own windows and their state.
struct Override {
    set: QuotaSet,
    tats: Box<[AtomicU64]>,
}

impl<K: Hash + Eq + Clone> KeyedRateLimiter<K> {
    pub(crate) fn new(set: QuotaSet, shared: Shared, max_keys: usize) -> Self {
        let store = Store::new(set.len(), max_keys);
        Self {
            inner: Arc::new(Inner {
                set,
                store,
                shared,
                has_overrides: AtomicBool::new(false),
                overrides: RwLock::new(HashMap::default()),
            }),
        }
    }

    /// Spends `cost` on every window of `key` if all have room; otherwise
    /// spends nothing and says which window rejected and when to retry.
    ///
    /// # Errors
    ///
    /// [`RateLimitError::Limited`], [`RateLimitError::Paused`], or
    /// [`RateLimitError::CostTooLarge`] when `cost` exceeds a window's burst.
    #[inline]
    pub fn check<Q>(&self, key: &Q, cost: u64) -> Result<(), RateLimitError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let inner = &*self.inner;
        let now = inner.shared.now();
        inner.shared.check_pause(now)?;
        if let Some(o) = inner.override_for(key) {
            return gcra::check_cost(&o.set.params, cost)
                .and_then(|()| gcra::check(&o.set.params, &o.tats, now, cost))
                .map_err(|deny| inner.fail(deny, &o.set, cost));
        }
        let params = &inner.set.params;
        gcra::check_cost(params, cost)
            .and_then(|()| {
                inner
                    .store
                    .with(key, now, |tats| gcra::check(params, tats, now, cost))
            })
            .map_err(|deny| inner.fail(deny, &inner.set, cost))
    }

    /// Whether [`check`](Self::check) would pass now, without spending (and
    /// without creating state for an unknown key).
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    pub fn peek<Q>(&self, key: &Q, cost: u64) -> Result<(), RateLimitError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let inner = &*self.inner;
        let now = inner.shared.now();
        inner.shared.check_pause(now)?;
        if let Some(o) = inner.override_for(key) {
            return gcra::check_cost(&o.set.params, cost)
                .and_then(|()| gcra::peek(&o.set.params, &o.tats, now, cost))
                .map_err(|deny| RateLimitError::from_deny(deny, &o.set.quotas, cost));
        }
        let params = &inner.set.params;
        gcra::check_cost(params, cost)
            .and_then(|()| {
                inner
                    .store
                    .existing(key, |tats| gcra::peek(params, tats, now, cost))
                    .unwrap_or(Ok(()))
            })
            .map_err(|deny| RateLimitError::from_deny(deny, &inner.set.quotas, cost))
    }

    /// Gives back `cost` on every window of `key` (cost spent but not used).
    /// A window never holds more than its burst.
    pub fn refund<Q>(&self, key: &Q, cost: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let inner = &*self.inner;
        if let Some(o) = inner.override_for(key) {
            gcra::refund(&o.set.params, &o.tats, cost);
        } else {
            inner
                .store
                .existing(key, |tats| gcra::refund(&inner.set.params, tats, cost));
        }
    }

    /// Waits until `cost` can pass every window of `key`, then spends it;
    /// returns how long it waited. First come, first served per key, fair to
    /// weighted requests and cancel-safe: see
    /// [`RateLimiter::acquire`](crate::RateLimiter::acquire).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::CostTooLarge`] at once when `cost` exceeds a
    /// window's burst.
    pub async fn acquire<Q>(&self, key: &Q, cost: u64) -> Result<Duration, RateLimitError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.acquire_inner(key, cost, None).await
    }

    /// Like [`acquire`](Self::acquire), but fails at once, spending
    /// nothing, when the wait would end after `deadline` (an instant of the
    /// limiter's clock).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::DeadlineExceeded`] or [`RateLimitError::CostTooLarge`].
    pub async fn acquire_until<Q>(
        &self,
        key: &Q,
        cost: u64,
        deadline: Instant,
    ) -> Result<Duration, RateLimitError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.acquire_inner(key, cost, Some(deadline)).await
    }

    async fn acquire_inner<Q>(
        &self,
        key: &Q,
        cost: u64,
        deadline: Option<Instant>,
    ) -> Result<Duration, RateLimitError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let inner = &*self.inner;
        let now = inner.shared.now();
        let deadline = deadline.map(|d| inner.shared.nanos_of(d));
        let not_before = inner.shared.paused_until();
        if let Some(o) = inner.override_for(key) {
            let reserved = gcra::check_cost(&o.set.params, cost)
                .and_then(|()| gcra::reserve(&o.set.params, &o.tats, now, cost, not_before, deadline))
                .map_err(|deny| inner.fail(deny, &o.set, cost))?;
            let wait = reserved.ready.saturating_sub(now);
            let mut guard = CancelOnDrop {
                params: &o.set.params,
                tats: &o.tats,
                reserved: Some(reserved),
                cost,
            };
            inner.sleep(wait).await;
            guard.reserved = None;
            return Ok(Duration::from_nanos(wait));
        }
        let params = &inner.set.params;
        let reserved = gcra::check_cost(params, cost)
            .and_then(|()| {
                inner.store.with(key, now, |tats| {
                    gcra::reserve(params, tats, now, cost, not_before, deadline)
                })
            })
            .map_err(|deny| inner.fail(deny, &inner.set, cost))?;
        let wait = reserved.ready.saturating_sub(now);
        let mut guard = KeyedCancel {
            inner,
            key,
            reserved: Some(reserved),
            cost,
        };
        inner.sleep(wait).await;
        guard.reserved = None;
        Ok(Duration::from_nanos(wait))
    }

    /// Gives `key` its own windows, replacing any it had (a tier per client
    /// or endpoint class; callable at run time). The key's windows start
    /// full. Overrides are kept until removed and do not count toward
    /// `max_keys`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `override.quotas[i].limit` (or `.period`)
    /// when a quota is invalid, as in the builder.
    pub fn set_override(&self, key: K, quotas: impl IntoIterator<Item = Quota>) -> Result<(), ConfigError> {
        let set = QuotaSet::new(quotas.into_iter().collect(), "override.quotas")?;
        let tats = (0..set.len()).map(|_| AtomicU64::new(0)).collect();
        let mut map = self
            .inner
            .overrides
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        map.insert(key, Arc::new(Override { set, tats }));
        self.inner.has_overrides.store(true, Relaxed);
        Ok(())
    }

    /// Removes `key`'s override; it goes back to the default windows.
    /// Returns whether it had one.
    pub fn remove_override<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self
            .inner
            .overrides
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let removed = map.remove(key).is_some();
        self.inner.has_overrides.store(!map.is_empty(), Relaxed);
        removed
    }

    /// The windows that apply to `key`: its override's, or the default.
    #[must_use]
    pub fn quotas_for<Q>(&self, key: &Q) -> Vec<Quota>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.inner.override_for(key) {
            Some(o) => o.set.quotas.to_vec(),
            None => self.inner.set.quotas.to_vec(),
        }
    }

    /// The default windows, in order.
    #[must_use]
    pub fn quotas(&self) -> &[Quota] {
        &self.inner.set.quotas
    }

    /// Pauses every key for `d` (nothing passes before then).
    pub fn pause_for(&self, d: Duration) {
        self.inner.shared.pause_for(d);
    }

    /// Slows every key to what an upstream API said; see
    /// [`RateLimiter::apply_upstream`](crate::RateLimiter::apply_upstream).
    #[allow(clippy::must_use_candidate)] // the pause is applied either way; its length is for logs
    pub fn apply_upstream(&self, limits: &UpstreamLimits) -> Option<Duration> {
        self.inner.shared.apply_upstream(limits)
    }

    /// The number of keys holding state now (overrides not included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.store.len()
    }

    /// Whether no key holds state.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every key whose windows are all full again now. This changes
    /// no decision and happens on its own as keys arrive; call it to free
    /// memory at once (after a burst of one-off keys, say).
    pub fn evict_idle(&self) {
        let now = self.inner.shared.now();
        self.inner.store.sweep_all(now);
    }

    /// The bytes the key store has allocated (tables, slabs, free lists),
    /// for sizing `max_keys`.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.inner.store.memory_bytes()
    }

    /// The limiter's clock.
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        self.inner.shared.clock()
    }

    /// A snapshot of the counters, with the number of keys.
    #[must_use]
    pub fn stats(&self) -> RateLimiterStats {
        let store = &self.inner.store;
        self.inner.shared.stats(
            store.len(),
            store.evicted_idle.load(Relaxed),
            store.evicted_active.load(Relaxed),
        )
    }
}

impl<K: Hash + Eq + Clone> Inner<K> {
    #[inline]
    fn override_for<Q>(&self, key: &Q) -> Option<Arc<Override>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.has_overrides.load(Relaxed) {
            return None;
        }
        let map = self.overrides.read().unwrap_or_else(PoisonError::into_inner);
        map.get(key).cloned()
    }

    #[cold]
    fn fail(&self, deny: Deny, set: &QuotaSet, cost: u64) -> RateLimitError {
        let err = RateLimitError::from_deny(deny, &set.quotas, cost);
        self.shared.note(&err);
        err
    }

    async fn sleep(&self, wait: u64) {
        if wait > 0 {
            self.shared.waited.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_nanos(wait)).await;
        }
    }
}

/// Cancels a keyed reservation if the waiting future is dropped early.
struct KeyedCancel<'a, K: Hash + Eq + Clone + Borrow<Q>, Q: Hash + Eq + ?Sized> {
    inner: &'a Inner<K>,
    key: &'a Q,
    reserved: Option<Reserved>,
    cost: u64,
}

impl<K: Hash + Eq + Clone + Borrow<Q>, Q: Hash + Eq + ?Sized> Drop for KeyedCancel<'_, K, Q> {
    fn drop(&mut self) {
        if let Some(reserved) = &self.reserved {
            let params = &self.inner.set.params;
            self.inner
                .store
                .existing(self.key, |tats| gcra::cancel(params, tats, reserved, self.cost));
        }
    }
}

impl<K> fmt::Debug for KeyedRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("name", &self.inner.shared.name)
            .field("quotas", &self.inner.set.quotas)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync> StatsSource for KeyedRateLimiter<K> {
    fn report_stats(&self, out: &mut StatsReport) {
        self.stats().report(self.inner.shared.name.clone(), out);
    }
}

/// One shard on its own cache line, so readers of two shards do not share
/// a lock word's line.
#[repr(align(64))]
struct Padded<T>(T);

/// Sharded key → slot table with a slab of TATs.
struct Store<K> {
    shards: Box<[Padded<RwLock<Shard<K>>>]>,
    hasher: foldhash::fast::RandomState,
    windows: usize,
    shard_max: usize,
    mask: u64,
    evicted_idle: AtomicU64,
    evicted_active: AtomicU64,
}

struct Shard<K> {
    table: HashTable<(K, u32)>,
    tats: Vec<AtomicU64>,
    free: Vec<u32>,
    sweep_at: usize,
}

/// The largest power of two at most `n` (`n` ≥ 1).
fn prev_power_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// A shard is swept no sooner than when it holds this many keys.
const MIN_SWEEP: usize = 64;

impl<K: Hash + Eq + Clone> Store<K> {
    fn new(windows: usize, max_keys: usize) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        // At least 16 keys per shard: with fewer, two live keys that hash to
        // one shard would push each other out (a small `max_keys`, e.g. 64
        // over 64 shards, allowed one key per shard), and a dropped live key
        // forgets what it spent.
        let most = prev_power_of_two((max_keys / 16).max(1));
        let n = (threads * 4).next_power_of_two().clamp(64, 1024).min(most);
        let shard_max = (max_keys / n).max(1);
        let shards = (0..n)
            .map(|_| {
                Padded(RwLock::new(Shard {
                    table: HashTable::new(),
                    tats: Vec::new(),
                    free: Vec::new(),
                    sweep_at: MIN_SWEEP.min(shard_max),
                }))
            })
            .collect();
        Self {
            shards,
            hasher: foldhash::fast::RandomState::default(),
            windows,
            shard_max,
            mask: n as u64 - 1,
            evicted_idle: AtomicU64::new(0),
            evicted_active: AtomicU64::new(0),
        }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<Shard<K>> {
        // Bits 40.. pick the shard: hashbrown uses the low bits for the
        // bucket and the top 7 for its tag, so the three stay independent.
        #[allow(clippy::cast_possible_truncation)] // masked to the shard count
        let i = ((hash >> 40) & self.mask) as usize;
        &self.shards[i].0
    }

    /// Runs `f` on `key`'s TATs, creating them (full) if it has none.
    #[inline]
    fn with<Q, R>(&self, key: &Q, now: u64, f: impl FnOnce(&[AtomicU64]) -> R) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let lock = self.shard(hash);
        {
            let shard = lock.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(&(_, slot)) = shard.table.find(hash, |(k, _)| k.borrow() == key) {
                return f(shard.slot(slot, self.windows));
            }
        }
        let mut shard = lock.write().unwrap_or_else(PoisonError::into_inner);
        let slot = match shard.table.find(hash, |(k, _)| k.borrow() == key) {
            Some(&(_, slot)) => slot,
            None => self.insert(&mut shard, key.to_owned(), hash, now),
        };
        f(shard.slot(slot, self.windows))
    }

    /// Runs `f` on `key`'s TATs if it has any.
    fn existing<Q, R>(&self, key: &Q, f: impl FnOnce(&[AtomicU64]) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash).read().unwrap_or_else(PoisonError::into_inner);
        let &(_, slot) = shard.table.find(hash, |(k, _)| k.borrow() == key)?;
        Some(f(shard.slot(slot, self.windows)))
    }

    #[cold]
    fn insert(&self, shard: &mut Shard<K>, key: K, hash: u64, now: u64) -> u32 {
        if shard.table.len() >= shard.sweep_at {
            let (idle, active) = shard.sweep(now, self.windows, self.shard_max, &self.hasher);
            self.evicted_idle.fetch_add(idle, Relaxed);
            self.evicted_active.fetch_add(active, Relaxed);
        }
        let slot = match shard.free.pop() {
            Some(slot) => {
                for t in shard.slot(slot, self.windows) {
                    t.store(0, Relaxed);
                }
                slot
            }
            None => {
                let slot =
                    u32::try_from(shard.tats.len() / self.windows).expect("fewer than 2^32 keys per shard");
                if shard.tats.len() + self.windows > shard.tats.capacity() {
                    // Grow by an eighth, not double: a full slab wastes at
                    // most 12.5% (this path is rare: new keys only).
                    let more = (shard.tats.capacity() / 8 / self.windows).max(64) * self.windows;
                    shard.tats.reserve_exact(more);
                }
                shard.tats.extend((0..self.windows).map(|_| AtomicU64::new(0)));
                slot
            }
        };
        shard
            .table
            .insert_unique(hash, (key, slot), |(k, _)| self.hasher.hash_one(k));
        slot
    }

    fn sweep_all(&self, now: u64) {
        for lock in &self.shards {
            let mut shard = lock.0.write().unwrap_or_else(PoisonError::into_inner);
            let idle = shard.remove_idle(now, self.windows, &self.hasher);
            self.evicted_idle.fetch_add(idle, Relaxed);
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.read().unwrap_or_else(PoisonError::into_inner).table.len())
            .sum()
    }

    fn memory_bytes(&self) -> usize {
        let per_shard: usize = self
            .shards
            .iter()
            .map(|s| {
                let s = s.0.read().unwrap_or_else(PoisonError::into_inner);
                s.table.allocation_size()
                    + s.tats.capacity() * size_of::<AtomicU64>()
                    + s.free.capacity() * size_of::<u32>()
            })
            .sum();
        per_shard + size_of_val(&*self.shards)
    }
}

impl<K: Hash + Eq> Shard<K> {
    // (no Clone bound: the shard never copies keys)
    #[inline]
    fn slot(&self, slot: u32, windows: usize) -> &[AtomicU64] {
        let start = slot as usize * windows;
        &self.tats[start..start + windows]
    }

    /// Drops idle keys, then (at the maximum) the keys closest to idle;
    /// returns how many of each, and sets the next sweep point.
    fn sweep(
        &mut self,
        now: u64,
        windows: usize,
        max: usize,
        hasher: &foldhash::fast::RandomState,
    ) -> (u64, u64) {
        let idle = self.remove_idle(now, windows, hasher);
        let mut active = 0;
        if self.table.len() >= max {
            // Drop a sixteenth (at least one): the keys whose last TAT is
            // earliest, i.e. that are closest to full windows again.
            let excess = (max / 16).max(1).min(self.table.len());
            let mut latest: Vec<u64> = self
                .table
                .iter()
                .map(|&(_, slot)| gcra::latest(self.slot(slot, windows)))
                .collect();
            let (_, &mut cut, _) = latest.select_nth_unstable(excess - 1);
            let mut budget = excess;
            let tats = &self.tats;
            let free = &mut self.free;
            self.table.retain(|&mut (_, slot)| {
                let start = slot as usize * windows;
                if budget > 0 && gcra::latest(&tats[start..start + windows]) <= cut {
                    budget -= 1;
                    free.push(slot);
                    false
                } else {
                    true
                }
            });
            active = (excess - budget) as u64;
        }
        self.sweep_at = (self.table.len() * 2).max(MIN_SWEEP).min(max);
        (idle, active)
    }

    fn remove_idle(&mut self, now: u64, windows: usize, hasher: &foldhash::fast::RandomState) -> u64 {
        let before = self.table.len();
        let tats = &self.tats;
        let free = &mut self.free;
        self.table.retain(|&mut (_, slot)| {
            let start = slot as usize * windows;
            if gcra::is_idle(&tats[start..start + windows], now) {
                free.push(slot);
                false
            } else {
                true
            }
        });
        if self.table.len() * 4 < self.table.capacity() && self.table.capacity() > 1024 {
            self.table
                .shrink_to(self.table.len() * 2, |(k, _)| hasher.hash_one(k));
        }
        (before - self.table.len()) as u64
    }
}
