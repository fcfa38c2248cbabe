//! brisk-rate-limiter benchmarks, beside raw governor in the same run.
//!
//! - `rl_direct`: one window, one state, `check(1)`: brisk with its default
//!   clock (`MonotonicCoarseClock`: `CLOCK_MONOTONIC_COARSE` through the
//!   vDSO), with `SystemClock` (`Instant::now` through `SharedClock`) and
//!   with `CoarseClock` (monotonic, one atomic load kept by a thread),
//!   beside governor with its default clock (quanta, a raw TSC read) and
//!   with its `MonotonicClock` (`Instant::now`).
//! - `rl_clock`: one read of each of those clocks, to show where the time
//!   of a decision goes.
//! - `rl_keyed`: 65,536 keys drawn from a Zipf(1.0) distribution, 1 and 2
//!   threads, one window; 1,024 decisions per iteration per thread.
//! - `rl_multi3`: the same keyed workload (1 thread) with three windows
//!   (minute, hour, day) beside brisk with one window.
//!
//! - `rl_redis`: `RedisRateLimiter` on a testkit Redis, 32 concurrent
//!   callers (needs `redis-server`; skipped with `BRISK_SKIP_SERVICES=1`).
//!
//! Quotas are large enough that nearly every decision admits: the
//! benchmarks measure the decision, not the rejection path.
//!
//! Run: `cargo bench -p brisk-benches --bench rate_limiter -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Instant;

use brisk_core::{Clock, SystemClock};
use brisk_rate_limiter::{
    CoarseClock, FailurePolicy, KeyedRateLimiter, MonotonicCoarseClock, Quota, RateLimiter, RedisRateLimiter,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use governor::clock::MonotonicClock;

const KEYS: u64 = 65_536;
const BATCH: usize = 1_024;
/// Big enough that no key runs out during a run (1e9 per second).
const RATE: u32 = 1_000_000_000;

fn rate() -> NonZeroU32 {
    NonZeroU32::new(RATE).expect("non-zero")
}

/// `n` keys in `0..KEYS`, Zipf(1.0)-distributed (key `k` has weight 1/(k+1)),
/// hashed so that popular keys are spread over the key space.
fn zipf_keys(n: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(KEYS as usize);
    let mut total = 0.0f64;
    for k in 0..KEYS {
        total += 1.0 / (k as f64 + 1.0);
        cdf.push(total);
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| {
            let x = rng.f64() * total;
            let k = cdf.partition_point(|&c| c < x) as u64;
            k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        })
        .collect()
}

fn rl_direct(c: &mut Criterion) {
    let mut group = c.benchmark_group("rl_direct");
    group.throughput(Throughput::Elements(1));
    let brisk = RateLimiter::builder()
        .quota(Quota::per_second(u64::from(RATE)))
        .build()
        .expect("valid quota");
    group.bench_function("brisk", |b| {
        b.iter(|| black_box(brisk.check(black_box(1)).is_ok()));
    });
    let precise = RateLimiter::builder()
        .quota(Quota::per_second(u64::from(RATE)))
        .clock(SystemClock::shared())
        .build()
        .expect("valid quota");
    group.bench_function("brisk SystemClock", |b| {
        b.iter(|| black_box(precise.check(black_box(1)).is_ok()));
    });
    let coarse = RateLimiter::builder()
        .quota(Quota::per_second(u64::from(RATE)))
        .clock(CoarseClock::shared())
        .build()
        .expect("valid quota");
    group.bench_function("brisk CoarseClock", |b| {
        b.iter(|| black_box(coarse.check(black_box(1)).is_ok()));
    });
    let gov = governor::RateLimiter::direct(governor::Quota::per_second(rate()));
    group.bench_function("governor", |b| b.iter(|| black_box(gov.check().is_ok())));
    let gov_mono =
        governor::RateLimiter::direct_with_clock(governor::Quota::per_second(rate()), MonotonicClock);
    group.bench_function("governor MonotonicClock", |b| {
        b.iter(|| black_box(gov_mono.check().is_ok()));
    });
    group.finish();
}

/// One read of each clock: brisk's default, `Instant::now`, `CoarseClock`
/// and governor's default (quanta).
fn rl_clock(c: &mut Criterion) {
    let mut group = c.benchmark_group("rl_clock");
    group.throughput(Throughput::Elements(1));
    let coarse_mono = MonotonicCoarseClock::new();
    group.bench_function("MonotonicCoarseClock::nanos", |b| {
        b.iter(|| black_box(coarse_mono.nanos()));
    });
    group.bench_function("Instant::now", |b| b.iter(|| black_box(Instant::now())));
    let coarse = CoarseClock::shared();
    group.bench_function("CoarseClock::now", |b| b.iter(|| black_box(coarse.now())));
    let quanta = governor::clock::DefaultClock::default();
    group.bench_function("governor DefaultClock::now", |b| {
        b.iter(|| black_box(governor::clock::Clock::now(&quanta)));
    });
    group.finish();
}

/// Runs `decide` over `keys` in batches of `BATCH` on `threads` threads;
/// the time of `iters` batches per thread, run in parallel.
fn run_threads(
    threads: usize,
    iters: u64,
    keys: &[u64],
    decide: &(dyn Fn(&u64) -> bool + Sync),
) -> std::time::Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut at = (t * keys.len() / threads) % (keys.len() - BATCH);
                let mut admitted = 0usize;
                for _ in 0..iters {
                    for k in &keys[at..at + BATCH] {
                        admitted += usize::from(decide(black_box(k)));
                    }
                    at = (at + BATCH) % (keys.len() - BATCH);
                }
                black_box(admitted);
            });
        }
    });
    start.elapsed()
}

