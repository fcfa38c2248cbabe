use std::sync::Arc;

use brisk_cache::{Cache, InsertError};

#[test]
fn insert_get_remove_clear() {
    let cache: Cache<String, u32> = Cache::new(100);
    assert_eq!(cache.get("a"), None);
    cache.insert("a".into(), 1);
    cache.insert("b".into(), 2);
    assert_eq!(cache.get("a"), Some(1));
    cache.insert("a".into(), 10);
    assert_eq!(cache.get("a"), Some(10));
    assert_eq!(cache.entry_count(), 2);
    assert!(cache.contains_key("b"));
    assert_eq!(cache.remove("b"), Some(2));
    assert_eq!(cache.remove("b"), None);
    assert!(!cache.contains_key("b"));
    cache.clear();
    assert_eq!(cache.get("a"), None);
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(cache.weight(), 0);
    let s = cache.stats();
    assert_eq!(s.removed, 1);
    assert_eq!(s.evicted_invalidated, 1);
    assert_eq!(s.inserts, 2);
    assert_eq!(s.entries, 0);
}

#[test]
fn entry_count_stays_within_capacity() {
    let cache: Cache<u64, u64> = Cache::new(50);
    for k in 0..10_000 {
        cache.insert(k, k);
        assert!(cache.entry_count() <= 50);
    }
    assert_eq!(cache.entry_count(), 50);
    assert_eq!(cache.stats().evicted_size, 10_000 - 50);
}

#[test]
fn weigher_bounds_total_weight_and_rejects_heavy_values() {
    let cache: Cache<u32, String> = Cache::builder()
        .max_weight(100)
        .max_entry_weight(40)
        .weigher(|_, v: &String| u32::try_from(v.len()).unwrap())
        .build()
        .unwrap();
    for k in 0..100 {
        cache.insert(k, "x".repeat(usize::try_from(k % 30).unwrap() + 1));
        assert!(cache.weight() <= 100, "weight {}", cache.weight());
    }
    cache.insert(1000, "y".repeat(41));
    assert_eq!(cache.get(&1000), None);
    assert_eq!(cache.stats().rejected, 1);
    match cache.try_insert(1001, "z".repeat(50)) {
        Err(InsertError::TooHeavy { value, weight, max }) => {
            assert_eq!((value.len(), weight, max), (50, 50, 40));
        }
        other => panic!("expected TooHeavy, got {other:?}"),
    }
    assert_eq!(cache.stats().rejected, 2);
}

#[test]
fn max_memory_bytes_counts_keys_and_values() {
    let cache: Cache<String, Vec<u8>> = Cache::builder().max_memory_bytes(10_000).build().unwrap();
    for k in 0..1000 {
        cache.insert(format!("key-{k}"), vec![0u8; 100]);
        assert!(cache.weight() <= 10_000);
    }
    // Each entry is about 24 + 8 + 24 + 100 + 64 bytes: some 45 fit.
    let n = cache.entry_count();
    assert!((30..=60).contains(&n), "{n} entries");
}

#[test]
fn frequent_keys_survive_a_scan() {
    let cache: Cache<u64, u64> = Cache::new(1000);
    for _ in 0..10 {
        for k in 0..500 {
            if cache.get(&k).is_none() {
                cache.insert(k, k);
            }
        }
    }
    // One pass over 10,000 keys never seen again (ten times the capacity:
    // an LRU cache would keep none of the hot keys).
    for k in 1_000_000..1_010_000 {
        if cache.get(&k).is_none() {
            cache.insert(k, k);
        }
    }
    let kept = (0..500).filter(|k| cache.contains_key(k)).count();
    assert!(kept >= 450, "only {kept} of 500 hot keys survived the scan");
}

#[test]
fn concurrent_readers_and_writers() {
    let cache: Cache<u64, Arc<str>> = Cache::new(1000);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let cache = cache.clone();
            s.spawn(move || {
                let mut rng = fastrand_seed(t);
                for _ in 0..20_000 {
                    let k = rng() % 3000;
                    if cache.get(&k).is_none() {
                        cache.insert(k, Arc::from(k.to_string()));
                    }
                }
            });
        }
    });
    assert!(cache.entry_count() <= 1000);
    let s = cache.total_stats();
    assert_eq!(s.requests(), 80_000);
    assert_eq!(s.entries, cache.entry_count());
    for k in 0..3000u64 {
        if let Some(v) = cache.get(&k) {
            assert_eq!(*v, *k.to_string());
        }
    }
}

fn fastrand_seed(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[test]
fn builder_errors_name_the_field() {
    let err = Cache::<u64, u64>::builder().max_capacity(0).build().unwrap_err();
    assert_eq!(err.field(), "max_capacity");
    let err = Cache::<u64, u64>::builder().max_weight(0).build().unwrap_err();
    assert_eq!(err.field(), "max_weight");
    let err = Cache::<u64, u64>::builder()
        .max_capacity(5)
        .max_weight(5)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_weight");
    let err = Cache::<u64, u64>::builder().jitter(0.9).build().unwrap_err();
    assert_eq!(err.field(), "jitter");
    let err = Cache::<u64, u64>::builder()
        .namespace("a", brisk_cache::NamespaceConfig::new())
        .namespace("a", brisk_cache::NamespaceConfig::new())
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "namespace");
    let err = Cache::<u64, u64>::builder()
        .max_entry_weight(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_entry_weight");
    let unknown = Cache::<u64, u64>::new(1).namespace("nope").unwrap_err();
    assert_eq!(unknown.name, "nope");
}
