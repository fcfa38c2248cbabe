// The cache: a sharded map for the data, one policy for the whole cache.
//
// Data lives in `shards`, each an `RwLock<ShardData>` keyed by a
// precomputed hash, so a read takes one shard's read lock and nothing
// global. The policy (W-TinyLFU, see policy.rs) sits behind one mutex:
// inserts, removals and evictions take it, reads never wait for it.
//
// A shard's hash table (table.rs) holds, per entry, a 32-bit tag of its
// hash beside a `u32` index into a dense slab of slots: a hit reads its
// bucket run and then its slot (two cache misses, as with slots inline), a
// miss reads no slot, and an empty bucket costs 8 bytes instead of a whole
// slot. Removing a slot moves the shard's last slot into its place and
// re-points that slot's bucket. Deadlines (16 bytes) are kept beside the
// slots only once an entry of the shard has one, so a cache without expiry
// does not pay for them. A `u64 → u64` entry costs 32 bytes of slot (its
// reference counter included), about 11 of table (75% full), 21 of policy
// node and 8 of sketch.
//
// A hit does the least it can: the shard's read lock (two atomic
// operations, the only read-modify-writes on the path), a relaxed load and
// (unless saturated) a relaxed store of the reference counter in the slot
// it is reading anyway (refs.rs; the policy reads it when it next looks at
// the entry), and its thread's *stripe* of hit counters. Each thread claims
// a stripe of its own the first time it reads a cache (a thread-local list
// of claims, released when the thread exits), so it is the stripe's only
// writer and updates it with plain relaxed loads and stores: counts stay
// exact without a `fetch_add`. Threads beyond the exclusive stripes share
// a few overflow stripes, with `fetch_add` counters. Nothing a hit records
// can be lost while another thread holds the policy lock, so two threads
// see the same hit ratio as one. The clock is read only for entries that
// can expire.
//
// Lock order: policy → shard; a reader takes the policy only through
// `try_lock`, so no cycle can deadlock.
//
// Refresh-ahead: a read of an entry within its namespace's refresh window
// claims the entry's refresh flag (one compare-exchange, only in the window)
// and hands a reload to the executor; the reload registers in the same
// single-flight table as `get_or_load`, so the two never load one key at
// once.
//
// Namespaces are a `u16` stored in each slot and mixed into the hash. Each has
// its TTLs, its counters and a generation: `invalidate` bumps the generation
// in O(1), and slots written under an older generation read as misses and are
// reclaimed lazily (on access, by eviction, or by `purge`).
//
// Time is nanoseconds since the cache was built, read from the injected
// clock only when an entry has a deadline, so a cache without TTLs never
// reads the clock on its hot path.

use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use brisk_core::{SharedClock, StatsReport, StatsSource};

use crate::UnknownNamespace;
use crate::error::InsertError;
use crate::flight::{AnyError, Flight, Outcome};
use crate::policy::{Evicted, Policy};
use crate::refs::{self, Cells, HIT};
use crate::stats::{CacheStats, Cause, HotCounters, NsCounters};
use crate::table::Table;

pub(crate) const NEVER: u64 = u64::MAX;

// Refresh states of a slot.
const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const FAILED: u8 = 2;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Runs background refreshes.
pub(crate) type Executor = Arc<dyn Fn(Box<dyn FnOnce() + Send>) + Send + Sync>;

/// A reloader: namespace name and key in, fresh value out.
pub(crate) type ReloadFn<K, V> = dyn Fn(&str, &K) -> Result<V, BoxError> + Send + Sync;

/// A second tier behind the L1 (the Redis L2 of a `TieredCache`) that a
/// background refresh goes through: it first looks for a copy there that
/// outlives the refresh window (another node, or an earlier write, already
/// refreshed it), and writes what the reloader returns back to it. The
/// methods block: the refresh runs on the refresh executor, not on an async
/// worker.
#[cfg(feature = "redis")]
pub(crate) trait Tier<K, V>: Send + Sync {
    /// The tier's copy of `key` in namespace `ns` and how long the L1 may
    /// keep it, if that is longer than `window`.
    fn fresh(&self, ns: &str, key: &K, window: Duration) -> Option<(V, Duration)>;
    /// The longest the L1 may keep a value of namespace `ns` it wrote
    /// through to the tier.
    fn l1_cap(&self, ns: &str) -> Option<Duration>;
    /// Writes a reloaded value through to the tier (and tells the other
    /// nodes). A failure is the tier's to count; the L1 keeps the value.
    fn write_back(&self, ns: &str, key: &K, value: &V);
}

/// The reloader behind refresh-ahead, and how to compare values.
pub(crate) struct Refresher<K, V> {
    pub(crate) load: Arc<ReloadFn<K, V>>,
    pub(crate) same: fn(&V, &V) -> bool,
}

type Shard<K, V> = RwLock<ShardData<K, V>>;
type Flights<K, V> = HashMap<(u16, K), Arc<Flight<V>>, foldhash::fast::RandomState>;

pub(crate) type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync>;

/// One entry in a shard: the fields every entry needs. Its deadlines, if
/// any, are in the shard's `times` at the same index.
struct Slot<K, V> {
    key: K,
    value: V,
    node: u32,
    generation: u32,
    cost: u32,
    ns: u16,
    /// `IDLE`, `RUNNING` (a refresh is under way) or `FAILED` (the last one
    /// failed).
    refresh: AtomicU8,
    /// The entry's reference counter (refs.rs): hits not yet seen by the
    /// policy.
    refs: AtomicU8,
}

/// An entry's deadlines.
struct Times {
    /// Time-to-live deadline (ns since the cache's epoch), or `NEVER`.
    expires_at: u64,
    /// In a namespace with time-to-idle: the idle deadline, pushed forward
    /// by reads, or `NEVER`. In a namespace with adaptive TTL (which cannot
    /// have time-to-idle): the entry's current TTL in nanoseconds, before
    /// jitter. Otherwise `NEVER`.
    aux: AtomicU64,
}

impl Times {
    const NONE: (u64, u64) = (NEVER, NEVER);

    fn new((expires_at, aux): (u64, u64)) -> Self {
        Self {
            expires_at,
            aux: AtomicU64::new(aux),
        }
    }

    /// When the entry stops being live (ignoring any stale limit).
    #[inline]
    fn deadline(&self, settings: &NsSettings) -> u64 {
        if settings.tti.is_some() {
            self.expires_at.min(self.aux.load(Relaxed))
        } else {
            self.expires_at
        }
    }
}

/// When entry `times` stops being live; `NEVER` without deadlines.
#[inline]
fn deadline_of(times: Option<&Times>, settings: &NsSettings) -> u64 {
    times.map_or(NEVER, |t| t.deadline(settings))
}

/// One shard's entries. The hash table (table.rs) holds a tag of each
/// entry's hash and a `u32` index into a dense slab of slots (removal swaps
/// the last slot into the hole and re-points its index), so an empty bucket
/// costs 8 bytes, not a whole slot's, and a hit still reads only its bucket
/// run and its slot. Deadlines live in `times`, parallel to `slots`, created
/// the first time an entry of the shard has one: a cache that never expires
/// anything stores none.
struct ShardData<K, V> {
    table: Table,
    slots: Vec<Slot<K, V>>,
    /// Empty, or one per slot.
    times: Vec<Times>,
}

impl<K, V> ShardData<K, V> {
    fn with_capacity(entries: usize) -> Self {
        Self {
            table: Table::with_capacity(entries),
            slots: Vec::with_capacity(entries),
            times: Vec::new(),
        }
    }

    /// The index of the slot with `hash` that `eq` accepts.
    #[inline]
    fn find(&self, hash: u64, eq: impl Fn(&Slot<K, V>) -> bool) -> Option<usize> {
        let slots = &self.slots;
        self.table
            .find(hash, |i| eq(&slots[i as usize]))
            .map(|i| i as usize)
    }

