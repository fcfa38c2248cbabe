//! The Redis L2 against real Redis servers (brisk-testkit). Each test skips
//! itself under `BRISK_SKIP_SERVICES=1`. Built with the `redis` feature.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use brisk_cache::{Cache, L2Error, NamespaceConfig, TieredCache};
use brisk_core::{Backoff, ManualClock};

type Tiered = TieredCache<String, String>;

fn l1(clock: &ManualClock) -> Cache<String, String> {
    Cache::builder()
        .max_capacity(1_000)
        .namespace(
            "sentiment",
            NamespaceConfig::new().ttl(Duration::from_secs(15 * 60)),
        )
        .namespace(
            "templates",
            NamespaceConfig::new().ttl(Duration::from_secs(24 * 3600)),
        )
        .clock(clock.shared())
        .build()
        .unwrap()
}

fn node(url: &str, prefix: &str, clock: &ManualClock) -> Tiered {
    TieredCache::builder(l1(clock), url)
        .prefix(prefix)
        .namespace_l2_ttl("templates", Duration::from_secs(3600))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .namespace("sentiment")
        .unwrap()
}

pub(crate) fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// Waits (polling) for something another task or process does.
pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_through_to_redis_and_other_nodes_read_them() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let clock = ManualClock::new();
    let a = node(kv.url(), &kv.key("c"), &clock);
    let b = node(kv.url(), &kv.key("c"), &clock);

    a.insert("great news".into(), "0.8".into()).await.unwrap();
    assert_eq!(
        a.l1().get("great news").as_deref(),
        Some("0.8"),
        "written to the L1"
    );
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(a.redis_key(&"great news".to_owned()))
        .query(&mut raw(kv.url()))
        .unwrap();
    assert_eq!(
        &stored[..4],
        &[0xB5, 1, 0, 0],
        "header: magic, postcard, uncompressed"
    );
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(a.redis_key(&"great news".to_owned()))
        .query(&mut raw(kv.url()))
        .unwrap();
    assert!(
        ttl_ms > 3_500_000 && ttl_ms <= 3_600_000,
        "the default L2 TTL, 1 h: {ttl_ms}"
    );

    assert_eq!(b.l1().get("great news"), None);
    assert_eq!(b.get(&"great news".to_owned()).await.as_deref(), Some("0.8"));
    assert_eq!(
        b.l1().get("great news").as_deref(),
        Some("0.8"),
        "an L2 hit fills the L1"
    );
    let s = b.l2_stats();
    assert_eq!((s.hits, s.misses, s.errors), (1, 0, 0));
    assert_eq!(b.get(&"unknown".to_owned()).await, None);
    assert_eq!(b.l2_stats().misses, 1);
    assert_eq!(a.l2_stats().writes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_l1_never_outlives_the_l2_ttl() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let clock = ManualClock::new();
    let sentiment = node(kv.url(), &kv.key("c"), &clock);
    assert_eq!(
        sentiment.l1_ttl(),
        Duration::from_secs(15 * 60),
        "own TTL, under the 1 h L2 TTL"
    );
    let templates = sentiment.namespace("templates").unwrap();
    assert_eq!(templates.l2_ttl(), Duration::from_secs(3600));
    assert_eq!(
        templates.l1_ttl(),
        Duration::from_secs(3600),
        "24 h capped by the L2's 1 h"
    );

    templates.insert("welcome".into(), "Hello!".into()).await.unwrap();
    clock.advance(Duration::from_secs(3599));
    assert!(templates.l1().get("welcome").is_some());
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        templates.l1().get("welcome"),
        None,
        "expired from the L1 with the L2 TTL"
    );

    // A value read from Redis is kept in the L1 for its remaining Redis TTL.
    let key = templates.redis_key(&"short".to_owned());
    let mut con = raw(kv.url());
    redis::cmd("SET")
        .arg(&key)
        .arg(&[0xB5u8, 1, 0, 0, 2, b'h', b'i'][..])
        .arg("PX")
        .arg(60_000)
        .exec(&mut con)
        .unwrap();
    assert_eq!(templates.get(&"short".to_owned()).await.as_deref(), Some("hi"));
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        templates.l1().get("short"),
        None,
        "kept no longer than its 60 s left in Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_are_compressed_and_round_trip() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let clock = ManualClock::new();
    let a = node(kv.url(), &kv.key("c"), &clock);
    let b = node(kv.url(), &kv.key("c"), &clock);
    let text = "a long generated answer, repeated. ".repeat(600);
    a.insert("essay".into(), text.clone()).await.unwrap();
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(a.redis_key(&"essay".to_owned()))
        .query(&mut raw(kv.url()))
        .unwrap();
    assert_eq!(stored[2], 1, "zstd in the header");
    assert!(
        stored.len() < text.len() / 10,
        "{} bytes for {}",
        stored.len(),
        text.len()
    );
    assert_eq!(a.l2_stats().compressed_writes, 1);
    assert_eq!(b.get(&"essay".to_owned()).await, Some(text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_are_a_counted_miss() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let clock = ManualClock::new();
    let a = node(kv.url(), &kv.key("c"), &clock);
    let mut con = raw(kv.url());
    for (key, junk) in [
        ("foreign", &b"plain text"[..]),
        ("corrupt", &[0xB5, 1, 1, 0, 9, 9, 9][..]),
        ("future", &[0xB5, 7, 0, 0][..]),
    ] {
        redis::cmd("SET")
            .arg(a.redis_key(&key.to_owned()))
            .arg(junk)
            .exec(&mut con)
            .unwrap();
        assert_eq!(a.get(&key.to_owned()).await, None, "{key}");
    }
    // Another type under the key is foreign data too.
    redis::cmd("LPUSH")
        .arg(a.redis_key(&"list".to_owned()))
        .arg("x")
        .exec(&mut con)
        .unwrap();
    assert_eq!(a.get(&"list".to_owned()).await, None);
    let s = a.l2_stats();
    assert_eq!((s.bad_bytes, s.misses, s.hits, s.errors), (4, 4, 0, 0));
    // The loader replaces a bad entry.
    let v = a
        .get_or_load("foreign".to_owned(), || async {
            Ok::<_, std::io::Error>("fresh".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(v, "fresh");
    a.l1().clear();
    assert_eq!(a.get(&"foreign".to_owned()).await.as_deref(), Some("fresh"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_load_reads_redis_before_loading_and_loads_once() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let clock = ManualClock::new();
    let a = node(kv.url(), &kv.key("c"), &clock);
    let b = node(kv.url(), &kv.key("c"), &clock);
    let loads = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (a, loads) = (a.clone(), Arc::clone(&loads));
        tasks.push(tokio::spawn(async move {
            a.get_or_load("k".to_owned(), || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok::<_, std::io::Error>("v".to_owned())
            })
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "v");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "single flight");
    let v = b
        .get_or_load("k".to_owned(), || async {
            Err::<String, _>(std::io::Error::other("must not load"))
        })
        .await
        .unwrap();
    assert_eq!(v, "v", "found in Redis, not loaded");
    let err = b
        .get_or_load("missing".to_owned(), || async {
            Err::<String, _>(std::io::Error::other("down"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "down");
    assert_eq!(b.get(&"missing".to_owned()).await, None, "errors are not cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_pipelines_the_l1_misses() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let clock = ManualClock::new();
    let a = node(kv.url(), &kv.key("c"), &clock);
    let b = node(kv.url(), &kv.key("c"), &clock);
    for i in 0..10 {
        a.insert(format!("k{i}"), format!("v{i}")).await.unwrap();
    }
    b.insert("k0".into(), "v0".into()).await.unwrap(); // an L1 hit on b
    let keys: Vec<String> = (0..10)
        .map(|i| format!("k{i}"))
        .chain(["nope".to_owned()])
        .collect();
    let got = b.get_many(&keys).await;
    let want: Vec<Option<String>> = (0..10).map(|i| Some(format!("v{i}"))).chain([None]).collect();
    assert_eq!(got, want);
    let s = b.l2_stats();
    assert_eq!((s.hits, s.misses), (9, 1));
    assert_eq!(
        b.get_many(&keys[..10]).await,
        want[..10].to_vec(),
        "now all from the L1"
    );
    assert_eq!(b.l2_stats().hits, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_reaches_other_nodes_l1() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let clock = ManualClock::new();
    let a = node(kv.url(), &kv.key("c"), &clock);
    let b = node(kv.url(), &kv.key("c"), &clock);
    eventually("both nodes subscribed", || a.is_subscribed() && b.is_subscribed()).await;

    a.insert("k".into(), "v1".into()).await.unwrap();
    assert_eq!(b.get(&"k".to_owned()).await.as_deref(), Some("v1"));
    // A write tells the other nodes to drop their copy.
    a.insert("k".into(), "v2".into()).await.unwrap();
    eventually("b drops k", || b.l1().get("k").is_none()).await;
    assert_eq!(b.get(&"k".to_owned()).await.as_deref(), Some("v2"));
    assert_eq!(
        a.l2_stats().invalidations_received,
        0,
        "a ignores its own messages"
    );

    a.remove(&"k".to_owned()).await.unwrap();
    eventually("b drops k again", || b.l1().get("k").is_none()).await;
    assert_eq!(b.get(&"k".to_owned()).await, None);

    // Namespace invalidation, through the generation counter in Redis.
    a.insert("x".into(), "1".into()).await.unwrap();
    let other = a.namespace("templates").unwrap();
    other.insert("t".into(), "kept".into()).await.unwrap();
    assert_eq!(b.get(&"x".to_owned()).await.as_deref(), Some("1"));
    let received = b.l2_stats().invalidations_received;
    a.invalidate_namespace().await.unwrap();
    assert_eq!(a.get(&"x".to_owned()).await, None, "gone here, from both tiers");
    eventually("b hears of the invalidation", || {
        b.l2_stats().invalidations_received > received
    })
    .await;
    assert_eq!(b.l1().get("x"), None);
    assert_eq!(
        b.get(&"x".to_owned()).await,
        None,
        "the old generation is not read"
    );
    let b_templates = b.namespace("templates").unwrap();
    assert_eq!(
        b_templates.get(&"t".to_owned()).await.as_deref(),
        Some("kept"),
        "other namespaces stay"
    );

    // A node started later reads the current generation.
    a.insert("x".into(), "2".into()).await.unwrap();
    let c = node(kv.url(), &kv.key("c"), &clock);
    assert_eq!(c.get(&"x".to_owned()).await.as_deref(), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_degrades_to_l1_and_recovers_by_itself() {
    let Some(mut server) = brisk_testkit::redis_server() else {
        return;
    };
    let clock = ManualClock::new();
    let cache = TieredCache::builder(l1(&clock), server.url())
        .prefix("outage")
        .timeout(Duration::from_millis(500))
        .failure_threshold(2)
        .backoff(
            Backoff::builder()
                .base(Duration::from_secs(1))
                .cap(Duration::from_secs(4))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
        .namespace("sentiment")
        .unwrap();
    let load = |v: &'static str| move || async move { Ok::<_, std::io::Error>(v.to_owned()) };
    eventually("subscribed", || cache.is_subscribed()).await;
    cache.insert("cached".into(), "1".into()).await.unwrap();

    server.stop().unwrap();
    // No get fails: L1 hits, and misses go to the loader.
    assert_eq!(cache.get(&"cached".to_owned()).await.as_deref(), Some("1"));
    assert_eq!(cache.get(&"absent".to_owned()).await, None);
    assert_eq!(cache.get_or_load("a".to_owned(), load("2")).await.unwrap(), "2");
    assert!(cache.is_circuit_open(), "two failures open the breaker");
    let s = cache.l2_stats();
    assert!(s.errors >= 2 && s.breaker_trips == 1, "{s:?}");
    assert_eq!(cache.get_or_load("b".to_owned(), load("3")).await.unwrap(), "3");
    assert!(matches!(
        cache.insert("c".into(), "4".into()).await,
        Err(L2Error::CircuitOpen)
    ));
    assert_eq!(
        cache.l1().get("c").as_deref(),
        Some("4"),
        "the L1 is written anyway"
    );
    assert!(cache.l2_stats().skipped >= 2, "Redis is not called while open");
    eventually("the subscription is lost", || !cache.is_subscribed()).await;

    server.start_again().unwrap();
    clock.advance(Duration::from_secs(1));
    // The trial call reconnects; the breaker closes by itself.
    assert_eq!(cache.get(&"absent".to_owned()).await, None);
    assert!(!cache.is_circuit_open());
    cache.insert("after".into(), "5".into()).await.unwrap();
    let stored: Option<Vec<u8>> = redis::cmd("GET")
        .arg(cache.redis_key(&"after".to_owned()))
        .query(&mut raw(&server.url()))
        .unwrap();
    assert!(stored.is_some(), "written to Redis again");
    // The invalidation channel is subscribed again, and the L1 cleared.
    eventually("resubscribed", || {
        cache.l2_stats().resubscribes == 1 && cache.is_subscribed()
    })
    .await;
    assert_eq!(
        cache.l1().get("cached"),
        None,
        "the L1 was cleared after resubscribing"
    );
}

#[test]
fn builder_errors_name_the_field() {
    let clock = ManualClock::new();
    let field = |r: Result<Tiered, brisk_core::ConfigError>| r.unwrap_err().field().to_owned();
    assert_eq!(
        field(TieredCache::builder(l1(&clock), "http://nope").build()),
        "redis_url"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(
        field(TieredCache::builder(l1(&clock), "redis://127.0.0.1:1/").build()),
        "runtime"
    );
    let _guard = runtime.enter();
    let url = "redis://127.0.0.1:1/";
    assert_eq!(
        field(
            TieredCache::builder(l1(&clock), url)
                .timeout(Duration::ZERO)
                .build()
        ),
        "timeout"
    );
    assert_eq!(
        field(TieredCache::builder(l1(&clock), url).failure_threshold(0).build()),
        "failure_threshold"
    );
    assert_eq!(
        field(TieredCache::builder(l1(&clock), url).prefix("").build()),
        "prefix"
    );
    assert_eq!(
        field(TieredCache::builder(l1(&clock), url).compression_level(0).build()),
        "compression_level"
    );
    assert_eq!(
        field(
            TieredCache::builder(l1(&clock), url)
                .l2_ttl(Duration::ZERO)
                .build()
        ),
        "l2_ttl"
    );
    assert_eq!(
        field(
            TieredCache::builder(l1(&clock), url)
                .namespace_l2_ttl("nope", Duration::from_secs(1))
                .build()
        ),
        "l2_ttl"
    );
    let colon: Cache<String, String> = Cache::builder()
        .namespace("a:b", NamespaceConfig::new())
        .build()
        .unwrap();
    assert_eq!(field(TieredCache::builder(colon, url).build()), "namespace");
    assert!(
        TieredCache::builder(l1(&clock), url).build().is_ok(),
        "Redis is not needed to build"
    );
}

#[tokio::test]
async fn an_unreachable_redis_never_fails_a_get() {
    let clock = ManualClock::new();
    // Nothing listens on port 1.
    let cache = node("redis://127.0.0.1:1/", "x", &clock);
    assert_eq!(cache.get(&"k".to_owned()).await, None);
    let v = cache
        .get_or_load("k".to_owned(), || async {
            Ok::<_, std::io::Error>("v".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(v, "v");
    assert_eq!(cache.get(&"k".to_owned()).await.as_deref(), Some("v"));
    assert!(cache.l2_stats().errors >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_times_out_and_the_get_is_a_miss() {
    let Some(server) = brisk_testkit::redis_server() else {
        return;
    };
    let clock = ManualClock::new();
    let cache = TieredCache::builder(l1(&clock), server.url())
        .prefix("slow")
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap()
        .namespace("sentiment")
        .unwrap();
    cache.insert("k".into(), "v".into()).await.unwrap();
    cache.l1().clear();
    // Redis holds every command for 2 s.
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .exec(&mut raw(&server.url()))
        .unwrap();
    let start = Instant::now();
    assert_eq!(
        cache.get(&"k".to_owned()).await,
        None,
        "a timeout is a miss, not an error"
    );
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let s = cache.l2_stats();
    assert_eq!((s.timeouts, s.errors), (1, 1));
}
