//! Refresh-ahead, stale serving and adaptive TTL, on a manual clock and a
//! queued executor (the test decides when a background refresh runs).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brisk_cache::{Cache, NamespaceConfig};
use brisk_core::ManualClock;

const SEC: Duration = Duration::from_secs(1);

type Task = Box<dyn FnOnce() + Send>;

/// Background refreshes, queued until the test runs them.
#[derive(Clone, Default)]
struct Queue(Arc<Mutex<Vec<Task>>>);

impl Queue {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Runs every queued refresh; returns how many ran.
    fn run_all(&self) -> usize {
        let tasks: Vec<Task> = std::mem::take(&mut *self.0.lock().unwrap());
        let n = tasks.len();
        for t in tasks {
            t();
        }
        n
    }
}

#[derive(Debug, thiserror::Error)]
#[error("upstream down")]
struct Down;

/// The reloader's behaviour, set by the test.
#[derive(Default)]
struct Upstream {
    value: AtomicU32,
    failing: AtomicBool,
    calls: AtomicU32,
}

fn cache(
    clock: &ManualClock,
    queue: &Queue,
    upstream: &Arc<Upstream>,
    config: NamespaceConfig,
) -> Cache<&'static str, u32> {
    let queue = queue.clone();
    let upstream = Arc::clone(upstream);
    Cache::builder()
        .namespace("quotes", config)
        .clock(clock.shared())
        .reloader(move |ns: &str, _key: &&'static str| {
            assert_eq!(ns, "quotes");
            upstream.calls.fetch_add(1, Ordering::SeqCst);
            if upstream.failing.load(Ordering::SeqCst) {
                Err(Down)
            } else {
                Ok(upstream.value.load(Ordering::SeqCst))
            }
        })
        .refresh_executor(move |task| queue.0.lock().unwrap().push(task))
        .build()
        .unwrap()
        .namespace("quotes")
        .unwrap()
}

fn refreshing(ttl: u32, window: u32) -> NamespaceConfig {
    NamespaceConfig::new().ttl(ttl * SEC).refresh_ahead(window * SEC)
}

#[test]
fn a_read_in_the_window_reloads_once_in_the_background() {
    let clock = ManualClock::new();
    let queue = Queue::default();
    let upstream = Arc::new(Upstream::default());
    let quotes = cache(&clock, &queue, &upstream, refreshing(60, 10));
    quotes.insert("ABC", 1);
    upstream.value.store(2, Ordering::SeqCst);

    clock.advance(49 * SEC);
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(queue.len(), 0, "no refresh before the window");

    clock.advance(2 * SEC); // 51 s: inside the last 10 s
    assert_eq!(quotes.get("ABC"), Some(1), "the read returns the current value");
    assert_eq!(queue.len(), 1, "and starts one background reload");
    for _ in 0..5 {
        assert_eq!(quotes.get("ABC"), Some(1));
    }
    assert_eq!(queue.len(), 1, "only one reload per entry at a time");
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        0,
        "nothing ran in the reader"
    );

    assert_eq!(queue.run_all(), 1);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
    assert_eq!(quotes.get("ABC"), Some(2));
    let s = quotes.stats();
    assert_eq!((s.refreshes, s.loads, s.load_errors), (1, 1, 0));
    assert_eq!(s.entries, 1);

    // The refreshed entry lives a full TTL from the refresh (51 s + 60 s).
    clock.advance(49 * SEC); // 100 s
    assert!(quotes.contains_key("ABC"));
    assert_eq!(queue.len(), 0);
    clock.advance(11 * SEC); // 111 s
    assert!(!quotes.contains_key("ABC"));
    assert_eq!(quotes.get("ABC"), None, "expired, and no stale limit");
}

#[test]
fn a_load_of_a_refreshing_key_waits_for_the_refresh() {
    let clock = ManualClock::new();
    let queue = Queue::default();
    let upstream = Arc::new(Upstream::default());
    let quotes = cache(&clock, &queue, &upstream, refreshing(60, 10));
    quotes.insert("ABC", 1);
    upstream.value.store(7, Ordering::SeqCst);
    clock.advance(55 * SEC);
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(queue.len(), 1);
    // The entry expires while its refresh is queued: a get_with now misses
    // and must join the refresh's flight instead of loading again.
    clock.advance(10 * SEC);
    let loader_calls = AtomicU32::new(0);
    let misses_before = quotes.stats().misses;
    let value = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            quotes.get_with("ABC", || {
                loader_calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Down>(99)
            })
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        while quotes.stats().misses == misses_before {
            assert!(Instant::now() < deadline, "the waiter never looked up");
            std::thread::yield_now();
        }
        queue.run_all();
        waiter.join().unwrap()
    });
    assert_eq!(value.unwrap(), 7);
    assert_eq!(
        loader_calls.load(Ordering::SeqCst),
        0,
        "the caller's loader never ran"
    );
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
    assert_eq!(quotes.get("ABC"), Some(7));
}

