//! The Redis L2 tier (feature `redis`): [`TieredCache`].
//!
//! Layout in Redis, under the configured prefix `P`:
//!
//! - `P:gen:NS`: the namespace's generation counter (`INCR` invalidates);
//! - `P:v:NS:GEN:KEY`: a value, `KEY` being the key's JSON, with a `PX`
//!   expiry (the namespace's L2 TTL), encoded as described in `codec.rs`;
//! - channel `P:inval`: invalidation messages between nodes.

mod breaker;
mod codec;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use brisk_core::{Backoff, ConfigError, StatsReport, StatsSource};
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{Tier, lock};
use crate::{Cache, UnknownNamespace};
use breaker::Breaker;
use codec::Codec;

/// Why the Redis part of an operation did not happen. The L1 part always
/// does; reads never return this (a failed L2 read is a miss).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum L2Error {
    /// The circuit breaker is open after repeated failures: Redis was not
    /// called.
    #[error("Redis is not called for now: the circuit breaker is open after repeated failures")]
    CircuitOpen,
    /// Redis did not answer within the configured timeout.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis (or the connection to it) failed.
    #[error("Redis failed: {0}")]
    Redis(#[from] redis::RedisError),
    /// The value could not be serialized.
    #[error("the value could not be encoded: {0}")]
    Encode(#[from] postcard::Error),
}

/// Counters of the L2 tier, for the whole [`TieredCache`] (every namespace).
/// The L1's own statistics stay in [`Cache::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct L2Stats {
    /// L1 misses found in Redis.
    pub hits: u64,
    /// L1 misses not found in Redis (including bad bytes).
    pub misses: u64,
    /// Entries whose bytes did not decode (corrupted, foreign, or from an
    /// unknown format): counted as misses too.
    pub bad_bytes: u64,
    /// Values written to Redis.
    pub writes: u64,
    /// Of those, values stored compressed.
    pub compressed_writes: u64,
    /// Redis calls that failed or timed out (including connecting).
    pub errors: u64,
    /// Of those, timeouts.
    pub timeouts: u64,
    /// Redis calls skipped because the circuit breaker was open.
    pub skipped: u64,
    /// Times the circuit breaker opened.
    pub breaker_trips: u64,
    /// Invalidation messages published to other nodes.
    pub invalidations_sent: u64,
    /// Invalidation messages from other nodes applied to this L1.
    pub invalidations_received: u64,
    /// Times the invalidation channel was subscribed again after it was
    /// lost; each one cleared the L1.
    pub resubscribes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bad_bytes: AtomicU64,
    writes: AtomicU64,
    compressed_writes: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    skipped: AtomicU64,
    invalidations_sent: AtomicU64,
    invalidations_received: AtomicU64,
    resubscribes: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Builds a [`TieredCache`] on top of an L1 [`Cache`]; from
/// [`TieredCache::builder`].
#[must_use]
pub struct TieredCacheBuilder<K, V> {
    l1: Cache<K, V>,
    url: String,
    prefix: String,
    l2_ttl: Duration,
    ns_l2_ttl: Vec<(String, Duration)>,
    compression_threshold: usize,
    compression_level: i32,
    max_value_bytes: usize,
    timeout: Duration,
    failure_threshold: u32,
    backoff: Option<Backoff>,
}

impl<K, V> fmt::Debug for TieredCacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCacheBuilder")
            .field("prefix", &self.prefix)
            .field("l2_ttl", &self.l2_ttl)
            .field("ns_l2_ttl", &self.ns_l2_ttl)
            .field("compression_threshold", &self.compression_threshold)
            .field("timeout", &self.timeout)
            .field("failure_threshold", &self.failure_threshold)
            .finish_non_exhaustive()
    }
}