    #[inline]
    fn times(&self, i: usize) -> Option<&Times> {
        self.times.get(i)
    }

    /// Sets slot `i`'s deadlines, creating the shard's `times` if needed.
    fn set_times(&mut self, i: usize, times: (u64, u64)) {
        if self.times.is_empty() {
            if times == Times::NONE {
                return;
            }
            self.times.reserve_exact(self.slots.capacity());
            self.times
                .extend(self.slots.iter().map(|_| Times::new(Times::NONE)));
        }
        self.times[i] = Times::new(times);
    }

    /// Adds a slot under `hash`.
    fn push(&mut self, hash: u64, slot: Slot<K, V>, times: (u64, u64)) {
        let i = self.slots.len();
        let index = u32::try_from(i).expect("more than 4 billion entries in a shard");
        self.slots.push(slot);
        if self.times.is_empty() {
            self.set_times(i, times);
        } else {
            self.times.push(Times::new(times));
        }
        self.table.insert(hash, index);
    }

    /// Removes slot `i` (its hash is `hash`) and returns it with its
    /// deadlines. The last slot moves into its place; `rehash` gives that
    /// slot's hash, to re-point its bucket.
    fn remove_at(
        &mut self,
        hash: u64,
        i: usize,
        rehash: impl Fn(&Slot<K, V>) -> u64,
    ) -> (Slot<K, V>, Option<Times>) {
        #[allow(clippy::cast_possible_truncation)] // slot indexes are u32
        let index = i as u32;
        self.table.remove(hash, index);
        let slot = self.slots.swap_remove(i);
        let times = (!self.times.is_empty()).then(|| self.times.swap_remove(i));
        if let Some(moved) = self.slots.get(i) {
            #[allow(clippy::cast_possible_truncation)]
            let from = self.slots.len() as u32;
            self.table.repoint(rehash(moved), from, index);
        }
        (slot, times)
    }
}

/// One stripe of hot counters, on its own cache lines.
#[repr(align(128))]
pub(crate) struct Stripe {
    /// Claimed by a thread as its own (exclusive stripes only).
    owned: AtomicBool,
    pub(crate) counters: HotCounters,
}

impl fmt::Debug for Stripe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stripe").finish_non_exhaustive()
    }
}

/// A namespace's settings, resolved at build time.
#[derive(Clone, Debug)]
pub(crate) struct NsSettings {
    pub(crate) name: String,
    pub(crate) ttl: Option<Duration>,
    pub(crate) tti: Option<Duration>,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) refresh_ahead: Option<Duration>,
    pub(crate) stale_limit: Option<Duration>,
    pub(crate) adaptive_ttl: Option<(Duration, Duration)>,
}

#[derive(Debug)]
struct Namespace {
    settings: NsSettings,
    /// Read by every lookup: kept off the lines of the counters, which
    /// inserts and evictions write.
    generation: AtomicU32,
    counters: Padded<NsCounters>,
}

/// A value on cache lines of its own (128 bytes: two lines, as the
/// adjacent-line prefetcher pairs them), so that writes to its neighbours
/// do not take its line away from readers.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

pub(crate) struct Inner<K, V> {
    /// Each on its own lines: a read locks its shard with a read-modify-write.
    shards: Box<[Padded<Shard<K, V>>]>,
    shard_mask: u64,
    hasher: foldhash::fast::RandomState,
    policy: Mutex<Policy>,
    /// `exclusive` stripes that threads claim, then a few shared ones.
    stripes: Arc<[Stripe]>,
    exclusive: usize,
    namespaces: Box<[Namespace]>,
    ns_index: HashMap<String, u16>,
    clock: SharedClock,
    epoch: Instant,
    weigher: Option<Weigher<K, V>>,
    max_weight: u64,
    max_entry_weight: u64,
    jitter: f64,
    flights: Mutex<Flights<K, V>>,
    weight: AtomicU64,
    refresher: Option<Refresher<K, V>>,
    executor: Executor,
    /// The tier a background refresh goes through, set by a `TieredCache`
    /// built on this cache (the last one built wins). Weak: the tiered
    /// cache owns the L1, not the other way round.
    #[cfg(feature = "redis")]
    tier: Mutex<Option<Weak<dyn Tier<K, V>>>>,
}

/// Everything the builder hands over.
pub(crate) struct Parts<K, V> {
    pub(crate) policy: Policy,
    pub(crate) shards: usize,
    pub(crate) namespaces: Vec<NsSettings>,
    pub(crate) clock: SharedClock,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) max_weight: u64,
    pub(crate) max_entry_weight: u64,
    pub(crate) jitter: f64,
    pub(crate) initial_capacity: usize,
    pub(crate) refresher: Option<Refresher<K, V>>,
    pub(crate) executor: Executor,
}

/// Stripes shared by the threads that found no exclusive stripe free.
const SHARED_STRIPES: usize = 4;

/// A thread's claim on one stripe of one cache: while it holds the claim,
/// the thread is the stripe's only writer. Released when the thread exits.
struct Claim {
    stripes: Weak<[Stripe]>,
    /// The stripes' address: a live `Weak` keeps it from being reused.
    addr: usize,
    index: usize,
    exclusive: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = LAST.try_with(|last| last.set((0, 0)));
        if self.exclusive
            && let Some(stripes) = self.stripes.upgrade()
        {
            stripes[self.index].owned.store(false, Release);
        }
    }
}

thread_local! {
    static CLAIMS: RefCell<Vec<Claim>> = const { RefCell::new(Vec::new()) };
    /// The stripes' address and index of the claim this thread used last
    /// (`(0, 0)`: none), so that a thread reading one cache finds its stripe
    /// with one comparison. Always one of the live claims in `CLAIMS`: their
    /// `Weak`s keep the address from being reused, and it is reset whenever
    /// claims are dropped.
    static LAST: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    static STRIPE_HINT: usize = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        #[allow(clippy::cast_possible_truncation)] // any bits will do
        let n = NEXT.fetch_add(1, Relaxed) as usize;
        n
    };
}

/// A lookup's result.
struct Found<K, V> {
    value: V,
    cost: u32,
    /// Served past its TTL, within the stale limit.
    stale: bool,
    /// The key and its previous refresh state, if this read claimed the
    /// entry's refresh.
    refresh: Option<(K, u8)>,
}

/// What [`Inner::lookup`] found.
enum Lookup<'a, K, V> {
    /// A live entry: its value and cost.
    Hit(V, u32),
    /// No entry.
    Miss,
    /// An entry whose deadlines or namespace generation need a look: the
    /// shard, still read-locked, the slot and the hash.
    Slow(RwLockReadGuard<'a, ShardData<K, V>>, usize, u64),
}

/// A duration in nanoseconds, saturating.
#[inline]
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(NEVER)
}

/// Locks `m`, carrying on past a poisoned lock: the cache's state stays
/// consistent when a loader panics.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A concurrent, bounded, in-process cache with per-namespace expiry,
/// single-flight loads and statistics.
///
/// A `Cache` is a cheap handle ([`Clone`] shares the same store) on one
/// *namespace* of the store: the default one, or one declared with
/// [`CacheBuilder::namespace`](crate::CacheBuilder::namespace) and obtained
/// with [`namespace`](Self::namespace). Lookups, inserts, loads, invalidation
/// and [`stats`](Self::stats) apply to the handle's namespace; capacity,
/// [`clear`](Self::clear) and [`total_stats`](Self::total_stats) are shared by
/// all of them.
///
/// See the [crate documentation](crate) for an example.
pub struct Cache<K, V> {
    inner: Arc<Inner<K, V>>,
    ns: u16,
}

impl<K, V> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            ns: self.ns,
        }
    }
}