#[test]
fn a_failed_refresh_serves_stale_up_to_the_limit() {
    let clock = ManualClock::new();
    let queue = Queue::default();
    let upstream = Arc::new(Upstream::default());
    let quotes = cache(
        &clock,
        &queue,
        &upstream,
        refreshing(60, 10).stale_limit(30 * SEC),
    );
    quotes.insert("ABC", 1);
    upstream.failing.store(true, Ordering::SeqCst);

    clock.advance(55 * SEC);
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(queue.run_all(), 1);
    assert_eq!(quotes.stats().load_errors, 1);

    // Past the TTL: the failed refresh lets the old value serve, and each
    // stale read after a failure retries once.
    clock.advance(6 * SEC); // 61 s
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(queue.len(), 1, "one retry, not one per read");
    assert!(!quotes.contains_key("ABC"), "stale entries are not live");
    assert_eq!(queue.run_all(), 1);
    let s = quotes.stats();
    assert_eq!((s.stale_hits, s.load_errors, s.refreshes), (2, 2, 2));

    clock.advance(28 * SEC); // 89 s: still within 60 + 30
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(queue.run_all(), 1);
    clock.advance(SEC); // 90 s: the stale limit
    assert_eq!(quotes.get("ABC"), None);
    let s = quotes.stats();
    assert_eq!(s.evicted_expired, 1);
    assert_eq!(s.entries, 0);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 3);
}

#[test]
fn a_stale_entry_recovers_when_the_upstream_does() {
    let clock = ManualClock::new();
    let queue = Queue::default();
    let upstream = Arc::new(Upstream::default());
    let quotes = cache(
        &clock,
        &queue,
        &upstream,
        refreshing(60, 10).stale_limit(30 * SEC),
    );
    quotes.insert("ABC", 1);
    upstream.failing.store(true, Ordering::SeqCst);
    clock.advance(55 * SEC);
    quotes.get("ABC");
    queue.run_all();
    clock.advance(10 * SEC); // 65 s: stale
    upstream.failing.store(false, Ordering::SeqCst);
    upstream.value.store(3, Ordering::SeqCst);
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(queue.run_all(), 1);
    assert_eq!(quotes.get("ABC"), Some(3));
    assert!(quotes.contains_key("ABC"));
    clock.advance(59 * SEC); // 124 s: within the new TTL (from 65 s)
    assert!(quotes.contains_key("ABC"));
}

#[test]
fn an_entry_read_only_after_expiry_is_a_miss() {
    let clock = ManualClock::new();
    let queue = Queue::default();
    let upstream = Arc::new(Upstream::default());
    let quotes = cache(
        &clock,
        &queue,
        &upstream,
        refreshing(60, 10).stale_limit(30 * SEC),
    );
    quotes.insert("ABC", 1);
    clock.advance(61 * SEC);
    assert_eq!(
        quotes.get("ABC"),
        None,
        "stale serving needs a refresh under way or failed"
    );
    assert_eq!(queue.len(), 0);
}

#[test]
fn adaptive_ttl_lengthens_for_same_values_and_shortens_for_changes() {
    let clock = ManualClock::new();
    let queue = Queue::default();
    let upstream = Arc::new(Upstream::default());
    let quotes = cache(
        &clock,
        &queue,
        &upstream,
        refreshing(60, 5).adaptive_ttl(20 * SEC, 200 * SEC),
    );
    quotes.insert("ABC", 1);
    // Each round reads the entry 1 s before its expected expiry: it must be
    // live (the TTL is longer than expected - 1 s) and inside the 5 s
    // window (not longer than expected + 4 s), so the read starts a
    // refresh, whose value sets the next TTL.
    let mut ttl = 60;
    for (value, next) in [
        (1, 120), // same value: doubled
        (1, 200), // capped at the maximum
        (1, 200),
        (2, 100), // changed: halved
        (3, 50),
        (4, 25),
        (5, 20), // floored at the minimum
        (5, 40),
    ] {
        clock.advance((ttl - 1) * SEC);
        assert!(quotes.get("ABC").is_some(), "expired before {ttl} s");
        assert_eq!(queue.len(), 1, "not in the refresh window: ttl above {ttl} s");
        upstream.value.store(value, Ordering::SeqCst);
        assert_eq!(queue.run_all(), 1);
        assert_eq!(quotes.get("ABC"), Some(value));
        ttl = next;
    }
    clock.advance((ttl - 1) * SEC);
    assert!(quotes.contains_key("ABC"));
    clock.advance(SEC);
    assert!(!quotes.contains_key("ABC"), "the last ttl is exactly {ttl} s");
    assert_eq!(quotes.stats().refreshes, 8);
}