impl<K, V> TieredCacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// Prefix of every Redis key and of the invalidation channel. Nodes that
    /// share a cache use the same prefix. Default: `"brisk-cache"`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Default time-to-live of entries in Redis. Default: 1 hour. Every
    /// namespace's L1 TTL is capped by its L2 TTL.
    pub fn l2_ttl(mut self, ttl: Duration) -> Self {
        self.l2_ttl = ttl;
        self
    }

    /// Time-to-live in Redis for namespace `name` (declared in the L1).
    pub fn namespace_l2_ttl(mut self, name: impl Into<String>, ttl: Duration) -> Self {
        self.ns_l2_ttl.push((name.into(), ttl));
        self
    }

    /// Encoded values of at least this many bytes are compressed with zstd.
    /// Default: 1024.
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.compression_threshold = bytes;
        self
    }

    /// The zstd level (1–22). Default: 3.
    pub fn compression_level(mut self, level: i32) -> Self {
        self.compression_level = level;
        self
    }

    /// The largest value, once decompressed, accepted from Redis; larger
    /// ones count as bad bytes. Default: 64 MiB.
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// How long one Redis call (or connecting) may take before it counts as
    /// a failure. Default: 250 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Consecutive failures that open the circuit breaker. Default: 3.
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures;
        self
    }

    /// How long the breaker stays open: `backoff.ceiling(n)` after its
    /// `n`-th consecutive opening; also the delay between attempts to
    /// subscribe again to the invalidation channel. Default: base 100 ms,
    /// cap 30 s.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Builds the cache and starts its invalidation subscriber on the
    /// current tokio runtime. Does not wait for Redis: a cache built while
    /// Redis is down serves from the L1 and the loaders, and connects when
    /// Redis is back.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: `redis_url` (not a Redis URL),
    /// `prefix` (empty), `namespace` (a name with `:` or a newline),
    /// `l2_ttl` (zero, or for an unknown namespace), `timeout` (zero),
    /// `failure_threshold` (zero), `compression_level` (outside 1–22),
    /// `runtime` (not called inside a tokio runtime).
    pub fn build(self) -> Result<TieredCache<K, V>, ConfigError> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| ConfigError::new("redis_url", format!("not a Redis URL: {e}")))?;
        if self.prefix.is_empty() {
            return Err(ConfigError::new("prefix", "must not be empty"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be more than zero"));
        }
        if self.failure_threshold == 0 {
            return Err(ConfigError::new("failure_threshold", "must be at least 1"));
        }
        if !(1..=22).contains(&self.compression_level) {
            return Err(ConfigError::new("compression_level", "must be between 1 and 22"));
        }
        if self.l2_ttl.is_zero() || self.ns_l2_ttl.iter().any(|(_, t)| t.is_zero()) {
            return Err(ConfigError::new("l2_ttl", "must be more than zero"));
        }
        let names: Vec<String> = self.l1.namespace_names().into_iter().map(str::to_owned).collect();
        if let Some(bad) = names.iter().find(|n| n.contains(':') || n.contains('\n')) {
            return Err(ConfigError::new(
                "namespace",
                format!("{bad:?}: names used with Redis must not contain ':' or a newline"),
            ));
        }
        if let Some((unknown, _)) = self.ns_l2_ttl.iter().find(|(n, _)| !names.contains(n)) {
            return Err(ConfigError::new(
                "l2_ttl",
                format!("namespace {unknown:?} is not declared in the L1 cache"),
            ));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| ConfigError::new("runtime", "TieredCache must be built inside a tokio runtime"))?;
        let backoff = match self.backoff {
            Some(b) => b,
            None => Backoff::builder()
                .base(Duration::from_millis(100))
                .cap(Duration::from_secs(30))
                .build()?,
        };
        let namespaces: Vec<NsState<K, V>> = names
            .iter()
            .filter_map(|name| {
                // Every name comes from the L1, so every lookup succeeds.
                let l1 = self.l1.namespace(name).ok()?;
                let l2_ttl = self
                    .ns_l2_ttl
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map_or(self.l2_ttl, |(_, t)| *t);
                let l1_cap = l1.ns_ttl().map_or(l2_ttl, |t| t.min(l2_ttl));
                Some(NsState {
                    name: name.clone(),
                    l1,
                    l2_ttl,
                    l1_cap,
                    generation: AtomicU64::new(0),
                })
            })
            .collect();
        let ns_index = namespaces
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let breaker = Breaker::new(self.l1.clock().clone(), self.failure_threshold, backoff.clone());
        let channel = format!("{}:inval", self.prefix);
        let shared = Arc::new(Shared {
            root: self.l1.clone(),
            client: client.clone(),
            conn: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            node: format!("{:016x}", fastrand::u64(..)),
            channel: channel.clone(),
            prefix: self.prefix,
            namespaces,
            ns_index,
            codec: Codec {
                threshold: self.compression_threshold,
                level: self.compression_level,
                max_decoded: self.max_value_bytes,
            },
            timeout: self.timeout,
            breaker,
            counters: Counters::default(),
            subscribed: AtomicBool::new(false),
            subscriber: Mutex::new(None),
            runtime: runtime.clone(),
        });
        // Background refreshes of the L1 now go through Redis.
        let tier: Weak<dyn Tier<K, V>> = Arc::downgrade(&shared) as Weak<Shared<K, V>>;
        self.l1.set_tier(tier);
        let task = runtime.spawn(subscribe_loop(Arc::downgrade(&shared), client, channel, backoff));
        *lock(&shared.subscriber) = Some(task.abort_handle());
        let ns = shared
            .ns_index
            .get(self.l1.namespace_name())
            .copied()
            .unwrap_or(0);
        Ok(TieredCache { shared, ns })
    }
}

