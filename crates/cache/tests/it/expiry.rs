use std::time::Duration;

use brisk_cache::{Cache, NamespaceConfig};
use brisk_core::ManualClock;

const MIN: Duration = Duration::from_secs(60);

fn cache(clock: &ManualClock) -> Cache<&'static str, u32> {
    Cache::builder()
        .max_capacity(1000)
        .namespace("sentiment", NamespaceConfig::new().ttl(15 * MIN))
        .namespace("templates", NamespaceConfig::new().ttl(24 * 60 * MIN))
        .namespace("sessions", NamespaceConfig::new().time_to_idle(5 * MIN))
        .clock(clock.shared())
        .build()
        .unwrap()
}

#[test]
fn namespaces_have_their_own_ttls() {
    let clock = ManualClock::new();
    let cache = cache(&clock);
    let sentiment = cache.namespace("sentiment").unwrap();
    let templates = cache.namespace("templates").unwrap();
    sentiment.insert("post", 1);
    templates.insert("post", 2);
    cache.insert("post", 3);
    assert_eq!(sentiment.get("post"), Some(1));
    assert_eq!(templates.get("post"), Some(2));

    clock.advance(15 * MIN - Duration::from_millis(1));
    assert_eq!(sentiment.get("post"), Some(1));
    clock.advance(Duration::from_millis(1));
    assert_eq!(sentiment.get("post"), None);
    assert_eq!(templates.get("post"), Some(2));
    assert_eq!(sentiment.stats().evicted_expired, 1);

    clock.advance(24 * 60 * MIN);
    assert_eq!(templates.get("post"), None);
    assert_eq!(cache.get("post"), Some(3), "the default namespace never expires");
}

#[test]
fn time_to_idle_is_renewed_by_reads() {
    let clock = ManualClock::new();
    let sessions = cache(&clock).namespace("sessions").unwrap();
    sessions.insert("alice", 1);
    for _ in 0..10 {
        clock.advance(4 * MIN);
        assert_eq!(sessions.get("alice"), Some(1));
    }
    clock.advance(5 * MIN);
    assert_eq!(sessions.get("alice"), None);
}

#[test]
fn per_entry_ttl_overrides_the_namespace() {
    let clock = ManualClock::new();
    let cache = cache(&clock);
    cache.insert_with_ttl("short", 1, Duration::from_secs(10));
    clock.advance(Duration::from_secs(10));
    assert_eq!(cache.get("short"), None);
}

#[test]
fn jitter_spreads_expiry_within_the_ttl() {
    let clock = ManualClock::new();
    let cache: Cache<u32, u32> = Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(100))
        .jitter(0.2)
        .clock(clock.shared())
        .build()
        .unwrap();
    for k in 0..1000 {
        cache.insert(k, k);
    }
    clock.advance(Duration::from_secs(80) - Duration::from_millis(1));
    assert_eq!(
        (0..1000).filter(|k| cache.contains_key(k)).count(),
        1000,
        "expired before ttl * (1 - jitter)"
    );
    clock.advance(Duration::from_secs(10));
    let alive = (0..1000).filter(|k| cache.contains_key(k)).count();
    assert!(
        (200..800).contains(&alive),
        "{alive} alive half-way through the jitter"
    );
    // To the full TTL (the clock stood 1 ms short of it): an entry whose
    // random cut was under 1 ms expires exactly at 100 s.
    clock.advance(Duration::from_secs(10) + Duration::from_millis(1));
    assert_eq!(
        (0..1000).filter(|k| cache.contains_key(k)).count(),
        0,
        "outlived its ttl"
    );
}

#[test]
fn invalidating_a_namespace_is_instant_and_local() {
    let clock = ManualClock::new();
    let cache = cache(&clock);
    let sentiment = cache.namespace("sentiment").unwrap();
    let templates = cache.namespace("templates").unwrap();
    for k in ["a", "b", "c"] {
        sentiment.insert(k, 1);
        templates.insert(k, 2);
    }
    sentiment.invalidate_all();
    assert_eq!(sentiment.get("a"), None);
    assert_eq!(templates.get("a"), Some(2));
    sentiment.insert("a", 5);
    assert_eq!(sentiment.get("a"), Some(5));
    // The two other stale entries are reclaimed by purge.
    sentiment.purge();
    let s = sentiment.stats();
    assert_eq!(s.evicted_invalidated, 3);
    assert_eq!(s.entries, 1);
    assert_eq!(cache.entry_count(), 4);
}

#[test]
fn purge_reclaims_expired_entries() {
    let clock = ManualClock::new();
    let cache = cache(&clock);
    let sentiment = cache.namespace("sentiment").unwrap();
    for k in ["a", "b", "c"] {
        sentiment.insert(k, 1);
    }
    clock.advance(16 * MIN);
    assert_eq!(cache.entry_count(), 3);
    cache.purge();
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(cache.weight(), 0);
    assert_eq!(sentiment.stats().evicted_expired, 3);
}