impl<K, V> fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field(
                "namespace",
                &self.inner.namespaces[usize::from(self.ns)].settings.name,
            )
            .field("max_weight", &self.inner.max_weight)
            .field("weight", &self.inner.weight.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A builder; see [`CacheBuilder`](crate::CacheBuilder) for the defaults.
    pub fn builder() -> crate::CacheBuilder<K, V> {
        crate::CacheBuilder::new()
    }

    /// A cache of at most `max_entries` entries, with no expiry.
    ///
    /// # Panics
    ///
    /// If `max_entries` is zero.
    #[must_use]
    pub fn new(max_entries: u64) -> Self {
        Self::builder()
            .max_capacity(max_entries)
            .build()
            .expect("max_entries must be at least 1")
    }

    pub(crate) fn from_parts(parts: Parts<K, V>) -> Self {
        let shards = parts.shards.next_power_of_two();
        let per_shard = parts.initial_capacity.div_ceil(shards);
        let namespaces: Box<[Namespace]> = parts
            .namespaces
            .into_iter()
            .map(|settings| Namespace {
                settings,
                generation: AtomicU32::new(0),
                counters: Padded::default(),
            })
            .collect();
        let ns_index = namespaces
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.settings.name.clone(),
                    u16::try_from(i).expect("at most 65536 namespaces"),
                )
            })
            .collect();
        let exclusive = std::thread::available_parallelism()
            .map_or(4, std::num::NonZero::get)
            .saturating_mul(4)
            .clamp(16, 256);
        let stripes = (0..exclusive + SHARED_STRIPES)
            .map(|_| Stripe {
                owned: AtomicBool::new(false),
                counters: HotCounters::new(namespaces.len()),
            })
            .collect();
        let epoch = parts.clock.now();
        let inner = Inner {
            shards: (0..shards)
                .map(|_| Padded(RwLock::new(ShardData::with_capacity(per_shard))))
                .collect(),
            shard_mask: shards as u64 - 1,
            hasher: foldhash::fast::RandomState::default(),
            policy: Mutex::new(parts.policy),
            stripes,
            exclusive,
            namespaces,
            ns_index,
            clock: parts.clock,
            epoch,
            weigher: parts.weigher,
            max_weight: parts.max_weight,
            max_entry_weight: parts.max_entry_weight,
            jitter: parts.jitter,
            flights: Mutex::new(HashMap::default()),
            weight: AtomicU64::new(0),
            refresher: parts.refresher,
            executor: parts.executor,
            #[cfg(feature = "redis")]
            tier: Mutex::new(None),
        };
        Cache {
            inner: Arc::new(inner),
            ns: 0,
        }
    }

    /// A handle on the namespace `name`, sharing this cache's store.
    ///
    /// # Errors
    ///
    /// [`UnknownNamespace`] if the cache was not built with that namespace
    /// (the default namespace is called `"default"`).
    pub fn namespace(&self, name: &str) -> Result<Cache<K, V>, UnknownNamespace> {
        match self.inner.ns_index.get(name) {
            Some(&ns) => Ok(Cache {
                inner: Arc::clone(&self.inner),
                ns,
            }),
            None => Err(UnknownNamespace {
                name: name.to_owned(),
            }),
        }
    }

    /// This handle's namespace name.
    #[must_use]
    pub fn namespace_name(&self) -> &str {
        &self.ns_data().settings.name
    }

    /// The names of all namespaces, the default one first.
    #[must_use]
    pub fn namespace_names(&self) -> Vec<&str> {
        self.inner
            .namespaces
            .iter()
            .map(|n| n.settings.name.as_str())
            .collect()
    }

    fn ns_data(&self) -> &Namespace {
        &self.inner.namespaces[usize::from(self.ns)]
    }

    /// The value for `key`, if present and live. Counts a hit or a miss.
    ///
    /// In a namespace with refresh-ahead, a read in the last stretch of the
    /// entry's TTL also starts its background reload (once), and a read
    /// past the TTL returns the old value while a reload runs or after it
    /// failed, within the stale limit (see
    /// [`NamespaceConfig::refresh_ahead`](crate::NamespaceConfig::refresh_ahead)).
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (stripe, mine) = self.inner.stripe();
        match self.inner.lookup(self.ns, key) {
            Lookup::Hit(value, cost) => {
                stripe.counters.hit(usize::from(self.ns), cost, mine);
                Some(value)
            }
            Lookup::Miss => {
                stripe.counters.miss(usize::from(self.ns), mine);
                None
            }
            Lookup::Slow(shard, i, hash) => self.get_slow(shard, i, hash),
        }
    }

    /// The rest of [`get`](Self::get), for an entry that needs its
    /// deadlines or its namespace's generation looked at.
    #[inline(never)]
    fn get_slow(&self, shard: RwLockReadGuard<'_, ShardData<K, V>>, i: usize, hash: u64) -> Option<V> {
        let ns = usize::from(self.ns);
        let (stripe, mine) = self.inner.stripe();
        match self.inner.lookup_slow(self.ns, hash, shard, i) {
            Some(found) => {
                stripe.counters.hit(ns, found.cost, mine);
                if found.stale {
                    stripe.counters.stale(ns, mine);
                }
                if let Some((key, previous)) = found.refresh {
                    self.start_refresh(key, previous);
                }
                Some(found.value)
            }
            None => {
                stripe.counters.miss(ns, mine);
                None
            }
        }
    }

    /// Whether `key` is present and live, without counting a lookup or
    /// touching the policy.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.peek(self.ns, key).is_some()
    }

    /// Inserts or replaces `key`'s value, with the namespace's time-to-live.
    ///
    /// A value heavier than the maximum entry weight is not cached and is
    /// counted as `rejected`; use [`try_insert`](Self::try_insert) to get it
    /// back as an error instead.
    pub fn insert(&self, key: K, value: V) {
        let _ = self.try_insert(key, value);
    }

    /// Inserts or replaces `key`'s value with its own time-to-live (jitter
    /// applies), overriding the namespace's.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        let _ = self.inner.insert(self.ns, key, value, Some(ttl), 0);
    }

    /// Inserts or replaces `key`'s value and records what loading it cost,
    /// in the caller's unit (API micro-dollars, milliseconds, ...): every
    /// later hit on it adds `cost` to [`CacheStats::cost_saved`].
    pub fn insert_with_cost(&self, key: K, value: V, cost: u32) {
        let _ = self.inner.insert(self.ns, key, value, None, cost);
    }

    /// Like [`insert`](Self::insert), but returns a value that is too heavy.
    ///
    /// # Errors
    ///
    /// [`InsertError::TooHeavy`], with the value, if it weighs more than the
    /// maximum entry weight.
    pub fn try_insert(&self, key: K, value: V) -> Result<(), InsertError<V>> {
        self.inner.insert(self.ns, key, value, None, 0)
    }

    /// Removes `key` and returns its value, if it was present and live.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.remove(self.ns, key)
    }

    /// Empties the whole store, every namespace. Counted as invalidations.
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// Invalidates every entry of this namespace in O(1), by moving its
    /// generation on; the entries' memory is reclaimed lazily.
    pub fn invalidate_all(&self) {
        self.ns_data().generation.fetch_add(1, Relaxed);
    }

    /// Removes expired and invalidated entries now. Takes time proportional
    /// to the number of entries; the cache otherwise reclaims them lazily.
    pub fn purge(&self) {
        self.inner.purge();
    }

    /// The value for `key`, or the result of `load` if absent, which is then
    /// cached. Concurrent callers missing the same key wait for one load;
    /// a load error goes to all of them and is not cached.
    ///
    /// The load's cost (see [`insert_with_cost`](Self::insert_with_cost)) is
    /// its duration in microseconds.
    ///
    /// A loader must not load its own key from the same cache: it would
    /// wait for itself.
    ///
    /// # Errors
    ///
    /// The loader's error, shared between the callers that waited for it.
    pub fn get_with<E, F>(&self, key: K, load: F) -> Result<V, Arc<E>>
    where
        F: FnOnce() -> Result<V, E>,
        E: Send + Sync + 'static,
    {
        self.get_with_cost(key, None, load)
    }

    /// [`get_with`](Self::get_with) with the load's cost given by the caller.
    ///
    /// # Errors
    ///
    /// The loader's error, shared between the callers that waited for it.
    pub fn get_with_cost<E, F>(&self, key: K, cost: Option<u32>, load: F) -> Result<V, Arc<E>>
    where
        F: FnOnce() -> Result<V, E>,
        E: Send + Sync + 'static,
    {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let guard = loop {
            match self.join(&key) {
                Joined::Leader(guard) => break guard,
                Joined::Waiter(flight) => {
                    if let Some(r) = self.after_wait(flight.wait()) {
                        return r;
                    }
                }
            }
        };
        if let Some((v, _)) = self.inner.peek(self.ns, &key) {
            guard.finish(Outcome::Loaded(v.clone()));
            return Ok(v);
        }
        let start = self.inner.clock.now();
        let result = load();
        self.complete(guard, key, result, start, cost, None)
    }

    /// The async form of [`get_with`](Self::get_with): the value for `key`,
    /// or the output of `load()` if absent. Needs no particular runtime.
    ///
    /// If the leading caller's future is dropped before its load finishes,
    /// a waiting caller takes over and loads again.
    ///
    /// # Errors
    ///
    /// The loader's error, shared between the callers that waited for it.
    pub async fn get_or_load<E, F, Fut>(&self, key: K, load: F) -> Result<V, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        self.get_or_load_with_cost(key, None, load).await
    }

    /// [`get_or_load`](Self::get_or_load) with the load's cost given by the
    /// caller (`None`: its duration in microseconds).
    ///
    /// # Errors
    ///
    /// The loader's error, shared between the callers that waited for it.
    pub async fn get_or_load_with_cost<E, F, Fut>(
        &self,
        key: K,
        cost: Option<u32>,
        load: F,
    ) -> Result<V, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        self.load_once(key, || async move { load().await.map(|v| (v, None, cost)) })
            .await
    }

    /// The single-flight load behind the L2 tier: like
    /// [`get_or_load_with_cost`](Self::get_or_load_with_cost), but the loader
    /// also says how long the L1 may keep the value (`None`: the
    /// namespace's TTL) and what it cost (`None`: its duration).
    #[cfg(feature = "redis")]
    pub(crate) async fn get_or_load_tiered<E, F, Fut>(&self, key: K, load: F) -> Result<V, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, Option<Duration>, Option<u32>), E>>,
        E: Send + Sync + 'static,
    {
        self.load_once(key, load).await
    }

    /// The one single-flight load path: a hit, or join the key's flight
    /// (leader loads; waiters share its outcome), with the loader giving the
    /// value, its L1 TTL (`None`: the namespace's) and its cost (`None`: the
    /// load's duration).
    async fn load_once<E, F, Fut>(&self, key: K, load: F) -> Result<V, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, Option<Duration>, Option<u32>), E>>,
        E: Send + Sync + 'static,
    {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let guard = loop {
            match self.join(&key) {
                Joined::Leader(guard) => break guard,
                Joined::Waiter(flight) => {
                    if let Some(r) = self.after_wait(flight.wait_async().await) {
                        return r;
                    }
                }
            }
        };
        if let Some((v, _)) = self.inner.peek(self.ns, &key) {
            guard.finish(Outcome::Loaded(v.clone()));
            return Ok(v);
        }
        let start = self.inner.clock.now();
        match load().await {
            Ok((v, ttl, cost)) => self.complete(guard, key, Ok::<_, E>(v), start, cost, ttl),
            Err(e) => self.complete(guard, key, Err(e), start, None, None),
        }
    }

    /// The namespace's L1 time-to-live, if any.
    #[cfg(feature = "redis")]
    pub(crate) fn ns_ttl(&self) -> Option<Duration> {
        self.ns_data().settings.ttl
    }

    /// The cache's clock.
    #[cfg(feature = "redis")]
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Makes background refreshes (every namespace) go through `tier`.
    #[cfg(feature = "redis")]
    pub(crate) fn set_tier(&self, tier: Weak<dyn Tier<K, V>>) {
        *lock(&self.inner.tier) = Some(tier);
    }

    fn join(&self, key: &K) -> Joined<K, V> {
        let mut flights = lock(&self.inner.flights);
        if let Some(f) = flights.get(&(self.ns, key.clone())) {
            return Joined::Waiter(Arc::clone(f));
        }
        let flight = Arc::new(Flight::new());
        flights.insert((self.ns, key.clone()), Arc::clone(&flight));
        Joined::Leader(LeaderGuard {
            cache: self.clone(),
            key: Some(key.clone()),
            flight,
        })
    }

    /// Starts a background reload of `key` (its refresh flag is claimed,
    /// from state `previous`), unless a load of it is already under way.
    fn start_refresh(&self, key: K, previous: u8) {
        let flight = {
            let mut flights = lock(&self.inner.flights);
            let k = (self.ns, key.clone());
            if flights.contains_key(&k) || self.inner.refresher.is_none() {
                drop(flights);
                // That load will replace the entry; until then the entry is
                // as it was, and a later read may try again.
                self.inner.set_refresh_state(self.ns, &key, previous);
                return;
            }
            let flight = Arc::new(Flight::new());
            flights.insert(k, Arc::clone(&flight));
            flight
        };
        self.ns_data().counters.refreshes.fetch_add(1, Relaxed);
        let guard = LeaderGuard {
            cache: self.clone(),
            key: Some(key.clone()),
            flight,
        };
        let task = RefreshTask {
            cache: self.clone(),
            job: Some((guard, key)),
        };
        (self.inner.executor)(Box::new(move || task.run()));
    }

    /// Runs one background reload and stores its result.
    fn run_refresh(&self, guard: LeaderGuard<K, V>, key: K) {
        let Some(refresher) = &self.inner.refresher else {
            return;
        };
        let counters = &self.ns_data().counters;
        let settings = &self.ns_data().settings;
        let start = self.inner.clock.now();
        #[cfg(feature = "redis")]
        let tier = lock(&self.inner.tier).as_ref().and_then(Weak::upgrade);
        // Through a tier: a copy there that outlives the window (another
        // node refreshed the entry already) is taken instead of reloading.
        #[cfg(feature = "redis")]
        if let Some(tier) = &tier {
            let window = settings.refresh_ahead.unwrap_or_default();
            let fresh = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                tier.fresh(&settings.name, &key, window)
            }))
            .ok()
            .flatten();
            if let Some((v, ttl)) = fresh {
                let elapsed = self.inner.clock.elapsed(start);
                counters
                    .load_nanos
                    .fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Relaxed);
                counters.loads.fetch_add(1, Relaxed);
                let (_, cost) = self.inner.reload_ttl(self.ns, &key, &v, refresher.same);
                let cost = cost.unwrap_or_else(|| u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                let _ = self.inner.insert(self.ns, key, v.clone(), Some(ttl), cost);
                guard.finish(Outcome::Loaded(v));
                return;
            }
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (refresher.load)(&settings.name, &key)
        }))
        .unwrap_or_else(|_| Err("the reloader panicked".into()));
        let elapsed = self.inner.clock.elapsed(start);
        counters
            .load_nanos
            .fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        match result {
            Ok(v) => {
                counters.loads.fetch_add(1, Relaxed);
                let (ttl, cost) = self.inner.reload_ttl(self.ns, &key, &v, refresher.same);
                // Through a tier, the L1 copy never outlives the tier's.
                #[cfg(feature = "redis")]
                let ttl = match tier.as_ref().and_then(|t| t.l1_cap(&settings.name)) {
                    Some(cap) => Some(ttl.or(settings.ttl).map_or(cap, |t| t.min(cap))),
                    None => ttl,
                };
                let cost = cost.unwrap_or_else(|| u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                #[cfg(feature = "redis")]
                let write_back = tier.map(|tier| (tier, key.clone(), v.clone()));
                let _ = self.inner.insert(self.ns, key, v.clone(), ttl, cost);
                guard.finish(Outcome::Loaded(v));
                #[cfg(feature = "redis")]
                if let Some((tier, key, v)) = write_back {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        tier.write_back(&settings.name, &key, &v);
                    }));
                }
            }
            Err(e) => {
                counters.load_errors.fetch_add(1, Relaxed);
                self.inner.set_refresh_state(self.ns, &key, FAILED);
                let shared: AnyError = Arc::new(e);
                guard.finish(Outcome::Failed(shared));
            }
        }
    }

    fn after_wait<E: Send + Sync + 'static>(&self, outcome: Outcome<V>) -> Option<Result<V, Arc<E>>> {
        match outcome {
            Outcome::Loaded(v) => {
                self.ns_data().counters.coalesced.fetch_add(1, Relaxed);
                Some(Ok(v))
            }
            Outcome::Failed(e) => match e.downcast::<E>() {
                Ok(e) => Some(Err(e)),
                // Another caller loaded with a different error type: load again.
                Err(_) => None,
            },
            Outcome::Abandoned => None,
        }
    }

    fn complete<E: Send + Sync + 'static>(
        &self,
        guard: LeaderGuard<K, V>,
        key: K,
        result: Result<V, E>,
        start: Instant,
        cost: Option<u32>,
        ttl: Option<Duration>,
    ) -> Result<V, Arc<E>> {
        let elapsed = self.inner.clock.elapsed(start);
        let counters = &self.ns_data().counters;
        counters
            .load_nanos
            .fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        match result {
            Ok(v) => {
                counters.loads.fetch_add(1, Relaxed);
                let cost = cost.unwrap_or_else(|| u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                let _ = self.inner.insert(self.ns, key, v.clone(), ttl, cost);
                guard.finish(Outcome::Loaded(v.clone()));
                Ok(v)
            }
            Err(e) => {
                counters.load_errors.fetch_add(1, Relaxed);
                let e = Arc::new(e);
                let shared: AnyError = e.clone();
                guard.finish(Outcome::Failed(shared));
                Err(e)
            }
        }
    }

    /// This namespace's statistics.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.ns_data()
            .counters
            .snapshot(&self.inner.stripes, usize::from(self.ns))
    }

    /// Statistics summed over every namespace.
    #[must_use]
    pub fn total_stats(&self) -> CacheStats {
        let mut total = CacheStats::default();
        for (i, n) in self.inner.namespaces.iter().enumerate() {
            total.add(&n.counters.snapshot(&self.inner.stripes, i));
        }
        total
    }

    /// Entries resident in the whole store.
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        lock(&self.inner.policy).len()
    }

    /// Total weight of the entries in the whole store (their count, without a
    /// weigher).
    #[must_use]
    pub fn weight(&self) -> u64 {
        self.inner.weight.load(Relaxed)
    }

    /// The store's maximum total weight.
    #[must_use]
    pub fn max_weight(&self) -> u64 {
        self.inner.max_weight
    }
}

