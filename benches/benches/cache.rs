//! brisk-cache benchmarks, beside moka and `quick_cache` (the concurrent
//! caches a user would otherwise pick) in the same run.
//!
//! - `cache_get_hit`: lookups of keys drawn from a Zipf(s = 1.0)
//!   distribution over 1M keys, restricted to the 100k most popular, which
//!   are all resident in a 100k-entry cache (every lookup hits); 1 and 2
//!   threads.
//! - `cache_mixed`: 90% lookups, 10% inserts, keys Zipf(1.0) over 1M keys,
//!   capacity 100k; 1 and 2 threads.
//!
//! - `cache_l2`: the Redis L2 ([`brisk_cache::TieredCache`]) on a testkit
//!   Redis over loopback (skipped with `BRISK_SKIP_SERVICES=1`): `l1_miss_l2_hit`
//!   is one `get` that misses the L1 and hits Redis (its p50 and p99 are
//!   printed before the timings); `get_many_pipelined/100` reads 100 such
//!   keys in one pipelined round trip, beside `get_each/100`, one `get` per
//!   key.
//!
//! Hit ratios on real traces are measured by the `cache-trace` tool
//! (`src/bin/cache-trace.rs`); this file prints the hit ratio of each cache
//! on the same generated Zipf + scan workload before the timings, so the
//! bench runs without any trace file.
//!
//! Run: `cargo bench -p brisk-benches --bench cache -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use brisk_benches::cache_workload::{
    BATCH, CAPACITY, Group, KEYS, caches, fill, get_hit_work, key_of, mixed_work, timed, zipf,
};

fn get_hit(c: &mut Criterion) {
    // Zipf over 1M keys, keeping the draws among the 100k resident keys.
    let work = get_hit_work(KEYS, CAPACITY, BATCH);
    let mut group = c.benchmark_group("cache_get_hit");
    for (name, cache) in caches(CAPACITY) {
        fill(cache.as_ref(), CAPACITY);
        let resident = work[0].iter().filter(|&&k| cache.get(k).is_some()).count();
        eprintln!("cache_get_hit/{name}: {resident} of {BATCH} benchmark keys resident after the fill");
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements((BATCH * threads) as u64));
            group.bench_function(BenchmarkId::new(name, threads), |b| {
                b.iter_custom(|iters| timed(cache.as_ref(), Group::GetHit, threads, iters, &work));
            });
        }
    }
    group.finish();
}

fn mixed(c: &mut Criterion) {
    // Every tenth operation is an insert.
    let work = mixed_work(KEYS, BATCH);
    let mut group = c.benchmark_group("cache_mixed");
    for (name, cache) in caches(CAPACITY) {
        fill(cache.as_ref(), CAPACITY);
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements((BATCH * threads) as u64));
            group.bench_function(BenchmarkId::new(name, threads), |b| {
                b.iter_custom(|iters| timed(cache.as_ref(), Group::Mixed, threads, iters, &work));
            });
        }
    }
    group.finish();
}

/// Hit ratios on a generated workload (Zipf(0.9) over 100k keys, with a
/// one-off scan of 50k cold keys every 100k requests), capacity 2,000:
/// printed, not timed.
fn hit_ratio(_: &mut Criterion) {
    let mut requests = Vec::new();
    let zipf = zipf(100_000, 0.9, 400_000, 3);
    let mut next_cold = 1u64 << 40;
    for (i, &r) in zipf.iter().enumerate() {
        requests.push(key_of(r));
        if i % 100_000 == 50_000 {
            for _ in 0..50_000 {
                requests.push(key_of(next_cold));
                next_cold += 1;
            }
        }
    }
    let mut line = String::from("hit ratio, Zipf(0.9) + scans, capacity 2000:");
    for (name, cache) in caches(2000) {
        let hits = requests
            .iter()
            .filter(|&&k| {
                if cache.get(k).is_some() {
                    true
                } else {
                    cache.insert(k, k);
                    false
                }
            })
            .count();
        #[allow(clippy::cast_precision_loss)]
        let ratio = hits as f64 / requests.len() as f64 * 100.0;
        line.push_str(&format!(" {name} {ratio:.2}%"));
    }
    eprintln!("{line}");
}

/// The `cache_l2` fixture: 1,000 sentiment-sized values (a short JSON-ish
/// string) written through to a testkit Redis.
struct L2Setup {
    /// Keeps the test's key prefix (dropping it deletes the keys).
    _kv: brisk_testkit::TestRedis,
    runtime: tokio::runtime::Runtime,
    cache: brisk_cache::TieredCache<String, String>,
    keys: Vec<String>,
}

fn l2_setup() -> Option<L2Setup> {
    let kv = brisk_testkit::redis()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cache = {
        let _in_runtime = runtime.enter();
        brisk_cache::TieredCache::builder(brisk_cache::Cache::new(10_000), kv.url())
            .prefix(kv.key("bench"))
            .build()
            .expect("valid configuration")
    };
    let keys: Vec<String> = (0..1000).map(|i| format!("post-{i}")).collect();
    runtime.block_on(async {
        for k in &keys {
            let value = format!("{{\"label\":\"positive\",\"score\":0.{k:0>3}}}");
            cache.insert(k.clone(), value).await.expect("Redis answers");
        }
    });
    Some(L2Setup {
        _kv: kv,
        runtime,
        cache,
        keys,
    })
}

fn l2(c: &mut Criterion) {
    let Some(L2Setup {
        _kv,
        runtime,
        cache,
        keys,
    }) = l2_setup()
    else {
        return;
    };
    // Percentiles of single L1-miss, L2-hit reads.
    let mut samples: Vec<Duration> = runtime.block_on(async {
        let mut samples = Vec::with_capacity(10_000);
        for i in 0..10_000 {
            let k = &keys[i % keys.len()];
            cache.l1().remove(k.as_str());
            let start = Instant::now();
            let v = cache.get(k).await;
            samples.push(start.elapsed());
            assert!(v.is_some(), "an L2 hit");
        }
        samples
    });
    samples.sort_unstable();
    let pct = |p: usize| samples[samples.len() * p / 100];
    eprintln!(
        "cache_l2/l1_miss_l2_hit: p50 {:?}, p99 {:?} over {} reads",
        pct(50),
        pct(99),
        samples.len()
    );
    let mut group = c.benchmark_group("cache_l2");
    group.throughput(Throughput::Elements(1));
    group.bench_function("l1_miss_l2_hit", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let k = &keys[usize::try_from(i).unwrap_or(0) % keys.len()];
                    cache.l1().remove(k.as_str());
                    let start = Instant::now();
                    black_box(cache.get(k).await);
                    total += start.elapsed();
                }
                total
            })
        });
    });
    let batch = &keys[..100];
    group.throughput(Throughput::Elements(100));
    group.bench_function(BenchmarkId::new("get_many_pipelined", 100), |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    for k in batch {
                        cache.l1().remove(k.as_str());
                    }
                    let start = Instant::now();
                    black_box(cache.get_many(batch).await);
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.bench_function(BenchmarkId::new("get_each", 100), |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    for k in batch {
                        cache.l1().remove(k.as_str());
                    }
                    let start = Instant::now();
                    for k in batch {
                        black_box(cache.get(k).await);
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
    assert_eq!(cache.l2_stats().errors, 0, "no Redis failure during the bench");
}

criterion_group!(benches, hit_ratio, get_hit, mixed, l2);
criterion_main!(benches);