#[test]
fn the_default_executor_refreshes_on_its_own_thread() {
    let clock = ManualClock::new();
    let cache: Cache<u32, String> = Cache::builder()
        .default_namespace(NamespaceConfig::new().ttl(60 * SEC).refresh_ahead(10 * SEC))
        .clock(clock.shared())
        .reloader(|_: &str, k: &u32| Ok::<_, Down>(format!("fresh {k}")))
        .build()
        .unwrap();
    cache.insert(1, "old".into());
    clock.advance(55 * SEC);
    assert_eq!(cache.get(&1).as_deref(), Some("old"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while cache.get(&1).as_deref() != Some("fresh 1") {
        assert!(Instant::now() < deadline, "the background refresh never landed");
        std::thread::yield_now();
    }
    assert_eq!(cache.stats().refreshes, 1);
}

#[test]
fn refresh_settings_are_validated_at_build() {
    let build = |config: NamespaceConfig, with_reloader: bool| {
        let b = Cache::<u32, u32>::builder().namespace("n", config);
        let b = if with_reloader {
            b.reloader(|_: &str, k: &u32| Ok::<_, Down>(*k))
        } else {
            b
        };
        b.build().map(drop).map_err(|e| e.field().to_owned())
    };
    let ttl = NamespaceConfig::new().ttl(60 * SEC);
    assert_eq!(
        build(NamespaceConfig::new().refresh_ahead(SEC), true),
        Err("namespace.n.refresh_ahead".into()),
        "needs a ttl"
    );
    assert_eq!(
        build(ttl.clone().refresh_ahead(60 * SEC), true),
        Err("namespace.n.refresh_ahead".into()),
        "window as long as the ttl"
    );
    assert_eq!(
        build(ttl.clone().refresh_ahead(SEC), false),
        Err("namespace.n.refresh_ahead".into()),
        "no reloader"
    );
    assert_eq!(
        build(ttl.clone().stale_limit(SEC), true),
        Err("namespace.n.stale_limit".into())
    );
    assert_eq!(
        build(
            ttl.clone().refresh_ahead(SEC).adaptive_ttl(90 * SEC, 30 * SEC),
            true
        ),
        Err("namespace.n.adaptive_ttl".into()),
        "inverted range"
    );
    assert_eq!(
        build(
            ttl.clone().refresh_ahead(SEC).adaptive_ttl(90 * SEC, 120 * SEC),
            true
        ),
        Err("namespace.n.adaptive_ttl".into()),
        "ttl outside the range"
    );
    assert_eq!(
        build(
            ttl.clone()
                .refresh_ahead(SEC)
                .time_to_idle(SEC)
                .adaptive_ttl(30 * SEC, 120 * SEC),
            true
        ),
        Err("namespace.n.adaptive_ttl".into()),
        "with time-to-idle"
    );
    assert_eq!(
        build(
            ttl.clone()
                .refresh_ahead(40 * SEC)
                .adaptive_ttl(30 * SEC, 120 * SEC),
            true
        ),
        Err("namespace.n.refresh_ahead".into()),
        "window not shorter than the minimum"
    );
    assert_eq!(
        build(
            ttl.refresh_ahead(SEC)
                .stale_limit(SEC)
                .adaptive_ttl(30 * SEC, 120 * SEC),
            true
        ),
        Ok(())
    );
}

#[test]
fn a_refresh_the_executor_drops_counts_as_failed_and_is_retried() {
    let clock = ManualClock::new();
    let upstream = Arc::new(Upstream::default());
    let dropped = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&dropped);
    let loader = Arc::clone(&upstream);
    let quotes: Cache<&'static str, u32> = Cache::builder()
        .namespace("quotes", refreshing(60, 10).stale_limit(30 * SEC))
        .clock(clock.shared())
        .reloader(move |_: &str, _: &&'static str| {
            loader.calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Down>(2)
        })
        // An executor that is shutting down: every task is dropped unrun.
        .refresh_executor(move |task| {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(task);
        })
        .build()
        .unwrap()
        .namespace("quotes")
        .unwrap();
    quotes.insert("ABC", 1);
    clock.advance(55 * SEC);
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    // Not stuck "running": the next read tries again.
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
    // And past the TTL the dropped refresh counts as failed: stale serving.
    clock.advance(10 * SEC);
    assert_eq!(quotes.get("ABC"), Some(1));
    assert_eq!(quotes.stats().stale_hits, 1);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 0);
}