impl<K, T> Cache<K, Option<T>>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    /// Negative caching: like [`get_or_load`](Self::get_or_load) for a
    /// loader that may find nothing. `None` ("not found") is cached too,
    /// with the namespace's negative time-to-live
    /// ([`NamespaceConfig::negative_ttl`](crate::NamespaceConfig::negative_ttl)),
    /// or its normal one if none is set.
    ///
    /// # Errors
    ///
    /// The loader's error, shared between the callers that waited for it.
    pub async fn get_or_load_optional<E, F, Fut>(&self, key: K, load: F) -> Result<Option<T>, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
        E: Send + Sync + 'static,
    {
        let value = self.get_or_load(key.clone(), load).await?;
        if value.is_none()
            && let Some(ttl) = self.ns_data().settings.negative_ttl
        {
            // Re-insert with the short TTL unless someone stored a value since.
            if self.inner.peek(self.ns, &key).is_some_and(|(v, _)| v.is_none()) {
                let _ = self.inner.insert_replacing(self.ns, key, None, Some(ttl), 0);
            }
        }
        Ok(value)
    }
}

/// A background reload handed to the executor. If the executor drops it
/// without running it, the entry's refresh counts as failed (so a later read
/// retries) and waiters on its flight start over.
struct RefreshTask<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    cache: Cache<K, V>,
    job: Option<(LeaderGuard<K, V>, K)>,
}