struct NsState<K, V> {
    name: String,
    l1: Cache<K, V>,
    l2_ttl: Duration,
    /// The L1 TTL: the namespace's own, capped by the L2 TTL.
    l1_cap: Duration,
    generation: AtomicU64,
}

struct Shared<K, V> {
    root: Cache<K, V>,
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    connecting: tokio::sync::Mutex<()>,
    node: String,
    channel: String,
    prefix: String,
    namespaces: Vec<NsState<K, V>>,
    ns_index: HashMap<String, usize>,
    codec: Codec,
    timeout: Duration,
    breaker: Breaker,
    counters: Counters,
    subscribed: AtomicBool,
    subscriber: Mutex<Option<tokio::task::AbortHandle>>,
    /// Runs the Redis calls of background refreshes, which are blocking.
    runtime: tokio::runtime::Handle,
}

impl<K, V> Drop for Shared<K, V> {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.subscriber).take() {
            task.abort();
        }
    }
}

/// A two-tier cache: the in-process L1 [`Cache`] in front of Redis.
///
/// - Reads fall through L1 → Redis → loader; a value found in Redis fills
///   the L1 for at most its remaining Redis TTL.
/// - Writes go to both tiers (write-through) and tell the other nodes to
///   drop the key from their L1s (Redis pub/sub; a node ignores its own
///   messages).
/// - [`invalidate_namespace`](Self::invalidate_namespace) moves a
///   generation counter kept in Redis: no `SCAN` or `KEYS`; old entries
///   expire by their TTL.
/// - If Redis fails or is slow, reads are served by the L1 and the loader
///   and never fail; after [`failure_threshold`](TieredCacheBuilder::failure_threshold)
///   consecutive failures a circuit breaker stops calling Redis for a
///   back-off period, then lets one call through to test it, and closes by
///   itself once Redis answers.
/// - After the invalidation channel is subscribed again (its connection was
///   lost), the L1 is cleared, as messages may have been missed.
/// - Refresh-ahead (configured on the L1's namespaces and reloader) goes
///   through Redis: a background refresh takes Redis's copy if it outlives
///   the refresh window, else runs the L1's reloader once and writes the
///   value through, telling the other nodes to drop their copies. The L1's
///   refresh executor must run tasks on a blocking thread (the default, or
///   `spawn_blocking`), as the refresh blocks on its Redis calls.
///
/// Like [`Cache`], a `TieredCache` is a cheap handle on one namespace;
/// [`Clone`] shares everything. Keys are stored in Redis as their JSON and
/// values in a versioned postcard encoding, zstd-compressed above
/// [`compression_threshold`](TieredCacheBuilder::compression_threshold).
///
/// Coherence between nodes is eventual: another node drops its L1 copy when
/// the message arrives, and sees a namespace invalidation then too.
///
/// See the [crate documentation](crate#the-redis-l2-feature-redis) for an
/// example.
pub struct TieredCache<K, V> {
    shared: Arc<Shared<K, V>>,
    ns: usize,
}

impl<K, V> Clone for TieredCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            ns: self.ns,
        }
    }
}

impl<K, V> fmt::Debug for TieredCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredCache")
            .field("namespace", &self.shared.namespaces[self.ns].name)
            .field("prefix", &self.shared.prefix)
            .field("node", &self.shared.node)
            .finish_non_exhaustive()
    }
}

