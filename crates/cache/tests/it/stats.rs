use brisk_cache::{Cache, NamespaceConfig};
use brisk_core::StatsReport;

#[test]
fn stats_are_reported_per_namespace() {
    let cache: Cache<u32, u32> = Cache::builder()
        .namespace("sentiment", NamespaceConfig::new())
        .build()
        .unwrap();
    let sentiment = cache.namespace("sentiment").unwrap();
    sentiment.insert(1, 1);
    sentiment.get(&1);
    sentiment.get(&2);
    cache.get(&1);
    assert_eq!(sentiment.namespace_name(), "sentiment");
    assert_eq!(cache.namespace_names(), vec!["default", "sentiment"]);

    let report = StatsReport::collect(&cache);
    let find = |name: &str, ns: &str| {
        report
            .metrics()
            .iter()
            .find(|m| m.name == name && m.labels.iter().any(|(k, v)| k == "namespace" && v == ns))
            .map(|m| m.value.as_f64())
    };
    assert_eq!(find("brisk_cache_hits_total", "sentiment"), Some(1.0));
    assert_eq!(find("brisk_cache_misses_total", "sentiment"), Some(1.0));
    assert_eq!(find("brisk_cache_misses_total", "default"), Some(1.0));
    assert_eq!(find("brisk_cache_hit_ratio", "sentiment"), Some(0.5));
    assert_eq!(find("brisk_cache_entries", "sentiment"), Some(1.0));
    assert_eq!(report.value("brisk_cache_weight"), Some(1.0));

    let total = cache.total_stats();
    assert_eq!((total.hits, total.misses), (1, 2));
    assert!((total.hit_ratio() - 1.0 / 3.0).abs() < 1e-9);
}

#[test]
fn counts_stay_exact_with_more_threads_than_stripes() {
    let cache: Cache<u32, u32> = Cache::new(1000);
    for k in 0..100 {
        cache.insert(k, k);
    }
    // 48 threads at once (more than the per-thread stripes a 2-core machine
    // gets, so some share the overflow stripes), then 64 threads one after
    // another (each claims a stripe and releases it on exit).
    std::thread::scope(|s| {
        for t in 0..48u32 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..2_000u32 {
                    cache.get(&((t + i) % 200));
                }
            });
        }
    });
    for t in 0..64u32 {
        let cache = cache.clone();
        std::thread::spawn(move || {
            for i in 0..100u32 {
                cache.get(&((t + i) % 200));
            }
        })
        .join()
        .unwrap();
    }
    let s = cache.stats();
    assert_eq!(s.requests(), 48 * 2_000 + 64 * 100);
    // Keys 0..100 hit, 100..200 miss: half of each concurrent thread's
    // lookups, and 100 - t of sequential thread t's.
    let sequential_hits: u64 = (0..64).map(|t| 100 - t).sum();
    assert_eq!(s.hits, 48 * 1_000 + sequential_hits);
}
