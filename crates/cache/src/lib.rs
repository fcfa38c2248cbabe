//! brisk-cache: a concurrent in-process cache for results that are expensive
//! to compute (AI analyses, generations, API responses) and asked for again
//! and again.
//!
//! - [`Cache`]: bounded by entry count, by weight ([`CacheBuilder::weigher`])
//!   or by bytes ([`CacheBuilder::max_memory_bytes`]); a W-TinyLFU admission
//!   and eviction policy that beats LRU and resists scans; lookups that take
//!   no global lock.
//! - Expiry per entry and per *namespace* (a kind of data, e.g. sentiment for
//!   15 minutes, templates for 24 hours): time-to-live, time-to-idle, jitter,
//!   and O(1) invalidation of a whole namespace ([`Cache::invalidate_all`]).
//! - Loads: [`Cache::get_or_load`] (async, any runtime) and
//!   [`Cache::get_with`] (blocking) run the loader once for concurrent misses
//!   on a key; errors go to every waiter and are not cached;
//!   [`Cache::get_or_load_optional`] caches "not found" with its own TTL.
//! - Refresh-ahead ([`NamespaceConfig::refresh_ahead`]): a read close to
//!   expiry returns the current value and starts one background reload
//!   through the [`CacheBuilder::reloader`], single-flight with
//!   `get_or_load`; a failed reload lets the old value serve up to a
//!   [`NamespaceConfig::stale_limit`]; [`NamespaceConfig::adaptive_ttl`]
//!   lengthens the TTL of values that come back unchanged and shortens it
//!   for values that change.
//! - [`CacheStats`] per namespace: hits, misses, loads, load errors and time,
//!   evictions by cause, entries, hit ratio, and the *cost saved* by hits;
//!   also reported through [`brisk_core::StatsSource`].
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use brisk_cache::{Cache, NamespaceConfig};
//! use brisk_core::ManualClock;
//!
//! let clock = ManualClock::new();
//! let cache: Cache<String, f64> = Cache::builder()
//!     .max_capacity(10_000)
//!     .namespace("sentiment", NamespaceConfig::new().ttl(Duration::from_secs(15 * 60)))
//!     .clock(clock.shared())
//!     .build()?;
//! let sentiment = cache.namespace("sentiment")?;
//!
//! // A miss runs the loader (an API call here) once; the load costs 2,000
//! // micro-dollars, and every later hit adds that to the cost saved.
//! let score = sentiment.get_with_cost("great news".to_owned(), Some(2_000), || {
//!     Ok::<_, std::io::Error>(0.8)
//! })?;
//! assert_eq!(score, 0.8);
//! assert_eq!(sentiment.get("great news"), Some(0.8));
//!
//! // Fifteen minutes later the entry has expired.
//! clock.advance(Duration::from_secs(15 * 60));
//! assert_eq!(sentiment.get("great news"), None);
//!
//! let stats = sentiment.stats();
//! assert_eq!((stats.hits, stats.misses, stats.loads), (1, 2, 1));
//! assert_eq!(stats.cost_saved, 2_000);
//! assert_eq!(stats.evicted_expired, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Choosing options
//!
//! - Values of very different sizes: bound by [`CacheBuilder::max_memory_bytes`]
//!   (keys and values implement [`MemSize`]) or a custom weigher, and set
//!   [`CacheBuilder::max_entry_weight`] so one huge value cannot flush the
//!   cache.
//! - Many entries written at once (a warm-up, a batch): set
//!   [`CacheBuilder::jitter`] so they do not all expire together.
//! - Loaders that can find nothing: use `Cache<K, Option<T>>` with
//!   [`Cache::get_or_load_optional`] and a short
//!   [`NamespaceConfig::negative_ttl`].
//!
//! # Implementation notes
//!
//! Data lives in a sharded hash table (one `RwLock` per shard over an
//! open-addressing table of 8-byte buckets — a tag of the key's foldhash
//! beside an index into a dense slab of slots), so a read locks one shard
//! for reading and touches its bucket and its slot. The policy is one W-TinyLFU for the whole cache — a 4-bit
//! count-min sketch for frequencies, an LRU window, a segmented main space,
//! and a hill climber that resizes the window — behind one mutex that reads
//! never wait for: a hit bumps the entry's one-byte reference counter (a
//! relaxed load and store, nothing once saturated) that the policy replays
//! into its sketch when it next looks at the entry, and counts itself in its
//! thread's own stripe with plain stores, so the shard's read lock is the
//! only read-modify-write on a hit. Because the policy is global, not
//! per shard, small caches keep their full hit ratio. Time comes from an
//! injectable [`brisk_core::Clock`] and is read only for entries that can
//! expire. `docs/cache.md` has the details and `docs/benchmarks.md` the
//! measurements.
//!
//! # The Redis L2 (feature `redis`)
//!
//! `TieredCache` puts Redis behind the L1: reads fall through L1 → Redis →
//! loader, writes go to both tiers, an L1 entry never outlives its Redis
//! copy, values are stored in a versioned postcard encoding (zstd above
//! 1 KiB by default) whose bad bytes count as a miss, namespaces are
//! invalidated on every node through generation counters in Redis and
//! pub/sub, and a circuit breaker turns a Redis outage into L1-only
//! service that recovers by itself. Refresh-ahead configured on the L1
//! goes through Redis: a refresh takes a fresher copy from Redis if another
//! node wrote one, else reloads once and writes the value through, and the
//! other nodes drop their old copies.
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use brisk_cache::{Cache, NamespaceConfig, TieredCache};
//!
//! let l1: Cache<String, String> = Cache::builder()
//!     .max_capacity(10_000)
//!     .namespace("templates", NamespaceConfig::new().ttl(Duration::from_secs(24 * 3600)))
//!     .build()?;
//! // Inside a tokio runtime (IO and time enabled).
//! let cache = TieredCache::builder(l1, "redis://127.0.0.1:6379/")
//!     .prefix("myapp:cache")
//!     .namespace_l2_ttl("templates", Duration::from_secs(12 * 3600))
//!     .build()?
//!     .namespace("templates")?;
//! // The L1 keeps templates 12 h at most: capped by the L2 TTL.
//! assert_eq!(cache.l1_ttl(), Duration::from_secs(12 * 3600));
//! let text = cache
//!     .get_or_load("welcome".to_owned(), || async { Ok::<_, std::io::Error>("Hello!".to_owned()) })
//!     .await?;
//! assert_eq!(text, "Hello!");
//! cache.invalidate_namespace().await?; // on every node
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! - `redis` (off by default): the Redis L2, `TieredCache`. Pulls in the
//!   `redis` crate (tokio), tokio (`rt`, `time`), `serde`, `serde_json`,
//!   postcard and zstd. Without it the crate is the L1 tier alone and needs
//!   no server.

mod builder;
mod cache;
mod error;
mod flight;
#[cfg(feature = "redis")]
mod l2;
mod policy;
mod refs;
mod sketch;
mod stats;
mod table;
mod weigh;

pub use builder::{CacheBuilder, NamespaceConfig};
pub use cache::Cache;
pub use error::{InsertError, UnknownNamespace};
#[cfg(feature = "redis")]
pub use l2::{L2Error, L2Stats, TieredCache, TieredCacheBuilder};
pub use stats::CacheStats;
pub use weigh::{ENTRY_OVERHEAD_BYTES, MemSize};