/// What one Redis lookup found.
enum Found<V> {
    Hit(V, Duration),
    Miss,
}

impl<K, V> TieredCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// A builder for a cache with `l1` in front of the Redis server at
    /// `redis_url` (e.g. `redis://127.0.0.1:6379/`). The L1's namespaces
    /// are the tiered cache's.
    pub fn builder(l1: Cache<K, V>, redis_url: impl Into<String>) -> TieredCacheBuilder<K, V> {
        TieredCacheBuilder {
            l1,
            url: redis_url.into(),
            prefix: "brisk-cache".to_owned(),
            l2_ttl: Duration::from_secs(3600),
            ns_l2_ttl: Vec::new(),
            compression_threshold: 1024,
            compression_level: 3,
            max_value_bytes: 64 << 20,
            timeout: Duration::from_millis(250),
            failure_threshold: 3,
            backoff: None,
        }
    }

    /// A handle on the namespace `name`, sharing this cache.
    ///
    /// # Errors
    ///
    /// [`UnknownNamespace`] if the L1 was not built with that namespace.
    pub fn namespace(&self, name: &str) -> Result<Self, UnknownNamespace> {
        match self.shared.ns_index.get(name) {
            Some(&ns) => Ok(Self {
                shared: Arc::clone(&self.shared),
                ns,
            }),
            None => Err(UnknownNamespace {
                name: name.to_owned(),
            }),
        }
    }

    /// This handle's L1 (same namespace): its statistics are the L1's.
    #[must_use]
    pub fn l1(&self) -> &Cache<K, V> {
        &self.ns_state().l1
    }

    /// How long this namespace's entries live in the L1: its own TTL capped
    /// by its L2 TTL.
    #[must_use]
    pub fn l1_ttl(&self) -> Duration {
        self.ns_state().l1_cap
    }

    /// How long this namespace's entries live in Redis.
    #[must_use]
    pub fn l2_ttl(&self) -> Duration {
        self.ns_state().l2_ttl
    }

    /// Whether the invalidation channel is subscribed right now.
    #[must_use]
    pub fn is_subscribed(&self) -> bool {
        self.shared.subscribed.load(Relaxed)
    }

    /// The L2 counters (whole cache).
    #[must_use]
    pub fn l2_stats(&self) -> L2Stats {
        let c = &self.shared.counters;
        L2Stats {
            hits: c.hits.load(Relaxed),
            misses: c.misses.load(Relaxed),
            bad_bytes: c.bad_bytes.load(Relaxed),
            writes: c.writes.load(Relaxed),
            compressed_writes: c.compressed_writes.load(Relaxed),
            errors: c.errors.load(Relaxed),
            timeouts: c.timeouts.load(Relaxed),
            skipped: c.skipped.load(Relaxed),
            breaker_trips: self.shared.breaker.trips(),
            invalidations_sent: c.invalidations_sent.load(Relaxed),
            invalidations_received: c.invalidations_received.load(Relaxed),
            resubscribes: c.resubscribes.load(Relaxed),
        }
    }

    /// Whether the circuit breaker is open (Redis is not being called).
    #[must_use]
    pub fn is_circuit_open(&self) -> bool {
        self.shared.breaker.is_open()
    }

    /// The Redis key that holds `key`'s value in this namespace now.
    #[must_use]
    pub fn redis_key(&self, key: &K) -> String {
        self.shared.redis_key(self.ns, key)
    }

    /// The value for `key`: from the L1, else from Redis (then kept in the
    /// L1), else `None`. Never fails: a Redis failure or bad bytes are a
    /// miss (and counted).
    pub async fn get(&self, key: &K) -> Option<V> {
        let ns = self.ns_state();
        if let Some(v) = ns.l1.get(key) {
            return Some(v);
        }
        match self.shared.fetch(self.ns, std::slice::from_ref(key)).await.pop() {
            Some(Found::Hit(v, ttl)) => {
                ns.l1.insert_with_ttl(key.clone(), v.clone(), ttl);
                Some(v)
            }
            _ => None,
        }
    }

    /// The values for `keys`, in order: L1 hits first, then every L1 miss
    /// in one pipelined Redis round trip. Never fails, like
    /// [`get`](Self::get).
    pub async fn get_many(&self, keys: &[K]) -> Vec<Option<V>> {
        let ns = self.ns_state();
        let mut out: Vec<Option<V>> = keys.iter().map(|k| ns.l1.get(k)).collect();
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_none()).collect();
        if missing.is_empty() {
            return out;
        }
        let wanted: Vec<K> = missing.iter().map(|&i| keys[i].clone()).collect();
        let found = self.shared.fetch(self.ns, &wanted).await;
        for (i, f) in missing.into_iter().zip(found) {
            if let Found::Hit(v, ttl) = f {
                ns.l1.insert_with_ttl(keys[i].clone(), v.clone(), ttl);
                out[i] = Some(v);
            }
        }
        out
    }

    /// The value for `key`, or the output of `load()`, which is then written
    /// to both tiers. Concurrent misses on a key in this process run one
    /// Redis lookup and at most one load; a load error goes to every waiter
    /// and is not cached. Redis failures never make this fail.
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
    /// caller (see [`Cache::insert_with_cost`]); `None`: its duration in
    /// microseconds.
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
        let ns = self.ns_state();
        let k = key.clone();
        ns.l1
            .get_or_load_tiered(key, || async move {
                if let Some(Found::Hit(v, ttl)) =
                    self.shared.fetch(self.ns, std::slice::from_ref(&k)).await.pop()
                {
                    return Ok((v, Some(ttl), cost));
                }
                let v = load().await?;
                let _ = self.shared.write(self.ns, &k, &v, false).await;
                Ok((v, Some(ns.l1_cap), cost))
            })
            .await
    }

    /// Writes `value` to the L1 and to Redis, and tells the other nodes to
    /// drop `key` from their L1s.
    ///
    /// # Errors
    ///
    /// An [`L2Error`] if the Redis part failed; the L1 is written anyway.
    pub async fn insert(&self, key: K, value: V) -> Result<(), L2Error> {
        let ns = self.ns_state();
        ns.l1.insert_with_ttl(key.clone(), value.clone(), ns.l1_cap);
        self.shared.write(self.ns, &key, &value, true).await
    }

    /// Writes `value` to Redis only: no L1 write and no invalidation
    /// message to the other nodes. For a value that is a pure function of
    /// its key (the same on every node, so no other node's L1 copy can
    /// contradict it), computed by the caller, who has put it in the L1
    /// with its cost itself (e.g. [`Cache::insert_with_cost`] on
    /// [`l1`](Self::l1)).
    ///
    /// # Errors
    ///
    /// An [`L2Error`] if Redis could not be written.
    pub async fn insert_l2(&self, key: &K, value: &V) -> Result<(), L2Error> {
        self.shared.write(self.ns, key, value, false).await
    }

    /// Removes `key` from both tiers and from the other nodes' L1s.
    ///
    /// # Errors
    ///
    /// An [`L2Error`] if the Redis part failed; the L1 entry is removed
    /// anyway.
    pub async fn remove(&self, key: &K) -> Result<(), L2Error> {
        self.ns_state().l1.remove(key);
        let message = self.shared.message(self.ns, 'k', &key_json(key));
        let channel = self.shared.channel.clone();
        self.shared
            .call(|mut con| {
                // After connecting: a new connection reads the generations.
                let redis_key = self.shared.redis_key(self.ns, key);
                async move {
                    redis::pipe()
                        .cmd("DEL")
                        .arg(&redis_key)
                        .ignore()
                        .cmd("PUBLISH")
                        .arg(&channel)
                        .arg(&message)
                        .ignore()
                        .query_async::<()>(&mut con)
                        .await
                }
            })
            .await?;
        bump(&self.shared.counters.invalidations_sent);
        Ok(())
    }

    /// Invalidates this namespace on every node: its L1 here at once (O(1)),
    /// its Redis entries by moving the generation counter in Redis (old
    /// entries expire by their TTL), and the other nodes' L1s by message.
    ///
    /// # Errors
    ///
    /// An [`L2Error`] if Redis could not be told: then only this node's L1
    /// was invalidated.
    pub async fn invalidate_namespace(&self) -> Result<(), L2Error> {
        let ns = self.ns_state();
        ns.l1.invalidate_all();
        let gen_key = self.shared.gen_key(self.ns);
        let generation: u64 = self
            .shared
            .call(move |mut con| async move {
                redis::cmd("INCR")
                    .arg(&gen_key)
                    .query_async::<u64>(&mut con)
                    .await
            })
            .await?;
        ns.generation.fetch_max(generation, Relaxed);
        let message = self.shared.message(self.ns, 'n', &generation.to_string());
        let channel = self.shared.channel.clone();
        self.shared
            .call(move |mut con| async move {
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&message)
                    .query_async::<()>(&mut con)
                    .await
            })
            .await?;
        bump(&self.shared.counters.invalidations_sent);
        Ok(())
    }

    fn ns_state(&self) -> &NsState<K, V> {
        &self.shared.namespaces[self.ns]
    }
}

