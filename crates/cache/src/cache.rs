// The cache: a sharded map for the data, one policy for the whole cache.
//
// Data lives in `shards`, each an `RwLock<HashTable<Slot>>` keyed by a
// precomputed hash, so a read takes one shard's read lock and nothing
// global. The policy (W-TinyLFU, see policy.rs) sits behind one mutex:
// inserts, removals and evictions take it, reads never wait for it. A hit
// records `(node, hash)` in its thread's read buffer stripe; when a stripe
// fills, the reader tries the policy lock and replays the buffer, and if the
// lock is busy the records are dropped (frequency is an estimate anyway:
// losing a few hits under contention costs a fraction of a point of hit
// ratio, measured in docs/benchmarks.md). Writers drain every stripe before
// they touch the policy, so a single thread sees its reads applied in order.
//
// Lock order: policy → shard, and stripe → policy only through `try_lock`,
// so no cycle can deadlock.
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
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use brisk_core::{SharedClock, StatsReport, StatsSource};
use hashbrown::HashTable;

use crate::UnknownNamespace;
use crate::error::InsertError;
use crate::flight::{AnyError, Flight, Outcome};
use crate::policy::{Evicted, Policy};
use crate::stats::{CacheStats, Cause, HotCounters, NsCounters};

pub(crate) const NEVER: u64 = u64::MAX;
const BUFFER_LEN: usize = 64;

type Shard<K, V> = RwLock<HashTable<Slot<K, V>>>;
type Flights<K, V> = HashMap<(u16, K), Arc<Flight<V>>, foldhash::fast::RandomState>;

pub(crate) type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync>;

/// One entry in a shard.
struct Slot<K, V> {
    key: K,
    value: V,
    /// Time-to-live deadline (ns since the cache's epoch), or `NEVER`.
    expires_at: u64,
    /// Time-to-idle deadline, pushed forward by reads, or `NEVER`.
    idle_at: AtomicU64,
    node: u32,
    generation: u32,
    cost: u32,
    ns: u16,
}

impl<K, V> Slot<K, V> {
    #[inline]
    fn deadline(&self) -> u64 {
        self.expires_at.min(self.idle_at.load(Relaxed))
    }
}

/// What a stripe's mutex guards: pending hit records, and the hot counters
/// of the threads that use the stripe (plain integers: updated under the
/// lock the read path takes anyway, so a hit pays no extra atomic).
#[derive(Debug)]
pub(crate) struct StripeData {
    records: Vec<(u32, u64)>,
    pub(crate) counts: Box<[u64]>,
}

/// One read-buffer stripe and its hot counters, on its own cache lines.
#[repr(align(128))]
pub(crate) struct Stripe {
    pub(crate) buffer: Mutex<StripeData>,
    /// Counts made when `buffer` was contended.
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
}

#[derive(Debug)]
struct Namespace {
    settings: NsSettings,
    generation: AtomicU32,
    counters: NsCounters,
}

pub(crate) struct Inner<K, V> {
    shards: Box<[Shard<K, V>]>,
    shard_mask: u64,
    hasher: foldhash::fast::RandomState,
    policy: Mutex<Policy>,
    stripes: Box<[Stripe]>,
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
}