impl<K, V> RefreshTask<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn run(mut self) {
        if let Some((guard, key)) = self.job.take() {
            self.cache.run_refresh(guard, key);
        }
    }
}

impl<K, V> Drop for RefreshTask<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let Some((guard, key)) = self.job.take() {
            self.cache.inner.set_refresh_state(self.cache.ns, &key, FAILED);
            drop(guard);
        }
    }
}

enum Joined<K: Hash + Eq, V: Clone> {
    Leader(LeaderGuard<K, V>),
    Waiter(Arc<Flight<V>>),
}

/// Unregisters the flight when the leader finishes, or abandons it if the
/// leader is dropped (future cancelled, loader panicked). Owns a handle on
/// the cache so that a background refresh can carry it to another thread.
struct LeaderGuard<K: Hash + Eq, V: Clone> {
    cache: Cache<K, V>,
    key: Option<K>,
    flight: Arc<Flight<V>>,
}

impl<K: Hash + Eq, V: Clone> LeaderGuard<K, V> {
    fn finish(mut self, outcome: Outcome<V>) {
        self.release(outcome);
    }

    fn release(&mut self, outcome: Outcome<V>) {
        if let Some(key) = self.key.take() {
            let mut flights = lock(&self.cache.inner.flights);
            let k = (self.cache.ns, key);
            if flights.get(&k).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
                flights.remove(&k);
            }
            drop(flights);
            self.flight.finish(outcome);
        }
    }
}

impl<K: Hash + Eq, V: Clone> Drop for LeaderGuard<K, V> {
    fn drop(&mut self) {
        self.release(Outcome::Abandoned);
    }
}

/// The policy's view of the reference counters in the slots: a node's
/// slot is found by its hash and node index under its shard's read lock.
/// The policy calls these holding its own lock and no shard's.
impl<K, V> Cells for Inner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn take(&self, node: u32, hash: u64) -> u8 {
        let shard = self.shard(hash).read().unwrap_or_else(PoisonError::into_inner);
        shard
            .find(hash, |s| s.node == node)
            .map_or(0, |i| shard.slots[i].refs.swap(0, Relaxed))
    }

    fn drain(&self, f: &mut dyn FnMut(u32, u8)) {
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            for slot in &shard.slots {
                if slot.refs.load(Relaxed) != 0 {
                    f(slot.node, slot.refs.swap(HIT, Relaxed));
                }
            }
        }
    }
}

