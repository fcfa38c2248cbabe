//! The L1 throughput workload shared by the `cache` criterion bench
//! (`cache_get_hit`, `cache_mixed`) and the `cache-paired` tool: brisk-cache,
//! moka and `quick_cache` behind one trait, Zipf-distributed keys, and the
//! batches each thread replays.
//!
//! ```
//! use std::collections::HashSet;
//!
//! use brisk_benches::cache_workload::{caches, fill, get_hit_work, key_of, run_batch, Group};
//!
//! // Two batches of 256 lookups, all of the 100 most popular keys.
//! let work = get_hit_work(1_000, 100, 256);
//! let popular: HashSet<u64> = (0..100).map(key_of).collect();
//! assert_eq!(work.len(), 2);
//! assert!(work.iter().all(|batch| batch.len() == 256));
//! assert!(work.iter().flatten().all(|k| popular.contains(k)));
//! for (name, cache) in caches(100) {
//!     fill(cache.as_ref(), 100);
//!     run_batch(cache.as_ref(), Group::GetHit, &work[0]);
//!     if name == "brisk" {
//!         assert!(work[0].iter().all(|&k| cache.get(k).is_some()));
//!     }
//! }
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Keys in the Zipf distribution of the throughput groups.
pub const KEYS: usize = 1_000_000;
/// Cache capacity of the throughput groups.
pub const CAPACITY: usize = 100_000;
/// Operations per thread per iteration.
pub const BATCH: usize = 4096;

/// `count` ranks (0 = most popular) drawn from Zipf(`s`) over `n` keys, the
/// same for the same `seed`.
#[must_use]
pub fn zipf(n: usize, s: f64, count: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0;
    for rank in 1..=n {
        #[allow(clippy::cast_precision_loss)]
        let w = 1.0 / (rank as f64).powf(s);
        total += w;
        cdf.push(total);
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|_| {
            let u = rng.f64() * total;
            cdf.partition_point(|&c| c < u).min(n - 1) as u64
        })
        .collect()
}

/// Spreads ranks over the key space so neighbouring ranks do not share
/// hash-table neighbourhoods by accident.
#[must_use]
pub fn key_of(rank: u64) -> u64 {
    rank.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A `u64 → u64` cache under test.
pub trait Bench: Sync {
    /// Looks `k` up.
    fn get(&self, k: u64) -> Option<u64>;
    /// Inserts `k → v`.
    fn insert(&self, k: u64, v: u64);
}

impl Bench for brisk_cache::Cache<u64, u64> {
    fn get(&self, k: u64) -> Option<u64> {
        brisk_cache::Cache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        brisk_cache::Cache::insert(self, k, v);
    }
}

impl Bench for moka::sync::Cache<u64, u64> {
    fn get(&self, k: u64) -> Option<u64> {
        moka::sync::Cache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        moka::sync::Cache::insert(self, k, v);
    }
}

impl Bench for quick_cache::sync::Cache<u64, u64> {
    fn get(&self, k: u64) -> Option<u64> {
        quick_cache::sync::Cache::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        quick_cache::sync::Cache::insert(self, k, v);
    }
}

/// brisk, moka and `quick_cache`, each bounded to `capacity` entries.
///
/// # Panics
///
/// `capacity` is zero.
#[must_use]
pub fn caches(capacity: usize) -> Vec<(&'static str, Box<dyn Bench>)> {
    vec![
        (
            "brisk",
            Box::new(
                brisk_cache::Cache::<u64, u64>::builder()
                    .max_capacity(capacity as u64)
                    .build()
                    .expect("valid capacity"),
            ),
        ),
        (
            "moka",
            Box::new(moka::sync::Cache::<u64, u64>::new(capacity as u64)),
        ),
        (
            "quick_cache",
            Box::new(quick_cache::sync::Cache::<u64, u64>::new(capacity)),
        ),
    ]
}

/// Fills `cache` with the `capacity` most popular keys.
pub fn fill(cache: &dyn Bench, capacity: usize) {
    for rank in 0..capacity as u64 {
        cache.insert(key_of(rank), rank);
    }
}

/// The two throughput workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `cache_get_hit`: lookups only, of resident keys.
    GetHit,
    /// `cache_mixed`: every tenth operation an insert.
    Mixed,
}

/// `cache_get_hit`'s batches, one per thread (two): Zipf(1.0) over `keys`
/// keys, keeping the draws among the `capacity` most popular (all resident
/// after [`fill`]), `batch` per thread.
///
/// # Panics
///
/// Fewer than `2 × batch` of `8 × batch` draws fall among the resident keys
/// (`capacity` far below `keys`).
#[must_use]
pub fn get_hit_work(keys: usize, capacity: usize, batch: usize) -> Vec<Vec<u64>> {
    let draws: Vec<u64> = zipf(keys, 1.0, batch * 8, 1)
        .into_iter()
        .filter(|&r| r < capacity as u64)
        .map(key_of)
        .collect();
    assert!(draws.len() >= batch * 2, "too few resident draws for two batches");
    (0..2)
        .map(|t| draws[t * batch..(t + 1) * batch].to_vec())
        .collect()
}

/// `cache_mixed`'s batches, one per thread (two): Zipf(1.0) over `keys`
/// keys, `batch` per thread.
#[must_use]
pub fn mixed_work(keys: usize, batch: usize) -> Vec<Vec<u64>> {
    let draws: Vec<u64> = zipf(keys, 1.0, batch * 2, 2).into_iter().map(key_of).collect();
    (0..2)
        .map(|t| draws[t * batch..(t + 1) * batch].to_vec())
        .collect()
}

/// One pass of `group` over `keys` on `cache`.
pub fn run_batch(cache: &dyn Bench, group: Group, keys: &[u64]) {
    match group {
        Group::GetHit => {
            for &k in keys {
                black_box(cache.get(black_box(k)));
            }
        }
        Group::Mixed => {
            for (i, &k) in keys.iter().enumerate() {
                if i % 10 == 9 {
                    cache.insert(k, k);
                } else {
                    black_box(cache.get(black_box(k)));
                }
            }
        }
    }
}

/// Runs `group` over `work` on `threads` threads (one batch each), `iters`
/// times each; returns the wall time.
pub fn timed(cache: &dyn Bench, group: Group, threads: usize, iters: u64, work: &[Vec<u64>]) -> Duration {
    let start = Instant::now();
    if threads == 1 {
        for _ in 0..iters {
            run_batch(cache, group, &work[0]);
        }
    } else {
        std::thread::scope(|s| {
            for w in work.iter().take(threads) {
                s.spawn(move || {
                    for _ in 0..iters {
                        run_batch(cache, group, w);
                    }
                });
            }
        });
    }
    start.elapsed()
}
