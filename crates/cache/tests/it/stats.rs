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