fn key_json<K: Serialize>(key: &K) -> String {
    // Serializing a key to JSON fails only for maps with non-string keys;
    // those get their postcard bytes in hex instead (stable, but other
    // nodes cannot parse such a key from an invalidation message, so they
    // drop it from their L1 only by TTL or a namespace invalidation).
    serde_json::to_string(key).unwrap_or_else(|_| {
        postcard::to_allocvec(key).map_or_else(
            |_| String::from("?"),
            |b| b.iter().map(|x| format!("{x:02x}")).collect(),
        )
    })
}

impl<K, V> Shared<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    fn redis_key(&self, ns: usize, key: &K) -> String {
        let state = &self.namespaces[ns];
        format!(
            "{}:v:{}:{}:{}",
            self.prefix,
            state.name,
            state.generation.load(Relaxed),
            key_json(key)
        )
    }

    fn gen_key(&self, ns: usize) -> String {
        format!("{}:gen:{}", self.prefix, self.namespaces[ns].name)
    }

    fn message(&self, ns: usize, kind: char, payload: &str) -> String {
        format!("{}\n{}\n{kind}\n{payload}", self.node, self.namespaces[ns].name)
    }

    /// Runs one Redis call under the breaker and the timeout.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, L2Error>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.breaker.allow() {
            bump(&self.counters.skipped);
            return Err(L2Error::CircuitOpen);
        }
        let con = match self.connection().await {
            Ok(con) => con,
            Err(e) => {
                self.failed(&e);
                return Err(e);
            }
        };
        match tokio::time::timeout(self.timeout, op(con)).await {
            Ok(Ok(v)) => {
                self.breaker.success();
                Ok(v)
            }
            Ok(Err(e)) => {
                let e = L2Error::Redis(e);
                self.failed(&e);
                Err(e)
            }
            Err(_) => {
                let e = L2Error::Timeout(self.timeout);
                self.failed(&e);
                Err(e)
            }
        }
    }

    fn failed(&self, e: &L2Error) {
        bump(&self.counters.errors);
        if matches!(e, L2Error::Timeout(_)) {
            bump(&self.counters.timeouts);
        }
        // The connection may be dead: connect afresh next time (which also
        // reads the generations again).
        *lock(&self.conn) = None;
        self.breaker.failure();
    }

    /// The shared multiplexed connection, connecting (and reading every
    /// namespace's generation) if there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, L2Error> {
        if let Some(con) = lock(&self.conn).clone() {
            return Ok(con);
        }
        let _one = self.connecting.lock().await;
        if let Some(con) = lock(&self.conn).clone() {
            return Ok(con);
        }
        let gen_keys: Vec<String> = (0..self.namespaces.len()).map(|i| self.gen_key(i)).collect();
        let connect = async {
            let mut con = self.client.get_multiplexed_async_connection().await?;
            let gens: Vec<Option<u64>> = redis::cmd("MGET").arg(&gen_keys).query_async(&mut con).await?;
            Ok::<_, redis::RedisError>((con, gens))
        };
        let (con, gens) = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| L2Error::Timeout(self.timeout))??;
        for (state, generation) in self.namespaces.iter().zip(gens) {
            state.generation.store(generation.unwrap_or(0), Relaxed);
        }
        *lock(&self.conn) = Some(con.clone());
        Ok(con)
    }

    /// Looks `keys` up in Redis in one pipelined round trip (value and
    /// remaining TTL of each). Failures and bad bytes are misses.
    async fn fetch(&self, ns: usize, keys: &[K]) -> Vec<Found<V>> {
        let result = self
            .call(|mut con| {
                // After connecting: a new connection reads the generations.
                let redis_keys: Vec<String> = keys.iter().map(|k| self.redis_key(ns, k)).collect();
                async move {
                    let mut pipe = redis::pipe();
                    // A command's error (another type under a key) comes back as
                    // a value, not as the pipeline's error.
                    pipe.ignore_errors();
                    for k in &redis_keys {
                        pipe.cmd("GET").arg(k).cmd("PTTL").arg(k);
                    }
                    pipe.query_async::<Vec<redis::Value>>(&mut con).await
                }
            })
            .await;
        let Ok(values) = result else {
            return keys.iter().map(|_| Found::Miss).collect();
        };
        let cap = self.namespaces[ns].l1_cap;
        let mut out = Vec::with_capacity(keys.len());
        let mut it = values.into_iter();
        for _ in keys {
            let (value, pttl) = (it.next(), it.next());
            let found = match (value, pttl) {
                (Some(redis::Value::BulkString(bytes)), Some(redis::Value::Int(ms))) if ms != -2 => {
                    match self.codec.decode::<V>(&bytes) {
                        Ok(v) => {
                            // -1: no expiry (written by someone else): the cap.
                            let left = u64::try_from(ms).map_or(cap, |ms| Duration::from_millis(ms).min(cap));
                            if left.is_zero() {
                                Found::Miss
                            } else {
                                Found::Hit(v, left)
                            }
                        }
                        Err(_) => {
                            bump(&self.counters.bad_bytes);
                            Found::Miss
                        }
                    }
                }
                (Some(redis::Value::Nil) | None, _) => Found::Miss,
                _ => {
                    // Not a string (another type under the key): foreign data.
                    bump(&self.counters.bad_bytes);
                    Found::Miss
                }
            };
            bump(if matches!(found, Found::Hit(..)) {
                &self.counters.hits
            } else {
                &self.counters.misses
            });
            out.push(found);
        }
        out
    }

    /// Writes `value` under `key` with the namespace's L2 TTL; with
    /// `announce`, also publishes a key invalidation.
    async fn write(&self, ns: usize, key: &K, value: &V, announce: bool) -> Result<(), L2Error> {
        let (bytes, compressed) = self.codec.encode(value)?;
        let ttl_ms = u64::try_from(self.namespaces[ns].l2_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let publish = announce.then(|| (self.channel.clone(), self.message(ns, 'k', &key_json(key))));
        self.call(move |mut con| {
            // After connecting: a new connection reads the generations.
            let redis_key = self.redis_key(ns, key);
            async move {
                let mut pipe = redis::pipe();
                pipe.cmd("SET")
                    .arg(&redis_key)
                    .arg(bytes)
                    .arg("PX")
                    .arg(ttl_ms)
                    .ignore();
                if let Some((channel, message)) = &publish {
                    pipe.cmd("PUBLISH").arg(channel).arg(message).ignore();
                }
                pipe.query_async::<()>(&mut con).await
            }
        })
        .await?;
        bump(&self.counters.writes);
        if compressed {
            bump(&self.counters.compressed_writes);
        }
        if announce {
            bump(&self.counters.invalidations_sent);
        }
        Ok(())
    }

    /// Applies a message from the invalidation channel.
    fn on_message(&self, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let mut parts = text.splitn(4, '\n');
        let (Some(node), Some(ns), Some(kind), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if node == self.node {
            return;
        }
        let Some(&i) = self.ns_index.get(ns) else { return };
        let state = &self.namespaces[i];
        match kind {
            "k" => {
                if let Ok(key) = serde_json::from_str::<K>(rest) {
                    state.l1.remove(&key);
                } else {
                    return;
                }
            }
            "n" => {
                if let Ok(generation) = rest.parse::<u64>() {
                    state.generation.fetch_max(generation, Relaxed);
                }
                state.l1.invalidate_all();
            }
            _ => return,
        }
        bump(&self.counters.invalidations_received);
    }

    /// The channel was subscribed again: messages may have been missed.
    fn resubscribed(&self) {
        self.root.clear();
        // Connect afresh, which reads every generation again.
        *lock(&self.conn) = None;
        bump(&self.counters.resubscribes);
    }
}

/// Refresh-ahead through Redis. A refresh runs on the L1's refresh
/// executor (a blocking thread), so it drives these Redis calls with
/// `Handle::block_on`; run on an async worker thread, that panics, and the
/// refresh then behaves as if Redis were absent (the panic is caught).
impl<K, V> Tier<K, V> for Shared<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    fn fresh(&self, ns: &str, key: &K, window: Duration) -> Option<(V, Duration)> {
        let &i = self.ns_index.get(ns)?;
        let found = self
            .runtime
            .block_on(self.fetch(i, std::slice::from_ref(key)))
            .pop()?;
        match found {
            // The remaining TTL is already capped by the L1's.
            Found::Hit(v, left) if left > window => Some((v, left)),
            _ => None,
        }
    }

    fn l1_cap(&self, ns: &str) -> Option<Duration> {
        self.ns_index.get(ns).map(|&i| self.namespaces[i].l1_cap)
    }

    fn write_back(&self, ns: &str, key: &K, value: &V) {
        if let Some(&i) = self.ns_index.get(ns) {
            // Announced, like an insert: the other nodes drop their copies
            // and read the new value from Redis.
            let _ = self.runtime.block_on(self.write(i, key, value, true));
        }
    }
}