impl<K, V> Inner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, ns: u16, key: &Q) -> u64 {
        let h = self.hasher.hash_one(key);
        if ns == 0 {
            h
        } else {
            (h ^ u64::from(ns))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29)
        }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, V> {
        // The low bits pick the shard; the table uses the high half.
        #[allow(clippy::cast_possible_truncation)]
        let i = (hash & self.shard_mask) as usize;
        &self.shards[i].0
    }

    /// This thread's stripe, and whether the thread owns it (is its only
    /// writer).
    #[inline(always)]
    fn stripe(&self) -> (&Stripe, bool) {
        let addr = Arc::as_ptr(&self.stripes).cast::<()>().addr();
        let (last, index) = LAST.get();
        if last == addr
            && let Some(stripe) = self.stripes.get(index)
        {
            return (stripe, true);
        }
        self.stripe_slow(addr)
    }

    /// [`stripe`](Self::stripe) for a thread that last used another cache.
    #[cold]
    #[inline(never)]
    fn stripe_slow(&self, addr: usize) -> (&Stripe, bool) {
        let claimed = CLAIMS
            .try_with(|claims| {
                claims
                    .borrow()
                    .iter()
                    .find(|c| c.addr == addr)
                    .map(|c| (c.index, c.exclusive))
            })
            .ok()
            .flatten();
        let (index, exclusive) = claimed.unwrap_or_else(|| self.claim(addr));
        if exclusive {
            LAST.with(|last| last.set((addr, index)));
        }
        (&self.stripes[index], exclusive)
    }

    /// Claims a free exclusive stripe for this thread, or picks a shared one.
    #[cold]
    fn claim(&self, addr: usize) -> (usize, bool) {
        let shared = self.exclusive + STRIPE_HINT.with(|h| *h) % SHARED_STRIPES;
        let Some(index) = self.stripes[..self.exclusive]
            .iter()
            .position(|s| s.owned.compare_exchange(false, true, Acquire, Relaxed).is_ok())
        else {
            return (shared, false);
        };
        let recorded = CLAIMS.try_with(|claims| {
            let mut claims = claims.borrow_mut();
            // Forget the claims on caches that are gone (which resets
            // `LAST`: their addresses may be reused).
            claims.retain(|c| c.stripes.strong_count() > 0);
            claims.push(Claim {
                stripes: Arc::downgrade(&self.stripes),
                addr,
                index,
                exclusive: true,
            });
        });
        if recorded.is_ok() {
            (index, true)
        } else {
            // The thread is exiting: its claim could never be released.
            self.stripes[index].owned.store(false, Release);
            (shared, false)
        }
    }

    #[inline]
    fn now(&self) -> u64 {
        u64::try_from(self.clock.now().saturating_duration_since(self.epoch).as_nanos()).unwrap_or(NEVER - 1)
    }

    /// A slot's hash, for the table when it grows or a slot moves.
    #[inline]
    fn slot_hash(&self, slot: &Slot<K, V>) -> u64 {
        self.hash(slot.ns, &slot.key)
    }

    /// Finds `key`: a hit on a live entry is answered here, an entry with
    /// deadlines or of an invalidated generation goes to
    /// [`lookup_slow`](Self::lookup_slow).
    #[inline]
    fn lookup<Q>(&self, ns: u16, key: &Q) -> Lookup<'_, K, V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(ns, key);
        let shard = self.shard(hash).read().unwrap_or_else(PoisonError::into_inner);
        let Some((i, slot)) = shard.table.find_map(hash, |i| {
            let i = i as usize;
            shard
                .slots
                .get(i)
                .filter(|s| s.ns == ns && s.key.borrow() == key)
                .map(|s| (i, s))
        }) else {
            return Lookup::Miss;
        };
        // The common case, kept small so a hit needs few registers: no
        // entry of this shard has a deadline and the namespace was not
        // invalidated since the entry was written.
        if shard.times.is_empty()
            && self
                .namespaces
                .get(usize::from(ns))
                .is_some_and(|n| n.generation.load(Relaxed) == slot.generation)
        {
            refs::touch(&slot.refs);
            let (value, cost) = (slot.value.clone(), slot.cost);
            drop(shard);
            return Lookup::Hit(value, cost);
        }
        Lookup::Slow(shard, i, hash)
    }

    /// The rest of [`lookup`](Self::lookup): an invalidated entry, or one
    /// in a shard with deadlines (expiry, stale serving, refresh-ahead,
    /// time-to-idle): finds a live entry (or a stale one that may still be
    /// served), and claims its refresh when the read falls in the refresh
    /// window.
    #[inline]
    fn lookup_slow(
        &self,
        ns: u16,
        hash: u64,
        shard: RwLockReadGuard<'_, ShardData<K, V>>,
        i: usize,
    ) -> Option<Found<K, V>> {
        let slot = &shard.slots[i];
        let namespace = &self.namespaces[usize::from(ns)];
        let invalidated = slot.generation != namespace.generation.load(Relaxed);
        let mut expired = false;
        let mut stale = false;
        let mut refresh = None;
        if !invalidated
            && let Some(times) = shard.times(i)
            && (times.expires_at != NEVER || times.aux.load(Relaxed) != NEVER)
        {
            let settings = &namespace.settings;
            let now = self.now();
            let deadline = times.deadline(settings);
            if now >= deadline {
                // Past the TTL (not the idle time) and a refresh is under
                // way or failed: serve the old value up to the stale limit.
                let state = slot.refresh.load(Relaxed);
                match settings.stale_limit {
                    Some(limit)
                        if deadline == times.expires_at
                            && state != IDLE
                            && now < times.expires_at.saturating_add(nanos(limit)) =>
                    {
                        stale = true;
                        if state == FAILED
                            && slot
                                .refresh
                                .compare_exchange(FAILED, RUNNING, Relaxed, Relaxed)
                                .is_ok()
                        {
                            refresh = Some((slot.key.clone(), FAILED));
                        }
                    }
                    _ => expired = true,
                }
            } else {
                if let Some(window) = settings.refresh_ahead
                    && now >= times.expires_at.saturating_sub(nanos(window))
                {
                    let state = slot.refresh.load(Relaxed);
                    if state != RUNNING
                        && slot
                            .refresh
                            .compare_exchange(state, RUNNING, Relaxed, Relaxed)
                            .is_ok()
                    {
                        refresh = Some((slot.key.clone(), state));
                    }
                }
                if let Some(tti) = settings.tti {
                    let tti = nanos(tti);
                    let next = now.saturating_add(tti);
                    // Skip the store when the deadline barely moves, so hot
                    // entries do not bounce their cache line between cores.
                    if next - times.aux.load(Relaxed).min(next) > tti / 64 {
                        times.aux.store(next, Relaxed);
                    }
                }
            }
        }
        if invalidated || expired {
            let node = slot.node;
            drop(shard);
            let cause = if invalidated {
                Cause::Invalidated
            } else {
                Cause::Expired
            };
            self.reclaim(hash, node, cause);
            return None;
        }
        refs::touch(&slot.refs);
        let found = Found {
            value: slot.value.clone(),
            cost: slot.cost,
            stale,
            refresh,
        };
        drop(shard);
        Some(found)
    }

    /// Finds a live entry without recording anything.
    fn peek<Q>(&self, ns: u16, key: &Q) -> Option<(V, u32)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(ns, key);
        let shard = self.shard(hash).read().unwrap_or_else(PoisonError::into_inner);
        let i = shard.find(hash, |s| s.ns == ns && s.key.borrow() == key)?;
        let slot = &shard.slots[i];
        let namespace = &self.namespaces[usize::from(ns)];
        let deadline = deadline_of(shard.times(i), &namespace.settings);
        let live = slot.generation == namespace.generation.load(Relaxed)
            && (deadline == NEVER || self.now() < deadline);
        live.then(|| (slot.value.clone(), slot.cost))
    }

    /// Sets the refresh state of `key`'s entry, if it is there.
    fn set_refresh_state(&self, ns: u16, key: &K, state: u8) {
        let hash = self.hash(ns, key);
        let shard = self.shard(hash).read().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = shard.find(hash, |s| s.ns == ns && s.key == *key) {
            shard.slots[i].refresh.store(state, Relaxed);
        }
    }

    /// The TTL (`None`: the namespace's) and cost for a refreshed value:
    /// with adaptive TTL, the entry's TTL doubles if the value did not
    /// change and halves if it did, within the namespace's range. The cost
    /// is the current entry's (the caller's price of the load), if it had one.
    fn reload_ttl(
        &self,
        ns: u16,
        key: &K,
        new: &V,
        same: fn(&V, &V) -> bool,
    ) -> (Option<Duration>, Option<u32>) {
        let settings = &self.namespaces[usize::from(ns)].settings;
        let hash = self.hash(ns, key);
        let shard = self.shard(hash).read().unwrap_or_else(PoisonError::into_inner);
        let Some(i) = shard.find(hash, |s| s.ns == ns && s.key == *key) else {
            return (None, None);
        };
        let slot = &shard.slots[i];
        let cost = (slot.cost != 0).then_some(slot.cost);
        let Some((min, max)) = settings.adaptive_ttl else {
            return (None, cost);
        };
        let current = match shard.times(i).map_or(NEVER, |t| t.aux.load(Relaxed)) {
            NEVER => settings.ttl.unwrap_or(min),
            n => Duration::from_nanos(n),
        };
        let next = if same(&slot.value, new) {
            current.saturating_mul(2).min(max)
        } else {
            (current / 2).max(min)
        };
        (Some(next), cost)
    }

    /// Removes the slot for `(hash, node)` if the policy lock is free.
    fn reclaim(&self, hash: u64, node: u32, cause: Cause) {
        if let Ok(mut policy) = self.policy.try_lock() {
            self.remove_slot(&mut policy, hash, node, Some(cause));
        }
    }

    /// Removes the slot for `(hash, node)` and its policy node. With
    /// `cause == None` the cause is worked out from the slot (an eviction).
    fn remove_slot(&self, policy: &mut Policy, hash: u64, node: u32, cause: Option<Cause>) -> Option<V> {
        let mut shard = self.shard(hash).write().unwrap_or_else(PoisonError::into_inner);
        let i = shard.find(hash, |s| s.node == node)?;
        let (slot, times) = shard.remove_at(hash, i, |s| self.slot_hash(s));
        drop(shard);
        policy.remove(node);
        self.weight.store(policy.weight(), Relaxed);
        let namespace = &self.namespaces[usize::from(slot.ns)];
        let cause = cause.unwrap_or_else(|| self.cause_of(&slot, times.as_ref(), namespace));
        namespace.counters.count_removal(cause);
        Some(slot.value)
    }

    fn cause_of(&self, slot: &Slot<K, V>, times: Option<&Times>, namespace: &Namespace) -> Cause {
        let deadline = deadline_of(times, &namespace.settings);
        if slot.generation != namespace.generation.load(Relaxed) {
            Cause::Invalidated
        } else if deadline != NEVER && self.now() >= deadline {
            Cause::Expired
        } else {
            Cause::Size
        }
    }

    fn deadlines(&self, settings: &NsSettings, ttl: Option<Duration>) -> (u64, u64) {
        let ttl = ttl.or(settings.ttl);
        if ttl.is_none() && settings.tti.is_none() {
            return (NEVER, NEVER);
        }
        let now = self.now();
        let expires_at = ttl.map_or(NEVER, |ttl| {
            let nanos = u64::try_from(ttl.as_nanos()).unwrap_or(NEVER);
            // Jitter only shortens a TTL, so an L1 entry never outlives the
            // TTL it was given.
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let cut = (nanos as f64 * self.jitter * fastrand::f64()) as u64;
            now.saturating_add(nanos - cut.min(nanos))
        });
        let aux = match (settings.tti, settings.adaptive_ttl, ttl) {
            (Some(tti), _, _) => now.saturating_add(nanos(tti)),
            (None, Some(_), Some(ttl)) => nanos(ttl),
            _ => NEVER,
        };
        (expires_at, aux)
    }

    fn weigh(&self, key: &K, value: &V) -> u32 {
        self.weigher.as_ref().map_or(1, |w| w(key, value))
    }

    fn insert(
        &self,
        ns: u16,
        key: K,
        value: V,
        ttl: Option<Duration>,
        cost: u32,
    ) -> Result<(), InsertError<V>> {
        self.insert_replacing(ns, key, value, ttl, cost).map(drop)
    }

    fn insert_replacing(
        &self,
        ns: u16,
        key: K,
        value: V,
        ttl: Option<Duration>,
        cost: u32,
    ) -> Result<Option<V>, InsertError<V>> {
        let namespace = &self.namespaces[usize::from(ns)];
        let weight = self.weigh(&key, &value);
        if u64::from(weight) > self.max_entry_weight {
            namespace.counters.rejected.fetch_add(1, Relaxed);
            return Err(InsertError::TooHeavy {
                value,
                weight: u64::from(weight),
                max: self.max_entry_weight,
            });
        }
        let hash = self.hash(ns, &key);
        let times = self.deadlines(&namespace.settings, ttl);
        let mut policy = lock(&self.policy);
        if policy.wants_hits() {
            policy.report_hits(self.stripes.iter().map(|s| s.counters.hits()).sum());
        }
        let generation = namespace.generation.load(Relaxed);
        let mut replaced = None;
        // The policy is called with no shard locked: it reads reference
        // counters through `Cells`, which read-locks their shards. Holding
        // the policy lock, no other thread can add or remove a slot between
        // the two write locks below.
        let mut shard = self.shard(hash).write().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = shard.find(hash, |s| s.ns == ns && s.key == key) {
            let old_cause = self.cause_of(&shard.slots[i], shard.times(i), namespace);
            shard.set_times(i, times);
            let slot = &mut shard.slots[i];
            slot.refresh.store(IDLE, Relaxed);
            slot.generation = generation;
            slot.cost = cost;
            let old = std::mem::replace(&mut slot.value, value);
            let node = slot.node;
            drop(shard);
            if old_cause == Cause::Size {
                replaced = Some(old);
            } else {
                // The old entry was dead: count it out and the new one in.
                namespace.counters.count_removal(old_cause);
                namespace.counters.entries.fetch_add(1, Relaxed);
                namespace.counters.inserts.fetch_add(1, Relaxed);
            }
            policy.update(node, hash, weight, self);
        } else {
            drop(shard);
            let node = policy.insert(hash, weight, self);
            let slot = Slot {
                key,
                value,
                node,
                generation,
                cost,
                ns,
                refresh: AtomicU8::new(IDLE),
                refs: AtomicU8::new(0),
            };
            self.shard(hash)
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(hash, slot, times);
            namespace.counters.entries.fetch_add(1, Relaxed);
            namespace.counters.inserts.fetch_add(1, Relaxed);
        }
        let mut evicted: Vec<Evicted> = Vec::new();
        policy.maintain(&mut evicted, self);
        for e in evicted {
            self.remove_slot_evicted(&mut policy, e);
        }
        self.weight.store(policy.weight(), Relaxed);
        Ok(replaced)
    }

    /// Removes the slot of an entry the policy already dropped.
    fn remove_slot_evicted(&self, policy: &mut Policy, e: Evicted) {
        let mut shard = self.shard(e.hash).write().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = shard.find(e.hash, |s| s.node == e.node) {
            let (slot, times) = shard.remove_at(e.hash, i, |s| self.slot_hash(s));
            drop(shard);
            let namespace = &self.namespaces[usize::from(slot.ns)];
            namespace
                .counters
                .count_removal(self.cause_of(&slot, times.as_ref(), namespace));
        }
        let _ = policy;
    }

    fn remove<Q>(&self, ns: u16, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(ns, key);
        let mut policy = lock(&self.policy);
        // Remove first, then decide whether it was live: a dead entry is
        // counted by its own cause and not returned.
        let mut shard = self.shard(hash).write().unwrap_or_else(PoisonError::into_inner);
        let i = shard.find(hash, |s| s.ns == ns && s.key.borrow() == key)?;
        let (slot, times) = shard.remove_at(hash, i, |s| self.slot_hash(s));
        drop(shard);
        policy.remove(slot.node);
        self.weight.store(policy.weight(), Relaxed);
        let namespace = &self.namespaces[usize::from(ns)];
        match self.cause_of(&slot, times.as_ref(), namespace) {
            Cause::Size => {
                namespace.counters.count_removal(Cause::Removed);
                Some(slot.value)
            }
            cause => {
                namespace.counters.count_removal(cause);
                None
            }
        }
    }

    fn clear(&self) {
        let mut policy = lock(&self.policy);
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
            shard.table.clear();
            shard.times.clear();
            for slot in shard.slots.drain(..) {
                self.namespaces[usize::from(slot.ns)]
                    .counters
                    .count_removal(Cause::Invalidated);
            }
        }
        policy.clear();
        self.weight.store(0, Relaxed);
    }

    fn purge(&self) {
        let mut policy = lock(&self.policy);
        let now = self.now();
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
            // From the end, so that the slot a removal moves into the hole
            // has been looked at already.
            for i in (0..shard.slots.len()).rev() {
                let slot = &shard.slots[i];
                let namespace = &self.namespaces[usize::from(slot.ns)];
                let cause = if slot.generation != namespace.generation.load(Relaxed) {
                    Cause::Invalidated
                } else if now >= deadline_of(shard.times(i), &namespace.settings) {
                    Cause::Expired
                } else {
                    continue;
                };
                let hash = self.slot_hash(slot);
                let (slot, _) = shard.remove_at(hash, i, |s| self.slot_hash(s));
                policy.remove(slot.node);
                namespace.counters.count_removal(cause);
            }
        }
        self.weight.store(policy.weight(), Relaxed);
    }
}

