use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brisk_cache::{Cache, NamespaceConfig};
use brisk_core::ManualClock;

const CALLERS: usize = 16;

#[derive(Debug, PartialEq, Eq)]
struct Boom(&'static str);

/// Spins until `cache` has counted `n` misses (every caller has looked up
/// and is about to join the flight), without sleeping.
fn until_misses(cache: &Cache<u32, u64>, n: u64) {
    while cache.stats().misses < n {
        std::thread::yield_now();
    }
}

#[test]
fn blocking_loads_run_once_for_concurrent_misses() {
    let cache: Cache<u32, u64> = Cache::new(100);
    let calls = AtomicUsize::new(0);
    let results: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|_| {
                s.spawn(|| {
                    cache
                        .get_with(7, || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            until_misses(&cache, CALLERS as u64);
                            Ok::<_, Boom>(49)
                        })
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|&v| v == 49));
    let s = cache.stats();
    assert_eq!(s.loads, 1);
    assert_eq!(s.misses, CALLERS as u64);
    assert!(s.coalesced < CALLERS as u64);
    assert_eq!(cache.get(&7), Some(49));
}

#[test]
fn async_loads_run_once_for_concurrent_misses() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let cache: Cache<u32, u64> = Cache::new(100);
    let calls = Arc::new(AtomicUsize::new(0));
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let cache = cache.clone();
                let calls = Arc::clone(&calls);
                tokio::spawn(async move {
                    let probe = cache.clone();
                    cache
                        .get_or_load(1, || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            while probe.stats().misses < CALLERS as u64 {
                                tokio::task::yield_now().await;
                            }
                            Ok::<_, Boom>(11)
                        })
                        .await
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(results, vec![11; CALLERS]);
    assert_eq!(cache.stats().loads, 1);
}

#[test]
fn a_load_error_reaches_every_waiter_and_is_not_cached() {
    let cache: Cache<u32, u64> = Cache::new(100);
    let calls = AtomicUsize::new(0);
    let errors: Vec<Arc<Boom>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    cache
                        .get_with(3, || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            until_misses(&cache, 4);
                            Err(Boom("upstream down"))
                        })
                        .unwrap_err()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(errors.iter().all(|e| **e == Boom("upstream down")));
    assert_eq!(cache.stats().load_errors, 1);
    assert_eq!(cache.get(&3), None, "errors are not cached");
    assert_eq!(cache.get_with(3, || Ok::<_, Boom>(9)), Ok(9));
    assert_eq!(cache.stats().loads, 1);
}

#[test]
fn a_cancelled_leader_hands_the_load_to_a_waiter() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let cache: Cache<u32, u64> = Cache::new(100);
    runtime.block_on(async {
        let (release, never) = tokio::sync::oneshot::channel::<()>();
        let leader = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load(5, || async move {
                        let _ = never.await;
                        Ok::<_, Boom>(1)
                    })
                    .await
            })
        };
        tokio::task::yield_now().await; // the leader starts and parks
        let waiter = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get_or_load(5, || async { Ok::<_, Boom>(2) }).await })
        };
        tokio::task::yield_now().await; // the waiter joins the flight
        leader.abort();
        drop(release);
        assert_eq!(waiter.await.unwrap(), Ok(2));
    });
    assert_eq!(cache.get(&5), Some(2));
}

#[test]
fn not_found_is_cached_with_the_negative_ttl() {
    let clock = ManualClock::new();
    let cache: Cache<&'static str, Option<u32>> = Cache::builder()
        .namespace(
            "users",
            NamespaceConfig::new()
                .ttl(Duration::from_secs(3600))
                .negative_ttl(Duration::from_secs(30)),
        )
        .clock(clock.shared())
        .build()
        .unwrap();
    let users = cache.namespace("users").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let calls = AtomicUsize::new(0);
    let lookup = |found: Option<u32>| {
        let calls = &calls;
        let users = &users;
        async move {
            users
                .get_or_load_optional("ghost", || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Boom>(found)
                })
                .await
                .unwrap()
        }
    };
    runtime.block_on(async {
        assert_eq!(lookup(None).await, None);
        assert_eq!(lookup(Some(1)).await, None, "not found is cached");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(30));
        assert_eq!(lookup(Some(1)).await, Some(1), "the negative entry expired");
        clock.advance(Duration::from_secs(600));
        assert_eq!(lookup(None).await, Some(1), "a found value keeps the normal ttl");
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn hits_add_the_load_cost_to_cost_saved() {
    let clock = ManualClock::new();
    let cache: Cache<u32, u64> = Cache::builder().clock(clock.shared()).build().unwrap();
    // A load that takes 250 ms on the manual clock costs 250,000 µs.
    let v = cache
        .get_with(1, || {
            clock.advance(Duration::from_millis(250));
            Ok::<_, Boom>(1)
        })
        .unwrap();
    assert_eq!(v, 1);
    cache.get_with_cost(2, Some(2_000), || Ok::<_, Boom>(2)).unwrap();
    for _ in 0..3 {
        cache.get(&1);
        cache.get(&2);
    }
    let s = cache.stats();
    assert_eq!(s.cost_saved, 3 * 250_000 + 3 * 2_000);
    assert_eq!(s.load_time, Duration::from_millis(250));
    assert_eq!(s.hits, 6);
}