fn brisk_keyed(quotas: &[Quota]) -> KeyedRateLimiter<u64> {
    let l = RateLimiter::builder()
        .quotas(quotas.iter().cloned())
        .build_keyed::<u64>()
        .expect("valid quotas");
    for k in 0..KEYS {
        let _ = l.check(&k.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1);
    }
    l
}

fn rl_keyed(c: &mut Criterion) {
    let keys = zipf_keys(1 << 20, 11);
    let mut group = c.benchmark_group("rl_keyed");
    let brisk = brisk_keyed(&[Quota::per_second(u64::from(RATE))]);
    let gov = governor::RateLimiter::keyed(governor::Quota::per_second(rate()));
    for k in 0..KEYS {
        let _ = gov.check_key(&k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements((BATCH * threads) as u64));
        group.bench_with_input(BenchmarkId::new("brisk", threads), &threads, |b, &t| {
            b.iter_custom(|iters| run_threads(t, iters, &keys, &|k| brisk.check(k, 1).is_ok()));
        });
        group.bench_with_input(BenchmarkId::new("governor", threads), &threads, |b, &t| {
            b.iter_custom(|iters| run_threads(t, iters, &keys, &|k| gov.check_key(k).is_ok()));
        });
    }
    group.finish();
}

fn rl_multi3(c: &mut Criterion) {
    let keys = zipf_keys(1 << 20, 11);
    let mut group = c.benchmark_group("rl_multi3");
    group.throughput(Throughput::Elements(BATCH as u64));
    let big = u64::from(RATE);
    let three = brisk_keyed(&[
        Quota::per_minute(big * 60),
        Quota::per_hour(big * 3_600),
        Quota::per_day(big * 86_400),
    ]);
    group.bench_function("brisk 3 windows", |b| {
        b.iter_custom(|iters| run_threads(1, iters, &keys, &|k| three.check(k, 1).is_ok()));
    });
    let one = brisk_keyed(&[Quota::per_second(big)]);
    group.bench_function("brisk 1 window", |b| {
        b.iter_custom(|iters| run_threads(1, iters, &keys, &|k| one.check(k, 1).is_ok()));
    });
    group.finish();
}

/// `RedisRateLimiter` on a testkit Redis over loopback: 32 callers at once
/// (tokio tasks sharing one multiplexed connection), each deciding on its
/// own key; one iteration is 32 decisions. Skipped with
/// `BRISK_SKIP_SERVICES=1`. Target: at least 50,000 decisions per second.
fn rl_redis(c: &mut Criterion) {
    let Some(kv) = brisk_testkit::redis() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let limiter = RedisRateLimiter::builder(kv.url())
        .quota(Quota::per_second(u64::from(RATE)))
        .prefix(kv.prefix())
        .failure_policy(FailurePolicy::Closed)
        .build()
        .expect("valid configuration");
    runtime
        .block_on(limiter.check("warm-up", 1))
        .expect("Redis answers");
    let mut group = c.benchmark_group("rl_redis");
    group.throughput(Throughput::Elements(32));
    group.bench_function("brisk 32 callers", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..32)
                    .map(|i| {
                        let limiter = limiter.clone();
                        tokio::spawn(async move {
                            let key = format!("caller-{i}");
                            for _ in 0..iters {
                                limiter.check(&key, 1).await.expect("admitted");
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("caller");
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, rl_direct, rl_clock, rl_keyed, rl_multi3, rl_redis);
criterion_main!(benches);