impl<K, V> StatsSource for Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Reports, per namespace (label `namespace`) and tier (label `tier`,
    /// `l1`): `brisk_cache_{hits,misses,loads,load_errors,coalesced,inserts,
    /// rejected,refreshes,stale_hits,cost_saved}_total`, `brisk_cache_load_seconds_total` (a gauge, as it
    /// is fractional), `brisk_cache_evictions_total{cause}`,
    /// `brisk_cache_entries`, `brisk_cache_hit_ratio`; and for the whole
    /// store `brisk_cache_weight` and `brisk_cache_max_weight`.
    fn report_stats(&self, out: &mut StatsReport) {
        for (i, n) in self.inner.namespaces.iter().enumerate() {
            let s = n.counters.snapshot(&self.inner.stripes, i);
            let name = n.settings.name.clone();
            let counters: [(&'static str, &'static str, u64); 10] = [
                (
                    "brisk_cache_hits_total",
                    "Lookups that found a live entry",
                    s.hits,
                ),
                (
                    "brisk_cache_misses_total",
                    "Lookups that found no live entry",
                    s.misses,
                ),
                (
                    "brisk_cache_loads_total",
                    "Loader calls that returned a value",
                    s.loads,
                ),
                (
                    "brisk_cache_load_errors_total",
                    "Loader calls that failed",
                    s.load_errors,
                ),
                (
                    "brisk_cache_coalesced_total",
                    "Misses served by another caller's load",
                    s.coalesced,
                ),
                ("brisk_cache_inserts_total", "New entries", s.inserts),
                (
                    "brisk_cache_rejected_total",
                    "Values over the maximum entry weight",
                    s.rejected,
                ),
                (
                    "brisk_cache_refreshes_total",
                    "Background refreshes started by refresh-ahead",
                    s.refreshes,
                ),
                (
                    "brisk_cache_stale_hits_total",
                    "Hits served past the TTL while a refresh ran or after it failed",
                    s.stale_hits,
                ),
                (
                    "brisk_cache_cost_saved_total",
                    "Sum of the load costs of the entries hit",
                    s.cost_saved,
                ),
            ];
            for (metric, help, value) in counters {
                let _ = out
                    .counter(metric, help, value)
                    .label("namespace", name.clone())
                    .label("tier", "l1");
            }
            for (cause, value) in [
                ("size", s.evicted_size),
                ("expired", s.evicted_expired),
                ("invalidated", s.evicted_invalidated),
                ("removed", s.removed),
            ] {
                let _ = out
                    .counter(
                        "brisk_cache_evictions_total",
                        "Entries that left the cache, by cause",
                        value,
                    )
                    .label("namespace", name.clone())
                    .label("tier", "l1")
                    .label("cause", cause);
            }
            #[allow(clippy::cast_precision_loss)]
            let gauges = [
                ("brisk_cache_entries", "Entries resident", s.entries as f64),
                (
                    "brisk_cache_hit_ratio",
                    "Hits over lookups since start",
                    s.hit_ratio(),
                ),
                (
                    "brisk_cache_load_seconds_total",
                    "Time spent in loaders",
                    s.load_time.as_secs_f64(),
                ),
            ];
            for (metric, help, value) in gauges {
                let _ = out
                    .gauge(metric, help, value)
                    .label("namespace", name.clone())
                    .label("tier", "l1");
            }
        }
        #[allow(clippy::cast_precision_loss)]
        {
            let _ = out
                .gauge(
                    "brisk_cache_weight",
                    "Total weight of resident entries",
                    self.weight() as f64,
                )
                .label("tier", "l1");
            let _ = out
                .gauge(
                    "brisk_cache_max_weight",
                    "Maximum total weight",
                    self.max_weight() as f64,
                )
                .label("tier", "l1");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stay_findable_when_others_move_into_holes() {
        let cache: Cache<u64, u64> = Cache::builder().max_capacity(1_000).shards(1).build().unwrap();
        for k in 0..500 {
            cache.insert(k, k * 10);
        }
        // Each removal moves the shard's last slot into the hole.
        for k in (0..500).step_by(3) {
            assert_eq!(cache.remove(&k), Some(k * 10));
        }
        cache.insert_with_ttl(1_000, 1, Duration::from_secs(60)); // creates `times`
        for k in (1..500).step_by(3) {
            assert_eq!(cache.remove(&k), Some(k * 10));
        }
        for k in 0..500 {
            let expected = (k % 3 == 2).then_some(k * 10);
            assert_eq!(cache.get(&k), expected, "key {k}");
        }
        assert_eq!(cache.get(&1_000), Some(1));
        let shard = cache.inner.shards[0].read().unwrap();
        assert_eq!(shard.slots.len(), 166 + 1);
        assert_eq!(shard.times.len(), shard.slots.len());
        assert_eq!(shard.table.len(), shard.slots.len());
    }

    #[test]
    fn pending_hits_age_with_the_sketch_and_keep_a_hot_key() {
        // Far more inserts than the sketch's sample, so it halves several
        // times; each time the policy drains the slots' counters first
        // (reading shards with no shard locked). The hot key, hit between
        // the waves of cold keys, stays resident through all of them.
        let cache: Cache<u64, u64> = Cache::new(64);
        cache.insert(0, 0);
        for wave in 0..40u64 {
            for _ in 0..20 {
                assert_eq!(cache.get(&0), Some(0), "wave {wave}");
            }
            for k in 0..100 {
                cache.insert(1 + wave * 100 + k, k);
            }
        }
        assert_eq!(cache.get(&0), Some(0));
        assert!(cache.inner.weight.load(Relaxed) <= 64);
    }

    #[test]
    fn hits_reach_the_policy() {
        let cache: Cache<u64, u64> = Cache::new(100);
        cache.insert(1, 1);
        cache.insert(2, 2);
        for _ in 0..10 {
            assert_eq!(cache.get(&1), Some(1));
        }
        let inner = &cache.inner;
        let mut policy = lock(&inner.policy);
        policy.sync_refs(&**inner);
        // One count for the insert, ten for the hits (a count-min sketch
        // may overestimate by a collision with the other key, never under).
        assert!((11..=12).contains(&policy.frequency(inner.hash(0, &1u64))));
        assert!((1..=2).contains(&policy.frequency(inner.hash(0, &2u64))));
    }
}