thread_local! {
    static STRIPE_HINT: usize = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        #[allow(clippy::cast_possible_truncation)] // any bits will do
        let n = NEXT.fetch_add(1, Relaxed) as usize;
        n
    };
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
                counters: NsCounters::default(),
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
        let stripe_count = std::thread::available_parallelism()
            .map_or(4, std::num::NonZero::get)
            .saturating_mul(4)
            .next_power_of_two()
            .min(64);
        let stripes = (0..stripe_count)
            .map(|_| Stripe {
                buffer: Mutex::new(StripeData {
                    records: Vec::with_capacity(BUFFER_LEN),
                    counts: vec![0; namespaces.len() * 3].into_boxed_slice(),
                }),
                counters: HotCounters::new(namespaces.len()),
            })
            .collect();
        let epoch = parts.clock.now();
        let inner = Inner {
            shards: (0..shards)
                .map(|_| RwLock::new(HashTable::with_capacity(per_shard)))
                .collect(),
            shard_mask: shards as u64 - 1,
            hasher: foldhash::fast::RandomState::default(),
            policy: Mutex::new(parts.policy),
            stripes,
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
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let found = self.inner.lookup(self.ns, key);
        let ns = usize::from(self.ns);
        let stripe = self.inner.stripe();
        let Ok(mut data) = stripe.buffer.try_lock() else {
            // Contended: count with atomics and drop the policy record.
            return match found {
                Some((value, cost, _, _)) => {
                    stripe.counters.hit(ns, cost);
                    Some(value)
                }
                None => {
                    stripe.counters.miss(ns);
                    None
                }
            };
        };
        match found {
            Some((value, cost, node, hash)) => {
                data.counts[ns * 3] += 1;
                data.counts[ns * 3 + 2] += u64::from(cost);
                self.inner.record_hit(&mut data, node, hash);
                Some(value)
            }
            None => {
                data.counts[ns * 3 + 1] += 1;
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
        let result = load().await;
        self.complete(guard, key, result, start, cost, None)
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

    fn join(&self, key: &K) -> Joined<'_, K, V> {
        let mut flights = lock(&self.inner.flights);
        if let Some(f) = flights.get(&(self.ns, key.clone())) {
            return Joined::Waiter(Arc::clone(f));
        }
        let flight = Arc::new(Flight::new());
        flights.insert((self.ns, key.clone()), Arc::clone(&flight));
        Joined::Leader(LeaderGuard {
            cache: self,
            key: Some(key.clone()),
            flight,
        })
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
        guard: LeaderGuard<'_, K, V>,
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

enum Joined<'a, K: Hash + Eq, V: Clone> {
    Leader(LeaderGuard<'a, K, V>),
    Waiter(Arc<Flight<V>>),
}

/// Unregisters the flight when the leader finishes, or abandons it if the
/// leader is dropped (future cancelled, loader panicked).
struct LeaderGuard<'a, K: Hash + Eq, V: Clone> {
    cache: &'a Cache<K, V>,
    key: Option<K>,
    flight: Arc<Flight<V>>,
}

impl<K: Hash + Eq, V: Clone> LeaderGuard<'_, K, V> {
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

impl<K: Hash + Eq, V: Clone> Drop for LeaderGuard<'_, K, V> {
    fn drop(&mut self) {
        self.release(Outcome::Abandoned);
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
        // Bits 40.. pick the shard: hashbrown uses the low bits for the
        // bucket and the top seven for its control bytes.
        #[allow(clippy::cast_possible_truncation)]
        let i = ((hash >> 40) & self.shard_mask) as usize;
        &self.shards[i]
    }

    #[inline]
    fn stripe(&self) -> &Stripe {
        let i = STRIPE_HINT.with(|h| *h) & (self.stripes.len() - 1);
        &self.stripes[i]
    }

    #[inline]
    fn now(&self) -> u64 {
        u64::try_from(self.clock.now().saturating_duration_since(self.epoch).as_nanos()).unwrap_or(NEVER - 1)
    }

    /// Finds a live entry: returns its value and cost, and records the hit.
    #[inline]
    fn lookup<Q>(&self, ns: u16, key: &Q) -> Option<(V, u32, u32, u64)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(ns, key);
        let shard = self.shard(hash).read().unwrap_or_else(PoisonError::into_inner);
        let slot = shard.find(hash, |s| s.ns == ns && s.key.borrow() == key)?;
        let namespace = &self.namespaces[usize::from(ns)];
        let stale = slot.generation != namespace.generation.load(Relaxed);
        let mut expired = false;
        if !stale && (slot.expires_at != NEVER || slot.idle_at.load(Relaxed) != NEVER) {
            let now = self.now();
            if now >= slot.deadline() {
                expired = true;
            } else if let Some(tti) = namespace.settings.tti {
                let tti = u64::try_from(tti.as_nanos()).unwrap_or(NEVER);
                let next = now.saturating_add(tti);
                // Skip the store when the deadline barely moves, so hot
                // entries do not bounce their cache line between cores.
                if next - slot.idle_at.load(Relaxed).min(next) > tti / 64 {
                    slot.idle_at.store(next, Relaxed);
                }
            }
        }
        if stale || expired {
            let node = slot.node;
            drop(shard);
            let cause = if stale { Cause::Invalidated } else { Cause::Expired };
            self.reclaim(hash, node, cause);
            return None;
        }
        let found = (slot.value.clone(), slot.cost, slot.node, hash);
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
        let slot = shard.find(hash, |s| s.ns == ns && s.key.borrow() == key)?;
        let live = slot.generation == self.namespaces[usize::from(ns)].generation.load(Relaxed)
            && (slot.deadline() == NEVER || self.now() < slot.deadline());
        live.then(|| (slot.value.clone(), slot.cost))
    }

    /// Buffers a hit for the policy; replays the buffer when it is full
    /// and the policy is free (if not, the record is dropped).
    #[inline]
    fn record_hit(&self, data: &mut StripeData, node: u32, hash: u64) {
        if data.records.len() < BUFFER_LEN {
            data.records.push((node, hash));
            if data.records.len() < BUFFER_LEN {
                return;
            }
        }
        if let Ok(mut policy) = self.policy.try_lock() {
            for &(n, h) in &data.records {
                policy.on_hit(n, h);
            }
            data.records.clear();
        }
    }

    /// Replays every read buffer into the policy (the caller holds it).
    fn drain(&self, policy: &mut Policy) {
        for stripe in &self.stripes {
            if let Ok(mut data) = stripe.buffer.try_lock() {
                for &(n, h) in &data.records {
                    policy.on_hit(n, h);
                }
                data.records.clear();
            }
        }
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
        let Ok(entry) = shard.find_entry(hash, |s| s.node == node) else {
            return None;
        };
        let (slot, _) = entry.remove();
        drop(shard);
        policy.remove(node);
        self.weight.store(policy.weight(), Relaxed);
        let namespace = &self.namespaces[usize::from(slot.ns)];
        let cause = cause.unwrap_or_else(|| self.cause_of(&slot, namespace));
        namespace.counters.count_removal(cause);
        Some(slot.value)
    }

    fn cause_of(&self, slot: &Slot<K, V>, namespace: &Namespace) -> Cause {
        if slot.generation != namespace.generation.load(Relaxed) {
            Cause::Invalidated
        } else if slot.deadline() != NEVER && self.now() >= slot.deadline() {
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
        let idle_at = settings.tti.map_or(NEVER, |tti| {
            now.saturating_add(u64::try_from(tti.as_nanos()).unwrap_or(NEVER))
        });
        (expires_at, idle_at)
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
        let (expires_at, idle_at) = self.deadlines(&namespace.settings, ttl);
        let mut policy = lock(&self.policy);
        self.drain(&mut policy);
        let generation = namespace.generation.load(Relaxed);
        let mut replaced = None;
        {
            let mut shard = self.shard(hash).write().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = shard.find_mut(hash, |s| s.ns == ns && s.key == key) {
                let old_cause = self.cause_of(slot, namespace);
                slot.expires_at = expires_at;
                slot.idle_at.store(idle_at, Relaxed);
                slot.generation = generation;
                slot.cost = cost;
                let old = std::mem::replace(&mut slot.value, value);
                if old_cause == Cause::Size {
                    replaced = Some(old);
                } else {
                    // The old entry was dead: count it out and the new one in.
                    namespace.counters.count_removal(old_cause);
                    namespace.counters.entries.fetch_add(1, Relaxed);
                    namespace.counters.inserts.fetch_add(1, Relaxed);
                }
                policy.update(slot.node, hash, weight);
            } else {
                let node = policy.insert(hash, weight);
                let slot = Slot {
                    key,
                    value,
                    expires_at,
                    idle_at: AtomicU64::new(idle_at),
                    node,
                    generation,
                    cost,
                    ns,
                };
                shard.insert_unique(hash, slot, |s| self.hash(s.ns, &s.key));
                namespace.counters.entries.fetch_add(1, Relaxed);
                namespace.counters.inserts.fetch_add(1, Relaxed);
            }
        }
        let mut evicted: Vec<Evicted> = Vec::new();
        policy.maintain(&mut evicted);
        for e in evicted {
            self.remove_slot_evicted(&mut policy, e);
        }
        self.weight.store(policy.weight(), Relaxed);
        Ok(replaced)
    }

    /// Removes the slot of an entry the policy already dropped.
    fn remove_slot_evicted(&self, policy: &mut Policy, e: Evicted) {
        let mut shard = self.shard(e.hash).write().unwrap_or_else(PoisonError::into_inner);
        if let Ok(entry) = shard.find_entry(e.hash, |s| s.node == e.node) {
            let (slot, _) = entry.remove();
            drop(shard);
            let namespace = &self.namespaces[usize::from(slot.ns)];
            namespace.counters.count_removal(self.cause_of(&slot, namespace));
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
        self.drain(&mut policy);
        let node = {
            let shard = self.shard(hash).read().unwrap_or_else(PoisonError::into_inner);
            shard.find(hash, |s| s.ns == ns && s.key.borrow() == key)?.node
        };
        // Remove first, then decide whether it was live: a dead entry is
        // counted by its own cause and not returned.
        let mut shard = self.shard(hash).write().unwrap_or_else(PoisonError::into_inner);
        let Ok(entry) = shard.find_entry(hash, |s| s.node == node) else {
            return None;
        };
        let (slot, _) = entry.remove();
        drop(shard);
        policy.remove(node);
        self.weight.store(policy.weight(), Relaxed);
        let namespace = &self.namespaces[usize::from(ns)];
        match self.cause_of(&slot, namespace) {
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
        self.drain(&mut policy);
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
            for slot in shard.drain() {
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
        self.drain(&mut policy);
        let now = self.now();
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
            shard.retain(|slot| {
                let namespace = &self.namespaces[usize::from(slot.ns)];
                let cause = if slot.generation != namespace.generation.load(Relaxed) {
                    Cause::Invalidated
                } else if now >= slot.deadline() {
                    Cause::Expired
                } else {
                    return true;
                };
                policy.remove(slot.node);
                namespace.counters.count_removal(cause);
                false
            });
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
    /// `l1`): `brisk_cache_{hits,misses,loads,load_errors,inserts,rejected,
    /// cost_saved}_total`, `brisk_cache_load_seconds_total` (a gauge, as it
    /// is fractional), `brisk_cache_evictions_total{cause}`,
    /// `brisk_cache_entries`, `brisk_cache_hit_ratio`; and for the whole
    /// store `brisk_cache_weight` and `brisk_cache_max_weight`.
    fn report_stats(&self, out: &mut StatsReport) {
        for (i, n) in self.inner.namespaces.iter().enumerate() {
            let s = n.counters.snapshot(&self.inner.stripes, i);
            let name = n.settings.name.clone();
            let counters: [(&'static str, &'static str, u64); 8] = [
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