/// Keeps the invalidation channel subscribed; ends when the cache is dropped.
async fn subscribe_loop<K, V>(
    shared: Weak<Shared<K, V>>,
    client: redis::Client,
    channel: String,
    backoff: Backoff,
) where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    let mut first = true;
    let mut attempt: u32 = 0;
    loop {
        let Some(timeout) = shared.upgrade().map(|s| s.timeout) else {
            return;
        };
        let subscribe = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        if let Ok(Ok(pubsub)) = tokio::time::timeout(timeout.max(Duration::from_secs(1)), subscribe).await {
            attempt = 0;
            {
                let Some(s) = shared.upgrade() else { return };
                if !first {
                    s.resubscribed();
                }
                s.subscribed.store(true, Relaxed);
            }
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let Some(s) = shared.upgrade() else { return };
                s.on_message(msg.get_payload_bytes());
            }
            let Some(s) = shared.upgrade() else { return };
            s.subscribed.store(false, Relaxed);
        }
        first = false;
        tokio::time::sleep(backoff.ceiling(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}

impl<K, V> StatsSource for TieredCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    fn report_stats(&self, out: &mut StatsReport) {
        self.shared.root.report_stats(out);
        let s = self.l2_stats();
        for (name, help, value) in [
            ("brisk_cache_l2_hits_total", "L1 misses found in Redis", s.hits),
            (
                "brisk_cache_l2_misses_total",
                "L1 misses not found in Redis",
                s.misses,
            ),
            (
                "brisk_cache_l2_bad_bytes_total",
                "Redis entries that did not decode",
                s.bad_bytes,
            ),
            ("brisk_cache_l2_writes_total", "values written to Redis", s.writes),
            (
                "brisk_cache_l2_compressed_writes_total",
                "values written to Redis compressed",
                s.compressed_writes,
            ),
            (
                "brisk_cache_l2_errors_total",
                "Redis calls that failed or timed out",
                s.errors,
            ),
            (
                "brisk_cache_l2_timeouts_total",
                "Redis calls that timed out",
                s.timeouts,
            ),
            (
                "brisk_cache_l2_skipped_total",
                "Redis calls skipped by the open circuit breaker",
                s.skipped,
            ),
            (
                "brisk_cache_l2_breaker_trips_total",
                "times the circuit breaker opened",
                s.breaker_trips,
            ),
            (
                "brisk_cache_l2_invalidations_sent_total",
                "invalidation messages published",
                s.invalidations_sent,
            ),
            (
                "brisk_cache_l2_invalidations_received_total",
                "invalidation messages applied",
                s.invalidations_received,
            ),
            (
                "brisk_cache_l2_resubscribes_total",
                "invalidation channel resubscriptions (each cleared the L1)",
                s.resubscribes,
            ),
        ] {
            let _ = out.counter(name, help, value).label("tier", "l2");
        }
    }
}
